/*
 * putevents-endpoint - a local stand-in for EventBridge PutEvents, for tests.
 *
 * Verifies SigV4 like AWS, validates bodies like AWS, records accepted
 * entries and injects faults on request (see docs/test-endpoint.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "ep_api.h"
#include "ep_state.h"
#include "ep_verify.h"

#define EP_MAX_CREDENTIALS     16
#define EP_MAX_HEADERS         128
#define EP_MAX_QUERY_ARGS      64
#define EP_DEFAULT_MAX_BODY    (2u * 1024u * 1024u)
#define EP_DEFAULT_MAX_REQUEST 262144u
#define EP_CT_API              "application/x-amz-json-1.1"
#define EP_CT_JSON             "application/json"

typedef struct ep_server {
    ep_state *state;
    ep_credential credentials[EP_MAX_CREDENTIALS];
    size_t n_credentials;
    const char *region;
    size_t max_request_bytes;
    size_t max_body_bytes;
    atomic_int stopping;
} ep_server;

/* Per-request context: the body as it arrives. */
typedef struct ep_conn {
    strbuf body;
    bool too_large;
} ep_conn;

typedef struct ep_header_set {
    ep_header items[EP_MAX_HEADERS];
    size_t n;
    bool overflow;
} ep_header_set;

typedef struct ep_query_arg {
    char *key;
    char *value;
} ep_query_arg;

typedef struct ep_query_set {
    ep_query_arg items[EP_MAX_QUERY_ARGS];
    size_t n;
    bool overflow;
} ep_query_set;

static void ep_usage(FILE *f)
{
    fprintf(f, "usage: putevents-endpoint --port N [--bind 127.0.0.1] --credentials AKID:SECRET\n"
               "         [--credentials ...] [--region REGION] [--max-request-bytes N]\n"
               "         [--max-body-bytes N] [--record FILE] [--port-file FILE] [--verbose]\n"
               "Runs until SIGTERM or SIGINT. See docs/test-endpoint.md.\n");
}

static bool ep_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static enum MHD_Result ep_collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value)
{
    ep_header_set *hs = cls;
    if (hs->n == EP_MAX_HEADERS) {
        hs->overflow = true;
        return MHD_NO;
    }
    hs->items[hs->n].name = key;
    hs->items[hs->n].value = value ? value : "";
    hs->n++;
    return MHD_YES;
}

static enum MHD_Result ep_collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                        const char *value)
{
    ep_query_set *qs = cls;
    if (qs->n == EP_MAX_QUERY_ARGS) {
        qs->overflow = true;
        return MHD_NO;
    }
    qs->items[qs->n].key = (char *)key;
    qs->items[qs->n].value = (char *)(value ? value : "");
    qs->n++;
    return MHD_YES;
}

/* SigV4 URI encoding: unreserved characters stay, everything else is %XX. */
static or_status ep_uri_encode(strbuf *out, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
        or_status st = plain ? strbuf_putc(out, (char)c)
                             : strbuf_printf(out, "%%%c%c", hex[c >> 4], hex[c & 15]);
        if (st != OR_OK)
            return OR_ERR;
    }
    return OR_OK;
}

static int ep_cmp_query(const void *a, const void *b)
{
    const char *const *x = a;
    const char *const *y = b;
    return strcmp(*x, *y);
}

/* Canonical query string from the decoded arguments MHD parsed. */
static or_status ep_canonical_query(struct MHD_Connection *conn, strbuf *out)
{
    ep_query_set qs = {.n = 0};
    char *pairs[EP_MAX_QUERY_ARGS];
    size_t n_pairs = 0;
    or_status rc = OR_ERR;

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, ep_collect_query, &qs);
    if (qs.overflow)
        return OR_ERR;
    for (size_t i = 0; i < qs.n; i++) {
        strbuf sb;
        strbuf_init(&sb, 8192);
        if (ep_uri_encode(&sb, qs.items[i].key, false) != OR_OK || strbuf_putc(&sb, '=') != OR_OK ||
            ep_uri_encode(&sb, qs.items[i].value, false) != OR_OK) {
            strbuf_free(&sb);
            goto out;
        }
        pairs[n_pairs++] = strbuf_detach(&sb, NULL);
    }
    /* sorting "key=value" strings orders by key, then value ('=' < unreserved chars) */
    qsort(pairs, n_pairs, sizeof(pairs[0]), ep_cmp_query);
    for (size_t i = 0; i < n_pairs; i++)
        if ((i > 0 && strbuf_putc(out, '&') != OR_OK) || strbuf_puts(out, pairs[i]) != OR_OK)
            goto out;
    rc = OR_OK;
