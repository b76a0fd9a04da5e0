-- orders/delete: deletes an order. The caller holds the locks of the shop,
-- the order and the customer stored on it.
-- Guarantees: a soft delete (deleted_at); an order not stored yet gets a
-- tombstone, so that a create arriving late cannot bring it back. Returns
-- whether anything was written (false: already deleted) and customer_ids,
-- the order's customer, whose totals are then due: the caller recomputes them.
CREATE OR REPLACE FUNCTION ingest_apply_order_delete(
    p_shop text, p_order_shopify_id text, OUT applied boolean, OUT customer_ids uuid[])
LANGUAGE plpgsql AS $$
DECLARE
    v_stored record;
BEGIN
    SELECT o.id, o.customer_id, o.deleted_at IS NOT NULL AS deleted INTO v_stored
    FROM orders AS o WHERE o.shop_id = p_shop AND o.shopify_id = p_order_shopify_id;
    IF v_stored.id IS NULL THEN
        INSERT INTO orders (shop_id, shopify_id, deleted_at)
        VALUES (p_shop, p_order_shopify_id, now());
    ELSIF NOT v_stored.deleted THEN
        UPDATE orders SET deleted_at = now() WHERE id = v_stored.id;
    END IF;
    applied := v_stored.id IS NULL OR NOT v_stored.deleted;
    customer_ids := array_remove(ARRAY[v_stored.customer_id], NULL);
END
$$;
