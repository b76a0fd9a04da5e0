-- Takes the exclusive advisory locks of a shop's orders or customers (p_kind
-- 'order' or 'customer', p_ids their Shopify ids), waiting for each, where
-- the shop's rows live (ingest_lock_keys_at).
-- Guarantees: ingest_lock_keys' order (NULL ids are skipped), so callers that
-- lock the shop, then orders, then customers never deadlock.
CREATE OR REPLACE FUNCTION ingest_lock_rows(p_shop text, p_kind text, p_ids text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ingest_lock_keys_at(ARRAY[p_shop],
        ARRAY(SELECT ingest_lock_key(p_shop, p_kind, id) FROM unnest(p_ids) AS id), false, true);
END
$$;
