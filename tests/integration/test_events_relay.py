"""The relay to NATS JetStream, as a real process: killed with SIGKILL mid-stream and
started again, or cut off from its broker, it still gets every event into the stream
exactly once after JetStream's deduplication (Nats-Msg-Id = the event id).

Needs NATS with JetStream on 127.0.0.1:4222 and the nats-server binary (the
`nats` marker; tests/support/nats.py); each test has a stream of its own.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.db.database import Database
from tests.support import citus, nats, queries
from tests.support.ops import ROOT, cli_environment
from tests.support.shopify import SHOP

pytestmark = pytest.mark.nats


async def add_events(db: Database, count: int) -> list[int]:
    """`count` tag_added events, written in one transaction; their ids."""
    rows = await queries.fetch(
        db,
        "INSERT INTO customer_events (transaction_id, shop_id, customer_shopify_id, kind,"
        " occurred_at, data)"
        " SELECT pg_current_xact_id()::text::bigint, $1::varchar, (n % 500)::text, 'tag_added',"
        "        now(), jsonb_build_object('tag', 'tag-' || n)"
        " FROM generate_series(1, $2) AS n RETURNING id",
        SHOP,
        count,
    )
    return [row["id"] for row in rows]


@contextmanager
def relay(database_url: str, url: str, names: nats.Names) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m app events relay` as a process of its own; stopped (SIGTERM) at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "events", "relay"],
        env=cli_environment(
            database_url,
            EVENTS_NATS_URL=url,
            EVENTS_NATS_STREAM=names.stream,
            EVENTS_NATS_SUBJECT=names.subject,
        ),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def relayed_up_to(db: Database, names: nats.Names) -> int:
    """The id of the last event the relay stored as acknowledged (0: none)."""
    value = await queries.fetchval(
        db, "SELECT event_id FROM customer_event_relays WHERE name = $1", names.stream
    )
    return int(value or 0)


def check_stream(messages: list[dict[str, Any]], names: nats.Names, ids: list[int]) -> None:
    """Each event once, on its subject, with its id, shop and body."""
    seen = Counter(int(message["headers"]["Nats-Msg-Id"]) for message in messages)
    assert set(seen) == set(ids)
    assert max(seen.values()) == 1
    sample = messages[0]
    assert sample["subject"] == f"{names.subject}.tag_added"
    assert sample["headers"]["Shopify-Shop-Domain"] == SHOP
    body = json.loads(sample["data"])
    assert set(body) == {"id", "shop", "customer_id", "kind", "occurred_at", "data"}
    assert body["shop"] == SHOP and body["kind"] == "tag_added"
    assert str(body["id"]) == sample["headers"]["Nats-Msg-Id"]


async def test_a_relay_killed_mid_stream_delivers_every_event_once(
    db: Database, database_url: str
) -> None:
    names = nats.unique_names()
    ids = []
    for _ in range(4):
        ids += await add_events(db, 2500)
    async with nats.stream_cleanup(nats.SHARED_URL, names):
        with relay(database_url, nats.SHARED_URL, names) as first:
            await nats.eventually(lambda: _at_least(names, 1000), within=60)
            first.send_signal(signal.SIGKILL)
            first.wait()
        published_when_killed = await nats.stream_count(nats.SHARED_URL, names)
        assert published_when_killed < len(ids), "the relay was not killed mid-stream"
        stored_when_killed = await relayed_up_to(db, names)
        ids += await add_events(db, 1000)

        with relay(database_url, nats.SHARED_URL, names):
            await nats.eventually(lambda: _relayed_all(db, names, ids), within=90)
            await nats.eventually(lambda: _at_least(names, len(ids)), within=30)

        messages = await nats.stream_messages(nats.SHARED_URL, names)
    assert stored_when_killed < ids[-1]
    assert len(messages) == len(ids)
    check_stream(messages, names, ids)


async def test_the_broker_stopped_and_started_loses_nothing(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    names = nats.unique_names()
    with nats.own_server(tmp_path / "jetstream") as broker:
        before = await add_events(db, 3000)
        with relay(database_url, broker.url, names):
            await nats.eventually(lambda: _relayed_all(db, names, before), within=60)
            broker.stop()
            during = await add_events(db, 3000)
            # The broker is away: nothing more can be acknowledged, so nothing is stored.
            await nats.eventually(lambda: _unchanged_for(db, names, before[-1]), within=10)
            broker.start()
            await nats.eventually(lambda: _relayed_all(db, names, before + during), within=90)

        messages = await nats.stream_messages(broker.url, names)
    assert len(messages) == 6000
    check_stream(messages, names, before + during)


async def _at_least(names: nats.Names, count: int) -> bool:
    return await nats.stream_count(nats.SHARED_URL, names) >= count


async def _relayed_all(db: Database, names: nats.Names, ids: list[int]) -> bool:
    return await relayed_up_to(db, names) == ids[-1]


async def _unchanged_for(db: Database, names: nats.Names, event_id: int) -> bool:
    await asyncio.sleep(2)
    return await relayed_up_to(db, names) == event_id


@citus.required
async def test_an_event_of_a_worker_whose_ids_lag_is_relayed(
    db: Database, database_url: str
) -> None:
    """On Citus each worker counts its own transaction ids. An event written on a worker
    whose ids are behind the other's, after the relay has passed the other's events, is
    relayed all the same: the relay keeps a position per node group."""
    ahead, behind = await shops_on_two_workers(database_url)
    names = nats.unique_names()
    async with nats.stream_cleanup(nats.SHARED_URL, names):
        with relay(database_url, nats.SHARED_URL, names):
            first = await tagged_customer(db, ahead, "1")
            await nats.eventually(lambda: _at_least(names, 1), within=30)
            second = await tagged_customer(db, behind, "2")
            assert second["transaction_id"] < first["transaction_id"], "the ids do not lag"
            assert second["node_group"] != first["node_group"]
            await nats.eventually(lambda: _at_least(names, 2), within=30)
        messages = await nats.stream_messages(nats.SHARED_URL, names)
    relayed = sorted(int(message["headers"]["Nats-Msg-Id"]) for message in messages)
    assert relayed == sorted([first["id"], second["id"]])


async def shops_on_two_workers(database_url: str) -> tuple[str, str]:
    """Two shops on different workers: first the one whose worker's transaction ids are
    ahead of the other's (by a hundred more than they were)."""
    by_worker: dict[str, str] = {}
    for number in range(100):
        shop = f"relay-{number}.myshopify.com"
        by_worker.setdefault(await citus.where_shop_locks(database_url, shop), shop)
        if len(by_worker) == 2:
            break
    (url_a, shop_a), (url_b, shop_b) = sorted(by_worker.items())
    ids = {url: await citus.next_transaction_id(url) for url in (url_a, url_b)}
    ahead = url_a if ids[url_a] > ids[url_b] else url_b
    await citus.use_transaction_ids(ahead, beyond=max(ids.values()) + 100)
    return (shop_a, shop_b) if ahead == url_a else (shop_b, shop_a)


async def tagged_customer(db: Database, shop: str, shopify_id: str) -> Any:
    """A customer written with a tag (through the coordinator, onto the shop's worker):
    the trigger announces tag_added there; the event's id, transaction id and group."""
    await queries.execute(
        db,
        "INSERT INTO customers (shop_id, shopify_id, tags) VALUES ($1, $2, ARRAY['vip'])",
        shop,
        shopify_id,
    )
    return await queries.fetchrow(
        db,
        "SELECT id, transaction_id, node_group FROM customer_events WHERE shop_id = $1",
        shop,
    )
