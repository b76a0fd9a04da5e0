"""The full Admin API sync benchmark: `python -m app sync --full` against the stand-in.

A fresh, migrated PostgreSQL (the embedded one the rest of the benchmark uses)
and the Shopify stand-in as its own process (10,000 customers, 50,000 orders of
5 line items; 200 and 500 in --smoke). The shop's token is stored with
`python -m app shops set-token`, then the sync runs as a subprocess, exactly as
an operator would run it, while its RSS is sampled. Throughput comes from the
run record in sync_runs (what the service itself measured) and from the
subprocess's wall clock (what an operator waits); correctness from counting
what the database holds afterwards.

Targets (issue 23): at least 10,000 objects applied per second from the
moment the export is ready (the first bulk operation completed: its data
starts flowing) to the end, at least 5,000 per second over the whole run
including Shopify's export, and RSS growth under 100 MB over the process's
RSS once it has started up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg
import psutil
from cryptography.fernet import Fernet

from app.db.embedded import EmbeddedServer
from app.devtools.stack import MIGRATE_COMMAND, ROOT

SHOP = "bench.myshopify.com"
TOKEN = "shpat_bench_sync_token"
SCOPES = "read_customers,read_orders,read_all_orders"
API_VERSION = "2026-10"
SAMPLE_SECONDS = 0.05
TARGET_PER_SECOND = 5000.0
TARGET_PER_SECOND_FROM_EXPORT = 10000.0
TARGET_RSS_GROWTH_MB = 100.0
# The summary `python -m app sync` prints (app/cli/sync.py, _summary).
SUMMARY = re.compile(
    r"^(?P<shop>\S+): (?P<kind>\w+) sync of (?P<resources>\S+) (?P<status>\w+) "
    r"\(run (?P<run_id>[0-9a-f-]+)\): fetched (?P<fetched>\d+), applied (?P<applied>\d+), "
    r"stale (?P<stale>\d+), failed (?P<failed>\d+)"
)
# Log lines that mark the end of one phase and the start of the next, in order.
MILESTONES = ("bulk operation started", "bulk operation completed", "sync run ")


@dataclass(frozen=True)
class SyncSize:
    customers: int
    orders: int
    line_items: int
    # Whether the figures are held against the targets (not at smoke size,
    # where start-up and the bulk polls' 1 s waits dominate).
    judged: bool = True

    @property
    def objects(self) -> int:
        return self.customers + self.orders


FULL = SyncSize(customers=10_000, orders=50_000, line_items=5)
SMOKE = SyncSize(customers=200, orders=500, line_items=5, judged=False)


@dataclass
class SyncResult:
    customers: int
    orders: int
    line_items_per_order: int
    exit_code: int
    summary: dict[str, Any]
    status: str | None
    fetched: int
    applied: int
    stale: int
    failed: int
    run_seconds: float
    wall_seconds: float
    # The sync process's CPU: low against the wall clock means it mostly
    # waited (for PostgreSQL or the bulk operation), not Python.
    cpu_seconds: float
    applied_per_second: float
    applied_per_second_wall: float
    # Seconds until the first export was ready (the stand-in writing it, and the
    # sync's poll backoff): Shopify's time, not the service's work. The exports
    # of customers and orders run side by side.
    export_wait_seconds: float
    applied_per_second_excluding_export: float
    peak_rss_mb: float
    startup_rss_mb: float
    rss_growth_mb: float
    phases_seconds: dict[str, float]
    stored_customers: int
    stored_orders: int
    orders_with_other_line_item_counts: int
    counts_match: bool
    targets_met: dict[str, bool] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class _Observed:
    """What was seen of the sync subprocess from outside: exit, output, RSS over time."""

    exit_code: int
    wall_seconds: float
    cpu_seconds: float  # user + system of the sync process
    stdout: list[str]
    stderr: list[tuple[float, str]]  # (seconds since start, line)
    rss: list[tuple[float, int]]  # (seconds since start, bytes)


def measure_sync(size: SyncSize) -> SyncResult:
    """Run one full sync of a fresh database and return its figures (never raises on a
    failed sync: the result says what went wrong, so the report is still written)."""
    # The stand-in generates the shop's data while PostgreSQL starts.
    with _stand_in(size) as stand_in, _postgres() as url:
        env = _environment(url, _ready_url(stand_in, timeout=300.0))
        _store_token(env)
        observed = _run_sync(env, timeout=120.0 if size.objects < 5000 else 1800.0)
        record = asyncio.run(_run_record(url))
        stored = asyncio.run(_stored_counts(url, size.line_items))
    return _result(size, observed, record, stored)


# --- the parts --------------------------------------------------------------


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    """A private embedded PostgreSQL, migrated with the deployment's migrate command."""
    directory = Path(tempfile.mkdtemp(prefix="shopify-ingest-bench-sync-"))
    server = EmbeddedServer(directory / "pgdata")
    try:
        url = server.start()
        _check(
            subprocess.run(
                MIGRATE_COMMAND,
                env={**_base_environment(), "DATABASE_URL": url},
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        )
        yield url
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _stand_in(size: SyncSize) -> Iterator[subprocess.Popen[str]]:
    """The stand-in in its own process (its CPU is not the sync's); see _ready_url."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "app.devtools.standin", "--port", "0"),
            *("--shop", SHOP, "--token", TOKEN),
            *("--customers", str(size.customers), "--orders", str(size.orders)),
            *("--line-items", str(size.line_items)),
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready_url(process: subprocess.Popen[str], timeout: float) -> str:
    """Wait for the stand-in's `READY <url-template>` line (it generates the data first)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], 0.5)
        if readable:
            line = process.stdout.readline()
            if line.startswith("READY "):
                return line.split(maxsplit=1)[1].strip()
            seen.append(line)
            if not line and process.poll() is not None:
                break
    raise RuntimeError(f"the Shopify stand-in did not get ready:\n{''.join(seen)[-3000:]}")


def _base_environment() -> dict[str, str]:
    """Nothing from this process but PATH: the commands see only what they are given."""
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.defpath}",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
    }


