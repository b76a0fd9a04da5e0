"""sync_apply_customers writing marketing consent, written by hand.

The Admin API sync now reads each customer's consent (defaultEmailAddress and
defaultPhoneNumber: marketingState, marketingOptInLevel, marketingUpdatedAt)
into the columns the consent webhooks fill (customers_email_marketing_consent/
update, customers_marketing_consent/update), by the same rule: a consent is
written when the stored one has no time or is not newer, and never onto a
deleted, merged or redacted customer. A customer without an email address
(or phone number) leaves that channel's stored consent as it is.

Tags, consent, purchasing summary and merge deliveries themselves run plain
statements from Python (app/webhooks/handlers/customer_events.py).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-30T15:18:55:000000"
VERSION = "1.38.0"
DESCRIPTION = "sync_apply_customers writes marketing consent"

FUNCTIONS = [
    """
-- Writes one channel's consent ('email' or 'sms') of a synced customer; the
-- caller holds the customer's lock. Returns nothing; stale consent is skipped.
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
$$""",
    """
-- Customers fetched from the Admin API: p_customers is a JSON array of
-- (shopify_id, email, name, phone, tags (array), created_at, updated_at,
-- email_marketing_state, email_marketing_opt_in_level, email_marketing_updated_at,
-- sms_marketing_state, sms_marketing_opt_in_level, sms_marketing_updated_at).
-- Each goes through ingest_upsert_customer, as a webhook's customer does; the
-- consent follows the consent webhooks' rule (sync_apply_consent).
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
$$""",
]


# Piccolo's raw() treats "{}" as a placeholder: the SQL above has no braces.


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def create_functions():
    for statement in FUNCTIONS:
        await RawTable.raw(statement)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="ingest", description=DESCRIPTION)
    manager.add_raw(create_functions)
    return manager
