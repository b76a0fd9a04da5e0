"""The sync fills the marketing consent columns the consent webhooks fill, by the same rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from app.config import Settings
from app.db.database import Database
from app.db.enums import SyncRunStatus
from app.devtools.standin import FakeShop
from tests.support import shopify
from tests.support.sync import stored_customers, sync


async def test_sync_stores_consent_lower_cased_and_a_newer_webhook_wins(
    client: httpx.AsyncClient, db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    synced = shop.add_customer(
        email="a@example.com",
        phone="+16135550100",
        email_marketing_state="SUBSCRIBED",
        email_opt_in_level="CONFIRMED_OPT_IN",
        email_marketing_updated_at=base,
        sms_marketing_state="PENDING",
        sms_opt_in_level="UNKNOWN",
        sms_marketing_updated_at=base,
    )
    webhook_newer = shop.add_customer(
        email="b@example.com",
        email_marketing_state="SUBSCRIBED",
        email_marketing_updated_at=base,
    )
    no_email = shop.add_customer(phone="+16135550101", sms_marketing_state="SUBSCRIBED")
    body = {
        "customer_id": webhook_newer["id"],
        "email_address": "b@example.com",
        "email_marketing_consent": {
            "state": "unsubscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": (base + timedelta(days=1)).isoformat(),
        },
    }
    status = await shopify.deliver(
        client, "customers_email_marketing_consent/update", body, shop=shop.domain
    )
    assert status == "processed"

    _, run_status = await sync(db, sync_config, shop)

    assert run_status is SyncRunStatus.succeeded
    customers = await stored_customers(db, shop.domain)
    first = customers[str(synced["id"])]
    assert (
        first["email_marketing_state"],
        first["email_marketing_opt_in_level"],
        first["email_marketing_consent_updated_at"],
        first["sms_marketing_state"],
        first["sms_marketing_opt_in_level"],
        first["sms_marketing_consent_updated_at"],
    ) == ("subscribed", "confirmed_opt_in", base, "pending", "unknown", base)
    second = customers[str(webhook_newer["id"])]
    assert (second["email_marketing_state"], second["email_marketing_opt_in_level"]) == (
        "unsubscribed",
        "single_opt_in",
    )
    third = customers[str(no_email["id"])]
    assert (third["email_marketing_state"], third["sms_marketing_state"]) == (None, "subscribed")
