-- 003_delivery: what the delivery guarantees need.
--
-- entry_failures counts only failures that are the entry's own (an ErrorCode
-- for this entry in a PutEvents reply, such as InternalFailure). Outages,
-- throttling and credential errors never count, so an outage cannot
-- dead-letter the backlog: a row is dead after relay.max_attempts entry
-- failures, or at once on a permanent error (see docs/design.md).
--
-- Apply by hand with:
--   psql -v ON_ERROR_STOP=1 --single-transaction -f sql/003_delivery.sql

DO $$
BEGIN
    IF to_regclass('public.users') IS NULL THEN
        RAISE EXCEPTION 'table public.users does not exist: create the User Service''s users table before migrating';
    END IF;
END
$$;

ALTER TABLE outbox_relay.outbox
    ADD COLUMN IF NOT EXISTS entry_failures integer NOT NULL DEFAULT 0;

-- Dead rows, for `outbox-relay status` and `requeue` (small: only dead rows).
CREATE INDEX IF NOT EXISTS outbox_dead_idx
    ON outbox_relay.outbox (last_error_code, id) WHERE state = 'dead';

INSERT INTO outbox_relay.schema_migrations (version, name)
VALUES ('003', '003_delivery')
ON CONFLICT DO NOTHING;
