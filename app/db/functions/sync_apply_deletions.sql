-- Marks deleted the shop's customers or orders (p_resource 'customers' or
-- 'orders') that a complete full export no longer lists (app/sync/deletions.py).
-- Guarantees: the locks a delivery takes, in the same order (the shop's,
-- shared, then the orders', then the customers' stored on them), so sync and
-- deliveries queue for each other; each row is deleted exactly as a
-- customers/delete or orders/delete webhook deletes it (ingest_apply_changes:
-- a soft delete that a late webhook cannot undo; the totals of an order's
-- customer recomputed). Returns how many rows were deleted (not already).
CREATE OR REPLACE FUNCTION sync_apply_deletions(
    p_lock_timeout_ms integer, p_shop text, p_resource text, p_shopify_ids text[],
    OUT deleted integer)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_orders boolean := p_resource = 'orders';
BEGIN
    IF p_resource NOT IN ('customers', 'orders') THEN
        RAISE EXCEPTION 'sync_apply_deletions: unknown resource %', p_resource;
    END IF;
    PERFORM ingest_plan_mode();
    PERFORM ingest_lock_shop(p_shop, false, p_lock_timeout_ms);
    IF v_orders THEN
        PERFORM ingest_lock_rows(p_shop, 'order', p_shopify_ids);
        PERFORM ingest_lock_rows(p_shop, 'customer', ARRAY(
            SELECT c.shopify_id
            FROM orders AS o
            JOIN customers AS c ON c.shop_id = p_shop AND c.id = o.customer_id
            WHERE o.shop_id = p_shop AND o.shopify_id = ANY(p_shopify_ids)));
    ELSE
        PERFORM ingest_lock_rows(p_shop, 'customer', p_shopify_ids);
    END IF;
    SELECT count(*) FILTER (WHERE a.applied) INTO deleted
    FROM ingest_apply_changes(
        (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'kind', CASE WHEN v_orders THEN 'order_delete' ELSE 'customer_delete' END,
                    'shop', p_shop,
                    CASE WHEN v_orders THEN 'order_shopify_id' ELSE 'customer_shopify_id' END, id)
                    ORDER BY id), '[]')
         FROM unnest(p_shopify_ids) AS id),
        NULL) AS a;
END
$$;
