"""Documented responses, with examples, for the OpenAPI schema at /schema."""

from __future__ import annotations

from typing import Any

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from prometheus_client import CONTENT_TYPE_LATEST

from app.admin.events import encode_cursor


def example_response(
    description: str,
    value: Any,
    *,
    summary: str | None = None,
    media_type: str = "application/json",
) -> ResponseSpec:
    """A response whose body is described by one example."""
    container: Any = str if isinstance(value, str) else dict[str, Any]
    return ResponseSpec(
        data_container=container,
        description=description,
        media_type=media_type,
        generate_examples=False,
        examples=[Example(summary=summary or description, value=value)],
    )


def error_response(status_code: int, description: str, detail: str) -> ResponseSpec:
    """An error in Litestar's format: {"status_code": ..., "detail": ...}."""
    return example_response(description, {"status_code": status_code, "detail": detail})


ADMIN_ERRORS: dict[int, ResponseSpec] = {
    401: error_response(
        401,
        "Missing or wrong admin token",
        "missing or wrong admin token: send Authorization: Bearer <ADMIN_TOKEN>",
    ),
    403: error_response(
        403,
        "The admin API is disabled (ADMIN_TOKEN is not set)",
        "the admin API is disabled: set ADMIN_TOKEN to enable it",
    ),
}


# --- the admin API ------------------------------------------------------------

EVENT_EXAMPLE = {
    "id": "5b0f3c1e-8a0e-4f5e-9d4b-3f1a2b3c4d5e",
    "shop_id": "example.myshopify.com",
    "webhook_id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    "event_id": "3ac5d2a0-3c5e-4b8e-9a43-2f0f5a3b7c11",
    "topic": "orders/create",
    "api_version": "2026-07",
    "triggered_at": "2026-11-23T10:00:00.123457Z",
    "received_at": "2026-11-23T10:00:00.412000Z",
    # A failed delivery, so that every field shows (OpenAPI examples drop nulls).
    "status": "failed",
    "attempts": 1,
    "last_error": "Invalid enum value 'expired' - at `$.financial_status`",
    "processed_at": "2026-11-23T10:00:00.412000Z",
}
FAILED_ID = "9f6e2a43-0c1b-4d6e-8f3a-5b2c1d0e9f87"
EVENTS_RESPONSES = {
    200: example_response(
        "Recorded deliveries, newest first",
        {
            "events": [EVENT_EXAMPLE],
            "next_cursor": encode_cursor(EVENT_EXAMPLE["received_at"], EVENT_EXAMPLE["id"]),
        },
    ),
    400: error_response(
        400, "Invalid filter, limit or cursor", "cursor is not one this service issued"
    ),
    **ADMIN_ERRORS,
}
EVENT_RESPONSES = {
    200: example_response(
        "The delivery, with its payload",
        {**EVENT_EXAMPLE, "payload": {"id": 820982911946154508, "financial_status": "paid"}},
    ),
    404: error_response(
        404, "No such delivery", f"no recorded delivery with id {EVENT_EXAMPLE['id']}"
    ),
    **ADMIN_ERRORS,
}
REPLAY_RESPONSES = {
    200: example_response(
        "What the replay did",
        {
            "dry_run": False,
            "matched": 2,
            "processed": 1,
            "stale": 0,
            "failed": 1,
            "ignored": 0,
            "erasing": 0,
            "missing": 0,
            "failed_ids": [FAILED_ID],
            "deliveries": [
                {
                    "id": EVENT_EXAMPLE["id"],
                    "webhook_id": EVENT_EXAMPLE["webhook_id"],
                    "topic": "orders/create",
                },
                {
                    "id": FAILED_ID,
                    "webhook_id": "7d1c0b8e-0c55-4e2a-9b61-0f3d2c1b4a59",
                    "topic": "orders/updated",
                },
            ],
            "next_cursor": encode_cursor(
                EVENT_EXAMPLE["triggered_at"], EVENT_EXAMPLE["received_at"], FAILED_ID
            ),
        },
    ),
    400: error_response(
        400,
        "No selection, an unknown field (such as a payload) or a bad value",
        "say which deliveries to replay: ids, webhook_ids, or a filter "
        "(shop, topic, status, since, until)",
    ),
    **ADMIN_ERRORS,
}
EXPORT_RESPONSES = {
    200: example_response(
        "The customer, their orders and the ledger entries about them",
        {
            "shop": "example.myshopify.com",
            "shopify_customer_id": "706405506930370084",
            "customer": {
                "shopify_id": "706405506930370084",
                "email": "bob@biller.com",
                "name": "Bob Biller",
                "order_count": 1,
                "total_spent": "199.65",
            },
            "orders": [
                {"shopify_id": "820982911946154508", "total_price": "199.65", "currency": "USD"}
            ],
            "events": [{**EVENT_EXAMPLE, "payload": {"id": 820982911946154508}}],
        },
    ),
    404: error_response(
        404,
        "Nothing is held about this customer",
        "nothing is held about customer 706405506930370084 of example.myshopify.com",
    ),
    **ADMIN_ERRORS,
}


# --- probes and metrics ---------------------------------------------------------

HEALTH_RESPONSES = {200: example_response("The process answers", {"status": "ok"})}
READY_RESPONSES = {
    200: example_response("Ready to take deliveries", {"status": "ready"}),
    503: ResponseSpec(
        data_container=dict[str, Any],
        description="Not ready: the failing part and why (with Retry-After)",
        generate_examples=False,
        examples=[
            Example(
                summary="The database does not answer",
                value={"status": "not ready", "database": "no answer within 1 s"},
            ),
            Example(
                summary="Migrations are pending",
                value={
                    "status": "not ready",
                    "migrations": "1 pending (ingest_2026_11_23t23_08_52_314599): "
                    "run `python -m app migrate`",
                },
            ),
        ],
    ),
}
METRICS_RESPONSES = {
    200: example_response(
        "Prometheus text exposition",
        "# TYPE shopify_ingest_deliveries_total counter\n"
        'shopify_ingest_deliveries_total{outcome="processed",topic="orders/create"} 42.0\n',
        media_type=CONTENT_TYPE_LATEST,
    )
}


# --- the webhook endpoint ---------------------------------------------------------

WEBHOOK_RESPONSES = {
    200: example_response(
        "Recorded (and applied, unless stale, duplicate, failed or ignored)",
        {"status": "processed", "webhook_id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"},
    ),
    400: error_response(
        400,
        "A required header is missing or malformed, or the body is not a JSON object",
        "missing header X-Shopify-Webhook-Id",
    ),
    401: error_response(401, "Missing or invalid signature", "invalid or missing HMAC signature"),
    413: error_response(413, "Body larger than MAX_BODY_BYTES", "Request Entity Too Large"),
    503: error_response(
        503,
        "The database is unavailable: nothing was recorded (Retry-After: 5)",
        "the database is unavailable; nothing was recorded, retry later",
    ),
}
