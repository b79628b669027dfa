#include "ep_verify.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/sigv4.h"
#include "common/error.h"
#include "common/strbuf.h"

#define EP_MAX_SIGNED_HEADERS 64
#define EP_HEADER_VALUE_MAX   (64u * 1024u)

static const char ep_mismatch_message[] =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";

static bool ep_reject(ep_verdict *out, unsigned status, const char *type, const char *fmt, ...)
    OR_PRINTF(4, 5);

static bool ep_reject(ep_verdict *out, unsigned status, const char *type, const char *fmt, ...)
{
    va_list ap;
    out->status = status;
    snprintf(out->error_type, sizeof(out->error_type), "%s", type);
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
    return false;
}

const char *ep_header_get(const ep_header *headers, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(headers[i].name, name) == 0)
            return headers[i].value;
    return NULL;
}

/* Parses "YYYYMMDDTHHMMSSZ" (UTC); false if malformed or not a real time. */
static bool ep_parse_amz_date(const char *s, time_t *out)
{
    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return false;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !isdigit((unsigned char)s[i]))
            return false;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0;
    for (int i = 0; i < 4; i++)
        year = year * 10 + (s[i] - '0');
    mon = (s[4] - '0') * 10 + (s[5] - '0');
    day = (s[6] - '0') * 10 + (s[7] - '0');
    hour = (s[9] - '0') * 10 + (s[10] - '0');
    min = (s[11] - '0') * 10 + (s[12] - '0');
    sec = (s[13] - '0') * 10 + (s[14] - '0');
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    struct tm back;
    if (gmtime_r(&t, &back) == NULL || back.tm_year != year - 1900 || back.tm_mon != mon - 1 ||
        back.tm_mday != day || back.tm_hour != hour || back.tm_min != min || back.tm_sec != sec)
        return false;
    *out = t;
    return true;
}

/* Splits "a;b;c" into names[] (pointers into buf); false if malformed. */
static bool ep_split_signed(char *buf, char **names, size_t *n)
{
    *n = 0;
    char *save = NULL;
    if (buf[0] == '\0')
        return false;
    for (char *tok = strtok_r(buf, ";", &save); tok != NULL; tok = strtok_r(NULL, ";", &save)) {
        if (*n == EP_MAX_SIGNED_HEADERS || tok[0] == '\0')
            return false;
        names[(*n)++] = tok;
    }
    return *n > 0;
}

