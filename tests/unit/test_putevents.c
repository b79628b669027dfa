/*
 * test_putevents.c - PutEvents wire format: request bodies, entry sizes,
 * reply parsing, error classification and request packing. No network.
 */
#include <check.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eventbridge/entry.h"
#include "eventbridge/putevents.h"
#include "support/check_main.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- helpers */

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != 0) {
        int extra;
        if (*p < 0x80)
            extra = 0;
        else if ((*p & 0xE0) == 0xC0)
            extra = 1;
        else if ((*p & 0xF0) == 0xE0)
            extra = 2;
        else if ((*p & 0xF8) == 0xF0)
            extra = 3;
        else
            return false;
        p++;
        for (int i = 0; i < extra; i++, p++) {
            if ((*p & 0xC0) != 0x80)
                return false;
        }
    }
    return true;
}

static char *build(const eb_entry *entries, size_t n)
{
    strbuf sb;
    or_error err;
    strbuf_init(&sb, 1 << 20);
    ck_assert_msg(putevents_build_body(entries, n, &sb, &err) == OR_OK, "build failed: %s",
                  err.msg);
    return strbuf_detach(&sb, NULL);
}

/* ----------------------------------------------------------- body building */

static const struct body_case {
    const char *name;
    eb_entry entry;
    const char *expect;
} body_cases[] = {
    {"plain entry with bus and time",
     {"com.example", "UserChanged", "{\"id\":1}", "default", true, 1764226164123LL},
     "{\"Entries\":[{\"Source\":\"com.example\",\"DetailType\":\"UserChanged\","
     "\"Detail\":\"{\\\"id\\\":1}\",\"EventBusName\":\"default\",\"Time\":1764226164.123}]}"},
    {"no bus name and no time omits both fields",
     {"s", "t", "{}", NULL, false, 0},
     "{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":\"{}\"}]}"},
    {"time keeps three decimals with leading zeros",
     {"s", "t", "{}", "b", true, 5},
     "{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":\"{}\","
     "\"EventBusName\":\"b\",\"Time\":0.005}]}"},
    {"whole seconds still print .000",
     {"s", "t", "{}", "b", true, 1700000000000LL},
     "{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":\"{}\","
     "\"EventBusName\":\"b\",\"Time\":1700000000.000}]}"},
    {"quotes and backslashes are escaped",
     {"a\"b\\c", "t", "{\"k\":\"x\\\\y\"}", "b", false, 0},
     "{\"Entries\":[{\"Source\":\"a\\\"b\\\\c\",\"DetailType\":\"t\","
     "\"Detail\":\"{\\\"k\\\":\\\"x\\\\\\\\y\\\"}\",\"EventBusName\":\"b\"}]}"},
    {"control characters are escaped",
     {"s", "tab\there\nnl\x01x\x1f", "{}", "b", false, 0},
     "{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"tab\\there\\nnl\\u0001x\\u001f\","
     "\"Detail\":\"{}\",\"EventBusName\":\"b\"}]}"},
    {"unicode passes through as utf-8",
     {"s", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "{\"n\":\"\xc3\xa9\"}", "b", false, 0},
     "{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"caf\xc3\xa9 \xe2\x82\xac "
     "\xf0\x9f\x98\x80\",\"Detail\":\"{\\\"n\\\":\\\"\xc3\xa9\\\"}\",\"EventBusName\":\"b\"}]}"},
};

START_TEST(test_build_body_matches_expected_text)
{
    const struct body_case *c = &body_cases[_i];
    char *body = build(&c->entry, 1);
    ck_assert_msg(strcmp(body, c->expect) == 0, "%s:\n got %s\nwant %s", c->name, body, c->expect);
    free(body);
}
END_TEST

/* The body parses as JSON and every field round-trips to the original bytes. */
START_TEST(test_build_body_round_trips_through_json_parser)
{
    const struct body_case *c = &body_cases[_i];
    char *body = build(&c->entry, 1);
    json_object *root = json_tokener_parse(body);
    ck_assert_msg(root != NULL, "%s: body is not JSON: %s", c->name, body);
    json_object *entries = json_object_object_get(root, "Entries");
    ck_assert_int_eq(json_object_array_length(entries), 1);
    json_object *e = json_object_array_get_idx(entries, 0);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(e, "Source")), c->entry.source);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(e, "DetailType")),
                     c->entry.detail_type);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(e, "Detail")), c->entry.detail);
    json_object *t = NULL;
    ck_assert(json_object_object_get_ex(e, "Time", &t) == c->entry.has_time);
    if (c->entry.has_time) {
        double want = (double)c->entry.time_ms / 1000.0;
        ck_assert_double_eq_tol(json_object_get_double(t), want, 0.0005);
    }
    json_object_put(root);
    free(body);
}
END_TEST

