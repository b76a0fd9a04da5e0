-- Recomputes each customer's order count, total spent, average order value
-- and first and last order times.
-- Guarantees: the figures count the customer's orders that are neither
-- deleted nor cancelled (current_total_price, else total_price); a row is
-- only written when a figure changed. The caller holds the customers' locks.
CREATE OR REPLACE FUNCTION ingest_recompute_totals(p_customer_ids uuid[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
    v_count integer;
    v_spent numeric;
    v_first timestamptz;
    v_last timestamptz;
BEGIN
    FOREACH v_id IN ARRAY ARRAY(SELECT DISTINCT id FROM unnest(p_customer_ids) AS id) LOOP
        SELECT count(*), coalesce(sum(coalesce(o.current_total_price, o.total_price)), 0),
               min(o.shopify_created_at), max(o.shopify_created_at)
        INTO v_count, v_spent, v_first, v_last
        FROM orders AS o
        WHERE o.customer_id = v_id AND o.deleted_at IS NULL AND o.cancelled_at IS NULL;
        UPDATE customers AS c
        SET order_count = v_count,
            total_spent = v_spent,
            avg_order_value = round(v_spent / nullif(v_count, 0), 4),
            first_order_at = v_first,
            last_order_at = v_last
        WHERE c.id = v_id
          AND (c.order_count, c.total_spent, c.first_order_at, c.last_order_at)
              IS DISTINCT FROM (v_count, v_spent, v_first, v_last);
    END LOOP;
END
$$;
