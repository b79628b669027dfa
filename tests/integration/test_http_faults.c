/*
 * test_http_faults - the EventBridge client (src/eventbridge/client.h)
 * against the local PutEvents endpoint, with faults injected at the entry,
 * HTTP and connection level. Each case starts its own endpoint, so a fault
 * (or a late reply) cannot leak into the next case.
 */
#include <check.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <time.h>

#include "aws/credentials.h"
#include "aws/sigv4.h"
#include "common/error.h"
#include "common/strbuf.h"
#include "support/endpoint_ctl.h"
#include "eventbridge/client.h"
#include "support/check_main.h"

#define AKID      "AKIDHTTPFAULTS000001"
#define SECRET    "httpfaults/Secret+Key/000000000000000000"
#define REGION    "us-east-1"
#define MAX_CASE  32
#define BIG_BYTES 2000

typedef enum entries_kind {
    ENTRIES_PLAIN = 0,
    ENTRIES_TOO_LARGE_AT_1, /* entry 1 alone exceeds max_request_bytes */
    ENTRIES_AWS_SOURCE_AT_1,
    ENTRIES_MALFORMED_AT_1,
} entries_kind;

typedef enum creds_kind {
    CREDS_GOOD = 0,
    CREDS_SESSION_TOKEN,
    CREDS_WRONG_SECRET,
    CREDS_UNKNOWN_KEY,
} creds_kind;

typedef struct fault_case {
    const char *name;
    const char *control; /* JSON for /_control, or NULL */
    size_t n_entries;
    entries_kind entries;
    creds_kind creds;
    long timeout_ms;          /* 0: 5000 */
    size_t max_request_bytes; /* 0: 262144 */
    /* expectations */
    const char
        *pattern;     /* one letter per entry: A accepted, R retryable, P permanent; NULL = all A */
    const char *code; /* error_code of every entry that is not A */
    const char *message;     /* substring of their error_message, or NULL */
    bool throttled;          /* throttled flag of every entry that is not A */
    long requests;           /* API requests the endpoint saw; -1: not checked */
    long signature_failures; /* -1: not checked */
    bool records_unknown;    /* the endpoint may have accepted entries the client never saw */
} fault_case;