START_TEST(test_build_body_joins_several_entries_in_order)
{
    eb_entry e[3] = {
        {"s1", "t1", "{}", "b", false, 0},
        {"s2", "t2", "{}", "b", false, 0},
        {"s3", "t3", "{}", "b", false, 0},
    };
    char *body = build(e, 3);
    json_object *root = json_tokener_parse(body);
    ck_assert_ptr_nonnull(root);
    json_object *entries = json_object_object_get(root, "Entries");
    ck_assert_int_eq(json_object_array_length(entries), 3);
    for (size_t i = 0; i < 3; i++) {
        json_object *x = json_object_array_get_idx(entries, i);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(x, "Source")), e[i].source);
    }
    json_object_put(root);
    free(body);
}
END_TEST

START_TEST(test_build_body_rejects_bad_counts_and_overflow)
{
    eb_entry e[11];
    for (size_t i = 0; i < 11; i++)
        e[i] = (eb_entry){"s", "t", "{}", "b", false, 0};
    strbuf sb;
    or_error err;
    strbuf_init(&sb, 1 << 16);
    ck_assert(putevents_build_body(e, 0, &sb, &err) == OR_ERR);
    ck_assert(putevents_build_body(e, 11, &sb, &err) == OR_ERR);
    ck_assert_ptr_nonnull(strstr(err.msg, "11"));
    ck_assert(putevents_build_body(e, 10, &sb, &err) == OR_OK);
    strbuf_free(&sb);

    /* a limit too small fails and leaves what was already there untouched */
    strbuf_init(&sb, 40);
    ck_assert(strbuf_puts(&sb, "prefix") == OR_OK);
    ck_assert(putevents_build_body(e, 1, &sb, &err) == OR_ERR);
    ck_assert_str_eq(strbuf_cstr(&sb), "prefix");
    ck_assert_ptr_nonnull(strstr(err.msg, "limit"));

    eb_entry nosrc = {NULL, "t", "{}", "b", false, 0};
    ck_assert(putevents_build_body(&nosrc, 1, &sb, &err) == OR_ERR);
    strbuf_free(&sb);
}
END_TEST

/* ------------------------------------------------------------- entry size */

static const struct size_case {
    const char *name;
    eb_entry entry;
    size_t expect;
} size_cases[] = {
    {"no time counts only the three strings", {"abc", "de", "{}", "bus", false, 0}, 7},
    {"time adds 14 bytes", {"abc", "de", "{}", "bus", true, 1}, 21},
    {"bus name does not count",
     {"abc", "de", "{}", "a-very-long-event-bus-name-that-does-not-count", false, 0},
     7},
    {"multibyte utf-8 counts bytes not characters",
     {"\xc3\xa9", "\xe2\x82\xac", "{\"x\":\"\xf0\x9f\x98\x80\"}", NULL, false, 0},
     2 + 3 + 12},
    {"empty strings", {"", "", "", NULL, true, 0}, 14},
    {"characters needing json escapes count once", {"\"", "\\", "{\n}", NULL, false, 0}, 5},
};

START_TEST(test_entry_size_follows_aws_formula)
{
    const struct size_case *c = &size_cases[_i];
    ck_assert_msg(eb_entry_size(&c->entry) == c->expect, "%s: got %zu want %zu", c->name,
                  eb_entry_size(&c->entry), c->expect);
}
END_TEST

/* ----------------------------------------------------------- reply parsing */

#define MAXN 5

