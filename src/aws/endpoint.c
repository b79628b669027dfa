/*
 * endpoint.c - EventBridge endpoint for a region, and the Host header for a URL.
 */
#include "aws/endpoint.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ENDPOINT_MAX_REGION 64
#define ENDPOINT_MAX_URL    2048
#define ENDPOINT_MAX_HOST   253

/* Copies at most 64 bytes of s into out, replacing unprintable bytes by '?'. */
static void printable_copy(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    for (; s[n] != '\0' && n + 1 < outlen && n < 64; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    out[n] = '\0';
}

static int region_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

or_status aws_eventbridge_endpoint(const char *region, char *out, size_t outlen, or_error *err)
{
    char shown[72];

    if (out != NULL && outlen > 0)
        out[0] = '\0';
    if (region == NULL || region[0] == '\0') {
        or_error_set(err, "aws region is empty");
        return OR_ERR;
    }
    printable_copy(region, shown, sizeof(shown));
    size_t len = strnlen(region, ENDPOINT_MAX_REGION + 1);
    if (len > ENDPOINT_MAX_REGION) {
        or_error_set(err, "aws region \"%s...\" is longer than %d characters", shown,
                     ENDPOINT_MAX_REGION);
        return OR_ERR;
    }
    for (size_t i = 0; i < len; i++) {
        if (!region_char_ok(region[i])) {
            or_error_set(err, "aws region \"%s\" is not of the form [a-z0-9-]+", shown);
            return OR_ERR;
        }
    }
    if (out == NULL) {
        or_error_set(err, "no output buffer for the endpoint of region %s", region);
        return OR_ERR;
    }
    const char *suffix = strncmp(region, "cn-", 3) == 0 ? ".amazonaws.com.cn" : ".amazonaws.com";
    int n = snprintf(out, outlen, "https://events.%s%s", region, suffix);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        or_error_set(err, "endpoint for region %s does not fit in %zu bytes", region, outlen);
        return OR_ERR;
    }
    return OR_OK;
}

static int host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* Parses "digits" in [s, e) as a TCP port 1..65535. */
static int parse_port(const char *s, const char *e, unsigned *out)
{
    unsigned long v = 0;
    if (s == e || e - s > 5)
        return 0;
    for (const char *p = s; p < e; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return 0;
    *out = (unsigned)v;
    return 1;
}

or_status aws_endpoint_host(const char *url, char *host_header, size_t outlen, or_error *err)
{
    char shown[72];
    unsigned default_port;
    const char *p;

    if (host_header != NULL && outlen > 0)
        host_header[0] = '\0';
    if (url == NULL || url[0] == '\0') {
        or_error_set(err, "endpoint url is empty");
        return OR_ERR;
    }
    printable_copy(url, shown, sizeof(shown));
    /* user information may hold a password: never echo such a URL */
    if (strchr(url, '@') != NULL)
        snprintf(shown, sizeof(shown), "%s", "(not shown: contains '@')");
    size_t url_len = strnlen(url, ENDPOINT_MAX_URL + 1);
    if (url_len > ENDPOINT_MAX_URL) {
        or_error_set(err, "endpoint url \"%s...\" is longer than %d bytes", shown,
                     ENDPOINT_MAX_URL);
        return OR_ERR;
    }
    for (size_t i = 0; i < url_len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f) {
            or_error_set(err, "endpoint url \"%s\" contains a space, control or non-ASCII byte",
                         shown);
            return OR_ERR;
        }
    }
    if (strncasecmp(url, "https://", 8) == 0) {
        default_port = 443;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        default_port = 80;
        p = url + 7;
    } else {
        or_error_set(err, "endpoint url \"%s\" does not begin with http:// or https://", shown);
        return OR_ERR;
    }

    /* Authority ends at the first '/', '?' or '#'. */
    const char *auth_end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(auth_end - p)) != NULL) {
        or_error_set(err, "endpoint url \"%s\" must not contain user information", shown);
        return OR_ERR;
    }
    const char *rest = auth_end;
    if (strchr(rest, '#') != NULL) {
        or_error_set(err, "endpoint url \"%s\" must not contain a fragment", shown);
        return OR_ERR;
    }
    if (strchr(rest, '?') != NULL) {
        or_error_set(err, "endpoint url \"%s\" must not contain a query", shown);
        return OR_ERR;
    }
    if (!(rest[0] == '\0' || (rest[0] == '/' && rest[1] == '\0'))) {
        or_error_set(err, "endpoint url \"%s\" has a path other than \"/\"", shown);
        return OR_ERR;
    }

    const char *host = p;
    const char *host_end;
    const char *port_start = NULL;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(auth_end - host));
        char addr[INET6_ADDRSTRLEN + 1];
        unsigned char bin[16];
        size_t alen = close != NULL ? (size_t)(close - host - 1) : 0;
        if (close == NULL || alen == 0 || alen >= sizeof(addr)) {
            or_error_set(err, "endpoint url \"%s\" has a malformed IPv6 address", shown);
            return OR_ERR;
        }
        memcpy(addr, host + 1, alen);
        addr[alen] = '\0';
        if (inet_pton(AF_INET6, addr, bin) != 1) {
            or_error_set(err, "endpoint url \"%s\" has an invalid IPv6 address", shown);
            return OR_ERR;
        }
        host_end = close + 1;
        if (host_end < auth_end) {
            if (*host_end != ':') {
                or_error_set(err, "endpoint url \"%s\" has junk after the IPv6 address", shown);
                return OR_ERR;
            }
            port_start = host_end + 1;
        }
    } else {
        const char *colon = memchr(host, ':', (size_t)(auth_end - host));
        host_end = colon != NULL ? colon : auth_end;
        if (colon != NULL)
            port_start = colon + 1;
        if (host_end == host) {
            or_error_set(err, "endpoint url \"%s\" has no host", shown);
            return OR_ERR;
        }
        if (host_end - host > ENDPOINT_MAX_HOST) {
            or_error_set(err, "endpoint url \"%s...\" has a host longer than %d bytes", shown,
                         ENDPOINT_MAX_HOST);
            return OR_ERR;
        }
        for (const char *c = host; c < host_end; c++) {
            if (!host_char_ok(*c)) {
                or_error_set(err, "endpoint url \"%s\" has an invalid character in its host",
                             shown);
                return OR_ERR;
            }
        }
    }

    unsigned port = default_port;
    if (port_start != NULL && !parse_port(port_start, auth_end, &port)) {
        or_error_set(err, "endpoint url \"%s\" has an invalid port (want 1-65535)", shown);
        return OR_ERR;
    }
    if (host_header == NULL) {
        or_error_set(err, "no output buffer for the host of endpoint url \"%s\"", shown);
        return OR_ERR;
    }
    int host_len = (int)(host_end - host);
    int n = port == default_port ? snprintf(host_header, outlen, "%.*s", host_len, host)
                                 : snprintf(host_header, outlen, "%.*s:%u", host_len, host, port);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            host_header[0] = '\0';
        or_error_set(err, "host of endpoint url \"%s\" does not fit in %zu bytes", shown, outlen);
        return OR_ERR;
    }
    return OR_OK;
}
