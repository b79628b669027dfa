/*
 * send_rate.h - the adaptive send rate: how fast this replica may publish.
 *
 * Unlimited until EventBridge throttles. On a throttled batch the rate
 * drops to half of what was being achieved (multiplicative decrease); each
 * second without throttling raises it by 25% (so it recovers within
 * seconds), and past SEND_RATE_UNLIMITED_ABOVE entries/s the limit is lifted
 * again. The relay paces batches to the rate and shrinks claims so one batch
 * is about half a second of sending: a throttled relay does not hammer the API.
 */
#ifndef OUTBOX_RELAY_SEND_RATE_H
#define OUTBOX_RELAY_SEND_RATE_H

#include <stddef.h>
#include <stdint.h>

#define SEND_RATE_MIN_PER_S       5.0
#define SEND_RATE_UNLIMITED_ABOVE 100000.0

typedef struct send_rate {
    double rate;         /* entries per second; 0 = unlimited */
    int64_t adjusted_ms; /* when the rate last changed */
    int64_t next_ms;     /* earliest time the next batch may start */
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
