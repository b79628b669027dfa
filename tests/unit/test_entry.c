/* test_entry.c - outbox row -> PutEvents entry mapping, and the entry size formula. */
#include <check.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "eventbridge/entry.h"
#include "relay/mapping.h"
#include "support/check_main.h"

static const mapping_options opts = {.source = "user-service",
                                     .event_bus_name = "user-service-bus"};

static outbox_row row_of(const char *type, const char *payload)
{
    outbox_row r = {
        .id = 42,
        .event_id = "6f1c2a3e-0b1d-4c55-9a1e-2b3c4d5e6f70",
        .aggregate_id = "7",
        .event_type = type,
        .payload = payload,
        .occurred_at_ms = 1764226164123LL, /* 2025-11-27T06:49:24.123Z */
        .attempts = 0,
    };
    return r;
}

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);
    ck_assert_msg(o != NULL, "detail is not valid JSON: %s", s);
    return o;
}

static const struct {
    const char *type, *detail_type;
} types[] = {
    {"created", "User Account Created"},
    {"updated", "User Account Updated"},
    {"deleted", "User Account Deleted"},
};

START_TEST(event_type_maps_to_detail_type_and_fields)
{
    strbuf d;
    strbuf_init(&d, 1 << 20);
    outbox_row r =
        row_of(types[_i].type, "{\"id\": 7, \"email\": \"a@example.com\", \"username\": \"ann\"}");
    eb_entry e;
    or_error err = {{0}};
    ck_assert_int_eq(mapping_build_entry(&r, &opts, &d, &e, &err), OR_OK);
    ck_assert_str_eq(e.detail_type, types[_i].detail_type);
    ck_assert_str_eq(e.source, "user-service");
    ck_assert_str_eq(e.event_bus_name, "user-service-bus");
    ck_assert(e.has_time);
    ck_assert_int_eq(e.time_ms, 1764226164123LL);

    json_object *o = parse(e.detail);
    json_object *v, *meta;
    ck_assert(json_object_object_get_ex(o, "username", &v));
    ck_assert_str_eq(json_object_get_string(v), "ann");
    ck_assert(json_object_object_get_ex(o, "email", &v));
    ck_assert_str_eq(json_object_get_string(v), "a@example.com");
    ck_assert(json_object_object_get_ex(o, "id", &v));
    ck_assert_int_eq(json_object_get_int64(v), 7);
    ck_assert(json_object_object_get_ex(o, "metadata", &meta));
    ck_assert(json_object_object_get_ex(meta, "event_id", &v));
    ck_assert_str_eq(json_object_get_string(v), "6f1c2a3e-0b1d-4c55-9a1e-2b3c4d5e6f70");
    ck_assert(json_object_object_get_ex(meta, "outbox_id", &v));
    ck_assert_int_eq(json_object_get_int64(v), 42);
    ck_assert(json_object_object_get_ex(meta, "aggregate_id", &v));
    ck_assert_str_eq(json_object_get_string(v), "7");
    ck_assert(json_object_object_get_ex(meta, "event_type", &v));
    ck_assert_str_eq(json_object_get_string(v), types[_i].type);
    ck_assert(json_object_object_get_ex(meta, "occurred_at", &v));
    ck_assert_str_eq(json_object_get_string(v), "2025-11-27T06:49:24.123Z");
    json_object_put(o);
    strbuf_free(&d);
}
END_TEST

START_TEST(event_id_is_the_same_on_redelivery)
{
    strbuf d1, d2;
    strbuf_init(&d1, 1 << 20);
    strbuf_init(&d2, 1 << 20);
    outbox_row r = row_of("created", "{\"id\": 7}");
    eb_entry e1, e2;
    or_error err = {{0}};
    ck_assert_int_eq(mapping_build_entry(&r, &opts, &d1, &e1, &err), OR_OK);
    r.attempts = 3; /* a retry of the same row */
    ck_assert_int_eq(mapping_build_entry(&r, &opts, &d2, &e2, &err), OR_OK);
    ck_assert_str_eq(e1.detail, e2.detail);
    strbuf_free(&d1);
    strbuf_free(&d2);
}
END_TEST

START_TEST(empty_payload_object_still_gets_metadata)
{
    strbuf d;
    strbuf_init(&d, 1 << 20);
    outbox_row r = row_of("deleted", "{}");
    eb_entry e;
    or_error err = {{0}};
    ck_assert_int_eq(mapping_build_entry(&r, &opts, &d, &e, &err), OR_OK);
    json_object *o = parse(e.detail);
    ck_assert(json_object_object_get_ex(o, "metadata", NULL));
    ck_assert_int_eq(json_object_object_length(o), 1);
    json_object_put(o);
    strbuf_free(&d);
}
END_TEST