out:
    for (size_t i = 0; i < n_pairs; i++)
        free(pairs[i]);
    return rc;
}

static enum MHD_Result ep_send(struct MHD_Connection *conn, const ep_reply *r,
                               const char *content_type, const char *request_id)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->body_len, r->body ? r->body : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", content_type);
    if (request_id != NULL)
        MHD_add_response_header(resp, "x-amzn-RequestId", request_id);
    if (r->error_type[0] != '\0')
        MHD_add_response_header(resp, "X-Amzn-ErrorType", r->error_type);
    enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void ep_sleep(ep_server *srv, long ms)
{
    int64_t until = clock_mono_ms() + ms;
    while (!atomic_load(&srv->stopping)) {
        int64_t left = until - clock_mono_ms();
        if (left <= 0)
            break;
        clock_sleep_ms(left < 50 ? left : 50);
    }
}

static bool ep_content_type_ok(const char *ct)
{
    size_t n = strlen(EP_CT_API);
    if (ct == NULL || strncasecmp(ct, EP_CT_API, n) != 0)
        return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* POST /: the PutEvents API, with request-level faults applied first. */
static enum MHD_Result ep_handle_api(ep_server *srv, struct MHD_Connection *conn, const char *url,
                                     const char *method, ep_conn *ctx)
{
    ep_reply reply = {.status = 500};
    ep_request_fault fault;
    ep_header_set hs = {.n = 0};
    strbuf path, query;
    char request_id[37];
    enum MHD_Result ret = MHD_NO;

    strbuf_init(&path, 8192);
    strbuf_init(&query, 65536);
    ep_state_new_id(srv->state, request_id);
    ep_state_begin_request(srv->state, &fault);
    if (fault.delay_ms > 0)
        ep_sleep(srv, fault.delay_ms);

    switch (fault.kind) {
    case EP_FAULT_DROP:
        log_info("request %s: injected fault: dropping the connection", request_id);
        goto out; /* MHD_NO closes the connection without a reply */
    case EP_FAULT_HTTP:
        log_info("request %s: injected fault: http %u %s", request_id, fault.status,
                 fault.error_type);
        ep_reply_error(&reply, fault.status, fault.error_type, "injected fault");
        if (!fault.error_header)
            reply.error_type[0] = '\0';
        goto send;
    case EP_FAULT_GARBAGE:
        log_info("request %s: injected fault: garbage body", request_id);
        ep_reply_set_body(&reply, 200, fault.garbage_body, strlen(fault.garbage_body));
        goto send;
    case EP_FAULT_NONE:
        break;
    }

    if (ctx->too_large) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body exceeds %zu bytes", srv->max_body_bytes);
        ep_reply_error(&reply, 413, "RequestEntityTooLargeException", msg);
        goto send;
    }

    MHD_get_connection_values(conn, MHD_HEADER_KIND, ep_collect_header, &hs);
    if (hs.overflow) {
        ep_reply_error(&reply, 400, "ValidationException", "too many request headers");
        goto send;
    }
    if (ep_uri_encode(&path, url, true) != OR_OK || ep_canonical_query(conn, &query) != OR_OK) {
        ep_reply_error(&reply, 400, "ValidationException", "request path or query too long");
        goto send;
    }
    ep_verify_input in = {
        .method = method,
        .path = strbuf_cstr(&path),
        .query = strbuf_cstr(&query),
        .headers = hs.items,
        .n_headers = hs.n,
        .body = strbuf_cstr(&ctx->body),
        .body_len = ctx->body.len,
        .now = time(NULL),
    };
    ep_verify_config cfg = {
        .credentials = srv->credentials,
        .n_credentials = srv->n_credentials,
        .region = srv->region,
        .service = "events",
        .max_skew_s = 15 * 60,
    };
    ep_verdict verdict;
    if (!ep_verify_request(&in, &cfg, &verdict)) {
        ep_state_count_signature_failure(srv->state);
        log_info("request %s: rejected: %s key=%s %s", request_id, verdict.error_type,
                 verdict.access_key_id[0] ? verdict.access_key_id : "-", verdict.message);
        ep_reply_error(&reply, verdict.status, verdict.error_type, verdict.message);
        goto send;
    }

    const char *target = ep_header_get(hs.items, hs.n, "x-amz-target");
    if (target == NULL || strcmp(target, "AWSEvents.PutEvents") != 0) {
        log_info("request %s: rejected: unknown operation %s", request_id,
                 target ? target : "(no X-Amz-Target)");
        ep_reply_error(&reply, 400, "UnknownOperationException", "unknown operation");
        goto send;
    }
    const char *ct = ep_header_get(hs.items, hs.n, "content-type");
    if (!ep_content_type_ok(ct)) {
        log_info("request %s: rejected: content type %s", request_id, ct ? ct : "(none)");
        ep_reply_error(&reply, 400, "SerializationException",
                       "content type must be application/x-amz-json-1.1");
        goto send;
    }
    ep_api_put_events(srv->state, srv->max_request_bytes, verdict.access_key_id,
                      strbuf_cstr(&ctx->body), ctx->body.len, &reply);
    log_debug("request %s: status %u", request_id, reply.status);
send:
    ret = ep_send(conn, &reply, EP_CT_API, request_id);
out:
    free(fault.garbage_body);
    ep_reply_clear(&reply);
    strbuf_free(&path);
    strbuf_free(&query);
    return ret;
}

