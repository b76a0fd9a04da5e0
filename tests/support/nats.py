"""NATS for the relay's tests: the machine's server on 127.0.0.1:4222, or one of a test's own.

Tests marked `nats` run only where the shared server listens and the
nats-server binary is installed (tests/conftest.py skips them otherwise, or
fails them under CI=true). Each test uses a stream and subject prefix of its
own, so that parallel tests never see each other's messages, and deletes its
stream at the end. A test that stops the broker starts its own server on a
free port with a store of its own: the shared one is never stopped.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from nats.js.errors import NotFoundError

SHARED_URL = "nats://127.0.0.1:4222"
NATS_SERVER = Path("/usr/sbin/nats-server")


def missing() -> str | None:
    """Why the `nats` tests cannot run here, or None."""
    if not NATS_SERVER.exists():
        return f"{NATS_SERVER} is not installed (apt-get install nats-server)"
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
    except OSError:
        return "nothing listens on 127.0.0.1:4222 (nats-server -a 127.0.0.1 -p 4222 -js)"
    return None


@dataclass(frozen=True)
class Names:
    stream: str
    subject: str


def unique_names() -> Names:
    token = uuid.uuid4().hex[:12]
    return Names(stream=f"TEST_EVENTS_{token}", subject=f"test.{token}.events")


@asynccontextmanager
async def stream_cleanup(url: str, names: Names) -> AsyncIterator[None]:
    """Deletes the test's stream afterwards (the relay creates it)."""
    try:
        yield
    finally:
        client = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=2)
        try:
            with suppress(NotFoundError):
                await client.jetstream().delete_stream(names.stream)
        finally:
            await client.close()


async def stream_messages(url: str, names: Names) -> list[dict[str, Any]]:
    """Every message in the stream, in order: its Nats-Msg-Id, subject, headers and body."""
    client = await nats.connect(url, connect_timeout=2)
    try:
        jetstream = client.jetstream()
        info = await jetstream.stream_info(names.stream)
        subscription = await jetstream.pull_subscribe(
            f"{names.subject}.>", stream=names.stream, durable=None
        )
        received: list[dict[str, Any]] = []
        while len(received) < info.state.messages:
            for message in await subscription.fetch(1000, timeout=5):
                received.append(
                    {
                        "subject": message.subject,
                        "headers": dict(message.headers or {}),
                        "data": message.data,
                    }
                )
                await message.ack()
        return received
    finally:
        await client.close()


async def stream_count(url: str, names: Names) -> int:
    client = await nats.connect(url, connect_timeout=2)
    try:
        try:
            info = await client.jetstream().stream_info(names.stream)
        except NotFoundError:
            return 0
        return int(info.state.messages)
    finally:
        await client.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class OwnServer:
    """A nats-server of the test's own (JetStream, a store in `directory`), stopped and started."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(NATS_SERVER),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def own_server(directory: Path) -> Iterator[OwnServer]:
    server = OwnServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def eventually(check: Any, within: float = 30.0) -> Any:
    """Await `check()` until it returns something true; that value."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s: {check}")
        await asyncio.sleep(0.1)
