-- Takes the advisory locks of p_keys (ingest_lock_keys) where the rows of the
-- shops in p_shops live, and returns the keys not taken (ingest_lock_keys).
-- On one PostgreSQL that is here. On Citus it is the worker holding the
-- shop's shards, through the transaction's own connection to it: with
-- two-phase commit Citus commits the workers after the coordinator, so locks
-- held on the coordinator would be released while the rows they guard are
-- still invisible, and the next writer would read the previous one's rows
-- late. Taken on the worker, they are held until the rows commit there.
-- Guarantees: ingest_lock_keys' order and waiting. On Citus p_shops holds
-- one shop (group commit groups by shop there; an exception otherwise),
-- whose worker is enrolled in the transaction first (ingest_shop_worker,
-- which also gives it the transaction's lock_timeout).
CREATE OR REPLACE FUNCTION ingest_lock_keys_at(
    p_shops text[], p_keys bigint[], p_shared boolean, p_wait boolean)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_busy bigint[];
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN ingest_lock_keys(p_keys, p_shared, p_wait);
    END IF;
    IF cardinality(p_shops) IS DISTINCT FROM 1 THEN
        RAISE EXCEPTION 'ingest_lock_keys_at: on Citus the locks of one shop at a time, not %',
            p_shops;
    END IF;
    PERFORM ingest_shop_worker(p_shops[1]);
    -- Routed to the shop's worker by the filter on shops (one row, whether
    -- the shop has one or not), and run whole there.
    SELECT ingest_lock_keys(p_keys, p_shared, p_wait) INTO v_busy
    FROM (SELECT count(*) FROM shops WHERE shop_id = p_shops[1]) AS shard;
    RETURN v_busy;
END
$$;
