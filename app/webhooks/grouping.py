"""Applying customers/* and orders/* deliveries in groups: one call of ingest_deliveries each.

A delivery waits for its worker's next group (app/db/group_commit.py) and is
answered from its own outcome once the group has committed.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID
from weakref import WeakKeyDictionary

import asyncpg
import msgspec

from app.db.database import Database, DatabaseUnavailable
from app.db.group_commit import MAX_IN_FLIGHT, GroupCommit
from app.db.sql import SqlFunction
from app.webhooks.handlers.base import PAYLOAD_REFUSED
from app.webhooks.ledger import Recording
from app.webhooks.outcomes import Outcome
from app.webhooks.privacy.scrub import scrub_text


def recorded_outcome(row: asyncpg.Record | None) -> Outcome:
    """The outcome from a delivery function's `ledger_id` and `applied`.

    No ledger id: the delivery was a duplicate. Not applied: it was stale.
    """
    if row is None or row["ledger_id"] is None:
        return Outcome.duplicate
    return Outcome.processed if row["applied"] else Outcome.stale


class DeliveryKind(StrEnum):
    """What ingest_deliveries does with a delivery."""

    order = "order"
    order_delete = "order_delete"
    customer = "customer"
    customer_delete = "customer_delete"


_DELIVERIES = SqlFunction("ingest_deliveries", ("lock_timeout_ms", "wait", "deliveries"))


class GroupItem(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """A delivery as ingest_deliveries reads it (app/db/functions/ingest_deliveries.sql).

    A field left at its default (None) is left out of the JSON: NULL there.
    tests/unit/test_group_item.py checks the fields against the function's.
    """

    kind: DeliveryKind
    # The ledger's, set by apply_delivery from the Recording.
    ledger_id: UUID | None = None
    shop: str | None = None
    webhook_id: str | None = None
    event_id: str | None = None
    topic: str | None = None
    api_version: str | None = None
    triggered_at: datetime | None = None
    payload: msgspec.Raw | None = None  # the body, JSON already
    # False, then True when sent again with the payload scrubbed (set by apply_delivery).
    scrubbed: bool | None = None
    # An order's.
    order_shopify_id: str | None = None
    total_price: Decimal | None = None
    current_total_price: Decimal | None = None
    currency: str | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    cancelled_at: datetime | None = None
    name: str | None = None
    email: str | None = None
    test: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # A customer's: a customer delivery's own, or an order's nested one.
    customer_shopify_id: str | None = None
    customer_email: str | None = None
    customer_name: str | None = None
    customer_phone: str | None = None
    customer_tags: list[str] | None = None
    customer_has_tags: bool | None = None
    customer_created_at: datetime | None = None
    customer_updated_at: datetime | None = None


_encoder = msgspec.json.Encoder()
# A delivery in a group commit: its shop and its GroupItem as JSON.
Delivery = tuple[str, bytes]
# Per database: the group commit of deliveries that take only free locks, and
# that of those that found one held and wait for their locks.
_group_commits: WeakKeyDictionary[Database, GroupCommit[Delivery, asyncpg.Record]] = (
    WeakKeyDictionary()
)
_waiting_group_commits: WeakKeyDictionary[Database, GroupCommit[Delivery, asyncpg.Record]] = (
    WeakKeyDictionary()
)


async def apply_delivery(
    database: Database,
    recording: Recording,
    item: GroupItem,
    personal: Iterable[str] = (),
) -> Outcome:
    """Record and apply a customers/* or orders/* delivery, in a group with others.

    `item` holds what was read from its payload; the ledger's fields come from
    `recording`. The delivery goes in the next group its worker sends
    (app/db/group_commit.py); the outcome is its own, once the group has
    committed.

    A delivery about a customer who has been redacted is turned back unwritten
    the first time; it is then recorded with its payload scrubbed and the
    `personal` fields (of GroupItem) left out.
    """
    deadline = database.deadline()
    delivery = msgspec.structs.replace(
        item,
        ledger_id=recording.ledger_id,
        shop=recording.shop,
        webhook_id=recording.webhook_id,
        event_id=recording.event_id,
        topic=recording.topic,
        api_version=recording.api_version,
        triggered_at=recording.triggered_at,
        payload=_raw(recording.payload),
        scrubbed=False,
    )
    row = await _apply(database, (recording.shop, _encoder.encode(delivery)), deadline)
    if row["redacted"] and row["ledger_id"] is None:
        known = [value for name in personal if isinstance(value := getattr(delivery, name), str)]
        payload = None if recording.payload is None else scrub_text(recording.payload, known)
        scrubbed = msgspec.structs.replace(
            delivery, **dict.fromkeys(personal), payload=_raw(payload), scrubbed=True
        )
        row = await _apply(database, (recording.shop, _encoder.encode(scrubbed)), deadline)
    return recorded_outcome(row)


def _raw(payload: str | None) -> msgspec.Raw | None:
    """The body, JSON text already, to go into the item's JSON as it is."""
    return None if payload is None else msgspec.Raw(payload)


async def _apply(database: Database, delivery: Delivery, deadline: float) -> asyncpg.Record:
    """In the worker's next group; if another transaction holds one of its locks, in the
    next group of those that wait for their locks.

    A group never waits for a lock (so that a held lock does not hold up the
    deliveries that do not need it): it leaves such a delivery out, `busy`.
    The busy ones then go together, in groups that wait for their locks (in
    every writer's order), instead of one transaction each: many deliveries
    about one customer queue in a few transactions, not hundreds.
    """
    per_shop = await database.on_citus(deadline)
    group_commit = _group_commit(database, _group_commits, wait=False, per_shop=per_shop)
    row = await group_commit.submit(delivery, deadline)
    if row["busy"]:
        waiting = _group_commit(database, _waiting_group_commits, wait=True, per_shop=per_shop)
        row = await waiting.submit(delivery, deadline)
    return row


def _max_in_flight(database: Database, wait: bool) -> int:
    """Calls in flight at most: waiting groups spend their time waiting for locks, so as
    many as the pool allows may wait at once (as many single deliveries would)."""
    return database.pool_size if wait else MAX_IN_FLIGHT


def _group_commit(
    database: Database,
    kept: WeakKeyDictionary[Database, GroupCommit[Delivery, asyncpg.Record]],
    *,
    wait: bool,
    per_shop: bool,
) -> GroupCommit[Delivery, asyncpg.Record]:
    """The database's group commit in this event loop (each worker has its own)."""
    group_commit = kept.get(database)
    if group_commit is None or group_commit.loop is not asyncio.get_running_loop():
        group_commit = kept[database] = delivery_group_commit(
            database,
            wait=wait,
            per_shop=per_shop,
            max_in_flight=_max_in_flight(database, wait),
        )
    return group_commit


def _shop_of(delivery: Delivery) -> str:
    return delivery[0]


def delivery_group_commit(
    database: Database, *, wait: bool = False, per_shop: bool = False, **options: Any
) -> GroupCommit[Delivery, asyncpg.Record]:
    """A group commit of deliveries (GroupItems as JSON) through ingest_deliveries.

    With `wait`, its groups wait for their locks; without, they leave out the
    deliveries whose locks are held (`busy`). With `per_shop` (on Citus), a
    group holds one shop's deliveries: its statements then go to that shop's
    node alone, and it commits there without a two-phase commit. `options`
    are GroupCommit's.
    """
    # Weak: the group commit is kept per database (_group_commits), and must not keep it alive.
    database_ref = weakref.ref(database)

    async def send(deliveries: Sequence[Delivery], deadline: float) -> list[asyncpg.Record]:
        database = database_ref()
        if database is None:
            raise DatabaseUnavailable("the database is closed")
        items = [item for _, item in deliveries]
        return await _apply_group(database, items, deadline, wait=wait)

    options.setdefault("wait_limit", database.acquire_timeout)
    if per_shop:
        options.setdefault("key", _shop_of)
    return GroupCommit(send, alone_on=_payload_refused, **options)


async def _apply_group(
    database: Database, deliveries: Sequence[bytes], deadline: float, *, wait: bool
) -> list[asyncpg.Record]:
    """One call of ingest_deliveries: every delivery of the group, or none, committed.

    Without `wait`, the deliveries whose locks other transactions hold are
    left out (`busy`).
    """
    group = b"[" + b",".join(deliveries) + b"]"
    rows = await database.fetch(
        _DELIVERIES.sql, database.lock_timeout_ms, wait, group.decode(), deadline=deadline
    )
    return sorted(rows, key=lambda row: row["item"])


def _payload_refused(error: BaseException) -> bool:
    return isinstance(error, PAYLOAD_REFUSED)
