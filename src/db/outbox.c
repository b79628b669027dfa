/*
 * outbox.c - every query the relay runs against outbox_relay.outbox.
 *
 * All statements are prepared once per session (outbox_prepare) and run with
 * text parameters. Arrays travel as text array literals built here with
 * every text element quoted and escaped.
 */
#include "db/outbox.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strbuf.h"

#define OUTBOX_SQLSTATE_LOCK_NOT_AVAILABLE "55P03"

/* Stored error messages are cut to this many bytes (on a UTF-8 boundary). */
#define OUTBOX_ERROR_MESSAGE_MAX 1000
#define OUTBOX_ERROR_CODE_MAX    200
/* Upper bound for one array parameter. */
#define OUTBOX_ARRAY_MAX (64u * 1024u * 1024u)

typedef struct outbox_stmt {
    const char *name;
    const char *sql;
    int nparams;
} outbox_stmt;

enum {
    STMT_CLAIM,
    STMT_CLAIM_ORDERED,
    STMT_INFLIGHT,
    STMT_SENT,
    STMT_RETRY,
    STMT_NEXT_READY,
    STMT_COUNT
};

static const outbox_stmt outbox_stmts[STMT_COUNT] = {
    [STMT_CLAIM] = {"outbox_claim",
                    "SELECT id, event_id, aggregate_id, event_type, payload::text,"
                    " (extract(epoch from occurred_at) * 1000)::bigint, attempts, entry_failures"
                    " FROM outbox_relay.outbox"
                    " WHERE state = 'pending'"
                    " AND (next_attempt_at IS NULL OR next_attempt_at <= now())"
                    " ORDER BY id LIMIT $1::int FOR UPDATE SKIP LOCKED",
                    1},
    /*
     * Per-user order: only a user's earliest pending row is claimable. A row
     * claimed by another replica is still pending (its transaction has not
     * committed), so that user's later rows stay put until it is marked sent
     * or dead. Retries in backoff hold back their user the same way.
     */
    [STMT_CLAIM_ORDERED] = {"outbox_claim_ordered",
                            "SELECT o.id, o.event_id, o.aggregate_id, o.event_type,"
                            " o.payload::text,"
                            " (extract(epoch from o.occurred_at) * 1000)::bigint, o.attempts,"
                            " o.entry_failures"
                            " FROM outbox_relay.outbox o"
                            " WHERE o.state = 'pending'"
                            " AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= now())"
                            " AND NOT EXISTS (SELECT 1 FROM outbox_relay.outbox e"
                            "  WHERE e.aggregate_id = o.aggregate_id AND e.state = 'pending'"
                            "  AND e.id < o.id)"
                            " ORDER BY o.id LIMIT $1::int FOR UPDATE OF o SKIP LOCKED",
                            1},
    /* Shows the claim in pg_stat_activity for `outbox-relay status`; ends with the tx. */
    [STMT_INFLIGHT] = {"outbox_inflight",
                       "SELECT set_config('application_name', 'outbox-relay inflight=' || $1,"
                       " true)",
                       1},
    [STMT_SENT] = {"outbox_mark_sent",
                   "UPDATE outbox_relay.outbox"
                   " SET state = 'sent', sent_at = now(), attempts = attempts + 1"
                   " WHERE id = ANY($1::bigint[]) AND state = 'pending'",
                   1},
    /* Failed rows: back to pending with a backoff, or dead (delay_ms < 0). */
    [STMT_RETRY] = {"outbox_mark_retry",
                    "UPDATE outbox_relay.outbox o"
                    " SET attempts = o.attempts + 1,"
                    " entry_failures = o.entry_failures + CASE WHEN r.entry THEN 1 ELSE 0 END,"
                    " state = CASE WHEN r.delay_ms < 0 THEN 'dead' ELSE 'pending' END,"
                    " next_attempt_at = CASE WHEN r.delay_ms < 0 THEN NULL"
                    "  ELSE now() + r.delay_ms * interval '1 millisecond' END,"
                    " last_error_code = r.code, last_error_message = r.message"
                    " FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[],"
                    " $5::bool[]) AS r(id, delay_ms, code, message, entry)"
                    " WHERE o.id = r.id AND o.state = 'pending'",
                    5},
    [STMT_NEXT_READY] =
        {"outbox_next_ready",
         "SELECT ceil(extract(epoch from min(next_attempt_at) - now()) * 1000)::bigint"
         " FROM outbox_relay.outbox"
         " WHERE state = 'pending' AND next_attempt_at > now()",
         0},
};