/* The unsigned test-only routes: /_control, /_records, /_stats, /_health. */
static enum MHD_Result ep_handle_control(ep_server *srv, struct MHD_Connection *conn,
                                         const char *url, const char *method, ep_conn *ctx)
{
    ep_reply reply = {.status = 200};
    char *json = NULL;
    enum MHD_Result ret;

    if (strcmp(url, "/_control") == 0 && strcmp(method, "POST") == 0) {
        or_error err = {{0}};
        if (ctx->too_large) {
            ep_reply_error(&reply, 413, "RequestEntityTooLargeException", "control body too large");
        } else if (ep_state_control(srv->state, strbuf_cstr(&ctx->body), ctx->body.len, &json,
                                    &err) != OR_OK) {
            ep_reply_error(&reply, 400, "ValidationException", err.msg);
            reply.error_type[0] = '\0';
        } else {
            log_info("control: %s", json);
        }
    } else if (strcmp(url, "/_records") == 0 && strcmp(method, "GET") == 0) {
        long since = 0;
        const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
        if (s != NULL && !ep_parse_long(s, 0, LONG_MAX, &since))
            ep_reply_error(&reply, 400, "ValidationException", "since must be an integer >= 0");
        else
            json = ep_state_records_json(srv->state, (size_t)since);
    } else if (strcmp(url, "/_records") == 0 && strcmp(method, "DELETE") == 0) {
        ep_state_clear_records(srv->state);
        json = xstrdup("{\"cleared\":true}");
    } else if (strcmp(url, "/_stats") == 0 && strcmp(method, "GET") == 0) {
        json = ep_state_stats_json(srv->state);
    } else if (strcmp(url, "/_health") == 0 && strcmp(method, "GET") == 0) {
        json = xstrdup("{\"ok\":true}");
    } else {
        ep_reply_error(&reply, 404, "UnknownOperationException", "no such route");
    }
    if (json != NULL) {
        ep_reply_set_body(&reply, 200, json, strlen(json));
        free(json);
    }
    ret = ep_send(conn, &reply, EP_CT_JSON, NULL);
    ep_reply_clear(&reply);
    return ret;
}

static enum MHD_Result ep_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    ep_server *srv = cls;
    ep_conn *ctx = *con_cls;

    if (ctx == NULL) {
        ctx = xcalloc(1, sizeof(*ctx));
        strbuf_init(&ctx->body, srv->max_body_bytes);
        *con_cls = ctx;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!ctx->too_large && strbuf_append(&ctx->body, upload_data, *upload_data_size) != OR_OK) {
            ctx->too_large = true;
            strbuf_free(&ctx->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/") == 0 && strcmp(method, "POST") == 0)
        return ep_handle_api(srv, conn, url, method, ctx);
    return ep_handle_control(srv, conn, url, method, ctx);
}

static void ep_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    ep_conn *ctx = *con_cls;
    if (ctx == NULL)
        return;
    strbuf_free(&ctx->body);
    free(ctx);
    *con_cls = NULL;
}

