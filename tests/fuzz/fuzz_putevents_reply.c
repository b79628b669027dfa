/*
 * fuzz_putevents_reply.c - libFuzzer target for putevents_parse_reply().
 *
 * Input layout (missing bytes count as 0):
 *   byte 0   HTTP status, an index into fuzz_statuses
 *   byte 1   entry count n = byte % 10 + 1
 *   byte 2   X-Amzn-ErrorType header: top two bits 0 or 1 = no header,
 *            2 = the next (byte & 0x3f) input bytes, 3 = fuzz_headers[byte & 0x3f]
 *   rest     the reply body
 *
 * Invariants (abort() on violation):
 *   - every outcome is an eb_outcome value; throttled is a bool
 *   - error_code, error_message and event_id are NUL-terminated inside their
 *     arrays and hold no control characters
 *   - an EB_ACCEPTED entry has an EventId, no error code and is not throttled,
 *     and only comes from a 2xx reply whose body is JSON (checked here
 *     independently, with json-c's lenient parser) holding exactly n Entries,
 *     entry i being an object with a non-empty string EventId
 *   - a non-2xx reply gives every entry the same failure
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbridge/putevents.h"
#include "fuzz/fuzz_target.h"

static const long fuzz_statuses[] = {200, 200, 200, 200, 200, 200, 201, 204, 0,   100, 301,
                                     400, 401, 403, 404, 409, 413, 429, 500, 502, 503, 504};

static const char *const fuzz_headers[] = {
    "",
    "ThrottlingException",
    "com.amazonaws.events#InternalException",
    "ValidationException:http://internal.amazon.com/coral/com.amazon.coral.validate/",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "#",
    ":",
    " # : ",
    "a#b#c:d:e",
    "\x01\x7f\t",
};

#define FUZZ_NSTATUSES (sizeof(fuzz_statuses) / sizeof(fuzz_statuses[0]))
#define FUZZ_NHEADERS  (sizeof(fuzz_headers) / sizeof(fuzz_headers[0]))
#define FUZZ_MAX_N     10

static void fuzz_fail(const char *what, size_t entry)
{
    fprintf(stderr, "fuzz_putevents_reply: invariant violated: %s (entry %zu)\n", what, entry);
    abort();
}

/* True when s has a NUL within its len bytes and no control character before it. */
static bool fuzz_clean_text(const char *s, size_t len)
{
    const char *nul = memchr(s, '\0', len);
    if (nul == NULL)
        return false;
    for (const char *p = s; p < nul; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/*
 * Parses body on its own with json-c's lenient parser and returns its Entries
 * array when the body is one JSON object (blanks around it allowed) holding
 * an Entries array of exactly n elements; NULL otherwise. *root receives the
 * value to release with json_object_put().
 */
static json_object *fuzz_entries_of(const char *body, size_t len, size_t n, json_object **root)
{
    json_object *entries = NULL;
    json_tokener *tok = NULL;
    char *copy = NULL;

    *root = NULL;
    /* a raw NUL byte is never valid in JSON text */
    if (len == 0 || memchr(body, '\0', len) != NULL)
        goto out;
    copy = xmalloc(len + 1);
    memcpy(copy, body, len);
    copy[len] = '\0';
    tok = json_tokener_new();
    if (tok == NULL)
        abort();
    /* len + 1 feeds the terminator too, so a bare number at the end completes */
    *root = json_tokener_parse_ex(tok, copy, (int)(len + 1));
    if (json_tokener_get_error(tok) != json_tokener_success || *root == NULL)
        goto out;
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
        if (strchr(" \t\r\n", copy[i]) == NULL)
            goto out;
    }
    json_object *arr = NULL;
    if (!json_object_is_type(*root, json_type_object) ||
        !json_object_object_get_ex(*root, "Entries", &arr) ||
        !json_object_is_type(arr, json_type_array) || json_object_array_length(arr) != n)
        goto out;
    entries = arr;

out:
    if (tok != NULL)
        json_tokener_free(tok);
    free(copy);
    return entries;
}

/* True when element i of entries is an object with a non-empty string EventId. */
static bool fuzz_entry_has_id(json_object *entries, size_t i)
{
    json_object *e = json_object_array_get_idx(entries, i);
    json_object *id = NULL;
    return json_object_is_type(e, json_type_object) &&
           json_object_object_get_ex(e, "EventId", &id) &&
           json_object_is_type(id, json_type_string) && json_object_get_string_len(id) > 0;
}

static void fuzz_check_results(long status, const char *body, size_t body_len, size_t n,
                               const eb_result *results)
{
    bool is_2xx = status >= 200 && status < 300;
    json_object *root = NULL;
    json_object *entries = NULL;
    bool parsed = false;

    for (size_t i = 0; i < n; i++) {
        const eb_result *r = &results[i];
        unsigned char tb;
        memcpy(&tb, &r->throttled, 1);
        if (tb > 1)
            fuzz_fail("throttled is not a bool", i);
        int outcome = (int)r->outcome;
        if (outcome != EB_ACCEPTED && outcome != EB_RETRYABLE && outcome != EB_PERMANENT)
            fuzz_fail("outcome is not an eb_outcome value", i);
        if (!fuzz_clean_text(r->error_code, sizeof(r->error_code)))
            fuzz_fail("error_code is unterminated or has a control character", i);
        if (!fuzz_clean_text(r->error_message, sizeof(r->error_message)))
            fuzz_fail("error_message is unterminated or has a control character", i);
        if (outcome != EB_ACCEPTED)
            continue;

        if (!is_2xx)
            fuzz_fail("accepted entry from a non-2xx reply", i);
        if (!fuzz_clean_text(r->event_id, sizeof(r->event_id)) || r->event_id[0] == '\0')
            fuzz_fail("accepted entry without a clean EventId", i);
        if (r->error_code[0] != '\0' || r->throttled)
            fuzz_fail("accepted entry carries an error code or throttling", i);
        if (!parsed) {
            entries = fuzz_entries_of(body, body_len, n, &root);
            parsed = true;
        }
        if (entries == NULL)
            fuzz_fail("accepted entry but the body is not JSON with exactly n Entries", i);
        if (!fuzz_entry_has_id(entries, i))
            fuzz_fail("accepted entry but its reply entry has no EventId", i);
    }
    json_object_put(root);

    if (!is_2xx) {
        for (size_t i = 1; i < n; i++) {
            if (results[i].outcome != results[0].outcome ||
                results[i].throttled != results[0].throttled ||
                strcmp(results[i].error_code, results[0].error_code) != 0 ||
                strcmp(results[i].error_message, results[0].error_message) != 0)
                fuzz_fail("entries of a non-2xx reply differ", i);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    uint8_t b0 = pos < size ? data[pos++] : 0;
    uint8_t b1 = pos < size ? data[pos++] : 0;
    uint8_t b2 = pos < size ? data[pos++] : 0;
    long status = fuzz_statuses[b0 % FUZZ_NSTATUSES];
    size_t n = (size_t)(b1 % FUZZ_MAX_N) + 1;
    char header[64];
    const char *error_type = NULL;

    switch (b2 >> 6) {
    case 2: {
        size_t hlen = b2 & 0x3f;
        if (hlen > size - pos)
            hlen = size - pos;
        memcpy(header, data + pos, hlen);
        header[hlen] = '\0';
        pos += hlen;
        error_type = header;
        break;
    }
    case 3:
        error_type = fuzz_headers[(b2 & 0x3f) % FUZZ_NHEADERS];
        break;
    default:
        break;
    }

    /* the body is the tail of libFuzzer's exactly-sized buffer: overreads trip ASan */
    const char *body = (const char *)data + pos;
    size_t body_len = size - pos;
    eb_result *results = xmalloc(n * sizeof(*results));
    memset(results, 0xA5, n * sizeof(*results)); /* garbage: every field must be written */
    or_error err = {{0}};

    if (putevents_parse_reply(status, error_type, body, body_len, n, results, &err) != OR_OK) {
        fprintf(stderr, "fuzz_putevents_reply: parse failed for n=%zu: %s\n", n, err.msg);
        abort();
    }
    fuzz_check_results(status, body, body_len, n, results);
    free(results);
    return 0;
}
