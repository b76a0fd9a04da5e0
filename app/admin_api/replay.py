"""Replay: apply stored deliveries again, through the same handlers as live traffic.

Used after a fix, typically for `failed` deliveries. Only stored payloads are
replayed. Deliveries are applied one at a time in the order Shopify triggered
them (then the order they were received), each in its own transaction; the
staleness rules make replaying already-applied deliveries change no data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from app.admin_api.events import (
    EventFilter,
    cursor_time,
    cursor_uuid,
    decode_cursor,
    encode_cursor,
)
from app.db.database import Connection, Database
from app.observability import metrics
from app.webhooks.ingest import StoredDelivery, replay
from app.webhooks.outcomes import Outcome

DEFAULT_REPLAY_LIMIT = 1000
MAX_REPLAY_LIMIT = 10_000
_PAYLOAD_BATCH = 100

# Replay order. A delivery without X-Shopify-Triggered-At sorts by when it arrived.
_ORDER_KEY = "coalesce(triggered_at, received_at)"


class ReplayedDelivery(msgspec.Struct):
    id: UUID
    webhook_id: str
    topic: str


class ReplayReport(msgspec.Struct):
    """What a replay did (or, on a dry run, would do): counts by outcome and the failed ids."""

    dry_run: bool
    matched: int = 0
    processed: int = 0
    stale: int = 0
    failed: int = 0
    ignored: int = 0
    erasing: int = 0  # redacts replayed whose erasure finishes in the background
    missing: int = 0  # deleted since it was selected (shop/redact)
    failed_ids: list[UUID] = msgspec.field(default_factory=list)
    deliveries: list[ReplayedDelivery] = msgspec.field(default_factory=list)
    next_cursor: str | None = None

    @property
    def done(self) -> int:
        return (
            self.processed + self.stale + self.failed + self.ignored + self.erasing + self.missing
        )

    def count(self, delivery_id: UUID, outcome: Outcome) -> None:
        if outcome is Outcome.duplicate:
            self.missing += 1
            return
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)
        if outcome is Outcome.failed:
            self.failed_ids.append(delivery_id)


async def replay_deliveries(
    database: Database,
    where: EventFilter,
    *,
    limit: int = DEFAULT_REPLAY_LIMIT,
    cursor: str | None = None,
    dry_run: bool = False,
    on_progress: Callable[[ReplayReport], None] | None = None,
) -> ReplayReport:
    async with database.reading() as connection:
        selected, next_cursor = await _select(connection, where, limit, cursor)
    report = ReplayReport(dry_run=dry_run, matched=len(selected), next_cursor=next_cursor)
    report.deliveries = [
        ReplayedDelivery(row["id"], row["webhook_id"], row["topic"]) for row in selected
    ]
    if dry_run:
        return report
    for start in range(0, len(selected), _PAYLOAD_BATCH):
        batch = selected[start : start + _PAYLOAD_BATCH]
        payloads = await _payloads(database, batch)
        for row in batch:
            outcome = await replay(database, _stored(row, payloads.get(row["id"])))
            report.count(row["id"], outcome)
            metrics.REPLAYED.labels(outcome=outcome.value).inc()
            if on_progress:
                on_progress(report)
    return report


async def _select(
    connection: Connection, where: EventFilter, limit: int, cursor: str | None
) -> tuple[Sequence[asyncpg.Record], str | None]:
    args: list[Any] = []
    conditions = where.conditions(args)
    if cursor:
        order_key, received_at, event_id = decode_cursor(cursor, 3)
        args += [cursor_time(order_key), cursor_time(received_at), cursor_uuid(event_id)]
        conditions.append(
            f"({_ORDER_KEY}, received_at, id) > (${len(args) - 2}, ${len(args) - 1}, ${len(args)})"
        )
    args.append(limit + 1)
    where_sql = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await connection.fetch(
        f"SELECT id, shop_id, webhook_id, topic, triggered_at, received_at,"  # noqa: S608
        f" {_ORDER_KEY} AS order_key FROM webhook_events {where_sql}"
        f" ORDER BY {_ORDER_KEY}, received_at, id LIMIT ${len(args)}",
        *args,
    )
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    cursor = encode_cursor(
        last["order_key"].isoformat(), last["received_at"].isoformat(), last["id"]
    )
    return rows[:limit], cursor


async def _payloads(
    database: Database, selected: Sequence[asyncpg.Record]
) -> dict[UUID, str | None]:
    """The stored payloads of the selected rows, read shop by shop (on Citus: a shard each)."""
    by_shop: dict[str, list[UUID]] = {}
    for row in selected:
        by_shop.setdefault(row["shop_id"], []).append(row["id"])
    payloads: dict[UUID, str | None] = {}
    async with database.reading() as connection:
        for shop, ids in by_shop.items():
            rows = await connection.fetch(
                "SELECT id, payload::text AS payload FROM webhook_events"
                " WHERE shop_id = $1 AND id = ANY($2::uuid[])",
                shop,
                ids,
            )
            payloads.update((row["id"], row["payload"]) for row in rows)
    return payloads


def _stored(row: asyncpg.Record, payload: str | None) -> StoredDelivery:
    return StoredDelivery(
        id=row["id"],
        shop_id=row["shop_id"],
        topic=row["topic"],
        triggered_at=row["triggered_at"],
        payload=payload,
    )
