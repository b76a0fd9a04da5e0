"""The connection pool, and transactions that finish or fail within a bounded time.

Shopify gives a delivery 5 seconds. Every wait here (pool acquire, each
statement, lock waits) is bounded so that a stuck or unreachable database
becomes a `DatabaseUnavailable` (answered 503) well inside that budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from app.config import Settings
from app.db.engine import Engine, create_engine

T = TypeVar("T")

Connection = asyncpg.Connection | PoolConnectionProxy

# SQLSTATE classes that mean "the database cannot serve us right now":
# 08 connection exception, 28 invalid authorization (the service's role is
# disabled or its password changed), 3D invalid catalog name (the database is
# gone), 53 insufficient resources, 57 operator intervention (includes 57014,
# statement timeout), 58 system error. 55P03: lock timeout.
_UNAVAILABLE_CLASSES = ("08", "28", "3D", "53", "57", "58")
_LOCK_TIMEOUT = "55P03"
# Deadlocks and serialization failures succeed when the transaction is retried.
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_RETRY_ATTEMPTS = 3


class DatabaseUnavailable(Exception):
    """The database did not answer in time or at all; nothing was committed (or it is unknown)."""


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, asyncpg.PostgresError):
        sqlstate = error.sqlstate or ""
        return sqlstate[:2] in _UNAVAILABLE_CLASSES or sqlstate == _LOCK_TIMEOUT
    # InternalClientError: asyncpg's protocol out of step after the server ended
    # the session under it (seen when the service's role is disabled).
    return isinstance(
        error, OSError | TimeoutError | asyncpg.InterfaceError | asyncpg.InternalClientError
    )


@dataclass
class Transaction:
    """An open transaction on one connection, with a deadline for every call."""

    connection: Connection
    deadline: float
    lock_timeout_ms: int

    def remaining(self) -> float:
        left = self.deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise TimeoutError("the database transaction ran out of time")
        return left

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self.connection.fetch(sql, *args, timeout=self.remaining())

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await self.connection.fetchrow(sql, *args, timeout=self.remaining())

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.connection.fetchval(sql, *args, timeout=self.remaining())

    async def execute(self, sql: str, *args: Any) -> str:
        return await self.connection.execute(sql, *args, timeout=self.remaining())

    async def commit(self) -> None:
        await self.execute("COMMIT")


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Replaces asyncpg's reset query on release.

    Sessions never carry state here (only SET LOCAL and transaction-scoped
    locks), and behind PgBouncer there is no session to reset, so the reset
    round trip on every release is skipped. An open transaction is still
    rolled back by asyncpg before this runs.
    """


# The array types the service's statements pass or read. asyncpg learns how to
# encode each one from the catalog, once per connection (its type
# introspection). On a Citus coordinator that query filters pg_class with a
# function per row to hide shards and takes seconds, long enough to push a
# delivery or an inline erasure past its deadline: each new connection learns
# them all at once, up front, with the filter off for that transaction (on
# plain PostgreSQL the setting is an unused placeholder).
_ARRAY_TYPES = (
    "SELECT NULL::uuid[], NULL::text[], NULL::varchar[], NULL::bigint[], NULL::integer[],"
    " NULL::jsonb[], NULL::numeric[], NULL::timestamptz[], NULL::boolean[]"
)


async def _learn_types(connection: asyncpg.Connection) -> None:
    async with connection.transaction():
        await connection.execute("SET LOCAL citus.override_table_visibility = off")
        await connection.fetchrow(_ARRAY_TYPES)


