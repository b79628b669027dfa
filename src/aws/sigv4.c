/*
 * sigv4.c - AWS Signature Version 4 (HMAC-SHA256) with OpenSSL.
 *
 * The same code signs requests (EventBridge client) and verifies them (the
 * test endpoint rebuilds the canonical request from what it received), so
 * every input is validated and every buffer is bounded.
 */
#include "aws/sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

/* Limits: generous for real requests, small enough to bound hostile input. */
#define SIGV4_MAX_HEADERS       64
#define SIGV4_MAX_NAME          128
#define SIGV4_MAX_VALUE         8192
#define SIGV4_MAX_CANONICAL     (256 * 1024)
#define SIGV4_MAX_SIGNED_LIST   1023
#define SIGV4_MAX_STRING_TO_SGN 1024
#define SIGV4_MAX_AUTH_VALUE    4096
#define SIGV4_MAX_SCOPE_PART    63
#define SIGV4_MAX_AKID          127

/* One header after normalisation (lowercase name, trimmed/folded value). */
typedef struct canon_header {
    char *name;
    char *value;
} canon_header;

static const char hex_digits[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

void sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        snprintf(out, 17, "%s", "00000000T000000Z");
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int md_len = 0;
    static const char empty = '\0';
    if (data == NULL)
        data = &empty; /* EVP_Digest wants a valid pointer even for len 0 */
    if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32) {
        /* Only on a broken libcrypto; never hand back a plausible digest. */
        abort();
    }
    to_hex(md, sizeof(md), out);
}

static void hmac_sha256(const void *key, size_t key_len, const void *data, size_t data_len,
                        unsigned char out[32])
{
    unsigned int out_len = 0;
    static const unsigned char empty = 0;
    if (data == NULL)
        data = &empty;
    if (HMAC(EVP_sha256(), key, (int)key_len, data, data_len, out, &out_len) == NULL ||
        out_len != 32)
        abort();
}

void sigv4_signing_key(const char *secret, const char *date8, const char *region,
                       const char *service, unsigned char out[32])
{
    static const char request[] = "aws4_request";
    size_t secret_len = strlen(secret);
    size_t key_len = 4 + secret_len;
    unsigned char *k_secret = xmalloc(key_len);
    unsigned char k_date[32], k_region[32], k_service[32];

    memcpy(k_secret, "AWS4", 4);
    memcpy(k_secret + 4, secret, secret_len);
    hmac_sha256(k_secret, key_len, date8, strlen(date8), k_date);
    hmac_sha256(k_date, sizeof(k_date), region, strlen(region), k_region);
    hmac_sha256(k_region, sizeof(k_region), service, strlen(service), k_service);
    hmac_sha256(k_service, sizeof(k_service), request, sizeof(request) - 1, out);

    OPENSSL_cleanse(k_secret, key_len);
    OPENSSL_cleanse(k_date, sizeof(k_date));
    OPENSSL_cleanse(k_region, sizeof(k_region));
    OPENSSL_cleanse(k_service, sizeof(k_service));
    free(k_secret);
}

/* RFC 7230 token characters (header field names). */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_space_or_tab(char c)
{
    return c == ' ' || c == '\t';
}

