#include "eventbridge/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/endpoint.h"
#include "aws/sigv4.h"
#include "common/clock.h"
#include "common/log.h"
#include "http/http.h"

#define EB_MAX_ENTRIES_PER_REQUEST 10
#define EB_CONTENT_TYPE            "application/x-amz-json-1.1"
#define EB_TARGET                  "AWSEvents.PutEvents"
#define EB_SERVICE                 "events"
/* Replies are small; an error page larger than this is cut off as an error. */
#define EB_MAX_RESPONSE_BYTES (1024 * 1024)
/* Longest header line we build (Authorization, session token). */
#define EB_MAX_HEADER_BYTES 8192
/* Headers per request: content-type, host, date, target, token, authorization. */
#define EB_MAX_HEADERS 6

struct eb_client {
    http_client *http;
    credentials_provider *credentials; /* borrowed */
    char *url;                         /* endpoint with path "/" */
    char *region;
    char host[300];
    size_t max_entries;
    size_t max_bytes;
    eb_client_stats stats;
};

/* One PutEvents request of a publish() call. */
typedef struct eb_call {
    size_t first; /* position in the publish's order[] of its first entry */
    size_t count;
    strbuf body;
    char *headers[EB_MAX_HEADERS];
    const char *header_view[EB_MAX_HEADERS];
    size_t n_headers;
} eb_call;

eb_client *eb_client_new(const eb_client_options *opts, or_error *err)
{
    eb_client *c = NULL;

    if (opts == NULL || opts->endpoint_url == NULL || opts->region == NULL ||
        opts->region[0] == '\0' || opts->credentials == NULL) {
        or_error_set(err, "eventbridge client needs an endpoint url, a region and credentials");
        return NULL;
    }
    if (opts->max_entries_per_request < 1 ||
        opts->max_entries_per_request > EB_MAX_ENTRIES_PER_REQUEST) {
        or_error_set(err, "eventbridge entries per request must be 1 to %d, got %zu",
                     EB_MAX_ENTRIES_PER_REQUEST, opts->max_entries_per_request);
        return NULL;
    }
    if (opts->max_request_bytes < 1 || opts->max_in_flight < 1) {
        or_error_set(err, "eventbridge request size limit and requests in flight must be at "
                          "least 1");
        return NULL;
    }
    if (opts->timeout_ms <= 0 || opts->connect_timeout_ms <= 0) {
        or_error_set(err, "eventbridge timeouts must be positive");
        return NULL;
    }

    c = xcalloc(1, sizeof(*c));
    c->credentials = opts->credentials;
    c->region = xstrdup(opts->region);
    c->max_entries = opts->max_entries_per_request;
    c->max_bytes = opts->max_request_bytes;
    if (aws_endpoint_host(opts->endpoint_url, c->host, sizeof(c->host), err) != OR_OK)
        goto fail;

    /* the request path is "/": add it when the URL has none */
    const char *scheme_end = strstr(opts->endpoint_url, "://");
    const char *authority = scheme_end != NULL ? scheme_end + 3 : opts->endpoint_url;
    if (strchr(authority, '/') == NULL) {
        size_t len = strlen(opts->endpoint_url);
        c->url = xmalloc(len + 2);
        memcpy(c->url, opts->endpoint_url, len);
        c->url[len] = '/';
        c->url[len + 1] = '\0';
    } else {
        c->url = xstrdup(opts->endpoint_url);
    }

    http_client_options hopts = {
        .timeout_ms = opts->timeout_ms,
        .connect_timeout_ms = opts->connect_timeout_ms,
        .max_concurrency = opts->max_in_flight,
        .max_response_bytes = EB_MAX_RESPONSE_BYTES,
    };
    c->http = http_client_new(&hopts, err);
    if (c->http == NULL)
        goto fail;
    return c;

fail:
    or_error_prefix(err, "eventbridge client");
    eb_client_free(c);
    return NULL;
}

void eb_client_free(eb_client *c)
{
    if (c == NULL)
        return;
    http_client_free(c->http);
    free(c->url);
    free(c->region);
    free(c);
}

void eb_client_get_stats(const eb_client *c, eb_client_stats *out)
{
    *out = c->stats;
}

