"""Topic handlers: which topic is applied how. Topics not listed are recorded as `ignored`."""

from typing import Any

from app.webhooks.handlers import customers, orders, privacy, shop
from app.webhooks.handlers.base import Handler, Outcome

HANDLERS: dict[str, Handler[Any]] = {
    **dict.fromkeys(customers.UPSERT_TOPICS, customers.UPSERT),
    "customers/delete": customers.DELETE,
    **dict.fromkeys(orders.UPSERT_TOPICS, orders.UPSERT),
    "orders/delete": orders.DELETE,
    "customers/redact": privacy.CUSTOMERS_REDACT,
    "customers/data_request": privacy.DATA_REQUEST,
    "shop/redact": privacy.SHOP_REDACT,
    "app/uninstalled": shop.APP_UNINSTALLED,
}

__all__ = ["HANDLERS", "Handler", "Outcome"]
