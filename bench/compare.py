"""The head-to-head: the service against what a developer would write instead.

Three subjects, on the same PostgreSQL (the stack's, no PgBouncer), the same
signed deliveries, in interleaved rounds (the order of the subjects rotates
from round to round), on two workloads (bench/deliveries.py):

- new orders: ~3 KB orders/create deliveries (generate_compact_orders:
  distinct orders and customers over 8 shops, every webhook id new, no
  duplicates; the list repeats every few seconds, so later passes update the
  same rows);
- updates: 2,000 existing orders of 500 customers in one shop (created
  before the rounds, unmeasured) re-delivered as orders/paid, orders/updated
  (twice, the same version) and orders/fulfilled, round-robin over the
  orders, 5 % duplicates (generate_update_storm);

and the subjects:

- service: `python -m app serve` with N workers, talking straight to
  PostgreSQL, driven by wrk (bench/wrk.lua) at 32 connections (throughput)
  and at 16 (latency);
- bare loop: 16 asyncio tasks in this process on an asyncpg pool, minimal
  schema in its own database, three statements per delivery, no HTTP
  (bench/bare.py);
- textbook: a minimal Litestar app doing the bare loop's work behind HTTP,
  Uvicorn with the same N workers and server options (bench/textbook.py),
  driven like the service.

Per run: deliveries/s, latency p50/p99/max, and CPU milliseconds per
delivery of the service's (or loop's) processes, of PostgreSQL (the
postmaster and all its children) and of wrk (bench/cpu.py), WAL bytes per
delivery, and the CPU the rest of the machine used meanwhile. Per round:
service/bare loop and service/textbook throughput ratios (at 32 connections);
over the rounds: min-max of each, per workload.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from app.devtools.stack import Stack
from bench import bare
from bench.cpu import (
    CpuMeter,
    children_cpu_seconds,
    own_cpu_seconds,
    postmaster_pid,
    system_busy_seconds,
)
from bench.deliveries import (
    Delivery,
    generate_compact_orders,
    generate_update_storm,
    write_lua_table,
)
from bench.load import NO_DUPLICATES, accepted_by_service, ledger_rows, post_all, wrk
from bench.textbook import TextbookServer

SERVICE, BARE, TEXTBOOK = "service", "bare loop", "textbook"
SUBJECTS = (SERVICE, BARE, TEXTBOOK)
# The same service process and database with the customer events' triggers
# disabled for the run: what announcing events costs, measured in the same rounds.
NO_EVENTS = "service, events off"
# The customer events' triggers, found by their functions (customer_events_*),
# enabled or disabled: %s is ENABLE or DISABLE.
EVENT_TRIGGERS = """
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT tr.tgrelid::regclass AS tab, tr.tgname AS name
             FROM pg_trigger AS tr JOIN pg_proc AS p ON p.oid = tr.tgfoid
             WHERE NOT tr.tgisinternal AND p.proname LIKE 'customer\\_events\\_%%' LOOP
        EXECUTE format('ALTER TABLE %%s %s TRIGGER %%I', t.tab, t.name);
    END LOOP;