static void eb_set_result(eb_result *r, eb_outcome outcome, const char *code, const char *msg)
{
    memset(r, 0, sizeof(*r));
    r->outcome = outcome;
    snprintf(r->error_code, sizeof(r->error_code), "%s", code);
    snprintf(r->error_message, sizeof(r->error_message), "%s", msg);
}

static void eb_set_all(eb_result *results, size_t n, const char *code, const char *msg)
{
    for (size_t i = 0; i < n; i++)
        eb_set_result(&results[i], EB_RETRYABLE, code, msg);
}

static void eb_call_clear(eb_call *call)
{
    strbuf_free(&call->body);
    for (size_t i = 0; i < call->n_headers; i++) {
        if (call->headers[i] != NULL) {
            /* the security token and signature live here */
            memset(call->headers[i], 0, strlen(call->headers[i]));
            free(call->headers[i]);
        }
    }
    call->n_headers = 0;
}

static or_status eb_call_add_header(eb_call *call, const char *name, const char *value,
                                    or_error *err)
{
    strbuf line;
    strbuf_init(&line, EB_MAX_HEADER_BYTES);
    if (call->n_headers >= EB_MAX_HEADERS || strbuf_printf(&line, "%s: %s", name, value) != OR_OK) {
        strbuf_free(&line);
        or_error_set(err, "header %s does not fit in %d bytes", name, EB_MAX_HEADER_BYTES);
        return OR_ERR;
    }
    call->headers[call->n_headers] = strbuf_detach(&line, NULL);
    call->header_view[call->n_headers] = call->headers[call->n_headers];
    call->n_headers++;
    return OR_OK;
}

/* Upper bound of the JSON body of entries (every byte escaped as \u00XX). */
static size_t eb_body_bound(const eb_entry *entries, const size_t *order, size_t count)
{
    size_t bound = 64;
    for (size_t k = 0; k < count; k++) {
        const eb_entry *e = &entries[order[k]];
        size_t chars = strlen(e->source != NULL ? e->source : "") +
                       strlen(e->detail_type != NULL ? e->detail_type : "") +
                       strlen(e->detail != NULL ? e->detail : "") +
                       strlen(e->event_bus_name != NULL ? e->event_bus_name : "");
        bound += 6 * chars + 128;
    }
    return bound;
}

/* Builds, and signs, the body and headers of one request. */
static or_status eb_call_prepare(const eb_client *c, eb_call *call, const eb_entry *entries,
                                 const size_t *order, const aws_credentials *creds,
                                 const char *amz_date, or_error *err)
{
    eb_entry batch[EB_MAX_ENTRIES_PER_REQUEST];
    strbuf auth;
    or_status st = OR_ERR;
    bool token = creds->session_token != NULL && creds->session_token[0] != '\0';

    strbuf_init(&auth, EB_MAX_HEADER_BYTES);
    for (size_t k = 0; k < call->count; k++)
        batch[k] = entries[order[call->first + k]];
    strbuf_init(&call->body, eb_body_bound(entries, order + call->first, call->count));
    if (putevents_build_body(batch, call->count, &call->body, err) != OR_OK)
        goto out;

    sigv4_header sh[5] = {
        {"content-type", EB_CONTENT_TYPE},
        {"host", c->host},
        {"x-amz-date", amz_date},
        {"x-amz-target", EB_TARGET},
        {"x-amz-security-token", token ? creds->session_token : ""},
    };
    sigv4_request sreq = {
        .method = "POST",
        .path = "/",
        .query = "",
        .headers = sh,
        .n_headers = token ? 5 : 4,
        .body = strbuf_cstr(&call->body),
        .body_len = call->body.len,
    };
    sigv4_key key = {
        .access_key_id = creds->access_key_id,
        .secret_access_key = creds->secret_access_key,
        .session_token = token ? creds->session_token : NULL,
    };
    sigv4_scope scope = {.amz_date = amz_date, .region = c->region, .service = EB_SERVICE};
    if (sigv4_authorization(&sreq, &key, &scope, &auth, err) != OR_OK) {
        or_error_prefix(err, "cannot sign the putevents request");
        goto out;
    }

    if (eb_call_add_header(call, "Content-Type", EB_CONTENT_TYPE, err) != OR_OK ||
        eb_call_add_header(call, "Host", c->host, err) != OR_OK ||
        eb_call_add_header(call, "X-Amz-Date", amz_date, err) != OR_OK ||
        eb_call_add_header(call, "X-Amz-Target", EB_TARGET, err) != OR_OK ||
        (token &&
         eb_call_add_header(call, "X-Amz-Security-Token", creds->session_token, err) != OR_OK) ||
        eb_call_add_header(call, "Authorization", strbuf_cstr(&auth), err) != OR_OK)
        goto out;
    st = OR_OK;

out:
    strbuf_free(&auth);
    return st;
}

