#include "ep_api.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"

#define EP_MAX_ENTRIES    10
#define EP_BODY_DEPTH     64
#define EP_DETAIL_DEPTH   1000
#define EP_JSON_OUT_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

void ep_reply_clear(ep_reply *reply)
{
    free(reply->body);
    reply->body = NULL;
    reply->body_len = 0;
}

void ep_reply_set_body(ep_reply *reply, unsigned status, const char *body, size_t len)
{
    ep_reply_clear(reply);
    reply->status = status;
    reply->body = xstrndup(body, len);
    reply->body_len = len;
}

void ep_reply_error(ep_reply *reply, unsigned status, const char *type, const char *message)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "__type", json_object_new_string(type));
    json_object_object_add(o, "message", json_object_new_string(message));
    const char *s = json_object_to_json_string_ext(o, EP_JSON_OUT_FLAGS);
    ep_reply_set_body(reply, status, s, strlen(s));
    snprintf(reply->error_type, sizeof(reply->error_type), "%s", type);
    json_object_put(o);
}

/* An entry's field: NULL when absent or null; *bad set when of the wrong type. */
static json_object *ep_field(json_object *entry, const char *name, json_type type, bool *bad)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(entry, name, &v) || v == NULL)
        return NULL;
    bool ok = json_object_is_type(v, type) ||
              (type == json_type_double && json_object_is_type(v, json_type_int));
    if (!ok) {
        *bad = true;
        return NULL;
    }
    return v;
}

static size_t ep_strlen(json_object *v)
{
    return v ? (size_t)json_object_get_string_len(v) : 0;
}

/* Checks field types of every entry and sums their sizes; false on a type error. */
static bool ep_check_entries(json_object *entries, size_t *total, char *why, size_t whylen)
{
    *total = 0;
    size_t n = json_object_array_length(entries);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(entries, i);
        bool bad = false;
        if (!json_object_is_type(e, json_type_object)) {
            snprintf(why, whylen, "entry %zu is not a structure", i);
            return false;
        }
        json_object *src = ep_field(e, "Source", json_type_string, &bad);
        json_object *dt = ep_field(e, "DetailType", json_type_string, &bad);
        json_object *detail = ep_field(e, "Detail", json_type_string, &bad);
        json_object *time = ep_field(e, "Time", json_type_double, &bad);
        json_object *res = ep_field(e, "Resources", json_type_array, &bad);
        (void)ep_field(e, "EventBusName", json_type_string, &bad);
        (void)ep_field(e, "TraceHeader", json_type_string, &bad);
        if (bad) {
            snprintf(why, whylen, "entry %zu has a field of the wrong type", i);
            return false;
        }
        size_t size = (time ? 14 : 0) + ep_strlen(src) + ep_strlen(dt) + ep_strlen(detail);
        for (size_t r = 0; res != NULL && r < json_object_array_length(res); r++) {
            json_object *item = json_object_array_get_idx(res, r);
            if (!json_object_is_type(item, json_type_string)) {
                snprintf(why, whylen, "entry %zu has a resource that is not a string", i);
                return false;
            }
            size += ep_strlen(item);
        }
        *total += size;
    }
    return true;
}

