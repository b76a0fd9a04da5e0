"""The shops' Admin API credentials: stored encrypted, read back only to call Shopify."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.access.cipher import TokenCipher, TokenUnreadable
from app.db.database import Database

# Without this scope Shopify shows only the last 60 days of orders.
ALL_ORDERS_SCOPE = "read_all_orders"

_STORE = """
INSERT INTO shop_credentials (shop_id, access_token_encrypted, scope, updated_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (shop_id) DO UPDATE
SET access_token_encrypted = EXCLUDED.access_token_encrypted, scope = EXCLUDED.scope,
    updated_at = now(), invalid_at = NULL, invalid_reason = NULL
"""


@dataclass(frozen=True)
class Credentials:
    shop: str
    access_token: str
    scope: str | None
    invalid_at: datetime | None
    invalid_reason: str | None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(part.strip() for part in (self.scope or "").split(",") if part.strip())

    def __repr__(self) -> str:  # the token never reaches a log line or traceback
        return f"Credentials(shop={self.shop!r}, scope={self.scope!r}, access_token=<hidden>)"


async def store_credentials(
    database: Database, cipher: TokenCipher, shop: str, access_token: str, scope: str | None
) -> None:
    """Store (or replace) the shop's token, encrypted; clears an earlier 'invalid' mark."""
    encrypted = cipher.encrypt(access_token)
    async with database.connection() as connection:
        await connection.execute(_STORE, shop, encrypted, scope)


async def delete_credentials(database: Database, shop: str) -> bool:
    async with database.connection() as connection:
        status = await connection.execute("DELETE FROM shop_credentials WHERE shop_id = $1", shop)
    return status != "DELETE 0"


async def load_credentials(
    database: Database, cipher: TokenCipher, shop: str
) -> Credentials | None:
    async with database.connection() as connection:
        row = await connection.fetchrow(
            "SELECT access_token_encrypted, scope, invalid_at, invalid_reason"
            " FROM shop_credentials WHERE shop_id = $1",
            shop,
        )
    if row is None:
        return None
    return Credentials(
        shop=shop,
        access_token=cipher.decrypt(row["access_token_encrypted"]),
        scope=row["scope"],
        invalid_at=row["invalid_at"],
        invalid_reason=row["invalid_reason"],
    )


class CredentialsUnusable(Exception):
    """No credentials, a token no configured key decrypts, or a token Shopify refused."""


async def usable_credentials(database: Database, cipher: TokenCipher, shop: str) -> Credentials:
    """The shop's credentials, if Shopify can be called with them; CredentialsUnusable if not."""
    try:
        credentials = await load_credentials(database, cipher, shop)
    except TokenUnreadable as error:
        raise CredentialsUnusable(str(error)) from None
    if credentials is None:
        raise CredentialsUnusable(f"no Admin API credentials stored for {shop}")
    if credentials.invalid_at is not None:
        raise CredentialsUnusable(
            f"Shopify refused the stored credentials ({credentials.invalid_reason}); "
            "store new ones with PUT /shops/{shop}/credentials"
        )
    return credentials


async def mark_invalid(database: Database, shop: str, reason: str) -> None:
    """Shopify refused the token: keep it, but skip the shop until new credentials come."""
    async with database.connection() as connection:
        await connection.execute(
            "UPDATE shop_credentials SET invalid_at = now(), invalid_reason = $2"
            " WHERE shop_id = $1",
            shop,
            reason,
        )


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


async def reencrypt_all(database: Database, cipher: TokenCipher) -> int:
    """Encrypt every stored token with the first key (after a key rotation); returns the count."""
    count = 0
    async with database.connection() as connection:
        rows = await connection.fetch("SELECT id, access_token_encrypted FROM shop_credentials")
        for row in rows:
            rotated = cipher.rotate(row["access_token_encrypted"])
            await connection.execute(
                "UPDATE shop_credentials SET access_token_encrypted = $2 WHERE id = $1",
                row["id"],
                rotated,
            )
            count += 1
    return count
