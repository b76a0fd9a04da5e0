"""Everything a delivery can end as: the answer's `status`, the metric label and the log field."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    # Answered 200: the delivery is in the ledger (or was already).
    processed = "processed"
    stale = "stale"  # recorded, but older than the stored data: nothing changed
    duplicate = "duplicate"  # this webhook id was recorded before: nothing changed
    failed = "failed"  # recorded, but the payload could not be applied
    ignored = "ignored"  # recorded; no handler for this topic
    # customers/redact or shop/redact recorded; the erasure finishes in the background
    erasing = "erasing"
    # Refused: nothing was stored, Shopify retries.
    rejected_signature = "rejected_signature"  # 401
    rejected_bad_request = "rejected_bad_request"  # 400
    rejected_too_large = "rejected_too_large"  # 413
    unavailable = "unavailable"  # 503: the database could not take it now
    error = "error"  # 500: a bug; the log line says which
