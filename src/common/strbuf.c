#include "common/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init(strbuf *sb, size_t max)
{
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
    sb->max = max;
}

void strbuf_free(strbuf *sb)
{
    if (sb == NULL)
        return;
    free(sb->data);
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
}

void strbuf_reset(strbuf *sb)
{
    sb->len = 0;
    if (sb->data != NULL)
        sb->data[0] = '\0';
}

static or_status reserve(strbuf *sb, size_t extra)
{
    if (extra > sb->max || sb->len > sb->max - extra)
        return OR_ERR;
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return OR_OK;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > sb->max + 1)
        cap = sb->max + 1;
    sb->data = xrealloc(sb->data, cap);
    sb->cap = cap;
    return OR_OK;
}

or_status strbuf_append(strbuf *sb, const void *data, size_t len)
{
    if (reserve(sb, len) != OR_OK)
        return OR_ERR;
    if (len > 0)
        memcpy(sb->data + sb->len, data, len);
    sb->len += len;
    sb->data[sb->len] = '\0';
    return OR_OK;
}

or_status strbuf_puts(strbuf *sb, const char *s)
{
    return strbuf_append(sb, s, strlen(s));
}

or_status strbuf_putc(strbuf *sb, char c)
{
    return strbuf_append(sb, &c, 1);
}

or_status strbuf_vprintf(strbuf *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || reserve(sb, (size_t)n) != OR_OK)
        return OR_ERR;
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
    return OR_OK;
}

or_status strbuf_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    or_status st = strbuf_vprintf(sb, fmt, ap);
    va_end(ap);
    return st;
}

or_status strbuf_json_string(strbuf *sb, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = sb->len;
    if (strbuf_putc(sb, '"') != OR_OK)
        return OR_ERR;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        const char *out = NULL;
        size_t outlen = 0;
        switch (c) {
        case '"':
            out = "\\\"";
            outlen = 2;
            break;
        case '\\':
            out = "\\\\";
            outlen = 2;
            break;
        case '\n':
            out = "\\n";
            outlen = 2;
            break;
        case '\r':
            out = "\\r";
            outlen = 2;
            break;
        case '\t':
            out = "\\t";
            outlen = 2;
            break;
        case '\b':
            out = "\\b";
            outlen = 2;
            break;
        case '\f':
            out = "\\f";
            outlen = 2;
            break;
        default:
            if (c < 0x20) {
                esc[0] = '\\';
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                esc[6] = '\0';
                out = esc;
                outlen = 6;
            }
        }
        or_status st = out ? strbuf_append(sb, out, outlen) : strbuf_putc(sb, (char)c);
        if (st != OR_OK) {
            sb->len = start;
            sb->data[start] = '\0';
            return OR_ERR;
        }
    }
    if (strbuf_putc(sb, '"') != OR_OK) {
        sb->len = start;
        sb->data[start] = '\0';
        return OR_ERR;
    }
    return OR_OK;
}

const char *strbuf_cstr(const strbuf *sb)
{
    return sb->data ? sb->data : "";
}

char *strbuf_detach(strbuf *sb, size_t *len)
{
    char *p = sb->data ? sb->data : xstrdup("");
    if (len != NULL)
        *len = sb->len;
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
    return p;
}
