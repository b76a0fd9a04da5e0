-- Applies a batch of orders fetched from the Admin API (app/sync/apply.py):
-- p_orders is a JSON array of objects with shopify_id, customer_shopify_id,
-- total_price, current_total_price, currency, financial_status,
-- fulfillment_status, cancelled_at, name, email, test, line_items,
-- created_at, updated_at.
-- Guarantees: the locks a delivery takes, in the same order (the shop's,
-- shared, then the orders', then the customers': those of the batch and those
-- stored on its orders), so sync and deliveries queue for each other; the
-- batch is applied by ingest_apply_changes, the rules order deliveries
-- follow (an order of a redacted customer is written without its email); a
-- customer the shop does not know yet is created empty (its own data comes
-- with the customers); the totals of every customer whose counted orders
-- changed are recomputed once. Returns how many orders were written
-- (applied) and how many were stale.
CREATE OR REPLACE FUNCTION sync_apply_orders(
    p_lock_timeout_ms integer, p_shop text, p_orders jsonb,
    OUT applied integer, OUT stale integer)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_changes jsonb;
BEGIN
    PERFORM ingest_plan_mode();
    PERFORM ingest_lock_shop(p_shop, false, p_lock_timeout_ms);
    PERFORM ingest_lock_rows(p_shop, 'order', ARRAY(
        SELECT e ->> 'shopify_id' FROM jsonb_array_elements(p_orders) AS e));
    PERFORM ingest_lock_rows(p_shop, 'customer', ARRAY(
        SELECT e ->> 'customer_shopify_id' FROM jsonb_array_elements(p_orders) AS e
        UNION ALL
        SELECT c.shopify_id
        FROM orders AS o
        JOIN customers AS c ON c.shop_id = p_shop AND c.id = o.customer_id
        WHERE o.shop_id = p_shop AND o.shopify_id IN (
            SELECT e ->> 'shopify_id' FROM jsonb_array_elements(p_orders) AS e)));
    v_changes := (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
            'kind', 'order', 'shop', p_shop, 'order_shopify_id', x.e -> 'shopify_id',
            'customer_shopify_id', x.e -> 'customer_shopify_id',
            'total_price', x.e -> 'total_price', 'current_total_price', x.e -> 'current_total_price',
            'currency', x.e -> 'currency', 'financial_status', x.e -> 'financial_status',
            'fulfillment_status', x.e -> 'fulfillment_status',
            'cancelled_at', x.e -> 'cancelled_at', 'name', x.e -> 'name',
            'email', x.e -> 'email',
            'test', x.e -> 'test', 'line_items', x.e -> 'line_items',
            'created_at', x.e -> 'created_at', 'updated_at', x.e -> 'updated_at')
            ORDER BY x.n), '[]')
        FROM jsonb_array_elements(p_orders) WITH ORDINALITY AS x(e, n));
    SELECT count(*) FILTER (WHERE a.applied), count(*) FILTER (WHERE NOT a.applied)
    INTO applied, stale
    FROM ingest_apply_changes(v_changes, NULL) AS a;
END
$$;
