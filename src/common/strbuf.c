#include "common/strbuf.h"

#include <stdint.h>
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
    /* reserve for the worst case (every byte as \u00XX) when it fits, so the
     * runs below are plain copies; else at least for the unescaped size */
    if (len < SIZE_MAX / 8 && reserve(sb, len * 6 + 2) != OR_OK && reserve(sb, len + 2) != OR_OK)
        return OR_ERR;
    if (strbuf_putc(sb, '"') != OR_OK)
        goto fail;
    size_t run = 0; /* start of the current run of bytes that need no escape */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (i > run && strbuf_append(sb, s + run, i - run) != OR_OK)
            goto fail;
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (strbuf_append(sb, esc, n) != OR_OK)
            goto fail;
    }
    if (len > run && strbuf_append(sb, s + run, len - run) != OR_OK)
        goto fail;
    if (strbuf_putc(sb, '"') != OR_OK)
        goto fail;
    return OR_OK;
fail:
    sb->len = start;
    if (sb->data != NULL)
        sb->data[start] = '\0';
    return OR_ERR;
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
