-- Takes the shop's advisory lock for the rest of the transaction, where the
-- shop's rows live (ingest_lock_keys_at): shared for the writes of
-- deliveries and sync batches, exclusive for shop/redact.
-- Always the first lock a writer takes, so it also sets how long this
-- transaction may wait for a lock (behind PgBouncer there is no session to
-- set lock_timeout on).
-- Guarantees: lock_timeout is p_lock_timeout_ms for the rest of the
-- transaction; the lock is held when it returns.
CREATE OR REPLACE FUNCTION ingest_lock_shop(
    p_shop text, p_exclusive boolean, p_lock_timeout_ms integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
    PERFORM ingest_lock_keys_at(
        ARRAY[p_shop], ARRAY[ingest_lock_key(p_shop, 'shop', '')], p_exclusive IS NOT TRUE, true);
END
$$;
