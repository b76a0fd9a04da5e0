-- Applies a group of changes to customers and orders (ingest_changes reads
-- them: p_changes, those numbered in p_only, NULL: all), with set-based
-- statements: the one definition of the rules for webhook deliveries
-- (ingest_deliveries) and synced customers and orders (sync_apply_customers,
-- sync_apply_orders, the sync's deletions) alike. The caller holds the locks
-- of the changes' shops, orders and customers, and of the customers stored on
-- the orders.
-- Guarantees: the result is what applying the changes one by one, in array
-- order, would leave, each seeing the writes of those before it:
-- * Customers (a customer change, or an order change's nested customer, the
--   customer written before its order): a new customer is created (no orders
--   yet); a stored one is updated by data at least as new as what it holds
--   (data without updated_at never overwrites) unless it is deleted or
--   redacted; customer_has_tags false keeps the stored tags; a missing created
--   time keeps the stored one. Its marketing consent per channel (synced
--   customers) is written when its state is given and its time is not older
--   than the stored consent's, never onto a deleted or redacted customer.
-- * customer_delete: a soft delete (deleted_at); a customer not stored yet
--   gets a tombstone, so that a create arriving late cannot bring it back.
-- * Orders: inserted, or updated when updated_at is at least as new as the
--   stored row's (data without updated_at only ever creates a missing order);
--   a deleted order stays deleted; an order of a redacted customer is written
--   without its email. order_delete: as customer_delete.
-- * A row is only rewritten when a value changes; the totals
--   (ingest_recompute_totals) of the customers whose counted orders changed
--   (an order's customer, and its previous one when it moved) are recomputed
--   once, after all the writes.
-- * New rows are inserted in key order, so two transactions creating the
--   same rows queue instead of deadlocking.
-- * Every statement on a table filters by the changes' shops (shop_id), so
--   that on Citus changes of one shop go to that shop's shard.
-- Returns one row per change: `applied`, whether its upsert or delete was
-- applied (false: stale, already deleted, or a frozen customer); an order
-- change's is its order's.
CREATE OR REPLACE FUNCTION ingest_apply_changes(p_changes jsonb, p_only bigint[])
RETURNS TABLE (n bigint, applied boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_customers_applied bigint[];
    v_orders_applied bigint[];
    v_due uuid[];
    v_shops text[];
    -- The deletion time, a value: Citus refuses now() in CASE in an UPDATE.
    v_now timestamptz := now();
BEGIN
    PERFORM ingest_plan_mode();
    v_shops := ARRAY(
        SELECT DISTINCT e.value ->> 'shop'
        FROM jsonb_array_elements(p_changes) WITH ORDINALITY AS e(value, n)
        WHERE p_only IS NULL OR e.n = ANY(p_only));
    -- Customers. Per change: what was stored, and what the changes before it
    -- (same shop and customer) did; then whether it applies; then, per
    -- customer, the last applied values, written once.
    WITH change AS (
        SELECT x.n, x.shop, x.customer_shopify_id AS shopify_id,
               x.kind = 'customer_delete' AS is_delete,
               x.customer_email AS email, x.customer_name AS name, x.customer_phone AS phone,
               x.customer_tags AS tags, x.customer_has_tags AS has_tags,
               x.customer_created_at AS created_at, x.customer_updated_at AS updated_at,
               x.customer_email_marketing_state AS email_state,
               x.customer_email_marketing_opt_in_level AS email_level,
               x.customer_email_marketing_updated_at AS email_at,
               x.customer_sms_marketing_state AS sms_state,
               x.customer_sms_marketing_opt_in_level AS sms_level,
               x.customer_sms_marketing_updated_at AS sms_at
        FROM ingest_changes(p_changes, p_only) AS x
        WHERE x.customer_shopify_id IS NOT NULL
          AND x.kind IN ('order', 'customer', 'customer_delete')
    ), seen AS (
        SELECT c.*, s.id AS stored_id, s.shopify_updated_at AS stored_at,
               s.deleted_at IS NOT NULL AS stored_deleted,
               s.redacted_at IS NOT NULL AS stored_redacted,
               s.email_marketing_consent_updated_at AS stored_email_at,
               s.sms_marketing_consent_updated_at AS stored_sms_at,
               count(*) OVER before AS earlier,
               coalesce(bool_or(c.is_delete) OVER before, false) AS deleted_earlier,
               max(c.updated_at) FILTER (WHERE NOT c.is_delete) OVER before AS at_earlier,
               max(c.email_at) FILTER (WHERE c.email_state IS NOT NULL) OVER before
                   AS email_at_earlier,
               max(c.sms_at) FILTER (WHERE c.sms_state IS NOT NULL) OVER before
                   AS sms_at_earlier
        FROM change AS c
        LEFT JOIN customers AS s
            ON s.shop_id = ANY(v_shops) AND s.shop_id = c.shop AND s.shopify_id = c.shopify_id
        WINDOW before AS (PARTITION BY c.shop, c.shopify_id ORDER BY c.n
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ), judged AS (
        SELECT v.*,
               CASE WHEN v.is_delete THEN NOT (v.stored_deleted OR v.deleted_earlier)
                    ELSE (v.stored_id IS NULL AND v.earlier = 0)
                         OR (NOT (v.stored_deleted OR v.deleted_earlier OR v.stored_redacted)
                             AND (v.updated_at >= coalesce(greatest(v.stored_at, v.at_earlier),
                                                           '-infinity')) IS TRUE)
               END AS applied,
               -- The consent rule: a time not older than the consent's so far
               -- (none yet: any time), never onto a deleted or redacted customer.
               v.email_state IS NOT NULL
               AND NOT (v.stored_deleted OR v.deleted_earlier OR v.stored_redacted)
               AND (greatest(v.stored_email_at, v.email_at_earlier) IS NULL
                    OR v.email_at >= greatest(v.stored_email_at, v.email_at_earlier)) AS email_applied,
               v.sms_state IS NOT NULL
               AND NOT (v.stored_deleted OR v.deleted_earlier OR v.stored_redacted)
               AND (greatest(v.stored_sms_at, v.sms_at_earlier) IS NULL
                    OR v.sms_at >= greatest(v.stored_sms_at, v.sms_at_earlier)) AS sms_applied
        FROM seen AS v
    ), last AS (
        SELECT j.shop, j.shopify_id, (array_agg(j.stored_id))[1] AS stored_id,
               bool_or(j.applied AND j.is_delete) AS deleted,
               max(j.n) FILTER (WHERE j.applied AND NOT j.is_delete) AS upsert_n,
               max(j.n) FILTER (WHERE j.applied AND NOT j.is_delete AND j.has_tags) AS tags_n,
               max(j.n) FILTER (WHERE j.applied AND NOT j.is_delete
                                  AND j.created_at IS NOT NULL) AS created_n,
               max(j.n) FILTER (WHERE j.email_applied) AS email_n,
               max(j.n) FILTER (WHERE j.sms_applied) AS sms_n
        FROM judged AS j
        GROUP BY j.shop, j.shopify_id
    ), final AS (
        SELECT l.shop, l.shopify_id, l.stored_id, l.deleted,
               u.n IS NOT NULL AS upserted, u.email, u.name, u.phone, u.updated_at,
               t.n IS NOT NULL AS tags_given, t.tags, cr.created_at,
               em.n IS NOT NULL AS email_given, em.email_state, em.email_level, em.email_at,
               sm.n IS NOT NULL AS sms_given, sm.sms_state, sm.sms_level, sm.sms_at
        FROM last AS l
        LEFT JOIN judged AS u ON u.n = l.upsert_n
        LEFT JOIN judged AS t ON t.n = l.tags_n
        LEFT JOIN judged AS cr ON cr.n = l.created_n
        LEFT JOIN judged AS em ON em.n = l.email_n
        LEFT JOIN judged AS sm ON sm.n = l.sms_n
    ), inserted AS (
        INSERT INTO customers (shop_id, shopify_id, email, name, phone, tags,
                               shopify_created_at, shopify_updated_at, deleted_at,
                               order_count, total_spent,
                               email_marketing_state, email_marketing_opt_in_level,
                               email_marketing_consent_updated_at,
                               sms_marketing_state, sms_marketing_opt_in_level,
                               sms_marketing_consent_updated_at)
        SELECT f.shop, f.shopify_id, f.email, f.name, f.phone, f.tags,
               f.created_at, f.updated_at, CASE WHEN f.deleted THEN v_now END,
               0, 0,
               f.email_state, f.email_level, f.email_at, f.sms_state, f.sms_level, f.sms_at
        FROM final AS f
        WHERE f.stored_id IS NULL
        ORDER BY f.shop, f.shopify_id
    ), updated AS (
        UPDATE customers AS s
        SET email = CASE WHEN f.upserted THEN f.email ELSE s.email END,
            name = CASE WHEN f.upserted THEN f.name ELSE s.name END,
            phone = CASE WHEN f.upserted THEN f.phone ELSE s.phone END,
            tags = CASE WHEN f.tags_given THEN f.tags ELSE s.tags END,
            shopify_created_at = coalesce(f.created_at, s.shopify_created_at),
            shopify_updated_at = CASE WHEN f.upserted THEN f.updated_at
                                      ELSE s.shopify_updated_at END,
            deleted_at = CASE WHEN f.deleted THEN v_now ELSE s.deleted_at END,
            email_marketing_state = CASE WHEN f.email_given THEN f.email_state
                                         ELSE s.email_marketing_state END,
            email_marketing_opt_in_level = CASE WHEN f.email_given THEN f.email_level
                                                ELSE s.email_marketing_opt_in_level END,
            email_marketing_consent_updated_at =
                CASE WHEN f.email_given THEN f.email_at
                     ELSE s.email_marketing_consent_updated_at END,
            sms_marketing_state = CASE WHEN f.sms_given THEN f.sms_state
                                       ELSE s.sms_marketing_state END,
            sms_marketing_opt_in_level = CASE WHEN f.sms_given THEN f.sms_level
                                              ELSE s.sms_marketing_opt_in_level END,
            sms_marketing_consent_updated_at =
                CASE WHEN f.sms_given THEN f.sms_at
                     ELSE s.sms_marketing_consent_updated_at END
        FROM final AS f
        WHERE s.shop_id = ANY(v_shops) AND s.shop_id = f.shop AND s.id = f.stored_id
          AND (f.deleted
               OR (f.upserted AND (s.email, s.name, s.phone, s.shopify_updated_at)
                                  IS DISTINCT FROM (f.email, f.name, f.phone, f.updated_at))
               OR (f.tags_given AND s.tags IS DISTINCT FROM f.tags)
               OR (f.created_at IS NOT NULL
                   AND s.shopify_created_at IS DISTINCT FROM f.created_at)
               OR (f.email_given
                   AND (s.email_marketing_state, s.email_marketing_opt_in_level,
                        s.email_marketing_consent_updated_at)
                       IS DISTINCT FROM (f.email_state, f.email_level, f.email_at))
               OR (f.sms_given
                   AND (s.sms_marketing_state, s.sms_marketing_opt_in_level,
                        s.sms_marketing_consent_updated_at)
                       IS DISTINCT FROM (f.sms_state, f.sms_level, f.sms_at)))
    )
    SELECT array_agg(j.n) FILTER (WHERE j.applied) INTO v_customers_applied FROM judged AS j;

    -- Orders, the same way; their customers exist now.
    WITH change AS (
        SELECT x.n, x.shop, x.order_shopify_id AS shopify_id, x.kind = 'order_delete' AS is_delete,
               cu.id AS customer_id, x.total_price, x.current_total_price, x.currency,
               x.financial_status, x.fulfillment_status, x.cancelled_at, x.name,
               CASE WHEN cu.redacted_at IS NULL THEN x.email END AS email,
               x.test, x.line_items, x.created_at, x.updated_at
        FROM ingest_changes(p_changes, p_only) AS x
        LEFT JOIN customers AS cu
            ON x.kind = 'order' AND cu.shop_id = ANY(v_shops) AND cu.shop_id = x.shop
           AND cu.shopify_id = x.customer_shopify_id
        WHERE x.order_shopify_id IS NOT NULL AND x.kind IN ('order', 'order_delete')
    ), seen AS (
        SELECT c.*, s.id AS stored_id, s.shopify_updated_at AS stored_at,
               s.deleted_at IS NOT NULL AS stored_deleted,
               count(*) OVER before AS earlier,
               coalesce(bool_or(c.is_delete) OVER before, false) AS deleted_earlier,
               max(c.updated_at) FILTER (WHERE NOT c.is_delete) OVER before AS at_earlier
        FROM change AS c
        LEFT JOIN orders AS s
            ON s.shop_id = ANY(v_shops) AND s.shop_id = c.shop AND s.shopify_id = c.shopify_id
        WINDOW before AS (PARTITION BY c.shop, c.shopify_id ORDER BY c.n
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ), judged AS (
        SELECT v.*,
               CASE WHEN v.is_delete THEN NOT (v.stored_deleted OR v.deleted_earlier)
                    ELSE (v.stored_id IS NULL AND v.earlier = 0)
                         OR (NOT (v.stored_deleted OR v.deleted_earlier)
                             AND (v.updated_at >= coalesce(greatest(v.stored_at, v.at_earlier),
                                                           '-infinity')) IS TRUE)
               END AS applied
        FROM seen AS v
    ), last AS (
        SELECT j.shop, j.shopify_id, (array_agg(j.stored_id))[1] AS stored_id,
               bool_or(j.applied AND j.is_delete) AS deleted,
               max(j.n) FILTER (WHERE j.applied AND NOT j.is_delete) AS upsert_n
        FROM judged AS j
        GROUP BY j.shop, j.shopify_id
    ), final AS (
        SELECT l.shop, l.shopify_id, l.stored_id, l.deleted, u.n IS NOT NULL AS upserted,
               u.customer_id, u.total_price, u.current_total_price, u.currency,
               u.financial_status, u.fulfillment_status, u.cancelled_at, u.name, u.email,
               u.test, u.line_items, u.created_at, u.updated_at,
               s.customer_id AS stored_customer_id,
               -- What the stored row gives the totals (NULL: not stored).
               (s.customer_id, s.deleted_at IS NULL AND s.cancelled_at IS NULL,
                coalesce(s.current_total_price, s.total_price), s.shopify_created_at)::text
                   AS stored_counted
        FROM last AS l
        LEFT JOIN judged AS u ON u.n = l.upsert_n
        LEFT JOIN orders AS s
            ON s.shop_id = ANY(v_shops) AND s.shop_id = l.shop AND s.id = l.stored_id
    ), inserted AS (
        INSERT INTO orders AS o (shop_id, shopify_id, customer_id, total_price,
                                 current_total_price, currency, financial_status,
                                 fulfillment_status, cancelled_at, name, email, test,
                                 line_items, shopify_created_at, shopify_updated_at, deleted_at)
        SELECT f.shop, f.shopify_id, f.customer_id, f.total_price, f.current_total_price,
               f.currency, f.financial_status, f.fulfillment_status, f.cancelled_at, f.name,
               f.email, f.test, f.line_items, f.created_at, f.updated_at,
               CASE WHEN f.deleted THEN v_now END
        FROM final AS f
        WHERE f.stored_id IS NULL
        ORDER BY f.shop, f.shopify_id
        RETURNING o.customer_id
    ), updated AS (
        UPDATE orders AS s
        SET customer_id = CASE WHEN f.upserted THEN f.customer_id ELSE s.customer_id END,
            total_price = CASE WHEN f.upserted THEN f.total_price ELSE s.total_price END,
            current_total_price = CASE WHEN f.upserted THEN f.current_total_price
                                       ELSE s.current_total_price END,
            currency = CASE WHEN f.upserted THEN f.currency ELSE s.currency END,
            financial_status = CASE WHEN f.upserted THEN f.financial_status
                                    ELSE s.financial_status END,
            fulfillment_status = CASE WHEN f.upserted THEN f.fulfillment_status
                                      ELSE s.fulfillment_status END,
            cancelled_at = CASE WHEN f.upserted THEN f.cancelled_at ELSE s.cancelled_at END,
            name = CASE WHEN f.upserted THEN f.name ELSE s.name END,
            email = CASE WHEN f.upserted THEN f.email ELSE s.email END,
            test = CASE WHEN f.upserted THEN f.test ELSE s.test END,
            line_items = CASE WHEN f.upserted THEN f.line_items ELSE s.line_items END,
            shopify_created_at = CASE WHEN f.upserted THEN f.created_at
                                      ELSE s.shopify_created_at END,
            shopify_updated_at = CASE WHEN f.upserted THEN f.updated_at
                                      ELSE s.shopify_updated_at END,
            deleted_at = CASE WHEN f.deleted THEN v_now ELSE s.deleted_at END
        FROM final AS f
        WHERE s.shop_id = ANY(v_shops) AND s.shop_id = f.shop AND s.id = f.stored_id
          AND (f.deleted
               OR (f.upserted
                   AND (s.customer_id, s.total_price, s.current_total_price, s.currency,
                        s.financial_status, s.fulfillment_status, s.cancelled_at, s.name,
                        s.email, s.test, s.shopify_created_at, s.shopify_updated_at)
                       IS DISTINCT FROM
                       (f.customer_id, f.total_price, f.current_total_price, f.currency,
                        f.financial_status, f.fulfillment_status, f.cancelled_at, f.name,
                        f.email, f.test, f.created_at, f.updated_at)
                   OR s.line_items IS DISTINCT FROM f.line_items))
        -- The columns, not their text: Citus refuses a cast to text (not
        -- immutable for a timestamptz) in RETURNING.
        RETURNING f.stored_customer_id, s.customer_id, f.stored_counted,
                  s.deleted_at IS NULL AND s.cancelled_at IS NULL AS live,
                  coalesce(s.current_total_price, s.total_price) AS amount,
                  s.shopify_created_at
    )
    SELECT (SELECT array_agg(j.n) FILTER (WHERE j.applied) FROM judged AS j),
           ARRAY(SELECT i.customer_id FROM inserted AS i WHERE i.customer_id IS NOT NULL
                 UNION
                 SELECT unnest(ARRAY[u.stored_customer_id, u.customer_id]) FROM updated AS u
                 WHERE (u.customer_id, u.live, u.amount, u.shopify_created_at)::text
                       IS DISTINCT FROM u.stored_counted)
    INTO v_orders_applied, v_due;

    v_due := array_remove(v_due, NULL);
    IF cardinality(v_due) > 0 THEN
        PERFORM ingest_recompute_totals(v_shops, v_due);
    END IF;
    RETURN QUERY
        SELECT e.n,
               CASE WHEN e.value ->> 'kind' IN ('order', 'order_delete')
                    THEN e.n = ANY(v_orders_applied)
                    ELSE e.n = ANY(v_customers_applied) END IS TRUE
        FROM jsonb_array_elements(p_changes) WITH ORDINALITY AS e(value, n)
        WHERE p_only IS NULL OR e.n = ANY(p_only)
        ORDER BY e.n;
END
$$;
