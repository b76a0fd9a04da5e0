"""Fault injection against the deployed topology (app/devtools/stack.py).

One Stack for the whole folder (embedded PostgreSQL, PgBouncer in transaction
mode, `python -m app migrate`, `python -m app serve` with two workers): its
start is most of a test's cost. Every test uses shops of its own. A test
that stops a part of the stack starts it again; `stack_whole` checks before
each test that every part runs, and restarts whatever a failed test left down.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from app.devtools.stack import Stack


def postgres_running(stack: Stack) -> bool:
    assert stack.postgres is not None
    try:
        stack.postgres.pg_ctl("status")
    except subprocess.CalledProcessError:
        return False
    return True


def pgbouncer_running(stack: Stack) -> bool:
    assert stack.pgbouncer is not None
    process = stack.pgbouncer.process
    return process is not None and process.poll() is None


def make_whole(stack: Stack) -> None:
    """Start whatever part of the stack is not running."""
    assert stack.postgres is not None and stack.pgbouncer is not None
    if not postgres_running(stack):
        stack.postgres.start()
    if not pgbouncer_running(stack):
        stack.pgbouncer.start()
    if not stack.running:
        stack.start_service()


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    with Stack(workers=2) as running:
        yield running


@pytest.fixture(autouse=True)
def stack_whole(stack: Stack) -> Stack:
    make_whole(stack)
    return stack


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the stack's PostgreSQL, opened after any restart in the test."""
    assert stack.postgres_url is not None
    connection = await asyncpg.connect(stack.postgres_url, timeout=10)
    yield connection
    await asyncio.wait_for(connection.close(), 5)
