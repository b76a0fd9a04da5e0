-- Chooses how the calling function's statements are planned. Callers that ask
-- for generic plans (SET plan_cache_mode = force_generic_plan: on plain
-- PostgreSQL planning each call's statements anew costs time) call it first.
-- Citus plans a statement on distributed tables only with its parameters'
-- values (a generic plan fails: "could not create distributed plan"), and it
-- routes the statement to one shard from those values.
-- Guarantees: in a database with Citus, plan_cache_mode is force_custom_plan
-- for the rest of the calling function (the caller's SET clause restores its
-- value when the caller returns); elsewhere nothing changes.
CREATE OR REPLACE FUNCTION ingest_plan_mode()
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
    END IF;
END
$$;