/* Turns the outcome of one sent request into the results of its entries. */
static void eb_call_finish(eb_client *c, const eb_call *call, const http_request *hr,
                           const size_t *order, eb_result *results)
{
    eb_result batch[EB_MAX_ENTRIES_PER_REQUEST];
    or_error perr;
    bool request_failed = false;

    c->stats.requests++;
    if (!hr->transport_ok) {
        request_failed = true;
        for (size_t k = 0; k < call->count; k++)
            eb_set_result(&batch[k], EB_RETRYABLE, hr->timed_out ? "Timeout" : "ConnectionError",
                          hr->transport_error);
        log_debug("putevents request failed: entries=%zu transport error: %s", call->count,
                  hr->transport_error);
    } else {
        if (putevents_parse_reply(hr->status, hr->error_type, strbuf_cstr(&hr->response_body),
                                  hr->response_body.len, call->count, batch, &perr) != OR_OK) {
            /* cannot happen: count >= 1 */
            for (size_t k = 0; k < call->count; k++)
                eb_set_result(&batch[k], EB_RETRYABLE, "InvalidReply", perr.msg);
        }
        if (hr->status < 200 || hr->status >= 300) {
            request_failed = true;
            log_debug("putevents request failed: status=%ld code=%s request_id=%s entries=%zu: %s",
                      hr->status, batch[0].error_code, hr->request_id, call->count,
                      batch[0].error_message);
        } else if (strcmp(batch[0].error_code, "InvalidReply") == 0) {
            log_debug("putevents reply not understood status=%ld request_id=%s: %s", hr->status,
                      hr->request_id, batch[0].error_message);
        }
    }
    if (request_failed)
        c->stats.request_failures++;
    for (size_t k = 0; k < call->count; k++) {
        results[order[call->first + k]] = batch[k];
        if (batch[k].outcome == EB_ACCEPTED)
            c->stats.entries_accepted++;
        else
            c->stats.entries_failed++;
    }
}

static or_status eb_publish_round(eb_client *c, const eb_entry *entries, size_t n,
                                  eb_result *results, atomic_int *abort_flag, long grace_ms,
                                  or_error *err)
{
    or_status st = OR_OK;
    size_t *request_of = NULL;
    size_t *order = NULL;
    eb_call *calls = NULL;
    http_request *reqs = NULL;
    size_t n_calls = 0;
    bool have_creds = false;
    bool sent = false;
    size_t too_large = 0;
    aws_credentials creds;
    memset(&creds, 0, sizeof(creds));

    if (n == 0)
        return OR_OK;
    eb_set_all(results, n, "NotSent", "entry was not sent");

    request_of = xcalloc(n, sizeof(*request_of));
    order = xcalloc(n, sizeof(*order));
    n_calls = putevents_pack(entries, n, c->max_entries, c->max_bytes, request_of);
    calls = xcalloc(n_calls > 0 ? n_calls : 1, sizeof(*calls));

    /* requests are numbered in entry order, so each one's entries are adjacent in order[] */
    size_t placed = 0;
    for (size_t i = 0; i < n; i++) {
        if (request_of[i] == PUTEVENTS_TOO_LARGE) {
            char msg[160];
            snprintf(msg, sizeof(msg), "entry is %zu bytes, over the request limit of %zu bytes",
                     eb_entry_size(&entries[i]), c->max_bytes);
            eb_set_result(&results[i], EB_PERMANENT, "EntryTooLarge", msg);
            results[i].entry_level = true;
            too_large++;
            continue;
        }
        eb_call *call = &calls[request_of[i]];
        if (call->count == 0)
            call->first = placed;
        call->count++;
        order[placed++] = i;
    }
    if (n_calls == 0)
        goto out;

    if (credentials_provider_get(c->credentials, &creds, err) != OR_OK) {
        or_error_prefix(err, "cannot get aws credentials");
        st = OR_ERR;
        goto out;
    }
    have_creds = true;

    char amz_date[17];
    sigv4_amz_date((time_t)(clock_wall_ms() / 1000), amz_date);
    for (size_t r = 0; r < n_calls; r++) {
        if (eb_call_prepare(c, &calls[r], entries, order, &creds, amz_date, err) != OR_OK) {
            st = OR_ERR;
            goto out;
        }
    }

    reqs = xcalloc(n_calls, sizeof(*reqs));
    for (size_t r = 0; r < n_calls; r++) {
        reqs[r].url = c->url;
        reqs[r].headers = calls[r].header_view;
        reqs[r].n_headers = calls[r].n_headers;
        reqs[r].body = strbuf_cstr(&calls[r].body);
        reqs[r].body_len = calls[r].body.len;
    }
    sent = true;
    or_error herr;
    if (http_client_perform(c->http, reqs, n_calls, abort_flag, grace_ms, &herr) != OR_OK)
        log_warn("putevents transfer loop failed, unfinished requests count as failed: %s",
                 herr.msg);
    for (size_t r = 0; r < n_calls; r++)
        eb_call_finish(c, &calls[r], &reqs[r], order, results);

out:
    if (st != OR_OK) {
        /* nothing was attempted: every entry may be tried again */
        eb_set_all(results, n, "NotSent", err != NULL ? err->msg : "entries were not sent");
    } else {
        c->stats.entries_failed += too_large;
    }
    if (sent)
        http_requests_clear(reqs, n_calls);
    if (have_creds)
        aws_credentials_clear(&creds);
    for (size_t r = 0; r < n_calls; r++)
        eb_call_clear(&calls[r]);
    free(reqs);
    free(calls);
    free(order);
    free(request_of);
    return st;
}

