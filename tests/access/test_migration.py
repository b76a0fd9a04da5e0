"""Non-expiring tokens migrated to expiring ones (`shops migrate-tokens`), lost answers included."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from app.access.cipher import Purpose, TokenCipher
from app.access.credentials import connect
from app.config import Settings
from app.db.database import Database
from app.db.enums import SyncRunStatus
from app.devtools.standin import FakeShop, Fault, ShopifyStandIn
from app.shopify.oauth import IssuedToken
from tests.support.access import credentials_row, token_calls
from tests.support.ops import CliResult, call_cli
from tests.support.sync import TOKEN_KEY, sync


def shops_cli(config: Settings, *args: str) -> CliResult:
    """`python -m app shops <args>`, in this process (call_cli)."""
    env = {
        **os.environ,
        "DATABASE_URL": config.database_url or "",
        "SHOPIFY_ADMIN_BASE_URL": config.shopify_admin_base_url,
        "SHOPIFY_API_KEY": config.shopify_api_key or "",
        "SHOPIFY_API_SECRET": config.shopify_api_secret or "",
        "TOKEN_ENCRYPTION_KEY": TOKEN_KEY,
        "LOG_LEVEL": "WARNING",
    }
    return call_cli("shops", *args, env=env)


async def non_expiring(db: Database, shop: FakeShop) -> None:
    issued = IssuedToken(shop.token, "read_customers,read_orders,read_all_orders", None, None, None)
    await connect(db, TokenCipher((TOKEN_KEY,)), shop.domain, issued)


def decrypted(row: dict[str, Any], column: str, shop: str, purpose: Purpose) -> str:
    return TokenCipher((TOKEN_KEY,)).decrypt(row[column], shop, purpose)


async def test_migrate_tokens_turns_a_non_expiring_token_into_an_expiring_one(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    await non_expiring(db, shop)
    listed = shops_cli(access_config, "list")
    assert "non-expiring" in listed.stdout and shop.domain in listed.stdout

    migrated = shops_cli(access_config, "migrate-tokens", "--shop", shop.domain)

    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "migrated to an expiring token (verified)" in migrated.stdout
    [exchange] = token_calls(shopify_admin, shop.domain)
    assert exchange.body["subject_token"] == shop.token
    assert exchange.body["subject_token_type"].endswith("offline-access-token")
    assert exchange.body["expiring"] == "1"
    row = await credentials_row(db, shop.domain)
    assert row is not None and row["original_token_encrypted"] is None  # it worked: forgotten
    live = shopify_admin.oauth.access(shop.domain).live
    assert live is not None
    assert decrypted(row, "access_token_encrypted", shop.domain, Purpose.access) == (
        live.access_token
    )
    assert not shopify_admin.oauth.accepts(shop.domain, shop.token)  # the old token is dead

    again = shops_cli(access_config, "migrate-tokens")
    assert again.returncode == 0 and "nothing to migrate" in again.stdout
    assert len(token_calls(shopify_admin, shop.domain)) == 1
    listed = shops_cli(access_config, "list")
    assert "expiring " in listed.stdout and "usable" in listed.stdout
    for token in (live.access_token, live.refresh_token, shop.token):
        assert token not in listed.stdout + migrated.stdout + migrated.stderr

    _, status = await sync(db, access_config, shop)
    assert status is SyncRunStatus.succeeded


async def test_a_migration_whose_answers_were_all_lost_is_recovered_by_running_it_again(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    await non_expiring(db, shop)
    # Shopify migrates the token each time, but the answers never arrive.
    shopify_admin.inject(Fault.drop_after(), times=3, kind="token", shop=shop.domain)

    lost = shops_cli(access_config, "migrate-tokens", "--shop", shop.domain)

    assert lost.returncode == 1 and "not migrated" in lost.stdout, lost.stdout + lost.stderr
    row = await credentials_row(db, shop.domain)
    assert row is not None and row["refresh_token_encrypted"] is None
    # The original is kept, encrypted and bound to its purpose, for the recovery.
    assert decrypted(row, "original_token_encrypted", shop.domain, Purpose.original) == shop.token
    pair = shopify_admin.oauth.access(shop.domain).live
    assert pair is not None and not shopify_admin.oauth.accepts(shop.domain, shop.token)

    recovered = shops_cli(access_config, "migrate-tokens", "--shop", shop.domain)

    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert "(verified)" in recovered.stdout
    row = await credentials_row(db, shop.domain)
    assert row is not None and row["original_token_encrypted"] is None
    # Shopify answered the retry with the same pair it had issued.
    assert (
        decrypted(row, "access_token_encrypted", shop.domain, Purpose.access) == pair.access_token
    )
    assert decrypted(row, "refresh_token_encrypted", shop.domain, Purpose.refresh) == (
        pair.refresh_token
    )
    assert row["invalid_at"] is None


async def test_a_sync_after_a_lost_migration_answer_recovers_the_pair_itself(
    db: Database, access_config: Settings, shopify_admin: ShopifyStandIn, shop: FakeShop
) -> None:
    await non_expiring(db, shop)
    shopify_admin.inject(Fault.drop_after(), times=3, kind="token", shop=shop.domain)
    assert shops_cli(access_config, "migrate-tokens").returncode == 1

    # The stored token is the old one, which Shopify has retired: 401, then the
    # migration is asked again with the kept original instead of giving up.
    _, status = await sync(db, access_config, shop)

    assert status is SyncRunStatus.succeeded
    row = await credentials_row(db, shop.domain)
    assert row is not None and row["refresh_token_encrypted"] is not None
    assert row["invalid_at"] is None


async def test_migrating_needs_the_apps_client_id(
    db: Database, access_config: Settings, shop: FakeShop
) -> None:
    await non_expiring(db, shop)
    result = shops_cli(dataclasses.replace(access_config, shopify_api_key=""), "migrate-tokens")
    assert result.returncode == 2 and "SHOPIFY_API_KEY" in result.stderr
