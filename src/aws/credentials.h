/*
 * credentials.h - where AWS credentials come from.
 *
 * Today: static keys (from the environment or config). The provider is
 * opaque so a later issue can add the full chain (profiles, web identity,
 * container, IMDSv2) with background refresh without changing callers.
 */
#ifndef OUTBOX_AWS_CREDENTIALS_H
#define OUTBOX_AWS_CREDENTIALS_H

#include "common/error.h"

typedef struct aws_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL when none */
} aws_credentials;

typedef struct credentials_provider credentials_provider;

/*
 * A provider that always returns these keys (copied). session_token may be
 * NULL or "" (none). Returns NULL if the key id or the secret is NULL or empty.
 */
credentials_provider *credentials_provider_new_static(const char *access_key_id,
                                                      const char *secret_access_key,
                                                      const char *session_token);

/* Fills out with a copy of the current credentials (free with aws_credentials_clear). */
or_status credentials_provider_get(credentials_provider *p, aws_credentials *out,
                                   or_error *err) OR_MUST_CHECK;

/*
 * Short description for logs: "static keys AKIA****WXYZ" (never the secret;
 * key ids shorter than 12 characters are shown as "****").
 */
const char *credentials_provider_describe(const credentials_provider *p);

void credentials_provider_free(credentials_provider *p);

/* Frees and zeroes the strings (the secret is wiped before free). */
void aws_credentials_clear(aws_credentials *c);

#endif