class Database:
    def __init__(
        self,
        engine: Engine,
        *,
        pool_size: int,
        acquire_timeout: float,
        statement_timeout: float,
        read_timeout: float = 10.0,
    ) -> None:
        self.engine = engine
        self.pool_size = pool_size
        self.acquire_timeout = acquire_timeout
        self.statement_timeout = statement_timeout
        self.read_timeout = read_timeout
        # Admin reads may hold a quarter of the pool (at least one connection),
        # and so may sync batches.
        self.read_share = max(1, pool_size // 4)
        self.sync_share = max(1, pool_size // 4)
        self._turns = asyncio.Semaphore(pool_size)
        self._reads = asyncio.Semaphore(self.read_share)
        self._syncs = asyncio.Semaphore(self.sync_share)
        # Whether the database has the citus extension (None: not known yet),
        # and the question in flight, which every caller meanwhile awaits.
        self._citus: bool | None = None
        self._citus_asked: asyncio.Task[bool] | None = None

    async def start(self) -> None:
        # asyncpg's pool hands out connections through an asyncio.Queue, whose
        # get() lets a newcomer take a connection that was freed for a woken
        # waiter; the waiter then queues again at the back. Under load (more
        # requests than connections) a few requests starved past the acquire
        # timeout and got 503. asyncio.Semaphore is first come, first served.
        self._turns = asyncio.Semaphore(self.pool_size)
        self._reads = asyncio.Semaphore(self.read_share)
        self._syncs = asyncio.Semaphore(self.sync_share)
        # min_size=0: starting never connects, so the service comes up (not
        # ready) while the database is down and recovers when it returns.
        await self.engine.start_connection_pool(
            min_size=0, max_size=self.pool_size, reset=_keep_session, init=_learn_types
        )

    async def stop(self) -> None:
        if self.engine.pool is not None:
            await self.engine.close_connection_pool()

    async def on_citus(self, deadline: float | None = None) -> bool:
        """Whether the database is a Citus coordinator (the citus extension installed).

        Asked on first use, not at start: the service starts while the
        database is down. The answer is kept: an extension does not come and
        go under a running service. The question is bounded by `deadline` like
        any call (behind PgBouncer a stopped server makes a query wait, not fail).
        """
        if self._citus is not None:
            return self._citus
        # One question for all who ask meanwhile: they go on together, in one
        # turn of the event loop (deliveries arriving together stay together).
        if (
            self._citus_asked is None
            or self._citus_asked.get_loop() is not asyncio.get_running_loop()
        ):
            self._citus_asked = asyncio.ensure_future(self._ask_citus(deadline))
            # A caller cancelled while it waits (shield) leaves the question
            # running: its failure is then nobody's, and is seen here.
            self._citus_asked.add_done_callback(_seen)
        try:
            self._citus = await asyncio.shield(self._citus_asked)
        except Exception:
            self._citus_asked = None  # asked again by the next caller
            raise
        return self._citus

    async def _ask_citus(self, deadline: float | None) -> bool:
        rows = await self.fetch(
            "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') AS found",
            deadline=deadline,
        )
        return bool(rows[0]["found"])

    @property
    def pool(self) -> asyncpg.Pool:
        pool: asyncpg.Pool | None = self.engine.pool
        if pool is None:
            raise RuntimeError("the connection pool is not started")
        return pool

    def pool_usage(self) -> tuple[int, int]:
        """(open connections, connections in use)."""
        pool = self.engine.pool
        if pool is None:
            return 0, 0
        size: int = pool.get_size()
        return size, size - pool.get_idle_size()

    def deadline(self, statement_timeout: float | None = None) -> float:
        """When a database call starting now must be over, in event loop time.

        DB_ACQUIRE_TIMEOUT + the statement timeout + 0.5 s: 4.5 s by default,
        inside Shopify's 5 s.
        """
        budget = self.acquire_timeout + (statement_timeout or self.statement_timeout) + 0.5
        return asyncio.get_running_loop().time() + budget

    @asynccontextmanager
    async def connection(self, deadline: float | None = None) -> AsyncIterator[Connection]:
        """A pooled connection; transport failures close it and become DatabaseUnavailable."""
        deadline = deadline or self.deadline()
        acquired_by = min(deadline, asyncio.get_running_loop().time() + self.acquire_timeout)
        async with self._turn(acquired_by), self._pooled_connection(acquired_by) as connection:
            yield connection

    @asynccontextmanager
    async def _turn(self, acquired_by: float) -> AsyncIterator[None]:
        """Waits, in arrival order, until a pooled connection is ours to take."""
        try:
            async with asyncio.timeout_at(acquired_by):
                await self._turns.acquire()
        except TimeoutError as error:
            raise DatabaseUnavailable("no database connection free in time") from error
        try:
            yield
        finally:
            self._turns.release()

    @asynccontextmanager
    async def _pooled_connection(self, acquired_by: float) -> AsyncIterator[Connection]:
        try:
            connection = await _acquire_by(self.pool, acquired_by)
        except Exception as error:
            # Whatever stops us from getting a connection (refused, login
            # refused, database missing, a bad server answer) is never the
            # request's fault: the caller answers 503.
            raise DatabaseUnavailable(f"no database connection: {describe_error(error)}") from error
        try:
            yield connection
        except BaseException as error:
            if _interrupted(error):
                # Releasing a connection whose query was interrupted waits for the
                # server; a stuck server would hang us, so close it instead.
                _terminate(connection)
            if is_unavailable(error):
                raise DatabaseUnavailable(
                    f"database unavailable: {describe_error(error)}"
                ) from error
            raise
        finally:
            await self.pool.release(connection)

    @asynccontextmanager
    async def transaction(
        self, *, deadline: float | None = None, statement_timeout: float | None = None
    ) -> AsyncIterator[Transaction]:
        """BEGIN (with timeouts) ... COMMIT, or ROLLBACK on any error."""
        deadline = deadline or self.deadline(statement_timeout)
        async with self.connection(deadline) as connection:
            transaction = Transaction(connection, deadline, self._timeout_ms(statement_timeout))
            try:
                await transaction.execute(self._begin_sql(statement_timeout))
                yield transaction
                await transaction.commit()
            except BaseException as error:
                # After an interruption, connection() closes the connection, which
                # aborts the transaction without a ROLLBACK that could hang.
                if not _interrupted(error):
                    await _rollback(connection)
                raise

    async def run_in_transaction(
        self,
        work: Callable[[Transaction], Awaitable[T]],
        *,
        statement_timeout: float | None = None,
    ) -> T:
        """Run `work` in a transaction, retrying deadlocks and serialization failures."""
        deadline = self.deadline(statement_timeout)

        async def attempt() -> T:
            async with self.transaction(
                deadline=deadline, statement_timeout=statement_timeout
            ) as transaction:
                return await work(transaction)

        return await _retried(attempt)

    async def fetch(
        self, sql: str, *args: Any, deadline: float | None = None
    ) -> list[asyncpg.Record]:
        """One statement in a transaction of its own; for the delivery functions.

        A function call is atomic by itself, so it needs no BEGIN and COMMIT
        round trips. Its time is bounded on the client side (asyncpg cancels
        the query at the deadline): behind PgBouncer a session setting such as
        statement_timeout would not stick, and SET LOCAL needs a BEGIN.
        Deadlocks and serialization failures are retried.
        """
        deadline = deadline or self.deadline()

        async def attempt() -> list[asyncpg.Record]:
            async with self.connection(deadline) as connection:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise TimeoutError("the database call ran out of time")
                rows: list[asyncpg.Record] = await connection.fetch(sql, *args, timeout=remaining)
                return rows

        return await _retried(attempt)

    @property
    def lock_timeout_ms(self) -> int:
        """How long a delivery may wait for a lock (its SQL functions set it themselves)."""
        return self._timeout_ms(None)

    def _timeout_ms(self, statement_timeout: float | None) -> int:
        return int((statement_timeout or self.statement_timeout) * 1000)

    def _begin_sql(self, statement_timeout: float | None) -> str:
        # One round trip, in the simple protocol; the value is a number we computed.
        timeout_ms = self._timeout_ms(statement_timeout)
        return (
            f"BEGIN; SET LOCAL statement_timeout = {timeout_ms};"
            f" SET LOCAL lock_timeout = {timeout_ms};"
        )

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Connection]:
        """A transaction for the admin API's reads: bounded in time and in number.

        At most `read_share` of the worker's connections serve reads at once,
        each statement limited to `read_timeout`, so that any number of slow
        admin queries leaves the rest of the pool to webhook deliveries.
        """
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(loop.time() + self.acquire_timeout):
                await self._reads.acquire()
        except TimeoutError as error:
            raise DatabaseUnavailable("admin reads are using their share of the pool") from error
        try:
            async with self.transaction(statement_timeout=self.read_timeout) as transaction:
                yield transaction.connection
        finally:
            self._reads.release()

    def give_the_pool_to_sync(self) -> None:
        """For a process that only syncs (`python -m app sync`): its batches may use the
        whole pool, whose size (DB_POOL_SIZE) is then the sync's share of the database."""
        self.sync_share = self.pool_size
        self._syncs = asyncio.Semaphore(self.sync_share)

    @asynccontextmanager
    async def sync_turn(self) -> AsyncIterator[None]:
        """A turn for a sync batch's writes: at most `sync_share` at once in this process.

        However many shops sync side by side, their batches queue here, so that
        webhook deliveries sharing the pool (and the database) keep their
        latency. Waiting is not bounded: a sync batch may wait its turn.
        """
        async with self._syncs:
            yield

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        url: str | None = None,
        *,
        pool_size: int | None = None,
        acquire_timeout: float | None = None,
        statement_timeout: float | None = None,
    ) -> Database:
        """The service's database as configured; commands and tools may size it differently."""
        return cls(
            create_engine(url or settings.database_url, settings.db_connect_timeout),
            pool_size=pool_size or settings.db_pool_size,
            acquire_timeout=acquire_timeout or settings.db_acquire_timeout,
            statement_timeout=statement_timeout or settings.db_statement_timeout,
            read_timeout=settings.admin_statement_timeout,
        )


