"""`python -m app shops`: the shops' Admin API access.

    python -m app shops list
    echo "$TOKEN" | python -m app shops set-token example.myshopify.com [--scope ...]
    python -m app shops delete-token example.myshopify.com
    python -m app shops migrate-tokens [--shop example.myshopify.com]
    python -m app shops rotate-keys

A token is read from standard input, never from the command line (where `ps`
and shell history would show it), and never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import datetime

from app.access.cipher import TokenCipher, TokenKeyMissing
from app.access.credentials import (
    CredentialsUnusable,
    ReencryptReport,
    ShopAccessState,
    connect,
    delete_credentials,
    list_access,
    reencrypt_all,
    shops_with_non_expiring_tokens,
    usable_credentials,
)
from app.access.migration import migrate_shop
from app.access.tokens import AccessNotConfigured, TokenRefreshFailed, TokenService
from app.cli.database import database_url, started_database
from app.cli.tokens import token_service
from app.config import Settings
from app.shopify.oauth import IssuedToken

# What PUT /shops/{shop}/credentials accepts: printable ASCII, no spaces.
TOKEN = re.compile(r"[\x21-\x7e]{1,1000}")
SCOPE = re.compile(r"[\x20-\x7e]{0,2000}")


def run(settings: Settings, args: argparse.Namespace) -> int:
    cipher = TokenCipher(settings.token_encryption_keys)
    token = None
    if args.action in ("set-token", "rotate-keys", "migrate-tokens") and not cipher.configured:
        print(f"error: {TokenKeyMissing()}", file=sys.stderr)  # before asking for anything
        return 2
    if args.action == "migrate-tokens" and not settings.shopify_api_key:
        print("error: SHOPIFY_API_KEY is not set: it is needed to migrate tokens", file=sys.stderr)
        return 2
    if args.action == "set-token":
        token = sys.stdin.readline().strip()
        if not TOKEN.fullmatch(token):
            print(
                "error: give the access token on standard input, one line of printable"
                " characters without spaces",
                file=sys.stderr,
            )
            return 2
        if args.scope is not None and not SCOPE.fullmatch(args.scope):
            print("error: --scope must be printable characters", file=sys.stderr)
            return 2
    with database_url(settings) as url:
        try:
            return asyncio.run(_act(settings, url, cipher, args, token))
        except (TokenKeyMissing, AccessNotConfigured) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2


async def _act(
    settings: Settings,
    url: str,
    cipher: TokenCipher,
    args: argparse.Namespace,
    token: str | None,
) -> int:
    if args.action == "migrate-tokens":
        async with token_service(settings, url) as tokens:
            return await _migrate(tokens, args.shop)
    async with started_database(settings, url) as database:
        if args.action == "list":
            _print_list(await list_access(database, cipher))
        elif args.action == "set-token":
            assert token is not None
            issued = IssuedToken(token, args.scope or "", None, None, None)
            await connect(database, cipher, args.shop, issued)
            print(f"{args.shop}: access token stored (encrypted)")
        elif args.action == "delete-token":
            deleted = await delete_credentials(database, args.shop)
            print(f"{args.shop}: {'credentials deleted' if deleted else 'no credentials stored'}")
        else:
            return _print_reencrypted(await reencrypt_all(database, cipher))
    return 0


async def _migrate(tokens: TokenService, shop: str | None) -> int:
    shops = [shop] if shop else await shops_with_non_expiring_tokens(tokens.database)
    if not shops:
        print("no shop has a non-expiring token: nothing to migrate")
        return 0
    failures = 0
    for name in shops:
        try:
            credentials = await usable_credentials(tokens.database, tokens.cipher, name)
            outcome = await migrate_shop(tokens, credentials)
        except (CredentialsUnusable, TokenRefreshFailed) as error:
            failures += 1
            print(f"{name}: not migrated: {error}")
            continue
        print(f"{name}: {outcome}")
    return 1 if failures else 0


def _print_list(states: list[ShopAccessState]) -> None:
    if not states:
        print("no shop has credentials")
        return
    print(f"{'shop':<40} {'token':<13} {'expires':<20} {'refresh expires':<20} state")
    for state in states:
        kind = "expiring" if state.expiring else "non-expiring"
        if state.needs_reauthorization:
            status = f"needs re-authorization: {state.needs_reauthorization}"
        elif not state.readable:
            status = "unreadable: no configured key decrypts it (store it again)"
        elif state.migrating:
            status = "usable (migrated; the original token is kept until the new one has worked)"
        else:
            status = "usable"
        print(
            f"{state.shop:<40} {kind:<13} {_when(state.expires_at):<20}"
            f" {_when(state.refresh_token_expires_at):<20} {status}"
        )


def _print_reencrypted(report: ReencryptReport) -> int:
    print(f"re-encrypted {report.reencrypted} shop(s) with the first key of TOKEN_ENCRYPTION_KEY")
    for shop in report.changed_meanwhile:
        print(f"{shop}: changed while this ran; already stored with the first key")
    for shop in report.unreadable:
        print(f"{shop}: NOT re-encrypted: no configured key decrypts it (store its token again)")
    return 1 if report.unreadable else 0


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")
