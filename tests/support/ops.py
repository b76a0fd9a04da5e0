"""Helpers for the operations tests: the admin API, metrics, logs and the command line."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import io
import json
import logging
import os
import pty
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.db.database import Database
from app.observability.logs import JsonFormatter
from app.webhooks.handlers import HANDLERS, Handler
from app.webhooks.payloads import OrderPayload
from tests.support import queries

ROOT = Path(__file__).resolve().parents[2]

ADMIN_TOKEN = "test-admin-token"  # ADMIN_TOKEN of the `settings` fixture
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# Tables whose rows are the service's business data (the ledger is compared apart).
DATA_TABLES = ("shops", "customers", "orders")


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


# --- "the code before the fix" ------------------------------------------------


class FinancialStatusBeforeFix(StrEnum):
    """The financial statuses an older version accepted: no "expired" yet."""

    pending = "pending"
    authorized = "authorized"
    partially_paid = "partially_paid"
    paid = "paid"
    partially_refunded = "partially_refunded"
    refunded = "refunded"
    voided = "voided"


class OrderPayloadBeforeFix(OrderPayload):
    financial_status: FinancialStatusBeforeFix | None = None  # type: ignore[assignment]


def order_handler_before_fix(topic: str = "orders/create") -> Handler[Any]:
    """The live handler of `topic`, with a payload type that rejects financial_status "expired"."""
    return dataclasses.replace(HANDLERS[topic], payload_type=OrderPayloadBeforeFix)


# --- reading the database ----------------------------------------------------


async def snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of the data tables and of the ledger, in a stable order."""
    result = {}
    for table in (*DATA_TABLES, "webhook_events"):
        result[table] = await queries.fetch(
            db,
            f"SELECT *, to_jsonb(t)::text AS row_text FROM {table} t ORDER BY id",
        )
    return result


async def data_snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of the data tables (not the ledger)."""
    full = await snapshot(db)
    return {table: full[table] for table in DATA_TABLES}


async def ledger_by_webhook(db: Database) -> dict[str, dict[str, Any]]:
    rows = await queries.fetch(db, "SELECT * FROM webhook_events")
    return {row["webhook_id"]: row for row in rows}


# --- metrics -----------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return samples(response.text)


def value(
    scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """A sample's value; 0 when absent (a counter not incremented yet)."""
    return scraped.get((name, frozenset(labels.items())), 0.0)


# --- logs --------------------------------------------------------------------


class LineCollector(logging.Handler):
    """Keeps every record, formatted by the service's JsonFormatter."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def collected_logs() -> Iterator[LineCollector]:
    """Collect the log output of the process, as the service formats it.

    Added to the root logger after the app configured logging (create_app
    replaces the root handlers), so it sees every line the service writes.
    """
    collector = LineCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield collector
    finally:
        root.removeHandler(collector)


@contextmanager
def preserved_logging() -> Iterator[None]:
    """Restore the root logger's handlers and level (create_app changes both)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


# --- the command line --------------------------------------------------------


@dataclasses.dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def cli_environment(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("ADMIN_TOKEN", "PROMETHEUS_MULTIPROC_DIR", "LOG_LEVEL")
    }
    return {**env, "DATABASE_URL": database_url, "LOG_LEVEL": "INFO", **extra}


def run_cli(database_url: str, *args: str, timeout: float = 90) -> CliResult:
    """`python -m app <args>` against `database_url`, output captured through pipes."""
    completed = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=cli_environment(database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def call_cli(*args: str, env: Mapping[str, str], stdin: str = "", timeout: float = 90) -> CliResult:
    """`python -m app <args>` in this process: the command line's main() with `env` as the
    whole environment, `stdin` as standard input, output captured as run_cli captures it.

    A new interpreter spends most of a short command importing the app; run_cli
    (a real process) stays for what only a process shows: exit on a signal, output
    on a terminal, another process's view. main() runs on a thread of its own, as
    commands call asyncio.run and a test's event loop is running on this one; the
    loop waits meanwhile, as it does for run_cli's subprocess.
    """
    stdout, stderr = io.StringIO(), io.StringIO()

    def main() -> int:
        from app.cli import main as cli_main

        try:
            return cli_main(list(args))
        except SystemExit as exit_:  # argparse's errors: exit code 2
            return exit_.code if isinstance(exit_.code, int) else 1
        except Exception:
            traceback.print_exc()  # onto the captured stderr, as the interpreter would
            return 1

    with (
        _environment(env),
        preserved_logging(),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
        _stdin(stdin),
        concurrent.futures.ThreadPoolExecutor(1) as thread,
    ):
        returncode = thread.submit(main).result(timeout=timeout)
    return CliResult(returncode, stdout.getvalue(), stderr.getvalue())


def call_cli_on(database_url: str, *args: str, stdin: str = "", **extra: str) -> CliResult:
    """run_cli's command and environment, run in this process (call_cli)."""
    return call_cli(*args, env=cli_environment(database_url, **extra), stdin=stdin)


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _stdin(text: str) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


def run_cli_with_terminal(database_url: str, *args: str, timeout: float = 90) -> CliResult:
    """`python -m app <args>` with stderr on a pseudo-terminal (stdout still a pipe)."""
    controller, terminal = pty.openpty()
    received = io.BytesIO()

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not chunk:
                return
            received.write(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "app", *args],
            env=cli_environment(database_url),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=terminal,
            stdin=subprocess.DEVNULL,
        ) as process:
            os.close(terminal)
            terminal = -1
            try:
                stdout, _ = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
        reader.join(timeout=10)
    finally:
        if terminal != -1:
            os.close(terminal)
        os.close(controller)
    return CliResult(
        process.returncode, stdout.decode(), received.getvalue().decode(errors="replace")
    )
