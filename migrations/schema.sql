-- The schema a fresh database gets from the migrations: pg_dump --schema-only
-- of PostgreSQL 15, normalised (app/db/schema_dump.py). Generated: do not
-- edit. Written again by `python -m app db dump-schema` with DATABASE_URL set
-- to a PostgreSQL 15 server (it migrates a scratch database there).

CREATE FUNCTION public.customer_events_epoch(p_shop text) RETURNS integer
    LANGUAGE plpgsql
    AS $$ app/db/functions/customer_events_epoch.sql $$;

CREATE FUNCTION public.customer_events_first_order() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ app/db/functions/customer_events_first_order.sql $$;

CREATE FUNCTION public.customer_events_horizons(OUT node_group integer, OUT horizon bigint) RETURNS SETOF record
    LANGUAGE plpgsql
    AS $$ app/db/functions/customer_events_horizons.sql $$;

CREATE FUNCTION public.customer_events_node_group() RETURNS integer
    LANGUAGE plpgsql STABLE
    AS $$ app/db/functions/customer_events_node_group.sql $$;

CREATE FUNCTION public.customer_events_segment() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ app/db/functions/customer_events_segment.sql $$;

CREATE FUNCTION public.customer_events_shard(p_table text, p_shop text) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$ app/db/functions/customer_events_shard.sql $$;

CREATE FUNCTION public.customer_events_tags() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ app/db/functions/customer_events_tags.sql $$;

CREATE FUNCTION public.ingest_apply_changes(p_changes jsonb, p_only bigint[]) RETURNS TABLE(n bigint, applied boolean)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$ app/db/functions/ingest_apply_changes.sql $$;