/* The server's primary message for res (else libpq's), as one line. */
static void outbox_server_error(PGconn *pg, const PGresult *res, char *out, size_t outlen)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (msg == NULL || msg[0] == '\0')
        msg = pg ? PQerrorMessage(pg) : "not connected";
    if (msg[0] == '\0')
        msg = "unknown error";
    snprintf(out, outlen, "%s", msg);
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '\n' || out[i] == '\r')
            out[i] = ' ';
    }
}

/* True when res succeeded with the expected status; else sets err. */
static bool outbox_result_ok(PGconn *pg, const PGresult *res, ExecStatusType want, const char *what,
                             or_error *err)
{
    char why[768];
    if (res != NULL && PQresultStatus(res) == want)
        return true;
    outbox_server_error(pg, res, why, sizeof(why));
    or_error_set(err, "%s: %s", what, why);
    return false;
}

or_status outbox_prepare(PGconn *pg, or_error *err)
{
    for (int i = 0; i < STMT_COUNT; i++) {
        char what[96];
        PGresult *res =
            PQprepare(pg, outbox_stmts[i].name, outbox_stmts[i].sql, outbox_stmts[i].nparams, NULL);
        snprintf(what, sizeof(what), "preparing %s", outbox_stmts[i].name);
        bool ok = outbox_result_ok(pg, res, PGRES_COMMAND_OK, what, err);
        PQclear(res);
        if (!ok)
            return OR_ERR;
    }
    return OR_OK;
}

/* Runs a command with no result rows; err names what and the server's reason. */
static or_status outbox_command(PGconn *pg, const char *sql, const char *what, or_error *err)
{
    PGresult *res = PQexec(pg, sql);
    bool ok = outbox_result_ok(pg, res, PGRES_COMMAND_OK, what, err);
    PQclear(res);
    return ok ? OR_OK : OR_ERR;
}

static PGconn *outbox_pg(db_conn *c, const char *what, or_error *err)
{
    PGconn *pg = db_conn_pg(c);
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
        or_error_set(err, "%s: not connected to the database", what);
        return NULL;
    }
    return pg;
}

static or_status outbox_parse_ll(const char *s, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return OR_ERR;
    *out = v;
    return OR_OK;
}

void outbox_batch_free(outbox_batch *b)
{
    if (b == NULL)
        return;
    PQclear((PGresult *)b->priv);
    free(b->rows);
    free(b);
}

void outbox_release(db_conn *c)
{
    PGconn *pg = db_conn_pg(c);
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
        return;
    if (PQtransactionStatus(pg) == PQTRANS_IDLE)
        return;
    PGresult *res = PQexec(pg, "ROLLBACK");
    PQclear(res);
}

