/* test_strbuf.c - bounded buffers, JSON escaping, and password redaction in logs. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "support/check_main.h"

START_TEST(append_past_the_limit_fails_and_leaves_the_buffer_intact)
{
    strbuf sb;
    strbuf_init(&sb, 8);
    ck_assert_int_eq(strbuf_puts(&sb, "12345"), OR_OK);
    ck_assert_int_eq(strbuf_puts(&sb, "6789"), OR_ERR);
    ck_assert_str_eq(strbuf_cstr(&sb), "12345");
    ck_assert_int_eq(strbuf_puts(&sb, "678"), OR_OK);
    ck_assert_str_eq(strbuf_cstr(&sb), "12345678");
    ck_assert_int_eq(strbuf_putc(&sb, 'x'), OR_ERR);
    ck_assert_int_eq(strbuf_printf(&sb, "%d", 1), OR_ERR);
    ck_assert_uint_eq(sb.len, 8);
    strbuf_free(&sb);
    strbuf_free(NULL);
}
END_TEST

START_TEST(json_string_escapes_quotes_backslashes_and_controls)
{
    strbuf sb;
    strbuf_init(&sb, 1024);
    const char in[] = "a\"b\\c\n\t\x01\xc3\xa9";
    ck_assert_int_eq(strbuf_json_string(&sb, in, sizeof(in) - 1), OR_OK);
    ck_assert_str_eq(strbuf_cstr(&sb), "\"a\\\"b\\\\c\\n\\t\\u0001\xc3\xa9\"");
    strbuf_free(&sb);
    /* a string that does not fit is not half-written */
    strbuf_init(&sb, 6);
    ck_assert_int_eq(strbuf_puts(&sb, "ab"), OR_OK);
    ck_assert_int_eq(strbuf_json_string(&sb, "\"\"\"", 3), OR_ERR);
    ck_assert_str_eq(strbuf_cstr(&sb), "ab");
    strbuf_free(&sb);
}
END_TEST

START_TEST(json_string_fits_a_tight_buffer_when_little_needs_escaping)
{
    /* 20 plain bytes plus quotes fit in 22 even though the worst case would not */
    strbuf sb;
    strbuf_init(&sb, 22);
    ck_assert_int_eq(strbuf_json_string(&sb, "abcdefghijklmnopqrst", 20), OR_OK);
    ck_assert_str_eq(strbuf_cstr(&sb), "\"abcdefghijklmnopqrst\"");
    strbuf_free(&sb);
    /* a long run with escapes at both ends and in the middle */
    strbuf_init(&sb, 1 << 16);
    char in[3000];
    memset(in, 'x', sizeof(in));
    in[0] = '"';
    in[1500] = '\n';
    in[2999] = '\\';
    ck_assert_int_eq(strbuf_json_string(&sb, in, sizeof(in)), OR_OK);
    ck_assert_uint_eq(sb.len, 3000 + 3 + 2);
    ck_assert(strncmp(strbuf_cstr(&sb), "\"\\\"xx", 5) == 0);
    ck_assert_str_eq(strbuf_cstr(&sb) + sb.len - 4, "x\\\\\"");
    strbuf_free(&sb);
}
END_TEST

static const struct {
    const char *in, *want;
} redactions[] = {
    {"postgresql://relay:s3cret@db:5432/app", "postgresql://relay:****@db:5432/app"},
    {"postgres://relay:p@ss@db/app", "postgres://relay:****@db/app"},
    {"postgresql://relay@db:5432/app", "postgresql://relay@db:5432/app"},
    {"postgresql://db/app?user=x&password=s3cret&sslmode=require",
     "postgresql://db/app?user=x&password=****&sslmode=require"},
    {"host=db password=s3cret user=relay", "host=db password=**** user=relay"},
    {"host=db password = 's3 cret' user=relay", "host=db password =**** user=relay"},
    {"host=db\tpassword=s3cret", "host=db\tpassword=****"},
    {"host=db user=relay", "host=db user=relay"},
};

START_TEST(conninfo_passwords_never_reach_the_log)
{
    char out[256];
    log_redact_conninfo(redactions[_i].in, out, sizeof(out));
    ck_assert_str_eq(out, redactions[_i].want);
    ck_assert_ptr_null(strstr(out, "s3cret"));
    ck_assert_ptr_null(strstr(out, "cret"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("strbuf");
    tcase_add_test(tc, append_past_the_limit_fails_and_leaves_the_buffer_intact);
    tcase_add_test(tc, json_string_escapes_quotes_backslashes_and_controls);
    tcase_add_test(tc, json_string_fits_a_tight_buffer_when_little_needs_escaping);
    tcase_add_loop_test(tc, conninfo_passwords_never_reach_the_log, 0,
                        (int)(sizeof(redactions) / sizeof(redactions[0])));
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
