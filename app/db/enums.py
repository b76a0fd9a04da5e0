"""The value sets of the schema.

Each is a Python Enum used as a Piccolo ``choices`` and enforced in the database
by a CHECK constraint (Piccolo creates no native PostgreSQL enum types).
"""

from enum import StrEnum


class CustomerSegment(StrEnum):
    champion = "champion"
    loyal = "loyal"
    potential = "potential"
    new = "new"
    at_risk = "at_risk"
    hibernating = "hibernating"
    lost = "lost"


class TriggerType(StrEnum):
    first_order = "first_order"
    segment_change = "segment_change"
    days_since_order = "days_since_order"
    tag_added = "tag_added"
    cart_abandoned = "cart_abandoned"


class CustomerEventKind(StrEnum):
    """What a customer_events row announces (named as the trigger types they serve)."""

    first_order = "first_order"
    segment_change = "segment_change"
    tag_added = "tag_added"


class ActionType(StrEnum):
    send_email = "send_email"
    add_tag = "add_tag"
    remove_tag = "remove_tag"


class MessageChannel(StrEnum):
    email = "email"
    sms = "sms"


class MessageStatus(StrEnum):
    sent = "sent"
    opened = "opened"
    clicked = "clicked"
    converted = "converted"


class FinancialStatus(StrEnum):
    pending = "pending"
    authorized = "authorized"
    partially_paid = "partially_paid"
    paid = "paid"
    partially_refunded = "partially_refunded"
    refunded = "refunded"
    voided = "voided"
    expired = "expired"


class DeliveryStatus(StrEnum):
    """Where a recorded webhook delivery stands."""

    received = "received"
    processed = "processed"
    failed = "failed"
    ignored = "ignored"
    # customers/redact or shop/redact recorded; its erasure is finishing in the
    # background (table erasures). Becomes processed when it is done.
    erasing = "erasing"


class ErasureKind(StrEnum):
    """What an erasure in progress erases."""

    customer = "customer"  # customers/redact
    shop = "shop"  # shop/redact


class SyncKind(StrEnum):
    """A full sync reads a shop's whole history (bulk operations); incremental, what changed."""

    full = "full"
    incremental = "incremental"


class SyncRunStatus(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    partial = "partial"  # ended early with some data applied (a bulk operation failed partway)


class SyncResource(StrEnum):
    customers = "customers"
    orders = "orders"


class EmailMarketingState(StrEnum):
    """A customer's email marketing consent (Shopify's CustomerEmailMarketingState, lower case)."""

    subscribed = "subscribed"
    not_subscribed = "not_subscribed"
    pending = "pending"
    unsubscribed = "unsubscribed"
    redacted = "redacted"
    invalid = "invalid"


class SmsMarketingState(StrEnum):
    """A customer's SMS marketing consent (Shopify's CustomerSmsMarketingState, lower case)."""

    subscribed = "subscribed"
    not_subscribed = "not_subscribed"
    pending = "pending"
    unsubscribed = "unsubscribed"
    redacted = "redacted"


class MarketingOptInLevel(StrEnum):
    """How a customer opted in (Shopify's CustomerMarketingOptInLevel, lower case)."""

    single_opt_in = "single_opt_in"
    confirmed_opt_in = "confirmed_opt_in"
    unknown = "unknown"
