"""What every topic handler is made of."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg

from app.db.database import Database, Transaction
from app.db.sql import SqlFunction
from app.webhooks.ledger import Recording
from app.webhooks.outcomes import Outcome
from app.webhooks.scrub import scrub_text

P = TypeVar("P")


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


async def call_delivery_function(
    database: Database,
    function: SqlFunction,
    recording: Recording,
    values: dict[str, Any],
    personal: Iterable[str] = (),
) -> Outcome:
    """Call a delivery function (see the migration "SQL functions that apply deliveries").

    `values` are its arguments beyond the ledger's (extra ones are left out).

    A delivery about a customer who has been redacted is turned back unwritten
    the first time; it is then recorded with its payload scrubbed and the
    `personal` values left out.
    """
    arguments = {
        "lock_timeout_ms": database.lock_timeout_ms,
        **recording.values,
        **values,
        "scrubbed": False,
    }
    row = await database.fetch_one(function.sql, *function.args(arguments))
    if row is not None and row.get("redacted") and row["ledger_id"] is None:
        known = [arguments[name] for name in personal if isinstance(arguments[name], str)]
        if recording.payload is not None:
            arguments["payload"] = scrub_text(recording.payload, known)
        arguments.update(dict.fromkeys(personal), scrubbed=True)
        row = await database.fetch_one(function.sql, *function.args(arguments))
    return recorded_outcome(row)
