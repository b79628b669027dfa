#include "relay/relay.h"

#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
/*
 * After finding work, the leader keeps polling every RELAY_LINGER_POLL_MS
 * for RELAY_LINGER_MS before it becomes the waiter. Under steady traffic it
 * therefore never waits, and writers never NOTIFY: a notifying commit holds
 * a cluster-wide lock through its WAL flush, so at ~1000 commits/s with
 * fsync on, notifying every transaction serialised the writers and their
 * commits queued for seconds (measured: p99 16 s). Idle, it costs nothing.
 */
#define RELAY_LINGER_MS      100
#define RELAY_LINGER_POLL_MS 2

/*
 * A replica runs relay.pipelines workers, each a thread with its own
 * database session and HTTP client, each doing claim -> publish -> mark on
 * its own batch. So several batches are in flight at once, and the database
 * work of one overlaps the network wait of the others. Workers share nothing
 * but what is in struct relay, under its mutex.
 *
 * Worker 0 is the leader: it alone LISTENs and runs the waiter protocol.
 * The others park on a condition variable when they find nothing to claim,
 * and any worker that claims a full batch (a backlog) wakes them, so an idle
 * replica costs one session's wake-ups, not one per pipeline.
 */
/* One kind of rate-limited warning (see warn_limited). */
#define RELAY_WARN_KINDS 16
typedef struct warn_kind {
    char key[96];
    int64_t last_ms;
    unsigned long long suppressed;
} warn_kind;

typedef struct worker {
    struct relay *r;
    int index;
    db_conn *db;
    eb_client *eb;
    pthread_t thread;
    bool started;

    /* per-batch scratch, grown to the largest batch */
    size_t cap;
    strbuf *details;
    eb_entry *entries;
    eb_result *results;
    size_t *send_index; /* entries[k] belongs to row send_index[k] */
    outbox_outcome *outcomes;
    char (*map_errors)[300]; /* why row i could not become an entry */

    int connect_failures;
    int failed_batches;   /* consecutive batches of which nothing was accepted */
    int64_t last_work_ms; /* when this worker last claimed rows */
} worker;

struct relay {
    const relay_config *cfg;
    credentials_provider *creds;
    mapping_options map;
    outbox_order order;
    char db_label[256]; /* conninfo with the password redacted */
    int n_workers;
    worker *workers;

    atomic_int *stop; /* set from a signal handler; read by every worker */
    int wake_fd;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t work_cv;
    unsigned long long work_gen; /* bumped when a worker saw a backlog */
    send_rate rate;
    relay_stats stats;
    warn_kind warn_kinds[RELAY_WARN_KINDS];
    int64_t summary_start_ms;
    unsigned long long summary_published;
    unsigned long long summary_failed;
};

static bool stopping(const relay *r)
{
    return atomic_load_explicit(r->stop, memory_order_relaxed) != 0;
}

relay *relay_new(const relay_config *cfg, or_error *err)
{
    relay *r = xcalloc(1, sizeof(*r));
    r->cfg = cfg;
    r->map.source = cfg->event_source;
    r->map.event_bus_name = cfg->event_bus_name;
    r->order = strcmp(cfg->ordering, "none") == 0 ? OUTBOX_ORDER_NONE : OUTBOX_ORDER_PER_USER;
    r->wake_fd = -1;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->work_cv, NULL);
    send_rate_init(&r->rate);
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

    r->n_workers = cfg->pipelines > 0 ? cfg->pipelines : 1;
    r->workers = xcalloc((size_t)r->n_workers, sizeof(*r->workers));
    int per_worker = cfg->max_in_flight / r->n_workers;
    for (int i = 0; i < r->n_workers; i++) {
        worker *w = &r->workers[i];
        w->r = r;
        w->index = i;
        eb_client_options eo = {
            .endpoint_url = cfg->endpoint_url,
            .region = cfg->aws_region,
            .credentials = r->creds,
            .max_entries_per_request = (size_t)cfg->max_entries_per_request,
            .max_request_bytes = (size_t)cfg->max_request_bytes,
            .max_in_flight = (size_t)(per_worker > 0 ? per_worker : 1),
            .timeout_ms = cfg->http_timeout_ms,
            .connect_timeout_ms = cfg->connect_timeout_ms,
        };
        /* created here, on the main thread: libcurl's global init is not thread-safe */
        w->eb = eb_client_new(&eo, err);
        if (w->eb == NULL)
            goto fail;
        db_conn_options dbo = {
            .conninfo = cfg->database_url,
            .application_name = "outbox-relay",
            .connect_timeout_s = 5,
            .claim_timeout_ms = cfg->claim_timeout_ms,
            .listen = i == 0,
        };
        w->db = db_conn_new(&dbo);
    }
    return r;

