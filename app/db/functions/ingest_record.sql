-- Writes a delivery's ledger row (webhook_events): a new one, or (p_ledger_id
-- given: a replay) the stored one, with p_status.
-- Guarantees: a webhook id is recorded once per shop; returns NULLs for one
-- recorded before (a duplicate: the caller writes nothing else), otherwise
-- the row's id and its payload as stored (parsed by PostgreSQL). The shop is
-- known afterwards; shops are inserted, never updated here, so deliveries of
-- one shop never wait for each other on its row.
CREATE OR REPLACE FUNCTION ingest_record(
    p_ledger_id uuid, p_shop text, p_webhook_id text, p_event_id text, p_topic text,
    p_api_version text, p_triggered_at timestamptz, p_payload jsonb,
    p_status text, p_last_error text,
    OUT ledger_id uuid, OUT payload jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_ledger_id IS NULL THEN
        INSERT INTO webhook_events AS e (shop_id, webhook_id, event_id, topic, api_version,
                                         triggered_at, payload, status, attempts, last_error,
                                         processed_at)
        VALUES (p_shop, p_webhook_id, p_event_id, p_topic, p_api_version,
                p_triggered_at, p_payload, p_status, 1, p_last_error, now())
        ON CONFLICT (shop_id, webhook_id) DO NOTHING
        RETURNING e.id, e.payload INTO ledger_id, payload;
    ELSE
        UPDATE webhook_events AS e
        SET status = p_status, attempts = coalesce(e.attempts, 0) + 1,
            last_error = p_last_error, processed_at = now()
        WHERE e.id = p_ledger_id
        RETURNING e.id, e.payload INTO ledger_id, payload;
    END IF;
    IF ledger_id IS NOT NULL THEN
        INSERT INTO shops (shop_id, first_seen_at) VALUES (p_shop, now())
        ON CONFLICT (shop_id) DO NOTHING;
    END IF;
END
$$;
