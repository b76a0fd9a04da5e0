"""Driving an HTTP endpoint with wrk, and counting what was stored.

Shared by the realistic-mix runs (bench/__main__.py) and the head-to-head
(bench/compare.py).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.deliveries import Delivery

HERE = Path(__file__).resolve().parent
NO_DUPLICATES = 1_000_000_000  # "a duplicate every N requests" that never comes


def wrk(
    base_url: str,
    connections: int,
    seconds: float,
    lua_table: Path,
    run: str,
    duplicate_every: int,
) -> dict[str, Any]:
    """wrk with bench/wrk.lua: webhook ids `<run>-<thread>-<n>`, a duplicate every so often.

    Returns the script's figures: requests, duration_us, accepted, duplicate,
    other_2xx, non_2xx, socket_errors, timeouts, latency_us (p50, p95, p99, max).
    """
    seconds = max(1, round(seconds))  # wrk takes whole seconds
    completed = subprocess.run(
        [
            *("wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-T10s"),
            *("-s", str(HERE / "wrk.lua"), base_url),
            *("--", str(lua_table), run, str(duplicate_every)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 120,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk exited {completed.returncode}: {completed.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures


async def ledger_rows(url: str, run: str) -> int:
    """Rows of the service's ledger (webhook_events) recorded by this run."""
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM webhook_events WHERE webhook_id LIKE $1", f"{run}-%"
        )
        return count
    finally:
        await connection.close()


def accepted_by_service(log: str, run: str) -> int:
    """Deliveries of this run the service answered 2xx for, other than duplicates.

    Counted from its per-delivery log lines: wrk stops reading at the end of its
    run, but what the server answered (and committed) then still counts.
    """
    accepted = 0
    marker = f'"webhook_id": "{run}-'
    for line in log.splitlines():
        if marker in line:
            outcome = json.loads(line).get("outcome")
            accepted += outcome in ("processed", "stale", "failed", "ignored")
    return accepted


async def post_all(base_url: str, deliveries: list[Delivery], run: str, concurrency: int) -> int:
    """POST every delivery once (webhook ids `<run>-<n>`), `concurrency` at a time.

    Returns how many were answered 2xx; used to create the rows a workload then
    updates, before anything is measured.
    """
    queue = iter(enumerate(deliveries))
    answered = 0

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal answered
        for number, delivery in queue:
            response = await client.post(
                "/webhooks/shopify",
                content=delivery.body,
                headers={
                    "Content-Type": "application/json",
                    "X-Shopify-Topic": delivery.topic,
                    "X-Shopify-Shop-Domain": delivery.shop,
                    "X-Shopify-Hmac-Sha256": delivery.signature,
                    "X-Shopify-Webhook-Id": f"{run}-{number}",
                    "X-Shopify-API-Version": "2026-07",
                },
            )
            answered += response.is_success

    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))
    return answered
