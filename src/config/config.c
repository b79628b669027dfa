/*
 * config.c - the settings table and everything driven by it: defaults, the
 * YAML file, the environment, validation, check-config output and the
 * Markdown reference.
 *
 * To add a setting: add a field to relay_config and one row to
 * config_settings[]. Nothing else needs to know about it unless it has a
 * special check (config_check) or a cross-check (config_finish).
 */
#include "config/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "aws/endpoint.h"

#define CONFIG_ENV_MAX      2             /* environment variables per setting */
#define CONFIG_FILE_MAX     (1024 * 1024) /* a config file larger than this is refused */
#define CONFIG_KEY_MAX      256           /* longest dotted key we look at */
#define CONFIG_SHOW_MAX     64            /* bytes of a bad value quoted in an error */
#define CONFIG_VALUE_MAX    8192          /* printed value, after masking */
#define CONFIG_ENDPOINT_MAX 512           /* longest endpoint URL */
#define CONFIG_IGNORE_ENV   "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
#define CONFIG_MASK         "****"

typedef enum config_type {
    CONFIG_STRING,
    CONFIG_INT,
    CONFIG_LOG_LEVEL,
} config_type;

/* How a value is shown by config_print (and whether errors may quote it). */
typedef enum config_show {
    SHOW_PLAIN,
    SHOW_SECRET,   /* "****" */
    SHOW_CONNINFO, /* password replaced by "****" */
    SHOW_KEY_ID,   /* first and last four characters only */
} config_show;

/* Extra validation for a string setting beyond its length bounds. */
typedef enum config_check {
    CHECK_NONE,
    CHECK_REGION,
    CHECK_ENDPOINT,
    CHECK_BUS_NAME,
    CHECK_SOURCE,
    CHECK_ORDERING,
} config_check;

typedef struct config_setting {
    const char *key; /* dotted YAML path: section.name */
    config_type type;
    size_t offset;                   /* of the field in relay_config */
    const char *def_str;             /* string default; NULL = unset */
    int def_int;                     /* int / log level default */
    int min, max;                    /* ints: value bounds; strings: length bounds */
    const char *env[CONFIG_ENV_MAX]; /* in precedence order; NULL-terminated if short */
    config_show show;
    config_check check;
    const char *allowed; /* reference text for strings; ints show min..max */
    const char *def_doc; /* reference text for the default when not a plain value */
    const char *desc;
} config_setting;

#define FIELD(f) offsetof(relay_config, f)

