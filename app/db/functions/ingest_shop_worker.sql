-- On Citus, enrols the worker holding p_shop's shards in this transaction
-- before anything is locked, read or written there, with this transaction's
-- settings. Elsewhere nothing happens.
-- * A transaction on the worker from the first statement: Citus sends a
--   read outside any transaction on the worker unless the caller opened an
--   explicit one (a function called by a single statement, as group commit
--   calls ingest_deliveries, has none), and a lock such a read takes ends
--   with it. A routed read tells whether the worker is in the transaction
--   (Citus's distributed transaction number there); when it is not, a read
--   that locks rows puts it there for good, as Citus runs one inside a
--   function in the worker's transaction whatever it finds: FOR KEY SHARE of
--   the shop's row (when it has one; that blocks only the row's deletion).
-- * The worker gets the settings that decide how a statement runs there,
--   which a function's SET clauses and set_config() give the coordinator
--   only: lock_timeout (row locks are waited for on the worker) and the
--   planner settings the functions choose (a statement sent whole to the
--   worker is planned there).
-- Guarantees: on Citus, for the rest of the transaction, its statements on
-- the shop's shards run in one transaction on the worker (one connection),
-- with the values of lock_timeout, enable_nestloop, enable_hashjoin,
-- enable_mergejoin, work_mem and jit of this moment (a caller's SET clause
-- ends when it returns; on the worker they last until the transaction ends).
CREATE OR REPLACE FUNCTION ingest_shop_worker(p_shop text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_lock_timeout text := current_setting('lock_timeout');
    v_nestloop text := current_setting('enable_nestloop');
    v_hashjoin text := current_setting('enable_hashjoin');
    v_mergejoin text := current_setting('enable_mergejoin');
    v_work_mem text := current_setting('work_mem');
    v_jit text := current_setting('jit');
    v_enrolled boolean;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN;
    END IF;
    FOR attempt IN 1..2 LOOP
        -- Routed to the shop's worker by the filter on shops (one row, whether
        -- the shop has one or not), and run whole there.
        SELECT (get_current_transaction_id()).transaction_number <> 0
               AND set_config('lock_timeout', v_lock_timeout, true) IS NOT NULL
               AND set_config('enable_nestloop', v_nestloop, true) IS NOT NULL
               AND set_config('enable_hashjoin', v_hashjoin, true) IS NOT NULL
               AND set_config('enable_mergejoin', v_mergejoin, true) IS NOT NULL
               AND set_config('work_mem', v_work_mem, true) IS NOT NULL
               AND set_config('jit', v_jit, true) IS NOT NULL
        INTO v_enrolled
        FROM (SELECT count(*) FROM shops WHERE shop_id = p_shop) AS shard;
        EXIT WHEN v_enrolled;
        PERFORM FROM shops WHERE shop_id = p_shop FOR KEY SHARE;
    END LOOP;
    IF NOT v_enrolled THEN
        RAISE EXCEPTION 'ingest_shop_worker: % is not in a transaction on its worker', p_shop;
    END IF;
END
$$;