static const fault_case cases[] = {
    {.name = "all_entries_accepted_and_recorded_with_their_detail",
     .n_entries = 5,
     .requests = 1,
     .signature_failures = 0},
    {.name = "entry_internal_failure_every_second_is_retryable_others_accepted",
     .control = "{\"entry_fail_code\":\"InternalFailure\",\"entry_fail_every\":2,"
                "\"entry_fail_message\":\"shard 7 is sad\"}",
     .n_entries = 6,
     .pattern = "ARARAR",
     .code = "InternalFailure",
     .message = "shard 7 is sad",
     .requests = 1,
     .signature_failures = 0},
    {.name = "entry_throttling_is_retryable_and_throttled",
     .control = "{\"entry_fail_code\":\"ThrottlingException\"}",
     .n_entries = 3,
     .pattern = "RRR",
     .code = "ThrottlingException",
     .throttled = true,
     .requests = 1,
     .signature_failures = 0},
    {.name = "entry_from_aws_source_is_permanent",
     .n_entries = 3,
     .entries = ENTRIES_AWS_SOURCE_AT_1,
     .pattern = "APA",
     .code = "NotAuthorizedForSourceException",
     .requests = 1,
     .signature_failures = 0},
    {.name = "entry_with_malformed_detail_is_permanent",
     .n_entries = 3,
     .entries = ENTRIES_MALFORMED_AT_1,
     .pattern = "APA",
     .code = "MalformedDetail",
     .requests = 1,
     .signature_failures = 0},
    {.name = "http_500_makes_every_entry_retryable",
     .control = "{\"http_status\":500}",
     .n_entries = 4,
     .pattern = "RRRR",
     .code = "InternalFailure",
     .requests = 1,
     .signature_failures = 0},
    {.name = "http_503_error_type_read_from_body_without_header",
     .control = "{\"http_status\":503,\"http_error_header\":false}",
     .n_entries = 2,
     .pattern = "RR",
     .code = "InternalFailure",
     .requests = 1,
     .signature_failures = 0},
    {.name = "http_400_throttling_is_retryable_and_throttled",
     .control = "{\"http_status\":400,\"http_error_type\":\"ThrottlingException\"}",
     .n_entries = 3,
     .pattern = "RRR",
     .code = "ThrottlingException",
     .throttled = true,
     .requests = 1,
     .signature_failures = 0},
    {.name = "http_429_is_retryable_and_throttled",
     .control = "{\"http_status\":429,\"http_error_type\":\"TooManyRequestsException\"}",
     .n_entries = 2,
     .pattern = "RR",
     .code = "TooManyRequestsException",
     .throttled = true,
     .requests = 1,
     .signature_failures = 0},
    {.name = "html_body_is_invalid_reply_never_accepted",
     .control = "{\"garbage_count\":1,\"garbage_body\":\"<html><body>oops</body></html>\"}",
     .n_entries = 3,
     .pattern = "RRR",
     .code = "InvalidReply",
     .requests = 1,
     .signature_failures = 0},
    {.name = "truncated_json_is_invalid_reply_never_accepted",
     .control = "{\"garbage_count\":1,\"garbage_body\":"
                "\"{\\\"FailedEntryCount\\\":0,\\\"Entries\\\":[{\\\"EventId\\\":\\\"a\\\"}\"}",
     .n_entries = 2,
     .pattern = "RR",
     .code = "InvalidReply",
     .requests = 1,
     .signature_failures = 0},
    {.name = "mismatched_entry_count_is_invalid_reply_never_accepted",
     .control = "{\"garbage_count\":1,\"garbage_body\":\"{\\\"FailedEntryCount\\\":0,"
                "\\\"Entries\\\":[{\\\"EventId\\\":\\\"a\\\"},{\\\"EventId\\\":\\\"b\\\"}]}\"}",
     .n_entries = 3,
     .pattern = "RRR",
     .code = "InvalidReply",
     .requests = 1,
     .signature_failures = 0},
    {.name = "wrong_failed_entry_count_is_invalid_reply_never_accepted",
     .control = "{\"garbage_count\":1,\"garbage_body\":\"{\\\"FailedEntryCount\\\":1,"
                "\\\"Entries\\\":[{\\\"EventId\\\":\\\"a\\\"},{\\\"EventId\\\":\\\"b\\\"}]}\"}",
     .n_entries = 2,
     .pattern = "RR",
     .code = "InvalidReply",
     .requests = 1,
     .signature_failures = 0},
    {.name = "dropped_connection_is_retryable_connection_error",
     .control = "{\"drop_count\":1}",
     .n_entries = 3,
     .pattern = "RRR",
     .code = "ConnectionError",
     .requests = -1,
     .signature_failures = 0},
    {.name = "reply_slower_than_client_timeout_is_retryable_timeout",
     .control = "{\"delay_ms\":3000}",
     .n_entries = 2,
     .timeout_ms = 500,
     .pattern = "RR",
     .code = "Timeout",
     .requests = -1,
     .signature_failures = -1,
     .records_unknown = true},
    {.name = "wrong_secret_is_rejected_as_invalid_signature_retryable",
     .n_entries = 2,
     .creds = CREDS_WRONG_SECRET,
     .pattern = "RR",
     .code = "InvalidSignatureException",
     .requests = 1,
     .signature_failures = 1},
    {.name = "unknown_access_key_is_rejected_as_unrecognized_client",
     .n_entries = 1,
     .creds = CREDS_UNKNOWN_KEY,
     .pattern = "R",
     .code = "UnrecognizedClientException",
     .requests = 1,
     .signature_failures = 1},
    {.name = "twenty_five_entries_take_three_requests_results_in_input_order",
     .n_entries = 25,
     .requests = 3,
     .signature_failures = 0},
    {.name = "entry_over_max_request_bytes_is_permanent_and_never_sent",
     .n_entries = 3,
     .entries = ENTRIES_TOO_LARGE_AT_1,
     .max_request_bytes = 1000,
     .pattern = "APA",
     .code = "EntryTooLarge",
     .requests = 1,
     .signature_failures = 0},
    {.name = "session_token_is_signed_and_accepted",
     .n_entries = 4,
     .creds = CREDS_SESSION_TOKEN,
     .requests = 1,
     .signature_failures = 0},
};

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* Owned storage for the entries of one case. */
typedef struct entry_set {
    eb_entry entries[MAX_CASE];
    char *details[MAX_CASE];
    char *sources[MAX_CASE];
} entry_set;

