/*
 * credentials.c - credential providers.
 *
 * A provider is a kind plus an operations table, so a refreshing chain
 * (profiles, web identity, container, IMDSv2) can be added as another kind
 * without touching callers. Secrets are wiped before their memory is freed.
 */
#include "aws/credentials.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

typedef enum credentials_kind {
    CREDENTIALS_STATIC = 1,
} credentials_kind;

typedef struct credentials_ops {
    /* Copies the current credentials into out. */
    or_status (*get)(credentials_provider *p, aws_credentials *out, or_error *err);
    /* Releases the kind-specific state (not the provider itself). */
    void (*destroy)(credentials_provider *p);
} credentials_ops;

struct credentials_provider {
    credentials_kind kind;
    const credentials_ops *ops;
    char description[64];
    aws_credentials fixed; /* CREDENTIALS_STATIC */
};

/* Frees a string after overwriting it, so no copy of a secret lingers. */
static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void aws_credentials_clear(aws_credentials *c)
{
    if (c == NULL)
        return;
    wipe_free(c->access_key_id);
    wipe_free(c->secret_access_key);
    wipe_free(c->session_token);
    c->access_key_id = NULL;
    c->secret_access_key = NULL;
    c->session_token = NULL;
}

static or_status static_get(credentials_provider *p, aws_credentials *out, or_error *err)
{
    (void)err;
    out->access_key_id = xstrdup(p->fixed.access_key_id);
    out->secret_access_key = xstrdup(p->fixed.secret_access_key);
    out->session_token = p->fixed.session_token != NULL ? xstrdup(p->fixed.session_token) : NULL;
    return OR_OK;
}

static void static_destroy(credentials_provider *p)
{
    aws_credentials_clear(&p->fixed);
}

static const credentials_ops static_ops = {
    .get = static_get,
    .destroy = static_destroy,
};

/* "AKIA****WXYZ": the first and last 4 characters, or only stars if short. */
static void describe_key_id(const char *akid, char *out, size_t outlen)
{
    size_t n = strlen(akid);
    if (n < 12)
        snprintf(out, outlen, "****");
    else
        snprintf(out, outlen, "%.4s****%.4s", akid, akid + n - 4);
}

credentials_provider *credentials_provider_new_static(const char *access_key_id,
                                                      const char *secret_access_key,
                                                      const char *session_token)
{
    char masked[16];

    if (access_key_id == NULL || access_key_id[0] == '\0' || secret_access_key == NULL ||
        secret_access_key[0] == '\0')
        return NULL;
    credentials_provider *p = xcalloc(1, sizeof(*p));
    p->kind = CREDENTIALS_STATIC;
    p->ops = &static_ops;
    p->fixed.access_key_id = xstrdup(access_key_id);
    p->fixed.secret_access_key = xstrdup(secret_access_key);
    p->fixed.session_token =
        (session_token != NULL && session_token[0] != '\0') ? xstrdup(session_token) : NULL;
    describe_key_id(access_key_id, masked, sizeof(masked));
    snprintf(p->description, sizeof(p->description), "static keys %s", masked);
    return p;
}

or_status credentials_provider_get(credentials_provider *p, aws_credentials *out, or_error *err)
{
    if (out == NULL) {
        or_error_set(err, "credentials: no output");
        return OR_ERR;
    }
    out->access_key_id = NULL;
    out->secret_access_key = NULL;
    out->session_token = NULL;
    if (p == NULL) {
        or_error_set(err, "credentials: no provider configured");
        return OR_ERR;
    }
    if (p->ops->get(p, out, err) != OR_OK) {
        aws_credentials_clear(out);
        or_error_prefix(err, "credentials (%s)", p->description);
        return OR_ERR;
    }
    return OR_OK;
}

const char *credentials_provider_describe(const credentials_provider *p)
{
    return p != NULL ? p->description : "no credentials";
}

void credentials_provider_free(credentials_provider *p)
{
    if (p == NULL)
        return;
    p->ops->destroy(p);
    OPENSSL_cleanse(p, sizeof(*p));
    free(p);
}
