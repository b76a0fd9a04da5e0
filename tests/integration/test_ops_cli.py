"""The operator's commands, run as an operator runs them: `python -m app events` and
`python -m app replay`, against the session database: in this process (call_cli_on), and in
a process of their own where that is what is tested (an exit code, output on a terminal)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from app.db.database import Database
from app.webhooks.handlers import HANDLERS
from tests.support import queries, shopify
from tests.support.ops import (
    call_cli_on,
    ledger_by_webhook,
    order_handler_before_fix,
    run_cli,
    run_cli_with_terminal,
    snapshot,
)
from tests.support.shopify import deliver

pytestmark = pytest.mark.timeout(180)

ORDER = 9_200_000_001
CUSTOMER = 9_100_000_001

SUMMARY = re.compile(
    r"^(?P<verb>replayed|would replay) (?P<matched>\d+): processed (?P<processed>\d+), "
    r"stale (?P<stale>\d+), failed (?P<failed>\d+), ignored (?P<ignored>\d+), "
    r"missing (?P<missing>\d+)$",
    re.MULTILINE,
)


def summary(stdout: str) -> dict[str, Any]:
    matches = list(SUMMARY.finditer(stdout))
    assert len(matches) == 1, stdout
    found = matches[0].groupdict()
    return {key: found[key] if key == "verb" else int(found[key]) for key in found}


def expired_order(order_id: int) -> dict[str, Any]:
    return shopify.order(order_id, customer_id=CUSTOMER, financial_status="expired")


@pytest.fixture
async def failed_deliveries(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Three orders that failed under the code before the fix, and some that did not.

    The subprocess runs the fixed code (it never sees this process's patch).
    """
    await deliver(client, "customers/create", shopify.customer(CUSTOMER), "cli-customer")
    await deliver(client, "products/create", {"id": 3}, "cli-ignored")
    with monkeypatch.context() as before_fix:
        before_fix.setitem(HANDLERS, "orders/create", order_handler_before_fix())
        for number in range(3):
            status = await deliver(
                client,
                "orders/create",
                expired_order(ORDER + number),
                f"cli-failed-{number}",
                triggered_at=f"2026-03-01T12:00:0{number}Z",
            )
            assert status == "failed"
    return [f"cli-failed-{number}" for number in range(3)]


# --- events -------------------------------------------------------------------------


def table(stdout: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    header = lines[0].split()
    return header, [line.split() for line in lines[1:]]


async def test_events_prints_a_table_newest_first(
    failed_deliveries: list[str], database_url: str, db: Database
) -> None:
    result = call_cli_on(database_url, "events")
    assert result.returncode == 0, result.stderr
    header, rows = table(result.stdout)
    assert header[:6] == ["received_at", "shop_id", "topic", "status", "attempts", "webhook_id"]
    assert header[-1] == "last_error"
    webhook_ids = [row[5] for row in rows]
    stored = await queries.fetch(
        db, "SELECT webhook_id FROM webhook_events ORDER BY received_at DESC, id DESC"
    )
    assert webhook_ids == [row["webhook_id"] for row in stored]
    by_webhook = {row[5]: row for row in rows}
    assert by_webhook["cli-failed-0"][1:5] == [shopify.SHOP, "orders/create", "failed", "1"]
    # The error is shown (truncated to keep the table readable).
    assert len(by_webhook["cli-failed-0"]) > 6
    assert by_webhook["cli-customer"][3] == "processed"
    assert by_webhook["cli-ignored"][3] == "ignored"


async def test_events_filters_and_limit(failed_deliveries: list[str], database_url: str) -> None:
    result = call_cli_on(database_url, "events", "--status", "failed")
    assert result.returncode == 0, result.stderr
    _, rows = table(result.stdout)
    assert sorted(row[5] for row in rows) == sorted(failed_deliveries)

    result = call_cli_on(database_url, "events", "--topic", "products/create")
    _, rows = table(result.stdout)
    assert [row[5] for row in rows] == ["cli-ignored"]

    result = call_cli_on(database_url, "events", "--webhook-id", "cli-failed-1")
    _, rows = table(result.stdout)
    assert [row[5] for row in rows] == ["cli-failed-1"]

    result = call_cli_on(database_url, "events", "--limit", "2")
    _, rows = table(result.stdout)
    assert len(rows) == 2

    result = call_cli_on(database_url, "events", "--shop", shopify.OTHER_SHOP)
    assert result.returncode == 0
    header, rows = table(result.stdout)
    assert header[0] == "received_at" and rows == []


async def test_events_rejects_a_bad_status(database_url: str) -> None:
    result = run_cli(database_url, "events", "--status", "exploded")
    assert result.returncode == 2
    assert "--status" in result.stderr


# --- replay ----------------------------------------------------------------------------


async def test_replay_dry_run_changes_nothing(
    failed_deliveries: list[str], database_url: str, db: Database
) -> None:
    before = await snapshot(db)
    result = call_cli_on(database_url, "replay", "--status", "failed", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout) == {
        "verb": "would replay",
        "matched": 3,
        "processed": 0,
        "stale": 0,
        "failed": 0,
        "ignored": 0,
        "missing": 0,
    }
    assert await snapshot(db) == before


async def test_replay_failed_deliveries_after_the_fix(
    failed_deliveries: list[str], database_url: str, db: Database
) -> None:
    result = call_cli_on(database_url, "replay", "--status", "failed")
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout) == {
        "verb": "replayed",
        "matched": 3,
        "processed": 3,
        "stale": 0,
        "failed": 0,
        "ignored": 0,
        "missing": 0,
    }
    assert "failed:" not in result.stdout
    # Not a terminal: no progress line.
    assert "\r" not in result.stderr

    ledger = await ledger_by_webhook(db)
    for webhook_id in failed_deliveries:
        assert ledger[webhook_id]["status"] == "processed"
        assert ledger[webhook_id]["attempts"] == 2
        assert ledger[webhook_id]["last_error"] is None
    assert ledger["cli-customer"]["attempts"] == 1
    for number in range(3):
        order = await queries.order(db, ORDER + number)
        assert order is not None and order["financial_status"] == "expired"
    customer = await queries.customer(db, CUSTOMER)
    assert customer is not None and customer["order_count"] == 3

    # Nothing left to replay.
    again = call_cli_on(database_url, "replay", "--status", "failed")
    assert again.returncode == 0
    assert summary(again.stdout)["matched"] == 0


