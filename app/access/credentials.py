"""The shop_credentials rows: each shop's tokens, encrypted, and what is known about them.

Every change of a shop's tokens bumps `generation`, so writers that raced with
another can tell (a refresh stores its pair only while its claim holds;
re-encryption only rewrites the generation it read). Tokens are decrypted only
to call Shopify or to hand one over (app/access/tokens.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from app.access.cipher import Purpose, TokenCipher, TokenKeyMissing, TokenUnreadable
from app.db.database import Database
from app.http.errors import Conflict
from app.shopify.oauth import IssuedToken

# Without this scope Shopify shows only the last 60 days of orders.
ALL_ORDERS_SCOPE = "read_all_orders"

_COLUMNS = (
    "access_token_encrypted, scope, expires_at, refresh_token_encrypted,"
    " refresh_token_expires_at, original_token_encrypted, generation, invalid_at, invalid_reason"
)

# Whether the shop had credentials Shopify had not refused, read under the
# row's lock before _CONNECT writes it (Citus refuses a subquery in an INSERT).
_USABLE_BEFORE = "SELECT invalid_at IS NULL FROM shop_credentials WHERE shop_id = $1 FOR UPDATE"
# Times in DO UPDATE come from the proposed row (EXCLUDED): Citus refuses now() there.
_CONNECT = """
INSERT INTO shop_credentials AS c (shop_id, access_token_encrypted, scope, expires_at,
    refresh_token_encrypted, refresh_token_expires_at, generation, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, 1, now())
ON CONFLICT (shop_id) DO UPDATE
SET access_token_encrypted = EXCLUDED.access_token_encrypted, scope = EXCLUDED.scope,
    expires_at = EXCLUDED.expires_at, refresh_token_encrypted = EXCLUDED.refresh_token_encrypted,
    refresh_token_expires_at = EXCLUDED.refresh_token_expires_at,
    generation = c.generation + 1, updated_at = EXCLUDED.updated_at,
    original_token_encrypted = NULL,
    refresh_claim = NULL, refresh_claimed_until = NULL, invalid_at = NULL, invalid_reason = NULL
"""
_CLAIM = """
UPDATE shop_credentials
SET refresh_claim = $3, refresh_claimed_until = now() + make_interval(secs => $4)
WHERE shop_id = $1 AND generation = $2 AND invalid_at IS NULL
  AND (refresh_claimed_until IS NULL OR refresh_claimed_until < now())
RETURNING shop_id
"""
_STORE_CLAIMED = """
UPDATE shop_credentials
SET access_token_encrypted = $3, scope = coalesce(nullif($4, ''), scope), expires_at = $5,
    refresh_token_encrypted = $6, refresh_token_expires_at = $7, generation = generation + 1,
    updated_at = now(), refresh_claim = NULL, refresh_claimed_until = NULL
WHERE shop_id = $1 AND refresh_claim = $2
RETURNING generation
"""
_RELEASE = """
UPDATE shop_credentials SET refresh_claim = NULL, refresh_claimed_until = NULL
WHERE shop_id = $1 AND refresh_claim = $2
"""
_NEEDS_REAUTHORIZATION = """
UPDATE shop_credentials
SET invalid_at = now(), invalid_reason = $3, refresh_claim = NULL, refresh_claimed_until = NULL
WHERE shop_id = $1 AND ($2::bigint IS NULL OR generation = $2) AND invalid_at IS NULL
"""
_KEEP_ORIGINAL = """
UPDATE shop_credentials SET original_token_encrypted = $3
WHERE shop_id = $1 AND generation = $2 AND original_token_encrypted IS NULL
"""
_FORGET_ORIGINAL = """
UPDATE shop_credentials SET original_token_encrypted = NULL WHERE shop_id = $1 AND generation = $2
"""


@dataclass(frozen=True)
class Credentials:
    shop: str
    access_token: str
    scope: str | None
    expires_at: datetime | None
    refresh_token: str | None
    refresh_token_expires_at: datetime | None
    generation: int
    invalid_at: datetime | None = None
    invalid_reason: str | None = None
    # The non-expiring token a migration started from, until the new pair has worked.
    original_token: str | None = None

    @property
    def expiring(self) -> bool:
        return self.refresh_token is not None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(part.strip() for part in (self.scope or "").split(",") if part.strip())

    def __repr__(self) -> str:  # the tokens never reach a log line or traceback
        return (
            f"Credentials(shop={self.shop!r}, scope={self.scope!r}, expires_at={self.expires_at!r},"
            f" generation={self.generation}, tokens=<hidden>)"
        )


class CredentialsUnusable(Conflict):
    """No credentials, a token no configured key decrypts, or a shop needing re-authorization."""


class CredentialsKeyMissing(CredentialsUnusable):
    """Tokens are stored but TOKEN_ENCRYPTION_KEY is not set: a setting to fix, not the shop."""


async def connect(database: Database, cipher: TokenCipher, shop: str, issued: IssuedToken) -> bool:
    """Store tokens handed to the service (install, token exchange, an app handing them over).

    Replaces whatever was there and clears a 'needs re-authorization' mark.
    Returns whether the shop had usable credentials before.
    """
    async with database.connection() as connection, connection.transaction():
        usable_before = bool(await connection.fetchval(_USABLE_BEFORE, shop))
        await connection.execute(_CONNECT, shop, *_encrypted(cipher, shop, issued))
    return usable_before


async def load_credentials(
    database: Database, cipher: TokenCipher, shop: str
) -> Credentials | None:
    async with database.connection() as connection:
        row = await connection.fetchrow(
            f"SELECT {_COLUMNS} FROM shop_credentials WHERE shop_id = $1",  # noqa: S608
            shop,
        )
    return None if row is None else _credentials(cipher, shop, row)


async def usable_credentials(database: Database, cipher: TokenCipher, shop: str) -> Credentials:
    """The shop's credentials, if Shopify can be called with them; CredentialsUnusable if not."""
    try:
        credentials = await load_credentials(database, cipher, shop)
    except TokenUnreadable as error:
        raise CredentialsUnusable(f"credentials unusable: {error}") from None
    except TokenKeyMissing as error:
        raise CredentialsKeyMissing(f"credentials unusable: {error}") from None
    if credentials is None:
        raise CredentialsUnusable(f"no Admin API credentials stored for {shop}")
    if credentials.invalid_at is not None:
        raise CredentialsUnusable(
            f"{shop} needs re-authorization ({credentials.invalid_reason}): install the app"
            " again or run the token exchange (docs/connecting-shops.md)"
        )
    return credentials


