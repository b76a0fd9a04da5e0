-- Writes the ledger rows (webhook_events) of a group of deliveries with
-- p_status, those numbered in p_only (NULL: all): p_deliveries is a JSON array
-- of objects with the ledger's fields (GroupItem, app/webhooks/grouping.py:
-- ledger_id, shop, webhook_id, event_id, topic, api_version, triggered_at,
-- payload). A delivery with ledger_id is a replay: its stored row is updated
-- (status, attempts, last_error, processed_at), never its payload; the others
-- are live: a new row each.
-- Guarantees: the shops not known yet are created first, in sorted order,
-- and the new ledger rows inserted in key order, so two transactions
-- recording the same new shops or webhook ids queue instead of deadlocking;
-- shops are inserted, never updated here, so deliveries of one shop never
-- wait for each other on its row. A webhook id is recorded once per shop:
-- the first delivery carrying it (in array order) gets the row, a later one
-- or one recorded before is a duplicate (ledger_id NULL: the caller writes
-- nothing else for it). Returns one row per delivery: its ledger row's id.
-- Every statement on a table filters by the group's shops (shop_id), so that
-- on Citus a group of one shop goes to that shop's shard.
CREATE OR REPLACE FUNCTION ingest_record_deliveries(
    p_deliveries jsonb, p_only bigint[], p_status text, p_last_error text)
RETURNS TABLE (n bigint, ledger_id uuid)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_shops text[];
BEGIN
    PERFORM ingest_plan_mode();
    v_shops := ARRAY(
        SELECT DISTINCT e.value ->> 'shop'
        FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS e(value, n)
        WHERE p_only IS NULL OR e.n = ANY(p_only));
    INSERT INTO shops (shop_id, first_seen_at)
    SELECT n.shop, now()
    FROM unnest(v_shops) AS n(shop)
    WHERE NOT EXISTS (SELECT FROM shops AS s WHERE s.shop_id = ANY(v_shops) AND s.shop_id = n.shop)
    ORDER BY n.shop
    ON CONFLICT (shop_id) DO NOTHING;
    RETURN QUERY
    WITH delivery AS (
        SELECT e.n, t.*
        FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS e(value, n),
             jsonb_to_record(e.value) AS t(
                 ledger_id uuid, shop text, webhook_id text, event_id text, topic text,
                 api_version text, triggered_at timestamptz, payload jsonb)
        WHERE p_only IS NULL OR e.n = ANY(p_only)
    ), inserted AS (
        INSERT INTO webhook_events AS w (shop_id, webhook_id, event_id, topic, api_version,
                                         triggered_at, payload, status, attempts, last_error,
                                         processed_at)
        SELECT d.shop, d.webhook_id, d.event_id, d.topic, d.api_version, d.triggered_at,
               d.payload, p_status, 1, p_last_error, now()
        FROM delivery AS d
        WHERE d.ledger_id IS NULL
        ORDER BY d.shop, d.webhook_id, d.n
        ON CONFLICT (shop_id, webhook_id) DO NOTHING
        RETURNING w.id, w.shop_id, w.webhook_id
    ), replayed AS (
        UPDATE webhook_events AS w
        SET status = p_status, attempts = coalesce(w.attempts, 0) + 1,
            last_error = p_last_error, processed_at = now()
        FROM delivery AS d
        WHERE d.ledger_id IS NOT NULL AND w.shop_id = ANY(v_shops) AND w.shop_id = d.shop
          AND w.id = d.ledger_id
        RETURNING w.id
    ), first AS (
        SELECT d.shop, d.webhook_id, min(d.n) AS n
        FROM delivery AS d WHERE d.ledger_id IS NULL
        GROUP BY d.shop, d.webhook_id
    )
    SELECT d.n, coalesce(i.id, r.id)
    FROM delivery AS d
    LEFT JOIN first AS f ON f.n = d.n
    LEFT JOIN inserted AS i ON i.shop_id = f.shop AND i.webhook_id = f.webhook_id
    LEFT JOIN replayed AS r ON r.id = d.ledger_id
    ORDER BY d.n;
END
$$;
