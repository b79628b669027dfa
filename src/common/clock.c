#include "common/clock.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_mono_ms(void)
{
    return clock_mono_us() / 1000;
}

int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void clock_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

double clock_random_unit(void)
{
    /* per thread: erand48 keeps its state in the caller's buffer */
    static _Thread_local int seeded;
    static _Thread_local unsigned short state[3];
    if (!seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long v = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 16) ^
                          (unsigned long)(uintptr_t)&seeded;
        state[0] = (unsigned short)v;
        state[1] = (unsigned short)(v >> 16);
        state[2] = (unsigned short)(ts.tv_sec);
        seeded = 1;
    }
    return erand48(state);
}