static const config_setting config_settings[] = {
    {.key = "database.url",
     .type = CONFIG_STRING,
     .offset = FIELD(database_url),
     .min = 1,
     .max = 4096,
     .env = {"DATABASE_URL"},
     .show = SHOW_CONNINFO,
     .allowed = "libpq URI or key=value string",
     .def_doc = "unset (libpq uses `PG*` variables)",
     .desc = "PostgreSQL connection string; the password is never printed"},
    {.key = "aws.region",
     .type = CONFIG_STRING,
     .offset = FIELD(aws_region),
     .min = 1,
     .max = 64,
     .env = {"AWS_REGION", "AWS_DEFAULT_REGION"},
     .check = CHECK_REGION,
     .allowed = "[a-z0-9-]+",
     .def_doc = "required",
     .desc = "AWS region used for signing and for the default endpoint"},
    {.key = "aws.access_key_id",
     .type = CONFIG_STRING,
     .offset = FIELD(aws_access_key_id),
     .min = 1,
     .max = 128,
     .env = {"AWS_ACCESS_KEY_ID"},
     .show = SHOW_KEY_ID,
     .allowed = "1..128 characters",
     .def_doc = "unset",
     .desc = "AWS access key id; must be set together with aws.secret_access_key"},
    {.key = "aws.secret_access_key",
     .type = CONFIG_STRING,
     .offset = FIELD(aws_secret_access_key),
     .min = 1,
     .max = 256,
     .env = {"AWS_SECRET_ACCESS_KEY"},
     .show = SHOW_SECRET,
     .allowed = "1..256 characters",
     .def_doc = "unset",
     .desc = "AWS secret access key (secret, never printed)"},
    {.key = "aws.session_token",
     .type = CONFIG_STRING,
     .offset = FIELD(aws_session_token),
     .min = 1,
     .max = 8192,
     .env = {"AWS_SESSION_TOKEN"},
     .show = SHOW_SECRET,
     .allowed = "1..8192 characters",
     .def_doc = "unset",
     .desc = "AWS session token for temporary credentials (secret, never printed)"},
    {.key = "eventbridge.endpoint_url",
     .type = CONFIG_STRING,
     .offset = FIELD(endpoint_url),
     .min = 1,
     .max = CONFIG_ENDPOINT_MAX,
     .env = {"AWS_ENDPOINT_URL_EVENTBRIDGE", "AWS_ENDPOINT_URL"},
     .check = CHECK_ENDPOINT,
     .allowed = "http:// or https:// URL without a path",
     .def_doc = "derived from aws.region",
     .desc = "PutEvents endpoint; ignored (file and environment) when " CONFIG_IGNORE_ENV "=true"},
    {.key = "eventbridge.bus_name",
     .type = CONFIG_STRING,
     .offset = FIELD(event_bus_name),
     .def_str = "user-service-bus",
     .min = 1,
     .max = 1600,
     .env = {"OUTBOX_RELAY_EVENT_BUS_NAME"},
     .check = CHECK_BUS_NAME,
     .allowed = "1..1600 characters of [A-Za-z0-9._/-], or an ARN (arn:...)",
     .desc = "event bus that receives the events"},
    {.key = "eventbridge.source",
     .type = CONFIG_STRING,
     .offset = FIELD(event_source),
     .def_str = "user-service",
     .min = 1,
     .max = 256,
     .env = {"OUTBOX_RELAY_EVENT_SOURCE"},
     .check = CHECK_SOURCE,
     .allowed = "1..256 characters, not beginning with \"aws.\"",
     .desc = "Source field of every event"},
    {.key = "eventbridge.max_request_bytes",
     .type = CONFIG_INT,
     .offset = FIELD(max_request_bytes),
     .def_int = 262144,
     .min = 1024,
     .max = 1048576,
     .env = {"OUTBOX_RELAY_MAX_REQUEST_BYTES"},
     .desc = "largest PutEvents request body in bytes"},
    {.key = "eventbridge.max_entries_per_request",
     .type = CONFIG_INT,
     .offset = FIELD(max_entries_per_request),
     .def_int = 10,
     .min = 1,
     .max = 10,
     .env = {"OUTBOX_RELAY_MAX_ENTRIES_PER_REQUEST"},
     .desc = "most entries in one PutEvents request"},
    {.key = "relay.batch_size",
     .type = CONFIG_INT,
     .offset = FIELD(batch_size),
     .def_int = 500,
     .min = 1,
     .max = 10000,
     .env = {"OUTBOX_RELAY_BATCH_SIZE"},
     .desc = "outbox rows claimed per transaction"},
    {.key = "relay.poll_interval_ms",
     .type = CONFIG_INT,
     .offset = FIELD(poll_interval_ms),
     .def_int = 1000,
     .min = 10,
     .max = 3600000,
     .env = {"OUTBOX_RELAY_POLL_INTERVAL_MS"},
     .desc = "fallback wake-up interval when no notification arrives"},
    {.key = "relay.max_in_flight",
     .type = CONFIG_INT,
     .offset = FIELD(max_in_flight),
     .def_int = 200,
     .min = 1,
     .max = 1024,
     .env = {"OUTBOX_RELAY_MAX_IN_FLIGHT"},
     .desc = "concurrent PutEvents requests per replica, shared by its pipelines (default: "
             "a 500-row batch per pipeline goes out in one round trip)"},
    {.key = "relay.pipelines",
     .type = CONFIG_INT,
     .offset = FIELD(pipelines),
     .def_int = 4,
     .min = 1,
     .max = 64,
     .env = {"OUTBOX_RELAY_PIPELINES"},
     .desc = "claims in flight per replica: each pipeline claims, publishes and marks its own "
             "batch on its own database connection while the others do the same"},
    {.key = "relay.http_timeout_ms",
     .type = CONFIG_INT,
     .offset = FIELD(http_timeout_ms),
     .def_int = 10000,
     .min = 100,
     .max = 300000,
     .env = {"OUTBOX_RELAY_HTTP_TIMEOUT_MS"},
     .desc = "timeout for a whole PutEvents request"},
    {.key = "relay.connect_timeout_ms",
     .type = CONFIG_INT,
     .offset = FIELD(connect_timeout_ms),
     .def_int = 3000,
     .min = 100,
     .max = 60000,
     .env = {"OUTBOX_RELAY_CONNECT_TIMEOUT_MS"},
     .desc = "timeout for connecting to the endpoint"},
    {.key = "relay.retry_base_ms",
     .type = CONFIG_INT,
     .offset = FIELD(retry_base_ms),
     .def_int = 200,
     .min = 1,
     .max = 600000,
     .env = {"OUTBOX_RELAY_RETRY_BASE_MS"},
     .desc = "base of the per-row retry backoff; at most relay.retry_cap_ms"},
    {.key = "relay.retry_cap_ms",
     .type = CONFIG_INT,
     .offset = FIELD(retry_cap_ms),
     .def_int = 60000,
     .min = 1,
     .max = 86400000,
     .env = {"OUTBOX_RELAY_RETRY_CAP_MS"},
     .desc = "cap of the per-row retry backoff"},
    {.key = "relay.reconnect_max_ms",
     .type = CONFIG_INT,
     .offset = FIELD(reconnect_max_ms),
     .def_int = 10000,
     .min = 100,
     .max = 600000,
     .env = {"OUTBOX_RELAY_RECONNECT_MAX_MS"},
     .desc = "cap of the database reconnect backoff"},
    {.key = "relay.shutdown_timeout_ms",
     .type = CONFIG_INT,
     .offset = FIELD(shutdown_timeout_ms),
     .def_int = 5000,
     .min = 0,
     .max = 120000,
     .env = {"OUTBOX_RELAY_SHUTDOWN_TIMEOUT_MS"},
     .desc = "grace period for in-flight work after SIGTERM"},
    {.key = "relay.claim_timeout_ms",
     .type = CONFIG_INT,
     .offset = FIELD(claim_timeout_ms),
     .def_int = 15000,
     .min = 1000,
     .max = 3600000,
     .env = {"OUTBOX_RELAY_CLAIM_TIMEOUT_MS"},
     .desc = "a claim idle this long (a paused or cut-off replica) is broken by PostgreSQL and "
             "its rows go to another replica; must exceed relay.http_timeout_ms by 1000"},
    {.key = "relay.max_attempts",
     .type = CONFIG_INT,
     .offset = FIELD(max_attempts),
     .def_int = 10,
     .min = 1,
     .max = 1000000,
     .env = {"OUTBOX_RELAY_MAX_ATTEMPTS"},
     .desc = "entry-level failures (e.g. InternalFailure) before a row is dead-lettered; "
             "outages, throttling and credential errors never count"},
    {.key = "relay.ordering",
     .type = CONFIG_STRING,
     .offset = FIELD(ordering),
     .def_str = "per_user",
     .min = 1,
     .max = 16,
     .env = {"OUTBOX_RELAY_ORDERING"},
     .check = CHECK_ORDERING,
     .allowed = "per_user, none",
     .desc = "per_user: a user's later event is never published while an earlier one is unsent "
             "or in flight; none: no ordering, more throughput"},
    {.key = "log.level",
     .type = CONFIG_LOG_LEVEL,
     .offset = FIELD(log_level),
     .def_int = LOG_INFO,
     .env = {"OUTBOX_RELAY_LOG_LEVEL"},
     .allowed = "debug, info, warn, error",
     .desc = "lowest log level printed"},
};

