/*
 * client.h - publishes entries to EventBridge: cuts them into requests,
 * signs each with SigV4 and sends them concurrently over keep-alive
 * connections.
 */
#ifndef OUTBOX_EVENTBRIDGE_CLIENT_H
#define OUTBOX_EVENTBRIDGE_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/credentials.h"
#include "common/error.h"
#include "eventbridge/entry.h"
#include "eventbridge/putevents.h"

typedef struct eb_client eb_client;

typedef struct eb_client_options {
    const char *endpoint_url; /* "https://events.us-east-1.amazonaws.com" */
    const char *region;
    credentials_provider *credentials; /* borrowed; must outlive the client */
    size_t max_entries_per_request;    /* 1..10 */
    size_t max_request_bytes;          /* sum of eb_entry_size() per request */
    size_t max_in_flight;              /* concurrent requests */
    long timeout_ms;
    long connect_timeout_ms;
} eb_client_options;

eb_client *eb_client_new(const eb_client_options *opts, or_error *err);
void eb_client_free(eb_client *c);

/*
 * Publishes entries[0..n) and fills results[0..n) (one per entry, same
 * order). Entries are packed in order into requests of at most
 * max_entries_per_request entries and max_request_bytes; an entry that alone
 * exceeds max_request_bytes gets EB_PERMANENT "EntryTooLarge" without being
 * sent. Transport failures become EB_RETRYABLE results. When a request is
 * refused as a whole for its content (ValidationException and the like), its
 * entries are sent again one per request so the error lands on the guilty
 * entry only (results[i].entry_level tells whether an error is the entry's
 * own). Returns OR_ERR only
 * when nothing could be attempted (e.g. no credentials); then err says why
 * and every result is EB_RETRYABLE.
 */
or_status eb_client_publish(eb_client *c, const eb_entry *entries, size_t n, eb_result *results,
                            atomic_int *abort_flag, long grace_ms, or_error *err) OR_MUST_CHECK;

/*
 * No request starts after this monotonic time (clock_mono_ms(); 0 = none)
 * and requests still running then are abandoned as transport failures.
 */
void eb_client_set_deadline(eb_client *c, int64_t deadline_mono_ms);

/* Counters since creation, for logs and (later) metrics. */
typedef struct eb_client_stats {
    unsigned long long requests;
    unsigned long long request_failures; /* transport or non-2xx */
    unsigned long long entries_accepted;
    unsigned long long entries_failed;
} eb_client_stats;

void eb_client_get_stats(const eb_client *c, eb_client_stats *out);

#endif