def _environment(url: str, admin_url: str) -> dict[str, str]:
    return {
        **_base_environment(),
        "DATABASE_URL": url,
        "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "SHOPIFY_ADMIN_BASE_URL": admin_url,
        "SHOPIFY_API_VERSION": API_VERSION,
    }


def _store_token(env: dict[str, str]) -> None:
    """`python -m app shops set-token`, the token on standard input as operators give it."""
    _check(
        subprocess.run(
            [sys.executable, "-m", "app", "shops", "set-token", SHOP, "--scope", SCOPES],
            input=TOKEN + "\n",
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    )


def _check(completed: subprocess.CompletedProcess[str]) -> None:
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, completed.args))} exited {completed.returncode}:\n"
            f"{completed.stdout[-3000:]}{completed.stderr[-3000:]}"
        )


# --- running the sync -------------------------------------------------------


def _run_sync(env: dict[str, str], timeout: float) -> _Observed:
    """`python -m app sync --shop SHOP --full`, with its RSS sampled until it exits."""
    started = time.monotonic()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "sync", "--shop", SHOP, "--full"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    sampler = _RssSampler(process.pid, started)
    stdout = _LineReader(process.stdout, started)
    stderr = _LineReader(process.stderr, started)
    for thread in (sampler, stdout, stderr):
        thread.start()
    try:
        exit_code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        exit_code = process.wait()
    wall = time.monotonic() - started
    # Only the sync was reaped in between: the stand-in is waited for later.
    cpu = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu(usage_before)
    sampler.stop()
    stdout.join()
    stderr.join()
    lines = [line for _, line in stdout.lines]
    return _Observed(exit_code, wall, cpu, lines, stderr.lines, sampler.rss)


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


class _LineReader(threading.Thread):
    """Reads a pipe to the end, each line with when it arrived (logs are unbuffered)."""

    def __init__(self, stream: IO[str], started: float) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.started = started
        self.lines: list[tuple[float, str]] = []

    def run(self) -> None:
        for line in self.stream:
            self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))


