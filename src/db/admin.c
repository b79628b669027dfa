/*
 * admin.c - the SQL behind `outbox-relay status` and `outbox-relay requeue`.
 */
#include "db/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"

/* One scan of the pending rows (the partial index keeps this cheap). */
static const char admin_sql_pending[] =
    "SELECT count(*), count(*) FILTER (WHERE next_attempt_at > now()),"
    " CASE WHEN count(*) > 0"
    "  THEN to_char(greatest(extract(epoch FROM now() - min(occurred_at)), 0),"
    "   'FM999999999990.000') END"
    " FROM outbox_relay.outbox WHERE state = 'pending'";

/* Relay sessions and the rows they hold, from their application_name. */
static const char admin_sql_sessions[] =
    "SELECT count(*) FILTER (WHERE application_name = $1"
    "                          OR application_name ~ $2),"
    "       coalesce(sum(substring(application_name FROM $2)::bigint), 0)"
    "  FROM pg_stat_activity";

static const char admin_sql_dead[] =
    "SELECT coalesce(last_error_code, $1), count(*), sum(count(*)) OVER ()"
    "  FROM outbox_relay.outbox WHERE state = 'dead'"
    " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $2";

/* The three requeue selectors: an UPDATE, and the SELECT a dry run uses. */
#define ADMIN_REQUEUE_SET                                                                          \
    "UPDATE outbox_relay.outbox SET state = 'pending', attempts = 0, entry_failures = 0,"          \
    " next_attempt_at = NULL"

static const char admin_sql_requeue_all[] = ADMIN_REQUEUE_SET " WHERE state = 'dead'";
static const char admin_sql_count_all[] =
    "SELECT count(*) FROM outbox_relay.outbox WHERE state = 'dead'";

static const char admin_sql_requeue_code[] =
    ADMIN_REQUEUE_SET " WHERE state = 'dead' AND last_error_code = $1";
static const char admin_sql_count_code[] = "SELECT count(*) FROM outbox_relay.outbox"
                                           " WHERE state = 'dead' AND last_error_code = $1";

/*
 * By id: one statement that updates the dead ones and reports, for every
 * requested id, its state before the update and whether it was requeued.
 */
static const char admin_sql_requeue_ids[] =
    "WITH w AS (SELECT DISTINCT unnest($1::bigint[]) AS id),"
    "     u AS (" ADMIN_REQUEUE_SET " FROM w"
    "            WHERE outbox.id = w.id AND outbox.state = 'dead' RETURNING outbox.id)"
    "SELECT w.id, o.state, u.id IS NOT NULL"
    "  FROM w LEFT JOIN outbox_relay.outbox o ON o.id = w.id LEFT JOIN u ON u.id = w.id"
    " ORDER BY w.id";
static const char admin_sql_count_ids[] = "WITH w AS (SELECT DISTINCT unnest($1::bigint[]) AS id)"
                                          "SELECT w.id, o.state, coalesce(o.state = 'dead', false)"
                                          "  FROM w LEFT JOIN outbox_relay.outbox o ON o.id = w.id"
                                          " ORDER BY w.id";

#define ADMIN_RELAY_APPNAME    "outbox-relay"
#define ADMIN_INFLIGHT_PATTERN "^outbox-relay inflight=([0-9]+)$"

/* First line of libpq's message (the server's error, without the detail lines). */
static void admin_set_pg_error(or_error *err, const char *what, const char *msg)
{
    char line[OR_ERROR_MAX];
    snprintf(line, sizeof(line), "%s", msg != NULL && msg[0] ? msg : "unknown error");
    line[strcspn(line, "\n")] = '\0';
    or_error_set(err, "%s: %s", what, line);
}

static or_status admin_parse_ll(const char *s, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return OR_ERR;
    *out = v;
    return OR_OK;
}

/* Runs a statement that returns no rows (BEGIN, COMMIT, ROLLBACK). */
static or_status admin_command(PGconn *pg, const char *sql, or_error *err)
{
    PGresult *res = PQexec(pg, sql);
    or_status st = OR_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        admin_set_pg_error(err, sql, PQresultErrorMessage(res));
        st = OR_ERR;
    }
    PQclear(res);
    return st;
}

/* Reads column col of row 0..n as an integer; a bad value is a server bug. */
static or_status admin_get_ll(const PGresult *res, int row, int col, const char *what,
                              long long *out, or_error *err)
{
    if (PQgetisnull(res, row, col)) {
        *out = 0;
        return OR_OK;
    }
    if (admin_parse_ll(PQgetvalue(res, row, col), out) != OR_OK) {
        or_error_set(err, "%s: not an integer: \"%s\"", what, PQgetvalue(res, row, col));
        return OR_ERR;
    }
    return OR_OK;
}

