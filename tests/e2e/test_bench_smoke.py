"""The benchmark's smoke run: it completes and the ledger holds exactly what was accepted.

The first three tests make up `python -m bench --smoke`: its webhook runs,
its head-to-head (both workloads) and its full sync (which needs no wrk); the
others are `--smoke --sync-fleet`, a small fleet, and `--smoke --events`. The bench tier: left out
of a plain `pytest` (pyproject's addopts), run by `pytest -m bench` (a step of
its own in .ci/run).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


# Longer than the runs' own subprocess timeouts, so that theirs reports first.
pytestmark = [pytest.mark.bench, pytest.mark.timeout(360)]

# On two workers (--dist loadgroup), in groups about as long: the head-to-head
# and the sync on one, the webhook load runs, the fleet and the events on the
# other. Their figures are not judged, only counts.
HEAD_TO_HEAD = pytest.mark.xdist_group("bench: head-to-head, sync")
WEBHOOKS = pytest.mark.xdist_group("bench: webhooks, fleet, events")


def run_bench(tmp_path: Path, *arguments: str, timeout: int = 300) -> dict[str, Any]:
    """`python -m bench ARGUMENTS --json`: it completes, and its figures."""
    output = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", *arguments, "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures: dict[str, Any] = json.loads(output.read_text())
    return figures


@WEBHOOKS
@pytest.mark.wrk
def test_benchmark_smoke_run(tmp_path: Path) -> None:
    figures = run_bench(tmp_path, "--smoke", "--no-sync", "--no-compare")
    assert {run["configuration"] for run in figures["load"]} == {"direct", "pgbouncer"}
    for run in figures["load"]:
        assert run["counts_match"], run
        assert run["ledger_rows"] == run["accepted_by_service"] > 0
        assert run["statuses"]["non_2xx"] == 0
    for ceilings in figures["ceilings"].values():
        assert ceilings["service_sql_per_second"] > 0
        assert ceilings["reference_per_second"] > 0


@HEAD_TO_HEAD
@pytest.mark.wrk
def test_benchmark_head_to_head_smoke_run(tmp_path: Path) -> None:
    """Both workloads (new orders, update storms), every subject, every count right."""
    head_to_head = run_bench(tmp_path, "--smoke", "--compare")["compare"]["runs"]
    assert {(run["workload"], run["subject"]) for run in head_to_head} == {
        (workload, subject)
        for workload in ("new orders", "updates")
        for subject in ("service", "bare loop", "textbook")
    }
    assert all(run["counts_match"] and run["committed"] > 0 for run in head_to_head)


@HEAD_TO_HEAD
def test_benchmark_sync_smoke_run(tmp_path: Path) -> None:
    """The full-sync part alone (no wrk needed): it completes and stores exactly the shop."""
    figures = run_bench(tmp_path, "--smoke", "--sync-only", timeout=120)
    sync = figures["sync"]
    assert sync["counts_match"], sync["problems"]
    assert sync["status"] == "succeeded"
    assert (sync["stored_customers"], sync["stored_orders"]) == (200, 500)
    assert sync["orders_with_other_line_item_counts"] == 0
    assert sync["applied"] == sync["summary"]["applied"] == 700


@WEBHOOKS
def test_benchmark_fleet_smoke_run(tmp_path: Path) -> None:
    """A small fleet (no wrk needed): one pass over every shop, every change applied."""
    figures = run_bench(tmp_path, "--smoke", "--sync-fleet", timeout=240)
    [fleet] = figures["fleet"]
    assert fleet["counts_match"], fleet["problems"]
    assert fleet["runs_succeeded"] == fleet["shops"] > 1
    assert fleet["applied"] == fleet["expected_changes"]
    assert fleet["webhooks_sent"] > 0 and fleet["webhooks_non_2xx"] == 0


@WEBHOOKS
@pytest.mark.nats
def test_benchmark_events_smoke_run(tmp_path: Path) -> None:
    """Scores, the feed and the relay at small size: they complete and every count holds."""
    figures = run_bench(tmp_path, "--smoke", "--events", timeout=120)
    events = figures["events"]
    assert events["problems"] == []
    assert events["scoring_written"]["first"] == events["customers"] == 2000
    assert events["scoring_written"]["unchanged"] == 0
    assert events["feed_read"] == events["relayed"] == events["events"] >= 2000
