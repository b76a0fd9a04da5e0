"""The ledger (webhook_events): what every delivery's row is written from.

The frequent topics write their ledger row inside their SQL function
(ingest_deliveries, app/db/functions/); the others call
`ingest_record` from Python. Either way the row is written first, and a
duplicate webhook id stops the delivery before anything else is written.
Live deliveries insert a new row; replays update the stored one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from app.db.database import Transaction
from app.db.enums import DeliveryStatus
from app.db.sql import SqlFunction
from app.webhooks.delivery import Delivery

# The ledger's arguments, which every delivery function takes.
LEDGER_PARAMETERS = (
    "ledger_id",
    "shop",
    "webhook_id",
    "event_id",
    "topic",
    "api_version",
    "triggered_at",
    "payload",
)

RECORD = SqlFunction(
    "ingest_record", (*LEDGER_PARAMETERS, "status", "last_error"), columns="ledger_id"
)
# Select-list items run left to right: the shop, then orders, then customers.
LOCK = (
    "SELECT ingest_lock_shop($1, $2, $5), ingest_lock_rows($1, 'order', $3),"
    " ingest_lock_rows($1, 'customer', $4)"
)


@dataclass(frozen=True)
class Recording:
    """A delivery's ledger row to write: a new one (live) or the stored one (replay, by id)."""

    ledger_id: UUID | None
    shop: str
    topic: str
    webhook_id: str | None = None
    event_id: str | None = None
    api_version: str | None = None
    triggered_at: datetime | None = None
    # The body as the ledger keeps it (live only: a replay never rewrites it).
    payload: str | None = None

    @classmethod
    def live(cls, delivery: Delivery, payload: str) -> Recording:
        return cls(
            ledger_id=None,
            shop=delivery.shop_id,
            topic=delivery.topic,
            webhook_id=delivery.webhook_id,
            event_id=delivery.event_id,
            api_version=delivery.api_version,
            triggered_at=delivery.triggered_at,
            payload=payload,
        )

    @classmethod
    def of_stored(
        cls, ledger_id: UUID, shop: str, topic: str, triggered_at: datetime | None
    ) -> Recording:
        return cls(ledger_id=ledger_id, shop=shop, topic=topic, triggered_at=triggered_at)

    @property
    def values(self) -> dict[str, Any]:
        """The LEDGER_PARAMETERS of a delivery function call."""
        return {name: getattr(self, name) for name in LEDGER_PARAMETERS}

    def with_payload(self, payload: str | None) -> Recording:
        return replace(self, payload=payload)


async def lock(
    tx: Transaction,
    shop: str,
    *,
    orders: list[str] | None = None,
    customers: list[str] | None = None,
    whole_shop: bool = False,
) -> None:
    """Take a delivery's advisory locks (shop, then orders, then customers: ingest_lock_keys)."""
    await tx.execute(LOCK, shop, whole_shop, orders or [], customers or [], tx.lock_timeout_ms)


async def record(
    tx: Transaction,
    recording: Recording,
    status: DeliveryStatus = DeliveryStatus.processed,
    last_error: str | None = None,
) -> UUID | None:
    """Write the ledger row; None when the webhook id was recorded before (a duplicate)."""
    values = {**recording.values, "status": status.value, "last_error": last_error}
    row = await tx.fetchrow(RECORD.sql, *RECORD.args(values))
    return None if row is None else row["ledger_id"]
