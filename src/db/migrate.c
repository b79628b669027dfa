/*
 * migrate.c - applies the embedded sql/ migrations in one transaction.
 */
#include "db/migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "db/migrations_embedded.h"

/* Advisory lock key serialising migrations (28530 = the relay's key space). */
#define MIGRATE_LOCK_SQL "SELECT pg_advisory_xact_lock(28530, 2)"

#define MIGRATE_NO_USERS_MSG                                                                       \
    "table public.users does not exist: create the User Service's users table before migrating"

/* Must match sql/001_outbox.sql (both use IF NOT EXISTS). */
static const char migrate_ledger_sql[] =
    "CREATE SCHEMA IF NOT EXISTS outbox_relay;\n"
    "CREATE TABLE IF NOT EXISTS outbox_relay.schema_migrations (\n"
    "    version    text PRIMARY KEY,\n"
    "    name       text NOT NULL,\n"
    "    applied_at timestamptz NOT NULL DEFAULT now(),\n"
    "    applied_by text NOT NULL DEFAULT current_user\n"
    ")";

unsigned migrate_count(void)
{
    return embedded_migration_count;
}

const char *migrate_name(unsigned i)
{
    return i < embedded_migration_count ? embedded_migrations[i].name : NULL;
}

const char *migrate_sql(unsigned i)
{
    return i < embedded_migration_count ? embedded_migrations[i].sql : NULL;
}

/* The version of a migration: its name up to the first '_' ("001"). */
static void migrate_version(const char *name, char *out, size_t outlen)
{
    size_t n = strcspn(name, "_");
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, name, n);
    out[n] = '\0';
}

/* One line of the server's error for res (primary message), else libpq's. */
static void migrate_server_error(PGconn *conn, const PGresult *res, char *out, size_t outlen)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (msg == NULL || msg[0] == '\0')
        msg = PQerrorMessage(conn);
    if (msg == NULL || msg[0] == '\0')
        msg = "the transaction was rolled back";
    snprintf(out, outlen, "%s", msg);
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '\n')
            out[i] = ' ';
    }
}

/* Runs sql expecting no error; on error the message is "<what>: <server>". */
static or_status migrate_exec(PGconn *conn, const char *what, const char *sql, or_error *err)
{
    char why[768];
    PGresult *res = PQexec(conn, sql);
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        PQclear(res);
        return OR_OK;
    }
    migrate_server_error(conn, res, why, sizeof(why));
    or_error_set(err, "%s: %s", what, why);
    PQclear(res);
    return OR_ERR;
}

/* Runs a one-row, one-column query; *isnull when the value is NULL. */
static or_status migrate_query_value(PGconn *conn, const char *what, const char *sql, bool *isnull,
                                     or_error *err)
{
    char why[768];
    or_status st = OR_ERR;
    PGresult *res = PQexec(conn, sql);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        migrate_server_error(conn, res, why, sizeof(why));
        or_error_set(err, "%s: %s", what, why);
        goto out;
    }
    if (PQntuples(res) != 1 || PQnfields(res) != 1) {
        or_error_set(err, "%s: expected one value, got %d rows", what, PQntuples(res));
        goto out;
    }
    *isnull = PQgetisnull(res, 0, 0) != 0;
    st = OR_OK;
out:
    PQclear(res);
    return st;
}

or_status migrate_apply(PGconn *conn, int *applied, or_error *err)
{
    or_status st = OR_ERR;
    PGresult *res = NULL;
    bool in_tx = false;
    bool *done = NULL;
    unsigned count = migrate_count();
    int ran = 0;
    char why[768];

    *applied = 0;
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        or_error_set(err, "migrate: not connected to the database");
        goto out;
    }
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        or_error_set(err, "migrate: the session already has a transaction open");
        goto out;
    }
    if (migrate_exec(conn, "migrate: BEGIN", "BEGIN", err) != OR_OK)
        goto out;
    in_tx = true;
    /* the files' "already exists, skipping" notices are noise here */
    if (migrate_exec(conn, "migrate: SET LOCAL client_min_messages",
                     "SET LOCAL client_min_messages = warning", err) != OR_OK)
        goto out;
    if (migrate_exec(conn, "migrate: taking the migration lock", MIGRATE_LOCK_SQL, err) != OR_OK)
        goto out;

    bool no_users = false;
    if (migrate_query_value(conn, "migrate: looking for public.users",
                            "SELECT to_regclass('public.users')", &no_users, err) != OR_OK)
        goto out;
    if (no_users) {
        or_error_set(err, MIGRATE_NO_USERS_MSG);
        goto out;
    }

    if (migrate_exec(conn, "migrate: creating outbox_relay.schema_migrations", migrate_ledger_sql,
                     err) != OR_OK)
        goto out;

    res = PQexec(conn, "SELECT version FROM outbox_relay.schema_migrations");
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        migrate_server_error(conn, res, why, sizeof(why));
        or_error_set(err, "migrate: reading outbox_relay.schema_migrations: %s", why);
        goto out;
    }
    done = xcalloc(count ? count : 1, sizeof(*done));
    for (unsigned i = 0; i < count; i++) {
        char version[32];
        migrate_version(migrate_name(i), version, sizeof(version));
        for (int r = 0; r < PQntuples(res); r++) {
            if (strcmp(PQgetvalue(res, r, 0), version) == 0)
                done[i] = true;
        }
    }
    PQclear(res);
    res = NULL;

    for (unsigned i = 0; i < count; i++) {
        if (done[i])
            continue;
        const char *name = migrate_name(i);
        char what[160];
        snprintf(what, sizeof(what), "migration %s.sql failed", name);
        if (migrate_exec(conn, what, migrate_sql(i), err) != OR_OK)
            goto out;

        /* Files record themselves; this also covers one that forgot to. */
        char version[32];
        const char *params[2] = {version, name};
        migrate_version(name, version, sizeof(version));
        res = PQexecParams(conn,
                           "INSERT INTO outbox_relay.schema_migrations (version, name) "
                           "VALUES ($1, $2) ON CONFLICT DO NOTHING",
                           2, NULL, params, NULL, NULL, 0);
        if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
            migrate_server_error(conn, res, why, sizeof(why));
            or_error_set(err, "migrate: recording %s: %s", name, why);
            goto out;
        }
        PQclear(res);
        res = NULL;
        ran++;
    }

    res = PQexec(conn, "COMMIT");
    in_tx = false;
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK ||
        strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        migrate_server_error(conn, res, why, sizeof(why));
        or_error_set(err, "migrate: COMMIT: %s", why);
        goto out;
    }
    *applied = ran;
    if (ran > 0)
        log_info("database migrated: %d migration(s) applied", ran);
    st = OR_OK;
out:
    PQclear(res);
    if (in_tx) {
        PGresult *rb = PQexec(conn, "ROLLBACK");
        PQclear(rb);
    }
    free(done);
    return st;
}
