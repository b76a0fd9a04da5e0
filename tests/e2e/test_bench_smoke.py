"""The benchmark's smoke run: it completes and the ledger holds exactly what was accepted.

The first two tests make up `python -m bench --smoke`: its webhook runs and
head-to-head (both workloads), and its full sync (which needs no wrk); the
third is `--smoke --sync-fleet`, a small fleet. The bench tier: left out
of a plain `pytest` (pyproject's addopts), run by `pytest -m bench` (a step of
its own in .ci/run).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# Longer than the runs' own subprocess timeouts, so that theirs reports first.
pytestmark = [pytest.mark.bench, pytest.mark.timeout(360)]

# On two workers (--dist loadgroup): the webhook runs on one, the three others,
# about as long together, on the other. Their figures are not judged, only counts.
WEBHOOKS = pytest.mark.xdist_group("bench: webhooks")
OTHERS = pytest.mark.xdist_group("bench: sync, fleet, events")


@WEBHOOKS
@pytest.mark.wrk
def test_benchmark_smoke_run(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--no-sync", "--json", str(output)],
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
    # The head-to-head ran both workloads (new orders, update storms), every count right.
    head_to_head = figures["compare"]["runs"]
    assert {(run["workload"], run["subject"]) for run in head_to_head} == {
        (workload, subject)
        for workload in ("new orders", "updates")
        for subject in ("service", "bare loop", "textbook")
    }
    assert all(run["counts_match"] and run["committed"] > 0 for run in head_to_head)


@OTHERS
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


@OTHERS
def test_benchmark_fleet_smoke_run(tmp_path: Path) -> None:
    """A small fleet (no wrk needed): one pass over every shop, every change applied."""
    output = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--sync-fleet", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [fleet] = json.loads(output.read_text())["fleet"]
    assert fleet["counts_match"], fleet["problems"]
    assert fleet["runs_succeeded"] == fleet["shops"] > 1
    assert fleet["applied"] == fleet["expected_changes"]
    assert fleet["webhooks_sent"] > 0 and fleet["webhooks_non_2xx"] == 0


@OTHERS
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
