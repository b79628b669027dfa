/*
 * conn.c - one PostgreSQL session: connect (one attempt), LISTEN, wait.
 */
#include "db/conn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "db/outbox.h"

#define DB_CONN_CHANNEL "outbox_relay"

struct db_conn {
    char *conninfo; /* NULL = PG* environment */
    char *application_name;
    int connect_timeout_s;
    int claim_timeout_ms;
    bool listen;

    PGconn *pg;
    bool listening;
    bool listen_warned; /* the LISTEN failure warning is logged once */
};

/* Copies libpq's (multi-line) message into out as one line. */
static void conn_one_line(const char *msg, char *out, size_t outlen)
{
    size_t j = 0;
    if (outlen == 0)
        return;
    if (msg == NULL)
        msg = "";
    for (size_t i = 0; msg[i] != '\0' && j + 1 < outlen; i++) {
        char ch = msg[i];
        if (ch == '\n' || ch == '\r' || ch == '\t') {
            /* collapse line breaks into "; " (none at the end) */
            if (msg[i + 1] == '\0' || msg[i + 1] == '\n')
                continue;
            if (ch == '\n' && j + 2 < outlen) {
                out[j++] = ';';
                out[j++] = ' ';
            } else {
                out[j++] = ' ';
            }
            continue;
        }
        out[j++] = ch;
    }
    while (j > 0 && (out[j - 1] == ' ' || out[j - 1] == ';'))
        j--;
    out[j] = '\0';
}

/* Server message of a failed result (primary text), else libpq's. */
static void conn_result_error(const PGconn *pg, const PGresult *res, char *out, size_t outlen)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary != NULL && primary[0] != '\0')
        conn_one_line(primary, out, outlen);
    else
        conn_one_line(pg ? PQerrorMessage(pg) : "no connection", out, outlen);
}

db_conn *db_conn_new(const db_conn_options *opts)
{
    db_conn *c = xcalloc(1, sizeof(*c));
    if (opts != NULL && opts->conninfo != NULL && opts->conninfo[0] != '\0')
        c->conninfo = xstrdup(opts->conninfo);
    c->application_name =
        xstrdup(opts != NULL && opts->application_name != NULL && opts->application_name[0]
                    ? opts->application_name
                    : "outbox-relay");
    c->connect_timeout_s =
        opts != NULL && opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 5;
    c->claim_timeout_ms = opts != NULL && opts->claim_timeout_ms > 0 ? opts->claim_timeout_ms : 0;
    c->listen = opts != NULL && opts->listen;
    return c;
}

void db_conn_free(db_conn *c)
{
    if (c == NULL)
        return;
    db_conn_close(c);
    free(c->conninfo);
    free(c->application_name);
    free(c);
}

void db_conn_close(db_conn *c)
{
    if (c == NULL)
        return;
    if (c->pg != NULL)
        PQfinish(c->pg);
    c->pg = NULL;
    c->listening = false;
}

bool db_conn_ok(const db_conn *c)
{
    return c != NULL && c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK;
}

bool db_conn_listening(const db_conn *c)
{
    return c != NULL && c->pg != NULL && c->listening;
}

PGconn *db_conn_pg(db_conn *c)
{
    return c ? c->pg : NULL;
}

/* "host H port P" of a (possibly failed) connection, for messages. */
static void conn_describe(const db_conn *c, const PGconn *pg, char *out, size_t outlen)
{
    if (c->conninfo != NULL) {
        char redacted[512];
        log_redact_conninfo(c->conninfo, redacted, sizeof(redacted));
        snprintf(out, outlen, "database \"%s\"", redacted);
        return;
    }
    const char *host = pg ? PQhost(pg) : NULL;
    const char *port = pg ? PQport(pg) : NULL;
    snprintf(out, outlen, "database at host %s port %s (PG* environment)",
             host && host[0] ? host : "(default)", port && port[0] ? port : "(default)");
}

or_status db_exec(db_conn *c, const char *sql, or_error *err)
{
    or_status st = OR_ERR;
    PGresult *res = NULL;
    char why[512];

    if (c == NULL || c->pg == NULL) {
        or_error_set(err, "%s: not connected to the database", sql);
        goto out;
    }
    res = PQexec(c->pg, sql);
    if (res == NULL ||
        (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)) {
        conn_result_error(c->pg, res, why, sizeof(why));
        or_error_set(err, "%s: %s", sql, why);
        goto out;
    }
    st = OR_OK;
out:
    PQclear(res);
    return st;
}

/* Server notices and warnings go to the log as one line, at debug level. */
static void conn_notice(void *arg, const char *message)
{
    char line[512];
    (void)arg;
    conn_one_line(message, line, sizeof(line));
    log_debug("database notice: %s", line);
}