class _RssSampler(threading.Thread):
    """RSS of the process and its children every SAMPLE_SECONDS, until stopped or gone."""

    def __init__(self, pid: int, started: float) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.started = started
        self.rss: list[tuple[float, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            rss = self._rss()
            if rss:
                self.rss.append((time.monotonic() - self.started, rss))
            self.stopping.wait(SAMPLE_SECONDS)

    def _rss(self) -> int:
        total = 0
        with contextlib.suppress(psutil.Error):
            for process in [self.root, *self.root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += process.memory_info().rss
        return total

    def stop(self) -> None:
        self.stopping.set()
        self.join()


# --- what the database says -------------------------------------------------


async def _run_record(url: str) -> dict[str, Any]:
    """The shop's one run in sync_runs (a fresh database holds no other)."""
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        rows = await connection.fetch(
            "SELECT status, fetched, applied, stale, failed,"
            " extract(epoch FROM finished_at - started_at)::float8 AS seconds"
            " FROM sync_runs WHERE shop_id = $1",
            SHOP,
        )
    finally:
        await connection.close()
    return dict(rows[0]) if len(rows) == 1 else {"runs": len(rows)}


async def _stored_counts(url: str, line_items: int) -> dict[str, int]:
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        customers = await connection.fetchval(
            "SELECT count(*) FROM customers WHERE shop_id = $1 AND deleted_at IS NULL", SHOP
        )
        orders = await connection.fetchval(
            "SELECT count(*) FROM orders WHERE shop_id = $1 AND deleted_at IS NULL", SHOP
        )
        other = await connection.fetchval(
            "SELECT count(*) FROM orders WHERE shop_id = $1"
            " AND coalesce(jsonb_array_length(line_items), -1) <> $2",
            SHOP,
            line_items,
        )
    finally:
        await connection.close()
    return {"customers": customers, "orders": orders, "other_line_items": other}


# --- the figures ------------------------------------------------------------


def _result(
    size: SyncSize, observed: _Observed, record: dict[str, Any], stored: dict[str, int]
) -> SyncResult:
    summary = _summary(observed.stdout)
    run_seconds = float(record.get("seconds") or 0.0)
    applied = int(record.get("applied") or 0)
    startup = _startup_rss(observed)
    peak = max((rss for _, rss in observed.rss), default=0)
    phases = _phases(observed)
    export_wait = _export_wait(observed)
    own_seconds = run_seconds - export_wait
    result = SyncResult(
        customers=size.customers,
        orders=size.orders,
        line_items_per_order=size.line_items,
        exit_code=observed.exit_code,
        summary=summary,
        status=record.get("status"),
        fetched=int(record.get("fetched") or 0),
        applied=applied,
        stale=int(record.get("stale") or 0),
        failed=int(record.get("failed") or 0),
        run_seconds=run_seconds,
        wall_seconds=observed.wall_seconds,
        cpu_seconds=observed.cpu_seconds,
        applied_per_second=applied / run_seconds if run_seconds else 0.0,
        applied_per_second_wall=applied / observed.wall_seconds,
        export_wait_seconds=export_wait,
        applied_per_second_excluding_export=applied / own_seconds if own_seconds > 0 else 0.0,
        peak_rss_mb=peak / 2**20,
        startup_rss_mb=startup / 2**20,
        rss_growth_mb=(peak - startup) / 2**20,
        phases_seconds=phases,
        stored_customers=stored["customers"],
        stored_orders=stored["orders"],
        orders_with_other_line_item_counts=stored["other_line_items"],
        counts_match=False,
    )
    result.problems = _problems(size, result, observed)
    result.counts_match = not result.problems
    if size.judged:
        result.targets_met = {
            "applied_per_second": result.applied_per_second >= TARGET_PER_SECOND,
            "applied_per_second_from_export_ready": result.applied_per_second_excluding_export
            >= TARGET_PER_SECOND_FROM_EXPORT,
            "rss_growth": result.rss_growth_mb < TARGET_RSS_GROWTH_MB,
        }
    return result


def _summary(stdout: list[str]) -> dict[str, Any]:
    """The one-line summary, parsed (empty when it is missing)."""
    for line in stdout:
        match = SUMMARY.match(line.strip())
        if match:
            fields: dict[str, Any] = match.groupdict()
            for name in ("fetched", "applied", "stale", "failed"):
                fields[name] = int(fields[name])
            return fields
    return {}


def _startup_rss(observed: _Observed) -> int:
    """RSS once the process has started up: at its first "bulk operation started" line.

    By then it has imported everything, opened its pool and HTTP client and read
    the credentials; the samples before are the interpreter still importing.
    Without that line (the run failed early), the last sample is used.
    """
    started = next((t for t, line in observed.stderr if MILESTONES[0] in line), None)
    if not observed.rss:
        return 0
    if started is None:
        return observed.rss[-1][1]
    before = [rss for t, rss in observed.rss if t <= started]
    return before[-1] if before else observed.rss[0][1]


def _phases(observed: _Observed) -> dict[str, float]:
    """Seconds between consecutive milestones of the run's log, from start to exit.

    E.g. "bulk operation started (customers) -> bulk operation completed
    (customers)" is the wait for Shopify's export; "... completed (customers)
    -> bulk operation started (orders)" is downloading and applying customers.
    """
    marks = [(0.0, "process start")]
    marks += [(at, name) for at, line in observed.stderr if (name := _milestone(line))]
    marks.append((observed.wall_seconds, "exit"))
    return {f"{a} -> {b}": round(tb - ta, 3) for (ta, a), (tb, b) in itertools.pairwise(marks)}


def _milestone(line: str) -> str | None:
    """A log line's milestone name, with its resource ("sync run succeeded" has both)."""
    entry = _json_or_none(line)
    message = str(entry.get("message", "")) if entry else ""
    if not entry or not message.startswith(MILESTONES):
        return None
    resource = str(entry.get("resource", ""))
    return f"{message} ({resource})" if resource and "," not in resource else message


def _export_wait(observed: _Observed) -> float:
    """From the first bulk operation started to the first one completed (its data flowing)."""
    started = [at for at, line in observed.stderr if _milestone(line) and MILESTONES[0] in line]
    ready = [at for at, line in observed.stderr if _milestone(line) and MILESTONES[1] in line]
    return min(ready) - min(started) if started and ready else 0.0


def _json_or_none(line: str) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _problems(size: SyncSize, result: SyncResult, observed: _Observed) -> list[str]:
    """Everything that makes the run incorrect (the benchmark then fails)."""
    problems = []
    if result.exit_code != 0:
        problems.append(f"the sync exited {result.exit_code}: {_tail(observed)}")
    if result.status != "succeeded":
        problems.append(f"run status {result.status!r}, expected 'succeeded'")
    if result.applied != size.objects or result.failed or result.stale:
        problems.append(
            f"run applied {result.applied} (stale {result.stale}, failed {result.failed}),"
            f" expected {size.objects}"
        )
    if result.summary.get("applied") != result.applied:
        problems.append(f"the printed summary {result.summary} disagrees with sync_runs")
    if (result.stored_customers, result.stored_orders) != (size.customers, size.orders):
        problems.append(
            f"database holds {result.stored_customers} customers and {result.stored_orders}"
            f" orders, expected {size.customers} and {size.orders}"
        )
    if result.orders_with_other_line_item_counts:
        problems.append(
            f"{result.orders_with_other_line_item_counts} orders do not have"
            f" {size.line_items} line items"
        )
    return problems


def _tail(observed: _Observed) -> str:
    return "\n".join(line for _, line in observed.stderr[-10:])


# --- printing ---------------------------------------------------------------


def print_sync(result: SyncResult) -> None:
    """The sync's table, in the style of the webhook load table."""
    print(
        f"\nfull sync ({result.customers} customers + {result.orders} orders"
        f" x {result.line_items_per_order} line items)"
    )
    print(
        "applied/s  applied/s wall  from export ready  run s  wall s  export s  CPU s"
        "  start RSS  peak RSS  RSS growth  counts"
    )
    print(
        f"{result.applied_per_second:9.0f}  {result.applied_per_second_wall:14.0f}  "
        f"{result.applied_per_second_excluding_export:17.0f}  "
        f"{result.run_seconds:5.1f}  {result.wall_seconds:6.1f}  "
        f"{result.export_wait_seconds:8.1f}  {result.cpu_seconds:5.1f}  "
        f"{result.startup_rss_mb:6.0f} MB  {result.peak_rss_mb:5.0f} MB  "
        f"{result.rss_growth_mb:7.0f} MB  {'ok' if result.counts_match else 'MISMATCH'}"
    )
    for phase, seconds in result.phases_seconds.items():
        print(f"  {seconds:7.2f} s  {phase}")
    if result.targets_met:
        met = result.targets_met
        print(
            f"targets: >= {TARGET_PER_SECOND_FROM_EXPORT:,.0f} applied/s from the export ready "
            f"{_verdict(met['applied_per_second_from_export_ready'])}, >= "
            f"{TARGET_PER_SECOND:,.0f} applied/s whole run {_verdict(met['applied_per_second'])},"
            f" RSS growth < {TARGET_RSS_GROWTH_MB:.0f} MB {_verdict(met['rss_growth'])}"
        )
    for problem in result.problems:
        print(f"PROBLEM: {problem}")


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"