CREATE FUNCTION public.ingest_changes(p_changes jsonb, p_only bigint[]) RETURNS TABLE(n bigint, kind text, shop text, order_shopify_id text, total_price numeric, current_total_price numeric, currency text, financial_status text, fulfillment_status text, cancelled_at timestamp with time zone, name text, email text, test boolean, line_items jsonb, created_at timestamp with time zone, updated_at timestamp with time zone, customer_shopify_id text, customer_email text, customer_name text, customer_phone text, customer_tags text[], customer_has_tags boolean, customer_created_at timestamp with time zone, customer_updated_at timestamp with time zone, customer_email_marketing_state text, customer_email_marketing_opt_in_level text, customer_email_marketing_updated_at timestamp with time zone, customer_sms_marketing_state text, customer_sms_marketing_opt_in_level text, customer_sms_marketing_updated_at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$ app/db/functions/ingest_changes.sql $$;

CREATE FUNCTION public.ingest_deliveries(p_lock_timeout_ms integer, p_wait boolean, p_deliveries jsonb) RETURNS TABLE(item bigint, ledger_id uuid, applied boolean, redacted boolean, busy boolean)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$ app/db/functions/ingest_deliveries.sql $$;

CREATE FUNCTION public.ingest_lock_key(p_shop text, p_kind text, p_id text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ app/db/functions/ingest_lock_key.sql $$;

CREATE FUNCTION public.ingest_lock_keys(p_keys bigint[], p_shared boolean, p_wait boolean) RETURNS bigint[]
    LANGUAGE plpgsql
    AS $$ app/db/functions/ingest_lock_keys.sql $$;

CREATE FUNCTION public.ingest_lock_keys_at(p_shops text[], p_keys bigint[], p_shared boolean, p_wait boolean) RETURNS bigint[]
    LANGUAGE plpgsql
    AS $$ app/db/functions/ingest_lock_keys_at.sql $$;

CREATE FUNCTION public.ingest_lock_rows(p_shop text, p_kind text, p_ids text[]) RETURNS void
    LANGUAGE plpgsql
    AS $$ app/db/functions/ingest_lock_rows.sql $$;

CREATE FUNCTION public.ingest_lock_shop(p_shop text, p_exclusive boolean, p_lock_timeout_ms integer) RETURNS void
    LANGUAGE plpgsql
    AS $$ app/db/functions/ingest_lock_shop.sql $$;

CREATE FUNCTION public.ingest_plan_mode() RETURNS void
    LANGUAGE plpgsql
    AS $$ app/db/functions/ingest_plan_mode.sql $$;

CREATE FUNCTION public.ingest_recompute_totals(p_shops text[], p_customer_ids uuid[]) RETURNS void
    LANGUAGE plpgsql
    AS $$ app/db/functions/ingest_recompute_totals.sql $$;

CREATE FUNCTION public.ingest_record(p_ledger_id uuid, p_shop text, p_webhook_id text, p_event_id text, p_topic text, p_api_version text, p_triggered_at timestamp with time zone, p_payload jsonb, p_status text, p_last_error text, OUT ledger_id uuid, OUT payload jsonb) RETURNS record
    LANGUAGE plpgsql
    AS $$ app/db/functions/ingest_record.sql $$;

CREATE FUNCTION public.ingest_record_deliveries(p_deliveries jsonb, p_only bigint[], p_status text, p_last_error text) RETURNS TABLE(n bigint, ledger_id uuid)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$ app/db/functions/ingest_record_deliveries.sql $$;

CREATE FUNCTION public.ingest_shop_worker(p_shop text) RETURNS void
    LANGUAGE plpgsql
    AS $$ app/db/functions/ingest_shop_worker.sql $$;

CREATE FUNCTION public.scores_apply(p_shop text, p_ids uuid[], p_stored_r integer[], p_stored_f integer[], p_stored_m integer[], p_stored_segments text[], p_rfm_r integer[], p_rfm_f integer[], p_rfm_m integer[], p_segments text[], OUT written integer, OUT segment_changes integer, OUT busy integer) RETURNS record
    LANGUAGE plpgsql
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    SET lock_timeout TO '20ms'
    AS $$ app/db/functions/scores_apply.sql $$;

CREATE FUNCTION public.scores_compute(p_shop text, p_new_customer_days integer, OUT scored integer, OUT ids uuid[], OUT stored_r integer[], OUT stored_f integer[], OUT stored_m integer[], OUT stored_segments text[], OUT rfm_r integer[], OUT rfm_f integer[], OUT rfm_m integer[], OUT segments text[]) RETURNS record
    LANGUAGE plpgsql
    SET work_mem TO '64MB'
    SET jit TO 'off'
    SET enable_nestloop TO 'off'
    AS $$ app/db/functions/scores_compute.sql $$;

CREATE FUNCTION public.scores_write(p_shop text, p_ids uuid[], p_stored_r integer[], p_stored_f integer[], p_stored_m integer[], p_stored_segments text[], p_rfm_r integer[], p_rfm_f integer[], p_rfm_m integer[], p_segments text[], OUT written integer, OUT segment_changes integer) RETURNS record
    LANGUAGE plpgsql
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    AS $$ app/db/functions/scores_write.sql $$;

CREATE FUNCTION public.sync_apply_customers(p_lock_timeout_ms integer, p_shop text, p_changes jsonb, OUT applied integer, OUT stale integer) RETURNS record
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$ app/db/functions/sync_apply_customers.sql $$;

CREATE FUNCTION public.sync_apply_deletions(p_lock_timeout_ms integer, p_shop text, p_resource text, p_shopify_ids text[], OUT deleted integer) RETURNS integer
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$ app/db/functions/sync_apply_deletions.sql $$;

CREATE FUNCTION public.sync_apply_orders(p_lock_timeout_ms integer, p_shop text, p_changes jsonb, OUT applied integer, OUT stale integer) RETURNS record
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$ app/db/functions/sync_apply_orders.sql $$;

CREATE TABLE public.automations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    name character varying(255) DEFAULT NULL::character varying NOT NULL,
    trigger_type character varying(32) DEFAULT NULL::character varying NOT NULL,
    trigger_config jsonb,
    delay_value integer,
    delay_unit character varying(50) DEFAULT NULL::character varying,
    action_type character varying(32) DEFAULT NULL::character varying NOT NULL,
    action_config jsonb,
    email_template_id character varying(255) DEFAULT NULL::character varying,
    enabled boolean DEFAULT true NOT NULL,
    last_run_at timestamp with time zone,
    CONSTRAINT automations_action_type_check CHECK (((action_type)::text = ANY ((ARRAY['send_email'::character varying, 'add_tag'::character varying, 'remove_tag'::character varying])::text[]))),
    CONSTRAINT automations_trigger_type_check CHECK (((trigger_type)::text = ANY ((ARRAY['first_order'::character varying, 'segment_change'::character varying, 'days_since_order'::character varying, 'tag_added'::character varying, 'cart_abandoned'::character varying])::text[])))
);

CREATE TABLE public.customer_event_relays (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    transaction_id bigint DEFAULT 0 NOT NULL,
    event_id bigint DEFAULT 0 NOT NULL,
    relayed bigint DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    node_group integer DEFAULT 0 NOT NULL
);

CREATE TABLE public.customer_events (
    id bigint NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    transaction_id bigint NOT NULL,
    customer_shopify_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    kind character varying(32) DEFAULT NULL::character varying NOT NULL,
    occurred_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    data jsonb NOT NULL,
    node_group integer DEFAULT 0 NOT NULL,
    epoch integer DEFAULT 0 NOT NULL,
    CONSTRAINT customer_events_kind_check CHECK (((kind)::text = ANY ((ARRAY['first_order'::character varying, 'segment_change'::character varying, 'tag_added'::character varying])::text[])))
);

CREATE SEQUENCE public.customer_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.customer_events_id_seq OWNED BY public.customer_events.id;

CREATE TABLE public.customer_tag_events (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    customer_shopify_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    tag text NOT NULL,
    added boolean NOT NULL,
    occurred_at timestamp with time zone NOT NULL
);

CREATE TABLE public.customers (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    shopify_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    name character varying(255) DEFAULT NULL::character varying,
    email character varying(255) DEFAULT NULL::character varying,
    phone character varying(50) DEFAULT NULL::character varying,
    rfm_r integer,
    rfm_f integer,
    rfm_m integer,
    segment character varying(32) DEFAULT NULL::character varying,
    lifecycle_stage character varying(100) DEFAULT NULL::character varying,
    tags text[],
    total_spent numeric(19,4) DEFAULT NULL::numeric,
    order_count integer DEFAULT 0,
    avg_order_value numeric(19,4) DEFAULT NULL::numeric,
    first_order_at timestamp with time zone,
    last_order_at timestamp with time zone,
    shopify_created_at timestamp with time zone,
    shopify_updated_at timestamp with time zone,
    deleted_at timestamp with time zone,
    redacted_at timestamp with time zone,
    email_marketing_consent_updated_at timestamp with time zone,
    email_marketing_opt_in_level character varying(32) DEFAULT NULL::character varying,
    email_marketing_state character varying(32) DEFAULT NULL::character varying,
    merged_at timestamp with time zone,
    merged_into character varying(255) DEFAULT NULL::character varying,
    shopify_amount_spent numeric(19,4) DEFAULT NULL::numeric,
    shopify_order_count integer,
    shopify_summary_at timestamp with time zone,
    sms_marketing_consent_updated_at timestamp with time zone,
    sms_marketing_opt_in_level character varying(32) DEFAULT NULL::character varying,
    sms_marketing_state character varying(32) DEFAULT NULL::character varying,
    first_order_announced_at timestamp with time zone,
    CONSTRAINT customers_email_marketing_opt_in_level_check CHECK (((email_marketing_opt_in_level)::text = ANY ((ARRAY['single_opt_in'::character varying, 'confirmed_opt_in'::character varying, 'unknown'::character varying])::text[]))),
    CONSTRAINT customers_email_marketing_state_check CHECK (((email_marketing_state)::text = ANY ((ARRAY['subscribed'::character varying, 'not_subscribed'::character varying, 'pending'::character varying, 'unsubscribed'::character varying, 'redacted'::character varying, 'invalid'::character varying])::text[]))),
    CONSTRAINT customers_segment_check CHECK (((segment)::text = ANY ((ARRAY['champion'::character varying, 'loyal'::character varying, 'potential'::character varying, 'new'::character varying, 'at_risk'::character varying, 'hibernating'::character varying, 'lost'::character varying])::text[]))),
    CONSTRAINT customers_sms_marketing_opt_in_level_check CHECK (((sms_marketing_opt_in_level)::text = ANY ((ARRAY['single_opt_in'::character varying, 'confirmed_opt_in'::character varying, 'unknown'::character varying])::text[]))),
    CONSTRAINT customers_sms_marketing_state_check CHECK (((sms_marketing_state)::text = ANY ((ARRAY['subscribed'::character varying, 'not_subscribed'::character varying, 'pending'::character varying, 'unsubscribed'::character varying, 'redacted'::character varying])::text[])))
)
WITH (fillfactor='85');

CREATE TABLE public.erasures (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    ledger_id uuid NOT NULL,
    kind character varying(16) DEFAULT NULL::character varying NOT NULL,
    customer_shopify_id character varying(255) DEFAULT NULL::character varying,
    customer_id uuid,
    order_ids text[],
    identifiers text[],
    name character varying(255) DEFAULT NULL::character varying,
    phase character varying(16) DEFAULT NULL::character varying NOT NULL,
    ledger_ids uuid[],
    ledger_done integer DEFAULT 0 NOT NULL,
    batches integer DEFAULT 0 NOT NULL,
    last_error text,
    CONSTRAINT erasures_kind_check CHECK (((kind)::text = ANY ((ARRAY['customer'::character varying, 'shop'::character varying])::text[])))
);

CREATE TABLE public.message_logs (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    customer_id uuid,
    automation_id uuid,
    channel character varying(16) DEFAULT NULL::character varying NOT NULL,
    subject character varying(500) DEFAULT NULL::character varying,
    status character varying(16) DEFAULT NULL::character varying NOT NULL,
    sent_at timestamp with time zone,
    opened_at timestamp with time zone,
    clicked_at timestamp with time zone,
    CONSTRAINT message_logs_channel_check CHECK (((channel)::text = ANY ((ARRAY['email'::character varying, 'sms'::character varying])::text[]))),
    CONSTRAINT message_logs_status_check CHECK (((status)::text = ANY ((ARRAY['sent'::character varying, 'opened'::character varying, 'clicked'::character varying, 'converted'::character varying])::text[])))
);

CREATE TABLE public.migration (
    id integer NOT NULL,
    name character varying(200) DEFAULT ''::character varying NOT NULL,
    app_name character varying(200) DEFAULT ''::character varying NOT NULL,
    ran_on timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL
);

CREATE SEQUENCE public.migration_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.migration_id_seq OWNED BY public.migration.id;

CREATE TABLE public.orders (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    shopify_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    customer_id uuid,
    total_price numeric(19,4) DEFAULT NULL::numeric,
    line_items jsonb,
    financial_status character varying(32) DEFAULT NULL::character varying,
    name character varying(255) DEFAULT NULL::character varying,
    email character varying(255) DEFAULT NULL::character varying,
    currency character varying(3) DEFAULT NULL::character varying,
    current_total_price numeric(19,4) DEFAULT NULL::numeric,
    fulfillment_status character varying(32) DEFAULT NULL::character varying,
    test boolean,
    cancelled_at timestamp with time zone,
    shopify_created_at timestamp with time zone,
    shopify_updated_at timestamp with time zone,
    deleted_at timestamp with time zone,
    CONSTRAINT orders_financial_status_check CHECK (((financial_status)::text = ANY ((ARRAY['pending'::character varying, 'authorized'::character varying, 'partially_paid'::character varying, 'paid'::character varying, 'partially_refunded'::character varying, 'refunded'::character varying, 'voided'::character varying, 'expired'::character varying])::text[])))
)
WITH (fillfactor='80');

CREATE TABLE public.piccolo_user (
    id integer NOT NULL,
    username character varying(100) DEFAULT ''::character varying NOT NULL,
    password character varying(255) DEFAULT ''::character varying NOT NULL,
    email character varying(255) DEFAULT ''::character varying NOT NULL,
    active boolean DEFAULT false NOT NULL,
    admin boolean DEFAULT false NOT NULL,
    first_name character varying(255) DEFAULT ''::character varying,
    last_name character varying(255) DEFAULT ''::character varying,
    superuser boolean DEFAULT false NOT NULL,
    last_login timestamp without time zone
);

CREATE SEQUENCE public.piccolo_user_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.piccolo_user_id_seq OWNED BY public.piccolo_user.id;

CREATE TABLE public.sessions (
    id integer NOT NULL,
    token character varying(100) DEFAULT ''::character varying NOT NULL,
    user_id integer DEFAULT 0 NOT NULL,
    expiry_date timestamp without time zone DEFAULT (CURRENT_TIMESTAMP + '01:00:00'::interval) NOT NULL,
    max_expiry_date timestamp without time zone DEFAULT (CURRENT_TIMESTAMP + '7 days'::interval) NOT NULL
);

CREATE SEQUENCE public.sessions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.sessions_id_seq OWNED BY public.sessions.id;

CREATE TABLE public.shop_credentials (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    updated_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    access_token_encrypted text NOT NULL,
    scope text,
    invalid_at timestamp with time zone,
    invalid_reason text,
    expires_at timestamp with time zone,
    generation bigint DEFAULT 0 NOT NULL,
    original_token_encrypted text,
    refresh_claim uuid,
    refresh_claimed_until timestamp with time zone,
    refresh_token_encrypted text,
    refresh_token_expires_at timestamp with time zone
);

CREATE TABLE public.shops (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    shopify_shop_id character varying(255) DEFAULT NULL::character varying,
    first_seen_at timestamp with time zone,
    uninstalled_at timestamp with time zone,
    redacted_at timestamp with time zone,
    events_epoch integer DEFAULT 0 NOT NULL,
    events_node_group integer DEFAULT 0 NOT NULL
);

CREATE TABLE public.subscription_checks (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    checked_at timestamp with time zone NOT NULL,
    missing integer DEFAULT 0 NOT NULL,
    extra integer DEFAULT 0 NOT NULL,
    misdirected integer DEFAULT 0 NOT NULL,
    report jsonb,
    error text
);

CREATE TABLE public.sync_bulk_rows (
    id bigint NOT NULL,
    run_id uuid NOT NULL,
    gid text NOT NULL,
    parent_gid text,
    document jsonb NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL
);

CREATE SEQUENCE public.sync_bulk_rows_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.sync_bulk_rows_id_seq OWNED BY public.sync_bulk_rows.id;

CREATE TABLE public.sync_leases (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    run_id uuid NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

CREATE TABLE public.sync_runs (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    kind character varying(16) DEFAULT NULL::character varying NOT NULL,
    resource character varying(64) DEFAULT NULL::character varying NOT NULL,
    status character varying(16) DEFAULT NULL::character varying NOT NULL,
    started_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    finished_at timestamp with time zone,
    fetched bigint DEFAULT 0 NOT NULL,
    applied bigint DEFAULT 0 NOT NULL,
    stale bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL,
    api_cost bigint DEFAULT 0 NOT NULL,
    throttle_wait_seconds double precision DEFAULT 0.0 NOT NULL,
    last_error text,
    note text,
    error_kind character varying(32) DEFAULT NULL::character varying,
    deleted bigint DEFAULT 0 NOT NULL,
    CONSTRAINT sync_runs_kind_check CHECK (((kind)::text = ANY ((ARRAY['full'::character varying, 'incremental'::character varying])::text[]))),
    CONSTRAINT sync_runs_status_check CHECK (((status)::text = ANY ((ARRAY['running'::character varying, 'succeeded'::character varying, 'failed'::character varying, 'partial'::character varying])::text[])))
);

CREATE TABLE public.sync_state (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    resource character varying(16) DEFAULT NULL::character varying NOT NULL,
    watermark timestamp with time zone,
    full_sync_completed_at timestamp with time zone,
    last_success_at timestamp with time zone,
    last_failure_at timestamp with time zone,
    CONSTRAINT sync_state_resource_check CHECK (((resource)::text = ANY ((ARRAY['customers'::character varying, 'orders'::character varying])::text[])))
);

CREATE TABLE public.webhook_events (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    webhook_id character varying(255) DEFAULT NULL::character varying NOT NULL,
    event_id character varying(255) DEFAULT NULL::character varying,
    topic character varying(255) DEFAULT NULL::character varying NOT NULL,
    api_version character varying(32) DEFAULT NULL::character varying,
    triggered_at timestamp with time zone,
    received_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    payload jsonb,
    status character varying(16) DEFAULT NULL::character varying,
    attempts integer,
    last_error text,
    processed_at timestamp with time zone,
    CONSTRAINT webhook_events_status_check CHECK (((status)::text = ANY ((ARRAY['received'::character varying, 'processed'::character varying, 'failed'::character varying, 'ignored'::character varying, 'erasing'::character varying])::text[])))
);
ALTER TABLE ONLY public.webhook_events ALTER COLUMN payload SET COMPRESSION lz4;

ALTER TABLE ONLY public.customer_events ALTER COLUMN id SET DEFAULT nextval('public.customer_events_id_seq'::regclass);

ALTER TABLE ONLY public.migration ALTER COLUMN id SET DEFAULT nextval('public.migration_id_seq'::regclass);

ALTER TABLE ONLY public.piccolo_user ALTER COLUMN id SET DEFAULT nextval('public.piccolo_user_id_seq'::regclass);

ALTER TABLE ONLY public.sessions ALTER COLUMN id SET DEFAULT nextval('public.sessions_id_seq'::regclass);

ALTER TABLE ONLY public.sync_bulk_rows ALTER COLUMN id SET DEFAULT nextval('public.sync_bulk_rows_id_seq'::regclass);

ALTER TABLE ONLY public.automations
    ADD CONSTRAINT automations_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.customer_event_relays
    ADD CONSTRAINT customer_event_relays_name_node_group_key UNIQUE (name, node_group);

ALTER TABLE ONLY public.customer_event_relays
    ADD CONSTRAINT customer_event_relays_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.customer_events
    ADD CONSTRAINT customer_events_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.customer_tag_events
    ADD CONSTRAINT customer_tag_events_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.customer_tag_events
    ADD CONSTRAINT customer_tag_events_shop_customer_tag_key UNIQUE (shop_id, customer_shopify_id, tag);

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_shop_id_shopify_id_key UNIQUE (shop_id, shopify_id);

ALTER TABLE ONLY public.erasures
    ADD CONSTRAINT erasures_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.message_logs
    ADD CONSTRAINT message_logs_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.migration
    ADD CONSTRAINT migration_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_shop_id_shopify_id_key UNIQUE (shop_id, shopify_id);

ALTER TABLE ONLY public.piccolo_user
    ADD CONSTRAINT piccolo_user_email_key UNIQUE (email);

ALTER TABLE ONLY public.piccolo_user
    ADD CONSTRAINT piccolo_user_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.piccolo_user
    ADD CONSTRAINT piccolo_user_username_key UNIQUE (username);

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.shop_credentials
    ADD CONSTRAINT shop_credentials_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.shop_credentials
    ADD CONSTRAINT shop_credentials_shop_id_key UNIQUE (shop_id);

ALTER TABLE ONLY public.shops
    ADD CONSTRAINT shops_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.shops
    ADD CONSTRAINT shops_shop_id_key UNIQUE (shop_id);

ALTER TABLE ONLY public.subscription_checks
    ADD CONSTRAINT subscription_checks_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.subscription_checks
    ADD CONSTRAINT subscription_checks_shop_id_key UNIQUE (shop_id);

ALTER TABLE ONLY public.sync_bulk_rows
    ADD CONSTRAINT sync_bulk_rows_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.sync_leases
    ADD CONSTRAINT sync_leases_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.sync_leases
    ADD CONSTRAINT sync_leases_shop_id_key UNIQUE (shop_id);

ALTER TABLE ONLY public.sync_runs
    ADD CONSTRAINT sync_runs_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.sync_state
    ADD CONSTRAINT sync_state_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.sync_state
    ADD CONSTRAINT sync_state_shop_id_resource_key UNIQUE (shop_id, resource);

ALTER TABLE ONLY public.webhook_events
    ADD CONSTRAINT webhook_events_pkey PRIMARY KEY (shop_id, id);

ALTER TABLE ONLY public.webhook_events
    ADD CONSTRAINT webhook_events_shop_id_webhook_id_key UNIQUE (shop_id, webhook_id);

CREATE INDEX automations_enabled ON public.automations USING btree (enabled);

CREATE INDEX automations_shop_id ON public.automations USING btree (shop_id);

CREATE INDEX customer_events_customer ON public.customer_events USING btree (shop_id, customer_shopify_id);

CREATE INDEX customer_events_node_position ON public.customer_events USING btree (node_group, transaction_id, id);

CREATE INDEX customer_events_shop_position ON public.customer_events USING btree (shop_id, epoch, transaction_id, id);

CREATE INDEX customers_email ON public.customers USING btree (email);

CREATE INDEX customers_shopify_id ON public.customers USING btree (shopify_id);

CREATE INDEX erasures_created_at ON public.erasures USING btree (created_at);

CREATE INDEX message_logs_automation_id ON public.message_logs USING btree (automation_id);

CREATE INDEX message_logs_customer_id ON public.message_logs USING btree (customer_id);

CREATE INDEX message_logs_status ON public.message_logs USING btree (status);

CREATE INDEX orders_created_at ON public.orders USING btree (created_at);

CREATE INDEX orders_customer_id ON public.orders USING btree (customer_id);

CREATE INDEX sync_bulk_rows_parent_gid ON public.sync_bulk_rows USING btree (parent_gid);

CREATE INDEX sync_bulk_rows_run_id ON public.sync_bulk_rows USING btree (run_id);

CREATE INDEX sync_runs_created_at ON public.sync_runs USING btree (created_at);

CREATE INDEX sync_runs_status ON public.sync_runs USING btree (status);

CREATE INDEX webhook_events_payload_customer_id ON public.webhook_events USING btree (shop_id, (((payload -> 'customer'::text) ->> 'id'::text)));

CREATE INDEX webhook_events_payload_id ON public.webhook_events USING btree (shop_id, ((payload ->> 'id'::text)));

CREATE INDEX webhook_events_received_at ON public.webhook_events USING btree (received_at);

CREATE INDEX webhook_events_status ON public.webhook_events USING btree (status);

CREATE INDEX webhook_events_topic ON public.webhook_events USING btree (topic);

CREATE TRIGGER customers_segment_changed AFTER UPDATE OF segment ON public.customers FOR EACH ROW WHEN ((((old.segment)::text IS DISTINCT FROM (new.segment)::text) AND (new.deleted_at IS NULL) AND (new.redacted_at IS NULL))) EXECUTE FUNCTION public.customer_events_segment();

CREATE TRIGGER customers_tag_added_insert AFTER INSERT ON public.customers FOR EACH ROW WHEN (((new.deleted_at IS NULL) AND (new.redacted_at IS NULL) AND (cardinality(new.tags) > 0))) EXECUTE FUNCTION public.customer_events_tags();

CREATE TRIGGER customers_tag_added_update AFTER UPDATE ON public.customers FOR EACH ROW WHEN (((new.deleted_at IS NULL) AND (new.redacted_at IS NULL) AND (NOT (COALESCE(new.tags, '{}'::text[]) <@ COALESCE(old.tags, '{}'::text[]))))) EXECUTE FUNCTION public.customer_events_tags();

CREATE TRIGGER orders_first_order_insert AFTER INSERT ON public.orders FOR EACH ROW WHEN (((new.customer_id IS NOT NULL) AND (new.deleted_at IS NULL) AND (new.cancelled_at IS NULL) AND (new.test IS NOT TRUE))) EXECUTE FUNCTION public.customer_events_first_order();

CREATE TRIGGER orders_first_order_update AFTER UPDATE ON public.orders FOR EACH ROW WHEN (((new.customer_id IS NOT NULL) AND (new.deleted_at IS NULL) AND (new.cancelled_at IS NULL) AND (new.test IS NOT TRUE) AND (NOT ((NOT (old.customer_id IS DISTINCT FROM new.customer_id)) AND (old.deleted_at IS NULL) AND (old.cancelled_at IS NULL) AND (old.test IS NOT TRUE))))) EXECUTE FUNCTION public.customer_events_first_order();

ALTER TABLE ONLY public.message_logs
    ADD CONSTRAINT message_logs_automation_id_fkey FOREIGN KEY (automation_id) REFERENCES public.automations(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.message_logs
    ADD CONSTRAINT message_logs_customer_id_fkey FOREIGN KEY (shop_id, customer_id) REFERENCES public.customers(shop_id, id) ON DELETE CASCADE;

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (shop_id, customer_id) REFERENCES public.customers(shop_id, id);
