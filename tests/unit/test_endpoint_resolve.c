/*
 * test_endpoint_resolve.c - region -> EventBridge endpoint, URL -> Host header,
 * and the static credentials provider.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "support/check_main.h"

static const struct {
    const char *region;
    const char *endpoint;
} good_regions[] = {
    {"us-east-1", "https://events.us-east-1.amazonaws.com"},
    {"eu-west-3", "https://events.eu-west-3.amazonaws.com"},
    {"ap-southeast-4", "https://events.ap-southeast-4.amazonaws.com"},
    {"us-gov-west-1", "https://events.us-gov-west-1.amazonaws.com"},
    {"cn-north-1", "https://events.cn-north-1.amazonaws.com.cn"},
    {"cn-northwest-1", "https://events.cn-northwest-1.amazonaws.com.cn"},
    {"local", "https://events.local.amazonaws.com"},
    /* 64 characters: the longest allowed */
    {"a123456789b123456789c123456789d123456789e123456789f123456789abcd",
     "https://events.a123456789b123456789c123456789d123456789e123456789f123456789abcd"
     ".amazonaws.com"},
};

START_TEST(test_region_maps_to_endpoint)
{
    char out[256];
    or_error err = {{0}};
    ck_assert_msg(aws_eventbridge_endpoint(good_regions[_i].region, out, sizeof(out), &err) ==
                      OR_OK,
                  "%s: %s", good_regions[_i].region, err.msg);
    ck_assert_str_eq(out, good_regions[_i].endpoint);
}
END_TEST

static const char *const bad_regions[] = {
    "",
    "US-EAST-1",
    "us_east_1",
    "us-east-1.",
    "us-east-1/evil",
    "us east 1",
    "us-east-1\n",
    "evil.com#",
    "a123456789b123456789c123456789d123456789e123456789f123456789abcde", /* 65 */
};

START_TEST(test_bad_region_is_rejected_and_named)
{
    char out[256] = "untouched";
    or_error err = {{0}};
    ck_assert_int_eq(aws_eventbridge_endpoint(bad_regions[_i], out, sizeof(out), &err), OR_ERR);
    ck_assert_msg(strstr(err.msg, "region") != NULL, "%s", err.msg);
    ck_assert_msg(strchr(err.msg, '\n') == NULL, "message has a line break: %s", err.msg);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_null_region_and_small_buffer_are_errors)
{
    char small[16];
    or_error err = {{0}};
    ck_assert_int_eq(aws_eventbridge_endpoint(NULL, small, sizeof(small), &err), OR_ERR);
    ck_assert_int_eq(aws_eventbridge_endpoint("us-east-1", small, sizeof(small), &err), OR_ERR);
    ck_assert_str_eq(small, "");
    ck_assert_msg(strstr(err.msg, "does not fit") != NULL, "%s", err.msg);
}
END_TEST

static const struct {
    const char *url;
    const char *host;
} good_urls[] = {
    {"https://events.us-east-1.amazonaws.com", "events.us-east-1.amazonaws.com"},
    {"https://events.us-east-1.amazonaws.com/", "events.us-east-1.amazonaws.com"},
    {"https://events.us-east-1.amazonaws.com:443", "events.us-east-1.amazonaws.com"},
    {"https://events.us-east-1.amazonaws.com:443/", "events.us-east-1.amazonaws.com"},
    {"https://events.us-east-1.amazonaws.com:8443", "events.us-east-1.amazonaws.com:8443"},
    {"https://localhost:80", "localhost:80"},
    {"http://localhost", "localhost"},
    {"http://localhost:80/", "localhost"},
    {"http://localhost:443", "localhost:443"},
    {"http://127.0.0.1:4566", "127.0.0.1:4566"},
    {"http://127.0.0.1:04566/", "127.0.0.1:4566"},
    {"HTTP://localhost:8080", "localhost:8080"},
    {"http://local_stack:4566", "local_stack:4566"},
    {"http://[::1]:8080/", "[::1]:8080"},
    {"http://[::1]", "[::1]"},
    {"https://[2001:db8::1]:443", "[2001:db8::1]"},
    {"http://[fd00:ec2::23]:1", "[fd00:ec2::23]:1"},
    {"http://h:65535", "h:65535"},
};

