-- customers/delete: deletes a customer. The caller holds the locks of the
-- shop and the customer.
-- Guarantees: a soft delete (deleted_at); a customer not stored yet gets a
-- tombstone, so that a create arriving late cannot bring it back. Returns
-- whether anything was written (false: already deleted).
CREATE OR REPLACE FUNCTION ingest_apply_customer_delete(p_shop text, p_customer_shopify_id text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
    v_deleted boolean;
BEGIN
    SELECT c.id, c.deleted_at IS NOT NULL INTO v_id, v_deleted
    FROM customers AS c WHERE c.shop_id = p_shop AND c.shopify_id = p_customer_shopify_id;
    IF v_id IS NULL THEN
        INSERT INTO customers (shop_id, shopify_id, deleted_at, order_count, total_spent)
        VALUES (p_shop, p_customer_shopify_id, now(), 0, 0);
    ELSIF NOT v_deleted THEN
        UPDATE customers SET deleted_at = now() WHERE id = v_id;
    END IF;
    RETURN v_id IS NULL OR NOT v_deleted;
END
$$;