#define CONFIG_NSETTINGS (sizeof(config_settings) / sizeof(config_settings[0]))

typedef enum source_kind {
    SOURCE_DEFAULT = 0,
    SOURCE_FILE,
    SOURCE_ENV,
    SOURCE_DERIVED,
} source_kind;

/* Where one value came from. */
typedef struct config_origin {
    source_kind kind;
    const char *path; /* SOURCE_FILE */
    const char *env;  /* SOURCE_ENV: points into config_settings */
    unsigned long line;
} config_origin;

struct config_sources {
    char *path; /* the config file, owned */
    config_origin v[CONFIG_NSETTINGS];
};

/* ---- field access ---------------------------------------------------- */

static void *config_field(relay_config *cfg, const config_setting *s)
{
    return (char *)cfg + s->offset;
}

static const void *config_field_const(const relay_config *cfg, const config_setting *s)
{
    return (const char *)cfg + s->offset;
}

static const config_setting *config_find(const char *key, size_t *idx)
{
    for (size_t i = 0; i < CONFIG_NSETTINGS; i++) {
        if (strcmp(config_settings[i].key, key) == 0) {
            if (idx)
                *idx = i;
            return &config_settings[i];
        }
    }
    return NULL;
}

/* Index of a key that is in the table (a programming error otherwise). */
static size_t config_index(const char *key)
{
    size_t i = 0;
    if (config_find(key, &i) == NULL) {
        fprintf(stderr, "outbox-relay: config key %s missing from the settings table\n", key);
        abort();
    }
    return i;
}

static const char *config_string(const relay_config *cfg, const char *key)
{
    return *(char *const *)config_field_const(cfg, &config_settings[config_index(key)]);
}

static int config_int(const relay_config *cfg, const char *key)
{
    return *(const int *)config_field_const(cfg, &config_settings[config_index(key)]);
}

/* ---- messages ---------------------------------------------------------- */

/* Writes s as a double-quoted, escaped, possibly shortened string. */
static void config_quote(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, n = 0;
    if (outlen < 8) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (; *s && o + 8 < outlen; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (n == CONFIG_SHOW_MAX) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* Writes a key as typed by the user: bare when plain printable text, else quoted. */
static void config_key_text(const char *key, char *out, size_t outlen)
{
    size_t len = strlen(key);
    bool plain = len > 0 && len <= CONFIG_SHOW_MAX;
    for (const char *p = key; *p && plain; p++)
        plain = *p > ' ' && *p < 0x7f && *p != '"' && *p != '\\';
    if (plain)
        snprintf(out, outlen, "%s", key);
    else
        config_quote(key, out, outlen);
}

/* Writes "default", "file PATH:LINE", "env NAME" or "derived ...". */
static void config_origin_text(const config_origin *o, char *out, size_t outlen)
{
    switch (o->kind) {
    case SOURCE_FILE:
        snprintf(out, outlen, "file %s:%lu", o->path, o->line);
        break;
    case SOURCE_ENV:
        snprintf(out, outlen, "env %s", o->env);
        break;
    case SOURCE_DERIVED:
        snprintf(out, outlen, "derived from aws.region");
        break;
    case SOURCE_DEFAULT:
    default:
        snprintf(out, outlen, "default");
        break;
    }
}

/* Sets err to "<where>: <reason>", where names the file line and key or the env variable. */
static void config_fail(or_error *err, const config_origin *o, const char *key, const char *fmt,
                        ...) OR_PRINTF(4, 5);
static void config_fail(or_error *err, const config_origin *o, const char *key, const char *fmt,
                        ...)
{
    char reason[OR_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (o->kind == SOURCE_ENV)
        or_error_set(err, "environment %s: %s", o->env, reason);
    else if (o->kind == SOURCE_FILE && o->line > 0)
        or_error_set(err, "%s:%lu: %s: %s", o->path, o->line, key, reason);
    else if (o->kind == SOURCE_FILE)
        or_error_set(err, "%s: %s: %s", o->path, key, reason);
    else
        or_error_set(err, "%s: %s", key, reason);
}

/* "set A or B or key in the config file" for the hint in "is not set" errors. */
static void config_how_to_set(const config_setting *s, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < CONFIG_ENV_MAX && s->env[i] != NULL; i++) {
        int n = snprintf(out + o, outlen - o, "%s%s", i ? " or " : "set ", s->env[i]);
        if (n < 0 || (size_t)n >= outlen - o)
            return;
        o += (size_t)n;
    }
    snprintf(out + o, outlen - o, "%s%s in the config file", o ? " or " : "set ", s->key);
}

/* ---- values ------------------------------------------------------------ */

typedef enum int_parse {
    INT_OK,
    INT_NOT_A_NUMBER,
    INT_OVERFLOW,
} int_parse;

/* Base-10 integer, optional sign, no whitespace or trailing characters. */
static int_parse config_parse_long(const char *s, long *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return INT_NOT_A_NUMBER;
    errno = 0;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0')
        return INT_NOT_A_NUMBER;
    if (errno == ERANGE)
        return INT_OVERFLOW;
    *out = v;
    return INT_OK;
}

static bool config_region_ok(const char *v)
{
    for (const char *p = v; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    }
    return true;
}

static bool config_bus_name_ok(const char *v)
{
    if (strncmp(v, "arn:", 4) == 0) {
        for (const char *p = v; *p; p++) {
            if (*p == ' ' || (unsigned char)*p >= 0x7f)
                return false;
        }
        return true;
    }
    for (const char *p = v; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '/'))
            return false;
    }
    return true;
}