END
$$
"""
NEW_ORDERS, UPDATES = "new orders", "updates"
WORKLOADS = (NEW_ORDERS, UPDATES)
UPDATE_DUPLICATE_EVERY = 20  # 5 %, as in the realistic mix


@dataclass(frozen=True)
class Workload:
    name: str
    deliveries: list[Delivery]  # what the runs send, cycling
    seed: list[Delivery]  # sent once before the rounds (the rows the runs update)
    duplicate_every: int  # every Nth request repeats the previous one


@dataclass(frozen=True)
class Options:
    workers: list[int]
    rounds: int
    seconds: float
    warmup_seconds: float
    deliveries: int  # new orders: distinct bodies
    workloads: tuple[str, ...] = WORKLOADS
    update_orders: int = 2000
    update_customers: int = 500
    throughput_connections: int = 32
    latency_connections: int | None = 16  # None: no separate latency run
    bare_tasks: int = 16
    settle_seconds: float = 1.0  # after wrk stops, inside the CPU window: in-flight requests end
    # Counted orders (not Shopify's sample's test orders): each delivery is then a
    # new customer's first order, announced as a customer event.
    real_orders: bool = False
    # The service restarted before each block, so that none inherits another's warm
    # caches (the smoke run, whose figures are not judged, keeps the one running).
    fresh_service: bool = True
    # A fourth subject in every round: the service with the event triggers disabled.
    events_off: bool = False

    @property
    def subjects(self) -> tuple[str, ...]:
        return (*SUBJECTS, NO_EVENTS) if self.events_off else SUBJECTS


@dataclass
class Run:
    workload: str
    workers: int  # the block's worker count (service and textbook; the bare loop is 1 process)
    round: int
    subject: str
    connections: int  # wrk connections, or the bare loop's tasks
    seconds: float
    committed: int  # ledger rows of this run (one per 2xx answer other than a duplicate)
    deliveries_per_second: float  # 2xx answers (bare loop: transactions) per second
    latency_ms: dict[str, float]
    non_2xx: int
    socket_errors: int
    # CPU ms per delivery (committed or duplicate): "service" (the service's or textbook's process
    # tree, or the bare loop's own process), "postgres", "generator" (wrk).
    cpu_ms_per_delivery: dict[str, float]
    counts_match: bool
    # WAL PostgreSQL wrote per committed delivery (the whole server's, pg_current_wal_lsn).
    wal_bytes_per_delivery: float = 0.0
    # Noise: CPU the rest of the machine used meanwhile (other processes, such as
    # other engineers' tests, and interrupt time, which includes some of the
    # loopback network's work), as a share of all cores over the run.
    other_cpu_share: float = 0.0


@dataclass
class Ratio:
    workload: str
    workers: int
    round: int
    service_over_bare: float
    service_over_textbook: float
    textbook_over_bare: float
    # With the events-off subject: (service / bare loop) / (events off / bare loop).
    events_on_over_off: float | None = None


@dataclass
class CompareReport:
    options: dict[str, Any]
    body_bytes_mean: dict[str, float]
    runs: list[Run] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    # Per workload, per worker count: per subject min-max of throughput, p99 and
    # CPU; the ratios' min-max.
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def counts_match(self) -> bool:
        return all(run.counts_match for run in self.runs)


def run(stack: Stack, options: Options, workdir: Path, secret: str) -> CompareReport:
    assert stack.postgres is not None and stack.postgres_url is not None
    workloads = [_workload(name, options, secret) for name in options.workloads]
    report = CompareReport(
        options=asdict(options),
        body_bytes_mean={
            w.name: statistics.fmean(len(d.body) for d in w.deliveries) for w in workloads
        },
    )
    pg_pid = postmaster_pid(stack.postgres.pgdata)
    minimal_url = asyncio.run(bare.create_minimal_database(stack.postgres_url))
    original_workers = stack.workers
    try:
        for workload in workloads:
            lua_table = workdir / f"compare-{workload.name.replace(' ', '-')}.lua"
            write_lua_table(workload.deliveries, lua_table)
            print(
                f"\nhead-to-head, {workload.name}: {len(workload.deliveries)} bodies of "
                f"{report.body_bytes_mean[workload.name]:.0f} bytes, {options.rounds} rounds of "
                f"{options.seconds:g} s, straight to PostgreSQL"
            )
            subjects = _Subjects(stack, options, lua_table, workload, minimal_url, pg_pid)
            for workers in options.workers:
                _block(subjects, report, workers, secret)
    finally:
        stack.workers = original_workers
        asyncio.run(bare.drop_minimal_database(stack.postgres_url))
    for workload in workloads:
        report.summary[workload.name] = {
            str(workers): _summary(report, workload.name, workers, options)
            for workers in options.workers
        }
    return report


def _workload(name: str, options: Options, secret: str) -> Workload:
    if name == NEW_ORDERS:
        deliveries = generate_compact_orders(
            secret, count=options.deliveries, real_orders=options.real_orders
        )
        return Workload(name, deliveries, [], NO_DUPLICATES)
    storm = generate_update_storm(
        secret, orders=options.update_orders, customers=options.update_customers
    )
    return Workload(name, storm.updates, storm.seed, UPDATE_DUPLICATE_EVERY)


def _block(subjects: _Subjects, report: CompareReport, workers: int, secret: str) -> None:
    """Restart the service with `workers`, start the textbook service alike, run the rounds."""
    stack, options, workload = subjects.stack, subjects.options, subjects.workload
    unchanged = stack.running and stack.workers == workers
    unchanged = unchanged and stack.service_environment()["DATABASE_URL"] == stack.postgres_url
    if options.fresh_service or not unchanged:
        stack.workers = workers
        stack.stop_service()
        stack.extra_env["DATABASE_URL"] = stack.postgres_url or ""
        stack.start_service()
    with TextbookServer(subjects.minimal_url, secret, workers) as textbook:
        subjects.textbook = textbook
        if workload.seed:
            # Unmeasured: the rows the workload updates (the minimal database's
            # once, for the bare loop and the textbook service alike).
            subjects.seed(workers)
        if options.warmup_seconds:
            # Unmeasured: connections opened, plans and caches warm, first pages written.
            warmup, busy = options.warmup_seconds, options.throughput_connections
            subjects.service(workers, -1, busy, warmup)
            subjects.bare(workers, -1, warmup)
            subjects.http(TEXTBOOK, workers, -1, busy, warmup)
        # What the runs before left behind (autovacuum work, plans made while a
        # table was empty) used to land on whichever subject ran first; fresh
        # statistics make every session plan afresh. Each run then starts after
        # a checkpoint (`_checkpoint`), so none writes out the pages of another.
        for url in (stack.postgres_url, subjects.minimal_url):
            assert url is not None
            asyncio.run(execute(url, "VACUUM (ANALYZE)"))
        subjects_in_round = options.subjects
        for number in range(options.rounds):
            turn = number % len(subjects_in_round)
            order = subjects_in_round[turn:] + subjects_in_round[:turn]
            runs: list[Run] = []
            for subject in order:
                if subject == BARE:
                    runs.append(subjects.bare(workers, number, options.seconds))
                    continue
                for connections in (options.throughput_connections, options.latency_connections):
                    if connections:
                        runs.append(
                            subjects.http(subject, workers, number, connections, options.seconds)
                        )
            for result in runs:
                _print_run(result)
            report.runs += runs
            report.ratios.append(_ratio(runs, workload.name, workers, number, options))
            ratio = report.ratios[-1]
            events = (
                f", events on/off {ratio.events_on_over_off:.3f}"
                if ratio.events_on_over_off is not None
                else ""
            )
            print(
                f"  round {number + 1}, {workload.name}, {workers} worker(s): service/bare loop "
                f"{ratio.service_over_bare:.2f}, service/textbook {ratio.service_over_textbook:.2f}"
                f"{events}"
            )


class _Subjects:
    """Runs one measured (or, with round -1, unmeasured warm-up) run of a subject."""

    def __init__(
        self,
        stack: Stack,
        options: Options,
        lua_table: Path,
        workload: Workload,
        minimal_url: str,
        pg_pid: int,
    ) -> None:
        self.stack = stack
        self.options = options
        self.lua_table = lua_table
        self.workload = workload
        self.minimal_url = minimal_url
        self.pg_pid = pg_pid
        self.textbook: TextbookServer | None = None
        self.minimal_seeded = False

    def seed(self, workers: int) -> None:
        """The workload's seed deliveries, once through the service and once into the
        minimal database."""
        run_id = f"seed-{workers}-{time.monotonic_ns()}"
        answered = asyncio.run(
            post_all(self.stack.base_url, self.workload.seed, run_id, self.options.bare_tasks)
        )
        if answered != len(self.workload.seed):
            raise RuntimeError(f"seeding: {answered} of {len(self.workload.seed)} answered 2xx")
        if not self.minimal_seeded:
            asyncio.run(bare.seed(self.minimal_url, self.workload.seed, run_id))
            self.minimal_seeded = True

    def service(self, workers: int, number: int, connections: int, seconds: float) -> Run:
        return self.http(SERVICE, workers, number, connections, seconds)

    def http(
        self, subject: str, workers: int, number: int, connections: int, seconds: float
    ) -> Run:
        if subject in (SERVICE, NO_EVENTS):
            base_url, pid = self.stack.base_url, self.stack.pid
        else:
            assert self.textbook is not None
            base_url, pid = self.textbook.base_url, self.textbook.pid
        tag = {SERVICE: "svc", NO_EVENTS: "off"}.get(subject, "txb")
        target = (subject, base_url, pid, tag, workers, number, connections, seconds)
        if subject == NO_EVENTS:
            self._event_triggers(enabled=False)
            try:
                return self._http(*target)
            finally:
                self._event_triggers(enabled=True)
        return self._http(*target)

    def _event_triggers(self, *, enabled: bool) -> None:
        assert self.stack.postgres_url is not None
        action = "ENABLE" if enabled else "DISABLE"
        asyncio.run(execute(self.stack.postgres_url, EVENT_TRIGGERS % action))

    def _http(
        self,
        subject: str,
        base_url: str,
        pid: int,
        tag: str,
        workers: int,
        number: int,
        connections: int,
        seconds: float,
    ) -> Run:
        run_id = f"cmp-{tag}-w{workers}-r{number}-c{connections}-{time.monotonic_ns()}"
        wal_before = self._checkpoint()
        noise = _Noise()
        meter = CpuMeter(service=pid, postgres=self.pg_pid).start()
        generator_before = children_cpu_seconds()
        figures = wrk(
            base_url, connections, seconds, self.lua_table, run_id, self.workload.duplicate_every
        )
        generator = children_cpu_seconds() - generator_before
        time.sleep(self.options.settle_seconds)
        cpu = {**meter.stop(), "generator": generator}
        other_share = noise.share(sum(cpu.values()))
        wal = self._wal() - wal_before
        if subject in (SERVICE, NO_EVENTS):
            assert self.stack.postgres_url is not None
            committed = asyncio.run(ledger_rows(self.stack.postgres_url, run_id))
            accepted = accepted_by_service(self.stack.log(), run_id)
            counts_match = committed == accepted and figures["accepted"] <= accepted
        else:
            committed = asyncio.run(bare.ledger_rows(self.minimal_url, run_id))
            # The answers wrk counted were committed; at most one request per
            # connection was in flight when it stopped.
            counts_match = figures["accepted"] <= committed <= figures["accepted"] + connections
        duration = figures["duration_us"] / 1e6
        answered_2xx = figures["accepted"] + figures["duplicate"] + figures["other_2xx"]
        return Run(
            workload=self.workload.name,
            workers=workers,
            round=number,
            subject=subject,
            connections=connections,
            seconds=duration,
            committed=committed,
            deliveries_per_second=answered_2xx / duration,
            latency_ms={name: figures["latency_us"][name] / 1000 for name in ("p50", "p99", "max")},
            non_2xx=figures["non_2xx"],
            socket_errors=figures["socket_errors"] + figures["timeouts"],
            cpu_ms_per_delivery=_per_delivery(cpu, committed + figures["duplicate"]),
            counts_match=counts_match and figures["non_2xx"] == 0,
            wal_bytes_per_delivery=wal / max(1, committed),
            other_cpu_share=other_share,
        )

    def bare(self, workers: int, number: int, seconds: float) -> Run:
        run_id = f"cmp-bare-w{workers}-r{number}-{time.monotonic_ns()}"
        wal_before = self._checkpoint()
        noise = _Noise()
        result = asyncio.run(
            bare.bare_loop(
                self.minimal_url,
                self.workload.deliveries,
                run=run_id,
                seconds=seconds,
                postmaster_pid=self.pg_pid,
                tasks=self.options.bare_tasks,
                duplicate_every=self.workload.duplicate_every,
            )
        )
        other_share = noise.share(result.postgres_cpu_seconds)  # the loop is this process
        wal = self._wal() - wal_before
        committed = asyncio.run(bare.ledger_rows(self.minimal_url, run_id))
        cpu = {
            "service": result.loop_cpu_seconds,
            "postgres": result.postgres_cpu_seconds,
            "generator": 0.0,
        }
        return Run(
            workload=self.workload.name,
            workers=workers,
            round=number,
            subject=BARE,
            connections=self.options.bare_tasks,
            seconds=result.seconds,
            committed=committed,
            deliveries_per_second=result.per_second,
            latency_ms=result.latency_ms,
            non_2xx=0,
            socket_errors=0,
            cpu_ms_per_delivery=_per_delivery(cpu, committed + result.duplicates),
            counts_match=committed == result.transactions,
            wal_bytes_per_delivery=wal / max(1, committed),
            other_cpu_share=other_share,
        )

    def _wal(self) -> int:
        """The server's current WAL position, in bytes."""
        assert self.stack.postgres_url is not None
        return asyncio.run(wal_position(self.stack.postgres_url))

    def _checkpoint(self) -> int:
        """A checkpoint, so that no run writes out the pages of the run before; the WAL position."""
        assert self.stack.postgres_url is not None
        return asyncio.run(wal_position(self.stack.postgres_url, checkpoint=True))