static void entries_build(const fault_case *tc, entry_set *set)
{
    ck_assert_uint_le(tc->n_entries, MAX_CASE);
    for (size_t i = 0; i < tc->n_entries; i++) {
        char buf[256];
        snprintf(
            buf, sizeof(buf),
            "{\"user_id\":%zu,\"name\":\"Zo\u00eb \\\"%zu\\\"\",\"tags\":[\"a/b\",\"\u2713\"]}", i,
            i);
        set->details[i] = xstrdup(buf);
        set->sources[i] = xstrdup("com.example.users");
        if (i == 1 && tc->entries == ENTRIES_TOO_LARGE_AT_1) {
            free(set->details[i]);
            set->details[i] = xmalloc(BIG_BYTES + 16);
            memset(set->details[i], 0, BIG_BYTES + 16);
            memcpy(set->details[i], "{\"pad\":\"", 8);
            memset(set->details[i] + 8, 'x', BIG_BYTES);
            memcpy(set->details[i] + 8 + BIG_BYTES, "\"}", 2);
        } else if (i == 1 && tc->entries == ENTRIES_MALFORMED_AT_1) {
            free(set->details[i]);
            set->details[i] = xstrdup("{\"not\": json");
        } else if (i == 1 && tc->entries == ENTRIES_AWS_SOURCE_AT_1) {
            free(set->sources[i]);
            set->sources[i] = xstrdup("aws.s3");
        }
        set->entries[i] = (eb_entry){
            .source = set->sources[i],
            .detail_type = "UserChanged",
            .detail = set->details[i],
            .event_bus_name = "default",
            .has_time = (i % 2) == 0,
            .time_ms = 1764225000123LL + (long long)i,
        };
    }
}

static void entries_free(const fault_case *tc, entry_set *set)
{
    for (size_t i = 0; i < tc->n_entries; i++) {
        free(set->details[i]);
        free(set->sources[i]);
    }
}

static credentials_provider *creds_for(creds_kind kind)
{
    switch (kind) {
    case CREDS_SESSION_TOKEN:
        return credentials_provider_new_static(AKID, SECRET, "FQoGZXIvYXdzEXAMPLE/+=token");
    case CREDS_WRONG_SECRET:
        return credentials_provider_new_static(AKID, SECRET "x", NULL);
    case CREDS_UNKNOWN_KEY:
        return credentials_provider_new_static("AKIDUNKNOWN000000000", SECRET, NULL);
    case CREDS_GOOD:
        break;
    }
    return credentials_provider_new_static(AKID, SECRET, NULL);
}

/* The record with this EventId, or NULL. */
static json_object *record_by_id(json_object *records, const char *event_id)
{
    for (size_t r = 0; r < json_object_array_length(records); r++) {
        json_object *rec = json_object_array_get_idx(records, r);
        json_object *id = NULL;
        if (json_object_object_get_ex(rec, "EventId", &id) &&
            strcmp(json_object_get_string(id), event_id) == 0)
            return rec;
    }
    return NULL;
}

static const char *record_field(json_object *rec, const char *name)
{
    json_object *v = NULL;
    ck_assert_msg(json_object_object_get_ex(rec, name, &v) && v != NULL, "record has no %s", name);
    return json_object_get_string(v);
}

