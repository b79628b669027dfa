/*
 * config.h - the relay's settings: one table, three sources.
 *
 * Every setting is described once, in the table in config.c (YAML key, type,
 * default, bounds, environment variable, secret or not). Precedence, lowest
 * to highest: built-in default < YAML file (--config PATH) < environment.
 * Parsing, validation, `check-config` output and docs/configuration.md all
 * come from that table.
 *
 * The file is a mapping of sections (database, aws, eventbridge, relay, log)
 * to settings. A null value (~, null, or nothing after the colon) means
 * "unset": the default applies. An empty environment variable also counts as
 * unset. Unknown keys, duplicate keys, wrong types and a second YAML document
 * are errors. AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true (any case) makes both
 * the environment endpoint variables and eventbridge.endpoint_url ignored.
 *
 * Errors are one line naming the source and key, e.g.
 *   config.yaml:7: relay.batch_size: must be between 1 and 10000, got 0
 *   environment OUTBOX_RELAY_BATCH_SIZE: not an integer: "ten"
 * and the command exits with status 2.
 */
#ifndef OUTBOX_CONFIG_CONFIG_H
#define OUTBOX_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "common/error.h"
#include "common/log.h"

/* Effective settings after load. Strings are owned by the struct; NULL = unset. */
typedef struct relay_config {
    /* database */
    char *database_url; /* DATABASE_URL; NULL = libpq defaults / PG* variables */

    /* aws */
    char *aws_region;            /* AWS_REGION, then AWS_DEFAULT_REGION */
    char *aws_access_key_id;     /* AWS_ACCESS_KEY_ID */
    char *aws_secret_access_key; /* AWS_SECRET_ACCESS_KEY (secret) */
    char *aws_session_token;     /* AWS_SESSION_TOKEN (secret) */

    /* eventbridge */
    char *endpoint_url;          /* AWS_ENDPOINT_URL_EVENTBRIDGE, AWS_ENDPOINT_URL, else derived */
    bool endpoint_derived;       /* true when endpoint_url came from the region */
    char *event_bus_name;        /* default "user-service-bus" */
    char *event_source;          /* default "user-service"; must not start with "aws." */
    int max_request_bytes;       /* default 262144, 1024..1048576 */
    int max_entries_per_request; /* default 10, 1..10 */

    /* relay */
    int batch_size;          /* rows claimed per transaction, default 500 */
    int poll_interval_ms;    /* fallback wake-up, default 1000 */
    int max_in_flight;       /* concurrent PutEvents requests per replica, default 200 */
    int pipelines;           /* claims in flight per replica (worker threads), default 4 */
    int http_timeout_ms;     /* whole request, default 10000 */
    int connect_timeout_ms;  /* default 3000 */
    int retry_base_ms;       /* row backoff base, default 200 */
    int retry_cap_ms;        /* row backoff cap, default 60000 */
    int reconnect_max_ms;    /* database reconnect backoff cap, default 10000 */
    int shutdown_timeout_ms; /* grace for in-flight work on SIGTERM, default 5000 */
    int claim_timeout_ms;    /* a stalled replica's claim is broken after this, default 15000 */
    int max_attempts;        /* entry-level failures before a row is dead, default 10 */
    char *ordering;          /* "per_user" (default) or "none" */

    /* logging */
    log_level log_level; /* default info */

    struct config_sources *sources; /* private to config.c: where each value came from */
} relay_config;

/* Looks up an environment variable; tests pass their own. */
typedef const char *(*config_getenv_fn)(const char *name, void *ctx);

/*
 * Loads defaults, then the YAML file at path (NULL = none), then the
 * environment via getenv_fn (NULL = the process environment), validates the
 * result and returns it in *out. On error *out is NULL and err holds the
 * one-line message.
 */
or_status config_load(const char *path, config_getenv_fn getenv_fn, void *ctx, relay_config **out,
                      or_error *err) OR_MUST_CHECK;

/* What the settings are loaded for: the relay needs all of them; commands
 * that only talk to the database (migrate) do not require aws.region. */
typedef enum config_purpose {
    CONFIG_FOR_RELAY = 0,
    CONFIG_FOR_DATABASE = 1,
} config_purpose;

/* config_load() for a purpose; config_load() is CONFIG_FOR_RELAY. */
or_status config_load_for(config_purpose purpose, const char *path, config_getenv_fn getenv_fn,
                          void *ctx, relay_config **out, or_error *err) OR_MUST_CHECK;

void config_free(relay_config *cfg);

/*
 * Prints every setting, in table order, as "key = value  # source" where
 * source is "default", "file PATH:LINE", "env NAME" or "derived from
 * aws.region". Secrets print as "****" (or "(unset)"), database.url with its
 * password replaced by "****", aws.access_key_id as its first and last four
 * characters (AKIA****MPLE).
 */
void config_print(const relay_config *cfg, FILE *out);

/* Writes the settings table as a Markdown reference (docs/configuration.md). */
void config_print_reference(FILE *out);

#endif
