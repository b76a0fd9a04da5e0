"""HTTP clients of the real app: on the test's own event loop, or through a real server.

Litestar's AsyncTestClient hands every request to a blocking portal and waits
for it, so requests sent with asyncio.gather through it still run one after
another. Tests about concurrency (and a test that must act while a request is
in flight) need the app to serve several requests at once: httpx's
ASGITransport does that, with the app's lifespan run by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn

from app.asgi import create_app
from app.config import Settings
from app.devtools.pgbouncer import free_port


@asynccontextmanager
async def concurrent_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (lifespan included) behind an httpx client, on the running loop."""
    app = create_app(settings)
    started, stopping = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        # Entered and left in this one task: the lifespan's anyio cancel scopes
        # require it, and pytest-asyncio sets a fixture up and tears it down in
        # different tasks.
        async with app.lifespan():
            started.set()
            await stopping.wait()

    task = asyncio.create_task(lifespan())
    ready = asyncio.create_task(started.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        task.result()  # raises the startup error
        raise RuntimeError("the app's lifespan ended during startup")
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver.local", timeout=30
        ) as client:
            yield client
    finally:
        stopping.set()
        await task


@asynccontextmanager
async def served(
    settings: Settings, *, port: int | None = None, max_connections: int = 100
) -> AsyncIterator[httpx.AsyncClient]:
    """The app behind a real HTTP server on a loopback port, and a client for it."""
    port = port or free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        access_log=False,  # as `python -m app serve` runs it: URLs can carry codes
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the start-up error
            raise RuntimeError("the server stopped during start-up")
        await asyncio.sleep(0.02)
    limits = httpx.Limits(max_connections=max_connections)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await task