fail:
    relay_free(r);
    return NULL;
}

static void free_scratch(worker *w)
{
    for (size_t i = 0; i < w->cap; i++)
        strbuf_free(&w->details[i]);
    free(w->details);
    free(w->entries);
    free(w->results);
    free(w->send_index);
    free(w->outcomes);
    free(w->map_errors);
    w->details = NULL;
    w->cap = 0;
}

void relay_free(relay *r)
{
    if (r == NULL)
        return;
    for (int i = 0; r->workers != NULL && i < r->n_workers; i++) {
        db_conn_free(r->workers[i].db);
        eb_client_free(r->workers[i].eb);
        free_scratch(&r->workers[i]);
    }
    free(r->workers);
    credentials_provider_free(r->creds);
    pthread_cond_destroy(&r->work_cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void relay_get_stats(const relay *r, relay_stats *out)
{
    pthread_mutex_lock((pthread_mutex_t *)&r->mu);
    *out = r->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&r->mu);
}

static void ensure_capacity(worker *w, size_t n)
{
    if (n <= w->cap)
        return;
    w->details = xrealloc(w->details, n * sizeof(*w->details));
    for (size_t i = w->cap; i < n; i++)
        strbuf_init(&w->details[i], RELAY_MAX_DETAIL_BYTES);
    w->entries = xrealloc(w->entries, n * sizeof(*w->entries));
    w->results = xrealloc(w->results, n * sizeof(*w->results));
    w->send_index = xrealloc(w->send_index, n * sizeof(*w->send_index));
    w->outcomes = xrealloc(w->outcomes, n * sizeof(*w->outcomes));
    w->map_errors = xrealloc(w->map_errors, n * sizeof(*w->map_errors));
    w->cap = n;
}

/* Copies src into dst[size], truncating; always NUL-terminates. */
static void copy_trunc(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Sleeps up to ms, returning early when a stop is requested. */
static void interruptible_sleep(relay *r, int64_t ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    while (!stopping(r)) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0)
            return;
        if (r->wake_fd >= 0) {
            struct pollfd pfd = {.fd = r->wake_fd, .events = POLLIN};
            (void)poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        } else {
            clock_sleep_ms(left > 1000 ? 1000 : left);
        }
    }
}

/*
 * Logs a warning unless one of the same kind was logged within
 * RELAY_LOG_REPEAT_MS (by any worker). Each kind keeps its own clock and
 * count of repeats, which are reported with its next line, so kinds that
 * alternate during an outage do not defeat each other's limit.
 */
static void warn_limited(relay *r, const char *key, const char *fmt, ...) OR_PRINTF(3, 4);
static void warn_limited(relay *r, const char *key, const char *fmt, ...)
{
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&r->mu);
    warn_kind *k = NULL, *oldest = &r->warn_kinds[0];
    for (size_t i = 0; i < RELAY_WARN_KINDS; i++) {
        warn_kind *c = &r->warn_kinds[i];
        if (c->key[0] != '\0' && strcmp(c->key, key) == 0) {
            k = c;
            break;
        }
        if (c->last_ms < oldest->last_ms)
            oldest = c;
    }
    if (k == NULL) {
        k = oldest; /* forget the kind heard from longest ago */
        snprintf(k->key, sizeof(k->key), "%s", key);
        k->last_ms = 0;
        k->suppressed = 0;
    } else if (now - k->last_ms < RELAY_LOG_REPEAT_MS) {
        k->suppressed++;
        pthread_mutex_unlock(&r->mu);
        return;
    }
    unsigned long long suppressed = k->suppressed;
    k->last_ms = now;
    k->suppressed = 0;
    pthread_mutex_unlock(&r->mu);

    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (suppressed > 0)
        log_warn("%s (%llu more like this since the last such line)", msg, suppressed);
    else
        log_warn("%s", msg);
}

