#include "ep_state.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/clock.h"
#include "common/strbuf.h"

#define EP_RECORDS_MAX     1000000u
#define EP_GARBAGE_MAX     (1024u * 1024u)
#define EP_DELAY_MAX_MS    600000L
#define EP_DEFAULT_GARBAGE "<html><body><h1>502 Bad Gateway</h1></body></html>"
#define EP_JSON_OUT_FLAGS  (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

typedef struct ep_faults {
    char entry_fail_code[128];
    char entry_fail_message[256];
    long entry_fail_every;  /* > 0: every Nth eligible entry fails */
    double entry_fail_rate; /* used when entry_fail_every == 0 */
    unsigned long long entry_seen;

    unsigned http_status;
    long http_count;
    char http_error_type[128]; /* "" = default for the status */
    bool http_error_header;

    long delay_ms;
    long drop_count;
    long garbage_count;
    char *garbage_body;
} ep_faults;

struct ep_state {
    pthread_mutex_t mu;
    FILE *record_file;
    ep_faults faults;

    json_object **records;
    size_t n_records;
    size_t cap_records;
    unsigned long long records_dropped;

    unsigned long long requests;
    unsigned long long accepted_entries;
    unsigned long long failed_entries;
    unsigned long long signature_failures;
    unsigned long long faults_injected;

    uint32_t id_a;
    uint16_t id_b;
    uint16_t id_c;
    uint16_t id_d;
    unsigned long long id_counter;
};

static void ep_faults_clear(ep_faults *f)
{
    free(f->garbage_body);
    memset(f, 0, sizeof(*f));
    f->http_error_header = true;
}

ep_state *ep_state_new(FILE *record_file)
{
    ep_state *st = xcalloc(1, sizeof(*st));
    pthread_mutex_init(&st->mu, NULL);
    st->record_file = record_file;
    ep_faults_clear(&st->faults);

    unsigned char rnd[10];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        /* not fatal: uniqueness within the process comes from the counter */
        for (size_t i = 0; i < sizeof(rnd); i++)
            rnd[i] = (unsigned char)(clock_random_unit() * 256.0);
    }
    st->id_a = (uint32_t)rnd[0] << 24 | (uint32_t)rnd[1] << 16 | (uint32_t)rnd[2] << 8 | rnd[3];
    st->id_b = (uint16_t)(rnd[4] << 8 | rnd[5]);
    st->id_c = (uint16_t)(0x4000 | ((rnd[6] << 8 | rnd[7]) & 0x0fff));
    st->id_d = (uint16_t)(0x8000 | ((rnd[8] << 8 | rnd[9]) & 0x3fff));
    return st;
}

void ep_state_free(ep_state *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n_records; i++)
        json_object_put(st->records[i]);
    free(st->records);
    ep_faults_clear(&st->faults);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static const char *ep_default_error_type(unsigned status)
{
    return status >= 500 ? "InternalFailure" : "ThrottlingException";
}

void ep_state_begin_request(ep_state *st, ep_request_fault *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&st->mu);
    ep_faults *f = &st->faults;
    st->requests++;
    out->delay_ms = f->delay_ms;
    if (f->drop_count > 0) {
        f->drop_count--;
        out->kind = EP_FAULT_DROP;
    } else if (f->http_count > 0) {
        f->http_count--;
        out->kind = EP_FAULT_HTTP;
        out->status = f->http_status;
        snprintf(out->error_type, sizeof(out->error_type), "%s",
                 f->http_error_type[0] ? f->http_error_type
                                       : ep_default_error_type(f->http_status));
        out->error_header = f->http_error_header;
    } else if (f->garbage_count > 0) {
        f->garbage_count--;
        out->kind = EP_FAULT_GARBAGE;
        out->garbage_body = xstrdup(f->garbage_body ? f->garbage_body : EP_DEFAULT_GARBAGE);
    }
    if (out->kind != EP_FAULT_NONE || out->delay_ms > 0)
        st->faults_injected++;
    pthread_mutex_unlock(&st->mu);
}

