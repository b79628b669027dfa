/*
 * ep_verify.h - verifies a request's SigV4 signature the way AWS does: the
 * canonical request is rebuilt from the headers as received (only those
 * named in SignedHeaders), the method, path, query and body bytes, and the
 * signature is recomputed with the secret of the access key id it names.
 */
#ifndef OUTBOX_TESTS_ENDPOINT_EP_VERIFY_H
#define OUTBOX_TESTS_ENDPOINT_EP_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct ep_header {
    const char *name; /* as received, any case */
    const char *value;
} ep_header;

typedef struct ep_credential {
    const char *access_key_id;
    const char *secret;
} ep_credential;

typedef struct ep_verify_input {
    const char *method;
    const char *path;  /* URI-encoded path, e.g. "/" */
    const char *query; /* canonical query string or "" */
    const ep_header *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
    time_t now;
} ep_verify_input;

typedef struct ep_verify_config {
    const ep_credential *credentials;
    size_t n_credentials;
    const char *region;  /* NULL: any region is accepted */
    const char *service; /* "events" */
    long max_skew_s;     /* 900 */
} ep_verify_config;

/* Why a request was rejected, in AWS's terms. */
typedef struct ep_verdict {
    unsigned status;     /* 400 or 403 */
    char error_type[64]; /* e.g. "InvalidSignatureException" */
    char message[512];
    char access_key_id[128]; /* the key id named by the request, when parsed */
} ep_verdict;

/* Returns true if the request is authentic; otherwise fills out and returns false. */
bool ep_verify_request(const ep_verify_input *in, const ep_verify_config *cfg, ep_verdict *out);

/* First value of a header (case-insensitive name), or NULL. */
const char *ep_header_get(const ep_header *headers, size_t n, const char *name);

#endif
