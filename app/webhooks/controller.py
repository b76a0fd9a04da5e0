"""POST /webhooks/shopify: every topic arrives here.

The order of checks is part of the contract: size (413, enforced by Litestar
as the body is read), signature (401), headers (400), body (400), then one
database transaction that records and applies the delivery.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, post
from litestar.exceptions import HTTPException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from app.db.database import Database, DatabaseUnavailable
from app.http.errors import RETRY_AFTER_SECONDS, UNAVAILABLE_DETAIL
from app.http.limits import body_verified
from app.http.openapi import WEBHOOK_RESPONSES
from app.http.state import database_of, settings_of
from app.observability.deliveries import DeliveryReport, report_delivery
from app.webhooks.delivery import BadDelivery, Delivery, header, parse_delivery, signature_is_valid
from app.webhooks.ingest import ingest
from app.webhooks.outcomes import Outcome


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
        "data), duplicate, failed (recorded, but the payload could not be applied) or "
        "ignored (topic without a handler)."
    ),
    responses=WEBHOOK_RESPONSES,
    tags=["webhooks"],
)
async def receive_webhook(request: Request[Any, Any, Any]) -> dict[str, str]:
    report = DeliveryReport(started=time.perf_counter())
    try:
        body = await _body(request, report)
        if not signature_is_valid(
            body, header(request.headers, "hmac-sha256"), settings_of(request).shopify_secrets
        ):
            report.outcome = "rejected_signature"
            raise HTTPException(
                status_code=HTTP_401_UNAUTHORIZED, detail="invalid or missing HMAC signature"
            )
        body_verified()  # no longer counts against the unverified-body budget
        delivery = _parse(request, body, report)
        outcome = await _ingest(database_of(request), delivery, report)
        report.outcome = outcome.value
        return {"status": outcome.value, "webhook_id": delivery.webhook_id}
    finally:
        report_delivery(report, database_of(request))


async def _body(request: Request[Any, Any, Any], report: DeliveryReport) -> bytes:
    try:
        return await request.body()
    except HTTPException as error:
        if error.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
            report.outcome = "rejected_too_large"
        elif error.status_code == HTTP_503_SERVICE_UNAVAILABLE:
            # A chunked body that would exceed the unverified-body budget.
            report.outcome = "unavailable"
        raise


def _parse(request: Request[Any, Any, Any], body: bytes, report: DeliveryReport) -> Delivery:
    try:
        delivery = parse_delivery(request.headers, body)
    except BadDelivery as error:
        report.outcome = "rejected_bad_request"
        raise HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=str(error)) from None
    report.delivery = delivery
    return delivery


async def _ingest(database: Database, delivery: Delivery, report: DeliveryReport) -> Outcome:
    try:
        return await ingest(database, delivery)
    except BadDelivery as error:
        report.outcome = "rejected_bad_request"
        raise HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=str(error)) from None
    except DatabaseUnavailable as error:
        report.outcome = "unavailable"
        # Why, for the operator (out of shared memory, login refused...): the
        # driver's text goes to the log, never to the client.
        report.error = str(error)
        raise HTTPException(
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
            detail=UNAVAILABLE_DETAIL,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from None
