"""Logs: one JSON line per delivery (webhook id, shop, topic, outcome, duration), at
the level LOG_LEVEL allows, and never a secret, a signature, a body or a
customer's personal data, whatever the topic or the outcome."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.config import Settings
from app.db.database import Database
from app.observability.logs import JsonFormatter
from tests.support import shopify
from tests.support.ops import ADMIN, ADMIN_TOKEN, collected_logs, preserved_logging

# Personal data no log line may carry. Distinctive, so that a hit is a leak.
EMAIL = "quillonetta.vorsprengler@pii-example.org"
OTHER_EMAIL = "second.pii.person@pii-example.org"
FIRST_NAME = "Quillonetta"
LAST_NAME = "Vorsprengler"
PHONE = "+1-555-0147-9931"
OTHER_PHONE = "+44 7700 900461"
STREET = "77 Secretive Lane"
BODY_MARKER = "PII-BODY-MARKER-3141"

CUSTOMER = 8_100_000_001
ORDER = 8_200_000_001
REDACTED_SHOP = "logs-redacted-shop.myshopify.com"


def pii_customer(*, phone: str = PHONE, **fields: Any) -> dict[str, Any]:
    return shopify.customer(
        CUSTOMER,
        email=EMAIL,
        first_name=FIRST_NAME,
        last_name=LAST_NAME,
        phone=phone,
        note=BODY_MARKER,
        default_address={
            "first_name": FIRST_NAME,
            "last_name": LAST_NAME,
            "address1": STREET,
            "phone": PHONE,
            "name": f"{FIRST_NAME} {LAST_NAME}",
        },
        **fields,
    )


def pii_order(**fields: Any) -> dict[str, Any]:
    address = {"first_name": FIRST_NAME, "last_name": LAST_NAME, "address1": STREET, "phone": PHONE}
    return shopify.order(
        ORDER,
        customer_id=CUSTOMER,
        email=EMAIL,
        contact_email=EMAIL,
        phone=PHONE,
        note=BODY_MARKER,
        billing_address=address,
        shipping_address=address,
        customer_fields={
            "email": EMAIL,
            "first_name": FIRST_NAME,
            "last_name": LAST_NAME,
            "phone": PHONE,
        },
        **fields,
    )


@dataclasses.dataclass
class Sent:
    webhook_id: str | None  # None: the request is rejected before its headers are read
    topic: str
    outcome: str
    headers: dict[str, str]


async def send(
    client: httpx.AsyncClient,
    topic: str,
    payload: dict[str, Any] | bytes,
    outcome: str,
    *,
    webhook_id: str,
    expected_status: int = 200,
    logged_webhook_id: str | None = "same",
    **options: Any,
) -> Sent:
    body = shopify.encode(payload)
    headers = shopify.headers(topic, body, webhook_id=webhook_id, **options)
    response = await shopify.post_raw(client, body, headers)
    assert response.status_code == expected_status, response.text
    if expected_status == 200:
        assert response.json()["status"] == outcome, response.text
    return Sent(
        webhook_id if logged_webhook_id == "same" else logged_webhook_id, topic, outcome, headers
    )


async def every_kind_of_delivery(client: httpx.AsyncClient) -> list[Sent]:
    sent = [
        await send(client, "customers/create", pii_customer(), "processed", webhook_id="l-cc"),
        await send(
            client,
            "customers/update",
            pii_customer(updated_at="2026-02-01T10:00:00Z"),
            "processed",
            webhook_id="l-cu",
        ),
        await send(client, "orders/create", pii_order(), "processed", webhook_id="l-oc"),
        await send(
            client,
            "orders/updated",
            pii_order(updated_at="2026-02-01T10:00:00Z"),
            "processed",
            webhook_id="l-ou",
        ),
        await send(client, "orders/create", pii_order(), "duplicate", webhook_id="l-oc"),
        await send(client, "orders/delete", shopify.deleted(ORDER), "processed", webhook_id="l-od"),
        await send(
            client,
            "customers/data_request",
            shopify.data_request(CUSTOMER, [ORDER])
            | {"customer": {"id": CUSTOMER, "email": EMAIL, "phone": PHONE}},
            "processed",
            webhook_id="l-dr",
        ),
        await send(
            client,
            "customers/redact",
            shopify.customers_redact(CUSTOMER, email=EMAIL, phone=PHONE, orders_to_redact=[ORDER]),
            "processed",
            webhook_id="l-cr",
        ),
        await send(
            client,
            "customers/delete",
            shopify.customer_deleted(CUSTOMER),
            "processed",
            webhook_id="l-cd",
        ),
        await send(
            client,
            "customers/create",
            shopify.customer(CUSTOMER + 1, email=OTHER_EMAIL, phone=OTHER_PHONE),
            "processed",
            webhook_id="l-other",
            shop=REDACTED_SHOP,
        ),
        await send(
            client,
            "shop/redact",
            shopify.shop_redact(REDACTED_SHOP),
            "processed",
            webhook_id="l-sr",
            shop=REDACTED_SHOP,
        ),
        await send(
            client,
            "app/uninstalled",
            # The shop's numeric id as the privacy deliveries above gave it.
            shopify.fixture("app_uninstalled") | {"id": 954889, "email": EMAIL, "phone": PHONE},
            "processed",
            webhook_id="l-au",
        ),
        # A topic without a handler, its body full of personal data.
        await send(
            client,
            "carts/update",
            {"id": 1, "email": EMAIL, "note": BODY_MARKER},
            "ignored",
            webhook_id="l-ig",
        ),
        # A payload that cannot be applied (the id is not a number, the phone too long).
        await send(
            client,
            "customers/create",
            pii_customer(id=f"{EMAIL}", phone=PHONE * 10),
            "failed",
            webhook_id="l-fail",
        ),
        await send(
            client,
            "orders/create",
            pii_order(total_price="1e30"),
            "failed",
            webhook_id="l-fail-money",
        ),
        # Signed with the previous secret during a rotation; the customer was
        # deleted meanwhile, so the update is stale.
        await send(
            client,
            "customers/update",
            pii_customer(updated_at="2026-03-01T10:00:00Z"),
            "stale",
            webhook_id="l-prev",
            secret=shopify.PREVIOUS_SECRET,
        ),
        # A wrong signature: nothing of the request is trusted, or logged.
        await send(
            client,
            "customers/create",
            pii_customer(),
            "rejected_signature",
            webhook_id="l-badsig",
            secret=f"{FIRST_NAME}-not-the-secret",
            expected_status=401,
            logged_webhook_id=None,
        ),
    ]
    # Not JSON, and full of personal data.
    body = f'{{"email": "{EMAIL}", "note": "{BODY_MARKER}" oops'.encode()
    headers = shopify.headers("customers/create", body, webhook_id="l-notjson")
    response = await shopify.post_raw(client, body, headers)
    assert response.status_code == 400
    sent.append(Sent("l-notjson", "customers/create", "rejected_bad_request", headers))
    return sent


def forbidden_values(sent: list[Sent]) -> list[str]:
    values = [
        EMAIL,
        OTHER_EMAIL,
        FIRST_NAME,
        LAST_NAME,
        PHONE,
        OTHER_PHONE,
        "555-0147",
        STREET,
        BODY_MARKER,
        shopify.SECRET,
        shopify.PREVIOUS_SECRET,
        ADMIN_TOKEN,
    ]
    values += [delivery.headers["X-Shopify-Hmac-Sha256"] for delivery in sent]
    return values


@pytest.fixture
def logs(client: httpx.AsyncClient) -> Any:
    """The log lines written while the test runs (after `client` set logging up)."""
    with collected_logs() as collector:
        yield collector


async def test_no_personal_data_secret_or_signature_in_any_log_line(
    client: httpx.AsyncClient, db: Database, logs: Any
) -> None:
    # What the collector sees is what the service writes: its JSON lines.
    assert any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)

    sent = await every_kind_of_delivery(client)
    # An admin request that reads payloads back, with the admin token.
    response = await client.get("/events", params={"include_payload": "true"}, headers=ADMIN)
    assert response.status_code == 200
    assert EMAIL in response.text or "l-cc" in response.text

    assert logs.lines, "nothing was logged"
    text = logs.text.lower()
    leaks = [value for value in forbidden_values(sent) if value.lower() in text]
    assert leaks == [], f"found in the logs: {leaks}\n{logs.text}"


async def test_one_json_line_per_delivery_with_its_fields(
    client: httpx.AsyncClient, db: Database, logs: Any
) -> None:
    sent = await every_kind_of_delivery(client)

    lines = [entry for entry in logs.entries if entry["logger"] == "app.webhooks"]
    assert len(lines) == len(sent), lines
    for delivery, line in zip(sent, lines, strict=True):
        assert {"webhook_id", "shop", "topic", "outcome", "duration_ms"} <= set(line), line
        assert line["outcome"] == delivery.outcome, line
        assert line["webhook_id"] == delivery.webhook_id, line
        assert isinstance(line["duration_ms"], int | float) and 0 <= line["duration_ms"] < 10_000
        assert line["time"] and line["level"] in ("info", "warning")
        if delivery.webhook_id is None:
            assert line["shop"] is None and line["topic"] is None
        else:
            assert line["topic"] == delivery.topic
            assert line["shop"] == delivery.headers["X-Shopify-Shop-Domain"]


@pytest.fixture
async def quiet_client(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with preserved_logging():
        app = create_app(dataclasses.replace(settings, log_level="WARNING"))
        async with AsyncTestClient(app=app) as test_client:
            yield test_client


async def test_log_level_comes_from_the_settings(
    quiet_client: httpx.AsyncClient, db: Database
) -> None:
    assert logging.getLogger().level == logging.WARNING
    with collected_logs() as collector:
        response = await shopify.post(quiet_client, "customers/create", shopify.customer(1))
        assert response.json()["status"] == "processed"
    assert [e for e in collector.entries if e["logger"] == "app.webhooks"] == []