/* Extra checks for string settings; the value is already length-checked. */
static or_status config_check_string(const config_setting *s, const char *v, const config_origin *o,
                                     or_error *err)
{
    char shown[CONFIG_SHOW_MAX * 4 + 16];
    config_quote(v, shown, sizeof(shown));
    switch (s->check) {
    case CHECK_REGION:
        if (!config_region_ok(v)) {
            config_fail(err, o, s->key, "must contain only a-z, 0-9 and '-', got %s", shown);
            return OR_ERR;
        }
        break;
    case CHECK_ENDPOINT: {
        char host[CONFIG_ENDPOINT_MAX + 1];
        or_error e = {{0}};
        if (aws_endpoint_host(v, host, sizeof(host), &e) != OR_OK) {
            config_fail(err, o, s->key, "%s", e.msg[0] ? e.msg : "not a valid endpoint URL");
            return OR_ERR;
        }
        break;
    }
    case CHECK_BUS_NAME:
        if (!config_bus_name_ok(v)) {
            config_fail(err, o, s->key,
                        "must be a name of A-Z, a-z, 0-9, '.', '_', '-', '/' or an ARN "
                        "beginning \"arn:\", got %s",
                        shown);
            return OR_ERR;
        }
        break;
    case CHECK_SOURCE:
        if (strncmp(v, "aws.", 4) == 0) {
            config_fail(err, o, s->key,
                        "must not begin with \"aws.\" (AWS rejects custom events from aws.* "
                        "sources), got %s",
                        shown);
            return OR_ERR;
        }
        break;
    case CHECK_ORDERING:
        if (strcmp(v, "per_user") != 0 && strcmp(v, "none") != 0) {
            config_fail(err, o, s->key, "must be per_user or none, got %s", shown);
            return OR_ERR;
        }
        break;
    case CHECK_NONE:
    default:
        break;
    }
    return OR_OK;
}

/* Validates value for setting idx and stores it, recording where it came from. */
static or_status config_apply(relay_config *cfg, size_t idx, const char *value,
                              const config_origin *o, or_error *err)
{
    const config_setting *s = &config_settings[idx];
    bool may_show = s->show == SHOW_PLAIN;
    char shown[CONFIG_SHOW_MAX * 4 + 16];
    config_quote(value, shown, sizeof(shown));

    for (const char *p = value; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f) {
            config_fail(err, o, s->key, "must not contain control characters%s%s",
                        may_show ? ", got " : "", may_show ? shown : "");
            return OR_ERR;
        }
    }

    switch (s->type) {
    case CONFIG_INT: {
        long v = 0;
        int_parse r = config_parse_long(value, &v);
        if (r == INT_NOT_A_NUMBER) {
            config_fail(err, o, s->key, "not an integer: %s", shown);
            return OR_ERR;
        }
        if (r == INT_OVERFLOW || v < s->min || v > s->max) {
            config_fail(err, o, s->key, "must be between %d and %d, got %.*s%s", s->min, s->max,
                        CONFIG_SHOW_MAX, value, strlen(value) > CONFIG_SHOW_MAX ? "..." : "");
            return OR_ERR;
        }
        *(int *)config_field(cfg, s) = (int)v;
        break;
    }
    case CONFIG_LOG_LEVEL: {
        log_level lv = LOG_INFO;
        if (log_level_parse(value, &lv) != OR_OK) {
            config_fail(err, o, s->key, "must be one of %s, got %s", s->allowed, shown);
            return OR_ERR;
        }
        *(log_level *)config_field(cfg, s) = lv;
        break;
    }
    case CONFIG_STRING: {
        size_t len = strlen(value);
        if (len < (size_t)s->min) {
            config_fail(err, o, s->key, "must not be empty");
            return OR_ERR;
        }
        if (len > (size_t)s->max) {
            config_fail(err, o, s->key, "must be at most %d characters, got %zu", s->max, len);
            return OR_ERR;
        }
        if (config_check_string(s, value, o, err) != OR_OK)
            return OR_ERR;
        char **field = config_field(cfg, s);
        free(*field);
        *field = xstrdup(value);
        break;
    }
    }
    cfg->sources->v[idx] = *o;
    return OR_OK;
}

