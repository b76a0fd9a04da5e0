-- Applies a batch of orders fetched from the Admin API (app/sync/apply.py):
-- p_orders is a JSON array of objects with shopify_id, customer_shopify_id,
-- total_price, current_total_price, currency, financial_status,
-- fulfillment_status, cancelled_at, name, email, test, line_items,
-- created_at, updated_at.
-- Guarantees: the locks a delivery takes, in the same order (the shop's,
-- shared, then the orders', then the customers': those of the batch and those
-- stored on its orders), so sync and deliveries queue for each other; each
-- order follows an order delivery's rules (ingest_apply_order); a customer
-- the shop does not know yet is created empty (its own data comes with the
-- customers); an order of a redacted customer is written without its email;
-- the totals of every customer whose orders changed are recomputed once, at
-- the end. Returns how many orders were written (applied) and how many were
-- stale.
CREATE OR REPLACE FUNCTION sync_apply_orders(
    p_lock_timeout_ms integer, p_shop text, p_orders jsonb,
    OUT applied integer, OUT stale integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_order jsonb;
    v_customer_shopify_id text;
    v_written record;
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
        v_customer_shopify_id := v_order ->> 'customer_shopify_id';
        IF v_customer_shopify_id IS NOT NULL
           AND ingest_customer_redacted(p_shop, v_customer_shopify_id) THEN
            v_order := v_order || jsonb_build_object('email', NULL);
        END IF;
        SELECT a.applied, a.customer_ids INTO v_written
        FROM ingest_apply_order(
            p_shop, v_order ->> 'shopify_id', (v_order ->> 'total_price')::numeric,
            (v_order ->> 'current_total_price')::numeric, v_order ->> 'currency',
            v_order ->> 'financial_status', v_order ->> 'fulfillment_status',
            (v_order ->> 'cancelled_at')::timestamptz, v_order ->> 'name', v_order ->> 'email',
            (v_order ->> 'test')::boolean, nullif(v_order -> 'line_items', 'null'),
            (v_order ->> 'created_at')::timestamptz, (v_order ->> 'updated_at')::timestamptz,
            v_customer_shopify_id, NULL, NULL, NULL, NULL, false, NULL, NULL) AS a;
        IF v_written.applied THEN
            applied := applied + 1;
            v_touched := v_touched || v_written.customer_ids;
        ELSE
            stale := stale + 1;
        END IF;
    END LOOP;
    PERFORM ingest_recompute_totals(v_touched);
END
$$;
