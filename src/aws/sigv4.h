/*
 * sigv4.h - AWS Signature Version 4 (HMAC-SHA256, OpenSSL).
 *
 * Used by the EventBridge client to sign requests and by the test endpoint to
 * verify them (it rebuilds the canonical request from what it received).
 * Reference: shared/reference/eventbridge.md, "SigV4".
 */
#ifndef OUTBOX_AWS_SIGV4_H
#define OUTBOX_AWS_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "common/error.h"
#include "common/strbuf.h"

typedef struct sigv4_header {
    const char *name;  /* any case; lowercased in the canonical request */
    const char *value; /* leading/trailing space trimmed, inner runs folded */
} sigv4_header;

typedef struct sigv4_request {
    const char *method;          /* "POST" */
    const char *path;            /* "/" (already URI-encoded as sent) */
    const char *query;           /* "" or canonical query string */
    const sigv4_header *headers; /* exactly the headers to sign, any order */
    size_t n_headers;
    const void *body;
    size_t body_len;
} sigv4_request;

typedef struct sigv4_key {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "" when none */
} sigv4_key;

typedef struct sigv4_scope {
    const char *amz_date; /* "YYYYMMDDTHHMMSSZ" */
    const char *region;   /* "us-east-1" */
    const char *service;  /* "events" */
} sigv4_scope;

/* Formats t (UTC) as "YYYYMMDDTHHMMSSZ" into out[17]. */
void sigv4_amz_date(time_t t, char out[17]);

/* Lowercase hex SHA-256 of data into out[65]. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/*
 * Builds the canonical request into out, and the ';'-joined sorted lowercase
 * signed-header list into signed_headers (either may be NULL); both are
 * replaced, not appended to. Fails on duplicate header names, an invalid
 * header name, a value holding CR/LF, or a buffer limit.
 */
or_status sigv4_canonical_request(const sigv4_request *req, strbuf *out, strbuf *signed_headers,
                                  or_error *err) OR_MUST_CHECK;

/* Derives the signing key (kSigning) for date "YYYYMMDD", region, service. */
void sigv4_signing_key(const char *secret, const char *date8, const char *region,
                       const char *service, unsigned char out[32]);

/*
 * Computes the hex signature (out[65]) and, if string_to_sign is not NULL,
 * the string to sign (replaced). The request headers must already include
 * host, x-amz-date equal to scope->amz_date and (when key->session_token is
 * not empty) x-amz-security-token equal to it; otherwise OR_ERR.
 */
or_status sigv4_signature(const sigv4_request *req, const sigv4_key *key, const sigv4_scope *scope,
                          char out[65], strbuf *string_to_sign, or_error *err) OR_MUST_CHECK;

/*
 * Full Authorization header value:
 * "AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request,
 *  SignedHeaders=..., Signature=..." (replaces the content of out).
 */
or_status sigv4_authorization(const sigv4_request *req, const sigv4_key *key,
                              const sigv4_scope *scope, strbuf *out, or_error *err) OR_MUST_CHECK;

/* Parsed form of an Authorization header (for verifiers). */
typedef struct sigv4_auth_parsed {
    char access_key_id[128];
    char date8[9];
    char region[64];
    char service[64];
    char signed_headers[1024]; /* "content-type;host;..." */
    char signature[65];
} sigv4_auth_parsed;

/* Parses an Authorization header value; OR_ERR with a reason if malformed. */
or_status sigv4_parse_authorization(const char *value, sigv4_auth_parsed *out,
                                    or_error *err) OR_MUST_CHECK;

/* Constant-time comparison of two NUL-terminated hex strings. */
int sigv4_hex_equal(const char *a, const char *b);

#endif