static void config_set_defaults(relay_config *cfg)
{
    for (size_t i = 0; i < CONFIG_NSETTINGS; i++) {
        const config_setting *s = &config_settings[i];
        switch (s->type) {
        case CONFIG_STRING:
            *(char **)config_field(cfg, s) = s->def_str ? xstrdup(s->def_str) : NULL;
            break;
        case CONFIG_INT:
            *(int *)config_field(cfg, s) = s->def_int;
            break;
        case CONFIG_LOG_LEVEL:
            *(log_level *)config_field(cfg, s) = (log_level)s->def_int;
            break;
        }
        cfg->sources->v[i].kind = SOURCE_DEFAULT;
    }
}

/* ---- YAML file ----------------------------------------------------------- */

typedef struct config_file {
    relay_config *cfg;
    const char *path;
    yaml_document_t *doc;
    bool ignore_endpoint;
} config_file;

static or_status config_read_file(const char *path, char **data, size_t *len, or_error *err)
{
    or_status rc = OR_ERR;
    size_t cap = 4096, n = 0;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        or_error_set(err, "cannot read config file %s: %s", path, strerror(errno));
        goto out;
    }
    buf = xmalloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap > CONFIG_FILE_MAX) {
                or_error_set(err, "cannot read config file %s: larger than %d bytes", path,
                             CONFIG_FILE_MAX);
                goto out;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                or_error_set(err, "cannot read config file %s: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    if (n > CONFIG_FILE_MAX) {
        or_error_set(err, "cannot read config file %s: larger than %d bytes", path,
                     CONFIG_FILE_MAX);
        goto out;
    }
    *data = buf;
    *len = n;
    buf = NULL;
    rc = OR_OK;
out:
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

static void config_yaml_error(const yaml_parser_t *p, const char *path, or_error *err)
{
    const char *problem = p->problem ? p->problem : "unknown error";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        or_error_set(err, "%s: yaml parser out of memory", path);
        break;
    case YAML_READER_ERROR:
        or_error_set(err, "%s: yaml syntax error: %s at byte %zu", path, problem,
                     p->problem_offset);
        break;
    default:
        if (p->context)
            or_error_set(err, "%s:%zu: yaml syntax error: %s %s", path, p->problem_mark.line + 1,
                         problem, p->context);
        else
            or_error_set(err, "%s:%zu: yaml syntax error: %s", path, p->problem_mark.line + 1,
                         problem);
        break;
    }
}

static unsigned long config_node_line(const yaml_node_t *n)
{
    return (unsigned long)n->start_mark.line + 1;
}

static const char *config_node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_SCALAR_NODE:
        return "a scalar";
    default:
        return "nothing";
    }
}

/* ~, null, Null, NULL, an empty plain value or an explicit !!null. */
static bool config_node_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE)
        return false;
    if (n->tag && strcmp((const char *)n->tag, YAML_NULL_TAG) == 0)
        return true;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Edit distance for "did you mean" hints; SIZE_MAX when a string is too long. */
static size_t config_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[CONFIG_KEY_MAX + 1];
    if (la > CONFIG_KEY_MAX || lb > CONFIG_KEY_MAX)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Length of the section part of a dotted key. */
static size_t config_section_len(const char *key)
{
    const char *dot = strchr(key, '.');
    return dot ? (size_t)(dot - key) : strlen(key);
}

static bool config_section_known(const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < CONFIG_NSETTINGS; i++) {
        const char *k = config_settings[i].key;
        if (config_section_len(k) == len && strncmp(k, name, len) == 0)
            return true;
    }
    return false;
}

/* Writes " (did you mean X?)" when a known key or section is close to name. */
static void config_suggest(const char *name, bool section, char *out, size_t outlen)
{
    size_t best = SIZE_MAX;
    char cand[CONFIG_KEY_MAX];
    out[0] = '\0';
    for (size_t i = 0; i < CONFIG_NSETTINGS; i++) {
        const char *k = config_settings[i].key;
        if (section)
            snprintf(cand, sizeof(cand), "%.*s", (int)config_section_len(k), k);
        else
            snprintf(cand, sizeof(cand), "%s", k);
        size_t d = config_distance(name, cand);
        if (d < best && d <= 2 && d < strlen(cand) / 2) {
            best = d;
            snprintf(out, outlen, " (did you mean %s?)", cand);
        }
    }
}

/* Fails when an earlier key in the same mapping has the same text. */
static or_status config_check_duplicate(const config_file *cf, const yaml_node_pair_t *start,
                                        const yaml_node_pair_t *pair, const char *shown_key,
                                        or_error *err)
{
    const yaml_node_t *key = yaml_document_get_node(cf->doc, pair->key);
    for (const yaml_node_pair_t *p = start; p < pair; p++) {
        const yaml_node_t *k = yaml_document_get_node(cf->doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, (const char *)key->data.scalar.value) == 0) {
            or_error_set(err, "%s:%lu: %s: duplicate key (first set on line %lu)", cf->path,
                         config_node_line(key), shown_key, config_node_line(k));
            return OR_ERR;
        }
    }
    return OR_OK;
}

