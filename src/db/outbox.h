/*
 * outbox.h - every query the relay runs against the outbox. There is no
 * general-purpose query function: the SQL lives here and in sql/.
 *
 * Claim model: a claim is a transaction. outbox_claim() opens it and locks up
 * to `limit` ready rows with FOR UPDATE SKIP LOCKED; the rows stay locked
 * while they are published; outbox_complete() records every outcome in one
 * statement per kind and commits; outbox_release() rolls back. If the relay
 * dies, PostgreSQL aborts the transaction and the rows are free at once; a
 * replica that lost its session (idle_in_transaction_session_timeout, network
 * split) cannot mark anything because its transaction is gone.
 */
#ifndef OUTBOX_DB_OUTBOX_H
#define OUTBOX_DB_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "db/conn.h"

typedef struct outbox_row {
    long long id;
    const char *event_id;     /* uuid, stable across redeliveries */
    const char *aggregate_id; /* users.id as text */
    const char *event_type;   /* "created" | "updated" | "deleted" */
    const char *payload;      /* jsonb text: the allow-listed columns */
    long long occurred_at_ms; /* epoch ms */
    int attempts;             /* publish attempts so far (any failure) */
    int entry_failures;       /* failures that were this entry's own */
} outbox_row;

typedef struct outbox_batch {
    outbox_row *rows; /* strings point into the batch's result */
    size_t n;
    void *priv; /* owned PGresult */
} outbox_batch;

typedef enum outbox_outcome_kind {
    OUTBOX_SENT = 0,  /* accepted by EventBridge */
    OUTBOX_RETRY = 1, /* stays pending; attempts+1; next try after delay_ms */
    OUTBOX_DEAD = 2,  /* dead-lettered: attempts+1, error stored; `requeue` revives it */
} outbox_outcome_kind;

typedef struct outbox_outcome {
    outbox_outcome_kind kind;
    long long delay_ms;        /* RETRY: backoff before the next attempt */
    const char *error_code;    /* RETRY/DEAD: last error code (stored) */
    const char *error_message; /* RETRY/DEAD: last error message (stored) */
    bool entry_failure;        /* RETRY/DEAD: the failure was the entry's own (counts toward
                                  relay.max_attempts) */
} outbox_outcome;

typedef enum outbox_order {
    OUTBOX_ORDER_NONE = 0,     /* any ready row, in id order */
    OUTBOX_ORDER_PER_USER = 1, /* only each user's earliest pending row */
} outbox_order;

/*
 * Claims up to limit ready rows (pending, next_attempt_at <= now()) in id
 * order; with OUTBOX_ORDER_PER_USER only rows with no earlier pending row of
 * the same aggregate (so a user's later event never overtakes an earlier one
 * that is unsent, retrying or claimed by another replica). With rows, the
 * claim transaction is left open and application_name shows
 * "outbox-relay inflight=N" until it ends; with none, it is committed and
 * (*out)->n == 0. Free the batch with outbox_batch_free().
 */
or_status outbox_claim(db_conn *c, int limit, outbox_order order, outbox_batch **out,
                       or_error *err) OR_MUST_CHECK;

/* Records outcomes[i] for batch->rows[i] and commits the claim transaction. */
or_status outbox_complete(db_conn *c, const outbox_batch *batch, const outbox_outcome *outcomes,
                          or_error *err) OR_MUST_CHECK;

/* Rolls the claim transaction back: the rows are free for any replica. */
void outbox_release(db_conn *c);

void outbox_batch_free(outbox_batch *b);

/*
 * Milliseconds until the earliest retry in backoff is due (-1 if no pending
 * row is waiting for a retry). Rows that are ready now are not counted: a
 * relay asks this after a claim found nothing, so those are held by other
 * claims or behind an earlier event of their user, and counting them made
 * every retry wait the whole poll interval.
 */
or_status outbox_next_ready_in(db_conn *c, long long *ms, or_error *err) OR_MUST_CHECK;

/*
 * Wake-up protocol (see sql/ and docs/design.md): before sleeping, a relay
 * calls outbox_waiter_enter(), which takes the session advisory "waiter"
 * lock (waiting at most a few ms for writers in flight to commit). While it
 * is held, the capture trigger notifies; otherwise writers never pay for
 * NOTIFY. *entered is false when another relay already waits (this relay
 * still LISTENs and is woken by the same notification). After
 * entering, the caller must claim once more before sleeping.
 */
or_status outbox_waiter_enter(db_conn *c, bool *entered, or_error *err) OR_MUST_CHECK;
or_status outbox_waiter_leave(db_conn *c, or_error *err) OR_MUST_CHECK;

/*
 * Prepares every outbox statement on a fresh session (called by
 * db_conn_connect(); the prepared statements live as long as the session).
 */
or_status outbox_prepare(PGconn *pg, or_error *err) OR_MUST_CHECK;

#endif