async def claim(database: Database, shop: str, generation: int, seconds: float) -> UUID | None:
    """Claim the shop's tokens for a refresh or migration: one at a time, across replicas.

    Succeeds only while the tokens are still at `generation`, nobody else's
    claim holds, and the shop does not need re-authorization.
    """
    claim_id = uuid.uuid4()
    async with database.connection() as connection:
        row = await connection.fetchrow(_CLAIM, shop, generation, claim_id, seconds)
    return claim_id if row is not None else None


async def store_claimed(
    database: Database, cipher: TokenCipher, shop: str, claim_id: UUID, issued: IssuedToken
) -> bool:
    """Store a refreshed or migrated pair, if the claim still holds; False if it was lost."""
    async with database.connection() as connection:
        row = await connection.fetchrow(
            _STORE_CLAIMED, shop, claim_id, *_encrypted(cipher, shop, issued)
        )
    return row is not None


async def release(database: Database, shop: str, claim_id: UUID) -> None:
    async with database.connection() as connection:
        await connection.execute(_RELEASE, shop, claim_id)


async def mark_needs_reauthorization(
    database: Database, shop: str, reason: str, generation: int | None = None
) -> bool:
    """Shopify refused the token or its refresh: skip the shop until it is connected again.

    With `generation`, only if the tokens have not changed since (a newer pair
    stored meanwhile is not condemned by an older one's refusal).
    """
    async with database.connection() as connection:
        status = await connection.execute(_NEEDS_REAUTHORIZATION, shop, generation, reason[:500])
    return status != "UPDATE 0"


async def keep_original(database: Database, cipher: TokenCipher, credentials: Credentials) -> None:
    """Keep a non-expiring token, encrypted, while it is migrated (a lost answer is recovered
    by asking again with it)."""
    encrypted = cipher.encrypt(credentials.access_token, credentials.shop, Purpose.original)
    async with database.connection() as connection:
        await connection.execute(
            _KEEP_ORIGINAL, credentials.shop, credentials.generation, encrypted
        )


async def forget_original(database: Database, shop: str, generation: int) -> None:
    async with database.connection() as connection:
        await connection.execute(_FORGET_ORIGINAL, shop, generation)


async def delete_credentials(database: Database, shop: str) -> bool:
    async with database.connection() as connection:
        status = await connection.execute("DELETE FROM shop_credentials WHERE shop_id = $1", shop)
    return status != "DELETE 0"


async def shops_to_sync(database: Database) -> list[str]:
    """Shops with credentials Shopify has not refused, of shops neither uninstalled nor erased."""
    async with database.connection() as connection:
        rows = await connection.fetch(
            "SELECT c.shop_id FROM shop_credentials AS c"
            " LEFT JOIN shops AS s ON s.shop_id = c.shop_id"
            " WHERE c.invalid_at IS NULL AND s.redacted_at IS NULL"
            " AND (s.uninstalled_at IS NULL OR s.uninstalled_at < c.updated_at)"
            " ORDER BY c.shop_id"
        )
    return [row["shop_id"] for row in rows]


async def shops_with_aging_refresh_tokens(database: Database, within_seconds: float) -> list[str]:
    """Shops whose refresh token expires within `within_seconds` (to be refreshed to keep it)."""
    async with database.connection() as connection:
        rows = await connection.fetch(
            "SELECT shop_id FROM shop_credentials WHERE invalid_at IS NULL"
            " AND refresh_token_expires_at < now() + make_interval(secs => $1)"
            " ORDER BY refresh_token_expires_at",
            within_seconds,
        )
    return [row["shop_id"] for row in rows]


