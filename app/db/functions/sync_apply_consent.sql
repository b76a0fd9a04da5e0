-- Writes one channel's marketing consent ('email' or 'sms') of a synced
-- customer; the caller holds the customer's lock.
-- Guarantees: the consent webhooks' rule: written only when the stored
-- consent has no time or is not newer, never onto a deleted or redacted
-- customer; no state (NULL) leaves the stored consent as it is.
CREATE OR REPLACE FUNCTION sync_apply_consent(
    p_customer_id uuid, p_state text, p_opt_in_level text, p_updated_at timestamptz,
    p_channel text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_state IS NULL THEN
        RETURN;
    END IF;
    IF p_channel = 'email' THEN
        UPDATE customers
        SET email_marketing_state = p_state, email_marketing_opt_in_level = p_opt_in_level,
            email_marketing_consent_updated_at = p_updated_at
        WHERE id = p_customer_id AND deleted_at IS NULL AND redacted_at IS NULL
          AND (email_marketing_consent_updated_at IS NULL
               OR p_updated_at >= email_marketing_consent_updated_at);
    ELSE
        UPDATE customers
        SET sms_marketing_state = p_state, sms_marketing_opt_in_level = p_opt_in_level,
            sms_marketing_consent_updated_at = p_updated_at
        WHERE id = p_customer_id AND deleted_at IS NULL AND redacted_at IS NULL
          AND (sms_marketing_consent_updated_at IS NULL
               OR p_updated_at >= sms_marketing_consent_updated_at);
    END IF;
END
$$;