/* Normalises one header; OR_ERR (naming the header) if it cannot be signed. */
static or_status canon_header_make(const sigv4_header *h, canon_header *out, or_error *err)
{
    out->name = NULL;
    out->value = NULL;
    if (h->name == NULL || h->name[0] == '\0') {
        or_error_set(err, "sigv4: header name is empty");
        return OR_ERR;
    }
    size_t name_len = strnlen(h->name, SIGV4_MAX_NAME + 1);
    if (name_len > SIGV4_MAX_NAME) {
        or_error_set(err, "sigv4: header name \"%.32s...\" is longer than %d bytes", h->name,
                     SIGV4_MAX_NAME);
        return OR_ERR;
    }
    for (size_t i = 0; i < name_len; i++) {
        if (!is_tchar((unsigned char)h->name[i])) {
            or_error_set(err, "sigv4: header name has an invalid character at offset %zu", i);
            return OR_ERR;
        }
    }
    if (h->value == NULL) {
        or_error_set(err, "sigv4: header %s has no value", h->name);
        return OR_ERR;
    }
    size_t value_len = strnlen(h->value, SIGV4_MAX_VALUE + 1);
    if (value_len > SIGV4_MAX_VALUE) {
        or_error_set(err, "sigv4: value of header %s is longer than %d bytes", h->name,
                     SIGV4_MAX_VALUE);
        return OR_ERR;
    }

    out->name = xmalloc(name_len + 1);
    for (size_t i = 0; i < name_len; i++) {
        char c = h->name[i];
        out->name[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out->name[name_len] = '\0';

    /* Trim both ends and fold inner runs of spaces/tabs to one space. */
    out->value = xmalloc(value_len + 1);
    size_t n = 0;
    int pending_space = 0;
    for (size_t i = 0; i < value_len; i++) {
        char c = h->value[i];
        if (c == '\r' || c == '\n') {
            or_error_set(err, "sigv4: value of header %s contains a line break", out->name);
            return OR_ERR; /* caller frees out */
        }
        if (is_space_or_tab(c)) {
            pending_space = (n > 0);
            continue;
        }
        if (pending_space) {
            out->value[n++] = ' ';
            pending_space = 0;
        }
        out->value[n++] = c;
    }
    out->value[n] = '\0';
    return OR_OK;
}

static int canon_header_cmp(const void *a, const void *b)
{
    const canon_header *x = a;
    const canon_header *y = b;
    return strcmp(x->name, y->name);
}

static void canon_headers_free(canon_header *hs, size_t n)
{
    if (hs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(hs[i].name);
        free(hs[i].value);
    }
    free(hs);
}

/* Normalises and sorts the request headers; rejects duplicates. */
static or_status canon_headers_build(const sigv4_request *req, canon_header **out, or_error *err)
{
    or_status st = OR_ERR;
    canon_header *hs = NULL;
    size_t made = 0;

    *out = NULL;
    if (req->n_headers == 0 || req->headers == NULL) {
        or_error_set(err, "sigv4: no headers to sign");
        goto out;
    }
    if (req->n_headers > SIGV4_MAX_HEADERS) {
        or_error_set(err, "sigv4: %zu headers to sign, at most %d allowed", req->n_headers,
                     SIGV4_MAX_HEADERS);
        goto out;
    }
    hs = xcalloc(req->n_headers, sizeof(*hs));
    for (made = 0; made < req->n_headers; made++) {
        if (canon_header_make(&req->headers[made], &hs[made], err) != OR_OK) {
            made++; /* the partially built entry is freed too */
            goto out;
        }
    }
    qsort(hs, made, sizeof(*hs), canon_header_cmp);
    for (size_t i = 1; i < made; i++) {
        if (strcmp(hs[i - 1].name, hs[i].name) == 0) {
            or_error_set(err, "sigv4: duplicate header %s", hs[i].name);
            goto out;
        }
    }
    *out = hs;
    hs = NULL;
    st = OR_OK;
out:
    canon_headers_free(hs, made);
    return st;
}

static const char *find_header(const canon_header *hs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(hs[i].name, name) == 0)
            return hs[i].value;
    }
    return NULL;
}

/* Checks that s has no control characters and no line breaks. */
static int is_printable_line(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

static or_status canonical_from_headers(const sigv4_request *req, const canon_header *hs,
                                        strbuf *out, strbuf *signed_headers, or_error *err)
{
    char body_hash[65];

    if (req->method == NULL || req->method[0] == '\0' || !is_printable_line(req->method)) {
        or_error_set(err, "sigv4: request method is empty or invalid");
        return OR_ERR;
    }
    if (req->path == NULL || req->path[0] != '/' || !is_printable_line(req->path)) {
        or_error_set(err, "sigv4: request path must begin with '/' and be one line");
        return OR_ERR;
    }
    const char *query = req->query != NULL ? req->query : "";
    if (!is_printable_line(query)) {
        or_error_set(err, "sigv4: request query is not one line");
        return OR_ERR;
    }
    if (req->body == NULL && req->body_len > 0) {
        or_error_set(err, "sigv4: request body is NULL but its length is %zu", req->body_len);
        return OR_ERR;
    }

    strbuf_reset(signed_headers);
    for (size_t i = 0; i < req->n_headers; i++) {
        if ((i > 0 && strbuf_putc(signed_headers, ';') != OR_OK) ||
            strbuf_puts(signed_headers, hs[i].name) != OR_OK) {
            or_error_set(err, "sigv4: signed header list is too long");
            return OR_ERR;
        }
    }

    sigv4_sha256_hex(req->body, req->body_len, body_hash);

    strbuf_reset(out);
    if (strbuf_printf(out, "%s\n%s\n%s\n", req->method, req->path, query) != OR_OK)
        goto too_long;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (strbuf_printf(out, "%s:%s\n", hs[i].name, hs[i].value) != OR_OK)
            goto too_long;
    }
    if (strbuf_printf(out, "\n%s\n%s", strbuf_cstr(signed_headers), body_hash) != OR_OK)
        goto too_long;
    return OR_OK;
too_long:
    or_error_set(err, "sigv4: canonical request exceeds the buffer limit of %zu bytes", out->max);
    return OR_ERR;
}

