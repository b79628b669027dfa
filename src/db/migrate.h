/*
 * migrate.h - applies the numbered sql/ migrations embedded in the binary.
 *
 * All pending migrations run in one transaction under a transaction-level
 * advisory lock, so replicas that migrate at the same moment serialise and
 * the later ones find nothing to do. Each file records itself in
 * outbox_relay.schema_migrations, so files applied by hand with psql count.
 */
#ifndef OUTBOX_DB_MIGRATE_H
#define OUTBOX_DB_MIGRATE_H

#include <libpq-fe.h>

#include "common/error.h"

/*
 * Applies what is missing. *applied gets how many files ran (0 when up to
 * date). Fails, applying nothing, with a one-line message when public.users
 * does not exist ("table public.users does not exist: create the User
 * Service's users table before migrating") or a file fails (names the file
 * and the server's error).
 */
or_status migrate_apply(PGconn *conn, int *applied, or_error *err) OR_MUST_CHECK;

/* The embedded migrations, for `outbox-relay migrate --list` and tests. */
unsigned migrate_count(void);
const char *migrate_name(unsigned i); /* "001_outbox" */
const char *migrate_sql(unsigned i);

#endif