async def wal_position(url: str, *, checkpoint: bool = False) -> int:
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        if checkpoint:
            await connection.execute("CHECKPOINT")
        position: int = await connection.fetchval(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
        )
        return position
    finally:
        await connection.close()


async def execute(url: str, *statements: str) -> None:
    """The statements one after another on a connection of their own."""
    connection = await asyncpg.connect(url, statement_cache_size=0)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


class _Noise:
    """The machine's busy CPU time outside the measured processes and this one."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.busy = system_busy_seconds()
        self.own = own_cpu_seconds()

    def share(self, measured_seconds: float) -> float:
        """Other processes' CPU seconds over the interval, per core-second (0..1)."""
        elapsed = time.perf_counter() - self.started
        busy = system_busy_seconds() - self.busy
        own = own_cpu_seconds() - self.own
        other = max(0.0, busy - own - measured_seconds)
        return other / (elapsed * (psutil.cpu_count() or 1))


def _per_delivery(cpu: dict[str, float], committed: int) -> dict[str, float]:
    return {name: 1000 * seconds / max(1, committed) for name, seconds in cpu.items()}


def _ratio(runs: list[Run], workload: str, workers: int, number: int, options: Options) -> Ratio:
    def throughput(subject: str) -> float:
        return next(
            run.deliveries_per_second
            for run in runs
            if run.subject == subject
            and (subject == BARE or run.connections == options.throughput_connections)
        )

    service, bare_loop, textbook = throughput(SERVICE), throughput(BARE), throughput(TEXTBOOK)
    return Ratio(
        workload=workload,
        workers=workers,
        round=number,
        service_over_bare=service / bare_loop,
        service_over_textbook=service / textbook,
        textbook_over_bare=textbook / bare_loop,
        events_on_over_off=service / throughput(NO_EVENTS) if options.events_off else None,
    )