# Releases of abandoned acquisitions' connections, kept until done (the loop
# keeps only weak references to tasks).
_releases: set[asyncio.Future[None]] = set()


async def _acquire_by(pool: asyncpg.Pool, acquired_by: float) -> PoolConnectionProxy:
    """A pooled connection by `acquired_by` (event loop time), or TimeoutError then.

    asyncpg's own acquire timeout (and a caller's cancellation) waits for the
    acquisition to clean up: behind PgBouncer with PostgreSQL stopped, a new
    connection's first query waits in PgBouncer, and asyncpg's cleanup waits
    for PgBouncer to answer the query's cancel request, which takes as long as
    PgBouncer pleases. So the acquisition runs apart, and is left to clean up
    on its own when time is up.
    """
    acquiring: asyncio.Future[PoolConnectionProxy] = asyncio.ensure_future(pool.acquire())
    try:
        remaining = acquired_by - asyncio.get_running_loop().time()
        done, _ = await asyncio.wait({acquiring}, timeout=max(remaining, 0.001))
    except asyncio.CancelledError:
        _abandon(pool, acquiring)
        raise
    if not done:
        _abandon(pool, acquiring)
        raise TimeoutError("no connection within the acquire timeout")
    return acquiring.result()


def _abandon(pool: asyncpg.Pool, acquiring: asyncio.Future[PoolConnectionProxy]) -> None:
    """Cancels an acquisition nobody waits for; a connection it still gets is closed."""
    acquiring.cancel()

    def close_late(finished: asyncio.Future[PoolConnectionProxy]) -> None:
        if finished.cancelled() or finished.exception() is not None:
            return
        # Closed, then handed back (at once, being closed): its caller is gone.
        connection = finished.result()
        _terminate(connection)
        _releases.add(release := asyncio.ensure_future(pool.release(connection)))
        release.add_done_callback(_releases.discard)

    acquiring.add_done_callback(close_late)