static void summary_tick(relay *r, bool force)
{
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&r->mu);
    if (r->summary_start_ms == 0)
        r->summary_start_ms = now;
    int64_t span = now - r->summary_start_ms;
    if (!force && span < RELAY_SUMMARY_MS) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    unsigned long long published = r->summary_published, failed = r->summary_failed;
    r->summary_start_ms = now;
    r->summary_published = 0;
    r->summary_failed = 0;
    pthread_mutex_unlock(&r->mu);
    if (published > 0 || failed > 0)
        log_info("published %llu events in %.1f s (%llu failed attempts)", published,
                 (double)span / 1000.0, failed);
}

/* Wakes parked workers: there is more work than one batch. */
static void signal_backlog(relay *r)
{
    pthread_mutex_lock(&r->mu);
    r->work_gen++;
    pthread_cond_broadcast(&r->work_cv);
    pthread_mutex_unlock(&r->mu);
}

/* A helper worker with nothing to do waits for a backlog signal or the poll interval. */
static void park(worker *w)
{
    relay *r = w->r;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = (long long)until.tv_nsec + (long long)r->cfg->poll_interval_ms * 1000000LL;
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&r->mu);
    unsigned long long gen = r->work_gen;
    while (!stopping(r) && r->work_gen == gen) {
        if (pthread_cond_timedwait(&r->work_cv, &r->mu, &until) != 0)
            break;
    }
    pthread_mutex_unlock(&r->mu);
}

/* Connects, backing off between attempts. Returns OR_ERR only when stopping. */
static or_status connect_db(worker *w)
{
    relay *r = w->r;
    while (!stopping(r)) {
        or_error e = {{0}};
        if (db_conn_connect(w->db, &e) == OR_OK) {
            if (w->connect_failures > 0) {
                if (w->index == 0)
                    log_info("database connection restored after %d failed attempts (%s)",
                             w->connect_failures, r->db_label);
                pthread_mutex_lock(&r->mu);
                r->stats.reconnects++;
                pthread_mutex_unlock(&r->mu);
            } else if (w->index == 0) {
                log_info("connected to database %s (%d pipelines)", r->db_label, r->n_workers);
            }
            if (w->index == 0 && !db_conn_listening(w->db))
                log_warn("LISTEN is unavailable on this connection (a transaction-pooling "
                         "proxy?): polling every %d ms instead; use a direct or session-pooled "
                         "connection for millisecond wake-ups",
                         r->cfg->poll_interval_ms);
            w->connect_failures = 0;
            return OR_OK;
        }
        w->connect_failures++;
        if (w->index == 0)
            warn_limited(r, "connect",
                         "cannot connect to database (attempt %d): %s; retrying with backoff "
                         "(at most %d ms apart)",
                         w->connect_failures, e.msg, r->cfg->reconnect_max_ms);
        interruptible_sleep(
            r, backoff_delay_ms(w->connect_failures, 100, r->cfg->reconnect_max_ms) + 50);
    }
    return OR_ERR;
}

/*
 * After a failed statement: a lost connection is closed so the loop
 * reconnects; an error on a live connection (e.g. the outbox table missing)
 * is logged and slows the loop down so it cannot spin.
 */
static void db_failed(worker *w, const char *what, const or_error *e)
{
    relay *r = w->r;
    if (!db_conn_ok(w->db)) {
        warn_limited(r, "connection lost", "database connection lost during %s: %s; reconnecting",
                     what, e->msg);
        db_conn_close(w->db);
        w->connect_failures = 0;
        return;
    }
    if (strstr(e->msg, "does not exist") != NULL)
        warn_limited(r, what, "%s failed: %s. HINT: run `outbox-relay migrate` first", what,
                     e->msg);
    else
        warn_limited(r, what, "%s failed: %s", what, e->msg);
    db_conn_close(w->db);
    interruptible_sleep(r, r->cfg->poll_interval_ms);
}