START_TEST(test_fault_case)
{
    const fault_case *tc = &cases[_i];
    entry_set set;
    eb_result results[MAX_CASE];
    or_error err = {{0}};

    memset(&set, 0, sizeof(set));
    entries_build(tc, &set);
    endpoint *ep = endpoint_start(AKID, SECRET, REGION);
    if (tc->control != NULL)
        endpoint_control(ep, tc->control);

    credentials_provider *creds = creds_for(tc->creds);
    eb_client_options opts = {
        .endpoint_url = endpoint_url(ep),
        .region = REGION,
        .credentials = creds,
        .max_entries_per_request = 10,
        .max_request_bytes = tc->max_request_bytes ? tc->max_request_bytes : 262144,
        .max_in_flight = 4,
        .timeout_ms = tc->timeout_ms ? tc->timeout_ms : 5000,
        .connect_timeout_ms = 2000,
    };
    eb_client *client = eb_client_new(&opts, &err);
    ck_assert_msg(client != NULL, "%s: eb_client_new: %s", tc->name, err.msg);

    ck_assert_msg(eb_client_publish(client, set.entries, tc->n_entries, results, NULL, 0, &err) ==
                      OR_OK,
                  "%s: publish: %s", tc->name, err.msg);

    json_object *records = endpoint_records(ep);
    size_t n_accepted = 0;
    for (size_t i = 0; i < tc->n_entries; i++) {
        char want = tc->pattern ? tc->pattern[i] : 'A';
        const eb_result *r = &results[i];
        if (want == 'A') {
            n_accepted++;
            ck_assert_msg(r->outcome == EB_ACCEPTED, "%s: entry %zu: outcome %d (%s: %s)", tc->name,
                          i, r->outcome, r->error_code, r->error_message);
            ck_assert_msg(r->event_id[0] != '\0', "%s: entry %zu: no event id", tc->name, i);
            json_object *rec = record_by_id(records, r->event_id);
            ck_assert_msg(rec != NULL, "%s: entry %zu: event id %s not recorded", tc->name, i,
                          r->event_id);
            /* proves that result i belongs to entry i: the endpoint stored entry i's detail */
            ck_assert_str_eq(record_field(rec, "Detail"), set.entries[i].detail);
            ck_assert_str_eq(record_field(rec, "Source"), set.entries[i].source);
            ck_assert_str_eq(record_field(rec, "DetailType"), "UserChanged");
            ck_assert_str_eq(record_field(rec, "AccessKeyId"), AKID);
        } else {
            eb_outcome expect = want == 'R' ? EB_RETRYABLE : EB_PERMANENT;
            ck_assert_msg(r->outcome == expect, "%s: entry %zu: outcome %d, want %d (%s: %s)",
                          tc->name, i, r->outcome, expect, r->error_code, r->error_message);
            ck_assert_msg(strcmp(r->error_code, tc->code) == 0,
                          "%s: entry %zu: error code %s, want %s (%s)", tc->name, i, r->error_code,
                          tc->code, r->error_message);
            ck_assert_msg(tc->message == NULL || strstr(r->error_message, tc->message) != NULL,
                          "%s: entry %zu: message '%s' lacks '%s'", tc->name, i, r->error_message,
                          tc->message);
            ck_assert_msg(r->throttled == tc->throttled, "%s: entry %zu: throttled %d, want %d",
                          tc->name, i, r->throttled, tc->throttled);
        }
    }
    if (!tc->records_unknown)
        ck_assert_msg(json_object_array_length(records) == n_accepted,
                      "%s: endpoint recorded %zu entries, want %zu", tc->name,
                      json_object_array_length(records), n_accepted);
    if (tc->entries == ENTRIES_TOO_LARGE_AT_1) {
        for (size_t r = 0; r < json_object_array_length(records); r++)
            ck_assert_msg(strcmp(record_field(json_object_array_get_idx(records, r), "Detail"),
                                 set.entries[1].detail) != 0,
                          "%s: the oversized entry reached the endpoint", tc->name);
    }
    json_object_put(records);

    eb_client_stats cs;
    eb_client_get_stats(client, &cs);
    ck_assert_msg(cs.entries_accepted == n_accepted, "%s: client counted %llu accepted, want %zu",
                  tc->name, cs.entries_accepted, n_accepted);
    ck_assert_msg(cs.entries_accepted + cs.entries_failed == tc->n_entries,
                  "%s: client counted %llu + %llu entries, want %zu", tc->name, cs.entries_accepted,
                  cs.entries_failed, tc->n_entries);

    endpoint_counters es;
    endpoint_stats(ep, &es);
    if (tc->requests >= 0)
        ck_assert_msg(es.requests == tc->requests, "%s: endpoint saw %lld requests, want %ld",
                      tc->name, es.requests, tc->requests);
    if (tc->signature_failures >= 0)
        ck_assert_msg(es.signature_failures == tc->signature_failures,
                      "%s: endpoint saw %lld signature failures, want %ld", tc->name,
                      es.signature_failures, tc->signature_failures);
    if (tc->control != NULL && tc->creds == CREDS_GOOD)
        ck_assert_msg(es.faults_injected > 0, "%s: the fault was never injected", tc->name);

    eb_client_free(client);
    credentials_provider_free(creds);
    ck_assert_int_eq(endpoint_stop(ep), 0);
    endpoint_free(ep);
    entries_free(tc, &set);
}
END_TEST

