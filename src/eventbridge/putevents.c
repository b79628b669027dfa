#include "eventbridge/putevents.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* The PutEvents API accepts at most this many entries a request. */
#define PUTEVENTS_MAX_ENTRIES 10

/* Replies are three levels deep; anything much deeper is not a reply. */
#define PUTEVENTS_JSON_MAX_DEPTH 32

static const char *const throttling_codes[] = {
    "Throttling",           "ThrottlingException",    "TooManyRequestsException",
    "RequestLimitExceeded", "LimitExceededException",
};

/*
 * Our own signing or credential problems: never a reason to drop a row, the
 * credentials may be rotated or the clock fixed.
 */
static const char *const auth_codes[] = {
    "InvalidSignatureException", "UnrecognizedClientException", "ExpiredTokenException",
    "IncompleteSignature",       "MissingAuthenticationToken",  "SignatureDoesNotMatch",
};

/* Per-entry codes that will fail the same way every time. */
static const char *const permanent_entry_codes[] = {
    "MalformedDetail",
    "InvalidArgument",
    "NotAuthorizedForSourceException",
    "NotAuthorizedForDetailTypeException",
    "AccessDeniedException",
    "InvalidAccountIdException",
    "RedactionFailure",
    "EntryTooLarge",
};

static bool code_in(const char *code, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(code, set[i]) == 0)
            return true;
    }
    return false;
}

#define CODE_IN(code, set) code_in((code), (set), sizeof(set) / sizeof((set)[0]))

eb_outcome putevents_classify(const char *error_code, long http_status, bool *throttled)
{
    const char *code = error_code != NULL ? error_code : "";
    bool thr = false;
    eb_outcome outcome;

    if (CODE_IN(code, throttling_codes) || http_status == 429) {
        thr = true;
        outcome = EB_RETRYABLE;
    } else if (CODE_IN(code, auth_codes)) {
        outcome = EB_RETRYABLE;
    } else if (http_status == 0) {
        /* per-entry: InternalFailure and unknown codes are retried (capped later) */
        outcome = CODE_IN(code, permanent_entry_codes) ? EB_PERMANENT : EB_RETRYABLE;
    } else if (http_status >= 500) {
        outcome = EB_RETRYABLE;
    } else if (http_status >= 400) {
        outcome = EB_PERMANENT;
    } else {
        /* 1xx/3xx (or 2xx with a code): an endpoint problem, not the entry's */
        outcome = EB_RETRYABLE;
    }
    if (throttled != NULL)
        *throttled = thr;
    return outcome;
}

void putevents_normalize_code(const char *raw, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    out[0] = '\0';
    if (raw == NULL)
        return;
    size_t end = strcspn(raw, ":");
    size_t start = 0;
    for (size_t i = 0; i < end; i++) {
        if (raw[i] == '#')
            start = i + 1;
    }
    while (start < end && (raw[start] == ' ' || raw[start] == '\t'))
        start++;
    while (end > start && (raw[end - 1] == ' ' || raw[end - 1] == '\t'))
        end--;
    size_t o = 0;
    for (size_t i = start; i < end && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)raw[i];
        out[o++] = (c < 0x20 || c == 0x7f) ? '_' : (char)c;
    }
    out[o] = '\0';
}

/*
 * Copies text from a peer into out for logs: only the first line is kept
 * (AWS signature errors go on to quote the canonical request, which may hold
 * a session token), control characters become spaces, and a text too long is
 * cut at a UTF-8 character boundary and marked with "...".
 */
static void copy_text(char *out, size_t outlen, const char *s, size_t len)
{
    if (outlen == 0)
        return;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n' || s[i] == '\r') {
            len = i;
            break;
        }
    }
    bool truncated = false;
    size_t cut = len;
    if (len >= outlen) {
        truncated = outlen > 4;
        cut = truncated ? outlen - 4 : outlen - 1;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
    }
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    if (truncated) {
        memcpy(out + cut, "...", 4);
    } else {
        out[cut] = '\0';
    }
}

static void set_result(eb_result *r, eb_outcome outcome, bool throttled, const char *code,
                       const char *msg, size_t msg_len)
{
    memset(r, 0, sizeof(*r));
    r->outcome = outcome;
    r->throttled = throttled;
    putevents_normalize_code(code, r->error_code, sizeof(r->error_code));
    copy_text(r->error_message, sizeof(r->error_message), msg, msg_len);
}

static void set_all_invalid(eb_result *results, size_t n, const char *why)
{
    for (size_t i = 0; i < n; i++)
        set_result(&results[i], EB_RETRYABLE, false, "InvalidReply", why, strlen(why));
}

static or_status put_time(strbuf *out, long long time_ms)
{
    unsigned long long mag =
        time_ms < 0 ? 0ULL - (unsigned long long)time_ms : (unsigned long long)time_ms;
    return strbuf_printf(out, "%s%llu.%03llu", time_ms < 0 ? "-" : "", mag / 1000ULL,
                         mag % 1000ULL);
}

static or_status put_field(strbuf *out, const char *name, const char *value)
{
    if (strbuf_printf(out, "\"%s\":", name) != OR_OK)
        return OR_ERR;
    return strbuf_json_string(out, value, strlen(value));
}