/* Decides one entry; returns its reply element and records it when accepted. */
static json_object *ep_one_entry(ep_state *st, json_object *e, const char *access_key_id,
                                 bool *failed)
{
    bool bad = false;
    json_object *src = ep_field(e, "Source", json_type_string, &bad);
    json_object *dt = ep_field(e, "DetailType", json_type_string, &bad);
    json_object *detail = ep_field(e, "Detail", json_type_string, &bad);
    json_object *time = ep_field(e, "Time", json_type_double, &bad);
    json_object *bus = ep_field(e, "EventBusName", json_type_string, &bad);
    const char *code = NULL, *message = NULL;
    char injected[128], injected_msg[256];
    json_object *parsed = NULL;

    if (src == NULL) {
        code = "InvalidArgument";
        message = "Parameter Source is not valid. Reason: Source is a required argument.";
    } else if (dt == NULL) {
        code = "InvalidArgument";
        message = "Parameter DetailType is not valid. Reason: DetailType is a required argument.";
    } else if (detail == NULL) {
        code = "InvalidArgument";
        message = "Parameter Detail is not valid. Reason: Detail is a required argument.";
    } else if ((parsed = ep_json_parse(json_object_get_string(detail), ep_strlen(detail),
                                       EP_DETAIL_DEPTH)) == NULL ||
               !json_object_is_type(parsed, json_type_object)) {
        code = "MalformedDetail";
        message = "Detail is malformed.";
    } else if (strncmp(json_object_get_string(src), "aws.", 4) == 0) {
        code = "NotAuthorizedForSourceException";
        message = "Not authorized for the source.";
    } else if (ep_state_entry_fault(st, injected, sizeof(injected), injected_msg,
                                    sizeof(injected_msg))) {
        code = injected;
        message = injected_msg;
    }
    json_object_put(parsed);

    json_object *out = json_object_new_object();
    if (code != NULL) {
        *failed = true;
        json_object_object_add(out, "ErrorCode", json_object_new_string(code));
        json_object_object_add(out, "ErrorMessage", json_object_new_string(message));
        return out;
    }
    *failed = false;
    char id[37];
    ep_state_new_id(st, id);
    json_object_object_add(out, "EventId", json_object_new_string(id));

    json_object *rec = json_object_new_object();
    json_object_object_add(rec, "EventId", json_object_new_string(id));
    json_object_object_add(rec, "Source", json_object_get(src));
    json_object_object_add(rec, "DetailType", json_object_get(dt));
    json_object_object_add(rec, "Detail", json_object_get(detail));
    json_object_object_add(rec, "EventBusName",
                           bus ? json_object_get(bus) : json_object_new_string("default"));
    json_object_object_add(rec, "Time", time ? json_object_get(time) : NULL);
    json_object_object_add(rec, "AccessKeyId", json_object_new_string(access_key_id));
    json_object_object_add(rec, "ReceivedAtMs", json_object_new_int64(clock_wall_ms()));
    ep_state_record(st, rec);
    return out;
}

void ep_api_put_events(ep_state *st, size_t max_request_bytes, const char *access_key_id,
                       const char *body, size_t len, ep_reply *reply)
{
    char why[256];
    json_object *req = ep_json_parse(body, len, EP_BODY_DEPTH);
    json_object *entries = NULL;
    json_object *resp = NULL;

    if (req == NULL || !json_object_is_type(req, json_type_object)) {
        ep_reply_error(reply, 400, "SerializationException", "request body is not a JSON object");
        goto out;
    }
    if (!json_object_object_get_ex(req, "Entries", &entries) || entries == NULL) {
        ep_reply_error(reply, 400, "ValidationException",
                       "1 validation error detected: Value null at 'entries' failed to satisfy "
                       "constraint: Member must not be null");
        goto out;
    }
    if (!json_object_is_type(entries, json_type_array)) {
        ep_reply_error(reply, 400, "SerializationException", "Entries is not a list");
        goto out;
    }
    size_t n = json_object_array_length(entries);
    if (n < 1 || n > EP_MAX_ENTRIES) {
        snprintf(why, sizeof(why),
                 "1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                 "Member must have length between 1 and %d (got %zu)",
                 EP_MAX_ENTRIES, n);
        ep_reply_error(reply, 400, "ValidationException", why);
        goto out;
    }
    size_t total = 0;
    if (!ep_check_entries(entries, &total, why, sizeof(why))) {
        ep_reply_error(reply, 400, "SerializationException", why);
        goto out;
    }
    if (total > max_request_bytes) {
        snprintf(why, sizeof(why),
                 "Total size of the entries in the request is over the limit (%zu > %zu bytes).",
                 total, max_request_bytes);
        ep_reply_error(reply, 400, "ValidationException", why);
        goto out;
    }

    resp = json_object_new_object();
    json_object *results = json_object_new_array_ext((int)n);
    size_t failed_count = 0;
    for (size_t i = 0; i < n; i++) {
        bool failed = false;
        json_object_array_add(results, ep_one_entry(st, json_object_array_get_idx(entries, i),
                                                    access_key_id, &failed));
        if (failed)
            failed_count++;
    }
    ep_state_count_failed(st, failed_count);
    json_object_object_add(resp, "FailedEntryCount", json_object_new_int64((int64_t)failed_count));
    json_object_object_add(resp, "Entries", results);
    const char *s = json_object_to_json_string_ext(resp, EP_JSON_OUT_FLAGS);
    ep_reply_set_body(reply, 200, s, strlen(s));
    reply->error_type[0] = '\0';
out:
    json_object_put(resp);
    json_object_put(req);
}
