/*
 * strbuf.h - growable byte buffer with a hard maximum size.
 *
 * Always NUL-terminated after a successful append. Every buffer has a limit
 * (max bytes of content); an append past it fails with OR_ERR and leaves the
 * buffer unchanged, so a hostile peer cannot make us allocate without bound.
 * A zero-initialised strbuf is not valid: use strbuf_init().
 */
#ifndef OUTBOX_COMMON_STRBUF_H
#define OUTBOX_COMMON_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

#include "common/error.h"

typedef struct strbuf {
    char *data; /* NULL until the first append; use strbuf_cstr() to read */
    size_t len;
    size_t cap;
    size_t max;
} strbuf;

/* Initialises an empty buffer that may hold at most max bytes. */
void strbuf_init(strbuf *sb, size_t max);

/* Frees the storage; the buffer may be re-initialised. NULL is a no-op. */
void strbuf_free(strbuf *sb);

/* Empties the buffer, keeping its storage. */
void strbuf_reset(strbuf *sb);

/* Appends bytes; OR_ERR if the result would exceed max. */
or_status strbuf_append(strbuf *sb, const void *data, size_t len) OR_MUST_CHECK;
or_status strbuf_puts(strbuf *sb, const char *s) OR_MUST_CHECK;
or_status strbuf_putc(strbuf *sb, char c) OR_MUST_CHECK;
or_status strbuf_printf(strbuf *sb, const char *fmt, ...) OR_PRINTF(2, 3) OR_MUST_CHECK;
or_status strbuf_vprintf(strbuf *sb, const char *fmt, va_list ap) OR_PRINTF(2, 0) OR_MUST_CHECK;

/* Appends s as a JSON string literal (with quotes and escapes). */
or_status strbuf_json_string(strbuf *sb, const char *s, size_t len) OR_MUST_CHECK;

/* Content as a C string ("" when empty). Valid until the next append/free. */
const char *strbuf_cstr(const strbuf *sb);

/* Hands the content to the caller (who frees it) and resets the buffer. */
char *strbuf_detach(strbuf *sb, size_t *len);

#endif