static const struct reply_case {
    const char *name;
    long status;
    const char *header;
    const char *body;
    size_t n;
    eb_outcome outcome[MAXN];
    const char *code[MAXN]; /* "" for accepted */
    bool throttled[MAXN];
    const char *msg_part; /* expected in every failed entry's message, or NULL */
} reply_cases[] = {
    {"all accepted",
     200,
     "",
     "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"id-1\"},{\"EventId\":\"id-2\"}]}",
     2,
     {EB_ACCEPTED, EB_ACCEPTED},
     {"", ""},
     {false, false},
     NULL},
    {"accepted with whitespace around the json",
     200,
     "",
     "  \n{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"id-1\"}]}\r\n ",
     1,
     {EB_ACCEPTED},
     {""},
     {false},
     NULL},
    {"partial failure gives each entry its own outcome",
     200,
     "",
     "{\"FailedEntryCount\":3,\"Entries\":[{\"EventId\":\"a\"},"
     "{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"internal\"},"
     "{\"ErrorCode\":\"ThrottlingException\",\"ErrorMessage\":\"slow down\"},"
     "{\"ErrorCode\":\"MalformedDetail\",\"ErrorMessage\":\"Detail is malformed.\"},"
     "{\"EventId\":\"e\"}]}",
     5,
     {EB_ACCEPTED, EB_RETRYABLE, EB_RETRYABLE, EB_PERMANENT, EB_ACCEPTED},
     {"", "InternalFailure", "ThrottlingException", "MalformedDetail", ""},
     {false, false, true, false, false},
     NULL},
    {"unknown per-entry code is retryable",
     200,
     "",
     "{\"FailedEntryCount\":1,\"Entries\":[{\"ErrorCode\":\"SomethingNew\","
     "\"ErrorMessage\":\"?\"}]}",
     1,
     {EB_RETRYABLE},
     {"SomethingNew"},
     {false},
     "?"},
    {"missing FailedEntryCount is tolerated",
     200,
     "",
     "{\"Entries\":[{\"EventId\":\"a\"}]}",
     1,
     {EB_ACCEPTED},
     {""},
     {false},
     NULL},
    {"FailedEntryCount disagreeing with entries",
     200,
     "",
     "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"},{\"ErrorCode\":\"InternalFailure\"}]"
     "}",
     2,
     {EB_RETRYABLE, EB_RETRYABLE},
     {"InvalidReply", "InvalidReply"},
     {false, false},
     "FailedEntryCount is 0 but 1 entries failed"},
    {"FailedEntryCount that is not a number",
     200,
     "",
     "{\"FailedEntryCount\":\"0\",\"Entries\":[{\"EventId\":\"a\"}]}",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "FailedEntryCount is not an integer"},
    {"fewer entries than sent",
     200,
     "",
     "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"},{\"EventId\":\"b\"},"
     "{\"EventId\":\"c\"}]}",
     5,
     {EB_RETRYABLE, EB_RETRYABLE, EB_RETRYABLE, EB_RETRYABLE, EB_RETRYABLE},
     {"InvalidReply", "InvalidReply", "InvalidReply", "InvalidReply", "InvalidReply"},
     {false},
     "reply has 3 entries for 5 sent"},
    {"more entries than sent",
     200,
     "",
     "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"},{\"EventId\":\"b\"}]}",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "reply has 2 entries for 1 sent"},
    {"entry with neither EventId nor ErrorCode",
     200,
     "",
     "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"},{}]}",
     2,
     {EB_RETRYABLE, EB_RETRYABLE},
     {"InvalidReply", "InvalidReply"},
     {false},
     "entry 1 has neither EventId nor ErrorCode"},
    {"entry with both EventId and ErrorCode",
     200,
     "",
     "{\"FailedEntryCount\":1,\"Entries\":[{\"EventId\":\"a\",\"ErrorCode\":\"InternalFailure\"}]}",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "entry 0 has both EventId and ErrorCode"},
    {"entry with an empty EventId",
     200,
     "",
     "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"\"}]}",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "neither EventId nor ErrorCode"},
    {"entry that is not an object",
     200,
     "",
     "{\"FailedEntryCount\":0,\"Entries\":[\"a\"]}",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "entry 0 is not an object"},
    {"no Entries member",
     200,
     "",
     "{\"FailedEntryCount\":0}",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "no Entries array"},
    {"Entries is not an array",
     200,
     "",
     "{\"FailedEntryCount\":0,\"Entries\":{}}",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "no Entries array"},
    {"garbage body",
     200,
     "",
     "this is not json",
     2,
     {EB_RETRYABLE, EB_RETRYABLE},
     {"InvalidReply", "InvalidReply"},
     {false},
     "not valid JSON"},
    {"truncated json",
     200,
     "",
     "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "truncated"},
    {"trailing garbage after the json",
     200,
     "",
     "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"}]} extra",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "trailing data"},
    {"two json documents",
     200,
     "",
     "{\"Entries\":[{\"EventId\":\"a\"}]}{\"Entries\":[{\"EventId\":\"a\"}]}",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "trailing data"},
    {"html page with 200",
     200,
     "",
     "<html><body><h1>Gateway says hi</h1></body></html>",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "not valid JSON"},
    {"empty body with 200", 200, "", "", 1, {EB_RETRYABLE}, {"InvalidReply"}, {false}, "empty"},
    {"json array instead of object",
     200,
     "",
     "[{\"EventId\":\"a\"}]",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "not an object"},
    {"bare number instead of object",
     200,
     "",
     "42",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "not an object"},
    {"non-json single quotes rejected",
     200,
     "",
     "{'Entries':[{'EventId':'a'}]}",
     1,
     {EB_RETRYABLE},
     {"InvalidReply"},
     {false},
     "not valid JSON"},
    {"throttling error type header with coral uri",
     400,
     "ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/",
     "{\"message\":\"Rate exceeded\"}",
     2,
     {EB_RETRYABLE, EB_RETRYABLE},
     {"ThrottlingException", "ThrottlingException"},
     {true, true},
     "Rate exceeded"},
    {"500 with namespaced __type in the body",
     500,
     "",
     "{\"__type\":\"com.amazonaws.events#InternalException\",\"message\":\"oops\"}",
     1,
     {EB_RETRYABLE},
     {"InternalException"},
     {false},
     "oops"},
    {"503 with an html body",
     503,
     "",
     "<html>Service Unavailable</html>",
     2,
     {EB_RETRYABLE, EB_RETRYABLE},
     {"HTTP503", "HTTP503"},
     {false},
     "HTTP 503"},
    {"429 without a code is throttling",
     429,
     "",
     "",
     1,
     {EB_RETRYABLE},
     {"HTTP429"},
     {true},
     "HTTP 429"},
    {"400 validation error is permanent",
     400,
     "",
     "{\"__type\":\"ValidationException\",\"Message\":\"1 validation error detected\"}",
     2,
     {EB_PERMANENT, EB_PERMANENT},
     {"ValidationException", "ValidationException"},
     {false},
     "1 validation error detected"},
    {"400 with code member instead of __type",
     400,
     "",
     "{\"code\":\"ResourceNotFoundException\",\"message\":\"no bus\"}",
     1,
     {EB_PERMANENT},
     {"ResourceNotFoundException"},
     {false},
     "no bus"},
    {"403 access denied is permanent",
     403,
     "AccessDeniedException",
     "{\"Message\":\"not allowed\"}",
     1,
     {EB_PERMANENT},
     {"AccessDeniedException"},
     {false},
     "not allowed"},
    {"403 bad signature is retryable",
     403,
     "",
     "{\"__type\":\"InvalidSignatureException\",\"message\":\"The request signature "
     "we calculated does not match\\n\\nThe Canonical String was\\nx-amz-security-token:SECRET\"}",
     1,
     {EB_RETRYABLE},
     {"InvalidSignatureException"},
     {false},
     "does not match"},
    {"400 with no header and no body",
     400,
     "",
     "",
     1,
     {EB_PERMANENT},
     {"HTTP400"},
     {false},
     "HTTP 400"},
    {"header wins over body type",
     400,
     "ThrottlingException",
     "{\"__type\":\"ValidationException\"}",
     1,
     {EB_RETRYABLE},
     {"ThrottlingException"},
     {true},
     NULL},
    {"redirect is retryable", 302, "", "", 1, {EB_RETRYABLE}, {"HTTP302"}, {false}, NULL},
};

