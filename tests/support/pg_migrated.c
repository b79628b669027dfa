/*
 * pg_migrated.c - a harness cluster with the users table and every
 * migration applied. Kept apart from pg_harness.c because it needs or_db
 * (migrate_apply): only the tests that call it link it in.
 */
#include <check.h>

#include "db/migrate.h"
#include "pg_harness.h"

pg_harness *pg_harness_start_migrated(void)
{
    pg_harness *h = pg_harness_start();
    pg_harness_create_users(h);
    PGconn *conn = pg_harness_connect(h);
    or_error err = {{0}};
    int applied = 0;
    or_status st = migrate_apply(conn, &applied, &err);
    PQfinish(conn);
    ck_assert_msg(st == OR_OK, "pg_harness: migrate: %s", err.msg);
    return h;
}
