-- The epoch a new event of p_shop is written with, by the trigger functions
-- when they fire on a Citus shard (customer_events_first_order says why they
-- write the shards directly). A shop's feed reads by (epoch, transaction_id,
-- id); transaction ids are a node's own, so when the shop's shards have moved
-- to another node, its events there must come after every earlier one: the
-- first event written on a node other than the shop's last
-- (shops.events_node_group) raises shops.events_epoch, under the shop row's
-- lock, and every later one there reads it.
-- Guarantees: the epoch of the node writing now, the same for every event
-- written there until the shop moves again; higher than any epoch written on
-- another node before. 0 for a shop without a row in shops (no feed order to
-- keep across a move: every path that writes a shop's rows records the shop).
-- Only called on Citus (dynamic SQL: plain PostgreSQL never runs it, and its
-- events keep epoch 0).
CREATE OR REPLACE FUNCTION customer_events_epoch(p_shop text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_shops text := customer_events_shard('shops', p_shop);
    v_group integer := customer_events_node_group();
    v_epoch integer;
BEGIN
    EXECUTE format('SELECT events_epoch FROM %s WHERE shop_id = $1 AND events_node_group = $2',
                   v_shops)
    INTO v_epoch USING p_shop, v_group;
    IF v_epoch IS NULL THEN
        -- A writer that raised it meanwhile leaves nothing to update: read its epoch.
        EXECUTE format('UPDATE %s SET events_epoch = events_epoch + 1, events_node_group = $2'
                       ' WHERE shop_id = $1 AND events_node_group <> $2 RETURNING events_epoch',
                       v_shops)
        INTO v_epoch USING p_shop, v_group;
    END IF;
    IF v_epoch IS NULL THEN
        EXECUTE format('SELECT events_epoch FROM %s WHERE shop_id = $1', v_shops)
        INTO v_epoch USING p_shop;
    END IF;
    RETURN coalesce(v_epoch, 0);
END
$$;
