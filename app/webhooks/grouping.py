"""Applying customers/* and orders/* deliveries in groups: one call of ingest_deliveries each.

A delivery waits for its worker's next group (app/db/group_commit.py) and is
answered from its own outcome once the group has committed.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any
from weakref import WeakKeyDictionary

import asyncpg
import msgspec

from app.db.database import Database, DatabaseUnavailable
from app.db.group_commit import GroupCommit
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
    """What ingest_deliveries does with a delivery (migration "ingest_deliveries")."""

    order = "order"
    order_delete = "order_delete"
    customer = "customer"
    customer_delete = "customer_delete"


_DELIVERIES = SqlFunction("ingest_deliveries", ("lock_timeout_ms", "wait", "deliveries"))

# A delivery for ingest_deliveries, by field name (one it has not is NULL):
# `kind`, the ledger's fields (LEDGER_PARAMETERS), `scrubbed`, and what was
# read from its payload: an order's fields (order_shopify_id, total_price,
# current_total_price, currency, financial_status, fulfillment_status,
# cancelled_at, name, email, test, created_at, updated_at) and a customer's
# (customer_shopify_id, customer_email, customer_name, customer_phone,
# customer_tags, customer_has_tags, customer_created_at, customer_updated_at),
# a customer delivery's own or an order's nested one.
Arguments = dict[str, Any]

_encoder = msgspec.json.Encoder()
_group_commits: WeakKeyDictionary[Database, GroupCommit[bytes, asyncpg.Record]] = (
    WeakKeyDictionary()
)


async def apply_delivery(
    database: Database,
    kind: DeliveryKind,
    recording: Recording,
    values: Arguments,
    personal: Iterable[str] = (),
) -> Outcome:
    """Record and apply a customers/* or orders/* delivery, in a group with others.

    `values` are its fields beyond the ledger's (see Arguments). The delivery
    goes in the next group its worker sends (app/db/group_commit.py); the
    outcome is its own, once the group has committed.

    A delivery about a customer who has been redacted is turned back unwritten
    the first time; it is then recorded with its payload scrubbed and the
    `personal` values left out.
    """
    deadline = database.deadline()
    arguments = {**recording.values, **values, "kind": kind, "scrubbed": False}
    row = await _apply(database, _encode(arguments), deadline)
    if row["redacted"] and row["ledger_id"] is None:
        known = [arguments[name] for name in personal if isinstance(arguments[name], str)]
        if recording.payload is not None:
            arguments["payload"] = scrub_text(recording.payload, known)
        arguments.update(dict.fromkeys(personal), scrubbed=True)
        row = await _apply(database, _encode(arguments), deadline)
    return recorded_outcome(row)


def _encode(delivery: Arguments) -> bytes:
    """The delivery as JSON; its payload (JSON text already) goes in as it is."""
    payload = delivery["payload"]
    return _encoder.encode(
        {**delivery, "payload": None if payload is None else msgspec.Raw(payload)}
    )


async def _apply(database: Database, delivery: bytes, deadline: float) -> asyncpg.Record:
    """In the worker's next group; alone, waiting for its locks, if another transaction holds one.

    A group never waits for a lock (so that a held lock does not hold up the
    deliveries that do not need it): it leaves such a delivery out, `busy`.
    """
    row = await _group_commit(database).submit(delivery, deadline)
    if row["busy"]:
        [row] = await _apply_group(database, [delivery], deadline, wait=True)
    return row


def _group_commit(database: Database) -> GroupCommit[bytes, asyncpg.Record]:
    """The database's group commit in this event loop (each worker has its own)."""
    group_commit = _group_commits.get(database)
    if group_commit is None or group_commit.loop is not asyncio.get_running_loop():
        group_commit = _group_commits[database] = delivery_group_commit(database)
    return group_commit


def delivery_group_commit(database: Database, **options: Any) -> GroupCommit[bytes, asyncpg.Record]:
    """A group commit of deliveries (`_encode`d) through ingest_deliveries.

    `options` are GroupCommit's.
    """
    # Weak: the group commit is kept per database (_group_commits), and must not keep it alive.
    database_ref = weakref.ref(database)

    async def send(deliveries: Sequence[bytes], deadline: float) -> list[asyncpg.Record]:
        database = database_ref()
        if database is None:
            raise DatabaseUnavailable("the database is closed")
        return await _apply_group(database, deliveries, deadline, wait=False)

    options.setdefault("wait_limit", database.acquire_timeout)
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
