-- Whether the shop's customer has been redacted (customers/redact).
-- Guarantees: false for an unknown customer or a NULL id.
CREATE OR REPLACE FUNCTION ingest_customer_redacted(p_shop text, p_shopify_id text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT FROM customers
        WHERE shop_id = p_shop AND shopify_id = p_shopify_id AND redacted_at IS NOT NULL
    )
$$;
