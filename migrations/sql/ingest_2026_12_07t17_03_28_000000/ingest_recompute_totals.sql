-- Recomputes each customer's order count, total spent, average order value
-- and first and last order times, with one statement for all of them:
-- p_customer_ids, customers of the shops in p_shops (each statement filters
-- by shop_id, so that on Citus it goes to the shops' shards only).
-- Guarantees: the figures count the customer's orders that are neither
-- deleted nor cancelled (current_total_price, else total_price); a row is
-- only written when a figure changed. The caller holds the customers' locks.
-- On Citus, one shop's call runs on that shop's shard alone.
CREATE OR REPLACE FUNCTION ingest_recompute_totals(p_shops text[], p_customer_ids uuid[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- On Citus a generic plan of this statement goes to every shard (the
    -- shops are only known at execution): custom plans there, for the rest of
    -- the transaction (the callers that ask for generic plans restore theirs).
    PERFORM ingest_plan_mode();
    UPDATE customers AS c
    SET order_count = t.count,
        total_spent = t.spent,
        avg_order_value = round(t.spent / nullif(t.count, 0), 4),
        first_order_at = t.first,
        last_order_at = t.last
    FROM (
        -- A join grouped by the customer's key rather than an aggregate per
        -- customer in a LATERAL subquery: Citus plans the LATERAL form over
        -- several shops only for one shard ("aggregates without group by ...
        -- lateral subquery"), and this one anywhere.
        SELECT k.shop_id, k.id, count(o.id)::integer AS count,
               coalesce(sum(coalesce(o.current_total_price, o.total_price)), 0) AS spent,
               min(o.shopify_created_at) AS first, max(o.shopify_created_at) AS last
        FROM customers AS k
        LEFT JOIN orders AS o
               ON o.shop_id = k.shop_id AND o.customer_id = k.id
              AND o.deleted_at IS NULL AND o.cancelled_at IS NULL
        WHERE k.shop_id = ANY(p_shops) AND k.id = ANY(p_customer_ids)
        GROUP BY k.shop_id, k.id
    ) AS t
    WHERE c.shop_id = ANY(p_shops) AND c.shop_id = t.shop_id AND c.id = t.id
      AND (c.order_count, c.total_spent, c.first_order_at, c.last_order_at)
          IS DISTINCT FROM (t.count, t.spent, t.first, t.last);
END
$$;