/* The endpoint keeps working across requests on one client (keep-alive reuse). */
START_TEST(test_faults_clear_and_client_recovers_on_same_connection)
{
    or_error err = {{0}};
    entry_set set;
    eb_result results[MAX_CASE];
    const fault_case plain = {.name = "plain", .n_entries = 3};

    memset(&set, 0, sizeof(set));
    entries_build(&plain, &set);
    endpoint *ep = endpoint_start(AKID, SECRET, REGION);
    credentials_provider *creds = creds_for(CREDS_GOOD);
    eb_client_options opts = {
        .endpoint_url = endpoint_url(ep),
        .region = REGION,
        .credentials = creds,
        .max_entries_per_request = 10,
        .max_request_bytes = 262144,
        .max_in_flight = 1,
        .timeout_ms = 5000,
        .connect_timeout_ms = 2000,
    };
    eb_client *client = eb_client_new(&opts, &err);
    ck_assert_msg(client != NULL, "eb_client_new: %s", err.msg);

    endpoint_control(ep, "{\"http_status\":500,\"http_count\":2}");
    for (int round = 0; round < 4; round++) {
        ck_assert(eb_client_publish(client, set.entries, 3, results, NULL, 0, &err) == OR_OK);
        eb_outcome want = round < 2 ? EB_RETRYABLE : EB_ACCEPTED;
        for (size_t i = 0; i < 3; i++)
            ck_assert_msg(results[i].outcome == want, "round %d entry %zu: outcome %d (%s)", round,
                          i, results[i].outcome, results[i].error_code);
    }
    ck_assert_uint_eq(endpoint_record_count(ep), 6);
    endpoint_counters es;
    endpoint_stats(ep, &es);
    ck_assert_int_eq(es.requests, 4);
    ck_assert_int_eq(es.faults_injected, 2);
    ck_assert_int_eq(es.accepted_entries, 6);

    eb_client_free(client);
    credentials_provider_free(creds);
    ck_assert_int_eq(endpoint_stop(ep), 0);
    endpoint_free(ep);
    entries_free(&plain, &set);
}
END_TEST

/*
 * Requests signed here by hand (sigv4.h + libcurl), then altered, prove that
 * the endpoint verifies like AWS: a fault test is only as good as the
 * endpoint's refusal of a bad signature.
 */
typedef enum raw_tamper {
    RAW_NONE = 0,
    RAW_BODY_CHANGED,     /* body differs from the signed one */
    RAW_TARGET_CHANGED,   /* X-Amz-Target differs from the signed value */
    RAW_DATE_NOT_SIGNED,  /* x-amz-date sent but not in SignedHeaders */
    RAW_TOKEN_NOT_SIGNED, /* X-Amz-Security-Token sent but not signed */
    RAW_TOKEN_SIGNED,     /* X-Amz-Security-Token sent and signed */
    RAW_NO_AUTH,          /* no Authorization header */
    RAW_MALFORMED_AUTH,   /* Authorization header that is not SigV4 */
} raw_tamper;

typedef struct raw_case {
    const char *name;
    raw_tamper tamper;
    long skew_s;              /* signing time minus now */
    const char *service;      /* NULL: events */
    const char *region;       /* NULL: REGION */
    const char *target;       /* NULL: AWSEvents.PutEvents */
    const char *content_type; /* NULL: application/x-amz-json-1.1 */
    const char *body;         /* NULL: a valid one-entry body */
    size_t big_detail;        /* > 0: one entry whose Detail has this many bytes */
    long want_status;
    const char *want_type;    /* X-Amzn-ErrorType, "" for none */
    const char *want_in_body; /* substring of the reply body, or NULL */
} raw_case;