def _span(values: list[float]) -> list[float]:
    return [min(values), max(values)] if values else []


def _summary(
    report: CompareReport, workload: str, workers: int, options: Options
) -> dict[str, Any]:
    runs = [run for run in report.runs if run.workers == workers and run.workload == workload]
    ratios = [r for r in report.ratios if r.workers == workers and r.workload == workload]

    def select(subject: str, connections: int | None) -> list[Run]:
        return [
            run
            for run in runs
            if run.subject == subject and (subject == BARE or run.connections == connections)
        ]

    summary: dict[str, Any] = {}
    for subject in options.subjects:
        throughput_runs = select(subject, options.throughput_connections)
        latency_runs = select(subject, options.latency_connections)
        summary[subject] = {
            "deliveries_per_second": _span([r.deliveries_per_second for r in throughput_runs]),
            "p99_ms_at_throughput_connections": _span(
                [r.latency_ms["p99"] for r in throughput_runs]
            ),
            "p99_ms_at_latency_connections": _span([r.latency_ms["p99"] for r in latency_runs]),
            "cpu_ms_per_delivery": {
                name: _span([r.cpu_ms_per_delivery[name] for r in throughput_runs])
                for name in ("service", "postgres", "generator")
            },
            "wal_bytes_per_delivery": _span([r.wal_bytes_per_delivery for r in throughput_runs]),
        }
    over_bare = [ratio.service_over_bare for ratio in ratios]
    over_textbook = [ratio.service_over_textbook for ratio in ratios]
    service_p99 = summary[SERVICE]["p99_ms_at_latency_connections"]
    summary["service_over_bare"] = _span(over_bare)
    summary["service_over_textbook"] = _span(over_textbook)
    summary["textbook_over_bare"] = _span([ratio.textbook_over_bare for ratio in ratios])
    summary["events_on_over_off"] = _span(
        [r.events_on_over_off for r in ratios if r.events_on_over_off is not None]
    )
    summary["rest_of_machine_cpu_share"] = _span([run.other_cpu_share for run in runs])
    summary["goal_ratio_at_least_1"] = bool(over_bare) and min(over_bare) >= 1.0
    summary["goal_p99_under_50ms"] = bool(service_p99) and service_p99[1] < 50.0
    summary["non_2xx"] = sum(run.non_2xx for run in runs)
    summary["counts_match"] = all(run.counts_match for run in runs)
    return summary


