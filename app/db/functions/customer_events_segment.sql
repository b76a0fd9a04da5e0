-- The trigger function of customers_segment_changed (AFTER UPDATE OF segment
-- ... FOR EACH ROW on customers, created by the migration that added it):
-- announces a customer's segment change in customer_events, in the
-- transaction that writes it (a scoring pass, scores_write). The trigger's
-- WHEN condition calls it only when the segment changed on a live customer
-- (neither deleted nor redacted): clearing the scores of a customer who is
-- gone announces nothing.
-- Guarantees: segment_change once per change, data {from, to} (either NULL
-- when there is none). The event carries the writing transaction's id
-- (docs/customer-events.md), taken where the row is written, and on Citus
-- that node's group (customer_events_first_order): there the
-- trigger fires on the worker holding the shard, like the other events'
-- triggers, and writes the shop's colocated shard of customer_events
-- (customer_events_first_order says why).
CREATE OR REPLACE FUNCTION customer_events_segment()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'customers' THEN
        INSERT INTO customer_events (transaction_id, shop_id, customer_shopify_id, kind,
                                     occurred_at, data)
        VALUES (pg_current_xact_id()::text::bigint, NEW.shop_id, NEW.shopify_id,
                'segment_change', now(),
                jsonb_build_object('from', OLD.segment, 'to', NEW.segment));
    ELSE
        EXECUTE format(
            'INSERT INTO %s (id, transaction_id, node_group, epoch, shop_id,'
            ' customer_shopify_id, kind, occurred_at, data)'
            ' VALUES (nextval(''customer_events_id_seq''), pg_current_xact_id()::text::bigint,'
            ' customer_events_node_group(), customer_events_epoch($1), $1, $2, ''segment_change'', now(), $3)',
            customer_events_shard('customer_events', NEW.shop_id))
        USING NEW.shop_id, NEW.shopify_id,
              jsonb_build_object('from', OLD.segment, 'to', NEW.segment);
    END IF;
    RETURN NULL;
END
$$;
