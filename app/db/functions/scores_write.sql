-- Writes scores onto customers and announces their segment changes
-- (scores_apply): the arrays, in step, hold each customer's id, the values
-- the pass read for it (stored_*) and its new ones.
-- Guarantees:
-- * A row is written only while it still holds the values the pass read
--   (checked again on the newest version when another transaction wrote it
--   meanwhile), so each change is written and announced once even when two
--   passes overlap; a row that moved on is left for the next pass. The pass
--   only lists rows whose new values differ from those it read.
-- * A deleted or redacted customer only ever has its scores cleared.
-- * segment_change is announced, in this transaction, for each live customer
--   whose segment this changed, by the trigger customers_segment_changed
--   (customer_events_segment): written on the row's node, so that on Citus it
--   carries the worker's transaction id like every other event.
-- Returns the rows written and the segment changes announced.
-- Each row is found through the primary key: a hash join would read the
-- whole shop's customers once per batch.
CREATE OR REPLACE FUNCTION scores_write(
    p_shop text, p_ids uuid[], p_stored_r integer[], p_stored_f integer[],
    p_stored_m integer[], p_stored_segments text[], p_rfm_r integer[], p_rfm_f integer[],
    p_rfm_m integer[], p_segments text[],
    OUT written integer, OUT segment_changes integer)
LANGUAGE plpgsql SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
    WITH written AS (
        UPDATE customers AS c
        SET rfm_r = w.r, rfm_f = w.f, rfm_m = w.m, segment = w.segment
        FROM unnest(p_ids, p_stored_r, p_stored_f, p_stored_m, p_stored_segments,
                    p_rfm_r, p_rfm_f, p_rfm_m, p_segments)
             AS w(id, stored_r, stored_f, stored_m, stored_segment, r, f, m, segment)
        WHERE c.shop_id = p_shop AND c.id = w.id
          AND (c.rfm_r, c.rfm_f, c.rfm_m, c.segment)
              IS NOT DISTINCT FROM (w.stored_r, w.stored_f, w.stored_m, w.stored_segment)
          AND (w.segment IS NULL OR (c.deleted_at IS NULL AND c.redacted_at IS NULL))
        RETURNING w.stored_segment AS old_segment, w.segment AS new_segment,
                  c.deleted_at IS NULL AND c.redacted_at IS NULL AS live
    )
    SELECT count(*),
           count(*) FILTER (WHERE w.live AND w.old_segment IS DISTINCT FROM w.new_segment)
    INTO written, segment_changes
    FROM written AS w;
END
$$;