START_TEST(test_parse_reply_table)
{
    const struct reply_case *c = &reply_cases[_i];
    eb_result res[MAXN];
    or_error err;
    memset(res, 0xAB, sizeof(res));
    ck_assert(putevents_parse_reply(c->status, c->header, c->body, strlen(c->body), c->n, res,
                                    &err) == OR_OK);
    for (size_t i = 0; i < c->n; i++) {
        ck_assert_msg(res[i].outcome == c->outcome[i], "%s: entry %zu outcome %d want %d", c->name,
                      i, res[i].outcome, c->outcome[i]);
        const char *want_code = c->code[i] != NULL ? c->code[i] : c->code[0];
        ck_assert_msg(strcmp(res[i].error_code, want_code) == 0, "%s: entry %zu code %s want %s",
                      c->name, i, res[i].error_code, want_code);
        ck_assert_msg(res[i].throttled == c->throttled[i] || (i > 0 && c->throttled[i] == false &&
                                                              res[i].throttled == c->throttled[0]),
                      "%s: entry %zu throttled %d", c->name, i, res[i].throttled);
        ck_assert(memchr(res[i].error_message, 0, sizeof(res[i].error_message)) != NULL);
        ck_assert(memchr(res[i].event_id, 0, sizeof(res[i].event_id)) != NULL);
        if (res[i].outcome == EB_ACCEPTED) {
            ck_assert_msg(res[i].event_id[0] != '\0', "%s: accepted without id", c->name);
        } else {
            ck_assert_msg(res[i].event_id[0] == '\0', "%s: failed with an id", c->name);
            if (c->msg_part != NULL)
                ck_assert_msg(strstr(res[i].error_message, c->msg_part) != NULL,
                              "%s: entry %zu message \"%s\" lacks \"%s\"", c->name, i,
                              res[i].error_message, c->msg_part);
            ck_assert_msg(strchr(res[i].error_message, '\n') == NULL, "%s: newline in message",
                          c->name);
            ck_assert_msg(strstr(res[i].error_message, "SECRET") == NULL,
                          "%s: message leaks what follows the first line", c->name);
        }
    }
}
END_TEST

