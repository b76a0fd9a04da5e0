"""PgBouncer running, PostgreSQL behind it stopped: every wait ends at its deadline.

PgBouncer that has met its server once lets clients log in while the server is
gone and holds their first query until a server connection comes back (or its
query_wait_timeout passes). asyncpg cancels such a query when its acquire
timeout ends, and then waits for PgBouncer to answer the cancel request, which
it does not while the client waits for a server. The service must not wait with
it: a delivery answers 503 by its deadline (DB_ACQUIRE_TIMEOUT plus
DB_STATEMENT_TIMEOUT, inside Shopify's 5 s) and a probe at its own timeout,
however long PgBouncer holds the query.

PostgreSQL is "stopped" here by a TCP relay in front of the test database that
stops listening and drops its connections, as a stopped server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest

from app.db.database import Database, DatabaseUnavailable
from app.db.engine import create_engine
from app.devtools.pgbouncer import PgBouncer
from app.devtools.stack import PGBOUNCER_SETTINGS
from app.health import READINESS_TIMEOUT, readiness_problem

pytestmark = pytest.mark.pgbouncer

ACQUIRE_TIMEOUT = 1.0
STATEMENT_TIMEOUT = 1.0
# Far above the acquire timeout: a call that waited for PgBouncer would show.
QUERY_WAIT_TIMEOUT = 30
SLACK = 1.0  # seconds of scheduling on a loaded machine
CALLS = 4


class Relay:
    """A TCP relay to PostgreSQL, which can be stopped like the server it stands for."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        """Stops listening (connections refused) and drops every open connection."""
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _relay(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter):
        server_reader, server = await asyncio.open_connection(*self.target)
        self.writers |= {client, server}
        try:
            await asyncio.gather(_pipe(client_reader, server), _pipe(server_reader, client))
        finally:
            for writer in (client, server):
                self.writers.discard(writer)
                writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    writer.transport.abort()


@pytest.fixture
async def database_behind_stopped_server(postgres_url: str) -> AsyncIterator[Database]:
    """The service's Database through PgBouncer, whose PostgreSQL has just stopped."""
    target = urlsplit(postgres_url)
    relay = Relay(target.hostname or "127.0.0.1", target.port or 5432)
    port = await relay.start()
    relayed = target._replace(netloc=f"{target.username or 'postgres'}@127.0.0.1:{port}")
    settings = {**PGBOUNCER_SETTINGS, "query_wait_timeout": str(QUERY_WAIT_TIMEOUT)}
    bouncer = await asyncio.to_thread(PgBouncer(relayed.geturl(), settings=settings).start)
    database = Database(
        create_engine(bouncer.url(), ACQUIRE_TIMEOUT),
        pool_size=4,
        acquire_timeout=ACQUIRE_TIMEOUT,
        statement_timeout=STATEMENT_TIMEOUT,
    )
    try:
        # PgBouncer meets its server (the service's pool stays empty: its
        # connections are new, as after a restart).
        met = await asyncpg.connect(bouncer.url(), statement_cache_size=0, timeout=10)
        await met.close()
        await relay.stop()
        await database.start()
        yield database
    finally:
        await database.stop()
        await asyncio.to_thread(bouncer.close)


def budget(database: Database) -> float:
    """Seconds a call starting now has (its deadline), and some for a loaded machine."""
    return database.deadline() - asyncio.get_running_loop().time() + SLACK


async def timed_call(database: Database) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        await database.fetch("SELECT 1")
    except DatabaseUnavailable as error:
        return time.monotonic() - started, error
    return time.monotonic() - started, None


async def test_calls_give_up_by_their_deadline(database_behind_stopped_server: Database) -> None:
    for _ in range(CALLS):
        elapsed, error = await timed_call(database_behind_stopped_server)
        assert isinstance(error, DatabaseUnavailable)
        assert elapsed < budget(database_behind_stopped_server), f"a call took {elapsed:.2f} s"


async def test_calls_at_once_give_up_by_their_deadline(
    database_behind_stopped_server: Database,
) -> None:
    started = time.monotonic()
    within = budget(database_behind_stopped_server)
    calls = await asyncio.gather(*(timed_call(database_behind_stopped_server) for _ in range(8)))
    assert all(isinstance(error, DatabaseUnavailable) for _, error in calls), calls
    assert time.monotonic() - started < within, calls


async def test_probes_answer_at_their_timeout(database_behind_stopped_server: Database) -> None:
    for _ in range(CALLS):
        started = time.monotonic()
        problem = await readiness_problem(database_behind_stopped_server)
        elapsed = time.monotonic() - started
        assert problem is not None and "database" in problem, problem
        assert elapsed < READINESS_TIMEOUT + SLACK, f"a probe took {elapsed:.2f} s"
