/*
 * clock.h - time sources.
 *
 * Monotonic time for timeouts and rates; wall-clock time only for what is
 * shown to people or sent to AWS (SigV4 dates, event Time).
 */
#ifndef OUTBOX_COMMON_CLOCK_H
#define OUTBOX_COMMON_CLOCK_H

#include <stdint.h>

/* Milliseconds from an arbitrary fixed point; never goes backwards. */
int64_t clock_mono_ms(void);

/* Microseconds, monotonic. */
int64_t clock_mono_us(void);

/* Milliseconds since the Unix epoch (wall clock). */
int64_t clock_wall_ms(void);

/* Sleeps; returns early on a signal. */
void clock_sleep_ms(int64_t ms);

/* Uniform random double in [0, 1) from a per-process seeded generator. */
double clock_random_unit(void);

#endif
