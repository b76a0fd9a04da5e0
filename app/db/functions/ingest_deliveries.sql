-- Records and applies a group of customers/* and orders/* deliveries in one
-- transaction (app/webhooks/grouping.py). p_deliveries is a JSON array of
-- GroupItem objects (app/webhooks/grouping.py; a key left out is NULL): the
-- delivery's `kind` ('order': an order upsert, 'order_delete', 'customer': a
-- customer upsert, 'customer_delete'), the ledger's fields and `payload` (the
-- body as JSON), `scrubbed`, and the values the service read from the
-- payload: the order's, and the customer's (a customer delivery's own, or an
-- order's nested one) as customer_*.
-- Guarantees:
-- * Locks first, in every writer's order: the shops' (shared), then all the
--   orders', then all the customers' (those in the payloads and those stored
--   on the orders, read holding the orders' locks), each set in key order.
--   With p_wait it waits for them (up to p_lock_timeout_ms); without, it
--   takes only those free at once and leaves out, unwritten, each delivery
--   one of whose locks is held elsewhere (`busy`).
-- * Then each delivery in array order, by the same rules as one alone, seeing
--   the writes of those before it (two versions of one order end as the
--   newer): a delivery about a redacted customer is written only once its
--   payload is scrubbed (until then `redacted`, ledger_id NULL); its ledger
--   row comes first, and a duplicate webhook id (ledger_id NULL) writes
--   nothing else; then the upsert or delete, `applied` false when stale or
--   already deleted; the totals of the customers whose orders changed are
--   recomputed at once.
-- * One row per delivery, `item` its place in the array from 1. A delivery
--   PostgreSQL refuses fails the whole call: nothing of the group is written.
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
    v_payload jsonb;
    v_customer_ids uuid[];
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
        SELECT t.*, e.n AS number
        FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS e(value, n),
             jsonb_to_record(e.value) AS t(
                 kind text, ledger_id uuid, shop text, webhook_id text, event_id text,
                 topic text, api_version text, triggered_at timestamptz, payload jsonb,
                 scrubbed boolean,
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
        ledger_id := NULL;
        applied := NULL;
        redacted := false;
        busy := cardinality(v_busy) > 0
                AND ARRAY[v_shop_keys[d.number], v_order_keys[d.number],
                          v_customer_keys[d.number], v_stored_customer_keys[d.number]] && v_busy;
        IF busy THEN
            applied := false;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF d.kind IS NULL OR d.kind NOT IN ('order', 'order_delete', 'customer', 'customer_delete')
        THEN
            RAISE EXCEPTION 'ingest_deliveries: unknown kind %', d.kind;
        END IF;
        redacted := d.kind IN ('order', 'customer') AND d.customer_shopify_id IS NOT NULL
                    AND ingest_customer_redacted(d.shop, d.customer_shopify_id);
        IF redacted AND NOT d.scrubbed THEN
            RETURN NEXT;
            CONTINUE;
        END IF;
        SELECT r.ledger_id, r.payload INTO ledger_id, v_payload
        FROM ingest_record(d.ledger_id, d.shop, d.webhook_id, d.event_id, d.topic, d.api_version,
                           d.triggered_at, d.payload, 'processed', NULL) AS r;
        IF ledger_id IS NULL THEN
            RETURN NEXT;
            CONTINUE;
        END IF;
        v_customer_ids := NULL;
        IF d.kind = 'order' THEN
            -- line_items from the payload PostgreSQL parsed for the ledger.
            SELECT a.applied, a.customer_ids INTO applied, v_customer_ids
            FROM ingest_apply_order(
                d.shop, d.order_shopify_id, d.total_price, d.current_total_price, d.currency,
                d.financial_status, d.fulfillment_status, d.cancelled_at, d.name, d.email,
                d.test, nullif(v_payload -> 'line_items', 'null'), d.created_at, d.updated_at,
                d.customer_shopify_id, d.customer_email, d.customer_name, d.customer_phone,
                d.customer_tags, d.customer_has_tags, d.customer_created_at,
                d.customer_updated_at) AS a;
        ELSIF d.kind = 'order_delete' THEN
            SELECT a.applied, a.customer_ids INTO applied, v_customer_ids
            FROM ingest_apply_order_delete(d.shop, d.order_shopify_id) AS a;
        ELSIF d.kind = 'customer' THEN
            SELECT u.applied INTO applied
            FROM ingest_upsert_customer(
                d.shop, d.customer_shopify_id, d.customer_email, d.customer_name,
                d.customer_phone, d.customer_tags, d.customer_has_tags, d.customer_created_at,
                d.customer_updated_at) AS u;
        ELSE
            applied := ingest_apply_customer_delete(d.shop, d.customer_shopify_id);
        END IF;
        IF applied AND cardinality(v_customer_ids) > 0 THEN
            PERFORM ingest_recompute_totals(v_customer_ids);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
