-- The Citus group of the node running the statement (pg_dist_local_group):
-- the node whose transaction ids the statement sees. 0 on one PostgreSQL.
-- Called where the node matters: the shop feed's horizon (app/outbox/events.py,
-- in a statement Citus sends whole to the shop's worker, where it runs) and
-- the trigger functions' Citus branch (customer_events_epoch).
-- Guarantees: the local group; 0 without Citus.
CREATE OR REPLACE FUNCTION customer_events_node_group()
RETURNS integer LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_group integer;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
        RETURN 0;
    END IF;
    EXECUTE 'SELECT groupid FROM pg_dist_local_group' INTO v_group;
    RETURN v_group;
END
$$;
