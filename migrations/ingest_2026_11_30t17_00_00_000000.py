"""Group commit: one SQL function applies a group of customers/* and orders/* deliveries.

The service sends the deliveries that arrive while its previous database call
is in flight together, in one call of ingest_deliveries: one statement, one
transaction, one commit for the group (app/db/group_commit.py). Per delivery
that halves PostgreSQL's work, most of which was the statement, the
transaction and the commit around a few small writes. The group is one jsonb
argument: per delivery, the values the service read from the payload (and
checked), and the payload itself as received, parsed once, for the ledger.

Locking: the group first takes the locks its deliveries need, in the order
every delivery takes them (the shops' shared locks, then all the orders',
then all the customers', each set in key order), so groups, single
deliveries and sync batches never deadlock. The customers locked are those
named in the payloads and those stored on the orders now (read holding the
orders' locks). A group never waits for a lock: it takes those it can at
once, and a delivery one of whose locks another transaction holds is left
out (`busy`); the service then sends that delivery alone, in a call that
waits for its locks (p_wait), as every delivery did before groups. So a
held lock delays only the deliveries that need it.

Then each delivery is applied in arrival order, by the same rules as one
alone: the ingest_apply_* functions below read the stored rows after the
writes of the deliveries before them in the group, so two versions of one
order in one group end as the newer, whatever their order.

A delivery whose values PostgreSQL refuses makes the whole call fail; the
service then applies each delivery of the group alone, so that only that one
is recorded as failed. A delivery about a redacted customer is not written
(`redacted`); the service scrubs its payload and sends it again.

ingest_order_delivery, ingest_customer_delivery, ingest_order_delete and
ingest_customer_delete are no longer called by the service; they stay so that
instances of the previous release keep working during a rolling deploy. A
later migration can drop them.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-30T17:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ingest_deliveries: groups of deliveries in one call"

FUNCTIONS = [
    """
-- Takes the advisory locks of p_keys (ingest_lock_key values) in key order,
-- shared or exclusive; NULLs and repeats are skipped. Waiting for each
-- (p_wait), or taking only those free at once: returns the keys it did not
-- get (none when waiting).
CREATE OR REPLACE FUNCTION ingest_lock_keys(p_keys bigint[], p_shared boolean, p_wait boolean)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_key bigint;
    v_busy bigint[] := ARRAY[]::bigint[];
BEGIN
    FOR v_key IN
        SELECT DISTINCT k FROM unnest(p_keys) AS k WHERE k IS NOT NULL ORDER BY 1
    LOOP
        IF p_wait AND p_shared THEN
            PERFORM pg_advisory_xact_lock_shared(v_key);
        ELSIF p_wait THEN
            PERFORM pg_advisory_xact_lock(v_key);
        ELSIF NOT (CASE WHEN p_shared THEN pg_try_advisory_xact_lock_shared(v_key)
                        ELSE pg_try_advisory_xact_lock(v_key) END) THEN
            v_busy := v_busy || v_key;
        END IF;
    END LOOP;
    RETURN v_busy;
END
$$""",
    """
