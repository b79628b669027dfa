#include "endpoint_ctl.h"

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/strbuf.h"
#include "proc.h"

#define ENDPOINT_START_TIMEOUT_MS 10000
#define ENDPOINT_STOP_TIMEOUT_MS  10000
#define ENDPOINT_HTTP_TIMEOUT_MS  10000L
#define ENDPOINT_RESPONSE_MAX     (256u * 1024u * 1024u)
#define ENDPOINT_MAX_ARGS         64

struct endpoint {
    proc *child;
    int port;
    bool stopped;
    int exit_status;
    char dir[64];
    char port_path[128];
    char record_path[128];
    char log_path[128];
    char url[64];
};

static size_t endpoint_write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    strbuf *sb = userdata;
    size_t n = size * nmemb;
    if (strbuf_append(sb, data, n) != OR_OK)
        return 0;
    return n;
}

/* One request to the endpoint; returns the HTTP status, fills resp (initialised by caller). */
static long endpoint_http(endpoint *ep, const char *method, const char *path, const char *body,
                          strbuf *resp)
{
    char url[256];
    long status = 0;
    struct curl_slist *hdrs = NULL;
    CURL *curl = curl_easy_init();
    ck_assert_msg(curl != NULL, "endpoint: curl_easy_init failed");
    snprintf(url, sizeof(url), "%s%s", ep->url, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ENDPOINT_HTTP_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, endpoint_write_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
    if (strcmp(method, "POST") == 0) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK)
        ck_abort_msg("endpoint: %s %s failed: %s", method, url, curl_easy_strerror(rc));
    return status;
}

/* GETs path and parses the JSON reply; fails the test unless it is 200 + JSON. */
static json_object *endpoint_get_json(endpoint *ep, const char *path)
{
    strbuf resp;
    strbuf_init(&resp, ENDPOINT_RESPONSE_MAX);
    long status = endpoint_http(ep, "GET", path, NULL, &resp);
    json_object *o = json_tokener_parse(strbuf_cstr(&resp));
    if (status != 200 || o == NULL)
        ck_abort_msg("endpoint: GET %s answered %ld: %.300s", path, status, strbuf_cstr(&resp));
    strbuf_free(&resp);
    return o;
}

endpoint *endpoint_start(const char *akid, const char *secret, const char *region)
{
    return endpoint_start_args(akid, secret, region, NULL);
}

endpoint *endpoint_start_args(const char *akid, const char *secret, const char *region,
                              const char *const extra_args[])
{
    const char *argv[ENDPOINT_MAX_ARGS];
    size_t argc = 0;
    char cred[512];

    curl_global_init(CURL_GLOBAL_DEFAULT);
    endpoint *ep = xcalloc(1, sizeof(*ep));
    snprintf(ep->dir, sizeof(ep->dir), "/tmp/or-endpoint.XXXXXX");
    ck_assert_msg(mkdtemp(ep->dir) != NULL, "endpoint: mkdtemp: %s", strerror(errno));
    snprintf(ep->port_path, sizeof(ep->port_path), "%s/port", ep->dir);
    snprintf(ep->record_path, sizeof(ep->record_path), "%s/records.jsonl", ep->dir);
    snprintf(ep->log_path, sizeof(ep->log_path), "%s/endpoint.log", ep->dir);
    int n = snprintf(cred, sizeof(cred), "%s:%s", akid, secret);
    ck_assert_msg(n > 0 && (size_t)n < sizeof(cred), "endpoint: credentials too long");

    argv[argc++] = OUTBOX_ENDPOINT_BIN;
    argv[argc++] = "--port";
    argv[argc++] = "0";
    argv[argc++] = "--bind";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "--port-file";
    argv[argc++] = ep->port_path;
    argv[argc++] = "--record";
    argv[argc++] = ep->record_path;
    argv[argc++] = "--credentials";
    argv[argc++] = cred;
    if (region != NULL) {
        argv[argc++] = "--region";
        argv[argc++] = region;
    }
    for (size_t i = 0; extra_args && extra_args[i]; i++) {
        ck_assert_msg(argc < ENDPOINT_MAX_ARGS - 1, "endpoint: too many extra arguments");
        argv[argc++] = extra_args[i];
    }
    argv[argc] = NULL;

    ep->child = proc_spawn(argv, NULL, ep->log_path);
    ck_assert_msg(ep->child != NULL, "endpoint: cannot run %s", OUTBOX_ENDPOINT_BIN);

    int64_t deadline = clock_mono_ms() + ENDPOINT_START_TIMEOUT_MS;
    while (ep->port <= 0) {
        FILE *f = fopen(ep->port_path, "r");
        if (f != NULL) {
            char line[32] = "";
            if (fgets(line, sizeof(line), f) != NULL) {
                char *end = NULL;
                long p = strtol(line, &end, 10);
                if (end != line && (*end == '\n' || *end == '\0') && p > 0 && p < 65536)
                    ep->port = (int)p;
            }
            fclose(f);
            if (ep->port > 0)
                break;
        }
        int st = 0;
        if (proc_wait(ep->child, 0, &st)) {
            endpoint_dump_log(ep);
            ck_abort_msg("endpoint: %s exited with status %d before listening", OUTBOX_ENDPOINT_BIN,
                         st);
        }
        if (clock_mono_ms() > deadline) {
            endpoint_dump_log(ep);
            ck_abort_msg("endpoint: no port file after %d ms", ENDPOINT_START_TIMEOUT_MS);
        }
        clock_sleep_ms(20);
    }
    snprintf(ep->url, sizeof(ep->url), "http://127.0.0.1:%d", ep->port);
    return ep;
}

