"""Reading the ledger: filtered, keyset-paginated listings of recorded deliveries."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from app.admin_api.schemas import EventPage
from app.db.database import Connection
from app.db.enums import DeliveryStatus
from app.http.errors import BadRequest
from app.webhooks.recorded import EVENT_COLUMNS, Event, event_of

MAX_LIST_LIMIT = 1000


class InvalidCursor(BadRequest, ValueError):
    pass


@dataclass(frozen=True)
class EventFilter:
    """Which ledger rows: every given criterion must match."""

    shop: str | None = None
    topic: str | None = None
    status: DeliveryStatus | None = None
    since: datetime | None = None
    until: datetime | None = None
    webhook_ids: Sequence[str] = ()
    event_id: str | None = None
    ids: Sequence[UUID] = ()

    def matches_everything(self) -> bool:
        return not self.conditions([])

    def conditions(self, args: list[Any]) -> list[str]:
        """SQL conditions, with their values appended to `args` as $n parameters."""

        def param(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        conditions = []
        if self.shop:
            conditions.append(f"shop_id = {param(self.shop)}")
        if self.topic:
            conditions.append(f"topic = {param(self.topic)}")
        if self.status:
            conditions.append(f"status = {param(self.status.value)}")
        if self.since:
            conditions.append(f"received_at >= {param(self.since)}")
        if self.until:
            conditions.append(f"received_at < {param(self.until)}")
        if self.webhook_ids:
            conditions.append(f"webhook_id = ANY({param(list(self.webhook_ids))})")
        if self.event_id:
            conditions.append(f"event_id = {param(self.event_id)}")
        if self.ids:
            conditions.append(f"id = ANY({param(list(self.ids))}::uuid[])")
        return conditions


def encode_cursor(*values: Any) -> str:
    text = json.dumps([str(value) for value in values])
    return base64.urlsafe_b64encode(text.encode()).decode()


# Cursors this service issues are a few dozen characters long.
MAX_CURSOR_LENGTH = 1000


def decode_cursor(cursor: str, count: int) -> list[str]:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("cursor is not one this service issued")
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, RecursionError, UnicodeEncodeError):
        # RecursionError: a cursor of nested brackets; UnicodeEncodeError: a lone surrogate.
        raise InvalidCursor("cursor is not one this service issued") from None
    if not isinstance(values, list) or len(values) != count:
        raise InvalidCursor("cursor is not one this service issued")
    if not all(isinstance(value, str) for value in values):
        raise InvalidCursor("cursor is not one this service issued")
    return values


async def list_events(
    connection: Connection,
    where: EventFilter,
    *,
    limit: int,
    cursor: str | None = None,
    with_payload: bool = False,
) -> EventPage:
    """Newest first, by (received_at, id); `cursor` continues a previous page."""
    args: list[Any] = []
    conditions = where.conditions(args)
    if cursor:
        received_at, event_id = decode_cursor(cursor, 2)
        args += [cursor_time(received_at), cursor_uuid(event_id)]
        conditions.append(f"(received_at, id) < (${len(args) - 1}, ${len(args)})")
    columns = EVENT_COLUMNS + (", payload::text AS payload" if with_payload else "")
    args.append(limit + 1)
    rows = await connection.fetch(
        f"SELECT {columns} FROM webhook_events {_where(conditions)}"  # noqa: S608
        f" ORDER BY received_at DESC, id DESC LIMIT ${len(args)}",
        *args,
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["received_at"].isoformat(), rows[-1]["id"])
    return EventPage([event_of(row) for row in rows], next_cursor)


async def get_event(connection: Connection, event_id: UUID) -> Event | None:
    row = await connection.fetchrow(
        f"SELECT {EVENT_COLUMNS}, payload::text AS payload FROM webhook_events WHERE id = $1",  # noqa: S608
        event_id,
    )
    return None if row is None else event_of(row)


def _where(conditions: list[str]) -> str:
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


def cursor_time(value: str) -> datetime:
    try:
        # In UTC: an offset that pushes the time out of datetime's range fails here,
        # not in the driver.
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidCursor("cursor is not one this service issued") from None


def cursor_uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise InvalidCursor("cursor is not one this service issued") from None
