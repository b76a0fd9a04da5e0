-- Writes a batch of the scores scores_compute found to differ
-- (app/scores/scoring.py) through scores_write: the arrays, in step, hold
-- each customer's id, the values the pass read (stored_*) and the new ones
-- (NULLs clear them).
-- Guarantees:
-- * Rows another transaction holds (a delivery writing that customer) are
--   not waited for beyond lock_timeout (on Citus too: ingest_shop_worker):
--   the batch is then written again without them (`busy`), and the next pass
--   scores them.
-- * What scores_write guarantees: a row is written only while it holds the
--   values the pass read; segment_change announced in this transaction.
-- Returns the rows written, the segment changes announced and the rows busy.
-- The whole batch is first written in one statement, which locks each row
-- as it updates it; locking the rows first (SKIP LOCKED) and then updating
-- them costs a second visit and a WAL record per row, so only a batch that
-- met a held row pays it.
CREATE OR REPLACE FUNCTION scores_apply(
    p_shop text, p_ids uuid[], p_stored_r integer[], p_stored_f integer[],
    p_stored_m integer[], p_stored_segments text[], p_rfm_r integer[], p_rfm_f integer[],
    p_rfm_m integer[], p_segments text[],
    OUT written integer, OUT segment_changes integer, OUT busy integer)
LANGUAGE plpgsql SET enable_hashjoin = off SET enable_mergejoin = off
SET lock_timeout = '20ms' AS $$
DECLARE
    v_free bigint[];
    v_ids uuid[];
    v_n bigint;
BEGIN
    busy := 0;
    PERFORM ingest_shop_worker(p_shop);
    BEGIN
        SELECT w.written, w.segment_changes INTO written, segment_changes
        FROM scores_write(p_shop, p_ids, p_stored_r, p_stored_f, p_stored_m, p_stored_segments,
                          p_rfm_r, p_rfm_f, p_rfm_m, p_segments) AS w;
        RETURN;
    EXCEPTION WHEN lock_not_available THEN
        NULL;  -- undone: a row was held
    END;
    -- Lock the free rows, in id order, for this transaction, and write only
    -- those: a held row's id becomes NULL, which matches no customer.
    SELECT array_agg(l.n) INTO v_free
    FROM (
        SELECT w.n
        FROM unnest(p_ids) WITH ORDINALITY AS w(id, n)
        JOIN customers AS c ON c.id = w.id
        WHERE c.shop_id = p_shop
        ORDER BY c.id
        FOR UPDATE OF c SKIP LOCKED
    ) AS l;
    v_ids := array_fill(NULL::uuid, ARRAY[cardinality(p_ids)]);
    FOREACH v_n IN ARRAY coalesce(v_free, '{}') LOOP
        v_ids[v_n] := p_ids[v_n];
    END LOOP;
    busy := cardinality(p_ids) - cardinality(coalesce(v_free, '{}'));
    SELECT w.written, w.segment_changes INTO written, segment_changes
    FROM scores_write(p_shop, v_ids, p_stored_r, p_stored_f, p_stored_m, p_stored_segments,
                      p_rfm_r, p_rfm_f, p_rfm_m, p_segments) AS w;
END
$$;