static or_status config_file_section(config_file *cf, const char *section, const yaml_node_t *map,
                                     or_error *err)
{
    const yaml_node_pair_t *start = map->data.mapping.pairs.start;
    const yaml_node_pair_t *top = map->data.mapping.pairs.top;
    for (const yaml_node_pair_t *pair = start; pair < top; pair++) {
        const yaml_node_t *key = yaml_document_get_node(cf->doc, pair->key);
        const yaml_node_t *val = yaml_document_get_node(cf->doc, pair->value);
        if (key == NULL || val == NULL) {
            or_error_set(err, "%s: %s: malformed yaml mapping", cf->path, section);
            return OR_ERR;
        }
        if (key->type != YAML_SCALAR_NODE) {
            or_error_set(err, "%s:%lu: %s: setting names must be plain words, got %s", cf->path,
                         config_node_line(key), section, config_node_kind(key));
            return OR_ERR;
        }
        char dotted[CONFIG_KEY_MAX];
        char shown[CONFIG_SHOW_MAX * 4 + 16];
        config_key_text((const char *)key->data.scalar.value, shown, sizeof(shown));
        int n = snprintf(dotted, sizeof(dotted), "%s.%s", section,
                         (const char *)key->data.scalar.value);
        size_t idx = 0;
        if (n < 0 || (size_t)n >= sizeof(dotted) || config_find(dotted, &idx) == NULL) {
            char hint[CONFIG_KEY_MAX + 32];
            hint[0] = '\0';
            if (n > 0 && (size_t)n < sizeof(dotted))
                config_suggest(dotted, false, hint, sizeof(hint));
            or_error_set(err, "%s:%lu: %s.%s: unknown key%s", cf->path, config_node_line(key),
                         section, shown, hint);
            return OR_ERR;
        }
        if (config_check_duplicate(cf, start, pair, dotted, err) != OR_OK)
            return OR_ERR;
        const config_setting *s = &config_settings[idx];
        if (val->type != YAML_SCALAR_NODE) {
            or_error_set(err, "%s:%lu: %s: expected a single value, got %s", cf->path,
                         config_node_line(val), s->key, config_node_kind(val));
            return OR_ERR;
        }
        if (config_node_is_null(val))
            continue; /* unset: keep the default */
        if (s->check == CHECK_ENDPOINT && cf->ignore_endpoint)
            continue;
        config_origin o = {.kind = SOURCE_FILE, .path = cf->path, .line = config_node_line(val)};
        if (config_apply(cf->cfg, idx, (const char *)val->data.scalar.value, &o, err) != OR_OK)
            return OR_ERR;
    }
    return OR_OK;
}

static or_status config_file_root(config_file *cf, const yaml_node_t *root, or_error *err)
{
    if (config_node_is_null(root))
        return OR_OK;
    if (root->type != YAML_MAPPING_NODE) {
        or_error_set(err,
                     "%s:%lu: top level must be a mapping of sections (database, aws, "
                     "eventbridge, relay, log), got %s",
                     cf->path, config_node_line(root), config_node_kind(root));
        return OR_ERR;
    }
    const yaml_node_pair_t *start = root->data.mapping.pairs.start;
    const yaml_node_pair_t *top = root->data.mapping.pairs.top;
    for (const yaml_node_pair_t *pair = start; pair < top; pair++) {
        const yaml_node_t *key = yaml_document_get_node(cf->doc, pair->key);
        const yaml_node_t *val = yaml_document_get_node(cf->doc, pair->value);
        if (key == NULL || val == NULL) {
            or_error_set(err, "%s: malformed yaml mapping", cf->path);
            return OR_ERR;
        }
        if (key->type != YAML_SCALAR_NODE) {
            or_error_set(err, "%s:%lu: section names must be plain words, got %s", cf->path,
                         config_node_line(key), config_node_kind(key));
            return OR_ERR;
        }
        const char *name = (const char *)key->data.scalar.value;
        char shown[CONFIG_SHOW_MAX * 4 + 16];
        config_key_text(name, shown, sizeof(shown));
        if (strchr(name, '.') || !config_section_known(name)) {
            char hint[CONFIG_KEY_MAX + 32];
            config_suggest(name, true, hint, sizeof(hint));
            or_error_set(err, "%s:%lu: %s: unknown section%s", cf->path, config_node_line(key),
                         shown, hint);
            return OR_ERR;
        }
        if (config_check_duplicate(cf, start, pair, name, err) != OR_OK)
            return OR_ERR;
        if (config_node_is_null(val))
            continue; /* "relay:" with nothing under it */
        if (val->type != YAML_MAPPING_NODE) {
            or_error_set(err, "%s:%lu: %s: expected a mapping of settings, got %s", cf->path,
                         config_node_line(val), name, config_node_kind(val));
            return OR_ERR;
        }
        if (config_file_section(cf, name, val, err) != OR_OK)
            return OR_ERR;
    }
    return OR_OK;
}

static or_status config_load_file(relay_config *cfg, const char *path, bool ignore_endpoint,
                                  or_error *err)
{
    or_status rc = OR_ERR;
    char *data = NULL;
    size_t len = 0;
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool parser_ok = false, doc_ok = false, extra_ok = false;

    cfg->sources->path = xstrdup(path);
    path = cfg->sources->path;
    if (config_read_file(path, &data, &len, err) != OR_OK)
        goto out;
    if (!yaml_parser_initialize(&parser)) {
        or_error_set(err, "%s: cannot initialise the yaml parser", path);
        goto out;
    }
    parser_ok = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        config_yaml_error(&parser, path, err);
        goto out;
    }
    doc_ok = true;

    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root != NULL) {
        config_file cf = {
            .cfg = cfg, .path = path, .doc = &doc, .ignore_endpoint = ignore_endpoint};
        if (config_file_root(&cf, root, err) != OR_OK)
            goto out;
    }

    /* A second document ("---") would otherwise be silently ignored. */
    if (!yaml_parser_load(&parser, &extra)) {
        config_yaml_error(&parser, path, err);
        goto out;
    }
    extra_ok = true;
    const yaml_node_t *second = yaml_document_get_root_node(&extra);
    if (second != NULL) {
        or_error_set(err, "%s:%lu: only one yaml document is allowed", path,
                     (unsigned long)extra.start_mark.line + 1);
        goto out;
    }
    rc = OR_OK;
