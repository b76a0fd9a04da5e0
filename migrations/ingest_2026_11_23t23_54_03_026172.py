"""SQL functions that apply the frequent deliveries (customers/*, orders/*).

Why functions: asyncpg's statement cache is off (PgBouncer in transaction
mode), so PostgreSQL plans every plain statement on every call, and planning
was half the cost of a delivery. PL/pgSQL caches the plans of its statements
per connection. The Python handlers (app/webhooks/handlers/) validate the
payload and call these; the rarer topics run plain statements from Python.

Locking: every delivery holds its shop's advisory lock (shared; shop/redact
takes it exclusively), then the locks of the orders it writes, then of the
customers, each group in key order. Deliveries touching the same rows
therefore queue instead of deadlocking, and a statement that starts after
the locks sees every committed change to those rows: the functions read a
row, then insert or update it, with no ON CONFLICT. Taking the shop's lock
also sets lock_timeout, so a call bounds its own waits; one call is atomic
by itself, and the service makes it without BEGIN and COMMIT.

To change one of these functions, add a migration with CREATE OR REPLACE.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T23:54:03:026172"
VERSION = "1.38.0"
DESCRIPTION = "SQL functions that apply deliveries"

LOCKS = [
    """
CREATE OR REPLACE FUNCTION ingest_lock_key(p_shop text, p_kind text, p_id text)
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashtextextended(p_shop || '/' || p_kind || '/' || p_id, 0)
$$""",
    """
