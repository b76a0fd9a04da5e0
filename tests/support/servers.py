"""Statements on a PostgreSQL server outside any test database: creating and dropping them."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def execute(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()