START_TEST(test_url_gives_host_header)
{
    char out[256];
    or_error err = {{0}};
    ck_assert_msg(aws_endpoint_host(good_urls[_i].url, out, sizeof(out), &err) == OR_OK, "%s: %s",
                  good_urls[_i].url, err.msg);
    ck_assert_str_eq(out, good_urls[_i].host);
}
END_TEST

/* Each bad URL and a word its error message must contain. */
static const struct {
    const char *url;
    const char *reason;
} bad_urls[] = {
    {"", "empty"},
    {"events.us-east-1.amazonaws.com", "http://"},
    {"ftp://example.com", "http://"},
    {"https:/example.com", "http://"},
    {"https://", "no host"},
    {"https:///", "no host"},
    {"https://:443", "no host"},
    {"https://user:pass@example.com", "user information"},
    {"https://user@example.com/", "user information"},
    {"https://example.com/?a=b", "query"},
    {"https://example.com?a=b", "query"},
    {"https://example.com#frag", "fragment"},
    {"https://example.com/#", "fragment"},
    {"https://example.com/path", "path"},
    {"https://example.com//", "path"},
    {"https://example.com:", "port"},
    {"https://example.com:0", "port"},
    {"https://example.com:65536", "port"},
    {"https://example.com:123456", "port"},
    {"https://example.com:-1", "port"},
    {"https://example.com:80a", "port"},
    {"https://example.com:1:2", "port"},
    {"https://exa mple.com", "space"},
    {"https://example.com\r\nX-Evil: 1", "control"},
    {"https://exa%6dple.com", "invalid character"},
    {"https://[::1", "IPv6"},
    {"https://[]:80", "IPv6"},
    {"https://[not-an-ip]:80", "IPv6"},
    {"https://[::1]x", "after the IPv6"},
    {"https://[::1]:", "port"},
    {"https://::1:8080", "no host"},
};

START_TEST(test_bad_url_is_rejected_with_reason)
{
    char out[256] = "untouched";
    or_error err = {{0}};
    ck_assert_msg(aws_endpoint_host(bad_urls[_i].url, out, sizeof(out), &err) == OR_ERR,
                  "accepted %s as %s", bad_urls[_i].url, out);
    ck_assert_msg(strstr(err.msg, bad_urls[_i].reason) != NULL, "%s: \"%s\"", bad_urls[_i].url,
                  err.msg);
    ck_assert_msg(strpbrk(err.msg, "\r\n") == NULL, "message has a line break: %s", err.msg);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_url_limits)
{
    char small[8];
    char out[512];
    or_error err = {{0}};
    char *long_url = malloc(3000);
    ck_assert_ptr_nonnull(long_url);
    ck_assert_int_eq(aws_endpoint_host(NULL, out, sizeof(out), &err), OR_ERR);
    ck_assert_int_eq(aws_endpoint_host("https://events.example.com", small, sizeof(small), &err),
                     OR_ERR);
    ck_assert_msg(strstr(err.msg, "does not fit") != NULL, "%s", err.msg);
    /* host longer than 253 bytes */
    memcpy(long_url, "https://", 8);
    memset(long_url + 8, 'a', 300);
    long_url[308] = '\0';
    ck_assert_int_eq(aws_endpoint_host(long_url, out, sizeof(out), &err), OR_ERR);
    ck_assert_msg(strstr(err.msg, "longer than") != NULL, "%s", err.msg);
    /* whole URL longer than 2048 bytes */
    memset(long_url + 8, 'a', 2900);
    long_url[2908] = '\0';
    ck_assert_int_eq(aws_endpoint_host(long_url, out, sizeof(out), &err), OR_ERR);
    ck_assert_msg(strstr(err.msg, "longer than") != NULL, "%s", err.msg);
    ck_assert_msg(strlen(err.msg) < 300, "message repeats the whole url: %zu", strlen(err.msg));
    free(long_url);
}
END_TEST

