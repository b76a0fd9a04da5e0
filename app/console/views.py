"""What the console shows of each table: read-only views with chosen columns.

Each view is a Piccolo table over the real one (same table name) declaring
only the columns an operator needs, each a copy of the real column in
app/db/tables.py (a renamed or retyped column shows here at import). Piccolo
Admin reads only these columns: the others (delivery payloads, line items,
customers' names, emails and phones, encrypted tokens) are in neither the
lists, nor the detail pages, nor its API. They belong to no Piccolo app, so
migrations never see them.
"""

from __future__ import annotations

from piccolo.table import Table

from app.db.tables import Customer, Order, Shop, SyncRun, WebhookEvent


class ShopView(Table, tablename="shops"):
    id = Shop.id.copy()
    shop_id = Shop.shop_id.copy()
    shopify_shop_id = Shop.shopify_shop_id.copy()
    first_seen_at = Shop.first_seen_at.copy()
    uninstalled_at = Shop.uninstalled_at.copy()
    redacted_at = Shop.redacted_at.copy()
    created_at = Shop.created_at.copy()


class CustomerView(Table, tablename="customers"):
    """Without name, email, phone and tags: personal data stays out of the console."""

    id = Customer.id.copy()
    shop_id = Customer.shop_id.copy()
    shopify_id = Customer.shopify_id.copy()
    segment = Customer.segment.copy()
    order_count = Customer.order_count.copy()
    total_spent = Customer.total_spent.copy()
    avg_order_value = Customer.avg_order_value.copy()
    first_order_at = Customer.first_order_at.copy()
    last_order_at = Customer.last_order_at.copy()
    email_marketing_state = Customer.email_marketing_state.copy()
    sms_marketing_state = Customer.sms_marketing_state.copy()
    shopify_order_count = Customer.shopify_order_count.copy()
    shopify_amount_spent = Customer.shopify_amount_spent.copy()
    shopify_updated_at = Customer.shopify_updated_at.copy()
    deleted_at = Customer.deleted_at.copy()
    redacted_at = Customer.redacted_at.copy()
    merged_into = Customer.merged_into.copy()
    created_at = Customer.created_at.copy()


class OrderView(Table, tablename="orders"):
    """Without the buyer's email and the line items."""

    id = Order.id.copy()
    shop_id = Order.shop_id.copy()
    shopify_id = Order.shopify_id.copy()
    name = Order.name.copy()
    financial_status = Order.financial_status.copy()
    fulfillment_status = Order.fulfillment_status.copy()
    total_price = Order.total_price.copy()
    current_total_price = Order.current_total_price.copy()
    currency = Order.currency.copy()
    test = Order.test.copy()
    cancelled_at = Order.cancelled_at.copy()
    shopify_created_at = Order.shopify_created_at.copy()
    shopify_updated_at = Order.shopify_updated_at.copy()
    deleted_at = Order.deleted_at.copy()
    created_at = Order.created_at.copy()


class DeliveryView(Table, tablename="webhook_events"):
    """The ledger without the payloads, which hold customers' personal data."""

    id = WebhookEvent.id.copy()
    shop_id = WebhookEvent.shop_id.copy()
    topic = WebhookEvent.topic.copy()
    status = WebhookEvent.status.copy()
    received_at = WebhookEvent.received_at.copy()
    triggered_at = WebhookEvent.triggered_at.copy()
    processed_at = WebhookEvent.processed_at.copy()
    attempts = WebhookEvent.attempts.copy()
    last_error = WebhookEvent.last_error.copy()
    webhook_id = WebhookEvent.webhook_id.copy()
    event_id = WebhookEvent.event_id.copy()
    api_version = WebhookEvent.api_version.copy()


class SyncRunView(Table, tablename="sync_runs"):
    id = SyncRun.id.copy()
    shop_id = SyncRun.shop_id.copy()
    kind = SyncRun.kind.copy()
    resource = SyncRun.resource.copy()
    status = SyncRun.status.copy()
    started_at = SyncRun.started_at.copy()
    finished_at = SyncRun.finished_at.copy()
    fetched = SyncRun.fetched.copy()
    applied = SyncRun.applied.copy()
    stale = SyncRun.stale.copy()
    failed = SyncRun.failed.copy()
    api_cost = SyncRun.api_cost.copy()
    throttle_wait_seconds = SyncRun.throttle_wait_seconds.copy()
    last_error = SyncRun.last_error.copy()
    note = SyncRun.note.copy()


VIEWS: tuple[type[Table], ...] = (DeliveryView, ShopView, CustomerView, OrderView, SyncRunView)
