"""Helpers of the console tests: the real service, console users, logins, failed deliveries."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from app.devtools.pgbouncer import free_port
from tests.support import shopify
from tests.support.ops import ROOT, cli_environment

PASSWORD = "console-test-password-1"
WRONG_PASSWORD = "console-wrong-password-2"


def failed_order(order_id: int, customer_id: int) -> dict[str, Any]:
    """A valid orders/create body, as if an older version had failed to apply it."""
    return shopify.order(
        order_id,
        customer_id=customer_id,
        customer_updated_at="2026-01-01T09:30:00-05:00",
        customer_fields={"email": "replayed@example.com", "first_name": "Re", "last_name": "Play"},
    )


async def insert_failed_delivery(
    connection: Any, shop: str, webhook_id: str, payload: dict[str, Any]
) -> UUID:
    """A ledger row like the one a live delivery leaves when its payload could not be applied."""
    ledger_id: UUID = await connection.fetchval(
        "INSERT INTO webhook_events (shop_id, webhook_id, topic, api_version, triggered_at,"
        " received_at, payload, status, attempts, last_error, processed_at)"
        " VALUES ($1, $2, 'orders/create', '2026-07', now() - interval '1 hour',"
        " now() - interval '1 hour', $3::jsonb, 'failed', 1,"
        " 'financial_status: \"expired\" is not a valid value', now() - interval '1 hour')"
        " RETURNING id",
        shop,
        webhook_id,
        json.dumps(payload),
    )
    return ledger_id


@functools.cache
def password_hash() -> str:
    """PASSWORD's stored form, hashed once per process: each login checks it in full."""
    from piccolo.apps.user.tables import BaseUser

    return BaseUser.hash_password(PASSWORD)


async def create_user(url: str, username: str | None = None) -> str:
    """A console user (active admin), the way `console create-user` makes one."""
    username = username or f"operator-{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        await connection.execute(
            "INSERT INTO piccolo_user (username, password, email, active, admin, superuser)"
            " VALUES ($1, $2, $3, true, true, false)",
            username,
            password_hash(),
            f"{username}@example.com",
        )
    finally:
        await connection.close()
    return username


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """Piccolo Admin's login, as its page posts it (CSRF cookie and header)."""
    return await client.post(
        "/admin/public/login/",
        json={"username": username, "password": password},
        headers=await csrf(client),
    )


async def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    """The CSRF header for a POST: the token of the cookie the console's page sets."""
    if "csrftoken" not in client.cookies:
        page = await client.get("/admin/")
        assert page.status_code == 200, page.text
    return {"X-CSRFToken": client.cookies["csrftoken"]}


# --- the real service ----------------------------------------------------------

READY_WITHIN = 30.0


@dataclass
class Service:
    """`python -m app serve` with CONSOLE_ENABLED, against its own migrated database."""

    base_url: str
    database_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def console_service(database_url: str, log_path: Path, **env: str) -> Iterator[Service]:
    port = free_port()
    environment = cli_environment(
        database_url,
        SHOPIFY_API_SECRET=shopify.SECRET,
        CONSOLE_ENABLED="true",
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        **env,
    )
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"],
            env=environment,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(f"http://127.0.0.1:{port}", database_url, log_path)
    try:
        _wait_until_ready(process, service)
        yield service
    finally:
        _stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], service: Service) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the service exited:\n{service.log()[-3000:]}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(service.base_url + "/health/ready", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"not ready within {READY_WITHIN} s:\n{service.log()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def create_console_user(database_url: str, username: str, password: str) -> str:
    """The documented command, with the password on standard input; returns what it printed."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "console",
            "create-user",
            username,
            "--email",
            f"{username}@example.com",
        ],
        input=f"{password}\n",
        env=cli_environment(database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert password not in result.stdout + result.stderr
    return result.stdout
