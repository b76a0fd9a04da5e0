"""Examples of the admin API's answers for /schema; their shapes are the answers' Structs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from app.admin_api.events import encode_cursor
from app.admin_api.replay import ReplayedDelivery, ReplayReport
from app.admin_api.schemas import EventPage
from app.db.enums import DeliveryStatus
from app.http.openapi import ADMIN_ERRORS, error_response, example_response
from app.webhooks.privacy.export import CustomerExport, ExportedCustomer, ExportedOrder
from app.webhooks.recorded import Event

_RECEIVED = datetime(2026, 11, 23, 10, 0, 0, 412000, tzinfo=UTC)
_TRIGGERED = datetime(2026, 11, 23, 10, 0, 0, 123457, tzinfo=UTC)
FAILED_EVENT = Event(
    id=UUID("5b0f3c1e-8a0e-4f5e-9d4b-3f1a2b3c4d5e"),
    shop_id="example.myshopify.com",
    webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    event_id="3ac5d2a0-3c5e-4b8e-9a43-2f0f5a3b7c11",
    topic="orders/create",
    api_version="2026-07",
    triggered_at=_TRIGGERED,
    received_at=_RECEIVED,
    status=DeliveryStatus.failed,
    attempts=1,
    last_error="Invalid enum value 'expired' - at `$.financial_status`",
    processed_at=_RECEIVED,
)
_PAYLOAD = msgspec.Raw(b'{"id":820982911946154508,"financial_status":"expired"}')
_OTHER_ID = UUID("9f6e2a43-0c1b-4d6e-8f3a-5b2c1d0e9f87")

EVENTS_RESPONSES = {
    200: example_response(
        "Recorded deliveries, newest first",
        EventPage(
            [FAILED_EVENT], encode_cursor(FAILED_EVENT.received_at.isoformat(), FAILED_EVENT.id)
        ),
    ),
    400: error_response(
        400, "Invalid filter, limit or cursor", "cursor is not one this service issued"
    ),
    **ADMIN_ERRORS,
}
EVENT_RESPONSES = {
    200: example_response(
        "The delivery, with its payload",
        msgspec.structs.replace(FAILED_EVENT, payload=_PAYLOAD),
    ),
    404: error_response(404, "No such delivery", f"no recorded delivery with id {FAILED_EVENT.id}"),
    **ADMIN_ERRORS,
}
REPLAY_RESPONSES = {
    200: example_response(
        "What the replay did",
        ReplayReport(
            dry_run=False,
            matched=2,
            processed=1,
            failed=1,
            failed_ids=[_OTHER_ID],
            deliveries=[
                ReplayedDelivery(FAILED_EVENT.id, FAILED_EVENT.webhook_id, "orders/create"),
                ReplayedDelivery(
                    _OTHER_ID, "7d1c0b8e-0c55-4e2a-9b61-0f3d2c1b4a59", "orders/updated"
                ),
            ],
            next_cursor=encode_cursor(_TRIGGERED.isoformat(), _RECEIVED.isoformat(), _OTHER_ID),
        ),
    ),
    400: error_response(
        400,
        "No selection, an unknown field (such as a payload) or a bad value",
        "say which deliveries to replay: ids, webhook_ids, or a filter "
        "(shop, topic, status, since, until)",
    ),
    **ADMIN_ERRORS,
}

_CUSTOMER_ID = UUID("0c8a7e52-4f0b-4d1e-9a57-6b1f2e3d4c5b")
EXPORT_RESPONSES = {
    200: example_response(
        "The customer, their orders and the ledger entries about them",
        CustomerExport(
            shop="example.myshopify.com",
            shopify_customer_id="706405506930370084",
            customer=ExportedCustomer(
                id=_CUSTOMER_ID,
                shop_id="example.myshopify.com",
                shopify_id="706405506930370084",
                created_at=_RECEIVED,
                name="Bob Biller",
                email="bob@biller.com",
                phone=None,
                rfm_r=None,
                rfm_f=None,
                rfm_m=None,
                segment=None,
                lifecycle_stage=None,
                tags=["vip"],
                total_spent=Decimal("199.65"),
                order_count=1,
                avg_order_value=Decimal("199.65"),
                first_order_at=_TRIGGERED,
                last_order_at=_TRIGGERED,
                shopify_created_at=_TRIGGERED,
                shopify_updated_at=_TRIGGERED,
                deleted_at=None,
                redacted_at=None,
                email_marketing_state="subscribed",
                email_marketing_opt_in_level="single_opt_in",
                email_marketing_consent_updated_at=_TRIGGERED,
                sms_marketing_state=None,
                sms_marketing_opt_in_level=None,
                sms_marketing_consent_updated_at=None,
                shopify_order_count=None,
                shopify_amount_spent=None,
                shopify_summary_at=None,
                merged_into=None,
                merged_at=None,
            ),
            orders=[
                ExportedOrder(
                    id=UUID("1d9b8f63-5a1c-4e2f-8b68-7c2a3f4e5d6c"),
                    shop_id="example.myshopify.com",
                    shopify_id="820982911946154508",
                    created_at=_RECEIVED,
                    customer_id=_CUSTOMER_ID,
                    total_price=Decimal("199.65"),
                    line_items=msgspec.Raw(b'[{"id":866550311766439020,"quantity":1}]'),
                    financial_status="paid",
                    name="#1001",
                    email="bob@biller.com",
                    currency="USD",
                    current_total_price=Decimal("199.65"),
                    fulfillment_status=None,
                    test=False,
                    cancelled_at=None,
                    shopify_created_at=_TRIGGERED,
                    shopify_updated_at=_TRIGGERED,
                    deleted_at=None,
                )
            ],
            events=[
                msgspec.structs.replace(
                    FAILED_EVENT,
                    status=DeliveryStatus.processed,
                    last_error=None,
                    payload=msgspec.Raw(b'{"id":820982911946154508}'),
                )
            ],
        ),
    ),
    404: error_response(
        404,
        "Nothing is held about this customer",
        "nothing is held about customer 706405506930370084 of example.myshopify.com",
    ),
    **ADMIN_ERRORS,
}
