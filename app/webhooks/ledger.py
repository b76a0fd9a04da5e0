"""The ledger (webhook_events): how a delivery's row is written.

Every statement that applies a delivery starts with a `recorded` CTE that
writes the ledger row, and a `shop` CTE that makes sure the shop is known.
The topic's writes follow in the same statement and select `FROM recorded`,
so a duplicate delivery (its ledger insert does nothing) changes nothing.
One statement instead of three saves the round trips that dominate the cost
of a delivery.

Live deliveries insert a new row; replays update the stored one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from app.db.enums import DeliveryStatus
from app.db.sql import Statement
from app.webhooks.delivery import Delivery

_INSERT = """
recorded AS (
    INSERT INTO webhook_events (shop_id, webhook_id, event_id, topic, api_version,
                                triggered_at, payload, status, attempts, last_error, processed_at)
    VALUES (:shop_id, :webhook_id, :event_id, :topic, :api_version,
            :triggered_at, :payload::jsonb, :status, 1, :last_error, now())
    ON CONFLICT (shop_id, webhook_id) DO NOTHING
    RETURNING id
)"""

_UPDATE = """
recorded AS (
    UPDATE webhook_events
    SET status = :status, attempts = coalesce(attempts, 0) + 1,
        last_error = :last_error, processed_at = now()
    WHERE id = :ledger_id
    RETURNING id
)"""

# Shops are inserted, never updated here: an update would lock the shop's row
# and queue every delivery of that shop behind one another.
_SHOP = """
shop AS (
    INSERT INTO shops (shop_id, first_seen_at)
    SELECT :shop_id::varchar, now() FROM recorded
    ON CONFLICT (shop_id) DO NOTHING
)"""

# The SELECT for a statement that only records the delivery.
RECORD_ONLY = "SELECT (SELECT id FROM recorded) AS ledger_id"


@dataclass(frozen=True)
class Recording:
    """The ledger write that opens a statement: a new row (live) or the stored row (replay)."""

    shop_id: str
    topic: str
    replay: bool
    values: dict[str, Any]

    @classmethod
    def live(cls, delivery: Delivery, payload: str | None) -> Recording:
        return cls(
            shop_id=delivery.shop_id,
            topic=delivery.topic,
            replay=False,
            values={
                "shop_id": delivery.shop_id,
                "webhook_id": delivery.webhook_id,
                "event_id": delivery.event_id,
                "topic": delivery.topic,
                "api_version": delivery.api_version,
                "triggered_at": delivery.triggered_at,
                "payload": payload,
            },
        )

    @classmethod
    def of_stored(
        cls, ledger_id: UUID, shop_id: str, topic: str, triggered_at: datetime | None
    ) -> Recording:
        return cls(
            shop_id=shop_id,
            topic=topic,
            replay=True,
            values={"shop_id": shop_id, "ledger_id": ledger_id, "triggered_at": triggered_at},
        )

    def statement(self, select: str, *ctes: str) -> Statement:
        """`WITH recorded, shop, <ctes> <select>`; the CTEs write `FROM recorded`."""
        return _compiled(self.replay, ctes, select)

    def args(
        self,
        statement: Statement,
        status: DeliveryStatus = DeliveryStatus.processed,
        last_error: str | None = None,
        **values: Any,
    ) -> list[Any]:
        return statement.args(
            {**self.values, "status": status.value, "last_error": last_error, **values}
        )

    def without_payload(self) -> Recording:
        """The same recording with the payload left out (when PostgreSQL cannot store it)."""
        return Recording(self.shop_id, self.topic, self.replay, {**self.values, "payload": None})


@cache
def _compiled(replay: bool, ctes: tuple[str, ...], select: str) -> Statement:
    record = _UPDATE if replay else _INSERT
    return Statement("WITH " + ",".join((record, _SHOP, *ctes)) + "\n" + select)
