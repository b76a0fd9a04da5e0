-- The trigger function of customers_tag_added_insert and
-- customers_tag_added_update (AFTER INSERT / AFTER UPDATE ... FOR EACH ROW on
-- customers, created by the migration that added them): announces the tags a
-- customer gains in customer_events, in the transaction that writes them,
-- whichever path wrote them (a customer payload with tags, the sync, the
-- customer.tags_added delta). The triggers' WHEN conditions call it only for
-- a live customer (neither deleted nor redacted) whose tags now hold one that
-- was not there before, so other writes of customers do not call it.
-- Guarantees: tag_added once for each distinct, non-empty tag newly in tags
-- (every tag of a new row); a tag removed and added again is announced again.
-- Data: the tag. The events carry the writing transaction's id and, on
-- Citus, its node's group (customer_events_first_order).
-- On Citus the trigger fires on a shard of customers, on the worker holding
-- it: it writes the shop's colocated shard of customer_events
-- (customer_events_first_order says why).
CREATE OR REPLACE FUNCTION customer_events_tags()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'customers' THEN
        INSERT INTO customer_events (transaction_id, shop_id, customer_shopify_id, kind,
                                     occurred_at, data)
        SELECT pg_current_xact_id()::text::bigint, NEW.shop_id, NEW.shopify_id, 'tag_added',
               now(), jsonb_build_object('tag', t.tag)
        FROM (SELECT DISTINCT tag FROM unnest(NEW.tags) AS tag WHERE tag <> '') AS t
        WHERE TG_OP = 'INSERT' OR t.tag <> ALL (coalesce(OLD.tags, '{}'))
        ORDER BY t.tag;
    ELSE
        EXECUTE format(
            'INSERT INTO %s (id, transaction_id, node_group, epoch, shop_id,'
            ' customer_shopify_id, kind, occurred_at, data)'
            ' SELECT nextval(''customer_events_id_seq''), pg_current_xact_id()::text::bigint,'
            ' customer_events_node_group(), customer_events_epoch($1), $1, $2, ''tag_added'', now(),'
            ' jsonb_build_object(''tag'', t.tag)'
            ' FROM (SELECT DISTINCT tag FROM unnest($3) AS tag WHERE tag <> '''') AS t'
            ' WHERE t.tag <> ALL ($4) ORDER BY t.tag',
            customer_events_shard('customer_events', NEW.shop_id))
        USING NEW.shop_id, NEW.shopify_id, NEW.tags,
              CASE WHEN TG_OP = 'INSERT' THEN '{}' ELSE coalesce(OLD.tags, '{}') END;
    END IF;
    RETURN NULL;
END
$$;