async def shops_with_non_expiring_tokens(database: Database) -> list[str]:
    async with database.connection() as connection:
        rows = await connection.fetch(
            "SELECT shop_id FROM shop_credentials"
            " WHERE refresh_token_encrypted IS NULL AND invalid_at IS NULL ORDER BY shop_id"
        )
    return [row["shop_id"] for row in rows]


@dataclass(frozen=True)
class ShopAccessState:
    """A shop's access as an operator sees it: kinds and times, never a token."""

    shop: str
    expiring: bool
    expires_at: datetime | None
    refresh_token_expires_at: datetime | None
    needs_reauthorization: str | None
    migrating: bool
    readable: bool


async def list_access(database: Database, cipher: TokenCipher) -> list[ShopAccessState]:
    async with database.connection() as connection:
        rows = await connection.fetch(
            f"SELECT shop_id, {_COLUMNS} FROM shop_credentials ORDER BY shop_id"  # noqa: S608
        )
    return [_state(cipher, row) for row in rows]


def _state(cipher: TokenCipher, row: asyncpg.Record) -> ShopAccessState:
    try:
        _credentials(cipher, row["shop_id"], row)
        readable = True
    except TokenUnreadable:
        readable = False
    reason = (row["invalid_reason"] or "refused") if row["invalid_at"] is not None else None
    return ShopAccessState(
        shop=row["shop_id"],
        expiring=row["refresh_token_encrypted"] is not None,
        expires_at=row["expires_at"],
        refresh_token_expires_at=row["refresh_token_expires_at"],
        needs_reauthorization=reason,
        migrating=row["original_token_encrypted"] is not None,
        readable=readable,
    )


@dataclass(frozen=True)
class ReencryptReport:
    reencrypted: int
    # Changed by a writer while re-encryption ran: already written with the first key.
    changed_meanwhile: list[str]
    # No configured key decrypts them (or they are bound to another shop): named, left as they are.
    unreadable: list[str]


async def reencrypt_all(database: Database, cipher: TokenCipher) -> ReencryptReport:
    """Encrypt every stored token with the first key (after a key rotation), bound to its shop.

    Row by row, compare-and-set on `generation`: a token stored while this runs
    is never overwritten with the older one.
    """
    reencrypted, changed, unreadable = 0, [], []
    async with database.connection() as connection:
        rows = await connection.fetch(
            "SELECT shop_id, generation, access_token_encrypted, refresh_token_encrypted,"
            " original_token_encrypted FROM shop_credentials ORDER BY shop_id"
        )
    for row in rows:
        shop = row["shop_id"]
        try:
            values = [
                None if row[column] is None else cipher.rebind(row[column], shop, purpose)
                for column, purpose in _ENCRYPTED_COLUMNS
            ]
        except TokenUnreadable:
            unreadable.append(shop)
            continue
        async with database.connection() as connection:
            status = await connection.execute(
                "UPDATE shop_credentials SET access_token_encrypted = $3,"
                " refresh_token_encrypted = $4, original_token_encrypted = $5"
                " WHERE shop_id = $1 AND generation = $2",
                shop,
                row["generation"],
                *values,
            )
        if status == "UPDATE 0":
            changed.append(shop)
        else:
            reencrypted += 1
    return ReencryptReport(reencrypted, changed, unreadable)


_ENCRYPTED_COLUMNS = (
    ("access_token_encrypted", Purpose.access),
    ("refresh_token_encrypted", Purpose.refresh),
    ("original_token_encrypted", Purpose.original),
)


def _credentials(cipher: TokenCipher, shop: str, row: Any) -> Credentials:
    def decrypted(column: str, purpose: Purpose) -> str | None:
        stored = row[column]
        return None if stored is None else cipher.decrypt(stored, shop, purpose)

    access_token = decrypted("access_token_encrypted", Purpose.access)
    assert access_token is not None  # NOT NULL column
    return Credentials(
        shop=shop,
        access_token=access_token,
        scope=row["scope"],
        expires_at=row["expires_at"],
        refresh_token=decrypted("refresh_token_encrypted", Purpose.refresh),
        refresh_token_expires_at=row["refresh_token_expires_at"],
        generation=row["generation"],
        invalid_at=row["invalid_at"],
        invalid_reason=row["invalid_reason"],
        original_token=decrypted("original_token_encrypted", Purpose.original),
    )


def _encrypted(cipher: TokenCipher, shop: str, issued: IssuedToken) -> tuple[Any, ...]:
    refresh = issued.refresh_token
    return (
        cipher.encrypt(issued.access_token, shop, Purpose.access),
        issued.scope,
        issued.expires_at,
        None if refresh is None else cipher.encrypt(refresh, shop, Purpose.refresh),
        issued.refresh_token_expires_at,
    )
