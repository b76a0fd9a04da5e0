-- The horizon of each node group whose customer_events a reader goes through
-- (app/outbox/events.py): the oldest transaction still running on that node
-- (pg_snapshot_xmin). Every event of the group below it has committed or
-- never will, so a reader that stops there never has an event appear behind
-- its position. Transaction ids are a node's own: one PostgreSQL is group 0;
-- on Citus each node answers for itself (run_command_on_all_nodes), and a
-- node that does not answer has no horizon (its events wait for the next read).
-- Guarantees: one row per node group that answered, the horizon as bigint.
-- A horizon read before the events is safe: it only moves forward.
CREATE OR REPLACE FUNCTION customer_events_horizons(OUT node_group integer, OUT horizon bigint)
RETURNS SETOF record LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_node') IS NULL THEN
        RETURN QUERY SELECT 0, pg_snapshot_xmin(pg_current_snapshot())::text::bigint;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT DISTINCT ON (n.groupid) n.groupid, r.result::bigint'
        ' FROM run_command_on_all_nodes('
        '     ''SELECT pg_snapshot_xmin(pg_current_snapshot())::text'') AS r'
        ' JOIN pg_dist_node AS n ON n.nodeid = r.nodeid'
        ' WHERE r.success'
        ' UNION ALL'
        ' SELECT 0, pg_snapshot_xmin(pg_current_snapshot())::text::bigint'
        ' WHERE NOT EXISTS (SELECT FROM pg_dist_node WHERE groupid = 0)';
END
$$;
