"""The README's run command: `python -m app serve` with no DATABASE_URL.

It starts an embedded PostgreSQL under DATA_DIR, migrates it, serves, and on
Ctrl-C stops PostgreSQL before exiting. Under `uv run` a Ctrl-C reaches the
service twice (from the terminal and forwarded by uv), so the test interrupts
it twice. A second start finds the data of the first.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.devtools.pgbouncer import free_port
from tests.support import shopify

# A server process and an embedded PostgreSQL of its own.
pytestmark = [pytest.mark.stack, pytest.mark.timeout(180)]

REPOSITORY = Path(__file__).resolve().parents[2]
READY_WITHIN = 90.0  # the first start runs initdb and every migration


@contextlib.contextmanager
def quick_start(data_dir: Path, log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "SHOPIFY_API_SECRET": shopify.SECRET,
        "PORT": str(port),
        "DATA_DIR": str(data_dir),
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"],
            env=environment,
            cwd=REPOSITORY,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_until_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the service exited:\n{log_path.read_text()[-3000:]}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base_url + "/health/ready", timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"not ready within {READY_WITHIN} s:\n{log_path.read_text()[-3000:]}")


def deliver(base_url: str) -> httpx.Response:
    body = json.dumps(shopify.customer(9007199254740993)).encode()
    headers = shopify.headers("customers/create", body, webhook_id="quick-start-1")
    return httpx.post(base_url + "/webhooks/shopify", content=body, headers=headers, timeout=5.0)


def interrupt_twice(process: subprocess.Popen[bytes]) -> int:
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    return process.wait(timeout=60)


def test_runs_on_an_embedded_database_and_stops_it_on_ctrl_c(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log_path = tmp_path / "service.log"

    with quick_start(data_dir, log_path) as (process, base_url):
        wait_until_ready(process, base_url, log_path)
        first = deliver(base_url)
        assert first.status_code == 200
        assert first.json()["status"] == "processed"
        assert interrupt_twice(process) == 0

    log = log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "PostgreSQL was left running"

    with quick_start(data_dir, log_path) as (process, base_url):
        wait_until_ready(process, base_url, log_path)
        again = deliver(base_url)
        assert again.json()["status"] == "duplicate"
        assert interrupt_twice(process) == 0
    assert not (data_dir / "postgres" / "postmaster.pid").exists()


def command(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command beside the service, on the same embedded database (no DATABASE_URL)."""
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=environment,
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_command_beside_the_service_leaves_its_embedded_database_running(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    log_path = tmp_path / "service.log"

    with quick_start(data_dir, log_path) as (process, base_url):
        wait_until_ready(process, base_url, log_path)
        listed = command(data_dir, "events", "--limit", "1")
        synced = command(data_dir, "sync", "--shop", "d.myshopify.com")

        assert listed.returncode == 0, listed.stderr
        assert synced.returncode == 1 and "no Admin API credentials" in synced.stderr
        assert httpx.get(base_url + "/health/ready", timeout=5.0).status_code == 200
        assert deliver(base_url).status_code == 200
        log = log_path.read_text()
        assert "erasure batch failed" not in log and "Traceback" not in log, log[-3000:]
        assert interrupt_twice(process) == 0

    # The last of them to leave, the service, stopped it.
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "PostgreSQL was left running"
