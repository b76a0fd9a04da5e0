"""The service started while its database is away, then the database appears.

A second `python -m app serve` (the stack's environment, its own port) is
started with DATABASE_URL pointing at something that does not answer:
- PgBouncer's port with PgBouncer stopped (a closed port);
- PostgreSQL itself, stopped (DATABASE_URL straight at its socket);
- PgBouncer running, PostgreSQL behind it stopped (compose's order of events
  when the database container restarts).
It must come up, be alive (/health 200) but not ready (/health/ready 503
naming the database, each probe within 1.5 s), answer deliveries 503 with
Retry-After; then, once the missing part is started, become ready and accept
deliveries without being restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.db.embedded import EmbeddedServer
from app.devtools.pgbouncer import PgBouncer, free_port
from app.devtools.stack import SERVICE_COMMAND, Stack, http_get
from tests.support import shopify
from tests.support.load import unique_shop

pytestmark = [pytest.mark.pgbouncer, pytest.mark.timed, pytest.mark.timeout(90)]

PROBE_WITHIN = 1.5  # seconds for one readiness probe to answer
ANSWER_WITHIN = 5.0  # seconds for a delivery's answer
READY_WITHIN = 5.0  # seconds from the database's return to ready
WAIT_AT_MOST = 20.0  # seconds to keep polling, to tell "slow" from "never"
STARTUP_WITHIN = 30.0


@dataclass
class Service:
    """One `python -m app serve` process (group) of this test, with its log."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    @property
    def running(self) -> bool:
        return self.process.poll() is None


@contextlib.contextmanager
def service(stack: Stack, database_url: str, log_path: Path) -> Iterator[Service]:
    port = free_port()
    env = {**stack.service_environment(), "PORT": str(port), "DATABASE_URL": database_url}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            SERVICE_COMMAND,
            env=env,
            cwd=stack.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Service(process, f"http://127.0.0.1:{port}", log_path)
    try:
        yield running
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_until_alive(running: Service) -> None:
    deadline = time.monotonic() + STARTUP_WITHIN
    while time.monotonic() < deadline:
        assert running.running, f"the service exited {running.process.returncode}:\n{running.log()}"
        status, _ = http_get(running.base_url + "/health", timeout=1.0)
        if status == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"/health did not answer 200 within {STARTUP_WITHIN} s:\n{running.log()}")


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    """The response, and the seconds it took (the request starts when awaited here)."""
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def deliver(http: httpx.AsyncClient, shop: str, order_id: int) -> httpx.Response:
    body = json.dumps(shopify.order(order_id, customer_id=order_id + 1)).encode()
    headers = shopify.headers("orders/create", body, shop=shop, webhook_id=f"start-{order_id}")
    return await http.post("/webhooks/shopify", content=body, headers=headers)


def bouncer(stack: Stack) -> PgBouncer:
    assert stack.pgbouncer is not None, "the stack is not started"
    return stack.pgbouncer


def postgres(stack: Stack) -> EmbeddedServer:
    assert stack.postgres is not None, "the stack is not started"
    return stack.postgres


def direct_url(stack: Stack) -> str:
    assert stack.postgres_url is not None, "the stack is not started"
    return stack.postgres_url


@dataclass(frozen=True)
class Absence:
    """How DATABASE_URL reaches the database, and which part is missing."""

    database_url: Callable[[Stack], str]
    part: Callable[[Stack], PgBouncer | EmbeddedServer]


ABSENCES = {
    "pgbouncer stopped": Absence(lambda stack: stack.pgbouncer_url, bouncer),
    "postgres stopped, direct": Absence(direct_url, postgres),
    "postgres stopped behind pgbouncer": Absence(lambda stack: stack.pgbouncer_url, postgres),
}


@pytest.mark.parametrize("absent", sorted(ABSENCES))
async def test_service_starts_without_database_and_becomes_ready_when_it_appears(
    absent: str, stack: Stack, tmp_path: Path
) -> None:
    absence = ABSENCES[absent]
    shop = unique_shop("no-db")
    part = absence.part(stack)
    part.stop()
    with service(stack, absence.database_url(stack), tmp_path / "service.log") as running:
        await asyncio.to_thread(wait_until_alive, running)
        async with httpx.AsyncClient(base_url=running.base_url, timeout=10.0) as http:
            # Alive, not ready, naming the database; twice (no cached answer, no hang).
            for _ in range(2):
                live, elapsed = await timed(http.get("/health"))
                assert (live.status_code, live.json()) == (200, {"status": "ok"})
                assert elapsed < PROBE_WITHIN
                ready, elapsed = await timed(http.get("/health/ready"))
                assert ready.status_code == 503, ready.text
                assert elapsed < PROBE_WITHIN, f"readiness took {elapsed:.2f} s"
                body = ready.json()
                assert body["status"] == "not ready" and body.get("database"), body
                assert ready.headers.get("retry-after")

            try:
                refused, elapsed = await timed(deliver(http, shop, 1))
            except httpx.TimeoutException as error:
                raise AssertionError(
                    f"no answer to a delivery within 10 s\n--- service log ---\n{running.log()}"
                    f"\n--- PgBouncer log (tail) ---\n{bouncer(stack).log()[-3000:]}"
                ) from error
            assert refused.status_code == 503, refused.text
            assert refused.headers.get("retry-after")
            assert elapsed < ANSWER_WITHIN, f"the 503 took {elapsed:.2f} s"

            # The database appears: ready, and deliveries accepted, same process.
            pid = running.process.pid
            await asyncio.to_thread(part.start)
            back = time.monotonic()
            became_ready = None
            while time.monotonic() - back < WAIT_AT_MOST:
                probe = await http.get("/health/ready")
                if probe.status_code == 200:
                    became_ready = time.monotonic() - back
                    break
                await asyncio.sleep(0.1)
            took = "never" if became_ready is None else f"after {became_ready:.2f} s"
            assert became_ready is not None and became_ready < READY_WITHIN, (
                f"not ready within {READY_WITHIN} s of the database's return ({took};"
                f" polled {WAIT_AT_MOST} s; last answer: {probe.text})\n"
                f"--- PgBouncer log (tail) ---\n{bouncer(stack).log()[-1500:]}"
            )
            accepted = await deliver(http, shop, 2)
            assert accepted.status_code == 200, f"{accepted.text}\n{running.log()}"
            assert accepted.json()["status"] == "processed"
            # Shopify's retry of the refused delivery goes through now.
            retried = await deliver(http, shop, 1)
            assert retried.json() == {"status": "processed", "webhook_id": "start-1"}
            assert running.running and running.process.pid == pid

    assert stack.postgres_url is not None
    connection = await asyncpg.connect(stack.postgres_url, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT webhook_id, status FROM webhook_events WHERE shop_id = $1 ORDER BY 1", shop
        )
        orders = await connection.fetchval("SELECT count(*) FROM orders WHERE shop_id = $1", shop)
    finally:
        await connection.close()
    assert [tuple(row) for row in rows] == [("start-1", "processed"), ("start-2", "processed")]
    assert orders == 2
