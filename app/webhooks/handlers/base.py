"""What every topic handler is made of."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import asyncpg

from app.db.database import Database, Transaction
from app.webhooks.ledger import Recording
from app.webhooks.outcomes import Outcome

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
