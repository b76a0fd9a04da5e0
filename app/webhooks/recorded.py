"""A recorded delivery (a ledger row) as answers show it: the admin API, the CLI, exports."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from app.db.enums import DeliveryStatus
from app.db.rows import from_row

EVENT_COLUMNS = (
    "id, shop_id, webhook_id, event_id, topic, api_version, triggered_at, received_at,"
    " status, attempts, last_error, processed_at"
)


class Event(msgspec.Struct):
    """A recorded delivery (a ledger row). `payload` only when asked for."""

    id: UUID
    shop_id: str
    webhook_id: str
    topic: str
    received_at: datetime
    status: DeliveryStatus | None
    event_id: str | None = None
    api_version: str | None = None
    triggered_at: datetime | None = None
    attempts: int | None = None
    last_error: str | None = None
    processed_at: datetime | None = None
    payload: msgspec.Raw | msgspec.UnsetType | None = msgspec.UNSET


def event_of(row: asyncpg.Record) -> Event:
    """A ledger row as an answer, with its payload (when selected) as raw JSON."""
    return from_row(Event, row, raw_json=("payload",) if "payload" in row else ())
