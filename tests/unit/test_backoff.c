/* test_backoff.c - the retry policy: exponential ceiling, full jitter, no overflow. */
#include <check.h>
#include <limits.h>
#include <stdlib.h>

#include "relay/backoff.h"
#include "support/check_main.h"

static const struct {
    int attempt;
    long long base, cap, want;
} ceilings[] = {
    {0, 200, 60000, 200}, /* attempt < 1 counts as the first */
    {1, 200, 60000, 200},
    {2, 200, 60000, 400},
    {3, 200, 60000, 800},
    {9, 200, 60000, 51200},
    {10, 200, 60000, 60000}, /* capped */
    {64, 200, 60000, 60000},
    {1000, 200, 60000, 60000}, /* no overflow for huge attempts */
    {INT_MAX, 1, LLONG_MAX / 4, LLONG_MAX / 4},
    {5, 1000, 500, 500}, /* base above cap: cap wins */
};

START_TEST(ceiling_doubles_per_attempt_and_stops_at_cap)
{
    long long got = backoff_ceiling_ms(ceilings[_i].attempt, ceilings[_i].base, ceilings[_i].cap);
    ck_assert_msg(got == ceilings[_i].want, "attempt %d base %lld cap %lld: got %lld want %lld",
                  ceilings[_i].attempt, ceilings[_i].base, ceilings[_i].cap, got,
                  ceilings[_i].want);
}
END_TEST

START_TEST(full_jitter_spans_zero_to_ceiling)
{
    ck_assert_int_eq(backoff_full_jitter_ms(3, 200, 60000, 0.0), 0);
    ck_assert_int_eq(backoff_full_jitter_ms(3, 200, 60000, 0.5), 400);
    ck_assert_int_lt(backoff_full_jitter_ms(3, 200, 60000, 0.999999), 800);
    /* out-of-range random input is clamped, never exceeding the ceiling */
    ck_assert_int_le(backoff_full_jitter_ms(3, 200, 60000, 5.0), 800);
    ck_assert_int_eq(backoff_full_jitter_ms(3, 200, 60000, -1.0), 0);
}
END_TEST

START_TEST(random_delays_stay_within_bounds_and_vary)
{
    long long min = LLONG_MAX, max = -1;
    for (int i = 0; i < 2000; i++) {
        long long d = backoff_delay_ms(4, 100, 60000);
        ck_assert_int_ge(d, 0);
        ck_assert_int_lt(d, 800);
        if (d < min)
            min = d;
        if (d > max)
            max = d;
    }
    /* full jitter: both ends of [0, 800) are reached in 2000 draws */
    ck_assert_int_lt(min, 100);
    ck_assert_int_gt(max, 700);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("policy");
    tcase_add_loop_test(tc, ceiling_doubles_per_attempt_and_stops_at_cap, 0,
                        (int)(sizeof(ceilings) / sizeof(ceilings[0])));
    tcase_add_test(tc, full_jitter_spans_zero_to_ceiling);
    tcase_add_test(tc, random_delays_stay_within_bounds_and_vary);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