START_TEST(test_parse_reply_keeps_event_ids_and_messages)
{
    const char *body = "{\"FailedEntryCount\":1,\"Entries\":[{\"EventId\":"
                       "\"11710aed-b79e-4468-a20b-bb3c0c3b4860\"},{\"ErrorCode\":"
                       "\"InternalFailure\",\"ErrorMessage\":\"try again\"}]}";
    eb_result res[2];
    or_error err;
    ck_assert(putevents_parse_reply(200, NULL, body, strlen(body), 2, res, &err) == OR_OK);
    ck_assert_str_eq(res[0].event_id, "11710aed-b79e-4468-a20b-bb3c0c3b4860");
    ck_assert_str_eq(res[0].error_code, "");
    ck_assert_str_eq(res[1].error_message, "try again");
    ck_assert(!res[1].throttled);
}
END_TEST

START_TEST(test_parse_reply_rejects_zero_entries)
{
    eb_result res[1];
    or_error err;
    ck_assert(putevents_parse_reply(200, "", "{}", 2, 0, res, &err) == OR_ERR);
}
END_TEST

START_TEST(test_parse_reply_body_with_embedded_nul_is_invalid)
{
    const char body[] = "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"}]}\0junk";
    eb_result res[1];
    or_error err;
    ck_assert(putevents_parse_reply(200, "", body, sizeof(body) - 1, 1, res, &err) == OR_OK);
    ck_assert_int_eq(res[0].outcome, EB_RETRYABLE);
    ck_assert_str_eq(res[0].error_code, "InvalidReply");
}
END_TEST

START_TEST(test_parse_reply_rejects_deep_nesting)
{
    strbuf sb;
    strbuf_init(&sb, 1 << 16);
    for (int i = 0; i < 5000; i++)
        ck_assert(strbuf_putc(&sb, '[') == OR_OK);
    for (int i = 0; i < 5000; i++)
        ck_assert(strbuf_putc(&sb, ']') == OR_OK);
    eb_result res[1];
    or_error err;
    ck_assert(putevents_parse_reply(200, "", strbuf_cstr(&sb), sb.len, 1, res, &err) == OR_OK);
    ck_assert_int_eq(res[0].outcome, EB_RETRYABLE);
    ck_assert_str_eq(res[0].error_code, "InvalidReply");
    strbuf_free(&sb);
}
END_TEST

