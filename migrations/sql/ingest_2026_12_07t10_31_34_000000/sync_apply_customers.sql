-- Applies a batch of customers fetched from the Admin API (app/sync/apply.py):
-- p_customers is a JSON array of objects with shopify_id, email, name, phone,
-- tags (an array), created_at, updated_at, email_marketing_state,
-- email_marketing_opt_in_level, email_marketing_updated_at,
-- sms_marketing_state, sms_marketing_opt_in_level, sms_marketing_updated_at.
-- Guarantees: the locks a delivery takes, in the same order (the shop's,
-- shared, then the customers'), so sync and deliveries queue for each other;
-- each customer follows a delivery's rule (ingest_upsert_customer) and its
-- consent the consent webhooks' rule (sync_apply_consent). Returns how many
-- customers were written (applied) and how many were stale.
CREATE OR REPLACE FUNCTION sync_apply_customers(
    p_lock_timeout_ms integer, p_shop text, p_customers jsonb,
    OUT applied integer, OUT stale integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_customer jsonb;
    v_applied boolean;
    v_id uuid;
BEGIN
    applied := 0;
    stale := 0;
    PERFORM ingest_lock_shop(p_shop, false, p_lock_timeout_ms);
    PERFORM ingest_lock_rows(p_shop, 'customer', ARRAY(
        SELECT e ->> 'shopify_id' FROM jsonb_array_elements(p_customers) AS e));
    FOR v_customer IN SELECT e FROM jsonb_array_elements(p_customers) AS e LOOP
        SELECT u.customer_id, u.applied INTO v_id, v_applied
        FROM ingest_upsert_customer(
            p_shop, v_customer ->> 'shopify_id', v_customer ->> 'email',
            v_customer ->> 'name', v_customer ->> 'phone',
            ARRAY(SELECT jsonb_array_elements_text(v_customer -> 'tags')), true,
            (v_customer ->> 'created_at')::timestamptz,
            (v_customer ->> 'updated_at')::timestamptz) AS u;
        PERFORM sync_apply_consent(
            v_id, v_customer ->> 'email_marketing_state',
            v_customer ->> 'email_marketing_opt_in_level',
            (v_customer ->> 'email_marketing_updated_at')::timestamptz, 'email');
        PERFORM sync_apply_consent(
            v_id, v_customer ->> 'sms_marketing_state',
            v_customer ->> 'sms_marketing_opt_in_level',
            (v_customer ->> 'sms_marketing_updated_at')::timestamptz, 'sms');
        IF v_applied THEN
            applied := applied + 1;
        ELSE
            stale := stale + 1;
        END IF;
    END LOOP;
END
$$;
