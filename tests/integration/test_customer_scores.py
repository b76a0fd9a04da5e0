"""RFM scores and segments: quintiles, ties, the grid, `new`, who is scored, and writes.

The rule is docs/customer-events.md#scores; the pass is app/scores/scoring.py.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.config import Settings
from app.db.database import Database
from app.scores.scoring import ScoreReport, score_shop
from tests.support import queries, shopify
from tests.support.asgi import concurrent_client
from tests.support.customer_events import (
    Order,
    add_customer,
    add_orders,
    events,
    orders,
    scores,
)
from tests.support.ops import ADMIN, call_cli_on
from tests.support.shopify import SHOP

OTHER = shopify.OTHER_SHOP
NOW = datetime.now(UTC)


async def score(db: Database, shop: str = SHOP) -> ScoreReport:
    return await score_shop(db, shop, 30)


async def test_quintile_boundaries_ten_distinct_figures(db: Database) -> None:
    # Customer n: n orders, n x 10.00 in all, the last one 100 + n days ago.
    for n in range(1, 11):
        await add_customer(db, f"c{n}", orders(n, 100 + n, "10.00"))

    report = await score(db)

    assert (report.scored, report.changed, report.written) == (10, 10, 10)
    stored = await scores(db)
    two_of_each = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [stored[f"c{n}"][1] for n in range(1, 11)] == two_of_each  # F: more orders, better
    assert [stored[f"c{n}"][2] for n in range(1, 11)] == two_of_each  # M: more spent, better
    # R: fewer days since the last order is better; c10 ordered longest ago.
    assert [stored[f"c{n}"][0] for n in range(1, 11)] == two_of_each[::-1]


async def test_five_customers_score_one_to_five(db: Database) -> None:
    for n in range(1, 6):
        await add_customer(db, f"c{n}", [Order(40, f"{n}.00")])

    await score(db)

    assert [(await scores(db))[f"c{n}"][2] for n in range(1, 6)] == [1, 2, 3, 4, 5]


async def test_equal_figures_get_equal_scores(db: Database) -> None:
    # Order counts 1, 1, 1, 2, 3: the three one-time buyers share a score.
    for name, count in (("a", 1), ("b", 1), ("c", 1), ("d", 2), ("e", 3)):
        await add_customer(db, name, orders(count, 50))

    await score(db)

    stored = await scores(db)
    assert {name: stored[name][1] for name in "abcde"} == {"a": 2, "b": 2, "c": 2, "d": 4, "e": 5}
    # Every order on the same day, for the same amount per order: R is one group.
    assert {stored[name][0] for name in "abcde"} == {3}


async def test_a_shop_of_one_customer(db: Database) -> None:
    await add_customer(db, "only", [Order(45, "80.00")])

    report = await score(db)

    assert report.scored == 1
    assert (await scores(db))["only"] == (3, 3, 3, "loyal")


@pytest.mark.parametrize(
    ("pairs", "segments"),
    [
        (
            [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)],
            ["lost", "hibernating", "loyal", "champion", "champion"],
        ),
        (
            [(1, 5), (2, 4), (3, 1), (4, 2), (5, 3)],
            ["at_risk", "at_risk", "potential", "potential", "loyal"],
        ),
        (
            [(1, 3), (2, 1), (3, 5), (4, 4), (5, 2)],
            ["at_risk", "hibernating", "loyal", "champion", "potential"],
        ),
    ],
)
async def test_the_r_by_f_grid(
    db: Database, pairs: list[tuple[int, int]], segments: list[str]
) -> None:
    # Five customers, so each figure scores exactly 1..5: R=r when the last
    # order was 90 - 10r days ago, F=f with f orders (all older than 30 days).
    for number, (r, f) in enumerate(pairs):
        await add_customer(db, f"c{number}", orders(f, 90 - 10 * r))

    await score(db)

    stored = await scores(db)
    assert [stored[f"c{n}"][:2] for n in range(5)] == pairs
    assert [stored[f"c{n}"][3] for n in range(5)] == segments


async def test_new_while_the_first_counted_order_is_recent(db: Database) -> None:
    await add_customer(db, "fresh", [Order(5)])
    await add_customer(db, "returning", [Order(400), Order(2)])  # first order long ago
    # A test order 100 days ago does not count: the first counted one is recent.
    await add_customer(db, "tested-first", [Order(100, test=True), Order(3)])
    for n in range(5):
        await add_customer(db, f"old{n}", orders(2, 200 + n))

    await score(db)

    stored = await scores(db)
    assert stored["fresh"][3] == "new"
    assert stored["tested-first"][3] == "new"
    assert stored["returning"][3] != "new"
    assert stored["returning"][0] == 5  # the most recent last order


async def test_who_is_not_scored(db: Database) -> None:
    scored = [("a", 10), ("b", 20), ("c", 30)]
    for name, days in scored:
        await add_customer(db, name, [Order(days + 40)])
    await add_customer(db, "tests-only", [Order(41, test=True)])
    await add_customer(db, "cancelled-only", [Order(42, cancelled=True)])
    await add_customer(db, "deleted-orders", [Order(43, deleted=True)])
    await add_customer(db, "no-orders")
    await add_customer(db, "deleted", [Order(44)], deleted_at=NOW)
    await add_customer(db, "redacted", [Order(45)], redacted_at=NOW)
    await add_customer(db, "merged", [Order(46)], merged_into="a", merged_at=NOW, deleted_at=NOW)
    await add_customer(db, "elsewhere", [Order(47)], shop=OTHER)

    report = await score(db)

    assert report.scored == 3
    stored = await scores(db)
    for name in ("tests-only", "cancelled-only", "deleted-orders", "no-orders", "deleted"):
        assert stored[name] == (None, None, None, None), name
    assert stored["redacted"] == stored["merged"] == (None, None, None, None)
    assert all(stored[name][3] is not None for name, _ in scored)
    assert (await scores(db, OTHER))["elsewhere"] == (None, None, None, None)


async def test_a_customer_who_drops_out_is_cleared_without_an_event(db: Database) -> None:
    for n in range(3):
        await add_customer(db, f"c{n}", [Order(40 + n)])
    await score(db)
    await queries.execute(
        db, "UPDATE customers SET deleted_at = now() WHERE shopify_id = 'c0' AND shop_id = $1", SHOP
    )
    before = len(await events(db, kind="segment_change"))

    report = await score(db)

    assert (await scores(db))["c0"] == (None, None, None, None)
    assert report.scored == 2
    later = (await events(db, kind="segment_change"))[before:]
    assert "c0" not in {event["customer"] for event in later}


async def test_a_recompute_that_changes_nothing_writes_nothing_and_announces_nothing(
    db: Database,
) -> None:
    for n in range(12):
        await add_customer(db, f"c{n}", orders(1 + n % 4, 40 + 3 * n, f"{n + 1}.00"))
    first = await score(db)
    assert first.written == 12
    assert first.segment_changes == 12  # each from no segment to its first
    versions = await queries.fetch(
        db, "SELECT id, xmin::text AS version FROM customers ORDER BY id"
    )
    event_count = await queries.fetchval(db, "SELECT count(*) FROM customer_events")

    again = await score(db)

    assert (again.scored, again.changed, again.written, again.segment_changes) == (12, 0, 0, 0)
    assert (
        await queries.fetch(db, "SELECT id, xmin::text AS version FROM customers ORDER BY id")
        == versions
    )
    assert await queries.fetchval(db, "SELECT count(*) FROM customer_events") == event_count


async def test_segment_changes_are_announced_with_from_and_to(db: Database) -> None:
    for n in range(5):
        await add_customer(db, f"c{n}", orders(n + 1, 90 - 10 * (n + 1)))
    await score(db)
    first = await events(db, kind="segment_change")
    assert {event["customer"]: event["data"] for event in first} == {
        "c0": {"from": None, "to": "lost"},
        "c1": {"from": None, "to": "hibernating"},
        "c2": {"from": None, "to": "loyal"},
        "c3": {"from": None, "to": "champion"},
        "c4": {"from": None, "to": "champion"},
    }
    # c0 orders six more times, 35 days ago: the best R and F of the shop.
    await add_orders(db, "c0", orders(6, 35))

    report = await score(db)

    later = (await events(db, kind="segment_change"))[len(first) :]
    assert report.segment_changes == len(later) > 0
    changes = {event["customer"]: event["data"] for event in later}
    assert changes["c0"] == {"from": "lost", "to": "champion"}
    stored = await scores(db)
    for customer, data in changes.items():
        assert data["to"] == stored[customer][3]
        assert data["from"] != data["to"]


async def test_a_passes_segment_changes_are_in_the_feed(
    db: Database, client: httpx.AsyncClient
) -> None:
    # On Citus the feed reads a shop's events on its worker, by that worker's
    # transaction ids: a pass's events must carry them too.
    for n in range(5):
        await add_customer(db, f"c{n}", orders(n + 1, 90 - 10 * (n + 1)))
    report = await score(db)

    # An event shows once every older transaction of the server has ended.
    announced: set[str] = set()
    for _ in range(10):
        answer = await client.get(
            f"/shops/{SHOP}/customer-events",
            params={"kinds": "segment_change", "limit": "100", "wait": "5"},
            headers=ADMIN,
        )
        assert answer.status_code == 200, answer.text
        announced = {event["customer_id"] for event in answer.json()["events"]}
        if len(announced) == 5:
            break
    assert announced == {f"c{n}" for n in range(5)} and report.segment_changes == 5


async def test_a_row_held_elsewhere_is_skipped_and_scored_by_the_next_pass(db: Database) -> None:
    for n in range(3):
        await add_customer(db, f"c{n}", orders(1 + n, 40 + 10 * n))
    held = "SELECT 1 FROM customers WHERE shop_id = $1 AND shopify_id = 'c1' FOR UPDATE"
    async with db.connection() as holder, holder.transaction():
        await holder.execute(held, SHOP)
        report = await score(db)

    assert (report.changed, report.written, report.busy, report.segment_changes) == (3, 2, 1, 2)
    assert (await scores(db))["c1"] == (None, None, None, None)
    assert "c1" not in {event["customer"] for event in await events(db, kind="segment_change")}
    later = await score(db)
    assert (later.changed, later.written, later.busy, later.segment_changes) == (1, 1, 0, 1)
    assert (await scores(db))["c1"][3] is not None


async def test_a_row_that_changed_after_the_pass_read_it_is_not_overwritten(db: Database) -> None:
    for n in range(3):
        await add_customer(db, f"c{n}", orders(1 + n, 40 + 10 * n))
    read = await queries.fetchrow(db, "SELECT * FROM scores_compute($1, 30)", SHOP)
    assert read is not None and len(read["ids"]) == 3
    # Another pass scores c1 between this pass's read and its write.
    await queries.execute(
        db,
        "UPDATE customers SET rfm_r = 1, rfm_f = 1, rfm_m = 1, segment = 'lost'"
        " WHERE shop_id = $1 AND shopify_id = 'c1'",
        SHOP,
    )
    names = ("stored_r", "stored_f", "stored_m", "stored_segments")
    names += ("rfm_r", "rfm_f", "rfm_m", "segments")
    applied = await queries.fetchrow(
        db,
        "SELECT * FROM scores_apply($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        SHOP,
        read["ids"],
        *(read[name] for name in names),
    )

    assert applied == {"written": 2, "segment_changes": 2, "busy": 0}
    assert (await scores(db))["c1"] == (1, 1, 1, "lost")
    # c1's change was the other pass's, announced once by it.
    announced = [event["customer"] for event in await events(db, kind="segment_change")]
    assert announced.count("c1") == 1


async def test_scoring_and_deliveries_at_the_same_time_lose_nothing(
    db: Database, settings: Settings
) -> None:
    await add_many_customers(db, 3000)
    await score(db)
    # Deliveries of 60 new customers' first orders and 60 repeat orders, while a
    # pass runs (new days for everyone: the scores move).
    # Computed here and written as values: Citus refuses a stable function of a
    # column (timestamptz - interval) in an UPDATE.
    orders = await queries.fetch(
        db, "SELECT id, shopify_created_at FROM orders WHERE shop_id = $1", SHOP
    )
    await queries.execute(
        db,
        "UPDATE orders AS o SET shopify_created_at = v.at"
        " FROM unnest($2::uuid[], $3::timestamptz[]) AS v(id, at)"
        " WHERE o.shop_id = $1 AND o.id = v.id",
        SHOP,
        [row["id"] for row in orders],
        [row["shopify_created_at"] - timedelta(days=7) for row in orders],
    )
    # Statistics, as autovacuum keeps them for a shop that has been here a
    # while: on Citus the statements are planned on a worker whose shards
    # were never analysed, and the deliveries' plans for a table taken to be
    # empty held their locks for seconds.
    await queries.execute(db, "ANALYZE customers, orders")
    today = datetime.now(UTC).isoformat()
    new = [
        shopify.order(900_000 + n, customer_id=500_000 + n, test=False, created_at=today)
        for n in range(60)
    ]
    repeat = [
        shopify.order(950_000 + n, customer_id=100_000 + n, test=False, created_at=today)
        for n in range(60)
    ]
    async with concurrent_client(settings) as client:
        scoring = asyncio.create_task(score(db))
        answers = await asyncio.gather(
            *(shopify.post(client, "orders/create", payload) for payload in new + repeat)
        )
        report = await scoring
    assert Counter(answer.json()["status"] for answer in answers) == {"processed": 120}
    assert report.scored >= 3000

    # Every delivery is stored, each new customer announced once.
    assert (
        await queries.fetchval(db, "SELECT count(*) FROM orders WHERE shopify_id >= '900000'")
        == 120
    )
    first_orders = Counter(event["customer"] for event in await events(db, kind="first_order"))
    assert {str(500_000 + n) for n in range(60)} <= set(first_orders)
    assert max(first_orders.values()) == 1
    # What the pass skipped (busy) or read before a delivery, the next pass writes;
    # then the scores are those of the data and a further pass changes nothing.
    await score(db)
    settled = await score(db)
    assert (settled.changed, settled.written, settled.segment_changes) == (0, 0, 0)
    stored = await scores(db)
    assert all(stored[str(500_000 + n)][3] == "new" for n in range(60))


async def add_many_customers(db: Database, count: int) -> None:
    """Customers 100000..: 1 to 3 orders each, their last 40 to 339 days ago."""
    await queries.execute(
        db,
        "INSERT INTO customers (shop_id, shopify_id, order_count, total_spent)"
        " SELECT $1::varchar, (100000 + n)::text, 0, 0 FROM generate_series(0, $2 - 1) AS n",
        SHOP,
        count,
    )
    await queries.execute(
        db,
        "INSERT INTO orders (shop_id, shopify_id, customer_id, total_price, test,"
        " shopify_created_at)"
        " SELECT $1::varchar, c.shopify_id || '-' || k, c.id, 10 + k, false,"
        "        now() - make_interval(days => 40 + c.shopify_id::int % 300)"
        " FROM customers AS c, generate_series(0, c.shopify_id::int % 3) AS k"
        " WHERE c.shop_id = $1::varchar",
        SHOP,
    )


async def test_scores_on_demand_over_http(client: httpx.AsyncClient, db: Database) -> None:
    await add_customer(db, "only", [Order(45)])

    response = await client.post(f"/shops/{SHOP}/scores", headers=ADMIN)

    assert response.status_code == 202, response.text
    assert response.json() == {"shop": SHOP, "status": "scoring"}
    for _ in range(100):
        if (await scores(db))["only"][3] is not None:
            break
        await asyncio.sleep(0.05)
    assert (await scores(db))["only"] == (3, 3, 3, "loyal")
    assert (await client.post("/shops/not-a-shop/scores", headers=ADMIN)).status_code == 400
    assert (await client.post(f"/shops/{SHOP}/scores")).status_code == 401


async def test_scores_from_the_command_line(db: Database, database_url: str) -> None:
    await add_customer(db, "only", [Order(45)])
    await add_customer(db, "elsewhere", [Order(45)], shop=OTHER)

    result = call_cli_on(database_url, "scores", "--shop", SHOP)

    assert result.returncode == 0, result.stderr
    assert f"{SHOP}: scored 1 customers, 1 changed, 1 written, 1 segment changes" in result.stdout
    assert (await scores(db))["only"] == (3, 3, 3, "loyal")
    assert (await scores(db, OTHER))["elsewhere"] == (None, None, None, None)

    every_shop = call_cli_on(database_url, "scores", "--all")

    assert every_shop.returncode == 0, every_shop.stderr
    assert f"{OTHER}: scored 1 customers, 1 changed" in every_shop.stdout
    assert f"{SHOP}: scored 1 customers, 0 changed" in every_shop.stdout
