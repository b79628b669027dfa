/* test_send_rate.c - the adaptive send rate: halves on throttling, recovers, paces batches. */
#include <check.h>
#include <stdlib.h>

#include "relay/send_rate.h"
#include "support/check_main.h"

START_TEST(unlimited_until_throttled)
{
    send_rate s;
    send_rate_init(&s);
    ck_assert_int_eq(send_rate_batch_limit(&s, 500), 500);
    ck_assert_int_eq(send_rate_wait_ms(&s, 1000), 0);
    send_rate_consume(&s, 500, 1000);
    ck_assert_int_eq(send_rate_wait_ms(&s, 1000), 0);
    ck_assert_int_eq(send_rate_observe(&s, 500, 0, 100, 1100), 0);
    ck_assert(s.rate == 0.0);
}
END_TEST

START_TEST(throttling_halves_the_achieved_rate_and_paces_batches)
{
    send_rate s;
    send_rate_init(&s);
    /* 1000 entries in 500 ms = 2000/s achieved, some throttled -> 1000/s */
    ck_assert_int_eq(send_rate_observe(&s, 1000, 10, 500, 10000), 1);
    ck_assert(s.rate > 999.0 && s.rate < 1001.0);
    ck_assert_int_eq(send_rate_batch_limit(&s, 5000), 500); /* half a second */
    ck_assert_int_eq(send_rate_batch_limit(&s, 100), 100);
    send_rate_consume(&s, 500, 10000);
    ck_assert_int_eq(send_rate_wait_ms(&s, 10000), 500);
    ck_assert_int_eq(send_rate_wait_ms(&s, 10400), 100);
    /* other batches that were in flight report the same throttling: one cut only */
    ck_assert_int_eq(send_rate_observe(&s, 500, 500, 500, 10500), 0);
    ck_assert(s.rate > 999.0 && s.rate < 1001.0);
    /* throttled again a second later: halves again, never below the floor */
    ck_assert_int_eq(send_rate_observe(&s, 500, 500, 500, 11000), 1);
    ck_assert(s.rate > 499.0 && s.rate < 501.0);
    for (int i = 0; i < 40; i++)
        send_rate_observe(&s, 1, 1, 1000, 12000 + 1000 * i);
    ck_assert(s.rate >= SEND_RATE_MIN_PER_S);
    ck_assert_int_ge(send_rate_batch_limit(&s, 500), 1);
}
END_TEST

START_TEST(the_cut_uses_the_whole_replicas_rate_not_one_pipelines)
{
    send_rate s;
    send_rate_init(&s);
    /* four pipelines together send 4000 entries in one second */
    for (int i = 0; i < 40; i++)
        send_rate_consume(&s, 100, 1000 + i * 25);
    /* one of them, 100 entries in 100 ms (1000/s alone), is throttled */
    ck_assert_int_eq(send_rate_observe(&s, 100, 5, 100, 2000), 1);
    ck_assert_msg(s.rate > 1500.0 && s.rate < 2500.0, "rate %.0f", s.rate);
}
END_TEST

START_TEST(rate_recovers_without_throttling_and_the_limit_is_lifted)
{
    send_rate s;
    send_rate_init(&s);
    send_rate_observe(&s, 1000, 10, 1000, 0);  /* 1000/s achieved -> 500/s */
    send_rate_observe(&s, 10, 10, 1000, 1000); /* -> 250/s */
    ck_assert(s.rate > 249.0 && s.rate < 251.0);
    ck_assert_int_eq(send_rate_observe(&s, 10, 0, 100, 1500), 0); /* < 1 s: no change */
    ck_assert(s.rate < 251.0);
    send_rate_observe(&s, 10, 0, 100, 2000); /* below half the old rate: doubles */
    ck_assert(s.rate > 499.0 && s.rate < 501.0);
    send_rate_observe(&s, 10, 0, 100, 3000); /* at half: +25% from here */
    ck_assert(s.rate > 624.0 && s.rate < 626.0);
    /* a long quiet spell lifts the limit entirely */
    ck_assert_int_eq(send_rate_observe(&s, 10, 0, 100, 200000), -1);
    ck_assert(s.rate == 0.0);
    ck_assert_int_eq(send_rate_batch_limit(&s, 500), 500);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("send_rate");
    TCase *tc = tcase_create("aimd");
    tcase_add_test(tc, unlimited_until_throttled);
    tcase_add_test(tc, throttling_halves_the_achieved_rate_and_paces_batches);
    tcase_add_test(tc, the_cut_uses_the_whole_replicas_rate_not_one_pipelines);
    tcase_add_test(tc, rate_recovers_without_throttling_and_the_limit_is_lifted);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
