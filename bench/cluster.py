"""One PostgreSQL against a Citus cluster: the service's deliveries/s on each.

    uv run python -m bench.cluster \\
        --single postgresql://postgres@127.0.0.1:5432/postgres \\
        --cluster postgresql://postgres@127.0.0.1:9700/postgres

Both URLs name a server's maintenance database; the cluster's is a Citus
coordinator with its workers added (docs/scaling.md, "Running it"). For each
server, in alternating rounds, a new database: on the coordinator it gets
citus on every node before `migrate`, which distributes it. The service
(`python -m app serve`, 2 workers, straight to the database, as the
head-to-head runs it) is driven by wrk at 32 connections with the
head-to-head's ~3 KB orders/create deliveries over 8 shops
(generate_compact_orders), after an unmeasured warm-up.

Per run: deliveries/s processed (ledger rows of the run), other answers, p99,
CPU milliseconds per processed delivery of the service's processes and of
PostgreSQL (every node's postmaster and its children: the servers are on this
machine), the groups (one transaction each: distinct xmin of the run's ledger
rows, per shard on the cluster), and on the cluster the two-phase commits
(rows Citus wrote to pg_dist_transaction, with its recovery of prepared
transactions paused during the run and restored after).

The machine's two cores are shared by all of it: on one machine a cluster
measures Citus's overhead, not its capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

from app.devtools.stack import Stack
from bench.cpu import CpuMeter
from bench.deliveries import generate_compact_orders, write_lua_table
from bench.load import NO_DUPLICATES, wrk

SECRET = "bench-cluster-secret"
WORKERS = 2
CONNECTIONS = 32


@dataclass
class Run:
    server: str  # "single" or "cluster"
    round: int
    seconds: float
    processed: int
    other_answers: int
    per_second: float
    p99_ms: float
    service_cpu_ms: float
    postgres_cpu_ms: float
    groups: int
    two_phase_commits: int | None


def _database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _node(url: str, host: str, port: int) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def _fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def _nodes(url: str, cluster: bool) -> list[str]:
    """The maintenance URL of every node of the server (the coordinator first)."""
    if not cluster:
        return [url]
    rows = await _fetch(
        url,
        "SELECT nodename, nodeport FROM pg_dist_node"
        " WHERE noderole = 'primary' AND isactive ORDER BY groupid",
    )
    return [_node(url, row["nodename"], row["nodeport"]) for row in rows]


async def _postmaster(url: str) -> int:
    """The PID of the server's postmaster (the parent of this connection's backend)."""
    # Asked while the connection is open: its backend ends with it.
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        backend = await connection.fetchval("SELECT pg_backend_pid()")
        parent: int = psutil.Process(backend).ppid()
    finally:
        await connection.close()
    return parent


async def _create(url: str, cluster: bool) -> str:
    """A new empty database; on a cluster with citus on every node and its workers added."""
    name = f"bench_cluster_{uuid.uuid4().hex[:8]}"
    await _fetch(url, f'CREATE DATABASE "{name}"')
    if not cluster:
        return _database(url, name)
    nodes = await _nodes(url, cluster)
    for node in nodes:
        await _fetch(_database(node, name), "CREATE EXTENSION IF NOT EXISTS citus")
    coordinator = urlsplit(url)
    await _fetch(
        _database(url, name),
        "SELECT citus_set_coordinator_host($1, $2)",
        coordinator.hostname,
        coordinator.port or 5432,
    )
    for node in nodes[1:]:
        worker = urlsplit(node)
        await _fetch(
            _database(url, name), "SELECT citus_add_node($1, $2)", worker.hostname, worker.port
        )
    return _database(url, name)


async def _drop(url: str, database_url: str, cluster: bool) -> None:
    """Drop the run's database; on a cluster, each node's sessions in it ended first (a
    connection Citus opened to a worker may outlive the run by a moment)."""
    name = urlsplit(database_url).path.lstrip("/")
    for attempt in range(5):
        for node in await _nodes(url, cluster):
            await _fetch(
                node,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
        try:
            await _fetch(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except asyncpg.ObjectInUseError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.5)


async def _groups(database_url: str, run: str, cluster: bool) -> int:
    """Transactions that wrote the run's ledger rows: one per group of deliveries."""
    prefix = f"{run}-"
    if not cluster:
        rows = await _fetch(
            database_url,
            "SELECT count(DISTINCT xmin::text) AS n FROM webhook_events"
            " WHERE starts_with(webhook_id, $1)",
            prefix,
        )
        return int(rows[0]["n"])
    # xmin is each node's own transaction id: counted shard by shard (a group
    # of one shop writes one shard).
    rows = await _fetch(
        database_url,
        "SELECT result FROM run_command_on_shards('webhook_events', format("
        "'SELECT count(DISTINCT xmin::text) FROM %%s WHERE starts_with(webhook_id, %L)',"
        " $1::text))",
        prefix,
    )
    return sum(int(row["result"]) for row in rows)