or_status outbox_claim(db_conn *c, int limit, outbox_order order, outbox_batch **out, or_error *err)
{
    or_status st = OR_ERR;
    PGresult *res = NULL;
    outbox_batch *b = NULL;
    bool in_tx = false;
    char limit_s[16];
    const char *params[1] = {limit_s};

    *out = NULL;
    PGconn *pg = outbox_pg(c, "claim", err);
    if (pg == NULL)
        goto out;
    if (limit <= 0) {
        or_error_set(err, "claim: batch size must be positive, got %d", limit);
        goto out;
    }
    if (PQtransactionStatus(pg) != PQTRANS_IDLE) {
        or_error_set(err, "claim: the session already has a transaction open");
        goto out;
    }
    if (outbox_command(pg, "BEGIN", "claim: BEGIN", err) != OR_OK)
        goto out;
    in_tx = true;

    snprintf(limit_s, sizeof(limit_s), "%d", limit);
    int stmt = order == OUTBOX_ORDER_PER_USER ? STMT_CLAIM_ORDERED : STMT_CLAIM;
    res = PQexecPrepared(pg, outbox_stmts[stmt].name, 1, params, NULL, NULL, 0);
    if (!outbox_result_ok(pg, res, PGRES_TUPLES_OK, "claim: selecting ready rows", err))
        goto out;
    if (PQnfields(res) != 8) {
        or_error_set(err, "claim: expected 8 columns, got %d", PQnfields(res));
        goto out;
    }

    b = xcalloc(1, sizeof(*b));
    int n = PQntuples(res);
    if (n == 0) {
        if (outbox_command(pg, "COMMIT", "claim: COMMIT of an empty claim", err) != OR_OK)
            goto out;
        in_tx = false;
        *out = b;
        b = NULL;
        st = OR_OK;
        goto out;
    }

    b->rows = xcalloc((size_t)n, sizeof(*b->rows));
    for (int i = 0; i < n; i++) {
        outbox_row *r = &b->rows[i];
        long long attempts = 0, entry_failures = 0;
        for (int f = 0; f < 8; f++) {
            if (PQgetisnull(res, i, f)) {
                or_error_set(err, "claim: outbox row %s has NULL in column %s",
                             PQgetvalue(res, i, 0), PQfname(res, f));
                goto out;
            }
        }
        if (outbox_parse_ll(PQgetvalue(res, i, 0), &r->id) != OR_OK ||
            outbox_parse_ll(PQgetvalue(res, i, 5), &r->occurred_at_ms) != OR_OK ||
            outbox_parse_ll(PQgetvalue(res, i, 6), &attempts) != OR_OK || attempts < 0 ||
            attempts > INT32_MAX ||
            outbox_parse_ll(PQgetvalue(res, i, 7), &entry_failures) != OR_OK ||
            entry_failures < 0 || entry_failures > INT32_MAX) {
            or_error_set(err, "claim: outbox row %s has a malformed number", PQgetvalue(res, i, 0));
            goto out;
        }
        r->attempts = (int)attempts;
        r->entry_failures = (int)entry_failures;
        r->event_id = PQgetvalue(res, i, 1);
        r->aggregate_id = PQgetvalue(res, i, 2);
        r->event_type = PQgetvalue(res, i, 3);
        r->payload = PQgetvalue(res, i, 4);
    }
    b->n = (size_t)n;
    b->priv = res;
    res = NULL;
    snprintf(limit_s, sizeof(limit_s), "%d", n);
    res = PQexecPrepared(pg, outbox_stmts[STMT_INFLIGHT].name, 1, params, NULL, NULL, 0);
    if (!outbox_result_ok(pg, res, PGRES_TUPLES_OK, "claim: recording the claim size", err))
        goto out;
    in_tx = false; /* left open on purpose: the claim */
    *out = b;
    b = NULL;
    st = OR_OK;
out:
    PQclear(res);
    outbox_batch_free(b);
    if (in_tx)
        outbox_release(c);
    return st;
}

/*
 * Appends s (cut to max bytes on a UTF-8 boundary; invalid bytes and control
 * characters become '?') to an array literal as a quoted, escaped element.
 */
static or_status outbox_array_text(strbuf *sb, const char *s, size_t max)
{
    if (s == NULL)
        return strbuf_puts(sb, "NULL");
    if (strbuf_putc(sb, '"') != OR_OK)
        return OR_ERR;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, used = 0;
    while (p[i] != '\0') {
        size_t len = 1;
        unsigned char ch = p[i];
        if (ch >= 0xC2 && ch <= 0xDF)
            len = 2;
        else if (ch >= 0xE0 && ch <= 0xEF)
            len = 3;
        else if (ch >= 0xF0 && ch <= 0xF4)
            len = 4;
        bool valid = ch < 0x80 || len > 1;
        for (size_t k = 1; valid && k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                valid = false;
        }
        /* reject overlongs/surrogates/out of range of 3- and 4-byte forms */
        if (valid && len == 3 &&
            ((ch == 0xE0 && p[i + 1] < 0xA0) || (ch == 0xED && p[i + 1] >= 0xA0)))
            valid = false;
        if (valid && len == 4 &&
            ((ch == 0xF0 && p[i + 1] < 0x90) || (ch == 0xF4 && p[i + 1] >= 0x90)))
            valid = false;
        if (!valid)
            len = 1;
        if (used + len > max)
            break;
        or_status st;
        if (!valid || ch < 0x20 || ch == 0x7F) {
            st = strbuf_putc(sb, (ch == '\t' || ch == '\n') && valid ? ' ' : '?');
        } else if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};
            st = strbuf_append(sb, esc, 2);
        } else {
            st = strbuf_append(sb, p + i, len);
        }
        if (st != OR_OK)
            return OR_ERR;
        used += len;
        i += len;
    }
    return strbuf_putc(sb, '"');
}