async def test_replay_selects_by_id_webhook_id_and_limit(
    failed_deliveries: list[str], database_url: str, db: Database
) -> None:
    ledger = await ledger_by_webhook(db)

    by_id = call_cli_on(database_url, "replay", "--id", str(ledger["cli-failed-2"]["id"]))
    assert by_id.returncode == 0, by_id.stderr
    assert summary(by_id.stdout)["processed"] == 1

    by_webhook = call_cli_on(database_url, "replay", "--webhook-id", "cli-failed-0")
    assert summary(by_webhook.stdout)["processed"] == 1

    statuses = {key: row["status"] for key, row in (await ledger_by_webhook(db)).items()}
    assert statuses["cli-failed-0"] == "processed"
    assert statuses["cli-failed-1"] == "failed"
    assert statuses["cli-failed-2"] == "processed"

    limited = call_cli_on(database_url, "replay", "--shop", shopify.SHOP, "--limit", "2")
    assert limited.returncode == 0, limited.stderr
    assert summary(limited.stdout)["matched"] == 2
    # The first two of the shop in triggered_at order: the failed orders were
    # triggered before the customer and the ignored delivery.
    attempts = {key: row["attempts"] for key, row in (await ledger_by_webhook(db)).items()}
    assert attempts == {
        "cli-failed-0": 3,
        "cli-failed-1": 2,
        "cli-failed-2": 2,
        "cli-customer": 1,
        "cli-ignored": 1,
    }


async def test_replay_reports_deliveries_that_still_fail(
    client: httpx.AsyncClient, db: Database, database_url: str
) -> None:
    assert await deliver(client, "orders/create", {"id": "not-a-number"}, "cli-broken") == "failed"
    row = await queries.ledger_row(db, "cli-broken")

    result = call_cli_on(database_url, "replay", "--status", "failed")

    assert result.returncode == 1, result.stdout + result.stderr
    assert summary(result.stdout)["failed"] == 1
    assert f"failed: {row['id']}" in result.stdout
    after = await queries.ledger_row(db, "cli-broken")
    assert (after["status"], after["attempts"]) == ("failed", 2)


async def test_replay_needs_a_selection(
    client: httpx.AsyncClient, db: Database, database_url: str
) -> None:
    await deliver(client, "orders/create", {"id": "not-a-number"}, "cli-untouched")
    for arguments in ((), ("--dry-run",), ("--limit", "5")):
        result = call_cli_on(database_url, "replay", *arguments)
        assert result.returncode == 2, arguments
        assert "error" in result.stderr
    assert (await queries.ledger_row(db, "cli-untouched"))["attempts"] == 1


async def test_replay_shows_progress_on_a_terminal(
    failed_deliveries: list[str], database_url: str, db: Database
) -> None:
    result = run_cli_with_terminal(database_url, "replay", "--status", "failed")
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)["processed"] == 3
    # A line rewritten in place ("\r"), ended once the replay is done.
    assert "\rreplayed " in result.stderr, repr(result.stderr)
    progress = result.stderr[result.stderr.rindex("\rreplayed ") :]
    assert re.match(
        r"\rreplayed \d+ \(processed \d+, stale \d+, failed \d+, ignored \d+\)", progress
    )
    assert "\n" in progress
