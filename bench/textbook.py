"""The textbook service: what a user would write instead of this one.

A minimal Litestar app: POST /webhooks/shopify checks the HMAC-SHA256
signature (hmac.compare_digest), decodes the JSON with msgspec and runs the
bare loop's three statements in one transaction on the minimal schema
(bench/bare.py: ledger insert of the raw payload, customer upsert, order
upsert), then answers 200 JSON. An asyncpg pool per worker, statement cache
off (as behind PgBouncer). No locks, no out-of-order rules, no totals, no
logs, no metrics, no limits.

Served by Uvicorn with the service's server options (app/cli/serve.py:
uvloop, httptools, no access log) and its worker count:

    TEXTBOOK_DATABASE_URL=... TEXTBOOK_SECRET=... TEXTBOOK_PORT=8100 \
        TEXTBOOK_WORKERS=2 python -m bench.textbook

`TextbookServer` starts and stops that as a subprocess for the benchmark.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
from litestar import Litestar, Request, get, post
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, ValidationException

from bench.bare import record_and_apply

ROOT = Path(__file__).resolve().parents[1]
POOL_SIZE = 10  # per worker, as the service's DB_POOL_SIZE default


def create_app() -> Litestar:
    secret = os.environ["TEXTBOOK_SECRET"].encode()
    database_url = os.environ["TEXTBOOK_DATABASE_URL"]

    async def open_pool(app: Litestar) -> None:
        app.state.pool = await asyncpg.create_pool(
            database_url, min_size=POOL_SIZE, max_size=POOL_SIZE, statement_cache_size=0
        )

    async def close_pool(app: Litestar) -> None:
        await app.state.pool.close()

    @post("/webhooks/shopify", status_code=200)
    async def webhook(request: Request[Any, Any, Any], state: State) -> dict[str, str]:
        body = await request.body()
        expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, request.headers.get("x-shopify-hmac-sha256", "")):
            raise NotAuthorizedException("invalid signature")
        shop = request.headers.get("x-shopify-shop-domain")
        webhook_id = request.headers.get("x-shopify-webhook-id")
        topic = request.headers.get("x-shopify-topic")
        if not (shop and webhook_id and topic):
            raise ValidationException("missing Shopify headers")
        async with state.pool.acquire() as connection:
            stored = await record_and_apply(connection, shop, webhook_id, topic, body)
        return {"status": "processed" if stored else "duplicate", "webhook_id": webhook_id}

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar([webhook, health], on_startup=[open_pool], on_shutdown=[close_pool])


def main() -> None:
    import uvicorn

    uvicorn.run(
        "bench.textbook:create_app",
        factory=True,
        host="127.0.0.1",
        port=int(os.environ.get("TEXTBOOK_PORT", "8100")),
        workers=int(os.environ.get("TEXTBOOK_WORKERS", "2")),
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


class TextbookServer:
    """`python -m bench.textbook` on a free loopback port, in its own process group."""

    def __init__(self, database_url: str, secret: str, workers: int) -> None:
        from app.devtools.pgbouncer import free_port

        self.database_url = database_url
        self.secret = secret
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the textbook service is not started"
        return self.process.pid

    def start(self, timeout: float = 60.0) -> TextbookServer:
        from app.devtools.stack import http_get

        env = {
            **os.environ,
            "TEXTBOOK_DATABASE_URL": self.database_url,
            "TEXTBOOK_SECRET": self.secret,
            "TEXTBOOK_PORT": str(self.port),
            "TEXTBOOK_WORKERS": str(self.workers),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.textbook"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the textbook service exited {self.process.returncode}")
            # Every worker opens its pool at start-up; a few answers mean both are serving.
            if all(http_get(self.base_url + "/health", 2.0)[0] == 200 for _ in range(4)):
                time.sleep(0.5)
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the textbook service was not ready within {timeout:g} s")

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def __enter__(self) -> TextbookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
