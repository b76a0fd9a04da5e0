"""POST /webhooks/shopify: every topic arrives here.

The order of checks is part of the contract: size (413, enforced by Litestar
as the body is read), signature (401), headers (400), body (400), then one
database transaction that records and applies the delivery. What is raised
becomes an answer in app/http/errors.py; here it is only reported.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Request, post

from app.http.limits import body_verified
from app.http.openapi import UNAVAILABLE, error_response, example_response
from app.http.state import database_of, settings_of
from app.webhooks.delivery import header, parse_delivery, verify_signature
from app.webhooks.ingest import ingest
from app.webhooks.outcomes import Outcome
from app.webhooks.reporting import DeliveryReport, report_delivery


class WebhookAnswer(msgspec.Struct):
    """The delivery is durably in the ledger; `status` says what it did."""

    status: Outcome
    webhook_id: str


RESPONSES = {
    200: example_response(
        "Recorded (and applied, unless stale, duplicate, failed or ignored)",
        WebhookAnswer(Outcome.processed, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
        WebhookAnswer(Outcome.duplicate, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
    ),
    400: error_response(
        400,
        "A required header is missing or malformed, or the body is not a JSON object",
        "missing header X-Shopify-Webhook-Id",
    ),
    401: error_response(401, "Missing or invalid signature", "invalid or missing HMAC signature"),
    413: error_response(413, "Body larger than MAX_BODY_BYTES", "Request Entity Too Large"),
    503: UNAVAILABLE,
}


@post(
    "/webhooks/shopify",
    status_code=200,
    summary="Receive a Shopify webhook delivery",
    description=(
        "Shopify's delivery: the JSON payload as the body, and the headers "
        "X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256 of the raw body), X-Shopify-Topic, "
        "X-Shopify-Shop-Domain, X-Shopify-Webhook-Id and optionally X-Shopify-Event-Id, "
        "X-Shopify-Triggered-At, X-Shopify-API-Version (or the same names without `X-`). "
        "Verifies the signature, records the delivery in the ledger and applies it, in one "
        "transaction. Answers 200 with `status` processed, stale (older than the stored "
        "data), duplicate, failed (recorded, but the payload could not be applied), "
        "ignored (topic without a handler) or erasing (a redact whose erasure finishes in "
        "the background)."
    ),
    responses=RESPONSES,
    tags=["webhooks"],
)
async def receive_webhook(request: Request[Any, Any, Any]) -> WebhookAnswer:
    report = DeliveryReport(started=time.perf_counter())
    database = database_of(request)
    try:
        body = await request.body()
        signature = header(request.headers, "hmac-sha256")
        verify_signature(body, signature, settings_of(request).shopify_secrets)
        body_verified()  # no longer counts against the unverified-body budget
        report.delivery = delivery = parse_delivery(request.headers, body)
        report.outcome = await ingest(database, delivery)
        return WebhookAnswer(report.outcome, delivery.webhook_id)
    except Exception as error:
        report.refused(error)
        raise
    finally:
        report_delivery(report, database)
