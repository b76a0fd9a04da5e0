-- Applies a batch of customers fetched from the Admin API (app/sync/apply.py):
-- p_customers is a JSON array of objects with shopify_id, email, name, phone,
-- tags (an array), created_at, updated_at, email_marketing_state,
-- email_marketing_opt_in_level, email_marketing_updated_at,
-- sms_marketing_state, sms_marketing_opt_in_level, sms_marketing_updated_at.
-- Guarantees: the locks a delivery takes, in the same order (the shop's,
-- shared, then the customers'), so sync and deliveries queue for each other;
-- the batch is applied by ingest_apply_changes, the rules customer
-- deliveries follow (their tags given: the sync always reads them), with the
-- marketing consent rule of the consent webhooks. Returns how many customers
-- were written (applied) and how many were stale.
CREATE OR REPLACE FUNCTION sync_apply_customers(
    p_lock_timeout_ms integer, p_shop text, p_customers jsonb,
    OUT applied integer, OUT stale integer)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_changes jsonb;
BEGIN
    PERFORM ingest_plan_mode();
    PERFORM ingest_lock_shop(p_shop, false, p_lock_timeout_ms);
    PERFORM ingest_lock_rows(p_shop, 'customer', ARRAY(
        SELECT e ->> 'shopify_id' FROM jsonb_array_elements(p_customers) AS e));
    v_changes := (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
            'kind', 'customer', 'shop', p_shop, 'customer_shopify_id', x.e -> 'shopify_id',
            'customer_email', x.e -> 'email', 'customer_name', x.e -> 'name',
            'customer_phone', x.e -> 'phone', 'customer_tags', x.e -> 'tags',
            'customer_has_tags', true, 'customer_created_at', x.e -> 'created_at',
            'customer_updated_at', x.e -> 'updated_at',
            'customer_email_marketing_state', x.e -> 'email_marketing_state',
            'customer_email_marketing_opt_in_level', x.e -> 'email_marketing_opt_in_level',
            'customer_email_marketing_updated_at', x.e -> 'email_marketing_updated_at',
            'customer_sms_marketing_state', x.e -> 'sms_marketing_state',
            'customer_sms_marketing_opt_in_level', x.e -> 'sms_marketing_opt_in_level',
            'customer_sms_marketing_updated_at', x.e -> 'sms_marketing_updated_at')
            ORDER BY x.n), '[]')
        FROM jsonb_array_elements(p_customers) WITH ORDINALITY AS x(e, n));
    SELECT count(*) FILTER (WHERE a.applied), count(*) FILTER (WHERE NOT a.applied)
    INTO applied, stale
    FROM ingest_apply_changes(v_changes, NULL) AS a;
END
$$;