static void process_batch(worker *w, outbox_batch *b, int64_t claimed_at_ms)
{
    relay *r = w->r;
    const relay_config *cfg = r->cfg;
    ensure_capacity(w, b->n);
    size_t m = 0;

    for (size_t i = 0; i < b->n; i++) {
        or_error e = {{0}};
        w->outcomes[i].error_code = NULL;
        w->outcomes[i].error_message = NULL;
        if (mapping_build_entry(&b->rows[i], &r->map, &w->details[i], &w->entries[m], &e) !=
            OR_OK) {
            /* A row that cannot become an entry can never be published: dead-letter it. */
            warn_limited(r, "mapping", "%s; the row is dead-lettered", e.msg);
            w->outcomes[i].kind = OUTBOX_DEAD;
            w->outcomes[i].delay_ms = 0;
            w->outcomes[i].entry_failure = true;
            copy_trunc(w->map_errors[i], sizeof(w->map_errors[i]), e.msg);
            w->outcomes[i].error_code = "InvalidRow";
            w->outcomes[i].error_message = w->map_errors[i];
            continue;
        }
        w->send_index[m++] = i;
    }

    int64_t publish_start = clock_mono_ms();
    if (m > 0) {
        or_error e = {{0}};
        /* Nothing may be sent once PostgreSQL could have broken the claim (a
         * pause or a stall past relay.claim_timeout_ms): keep a second for
         * recording the outcome. */
        eb_client_set_deadline(w->eb, claimed_at_ms + cfg->claim_timeout_ms - 1000);
        pthread_mutex_lock(&r->mu);
        send_rate_consume(&r->rate, m, publish_start);
        pthread_mutex_unlock(&r->mu);
        if (eb_client_publish(w->eb, w->entries, m, w->results, r->stop, cfg->shutdown_timeout_ms,
                              &e) != OR_OK)
            warn_limited(r, "publish", "publishing failed: %s", e.msg);
    }

    size_t accepted = 0, failed = 0, dead = 0, throttled = 0;
    const char *first_code = NULL;
    const char *first_message = NULL;
    for (size_t k = 0; k < m; k++) {
        size_t i = w->send_index[k];
        const eb_result *res = &w->results[k];
        if (res->outcome == EB_ACCEPTED) {
            w->outcomes[i].kind = OUTBOX_SENT;
            accepted++;
            continue;
        }
        failed++;
        if (res->throttled)
            throttled++;
        const outbox_row *row = &b->rows[i];
        w->outcomes[i].entry_failure = res->entry_level;
        /*
         * Dead-letter only what is the entry's own fault: a permanent
         * per-entry error, or too many per-entry failures. Outages,
         * throttling and credential errors retry forever with backoff.
         */
        bool is_dead =
            res->entry_level && (res->outcome == EB_PERMANENT ||
                                 (!res->throttled && row->entry_failures + 1 >= cfg->max_attempts));
        if (is_dead) {
            w->outcomes[i].kind = OUTBOX_DEAD;
            w->outcomes[i].delay_ms = 0;
            dead++;
        } else {
            w->outcomes[i].kind = OUTBOX_RETRY;
            w->outcomes[i].delay_ms =
                backoff_delay_ms(row->attempts + 1, cfg->retry_base_ms, cfg->retry_cap_ms);
        }
        /* w->results lives until the next batch, past outbox_complete() */
        w->outcomes[i].error_code = res->error_code;
        w->outcomes[i].error_message = res->error_message;
        if (first_code == NULL) {
            first_code = res->error_code;
            first_message = res->error_message;
        }
    }
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&r->mu);
    int rate_change = send_rate_observe(&r->rate, m, throttled, now - publish_start, now);
    double rate_now = r->rate.rate;
    pthread_mutex_unlock(&r->mu);
    if (rate_change > 0)
        warn_limited(r, "rate",
                     "EventBridge is throttling: this replica slows down to %.0f "
                     "entries/s and speeds up again while it is not throttled",
                     rate_now);
    else if (rate_change < 0)
        log_info("no longer throttled: send rate limit lifted");
    if (failed > 0) {
        char key[96];
        snprintf(key, sizeof(key), "publish:%s", first_code);
        warn_limited(r, key,
                     "%zu of %zu entries were not accepted (first error %s: %s); %zu "
                     "dead-lettered, the rest stay pending and are retried with backoff",
                     failed, m, first_code, first_message, dead);
    }

    int64_t publish_end = clock_mono_ms();
    or_error e = {{0}};
    if (outbox_complete(w->db, b, w->outcomes, &e) != OR_OK) {
        warn_limited(r, "complete",
                     "could not record the outcome of a batch of %zu rows: %s; the claim is "
                     "lost or released, and rows not recorded as sent will be published again "
                     "with the same event ids",
                     b->n, e.msg);
        outbox_release(w->db);
        if (!db_conn_ok(w->db))
            db_conn_close(w->db);
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->stats.batches++;
    r->stats.published += accepted;
    r->stats.failed += failed + (b->n - m);
    r->stats.dead += dead + (b->n - m);
    r->summary_published += accepted;
    r->summary_failed += failed + (b->n - m);
    pthread_mutex_unlock(&r->mu);
    log_debug("pipeline %d: batch of %zu rows: %zu published, %zu failed, %zu unmappable; "
              "claim %lld ms, publish %lld ms, mark %lld ms",
              w->index, b->n, accepted, failed, b->n - m,
              (long long)(publish_start - claimed_at_ms), (long long)(publish_end - publish_start),
              (long long)(clock_mono_ms() - publish_end));

    /* Nothing got through: the endpoint is down or refusing us. Back off as
     * a whole so the relay does not walk the backlog at full speed. */
    if (m > 0 && accepted == 0 && dead < m) {
        w->failed_batches++;
        interruptible_sleep(
            r, backoff_delay_ms(w->failed_batches, cfg->retry_base_ms,
                                cfg->retry_cap_ms < 30000 ? cfg->retry_cap_ms : 30000));
    } else {
        if (w->failed_batches > 0 && accepted > 0 && w->index == 0)
            log_info("EventBridge is accepting entries again");
        w->failed_batches = 0;
    }
}