async def _prepared(url: str) -> int:
    rows = await _fetch(url, "SELECT count(*) AS n FROM pg_dist_transaction")
    return int(rows[0]["n"])


async def _recovery(url: str, interval: str) -> None:
    """Citus's recovery of prepared transactions (which empties pg_dist_transaction)."""
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        if interval == "default":
            await connection.execute("ALTER SYSTEM RESET citus.recover_2pc_interval")
        else:
            await connection.execute(f"ALTER SYSTEM SET citus.recover_2pc_interval = '{interval}'")
        await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()


def _service_pid(stack: Stack) -> int:
    assert stack.process is not None
    return stack.process.pid


def _one_run(
    server: str, url: str, number: int, seconds: float, warmup: float, lua_table: Path
) -> Run:
    cluster = server == "cluster"
    database_url = asyncio.run(_create(url, cluster))
    try:
        env = {"LOG_LEVEL": "WARNING", "DATABASE_URL": database_url}
        with Stack(workers=WORKERS, secret=SECRET, env=env, database_url=database_url) as stack:
            wrk(stack.base_url, CONNECTIONS, warmup, lua_table, f"warm{number}", NO_DUPLICATES)
            nodes = asyncio.run(_nodes(url, cluster))
            postmasters = {f"pg{i}": asyncio.run(_postmaster(node)) for i, node in enumerate(nodes)}
            meter = CpuMeter(service=_service_pid(stack), **postmasters)
            prepared = asyncio.run(_prepared(database_url)) if cluster else 0
            run = f"r{number}{server[0]}{time.monotonic_ns()}"
            meter.start()
            started = time.monotonic()
            figures = wrk(stack.base_url, CONNECTIONS, seconds, lua_table, run, NO_DUPLICATES)
            elapsed = time.monotonic() - started
            cpu = meter.stop()
            time.sleep(1.0)  # answers wrk stopped waiting for still commit
            processed = int(
                asyncio.run(
                    _fetch(
                        database_url,
                        "SELECT count(*) AS n FROM webhook_events WHERE webhook_id LIKE $1",
                        f"{run}-%",
                    )
                )[0]["n"]
            )
            groups = asyncio.run(_groups(database_url, run, cluster))
            two_phase = asyncio.run(_prepared(database_url)) - prepared if cluster else None
    finally:
        asyncio.run(_drop(url, database_url, cluster))
    postgres = sum(value for name, value in cpu.items() if name.startswith("pg"))
    per = max(processed, 1)
    return Run(
        server=server,
        round=number,
        seconds=round(elapsed, 2),
        processed=processed,
        other_answers=int(figures["non_2xx"]) + int(figures["socket_errors"]),
        per_second=round(processed / elapsed, 1),
        p99_ms=round(figures["latency_us"]["p99"] / 1000, 1),
        service_cpu_ms=round(cpu["service"] * 1000 / per, 3),
        postgres_cpu_ms=round(postgres * 1000 / per, 3),
        groups=groups,
        two_phase_commits=two_phase,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--single", required=True, help="a plain PostgreSQL's maintenance URL")
    parser.add_argument("--cluster", required=True, help="a Citus coordinator's maintenance URL")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--deliveries", type=int, default=5000, help="distinct ~3 KB bodies")
    parser.add_argument("--json", type=Path, help="where to write the runs")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="shopify-ingest-bench-cluster-"))
    lua_table = workdir / "deliveries.lua"
    write_lua_table(generate_compact_orders(SECRET, count=args.deliveries), lua_table)
    runs: list[Run] = []
    asyncio.run(_recovery(args.cluster, "-1"))
    try:
        for number in range(args.rounds):
            order = ("single", "cluster") if number % 2 == 0 else ("cluster", "single")
            for server in order:
                url = args.single if server == "single" else args.cluster
                result = _one_run(server, url, number, args.duration, args.warmup, lua_table)
                runs.append(result)
                print(json.dumps(asdict(result)), flush=True)
    finally:
        asyncio.run(_recovery(args.cluster, "default"))
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(run) for run in runs], indent=2))


if __name__ == "__main__":
    main()
