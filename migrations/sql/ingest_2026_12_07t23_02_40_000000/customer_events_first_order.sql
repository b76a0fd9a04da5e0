-- The trigger function of orders_first_order_insert and orders_first_order_update
-- (AFTER INSERT / AFTER UPDATE ... FOR EACH ROW on orders, created by the
-- migration that added them): announces a customer's first order in
-- customer_events, in the transaction that writes the order, whichever path
-- wrote it (deliveries alone or grouped, replays, the sync, merges moving
-- orders). The triggers' WHEN conditions call it only for an order that has
-- just become counted for its customer: not deleted, not cancelled, not a
-- test, newly written or newly the customer's; test orders, cancelled ones
-- and updates of an order already counted never call it.
-- Guarantees: first_order once per customer, marked in
-- customers.first_order_announced_at under the customer row's lock (two
-- orders in one statement, in one group or in concurrent transactions
-- announce it once), never for a deleted, merged or redacted customer. Data:
-- the order's id and time. The event carries the writing transaction's id,
-- so that readers can wait for transactions still running
-- (docs/customer-events.md), and on Citus the group of the node that wrote
-- it, whose transaction ids those are, and the shop's events epoch there
-- (customer_events_epoch): 0 and 0, the defaults, on one PostgreSQL.
-- On Citus the trigger fires on a shard of orders, on the worker holding it,
-- where a statement on a distributed table is refused ("cannot execute a
-- distributed query from a query on a shard"): it writes the shop's
-- colocated shards of customers and customer_events, beside the order's.
CREATE OR REPLACE FUNCTION customer_events_first_order()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_customer record;
BEGIN
    IF TG_TABLE_NAME = 'orders' THEN
        UPDATE customers SET first_order_announced_at = now()
        WHERE shop_id = NEW.shop_id AND id = NEW.customer_id AND first_order_announced_at IS NULL
          AND deleted_at IS NULL AND redacted_at IS NULL
        RETURNING shop_id, shopify_id INTO v_customer;
    ELSE
        EXECUTE format(
            'UPDATE %s SET first_order_announced_at = now()'
            ' WHERE shop_id = $1 AND id = $2 AND first_order_announced_at IS NULL'
            ' AND deleted_at IS NULL AND redacted_at IS NULL RETURNING shop_id, shopify_id',
            customer_events_shard('customers', NEW.shop_id))
        INTO v_customer USING NEW.shop_id, NEW.customer_id;
    END IF;
    IF v_customer IS NOT NULL THEN
        IF TG_TABLE_NAME = 'orders' THEN
            INSERT INTO customer_events (transaction_id, shop_id, customer_shopify_id, kind,
                                         occurred_at, data)
            VALUES (pg_current_xact_id()::text::bigint, v_customer.shop_id,
                    v_customer.shopify_id, 'first_order', now(),
                    jsonb_build_object('order_id', NEW.shopify_id,
                                       'order_created_at', NEW.shopify_created_at));
        ELSE
            EXECUTE format(
                'INSERT INTO %s (id, transaction_id, node_group, epoch, shop_id,'
                ' customer_shopify_id, kind, occurred_at, data)'
                ' VALUES (nextval(''customer_events_id_seq''), pg_current_xact_id()::text::bigint,'
                ' customer_events_node_group(), customer_events_epoch($1), $1, $2, ''first_order'', now(), $3)',
                customer_events_shard('customer_events', NEW.shop_id))
            USING v_customer.shop_id, v_customer.shopify_id,
                  jsonb_build_object('order_id', NEW.shopify_id,
                                     'order_created_at', NEW.shopify_created_at);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
