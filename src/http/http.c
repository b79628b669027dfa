#include "http/http.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"

/* How long one curl_multi_poll() may block, so abort_flag is seen quickly. */
#define HTTP_POLL_MS 100

struct http_client {
    CURLM *multi;
    CURL **pool; /* one easy handle per concurrency slot, created on first use */
    struct http_xfer *slots;
    http_client_options opts;
    int64_t deadline_ms; /* monotonic; 0 = none (see http_client_set_deadline) */
};

/* One concurrency slot: the request it is running and that request's state. */
typedef struct http_xfer {
    http_request *req;
    CURL *easy;
    struct curl_slist *headers;
    bool active;
    bool too_large;
    char errbuf[CURL_ERROR_SIZE];
} http_xfer;

static bool http_global_done = false;

http_client *http_client_new(const http_client_options *opts, or_error *err)
{
    http_client *c = NULL;

    if (opts == NULL || opts->max_concurrency == 0 || opts->max_response_bytes == 0 ||
        opts->timeout_ms < 0 || opts->connect_timeout_ms < 0) {
        or_error_set(err, "http client options are invalid (concurrency and response limit "
                          "must be at least 1, timeouts not negative)");
        return NULL;
    }
    if (!http_global_done) {
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK) {
            or_error_set(err, "cannot initialise libcurl: %s", curl_easy_strerror(rc));
            return NULL;
        }
        http_global_done = true;
    }
    c = xcalloc(1, sizeof(*c));
    c->opts = *opts;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        or_error_set(err, "cannot create a libcurl multi handle");
        goto fail;
    }
    /* keep one idle connection per slot for the next perform() */
    if (curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)opts->max_concurrency) !=
        CURLM_OK) {
        or_error_set(err, "cannot set the libcurl connection cache size");
        goto fail;
    }
    c->pool = xcalloc(opts->max_concurrency, sizeof(*c->pool));
    c->slots = xcalloc(opts->max_concurrency, sizeof(*c->slots));
    return c;

fail:
    http_client_free(c);
    return NULL;
}

void http_client_free(http_client *c)
{
    if (c == NULL)
        return;
    if (c->pool != NULL) {
        for (size_t i = 0; i < c->opts.max_concurrency; i++) {
            if (c->pool[i] != NULL)
                curl_easy_cleanup(c->pool[i]);
        }
    }
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi);
    free(c->pool);
    free(c->slots);
    free(c);
}

void http_requests_clear(http_request *reqs, size_t n)
{
    if (reqs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        strbuf_free(&reqs[i].response_body);
}

static size_t http_write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    http_xfer *x = userdata;
    size_t len = size * nmemb;
    if (strbuf_append(&x->req->response_body, data, len) != OR_OK) {
        x->too_large = true;
        return 0; /* makes libcurl fail the transfer with CURLE_WRITE_ERROR */
    }
    return len;
}

/* Copies a header value, trimmed, with control characters replaced. */
static void http_copy_header_value(char *out, size_t outlen, const char *v, size_t len)
{
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len > 0 &&
           (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r' || v[len - 1] == '\n'))
        len--;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)v[i];
        out[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    out[o] = '\0';
}

static bool http_header_is(const char *line, size_t name_len, const char *name)
{
    return name_len == strlen(name) && strncasecmp(line, name, name_len) == 0;
}

static size_t http_header_cb(char *line, size_t size, size_t nitems, void *userdata)
{
    http_xfer *x = userdata;
    size_t len = size * nitems;

    /* a status line starts a new response (after "100 Continue", say) */
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        x->req->error_type[0] = '\0';
        x->req->request_id[0] = '\0';
        return len;
    }
    const char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return len;
    size_t name_len = (size_t)(colon - line);
    const char *value = colon + 1;
    size_t value_len = len - name_len - 1;
    if (http_header_is(line, name_len, "x-amzn-errortype"))
        http_copy_header_value(x->req->error_type, sizeof(x->req->error_type), value, value_len);
    else if (http_header_is(line, name_len, "x-amzn-requestid"))
        http_copy_header_value(x->req->request_id, sizeof(x->req->request_id), value, value_len);
    return len;
}

static void http_fail(http_request *req, bool timed_out, const char *msg)
{
    req->transport_ok = false;
    req->timed_out = timed_out;
    req->status = 0;
    snprintf(req->transport_error, sizeof(req->transport_error), "%s", msg);
    strbuf_reset(&req->response_body);
}

