"""customers/create, update, enable, disable and delete, from Shopify's samples."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from app.db.database import Database
from tests.support import queries, shopify

SAMPLE_ID = 706405506930370084  # the id in Shopify's customers/create sample


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_sample_customer_is_stored_exactly(client: httpx.AsyncClient, db: Database) -> None:
    response = await shopify.post(
        client, "customers/create", shopify.fixture("customers_create"), webhook_id="c-1"
    )
    assert response.status_code == 200
    assert response.json() == {"status": "processed", "webhook_id": "c-1"}

    row = await queries.customer(db, SAMPLE_ID)
    assert row is not None
    assert {key: row[key] for key in EXPECTED_SAMPLE} == EXPECTED_SAMPLE
    assert row["created_at"] is not None

    ledger = await queries.ledger_row(db, "c-1")
    assert (ledger["status"], ledger["topic"], ledger["last_error"]) == (
        "processed",
        "customers/create",
        None,
    )
    assert ledger["processed_at"] is not None
    shop = await queries.shop(db)
    assert shop is not None and shop["uninstalled_at"] is None and shop["redacted_at"] is None
    counts = await queries.counts(db)
    assert (counts["customers"], counts["orders"], counts["webhook_events"]) == (1, 0, 1)


EXPECTED_SAMPLE = {
    "shop_id": shopify.SHOP,
    "shopify_id": str(SAMPLE_ID),
    "email": "bob@biller.com",
    "name": "Bob Biller",
    "phone": None,
    # The 2026-07 sample has no `tags` key.
    "tags": None,
    "shopify_created_at": ts("2021-12-31T19:00:00-05:00"),
    "shopify_updated_at": ts("2021-12-31T19:00:00-05:00"),
    "order_count": 0,
    "total_spent": Decimal("0"),
    "avg_order_value": None,
    "first_order_at": None,
    "last_order_at": None,
    "deleted_at": None,
    "redacted_at": None,
    "segment": None,
}


@pytest.mark.parametrize(
    "topic", ["customers/update", "customers/enable", "customers/disable", "customers/create"]
)
async def test_every_customer_topic_upserts(
    client: httpx.AsyncClient, db: Database, topic: str
) -> None:
    await shopify.post(client, "customers/create", shopify.customer(42, tags="old"))
    newer = shopify.customer(
        42,
        updated_at="2026-02-01T00:00:00Z",
        email="new@example.com",
        first_name="Ann",
        last_name="Other",
        phone="+16135550100",
        tags="a, b",
        state="enabled" if topic == "customers/enable" else "disabled",
    )
    response = await shopify.post(client, topic, newer)
    assert response.json()["status"] == "processed"

    row = await queries.customer(db, 42)
    assert row is not None
    assert (row["email"], row["name"], row["phone"], row["tags"]) == (
        "new@example.com",
        "Ann Other",
        "+16135550100",
        ["a", "b"],
    )
    assert row["shopify_updated_at"] == ts("2026-02-01T00:00:00Z")
    assert row["shopify_created_at"] == ts("2021-12-31T19:00:00-05:00")
    assert await queries.fetchval(db, "SELECT count(*) FROM customers") == 1
    statuses = await queries.fetch(db, "SELECT status FROM webhook_events")
    assert [row["status"] for row in statuses] == ["processed", "processed"]


async def test_a_topic_in_the_events_family_upserts(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await shopify.post(
        client, "customers/update", shopify.customer(43), prefix="shopify-"
    )
    assert response.json()["status"] == "processed"
    assert (await queries.customer(db, 43) or {}).get("email") == "bob@biller.com"


@pytest.mark.parametrize(
    ("first_name", "last_name", "name"),
    [
        ("Bob", "Biller", "Bob Biller"),
        ("Bob", None, "Bob"),
        (None, "Biller", "Biller"),
        ("Bob", "", "Bob"),
        ("  Bob ", " Biller  ", "Bob Biller"),
        ("", "", None),
        (None, None, None),
        ("  ", " ", None),
    ],
)
async def test_name_joins_first_and_last(
    client: httpx.AsyncClient,
    db: Database,
    first_name: str | None,
    last_name: str | None,
    name: str | None,
) -> None:
    payload = shopify.customer(44, first_name=first_name, last_name=last_name)
    assert (await shopify.post(client, "customers/create", payload)).json()["status"] == (
        "processed"
    )
    row = await queries.customer(db, 44)
    assert row is not None and row["name"] == name


async def test_tags_are_split_and_kept_when_the_key_is_absent(
    client: httpx.AsyncClient, db: Database
) -> None:
    async def tags_after(payload: dict[str, object]) -> list[str] | None:
        response = await shopify.post(client, "customers/update", payload)
        assert response.json()["status"] == "processed"
        row = await queries.customer(db, 45)
        assert row is not None
        return row["tags"]  # type: ignore[no-any-return]

    first = shopify.customer(45, updated_at="2026-01-01T00:00:00Z", tags=" vip,wholesale ,, x y ")
    assert await tags_after(first) == ["vip", "wholesale", "x y"]

    # API 2025-01 and later: no `tags` key. The stored tags stay; the rest updates.
    without = shopify.customer(45, updated_at="2026-01-02T00:00:00Z", email="later@example.com")
    assert "tags" not in without
    assert await tags_after(without) == ["vip", "wholesale", "x y"]
    assert (await queries.customer(db, 45) or {})["email"] == "later@example.com"

    emptied = shopify.customer(45, updated_at="2026-01-03T00:00:00Z", tags="")
    assert await tags_after(emptied) == []


async def test_customer_without_email_or_names(client: httpx.AsyncClient, db: Database) -> None:
    payload = {"id": 46, "updated_at": "2026-01-01T00:00:00Z", "phone": "+15145550199"}
    response = await shopify.post(client, "customers/create", payload)
    assert response.json()["status"] == "processed"
    row = await queries.customer(db, 46)
    assert row is not None
    assert (row["email"], row["name"], row["phone"], row["tags"], row["shopify_created_at"]) == (
        None,
        None,
        "+15145550199",
        None,
        None,
    )


async def test_update_clears_fields_the_payload_clears(
    client: httpx.AsyncClient, db: Database
) -> None:
    await shopify.post(client, "customers/create", shopify.customer(47, phone="+15145550100"))
    cleared = shopify.customer(
        47, updated_at="2026-03-01T00:00:00Z", first_name=None, last_name=None, phone=None
    )
    cleared["email"] = None
    assert (await shopify.post(client, "customers/update", cleared)).json()["status"] == (
        "processed"
    )
    row = await queries.customer(db, 47)
    assert row is not None
    assert (row["email"], row["name"], row["phone"]) == (None, None, None)


async def test_customer_delete_soft_deletes(client: httpx.AsyncClient, db: Database) -> None:
    await shopify.post(client, "customers/create", shopify.fixture("customers_create"))
    response = await shopify.post(
        client, "customers/delete", shopify.fixture("customers_delete"), webhook_id="del"
    )
    assert response.json() == {"status": "processed", "webhook_id": "del"}

    row = await queries.customer(db, SAMPLE_ID)
    assert row is not None
    assert row["deleted_at"] is not None
    # A soft delete: the data stays.
    assert (row["email"], row["name"]) == ("bob@biller.com", "Bob Biller")
    assert (await queries.ledger_row(db, "del"))["status"] == "processed"


async def test_customers_are_separate_per_shop(client: httpx.AsyncClient, db: Database) -> None:
    await shopify.post(client, "customers/create", shopify.customer(48, email="a@example.com"))
    await shopify.post(
        client,
        "customers/create",
        shopify.customer(48, email="b@example.com"),
        shop=shopify.OTHER_SHOP,
    )
    await shopify.post(client, "customers/delete", shopify.customer_deleted(48))

    mine = await queries.customer(db, 48)
    other = await queries.customer(db, 48, shop=shopify.OTHER_SHOP)
    assert mine is not None and other is not None
    assert (mine["email"], mine["deleted_at"] is not None) == ("a@example.com", True)
    assert (other["email"], other["deleted_at"]) == ("b@example.com", None)
    assert mine["id"] != other["id"]