static or_status ep_write_port_file(const char *path, unsigned port, or_error *err)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        or_error_set(err, "port file path %s is too long", path);
        return OR_ERR;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        or_error_set(err, "cannot create %s: %s", tmp, strerror(errno));
        return OR_ERR;
    }
    bool ok = fprintf(f, "%u\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        or_error_set(err, "cannot write port file %s: %s", path, strerror(errno));
        unlink(tmp);
        return OR_ERR;
    }
    return OR_OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"credentials", required_argument, NULL, 'c'},
        {"region", required_argument, NULL, 'r'},
        {"max-request-bytes", required_argument, NULL, 'm'},
        {"max-body-bytes", required_argument, NULL, 'B'},
        {"record", required_argument, NULL, 'R'},
        {"port-file", required_argument, NULL, 'P'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static ep_server srv;
    char *cred_copies[EP_MAX_CREDENTIALS] = {NULL};
    long port = -1, v = 0;
    const char *bind_addr = "127.0.0.1", *record_path = NULL, *port_file = NULL;
    FILE *record_file = NULL;
    struct MHD_Daemon *daemon = NULL;
    int rc = 2, opt;
    or_error err = {{0}};

    srv.max_request_bytes = EP_DEFAULT_MAX_REQUEST;
    srv.max_body_bytes = EP_DEFAULT_MAX_BODY;
    log_set_tag("component=putevents-endpoint");
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            if (!ep_parse_long(optarg, 0, 65535, &port)) {
                log_error("invalid --port %s: must be 0..65535", optarg);
                goto out;
            }
            break;
        case 'b':
            bind_addr = optarg;
            break;
        case 'c': {
            char *colon = strchr(optarg, ':');
            if (colon == NULL || colon == optarg || colon[1] == '\0') {
                log_error("invalid --credentials: expected AKID:SECRET");
                goto out;
            }
            if (srv.n_credentials == EP_MAX_CREDENTIALS) {
                log_error("too many --credentials (at most %d)", EP_MAX_CREDENTIALS);
                goto out;
            }
            char *copy = xstrdup(optarg);
            copy[colon - optarg] = '\0';
            cred_copies[srv.n_credentials] = copy;
            srv.credentials[srv.n_credentials].access_key_id = copy;
            srv.credentials[srv.n_credentials].secret = copy + (colon - optarg) + 1;
            srv.n_credentials++;
            break;
        }
        case 'r':
            srv.region = optarg;
            break;
        case 'm':
            if (!ep_parse_long(optarg, 1, 64L * 1024 * 1024, &v)) {
                log_error("invalid --max-request-bytes %s", optarg);
                goto out;
            }
            srv.max_request_bytes = (size_t)v;
            break;
        case 'B':
            if (!ep_parse_long(optarg, 1024, 256L * 1024 * 1024, &v)) {
                log_error("invalid --max-body-bytes %s", optarg);
                goto out;
            }
            srv.max_body_bytes = (size_t)v;
            break;
        case 'R':
            record_path = optarg;
            break;
        case 'P':
            port_file = optarg;
            break;
        case 'v':
            log_set_level(LOG_DEBUG);
            break;
        case 'h':
            ep_usage(stdout);
            rc = 0;
            goto out;
        default:
            ep_usage(stderr);
            goto out;
        }
    }
    if (optind != argc || port < 0 || srv.n_credentials == 0) {
        ep_usage(stderr);
        goto out;
    }

    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, bind_addr, &sin.sin_addr) != 1) {
        log_error("invalid --bind %s: expected an IPv4 address", bind_addr);
        goto out;
    }
    if (record_path != NULL && (record_file = fopen(record_path, "a")) == NULL) {
        log_error("cannot open record file %s: %s", record_path, strerror(errno));
        rc = 1;
        goto out;
    }
    srv.state = ep_state_new(record_file);

    /* Block the stop signals in every thread; main waits for them with sigwait. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, ep_handler, &srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
        MHD_OPTION_NOTIFY_COMPLETED, ep_completed, &srv, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)120, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)4096, MHD_OPTION_END);
    if (daemon == NULL) {
        log_error("cannot listen on %s:%ld", bind_addr, port);
        rc = 1;
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info ? info->port : (unsigned)port;
    if (port_file != NULL && ep_write_port_file(port_file, bound, &err) != OR_OK) {
        log_error("%s", err.msg);
        rc = 1;
        goto out;
    }
    log_info("listening on http://%s:%u region=%s credentials=%zu max_request_bytes=%zu", bind_addr,
             bound, srv.region ? srv.region : "any", srv.n_credentials, srv.max_request_bytes);

    int sig = 0;
    while (sigwait(&stop_set, &sig) != 0)
        ;
    log_info("stopping on signal %d", sig);
    atomic_store(&srv.stopping, 1);
    rc = 0;
out:
    if (daemon != NULL)
        MHD_stop_daemon(daemon);
    ep_state_free(srv.state);
    if (record_file != NULL)
        fclose(record_file);
    for (size_t i = 0; i < EP_MAX_CREDENTIALS; i++)
        free(cred_copies[i]);
    return rc;
}
