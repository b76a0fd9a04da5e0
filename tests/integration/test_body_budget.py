"""The unverified-body budget, in process: what is refused, with what, and when.

(tests/faults/test_memory_before_signature.py shows the memory it saves on
the deployed service.)
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from app.config import Settings
from app.db.database import Database
from tests.support import shopify
from tests.support.asgi import concurrent_client

KIB = 1024


@pytest.fixture
def small_budget(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, max_body_bytes=512 * KIB, unverified_body_budget_bytes=512 * KIB
    )


async def test_a_body_beyond_the_budget_waits_for_nothing(
    db: Database, small_budget: Settings
) -> None:
    release = asyncio.Event()
    first_half = 300 * KIB

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"{" + b" " * (first_half - 1)
        await release.wait()
        yield b" " * (400 * KIB - first_half - 1) + b"}"

    async with concurrent_client(small_budget) as client:
        holding = asyncio.create_task(
            client.post(
                "/webhooks/shopify",
                content=slow_body(),
                headers={"Content-Length": str(400 * KIB), "X-Shopify-Hmac-Sha256": "forged"},
            )
        )
        await asyncio.sleep(0.2)  # the first request holds 400 KiB of the 512 KiB budget
        body = b"{" + b" " * (200 * KIB) + b"}"
        refused = await client.post(
            "/webhooks/shopify", content=body, headers=shopify.headers("orders/create", body)
        )
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "5"
        assert refused.headers["content-type"].startswith("application/json")
        assert refused.json()["status_code"] == 503

        # Over MAX_BODY_BYTES is 413 (a retry cannot help), budget or not.
        too_large = await client.post(
            "/webhooks/shopify",
            content=b"{" + b" " * (600 * KIB) + b"}",
            headers={"X-Shopify-Hmac-Sha256": "forged"},
        )
        assert too_large.status_code == 413, too_large.text

        release.set()
        assert (await holding).status_code == 401
        # The budget is given back when a request ends.
        payload = shopify.order(1, customer_id=2)
        assert await shopify.deliver(client, "orders/create", payload) == "processed"
        again = await client.post(
            "/webhooks/shopify", content=body, headers=shopify.headers("orders/create", body)
        )
        assert again.status_code != 503, again.text
