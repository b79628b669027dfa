-- The User Service's table, for the compose stack only (in production the
-- User Service owns it; the relay's migrations only add triggers to it).
CREATE TABLE IF NOT EXISTS public.users (
    id bigserial PRIMARY KEY,
    username text NOT NULL,
    email text NOT NULL,
    password_hash text,
    created_at timestamptz NOT NULL DEFAULT now()
);
