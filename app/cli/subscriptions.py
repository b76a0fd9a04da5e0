"""`python -m app subscriptions check`: a shop's webhook subscriptions, and completing them.

    python -m app subscriptions check --shop example.myshopify.com [--fix] [--json]

Prints what is missing, misdirected and extra (or the whole report as JSON).
Exit 0 when every needed topic is subscribed at PUBLIC_URL/webhooks/shopify
(after --fix, when it created them) and none points elsewhere; 1 otherwise, or
when the shop has no usable credentials or Shopify gave no usable answer; 2
when PUBLIC_URL is not set, or the shop's tokens are stored but
TOKEN_ENCRYPTION_KEY is not. --fix only creates: it never deletes a subscription.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from app.cli.database import database_url
from app.cli.tokens import token_service
from app.config import Settings
from app.shopify.errors import ShopifyError
from app.subscriptions.check import (
    CheckRefused,
    CheckReport,
    NotConfigured,
    SubscriptionChecker,
    callback_uri,
)


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        callback_uri(settings)  # before touching the database
    except NotConfigured as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with database_url(settings) as url:
        return asyncio.run(_main(settings, url, args))


async def _main(settings: Settings, url: str, args: argparse.Namespace) -> int:
    async with token_service(settings, url) as tokens:
        checker = SubscriptionChecker(tokens.database, settings, tokens.http, tokens)
        try:
            report = await checker.check(args.shop, fix=args.fix)
        except NotConfigured as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except CheckRefused as error:
            print(f"error: {args.shop}: {error}", file=sys.stderr)
            return 2 if error.key_missing else 1
        except ShopifyError as error:
            print(f"error: {args.shop}: Shopify's answer: {error}", file=sys.stderr)
            return 1
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        print(summary(report))
    return 0 if report.healthy else 1


def summary(report: CheckReport) -> str:
    lines = [
        f"{report.shop}: {len(report.subscribed)} of {len(report.needed)} needed topics "
        f"subscribed at {report.uri}"
    ]
    lines += [f"  missing: {topic}" for topic in report.missing]
    lines += [f"  misdirected: {s.topic} -> {s.uri} ({s.id})" for s in report.misdirected]
    lines += [f"  extra: {s.topic} -> {s.uri} ({s.id})" for s in report.extra]
    lines += [f"  created: {s.topic} ({s.id})" for s in report.created]
    lines += [f"  not created: {f.topic}: {f.message}" for f in report.failed]
    lines += [
        f"  unsupported (declare in shopify.app.toml): {topic}" for topic in report.unsupported
    ]
    if report.missing and not report.fixed:
        lines.append("  run again with --fix to create the missing subscriptions")
    return "\n".join(lines)