# --- printing -----------------------------------------------------------------


def _print_run(run: Run) -> None:
    cpu = run.cpu_ms_per_delivery
    print(
        f"  {run.workload[:7]:7} r{run.round + 1} w{run.workers} {run.subject:19} "
        f"c={run.connections:<3} "
        f"{run.deliveries_per_second:6.0f}/s  p50 {run.latency_ms['p50']:5.1f} "
        f"p99 {run.latency_ms['p99']:5.1f} ms  CPU ms/delivery: service {cpu['service']:.2f} "
        f"postgres {cpu['postgres']:.2f} generator {cpu['generator']:.2f}  "
        f"WAL {run.wal_bytes_per_delivery / 1024:.1f} KB  non-2xx {run.non_2xx}  "
        f"committed {run.committed} "
        f"{'ok' if run.counts_match else 'MISMATCH'}  rest of machine {run.other_cpu_share:.0%}"
    )


def _fmt(span: list[float], digits: int = 0) -> str:
    if not span:
        return "-"
    low, high = (f"{value:,.{digits}f}" for value in span)
    return low if low == high else f"{low}-{high}"


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def print_report(report: CompareReport) -> None:
    options = report.options
    for workload, per_workers in report.summary.items():
        for workers, summary in per_workers.items():
            _print_summary(workload, workers, summary, options)


