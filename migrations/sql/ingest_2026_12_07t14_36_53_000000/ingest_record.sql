-- Writes one delivery's ledger row (webhook_events): a new one, or (p_ledger_id
-- given: a replay) the stored one, with p_status; for the topics recorded from
-- Python (app/webhooks/ledger.py).
-- Guarantees: ingest_record_deliveries' rules, which it applies (one source
-- for both): a webhook id is recorded once per shop; returns NULLs for one
-- recorded before (a duplicate: the caller writes nothing else), otherwise
-- the row's id and its payload as stored. The shop is known afterwards.
CREATE OR REPLACE FUNCTION ingest_record(
    p_ledger_id uuid, p_shop text, p_webhook_id text, p_event_id text, p_topic text,
    p_api_version text, p_triggered_at timestamptz, p_payload jsonb,
    p_status text, p_last_error text,
    OUT ledger_id uuid, OUT payload jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT r.ledger_id INTO ledger_id
    FROM ingest_record_deliveries(
        jsonb_build_array(jsonb_build_object(
            'ledger_id', p_ledger_id, 'shop', p_shop, 'webhook_id', p_webhook_id,
            'event_id', p_event_id, 'topic', p_topic, 'api_version', p_api_version,
            'triggered_at', p_triggered_at, 'payload', p_payload)),
        NULL, p_status, p_last_error) AS r;
    IF ledger_id IS NOT NULL THEN
        SELECT e.payload INTO payload
        FROM webhook_events AS e WHERE e.shop_id = p_shop AND e.id = ledger_id;
    END IF;
END
$$;