bool ep_state_entry_fault(ep_state *st, char *code, size_t codelen, char *msg, size_t msglen)
{
    bool fail = false;
    pthread_mutex_lock(&st->mu);
    ep_faults *f = &st->faults;
    if (f->entry_fail_code[0] != '\0') {
        if (f->entry_fail_every > 0) {
            f->entry_seen++;
            fail = f->entry_seen % (unsigned long long)f->entry_fail_every == 0;
        } else if (f->entry_fail_rate > 0.0) {
            fail = clock_random_unit() < f->entry_fail_rate;
        }
    }
    if (fail) {
        snprintf(code, codelen, "%s", f->entry_fail_code);
        snprintf(msg, msglen, "%s",
                 f->entry_fail_message[0] ? f->entry_fail_message : "injected fault");
        st->faults_injected++;
    }
    pthread_mutex_unlock(&st->mu);
    return fail;
}

void ep_state_new_id(ep_state *st, char out[37])
{
    pthread_mutex_lock(&st->mu);
    unsigned long long n = ++st->id_counter;
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)st->id_a, (unsigned)st->id_b,
             (unsigned)st->id_c, (unsigned)st->id_d, n & 0xffffffffffffULL);
    pthread_mutex_unlock(&st->mu);
}

void ep_state_record(ep_state *st, json_object *rec)
{
    pthread_mutex_lock(&st->mu);
    st->accepted_entries++;
    if (st->record_file != NULL) {
        fputs(json_object_to_json_string_ext(rec, EP_JSON_OUT_FLAGS), st->record_file);
        fputc('\n', st->record_file);
        fflush(st->record_file);
    }
    if (st->n_records >= EP_RECORDS_MAX) {
        st->records_dropped++;
        json_object_put(rec);
    } else {
        if (st->n_records == st->cap_records) {
            st->cap_records = st->cap_records ? st->cap_records * 2 : 64;
            st->records = xrealloc(st->records, st->cap_records * sizeof(*st->records));
        }
        st->records[st->n_records++] = rec;
    }
    pthread_mutex_unlock(&st->mu);
}

void ep_state_count_failed(ep_state *st, size_t n)
{
    pthread_mutex_lock(&st->mu);
    st->failed_entries += n;
    pthread_mutex_unlock(&st->mu);
}

void ep_state_count_signature_failure(ep_state *st)
{
    pthread_mutex_lock(&st->mu);
    st->signature_failures++;
    pthread_mutex_unlock(&st->mu);
}

/* Reads an integer field within [lo, hi]; OR_ERR naming the field otherwise. */
static or_status ep_get_long(json_object *v, const char *name, long lo, long hi, long *out,
                             or_error *err)
{
    if (!json_object_is_type(v, json_type_int)) {
        or_error_set(err, "field %s must be an integer", name);
        return OR_ERR;
    }
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi) {
        or_error_set(err, "field %s must be between %ld and %ld", name, lo, hi);
        return OR_ERR;
    }
    *out = (long)x;
    return OR_OK;
}

static or_status ep_get_string(json_object *v, const char *name, char *out, size_t outlen,
                               or_error *err)
{
    if (!json_object_is_type(v, json_type_string)) {
        or_error_set(err, "field %s must be a string", name);
        return OR_ERR;
    }
    if ((size_t)json_object_get_string_len(v) >= outlen) {
        or_error_set(err, "field %s is longer than %zu bytes", name, outlen - 1);
        return OR_ERR;
    }
    snprintf(out, outlen, "%s", json_object_get_string(v));
    return OR_OK;
}

