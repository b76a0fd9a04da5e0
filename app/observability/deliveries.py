"""What each delivery leaves behind for operators: one log line and metrics.

The log line carries ids, the topic, the outcome and the duration: never a
secret, a signature, a body or a customer's personal data.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from app.db.database import Database
from app.observability import metrics
from app.webhooks.delivery import Delivery
from app.webhooks.handlers import HANDLERS

log = logging.getLogger("app.webhooks")


@dataclass
class DeliveryReport:
    started: float
    outcome: str = "error"
    delivery: Delivery | None = None
    error: str | None = None  # why the database was unavailable (never payload data)


def report_delivery(report: DeliveryReport, database: Database) -> None:
    seconds = time.perf_counter() - report.started
    delivery = report.delivery
    topic = delivery.topic if delivery else None
    metrics.DELIVERIES.labels(topic=_topic_label(topic), outcome=report.outcome).inc()
    metrics.WEBHOOK_SECONDS.observe(seconds)
    metrics.record_pool(database)
    fields = {
        "webhook_id": delivery.webhook_id if delivery else None,
        "shop": delivery.shop_id if delivery else None,
        "topic": topic,
        "outcome": report.outcome,
        "duration_ms": round(seconds * 1000, 2),
    }
    if report.error:
        fields["error"] = report.error
    level = logging.WARNING if report.outcome in ("unavailable", "error") else logging.INFO
    log.log(level, "delivery %s", report.outcome, extra={"fields": fields})


def _topic_label(topic: str | None) -> str:
    if topic is None:
        return "unknown"
    return topic if topic in HANDLERS else "other"