-- orders/create, updated, paid, cancelled, fulfilled, partially_fulfilled, once
-- the caller holds the locks (the shop's, the order's, and those of the
-- payload's customer and of the customer stored on the order). Upserts the
-- nested customer (if any), then the order when the payload is at least as new
-- as the stored one (a deleted order stays deleted), then the totals of the
-- order's customer and, if it moved, of its previous customer. line_items are
-- taken from the payload PostgreSQL parsed for the ledger. When the customer
-- has been redacted and the payload is not scrubbed yet, nothing is written and
-- `redacted` is true.
CREATE OR REPLACE FUNCTION ingest_apply_order(
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
    SELECT o.id, o.customer_id, o.shopify_updated_at, o.deleted_at IS NOT NULL AS deleted
    INTO v_stored
    FROM orders AS o WHERE o.shop_id = p_shop AND o.shopify_id = p_order_shopify_id;
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
        p_shop, p_order_shopify_id, v_stored.id, v_stored.shopify_updated_at, v_stored.deleted,
        v_customer, p_total_price, p_current_total_price, p_currency, p_financial_status,
        p_fulfillment_status, p_cancelled_at, p_name, p_email, p_test,
        nullif(v_payload -> 'line_items', 'null'), p_created_at, p_updated_at);
    IF applied THEN
        PERFORM ingest_recompute_totals(
            array_remove(ARRAY[v_customer, v_stored.customer_id], NULL));
    END IF;
END
$$""",
    """
-- orders/delete, once the caller holds the locks: a soft delete (or a
-- tombstone when the create has not come yet); the totals of the order's
-- customer are recomputed.
CREATE OR REPLACE FUNCTION ingest_apply_order_delete(
    p_ledger_id uuid, p_shop text, p_webhook_id text, p_event_id text, p_topic text,
    p_api_version text, p_triggered_at timestamptz, p_payload jsonb,
    p_order_shopify_id text,
    OUT ledger_id uuid, OUT applied boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_stored record;
BEGIN
    SELECT o.id, o.customer_id, o.deleted_at IS NOT NULL AS deleted INTO v_stored
    FROM orders AS o WHERE o.shop_id = p_shop AND o.shopify_id = p_order_shopify_id;
    SELECT r.ledger_id INTO ledger_id
    FROM ingest_record(p_ledger_id, p_shop, p_webhook_id, p_event_id, p_topic, p_api_version,
                       p_triggered_at, p_payload, 'processed', NULL) AS r;
    IF ledger_id IS NULL THEN
        RETURN;
    END IF;
    IF v_stored.id IS NULL THEN
        INSERT INTO orders (shop_id, shopify_id, deleted_at)
        VALUES (p_shop, p_order_shopify_id, now());
    ELSIF NOT v_stored.deleted THEN
        UPDATE orders SET deleted_at = now() WHERE id = v_stored.id;
    END IF;
    applied := v_stored.id IS NULL OR NOT v_stored.deleted;
    IF applied AND v_stored.customer_id IS NOT NULL THEN
        PERFORM ingest_recompute_totals(ARRAY[v_stored.customer_id]);
    END IF;
END
$$""",
    """
-- customers/create, update, enable, disable, once the caller holds the
-- locks. Redacted customer: as in ingest_apply_order.
CREATE OR REPLACE FUNCTION ingest_apply_customer(
    p_ledger_id uuid, p_shop text, p_webhook_id text, p_event_id text, p_topic text,
    p_api_version text, p_triggered_at timestamptz, p_payload jsonb, p_scrubbed boolean,
    p_customer_shopify_id text, p_email text, p_name text, p_phone text,
    p_tags text[], p_has_tags boolean, p_created_at timestamptz, p_updated_at timestamptz,
    OUT ledger_id uuid, OUT applied boolean, OUT redacted boolean)
LANGUAGE plpgsql AS $$
BEGIN
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
-- customers/delete, once the caller holds the customer's lock: a soft delete.
-- A delete that arrives before the create leaves a tombstone, so the late
-- create cannot bring the customer back.
CREATE OR REPLACE FUNCTION ingest_apply_customer_delete(
    p_ledger_id uuid, p_shop text, p_webhook_id text, p_event_id text, p_topic text,
    p_api_version text, p_triggered_at timestamptz, p_payload jsonb,
    p_customer_shopify_id text,
    OUT ledger_id uuid, OUT applied boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
    v_deleted boolean;
BEGIN
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
    """
-- A group of customers/* and orders/* deliveries, in one transaction.
-- p_deliveries is a JSON array with one object per delivery: `kind` ('order'
-- (an order upsert), 'order_delete', 'customer' (a customer upsert) or
-- 'customer_delete'), the ledger's fields, `payload` (the body, as JSON),
-- `scrubbed`, and the values the service read from the payload: the order's,
-- and the customer's (a customer delivery's own, or an order's nested one) as
-- customer_*; a missing key is NULL. Without p_wait, a delivery one of whose
-- locks is held elsewhere is left out, unwritten (`busy`).
-- Returns one row per delivery, in order (`item` from 1): ledger_id NULL for a
-- duplicate (or a redacted customer's delivery, then `redacted`, or a busy
-- one), `applied` false for a stale one.
-- Generic plans: with a custom plan per call (chosen, as it looks cheaper for
-- the group at hand) the planning alone took a tenth of the group's time.
CREATE OR REPLACE FUNCTION ingest_deliveries(
    p_lock_timeout_ms integer, p_wait boolean, p_deliveries jsonb)
RETURNS TABLE (item bigint, ledger_id uuid, applied boolean, redacted boolean, busy boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    -- Element n: delivery n's lock key of each kind (NULL: none).
    v_shop_keys bigint[];
    v_order_keys bigint[];
    v_customer_keys bigint[];
    v_stored_customer_keys bigint[];
    v_busy bigint[];
    d record;
    v_result record;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
    SELECT array_agg(ingest_lock_key(e.value ->> 'shop', 'shop', '') ORDER BY e.n),
           array_agg(ingest_lock_key(e.value ->> 'shop', 'order', e.value ->> 'order_shopify_id')
                     ORDER BY e.n),
           array_agg(ingest_lock_key(e.value ->> 'shop', 'customer',
                                     e.value ->> 'customer_shopify_id') ORDER BY e.n)
    INTO v_shop_keys, v_order_keys, v_customer_keys
    FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS e(value, n);
    v_busy := ingest_lock_keys(v_shop_keys, true, p_wait);
    v_busy := v_busy || ingest_lock_keys(v_order_keys, false, p_wait);
    -- Holding the orders' locks: their stored customers cannot change. Looked
    -- up order by order (a subquery per row), so that the plan is index
    -- lookups whatever the planner guesses of the group's size.
    v_stored_customer_keys := ARRAY(
        SELECT ingest_lock_key(e.value ->> 'shop', 'customer', (
            SELECT c.shopify_id
            FROM orders AS o JOIN customers AS c ON c.id = o.customer_id
            WHERE o.shop_id = e.value ->> 'shop'
              AND o.shopify_id = e.value ->> 'order_shopify_id'))
        FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS e(value, n) ORDER BY e.n);
    v_busy := v_busy
        || ingest_lock_keys(v_customer_keys || v_stored_customer_keys, false, p_wait);
    FOR d IN
        SELECT t.*, nullif(e.value -> 'payload', 'null') AS payload, e.n AS number
        FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS e(value, n),
             jsonb_to_record(e.value) AS t(
                 kind text, ledger_id uuid, shop text, webhook_id text, event_id text,
                 topic text, api_version text, triggered_at timestamptz, scrubbed boolean,
                 order_shopify_id text, total_price numeric, current_total_price numeric,
                 currency text, financial_status text, fulfillment_status text,
                 cancelled_at timestamptz, name text, email text, test boolean,
                 created_at timestamptz, updated_at timestamptz,
                 customer_shopify_id text, customer_email text, customer_name text,
                 customer_phone text, customer_tags text[], customer_has_tags boolean,
                 customer_created_at timestamptz, customer_updated_at timestamptz)
        ORDER BY e.n
    LOOP
        item := d.number;
        busy := cardinality(v_busy) > 0
                AND ARRAY[v_shop_keys[d.number], v_order_keys[d.number],
                          v_customer_keys[d.number], v_stored_customer_keys[d.number]] && v_busy;
        IF busy THEN
            ledger_id := NULL;
            applied := false;
            redacted := false;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF d.kind = 'order' THEN
            SELECT a.ledger_id, a.applied, a.redacted INTO v_result
            FROM ingest_apply_order(
                d.ledger_id, d.shop, d.webhook_id, d.event_id, d.topic, d.api_version,
                d.triggered_at, d.payload, d.scrubbed,
                d.order_shopify_id, d.total_price, d.current_total_price, d.currency,
                d.financial_status, d.fulfillment_status, d.cancelled_at, d.name, d.email,
                d.test, d.created_at, d.updated_at,
                d.customer_shopify_id, d.customer_email, d.customer_name, d.customer_phone,
                d.customer_tags, d.customer_has_tags, d.customer_created_at,
                d.customer_updated_at) AS a;
        ELSIF d.kind = 'customer' THEN
            SELECT a.ledger_id, a.applied, a.redacted INTO v_result
            FROM ingest_apply_customer(
                d.ledger_id, d.shop, d.webhook_id, d.event_id, d.topic, d.api_version,
                d.triggered_at, d.payload, d.scrubbed,
                d.customer_shopify_id, d.customer_email, d.customer_name, d.customer_phone,
                d.customer_tags, d.customer_has_tags, d.customer_created_at,
                d.customer_updated_at) AS a;
        ELSIF d.kind = 'order_delete' THEN
            SELECT a.ledger_id, a.applied, false AS redacted INTO v_result
            FROM ingest_apply_order_delete(
                d.ledger_id, d.shop, d.webhook_id, d.event_id, d.topic, d.api_version,
                d.triggered_at, d.payload, d.order_shopify_id) AS a;
        ELSIF d.kind = 'customer_delete' THEN
            SELECT a.ledger_id, a.applied, false AS redacted INTO v_result
            FROM ingest_apply_customer_delete(
                d.ledger_id, d.shop, d.webhook_id, d.event_id, d.topic, d.api_version,
                d.triggered_at, d.payload, d.customer_shopify_id) AS a;
        ELSE
            RAISE EXCEPTION 'ingest_deliveries: unknown kind %', d.kind;
        END IF;
        ledger_id := v_result.ledger_id;
        applied := v_result.applied;
        redacted := v_result.redacted;
        RETURN NEXT;
    END LOOP;
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