or_status admin_schema_present(PGconn *pg, bool *present, or_error *err)
{
    PGresult *res = PQexecParams(pg, "SELECT to_regclass($1) IS NOT NULL", 1, NULL,
                                 (const char *const[]){"outbox_relay.outbox"}, NULL, NULL, 0);
    or_status st = OR_ERR;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        admin_set_pg_error(err, "cannot look up table outbox_relay.outbox",
                           PQresultErrorMessage(res));
        goto out;
    }
    *present = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    st = OR_OK;
out:
    PQclear(res);
    return st;
}

static or_status admin_status_pending(PGconn *pg, admin_status_info *out, or_error *err)
{
    PGresult *res = PQexecParams(pg, admin_sql_pending, 0, NULL, NULL, NULL, NULL, 0);
    or_status st = OR_ERR;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        admin_set_pg_error(err, "cannot count pending rows", PQresultErrorMessage(res));
        goto out;
    }
    if (admin_get_ll(res, 0, 0, "pending count", &out->pending, err) != OR_OK ||
        admin_get_ll(res, 0, 1, "retry count", &out->retry_waiting, err) != OR_OK)
        goto out;
    out->has_oldest_pending = !PQgetisnull(res, 0, 2);
    if (out->has_oldest_pending) {
        const char *age = PQgetvalue(res, 0, 2);
        char *end = NULL;
        errno = 0;
        out->oldest_pending_age_s = strtod(age, &end);
        if (errno != 0 || end == age || *end != '\0') {
            or_error_set(err, "oldest pending age: not a number: \"%s\"", age);
            goto out;
        }
        snprintf(out->oldest_pending_age, sizeof(out->oldest_pending_age), "%s", age);
    }
    st = OR_OK;
out:
    PQclear(res);
    return st;
}

static or_status admin_status_sessions(PGconn *pg, admin_status_info *out, or_error *err)
{
    const char *params[] = {ADMIN_RELAY_APPNAME, ADMIN_INFLIGHT_PATTERN};
    PGresult *res = PQexecParams(pg, admin_sql_sessions, 2, NULL, params, NULL, NULL, 0);
    or_status st = OR_ERR;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        admin_set_pg_error(err, "cannot read pg_stat_activity", PQresultErrorMessage(res));
        goto out;
    }
    if (admin_get_ll(res, 0, 0, "relay sessions", &out->relay_sessions, err) != OR_OK ||
        admin_get_ll(res, 0, 1, "in-flight rows", &out->in_flight, err) != OR_OK)
        goto out;
    st = OR_OK;
out:
    PQclear(res);
    return st;
}

static or_status admin_status_dead(PGconn *pg, admin_status_info *out, or_error *err)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", ADMIN_TOP_ERROR_CODES);
    const char *params[] = {ADMIN_NO_ERROR_CODE, limit};
    PGresult *res = PQexecParams(pg, admin_sql_dead, 2, NULL, params, NULL, NULL, 0);
    or_status st = OR_ERR;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        admin_set_pg_error(err, "cannot count dead rows", PQresultErrorMessage(res));
        goto out;
    }
    int n = PQntuples(res);
    out->dead = 0;
    out->n_dead_codes = 0;
    for (int i = 0; i < n && i < ADMIN_TOP_ERROR_CODES; i++) {
        admin_error_count *e = &out->dead_by_code[out->n_dead_codes++];
        snprintf(e->code, sizeof(e->code), "%s", PQgetvalue(res, i, 0));
        if (admin_get_ll(res, i, 1, "dead count", &e->count, err) != OR_OK ||
            admin_get_ll(res, i, 2, "dead total", &out->dead, err) != OR_OK)
            goto out;
    }
    st = OR_OK;
out:
    PQclear(res);
    return st;
}

or_status admin_status(PGconn *pg, admin_status_info *out, or_error *err)
{
    memset(out, 0, sizeof(*out));
    if (admin_command(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err) != OR_OK)
        return OR_ERR;
    or_status st = OR_ERR;
    if (admin_status_pending(pg, out, err) != OR_OK || admin_status_dead(pg, out, err) != OR_OK ||
        admin_status_sessions(pg, out, err) != OR_OK)
        goto out;
    st = admin_command(pg, "COMMIT", err);
out:
    if (st != OR_OK) {
        PGresult *res = PQexec(pg, "ROLLBACK");
        PQclear(res);
    }
    return st;
}

/* "{1,2,3}": the ids as a bigint[] literal for $1. */
static or_status admin_ids_literal(const admin_requeue_filter *f, strbuf *sb, or_error *err)
{
    if (f->ids == NULL || f->n_ids == 0) {
        or_error_set(err, "requeue by id needs at least one id");
        return OR_ERR;
    }
    if (strbuf_putc(sb, '{') != OR_OK)
        goto too_many;
    for (size_t i = 0; i < f->n_ids; i++) {
        if (f->ids[i] <= 0) {
            or_error_set(err, "row id must be a positive integer, got %lld", f->ids[i]);
            return OR_ERR;
        }
        if (strbuf_printf(sb, "%s%lld", i ? "," : "", f->ids[i]) != OR_OK)
            goto too_many;
    }
    if (strbuf_putc(sb, '}') != OR_OK)
        goto too_many;
    return OR_OK;
too_many:
    or_error_set(err, "too many ids (%zu) for one requeue", f->n_ids);
    return OR_ERR;
}