#define RAW_BODY                                                                                   \
    "{\"Entries\":[{\"Source\":\"com.example.users\",\"DetailType\":\"UserChanged\","              \
    "\"Detail\":\"{\\\"id\\\":1}\",\"EventBusName\":\"default\"}]}"

static const raw_case raw_cases[] = {
    {"correctly_signed_request_is_accepted", RAW_NONE, 0, NULL, NULL, NULL, NULL, NULL, 0, 200, "",
     "\"FailedEntryCount\":0"},
    {"signature_ten_minutes_old_is_accepted", RAW_NONE, -600, NULL, NULL, NULL, NULL, NULL, 0, 200,
     "", "\"EventId\""},
    {"signed_session_token_is_accepted", RAW_TOKEN_SIGNED, 0, NULL, NULL, NULL, NULL, NULL, 0, 200,
     "", "\"EventId\""},
    {"changed_body_is_invalid_signature", RAW_BODY_CHANGED, 0, NULL, NULL, NULL, NULL, NULL, 0, 403,
     "InvalidSignatureException", "does not match"},
    {"changed_signed_header_is_invalid_signature", RAW_TARGET_CHANGED, 0, NULL, NULL, NULL, NULL,
     NULL, 0, 403, "InvalidSignatureException", "does not match"},
    {"signature_twenty_minutes_old_is_expired", RAW_NONE, -1200, NULL, NULL, NULL, NULL, NULL, 0,
     403, "InvalidSignatureException", "Signature expired"},
    {"signature_twenty_minutes_ahead_is_expired", RAW_NONE, 1200, NULL, NULL, NULL, NULL, NULL, 0,
     403, "InvalidSignatureException", "Signature expired"},
    {"scope_for_another_service_is_invalid_signature", RAW_NONE, 0, "sqs", NULL, NULL, NULL, NULL,
     0, 403, "InvalidSignatureException", "service"},
    {"scope_for_another_region_is_invalid_signature", RAW_NONE, 0, NULL, "eu-west-1", NULL, NULL,
     NULL, 0, 403, "InvalidSignatureException", "region"},
    {"unsigned_date_is_invalid_signature", RAW_DATE_NOT_SIGNED, 0, NULL, NULL, NULL, NULL, NULL, 0,
     403, "InvalidSignatureException", "X-Amz-Date"},
    {"unsigned_session_token_is_invalid_signature", RAW_TOKEN_NOT_SIGNED, 0, NULL, NULL, NULL, NULL,
     NULL, 0, 403, "InvalidSignatureException", "X-Amz-Security-Token"},
    {"missing_authorization_is_missing_token", RAW_NO_AUTH, 0, NULL, NULL, NULL, NULL, NULL, 0, 400,
     "MissingAuthenticationTokenException", NULL},
    {"malformed_authorization_is_incomplete_signature", RAW_MALFORMED_AUTH, 0, NULL, NULL, NULL,
     NULL, NULL, 0, 400, "IncompleteSignatureException", NULL},
    {"other_operation_is_unknown_operation", RAW_NONE, 0, NULL, NULL, "AWSEvents.ListRules", NULL,
     NULL, 0, 400, "UnknownOperationException", NULL},
    {"wrong_content_type_is_rejected", RAW_NONE, 0, NULL, NULL, NULL, "application/json", NULL, 0,
     400, "SerializationException", NULL},
    {"body_that_is_not_json_is_serialization_error", RAW_NONE, 0, NULL, NULL, NULL, NULL,
     "{\"Entries\":[", 0, 400, "SerializationException", NULL},
    {"eleven_entries_is_validation_error", RAW_NONE, 0, NULL, NULL, NULL, NULL,
     "{\"Entries\":[{},{},{},{},{},{},{},{},{},{},{}]}", 0, 400, "ValidationException", NULL},
    {"no_entries_is_validation_error", RAW_NONE, 0, NULL, NULL, NULL, NULL, "{\"Entries\":[]}", 0,
     400, "ValidationException", NULL},
    {"entry_without_source_fails_with_invalid_argument", RAW_NONE, 0, NULL, NULL, NULL, NULL,
     "{\"Entries\":[{\"DetailType\":\"T\",\"Detail\":\"{}\"}]}", 0, 200, "",
     "\"FailedEntryCount\":1,\"Entries\":[{\"ErrorCode\":\"InvalidArgument\""},
    {"entries_over_the_size_limit_are_validation_error", RAW_NONE, 0, NULL, NULL, NULL, NULL, NULL,
     300000, 400, "ValidationException", "over the limit"},
    {"body_over_two_mebibytes_is_too_large", RAW_NONE, 0, NULL, NULL, NULL, NULL, NULL,
     3 * 1024 * 1024, 413, "RequestEntityTooLargeException", NULL},
};

