-- Takes the advisory locks of p_keys (ingest_lock_key values), shared or
-- exclusive, for the rest of the transaction.
-- Guarantees: keys are taken in ascending order, each once, NULLs skipped;
-- that order is every writer's, so writers queue instead of deadlocking.
-- With p_wait each lock is waited for (up to lock_timeout) and none is
-- returned; without, only the locks free at once are taken and the keys not
-- taken are returned.
CREATE OR REPLACE FUNCTION ingest_lock_keys(p_keys bigint[], p_shared boolean, p_wait boolean)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_key bigint;
    v_busy bigint[] := ARRAY[]::bigint[];
BEGIN
    FOR v_key IN
        SELECT DISTINCT k FROM unnest(p_keys) AS k WHERE k IS NOT NULL ORDER BY 1
    LOOP
        IF p_wait AND p_shared THEN
            PERFORM pg_advisory_xact_lock_shared(v_key);
        ELSIF p_wait THEN
            PERFORM pg_advisory_xact_lock(v_key);
        ELSIF NOT (CASE WHEN p_shared THEN pg_try_advisory_xact_lock_shared(v_key)
                        ELSE pg_try_advisory_xact_lock(v_key) END) THEN
            v_busy := v_busy || v_key;
        END IF;
    END LOOP;
    RETURN v_busy;
END
$$;
