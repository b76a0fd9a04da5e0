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
-- Data: the tag. The events carry the writing transaction's id
-- (docs/customer-events.md).
CREATE OR REPLACE FUNCTION customer_events_tags()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_events (transaction_id, shop_id, customer_shopify_id, kind,
                                 occurred_at, data)
    SELECT pg_current_xact_id()::text::bigint, NEW.shop_id, NEW.shopify_id, 'tag_added', now(),
           jsonb_build_object('tag', t.tag)
    FROM (SELECT DISTINCT tag FROM unnest(NEW.tags) AS tag WHERE tag <> '') AS t
    WHERE TG_OP = 'INSERT' OR t.tag <> ALL (coalesce(OLD.tags, '{}'))
    ORDER BY t.tag;
    RETURN NULL;
END
$$;