or_status putevents_build_body(const eb_entry *entries, size_t n, strbuf *out, or_error *err)
{
    size_t start = out->len;
    if (n == 0 || n > PUTEVENTS_MAX_ENTRIES) {
        or_error_set(err, "putevents request needs 1 to %d entries, got %zu", PUTEVENTS_MAX_ENTRIES,
                     n);
        return OR_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        const eb_entry *e = &entries[i];
        if (e->source == NULL || e->detail_type == NULL || e->detail == NULL) {
            or_error_set(err, "putevents entry %zu lacks source, detail type or detail", i);
            return OR_ERR;
        }
    }

    if (strbuf_puts(out, "{\"Entries\":[") != OR_OK)
        goto too_long;
    for (size_t i = 0; i < n; i++) {
        const eb_entry *e = &entries[i];
        if (strbuf_puts(out, i == 0 ? "{" : ",{") != OR_OK)
            goto too_long;
        if (put_field(out, "Source", e->source) != OR_OK)
            goto too_long;
        if (strbuf_putc(out, ',') != OR_OK || put_field(out, "DetailType", e->detail_type) != OR_OK)
            goto too_long;
        if (strbuf_putc(out, ',') != OR_OK || put_field(out, "Detail", e->detail) != OR_OK)
            goto too_long;
        if (e->event_bus_name != NULL && e->event_bus_name[0] != '\0') {
            if (strbuf_putc(out, ',') != OR_OK ||
                put_field(out, "EventBusName", e->event_bus_name) != OR_OK)
                goto too_long;
        }
        if (e->has_time) {
            if (strbuf_puts(out, ",\"Time\":") != OR_OK || put_time(out, e->time_ms) != OR_OK)
                goto too_long;
        }
        if (strbuf_putc(out, '}') != OR_OK)
            goto too_long;
    }
    if (strbuf_puts(out, "]}") != OR_OK)
        goto too_long;
    return OR_OK;

too_long:
    out->len = start;
    if (out->data != NULL)
        out->data[start] = '\0';
    or_error_set(err, "putevents request body exceeds its limit of %zu bytes", out->max);
    return OR_ERR;
}

/*
 * Parses body as one JSON value with nothing but blanks after it. Returns
 * NULL and a reason in why when it is not.
 */
static json_object *parse_json(const char *body, size_t body_len, char *why, size_t whylen)
{
    json_object *obj = NULL;
    json_tokener *tok = NULL;

    if (body == NULL || body_len == 0) {
        snprintf(why, whylen, "reply body is empty");
        goto out;
    }
    if (body_len > INT_MAX - 1) {
        snprintf(why, whylen, "reply body is too large (%zu bytes)", body_len);
        goto out;
    }
    tok = json_tokener_new_ex(PUTEVENTS_JSON_MAX_DEPTH);
    if (tok == NULL) {
        snprintf(why, whylen, "cannot allocate a json tokener");
        goto out;
    }
    /* trailing data is checked below, to say so in the message */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
    obj = json_tokener_parse_ex(tok, body, (int)body_len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        /* a bare number at the end needs a terminator to be complete */
        obj = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = body_len;
        if (jerr == json_tokener_continue || obj == NULL) {
            json_object_put(obj);
            obj = NULL;
            snprintf(why, whylen, "reply JSON is truncated");
            goto out;
        }
    }
    if (jerr != json_tokener_success || obj == NULL) {
        json_object_put(obj);
        obj = NULL;
        snprintf(why, whylen, "reply is not valid JSON (%s at byte %zu)",
                 json_tokener_error_desc(jerr), end);
        goto out;
    }
    for (size_t i = end; i < body_len; i++) {
        char c = body[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            json_object_put(obj);
            obj = NULL;
            snprintf(why, whylen, "reply has trailing data after the JSON value at byte %zu", i);
            goto out;
        }
    }

out:
    if (tok != NULL)
        json_tokener_free(tok);
    return obj;
}

/* The string member key of obj, or NULL if absent or not a string. */
static const char *json_str(json_object *obj, const char *key, size_t *len)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    if (len != NULL)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