const char *endpoint_url(const endpoint *ep)
{
    return ep->url;
}

int endpoint_port(const endpoint *ep)
{
    return ep->port;
}

const char *endpoint_record_path(const endpoint *ep)
{
    return ep->record_path;
}

const char *endpoint_log_path(const endpoint *ep)
{
    return ep->log_path;
}

void endpoint_control(endpoint *ep, const char *json)
{
    strbuf resp;
    strbuf_init(&resp, 1024 * 1024);
    long status = endpoint_http(ep, "POST", "/_control", json, &resp);
    if (status != 200)
        ck_abort_msg("endpoint: control %s rejected (%ld): %.300s", json, status,
                     strbuf_cstr(&resp));
    strbuf_free(&resp);
}

void endpoint_reset_faults(endpoint *ep)
{
    endpoint_control(ep, "{\"reset\":true}");
}

json_object *endpoint_records(endpoint *ep)
{
    return endpoint_records_since(ep, 0);
}

json_object *endpoint_records_since(endpoint *ep, size_t since)
{
    char path[64];
    snprintf(path, sizeof(path), "/_records?since=%zu", since);
    json_object *arr = endpoint_get_json(ep, path);
    ck_assert_msg(json_object_is_type(arr, json_type_array), "endpoint: /_records is not an array");
    return arr;
}

size_t endpoint_record_count(endpoint *ep)
{
    json_object *arr = endpoint_records(ep);
    size_t n = json_object_array_length(arr);
    json_object_put(arr);
    return n;
}

void endpoint_clear_records(endpoint *ep)
{
    strbuf resp;
    strbuf_init(&resp, 4096);
    long status = endpoint_http(ep, "DELETE", "/_records", NULL, &resp);
    ck_assert_msg(status == 200, "endpoint: DELETE /_records answered %ld", status);
    strbuf_free(&resp);
}

static long long endpoint_counter(json_object *o, const char *name)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_int))
        ck_abort_msg("endpoint: /_stats has no integer %s", name);
    return (long long)json_object_get_int64(v);
}

void endpoint_stats(endpoint *ep, endpoint_counters *out)
{
    json_object *o = endpoint_get_json(ep, "/_stats");
    out->requests = endpoint_counter(o, "requests");
    out->accepted_entries = endpoint_counter(o, "accepted_entries");
    out->failed_entries = endpoint_counter(o, "failed_entries");
    out->signature_failures = endpoint_counter(o, "signature_failures");
    out->faults_injected = endpoint_counter(o, "faults_injected");
    json_object_put(o);
}

void endpoint_dump_log(const endpoint *ep)
{
    FILE *f = fopen(ep->log_path, "r");
    if (f == NULL)
        return;
    char line[2048];
    fprintf(stderr, "---- %s ----\n", ep->log_path);
    while (fgets(line, sizeof(line), f) != NULL)
        fputs(line, stderr);
    fprintf(stderr, "---- end of endpoint log ----\n");
    fclose(f);
}

int endpoint_stop(endpoint *ep)
{
    if (ep->stopped)
        return ep->exit_status;
    int st = -1;
    proc_signal(ep->child, SIGTERM);
    if (!proc_wait(ep->child, ENDPOINT_STOP_TIMEOUT_MS, &st)) {
        fprintf(stderr, "endpoint: no exit %d ms after SIGTERM, killing it\n",
                ENDPOINT_STOP_TIMEOUT_MS);
        st = proc_kill_wait(ep->child);
    }
    ep->stopped = true;
    ep->exit_status = st;
    return st;
}

/* Removes the endpoint's directory (only the files it creates there). */
static void endpoint_remove_dir(const endpoint *ep)
{
    DIR *d = opendir(ep->dir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char path[512];
            snprintf(path, sizeof(path), "%s/%s", ep->dir, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(ep->dir);
}

void endpoint_free(endpoint *ep)
{
    if (ep == NULL)
        return;
    if (ep->child != NULL)
        endpoint_stop(ep);
    proc_free(ep->child);
    const char *keep = getenv("OUTBOX_KEEP_TMP");
    if (keep != NULL && keep[0] != '\0' && strcmp(keep, "0") != 0)
        fprintf(stderr, "endpoint: kept %s\n", ep->dir);
    else
        endpoint_remove_dir(ep);
    free(ep);
}