/* Runs a prepared UPDATE and checks it changed exactly `want` rows. */
static or_status outbox_update(PGconn *pg, int stmt, int nparams, const char *const *params,
                               long long want, const char *what, or_error *err)
{
    or_status st = OR_ERR;
    PGresult *res = PQexecPrepared(pg, outbox_stmts[stmt].name, nparams, params, NULL, NULL, 0);
    if (!outbox_result_ok(pg, res, PGRES_COMMAND_OK, what, err))
        goto out;
    long long got = -1;
    if (outbox_parse_ll(PQcmdTuples(res), &got) != OR_OK || got != want) {
        or_error_set(err,
                     "%s: updated %lld of %lld rows: the claim was lost (rows no longer "
                     "pending)",
                     what, got, want);
        goto out;
    }
    st = OR_OK;
out:
    PQclear(res);
    return st;
}

or_status outbox_complete(db_conn *c, const outbox_batch *batch, const outbox_outcome *outcomes,
                          or_error *err)
{
    or_status st = OR_ERR;
    strbuf sent, ids, delays, codes, msgs, entry;
    long long nsent = 0, nretry = 0;
    PGresult *res = NULL;

    strbuf_init(&sent, OUTBOX_ARRAY_MAX);
    strbuf_init(&ids, OUTBOX_ARRAY_MAX);
    strbuf_init(&delays, OUTBOX_ARRAY_MAX);
    strbuf_init(&codes, OUTBOX_ARRAY_MAX);
    strbuf_init(&msgs, OUTBOX_ARRAY_MAX);
    strbuf_init(&entry, OUTBOX_ARRAY_MAX);

    PGconn *pg = outbox_pg(c, "complete", err);
    if (pg == NULL)
        goto out;
    if (batch == NULL || batch->n == 0) {
        or_error_set(err, "complete: empty batch (nothing was claimed)");
        goto out;
    }
    if (PQtransactionStatus(pg) != PQTRANS_INTRANS) {
        or_error_set(err, "complete: the claim transaction is no longer open");
        goto out;
    }

    for (size_t i = 0; i < batch->n; i++) {
        const outbox_outcome *o = &outcomes[i];
        long long id = batch->rows[i].id;
        bool ok = true;
        if (o->kind == OUTBOX_SENT) {
            ok = strbuf_printf(&sent, "%s%lld", nsent ? "," : "{", id) == OR_OK;
            nsent++;
        } else if (o->kind == OUTBOX_RETRY || o->kind == OUTBOX_DEAD) {
            const char *sep = nretry ? "," : "{";
            long long delay = o->kind == OUTBOX_DEAD ? -1 : o->delay_ms > 0 ? o->delay_ms : 0;
            ok = strbuf_printf(&ids, "%s%lld", sep, id) == OR_OK &&
                 strbuf_printf(&delays, "%s%lld", sep, delay) == OR_OK &&
                 strbuf_puts(&codes, sep) == OR_OK &&
                 outbox_array_text(&codes, o->error_code, OUTBOX_ERROR_CODE_MAX) == OR_OK &&
                 strbuf_puts(&msgs, sep) == OR_OK &&
                 outbox_array_text(&msgs, o->error_message, OUTBOX_ERROR_MESSAGE_MAX) == OR_OK &&
                 strbuf_puts(&entry, sep) == OR_OK &&
                 strbuf_puts(&entry, o->entry_failure ? "t" : "f") == OR_OK;
            nretry++;
        } else {
            or_error_set(err, "complete: unknown outcome %d for outbox row %lld", (int)o->kind, id);
            goto out;
        }
        if (!ok) {
            or_error_set(err, "complete: batch of %zu outcomes is too large", batch->n);
            goto out;
        }
    }

    if (nsent > 0) {
        if (strbuf_putc(&sent, '}') != OR_OK) {
            or_error_set(err, "complete: batch of %zu outcomes is too large", batch->n);
            goto out;
        }
        const char *params[1] = {strbuf_cstr(&sent)};
        if (outbox_update(pg, STMT_SENT, 1, params, nsent, "complete: marking rows sent", err) !=
            OR_OK)
            goto out;
    }
    if (nretry > 0) {
        if (strbuf_putc(&ids, '}') != OR_OK || strbuf_putc(&delays, '}') != OR_OK ||
            strbuf_putc(&codes, '}') != OR_OK || strbuf_putc(&msgs, '}') != OR_OK ||
            strbuf_putc(&entry, '}') != OR_OK) {
            or_error_set(err, "complete: batch of %zu outcomes is too large", batch->n);
            goto out;
        }
        const char *params[5] = {strbuf_cstr(&ids), strbuf_cstr(&delays), strbuf_cstr(&codes),
                                 strbuf_cstr(&msgs), strbuf_cstr(&entry)};
        if (outbox_update(pg, STMT_RETRY, 5, params, nretry, "complete: scheduling retries", err) !=
            OR_OK)
            goto out;
    }

    res = PQexec(pg, "COMMIT");
    if (!outbox_result_ok(pg, res, PGRES_COMMAND_OK, "complete: COMMIT", err))
        goto out;
    if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        or_error_set(err, "complete: COMMIT: the transaction was rolled back");
        goto out;
    }
    st = OR_OK;
