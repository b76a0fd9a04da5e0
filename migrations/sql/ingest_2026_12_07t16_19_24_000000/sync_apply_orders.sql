-- Applies a batch of orders fetched from the Admin API (app/sync/apply.py):
-- p_changes is a JSON array of changes as ingest_changes reads them, each of
-- kind 'order' and shop p_shop (app/sync/apply.py maps the fetched orders
-- onto them: the order's values, its line items, its customer's id).
-- Guarantees: the locks a delivery takes, in the same order (the shop's,
-- shared, then the orders', then the customers': those of the batch and those
-- stored on its orders), so sync and deliveries queue for each other; the
-- batch is applied by ingest_apply_changes, the rules order deliveries
-- follow (an order of a redacted customer is written without its email); a
-- customer the shop does not know yet is created empty (its own data comes
-- with the customers); the totals of every customer whose counted orders
-- changed are recomputed once; a change of another kind or shop is refused
-- (an exception), since the locks taken are those of p_shop's rows. Returns
-- how many orders were written (applied) and how many were stale.
CREATE OR REPLACE FUNCTION sync_apply_orders(
    p_lock_timeout_ms integer, p_shop text, p_changes jsonb,
    OUT applied integer, OUT stale integer)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM ingest_plan_mode();
    IF EXISTS (SELECT FROM jsonb_array_elements(p_changes) AS e
               WHERE (e ->> 'kind', e ->> 'shop') IS DISTINCT FROM ('order', p_shop)) THEN
        RAISE EXCEPTION 'sync_apply_orders: every change must be an order of %', p_shop;
    END IF;
    PERFORM ingest_lock_shop(p_shop, false, p_lock_timeout_ms);
    PERFORM ingest_lock_rows(p_shop, 'order', ARRAY(
        SELECT e ->> 'order_shopify_id' FROM jsonb_array_elements(p_changes) AS e));
    PERFORM ingest_lock_rows(p_shop, 'customer', ARRAY(
        SELECT e ->> 'customer_shopify_id' FROM jsonb_array_elements(p_changes) AS e
        UNION ALL
        SELECT c.shopify_id
        FROM orders AS o
        JOIN customers AS c ON c.shop_id = p_shop AND c.id = o.customer_id
        WHERE o.shop_id = p_shop AND o.shopify_id IN (
            SELECT e ->> 'order_shopify_id' FROM jsonb_array_elements(p_changes) AS e)));
    SELECT count(*) FILTER (WHERE a.applied), count(*) FILTER (WHERE NOT a.applied)
    INTO applied, stale
    FROM ingest_apply_changes(p_changes, NULL) AS a;
END
$$;
