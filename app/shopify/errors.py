"""What can go wrong talking to Shopify, one class per kind, so callers can tell them apart.

Each kind has a short `kind` name: the sync records it with a failed run
(`sync_runs.error_kind`) and the subscriptions check with its result.
"""

from __future__ import annotations


class ShopifyError(Exception):
    """Shopify gave no usable answer (after the retries that made sense)."""

    kind = "shopify_error"


class ShopifyUnavailable(ShopifyError):
    """5xx, timeouts, dropped connections or unreadable answers, after the retries."""

    kind = "unavailable"


class ShopifyThrottled(ShopifyError):
    """Throttled again and again: the shop's rate limit never let the query through."""

    kind = "throttled"


class CredentialsRefused(ShopifyError):
    """401 or 403: the shop's token is invalid, revoked, or lacks a scope."""

    kind = "credentials_refused"


class QueryRefused(ShopifyError):
    """Shopify answered the query with errors: it is invalid, or not allowed for this shop."""

    kind = "query_refused"


class ExportFailed(ShopifyError):
    """A bulk operation failed, was cancelled, or its result could not be read."""

    kind = "export_failed"


class InvalidAnswer(ShopifyError):
    """Shopify's answer was not of the shape or the range the API documents: refused, not used."""

    kind = "invalid_answer"