out:
    if (extra_ok)
        yaml_document_delete(&extra);
    if (doc_ok)
        yaml_document_delete(&doc);
    if (parser_ok)
        yaml_parser_delete(&parser);
    free(data);
    return rc;
}

/* ---- environment ----------------------------------------------------------- */

static const char *config_process_getenv(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

static bool config_env_true(config_getenv_fn getenv_fn, void *ctx, const char *name)
{
    const char *v = getenv_fn(name, ctx);
    return v != NULL && strcasecmp(v, "true") == 0;
}

static or_status config_load_env(relay_config *cfg, config_getenv_fn getenv_fn, void *ctx,
                                 bool ignore_endpoint, or_error *err)
{
    for (size_t i = 0; i < CONFIG_NSETTINGS; i++) {
        const config_setting *s = &config_settings[i];
        if (s->check == CHECK_ENDPOINT && ignore_endpoint)
            continue;
        for (size_t e = 0; e < CONFIG_ENV_MAX && s->env[e] != NULL; e++) {
            const char *v = getenv_fn(s->env[e], ctx);
            if (v == NULL || v[0] == '\0')
                continue; /* empty counts as unset */
            config_origin o = {.kind = SOURCE_ENV, .env = s->env[e]};
            if (config_apply(cfg, i, v, &o, err) != OR_OK)
                return OR_ERR;
            break;
        }
    }
    return OR_OK;
}

/* ---- cross-checks and derived values ------------------------------------------ */

static or_status config_require_pair(const relay_config *cfg, const char *a, const char *b,
                                     or_error *err)
{
    if (config_string(cfg, a) != NULL && config_string(cfg, b) == NULL) {
        char how[256], from[512];
        config_how_to_set(&config_settings[config_index(b)], how, sizeof(how));
        config_origin_text(&cfg->sources->v[config_index(a)], from, sizeof(from));
        or_error_set(err, "%s is set (%s) but %s is not: %s", a, from, b, how);
        return OR_ERR;
    }
    return OR_OK;
}

static or_status config_finish(relay_config *cfg, config_purpose purpose, or_error *err)
{
    size_t region_idx = config_index("aws.region");
    if (cfg->aws_region == NULL && purpose == CONFIG_FOR_DATABASE) {
        /* migrate/status need no AWS settings; still check the rest */
    } else if (cfg->aws_region == NULL) {
        char how[256];
        config_how_to_set(&config_settings[region_idx], how, sizeof(how));
        or_error_set(err, "aws.region is not set: %s", how);
        return OR_ERR;
    }

    if (config_require_pair(cfg, "aws.access_key_id", "aws.secret_access_key", err) != OR_OK ||
        config_require_pair(cfg, "aws.secret_access_key", "aws.access_key_id", err) != OR_OK)
        return OR_ERR;

    int base = config_int(cfg, "relay.retry_base_ms");
    int cap = config_int(cfg, "relay.retry_cap_ms");
    if (base > cap) {
        char from_base[512], from_cap[512];
        config_origin_text(&cfg->sources->v[config_index("relay.retry_base_ms")], from_base,
                           sizeof(from_base));
        config_origin_text(&cfg->sources->v[config_index("relay.retry_cap_ms")], from_cap,
                           sizeof(from_cap));
        or_error_set(err,
                     "relay.retry_base_ms (%d, %s) must not be greater than relay.retry_cap_ms "
                     "(%d, %s)",
                     base, from_base, cap, from_cap);
        return OR_ERR;
    }

    int http_timeout = config_int(cfg, "relay.http_timeout_ms");
    int claim_timeout = config_int(cfg, "relay.claim_timeout_ms");
    if (http_timeout + 1000 > claim_timeout) {
        char from_http[512], from_claim[512];
        config_origin_text(&cfg->sources->v[config_index("relay.http_timeout_ms")], from_http,
                           sizeof(from_http));
        config_origin_text(&cfg->sources->v[config_index("relay.claim_timeout_ms")], from_claim,
                           sizeof(from_claim));
        or_error_set(err,
                     "relay.claim_timeout_ms (%d, %s) must exceed relay.http_timeout_ms (%d, %s) "
                     "by at least 1000: a publish must finish before PostgreSQL breaks the claim",
                     claim_timeout, from_claim, http_timeout, from_http);
        return OR_ERR;
    }

    cfg->endpoint_derived = false;
    if (cfg->endpoint_url == NULL && cfg->aws_region != NULL) {
        char url[CONFIG_ENDPOINT_MAX];
        or_error e = {{0}};
        if (aws_eventbridge_endpoint(cfg->aws_region, url, sizeof(url), &e) != OR_OK) {
            config_fail(err, &cfg->sources->v[region_idx], "aws.region",
                        "cannot derive the eventbridge endpoint: %s", e.msg);
            return OR_ERR;
        }
        cfg->endpoint_url = xstrdup(url);
        cfg->endpoint_derived = true;
        cfg->sources->v[config_index("eventbridge.endpoint_url")].kind = SOURCE_DERIVED;
    }
    return OR_OK;
}

/* ---- public --------------------------------------------------------------------- */

or_status config_load(const char *path, config_getenv_fn getenv_fn, void *ctx, relay_config **out,
                      or_error *err)
{
    return config_load_for(CONFIG_FOR_RELAY, path, getenv_fn, ctx, out, err);
}

or_status config_load_for(config_purpose purpose, const char *path, config_getenv_fn getenv_fn,
                          void *ctx, relay_config **out, or_error *err)
{
    or_status rc = OR_ERR;
    relay_config *cfg = xcalloc(1, sizeof(*cfg));
    cfg->sources = xcalloc(1, sizeof(*cfg->sources));
    *out = NULL;
    if (getenv_fn == NULL) {
        getenv_fn = config_process_getenv;
        ctx = NULL;
    }
    config_set_defaults(cfg);

    bool ignore_endpoint = config_env_true(getenv_fn, ctx, CONFIG_IGNORE_ENV);
    if (path != NULL && config_load_file(cfg, path, ignore_endpoint, err) != OR_OK)
        goto out;
    if (config_load_env(cfg, getenv_fn, ctx, ignore_endpoint, err) != OR_OK)
        goto out;
    if (config_finish(cfg, purpose, err) != OR_OK)
        goto out;
    *out = cfg;
    cfg = NULL;
    rc = OR_OK;
out:
    config_free(cfg);
    return rc;
}

void config_free(relay_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < CONFIG_NSETTINGS; i++) {
        const config_setting *s = &config_settings[i];
        if (s->type == CONFIG_STRING)
            free(*(char **)config_field(cfg, s));
    }
    if (cfg->sources)
        free(cfg->sources->path);
    free(cfg->sources);
    free(cfg);
}

