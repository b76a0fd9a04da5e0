"""Record and apply one delivery: live from Shopify, or replayed from the ledger.

Both paths use the same handlers. A delivery whose payload cannot be applied
is still recorded, as `failed` with the reason, so an operator can replay it
after a fix; nothing it would have written is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from app.db.database import Database, DatabaseUnavailable
from app.db.enums import DeliveryStatus
from app.webhooks.delivery import BadDelivery, Delivery
from app.webhooks.handlers import HANDLERS, Handler, Outcome
from app.webhooks.handlers.base import NeedsLocks
from app.webhooks.ledger import RECORD_ONLY, Recording
from app.webhooks.payloads import AnyObject, PayloadError, decode, payload_text

# PostgreSQL refusing a value the payload carried (a number out of range, a NUL
# character, a string too long...): the payload's fault, not the database's.
PAYLOAD_REFUSED = (
    asyncpg.DataError,
    asyncpg.CheckViolationError,
    asyncpg.NotNullViolationError,
    asyncpg.ProgramLimitExceededError,
)


@dataclass(frozen=True)
class StoredDelivery:
    """A ledger row, as replay needs it."""

    id: UUID
    shop_id: str
    topic: str
    triggered_at: datetime | None
    payload: str | None


async def ingest(database: Database, delivery: Delivery) -> Outcome:
    """Apply a verified delivery. Raises BadDelivery (400) or DatabaseUnavailable (503)."""
    text = payload_text(delivery.body)
    handler = HANDLERS.get(delivery.topic)
    if handler is None:
        decode(delivery.body, AnyObject)  # still refuse a body that is not JSON
        return await _record(database, Recording.live(delivery, text), DeliveryStatus.ignored)
    try:
        payload = decode(delivery.body, handler.payload_type)
    except PayloadError as error:
        recording = Recording.live(delivery, text)
        return await _record(database, recording, DeliveryStatus.failed, str(error))
    recording = Recording.live(delivery, handler.ledger_payload(payload, text))
    return await _apply(database, handler, recording, payload)


async def replay(database: Database, stored: StoredDelivery) -> Outcome:
    """Apply a stored delivery again, through the same handler as live traffic."""
    recording = Recording.of_stored(stored.id, stored.shop_id, stored.topic, stored.triggered_at)
    handler = HANDLERS.get(stored.topic)
    if handler is None:
        return await _record(database, recording, DeliveryStatus.ignored)
    if stored.payload is None:
        return await _record(database, recording, DeliveryStatus.failed, "no payload stored")
    try:
        payload = decode(stored.payload, handler.payload_type)
    except (PayloadError, BadDelivery) as error:
        return await _record(database, recording, DeliveryStatus.failed, str(error))
    return await _apply(database, handler, recording, payload)


async def _apply(
    database: Database, handler: Handler[Any], recording: Recording, payload: Any
) -> Outcome:
    locks = handler.locks(recording.shop_id, payload)
    try:
        # Fix: a handler may find it needs more locks (an order that moved to
        # another customer, see orders._recompute_totals); it rolls back and the
        # delivery runs once more with them. Twice, at most: Shopify waits 5 s.
        for _ in range(2):
            try:
                return await database.run_in_transaction(
                    lambda tx: handler.apply(tx, recording, payload),
                    locks,
                    statement_timeout=handler.statement_timeout,
                )
            except NeedsLocks as needs:
                locks = needs.locks
        raise DatabaseUnavailable("the delivery's rows kept changing hands; retry later")
    except PAYLOAD_REFUSED as error:
        # The transaction rolled back, handler writes included; keep the delivery.
        return await _record(database, recording, DeliveryStatus.failed, _refusal(error))


async def _record(
    database: Database, recording: Recording, status: DeliveryStatus, error: str | None = None
) -> Outcome:
    """Write just the ledger row (ignored and failed deliveries)."""
    statement = recording.statement(RECORD_ONLY)

    async def write(recording: Recording) -> Any:
        args = recording.args(statement, status, error)
        return await database.run_in_transaction(lambda tx: tx.fetchval(statement.text, *args))

    try:
        ledger_id = await write(recording)
    except PAYLOAD_REFUSED as refusal:
        # PostgreSQL cannot store this payload as jsonb (a \u0000, say): keep
        # the delivery without it rather than lose it.
        error = f"{error or 'payload refused'}; payload not stored: {_refusal(refusal)}"
        ledger_id = await write(recording.without_payload())
    return Outcome.duplicate if ledger_id is None else Outcome(status.value)


def _refusal(error: asyncpg.PostgresError) -> str:
    return f"database refused the payload: {error.sqlstate} {error}"