/* Whole-request error codes that say the request's content was bad, not our
 * credentials, permissions or the service: some entry in it is to blame. */
static bool eb_blames_entries(const char *code)
{
    static const char *const codes[] = {"ValidationException", "SerializationException",
                                        "InvalidArgument", "MalformedDetail",
                                        "InvalidParameterValue"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

static bool eb_needs_isolation(const eb_result *r)
{
    return r->outcome == EB_PERMANENT && !r->entry_level && eb_blames_entries(r->error_code);
}

or_status eb_client_publish(eb_client *c, const eb_entry *entries, size_t n, eb_result *results,
                            atomic_int *abort_flag, long grace_ms, or_error *err)
{
    or_status st = eb_publish_round(c, entries, n, results, abort_flag, grace_ms, err);
    if (st != OR_OK)
        return st;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (eb_needs_isolation(&results[i]))
            m++;
    if (m == 0)
        return OR_OK;
    if (c->max_entries == 1) {
        for (size_t i = 0; i < n; i++)
            if (eb_needs_isolation(&results[i]))
                results[i].entry_level = true;
        return OR_OK;
    }

    /*
     * A request refused as a whole for its content does not say which entry
     * was at fault: send each of its entries alone, so only the guilty ones
     * are dead-lettered and the rest go through.
     */
    size_t *idx = xcalloc(m, sizeof(*idx));
    eb_entry *sub = xcalloc(m, sizeof(*sub));
    eb_result *subres = xcalloc(m, sizeof(*subres));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (eb_needs_isolation(&results[i])) {
            idx[k] = i;
            sub[k] = entries[i];
            k++;
        }
    size_t saved = c->max_entries;
    c->max_entries = 1;
    or_error e2 = {{0}};
    or_status st2 = eb_publish_round(c, sub, m, subres, abort_flag, grace_ms, &e2);
    c->max_entries = saved;
    for (k = 0; k < m; k++) {
        eb_result *r = &results[idx[k]];
        if (st2 != OR_OK) {
            /* could not isolate: keep the row pending rather than blame it */
            r->outcome = EB_RETRYABLE;
            continue;
        }
        *r = subres[k];
        if (eb_needs_isolation(r))
            r->entry_level = true;
    }
    free(idx);
    free(sub);
    free(subres);
    return OR_OK;
}

void eb_client_set_deadline(eb_client *c, int64_t deadline_mono_ms)
{
    http_client_set_deadline(c->http, deadline_mono_ms);
}
