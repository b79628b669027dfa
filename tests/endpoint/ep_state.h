/*
 * ep_state.h - the test endpoint's shared state: injected faults, recorded
 * entries and counters. Every function takes the state's mutex, so request
 * threads may call them concurrently.
 */
#ifndef OUTBOX_TESTS_ENDPOINT_EP_STATE_H
#define OUTBOX_TESTS_ENDPOINT_EP_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <json-c/json.h>

#include "common/error.h"

typedef struct ep_state ep_state;

/* What the next API request must suffer (consumed by ep_state_begin_request). */
typedef enum ep_fault_kind {
    EP_FAULT_NONE = 0,
    EP_FAULT_DROP,    /* close the connection without a reply */
    EP_FAULT_HTTP,    /* answer status with an AWS error body */
    EP_FAULT_GARBAGE, /* answer 200 with a raw body */
} ep_fault_kind;

typedef struct ep_request_fault {
    ep_fault_kind kind;
    long delay_ms;        /* applies to every API reply, fault or not */
    unsigned status;      /* EP_FAULT_HTTP */
    char error_type[128]; /* EP_FAULT_HTTP: __type in the body */
    bool error_header;    /* EP_FAULT_HTTP: also send X-Amzn-ErrorType */
    char *garbage_body;   /* EP_FAULT_GARBAGE: owned by the caller (free) */
} ep_request_fault;

/*
 * Creates the state. record_file (may be NULL) receives one JSON line per
 * accepted entry, flushed; it stays owned by the caller.
 */
ep_state *ep_state_new(FILE *record_file);
void ep_state_free(ep_state *st);

/* Counts an API request and takes the request-level fault to apply (if any). */
void ep_state_begin_request(ep_state *st, ep_request_fault *out);

/*
 * Decides whether an entry that would be accepted fails by injection; if so
 * copies the error code and message into code/msg and returns true.
 */
bool ep_state_entry_fault(ep_state *st, char *code, size_t codelen, char *msg, size_t msglen);

/* Writes a fresh unique uuid-like id ("8-4-4-4-12" lowercase hex) into out[37]. */
void ep_state_new_id(ep_state *st, char out[37]);

/* Stores an accepted entry (takes ownership of rec) and writes it to the record file. */
void ep_state_record(ep_state *st, json_object *rec);

/* Adds per-entry failures (validation or injected) to the counters. */
void ep_state_count_failed(ep_state *st, size_t n);

/* Counts a request rejected by authentication (missing, malformed or bad signature). */
void ep_state_count_signature_failure(ep_state *st);

/*
 * Applies a /_control JSON object (see docs/test-endpoint.md) and returns the
 * resulting fault state as a JSON string (caller frees). OR_ERR with a
 * message when the JSON or a field is invalid (nothing is changed then).
 */
or_status ep_state_control(ep_state *st, const char *body, size_t len, char **out_json,
                           or_error *err) OR_MUST_CHECK;

/* Recorded entries from index since on, as a JSON array string (caller frees). */
char *ep_state_records_json(ep_state *st, size_t since);

/* Forgets every recorded entry (the record file is not truncated). */
void ep_state_clear_records(ep_state *st);

/* Counters as a JSON object string (caller frees). */
char *ep_state_stats_json(ep_state *st);

/*
 * Parses a complete JSON text of len bytes (strict, UTF-8 validated, at most
 * max_depth levels, nothing but whitespace after it). NULL if invalid.
 */
json_object *ep_json_parse(const char *text, size_t len, int max_depth);

#endif
