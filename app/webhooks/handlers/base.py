"""What every topic handler is made of, and the locks deliveries take."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

import asyncpg

from app.db.database import Locks, Transaction
from app.webhooks.ledger import Recording

P = TypeVar("P")


class Outcome(StrEnum):
    """What became of one delivery (also the `status` of the HTTP answer)."""

    processed = "processed"
    stale = "stale"  # recorded, but older than the stored data: nothing changed
    duplicate = "duplicate"  # this webhook id was recorded before: nothing changed
    failed = "failed"  # recorded, but the payload could not be applied
    ignored = "ignored"  # recorded; no handler for this topic


def keep_payload(payload: object, text: str) -> str:
    return text


@dataclass(frozen=True)
class Handler(Generic[P]):
    """How one topic is applied.

    `apply` writes the ledger row and the topic's changes inside one transaction
    (see app.webhooks.ledger), and returns the outcome. It runs with `locks`
    held; `ledger_payload` decides what the ledger keeps of the body.
    """

    payload_type: type[P]
    locks: Callable[[str, P], Locks]
    apply: Callable[[Transaction, Recording, P], Awaitable[Outcome]]
    ledger_payload: Callable[[P, str], str] = keep_payload
    # Seconds; None means DB_STATEMENT_TIMEOUT. Only for topics that may touch
    # a whole shop's data.
    statement_timeout: float | None = None


class NeedsLocks(Exception):
    """The delivery turned out to need more locks than `Handler.locks` gave it.

    Raised inside the handler's transaction, which rolls back; ingest runs the
    delivery again with `locks` taken when the transaction begins, in the
    global order (see delivery_locks).
    """

    def __init__(self, locks: Locks) -> None:
        super().__init__("the delivery needs more locks")
        self.locks = locks


def recorded_outcome(row: asyncpg.Record | None) -> Outcome:
    """The outcome of a handler statement, from the `ledger_id` and `applied` it selects.

    No ledger id: the delivery was a duplicate. Not applied: it was stale.
    """
    if row is None or row["ledger_id"] is None:
        return Outcome.duplicate
    return Outcome.processed if row.get("applied", True) else Outcome.stale


def lock_key(shop_id: str, kind: str, shopify_id: object = "") -> int:
    """A 64-bit advisory lock key for one shop's customer, order or the shop itself."""
    digest = hashlib.blake2b(f"{shop_id}/{kind}/{shopify_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def shop_lock(shop_id: str) -> int:
    return lock_key(shop_id, "shop")


def customer_lock(shop_id: str, shopify_id: object) -> int:
    return lock_key(shop_id, "customer", shopify_id)


def order_lock(shop_id: str, shopify_id: object) -> int:
    return lock_key(shop_id, "order", shopify_id)


def delivery_locks(
    shop_id: str, *, orders: Iterable[object] = (), customers: Iterable[object] = ()
) -> Locks:
    """The locks of a delivery that writes these orders and customers.

    One global order (shop shared, then orders, then customers, each by key)
    means deliveries touching the same rows queue instead of deadlocking.
    Every writer of a customer or an order holds its lock, so a statement that
    starts after the locks sees every committed change to them.
    """
    return Locks(
        shared=[shop_lock(shop_id)],
        exclusive=[
            *sorted(order_lock(shop_id, order) for order in orders),
            *sorted(customer_lock(shop_id, customer) for customer in customers),
        ],
    )