/* Long messages are cut at a character boundary, stay valid UTF-8 and say so. */
START_TEST(test_parse_reply_truncates_long_messages_safely)
{
    strbuf body;
    strbuf_init(&body, 1 << 16);
    ck_assert(strbuf_puts(&body, "{\"FailedEntryCount\":1,\"Entries\":[{\"ErrorCode\":"
                                 "\"InternalFailure\",\"ErrorMessage\":\"x") == OR_OK);
    for (int i = 0; i < 400; i++)
        ck_assert(strbuf_puts(&body, "\xe2\x82\xac") == OR_OK); /* euro sign, 3 bytes */
    ck_assert(strbuf_puts(&body, "\"}]}") == OR_OK);

    for (int shift = 0; shift < 3; shift++) {
        /* shift the multibyte run so the cut lands on every byte position */
        eb_result res[1];
        or_error err;
        strbuf b2;
        strbuf_init(&b2, 1 << 16);
        size_t x_end = (size_t)(strstr(body.data, ":\"x") - body.data) + 3; /* after "x" */
        ck_assert(strbuf_append(&b2, body.data, x_end) == OR_OK);
        for (int k = 0; k < shift; k++)
            ck_assert(strbuf_putc(&b2, 'y') == OR_OK);
        ck_assert(strbuf_puts(&b2, body.data + x_end) == OR_OK);
        ck_assert(putevents_parse_reply(200, "", b2.data, b2.len, 1, res, &err) == OR_OK);
        ck_assert_str_eq(res[0].error_code, "InternalFailure");
        size_t len = strlen(res[0].error_message);
        ck_assert(len < sizeof(res[0].error_message));
        ck_assert(len > 200);
        ck_assert(utf8_valid(res[0].error_message));
        ck_assert_str_eq(res[0].error_message + len - 3, "...");
        strbuf_free(&b2);
    }
    strbuf_free(&body);
}
END_TEST

START_TEST(test_parse_reply_replaces_control_characters_in_messages)
{
    const char *body = "{\"FailedEntryCount\":1,\"Entries\":[{\"ErrorCode\":\"Internal\\u0001"
                       "Failure\",\"ErrorMessage\":\"a\\tb\\u001bc\"}]}";
    eb_result res[1];
    or_error err;
    ck_assert(putevents_parse_reply(200, "", body, strlen(body), 1, res, &err) == OR_OK);
    ck_assert_str_eq(res[0].error_message, "a b c");
    ck_assert_str_eq(res[0].error_code, "Internal_Failure");
}
END_TEST

/* ----------------------------------------------------------- classification */

static const struct classify_case {
    const char *code;
    long status;
    eb_outcome outcome;
    bool throttled;
} classify_cases[] = {
    /* per-entry */
    {"InternalFailure", 0, EB_RETRYABLE, false},
    {"ThrottlingException", 0, EB_RETRYABLE, true},
    {"MalformedDetail", 0, EB_PERMANENT, false},
    {"InvalidArgument", 0, EB_PERMANENT, false},
    {"NotAuthorizedForSourceException", 0, EB_PERMANENT, false},
    {"NotAuthorizedForDetailTypeException", 0, EB_PERMANENT, false},
    {"AccessDeniedException", 0, EB_PERMANENT, false},
    {"InvalidAccountIdException", 0, EB_PERMANENT, false},
    {"RedactionFailure", 0, EB_PERMANENT, false},
    {"EntryTooLarge", 0, EB_PERMANENT, false},
    {"SomeFutureCode", 0, EB_RETRYABLE, false},
    {"InvalidReply", 0, EB_RETRYABLE, false},
    {"", 0, EB_RETRYABLE, false},
    /* throttling, whatever the status */
    {"Throttling", 400, EB_RETRYABLE, true},
    {"ThrottlingException", 400, EB_RETRYABLE, true},
    {"TooManyRequestsException", 400, EB_RETRYABLE, true},
    {"RequestLimitExceeded", 400, EB_RETRYABLE, true},
    {"LimitExceededException", 400, EB_RETRYABLE, true},
    {"LimitExceededException", 0, EB_RETRYABLE, true},
    {"HTTP429", 429, EB_RETRYABLE, true},
    {"SomethingElse", 429, EB_RETRYABLE, true},
    /* server side */
    {"HTTP500", 500, EB_RETRYABLE, false},
    {"InternalException", 500, EB_RETRYABLE, false},
    {"HTTP502", 502, EB_RETRYABLE, false},
    {"HTTP503", 503, EB_RETRYABLE, false},
    {"HTTP504", 504, EB_RETRYABLE, false},
    {"ValidationException", 500, EB_RETRYABLE, false},
    /* our own auth problems: never drop rows for them */
    {"InvalidSignatureException", 403, EB_RETRYABLE, false},
    {"UnrecognizedClientException", 403, EB_RETRYABLE, false},
    {"ExpiredTokenException", 400, EB_RETRYABLE, false},
    {"IncompleteSignature", 400, EB_RETRYABLE, false},
    {"MissingAuthenticationToken", 403, EB_RETRYABLE, false},
    {"SignatureDoesNotMatch", 403, EB_RETRYABLE, false},
    /* other client errors are permanent for the request */
    {"AccessDeniedException", 403, EB_PERMANENT, false},
    {"ValidationException", 400, EB_PERMANENT, false},
    {"ResourceNotFoundException", 400, EB_PERMANENT, false},
    {"HTTP400", 400, EB_PERMANENT, false},
    {"HTTP413", 413, EB_PERMANENT, false},
    /* not an AWS answer at all */
    {"HTTP302", 302, EB_RETRYABLE, false},
    {"HTTP101", 101, EB_RETRYABLE, false},
};

