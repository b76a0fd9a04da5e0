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
-- (docs/customer-events.md).
CREATE OR REPLACE FUNCTION customer_events_first_order()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_customer record;
BEGIN
    UPDATE customers SET first_order_announced_at = now()
    WHERE id = NEW.customer_id AND first_order_announced_at IS NULL
      AND deleted_at IS NULL AND redacted_at IS NULL
    RETURNING shop_id, shopify_id INTO v_customer;
    IF FOUND THEN
        INSERT INTO customer_events (transaction_id, shop_id, customer_shopify_id, kind,
                                     occurred_at, data)
        VALUES (pg_current_xact_id()::text::bigint, v_customer.shop_id, v_customer.shopify_id,
                'first_order', now(),
                jsonb_build_object('order_id', NEW.shopify_id,
                                   'order_created_at', NEW.shopify_created_at));
    END IF;
    RETURN NULL;
END
$$;
