-- Applies a batch of customers fetched from the Admin API (app/sync/apply.py):
-- p_changes is a JSON array of changes as ingest_changes reads them, each of
-- kind 'customer' and shop p_shop (app/sync/apply.py maps the fetched
-- customers onto them: their tags always given, their marketing consent as
-- customer_*_marketing_*).
-- Guarantees: the locks a delivery takes, in the same order (the shop's,
-- shared, then the customers'), so sync and deliveries queue for each other;
-- the batch is applied by ingest_apply_changes, the rules customer
-- deliveries follow, with the marketing consent rule of the consent webhooks;
-- a change of another kind or shop is refused (an exception), since the
-- locks taken are those of p_shop's customers. Returns how many customers
-- were written (applied) and how many were stale.
CREATE OR REPLACE FUNCTION sync_apply_customers(
    p_lock_timeout_ms integer, p_shop text, p_changes jsonb,
    OUT applied integer, OUT stale integer)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM ingest_plan_mode();
    IF EXISTS (SELECT FROM jsonb_array_elements(p_changes) AS e
               WHERE (e ->> 'kind', e ->> 'shop') IS DISTINCT FROM ('customer', p_shop)) THEN
        RAISE EXCEPTION 'sync_apply_customers: every change must be a customer of %', p_shop;
    END IF;
    PERFORM ingest_lock_shop(p_shop, false, p_lock_timeout_ms);
    PERFORM ingest_lock_rows(p_shop, 'customer', ARRAY(
        SELECT e ->> 'customer_shopify_id' FROM jsonb_array_elements(p_changes) AS e));
    SELECT count(*) FILTER (WHERE a.applied), count(*) FILTER (WHERE NOT a.applied)
    INTO applied, stale
    FROM ingest_apply_changes(p_changes, NULL) AS a;
END
$$;
