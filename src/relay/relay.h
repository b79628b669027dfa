/*
 * relay.h - the relay loop: claim a batch, publish it, record the outcome.
 *
 *   connect (with backoff) -> claim (FOR UPDATE SKIP LOCKED, transaction held
 *   open) -> map rows to entries -> PutEvents (many requests at once) ->
 *   mark accepted rows sent, failed rows pending with per-row backoff ->
 *   commit -> repeat; when nothing is ready: become the waiter, re-check,
 *   sleep until a notification, the poll interval or the next retry is due.
 */
#ifndef OUTBOX_RELAY_RELAY_H
#define OUTBOX_RELAY_RELAY_H

#include <stdatomic.h>

#include "common/error.h"
#include "config/config.h"

typedef struct relay relay;

/* Creates the relay (no connections yet). cfg is borrowed and must outlive it. */
relay *relay_new(const relay_config *cfg, or_error *err);

/*
 * Runs until *stop becomes non-zero. wake_fd (readable when a stop was
 * requested; -1 for none) interrupts sleeps. On stop: no new claims; the
 * batch in flight is finished (or, past shutdown_timeout_ms, abandoned and
 * its claim rolled back, so the rows stay pending). Returns OR_OK on a clean
 * stop; OR_ERR only for errors that retrying cannot fix.
 */
or_status relay_run(relay *r, atomic_int *stop, int wake_fd, or_error *err) OR_MUST_CHECK;

/* Totals since start, for logs and tests. */
typedef struct relay_stats {
    unsigned long long batches;
    unsigned long long published;
    unsigned long long failed;
    unsigned long long dead;
    unsigned long long reconnects;
} relay_stats;

void relay_get_stats(const relay *r, relay_stats *out);

void relay_free(relay *r);

#endif
