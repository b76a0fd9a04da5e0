"""Where a workload's time goes: `uv run python -m bench.profile [--workload updates]`.

Starts the stack (embedded PostgreSQL with pg_stat_statements tracking
nested statements and auto_explain logging the plans of nested statements
slower than --explain-ms), seeds the workload's rows, then drives the
service with wrk for --seconds at --connections and prints:

- PostgreSQL: the top statements by total time (nested ones inside the SQL
  functions included), WAL bytes per delivery (pg_stat_wal), inserts,
  updates and the share of HOT updates of `orders` and `customers`
  (pg_stat_user_tables), and lock waits seen by sampling pg_locks;
- Python: with --py-spy, a py-spy profile of one worker (a flame graph SVG
  and the top functions), when py-spy is on PATH (`uv tool run py-spy`
  works too: pass --py-spy-command).

The figures go in bench/README.md with the date and this command.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from app.devtools.stack import Stack
from bench.compare import NEW_ORDERS, UPDATE_DUPLICATE_EVERY, UPDATES, execute
from bench.deliveries import generate_compact_orders, generate_update_storm, write_lua_table
from bench.load import NO_DUPLICATES, post_all, wrk

SECRET = "bench-secret"
SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements,auto_explain",
    "pg_stat_statements.track": "all",
    "auto_explain.log_nested_statements": "on",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "track_io_timing": "on",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--workload", choices=(NEW_ORDERS, UPDATES), default=UPDATES)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--explain-ms", type=float, default=20.0, help="auto_explain threshold")
    parser.add_argument("--py-spy-command", default="", help="e.g. 'uv tool run py-spy'")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="shopify-ingest-profile-"))
    if args.workload == UPDATES:
        storm = generate_update_storm(SECRET)
        deliveries, seed, duplicate_every = storm.updates, storm.seed, UPDATE_DUPLICATE_EVERY
    else:
        deliveries, seed, duplicate_every = generate_compact_orders(SECRET), [], NO_DUPLICATES
    lua_table = workdir / "deliveries.lua"
    write_lua_table(deliveries, lua_table)
    with Stack(workers=args.workers, secret=SECRET, env={"LOG_LEVEL": "WARNING"}) as stack:
        assert stack.postgres is not None and stack.postgres_url is not None
        url = stack.postgres_url
        asyncio.run(_configure(url, args.explain_ms))
        stack.stop_service()
        stack.postgres.pg_ctl("restart")
        stack.extra_env["DATABASE_URL"] = url
        stack.start_service()
        asyncio.run(execute(url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        if seed:
            asyncio.run(post_all(stack.base_url, seed, f"seed-{time.monotonic_ns()}", 16))
        # Warm: plans cached, pages in memory; then the counters start from zero.
        wrk(stack.base_url, args.connections, 3, lua_table, f"warm-{time.monotonic_ns()}", 20)
        asyncio.run(execute(url, "VACUUM (ANALYZE)"))
        asyncio.run(execute(url, "SELECT pg_stat_statements_reset()"))
        asyncio.run(execute(url, "SELECT pg_stat_reset()"))
        asyncio.run(execute(url, "SELECT pg_stat_reset_shared('wal')"))
        sampler = _LockSampler(url)
        sampler.start()
        spy = _py_spy(args, stack, workdir)
        figures = wrk(
            stack.base_url,
            args.connections,
            args.seconds,
            lua_table,
            f"profile-{time.monotonic_ns()}",
            duplicate_every,
        )
        sampler.stop()
        if spy is not None:
            spy.wait(timeout=60)
        answered = figures["accepted"] + figures["duplicate"]
        print(
            f"\n{args.workload}: {answered} deliveries in {figures['duration_us'] / 1e6:.1f} s "
            f"at {args.connections} connections, p99 {figures['latency_us']['p99'] / 1000:.1f} ms,"
            f" non-2xx {figures['non_2xx']}"
        )
        asyncio.run(_report(url, answered, args.top))
        print(f"\nlock waits seen in {sampler.samples} samples of pg_locks (every 10 ms):")
        for what, count in sampler.waits.most_common(10):
            print(f"  {count:6}  {what}")
        postgres_log = stack.postgres.pgdata / "log"
        print(f"\nauto_explain plans: the server log under {postgres_log} (or the stack's log)")
        if spy is not None:
            print(f"py-spy flame graph: {workdir / 'py-spy.svg'}")


async def _configure(url: str, explain_ms: float) -> None:
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        for name, value in {**SETTINGS, "auto_explain.log_min_duration": f"{explain_ms}ms"}.items():
            # A list setting is written unquoted (quoted, it would be one name).
            quoted = value if name == "shared_preload_libraries" else f"'{value}'"
            await connection.execute(f"ALTER SYSTEM SET {name} = {quoted}")
    finally:
        await connection.close()


def _py_spy(
    args: argparse.Namespace, stack: Stack, workdir: Path
) -> subprocess.Popen[bytes] | None:
    if not args.py_spy_command:
        return None
    workers = psutil.Process(stack.pid).children(recursive=True)
    worker = (
        max(workers, key=lambda p: p.cpu_times().user) if workers else psutil.Process(stack.pid)
    )
    return subprocess.Popen(
        [
            *shlex.split(args.py_spy_command),
            *("record", "--pid", str(worker.pid), "--duration", str(int(args.seconds))),
            *("--rate", "200", "--format", "flamegraph", "-o", str(workdir / "py-spy.svg")),
        ]
    )


async def _report(url: str, deliveries: int, top: int) -> None:
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        total = await connection.fetchval(
            "SELECT sum(total_exec_time) FROM pg_stat_statements WHERE toplevel"
        )
        rows = await connection.fetch(
            "SELECT toplevel, calls, total_exec_time, total_plan_time, rows,"
            " shared_blks_hit + shared_blks_read AS blocks, wal_bytes,"
            " regexp_replace(query, '\\s+', ' ', 'g') AS query"
            " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT $1",
            top,
        )
        print(f"\npg_stat_statements: top-level execution {total or 0:.0f} ms in all")
        print("  level   calls   total ms  ms/delivery  rows   WAL B/call  query")
        for row in rows:
            print(
                f"  {'top' if row['toplevel'] else 'nested':6} {row['calls']:7} "
                f"{row['total_exec_time']:9.0f} {row['total_exec_time'] / max(1, deliveries):11.3f}"
                f" {row['rows']:6} {float(row['wal_bytes']) / max(1, row['calls']):11.0f}"
                f"  {row['query'][:110]}"
            )
        wal: Any = await connection.fetchrow(
            "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal"
        )
        print(
            f"\nWAL: {float(wal['wal_bytes']) / max(1, deliveries):.0f} bytes, "
            f"{wal['wal_records'] / max(1, deliveries):.1f} records, "
            f"{wal['wal_fpi'] / max(1, deliveries):.2f} full-page images per delivery"
        )
        tables = await connection.fetch(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del"
            " FROM pg_stat_user_tables WHERE relname IN"
            " ('orders', 'customers', 'webhook_events', 'shops') ORDER BY relname"
        )
        print("table            inserts  updates  HOT updates")
        for table in tables:
            updates = table["n_tup_upd"]
            share = 100 * table["n_tup_hot_upd"] / updates if updates else 0.0
            print(
                f"  {table['relname']:14} {table['n_tup_ins']:8} {updates:8} "
                f"{table['n_tup_hot_upd']:8} ({share:.0f} %)"
            )
    finally:
        await connection.close()


class _LockSampler(threading.Thread):
    """Counts, every 10 ms, the lock requests that are waiting, by lock type and mode."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.waits: Counter[str] = Counter()
        self.samples = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        asyncio.run(self._sample())

    async def _sample(self) -> None:
        connection = await asyncpg.connect(self.url, statement_cache_size=0)
        try:
            while not self.stopping.is_set():
                rows = await connection.fetch(
                    "SELECT locktype, mode, relation::regclass::text AS relation"
                    " FROM pg_locks WHERE NOT granted"
                )
                self.samples += 1
                for row in rows:
                    self.waits[f"{row['locktype']} {row['mode']} {row['relation'] or ''}"] += 1
                await asyncio.sleep(0.01)
        finally:
            await connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join()


if __name__ == "__main__":
    main()