def _print_summary(workload: str, workers: str, summary: dict[str, Any], options: Any) -> None:
    print(
        f"\nhead-to-head, {workload}, {workers} worker(s), {options['rounds']} round(s) of "
        f"{options['seconds']:g} s, min-max over rounds "
        f"(deliveries/s and CPU at {options['throughput_connections']} connections, "
        f"p99 also at {options['latency_connections'] or '-'})"
    )
    print(
        f"{'subject':19} {'deliveries/s':>14} "
        f"{'p99 ms @' + str(options['throughput_connections']):>12} "
        f"{'p99 ms @' + str(options['latency_connections'] or '-'):>12} "
        f"{'CPU ms/delivery: service':>25} {'postgres':>11} {'generator':>11} "
        f"{'WAL KB/delivery':>16}"
    )
    for subject in (*SUBJECTS, NO_EVENTS):
        if subject not in summary:
            continue
        figures = summary[subject]
        cpu: dict[str, list[float]] = figures["cpu_ms_per_delivery"]
        print(
            f"{subject:19} {_fmt(figures['deliveries_per_second']):>14} "
            f"{_fmt(figures['p99_ms_at_throughput_connections'], 1):>12} "
            f"{_fmt(figures['p99_ms_at_latency_connections'], 1):>12} "
            f"{_fmt(cpu['service'], 2):>25} {_fmt(cpu['postgres'], 2):>11} "
            f"{_fmt(cpu['generator'], 2):>11} "
            f"{_fmt([v / 1024 for v in figures['wal_bytes_per_delivery']], 1):>16}"
        )
    print(
        f"service/bare loop {_fmt(summary['service_over_bare'], 2)} "
        f"(goal >= 1.0: {_verdict(summary['goal_ratio_at_least_1'])}), "
        f"service/textbook {_fmt(summary['service_over_textbook'], 2)}, "
        f"textbook/bare loop {_fmt(summary['textbook_over_bare'], 2)}; "
        f"events on/off {_fmt(summary.get('events_on_over_off', []), 3)}; "
        f"service p99 at {options['latency_connections'] or '-'} connections "
        f"{_fmt(summary[SERVICE]['p99_ms_at_latency_connections'], 1)} ms "
        f"(goal < 50 ms: {_verdict(summary['goal_p99_under_50ms'])}); "
        f"non-2xx {summary['non_2xx']}, ledger counts "
        f"{'equal to what was acknowledged' if summary['counts_match'] else 'MISMATCH'}; "
        f"the rest of the machine used "
        f"{_fmt([100 * v for v in summary['rest_of_machine_cpu_share']])} % of the CPU meanwhile"
    )
