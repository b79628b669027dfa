#include "relay/relay.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "db/conn.h"
#include "db/outbox.h"
#include "eventbridge/client.h"
#include "relay/backoff.h"
#include "relay/mapping.h"
#include "relay/send_rate.h"

/* A Detail larger than this cannot be sent under any configuration. */
#define RELAY_MAX_DETAIL_BYTES (1024 * 1024 + 1024)
/* Repeated warnings of the same kind are summarised at most this often. */
#define RELAY_LOG_REPEAT_MS 30000
/* Throughput summaries at info level. */
#define RELAY_SUMMARY_MS 10000

struct relay {
    const relay_config *cfg;
    db_conn *db;
    credentials_provider *creds;
    eb_client *eb;
    mapping_options map;
    outbox_order order;
    send_rate rate;
    relay_stats stats;
    char db_label[256]; /* conninfo with the password redacted */

    /* per-batch scratch, grown to the largest batch */
    size_t cap;
    strbuf *details;
    eb_entry *entries;
    eb_result *results;
    size_t *send_index; /* entries[k] belongs to row send_index[k] */
    outbox_outcome *outcomes;
    char (*codes)[80];
    char (*messages)[300];

    /* reconnect state */
    int connect_failures;
    int64_t last_connect_log_ms;

    /* consecutive batches in which nothing was accepted (endpoint down) */
    int failed_batches;

    /* rate-limited warnings */
    char last_warn_key[96];
    int64_t last_warn_ms;
    unsigned long long warn_suppressed;

    int64_t summary_start_ms;
    unsigned long long summary_published;
    unsigned long long summary_failed;
};

