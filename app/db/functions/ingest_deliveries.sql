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
--   They are taken where the shops' rows live (ingest_lock_keys_at: on
--   Citus, on the shop's worker). With p_wait it waits for them (up to
--   p_lock_timeout_ms); without, it takes only those free at once and leaves
--   out, unwritten, each delivery one of whose locks is held elsewhere
--   (`busy`).
-- * Then, with a few set-based statements for the whole group, the result of
--   each delivery in array order by the same rules as one alone, seeing the
--   writes of those before it (two versions of one order end as the newer):
--   a delivery about a redacted customer is written only once its payload is
--   scrubbed (until then `redacted`, ledger_id NULL); its ledger row comes
--   first (ingest_record_deliveries: new shops created first, in sorted
--   order), and a duplicate webhook id (ledger_id NULL) writes nothing else;
--   then the upserts and deletes (ingest_apply_changes, the rules the sync
--   applies too), `applied` false when stale or already deleted; the totals
--   of the customers whose counted orders changed are recomputed.
-- * One row per delivery, `item` its place in the array from 1. A delivery
--   PostgreSQL refuses fails the whole call: nothing of the group is written.
-- * Every statement on a table filters by the group's shops (shop_id), so
--   that on Citus a group of one shop goes to that shop's shard.
-- Generic plans: with a custom plan per call (chosen, as it looks cheaper for
-- the group at hand) the planning alone took a tenth of the group's time.
-- Citus needs custom plans (ingest_plan_mode).
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
    v_unknown_kind text;
    v_shops text[];
    -- Deliveries by number: left out (busy), about a redacted customer,
    -- recorded (with their ledger rows' ids), applied.
    v_busy_items bigint[] := ARRAY[]::bigint[];
    v_redacted bigint[];
    v_to_record bigint[];
    v_recorded bigint[];
    v_ledger_ids uuid[];
    v_applied bigint[];
BEGIN
    PERFORM ingest_plan_mode();
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
    SELECT array_agg(DISTINCT e.value ->> 'shop'),
           array_agg(ingest_lock_key(e.value ->> 'shop', 'shop', '') ORDER BY e.n),
           array_agg(ingest_lock_key(e.value ->> 'shop', 'order', e.value ->> 'order_shopify_id')
                     ORDER BY e.n),
           array_agg(ingest_lock_key(e.value ->> 'shop', 'customer',
                                     e.value ->> 'customer_shopify_id') ORDER BY e.n),
           min(coalesce(e.value ->> 'kind', 'NULL')) FILTER (
               WHERE (e.value ->> 'kind' IN ('order', 'order_delete', 'customer',
                                             'customer_delete')) IS NOT TRUE)
    INTO v_shops, v_shop_keys, v_order_keys, v_customer_keys, v_unknown_kind
    FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS e(value, n);
    IF v_unknown_kind IS NOT NULL THEN
        RAISE EXCEPTION 'ingest_deliveries: unknown kind %', v_unknown_kind;
    END IF;
    v_busy := ingest_lock_keys_at(v_shops, v_shop_keys, true, p_wait);
    v_busy := v_busy || ingest_lock_keys_at(v_shops, v_order_keys, false, p_wait);
    -- Holding the orders' locks: their stored customers cannot change. Looked
    -- up order by order (a subquery per row), so that the plan is index
    -- lookups whatever the planner guesses of the group's size.
    v_stored_customer_keys := ARRAY(
        SELECT ingest_lock_key(e.value ->> 'shop', 'customer', (
            SELECT c.shopify_id
            FROM orders AS o
            JOIN customers AS c
                ON c.shop_id = o.shop_id AND c.id = o.customer_id AND c.shop_id = ANY(v_shops)
            WHERE o.shop_id = ANY(v_shops) AND o.shop_id = e.value ->> 'shop'
              AND o.shopify_id = e.value ->> 'order_shopify_id'))
        FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS e(value, n) ORDER BY e.n);
    v_busy := v_busy
        || ingest_lock_keys_at(v_shops, v_customer_keys || v_stored_customer_keys, false, p_wait);
    IF cardinality(v_busy) > 0 THEN
        v_busy_items := ARRAY(
            SELECT i FROM generate_subscripts(v_shop_keys, 1) AS i
            WHERE ARRAY[v_shop_keys[i], v_order_keys[i], v_customer_keys[i],
                        v_stored_customer_keys[i]] && v_busy);
    END IF;
    v_redacted := ARRAY(
        SELECT e.n
        FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS e(value, n)
        JOIN customers AS c
            ON c.shop_id = ANY(v_shops) AND c.shop_id = e.value ->> 'shop'
           AND c.shopify_id = e.value ->> 'customer_shopify_id'
        WHERE e.value ->> 'kind' IN ('order', 'customer') AND c.redacted_at IS NOT NULL
          AND NOT e.n = ANY(v_busy_items));
    v_to_record := ARRAY(
        SELECT e.n
        FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS e(value, n)
        WHERE NOT e.n = ANY(v_busy_items)
          AND NOT (e.n = ANY(v_redacted) AND (e.value -> 'scrubbed') IS DISTINCT FROM 'true'));
    IF cardinality(v_to_record) > 0 THEN
        -- A replay's payload is the stored one (a replay never rewrites it).
        IF EXISTS (SELECT FROM jsonb_array_elements(p_deliveries) AS e(value)
                   WHERE e.value ? 'ledger_id') THEN
            p_deliveries := (
                SELECT jsonb_agg(CASE WHEN w.id IS NULL THEN e.value
                                      ELSE e.value || jsonb_build_object('payload', w.payload)
                                 END ORDER BY e.n)
                FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS e(value, n)
                LEFT JOIN webhook_events AS w
                    ON w.shop_id = ANY(v_shops) AND w.shop_id = e.value ->> 'shop'
                   AND w.id = (e.value ->> 'ledger_id')::uuid);
        END IF;
        SELECT coalesce(array_agg(r.n ORDER BY r.n), ARRAY[]::bigint[]),
               array_agg(r.ledger_id ORDER BY r.n)
        INTO v_recorded, v_ledger_ids
        FROM ingest_record_deliveries(p_deliveries, v_to_record, 'processed', NULL) AS r
        WHERE r.ledger_id IS NOT NULL;
    END IF;
    IF cardinality(v_recorded) > 0 THEN
        v_applied := ARRAY(
            SELECT a.n FROM ingest_apply_changes(p_deliveries, v_recorded) AS a WHERE a.applied);
    END IF;
    RETURN QUERY
        SELECT i::bigint,
               r.ledger_id,
               CASE WHEN i = ANY(v_busy_items) THEN false
                    WHEN r.ledger_id IS NOT NULL THEN i = ANY(coalesce(v_applied, '{}')) END,
               i = ANY(v_redacted),
               i = ANY(v_busy_items)
        FROM generate_series(1, jsonb_array_length(p_deliveries)) AS i
        LEFT JOIN unnest(v_recorded, v_ledger_ids) AS r(n, ledger_id) ON r.n = i
        ORDER BY i;
END
$$;
