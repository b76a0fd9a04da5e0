"""The scheduler runs shops side by side; a failing, hanging or crashing shop stops nothing else."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from app.access.tokens import TokenService
from app.config import Settings
from app.db.database import Database
from app.db.enums import SyncRunStatus
from app.devtools.standin import Fault, ShopifyStandIn
from app.shopify.client import http_client
from app.sync import scheduler
from app.sync.runner import Started, SyncRunner
from app.sync.scheduler import run_every, sync_all_once
from tests.support import queries
from tests.support.sync import give_credentials, new_shop, stored_customers

DEADLINE = 1.5


class CrashingRunner(SyncRunner):
    """A runner whose run of one shop raises what no handler expects (a bug)."""

    crash_shop = ""

    async def execute(self, started: Started, on_progress: Any = None) -> SyncRunStatus:
        if started.run.shop == self.crash_shop:
            raise RuntimeError("a bug")
        return await super().execute(started, on_progress)


async def runs_of(db: Database, shop: str) -> list[dict[str, Any]]:
    return await queries.fetch(
        db, "SELECT status, last_error, error_kind FROM sync_runs WHERE shop_id = $1", shop
    )


async def test_a_pass_with_failing_hanging_and_crashing_shops_among_healthy_ones(
    db: Database, sync_config: Settings, shopify_admin: ShopifyStandIn
) -> None:
    settings = dataclasses.replace(
        sync_config, sync_concurrency=2, sync_run_deadline_seconds=DEADLINE
    )
    healthy = [new_shop(shopify_admin) for _ in range(3)]
    failing, hanging, crashing = (new_shop(shopify_admin) for _ in range(3))
    for shop in [*healthy, failing, hanging, crashing]:
        shop.generate(customers=3, orders=2, line_items=1)
        await give_credentials(db, settings, shop)
    shopify_admin.inject(Fault.status(401), times=1, shop=failing.domain)
    shopify_admin.inject(Fault.slow(10 * DEADLINE), times=10, shop=hanging.domain)

    async with http_client() as http:
        runner = CrashingRunner(db, settings, http, TokenService(db, settings, http))
        runner.crash_shop = crashing.domain
        failed = await sync_all_once(runner)

    assert sorted(failed) == sorted([failing.domain, hanging.domain, crashing.domain])
    for shop in healthy:
        assert [run["status"] for run in await runs_of(db, shop.domain)] == ["succeeded"]
        assert len(await stored_customers(db, shop.domain)) == 3
    [refused] = await runs_of(db, failing.domain)
    assert refused["status"] == "failed" and "401" in refused["last_error"]
    [hung] = await runs_of(db, hanging.domain)
    assert (hung["status"], hung["error_kind"]) == ("failed", "deadline")
    [crashed] = await runs_of(db, crashing.domain)
    assert (crashed["status"], crashed["error_kind"]) == ("failed", "crashed")
    assert "a bug" in crashed["last_error"]
    # No lease is left behind: the next pass may sync every shop again.
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_leases") == 0
    shopify_admin.clear_faults()


async def test_shops_run_side_by_side_up_to_the_concurrency_each_in_one_slot(
    db: Database,
    sync_config: Settings,
    shopify_admin: ShopifyStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every shop due at once (new shops are otherwise spread over a minute).
    monkeypatch.setattr(scheduler, "FIRST_RUN_WITHIN", 0.01)
    settings = dataclasses.replace(sync_config, sync_concurrency=3)
    shops = [new_shop(shopify_admin) for _ in range(6)]
    for shop in shops:
        shop.generate(customers=1, orders=0)
        await give_credentials(db, settings, shop)
    in_flight: set[str] = set()
    finished: list[SyncRunStatus] = []
    every_shop_synced = asyncio.Event()
    most = 0

    class Watching(SyncRunner):
        async def execute(self, started: Started, on_progress: Any = None) -> SyncRunStatus:
            nonlocal most
            shop = started.run.shop
            assert shop not in in_flight  # one slot per shop
            in_flight.add(shop)
            most = max(most, len(in_flight))
            try:
                status = await super().execute(started, on_progress)
            finally:
                in_flight.discard(shop)
            finished.append(status)
            if len(finished) == len(shops):
                every_shop_synced.set()
            return status

    async with http_client() as http:
        runner = Watching(db, settings, http, TokenService(db, settings, http))
        schedule = asyncio.create_task(run_every(runner, every=3600))
        try:
            await asyncio.wait_for(every_shop_synced.wait(), timeout=60)
        finally:
            schedule.cancel()
            await asyncio.gather(schedule, return_exceptions=True)
    assert finished == [SyncRunStatus.succeeded] * len(shops)
    assert most == 3
