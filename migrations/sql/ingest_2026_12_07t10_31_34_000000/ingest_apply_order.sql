-- Writes an order and its customer: an order delivery's (ingest_deliveries)
-- or a synced order's (sync_apply_orders). The caller holds the locks of the
-- shop, the order, the customer p_customer_shopify_id and the customer stored
-- on the order.
-- Guarantees: the customer (if any) is written first, by
-- ingest_upsert_customer's rule; the order is inserted, or updated when
-- p_updated_at is at least as new as the stored row's (data without
-- updated_at only ever creates a missing order); a deleted order stays
-- deleted. Returns whether the order was written and customer_ids, the
-- customers whose totals are then due (the order's and, if it moved, its
-- previous one): the caller recomputes them (ingest_recompute_totals).
CREATE OR REPLACE FUNCTION ingest_apply_order(
    p_shop text, p_order_shopify_id text, p_total_price numeric, p_current_total_price numeric,
    p_currency text, p_financial_status text, p_fulfillment_status text,
    p_cancelled_at timestamptz, p_name text, p_email text, p_test boolean, p_line_items jsonb,
    p_created_at timestamptz, p_updated_at timestamptz,
    p_customer_shopify_id text, p_customer_email text, p_customer_name text,
    p_customer_phone text, p_customer_tags text[], p_customer_has_tags boolean,
    p_customer_created_at timestamptz, p_customer_updated_at timestamptz,
    OUT applied boolean, OUT customer_ids uuid[])
LANGUAGE plpgsql AS $$
DECLARE
    v_stored record;
    v_customer uuid;
BEGIN
    SELECT o.id, o.customer_id, o.shopify_updated_at, o.deleted_at IS NOT NULL AS deleted
    INTO v_stored
    FROM orders AS o WHERE o.shop_id = p_shop AND o.shopify_id = p_order_shopify_id;
    IF p_customer_shopify_id IS NOT NULL THEN
        SELECT u.customer_id INTO v_customer
        FROM ingest_upsert_customer(p_shop, p_customer_shopify_id, p_customer_email,
                                    p_customer_name, p_customer_phone, p_customer_tags,
                                    p_customer_has_tags, p_customer_created_at,
                                    p_customer_updated_at) AS u;
    END IF;
    customer_ids := array_remove(ARRAY[v_customer, v_stored.customer_id], NULL);
    IF v_stored.id IS NULL THEN
        INSERT INTO orders (shop_id, shopify_id, customer_id, total_price, current_total_price,
                            currency, financial_status, fulfillment_status, cancelled_at, name,
                            email, test, line_items, shopify_created_at, shopify_updated_at)
        VALUES (p_shop, p_order_shopify_id, v_customer, p_total_price, p_current_total_price,
                p_currency, p_financial_status, p_fulfillment_status, p_cancelled_at, p_name,
                p_email, p_test, p_line_items, p_created_at, p_updated_at);
        applied := true;
    -- Without updated_at (NULL) the comparison is not true.
    ELSIF v_stored.deleted
          OR (p_updated_at >= coalesce(v_stored.shopify_updated_at, '-infinity')) IS NOT TRUE THEN
        applied := false;
    ELSE
        UPDATE orders
        SET customer_id = v_customer,
            total_price = p_total_price,
            current_total_price = p_current_total_price,
            currency = p_currency,
            financial_status = p_financial_status,
            fulfillment_status = p_fulfillment_status,
            cancelled_at = p_cancelled_at,
            name = p_name,
            email = p_email,
            test = p_test,
            line_items = p_line_items,
            shopify_created_at = p_created_at,
            shopify_updated_at = p_updated_at
        WHERE id = v_stored.id;
        applied := true;
    END IF;
END
$$;
