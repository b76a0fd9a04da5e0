-- The name of the shard of p_table (customers, customer_events) that holds
-- p_shop's rows, for the trigger functions (customer_events_first_order,
-- customer_events_tags) when they fire on a Citus shard: the shop's shards of
-- colocated tables are on the same node, so the trigger writes them directly.
-- Only called on Citus (dynamic SQL: plain PostgreSQL never runs it).
-- Guarantees: the schema-qualified shard name, ready for format('%s').
CREATE OR REPLACE FUNCTION customer_events_shard(p_table text, p_shop text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname || '_' || s.shard)
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace,
                 LATERAL (SELECT get_shard_id_for_distribution_column(c.oid, p_shop)) AS s(shard)
            WHERE c.oid = to_regclass(p_table));
END
$$;
