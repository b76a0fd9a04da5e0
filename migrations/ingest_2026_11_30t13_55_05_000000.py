"""SQL functions that apply objects fetched from the Admin API (sync), sharing the webhooks' rules.

The order upsert that ingest_order_delivery did inline becomes its own
function, ingest_upsert_order, called by the webhook function and by the
sync's batch function alike; customers already share ingest_upsert_customer.
So a fetched object follows exactly the rules of a delivery: it never
overwrites a row with a newer updated_at, never resurrects a deleted row, never
rewrites a redacted customer, and totals are recomputed the same way.

A batch takes the same locks as deliveries, in the same order (shop shared,
then the orders, then the customers, each group sorted), so sync and live
deliveries queue for each other instead of deadlocking. Batches are kept small
by the caller (a few hundred rows): every advisory lock takes a slot in
PostgreSQL's shared lock table.

To change one of these functions, add a migration with CREATE OR REPLACE.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-30T13:55:05:000000"
VERSION = "1.38.0"
DESCRIPTION = "SQL functions that apply synced customers and orders"

FUNCTIONS = [
    """
-- Inserts the order, or updates it when the new data is at least as new as
-- the stored row; a deleted order stays deleted. The caller holds the order's
-- lock and passes what it read of the stored row (all NULL: none yet).
-- Returns whether the order was written.
CREATE OR REPLACE FUNCTION ingest_upsert_order(
    p_shop text, p_order_shopify_id text,
    p_stored_id uuid, p_stored_updated_at timestamptz, p_stored_deleted boolean,
    p_customer_id uuid, p_total_price numeric, p_current_total_price numeric,
    p_currency text, p_financial_status text, p_fulfillment_status text,
    p_cancelled_at timestamptz, p_name text, p_email text, p_test boolean,
    p_line_items jsonb, p_created_at timestamptz, p_updated_at timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF p_stored_id IS NULL THEN
        INSERT INTO orders (shop_id, shopify_id, customer_id, total_price, current_total_price,
                            currency, financial_status, fulfillment_status, cancelled_at, name,
                            email, test, line_items, shopify_created_at, shopify_updated_at)
        VALUES (p_shop, p_order_shopify_id, p_customer_id, p_total_price, p_current_total_price,
                p_currency, p_financial_status, p_fulfillment_status, p_cancelled_at, p_name,
                p_email, p_test, p_line_items, p_created_at, p_updated_at);
        RETURN true;
    END IF;
    -- Without updated_at (NULL) the comparison is not true: only a missing row is written.
    IF p_stored_deleted OR (p_updated_at >= coalesce(p_stored_updated_at, '-infinity')) IS NOT TRUE THEN
        RETURN false;
    END IF;
    UPDATE orders
    SET customer_id = p_customer_id,
        total_price = p_total_price,
        current_total_price = p_current_total_price,
        currency = p_currency,
        financial_status = p_financial_status,
        fulfillment_status = p_fulfillment_status,
        cancelled_at = p_cancelled_at,
        name = p_name,
        email = p_email,
        test = p_test,
        line_items = p_line_items,
        shopify_created_at = p_created_at,
        shopify_updated_at = p_updated_at
    WHERE id = p_stored_id;
    RETURN true;
END
$$""",
    """
-- orders/create, updated, paid, cancelled, fulfilled, partially_fulfilled
-- (as before; the upsert itself is now ingest_upsert_order).
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
    applied := ingest_upsert_order(
        p_shop, p_order_shopify_id,
        v_stored.stored_id, v_stored.stored_updated_at, v_stored.stored_deleted,
        v_customer, p_total_price, p_current_total_price, p_currency, p_financial_status,
        p_fulfillment_status, p_cancelled_at, p_name, p_email, p_test,
        nullif(v_payload -> 'line_items', 'null'), p_created_at, p_updated_at);
    IF applied THEN
        PERFORM ingest_recompute_totals(
            array_remove(ARRAY[v_customer, v_stored.stored_customer_id], NULL));
    END IF;
END
$$""",
    """
-- Customers fetched from the Admin API: p_customers is a JSON array of
-- {shopify_id, email, name, phone, tags (array), created_at, updated_at}.
-- Each goes through ingest_upsert_customer, as a webhook's customer does.
CREATE OR REPLACE FUNCTION sync_apply_customers(
    p_lock_timeout_ms integer, p_shop text, p_customers jsonb,
    OUT applied integer, OUT stale integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_customer jsonb;
    v_applied boolean;
BEGIN
    applied := 0;
    stale := 0;
    PERFORM ingest_lock_shop(p_shop, false, p_lock_timeout_ms);
    PERFORM ingest_lock_rows(p_shop, 'customer', ARRAY(
        SELECT e ->> 'shopify_id' FROM jsonb_array_elements(p_customers) AS e));
    FOR v_customer IN SELECT e FROM jsonb_array_elements(p_customers) AS e LOOP
        SELECT u.applied INTO v_applied
        FROM ingest_upsert_customer(
            p_shop, v_customer ->> 'shopify_id', v_customer ->> 'email',
            v_customer ->> 'name', v_customer ->> 'phone',
            ARRAY(SELECT jsonb_array_elements_text(v_customer -> 'tags')), true,
            (v_customer ->> 'created_at')::timestamptz,
            (v_customer ->> 'updated_at')::timestamptz) AS u;
        IF v_applied THEN
            applied := applied + 1;
        ELSE
            stale := stale + 1;
        END IF;
    END LOOP;
END
$$""",
    """
-- Orders fetched from the Admin API: p_orders is a JSON array of
-- {shopify_id, customer_shopify_id, total_price, current_total_price,
-- currency, financial_status, fulfillment_status, cancelled_at, name, email,
-- test, line_items, created_at, updated_at}. A customer the shop does not
-- know yet is created empty (its own data comes with the customers); an
-- order of a redacted customer is written without its email. Totals of every
-- customer whose orders changed are recomputed once, at the end.
CREATE OR REPLACE FUNCTION sync_apply_orders(
    p_lock_timeout_ms integer, p_shop text, p_orders jsonb,
    OUT applied integer, OUT stale integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_order jsonb;
    v_stored record;
    v_customer_shopify_id text;
    v_customer uuid;
    v_touched uuid[] := ARRAY[]::uuid[];
BEGIN
    applied := 0;
    stale := 0;
    PERFORM ingest_lock_shop(p_shop, false, p_lock_timeout_ms);
    PERFORM ingest_lock_rows(p_shop, 'order', ARRAY(
        SELECT e ->> 'shopify_id' FROM jsonb_array_elements(p_orders) AS e));
    PERFORM ingest_lock_rows(p_shop, 'customer', ARRAY(
        SELECT e ->> 'customer_shopify_id' FROM jsonb_array_elements(p_orders) AS e
        UNION ALL
        SELECT c.shopify_id
        FROM orders AS o JOIN customers AS c ON c.id = o.customer_id
        WHERE o.shop_id = p_shop AND o.shopify_id IN (
            SELECT e ->> 'shopify_id' FROM jsonb_array_elements(p_orders) AS e)));
    FOR v_order IN SELECT e FROM jsonb_array_elements(p_orders) AS e LOOP
        SELECT o.id AS stored_id, o.customer_id AS stored_customer_id,
               o.shopify_updated_at AS stored_updated_at, o.deleted_at IS NOT NULL AS stored_deleted
        INTO v_stored
        FROM orders AS o WHERE o.shop_id = p_shop AND o.shopify_id = v_order ->> 'shopify_id';
        v_customer_shopify_id := v_order ->> 'customer_shopify_id';
        v_customer := NULL;
        IF v_customer_shopify_id IS NOT NULL THEN
            SELECT u.customer_id INTO v_customer
            FROM ingest_upsert_customer(p_shop, v_customer_shopify_id, NULL, NULL, NULL, NULL,
                                        false, NULL, NULL) AS u;
            IF ingest_customer_redacted(p_shop, v_customer_shopify_id) THEN
                v_order := v_order || jsonb_build_object('email', NULL);
            END IF;
        END IF;
        IF ingest_upsert_order(
            p_shop, v_order ->> 'shopify_id',
            v_stored.stored_id, v_stored.stored_updated_at, v_stored.stored_deleted,
            v_customer, (v_order ->> 'total_price')::numeric,
            (v_order ->> 'current_total_price')::numeric, v_order ->> 'currency',
            v_order ->> 'financial_status', v_order ->> 'fulfillment_status',
            (v_order ->> 'cancelled_at')::timestamptz, v_order ->> 'name', v_order ->> 'email',
            (v_order ->> 'test')::boolean, nullif(v_order -> 'line_items', 'null'),
            (v_order ->> 'created_at')::timestamptz, (v_order ->> 'updated_at')::timestamptz)
        THEN
            applied := applied + 1;
            v_touched := v_touched || v_customer || v_stored.stored_customer_id;
        ELSE
            stale := stale + 1;
        END IF;
    END LOOP;
    PERFORM ingest_recompute_totals(array_remove(v_touched, NULL));
END
$$""",
]


# Piccolo's raw() treats "{}" as a placeholder: the SQL above has no braces.


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def create_functions():
    for statement in FUNCTIONS:
        await RawTable.raw(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)
    manager.add_raw(create_functions)
    return manager
