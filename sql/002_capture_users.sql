-- 002_capture_users: the allow-list of published columns and the capture
-- trigger on public.users that it generates.
--
-- Apply by hand with:
--   psql -v ON_ERROR_STOP=1 --single-transaction -f sql/002_capture_users.sql
-- Plain SQL, no BEGIN/COMMIT, safe to re-run.
--
-- What is published is decided in ONE place: outbox_relay.published_columns.
-- Any INSERT/UPDATE/DELETE/TRUNCATE there runs outbox_relay.install_capture(),
-- which validates the list against public.users and regenerates the trigger
-- function outbox_relay.capture_users() with static SQL for exactly those
-- columns (no dynamic SQL per row), plus the three row triggers on
-- public.users. The UPDATE trigger has a WHEN clause over the published
-- columns only, so an update that changes nothing published (a password
-- change, say) never even calls the function.
--
-- Wake-up protocol (why the trigger notifies only sometimes):
--   Advisory lock key (28530, 1) is the "waiter" lock. A relay that is about
--   to sleep takes it EXCLUSIVELY at session level (pg_advisory_lock) and
--   keeps it while it sleeps; it LISTENs on channel outbox_relay.
--   After writing its outbox row, the capture function runs
--     pg_try_advisory_xact_lock_shared(28530, 1):
--   * it fails while a relay sleeps: the writer then sends
--     pg_notify('outbox_relay', ''), at most once per transaction (same
--     channel + payload are delivered once);
--   * otherwise the writer holds the shared lock until its transaction ends
--     and sends nothing, so busy producers never pay NOTIFY's cluster-wide
--     commit lock.
--   No wake-up can be lost: a relay's exclusive request waits until every
--   writer holding the shared lock has committed (or it gives up and stays
--   awake), and after getting the lock the relay claims once more before it
--   sleeps; any writer that commits later finds the lock taken and notifies.

DO $$
BEGIN
    IF to_regclass('public.users') IS NULL THEN
        RAISE EXCEPTION 'table public.users does not exist: create the User Service''s users table before migrating';
    END IF;
END
$$;

-- The allow-list. 'metadata' may never be published; 'id' is required (it is
-- the aggregate id of every event).
CREATE TABLE IF NOT EXISTS outbox_relay.published_columns (
    column_name name PRIMARY KEY,
    CONSTRAINT published_columns_not_metadata CHECK (column_name <> 'metadata')
);

-- Validates the allow-list and (re)generates outbox_relay.capture_users() and
-- the row triggers on public.users. Raises, changing nothing, when the list
-- names a column users does not have or lacks id.
CREATE OR REPLACE FUNCTION outbox_relay.install_capture() RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $install$
DECLARE
    missing name;
    cols    name[];
    col     name;
    n       integer := 0;
    new_obj text := '';
    old_obj text := '';
    new_row text := '';
    old_row text := '';
