/*
 * http.h - HTTP client over libcurl multi: many requests in flight at once
 * over reused keep-alive connections.
 *
 * The caller fills an array of http_request and calls http_client_perform(),
 * which runs them concurrently (at most max_concurrency at a time) and
 * returns when every one has finished, failed or timed out. Transport errors
 * are per request (transport_ok = false), never an OR_ERR of the whole call.
 */
#ifndef OUTBOX_HTTP_HTTP_H
#define OUTBOX_HTTP_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/strbuf.h"

typedef struct http_client http_client;

typedef struct http_client_options {
    long timeout_ms; /* whole request */
    long connect_timeout_ms;
    size_t max_concurrency;    /* requests in flight at once, >= 1 */
    size_t max_response_bytes; /* bodies larger than this fail the request */
} http_client_options;

typedef struct http_request {
    /* in */
    const char *url;
    const char *const *headers; /* "Name: value" lines */
    size_t n_headers;
    const char *body;
    size_t body_len;

    /* out */
    bool transport_ok; /* false: connect/timeout/reset/too large */
    bool timed_out;    /* transport failure was a timeout */
    char transport_error[256];
    long status;          /* HTTP status when transport_ok */
    strbuf response_body; /* initialised and filled by perform */
    char error_type[128]; /* X-Amzn-ErrorType header, "" if absent */
    char request_id[128]; /* x-amzn-RequestId header, "" if absent */
} http_request;

http_client *http_client_new(const http_client_options *opts, or_error *err);
void http_client_free(http_client *c);

/*
 * Runs all n requests. If *abort_flag becomes non-zero (e.g. set by a signal
 * handler) requests still running after grace_ms are abandoned and reported
 * as transport failures. abort_flag may be NULL.
 */
or_status http_client_perform(http_client *c, http_request *reqs, size_t n, atomic_int *abort_flag,
                              long grace_ms, or_error *err) OR_MUST_CHECK;

/*
 * Sets a monotonic deadline (clock_mono_ms(); 0 = none) for later perform()
 * calls: no request starts after it and requests still running then are
 * abandoned (transport failures). The relay uses it so nothing is sent after
 * its claim on the rows could have lapsed.
 */
void http_client_set_deadline(http_client *c, int64_t deadline_mono_ms);

/* Frees the response buffers of a request array (not the array). */
void http_requests_clear(http_request *reqs, size_t n);

#endif