START_TEST(test_classify_table)
{
    const struct classify_case *c = &classify_cases[_i];
    bool throttled = !c->throttled;
    eb_outcome got = putevents_classify(c->code, c->status, &throttled);
    ck_assert_msg(got == c->outcome, "%s/%ld: outcome %d want %d", c->code, c->status, got,
                  c->outcome);
    ck_assert_msg(throttled == c->throttled, "%s/%ld: throttled %d want %d", c->code, c->status,
                  throttled, c->throttled);
}
END_TEST

START_TEST(test_classify_accepts_null_code_and_null_flag)
{
    ck_assert_int_eq(putevents_classify(NULL, 503, NULL), EB_RETRYABLE);
    ck_assert_int_eq(putevents_classify(NULL, 400, NULL), EB_PERMANENT);
}
END_TEST

static const struct norm_case {
    const char *raw;
    const char *expect;
} norm_cases[] = {
    {"ThrottlingException", "ThrottlingException"},
    {"ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/",
     "ThrottlingException"},
    {"com.amazonaws.events#InternalException", "InternalException"},
    {"aws.protocoltests.restjson#FooError:http://internal.amazon.com/coral/com.amazon.x/",
     "FooError"},
    {"a#b#Deepest", "Deepest"},
    {"Code:uri#with#hashes", "Code"},
    {"  Padded  ", "Padded"},
    {"", ""},
    {NULL, ""},
};

START_TEST(test_normalize_code_table)
{
    const struct norm_case *c = &norm_cases[_i];
    char out[80];
    memset(out, 'Z', sizeof(out));
    putevents_normalize_code(c->raw, out, sizeof(out));
    ck_assert_str_eq(out, c->expect);
}
END_TEST

START_TEST(test_normalize_code_truncates_to_buffer)
{
    char out[6];
    putevents_normalize_code("ns#ThrottlingException", out, sizeof(out));
    ck_assert_str_eq(out, "Throt");
}
END_TEST

/* ---------------------------------------------------------------- packing */

#define MAXP 12

static const struct pack_case {
    const char *name;
    size_t n;
    size_t sizes[MAXP]; /* eb_entry_size of each entry */
    size_t max_entries;
    size_t max_bytes;
    size_t expect_requests;
    size_t expect_of[MAXP]; /* SIZE_MAX = too large */
} pack_cases[] = {
    {"everything fits one request", 3, {10, 10, 10}, 10, 100, 1, {0, 0, 0}},
    {"entry count limit splits", 5, {1, 1, 1, 1, 1}, 2, 100, 3, {0, 0, 1, 1, 2}},
    {"ten per request",
     12,
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
     10,
     100,
     2,
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}},
    {"byte limit splits, exact fit allowed", 4, {40, 60, 50, 50}, 10, 100, 2, {0, 0, 1, 1}},
    {"byte limit one over splits", 3, {40, 61, 39}, 10, 100, 2, {0, 1, 1}},
    {"order is kept even if a later entry would fit earlier",
     3,
     {90, 20, 5},
     10,
     100,
     2,
     {0, 1, 1}},
    {"oversized entry is skipped, not sent", 3, {10, 101, 10}, 10, 100, 1, {0, SIZE_MAX, 0}},
    {"entry exactly at the limit is sent alone", 3, {10, 100, 10}, 10, 100, 3, {0, 1, 2}},
    {"only oversized entries means no request", 2, {200, 300}, 10, 100, 0, {SIZE_MAX, SIZE_MAX}},
    {"one entry per request", 3, {1, 1, 1}, 1, 100, 3, {0, 1, 2}},
};

