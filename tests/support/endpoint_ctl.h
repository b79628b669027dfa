/*
 * endpoint_ctl.h - runs the local PutEvents endpoint (tests/endpoint) for a
 * C test and talks to its test-only control routes.
 *
 * endpoint_start() spawns OUTBOX_ENDPOINT_BIN on a free 127.0.0.1 port with
 * its files (port file, record file, log) in a fresh /tmp directory. Every
 * helper fails the current Check test (ck_abort_msg) with a clear reason
 * instead of returning an error. Set OUTBOX_KEEP_TMP=1 to keep the directory.
 * The control API is described in docs/test-endpoint.md.
 */
#ifndef OUTBOX_TESTS_ENDPOINT_CTL_H
#define OUTBOX_TESTS_ENDPOINT_CTL_H

#include <stddef.h>

#include <json-c/json.h>

typedef struct endpoint endpoint;

/*
 * Starts the endpoint accepting the key akid/secret, checking the signing
 * region when region is not NULL. Waits until it listens.
 */
endpoint *endpoint_start(const char *akid, const char *secret, const char *region);

/* The same with extra command-line arguments (NULL-terminated, may be NULL),
 * e.g. {"--max-request-bytes", "1000", "--credentials", "K2:S2", NULL}. */
endpoint *endpoint_start_args(const char *akid, const char *secret, const char *region,
                              const char *const extra_args[]);

/* "http://127.0.0.1:PORT" (no trailing slash). */
const char *endpoint_url(const endpoint *ep);

/* The TCP port it listens on. */
int endpoint_port(const endpoint *ep);

/* Path of the JSONL record file (one accepted entry per line). */
const char *endpoint_record_path(const endpoint *ep);

/* Path of the endpoint's log (its stderr). */
const char *endpoint_log_path(const endpoint *ep);

/*
 * POSTs json to /_control (e.g. "{\"http_status\":500,\"http_count\":2}").
 * Fails the test if the endpoint rejects it.
 */
void endpoint_control(endpoint *ep, const char *json);

/* Clears every injected fault ({"reset":true}). */
void endpoint_reset_faults(endpoint *ep);

/* Number of entries recorded (accepted) since start or the last clear. */
size_t endpoint_record_count(endpoint *ep);

/*
 * The recorded entries as a JSON array (caller json_object_put()s); each is
 * {"EventId","Source","DetailType","Detail","EventBusName","Time",
 *  "AccessKeyId","ReceivedAtMs"}, in the order they were accepted.
 */
json_object *endpoint_records(endpoint *ep);

/* The records from index since on (same shape). */
json_object *endpoint_records_since(endpoint *ep, size_t since);

/* Forgets the recorded entries (DELETE /_records). */
void endpoint_clear_records(endpoint *ep);

/* Counters from GET /_stats. */
typedef struct endpoint_counters {
    long long requests;           /* API requests received (POST /) */
    long long accepted_entries;   /* entries given an EventId */
    long long failed_entries;     /* entries answered with an ErrorCode */
    long long signature_failures; /* requests rejected by authentication */
    long long faults_injected;    /* request- and entry-level faults applied */
} endpoint_counters;

/* Fills out from GET /_stats. */
void endpoint_stats(endpoint *ep, endpoint_counters *out);

/* Copies the endpoint's log to stderr (useful when a test fails). */
void endpoint_dump_log(const endpoint *ep);

/*
 * Stops the endpoint with SIGTERM (SIGKILL after 10 s) and returns its exit
 * status (0 for a clean stop). Idempotent.
 */
int endpoint_stop(endpoint *ep);

/* Stops it if running, removes its directory and frees; NULL is a no-op. */
void endpoint_free(endpoint *ep);

#endif