or_status sigv4_canonical_request(const sigv4_request *req, strbuf *out, strbuf *signed_headers,
                                  or_error *err)
{
    or_status st = OR_ERR;
    canon_header *hs = NULL;
    strbuf creq, list;

    strbuf_init(&creq, SIGV4_MAX_CANONICAL);
    strbuf_init(&list, SIGV4_MAX_SIGNED_LIST);
    if (req == NULL) {
        or_error_set(err, "sigv4: no request");
        goto out;
    }
    if (canon_headers_build(req, &hs, err) != OR_OK)
        goto out;
    if (canonical_from_headers(req, hs, &creq, &list, err) != OR_OK)
        goto out;
    if (out != NULL) {
        strbuf_reset(out);
        if (strbuf_append(out, creq.data, creq.len) != OR_OK) {
            or_error_set(err, "sigv4: canonical request (%zu bytes) does not fit the output buffer",
                         creq.len);
            goto out;
        }
    }
    if (signed_headers != NULL) {
        strbuf_reset(signed_headers);
        if (strbuf_append(signed_headers, list.data, list.len) != OR_OK) {
            or_error_set(err, "sigv4: signed header list does not fit the output buffer");
            goto out;
        }
    }
    st = OR_OK;
out:
    canon_headers_free(hs, req != NULL ? req->n_headers : 0);
    strbuf_free(&creq);
    strbuf_free(&list);
    return st;
}

static int is_scope_part(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= SIGV4_MAX_SCOPE_PART)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return n > 0;
}

static int is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

static int is_amz_date(const char *s)
{
    return s != NULL && strnlen(s, 17) == 16 && is_digits(s, 8) && s[8] == 'T' &&
           is_digits(s + 9, 6) && s[15] == 'Z';
}

/* Access key ids go into the Credential field: no separators, no spaces. */
static int is_access_key_id(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= SIGV4_MAX_AKID || c <= 0x20 || c >= 0x7f || c == '/' || c == ',' || c == '=')
            return 0;
    }
    return n > 0;
}

static or_status check_scope(const sigv4_scope *scope, or_error *err)
{
    if (scope == NULL) {
        or_error_set(err, "sigv4: no signing scope");
        return OR_ERR;
    }
    if (!is_amz_date(scope->amz_date)) {
        or_error_set(err, "sigv4: amz date is not of the form YYYYMMDDTHHMMSSZ");
        return OR_ERR;
    }
    if (scope->region == NULL || !is_scope_part(scope->region)) {
        or_error_set(err, "sigv4: region is empty or not of the form [a-z0-9-]+");
        return OR_ERR;
    }
    if (scope->service == NULL || !is_scope_part(scope->service)) {
        or_error_set(err, "sigv4: service is empty or not of the form [a-z0-9-]+");
        return OR_ERR;
    }
    return OR_OK;
}

