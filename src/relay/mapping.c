#include "relay/mapping.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Payloads are small (a few columns); refuse absurd nesting early. */
#define MAPPING_MAX_DEPTH 64

static const struct {
    const char *event_type;
    const char *detail_type;
} detail_types[] = {
    {"created", "User Account Created"},
    {"updated", "User Account Updated"},
    {"deleted", "User Account Deleted"},
};

const char *mapping_detail_type(const char *event_type)
{
    if (event_type == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(detail_types) / sizeof(detail_types[0]); i++)
        if (strcmp(detail_types[i].event_type, event_type) == 0)
            return detail_types[i].detail_type;
    return NULL;
}

static void format_iso8601_ms(long long ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    long frac = (long)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03ldZ", base, frac);
}

/* Checks the payload is a JSON object without a "metadata" key. */
static or_status check_payload(const outbox_row *row, or_error *err)
{
    or_status st = OR_ERR;
    json_tokener *tok = json_tokener_new_ex(MAPPING_MAX_DEPTH);
    size_t len = strlen(row->payload);
    json_object *obj = json_tokener_parse_ex(tok, row->payload, (int)len);
    if (obj == NULL || json_tokener_get_parse_end(tok) != len) {
        or_error_set(err, "outbox row %lld: payload is not valid JSON (%s)", row->id,
                     json_tokener_error_desc(json_tokener_get_error(tok)));
        goto out;
    }
    if (!json_object_is_type(obj, json_type_object)) {
        or_error_set(err, "outbox row %lld: payload is a JSON %s, not an object", row->id,
                     json_type_to_name(json_object_get_type(obj)));
        goto out;
    }
    if (json_object_object_get_ex(obj, "metadata", NULL)) {
        or_error_set(err,
                     "outbox row %lld: payload already has a \"metadata\" key, which the relay "
                     "reserves for event metadata",
                     row->id);
        goto out;
    }
    st = OR_OK;
out:
    json_object_put(obj);
    json_tokener_free(tok);
    return st;
}

or_status mapping_build_entry(const outbox_row *row, const mapping_options *opts, strbuf *detail,
                              eb_entry *entry, or_error *err)
{
    const char *detail_type = mapping_detail_type(row->event_type);
    if (detail_type == NULL) {
        or_error_set(err, "outbox row %lld: unknown event_type \"%s\"", row->id,
                     row->event_type ? row->event_type : "(null)");
        return OR_ERR;
    }
    if (row->payload == NULL || row->event_id == NULL || row->aggregate_id == NULL) {
        or_error_set(err, "outbox row %lld: payload, event_id or aggregate_id is null", row->id);
        return OR_ERR;
    }
    if (check_payload(row, err) != OR_OK)
        return OR_ERR;

    /* Splice the metadata object in before the payload's closing brace. */
    const char *p = row->payload;
    const char *end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    /* check_payload guarantees an object, so end[-1] is '}' */
    const char *inner = strchr(p, '{') + 1;
    int empty = 1;
    for (const char *q = inner; q < end - 1; q++)
        if (*q != ' ' && *q != '\n' && *q != '\t' && *q != '\r') {
            empty = 0;
            break;
        }

    char occurred[32];
    format_iso8601_ms(row->occurred_at_ms, occurred);
    strbuf_reset(detail);
    if (strbuf_append(detail, p, (size_t)(end - 1 - p)) != OR_OK ||
        strbuf_puts(detail, empty ? "\"metadata\": {\"event_id\": "
                                  : ", \"metadata\": {\"event_id\": ") != OR_OK ||
        strbuf_json_string(detail, row->event_id, strlen(row->event_id)) != OR_OK ||
        strbuf_printf(detail,
                      ", \"outbox_id\": %lld, \"aggregate_type\": \"user\", \"aggregate_id\": ",
                      row->id) != OR_OK ||
        strbuf_json_string(detail, row->aggregate_id, strlen(row->aggregate_id)) != OR_OK ||
        strbuf_puts(detail, ", \"event_type\": ") != OR_OK ||
        strbuf_json_string(detail, row->event_type, strlen(row->event_type)) != OR_OK ||
        strbuf_printf(detail, ", \"occurred_at\": \"%s\"}}", occurred) != OR_OK) {
        or_error_set(err, "outbox row %lld: detail exceeds %zu bytes", row->id, detail->max);
        return OR_ERR;
    }

    entry->source = opts->source;
    entry->detail_type = detail_type;
    entry->detail = strbuf_cstr(detail);
    entry->event_bus_name = opts->event_bus_name;
    entry->has_time = true;
    entry->time_ms = row->occurred_at_ms;
    return OR_OK;
}
