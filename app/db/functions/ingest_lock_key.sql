-- The advisory lock key of a shop (kind 'shop', id ''), an order or a customer
-- (kind 'order' or 'customer', its Shopify id).
-- Guarantees: one key per (shop, kind, id), the same in every session and
-- function, so every writer of a row takes the same lock; NULL when the id is
-- NULL (ingest_lock_keys skips it: no lock).
CREATE OR REPLACE FUNCTION ingest_lock_key(p_shop text, p_kind text, p_id text)
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashtextextended(p_shop || '/' || p_kind || '/' || p_id, 0)
$$;
