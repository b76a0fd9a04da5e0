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

from app.db.database import Database, Transaction
from app.db.enums import DeliveryStatus
from app.webhooks.delivery import BadDelivery, Delivery
from app.webhooks.handlers import HANDLERS, Handler
from app.webhooks.handlers.base import PAYLOAD_REFUSED, Mismatch
from app.webhooks.ledger import Recording, lock, record
from app.webhooks.outcomes import Outcome
from app.webhooks.payloads import AnyObject, PayloadError, decode, payload_text


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
    try:
        return await handler.apply(database, recording, payload)
    except PAYLOAD_REFUSED as error:
        # The transaction rolled back, handler writes included; keep the delivery.
        return await _record(database, recording, DeliveryStatus.failed, _refusal(error))
    except Mismatch as error:
        return await _record(database, recording, DeliveryStatus.failed, str(error))


async def _record(
    database: Database, recording: Recording, status: DeliveryStatus, error: str | None = None
) -> Outcome:
    """Write just the ledger row (ignored and failed deliveries)."""

    async def write(tx: Transaction, recording: Recording, error: str | None) -> UUID | None:
        await lock(tx, recording.shop)
        return await record(tx, recording, status, error)

    try:
        ledger_id = await database.run_in_transaction(lambda tx: write(tx, recording, error))
    except PAYLOAD_REFUSED as refusal:
        # PostgreSQL cannot store this payload as jsonb (a \u0000, say): keep
        # the delivery without it rather than lose it.
        error = f"{error or 'payload refused'}; payload not stored: {_refusal(refusal)}"
        without_payload = recording.with_payload(None)
        ledger_id = await database.run_in_transaction(lambda tx: write(tx, without_payload, error))
    return Outcome.duplicate if ledger_id is None else Outcome(status.value)


def _refusal(error: asyncpg.PostgresError) -> str:
    return f"database refused the payload: {error.sqlstate} {error}"