static or_status admin_requeue_ids(PGconn *pg, const admin_requeue_filter *f, bool dry_run,
                                   admin_requeue_result *out, or_error *err)
{
    strbuf sb;
    strbuf_init(&sb, 1u << 20);
    PGresult *res = NULL;
    or_status st = OR_ERR;
    if (admin_ids_literal(f, &sb, err) != OR_OK)
        goto out;
    const char *params[] = {strbuf_cstr(&sb)};
    res = PQexecParams(pg, dry_run ? admin_sql_count_ids : admin_sql_requeue_ids, 1, NULL, params,
                       NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 3) {
        admin_set_pg_error(err, "cannot requeue dead rows by id", PQresultErrorMessage(res));
        goto out;
    }
    int n = PQntuples(res);
    out->skipped = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*out->skipped));
    for (int i = 0; i < n; i++) {
        long long id = 0;
        if (admin_get_ll(res, i, 0, "row id", &id, err) != OR_OK)
            goto out;
        if (strcmp(PQgetvalue(res, i, 2), "t") == 0) {
            out->count++;
            continue;
        }
        admin_skipped_id *s = &out->skipped[out->n_skipped++];
        s->id = id;
        snprintf(s->state, sizeof(s->state), "%s", PQgetvalue(res, i, 1));
    }
    st = OR_OK;
out:
    PQclear(res);
    strbuf_free(&sb);
    return st;
}

/* --all and --error-code: an UPDATE whose row count is the answer, or a count. */
static or_status admin_requeue_where(PGconn *pg, const admin_requeue_filter *f, bool dry_run,
                                     admin_requeue_result *out, or_error *err)
{
    bool by_code = f->kind == ADMIN_REQUEUE_ERROR_CODE;
    if (by_code && (f->error_code == NULL || f->error_code[0] == '\0')) {
        or_error_set(err, "requeue by error code needs a non-empty code");
        return OR_ERR;
    }
    const char *sql = by_code ? (dry_run ? admin_sql_count_code : admin_sql_requeue_code)
                              : (dry_run ? admin_sql_count_all : admin_sql_requeue_all);
    const char *params[] = {f->error_code};
    PGresult *res =
        PQexecParams(pg, sql, by_code ? 1 : 0, NULL, by_code ? params : NULL, NULL, NULL, 0);
    or_status st = OR_ERR;
    ExecStatusType want = dry_run ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
    if (PQresultStatus(res) != want) {
        admin_set_pg_error(err, "cannot requeue dead rows", PQresultErrorMessage(res));
        goto out;
    }
    if (dry_run) {
        if (PQntuples(res) != 1 || admin_get_ll(res, 0, 0, "dead count", &out->count, err) != OR_OK)
            goto out;
    } else if (admin_parse_ll(PQcmdTuples(res), &out->count) != OR_OK) {
        or_error_set(err, "cannot requeue dead rows: no row count in \"%s\"", PQcmdStatus(res));
        goto out;
    }
    st = OR_OK;
out:
    PQclear(res);
    return st;
}

/*
 * Wakes relays sleeping on LISTEN so requeued rows go out now rather than
 * after relay.poll_interval_ms. Best effort: the poll finds them anyway.
 */
static void admin_wake_relays(PGconn *pg)
{
    PGresult *res = PQexec(pg, "SELECT pg_notify('outbox_relay', '')");
    PQclear(res);
}

or_status admin_requeue(PGconn *pg, const admin_requeue_filter *filter, bool dry_run,
                        admin_requeue_result *out, or_error *err)
{
    or_status st = OR_ERR;
    memset(out, 0, sizeof(*out));
    switch (filter->kind) {
    case ADMIN_REQUEUE_IDS:
        st = admin_requeue_ids(pg, filter, dry_run, out, err);
        break;
    case ADMIN_REQUEUE_ALL:
    case ADMIN_REQUEUE_ERROR_CODE:
        st = admin_requeue_where(pg, filter, dry_run, out, err);
        break;
    default:
        or_error_set(err, "unknown requeue selector %d", (int)filter->kind);
        return OR_ERR;
    }
    if (st == OR_OK && !dry_run && out->count > 0)
        admin_wake_relays(pg);
    return st;
}

void admin_requeue_result_free(admin_requeue_result *r)
{
    if (r == NULL)
        return;
    free(r->skipped);
    memset(r, 0, sizeof(*r));
}
