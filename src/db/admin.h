/*
 * admin.h - the operator queries behind `outbox-relay status` and
 * `outbox-relay requeue`. Like outbox.h, this is the only place their SQL
 * lives; every query is parameterised.
 *
 * What status counts, and what it costs:
 *   pending, retry_waiting and the oldest pending age read only pending rows
 *   (served by the partial index outbox_pending_idx);
 *   dead and dead_by_error_code read only dead rows (the partial index
 *   outbox_dead_idx from sql/003_delivery.sql);
 *   sent rows are not counted at all (that would read the whole table);
 *   in_flight sums N over sessions whose application_name is exactly
 *   "outbox-relay inflight=N" (a relay holding a claim transaction);
 *   relay_sessions counts sessions named "outbox-relay" or
 *   "outbox-relay inflight=N" (other outbox-relay commands, such as
 *   "outbox-relay migrate" or this status, are not relays and not counted).
 * All of it is read in one REPEATABLE READ READ ONLY transaction, so the
 * numbers belong to one snapshot.
 */
#ifndef OUTBOX_DB_ADMIN_H
#define OUTBOX_DB_ADMIN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define ADMIN_TOP_ERROR_CODES 10       /* dead_by_error_code keeps the most frequent codes */
#define ADMIN_ERROR_CODE_MAX  128      /* longer codes are truncated (AWS codes are short) */
#define ADMIN_NO_ERROR_CODE   "(none)" /* key for dead rows without last_error_code */

typedef struct admin_error_count {
    char code[ADMIN_ERROR_CODE_MAX];
    long long count;
} admin_error_count;

typedef struct admin_status_info {
    long long pending;           /* state = 'pending' */
    long long retry_waiting;     /* pending with next_attempt_at > now() */
    long long in_flight;         /* rows claimed right now by relays */
    long long dead;              /* state = 'dead' */
    bool has_oldest_pending;     /* false when nothing is pending */
    double oldest_pending_age_s; /* now() - min(occurred_at) of pending rows */
    char oldest_pending_age[32]; /* the same, as text with 3 decimals ("12.345") */
    admin_error_count dead_by_code[ADMIN_TOP_ERROR_CODES]; /* most frequent first */
    size_t n_dead_codes;
    long long relay_sessions; /* connected relay sessions */
} admin_status_info;

/*
 * Sets *present to whether the outbox table (outbox_relay.outbox) exists, so
 * a caller can say "run outbox-relay migrate" instead of a server error.
 */
or_status admin_schema_present(PGconn *pg, bool *present, or_error *err) OR_MUST_CHECK;

/*
 * Fills *out with the queue's state (see the top of this file). The session
 * must be idle (not inside a transaction). On error *out is unspecified and
 * err holds the server's message.
 */
or_status admin_status(PGconn *pg, admin_status_info *out, or_error *err) OR_MUST_CHECK;

typedef enum admin_requeue_kind {
    ADMIN_REQUEUE_ALL = 0,        /* every dead row */
    ADMIN_REQUEUE_IDS = 1,        /* dead rows among ids[] */
    ADMIN_REQUEUE_ERROR_CODE = 2, /* dead rows whose last_error_code = error_code */
} admin_requeue_kind;

typedef struct admin_requeue_filter {
    admin_requeue_kind kind;
    const long long *ids;   /* IDS: the row ids (duplicates are fine) */
    size_t n_ids;           /* IDS: at least 1 */
    const char *error_code; /* ERROR_CODE: non-empty, compared exactly */
} admin_requeue_filter;

/* An id that was asked for but not requeued. */
typedef struct admin_skipped_id {
    long long id;
    char state[16]; /* its state ("pending", "sent"); "" when no such row */
} admin_skipped_id;

typedef struct admin_requeue_result {
    long long count;           /* rows requeued (or that would be, with dry_run) */
    admin_skipped_id *skipped; /* IDS only: requested ids that are not dead, by id */
    size_t n_skipped;
} admin_requeue_result;

/*
 * Moves the dead rows that match filter back to pending in one UPDATE:
 * state = 'pending', attempts = 0, entry_failures = 0 (a full
 * relay.max_attempts again), next_attempt_at = NULL; last_error_code
 * and last_error_message stay as history. Rows in any other state are never
 * touched. With dry_run nothing is written and out->count is what would be
 * requeued. Free out with admin_requeue_result_free() (also after an error).
 */
or_status admin_requeue(PGconn *pg, const admin_requeue_filter *filter, bool dry_run,
                        admin_requeue_result *out, or_error *err) OR_MUST_CHECK;

/* Frees what admin_requeue() allocated in r and zeroes it; NULL is a no-op. */
void admin_requeue_result_free(admin_requeue_result *r);

#endif
