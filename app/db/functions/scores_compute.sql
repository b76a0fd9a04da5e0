-- The scores of one shop's customers (app/scores/scoring.py), read in one
-- statement; scores_apply writes them. Nothing is written here.
-- Guarantees:
-- * Scored: the shop's customers that are neither deleted, redacted nor merged
--   and have at least one counted order (not deleted, not cancelled, not a
--   test; the totals columns count test orders, so the figures are computed
--   here from the orders): days since the last counted order (R), counted
--   orders (F), their amount, current_total_price else total_price (M).
-- * Each figure scores 1 to 5 by its quintile in the shop: with `below` the
--   scored customers whose figure is worse and `peers` those whose figure is
--   equal (themselves included), of `n`, the score is
--   1 + floor(5 * (below + peers / 2) / n). Equal figures get equal scores; a
--   shop of one customer scores 3, 3, 3.
-- * Segment: `new` while the first counted order is less than
--   p_new_customer_days old; otherwise the R x F grid (docs/customer-events.md):
--   R>=4 and F>=4 champion; R>=3 and F>=3 loyal; R>=3 potential; F>=3 at_risk;
--   R=2 hibernating; R=1 lost.
-- * Customers not scored get NULL in all four columns.
-- Returns how many customers were scored and, as arrays in step, only the
-- customers whose stored values differ: their ids, the rfm_r, rfm_f, rfm_m and
-- segment stored now, and the new ones (scores_apply writes a row only while
-- it still holds what was read here).
-- The figures are grouped by value before they are placed: a shop has few
-- distinct day counts and order counts. The shop's customers are read once,
-- and each finds its scores in those small groups. work_mem: the pass sorts and hashes
-- about as many rows as the shop has customers. No nested loops: every join
-- here is of whole sets, and before statistics exist (a shop just loaded)
-- the planner takes each for one row and rescans a set per customer. On
-- Citus the statement is planned on the shop's worker, which gets these
-- settings from ingest_shop_worker.
CREATE OR REPLACE FUNCTION scores_compute(
    p_shop text, p_new_customer_days integer,
    OUT scored integer, OUT ids uuid[], OUT stored_r integer[], OUT stored_f integer[],
    OUT stored_m integer[], OUT stored_segments text[], OUT rfm_r integer[],
    OUT rfm_f integer[], OUT rfm_m integer[], OUT segments text[])
LANGUAGE plpgsql SET work_mem = '64MB' SET jit = off SET enable_nestloop = off AS $$
BEGIN
    PERFORM ingest_shop_worker(p_shop);  -- these settings on Citus's worker too
    WITH counted AS (
        SELECT o.customer_id, count(*) AS orders,
               sum(coalesce(o.current_total_price, o.total_price, 0)) AS spent,
               min(o.shopify_created_at) AS first_at, max(o.shopify_created_at) AS last_at
        FROM orders AS o
        WHERE o.shop_id = p_shop AND o.customer_id IS NOT NULL AND o.deleted_at IS NULL
          AND o.cancelled_at IS NULL AND o.test IS NOT TRUE
        GROUP BY o.customer_id
    ), shop_customers AS MATERIALIZED (
        -- Every customer of the shop, read once: its stored scores and, when
        -- it is scored, its figures (NULL otherwise). An unknown last order
        -- time counts as the oldest.
        SELECT c.id, c.rfm_r, c.rfm_f, c.rfm_m, c.segment, k.orders, k.spent, k.first_at,
               coalesce(floor(date_part('epoch', now() - k.last_at) / 86400)::integer,
                        2147483647) AS days
        FROM customers AS c
        LEFT JOIN counted AS k
          ON k.customer_id = c.id AND c.deleted_at IS NULL AND c.redacted_at IS NULL
             AND c.merged_into IS NULL
        WHERE c.shop_id = p_shop
    ), eligible AS (
        SELECT * FROM shop_customers WHERE orders IS NOT NULL
    ), total AS MATERIALIZED (
        SELECT count(*) AS n FROM eligible
    ), by_days AS MATERIALIZED (
        -- Integer arithmetic throughout (bigint division floors):
        -- 10 * (below + peers) - 5 * peers = 10 * below + 5 * peers.
        -- More days since the last order is worse: placed from the most days down.
        SELECT g.days,
               (1 + (10 * (sum(g.peers) OVER (ORDER BY g.days DESC))::bigint - 5 * g.peers)
                    / (2 * t.n))::integer AS score
        FROM (SELECT days, count(*) AS peers FROM eligible GROUP BY days) AS g, total AS t
    ), by_orders AS MATERIALIZED (
        SELECT g.orders,
               (1 + (10 * (sum(g.peers) OVER (ORDER BY g.orders))::bigint - 5 * g.peers)
                    / (2 * t.n))::integer AS score
        FROM (SELECT orders, count(*) AS peers FROM eligible GROUP BY orders) AS g, total AS t
    ), by_spent AS MATERIALIZED (
        SELECT g.spent,
               (1 + (10 * (sum(g.peers) OVER (ORDER BY g.spent))::bigint - 5 * g.peers)
                    / (2 * t.n))::integer AS score
        FROM (SELECT spent, count(*) AS peers FROM eligible GROUP BY spent) AS g, total AS t
    ), target AS (
        -- The customers not scored find no figure (NULL orders): NULL in all four.
        SELECT e.id, e.rfm_r, e.rfm_f, e.rfm_m, e.segment AS stored_segment,
               r.score AS r, f.score AS f, m.score AS m,
               CASE
                   WHEN e.orders IS NULL THEN NULL
                   WHEN e.first_at >= now() - make_interval(days => p_new_customer_days) THEN 'new'
                   WHEN r.score >= 4 AND f.score >= 4 THEN 'champion'
                   WHEN r.score >= 3 AND f.score >= 3 THEN 'loyal'
                   WHEN r.score >= 3 THEN 'potential'
                   WHEN f.score >= 3 THEN 'at_risk'
                   WHEN r.score = 2 THEN 'hibernating'
                   ELSE 'lost'
               END AS segment
        FROM shop_customers AS e
        LEFT JOIN by_days AS r ON r.days = e.days AND e.orders IS NOT NULL
        LEFT JOIN by_orders AS f ON f.orders = e.orders
        LEFT JOIN by_spent AS m ON m.spent = e.spent
    )
    SELECT (SELECT n FROM total), array_agg(t.id), array_agg(t.rfm_r), array_agg(t.rfm_f),
           array_agg(t.rfm_m), array_agg(t.stored_segment), array_agg(t.r), array_agg(t.f),
           array_agg(t.m), array_agg(t.segment)
    INTO scored, ids, stored_r, stored_f, stored_m, stored_segments, rfm_r, rfm_f, rfm_m,
         segments
    FROM target AS t
    WHERE (t.rfm_r, t.rfm_f, t.rfm_m, t.stored_segment) IS DISTINCT FROM (t.r, t.f, t.m, t.segment);
END
$$;
