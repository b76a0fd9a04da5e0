"""GET /shops/{shop}/customers/{id}/export: everything held about one customer, and
nothing about anyone else (another customer of the shop, or the same Shopify
customer id in another shop)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.db.database import Database
from tests.support import queries, shopify
from tests.support.ops import ADMIN

ALICE = 731_000_000_017
BOB = 732_000_000_029
ALICE_ORDERS = (741_000_000_031, 741_000_000_043)
BOB_ORDER = 742_000_000_057
ALICE_ELSEWHERE_ORDER = 743_000_000_061  # the same Shopify customer id, in another shop

ALICE_EMAIL = "alice.export@example.net"
BOB_EMAIL = "bob.notexported@example.net"
ELSEWHERE_EMAIL = "alice.othershop@example.org"


def person(customer_id: int, email: str, first: str, last: str) -> dict[str, Any]:
    return shopify.customer(
        customer_id,
        email=email,
        first_name=first,
        last_name=last,
        default_address={"customer_id": customer_id, "first_name": first, "last_name": last},
    )


def order_of(order_id: int, customer_id: int, email: str, first: str, total: str) -> dict[str, Any]:
    return shopify.order(
        order_id,
        customer_id=customer_id,
        email=email,
        contact_email=email,
        total_price=total,
        customer_fields={"email": email, "first_name": first, "default_address": None},
        billing_address=None,
        shipping_address=None,
    )


async def deliver(
    client: httpx.AsyncClient, topic: str, payload: dict[str, Any], webhook_id: str, **options: Any
) -> None:
    assert await shopify.deliver(client, topic, payload, webhook_id, **options) == "processed"


@pytest.fixture
async def customers(client: httpx.AsyncClient, db: Database) -> None:
    await deliver(
        client, "customers/create", person(ALICE, ALICE_EMAIL, "Alicia", "Exporta"), "a-c"
    )
    await deliver(
        client,
        "orders/create",
        order_of(ALICE_ORDERS[0], ALICE, ALICE_EMAIL, "Alicia", "10.00"),
        "a-o1",
    )
    await deliver(
        client,
        "orders/create",
        order_of(ALICE_ORDERS[1], ALICE, ALICE_EMAIL, "Alicia", "32.50"),
        "a-o2",
    )
    await deliver(
        client, "orders/delete", shopify.deleted(ALICE_ORDERS[1]) | {"note": "x"}, "a-o2-del"
    )
    await deliver(
        client, "customers/data_request", shopify.data_request(ALICE, [ALICE_ORDERS[0]]), "a-dr"
    )

    await deliver(
        client, "customers/create", person(BOB, BOB_EMAIL, "Roberto", "Nonexport"), "bob-customer"
    )
    await deliver(
        client,
        "orders/create",
        order_of(BOB_ORDER, BOB, BOB_EMAIL, "Roberto", "77.00"),
        "bob-order",
    )
    await deliver(
        client, "customers/data_request", shopify.data_request(BOB, [BOB_ORDER]), "bob-data-request"
    )

    elsewhere = {"shop": shopify.OTHER_SHOP}
    await deliver(
        client,
        "customers/create",
        person(ALICE, ELSEWHERE_EMAIL, "Alissa", "Othershop"),
        "elsewhere-customer",
        **elsewhere,
    )
    await deliver(
        client,
        "orders/create",
        order_of(ALICE_ELSEWHERE_ORDER, ALICE, ELSEWHERE_EMAIL, "Alissa", "5.00"),
        "elsewhere-order",
        **elsewhere,
    )


async def export(client: httpx.AsyncClient, shop: str, customer_id: int | str) -> httpx.Response:
    return await client.get(f"/shops/{shop}/customers/{customer_id}/export", headers=ADMIN)


async def test_export_holds_the_customer_their_orders_and_their_ledger_entries(
    client: httpx.AsyncClient, db: Database, customers: None
) -> None:
    response = await export(client, shopify.SHOP, ALICE)
    assert response.status_code == 200, response.text
    document = response.json()

    assert document["shop"] == shopify.SHOP
    assert document["shopify_customer_id"] == str(ALICE)
    stored = await queries.customer(db, ALICE)
    assert stored is not None
    customer = document["customer"]
    assert customer["id"] == str(stored["id"])
    assert customer["shopify_id"] == str(ALICE)
    assert customer["email"] == ALICE_EMAIL
    assert customer["name"] == "Alicia Exporta"
    assert customer["order_count"] == 1  # the deleted order does not count

    # Every order of hers, the deleted one included (it is still held).
    assert sorted(order["shopify_id"] for order in document["orders"]) == sorted(
        str(order_id) for order_id in ALICE_ORDERS
    )
    assert all(order["customer_id"] == customer["id"] for order in document["orders"])
    first = next(o for o in document["orders"] if o["shopify_id"] == str(ALICE_ORDERS[0]))
    assert isinstance(first["line_items"], list) and first["line_items"]

    # The ledger entries about her or her orders, with their payloads.
    by_webhook = {event["webhook_id"]: event for event in document["events"]}
    assert set(by_webhook) == {"a-c", "a-o1", "a-o2", "a-o2-del", "a-dr"}
    assert by_webhook["a-c"]["payload"]["email"] == ALICE_EMAIL
    assert by_webhook["a-o1"]["payload"]["id"] == ALICE_ORDERS[0]
    assert by_webhook["a-dr"]["topic"] == "customers/data_request"


async def test_export_holds_nothing_about_anyone_else(
    client: httpx.AsyncClient, customers: None
) -> None:
    response = await export(client, shopify.SHOP, ALICE)
    assert response.status_code == 200, response.text
    text = response.text
    # Sanity: the search finds what is there.
    assert ALICE_EMAIL in text and str(ALICE_ORDERS[0]) in text
    for foreign in (
        str(BOB),
        BOB_EMAIL,
        "Roberto",
        str(BOB_ORDER),
        "bob-customer",
        "bob-order",
        "bob-data-request",
        ELSEWHERE_EMAIL,
        "Alissa",
        "Othershop",
        str(ALICE_ELSEWHERE_ORDER),
        shopify.OTHER_SHOP,
        "elsewhere-customer",
        "elsewhere-order",
    ):
        assert foreign not in text, f"{foreign!r} is in the export of another customer"


async def test_the_same_customer_id_in_another_shop_is_another_customer(
    client: httpx.AsyncClient, customers: None
) -> None:
    response = await export(client, shopify.OTHER_SHOP, ALICE)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["customer"]["email"] == ELSEWHERE_EMAIL
    assert [order["shopify_id"] for order in document["orders"]] == [str(ALICE_ELSEWHERE_ORDER)]
    assert {event["webhook_id"] for event in document["events"]} == {
        "elsewhere-customer",
        "elsewhere-order",
    }
    for foreign in (ALICE_EMAIL, "Exporta", str(ALICE_ORDERS[0]), str(ALICE_ORDERS[1]), BOB_EMAIL):
        assert foreign not in response.text
    # The shop is matched however the operator types it.
    upper = await export(client, shopify.OTHER_SHOP.upper(), ALICE)
    assert upper.status_code == 200 and json.loads(upper.text) == document


async def test_a_redacted_customer_exports_without_personal_data(
    client: httpx.AsyncClient, customers: None
) -> None:
    redact = shopify.customers_redact(ALICE, email=ALICE_EMAIL, phone=None, orders_to_redact=[])
    await deliver(client, "customers/redact", redact, "a-redact")
    response = await export(client, shopify.SHOP, ALICE)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["customer"]["email"] is None and document["customer"]["redacted_at"]
    assert ALICE_EMAIL not in response.text
    assert "Alicia" not in response.text


@pytest.mark.parametrize(
    ("shop", "customer_id"),
    [
        (shopify.SHOP, 999_999_999_999),
        ("unknown-shop.myshopify.com", ALICE),
        (shopify.SHOP, "not-a-customer"),
    ],
    ids=["unknown-customer", "unknown-shop", "not-an-id"],
)
async def test_unknown_customer_is_404(
    client: httpx.AsyncClient, customers: None, shop: str, customer_id: int | str
) -> None:
    response = await export(client, shop, customer_id)
    assert response.status_code == 404, response.text
    assert ALICE_EMAIL not in response.text
