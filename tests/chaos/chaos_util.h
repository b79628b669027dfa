/*
 * chaos_util.h - helpers shared by the chaos tests (tests/chaos): relay
 * replicas spawned with environment only, timestamped chaos notes, a
 * deterministic PRNG, and the end-of-run checks of the endpoint's records
 * against the outbox table.
 *
 * Like tests/support, every helper fails the current Check test
 * (ck_abort_msg) instead of returning an error, except where a function
 * returns a status on purpose (chaos_stop_relay, chaos_check_records).
 */
#ifndef OUTBOX_TESTS_CHAOS_UTIL_H
#define OUTBOX_TESTS_CHAOS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "support/endpoint_ctl.h"
#include "support/pg_harness.h"
#include "support/proc.h"

#define CHAOS_AKID   "AKIDCHAOSEXAMPLE"
#define CHAOS_SECRET "chaos/secret/EXAMPLEKEY"
#define CHAOS_REGION "eu-west-1"

/* What a chaos test runs against: a PostgreSQL cluster, the endpoint, a work dir. */
typedef struct chaos_env {
    pg_harness *pg;
    endpoint *ep;
    char workdir[64]; /* holds the relay logs */
} chaos_env;

/* Starts PostgreSQL (users table), the endpoint and runs `outbox-relay migrate`. */
void chaos_env_start(chaos_env *env);

/* Stops everything and removes the work dir (unless OUTBOX_KEEP_TMP=1). */
void chaos_env_stop(chaos_env *env);

/* Empties users and the outbox, clears the endpoint's faults and records. */
void chaos_env_reset(chaos_env *env);

/*
 * Starts `outbox-relay run` with stderr appended to workdir/log_name.
 * db_user (NULL: postgres) is the role in DATABASE_URL, so a replica's
 * sessions can be told apart in pg_stat_activity. extra ("K=V", NULL-ended,
 * may be NULL) override the defaults.
 */
proc *chaos_spawn_relay(chaos_env *env, const char *log_name, const char *db_user,
                        const char *const *extra);

/* SIGTERM; true if it exited 0 within 10 s (the log tail is dumped otherwise). */
bool chaos_stop_relay(chaos_env *env, proc *p, const char *log_name);

/* Copies the last nlines lines of workdir/log_name to stderr. */
void chaos_dump_tail(const chaos_env *env, const char *log_name, int nlines);

/* Current size of workdir/log_name in bytes (0 if missing). */
long chaos_log_size(const chaos_env *env, const char *log_name);

/*
 * True if the part of workdir/log_name from byte offset on contains needle;
 * that part is copied to stderr.
 */
bool chaos_log_since_contains(const chaos_env *env, const char *log_name, long offset,
                              const char *needle);

/* printf-style note on stderr, prefixed with the seconds since the first note. */
void chaos_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Rows of the outbox in the given state. */
long long chaos_count_state(chaos_env *env, const char *state);

/* Waits until no row is pending; prints progress every 5 s. True on success. */
bool chaos_wait_drained(chaos_env *env, long timeout_ms);

/* splitmix64; *state is the seed. */
uint64_t chaos_rng_next(uint64_t *state);

/* Uniform in [0, n) (n > 0). */
uint64_t chaos_rng_below(uint64_t *state, uint64_t n);

/* The seed from CHAOS_SEED if set, else from the clock and pid; printed. */
uint64_t chaos_seed(void);

/* Outcome of chaos_check_records. */
typedef struct chaos_report {
    size_t outbox_rows;     /* rows in the outbox */
    size_t records;         /* entries the endpoint accepted */
    size_t distinct_events; /* distinct event ids among them */
    size_t duplicates;      /* extra arrivals (records - distinct) */
    size_t max_dups;        /* most extra arrivals of one event */
    size_t unpublished;     /* outbox rows never published */
    size_t phantoms;        /* records whose event id is not in the outbox */
    size_t not_sent;        /* rows pending or dead */
    size_t order_violations;
    size_t dup_mismatches; /* duplicates whose Detail differs from the first */
    size_t secret_leaks;   /* Details holding password_hash or a secret */
    size_t bad_records;    /* records that could not be parsed */
} chaos_report;

/*
 * Checks the endpoint's records against the outbox: every row sent and
 * published, no phantom event, per-user first arrivals in outbox id order,
 * duplicates identical, no "password_hash" nor secret_marker in any Detail.
 * Prints every violation (at most 50 of each kind). True if all hold.
 */
bool chaos_check_records(chaos_env *env, const char *secret_marker, chaos_report *rep);

#endif