START_TEST(test_static_credentials_copy_and_describe)
{
    credentials_provider *p = credentials_provider_new_static(
        "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "TOKEN123");
    aws_credentials c;
    or_error err = {{0}};
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(credentials_provider_describe(p), "static keys AKIA****MPLE");
    ck_assert_ptr_null(strstr(credentials_provider_describe(p), "wJalr"));
    ck_assert_int_eq(credentials_provider_get(p, &c, &err), OR_OK);
    ck_assert_str_eq(c.access_key_id, "AKIAIOSFODNN7EXAMPLE");
    ck_assert_str_eq(c.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    ck_assert_str_eq(c.session_token, "TOKEN123");
    aws_credentials_clear(&c);
    ck_assert_ptr_null(c.access_key_id);
    ck_assert_ptr_null(c.secret_access_key);
    ck_assert_ptr_null(c.session_token);
    aws_credentials_clear(&c); /* twice is harmless */
    /* the provider still has its own copy */
    ck_assert_int_eq(credentials_provider_get(p, &c, &err), OR_OK);
    ck_assert_str_eq(c.access_key_id, "AKIAIOSFODNN7EXAMPLE");
    aws_credentials_clear(&c);
    credentials_provider_free(p);
    credentials_provider_free(NULL);
    aws_credentials_clear(NULL);
}
END_TEST

START_TEST(test_static_credentials_token_optional_and_inputs_checked)
{
    aws_credentials c;
    or_error err = {{0}};
    credentials_provider *p = credentials_provider_new_static("AKIDEXAMPLE", "secret", "");
    ck_assert_ptr_nonnull(p);
    /* short key ids are fully masked */
    ck_assert_str_eq(credentials_provider_describe(p), "static keys ****");
    ck_assert_int_eq(credentials_provider_get(p, &c, &err), OR_OK);
    ck_assert_ptr_null(c.session_token);
    aws_credentials_clear(&c);
    credentials_provider_free(p);

    p = credentials_provider_new_static("AKIDEXAMPLE", "secret", NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(credentials_provider_get(p, &c, &err), OR_OK);
    ck_assert_ptr_null(c.session_token);
    aws_credentials_clear(&c);
    credentials_provider_free(p);

    ck_assert_ptr_null(credentials_provider_new_static("", "secret", NULL));
    ck_assert_ptr_null(credentials_provider_new_static(NULL, "secret", NULL));
    ck_assert_ptr_null(credentials_provider_new_static("AKID", "", NULL));
    ck_assert_ptr_null(credentials_provider_new_static("AKID", NULL, NULL));
    ck_assert_int_eq(credentials_provider_get(NULL, &c, &err), OR_ERR);
    ck_assert_ptr_null(c.secret_access_key);
}
END_TEST

static Suite *endpoint_suite(void)
{
    Suite *s = suite_create("endpoint_resolve");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_region_maps_to_endpoint, 0,
                        (int)(sizeof(good_regions) / sizeof(good_regions[0])));
    tcase_add_loop_test(tc, test_bad_region_is_rejected_and_named, 0,
                        (int)(sizeof(bad_regions) / sizeof(bad_regions[0])));
    tcase_add_test(tc, test_null_region_and_small_buffer_are_errors);
    tcase_add_loop_test(tc, test_url_gives_host_header, 0,
                        (int)(sizeof(good_urls) / sizeof(good_urls[0])));
    tcase_add_loop_test(tc, test_bad_url_is_rejected_with_reason, 0,
                        (int)(sizeof(bad_urls) / sizeof(bad_urls[0])));
    tcase_add_test(tc, test_url_limits);
    tcase_add_test(tc, test_static_credentials_copy_and_describe);
    tcase_add_test(tc, test_static_credentials_token_optional_and_inputs_checked);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_suite(endpoint_suite());
}