relay *relay_new(const relay_config *cfg, or_error *err)
{
    relay *r = xcalloc(1, sizeof(*r));
    r->cfg = cfg;
    r->map.source = cfg->event_source;
    r->map.event_bus_name = cfg->event_bus_name;
    log_redact_conninfo(cfg->database_url ? cfg->database_url : "(PG* environment)", r->db_label,
                        sizeof(r->db_label));

    if (cfg->aws_access_key_id == NULL || cfg->aws_secret_access_key == NULL) {
        or_error_set(err, "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                          "(or aws.access_key_id and aws.secret_access_key in the config file)");
        goto fail;
    }
    r->creds = credentials_provider_new_static(cfg->aws_access_key_id, cfg->aws_secret_access_key,
                                               cfg->aws_session_token);
    if (r->creds == NULL) {
        or_error_set(err, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must not be empty");
        goto fail;
    }

    eb_client_options eo = {
        .endpoint_url = cfg->endpoint_url,
        .region = cfg->aws_region,
        .credentials = r->creds,
        .max_entries_per_request = (size_t)cfg->max_entries_per_request,
        .max_request_bytes = (size_t)cfg->max_request_bytes,
        .max_in_flight = (size_t)cfg->max_in_flight,
        .timeout_ms = cfg->http_timeout_ms,
        .connect_timeout_ms = cfg->connect_timeout_ms,
    };
    r->eb = eb_client_new(&eo, err);
    if (r->eb == NULL)
        goto fail;

    db_conn_options dbo = {
        .conninfo = cfg->database_url,
        .application_name = "outbox-relay",
        .connect_timeout_s = 5,
        .claim_timeout_ms = cfg->claim_timeout_ms,
        .listen = true,
    };
    r->db = db_conn_new(&dbo);
    r->order = strcmp(cfg->ordering, "none") == 0 ? OUTBOX_ORDER_NONE : OUTBOX_ORDER_PER_USER;
    send_rate_init(&r->rate);
    return r;

fail:
    relay_free(r);
    return NULL;
}

static void free_scratch(relay *r)
{
    for (size_t i = 0; i < r->cap; i++)
        strbuf_free(&r->details[i]);
    free(r->details);
    free(r->entries);
    free(r->results);
    free(r->send_index);
    free(r->outcomes);
    free(r->codes);
    free(r->messages);
    r->details = NULL;
    r->cap = 0;
}

void relay_free(relay *r)
{
    if (r == NULL)
        return;
    db_conn_free(r->db);
    eb_client_free(r->eb);
    credentials_provider_free(r->creds);
    free_scratch(r);
    free(r);
}

void relay_get_stats(const relay *r, relay_stats *out)
{
    *out = r->stats;
}

static void ensure_capacity(relay *r, size_t n)
{
    if (n <= r->cap)
        return;
    r->details = xrealloc(r->details, n * sizeof(*r->details));
    for (size_t i = r->cap; i < n; i++)
        strbuf_init(&r->details[i], RELAY_MAX_DETAIL_BYTES);
    r->entries = xrealloc(r->entries, n * sizeof(*r->entries));
    r->results = xrealloc(r->results, n * sizeof(*r->results));
    r->send_index = xrealloc(r->send_index, n * sizeof(*r->send_index));
    r->outcomes = xrealloc(r->outcomes, n * sizeof(*r->outcomes));
    r->codes = xrealloc(r->codes, n * sizeof(*r->codes));
    r->messages = xrealloc(r->messages, n * sizeof(*r->messages));
    r->cap = n;
}

/* Copies src into dst[size], truncating; always NUL-terminates. */
static void copy_trunc(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Sleeps up to ms, returning early when a stop is requested. */
static void interruptible_sleep(volatile sig_atomic_t *stop, int wake_fd, int64_t ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    while (!*stop) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0)
            return;
        if (wake_fd >= 0) {
            struct pollfd pfd = {.fd = wake_fd, .events = POLLIN};
            (void)poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        } else {
            clock_sleep_ms(left > 1000 ? 1000 : left);
        }
    }
}

/*
 * Logs a warning unless the same kind was logged within RELAY_LOG_REPEAT_MS;
 * repeats are counted and reported with the next line that is printed.
 */
static void warn_limited(relay *r, const char *key, const char *fmt, ...) OR_PRINTF(3, 4);
static void warn_limited(relay *r, const char *key, const char *fmt, ...)
{
    int64_t now = clock_mono_ms();
    if (strcmp(key, r->last_warn_key) == 0 && now - r->last_warn_ms < RELAY_LOG_REPEAT_MS) {
        r->warn_suppressed++;
        return;
    }
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r->warn_suppressed > 0)
        log_warn("%s (%llu similar warnings in the last %d s not shown)", msg, r->warn_suppressed,
                 RELAY_LOG_REPEAT_MS / 1000);
    else
        log_warn("%s", msg);
    snprintf(r->last_warn_key, sizeof(r->last_warn_key), "%s", key);
    r->last_warn_ms = now;
    r->warn_suppressed = 0;
}

static void summary_tick(relay *r, bool force)
{
    int64_t now = clock_mono_ms();
    if (r->summary_start_ms == 0)
        r->summary_start_ms = now;
    int64_t span = now - r->summary_start_ms;
    if (!force && span < RELAY_SUMMARY_MS)
        return;
    if (r->summary_published > 0 || r->summary_failed > 0)
        log_info("published %llu events in %.1f s (%llu failed attempts)", r->summary_published,
                 (double)span / 1000.0, r->summary_failed);
    r->summary_start_ms = now;
    r->summary_published = 0;
    r->summary_failed = 0;
}

