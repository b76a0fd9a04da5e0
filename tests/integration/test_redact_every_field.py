"""After customers/redact (and shop/redact) nothing personal is left anywhere.

Every personal field the stored topics' payloads can carry is seeded with a
value of its own (a marker): the customer's contact details and an earlier
email, notes, tags, addresses, note attributes and line-item properties,
their browser, the links to their order; in deliveries of every outcome
(processed, ignored, failed), in the orders table's line items, in the tag
history and in the sync's staged bulk lines (a killed run's and a live one's).
After the redaction, every text-like column of every table is searched for
every marker.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from app.db.database import Database
from tests.support import queries, shopify
from tests.support.shopify import deliver

CUSTOMER = 191167
OTHER = 191168
ORDER = 299938
EMAIL = "john.now@example.com"
EARLIER_EMAIL = "john.before@example.com"
PHONE = "555-625-1199"


def marker(field: str) -> str:
    return f"mk-{field}-{uuid.uuid4().hex[:8]}"


# One marker per personal field (no marker contains another, so each is found alone).
M = {
    field: marker(field)
    for field in (
        "first-name",
        "last-name",
        "customer-note",
        "tag-a",
        "tag-b",
        "tag-added",
        "city",
        "province",
        "address1",
        "zip",
        "company",
        "multipass",
        "order-note",
        "note-attribute",
        "line-item-property",
        "shipping-city",
        "billing-company",
        "user-agent",
        "landing-site",
        "referring-site",
        "order-token",
        "checkout-token",
        "staged-note",
        "staged-property",
        "unknown-topic",
    )
}


def address(prefix: str = "") -> dict[str, Any]:
    return {
        "first_name": M["first-name"],
        "last_name": M["last-name"],
        "name": f"{M['first-name']} {M['last-name']}",
        "address1": M["address1"],
        "address2": None,
        "city": M[f"{prefix}city"] if f"{prefix}city" in M else M["city"],
        "province": M["province"],
        "province_code": "ON",
        "zip": M["zip"],
        "company": M["billing-company"] if prefix == "billing-" else M["company"],
        "phone": PHONE,
        "country": "Canada",
        "country_code": "CA",
    }


def customer_payload(email: str, updated_at: str) -> dict[str, Any]:
    payload = shopify.customer(
        CUSTOMER,
        updated_at=updated_at,
        email=email,
        first_name=M["first-name"],
        last_name=M["last-name"],
        phone=PHONE,
        tags=f"{M['tag-a']}, {M['tag-b']}",
        note=M["customer-note"],
        multipass_identifier=M["multipass"],
    )
    payload["default_address"] = {"id": 1, "customer_id": CUSTOMER, **address()}
    payload["addresses"] = [payload["default_address"]]
    return payload


def order_payload(order_id: int, **fields: Any) -> dict[str, Any]:
    payload = shopify.order(
        order_id,
        customer_id=CUSTOMER,
        email=EMAIL,
        customer_updated_at="2026-01-02T00:00:00Z",
        customer_fields={"email": EMAIL, "phone": PHONE, "tags": M["tag-a"]},
        contact_email=EMAIL,
        phone=PHONE,
        note=M["order-note"],
        note_attributes=[{"name": "gift message", "value": M["note-attribute"]}],
        client_details={"browser_ip": "203.0.113.7", "user_agent": M["user-agent"]},
        landing_site=f"/?ref={M['landing-site']}",
        referring_site=f"https://{M['referring-site']}.example/",
        token=M["order-token"],
        checkout_token=M["checkout-token"],
        order_status_url=f"https://shop.example/orders/{M['order-token']}",
        **fields,
    )
    payload["shipping_address"] = address("shipping-")
    payload["billing_address"] = address("billing-")
    for item in payload["line_items"]:
        item["properties"] = [{"name": "engraving", "value": M["line-item-property"]}]
    return payload


async def seed(client: httpx.AsyncClient, db: Database) -> None:
    # The customer under an earlier email, then the current one.
    early = customer_payload(EARLIER_EMAIL, "2026-01-01T00:00:00Z")
    assert await deliver(client, "customers/create", early) == "processed"
    # A topic this service does not handle, naming them only by that earlier email.
    unknown = {"id": 777, "email": EARLIER_EMAIL, "note": M["unknown-topic"]}
    assert await deliver(client, "checkouts/update", unknown) == "ignored"
    assert await deliver(
        client, "customers/update", customer_payload(EMAIL, "2026-01-02T00:00:00Z")
    ) == ("processed")
    assert await deliver(client, "orders/create", order_payload(ORDER)) == "processed"
    failed = order_payload(ORDER, financial_status="bogus", updated_at="2026-01-03T00:00:00Z")
    assert await deliver(client, "orders/updated", failed) == "failed"
    tags = {
        "customerId": f"gid://shopify/Customer/{CUSTOMER}",
        "tags": [M["tag-added"]],
        "occurredAt": "2026-01-04T00:00:00Z",
    }
    assert await deliver(client, "customer.tags_added", tags) == "processed"
    consent = {
        "customer_id": CUSTOMER,
        "email_address": EMAIL,
        "email_marketing_consent": {
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": "2026-01-04T00:00:00Z",
        },
    }
    assert await deliver(client, "customers_email_marketing_consent/update", consent) == (
        "processed"
    )
    # A bystander, whose data stays.
    bystander = shopify.customer(OTHER, email="jane@example.com", note="jane's note")
    assert await deliver(client, "customers/create", bystander) == "processed"
    await stage_bulk_lines(db)


async def stage_bulk_lines(db: Database) -> None:
    """A killed sync's staged lines, and a live one's (about the customer and the bystander)."""
    killed, live = uuid.uuid4(), uuid.uuid4()
    for run_id in (killed, live):
        await queries.execute(
            db,
            "INSERT INTO sync_runs (id, shop_id, kind, resource, status)"
            " VALUES ($1, $2, 'full', 'orders', 'running')",
            run_id,
            shopify.SHOP,
        )
    await queries.execute(
        db,
        "INSERT INTO sync_leases (shop_id, run_id, expires_at)"
        " VALUES ($1, $2, now() + interval '10 minutes')",
        shopify.SHOP,
        live,
    )
    order_gid = f"gid://shopify/Order/{ORDER + 1}"
    theirs = {
        "id": order_gid,
        "legacyResourceId": str(ORDER + 1),
        "email": EMAIL,
        "name": M["staged-note"],
        "customer": {"legacyResourceId": str(CUSTOMER)},
    }
    item = {
        "id": "gid://shopify/LineItem/1",
        "title": M["staged-property"],
        "__parentId": order_gid,
    }
    bystanders = {
        "id": "gid://shopify/Order/1",
        "legacyResourceId": "1",
        "email": "jane@example.com",
        "customer": {"legacyResourceId": str(OTHER)},
    }
    rows = [
        (killed, theirs["id"], None, theirs),
        (killed, item["id"], order_gid, item),
        (killed, bystanders["id"], None, bystanders),
        (live, theirs["id"], None, theirs),
        (live, item["id"], order_gid, item),
        (live, bystanders["id"], None, bystanders),
    ]
    for run_id, gid, parent, document in rows:
        await queries.execute(
            db,
            "INSERT INTO sync_bulk_rows (shop_id, run_id, gid, parent_gid, document)"
            " VALUES ($1, $2, $3, $4, $5::jsonb)",
            shopify.SHOP,
            run_id,
            gid,
            parent,
            json.dumps(document),
        )


PERSONAL = (*M.values(), EMAIL, EARLIER_EMAIL, PHONE)


async def test_customers_redact_leaves_no_personal_field_anywhere(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(client, db)
    seeded = await queries.where_found(db, *PERSONAL)
    for value in PERSONAL:  # the search finds every one of them before
        assert any(hit.endswith(f": {value}") for hit in seeded), value

    redact = shopify.customers_redact(
        CUSTOMER, email=EMAIL, phone=PHONE, orders_to_redact=[ORDER, ORDER + 1]
    )
    assert await deliver(client, "customers/redact", redact) == "processed"

    assert await queries.where_found(db, *PERSONAL) == []
    # What is not theirs stays: the bystander, and the live run's other lines.
    assert await queries.where_found(db, "jane@example.com", "jane's note")
    staged = await queries.fetch(db, "SELECT gid FROM sync_bulk_rows ORDER BY gid")
    assert [row["gid"] for row in staged] == ["gid://shopify/Order/1"]
    order = await queries.order(db, ORDER)
    assert order is not None and order["total_price"] is not None
    assert [item["id"] for item in json.loads(order["line_items"])] == [
        item["id"] for item in shopify.fixture("orders_create")["line_items"]
    ]


async def test_shop_redact_leaves_no_staged_line(client: httpx.AsyncClient, db: Database) -> None:
    await seed(client, db)
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_bulk_rows") == 6

    assert await deliver(client, "shop/redact", shopify.shop_redact()) == "processed"

    assert await queries.where_found(db, *PERSONAL, "jane@example.com") == []
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_bulk_rows") == 0
    assert await queries.fetchval(db, "SELECT count(*) FROM sync_runs") == 0