/* Signs; also hands back the signed header list when wanted. */
static or_status sign(const sigv4_request *req, const sigv4_key *key, const sigv4_scope *scope,
                      char out[65], strbuf *string_to_sign, strbuf *signed_headers, or_error *err)
{
    or_status st = OR_ERR;
    canon_header *hs = NULL;
    strbuf creq, list, sts;
    char creq_hash[65];
    char date8[9];
    unsigned char k_signing[32];
    unsigned char sig[32];

    strbuf_init(&creq, SIGV4_MAX_CANONICAL);
    strbuf_init(&list, SIGV4_MAX_SIGNED_LIST);
    strbuf_init(&sts, SIGV4_MAX_STRING_TO_SGN);
    out[0] = '\0';

    if (req == NULL || key == NULL) {
        or_error_set(err, "sigv4: no request or no key");
        goto out;
    }
    if (key->access_key_id == NULL || !is_access_key_id(key->access_key_id)) {
        or_error_set(err, "sigv4: access key id is empty or has invalid characters");
        goto out;
    }
    if (key->secret_access_key == NULL || key->secret_access_key[0] == '\0') {
        or_error_set(err, "sigv4: secret access key is empty");
        goto out;
    }
    if (check_scope(scope, err) != OR_OK)
        goto out;
    if (canon_headers_build(req, &hs, err) != OR_OK)
        goto out;

    /* The caller must sign what it sends: host, the date, the token. */
    if (find_header(hs, req->n_headers, "host") == NULL) {
        or_error_set(err, "sigv4: header host is not among the signed headers");
        goto out;
    }
    const char *date_hdr = find_header(hs, req->n_headers, "x-amz-date");
    if (date_hdr == NULL || strcmp(date_hdr, scope->amz_date) != 0) {
        or_error_set(err, "sigv4: header x-amz-date is missing or differs from the scope date");
        goto out;
    }
    if (key->session_token != NULL && key->session_token[0] != '\0') {
        const char *tok = find_header(hs, req->n_headers, "x-amz-security-token");
        if (tok == NULL || strcmp(tok, key->session_token) != 0) {
            or_error_set(err, "sigv4: header x-amz-security-token is missing or differs from "
                              "the session token");
            goto out;
        }
    }

    if (canonical_from_headers(req, hs, &creq, &list, err) != OR_OK)
        goto out;
    sigv4_sha256_hex(creq.data, creq.len, creq_hash);

    memcpy(date8, scope->amz_date, 8);
    date8[8] = '\0';
    if (strbuf_printf(&sts, "%s\n%s\n%s/%s/%s/aws4_request\n%s", SIGV4_ALGORITHM, scope->amz_date,
                      date8, scope->region, scope->service, creq_hash) != OR_OK) {
        or_error_set(err, "sigv4: string to sign is too long");
        goto out;
    }

    sigv4_signing_key(key->secret_access_key, date8, scope->region, scope->service, k_signing);
    hmac_sha256(k_signing, sizeof(k_signing), sts.data, sts.len, sig);
    OPENSSL_cleanse(k_signing, sizeof(k_signing));

    if (string_to_sign != NULL) {
        strbuf_reset(string_to_sign);
        if (strbuf_append(string_to_sign, sts.data, sts.len) != OR_OK) {
            or_error_set(err, "sigv4: string to sign does not fit the output buffer");
            goto out;
        }
    }
    if (signed_headers != NULL) {
        strbuf_reset(signed_headers);
        if (strbuf_append(signed_headers, list.data, list.len) != OR_OK) {
            or_error_set(err, "sigv4: signed header list does not fit the output buffer");
            goto out;
        }
    }
    to_hex(sig, sizeof(sig), out);
    st = OR_OK;
out:
    canon_headers_free(hs, req != NULL ? req->n_headers : 0);
    strbuf_free(&creq);
    strbuf_free(&list);
    strbuf_free(&sts);
    return st;
}

or_status sigv4_signature(const sigv4_request *req, const sigv4_key *key, const sigv4_scope *scope,
                          char out[65], strbuf *string_to_sign, or_error *err)
{
    return sign(req, key, scope, out, string_to_sign, NULL, err);
}

or_status sigv4_authorization(const sigv4_request *req, const sigv4_key *key,
                              const sigv4_scope *scope, strbuf *out, or_error *err)
{
    or_status st = OR_ERR;
    strbuf list;
    char sig[65];

    strbuf_init(&list, SIGV4_MAX_SIGNED_LIST);
    if (out == NULL) {
        or_error_set(err, "sigv4: no output buffer for the authorization header");
        goto out;
    }
    if (sign(req, key, scope, sig, NULL, &list, err) != OR_OK)
        goto out;
    strbuf_reset(out);
    if (strbuf_printf(out,
                      "%s Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                      SIGV4_ALGORITHM, key->access_key_id, scope->amz_date, scope->region,
                      scope->service, strbuf_cstr(&list), sig) != OR_OK) {
        or_error_set(err, "sigv4: authorization header does not fit the output buffer");
        goto out;
    }
    st = OR_OK;
out:
    strbuf_free(&list);
    return st;
}

/* ---- parsing (verifier side: the input is untrusted) ---- */

/* Copies [s, s+n) into dst[dstlen] if it fits; returns 0 if it does not. */
static int copy_field(char *dst, size_t dstlen, const char *s, size_t n)
{
    if (n >= dstlen)
        return 0;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 1;
}