#define N_RAW_CASES (sizeof(raw_cases) / sizeof(raw_cases[0]))

typedef struct raw_reply {
    strbuf body;
    char error_type[128];
} raw_reply;

static size_t raw_body_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    raw_reply *r = userdata;
    return strbuf_append(&r->body, data, size * nmemb) == OR_OK ? size * nmemb : 0;
}

static size_t raw_header_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    raw_reply *r = userdata;
    size_t n = size * nmemb;
    static const char name[] = "x-amzn-errortype:";
    if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        const char *v = data + sizeof(name) - 1;
        size_t vlen = n - (sizeof(name) - 1);
        while (vlen > 0 && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
            vlen--;
        snprintf(r->error_type, sizeof(r->error_type), "%.*s", (int)vlen, v);
    }
    return n;
}

/* A body with one entry whose Detail is a JSON object of about n bytes. */
static char *raw_big_body(size_t n)
{
    static const char head[] =
        "{\"Entries\":[{\"Source\":\"s\",\"DetailType\":\"t\",\"Detail\":\"{\\\"pad\\\":\\\"";
    static const char tail[] = "\\\"}\"}]}";
    char *b = xmalloc(sizeof(head) + n + sizeof(tail));
    memcpy(b, head, sizeof(head) - 1);
    memset(b + sizeof(head) - 1, 'x', n);
    memcpy(b + sizeof(head) - 1 + n, tail, sizeof(tail));
    return b;
}