static bool ep_list_has(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

bool ep_verify_request(const ep_verify_input *in, const ep_verify_config *cfg, ep_verdict *out)
{
    bool ok = false;
    sigv4_auth_parsed auth;
    or_error err = {{0}};
    char signed_buf[sizeof(auth.signed_headers)];
    char *names[EP_MAX_SIGNED_HEADERS];
    size_t n_names = 0;
    sigv4_header sig_headers[EP_MAX_SIGNED_HEADERS];
    strbuf joined[EP_MAX_SIGNED_HEADERS];
    size_t n_joined = 0;

    memset(out, 0, sizeof(*out));
    const char *authz = ep_header_get(in->headers, in->n_headers, "authorization");
    if (authz == NULL) {
        ep_reject(out, 400, "MissingAuthenticationTokenException", "Missing Authentication Token");
        goto out;
    }
    if (sigv4_parse_authorization(authz, &auth, &err) != OR_OK) {
        ep_reject(out, 400, "IncompleteSignatureException", "Authorization header is malformed: %s",
                  err.msg);
        goto out;
    }
    snprintf(out->access_key_id, sizeof(out->access_key_id), "%s", auth.access_key_id);

    snprintf(signed_buf, sizeof(signed_buf), "%s", auth.signed_headers);
    if (!ep_split_signed(signed_buf, names, &n_names)) {
        ep_reject(out, 400, "IncompleteSignatureException",
                  "SignedHeaders in the Authorization header is malformed");
        goto out;
    }
    if (!ep_list_has(names, n_names, "host")) {
        ep_reject(out, 403, "InvalidSignatureException",
                  "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
        goto out;
    }
    if (!ep_list_has(names, n_names, "x-amz-date")) {
        ep_reject(out, 403, "InvalidSignatureException",
                  "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.");
        goto out;
    }
    if (ep_header_get(in->headers, in->n_headers, "x-amz-security-token") != NULL &&
        !ep_list_has(names, n_names, "x-amz-security-token")) {
        ep_reject(out, 403, "InvalidSignatureException",
                  "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.");
        goto out;
    }
    if (strcmp(auth.service, cfg->service) != 0) {
        ep_reject(out, 403, "InvalidSignatureException",
                  "Credential should be scoped to correct service: '%s'.", cfg->service);
        goto out;
    }
    if (cfg->region != NULL && strcmp(auth.region, cfg->region) != 0) {
        ep_reject(out, 403, "InvalidSignatureException",
                  "Credential should be scoped to a valid region: expected '%s', got '%s'.",
                  cfg->region, auth.region);
        goto out;
    }

    const char *amz_date = ep_header_get(in->headers, in->n_headers, "x-amz-date");
    time_t signed_at = 0;
    if (amz_date == NULL || !ep_parse_amz_date(amz_date, &signed_at)) {
        ep_reject(
            out, 403, "InvalidSignatureException",
            "Signature expired: the X-Amz-Date header is missing or not YYYYMMDD'T'HHMMSS'Z'");
        goto out;
    }
    long skew = (long)(signed_at - in->now);
    if (skew > cfg->max_skew_s || skew < -cfg->max_skew_s) {
        char now_s[17];
        sigv4_amz_date(in->now, now_s);
        ep_reject(out, 403, "InvalidSignatureException",
                  "Signature expired: %s is more than %ld seconds away from %s", amz_date,
                  cfg->max_skew_s, now_s);
        goto out;
    }
    if (strncmp(auth.date8, amz_date, 8) != 0) {
        ep_reject(out, 403, "InvalidSignatureException",
                  "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                  "from HTTP: '%s' != '%.8s', from '%s'.",
                  auth.date8, amz_date, amz_date);
        goto out;
    }

    const char *secret = NULL;
    for (size_t i = 0; i < cfg->n_credentials; i++)
        if (strcmp(cfg->credentials[i].access_key_id, auth.access_key_id) == 0)
            secret = cfg->credentials[i].secret;
    if (secret == NULL) {
        ep_reject(out, 403, "UnrecognizedClientException",
                  "The security token included in the request is invalid.");
        goto out;
    }

    /* Every signed header, with repeated headers joined by ',' as AWS does. */
    for (size_t i = 0; i < n_names; i++) {
        strbuf *sb = &joined[n_joined];
        strbuf_init(sb, EP_HEADER_VALUE_MAX);
        n_joined++;
        bool found = false;
        for (size_t h = 0; h < in->n_headers; h++) {
            if (strcasecmp(in->headers[h].name, names[i]) != 0)
                continue;
            if ((found && strbuf_putc(sb, ',') != OR_OK) ||
                strbuf_puts(sb, in->headers[h].value) != OR_OK) {
                ep_reject(out, 400, "IncompleteSignatureException", "header %s is too long",
                          names[i]);
                goto out;
            }
            found = true;
        }
        if (!found) {
            ep_reject(out, 403, "InvalidSignatureException",
                      "signed header %s is not present in the request", names[i]);
            goto out;
        }
        sig_headers[i].name = names[i];
        sig_headers[i].value = strbuf_cstr(sb);
    }

    sigv4_request req = {
        .method = in->method,
        .path = in->path,
        .query = in->query,
        .headers = sig_headers,
        .n_headers = n_names,
        .body = in->body,
        .body_len = in->body_len,
    };
    /* A token header, when present, is already among the signed headers (checked above). */
    sigv4_key key = {
        .access_key_id = auth.access_key_id,
        .secret_access_key = secret,
        .session_token = NULL,
    };
    sigv4_scope scope = {
        .amz_date = amz_date,
        .region = auth.region,
        .service = auth.service,
    };
    char expected[65];
    if (sigv4_signature(&req, &key, &scope, expected, NULL, &err) != OR_OK) {
        ep_reject(out, 400, "IncompleteSignatureException", "cannot rebuild the request: %s",
                  err.msg);
        goto out;
    }
    if (!sigv4_hex_equal(expected, auth.signature)) {
        ep_reject(out, 403, "InvalidSignatureException", "%s", ep_mismatch_message);
        goto out;
    }
    ok = true;
out:
    for (size_t i = 0; i < n_joined; i++)
        strbuf_free(&joined[i]);
    return ok;
}
