"""What each delivery leaves behind for operators: one log line and metrics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from app.webhooks.delivery import Delivery

log = logging.getLogger("app.webhooks")


@dataclass
class DeliveryReport:
    started: float
    outcome: str = "error"
    delivery: Delivery | None = None


def report_delivery(report: DeliveryReport) -> None:
    duration_ms = round((time.perf_counter() - report.started) * 1000, 2)
    delivery = report.delivery
    fields = {
        "webhook_id": delivery.webhook_id if delivery else None,
        "shop": delivery.shop_id if delivery else None,
        "topic": delivery.topic if delivery else None,
        "outcome": report.outcome,
        "duration_ms": duration_ms,
    }
    log.info("delivery %s", report.outcome, extra={"fields": fields})