/* Connects, backing off between attempts. Returns OR_ERR only when stopping. */
static or_status connect_db(relay *r, volatile sig_atomic_t *stop, int wake_fd)
{
    while (!*stop) {
        or_error e = {{0}};
        if (db_conn_connect(r->db, &e) == OR_OK) {
            if (r->connect_failures > 0) {
                log_info("database connection restored after %d failed attempts (%s)",
                         r->connect_failures, r->db_label);
                r->stats.reconnects++;
            } else {
                log_info("connected to database %s", r->db_label);
            }
            if (!db_conn_listening(r->db))
                log_warn("LISTEN is unavailable on this connection (a transaction-pooling "
                         "proxy?): polling every %d ms instead; use a direct or session-pooled "
                         "connection for millisecond wake-ups",
                         r->cfg->poll_interval_ms);
            r->connect_failures = 0;
            return OR_OK;
        }
        r->connect_failures++;
        int64_t now = clock_mono_ms();
        if (r->connect_failures == 1) {
            log_warn("cannot connect to database: %s; retrying with backoff (at most %d ms "
                     "apart)",
                     e.msg, r->cfg->reconnect_max_ms);
            r->last_connect_log_ms = now;
        } else if (now - r->last_connect_log_ms >= RELAY_LOG_REPEAT_MS) {
            log_warn("still cannot connect to database after %d attempts: %s", r->connect_failures,
                     e.msg);
            r->last_connect_log_ms = now;
        }
        interruptible_sleep(stop, wake_fd,
                            backoff_delay_ms(r->connect_failures, 100, r->cfg->reconnect_max_ms) +
                                50);
    }
    return OR_ERR;
}

/*
 * After a failed statement: a lost connection is closed so the loop
 * reconnects; an error on a live connection (e.g. the outbox table missing)
 * is logged and slows the loop down so it cannot spin.
 */
static void db_failed(relay *r, const char *what, const or_error *e, volatile sig_atomic_t *stop,
                      int wake_fd)
{
    if (!db_conn_ok(r->db)) {
        log_warn("database connection lost during %s: %s; reconnecting", what, e->msg);
        db_conn_close(r->db);
        r->connect_failures = 0;
        return;
    }
    if (strstr(e->msg, "does not exist") != NULL)
        warn_limited(r, what, "%s failed: %s. HINT: run `outbox-relay migrate` first", what,
                     e->msg);
    else
        warn_limited(r, what, "%s failed: %s", what, e->msg);
    db_conn_close(r->db);
    interruptible_sleep(stop, wake_fd, r->cfg->poll_interval_ms);
}