/* Applies one control field to f (a scratch copy). */
static or_status ep_apply_field(ep_faults *f, const char *key, json_object *v, bool *saw_every,
                                bool *saw_count, or_error *err)
{
    long n = 0;
    if (strcmp(key, "reset") == 0) {
        if (!json_object_is_type(v, json_type_boolean)) {
            or_error_set(err, "field reset must be a boolean");
            return OR_ERR;
        }
        return OR_OK; /* handled before the other fields */
    }
    if (strcmp(key, "entry_fail_code") == 0) {
        if (json_object_is_type(v, json_type_null)) {
            f->entry_fail_code[0] = '\0';
            return OR_OK;
        }
        return ep_get_string(v, key, f->entry_fail_code, sizeof(f->entry_fail_code), err);
    }
    if (strcmp(key, "entry_fail_message") == 0)
        return ep_get_string(v, key, f->entry_fail_message, sizeof(f->entry_fail_message), err);
    if (strcmp(key, "entry_fail_every") == 0) {
        if (ep_get_long(v, key, 0, LONG_MAX, &f->entry_fail_every, err) != OR_OK)
            return OR_ERR;
        f->entry_fail_rate = 0.0;
        f->entry_seen = 0;
        *saw_every = true;
        return OR_OK;
    }
    if (strcmp(key, "entry_fail_rate") == 0) {
        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
            or_error_set(err, "field entry_fail_rate must be a number");
            return OR_ERR;
        }
        double r = json_object_get_double(v);
        if (!(r >= 0.0 && r <= 1.0)) {
            or_error_set(err, "field entry_fail_rate must be between 0 and 1");
            return OR_ERR;
        }
        f->entry_fail_rate = r;
        f->entry_fail_every = 0;
        *saw_every = true;
        return OR_OK;
    }
    if (strcmp(key, "http_status") == 0) {
        if (ep_get_long(v, key, 100, 599, &n, err) != OR_OK)
            return OR_ERR;
        f->http_status = (unsigned)n;
        return OR_OK;
    }
    if (strcmp(key, "http_count") == 0) {
        *saw_count = true;
        return ep_get_long(v, key, 0, LONG_MAX, &f->http_count, err);
    }
    if (strcmp(key, "http_error_type") == 0)
        return ep_get_string(v, key, f->http_error_type, sizeof(f->http_error_type), err);
    if (strcmp(key, "http_error_header") == 0) {
        if (!json_object_is_type(v, json_type_boolean)) {
            or_error_set(err, "field http_error_header must be a boolean");
            return OR_ERR;
        }
        f->http_error_header = json_object_get_boolean(v);
        return OR_OK;
    }
    if (strcmp(key, "delay_ms") == 0)
        return ep_get_long(v, key, 0, EP_DELAY_MAX_MS, &f->delay_ms, err);
    if (strcmp(key, "drop_count") == 0)
        return ep_get_long(v, key, 0, LONG_MAX, &f->drop_count, err);
    if (strcmp(key, "garbage_count") == 0)
        return ep_get_long(v, key, 0, LONG_MAX, &f->garbage_count, err);
    if (strcmp(key, "garbage_body") == 0) {
        if (!json_object_is_type(v, json_type_string)) {
            or_error_set(err, "field garbage_body must be a string");
            return OR_ERR;
        }
        if ((size_t)json_object_get_string_len(v) > EP_GARBAGE_MAX) {
            or_error_set(err, "field garbage_body is longer than %u bytes", EP_GARBAGE_MAX);
            return OR_ERR;
        }
        free(f->garbage_body);
        f->garbage_body =
            xstrndup(json_object_get_string(v), (size_t)json_object_get_string_len(v));
        return OR_OK;
    }
    or_error_set(err, "unknown control field %s", key);
    return OR_ERR;
}

static json_object *ep_faults_json(const ep_faults *f)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "entry_fail_code", json_object_new_string(f->entry_fail_code));
    json_object_object_add(o, "entry_fail_message", json_object_new_string(f->entry_fail_message));
    json_object_object_add(o, "entry_fail_every", json_object_new_int64(f->entry_fail_every));
    json_object_object_add(o, "entry_fail_rate", json_object_new_double(f->entry_fail_rate));
    json_object_object_add(o, "http_status", json_object_new_int64(f->http_status));
    json_object_object_add(o, "http_count", json_object_new_int64(f->http_count));
    json_object_object_add(o, "http_error_type", json_object_new_string(f->http_error_type));
    json_object_object_add(o, "http_error_header", json_object_new_boolean(f->http_error_header));
    json_object_object_add(o, "delay_ms", json_object_new_int64(f->delay_ms));
    json_object_object_add(o, "drop_count", json_object_new_int64(f->drop_count));
    json_object_object_add(o, "garbage_count", json_object_new_int64(f->garbage_count));
    json_object_object_add(o, "garbage_body",
                           f->garbage_body ? json_object_new_string(f->garbage_body) : NULL);
    return o;
}

