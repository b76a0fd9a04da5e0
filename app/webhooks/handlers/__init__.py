"""Topic handlers: which topic is applied how. Topics not listed are recorded as `ignored`."""

from typing import Any

from app.webhooks.handlers import bulk_operations, customer_events, customers, orders, shop
from app.webhooks.handlers.base import Handler
from app.webhooks.privacy import handlers as privacy

HANDLERS: dict[str, Handler[Any]] = {
    **dict.fromkeys(customers.UPSERT_TOPICS, customers.UPSERT),
    "customers/delete": customers.DELETE,
    **dict.fromkeys(orders.UPSERT_TOPICS, orders.UPSERT),
    "orders/delete": orders.DELETE,
    "customers/redact": privacy.CUSTOMERS_REDACT,
    "customers/data_request": privacy.DATA_REQUEST,
    "shop/redact": privacy.SHOP_REDACT,
    "app/uninstalled": shop.APP_UNINSTALLED,
    "customer.tags_added": customer_events.TAGS_ADDED,
    "customer.tags_removed": customer_events.TAGS_REMOVED,
    "customers_email_marketing_consent/update": customer_events.EMAIL_CONSENT,
    "customers_marketing_consent/update": customer_events.SMS_CONSENT,
    "customers/purchasing_summary": customer_events.PURCHASING_SUMMARY,
    "customers/merge": customer_events.MERGE,
    "bulk_operations/finish": bulk_operations.FINISHED,
}

__all__ = ["HANDLERS", "Handler"]
