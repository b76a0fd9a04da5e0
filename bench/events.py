"""Customer scores and events: `uv run python -m bench --events` (bench/README.md).

On a private embedded PostgreSQL (migrated by the deployment's command), one
shop of `customers` customers with 1 to 4 counted orders each over two years:

- scoring: the first pass (every customer written, a segment_change each),
  a pass that changes nothing, and a pass a week later (recency moved);
- the feed: every event of the shop read through `GET
  /shops/{shop}/customer-events` (`python -m app serve`, one worker, pages of
  1,000), events per second;
- the relay: `python -m app events relay` into a JetStream of its own
  (nats-server on a free port), from the first event to the last one
  acknowledged, events per second.

Each part checks its counts: the scores and events written, every event read
once, every event in the stream once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats

from app.config import load_settings
from app.db.database import Database
from app.devtools.pgbouncer import free_port
from app.scores.scoring import score_shop
from bench.sync import _postgres

ROOT = Path(__file__).resolve().parents[1]
SHOP = "bench-events.myshopify.com"
ADMIN_TOKEN = "bench-admin-token"
NATS_SERVER = Path("/usr/sbin/nats-server")
FULL_CUSTOMERS = 200_000
SMOKE_CUSTOMERS = 2_000


@dataclass
class EventsResult:
    customers: int
    orders: int = 0
    scoring_seconds: dict[str, float] = field(default_factory=dict)
    scoring_written: dict[str, int] = field(default_factory=dict)
    events: int = 0
    feed_seconds: float = 0.0
    feed_events_per_second: float = 0.0
    feed_read: int = 0
    relay_seconds: float | None = None
    relay_events_per_second: float | None = None
    relayed: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def counts_match(self) -> bool:
        return not self.problems


def measure_events(customers: int) -> EventsResult:
    result = EventsResult(customers)
    with _postgres() as url:
        asyncio.run(_fill(url, result))
        asyncio.run(_scoring(url, result))
        _feed(url, result)
        if NATS_SERVER.exists():
            _relay(url, result)
        else:
            result.problems.append(f"{NATS_SERVER} is not installed: the relay was not measured")
    return result


async def _fill(url: str, result: EventsResult) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO customers (shop_id, shopify_id, order_count, total_spent)"
            " SELECT $1::varchar, (10000000 + n)::text, 0, 0 FROM generate_series(1, $2) AS n",
            SHOP,
            result.customers,
        )
        # Each customer 1 to 4 orders, the last within two years, amounts 5 to 505.
        await connection.execute(
            "INSERT INTO orders (shop_id, shopify_id, customer_id, total_price,"
            " current_total_price, currency, test, shopify_created_at, shopify_updated_at)"
            " SELECT $1::varchar, c.shopify_id || '-' || k, c.id, p, p, 'USD', false, t, t"
            " FROM customers AS c,"
            "      LATERAL generate_series(1, 1 + (hashtext(c.shopify_id) & 3)) AS k,"
            "      LATERAL (SELECT (5 + (hashtext(c.shopify_id || k) & 511))::numeric AS p,"
            "                      now() - make_interval(days => 1 + (hashtext(k || c.shopify_id)"
            "                      & 1023) % 730) AS t) AS o"
            " WHERE c.shop_id = $1::varchar",
            SHOP,
        )
        await connection.execute("ANALYZE customers; ANALYZE orders")
        result.orders = await connection.fetchval("SELECT count(*) FROM orders")
        # The orders announced first orders: not what is measured here.
        await connection.execute("TRUNCATE customer_events")
    finally:
        await connection.close()


async def _scoring(url: str, result: EventsResult) -> None:
    settings = load_settings({"DATABASE_URL": url})
    database = Database.from_settings(settings, url, pool_size=2, statement_timeout=300.0)
    await database.start()
    try:
        for name in ("first", "unchanged"):
            report = await score_shop(database, SHOP, 30)
            result.scoring_seconds[name] = report.seconds
            result.scoring_written[name] = report.written
        async with database.connection() as connection:
            await connection.execute(
                "UPDATE orders SET shopify_created_at = shopify_created_at - interval '7 days'"
            )
            await connection.execute("ANALYZE orders")
        report = await score_shop(database, SHOP, 30)
        result.scoring_seconds["a_week_later"] = report.seconds
        result.scoring_written["a_week_later"] = report.written
        async with database.connection() as connection:
            result.events = await connection.fetchval("SELECT count(*) FROM customer_events")
    finally:
        await database.stop()
    if result.scoring_written["first"] != result.customers:
        result.problems.append(f"first pass wrote {result.scoring_written['first']} rows")
    if result.scoring_written["unchanged"] != 0:
        result.problems.append("a pass that changed nothing wrote rows")


def _feed(url: str, result: EventsResult) -> None:
    port = free_port()
    env = {
        **_environment(url),
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "SHOPIFY_API_SECRET": "bench-secret",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
    }
    with _process([sys.executable, "-m", "app", "serve"], env):
        base = f"http://127.0.0.1:{port}"
        _wait_for(lambda: _answers(base + "/health"), 60)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        seen: set[int] = set()
        read = 0
        began = time.perf_counter()
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            after: str | None = None
            while True:
                params: dict[str, Any] = {"limit": 1000}
                if after:
                    params["after"] = after
                page = client.get(f"/shops/{SHOP}/customer-events", params=params).json()
                if not page["events"]:
                    break
                read += len(page["events"])
                seen.update(event["id"] for event in page["events"])
                after = page["next"]
        result.feed_seconds = time.perf_counter() - began
    result.feed_read = read
    result.feed_events_per_second = read / result.feed_seconds
    if read != result.events or len(seen) != read:
        result.problems.append(
            f"the feed gave {read} events ({len(seen)} distinct) of {result.events}"
        )


def _relay(url: str, result: EventsResult) -> None:
    store = Path(tempfile.mkdtemp(prefix="shopify-ingest-bench-nats-"))
    port = free_port()
    nats_url = f"nats://127.0.0.1:{port}"
    server = [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]
    try:
        with _process(server, dict(os.environ)):
            _wait_for(lambda: _listens(port), 10)
            env = {**_environment(url), "EVENTS_NATS_URL": nats_url}
            began = time.perf_counter()
            with _process([sys.executable, "-m", "app", "events", "relay"], env):
                last = asyncio.run(_last_event(url))
                _wait_for(lambda: asyncio.run(_relayed_up_to(url)) >= last, 1800)
                result.relay_seconds = time.perf_counter() - began
            result.relayed = asyncio.run(_stream_messages(nats_url))
    finally:
        shutil.rmtree(store, ignore_errors=True)
    result.relay_events_per_second = result.events / result.relay_seconds
    if result.relayed != result.events:
        result.problems.append(f"the stream holds {result.relayed} of {result.events} events")


async def _last_event(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT max(id) FROM customer_events"))
    finally:
        await connection.close()


async def _relayed_up_to(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        value = await connection.fetchval("SELECT max(event_id) FROM customer_event_relays")
        return int(value or 0)
    finally:
        await connection.close()


async def _stream_messages(nats_url: str) -> int:
    client = await nats.connect(nats_url)
    try:
        info = await client.jetstream().stream_info("SHOPIFY_EVENTS")
        return int(info.state.messages)
    finally:
        await client.close()


def _environment(url: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("ADMIN_TOKEN", "PROMETHEUS_MULTIPROC_DIR")
    }
    return {**env, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _wait_for(check: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready within {seconds} s")
        time.sleep(0.1)


def print_events(result: EventsResult) -> None:
    seconds = result.scoring_seconds
    print(
        f"\ncustomer events: a shop of {result.customers:,} customers, {result.orders:,} orders\n"
        f"  scoring: first pass {seconds['first']:.2f} s ({result.scoring_written['first']:,}"
        f" written), unchanged {seconds['unchanged']:.2f} s (0 written), a week later"
        f" {seconds['a_week_later']:.2f} s ({result.scoring_written['a_week_later']:,} written)\n"
        f"  feed: {result.feed_read:,} events in {result.feed_seconds:.2f} s,"
        f" {result.feed_events_per_second:,.0f} events/s"
    )
    if result.relay_seconds is not None:
        print(
            f"  relay: {result.events:,} events into JetStream in {result.relay_seconds:.2f} s,"
            f" {result.relay_events_per_second:,.0f} events/s (stream holds {result.relayed:,})"
        )
    print(f"  counts {'ok' if result.counts_match else 'WRONG: ' + '; '.join(result.problems)}")