-- Always the first lock a delivery takes, so it also sets how long this
-- transaction may wait for a lock (behind PgBouncer there is no session to
-- set lock_timeout on).
CREATE OR REPLACE FUNCTION ingest_lock_shop(
    p_shop text, p_exclusive boolean, p_lock_timeout_ms integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
    IF p_exclusive THEN
        PERFORM pg_advisory_xact_lock(ingest_lock_key(p_shop, 'shop', ''));
    ELSE
        PERFORM pg_advisory_xact_lock_shared(ingest_lock_key(p_shop, 'shop', ''));
    END IF;
END
$$""",
    """
-- p_kind is 'order' or 'customer'; p_ids are Shopify ids (NULLs are skipped).
CREATE OR REPLACE FUNCTION ingest_lock_rows(p_shop text, p_kind text, p_ids text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_key bigint;
BEGIN
    FOR v_key IN
        SELECT DISTINCT ingest_lock_key(p_shop, p_kind, id)
        FROM unnest(p_ids) AS id WHERE id IS NOT NULL ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(v_key);
    END LOOP;
END
$$""",
]

LEDGER = [
    """
-- Writes a delivery's ledger row: a new one, or (p_ledger_id given: a replay)
-- the stored one. Returns NULLs when the webhook id was recorded before (a
-- duplicate: nothing else is to be written). Also makes sure the shop is
-- known; shops are inserted, never updated here, so deliveries of one shop
-- never wait for each other on its row.
CREATE OR REPLACE FUNCTION ingest_record(
    p_ledger_id uuid, p_shop text, p_webhook_id text, p_event_id text, p_topic text,
    p_api_version text, p_triggered_at timestamptz, p_payload jsonb,
    p_status text, p_last_error text,
    OUT ledger_id uuid, OUT payload jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_ledger_id IS NULL THEN
        INSERT INTO webhook_events AS e (shop_id, webhook_id, event_id, topic, api_version,
                                         triggered_at, payload, status, attempts, last_error,
                                         processed_at)
        VALUES (p_shop, p_webhook_id, p_event_id, p_topic, p_api_version,
                p_triggered_at, p_payload, p_status, 1, p_last_error, now())
        ON CONFLICT (shop_id, webhook_id) DO NOTHING
        RETURNING e.id, e.payload INTO ledger_id, payload;
    ELSE
        UPDATE webhook_events AS e
        SET status = p_status, attempts = coalesce(e.attempts, 0) + 1,
            last_error = p_last_error, processed_at = now()
        WHERE e.id = p_ledger_id
        RETURNING e.id, e.payload INTO ledger_id, payload;
    END IF;
    IF ledger_id IS NOT NULL THEN
        INSERT INTO shops (shop_id, first_seen_at) VALUES (p_shop, now())
        ON CONFLICT (shop_id) DO NOTHING;
    END IF;
END
$$""",
]

CUSTOMERS = [
    """
CREATE OR REPLACE FUNCTION ingest_customer_redacted(p_shop text, p_shopify_id text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT FROM customers
        WHERE shop_id = p_shop AND shopify_id = p_shopify_id AND redacted_at IS NOT NULL
    )
$$""",
    """
-- Creates the customer, or updates it when the payload is at least as new as
-- the stored row (deliveries arrive out of order; one without updated_at
-- never overwrites). Deleted and redacted customers stay as they are.
-- p_has_tags false (API 2025-01 on: no `tags` key) keeps the stored tags.
-- The caller holds the customer's lock: nothing else writes it meanwhile, so
-- reading first and then writing is safe, and cheaper than ON CONFLICT.
CREATE OR REPLACE FUNCTION ingest_upsert_customer(
    p_shop text, p_shopify_id text, p_email text, p_name text, p_phone text,
    p_tags text[], p_has_tags boolean, p_created_at timestamptz, p_updated_at timestamptz,
    OUT customer_id uuid, OUT applied boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_updated_at timestamptz;
    v_frozen boolean;
BEGIN
    SELECT c.id, c.shopify_updated_at, c.deleted_at IS NOT NULL OR c.redacted_at IS NOT NULL
    INTO customer_id, v_updated_at, v_frozen
    FROM customers AS c WHERE c.shop_id = p_shop AND c.shopify_id = p_shopify_id;
    IF customer_id IS NULL THEN
        INSERT INTO customers (shop_id, shopify_id, email, name, phone, tags,
                               shopify_created_at, shopify_updated_at, order_count, total_spent)
        VALUES (p_shop, p_shopify_id, p_email, p_name, p_phone, p_tags,
                p_created_at, p_updated_at, 0, 0)
        RETURNING id INTO customer_id;
        applied := true;
    ELSIF NOT v_frozen AND p_updated_at >= coalesce(v_updated_at, '-infinity') THEN
        UPDATE customers AS c
        SET email = p_email,
            name = p_name,
            phone = p_phone,
            tags = CASE WHEN p_has_tags THEN p_tags ELSE c.tags END,
            shopify_created_at = coalesce(p_created_at, c.shopify_created_at),
            shopify_updated_at = p_updated_at
        WHERE c.id = customer_id;
        applied := true;
    ELSE
        applied := false;
    END IF;
END
$$""",
    """
-- customers/create, update, enable, disable. When the customer has been
-- redacted and the payload is not scrubbed yet, nothing is written and
-- `redacted` is true: the caller scrubs the payload and calls again.
CREATE OR REPLACE FUNCTION ingest_customer_delivery(
    p_lock_timeout_ms integer,
    p_ledger_id uuid, p_shop text, p_webhook_id text, p_event_id text, p_topic text,
    p_api_version text, p_triggered_at timestamptz, p_payload jsonb, p_scrubbed boolean,
    p_customer_shopify_id text, p_email text, p_name text, p_phone text,
    p_tags text[], p_has_tags boolean, p_created_at timestamptz, p_updated_at timestamptz,
    OUT ledger_id uuid, OUT applied boolean, OUT redacted boolean)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ingest_lock_shop(p_shop, false, p_lock_timeout_ms);
    PERFORM ingest_lock_rows(p_shop, 'customer', ARRAY[p_customer_shopify_id]);
    redacted := ingest_customer_redacted(p_shop, p_customer_shopify_id);
    IF redacted AND NOT p_scrubbed THEN
        RETURN;
    END IF;
    SELECT r.ledger_id INTO ledger_id
    FROM ingest_record(p_ledger_id, p_shop, p_webhook_id, p_event_id, p_topic, p_api_version,
                       p_triggered_at, p_payload, 'processed', NULL) AS r;
    IF ledger_id IS NULL THEN
        RETURN;
    END IF;
    SELECT u.applied INTO applied
    FROM ingest_upsert_customer(p_shop, p_customer_shopify_id, p_email, p_name, p_phone,
                                p_tags, p_has_tags, p_created_at, p_updated_at) AS u;
END
$$""",
    """
-- customers/delete: a soft delete. A delete that arrives before the create
-- leaves a tombstone, so the late create cannot bring the customer back.
CREATE OR REPLACE FUNCTION ingest_customer_delete(
    p_lock_timeout_ms integer,
    p_ledger_id uuid, p_shop text, p_webhook_id text, p_event_id text, p_topic text,
    p_api_version text, p_triggered_at timestamptz, p_payload jsonb,
    p_customer_shopify_id text,
    OUT ledger_id uuid, OUT applied boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
    v_deleted boolean;
BEGIN
    PERFORM ingest_lock_shop(p_shop, false, p_lock_timeout_ms);
    PERFORM ingest_lock_rows(p_shop, 'customer', ARRAY[p_customer_shopify_id]);
    SELECT r.ledger_id INTO ledger_id
    FROM ingest_record(p_ledger_id, p_shop, p_webhook_id, p_event_id, p_topic, p_api_version,
                       p_triggered_at, p_payload, 'processed', NULL) AS r;
    IF ledger_id IS NULL THEN
        RETURN;
    END IF;
    SELECT c.id, c.deleted_at IS NOT NULL INTO v_id, v_deleted
    FROM customers AS c WHERE c.shop_id = p_shop AND c.shopify_id = p_customer_shopify_id;
    IF v_id IS NULL THEN
        INSERT INTO customers (shop_id, shopify_id, deleted_at, order_count, total_spent)
        VALUES (p_shop, p_customer_shopify_id, now(), 0, 0);
    ELSIF NOT v_deleted THEN
        UPDATE customers SET deleted_at = now() WHERE id = v_id;
    END IF;
    applied := v_id IS NULL OR NOT v_deleted;
END
$$""",
]

ORDERS = [
    """
-- The totals of each customer, from their orders that are neither deleted nor
-- cancelled. The row is only written when a figure changed.
CREATE OR REPLACE FUNCTION ingest_recompute_totals(p_customer_ids uuid[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
    v_count integer;
    v_spent numeric;
    v_first timestamptz;
    v_last timestamptz;
BEGIN
    FOREACH v_id IN ARRAY ARRAY(SELECT DISTINCT id FROM unnest(p_customer_ids) AS id) LOOP
        SELECT count(*), coalesce(sum(coalesce(o.current_total_price, o.total_price)), 0),
               min(o.shopify_created_at), max(o.shopify_created_at)
        INTO v_count, v_spent, v_first, v_last
        FROM orders AS o
        WHERE o.customer_id = v_id AND o.deleted_at IS NULL AND o.cancelled_at IS NULL;
        UPDATE customers AS c
        SET order_count = v_count,
            total_spent = v_spent,
            avg_order_value = round(v_spent / nullif(v_count, 0), 4),
            first_order_at = v_first,
            last_order_at = v_last
        WHERE c.id = v_id
          AND (c.order_count, c.total_spent, c.first_order_at, c.last_order_at)
              IS DISTINCT FROM (v_count, v_spent, v_first, v_last);
    END LOOP;
END
$$""",
    """
-- Locks an order, then the customers it concerns: the one in the payload
-- (p_customer_shopify_id, may be NULL) and the one stored on the order now.
-- Holding the order's lock, the stored order cannot change meanwhile.
-- Returns the stored order (all NULL when there is none yet).
CREATE OR REPLACE FUNCTION ingest_lock_order(
    p_lock_timeout_ms integer, p_shop text, p_order_shopify_id text, p_customer_shopify_id text,
    OUT stored_id uuid, OUT stored_customer_id uuid, OUT stored_updated_at timestamptz,
    OUT stored_deleted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_stored_customer_shopify_id text;
BEGIN
    PERFORM ingest_lock_shop(p_shop, false, p_lock_timeout_ms);
    PERFORM ingest_lock_rows(p_shop, 'order', ARRAY[p_order_shopify_id]);
    SELECT o.id, o.customer_id, o.shopify_updated_at, o.deleted_at IS NOT NULL, c.shopify_id
    INTO stored_id, stored_customer_id, stored_updated_at, stored_deleted,
         v_stored_customer_shopify_id
    FROM orders AS o LEFT JOIN customers AS c ON c.id = o.customer_id
    WHERE o.shop_id = p_shop AND o.shopify_id = p_order_shopify_id;
    PERFORM ingest_lock_rows(
        p_shop, 'customer', ARRAY[p_customer_shopify_id, v_stored_customer_shopify_id]);
END
$$""",
    """
-- orders/create, updated, paid, cancelled, fulfilled, partially_fulfilled.
-- Upserts the nested customer (if any), then the order when the payload is at
-- least as new as the stored one (a deleted order stays deleted), then the
-- totals of the order's customer and, if it moved, of its previous customer.
-- line_items are taken from the payload PostgreSQL parsed for the ledger.
-- Redacted customer: as in ingest_customer_delivery.
CREATE OR REPLACE FUNCTION ingest_order_delivery(
    p_lock_timeout_ms integer,
    p_ledger_id uuid, p_shop text, p_webhook_id text, p_event_id text, p_topic text,
    p_api_version text, p_triggered_at timestamptz, p_payload jsonb, p_scrubbed boolean,
    p_order_shopify_id text, p_total_price numeric, p_current_total_price numeric,
    p_currency text, p_financial_status text, p_fulfillment_status text,
    p_cancelled_at timestamptz, p_name text, p_email text, p_test boolean,
    p_created_at timestamptz, p_updated_at timestamptz,
    p_customer_shopify_id text, p_customer_email text, p_customer_name text,
    p_customer_phone text, p_customer_tags text[], p_customer_has_tags boolean,
    p_customer_created_at timestamptz, p_customer_updated_at timestamptz,
    OUT ledger_id uuid, OUT applied boolean, OUT redacted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_stored record;
    v_customer uuid;
    v_payload jsonb;
BEGIN
    SELECT * INTO v_stored
    FROM ingest_lock_order(p_lock_timeout_ms, p_shop, p_order_shopify_id, p_customer_shopify_id);
    redacted := p_customer_shopify_id IS NOT NULL
                AND ingest_customer_redacted(p_shop, p_customer_shopify_id);
    IF redacted AND NOT p_scrubbed THEN
        RETURN;
    END IF;
    SELECT r.ledger_id, r.payload INTO ledger_id, v_payload
    FROM ingest_record(p_ledger_id, p_shop, p_webhook_id, p_event_id, p_topic, p_api_version,
                       p_triggered_at, p_payload, 'processed', NULL) AS r;
    IF ledger_id IS NULL THEN
        RETURN;
    END IF;
    IF p_customer_shopify_id IS NOT NULL THEN
        SELECT u.customer_id INTO v_customer
        FROM ingest_upsert_customer(p_shop, p_customer_shopify_id, p_customer_email,
                                    p_customer_name, p_customer_phone, p_customer_tags,
                                    p_customer_has_tags, p_customer_created_at,
                                    p_customer_updated_at) AS u;
    END IF;
    IF v_stored.stored_id IS NULL THEN
        INSERT INTO orders (shop_id, shopify_id, customer_id, total_price, current_total_price,
                            currency, financial_status, fulfillment_status, cancelled_at, name,
                            email, test, line_items, shopify_created_at, shopify_updated_at)
        VALUES (p_shop, p_order_shopify_id, v_customer, p_total_price, p_current_total_price,
                p_currency, p_financial_status, p_fulfillment_status, p_cancelled_at, p_name,
                p_email, p_test, nullif(v_payload -> 'line_items', 'null'),
                p_created_at, p_updated_at);
        applied := true;
    ELSIF NOT v_stored.stored_deleted
          AND p_updated_at >= coalesce(v_stored.stored_updated_at, '-infinity') THEN
        UPDATE orders
        SET customer_id = v_customer,
            total_price = p_total_price,
            current_total_price = p_current_total_price,
            currency = p_currency,
            financial_status = p_financial_status,
            fulfillment_status = p_fulfillment_status,
            cancelled_at = p_cancelled_at,
            name = p_name,
            email = p_email,
            test = p_test,
            line_items = nullif(v_payload -> 'line_items', 'null'),
            shopify_created_at = p_created_at,
            shopify_updated_at = p_updated_at
        WHERE id = v_stored.stored_id;
        applied := true;
    ELSE
        applied := false;
    END IF;
    IF applied THEN
        PERFORM ingest_recompute_totals(
            array_remove(ARRAY[v_customer, v_stored.stored_customer_id], NULL));
    END IF;
END
$$""",
    """
-- orders/delete: a soft delete (or a tombstone when the create has not come yet).
CREATE OR REPLACE FUNCTION ingest_order_delete(
    p_lock_timeout_ms integer,
    p_ledger_id uuid, p_shop text, p_webhook_id text, p_event_id text, p_topic text,
    p_api_version text, p_triggered_at timestamptz, p_payload jsonb,
    p_order_shopify_id text,
    OUT ledger_id uuid, OUT applied boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_stored record;
BEGIN
    SELECT * INTO v_stored FROM ingest_lock_order(p_lock_timeout_ms, p_shop, p_order_shopify_id, NULL);
    SELECT r.ledger_id INTO ledger_id
    FROM ingest_record(p_ledger_id, p_shop, p_webhook_id, p_event_id, p_topic, p_api_version,
                       p_triggered_at, p_payload, 'processed', NULL) AS r;
    IF ledger_id IS NULL THEN
        RETURN;
    END IF;
    IF v_stored.stored_id IS NULL THEN
        INSERT INTO orders (shop_id, shopify_id, deleted_at)
        VALUES (p_shop, p_order_shopify_id, now());
    ELSIF NOT v_stored.stored_deleted THEN
        UPDATE orders SET deleted_at = now() WHERE id = v_stored.stored_id;
    END IF;
    applied := v_stored.stored_id IS NULL OR NOT v_stored.stored_deleted;
    IF applied AND v_stored.stored_customer_id IS NOT NULL THEN
        PERFORM ingest_recompute_totals(ARRAY[v_stored.stored_customer_id]);
    END IF;
END
$$""",
]


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def create_functions():
    for statement in LOCKS + LEDGER + CUSTOMERS + ORDERS:
        await RawTable.raw(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)
    manager.add_raw(create_functions)
    return manager
