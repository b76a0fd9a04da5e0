-- The changes of a group (p_changes, a JSON array) as rows, `n` each one's
-- place in the array from 1; only those numbered in p_only (NULL: all).
-- A change is a GroupItem (app/webhooks/grouping.py) as ingest_deliveries
-- receives it, or what sync_apply_customers and sync_apply_orders make of a
-- fetched customer or order: `kind` ('order', 'order_delete', 'customer',
-- 'customer_delete'), `shop`, the order's values, and the customer's as
-- customer_* (a customer delivery's own, an order's nested one, or a synced
-- customer's, whose marketing consent comes as customer_*_marketing_*).
-- An order's line items are `line_items`, else its payload's.
-- Guarantees: every key the writers read, once, with its type; a key left
-- out is NULL.
CREATE OR REPLACE FUNCTION ingest_changes(p_changes jsonb, p_only bigint[])
RETURNS TABLE (
    n bigint, kind text, shop text,
    order_shopify_id text, total_price numeric, current_total_price numeric,
    currency text, financial_status text, fulfillment_status text,
    cancelled_at timestamptz, name text, email text, test boolean, line_items jsonb,
    created_at timestamptz, updated_at timestamptz,
    customer_shopify_id text, customer_email text, customer_name text,
    customer_phone text, customer_tags text[], customer_has_tags boolean,
    customer_created_at timestamptz, customer_updated_at timestamptz,
    customer_email_marketing_state text, customer_email_marketing_opt_in_level text,
    customer_email_marketing_updated_at timestamptz,
    customer_sms_marketing_state text, customer_sms_marketing_opt_in_level text,
    customer_sms_marketing_updated_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT e.n, t.kind, t.shop,
           t.order_shopify_id, t.total_price, t.current_total_price,
           t.currency, t.financial_status, t.fulfillment_status,
           t.cancelled_at, t.name, t.email, t.test,
           nullif(coalesce(t.line_items, t.payload -> 'line_items'), 'null'),
           t.created_at, t.updated_at,
           t.customer_shopify_id, t.customer_email, t.customer_name,
           t.customer_phone, t.customer_tags, coalesce(t.customer_has_tags, false),
           t.customer_created_at, t.customer_updated_at,
           t.customer_email_marketing_state, t.customer_email_marketing_opt_in_level,
           t.customer_email_marketing_updated_at,
           t.customer_sms_marketing_state, t.customer_sms_marketing_opt_in_level,
           t.customer_sms_marketing_updated_at
    FROM jsonb_array_elements(p_changes) WITH ORDINALITY AS e(value, n),
         jsonb_to_record(e.value) AS t(
             kind text, shop text, payload jsonb, line_items jsonb,
             order_shopify_id text, total_price numeric, current_total_price numeric,
             currency text, financial_status text, fulfillment_status text,
             cancelled_at timestamptz, name text, email text, test boolean,
             created_at timestamptz, updated_at timestamptz,
             customer_shopify_id text, customer_email text, customer_name text,
             customer_phone text, customer_tags text[], customer_has_tags boolean,
             customer_created_at timestamptz, customer_updated_at timestamptz,
             customer_email_marketing_state text, customer_email_marketing_opt_in_level text,
             customer_email_marketing_updated_at timestamptz,
             customer_sms_marketing_state text, customer_sms_marketing_opt_in_level text,
             customer_sms_marketing_updated_at timestamptz)
    WHERE p_only IS NULL OR e.n = ANY(p_only)
$$;