or_status ep_state_control(ep_state *st, const char *body, size_t len, char **out_json,
                           or_error *err)
{
    or_status rc = OR_ERR;
    ep_faults scratch;
    bool have_scratch = false;
    json_object *req = ep_json_parse(body, len, 16);
    *out_json = NULL;

    if (req == NULL || !json_object_is_type(req, json_type_object)) {
        or_error_set(err, "control body is not a JSON object");
        goto out;
    }

    pthread_mutex_lock(&st->mu);
    scratch = st->faults;
    scratch.garbage_body = st->faults.garbage_body ? xstrdup(st->faults.garbage_body) : NULL;
    pthread_mutex_unlock(&st->mu);
    have_scratch = true;

    json_object *reset = NULL;
    if (json_object_object_get_ex(req, "reset", &reset) && json_object_get_boolean(reset))
        ep_faults_clear(&scratch);

    bool saw_every = false, saw_count = false;
    json_object_object_foreach(req, key, val)
    {
        if (ep_apply_field(&scratch, key, val, &saw_every, &saw_count, err) != OR_OK)
            goto out;
    }
    /* a code alone means "every entry fails" */
    if (json_object_object_get_ex(req, "entry_fail_code", NULL) && !saw_every &&
        scratch.entry_fail_every == 0 && scratch.entry_fail_rate == 0.0)
        scratch.entry_fail_every = 1;
    /* a status alone means "the next request" */
    if (json_object_object_get_ex(req, "http_status", NULL) && !saw_count)
        scratch.http_count = 1;
    if (scratch.http_count > 0 && scratch.http_status == 0) {
        or_error_set(err, "field http_count needs http_status");
        goto out;
    }
    if (json_object_object_get_ex(req, "garbage_body", NULL) &&
        !json_object_object_get_ex(req, "garbage_count", NULL) && scratch.garbage_count == 0)
        scratch.garbage_count = 1;

    pthread_mutex_lock(&st->mu);
    ep_faults_clear(&st->faults);
    st->faults = scratch;
    have_scratch = false;
    json_object *state = ep_faults_json(&st->faults);
    pthread_mutex_unlock(&st->mu);
    *out_json = xstrdup(json_object_to_json_string_ext(state, EP_JSON_OUT_FLAGS));
    json_object_put(state);
    rc = OR_OK;
out:
    if (have_scratch)
        free(scratch.garbage_body);
    json_object_put(req);
    return rc;
}

char *ep_state_records_json(ep_state *st, size_t since)
{
    pthread_mutex_lock(&st->mu);
    size_t from = since < st->n_records ? since : st->n_records;
    json_object *arr = json_object_new_array_ext((int)(st->n_records - from));
    for (size_t i = from; i < st->n_records; i++)
        json_object_array_add(arr, json_object_get(st->records[i]));
    char *s = xstrdup(json_object_to_json_string_ext(arr, EP_JSON_OUT_FLAGS));
    json_object_put(arr);
    pthread_mutex_unlock(&st->mu);
    return s;
}

void ep_state_clear_records(ep_state *st)
{
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n_records; i++)
        json_object_put(st->records[i]);
    st->n_records = 0;
    pthread_mutex_unlock(&st->mu);
}

char *ep_state_stats_json(ep_state *st)
{
    char buf[512];
    pthread_mutex_lock(&st->mu);
    snprintf(buf, sizeof(buf),
             "{\"requests\":%llu,\"accepted_entries\":%llu,\"failed_entries\":%llu,"
             "\"signature_failures\":%llu,\"faults_injected\":%llu,\"records\":%zu,"
             "\"records_dropped\":%llu}",
             st->requests, st->accepted_entries, st->failed_entries, st->signature_failures,
             st->faults_injected, st->n_records, st->records_dropped);
    pthread_mutex_unlock(&st->mu);
    return xstrdup(buf);
}

json_object *ep_json_parse(const char *text, size_t len, int max_depth)
{
    if (len > (size_t)INT_MAX || memchr(text, '\0', len) != NULL)
        return NULL;
    json_tokener *tok = json_tokener_new_ex(max_depth);
    if (tok == NULL)
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                    JSON_TOKENER_VALIDATE_UTF8);
    json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(obj);
        obj = NULL;
    } else {
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
            char c = text[i];
            if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
                json_object_put(obj);
                obj = NULL;
                break;
            }
        }
    }
    json_tokener_free(tok);
    return obj;
}
