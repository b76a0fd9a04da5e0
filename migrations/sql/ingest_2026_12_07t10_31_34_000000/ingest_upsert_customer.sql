-- Creates the customer, or updates it from newer data, for deliveries and
-- synced orders alike. The caller holds the customer's lock: nothing else
-- writes it meanwhile, so reading first and then writing is safe, and cheaper
-- than ON CONFLICT.
-- Guarantees: a stored row is only overwritten by data at least as new as it
-- (deliveries arrive out of order; data without updated_at never overwrites);
-- deleted and redacted customers stay as they are; p_has_tags false (API
-- 2025-01 on: no `tags` key) keeps the stored tags; a new customer starts with
-- no orders. Returns the customer's id and whether it was written.
CREATE OR REPLACE FUNCTION ingest_upsert_customer(
    p_shop text, p_shopify_id text, p_email text, p_name text, p_phone text,
    p_tags text[], p_has_tags boolean, p_created_at timestamptz, p_updated_at timestamptz,
    OUT customer_id uuid, OUT applied boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_updated_at timestamptz;
    v_frozen boolean;
BEGIN
    SELECT c.id, c.shopify_updated_at, c.deleted_at IS NOT NULL OR c.redacted_at IS NOT NULL
    INTO customer_id, v_updated_at, v_frozen
    FROM customers AS c WHERE c.shop_id = p_shop AND c.shopify_id = p_shopify_id;
    IF customer_id IS NULL THEN
        INSERT INTO customers (shop_id, shopify_id, email, name, phone, tags,
                               shopify_created_at, shopify_updated_at, order_count, total_spent)
        VALUES (p_shop, p_shopify_id, p_email, p_name, p_phone, p_tags,
                p_created_at, p_updated_at, 0, 0)
        RETURNING id INTO customer_id;
        applied := true;
    ELSIF NOT v_frozen AND p_updated_at >= coalesce(v_updated_at, '-infinity') THEN
        UPDATE customers AS c
        SET email = p_email,
            name = p_name,
            phone = p_phone,
            tags = CASE WHEN p_has_tags THEN p_tags ELSE c.tags END,
            shopify_created_at = coalesce(p_created_at, c.shopify_created_at),
            shopify_updated_at = p_updated_at
        WHERE c.id = customer_id;
        applied := true;
    ELSE
        applied := false;
    END IF;
END
$$;