static void http_slot_release(http_client *c, http_xfer *x)
{
    if (x->active)
        curl_multi_remove_handle(c->multi, x->easy);
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    x->active = false;
    x->req = NULL;
}

#define HTTP_SETOPT(easy, opt, val)                                                                \
    do {                                                                                           \
        if (curl_easy_setopt((easy), (opt), (val)) != CURLE_OK)                                    \
            goto setup_failed;                                                                     \
    } while (0)

/*
 * Prepares slot i for req and adds it to the multi handle. A request that
 * cannot be set up is failed on its own (transport error); OR_ERR only when
 * the multi handle refused it.
 */
static or_status http_slot_start(http_client *c, size_t i, http_request *req, or_error *err)
{
    http_xfer *x = &c->slots[i];
    memset(x, 0, sizeof(*x));
    x->req = req;

    if (req->url == NULL) {
        http_fail(req, false, "request has no url");
        return OR_OK;
    }
    if (c->pool[i] == NULL) {
        c->pool[i] = curl_easy_init();
        if (c->pool[i] == NULL) {
            http_fail(req, false, "cannot create a libcurl easy handle");
            return OR_OK;
        }
    } else {
        curl_easy_reset(c->pool[i]); /* keeps the connection and DNS caches */
    }
    x->easy = c->pool[i];

    for (size_t h = 0; h < req->n_headers; h++) {
        struct curl_slist *l = curl_slist_append(x->headers, req->headers[h]);
        if (l == NULL)
            goto setup_failed;
        x->headers = l;
    }
    /* no "Expect: 100-continue" round trip for larger bodies */
    struct curl_slist *l = curl_slist_append(x->headers, "Expect:");
    if (l == NULL)
        goto setup_failed;
    x->headers = l;

    CURL *e = x->easy;
    HTTP_SETOPT(e, CURLOPT_URL, req->url);
    HTTP_SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https");
    HTTP_SETOPT(e, CURLOPT_NOSIGNAL, 1L);
    HTTP_SETOPT(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    HTTP_SETOPT(e, CURLOPT_TIMEOUT_MS, c->opts.timeout_ms);
    HTTP_SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    HTTP_SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
    HTTP_SETOPT(e, CURLOPT_POST, 1L);
    HTTP_SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    HTTP_SETOPT(e, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
    HTTP_SETOPT(e, CURLOPT_HTTPHEADER, x->headers);
    HTTP_SETOPT(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->opts.max_response_bytes);
    HTTP_SETOPT(e, CURLOPT_WRITEFUNCTION, http_write_cb);
    HTTP_SETOPT(e, CURLOPT_WRITEDATA, x);
    HTTP_SETOPT(e, CURLOPT_HEADERFUNCTION, http_header_cb);
    HTTP_SETOPT(e, CURLOPT_HEADERDATA, x);
    HTTP_SETOPT(e, CURLOPT_ERRORBUFFER, x->errbuf);
    HTTP_SETOPT(e, CURLOPT_PRIVATE, (void *)x);

    CURLMcode mc = curl_multi_add_handle(c->multi, e);
    if (mc != CURLM_OK) {
        http_fail(req, false, "request not sent: libcurl refused it");
        http_slot_release(c, x);
        or_error_set(err, "cannot add a request to libcurl: %s", curl_multi_strerror(mc));
        return OR_ERR;
    }
    x->active = true;
    return OR_OK;

setup_failed:
    http_fail(req, false, "cannot set up the request in libcurl");
    http_slot_release(c, x);
    return OR_OK;
}

static void http_slot_finish(http_client *c, http_xfer *x, CURLcode res)
{
    http_request *req = x->req;
    if (res == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        req->transport_ok = true;
        req->timed_out = false;
        req->status = status;
    } else if (x->too_large || res == CURLE_FILESIZE_EXCEEDED) {
        char msg[96];
        snprintf(msg, sizeof(msg), "response too large (limit %zu bytes)",
                 c->opts.max_response_bytes);
        http_fail(req, false, msg);
    } else {
        http_fail(req, res == CURLE_OPERATION_TIMEDOUT,
                  x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(res));
    }
    http_slot_release(c, x);
}

/* Fails every running request with msg (they are abandoned). */
static void http_abandon_running(http_client *c, const char *msg)
{
    for (size_t i = 0; i < c->opts.max_concurrency; i++) {
        http_xfer *x = &c->slots[i];
        if (x->active) {
            http_fail(x->req, false, msg);
            http_slot_release(c, x);
        }
    }
}

static size_t http_free_slot(const http_client *c)
{
    for (size_t i = 0; i < c->opts.max_concurrency; i++) {
        if (!c->slots[i].active)
            return i;
    }
    return SIZE_MAX;
}

static size_t http_drain_done(http_client *c)
{
    size_t done = 0;
    int left = 0;
    CURLMsg *m;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        http_xfer *x = (http_xfer *)(void *)priv;
        if (x == NULL || !x->active)
            continue;
        http_slot_finish(c, x, m->data.result);
        done++;
    }
    return done;
}

or_status http_client_perform(http_client *c, http_request *reqs, size_t n, atomic_int *abort_flag,
                              long grace_ms, or_error *err)
{
    or_status st = OR_OK;
    size_t next = 0;
    size_t running = 0;
    bool aborting = false;
    int64_t abandon_at = 0;

    for (size_t i = 0; i < n; i++) {
        http_request *r = &reqs[i];
        r->transport_ok = false;
        r->timed_out = false;
        r->transport_error[0] = '\0';
        r->status = 0;
        r->error_type[0] = '\0';
        r->request_id[0] = '\0';
        strbuf_init(&r->response_body, c->opts.max_response_bytes);
    }
    for (size_t i = 0; i < c->opts.max_concurrency; i++)
        memset(&c->slots[i], 0, sizeof(c->slots[i]));

    bool expired = false;
    for (;;) {
        if (c->deadline_ms > 0 && clock_mono_ms() >= c->deadline_ms) {
            /* the caller's claim is about to lapse: nothing may be sent after it */
            http_abandon_running(c, "request abandoned: the claim deadline passed");
            running = 0;
            expired = true;
            break;
        }
        if (!aborting && abort_flag != NULL &&
            atomic_load_explicit(abort_flag, memory_order_relaxed)) {
            aborting = true;
            abandon_at = clock_mono_ms() + (grace_ms > 0 ? grace_ms : 0);
        }
        /* no new requests once shutdown is asked for: they are reported unsent */
        while (!aborting && next < n && running < c->opts.max_concurrency) {
            size_t slot = http_free_slot(c);
            if (slot == SIZE_MAX)
                break;
            if (http_slot_start(c, slot, &reqs[next], err) != OR_OK) {
                st = OR_ERR;
                next++;
                goto out;
            }
            if (c->slots[slot].active)
                running++;
            next++;
        }
        if (running == 0 && (next == n || aborting))
            break;

        int still = 0;
        CURLMcode mc = curl_multi_perform(c->multi, &still);
        if (mc != CURLM_OK) {
            or_error_set(err, "libcurl transfer loop failed: %s", curl_multi_strerror(mc));
            st = OR_ERR;
            goto out;
        }
        running -= http_drain_done(c);
        if (running == 0 && (next == n || aborting))
            break;

        long wait_ms = HTTP_POLL_MS;
        if (c->deadline_ms > 0) {
            int64_t left = c->deadline_ms - clock_mono_ms();
            if (left < wait_ms)
                wait_ms = left > 0 ? (long)left : 0;
        }
        if (aborting) {
            int64_t left = abandon_at - clock_mono_ms();
            if (left <= 0) {
                http_abandon_running(c, "request abandoned at shutdown");
                running = 0;
                break;
            }
            if (left < wait_ms)
                wait_ms = (long)left;
        }
        mc = curl_multi_poll(c->multi, NULL, 0, (int)wait_ms, NULL);
        if (mc != CURLM_OK) {
            or_error_set(err, "libcurl poll failed: %s", curl_multi_strerror(mc));
            st = OR_ERR;
            goto out;
        }
    }

out:
    http_abandon_running(c, "request abandoned after a libcurl failure");
    for (size_t i = next; i < n; i++)
        http_fail(&reqs[i], false,
                  expired    ? "request not sent: the claim deadline passed"
                  : aborting ? "request not sent: shutdown requested"
                             : "request not sent: libcurl failure");
    return st;
}

void http_client_set_deadline(http_client *c, int64_t deadline_mono_ms)
{
    c->deadline_ms = deadline_mono_ms;
}
