/*
 * send_rate.h - the adaptive send rate: how fast this replica may publish.
 *
 * Unlimited until EventBridge throttles. Then:
 * - the rate drops to half of what the whole replica was achieving over the
 *   last second (multiplicative decrease), at most once a second, since the
 *   batches in flight all report the same throttling;
 * - each second without throttling doubles it while it is below half the
 *   rate at which throttling began, then raises it by 25%;
 * - past twice that rate (or SEND_RATE_UNLIMITED_ABOVE entries/s) the limit
 *   is lifted.
 * The relay paces batches to the rate and shrinks claims to about half a
 * second of sending, so a throttled relay does not hammer the API.
 */
#ifndef OUTBOX_RELAY_SEND_RATE_H
#define OUTBOX_RELAY_SEND_RATE_H

#include <stddef.h>
#include <stdint.h>

#define SEND_RATE_MIN_PER_S       5.0
#define SEND_RATE_UNLIMITED_ABOVE 100000.0

typedef struct send_rate {
    double rate;             /* entries per second; 0 = unlimited */
    double before_cut;       /* the rate achieved when throttling last began */
    int64_t adjusted_ms;     /* when the rate last changed */
    int64_t next_ms;         /* earliest time the next batch may start */
    int64_t window_start_ms; /* sent-rate measurement, all pipelines together */
    size_t window_entries;
    double last_window_rate;
} send_rate;

void send_rate_init(send_rate *s);

/*
 * Records a finished batch: `sent` entries attempted over `elapsed_ms`, of
 * which `throttled` were refused for throttling. Returns +1 when the rate
 * was lowered, -1 when the limit was lifted, 0 otherwise (for logging).
 */
int send_rate_observe(send_rate *s, size_t sent, size_t throttled, int64_t elapsed_ms,
                      int64_t now_ms);

/* Largest claim that fits about half a second at the current rate. */
int send_rate_batch_limit(const send_rate *s, int batch_size);

/* Milliseconds to wait before the next batch may start (0 = go). */
int64_t send_rate_wait_ms(const send_rate *s, int64_t now_ms);

/* Accounts for `entries` about to be sent at now_ms. */
void send_rate_consume(send_rate *s, size_t entries, int64_t now_ms);

#endif