START_TEST(strings_with_quotes_and_unicode_survive)
{
    strbuf d;
    strbuf_init(&d, 1 << 20);
    outbox_row r = row_of("created", "{\"username\": \"o\\\"brien \\u00e9\\\\\"}");
    r.aggregate_id = "id\"with\\quote";
    eb_entry e;
    or_error err = {{0}};
    ck_assert_int_eq(mapping_build_entry(&r, &opts, &d, &e, &err), OR_OK);
    json_object *o = parse(e.detail), *v, *meta;
    ck_assert(json_object_object_get_ex(o, "username", &v));
    ck_assert_str_eq(json_object_get_string(v), "o\"brien \xc3\xa9\\");
    ck_assert(json_object_object_get_ex(o, "metadata", &meta));
    ck_assert(json_object_object_get_ex(meta, "aggregate_id", &v));
    ck_assert_str_eq(json_object_get_string(v), "id\"with\\quote");
    json_object_put(o);
    strbuf_free(&d);
}
END_TEST

static const struct {
    const char *type, *payload, *want;
} bad_rows[] = {
    {"renamed", "{\"id\": 1}", "unknown event_type \"renamed\""},
    {"created", "[1, 2]", "is a JSON array, not an object"},
    {"created", "\"text\"", "is a JSON string, not an object"},
    {"created", "{\"id\": 1", "not valid JSON"},
    {"created", "{\"id\": 1} trailing", "not valid JSON"},
    {"created", "{\"metadata\": {}}", "already has a \"metadata\" key"},
};

START_TEST(bad_rows_are_refused_with_row_id_and_reason)
{
    strbuf d;
    strbuf_init(&d, 1 << 20);
    outbox_row r = row_of(bad_rows[_i].type, bad_rows[_i].payload);
    eb_entry e;
    or_error err = {{0}};
    ck_assert_int_eq(mapping_build_entry(&r, &opts, &d, &e, &err), OR_ERR);
    ck_assert_msg(strstr(err.msg, "outbox row 42") != NULL, "no row id in: %s", err.msg);
    ck_assert_msg(strstr(err.msg, bad_rows[_i].want) != NULL, "want \"%s\" in: %s",
                  bad_rows[_i].want, err.msg);
    strbuf_free(&d);
}
END_TEST

START_TEST(detail_over_buffer_limit_is_an_error_not_a_truncation)
{
    strbuf d;
    strbuf_init(&d, 64);
    outbox_row r = row_of("created", "{\"username\": \"a-long-enough-name-to-overflow-64-bytes\"}");
    eb_entry e;
    or_error err = {{0}};
    ck_assert_int_eq(mapping_build_entry(&r, &opts, &d, &e, &err), OR_ERR);
    ck_assert_ptr_nonnull(strstr(err.msg, "exceeds"));
    strbuf_free(&d);
}
END_TEST

START_TEST(entry_size_follows_the_aws_formula)
{
    eb_entry e = {.source = "user-service",              /* 12 */
                  .detail_type = "User Account Created", /* 20 */
                  .detail = "{\"u\":\"\xc3\xa9\"}",      /* 10 bytes, 9 characters */
                  .event_bus_name = "user-service-bus",
                  .has_time = true};
    ck_assert_uint_eq(eb_entry_size(&e), 14 + 12 + 20 + 10);
    e.has_time = false;
    ck_assert_uint_eq(eb_entry_size(&e), 12 + 20 + 10);
    e.event_bus_name = "arn:aws:events:us-east-1:123456789012:event-bus/a-much-longer-name";
    ck_assert_uint_eq(eb_entry_size(&e), 12 + 20 + 10); /* bus name does not count */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("entry");
    TCase *tc = tcase_create("mapping");
    tcase_add_loop_test(tc, event_type_maps_to_detail_type_and_fields, 0, 3);
    tcase_add_test(tc, event_id_is_the_same_on_redelivery);
    tcase_add_test(tc, empty_payload_object_still_gets_metadata);
    tcase_add_test(tc, strings_with_quotes_and_unicode_survive);
    tcase_add_loop_test(tc, bad_rows_are_refused_with_row_id_and_reason, 0,
                        (int)(sizeof(bad_rows) / sizeof(bad_rows[0])));
    tcase_add_test(tc, detail_over_buffer_limit_is_an_error_not_a_truncation);
    tcase_add_test(tc, entry_size_follows_the_aws_formula);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
