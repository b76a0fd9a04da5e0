"""Reading customer_events in the order they become visible, behind an opaque cursor.

Event ids come from a sequence: unique, increasing in the order events are
written, but transactions commit in another order, so an event with a lower id
can become visible after one with a higher id. Readers therefore go by
(transaction_id, id) and read only events written by transactions older than
the oldest one still running (pg_snapshot_xmin): every event that can still
appear comes after what was read, and a position, once passed, never has
anything appear behind it.

Transaction ids are counted by each node: a shop's events are all on its
node, so the feed needs one position per shop; the relay reads every shop,
so on a Citus cluster it keeps a position per node group (`node_group`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import msgspec

from app.db.database import Connection
from app.db.enums import CustomerEventKind
from app.http.errors import BadRequest

MAX_PAGE = 1000


class InvalidCursor(BadRequest, ValueError):
    pass


@dataclass(frozen=True, order=True)
class Position:
    """Where a reader stands: after the event (epoch, transaction_id, event_id).

    The epoch is the shop's (customer_events_epoch): always 0 on one PostgreSQL,
    where a cursor holds the other two alone. The relay keeps it 0: it reads by
    node group instead.
    """

    epoch: int = 0
    transaction_id: int = 0
    event_id: int = 0

    def cursor(self) -> str:
        text = f"{self.transaction_id}.{self.event_id}"
        if self.epoch:
            text = f"{self.epoch}.{text}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


_CURSOR = re.compile(r"(?:(\d{1,9})\.)?(\d{1,19})\.(\d{1,19})")
MAX_CURSOR_LENGTH = 64


def position_of(cursor: str | None) -> Position:
    """The position a cursor this service issued stands for; BadRequest for any other."""
    if not cursor:
        return Position()
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError(cursor)
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidCursor("cursor is not one this service issued") from None
    match = _CURSOR.fullmatch(text)
    if match is None or max(int(match[2]), int(match[3])) >= 2**63:
        raise InvalidCursor("cursor is not one this service issued")
    return Position(int(match[1] or 0), int(match[2]), int(match[3]))


class EventData(msgspec.Struct, omit_defaults=True):
    """What an event says, by kind; fields that do not apply are left out.

    first_order: order_id, order_created_at. tag_added: tag. segment_change:
    from, to (left out when the customer had, or now has, no segment).
    """

    order_id: str | None = None
    order_created_at: datetime | None = None
    tag: str | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    to: str | None = None


class CustomerEvent(msgspec.Struct):
    """One change to a customer, as the feed and the relay give it."""

    id: int
    shop: str
    customer_id: str  # the customer's Shopify id
    kind: CustomerEventKind
    occurred_at: datetime
    data: EventData


_decode_data = msgspec.json.Decoder(EventData)

# The oldest transaction still running: events of older ones are all visible.
_HORIZON = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
_COLUMNS = (
    "e.id, e.epoch, e.transaction_id, e.shop_id, e.customer_shopify_id, e.kind, e.occurred_at"
)

# A shop's events after a position (of the kinds asked for), and the shop's
# last visible event of any kind: when fewer than $5 match, the reader has
# seen everything up to it. Nothing of an erased shop. By epoch first: on
# Citus, events written before the shop's shards moved keep the old node's
# transaction ids (and group), all committed, so only the events of the node
# answering (the shop's worker, which runs the whole statement) wait for its
# horizon.
_SHOP_PAGE = f"""
WITH horizon AS (SELECT {_HORIZON} AS xmin, customer_events_node_group() AS node_group),
erased AS (SELECT EXISTS (SELECT FROM shops WHERE shop_id = $1 AND redacted_at IS NOT NULL) AS yes)
SELECT {_COLUMNS}, e.data::text AS data, false AS last
FROM (
    SELECT e.* FROM customer_events AS e, horizon AS h, erased
    WHERE e.shop_id = $1 AND (e.epoch, e.transaction_id, e.id) > ($2, $3, $4)
      AND (e.transaction_id < h.xmin OR e.node_group <> h.node_group)
      AND ($6::text[] IS NULL OR e.kind = ANY ($6::text[])) AND NOT erased.yes
    ORDER BY e.epoch, e.transaction_id, e.id
    LIMIT $5
) AS e
UNION ALL
SELECT * FROM (
    SELECT {_COLUMNS}, NULL, true
    FROM customer_events AS e, horizon AS h
    WHERE e.shop_id = $1 AND (e.transaction_id < h.xmin OR e.node_group <> h.node_group)
    ORDER BY e.epoch DESC, e.transaction_id DESC, e.id DESC
    LIMIT 1
) AS latest
"""  # noqa: S608 (constant fragments)

# Every shop's events of one node group after a position and below that
# group's horizon, for the relay; those of an erased shop are read (to move
# past them) but not relayed.
_GROUP_PAGE = f"""
SELECT {_COLUMNS}, e.data::text AS data, s.redacted_at IS NOT NULL AS erased
FROM customer_events AS e
LEFT JOIN shops AS s ON s.shop_id = e.shop_id
WHERE e.node_group = $1 AND (e.transaction_id, e.id) > ($2, $3) AND e.transaction_id < $4
ORDER BY e.transaction_id, e.id
LIMIT $5
"""  # noqa: S608 (constant fragments)
_HORIZONS = "SELECT node_group, horizon FROM customer_events_horizons()"


def _event(row: asyncpg.Record) -> CustomerEvent:
    return CustomerEvent(
        id=row["id"],
        shop=row["shop_id"],
        customer_id=row["customer_shopify_id"],
        kind=CustomerEventKind(row["kind"]),
        occurred_at=row["occurred_at"],
        data=_decode_data.decode(row["data"]),
    )


def _position(row: asyncpg.Record) -> Position:
    return Position(row["epoch"], row["transaction_id"], row["id"])


@dataclass(frozen=True)
class ShopPage:
    events: list[CustomerEvent]
    next: Position


async def shop_page(
    connection: Connection,
    shop: str,
    after: Position,
    limit: int,
    kinds: Sequence[CustomerEventKind] | None = None,
) -> ShopPage:
    """The shop's visible events after `after`, oldest first, and where to go on from."""
    rows = await connection.fetch(
        _SHOP_PAGE,
        shop,
        after.epoch,
        after.transaction_id,
        after.event_id,
        limit,
        [kind.value for kind in kinds] if kinds else None,
    )
    page = [row for row in rows if not row["last"]]
    events = [_event(row) for row in page]
    if len(page) == limit:
        return ShopPage(events, _position(page[-1]))
    # Fewer than asked for: every visible event up to the shop's last was looked at.
    seen = [_position(row) for row in rows if row["last"]]
    return ShopPage(events, max([after, *seen, *(_position(row) for row in page)]))


@dataclass(frozen=True)
class RelayEvent:
    position: Position
    event: CustomerEvent
    erased: bool


async def horizons(connection: Connection) -> dict[int, int]:
    """Each node group's horizon (customer_events_horizons): one group on one PostgreSQL,
    one per node on Citus, whose transaction ids are each node's own."""
    return {row["node_group"]: row["horizon"] for row in await connection.fetch(_HORIZONS)}


async def relay_page(
    connection: Connection, node_group: int, after: Position, horizon: int, limit: int
) -> list[RelayEvent]:
    """The node group's events after `after` and below its `horizon`, oldest first."""
    rows = await connection.fetch(
        _GROUP_PAGE, node_group, after.transaction_id, after.event_id, horizon, limit
    )
    return [
        RelayEvent(Position(0, row["transaction_id"], row["id"]), _event(row), row["erased"])
        for row in rows
    ]