/* Writes the value of setting s as config_print shows it. */
static void config_value_text(const relay_config *cfg, const config_setting *s, char *out,
                              size_t outlen)
{
    switch (s->type) {
    case CONFIG_INT:
        snprintf(out, outlen, "%d", *(const int *)config_field_const(cfg, s));
        return;
    case CONFIG_LOG_LEVEL:
        snprintf(out, outlen, "%s", log_level_name(*(const log_level *)config_field_const(cfg, s)));
        return;
    case CONFIG_STRING:
        break;
    }
    const char *v = *(char *const *)config_field_const(cfg, s);
    if (v == NULL) {
        snprintf(out, outlen, "(unset)");
        return;
    }
    switch (s->show) {
    case SHOW_SECRET:
        snprintf(out, outlen, CONFIG_MASK);
        break;
    case SHOW_CONNINFO:
        log_redact_conninfo(v, out, outlen);
        break;
    case SHOW_KEY_ID: {
        size_t len = strlen(v);
        if (len >= 12)
            snprintf(out, outlen, "%.4s" CONFIG_MASK "%s", v, v + len - 4);
        else
            snprintf(out, outlen, CONFIG_MASK);
        break;
    }
    case SHOW_PLAIN:
    default:
        snprintf(out, outlen, "%s", v);
        break;
    }
}

void config_print(const relay_config *cfg, FILE *out)
{
    char value[CONFIG_VALUE_MAX];
    char source[CONFIG_KEY_MAX + 4096];
    for (size_t i = 0; i < CONFIG_NSETTINGS; i++) {
        const config_setting *s = &config_settings[i];
        config_value_text(cfg, s, value, sizeof(value));
        config_origin_text(&cfg->sources->v[i], source, sizeof(source));
        fprintf(out, "%s = %s  # %s\n", s->key, value, source);
    }
}

/* Writes text for a Markdown table cell, escaping '|'. */
static void config_md_cell(FILE *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '|')
            fputs("\\|", out);
        else
            fputc(*p, out);
    }
}

void config_print_reference(FILE *out)
{
    fputs("# Configuration\n\n"
          "Settings come from, lowest to highest precedence: built-in defaults, the YAML file\n"
          "given with `--config PATH`, then the environment. An empty environment variable\n"
          "counts as unset. In the file, a null value (`~`, `null` or nothing after the colon)\n"
          "also means unset, so the default applies. The file is a mapping of sections\n"
          "(`database:`, `aws:`, `eventbridge:`, `relay:`, `log:`) to settings; unknown or\n"
          "duplicate keys are errors.\n\n"
          "| Key | Environment | Default | Allowed | Description |\n"
          "|-----|-------------|---------|---------|-------------|\n",
          out);
    for (size_t i = 0; i < CONFIG_NSETTINGS; i++) {
        const config_setting *s = &config_settings[i];
        fprintf(out, "| `%s` | ", s->key);
        for (size_t e = 0; e < CONFIG_ENV_MAX && s->env[e] != NULL; e++)
            fprintf(out, "%s`%s`", e ? ", then " : "", s->env[e]);
        fputs(" | ", out);
        if (s->def_doc)
            config_md_cell(out, s->def_doc);
        else if (s->type == CONFIG_STRING)
            fprintf(out, "`%s`", s->def_str ? s->def_str : "");
        else if (s->type == CONFIG_LOG_LEVEL)
            fprintf(out, "`%s`", log_level_name((log_level)s->def_int));
        else
            fprintf(out, "`%d`", s->def_int);
        fputs(" | ", out);
        if (s->type == CONFIG_INT)
            fprintf(out, "%d..%d", s->min, s->max);
        else
            config_md_cell(out, s->allowed ? s->allowed : "");
        fputs(" | ", out);
        config_md_cell(out, s->desc);
        fputs(" |\n", out);
    }
}
