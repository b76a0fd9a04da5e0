"""What each delivery leaves behind for operators: one log line and metrics.

The log line carries ids, the topic, the outcome and the duration: never a
secret, a signature, a body or a customer's personal data.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

from app.db.database import Database, DatabaseUnavailable
from app.observability import metrics
from app.webhooks.delivery import BadDelivery, Delivery, InvalidSignature
from app.webhooks.handlers import HANDLERS
from app.webhooks.outcomes import Outcome

log = logging.getLogger("app.webhooks")


@dataclass
class DeliveryReport:
    started: float
    outcome: Outcome = Outcome.error
    delivery: Delivery | None = None
    error: str | None = None  # why the database was unavailable (never payload data)

    def refused(self, error: BaseException) -> None:
        """Note why the delivery was refused; the error map answers it."""
        self.outcome = refusal_outcome(error)
        if isinstance(error, DatabaseUnavailable):
            # Why, for the operator (out of shared memory, login refused...): the
            # driver's text goes to the log, never to the client.
            self.error = str(error)


def refusal_outcome(error: BaseException) -> Outcome:
    if isinstance(error, InvalidSignature):
        return Outcome.rejected_signature
    if isinstance(error, BadDelivery):
        return Outcome.rejected_bad_request
    if isinstance(error, DatabaseUnavailable):
        return Outcome.unavailable
    if isinstance(error, HTTPException):
        if error.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
            return Outcome.rejected_too_large
        # A chunked body that would exceed the unverified-body budget (503).
        return Outcome.unavailable
    return Outcome.error


def report_delivery(report: DeliveryReport, database: Database) -> None:
    seconds = time.perf_counter() - report.started
    delivery = report.delivery
    topic = delivery.topic if delivery else None
    metrics.DELIVERIES.labels(topic=_topic_label(topic), outcome=report.outcome.value).inc()
    metrics.WEBHOOK_SECONDS.observe(seconds)
    metrics.record_pool(database)
    fields = {
        "webhook_id": delivery.webhook_id if delivery else None,
        "shop": delivery.shop_id if delivery else None,
        "topic": topic,
        "outcome": report.outcome.value,
        "duration_ms": round(seconds * 1000, 2),
    }
    if report.error:
        fields["error"] = report.error
    trouble = report.outcome in (Outcome.unavailable, Outcome.error)
    level = logging.WARNING if trouble else logging.INFO
    log.log(level, "delivery %s", report.outcome.value, extra={"fields": fields})


def _topic_label(topic: str | None) -> str:
    if topic is None:
        return "unknown"
    return topic if topic in HANDLERS else "other"