START_TEST(test_pack_table)
{
    const struct pack_case *c = &pack_cases[_i];
    eb_entry e[MAXP] = {{0}};
    char *details[MAXP];
    size_t of[MAXP];
    for (size_t i = 0; i < c->n; i++) {
        details[i] = malloc(c->sizes[i] + 1);
        memset(details[i], 'd', c->sizes[i]);
        details[i][c->sizes[i]] = '\0';
        e[i] = (eb_entry){"", "", details[i], "bus", false, 0};
        ck_assert_uint_eq(eb_entry_size(&e[i]), c->sizes[i]);
        of[i] = 12345;
    }
    size_t got = putevents_pack(e, c->n, c->max_entries, c->max_bytes, of);
    ck_assert_msg(got == c->expect_requests, "%s: %zu requests want %zu", c->name, got,
                  c->expect_requests);
    for (size_t i = 0; i < c->n; i++) {
        size_t want = c->expect_of[i] == SIZE_MAX ? PUTEVENTS_TOO_LARGE : c->expect_of[i];
        ck_assert_msg(of[i] == want, "%s: entry %zu in request %zu want %zu", c->name, i, of[i],
                      want);
        free(details[i]);
    }
}
END_TEST

/* Packing with Time set counts the 14 bytes. */
START_TEST(test_pack_counts_time_bytes)
{
    eb_entry e[2] = {
        {"s", "t", "{}", NULL, true, 1}, /* 1 + 1 + 2 + 14 = 18 */
        {"s", "t", "{}", NULL, true, 1},
    };
    size_t of[2];
    ck_assert_uint_eq(putevents_pack(e, 2, 10, 36, of), 1);
    ck_assert_uint_eq(putevents_pack(e, 2, 10, 35, of), 2);
    ck_assert_uint_eq(putevents_pack(e, 2, 10, 17, of), 0);
    ck_assert_uint_eq(of[0], PUTEVENTS_TOO_LARGE);
}
END_TEST

static Suite *putevents_suite(void)
{
    Suite *s = suite_create("putevents");
    TCase *tc = tcase_create("body");
    tcase_add_loop_test(tc, test_build_body_matches_expected_text, 0, (int)ARRAY_LEN(body_cases));
    tcase_add_loop_test(tc, test_build_body_round_trips_through_json_parser, 0,
                        (int)ARRAY_LEN(body_cases));
    tcase_add_test(tc, test_build_body_joins_several_entries_in_order);
    tcase_add_test(tc, test_build_body_rejects_bad_counts_and_overflow);
    suite_add_tcase(s, tc);

    tc = tcase_create("entry_size");
    tcase_add_loop_test(tc, test_entry_size_follows_aws_formula, 0, (int)ARRAY_LEN(size_cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("reply");
    tcase_add_loop_test(tc, test_parse_reply_table, 0, (int)ARRAY_LEN(reply_cases));
    tcase_add_test(tc, test_parse_reply_keeps_event_ids_and_messages);
    tcase_add_test(tc, test_parse_reply_rejects_zero_entries);
    tcase_add_test(tc, test_parse_reply_body_with_embedded_nul_is_invalid);
    tcase_add_test(tc, test_parse_reply_rejects_deep_nesting);
    tcase_add_test(tc, test_parse_reply_truncates_long_messages_safely);
    tcase_add_test(tc, test_parse_reply_replaces_control_characters_in_messages);
    suite_add_tcase(s, tc);

    tc = tcase_create("classify");
    tcase_add_loop_test(tc, test_classify_table, 0, (int)ARRAY_LEN(classify_cases));
    tcase_add_test(tc, test_classify_accepts_null_code_and_null_flag);
    tcase_add_loop_test(tc, test_normalize_code_table, 0, (int)ARRAY_LEN(norm_cases));
    tcase_add_test(tc, test_normalize_code_truncates_to_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("pack");
    tcase_add_loop_test(tc, test_pack_table, 0, (int)ARRAY_LEN(pack_cases));
    tcase_add_test(tc, test_pack_counts_time_bytes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_suite(putevents_suite());
}