/* Claims a batch of at most the rate-limited size; the claim time bounds the publish. */
static or_status claim(worker *w, outbox_batch **b, int64_t *claimed_at, int *limit, or_error *e)
{
    relay *r = w->r;
    pthread_mutex_lock(&r->mu);
    *limit = send_rate_batch_limit(&r->rate, r->cfg->batch_size);
    pthread_mutex_unlock(&r->mu);
    *claimed_at = clock_mono_ms();
    return outbox_claim(w->db, *limit, r->order, b, e);
}

/* Runs a claimed batch; a full batch means a backlog, so wake parked workers. */
static void run_batch(worker *w, outbox_batch *b, int64_t claimed_at, int limit)
{
    if (b->n >= (size_t)limit && w->r->n_workers > 1)
        signal_backlog(w->r);
    process_batch(w, b, claimed_at);
}

/*
 * Leader, nothing ready: become the waiter (so writers notify), claim once
 * more to close the race with writers that committed meanwhile, then sleep
 * until a notification, the next retry or the poll interval.
 */
static void idle_wait(worker *w)
{
    relay *r = w->r;
    or_error e = {{0}};
    bool entered = false;
    if (db_conn_listening(w->db)) {
        if (outbox_waiter_enter(w->db, &entered, &e) != OR_OK) {
            db_failed(w, "waiter lock", &e);
            return;
        }
    }
    outbox_batch *b = NULL;
    int64_t claimed_at = 0;
    int limit = 0;
    if (claim(w, &b, &claimed_at, &limit, &e) != OR_OK) {
        db_failed(w, "claim", &e);
        return;
    }
    if (b->n > 0) {
        if (entered && outbox_waiter_leave(w->db, &e) != OR_OK) {
            outbox_batch_free(b);
            outbox_release(w->db);
            db_failed(w, "waiter unlock", &e);
            return;
        }
        w->last_work_ms = clock_mono_ms();
        run_batch(w, b, claimed_at, limit);
        outbox_batch_free(b);
        return;
    }
    outbox_batch_free(b);

    long long next = -1;
    if (outbox_next_ready_in(w->db, &next, &e) != OR_OK) {
        db_failed(w, "next-retry query", &e);
        return;
    }
    long long timeout = r->cfg->poll_interval_ms;
    if (next > 0 && next < timeout)
        timeout = next;
    summary_tick(r, false);
    int woke = db_conn_wait(w->db, (int)timeout, r->wake_fd, &e);
    if (woke < 0) {
        db_failed(w, "wait for notification", &e);
        return;
    }
    if (entered && outbox_waiter_leave(w->db, &e) != OR_OK) {
        db_failed(w, "waiter unlock", &e);
        return;
    }
    if (woke > 0)
        w->last_work_ms = clock_mono_ms(); /* traffic: linger before waiting again */
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    relay *r = w->r;
    while (!stopping(r)) {
        if (!db_conn_ok(w->db) && connect_db(w) != OR_OK)
            break;
        pthread_mutex_lock(&r->mu);
        int64_t wait = send_rate_wait_ms(&r->rate, clock_mono_ms());
        pthread_mutex_unlock(&r->mu);
        if (wait > 0) {
            interruptible_sleep(r, wait);
            continue;
        }
        or_error e = {{0}};
        outbox_batch *b = NULL;
        int64_t claimed_at = 0;
        int limit = 0;
        if (claim(w, &b, &claimed_at, &limit, &e) != OR_OK) {
            db_failed(w, "claim", &e);
            continue;
        }
        if (b->n == 0) {
            outbox_batch_free(b);
            if (w->index != 0)
                park(w);
            else if (clock_mono_ms() - w->last_work_ms < RELAY_LINGER_MS)
                interruptible_sleep(r, RELAY_LINGER_POLL_MS);
            else
                idle_wait(w);
            continue;
        }
        w->last_work_ms = clock_mono_ms();
        run_batch(w, b, claimed_at, limit);
        outbox_batch_free(b);
        summary_tick(r, false);
    }
    db_conn_close(w->db);
    if (w->index == 0)
        signal_backlog(r); /* wake parked workers so they see the stop */
    return NULL;
}

