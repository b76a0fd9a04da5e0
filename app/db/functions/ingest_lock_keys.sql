-- Takes the advisory locks of p_keys (ingest_lock_key values), shared or
-- exclusive, for the rest of the transaction.
-- Guarantees: keys are taken in ascending order, each once, NULLs skipped;
-- that order is every writer's, so writers queue instead of deadlocking.
-- With p_wait each lock is waited for (up to lock_timeout) and none is
-- returned; without, only the locks free at once are taken and the keys not
-- taken are returned. One statement for all the keys (they are taken as the
-- sorted rows are read), not one per key.
CREATE OR REPLACE FUNCTION ingest_lock_keys(p_keys bigint[], p_shared boolean, p_wait boolean)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_busy bigint[];
BEGIN
    IF p_wait AND p_shared THEN
        PERFORM pg_advisory_xact_lock_shared(s.k)
        FROM (SELECT DISTINCT k FROM unnest(p_keys) AS k WHERE k IS NOT NULL ORDER BY 1) AS s;
    ELSIF p_wait THEN
        PERFORM pg_advisory_xact_lock(s.k)
        FROM (SELECT DISTINCT k FROM unnest(p_keys) AS k WHERE k IS NOT NULL ORDER BY 1) AS s;
    ELSE
        SELECT array_agg(s.k) FILTER (
                   WHERE NOT CASE WHEN p_shared THEN pg_try_advisory_xact_lock_shared(s.k)
                                  ELSE pg_try_advisory_xact_lock(s.k) END)
        INTO v_busy
        FROM (SELECT DISTINCT k FROM unnest(p_keys) AS k WHERE k IS NOT NULL ORDER BY 1) AS s;
    END IF;
    RETURN coalesce(v_busy, ARRAY[]::bigint[]);
END
$$;
