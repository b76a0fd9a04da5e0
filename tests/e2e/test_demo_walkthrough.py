"""The README's walkthrough without a store: the stand-in Shopify and the service as processes,
a demo shop connected through the install flow, its history synced, its new orders delivered
as webhooks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet

from app.config import Settings
from app.db.database import Database
from app.devtools.pgbouncer import free_port
from app.devtools.stack import ROOT

# The stand-in and the service as processes of their own.
pytestmark = pytest.mark.stack

SHOP = "demo.myshopify.com"


@contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield child
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def wait_for_line(child: subprocess.Popen[str], start: str) -> str:
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(start):
            return line
    raise AssertionError(f"the process ended before printing {start!r}")


async def first_row(url: str, sql: str, *args: Any) -> Any:
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        return await connection.fetchrow(sql, *args)
    finally:
        await connection.close()


async def until(check: Any, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if value := await check():
            return value
        await asyncio.sleep(0.2)
    raise AssertionError("not reached in time")


async def test_a_demo_shop_is_connected_synced_and_sends_webhooks(
    db: Database, settings: Settings
) -> None:
    assert settings.database_url is not None
    database_url = settings.database_url
    standin_port, service_port = free_port(), free_port()
    public_url = f"http://127.0.0.1:{service_port}"
    env = {
        **os.environ,
        "SHOPIFY_API_KEY": "dev-api-key",
        "SHOPIFY_API_SECRET": "dev-secret",
        "PUBLIC_URL": public_url,
        "LOG_LEVEL": "WARNING",
    }
    standin_args = ["standin", "--port", str(standin_port), "--customers", "12", "--orders", "30"]
    with process([*standin_args, "--activity", "0.5"], env) as standin:
        wait_for_line(standin, "Stand-in Shopify at")
        service_env = {
            **env,
            "DATABASE_URL": database_url,
            "SHOPIFY_ADMIN_BASE_URL": f"http://127.0.0.1:{standin_port}/{{shop}}",
            "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "PORT": str(service_port),
            "WEB_CONCURRENCY": "1",
        }
        with process(["serve"], service_env):
            async with httpx.AsyncClient(follow_redirects=True, timeout=30) as browser:

                async def ready() -> bool:
                    try:
                        return (await browser.get(f"{public_url}/health/ready")).status_code == 200
                    except httpx.TransportError:
                        return False

                await until(ready)
                page = await browser.get(f"{public_url}/auth/install", params={"shop": SHOP})
            assert page.status_code == 200 and SHOP in page.text

            async def synced() -> Any:
                return await first_row(
                    database_url,
                    "SELECT status FROM sync_runs WHERE shop_id = $1 AND status <> 'running'",
                    SHOP,
                )

            run = await until(synced)
            assert run["status"] == "succeeded"

            async def delivered() -> Any:
                return await first_row(
                    database_url,
                    "SELECT status FROM webhook_events WHERE shop_id = $1"
                    " AND topic = 'orders/create'",
                    SHOP,
                )

            webhook = await until(delivered)
            assert webhook["status"] == "processed"

    customers = await first_row(
        database_url, "SELECT count(*) AS n FROM customers WHERE shop_id = $1", SHOP
    )
    assert customers["n"] == 12
    orders = await first_row(
        database_url, "SELECT count(*) AS n FROM orders WHERE shop_id = $1", SHOP
    )
    assert orders["n"] > 30  # the history, and the orders that came by webhook