def _terminate(connection: Connection) -> None:
    # Fix: when the server drops the connection (shutdown, crash), asyncpg
    # detaches it from its pool proxy, and terminate() on the proxy raises
    # InterfaceError ("released back to the pool"). That error replaced the
    # DatabaseUnavailable below and the delivery got 500 instead of 503.
    # A detached connection is closed already: nothing is left to terminate.
    with suppress(asyncpg.InterfaceError):
        connection.terminate()


async def _retried(attempt: Callable[[], Awaitable[T]]) -> T:
    for number in range(1, _RETRY_ATTEMPTS + 1):
        try:
            return await attempt()
        except _RETRYABLE as error:
            if number == _RETRY_ATTEMPTS:
                raise DatabaseUnavailable(f"gave up after {number} attempts: {error}") from error
    raise AssertionError("unreachable")


def _interrupted(error: BaseException) -> bool:
    return is_unavailable(error) or isinstance(error, asyncio.CancelledError)


async def _rollback(connection: Connection) -> None:
    if connection.is_closed():
        return
    try:
        await connection.execute("ROLLBACK", timeout=1.0)
    except Exception:
        # The connection is in an unknown state: drop it rather than reuse it.
        connection.terminate()


def describe_error(error: BaseException) -> str:
    """An error's type and text, for logs and DatabaseUnavailable's message."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def is_database_failure(error: BaseException) -> bool:
    """Whether `error` came from talking to the database rather than from our own code.

    Anything the driver or the server raised (a refused login, a missing
    table after a bad restore, a dropped connection...) is an outage as far
    as a request is concerned: answered 503, never 500.
    """
    return isinstance(
        error,
        DatabaseUnavailable
        | asyncpg.PostgresError
        | asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | OSError
        | TimeoutError,
    )


def is_refused_value(error: BaseException) -> bool:
    """PostgreSQL refused a value it was given (SQLSTATE class 22, data exception)."""
    return isinstance(error, asyncpg.PostgresError) and (error.sqlstate or "").startswith("22")


def refused_by_database(error: BaseException) -> bool:
    """PostgreSQL refused what it was given: a value (class 22, data exception), or a
    document beyond its limits (class 54, e.g. JSON nested deeper than its stack allows)."""
    return isinstance(error, asyncpg.PostgresError) and (error.sqlstate or "")[:2] in ("22", "54")


def _seen(task: asyncio.Future[bool]) -> None:
    """Marks a finished task's exception as retrieved (its callers got it, or were gone)."""
    if not task.cancelled():
        task.exception()
