#include "relay/backoff.h"

#include "common/clock.h"

long long backoff_ceiling_ms(int attempt, long long base_ms, long long cap_ms)
{
    if (attempt < 1)
        attempt = 1;
    if (base_ms < 0)
        base_ms = 0;
    long long ceiling = base_ms;
    for (int i = 1; i < attempt && ceiling < cap_ms; i++)
        ceiling *= 2;
    return ceiling < cap_ms ? ceiling : cap_ms;
}

long long backoff_full_jitter_ms(int attempt, long long base_ms, long long cap_ms, double unit)
{
    if (unit < 0.0)
        unit = 0.0;
    if (unit >= 1.0)
        unit = 0.999999;
    return (long long)(unit * (double)backoff_ceiling_ms(attempt, base_ms, cap_ms));
}

long long backoff_delay_ms(int attempt, long long base_ms, long long cap_ms)
{
    return backoff_full_jitter_ms(attempt, base_ms, cap_ms, clock_random_unit());
}
