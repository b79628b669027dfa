/*
 * error.h - status codes and error details shared by every module.
 *
 * Functions that can fail return or_status (checked by the compiler) and
 * write a human-readable message into an or_error out-parameter. Messages are
 * lowercase, name the thing that was wrong and the reason, and never contain
 * a secret. Allocation failure is not an error path: xmalloc() aborts.
 */
#ifndef OUTBOX_COMMON_ERROR_H
#define OUTBOX_COMMON_ERROR_H

#include <stddef.h>

#define OR_MUST_CHECK        __attribute__((warn_unused_result))
#define OR_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

typedef enum or_status {
    OR_OK = 0,
    OR_ERR = -1,
} or_status;

#define OR_ERROR_MAX 1024

typedef struct or_error {
    char msg[OR_ERROR_MAX];
} or_error;

/* Sets err->msg from a printf format. err may be NULL (message dropped). */
void or_error_set(or_error *err, const char *fmt, ...) OR_PRINTF(2, 3);

/* Prepends "prefix: " to an existing message (for adding context upward). */
void or_error_prefix(or_error *err, const char *fmt, ...) OR_PRINTF(2, 3);

/* Allocation helpers: abort the process with a message on out-of-memory. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