BEGIN
    IF to_regclass('public.users') IS NULL THEN
        RAISE EXCEPTION 'table public.users does not exist: create the User Service''s users table before migrating';
    END IF;

    IF NOT EXISTS (SELECT 1 FROM outbox_relay.published_columns WHERE column_name = 'id') THEN
        RAISE EXCEPTION 'published column id is required: it is the aggregate id of every event'
            USING HINT = 'keep id in outbox_relay.published_columns';
    END IF;

    SELECT p.column_name INTO missing
      FROM outbox_relay.published_columns p
     WHERE NOT EXISTS (SELECT 1
                         FROM pg_attribute a
                        WHERE a.attrelid = 'public.users'::regclass
                          AND a.attname = p.column_name
                          AND a.attnum > 0
                          AND NOT a.attisdropped)
     ORDER BY p.column_name
     LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'published column % does not exist in table public.users', quote_ident(missing)
            USING HINT = 'delete it from outbox_relay.published_columns or add the column to public.users';
    END IF;

    SELECT array_agg(a.attname ORDER BY a.attnum) INTO cols
      FROM pg_attribute a
      JOIN outbox_relay.published_columns p ON p.column_name = a.attname
     WHERE a.attrelid = 'public.users'::regclass
       AND a.attnum > 0
       AND NOT a.attisdropped;

    -- jsonb_build_object takes at most 100 arguments: chunks of 40 pairs
    -- joined with ||.
    FOREACH col IN ARRAY cols LOOP
        IF n % 40 = 0 THEN
            IF n > 0 THEN
                new_obj := new_obj || ') || ';
                old_obj := old_obj || ') || ';
            END IF;
            new_obj := new_obj || 'jsonb_build_object(';
            old_obj := old_obj || 'jsonb_build_object(';
        ELSE
            new_obj := new_obj || ', ';
            old_obj := old_obj || ', ';
        END IF;
        IF n > 0 THEN
            new_row := new_row || ', ';
            old_row := old_row || ', ';
        END IF;
        new_obj := new_obj || format('%L, NEW.%I', col, col);
        old_obj := old_obj || format('%L, OLD.%I', col, col);
        new_row := new_row || format('NEW.%I', col);
        old_row := old_row || format('OLD.%I', col);
        n := n + 1;
    END LOOP;
    new_obj := new_obj || ')';
    old_obj := old_obj || ')';

    EXECUTE format($gen$
CREATE OR REPLACE FUNCTION outbox_relay.capture_users() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $capture$
-- Generated by outbox_relay.install_capture() from
-- outbox_relay.published_columns. Do not edit: change the allow-list.
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO outbox_relay.outbox (aggregate_type, aggregate_id, event_type, payload)
        VALUES ('user', NEW.id::text, 'created', %1$s);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO outbox_relay.outbox (aggregate_type, aggregate_id, event_type, payload)
        VALUES ('user', NEW.id::text, 'updated', %1$s);
    ELSE
        INSERT INTO outbox_relay.outbox (aggregate_type, aggregate_id, event_type, payload)
        VALUES ('user', OLD.id::text, 'deleted', %2$s);
    END IF;
    -- Wake-up: notify only while a relay holds the waiter lock (see
    -- 002_capture_users.sql); otherwise hold it shared until commit.
    IF NOT pg_try_advisory_xact_lock_shared(28530, 1) THEN
        PERFORM pg_notify('outbox_relay', '');
    END IF;
    RETURN NULL;
END
$capture$
$gen$, new_obj, old_obj);

    EXECUTE 'DROP TRIGGER IF EXISTS outbox_relay_capture_insert ON public.users';
    EXECUTE 'DROP TRIGGER IF EXISTS outbox_relay_capture_update ON public.users';
    EXECUTE 'DROP TRIGGER IF EXISTS outbox_relay_capture_delete ON public.users';
    EXECUTE 'CREATE TRIGGER outbox_relay_capture_insert AFTER INSERT ON public.users '
            'FOR EACH ROW EXECUTE FUNCTION outbox_relay.capture_users()';
    EXECUTE format('CREATE TRIGGER outbox_relay_capture_update AFTER UPDATE ON public.users '
                   'FOR EACH ROW WHEN (ROW(%s) IS DISTINCT FROM ROW(%s)) '
                   'EXECUTE FUNCTION outbox_relay.capture_users()', old_row, new_row);
    EXECUTE 'CREATE TRIGGER outbox_relay_capture_delete AFTER DELETE ON public.users '
            'FOR EACH ROW EXECUTE FUNCTION outbox_relay.capture_users()';
END
$install$;

REVOKE ALL ON FUNCTION outbox_relay.install_capture() FROM PUBLIC;

-- Statement trigger: any change to the allow-list regenerates the capture.
CREATE OR REPLACE FUNCTION outbox_relay.published_columns_changed() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM outbox_relay.install_capture();
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS published_columns_reinstall ON outbox_relay.published_columns;
CREATE TRIGGER published_columns_reinstall
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON outbox_relay.published_columns
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_relay.published_columns_changed();

-- The initial allow-list (fires the trigger above, which installs the capture).
INSERT INTO outbox_relay.published_columns (column_name)
VALUES ('id'), ('username'), ('email')
ON CONFLICT DO NOTHING;

INSERT INTO outbox_relay.schema_migrations (version, name)
VALUES ('002', '002_capture_users')
ON CONFLICT DO NOTHING;