START_TEST(test_endpoint_verifies_like_aws)
{
    const raw_case *rc = &raw_cases[_i];
    or_error err = {{0}};
    char host[64], amz_date[17], hdr[4][512];
    strbuf auth;
    raw_reply reply;
    struct curl_slist *hl = NULL;
    const char *token = "FQoGZXIvYXdzEXAMPLE/+=token";

    endpoint *ep = endpoint_start(AKID, SECRET, REGION);
    char *big = rc->big_detail > 0 ? raw_big_body(rc->big_detail) : NULL;
    const char *body = big ? big : rc->body ? rc->body : RAW_BODY;
    const char *target = rc->target ? rc->target : "AWSEvents.PutEvents";
    const char *ctype = rc->content_type ? rc->content_type : "application/x-amz-json-1.1";
    snprintf(host, sizeof(host), "127.0.0.1:%d", endpoint_port(ep));
    sigv4_amz_date(time(NULL) + rc->skew_s, amz_date);

    sigv4_header sh[5] = {
        {"Content-Type", ctype},         {"Host", host},
        {"X-Amz-Target", target},        {"X-Amz-Date", amz_date},
        {"X-Amz-Security-Token", token},
    };
    size_t n_signed = rc->tamper == RAW_TOKEN_SIGNED ? 5 : 4;
    sigv4_request req = {"POST", "/", "", sh, n_signed, body, strlen(body)};
    sigv4_key key = {AKID, SECRET, rc->tamper == RAW_TOKEN_SIGNED ? token : NULL};
    sigv4_scope scope = {amz_date, rc->region ? rc->region : REGION,
                         rc->service ? rc->service : "events"};
    strbuf_init(&auth, 4096);
    if (rc->tamper == RAW_DATE_NOT_SIGNED) {
        /* a real signature, but a SignedHeaders list that leaves x-amz-date out */
        char sig[65];
        ck_assert(sigv4_signature(&req, &key, &scope, sig, NULL, &err) == OR_OK);
        ck_assert(strbuf_printf(&auth,
                                "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
                                "SignedHeaders=content-type;host;x-amz-target, Signature=%s",
                                AKID, amz_date, scope.region, scope.service, sig) == OR_OK);
    } else if (rc->tamper == RAW_MALFORMED_AUTH) {
        ck_assert(strbuf_puts(&auth, "AWS4-HMAC-SHA256 Credential=nonsense") == OR_OK);
    } else {
        ck_assert_msg(sigv4_authorization(&req, &key, &scope, &auth, &err) == OR_OK, "sign: %s",
                      err.msg);
    }

    snprintf(hdr[0], sizeof(hdr[0]), "Content-Type: %s", ctype);
    snprintf(hdr[1], sizeof(hdr[1]), "X-Amz-Target: %s",
             rc->tamper == RAW_TARGET_CHANGED ? "AWSEvents.PutEventz" : target);
    snprintf(hdr[2], sizeof(hdr[2]), "X-Amz-Date: %s", amz_date);
    snprintf(hdr[3], sizeof(hdr[3]), "X-Amz-Security-Token: %s", token);
    for (size_t i = 0; i < 3; i++)
        hl = curl_slist_append(hl, hdr[i]);
    if (rc->tamper == RAW_TOKEN_SIGNED || rc->tamper == RAW_TOKEN_NOT_SIGNED)
        hl = curl_slist_append(hl, hdr[3]);
    char *auth_line = NULL;
    if (rc->tamper != RAW_NO_AUTH) {
        size_t len = strlen("Authorization: ") + auth.len + 1;
        auth_line = xmalloc(len);
        snprintf(auth_line, len, "Authorization: %s", strbuf_cstr(&auth));
        hl = curl_slist_append(hl, auth_line);
    }
    hl = curl_slist_append(hl, "Expect:");

    const char *sent = rc->tamper == RAW_BODY_CHANGED ? RAW_BODY " " : body;
    memset(&reply, 0, sizeof(reply));
    strbuf_init(&reply.body, 1024 * 1024);
    CURL *curl = curl_easy_init();
    ck_assert(curl != NULL);
    char url[96];
    snprintf(url, sizeof(url), "%s/", endpoint_url(ep));
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, sent);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(sent));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, raw_body_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, raw_header_cb);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    CURLcode cr = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    ck_assert_msg(cr == CURLE_OK, "%s: %s", rc->name, curl_easy_strerror(cr));
    ck_assert_msg(status == rc->want_status, "%s: status %ld, want %ld: %s", rc->name, status,
                  rc->want_status, strbuf_cstr(&reply.body));
    ck_assert_msg(strcmp(reply.error_type, rc->want_type) == 0, "%s: error type '%s', want '%s'",
                  rc->name, reply.error_type, rc->want_type);
    if (rc->want_in_body != NULL)
        ck_assert_msg(strstr(strbuf_cstr(&reply.body), rc->want_in_body) != NULL,
                      "%s: reply %s lacks %s", rc->name, strbuf_cstr(&reply.body),
                      rc->want_in_body);

    endpoint_counters es;
    endpoint_stats(ep, &es);
    ck_assert_int_eq(es.accepted_entries,
                     rc->want_status == 200 && strstr(strbuf_cstr(&reply.body), "\"EventId\"") ? 1
                                                                                               : 0);
    ck_assert_uint_eq(endpoint_record_count(ep), (size_t)es.accepted_entries);
    if (rc->want_status == 403 || strstr(rc->want_type, "Signature") != NULL ||
        strstr(rc->want_type, "Authentication") != NULL)
        ck_assert_int_eq(es.signature_failures, 1);

    curl_easy_cleanup(curl);
    curl_slist_free_all(hl);
    free(auth_line);
    free(big);
    strbuf_free(&auth);
    strbuf_free(&reply.body);
    ck_assert_int_eq(endpoint_stop(ep), 0);
    endpoint_free(ep);
}
END_TEST

static Suite *http_faults_suite(void)
{
    Suite *s = suite_create("http_faults");
    TCase *tc = tcase_create("client_vs_endpoint");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_fault_case, 0, (int)N_CASES);
    tcase_add_test(tc, test_faults_clear_and_client_recovers_on_same_connection);
    suite_add_tcase(s, tc);

    TCase *tv = tcase_create("endpoint_verifier");
    tcase_set_timeout(tv, 60);
    tcase_add_loop_test(tv, test_endpoint_verifies_like_aws, 0, (int)N_RAW_CASES);
    suite_add_tcase(s, tv);
    return s;
}

int main(void)
{
    return check_run_suite(http_faults_suite());
}
