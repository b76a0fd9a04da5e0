-- Writes a batch of the scores scores_compute found to differ
-- (app/scores/scoring.py): the arrays, in step, hold each customer's id and
-- new rfm_r, rfm_f, rfm_m and segment (NULLs clear them).
-- Guarantees:
-- * Rows another transaction holds at the moment (a delivery writing that
--   customer) are skipped, not waited for (`busy`): the next pass scores
--   them. Rows are locked in id order, for this batch's transaction only.
-- * A row is written only when a value differs from what is stored; a
--   deleted or redacted customer only ever has its scores cleared.
-- * segment_change is announced, in this transaction, for each live customer
--   whose segment this batch changed, with the segment it had (from) and the
--   new one (to), either NULL when there is none.
-- Returns the rows written, the segment changes announced and the rows busy.
-- Each batch row is found through the primary key: a hash join would read
-- the whole shop's customers once per batch. The new values travel with the
-- locked rows, so the UPDATE joins one array, never two.
CREATE OR REPLACE FUNCTION scores_apply(
    p_shop text, p_ids uuid[], p_rfm_r integer[], p_rfm_f integer[], p_rfm_m integer[],
    p_segments text[],
    OUT written integer, OUT segment_changes integer, OUT busy integer)
LANGUAGE plpgsql SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_ids uuid[];
    v_r integer[];
    v_f integer[];
    v_m integer[];
    v_segments text[];
    v_old_segments text[];
    v_locked integer;
BEGIN
    SELECT count(*), array_agg(l.id ORDER BY l.n) FILTER (WHERE l.wanted),
           array_agg(l.r ORDER BY l.n) FILTER (WHERE l.wanted),
           array_agg(l.f ORDER BY l.n) FILTER (WHERE l.wanted),
           array_agg(l.m ORDER BY l.n) FILTER (WHERE l.wanted),
           array_agg(l.segment ORDER BY l.n) FILTER (WHERE l.wanted),
           array_agg(l.old_segment ORDER BY l.n) FILTER (WHERE l.wanted)
    INTO v_locked, v_ids, v_r, v_f, v_m, v_segments, v_old_segments
    FROM (
        SELECT w.n, c.id, w.r, w.f, w.m, w.segment, c.segment AS old_segment,
               (w.segment IS NULL OR (c.deleted_at IS NULL AND c.redacted_at IS NULL))
               AND (c.rfm_r, c.rfm_f, c.rfm_m, c.segment)
                   IS DISTINCT FROM (w.r, w.f, w.m, w.segment) AS wanted
        FROM unnest(p_ids, p_rfm_r, p_rfm_f, p_rfm_m, p_segments) WITH ORDINALITY
             AS w(id, r, f, m, segment, n)
        JOIN customers AS c ON c.id = w.id
        WHERE c.shop_id = p_shop
        ORDER BY c.id
        FOR UPDATE OF c SKIP LOCKED
    ) AS l;
    busy := cardinality(p_ids) - v_locked;
    -- A statement of its own, after the locks: the rows are as locked.
    WITH written AS (
        UPDATE customers AS c
        SET rfm_r = w.r, rfm_f = w.f, rfm_m = w.m, segment = w.segment
        FROM unnest(v_ids, v_r, v_f, v_m, v_segments, v_old_segments)
             AS w(id, r, f, m, segment, old_segment)
        WHERE c.shop_id = p_shop AND c.id = w.id
        RETURNING c.shop_id, c.shopify_id, w.old_segment, w.segment AS new_segment,
                  c.deleted_at IS NULL AND c.redacted_at IS NULL AS live
    ), announced AS (
        INSERT INTO customer_events (transaction_id, shop_id, customer_shopify_id, kind,
                                     occurred_at, data)
        SELECT pg_current_xact_id()::text::bigint, w.shop_id, w.shopify_id, 'segment_change',
               now(), jsonb_build_object('from', w.old_segment, 'to', w.new_segment)
        FROM written AS w
        WHERE w.live AND w.old_segment IS DISTINCT FROM w.new_segment
        ORDER BY w.shopify_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM announced)
    INTO written, segment_changes;
END
$$;
