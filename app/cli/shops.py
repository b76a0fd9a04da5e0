"""`python -m app shops`: a shop's Admin API credentials, and key rotation.

    echo "$TOKEN" | python -m app shops set-token example.myshopify.com [--scope ...]
    python -m app shops delete-token example.myshopify.com
    python -m app shops rotate-keys

The token is read from standard input, never from the command line (where
`ps` and shell history would show it), and never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.access.cipher import TokenCipher, TokenKeyMissing, TokenUnreadable
from app.access.credentials import delete_credentials, reencrypt_all, store_credentials
from app.cli.database import database_url, started_database
from app.config import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    cipher = TokenCipher(settings.token_encryption_keys)
    token = None
    if args.action == "set-token":
        if not cipher.configured:  # say so before asking for the token
            print(f"error: {_missing_key()}", file=sys.stderr)
            return 2
        token = sys.stdin.readline().strip()
        if not token or not token.isascii() or not token.isprintable() or len(token) > 1000:
            print("error: give the access token on standard input, one line", file=sys.stderr)
            return 2
    with database_url(settings) as url:
        try:
            return asyncio.run(_act(settings, url, cipher, args, token))
        except (TokenKeyMissing, TokenUnreadable) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2


async def _act(
    settings: Settings,
    url: str,
    cipher: TokenCipher,
    args: argparse.Namespace,
    token: str | None,
) -> int:
    async with started_database(settings, url) as database:
        if args.action == "set-token":
            assert token is not None
            await store_credentials(database, cipher, args.shop, token, args.scope)
            print(f"{args.shop}: access token stored (encrypted)")
        elif args.action == "delete-token":
            deleted = await delete_credentials(database, args.shop)
            print(f"{args.shop}: {'credentials deleted' if deleted else 'no credentials stored'}")
        else:
            count = await reencrypt_all(database, cipher)
            print(
                f"re-encrypted {count} access token(s) with the first key of TOKEN_ENCRYPTION_KEY"
            )
    return 0


def _missing_key() -> str:
    try:
        TokenCipher(()).encrypt("")
    except TokenKeyMissing as error:
        return str(error)
    raise AssertionError("unreachable")
