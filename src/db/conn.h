/*
 * conn.h - one PostgreSQL session of the relay: connect, LISTEN, wait.
 *
 * A db_conn is created once and connected/reconnected by the relay loop (the
 * reconnect backoff lives in relay/, not here). connect is one attempt.
 */
#ifndef OUTBOX_DB_CONN_H
#define OUTBOX_DB_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "common/error.h"

typedef struct db_conn db_conn;

typedef struct db_conn_options {
    const char *conninfo;         /* libpq URI or key=value; NULL/"" = PG* env + defaults */
    const char *application_name; /* default "outbox-relay" */
    int connect_timeout_s;        /* libpq connect_timeout, default 5 */
    int claim_timeout_ms;         /* idle_in_transaction_session_timeout; 0 = leave as is */
    bool listen;                  /* LISTEN outbox_relay after connecting */
} db_conn_options;

db_conn *db_conn_new(const db_conn_options *opts);
void db_conn_free(db_conn *c); /* closes; NULL is a no-op */

/*
 * One connection attempt: connects, sets session parameters, LISTENs (when
 * asked; a LISTEN failure is logged once and leaves listening() false), and
 * prepares the outbox statements. On failure the message names the server
 * (password redacted) and libpq's reason.
 */
or_status db_conn_connect(db_conn *c, or_error *err) OR_MUST_CHECK;

/* True while the connection is up as far as libpq knows. */
bool db_conn_ok(const db_conn *c);

/* True when LISTEN succeeded on the current connection. */
bool db_conn_listening(const db_conn *c);

void db_conn_close(db_conn *c);

/* The libpq handle (NULL when closed). Owned by c. */
PGconn *db_conn_pg(db_conn *c);

/*
 * Waits for a notification, timeout_ms, or wake_fd becoming readable
 * (wake_fd < 0: none). Returns 1 if notified, 0 on timeout or wake-up, and
 * -1 (with err) when the connection failed. Consumes pending notifications.
 */
int db_conn_wait(db_conn *c, int timeout_ms, int wake_fd, or_error *err);

/*
 * Runs a command that returns no rows (e.g. "BEGIN"); on error the message
 * holds the server's text and the connection state is left to db_conn_ok().
 */
or_status db_exec(db_conn *c, const char *sql, or_error *err) OR_MUST_CHECK;

#endif
