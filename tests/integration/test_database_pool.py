"""The connection pool when more requests want a connection than it holds."""

from __future__ import annotations

import asyncio
import dataclasses

from app.config import Settings
from tests.conftest import database_for


async def test_waiting_requests_get_connections_in_arrival_order(settings: Settings) -> None:
    # asyncpg's own queue lets a newcomer take a connection freed for a waiter,
    # which starved some requests past the acquire timeout under load (503s).
    database = database_for(dataclasses.replace(settings, db_pool_size=2))
    await database.start()
    served: list[int] = []

    async def request(number: int) -> None:
        async with database.connection() as connection:
            served.append(number)
            await connection.execute("SELECT pg_sleep(0.003)")

    async def open_connection() -> None:
        async with database.connection():
            await asyncio.sleep(0.05)

    try:
        # Both connections open first: connecting takes varying time.
        await asyncio.gather(open_connection(), open_connection())
        arrivals = []
        for number in range(80):
            arrivals.append(asyncio.create_task(request(number)))
            await asyncio.sleep(0.0005)
        await asyncio.gather(*arrivals)
    finally:
        await database.stop()

    assert len(served) == 80
    assert served == sorted(served)