static or_status parse_credential(const char *v, size_t n, sigv4_auth_parsed *out, or_error *err)
{
    const char *parts[5];
    size_t lens[5];
    size_t count = 0;
    const char *p = v;
    const char *end = v + n;

    while (count < 5) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *stop = slash != NULL ? slash : end;
        parts[count] = p;
        lens[count] = (size_t)(stop - p);
        count++;
        if (slash == NULL)
            break;
        p = slash + 1;
        if (count == 5) {
            or_error_set(err, "authorization: credential scope has more than 5 parts");
            return OR_ERR;
        }
    }
    if (count != 5) {
        or_error_set(err, "authorization: credential scope is not "
                          "<key id>/<date>/<region>/<service>/aws4_request");
        return OR_ERR;
    }
    if (!copy_field(out->access_key_id, sizeof(out->access_key_id), parts[0], lens[0]) ||
        !is_access_key_id(out->access_key_id)) {
        or_error_set(err, "authorization: credential key id is empty, too long or invalid");
        return OR_ERR;
    }
    if (lens[1] != 8 || !is_digits(parts[1], 8)) {
        or_error_set(err, "authorization: credential date is not YYYYMMDD");
        return OR_ERR;
    }
    memcpy(out->date8, parts[1], 8);
    out->date8[8] = '\0';
    if (!copy_field(out->region, sizeof(out->region), parts[2], lens[2]) ||
        !is_scope_part(out->region)) {
        or_error_set(err, "authorization: credential region is empty, too long or invalid");
        return OR_ERR;
    }
    if (!copy_field(out->service, sizeof(out->service), parts[3], lens[3]) ||
        !is_scope_part(out->service)) {
        or_error_set(err, "authorization: credential service is empty, too long or invalid");
        return OR_ERR;
    }
    if (lens[4] != strlen("aws4_request") || memcmp(parts[4], "aws4_request", lens[4]) != 0) {
        or_error_set(err, "authorization: credential scope does not end in aws4_request");
        return OR_ERR;
    }
    return OR_OK;
}

static int is_lower_tchar(unsigned char c)
{
    return is_tchar(c) && !(c >= 'A' && c <= 'Z');
}

static or_status parse_signed_headers(const char *v, size_t n, sigv4_auth_parsed *out,
                                      or_error *err)
{
    if (!copy_field(out->signed_headers, sizeof(out->signed_headers), v, n)) {
        or_error_set(err, "authorization: signed headers list is longer than %zu bytes",
                     sizeof(out->signed_headers) - 1);
        return OR_ERR;
    }
    const char *prev = NULL;
    size_t prev_len = 0;
    const char *p = out->signed_headers;
    for (;;) {
        const char *semi = strchr(p, ';');
        size_t len = semi != NULL ? (size_t)(semi - p) : strlen(p);
        if (len == 0) {
            or_error_set(err, "authorization: signed headers list has an empty name");
            return OR_ERR;
        }
        for (size_t i = 0; i < len; i++) {
            if (!is_lower_tchar((unsigned char)p[i])) {
                or_error_set(err, "authorization: signed header names must be lowercase tokens");
                return OR_ERR;
            }
        }
        if (prev != NULL) {
            size_t m = prev_len < len ? prev_len : len;
            int c = memcmp(prev, p, m);
            if (c > 0 || (c == 0 && prev_len >= len)) {
                or_error_set(err, "authorization: signed headers are not sorted or repeat a name");
                return OR_ERR;
            }
        }
        prev = p;
        prev_len = len;
        if (semi == NULL)
            break;
        p = semi + 1;
    }
    return OR_OK;
}

static or_status parse_signature(const char *v, size_t n, sigv4_auth_parsed *out, or_error *err)
{
    if (n != 64) {
        or_error_set(err, "authorization: signature is not 64 hex digits");
        return OR_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            or_error_set(err, "authorization: signature is not lowercase hex");
            return OR_ERR;
        }
    }
    memcpy(out->signature, v, 64);
    out->signature[64] = '\0';
    return OR_OK;
}

