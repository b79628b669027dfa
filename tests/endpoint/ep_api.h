/*
 * ep_api.h - the PutEvents operation of the test endpoint: validates a
 * request body the way EventBridge does, applies per-entry injected faults,
 * records accepted entries and builds the reply.
 */
#ifndef OUTBOX_TESTS_ENDPOINT_EP_API_H
#define OUTBOX_TESTS_ENDPOINT_EP_API_H

#include <stddef.h>

#include "ep_state.h"

/* A reply to send: status, AWS error type ("" on success) and a body. */
typedef struct ep_reply {
    unsigned status;
    char error_type[128]; /* sent as X-Amzn-ErrorType when not empty */
    char *body;           /* owned; NUL-terminated */
    size_t body_len;
} ep_reply;

/* Fills reply with an AWS JSON 1.1 error: {"__type":type,"message":message}. */
void ep_reply_error(ep_reply *reply, unsigned status, const char *type, const char *message);

/* Replaces reply's body with a copy of body (len bytes). */
void ep_reply_set_body(ep_reply *reply, unsigned status, const char *body, size_t len);

/* Frees the body (the struct itself is the caller's). */
void ep_reply_clear(ep_reply *reply);

/*
 * Handles an authenticated PutEvents body. max_request_bytes bounds the sum of
 * the entries' sizes under AWS's formula (equal to the limit is accepted).
 */
void ep_api_put_events(ep_state *st, size_t max_request_bytes, const char *access_key_id,
                       const char *body, size_t len, ep_reply *reply);

#endif
