"""The benchmark: `uv run python -m bench` (see bench/README.md, with the figures).

Starts the production stack (PostgreSQL, PgBouncer in transaction mode,
migrations, `python -m app serve` with the image's worker count), then, once
with the service talking to PostgreSQL directly and once through PgBouncer:

- drives it with wrk at each connection count for a fixed duration, with
  realistic signed deliveries (bench/deliveries.py, ~5 % duplicates);
- records deliveries/s, latency percentiles, answers by status, the service's
  peak RSS, and CPU milliseconds per delivery of the service's processes, of
  PostgreSQL (the postmaster and all its children, from /proc), of PgBouncer
  and of the load generator (bench/cpu.py);
- checks that the ledger holds exactly the deliveries the service accepted;
- measures the ceiling: the service's own SQL in a bare asyncpg loop, and the
  textbook three-statement loop, with the same number of connections.

Then the head-to-head (bench/compare.py, alone with `--compare`): the service
with the image's worker count (others with --compare-workers) against the minimal-schema bare
loop (bench/bare.py) and the textbook Litestar service (bench/textbook.py),
in interleaved rounds, on two workloads (~3 KB orders/create deliveries of new
orders, and update storms on existing orders), straight to PostgreSQL;
throughput, p99, the CPU split, and the ratios.

`--events` (alone): customer scores and events on a shop of 200,000
customers: scoring passes, the feed and the relay (bench/events.py).

Then a full Admin API sync (`python -m app sync --full` against the Shopify
stand-in, bench/sync.py) on a database of its own; `--sync-only` runs just
that.

Prints a table and writes the same figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from app.config import DEFAULT_SYNC_CONCURRENCY, default_workers
from app.devtools.stack import SERVICE_DEFAULTS, Stack
from bench import ceiling, compare, fleet
from bench.cpu import CpuMeter, children_cpu_seconds, postmaster_pid, tree_cpu_seconds
from bench.deliveries import generate, write_lua_table
from bench.events import (
    FULL_CUSTOMERS,
    SMOKE_CUSTOMERS,
    EventsResult,
    measure_events,
    print_events,
)
from bench.load import accepted_by_service, ledger_rows, wrk
from bench.sync import FULL, SMOKE, SyncResult, measure_sync, print_sync

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret"
DUPLICATE_EVERY = 20  # 5 % of requests repeat the previous delivery
# --smoke: every run of the full benchmark, each just long enough to check its
# counts (its figures are not judged).
SMOKE_LOAD_SECONDS = 1.0
SMOKE_WARMUP_SECONDS = 0.5
SMOKE_CEILING_SECONDS = 0.5
SMOKE_COMPARE_SECONDS = 0.5
SMOKE_DELIVERIES = 1000


@dataclass
class LoadResult:
    configuration: str
    connections: int
    seconds: float
    requests: int
    deliveries_per_second: float
    latency_ms: dict[str, float]
    statuses: dict[str, int]
    ledger_rows: int
    accepted_by_service: int
    counts_match: bool
    service_peak_rss_mb: float
    service_cpu_seconds: float
    generator_cpu_seconds: float
    # CPU milliseconds per delivery the service handled (accepted + duplicates):
    # service, postgres, generator, and pgbouncer when it is in the path.
    cpu_ms_per_delivery: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    workers: int
    pool_size_per_worker: int
    deliveries: int
    load: list[LoadResult] = field(default_factory=list)
    ceilings: dict[str, dict[str, float]] = field(default_factory=dict)
    soak: dict[str, Any] | None = None
    compare: compare.CompareReport | None = None
    sync: SyncResult | None = None
    fleet: list[fleet.FleetResult] = field(default_factory=list)
    events: EventsResult | None = None


def main() -> int:
    args = _arguments()
    if not (args.sync_only or args.events) and shutil.which("wrk") is None:
        print("error: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    report = Report(args.workers, int(SERVICE_DEFAULTS["DB_POOL_SIZE"]), 0)
    if args.events:
        customers = args.events_customers or (SMOKE_CUSTOMERS if args.smoke else FULL_CUSTOMERS)
        report.events = measure_events(customers)
        print_events(report.events)
        return _write(args, report)
    if args.sync_fleet:
        _fleet(args, report)
    elif not args.sync_only:
        _webhooks(args, report)
    if not args.compare and not args.no_sync and not args.sync_fleet:
        # After the webhook runs, on its own database: the two never share the CPU.
        report.sync = measure_sync(SMOKE if args.smoke else FULL)
        print_sync(report.sync)
    _print_summary(report)
    return _write(args, report)


def _write(args: argparse.Namespace, report: Report) -> int:
    output = args.json or HERE / "results" / time.strftime("bench-%Y%m%d-%H%M%S.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(asdict(report), indent=2))
    print(f"\nfigures written to {output}")
    return 0 if _correct(report) else 1


def _correct(report: Report) -> bool:
    """Counts are what the benchmark asserts; the figures themselves never fail it."""
    sync_ok = report.sync is None or report.sync.counts_match
    compare_ok = report.compare is None or report.compare.counts_match
    fleet_ok = all(result.counts_match for result in report.fleet)
    events_ok = report.events is None or report.events.counts_match
    load_ok = all(result.counts_match for result in report.load)
    return sync_ok and compare_ok and fleet_ok and events_ok and load_ok


def _fleet(args: argparse.Namespace, report: Report) -> None:
    """`--sync-fleet`: one incremental pass over a fleet of shops per run and concurrency."""
    size = fleet.SMOKE if args.smoke else fleet.FULL
    if args.fleet_shops:
        size = dataclasses.replace(size, shops=args.fleet_shops)
    concurrencies = [int(n) for n in args.fleet_concurrency.split(",")]
    for _ in range(1 if args.smoke else args.fleet_runs):
        for concurrency in concurrencies:
            report.fleet.append(fleet.measure_fleet(size, concurrency))
            fleet.print_fleet(report.fleet[-1:])


def _webhooks(args: argparse.Namespace, report: Report) -> None:
    """The webhook load runs (direct and through PgBouncer), their ceilings, the soak, and
    the head-to-head."""
    connections = [16] if args.smoke else [int(n) for n in args.connections.split(",")]
    duration = SMOKE_LOAD_SECONDS if args.smoke else args.duration
    workdir = Path(tempfile.mkdtemp(prefix="shopify-ingest-bench-"))
    count = min(args.deliveries, SMOKE_DELIVERIES) if args.smoke else args.deliveries
    deliveries = generate(SECRET, count=count)
    lua_table = workdir / "deliveries.lua"
    write_lua_table(deliveries, lua_table)
    pool_size = report.pool_size_per_worker
    report.deliveries = len(deliveries)
    env = {"LOG_LEVEL": "INFO", "DB_POOL_SIZE": str(pool_size)}
    try:
        with Stack(workers=args.workers, secret=SECRET, env=env) as stack:
            if not args.compare:
                _realistic(args, report, stack, connections, duration, deliveries, lua_table)
            if args.compare or not args.no_compare:
                report.compare = compare.run(stack, _compare_options(args), workdir, SECRET)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _compare_options(args: argparse.Namespace) -> compare.Options:
    if args.smoke:
        return compare.Options(
            workers=[args.workers],
            rounds=1,
            seconds=SMOKE_COMPARE_SECONDS,
            # As in the full run: connections opened and plans made before the
            # measured run (new shops no longer wait for each other: bench/README.md).
            warmup_seconds=0.5,
            deliveries=500,
            update_orders=200,
            update_customers=50,
            latency_connections=None,
            settle_seconds=0.3,
            fresh_service=False,
        )
    return compare.Options(
        workers=[int(n) for n in args.compare_workers.split(",")],
        rounds=args.rounds,
        seconds=args.compare_duration,
        warmup_seconds=3.0,
        deliveries=args.compare_deliveries,
        workloads=tuple(name.strip() for name in args.workloads.split(",")),
        real_orders=args.compare_real_orders,
        events_off=args.compare_events_off,
    )


def _realistic(
    args: argparse.Namespace,
    report: Report,
    stack: Stack,
    connections: list[int],
    duration: float,
    deliveries: list[Any],
    lua_table: Path,
) -> None:
    """The realistic mix, direct and through PgBouncer, with ceilings; then the soak."""
    pool_size = report.pool_size_per_worker
    ceiling_seconds = SMOKE_CEILING_SECONDS if args.smoke else args.ceiling
    # The smoke run starts with the configuration the stack comes up in and ends
    # with the one the head-to-head uses, so neither needs a restart of the service.
    configurations = ("pgbouncer", "direct") if args.smoke else ("direct", "pgbouncer")
    for configuration in configurations:
        url = _use(stack, configuration)
        # Unmeasured: one pass through the deliveries fills the tables
        # (later passes mostly update) and warms the plan caches.
        _load(stack, configuration, 16, SMOKE_WARMUP_SECONDS if args.smoke else 8.0, lua_table, url)
        # The ceiling is measured before and after the load runs, and
        # averaged: the database grows during the run.
        before = _ceilings(url, deliveries, args.workers * pool_size, ceiling_seconds)
        for count in connections:
            result = _load(stack, configuration, count, duration, lua_table, url)
            report.load.append(result)
            _print_load(result)
        after = _ceilings(url, deliveries, args.workers * pool_size, ceiling_seconds)
        report.ceilings[configuration] = {name: (before[name] + after[name]) / 2 for name in before}
        print(f"  ceilings ({configuration}): before {before}, after {after}")
    if args.soak:
        report.soak = _soak(stack, args.soak, lua_table)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per load run")
    parser.add_argument("--connections", default="16,64,256")
    parser.add_argument("--ceiling", type=float, default=10.0, help="seconds per ceiling loop")
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="default: the service's own"
    )
    parser.add_argument("--deliveries", type=int, default=3000, help="distinct bodies")
    parser.add_argument("--smoke", action="store_true", help="a few seconds, for CI")
    parser.add_argument("--soak", type=float, default=0, help="seconds of RSS soak at 64 conns")
    parser.add_argument(
        "--sync-only", action="store_true", help="only the full Admin API sync (bench/sync.py)"
    )
    parser.add_argument(
        "--no-sync", action="store_true", help="leave the full Admin API sync out (see --sync-only)"
    )
    parser.add_argument(
        "--sync-fleet",
        action="store_true",
        help="only the fleet: one incremental pass over 3,000 shops (bench/fleet.py)",
    )
    parser.add_argument(
        "--fleet-concurrency",
        default=str(DEFAULT_SYNC_CONCURRENCY),
        help="fleet: SYNC_CONCURRENCY values to run, comma-separated (default: the service's)",
    )
    parser.add_argument("--fleet-runs", type=int, default=2, help="fleet: runs of each")
    parser.add_argument("--fleet-shops", type=int, default=0, help="fleet: shops (default 3,000)")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="only the head-to-head: service vs bare loop vs textbook service (bench/compare.py)",
    )
    parser.add_argument(
        "--no-compare", action="store_true", help="leave the head-to-head out of the full run"
    )
    parser.add_argument("--rounds", type=int, default=3, help="head-to-head: interleaved rounds")
    parser.add_argument(
        "--compare-duration", type=float, default=10.0, help="head-to-head: seconds per run"
    )
    parser.add_argument(
        "--compare-workers",
        default=str(default_workers()),
        help="head-to-head: service worker counts, in order (default: the service's own)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(compare.WORKLOADS),
        help="head-to-head: workloads, comma-separated (default: both)",
    )
    parser.add_argument(
        "--compare-deliveries", type=int, default=5000, help="head-to-head: distinct ~3 KB bodies"
    )
    parser.add_argument(
        "--compare-real-orders",
        action="store_true",
        help="head-to-head: counted orders instead of Shopify's test sample (each a first order"
        " announced as a customer event)",
    )
    parser.add_argument(
        "--compare-events-off",
        action="store_true",
        help="head-to-head: a fourth subject, the service with the customer events' triggers"
        " disabled, in every round (what announcing events costs)",
    )
    parser.add_argument(
        "--events",
        action="store_true",
        help="only customer scores and events: scoring, the feed, the relay (bench/events.py)",
    )
    parser.add_argument(
        "--events-customers",
        type=int,
        help=f"customers of the scored shop (default {FULL_CUSTOMERS}; --smoke {SMOKE_CUSTOMERS})",
    )
    parser.add_argument("--json", type=Path, help="where to write the figures")
    return parser.parse_args()


def _use(stack: Stack, configuration: str) -> str:
    """Restart the service talking to PostgreSQL directly or through PgBouncer (unless it
    already does)."""
    assert stack.postgres_url is not None
    url = stack.postgres_url if configuration == "direct" else stack.pgbouncer_url
    if stack.running and stack.service_environment()["DATABASE_URL"] == url:
        return url
    stack.stop_service()
    stack.extra_env["DATABASE_URL"] = url
    stack.start_service()
    return url


def _load(
    stack: Stack, configuration: str, connections: int, seconds: float, lua_table: Path, url: str
) -> LoadResult:
    run = f"{configuration}-c{connections}-{time.monotonic_ns()}"
    assert stack.postgres is not None and stack.pgbouncer is not None
    trees = {"postgres": postmaster_pid(stack.postgres.pgdata)}
    if configuration == "pgbouncer" and stack.pgbouncer.process is not None:
        trees["pgbouncer"] = stack.pgbouncer.process.pid
    sampler = _ServiceSampler(stack.pid)
    sampler.start()
    meter = CpuMeter(**trees).start()
    generator_before = children_cpu_seconds()
    figures = wrk(stack.base_url, connections, seconds, lua_table, run, DUPLICATE_EVERY)
    generator = children_cpu_seconds() - generator_before
    time.sleep(1.0)  # let requests still in flight when wrk stopped finish
    sampler.stop()
    others = meter.stop()
    rows = asyncio.run(ledger_rows(stack.postgres_url or url, run))
    accepted = accepted_by_service(stack.log(), run)
    latency = {name: value / 1000 for name, value in figures["latency_us"].items()}
    answered = figures["accepted"] + figures["duplicate"] + figures["non_2xx"]
    handled = max(1, accepted + figures["duplicate"])
    cpu = {"service": sampler.cpu_seconds, **others, "generator": generator}
    return LoadResult(
        configuration=configuration,
        connections=connections,
        seconds=figures["duration_us"] / 1e6,
        requests=figures["requests"],
        deliveries_per_second=answered / (figures["duration_us"] / 1e6),
        latency_ms=latency,
        statuses={
            "2xx_processed_or_other": figures["accepted"],
            "2xx_duplicate": figures["duplicate"],
            "non_2xx": figures["non_2xx"],
            "socket_errors": figures["socket_errors"],
            "timeouts": figures["timeouts"],
        },
        ledger_rows=rows,
        accepted_by_service=accepted,
        counts_match=rows == accepted and figures["accepted"] <= accepted,
        service_peak_rss_mb=sampler.peak_rss / 2**20,
        service_cpu_seconds=sampler.cpu_seconds,
        generator_cpu_seconds=generator,
        cpu_ms_per_delivery={name: 1000 * value / handled for name, value in cpu.items()},
    )


class _ServiceSampler(threading.Thread):
    """Samples the service's processes: summed RSS (peak kept) and CPU time used."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak_rss = 0
        self.running = True
        self.cpu_start = self._cpu()
        self.cpu_seconds = 0.0

    def _processes(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def _cpu(self) -> float:
        return tree_cpu_seconds(self.root.pid)

    def run(self) -> None:
        while self.running:
            rss = 0
            for process in self._processes():
                with contextlib.suppress(psutil.Error):
                    rss += process.memory_info().rss
            self.peak_rss = max(self.peak_rss, rss)
            time.sleep(0.2)

    def stop(self) -> None:
        self.running = False
        self.join()
        self.cpu_seconds = self._cpu() - self.cpu_start


def _ceilings(
    url: str, deliveries: list[Any], connections: int, seconds: float
) -> dict[str, float]:
    run = f"ceiling-{time.monotonic_ns()}"
    options = {"concurrency": connections, "seconds": seconds, "duplicate_every": DUPLICATE_EVERY}
    service = asyncio.run(ceiling.service_sql(url, deliveries, run=run + "-s", **options))
    reference = asyncio.run(ceiling.reference(url, deliveries, run=run + "-r", **options))
    return {
        "service_sql_per_second": service.per_second,
        "reference_per_second": reference.per_second,
    }


def _soak(stack: Stack, seconds: float, lua_table: Path) -> dict[str, Any]:
    """64 connections for `seconds`; RSS sampled every 10 s (it should stay flat)."""
    samples: list[float] = []
    sampler_stop = threading.Event()

    def sample() -> None:
        root = psutil.Process(stack.pid)
        while not sampler_stop.wait(10.0):
            processes = [root, *root.children(recursive=True)]
            samples.append(sum(p.memory_info().rss for p in processes) / 2**20)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    figures = wrk(
        stack.base_url, 64, seconds, lua_table, f"soak-{time.monotonic_ns()}", DUPLICATE_EVERY
    )
    sampler_stop.set()
    thread.join()
    return {
        "seconds": seconds,
        "requests": figures["requests"],
        "non_2xx": figures["non_2xx"],
        "rss_mb_every_10s": samples,
        "first_mb": samples[0] if samples else None,
        "last_mb": samples[-1] if samples else None,
    }


def _print_load(result: LoadResult) -> None:
    print(
        f"  {result.configuration:9} c={result.connections:<3} "
        f"{result.deliveries_per_second:7.0f}/s  p50 {result.latency_ms['p50']:6.1f} "
        f"p95 {result.latency_ms['p95']:6.1f} p99 {result.latency_ms['p99']:6.1f} "
        f"max {result.latency_ms['max']:7.1f} ms  non-2xx {result.statuses['non_2xx']}  "
        f"rss {result.service_peak_rss_mb:.0f} MB  CPU ms/delivery "
        f"{_cpu_split(result.cpu_ms_per_delivery)}  ledger {result.ledger_rows}"
        f"{' = ' if result.counts_match else ' != '}{result.accepted_by_service} accepted"
    )


def _cpu_split(cpu: dict[str, float]) -> str:
    return " ".join(f"{name} {value:.2f}" for name, value in cpu.items())


def _print_summary(report: Report) -> None:
    if report.load:
        _print_load_summary(report)
    if report.compare:
        compare.print_report(report.compare)
    if report.fleet:
        _print_fleet_summary(report.fleet)
    if report.sync:
        sync = report.sync
        print(
            f"full sync: {sync.applied_per_second:.0f} applied/s (run record), "
            f"{sync.applied_per_second_wall:.0f}/s wall clock, peak RSS {sync.peak_rss_mb:.0f} MB "
            f"(+{sync.rss_growth_mb:.0f} MB after start-up), counts "
            f"{'ok' if sync.counts_match else 'MISMATCH'}"
        )


def _print_fleet_summary(results: list[fleet.FleetResult]) -> None:
    print("\nfleet, min-max over runs per concurrency:")
    for concurrency in sorted({result.concurrency for result in results}):
        runs = [result for result in results if result.concurrency == concurrency]
        passes = [result.pass_seconds for result in runs]
        p99 = [result.webhook_latency_ms["p99"] for result in runs]
        own = [result.service_latency_ms["p99"] for result in runs]
        print(
            f"  concurrency {concurrency}: {runs[0].shops} shops, pass {min(passes):.1f}-"
            f"{max(passes):.1f} s (target < {fleet.TARGET_PASS_SECONDS:.0f} s), webhook p99 "
            f"{min(p99):.1f}-{max(p99):.1f} ms, the service's own {min(own):.1f}-{max(own):.1f} ms"
            f" (target < {fleet.TARGET_WEBHOOK_P99_MS:.0f} ms), "
            f"throttled runs {sum(result.throttled_runs for result in runs)}, counts "
            f"{'ok' if all(result.counts_match for result in runs) else 'MISMATCH'}"
        )


def _print_load_summary(report: Report) -> None:
    print(
        "\nconfiguration  conns  deliveries/s  %service-SQL  %reference  p50    p95    p99"
        "    max ms  non-2xx  peak RSS  CPU ms/delivery: service  postgres  pgbouncer  generator"
        "  counts"
    )
    for result in report.load:
        ceilings = report.ceilings.get(result.configuration, {})
        own = 100 * result.deliveries_per_second / ceilings.get("service_sql_per_second", 1e-9)
        ref = 100 * result.deliveries_per_second / ceilings.get("reference_per_second", 1e-9)
        latency = result.latency_ms
        cpu = result.cpu_ms_per_delivery
        print(
            f"{result.configuration:13}  {result.connections:5}  "
            f"{result.deliveries_per_second:12.0f}  {own:11.0f}%  {ref:9.0f}%  "
            f"{latency['p50']:5.1f}  {latency['p95']:5.1f}  {latency['p99']:5.1f}  "
            f"{latency['max']:8.1f}  {result.statuses['non_2xx']:7}  "
            f"{result.service_peak_rss_mb:6.0f} MB  {cpu.get('service', 0):24.2f}  "
            f"{cpu.get('postgres', 0):8.2f}  {cpu.get('pgbouncer', 0):9.2f}  "
            f"{cpu.get('generator', 0):9.2f}  {'ok' if result.counts_match else 'MISMATCH'}"
        )
    for configuration, figures in report.ceilings.items():
        print(
            f"ceiling {configuration}: service SQL {figures['service_sql_per_second']:.0f}/s, "
            f"reference 3-statement loop {figures['reference_per_second']:.0f}/s"
        )
    if report.soak:
        soak = report.soak
        print(
            f"soak: {soak['requests']} requests in {soak['seconds']:g} s, "
            f"non-2xx {soak['non_2xx']}; service RSS every 10 s (MB): "
            f"{[round(mb, 1) for mb in soak['rss_mb_every_10s']]}"
        )


if __name__ == "__main__":
    sys.exit(main())