out:
    PQclear(res);
    if (st != OR_OK)
        outbox_release(c);
    strbuf_free(&sent);
    strbuf_free(&ids);
    strbuf_free(&delays);
    strbuf_free(&codes);
    strbuf_free(&msgs);
    strbuf_free(&entry);
    return st;
}

or_status outbox_next_ready_in(db_conn *c, long long *ms, or_error *err)
{
    or_status st = OR_ERR;
    PGresult *res = NULL;
    PGconn *pg = outbox_pg(c, "next ready", err);
    if (pg == NULL)
        goto out;
    res = PQexecPrepared(pg, outbox_stmts[STMT_NEXT_READY].name, 0, NULL, NULL, NULL, 0);
    if (!outbox_result_ok(pg, res, PGRES_TUPLES_OK, "next ready: selecting the earliest retry",
                          err))
        goto out;
    if (PQntuples(res) != 1) {
        or_error_set(err, "next ready: expected one row, got %d", PQntuples(res));
        goto out;
    }
    if (PQgetisnull(res, 0, 0)) {
        *ms = -1;
    } else if (outbox_parse_ll(PQgetvalue(res, 0, 0), ms) != OR_OK) {
        or_error_set(err, "next ready: malformed number \"%s\"", PQgetvalue(res, 0, 0));
        goto out;
    } else if (*ms < 0) {
        *ms = 0; /* overdue: ready now */
    }
    st = OR_OK;
out:
    PQclear(res);
    return st;
}

or_status outbox_waiter_enter(db_conn *c, bool *entered, or_error *err)
{
    or_status st = OR_ERR;
    PGresult *res = NULL;

    *entered = false;
    PGconn *pg = outbox_pg(c, "waiter enter", err);
    if (pg == NULL)
        goto out;
    if (PQtransactionStatus(pg) != PQTRANS_IDLE) {
        or_error_set(err, "waiter enter: the session has a transaction open");
        goto out;
    }
    /*
     * One round trip: both statements run in one implicit transaction, so
     * SET LOCAL ends with it, and the session-level lock, if granted, stays.
     */
    res = PQexec(pg, "SET LOCAL lock_timeout = '100ms'; SELECT pg_advisory_lock(28530, 1)");
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) {
        *entered = true;
    } else {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (state == NULL || strcmp(state, OUTBOX_SQLSTATE_LOCK_NOT_AVAILABLE) != 0) {
            outbox_result_ok(pg, res, PGRES_TUPLES_OK,
                             "waiter enter: SELECT pg_advisory_lock(28530, 1)", err);
            goto out;
        }
        /* another relay waits (or writers kept it busy): stay awake */
    }
    st = OR_OK;
out:
    PQclear(res);
    return st;
}

or_status outbox_waiter_leave(db_conn *c, or_error *err)
{
    or_status st = OR_ERR;
    PGresult *res = NULL;
    PGconn *pg = outbox_pg(c, "waiter leave", err);
    if (pg == NULL)
        goto out;
    res = PQexec(pg, "SELECT pg_advisory_unlock(28530, 1)");
    if (!outbox_result_ok(pg, res, PGRES_TUPLES_OK,
                          "waiter leave: SELECT pg_advisory_unlock(28530, 1)", err))
        goto out;
    if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") != 0)
        log_debug("waiter leave: the waiter lock was not held");
    st = OR_OK;
out:
    PQclear(res);
    return st;
}
