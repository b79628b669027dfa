/*
 * backoff.h - the retry policy: exponential backoff with full jitter.
 *
 * delay = U[0,1) * min(cap, base * 2^(attempt-1)), as in the AWS SDKs'
 * "standard" retry mode. Used for rows that failed to publish (per row, by
 * its attempt count) and for reconnecting to the database.
 */
#ifndef OUTBOX_RELAY_BACKOFF_H
#define OUTBOX_RELAY_BACKOFF_H

/*
 * The ceiling for attempt n (n >= 1): min(cap_ms, base_ms * 2^(n-1)),
 * without overflow for any n. n < 1 is treated as 1.
 */
long long backoff_ceiling_ms(int attempt, long long base_ms, long long cap_ms);

/* Full-jitter delay for attempt n given a uniform random number in [0,1). */
long long backoff_full_jitter_ms(int attempt, long long base_ms, long long cap_ms, double unit);

/* Same, drawing the random number from clock_random_unit(). */
long long backoff_delay_ms(int attempt, long long base_ms, long long cap_ms);

#endif
