-- 001_outbox: the outbox_relay schema, the migration ledger and the outbox table.
--
-- Apply by hand with:
--   psql -v ON_ERROR_STOP=1 --single-transaction -f sql/001_outbox.sql
-- (outbox-relay migrate runs the same text in one transaction under an
-- advisory lock). Plain SQL, no BEGIN/COMMIT, safe to re-run.

DO $$
BEGIN
    IF to_regclass('public.users') IS NULL THEN
        RAISE EXCEPTION 'table public.users does not exist: create the User Service''s users table before migrating';
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS outbox_relay;

-- One row per applied file; the relay and psql both record here.
CREATE TABLE IF NOT EXISTS outbox_relay.schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user
);

-- The queue. Rows are written by the capture trigger on public.users (see
-- 002_capture_users.sql), claimed by the relay with FOR UPDATE SKIP LOCKED in
-- id order, and marked 'sent' after EventBridge accepted them.
--
-- Queue-friendly storage: fillfactor 90 leaves room on each page for the
-- pending -> sent update to stay HOT-eligible, and the low scale factors make
-- autovacuum visit the table after ~1% churn instead of the default 20%.
CREATE TABLE IF NOT EXISTS outbox_relay.outbox (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id           uuid NOT NULL DEFAULT gen_random_uuid(),
    aggregate_type     text NOT NULL DEFAULT 'user',
    aggregate_id       text NOT NULL,
    event_type         text NOT NULL
        CONSTRAINT outbox_event_type_check CHECK (event_type IN ('created', 'updated', 'deleted')),
    payload            jsonb NOT NULL,
    occurred_at        timestamptz NOT NULL DEFAULT now(),
    state              text NOT NULL DEFAULT 'pending'
        CONSTRAINT outbox_state_check CHECK (state IN ('pending', 'sent', 'dead')),
    attempts           integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz,          -- NULL = ready now
    last_error_code    text,
    last_error_message text,
    sent_at            timestamptz
) WITH (
    fillfactor = 90,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.02
);

-- The claim index: only pending rows, so it stays small however many sent
-- rows the table holds. Serves "WHERE state = 'pending' ... ORDER BY id".
CREATE INDEX IF NOT EXISTS outbox_pending_idx
    ON outbox_relay.outbox (id) WHERE state = 'pending';

-- Pending rows per user in order (for per-user ordering of deliveries).
CREATE INDEX IF NOT EXISTS outbox_pending_aggregate_idx
    ON outbox_relay.outbox (aggregate_id, id) WHERE state = 'pending';

INSERT INTO outbox_relay.schema_migrations (version, name)
VALUES ('001', '001_outbox')
ON CONFLICT DO NOTHING;