static or_status parse_authorization(const char *value, sigv4_auth_parsed *out, or_error *err)
{
    static const char alg[] = SIGV4_ALGORITHM;
    const size_t alg_len = sizeof(alg) - 1;
    int have_cred = 0, have_list = 0, have_sig = 0;

    if (value == NULL) {
        or_error_set(err, "authorization: header is missing");
        return OR_ERR;
    }
    size_t total = strnlen(value, SIGV4_MAX_AUTH_VALUE + 1);
    if (total > SIGV4_MAX_AUTH_VALUE) {
        or_error_set(err, "authorization: header is longer than %d bytes", SIGV4_MAX_AUTH_VALUE);
        return OR_ERR;
    }
    for (size_t i = 0; i < total; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7f) {
            or_error_set(err, "authorization: header contains a control or non-ASCII byte");
            return OR_ERR;
        }
    }

    const char *p = value;
    const char *end = value + total;
    while (p < end && is_space_or_tab(*p))
        p++;
    while (end > p && is_space_or_tab(end[-1]))
        end--;
    if (p == end) {
        or_error_set(err, "authorization: header is empty");
        return OR_ERR;
    }
    if ((size_t)(end - p) < alg_len || memcmp(p, alg, alg_len) != 0 ||
        (p + alg_len < end && !is_space_or_tab(p[alg_len]))) {
        or_error_set(err, "authorization: algorithm is not %s", SIGV4_ALGORITHM);
        return OR_ERR;
    }
    p += alg_len;
    if (p == end) {
        or_error_set(err, "authorization: no Credential, SignedHeaders or Signature");
        return OR_ERR;
    }

    /* Parameters: name=value, separated by "," with optional spaces. */
    for (;;) {
        while (p < end && is_space_or_tab(*p))
            p++;
        const char *comma = p;
        while (comma < end && *comma != ',')
            comma++;
        const char *stop = comma;
        if (comma == end)
            comma = NULL;
        const char *vend = stop;
        while (vend > p && is_space_or_tab(vend[-1]))
            vend--;
        if (vend == p) {
            or_error_set(err, "authorization: empty parameter");
            return OR_ERR;
        }
        const char *eq = memchr(p, '=', (size_t)(vend - p));
        if (eq == NULL) {
            or_error_set(err, "authorization: parameter without '='");
            return OR_ERR;
        }
        size_t name_len = (size_t)(eq - p);
        const char *v = eq + 1;
        size_t vlen = (size_t)(vend - v);
        if (vlen == 0) {
            or_error_set(err, "authorization: parameter with an empty value");
            return OR_ERR;
        }
        for (size_t i = 0; i < vlen; i++) {
            if (is_space_or_tab(v[i])) {
                or_error_set(err, "authorization: parameter value contains a space");
                return OR_ERR;
            }
        }
        or_status st;
        int *seen;
        if (name_len == 10 && memcmp(p, "Credential", 10) == 0) {
            seen = &have_cred;
            st = *seen ? OR_OK : parse_credential(v, vlen, out, err);
        } else if (name_len == 13 && memcmp(p, "SignedHeaders", 13) == 0) {
            seen = &have_list;
            st = *seen ? OR_OK : parse_signed_headers(v, vlen, out, err);
        } else if (name_len == 9 && memcmp(p, "Signature", 9) == 0) {
            seen = &have_sig;
            st = *seen ? OR_OK : parse_signature(v, vlen, out, err);
        } else {
            or_error_set(err, "authorization: unknown parameter \"%.*s\"",
                         (int)(name_len > 32 ? 32 : name_len), p);
            return OR_ERR;
        }
        if (*seen) {
            or_error_set(err, "authorization: parameter \"%.*s\" given twice", (int)name_len, p);
            return OR_ERR;
        }
        if (st != OR_OK)
            return OR_ERR;
        *seen = 1;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    if (!have_cred) {
        or_error_set(err, "authorization: Credential is missing");
        return OR_ERR;
    }
    if (!have_list) {
        or_error_set(err, "authorization: SignedHeaders is missing");
        return OR_ERR;
    }
    if (!have_sig) {
        or_error_set(err, "authorization: Signature is missing");
        return OR_ERR;
    }
    return OR_OK;
}

or_status sigv4_parse_authorization(const char *value, sigv4_auth_parsed *out, or_error *err)
{
    if (out == NULL) {
        or_error_set(err, "authorization: no output");
        return OR_ERR;
    }
    memset(out, 0, sizeof(*out));
    if (parse_authorization(value, out, err) != OR_OK) {
        memset(out, 0, sizeof(*out)); /* never leave half-parsed fields behind */
        return OR_ERR;
    }
    return OR_OK;
}

int sigv4_hex_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return 0;
    size_t la = strlen(a);
    size_t lb = strlen(b);
    if (la != lb)
        return 0; /* lengths are public (a signature is always 64 digits) */
    return CRYPTO_memcmp(a, b, la) == 0;
}