static void parse_success(const char *body, size_t body_len, size_t n, eb_result *results)
{
    char why[200] = "";
    json_object *root = parse_json(body, body_len, why, sizeof(why));
    json_object *entries = NULL;
    size_t failed = 0;

    if (root == NULL)
        goto invalid;
    if (!json_object_is_type(root, json_type_object)) {
        snprintf(why, sizeof(why), "reply is a JSON %s, not an object",
                 json_type_to_name(json_object_get_type(root)));
        goto invalid;
    }
    if (!json_object_object_get_ex(root, "Entries", &entries) ||
        !json_object_is_type(entries, json_type_array)) {
        snprintf(why, sizeof(why), "reply has no Entries array");
        goto invalid;
    }
    size_t got = json_object_array_length(entries);
    if (got != n) {
        snprintf(why, sizeof(why), "reply has %zu entries for %zu sent", got, n);
        goto invalid;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(entries, i);
        if (!json_object_is_type(e, json_type_object)) {
            snprintf(why, sizeof(why), "reply entry %zu is not an object", i);
            goto invalid;
        }
        size_t id_len = 0, code_len = 0, msg_len = 0;
        const char *id = json_str(e, "EventId", &id_len);
        const char *code = json_str(e, "ErrorCode", &code_len);
        const char *msg = json_str(e, "ErrorMessage", &msg_len);
        bool has_id = id != NULL && id_len > 0;
        bool has_code = code != NULL && code_len > 0;
        if (has_id && has_code) {
            snprintf(why, sizeof(why), "reply entry %zu has both EventId and ErrorCode", i);
            goto invalid;
        }
        if (has_id) {
            for (size_t k = 0; k < id_len; k++) {
                if ((unsigned char)id[k] < 0x20 || id[k] == 0x7f) {
                    snprintf(why, sizeof(why),
                             "reply entry %zu has an EventId with a control "
                             "character",
                             i);
                    goto invalid;
                }
            }
            memset(&results[i], 0, sizeof(results[i]));
            results[i].outcome = EB_ACCEPTED;
            copy_text(results[i].event_id, sizeof(results[i].event_id), id, id_len);
        } else if (has_code) {
            char norm[sizeof(results[i].error_code)];
            bool throttled = false;
            putevents_normalize_code(code, norm, sizeof(norm));
            eb_outcome outcome = putevents_classify(norm, 0, &throttled);
            if (msg == NULL) {
                msg = "";
                msg_len = 0;
            }
            set_result(&results[i], outcome, throttled, norm, msg, msg_len);
            results[i].entry_level = true;
            failed++;
        } else {
            snprintf(why, sizeof(why), "reply entry %zu has neither EventId nor ErrorCode", i);
            goto invalid;
        }
    }
    json_object *fec = NULL;
    if (json_object_object_get_ex(root, "FailedEntryCount", &fec)) {
        if (!json_object_is_type(fec, json_type_int)) {
            snprintf(why, sizeof(why), "reply FailedEntryCount is not an integer");
            goto invalid;
        }
        int64_t claimed = json_object_get_int64(fec);
        if (claimed < 0 || (uint64_t)claimed != (uint64_t)failed) {
            snprintf(why, sizeof(why), "reply FailedEntryCount is %lld but %zu entries failed",
                     (long long)claimed, failed);
            goto invalid;
        }
    }
    json_object_put(root);
    return;

invalid:
    json_object_put(root);
    set_all_invalid(results, n, why);
}

static void parse_failure(long http_status, const char *error_type_header, const char *body,
                          size_t body_len, size_t n, eb_result *results)
{
    char why[200];
    char code[80] = "";
    char text[256];
    const char *msg = NULL;
    size_t msg_len = 0;
    json_object *root = parse_json(body, body_len, why, sizeof(why));

    if (root != NULL && !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        root = NULL;
    }
    putevents_normalize_code(error_type_header, code, sizeof(code));
    if (code[0] == '\0' && root != NULL) {
        const char *raw = json_str(root, "__type", NULL);
        if (raw == NULL)
            raw = json_str(root, "code", NULL);
        putevents_normalize_code(raw, code, sizeof(code));
    }
    if (code[0] == '\0')
        snprintf(code, sizeof(code), "HTTP%ld", http_status);
    if (root != NULL) {
        msg = json_str(root, "message", &msg_len);
        if (msg == NULL)
            msg = json_str(root, "Message", &msg_len);
    }
    if (msg == NULL || msg_len == 0) {
        snprintf(text, sizeof(text), "HTTP %ld with no error message", http_status);
        msg = text;
        msg_len = strlen(text);
    }
    bool throttled = false;
    eb_outcome outcome = putevents_classify(code, http_status, &throttled);
    for (size_t i = 0; i < n; i++)
        set_result(&results[i], outcome, throttled, code, msg, msg_len);
    json_object_put(root);
}

or_status putevents_parse_reply(long http_status, const char *error_type_header, const char *body,
                                size_t body_len, size_t n, eb_result *results, or_error *err)
{
    if (n == 0 || results == NULL) {
        or_error_set(err, "putevents reply parsing needs at least one result slot");
        return OR_ERR;
    }
    if (http_status >= 200 && http_status < 300)
        parse_success(body, body_len, n, results);
    else
        parse_failure(http_status, error_type_header, body, body_len, n, results);
    return OR_OK;
}

size_t putevents_pack(const eb_entry *entries, size_t n, size_t max_entries, size_t max_bytes,
                      size_t *request_of)
{
    size_t requests = 0;
    size_t count = 0;
    size_t bytes = 0;

    if (max_entries == 0)
        max_entries = 1;
    for (size_t i = 0; i < n; i++) {
        size_t size = eb_entry_size(&entries[i]);
        if (size > max_bytes) {
            request_of[i] = PUTEVENTS_TOO_LARGE;
            continue;
        }
        if (requests == 0 || count == max_entries || size > max_bytes - bytes) {
            requests++;
            count = 0;
            bytes = 0;
        }
        request_of[i] = requests - 1;
        count++;
        bytes += size;
    }
    return requests;
}
