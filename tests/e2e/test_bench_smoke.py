"""The benchmark's smoke run: it completes and the ledger holds exactly what was accepted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def wrk_available() -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("wrk is required in CI (apt-get install wrk)")
        pytest.skip("wrk is not installed")


def test_benchmark_smoke_run(wrk_available: None, tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(output.read_text())
    assert {run["configuration"] for run in figures["load"]} == {"direct", "pgbouncer"}
    for run in figures["load"]:
        assert run["counts_match"], run
        assert run["ledger_rows"] == run["accepted_by_service"] > 0
        assert run["statuses"]["non_2xx"] == 0
    for ceilings in figures["ceilings"].values():
        assert ceilings["service_sql_per_second"] > 0
        assert ceilings["reference_per_second"] > 0


def test_benchmark_sync_smoke_run(tmp_path: Path) -> None:
    """The full-sync part alone (no wrk needed): it completes and stores exactly the shop."""
    output = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--sync-only", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sync = json.loads(output.read_text())["sync"]
    assert sync["counts_match"], sync["problems"]
    assert sync["status"] == "succeeded"
    assert (sync["stored_customers"], sync["stored_orders"]) == (200, 500)
    assert sync["orders_with_other_line_item_counts"] == 0
    assert sync["applied"] == sync["summary"]["applied"] == 700


@pytest.mark.nats
def test_benchmark_events_smoke_run(tmp_path: Path) -> None:
    """Scores, the feed and the relay at small size: they complete and every count holds."""
    output = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--events", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    events = json.loads(output.read_text())["events"]
    assert events["problems"] == []
    assert events["scoring_written"]["first"] == events["customers"] == 2000
    assert events["scoring_written"]["unchanged"] == 0
    assert events["feed_read"] == events["relayed"] == events["events"] >= 2000
