"""The suites on a Citus cluster: CITUS_TEST_URL names its coordinator.

With CITUS_TEST_URL set, the session's server is that coordinator instead of
TEST_DATABASE_URL's, and each test database made there gets the citus
extension on every node and the nodes added before it is migrated (so
`migrate` distributes it, as it would in production). The cluster is the
tester's own (never built by the tests): a coordinator whose maintenance
database (the URL's) has citus with its workers added, and
`citus.enable_create_database_propagation = on` so that a database created
on the coordinator exists on the workers too.
"""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.support.servers import execute

URL = os.environ.get("CITUS_TEST_URL") or None

# For the tests of the distribution itself, which mean nothing without a cluster.
required = pytest.mark.skipif(
    URL is None, reason="CITUS_TEST_URL is not set: no Citus coordinator to test against"
)


_EXTENSION = (
    "CREATE EXTENSION IF NOT EXISTS citus WITH SCHEMA pg_catalog;\n\n"
    "COMMENT ON EXTENSION citus IS 'Citus distributed database';\n\n"
)


def without_extension(schema: str) -> str:
    """A schema dump of a coordinator's database as plain PostgreSQL's (the committed one)."""
    return schema.replace(_EXTENSION, "")


def _on(url: str, host: str, port: int, database: str) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}"))


async def prepare(server_url: str, name: str) -> None:
    """Citus in the new database `name` on every node, and its workers added."""
    connection = await asyncpg.connect(server_url, statement_cache_size=0)
    try:
        workers = await connection.fetch(
            "SELECT nodename, nodeport FROM pg_dist_node"
            " WHERE groupid <> 0 AND noderole = 'primary' AND isactive ORDER BY nodeid"
        )
    finally:
        await connection.close()
    if not workers:
        raise RuntimeError("CITUS_TEST_URL's coordinator has no active workers")
    for worker in workers:
        await execute(
            _on(server_url, worker["nodename"], worker["nodeport"], name),
            "CREATE EXTENSION IF NOT EXISTS citus",
        )
    coordinator = urlsplit(server_url)
    statements = (
        "CREATE EXTENSION IF NOT EXISTS citus",
        f"SELECT citus_set_coordinator_host('{coordinator.hostname}', {coordinator.port or 5432})",
        *(
            f"SELECT citus_add_node('{worker['nodename']}', {worker['nodeport']})"
            for worker in workers
        ),
    )
    url = _on(server_url, coordinator.hostname or "127.0.0.1", coordinator.port or 5432, name)
    for attempt in range(3):
        try:
            await execute(url, *statements)
            return
        except asyncpg.InternalServerError:
            # Two sessions adding nodes at once race on the worker's copy of the
            # role ("tuple concurrently updated"); every statement here can be run again.
            if attempt == 2:
                raise
            await asyncio.sleep(0.5)


async def drop(server_url: str, name: str) -> None:
    """Drop the database `name` on every node.

    A node may still hold a session in it a moment after the test (a
    connection Citus opened from the coordinator, its maintenance daemon), and
    WITH (FORCE) ends only the coordinator's: each node's are ended first, and
    the drop is tried again while one lingers.
    """
    connection = await asyncpg.connect(server_url, statement_cache_size=0)
    try:
        nodes = await connection.fetch(
            "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0 ORDER BY nodeid"
        )
    finally:
        await connection.close()
    maintenance = urlsplit(server_url).path.lstrip("/") or "postgres"
    for attempt in range(5):
        for node in nodes:
            await execute(
                _on(server_url, node["nodename"], node["nodeport"], maintenance),
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE datname = '{name}' AND pid <> pg_backend_pid()",
            )
        try:
            await execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except asyncpg.ObjectInUseError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.5)


async def where_shop_locks(url: str, shop: str) -> str:
    """The URL of the server where writers take `shop`'s advisory locks.

    On Citus the worker holding the shop's shards (ingest_lock_keys_at takes
    them there); on plain PostgreSQL the server of `url` itself.
    """
    connection = await asyncpg.connect(url, statement_cache_size=0, timeout=10)
    try:
        if await connection.fetchval("SELECT to_regclass('pg_catalog.pg_dist_partition') IS NULL"):
            return url
        node = await connection.fetchrow(
            "SELECT nodename, nodeport FROM pg_dist_shard_placement"
            " WHERE shardid = get_shard_id_for_distribution_column('shops', $1::text)",
            shop,
        )
    finally:
        await connection.close()
    assert node is not None, f"no placement of {shop}'s shard of shops"
    database = urlsplit(url).path.lstrip("/")
    return _on(url, node["nodename"], node["nodeport"], database)


async def other_worker(url: str, shop: str) -> str:
    """The URL of a worker other than the one holding `shop`'s shards."""
    holding = urlsplit(await where_shop_locks(url, shop))
    connection = await asyncpg.connect(url, statement_cache_size=0, timeout=10)
    try:
        node = await connection.fetchrow(
            "SELECT nodename, nodeport FROM pg_dist_node"
            " WHERE groupid <> 0 AND noderole = 'primary' AND isactive"
            " AND (nodename, nodeport) <> ($1::text, $2::integer) ORDER BY nodeid LIMIT 1",
            holding.hostname,
            holding.port,
        )
    finally:
        await connection.close()
    assert node is not None, "the cluster has one worker"
    database = urlsplit(url).path.lstrip("/")
    return _on(url, node["nodename"], node["nodeport"], database)


async def move_shop(url: str, shop: str, to: str) -> None:
    """Move `shop`'s shards (all its tables': one colocation group) to the worker of URL
    `to`, writes blocked while they copy, as an operator rebalancing the cluster would."""
    target = urlsplit(to)
    connection = await asyncpg.connect(url, statement_cache_size=0, timeout=10)
    try:
        await connection.execute(
            "SELECT citus_move_shard_placement(p.shardid, p.nodename, p.nodeport, $2, $3,"
            " shard_transfer_mode := 'block_writes')"
            " FROM pg_dist_shard_placement AS p"
            " WHERE p.shardid = get_shard_id_for_distribution_column('shops', $1::text)",
            shop,
            target.hostname,
            target.port,
        )
    finally:
        await connection.close()


# A transaction of its own, which uses up the id it reads.
_NEXT_TRANSACTION_ID = "SELECT pg_current_xact_id()::text::bigint"


async def next_transaction_id(url: str) -> int:
    """The transaction id the server of `url` gives next (its own counter)."""
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        return int(await connection.fetchval(_NEXT_TRANSACTION_ID))
    finally:
        await connection.close()


async def use_transaction_ids(url: str, beyond: int) -> None:
    """Transactions on the server of `url` until its next transaction id is past `beyond`."""
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        while int(await connection.fetchval(_NEXT_TRANSACTION_ID)) <= beyond:
            pass
    finally:
        await connection.close()
