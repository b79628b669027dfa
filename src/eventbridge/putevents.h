/*
 * putevents.h - the PutEvents wire format (AWS JSON 1.1): request bodies and
 * replies, and how AWS error codes are classified.
 */
#ifndef OUTBOX_EVENTBRIDGE_PUTEVENTS_H
#define OUTBOX_EVENTBRIDGE_PUTEVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "eventbridge/entry.h"

typedef enum eb_outcome {
    EB_ACCEPTED = 0,  /* has an EventId */
    EB_RETRYABLE = 1, /* InternalFailure, throttling, 5xx, transport errors */
    EB_PERMANENT = 2, /* validation, auth, malformed detail, too large */
} eb_outcome;

typedef struct eb_result {
    eb_outcome outcome;
    bool throttled;          /* the failure was throttling (slow down) */
    bool entry_level;        /* the error is this entry's own (an ErrorCode in a 200 reply,
                                or EntryTooLarge), not the request's or the transport's */
    char event_id[80];       /* when accepted */
    char error_code[80];     /* e.g. "InternalFailure", "HTTP500", "Timeout" */
    char error_message[256]; /* AWS message or transport error; no secrets */
} eb_result;

/* Appends {"Entries":[...]} for n (1..10) entries to out. */
or_status putevents_build_body(const eb_entry *entries, size_t n, strbuf *out,
                               or_error *err) OR_MUST_CHECK;

/*
 * Interprets one reply for a request of n entries and fills results[0..n).
 * - 200 with a well-formed body: per-entry results in order (EventId or
 *   ErrorCode/ErrorMessage); FailedEntryCount is cross-checked.
 * - non-2xx: every entry gets the request's error code (X-Amzn-ErrorType
 *   header or the body's __type/code, with everything before '#' and after
 *   ':' removed; else "HTTP<status>") and message, classified.
 * - a 200 whose body cannot be parsed, or whose Entries count differs from n,
 *   is a failure of the whole request (all entries RETRYABLE, error code
 *   "InvalidReply"): never a success.
 * Returns OR_ERR only for programming errors (n == 0); bad replies are data.
 */
or_status putevents_parse_reply(long http_status, const char *error_type_header, const char *body,
                                size_t body_len, size_t n, eb_result *results,
                                or_error *err) OR_MUST_CHECK;

/* Classifies an AWS error code (and HTTP status, 0 if per-entry). */
eb_outcome putevents_classify(const char *error_code, long http_status, bool *throttled);

/* Marks an entry that putevents_pack() could not place in any request. */
#define PUTEVENTS_TOO_LARGE ((size_t)-1)

/*
 * Packs entries[0..n) in order into requests of at most max_entries entries
 * whose eb_entry_size() sum is at most max_bytes. Writes the request index of
 * each entry into request_of[i] (requests are numbered from 0 in order) and
 * returns the number of requests. An entry that alone exceeds max_bytes gets
 * PUTEVENTS_TOO_LARGE and is skipped; the entries after it still pack.
 */
size_t putevents_pack(const eb_entry *entries, size_t n, size_t max_entries, size_t max_bytes,
                      size_t *request_of);

/*
 * Normalises an AWS error type into out (always NUL-terminated): drops
 * everything from the first ':' and everything up to the last '#', trims
 * blanks. "com.amazonaws.events#InternalException" -> "InternalException".
 */
void putevents_normalize_code(const char *raw, char *out, size_t outlen);

#endif
