"""The schema, as Piccolo tables.

Table and column names are a contract: marketing tools query them directly
(docs/reading-data.md). Every `shop_id` column holds the shop's
`*.myshopify.com` domain in lower case (app/shopify/domains.py), never
Shopify's numeric shop id (that one is `shops.shopify_shop_id`).
Migrations are generated from these classes (`piccolo migrations new ingest --auto`).

Every table that holds a shop's rows has the primary key (shop_id, id), and
the foreign keys between them include shop_id: migration 2026-12-07T13:38:02
declares them, since a Piccolo table has one primary key column. So one schema
serves plain PostgreSQL and Citus, where these tables are distributed by
shop_id (app/db/distribution.py). `id` stays the column Piccolo knows as the key.

Piccolo makes a column NOT NULL with a blank default unless told otherwise, so
every optional column here says ``null=True, default=None`` explicitly.
"""

from enum import Enum

from piccolo.columns import (
    JSONB,
    UUID,
    Array,
    BigInt,
    BigSerial,
    Boolean,
    DoublePrecision,
    ForeignKey,
    Integer,
    Numeric,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.constraints import Check, Unique
from piccolo.table import Table

from app.db.enums import (
    ActionType,
    CustomerEventKind,
    CustomerSegment,
    DeliveryStatus,
    EmailMarketingState,
    ErasureKind,
    FinancialStatus,
    MarketingOptInLevel,
    MessageChannel,
    MessageStatus,
    SmsMarketingState,
    SyncKind,
    SyncResource,
    SyncRunStatus,
    TriggerType,
)

MONEY = (19, 4)


def optional_text(length: int, *, index: bool = False) -> Varchar:
    return Varchar(length=length, null=True, default=None, index=index)


def required_text(length: int, *, index: bool = False) -> Varchar:
    return Varchar(length=length, null=False, default=None, index=index)


def optional_choice(values: type[Enum], length: int = 32, *, index: bool = False) -> Varchar:
    return Varchar(length=length, null=True, default=None, choices=values, index=index)


def required_choice(values: type[Enum], length: int = 32, *, index: bool = False) -> Varchar:
    return Varchar(length=length, null=False, default=None, choices=values, index=index)


def optional_timestamp(*, index: bool = False) -> Timestamptz:
    return Timestamptz(null=True, default=None, index=index)


def optional_money() -> Numeric:
    return Numeric(digits=MONEY, null=True, default=None)


def one_of(column_name: str, values: type[Enum]) -> Check:
    """A CHECK constraint that keeps the column inside the Enum's value set."""
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return Check(f'"{column_name}" IN ({allowed})')


class Shop(Table, tablename="shops"):
    id = UUID(primary_key=True)
    shop_id = Varchar(length=255, null=False, default=None, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    shopify_shop_id = optional_text(255)
    first_seen_at = optional_timestamp()
    uninstalled_at = optional_timestamp()
    redacted_at = optional_timestamp()
    # The shop's events' epoch and the node group writing them (customer_events_epoch):
    # on Citus the epoch goes up when the shop's events start being written on
    # another node (its shards moved), so that its feed reads them after the old
    # ones. 0 and 0 on one PostgreSQL, where they never change.
    events_epoch = Integer(null=False, default=0)
    events_node_group = Integer(null=False, default=0)


class Customer(Table, tablename="customers"):
    id = UUID(primary_key=True)
    shop_id = required_text(255)
    created_at = Timestamptz(default=TimestamptzNow())
    shopify_id = required_text(255, index=True)
    name = optional_text(255)
    email = optional_text(255, index=True)
    phone = optional_text(50)
    rfm_r = Integer(null=True, default=None)
    rfm_f = Integer(null=True, default=None)
    rfm_m = Integer(null=True, default=None)
    segment = optional_choice(CustomerSegment)
    lifecycle_stage = optional_text(100)
    tags = Array(base_column=Text(), null=True, default=None)
    total_spent = optional_money()
    order_count = Integer(null=True, default=0)
    avg_order_value = optional_money()
    first_order_at = optional_timestamp()
    last_order_at = optional_timestamp()
    shopify_created_at = optional_timestamp()
    shopify_updated_at = optional_timestamp()
    deleted_at = optional_timestamp()
    redacted_at = optional_timestamp()
    # Marketing consent per channel (customers_email_marketing_consent/update,
    # customers_marketing_consent/update, the sync's defaultEmailAddress and
    # defaultPhoneNumber), stale-safe by the consent's own updated time.
    email_marketing_state = optional_choice(EmailMarketingState)
    email_marketing_opt_in_level = optional_choice(MarketingOptInLevel)
    email_marketing_consent_updated_at = optional_timestamp()
    sms_marketing_state = optional_choice(SmsMarketingState)
    sms_marketing_opt_in_level = optional_choice(MarketingOptInLevel)
    sms_marketing_consent_updated_at = optional_timestamp()
    # Shopify's own figures (customers/purchasing_summary), beside ours.
    shopify_order_count = Integer(null=True, default=None)
    shopify_amount_spent = optional_money()
    shopify_summary_at = optional_timestamp()
    # customers/merge completed: the kept customer's Shopify id. A merged
    # customer is also soft-deleted (deleted_at), so later deliveries leave it alone.
    merged_into = optional_text(255)
    merged_at = optional_timestamp()
    # When this customer's first_order event was written (customer_events): set
    # once, so that the event is announced once per customer.
    first_order_announced_at = optional_timestamp()

    customers_shop_id_shopify_id_key = Unique([shop_id, shopify_id])
    customers_segment_check = one_of("segment", CustomerSegment)
    customers_email_marketing_state_check = one_of("email_marketing_state", EmailMarketingState)
    customers_email_marketing_opt_in_level_check = one_of(
        "email_marketing_opt_in_level", MarketingOptInLevel
    )
    customers_sms_marketing_state_check = one_of("sms_marketing_state", SmsMarketingState)
    customers_sms_marketing_opt_in_level_check = one_of(
        "sms_marketing_opt_in_level", MarketingOptInLevel
    )


class Order(Table, tablename="orders"):
    id = UUID(primary_key=True)
    shop_id = required_text(255)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    shopify_id = required_text(255)
    # The customer's row: FOREIGN KEY (shop_id, customer_id) REFERENCES
    # customers (shop_id, id), NO ACTION, declared by migration 2026-12-07T13:38:02
    # (Piccolo declares one-column keys only, and a shop's rows must reference
    # the same shop's rows for Citus). NO ACTION: an order is a financial record,
    # so deleting a customer who still has orders is refused rather than
    # silently dropping or orphaning them. Webhooks only soft-delete customers;
    # shop/redact removes a shop's orders before its customers.
    customer_id = UUID(null=True, default=None, index=True)
    total_price = optional_money()
    line_items = JSONB(null=True, default=None)
    financial_status = optional_choice(FinancialStatus)
    name = optional_text(255)
    email = optional_text(255)
    currency = optional_text(3)
    current_total_price = optional_money()
    fulfillment_status = optional_text(32)
    test = Boolean(null=True, default=None)
    cancelled_at = optional_timestamp()
    shopify_created_at = optional_timestamp()
    shopify_updated_at = optional_timestamp()
    deleted_at = optional_timestamp()

    orders_shop_id_shopify_id_key = Unique([shop_id, shopify_id])
    orders_financial_status_check = one_of("financial_status", FinancialStatus)


class Automation(Table, tablename="automations"):
    id = UUID(primary_key=True)
    shop_id = required_text(255, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    name = required_text(255)
    trigger_type = required_choice(TriggerType)
    trigger_config = JSONB(null=True, default=None)
    delay_value = Integer(null=True, default=None)
    delay_unit = optional_text(50)
    action_type = required_choice(ActionType)
    action_config = JSONB(null=True, default=None)
    email_template_id = optional_text(255)
    enabled = Boolean(null=False, default=True, index=True)
    last_run_at = optional_timestamp()

    automations_trigger_type_check = one_of("trigger_type", TriggerType)
    automations_action_type_check = one_of("action_type", ActionType)


class MessageLog(Table, tablename="message_logs"):
    id = UUID(primary_key=True)
    shop_id = required_text(255)
    created_at = Timestamptz(default=TimestamptzNow())
    # (shop_id, customer_id) references customers (shop_id, id) ON DELETE
    # CASCADE (migration 2026-12-07T13:38:02, as orders.customer_id): a message
    # log is personal data about its customer; when the customer row is
    # deleted, their message history goes with it.
    customer_id = UUID(null=True, default=None, index=True)
    # SET NULL: removing an automation keeps the record of what was sent. A
    # foreign key that contains the distribution column cannot SET NULL on
    # Citus, so automations is a reference table (app/db/distribution.py) and
    # this key stays on `id`; NO ACTION on update, which Citus accepts.
    automation_id = ForeignKey(
        references=Automation,
        null=True,
        default=None,
        index=True,
        on_delete=OnDelete.set_null,
        on_update=OnUpdate.no_action,
    )
    channel = required_choice(MessageChannel, 16)
    subject = optional_text(500)
    status = required_choice(MessageStatus, 16, index=True)
    sent_at = optional_timestamp()
    opened_at = optional_timestamp()
    clicked_at = optional_timestamp()

    message_logs_channel_check = one_of("channel", MessageChannel)
    message_logs_status_check = one_of("status", MessageStatus)


class WebhookEvent(Table, tablename="webhook_events"):
    """The ledger: one row per accepted delivery, for deduplication, inspection and replay."""

    id = UUID(primary_key=True)
    # Filtering by shop uses the (shop_id, webhook_id) unique index.
    shop_id = required_text(255)
    created_at = Timestamptz(default=TimestamptzNow())
    webhook_id = required_text(255)
    event_id = optional_text(255)
    topic = Varchar(length=255, null=False, default=None, index=True)
    api_version = optional_text(32)
    triggered_at = optional_timestamp()
    received_at = Timestamptz(default=TimestamptzNow(), index=True)
    # jsonb keeps 64-bit ids exact (PostgreSQL stores JSON numbers as numeric).
    payload = JSONB(null=True, default=None)
    status = optional_choice(DeliveryStatus, 16, index=True)
    attempts = Integer(null=True, default=None)
    last_error = Text(null=True, default=None)
    processed_at = optional_timestamp()

    webhook_events_shop_id_webhook_id_key = Unique([shop_id, webhook_id])
    webhook_events_status_check = one_of("status", DeliveryStatus)


class ShopCredential(Table, tablename="shop_credentials"):
    """A shop's Admin API access, owned by this service (app/access): tokens encrypted (Fernet,
    keys from TOKEN_ENCRYPTION_KEY), each ciphertext bound to its shop and column."""

    id = UUID(primary_key=True)
    shop_id = Varchar(length=255, null=False, default=None, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    # Never the token itself: a Fernet token (AES-CBC + HMAC-SHA256) holding it.
    access_token_encrypted = Text(null=False, default=None)
    scope = Text(null=True, default=None)
    # An expiring offline token: when it expires, its refresh token (encrypted
    # too) and when that expires. NULL expires_at: a non-expiring token.
    expires_at = optional_timestamp()
    refresh_token_encrypted = Text(null=True, default=None)
    refresh_token_expires_at = optional_timestamp()
    # A non-expiring token being migrated, kept until the new pair has worked.
    original_token_encrypted = Text(null=True, default=None)
    # Bumped whenever the tokens change: refreshes and re-encryption compare and set on it.
    generation = BigInt(null=False, default=0)
    # One refresh (or migration) per shop at a time, across processes and
    # replicas: the claim's id and until when it holds (a row, not a session lock).
    refresh_claim = UUID(null=True, default=None)
    refresh_claimed_until = optional_timestamp()
    # Set when Shopify refused the token or its refresh: the shop needs
    # re-authorization (install or token exchange), and the sync skips it until then.
    invalid_at = optional_timestamp()
    invalid_reason = Text(null=True, default=None)


class SyncRun(Table, tablename="sync_runs"):
    """One sync of a shop through the Admin API, with what it fetched and applied."""

    id = UUID(primary_key=True)
    shop_id = required_text(255)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    kind = required_choice(SyncKind, 16)
    # The resources synced, comma-separated in sync order ("customers,orders").
    resource = required_text(64)
    status = required_choice(SyncRunStatus, 16, index=True)
    started_at = Timestamptz(default=TimestamptzNow())
    finished_at = optional_timestamp()
    fetched = BigInt(null=False, default=0)
    applied = BigInt(null=False, default=0)
    stale = BigInt(null=False, default=0)
    failed = BigInt(null=False, default=0)
    # Rows a complete full export no longer listed, marked deleted (app/sync/deletions.py).
    deleted = BigInt(null=False, default=0)
    api_cost = BigInt(null=False, default=0)
    throttle_wait_seconds = DoublePrecision(null=False, default=0.0)
    last_error = Text(null=True, default=None)
    # What kind of failure last_error is (app/shopify/errors.py: throttled,
    # credentials_refused, export_failed, query_refused, unavailable; database; ...).
    error_kind = optional_text(32)
    # What the operator should know about the data, e.g. that without
    # read_all_orders only the last 60 days of orders were visible.
    note = Text(null=True, default=None)

    sync_runs_kind_check = one_of("kind", SyncKind)
    sync_runs_status_check = one_of("status", SyncRunStatus)


class SyncState(Table, tablename="sync_state"):
    """Per shop and resource: how far the sync has got."""

    id = UUID(primary_key=True)
    shop_id = required_text(255)
    created_at = Timestamptz(default=TimestamptzNow())
    resource = required_choice(SyncResource, 16)
    # Objects updated before this time are applied; the next incremental run
    # asks for updated_at >= watermark - overlap.
    watermark = optional_timestamp()
    full_sync_completed_at = optional_timestamp()
    last_success_at = optional_timestamp()
    last_failure_at = optional_timestamp()

    sync_state_shop_id_resource_key = Unique([shop_id, resource])
    sync_state_resource_check = one_of("resource", SyncResource)


class SyncLease(Table, tablename="sync_leases"):
    """One sync per shop at a time, across processes and replicas.

    A row, not an advisory lock: behind PgBouncer in transaction mode a session
    lock would not survive the transaction. The holder renews `expires_at`
    while it works; a crashed holder's lease simply expires.
    """

    id = UUID(primary_key=True)
    shop_id = Varchar(length=255, null=False, default=None, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    run_id = UUID(null=False, default=None)
    expires_at = Timestamptz(null=False, default=None)


class SyncBulkRow(Table, tablename="sync_bulk_rows"):
    """A bulk operation's JSONL lines while a full sync applies them.

    Shopify does not promise that a child line (an order's line item, with
    `__parentId`) follows its parent, so the lines are staged here as they
    stream in and applied parent by parent afterwards: the sync's memory stays
    bounded whatever the shop's size. A run's rows are deleted when it ends.
    """

    id = BigSerial(primary_key=True)
    # The run's shop: the rows are distributed with the shop's other rows.
    shop_id = required_text(255)
    run_id = UUID(null=False, default=None, index=True)
    gid = Text(null=False, default=None)
    parent_gid = Text(null=True, default=None, index=True)
    document = JSONB(null=False, default=None)


class Erasure(Table, tablename="erasures"):
    """A customers/redact or shop/redact whose erasure is in progress.

    Written in the transaction that records the redact, worked off in batches
    (inline while Shopify waits, then by every worker in the background), and
    deleted when the erasure is complete: a restart resumes it. It holds the
    values to scrub (the customer's email, phone and name) only that long.
    """

    id = UUID(primary_key=True)
    shop_id = required_text(255)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    # The redact's own ledger row: `erasing` until the erasure is complete.
    ledger_id = UUID(null=False, default=None)
    kind = required_choice(ErasureKind, 16)
    customer_shopify_id = optional_text(255)
    # The customer's row, kept after erasure (totals survive): their orders are found by it.
    customer_id = UUID(null=True, default=None)
    # orders_to_redact, as Shopify ids.
    order_ids = Array(base_column=Text(), null=True, default=None)
    # The customer's email and phone (lower case): payloads of unknown shapes
    # that contain one are scrubbed too. With the name, scrubbed wherever found.
    identifiers = Array(base_column=Text(), null=True, default=None)
    name = optional_text(255)
    # customers: "orders" (emails on orders), then "ledger": the ledger rows to
    # scrub, listed once, worked through `ledger_done` at a time. shops: "rows".
    phase = required_text(16)
    ledger_ids = Array(base_column=UUID(), null=True, default=None)
    ledger_done = Integer(null=False, default=0)
    batches = Integer(null=False, default=0)
    last_error = Text(null=True, default=None)

    erasures_kind_check = one_of("kind", ErasureKind)


class CustomerTagEvent(Table, tablename="customer_tag_events"):
    """Per customer and tag, the latest customer.tags_added / customer.tags_removed.

    Those topics are deltas that can arrive out of order: for one tag the
    latest occurredAt wins, and customers.tags is recomputed from these rows.
    A full customer payload carrying tags (older API versions, sync) sets
    customers.tags outright and clears these rows for the customer.
    """

    id = UUID(primary_key=True)
    shop_id = required_text(255)
    created_at = Timestamptz(default=TimestamptzNow())
    customer_shopify_id = required_text(255)
    tag = Text(null=False, default=None)
    added = Boolean(null=False, default=None)
    occurred_at = Timestamptz(null=False, default=None)

    customer_tag_events_shop_customer_tag_key = Unique([shop_id, customer_shopify_id, tag])


class CustomerEvent(Table, tablename="customer_events"):
    """The outbox: changes to customers that marketing tools react to (docs/customer-events.md).

    Written in the transaction of the change itself, by the triggers on
    orders (first_order) and customers (tag_added, segment_change). `id` is a
    sequence: unique and increasing in the order events are written. Readers go
    by (transaction_id, id) and only up to the oldest transaction still running,
    so that an event committed late is never skipped (the indexes for that
    order are in migrations). Transaction ids are a node's own: on a Citus
    cluster each worker counts its own, so the relay goes by node_group first.
    """

    id = BigSerial(primary_key=True)
    shop_id = required_text(255)
    # The writing transaction's id (pg_current_xact_id(), 64-bit) on the node
    # that wrote the event.
    transaction_id = BigInt(null=False, default=None)
    # That node's Citus group (pg_dist_local_group); 0 on one PostgreSQL.
    node_group = Integer(null=False, default=0)
    # The shop's events epoch when it was written (shops.events_epoch): a shop's
    # feed goes by (epoch, transaction_id, id). Always 0 on one PostgreSQL.
    epoch = Integer(null=False, default=0)
    customer_shopify_id = required_text(255)
    kind = required_choice(CustomerEventKind)
    occurred_at = Timestamptz(null=False, default=TimestamptzNow())
    # Small and never personal: an order id and time, a tag, segments.
    data = JSONB(null=False, default=None)

    customer_events_kind_check = one_of("kind", CustomerEventKind)


class CustomerEventRelay(Table, tablename="customer_event_relays"):
    """How far a relay (python -m app events relay) has published customer_events.

    One row per relay, named after its JetStream stream, and per node group
    whose events it reads (one on one PostgreSQL, one per worker on Citus);
    a position moves only after the broker acknowledged every event up to it.
    """

    id = UUID(primary_key=True)
    name = Varchar(length=255, null=False, default=None)
    node_group = Integer(null=False, default=0)
    created_at = Timestamptz(default=TimestamptzNow())
    transaction_id = BigInt(null=False, default=0)
    event_id = BigInt(null=False, default=0)
    relayed = BigInt(null=False, default=0)
    updated_at = Timestamptz(default=TimestamptzNow())

    customer_event_relays_name_node_group_key = Unique([name, node_group])


class SubscriptionCheck(Table, tablename="subscription_checks"):
    """The last check of a shop's webhook subscriptions (python -m app subscriptions check)."""

    id = UUID(primary_key=True)
    shop_id = Varchar(length=255, null=False, default=None, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    checked_at = Timestamptz(null=False, default=None)
    missing = Integer(null=False, default=0)
    extra = Integer(null=False, default=0)
    misdirected = Integer(null=False, default=0)
    report = JSONB(null=True, default=None)
    error = Text(null=True, default=None)


ALL_TABLES: list[type[Table]] = [
    Shop,
    Customer,
    Order,
    Automation,
    MessageLog,
    WebhookEvent,
    ShopCredential,
    SyncRun,
    SyncState,
    SyncLease,
    SyncBulkRow,
    Erasure,
    CustomerTagEvent,
    SubscriptionCheck,
    CustomerEvent,
    CustomerEventRelay,
]