or_status relay_run(relay *r, atomic_int *stop, int wake_fd, or_error *err)
{
    r->stop = stop;
    r->wake_fd = wake_fd;
    log_info("relay starting: endpoint %s, region %s, bus %s, source %s, credentials %s, "
             "%d pipelines of up to %d rows, %d requests in flight, ordering %s, "
             "claim timeout %d ms",
             r->cfg->endpoint_url, r->cfg->aws_region, r->cfg->event_bus_name, r->cfg->event_source,
             credentials_provider_describe(r->creds), r->n_workers, r->cfg->batch_size,
             r->cfg->max_in_flight, r->cfg->ordering, r->cfg->claim_timeout_ms);
    or_status st = OR_OK;
    for (int i = 1; i < r->n_workers; i++) {
        if (pthread_create(&r->workers[i].thread, NULL, worker_main, &r->workers[i]) != 0) {
            or_error_set(err, "cannot start pipeline thread %d", i);
            st = OR_ERR;
            atomic_store(stop, 1);
            break;
        }
        r->workers[i].started = true;
    }
    if (st == OR_OK)
        worker_main(&r->workers[0]);
    signal_backlog(r);
    for (int i = 1; i < r->n_workers; i++)
        if (r->workers[i].started)
            pthread_join(r->workers[i].thread, NULL);
    summary_tick(r, true);
    log_info("relay stopped: %llu events published, %llu failed attempts, %llu dead-lettered, "
             "%llu reconnects",
             r->stats.published, r->stats.failed, r->stats.dead, r->stats.reconnects);
    return st;
}