or_status db_conn_connect(db_conn *c, or_error *err)
{
    or_status st = OR_ERR;
    char timeout[16], who[640], why[512];
    const char *keys[12];
    const char *vals[12];
    int n = 0;

    db_conn_close(c);
    snprintf(timeout, sizeof(timeout), "%d", c->connect_timeout_s);

    /*
     * Keepalives notice a dead server or a network split within ~25 s even
     * while we sleep in poll(). They come before the user's conninfo so it
     * can override them; application_name comes after (explicit setting).
     */
    keys[n] = "connect_timeout", vals[n++] = timeout;
    keys[n] = "keepalives", vals[n++] = "1";
    keys[n] = "keepalives_idle", vals[n++] = "10";
    keys[n] = "keepalives_interval", vals[n++] = "5";
    keys[n] = "keepalives_count", vals[n++] = "3";
    keys[n] = "client_encoding", vals[n++] = "UTF8";
    if (c->conninfo != NULL)
        keys[n] = "dbname", vals[n++] = c->conninfo;
    keys[n] = "application_name", vals[n++] = c->application_name;
    keys[n] = NULL, vals[n] = NULL;

    c->pg = PQconnectdbParams(keys, vals, 1);
    if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
        conn_describe(c, c->pg, who, sizeof(who));
        conn_one_line(c->pg ? PQerrorMessage(c->pg) : "out of memory", why, sizeof(why));
        or_error_set(err, "cannot connect to %s: %s", who, why);
        goto out;
    }
    PQsetNoticeProcessor(c->pg, conn_notice, NULL);

    /*
     * The relay's queries are only right one way: walk the pending partial
     * index in id order. Right after a backlog appears, autovacuum has not
     * analysed it yet, and on those stale estimates the planner sorted the
     * whole backlog for every claim (measured: 143 ms instead of 2 ms for
     * 500 of 100,000 rows). These sessions run nothing else, so steer them.
     */
    if (db_exec(c, "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off",
                err) != OR_OK)
        goto out;

    if (c->claim_timeout_ms > 0) {
        char sql[96];
        snprintf(sql, sizeof(sql), "SET idle_in_transaction_session_timeout = %d",
                 c->claim_timeout_ms);
        if (db_exec(c, sql, err) != OR_OK)
            goto out;
    }

    if (c->listen) {
        or_error lerr;
        if (db_exec(c, "LISTEN " DB_CONN_CHANNEL, &lerr) == OR_OK) {
            c->listening = true;
        } else if (!c->listen_warned) {
            c->listen_warned = true;
            log_warn("cannot LISTEN for wake-ups, polling instead (use a direct or "
                     "session-pooled connection): %s",
                     lerr.msg);
        } else {
            log_debug("cannot LISTEN for wake-ups: %s", lerr.msg);
        }
    }

    if (outbox_prepare(c->pg, err) != OR_OK)
        goto out;
    st = OR_OK;
out:
    if (st != OR_OK)
        db_conn_close(c);
    return st;
}

/* Drains libpq's notification queue; returns how many there were. */
static int conn_drain_notifies(PGconn *pg)
{
    int n = 0;
    PGnotify *note;
    while ((note = PQnotifies(pg)) != NULL) {
        n++;
        PQfreemem(note);
    }
    return n;
}

/* Reads what the server sent; OR_ERR (with err) when the connection broke. */
static or_status conn_consume(db_conn *c, or_error *err)
{
    char why[512];
    if (PQconsumeInput(c->pg) == 0 || PQstatus(c->pg) != CONNECTION_OK) {
        conn_one_line(PQerrorMessage(c->pg), why, sizeof(why));
        or_error_set(err, "database connection lost: %s", why[0] ? why : "connection closed");
        return OR_ERR;
    }
    return OR_OK;
}

int db_conn_wait(db_conn *c, int timeout_ms, int wake_fd, or_error *err)
{
    if (c == NULL || c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
        or_error_set(err, "database connection lost: not connected");
        return -1;
    }
    int sock = PQsocket(c->pg);
    if (sock < 0) {
        or_error_set(err, "database connection lost: no socket");
        return -1;
    }
    /* Notifications may already be buffered from an earlier command. */
    if (conn_consume(c, err) != OR_OK)
        return -1;
    if (conn_drain_notifies(c->pg) > 0)
        return 1;

    int64_t deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int64_t left = deadline - clock_mono_ms();
        if (left < 0)
            left = 0;
        struct pollfd fds[2];
        nfds_t nfds = 1;
        fds[0].fd = sock;
        fds[0].events = POLLIN;
        fds[0].revents = 0;
        if (wake_fd >= 0) {
            fds[1].fd = wake_fd;
            fds[1].events = POLLIN;
            fds[1].revents = 0;
            nfds = 2;
        }
        int rc = poll(fds, nfds, (int)left);
        if (rc < 0) {
            if (errno == EINTR)
                return 0; /* a signal: let the caller look at its flags */
            or_error_set(err, "waiting for the database: poll: %s", strerror(errno));
            return -1;
        }
        if (rc == 0)
            return 0;
        if (fds[0].revents != 0) {
            if (conn_consume(c, err) != OR_OK)
                return -1;
            if (conn_drain_notifies(c->pg) > 0)
                return 1;
        }
        if (nfds == 2 && fds[1].revents != 0)
            return 0;
        /* other traffic (a notice, a parameter status): keep waiting */
        if (left == 0)
            return 0;
    }
}