static void process_batch(relay *r, outbox_batch *b, int64_t claimed_at_ms,
                          volatile sig_atomic_t *stop, int wake_fd)
{
    const relay_config *cfg = r->cfg;
    ensure_capacity(r, b->n);
    size_t m = 0;

    for (size_t i = 0; i < b->n; i++) {
        or_error e = {{0}};
        r->codes[i][0] = '\0';
        r->messages[i][0] = '\0';
        if (mapping_build_entry(&b->rows[i], &r->map, &r->details[i], &r->entries[m], &e) !=
            OR_OK) {
            /* A row that cannot become an entry can never be published: dead-letter it. */
            warn_limited(r, "mapping", "%s; the row is dead-lettered", e.msg);
            r->outcomes[i].kind = OUTBOX_DEAD;
            r->outcomes[i].delay_ms = 0;
            r->outcomes[i].entry_failure = true;
            copy_trunc(r->codes[i], sizeof(r->codes[i]), "InvalidRow");
            copy_trunc(r->messages[i], sizeof(r->messages[i]), e.msg);
            continue;
        }
        r->send_index[m++] = i;
    }

    int64_t publish_start = clock_mono_ms();
    if (m > 0) {
        or_error e = {{0}};
        /* Nothing may be sent once PostgreSQL could have broken the claim (a
         * pause or a stall past relay.claim_timeout_ms): keep a second for
         * recording the outcome. */
        eb_client_set_deadline(r->eb, claimed_at_ms + cfg->claim_timeout_ms - 1000);
        send_rate_consume(&r->rate, m, publish_start);
        if (eb_client_publish(r->eb, r->entries, m, r->results, stop, cfg->shutdown_timeout_ms,
                              &e) != OR_OK)
            warn_limited(r, "publish", "publishing failed: %s", e.msg);
    }

    size_t accepted = 0, failed = 0, dead = 0, throttled = 0;
    const char *first_code = NULL;
    const char *first_message = NULL;
    for (size_t k = 0; k < m; k++) {
        size_t i = r->send_index[k];
        const eb_result *res = &r->results[k];
        if (res->outcome == EB_ACCEPTED) {
            r->outcomes[i].kind = OUTBOX_SENT;
            accepted++;
            continue;
        }
        failed++;
        if (res->throttled)
            throttled++;
        const outbox_row *row = &b->rows[i];
        r->outcomes[i].entry_failure = res->entry_level;
        /*
         * Dead-letter only what is the entry's own fault: a permanent
         * per-entry error, or too many per-entry failures. Outages,
         * throttling and credential errors retry forever with backoff.
         */
        bool is_dead =
            res->entry_level && (res->outcome == EB_PERMANENT ||
                                 (!res->throttled && row->entry_failures + 1 >= cfg->max_attempts));
        if (is_dead) {
            r->outcomes[i].kind = OUTBOX_DEAD;
            r->outcomes[i].delay_ms = 0;
            dead++;
        } else {
            r->outcomes[i].kind = OUTBOX_RETRY;
            r->outcomes[i].delay_ms =
                backoff_delay_ms(row->attempts + 1, cfg->retry_base_ms, cfg->retry_cap_ms);
        }
        copy_trunc(r->codes[i], sizeof(r->codes[i]), res->error_code);
        copy_trunc(r->messages[i], sizeof(r->messages[i]), res->error_message);
        if (first_code == NULL) {
            first_code = res->error_code;
            first_message = res->error_message;
        }
    }
    int64_t now = clock_mono_ms();
    int rate_change = send_rate_observe(&r->rate, m, throttled, now - publish_start, now);
    if (rate_change > 0)
        warn_limited(r, "rate",
                     "EventBridge is throttling: this replica slows down to %.0f "
                     "entries/s and speeds up again while it is not throttled",
                     r->rate.rate);
    else if (rate_change < 0)
        log_info("no longer throttled: send rate limit lifted");
    for (size_t i = 0; i < b->n; i++) {
        if (r->outcomes[i].kind != OUTBOX_SENT) {
            r->outcomes[i].error_code = r->codes[i];
            r->outcomes[i].error_message = r->messages[i];
        } else {
            r->outcomes[i].error_code = NULL;
            r->outcomes[i].error_message = NULL;
        }
    }
    if (failed > 0) {
        char key[96];
        snprintf(key, sizeof(key), "publish:%s", first_code);
        warn_limited(r, key,
                     "%zu of %zu entries were not accepted (first error %s: %s); %zu "
                     "dead-lettered, the rest stay pending and are retried with backoff",
                     failed, m, first_code, first_message, dead);
    }

    or_error e = {{0}};
    if (outbox_complete(r->db, b, r->outcomes, &e) != OR_OK) {
        log_warn("could not record the outcome of a batch of %zu rows: %s; the claim is "
                 "lost or released, and rows not recorded as sent will be published again "
                 "with the same event ids",
                 b->n, e.msg);
        outbox_release(r->db);
        if (!db_conn_ok(r->db))
            db_conn_close(r->db);
        return;
    }
    r->stats.batches++;
    r->stats.published += accepted;
    r->stats.failed += failed + (b->n - m);
    r->stats.dead += dead + (b->n - m);
    r->summary_published += accepted;
    r->summary_failed += failed + (b->n - m);
    log_debug("batch of %zu rows: %zu published, %zu failed, %zu unmappable", b->n, accepted,
              failed, b->n - m);

    /* Nothing got through: the endpoint is down or refusing us. Back off as
     * a whole so the relay does not walk the backlog at full speed. */
    if (m > 0 && accepted == 0 && dead < m) {
        r->failed_batches++;
        interruptible_sleep(
            stop, wake_fd,
            backoff_delay_ms(r->failed_batches, cfg->retry_base_ms,
                             cfg->retry_cap_ms < 30000 ? cfg->retry_cap_ms : 30000));
    } else {
        if (r->failed_batches > 0 && accepted > 0)
            log_info("EventBridge is accepting entries again");
        r->failed_batches = 0;
    }
}

