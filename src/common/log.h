/*
 * log.h - one line per notable event, to stderr.
 *
 * Format (logfmt-like, easy to grep and to parse):
 *   2026-11-27T06:49:24.123Z level=info msg="database connected" host=db
 * The message is printf-formatted by the caller; callers must never pass a
 * secret (use log_redact_conninfo() for connection strings).
 */
#ifndef OUTBOX_COMMON_LOG_H
#define OUTBOX_COMMON_LOG_H

#include <stddef.h>

#include "common/error.h"

typedef enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO = 1,
    LOG_WARN = 2,
    LOG_ERROR = 3,
} log_level;

/* Sets the lowest level that is printed (default LOG_INFO). */
void log_set_level(log_level level);

/* Parses "debug", "info", "warn", "error"; OR_ERR on anything else. */
or_status log_level_parse(const char *s, log_level *out) OR_MUST_CHECK;
const char *log_level_name(log_level level);

/* Sets a component tag added to every line (e.g. "replica=2"); NULL clears. */
void log_set_tag(const char *tag);

/* Writes one line: timestamp, level, then the formatted message. */
void log_write(log_level level, const char *fmt, ...) OR_PRINTF(2, 3);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

/*
 * Copies a libpq connection string (URI or key=value) into out with any
 * password replaced by "****". Always NUL-terminates; truncates if needed.
 */
void log_redact_conninfo(const char *conninfo, char *out, size_t outlen);

#endif
