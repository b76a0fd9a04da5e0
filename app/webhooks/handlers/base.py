"""What every topic handler is made of."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

import asyncpg
import msgspec

from app.db.database import Database, DatabaseUnavailable, Transaction
from app.db.group_commit import GroupCommit
from app.db.sql import SqlFunction
from app.webhooks.ledger import Recording
from app.webhooks.outcomes import Outcome
from app.webhooks.scrub import scrub_text

P = TypeVar("P")

# PostgreSQL refusing a value the payload carried (a number out of range, a NUL
# character, a string too long...): the payload's fault, not the database's.
PAYLOAD_REFUSED = (
    asyncpg.DataError,
    asyncpg.CheckViolationError,
    asyncpg.NotNullViolationError,
    asyncpg.ProgramLimitExceededError,
)


class Mismatch(Exception):
    """The payload contradicts the delivery's headers or what is known of its shop.

    Raised inside a handler's transaction (which then rolls back): the
    delivery is recorded as `failed` with the reason and answered 200, since
    a retry of the same delivery cannot fix it.
    """


# The numeric shop id stored for a domain (app/uninstalled and the privacy topics record it).
_KNOWN_SHOP_ID = "SELECT shopify_shop_id FROM shops WHERE shop_id = $1"


async def check_shop(tx: Transaction, shop: str, domain: str | None, shopify_shop_id: int) -> None:
    """The body must name the header's shop, and the numeric id known for it (if any).

    The signature covers the body only: a signed body of one shop re-sent
    with another shop's domain in X-Shopify-Shop-Domain is refused here.
    """
    if domain is not None and domain.strip().lower() != shop:
        raise Mismatch(f"the payload is about shop {domain[:255]!r}, the header names {shop!r}")
    known = await tx.fetchval(_KNOWN_SHOP_ID, shop)
    if known is not None and known != str(shopify_shop_id):
        raise Mismatch(f"the payload's shop id {shopify_shop_id} is not {shop}'s known id {known}")


def keep_payload(payload: object, text: str) -> str:
    return text


@dataclass(frozen=True)
class Handler(Generic[P]):
    """How one topic is applied.

    `apply` writes the ledger row and the topic's changes in one transaction,
    and returns the outcome. `ledger_payload` decides what the ledger keeps of
    the body.
    """

    payload_type: type[P]
    apply: Callable[[Database, Recording, P], Awaitable[Outcome]]
    ledger_payload: Callable[[P, str], str] = keep_payload


def in_transaction(
    work: Callable[[Transaction, Recording, P], Awaitable[Outcome]],
    statement_timeout: float | None = None,
) -> Callable[[Database, Recording, P], Awaitable[Outcome]]:
    """An `apply` running `work`, a handler written as several statements, in one transaction.

    `statement_timeout` (seconds) overrides DB_STATEMENT_TIMEOUT, for topics
    that may touch a whole shop's data.
    """

    async def apply(database: Database, recording: Recording, payload: P) -> Outcome:
        return await database.run_in_transaction(
            lambda tx: work(tx, recording, payload), statement_timeout=statement_timeout
        )

    return apply


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