/*
 * Nothing was ready: become the waiter (so writers notify), claim once more
 * to close the race with writers that committed meanwhile, then sleep until
 * a notification, the next retry or the poll interval.
 */
static void idle_wait(relay *r, volatile sig_atomic_t *stop, int wake_fd)
{
    or_error e = {{0}};
    bool entered = false;
    if (db_conn_listening(r->db)) {
        if (outbox_waiter_enter(r->db, &entered, &e) != OR_OK) {
            db_failed(r, "waiter lock", &e, stop, wake_fd);
            return;
        }
    }
    outbox_batch *b = NULL;
    int64_t claimed_at = clock_mono_ms();
    if (outbox_claim(r->db, send_rate_batch_limit(&r->rate, r->cfg->batch_size), r->order, &b,
                     &e) != OR_OK) {
        db_failed(r, "claim", &e, stop, wake_fd);
        return;
    }
    if (b->n > 0) {
        if (entered && outbox_waiter_leave(r->db, &e) != OR_OK) {
            outbox_batch_free(b);
            outbox_release(r->db);
            db_failed(r, "waiter unlock", &e, stop, wake_fd);
            return;
        }
        process_batch(r, b, claimed_at, stop, wake_fd);
        outbox_batch_free(b);
        return;
    }
    outbox_batch_free(b);

    long long next = -1;
    if (outbox_next_ready_in(r->db, &next, &e) != OR_OK) {
        db_failed(r, "next-retry query", &e, stop, wake_fd);
        return;
    }
    long long timeout = r->cfg->poll_interval_ms;
    if (next > 0 && next < timeout)
        timeout = next;
    summary_tick(r, false);
    int woke = db_conn_wait(r->db, (int)timeout, wake_fd, &e);
    if (woke < 0) {
        db_failed(r, "wait for notification", &e, stop, wake_fd);
        return;
    }
    if (entered && outbox_waiter_leave(r->db, &e) != OR_OK)
        db_failed(r, "waiter unlock", &e, stop, wake_fd);
}

or_status relay_run(relay *r, volatile sig_atomic_t *stop, int wake_fd, or_error *err)
{
    log_info("relay starting: endpoint %s, region %s, bus %s, source %s, credentials %s, "
             "batch %d, %d requests in flight",
             r->cfg->endpoint_url, r->cfg->aws_region, r->cfg->event_bus_name, r->cfg->event_source,
             credentials_provider_describe(r->creds), r->cfg->batch_size, r->cfg->max_in_flight);
    while (!*stop) {
        if (!db_conn_ok(r->db) && connect_db(r, stop, wake_fd) != OR_OK)
            break;
        int64_t wait = send_rate_wait_ms(&r->rate, clock_mono_ms());
        if (wait > 0) {
            interruptible_sleep(stop, wake_fd, wait);
            continue;
        }
        or_error e = {{0}};
        outbox_batch *b = NULL;
        int64_t claimed_at = clock_mono_ms();
        if (outbox_claim(r->db, send_rate_batch_limit(&r->rate, r->cfg->batch_size), r->order, &b,
                         &e) != OR_OK) {
            db_failed(r, "claim", &e, stop, wake_fd);
            continue;
        }
        if (b->n == 0) {
            outbox_batch_free(b);
            idle_wait(r, stop, wake_fd);
            continue;
        }
        process_batch(r, b, claimed_at, stop, wake_fd);
        outbox_batch_free(b);
        summary_tick(r, false);
    }
    summary_tick(r, true);
    db_conn_close(r->db);
    log_info("relay stopped: %llu events published, %llu failed attempts, %llu dead-lettered, "
             "%llu reconnects",
             r->stats.published, r->stats.failed, r->stats.dead, r->stats.reconnects);
    (void)err;
    return OR_OK;
}
