/*
 * chaos_util.c - see chaos_util.h.
 */
#include "chaos/chaos_util.h"

#include <check.h>
#include <ftw.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"

#define CHAOS_MAX_REPORTED 50 /* violations printed per kind */

void chaos_note(const char *fmt, ...)
{
    static int64_t t0;
    int64_t now = clock_mono_ms();
    if (t0 == 0)
        t0 = now;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "[chaos %8.3fs] %s\n", (double)(now - t0) / 1000.0, msg);
    fflush(stderr);
}

uint64_t chaos_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t chaos_rng_below(uint64_t *state, uint64_t n)
{
    return chaos_rng_next(state) % n;
}

uint64_t chaos_seed(void)
{
    uint64_t seed = ((uint64_t)clock_wall_ms() << 16) ^ (uint64_t)getpid();
    const char *s = getenv("CHAOS_SEED");
    if (s != NULL && s[0] != '\0') {
        char *end = NULL;
        unsigned long long v = strtoull(s, &end, 0);
        ck_assert_msg(end != s && *end == '\0', "CHAOS_SEED=%s is not a number", s);
        seed = (uint64_t)v;
    }
    chaos_note("seed %llu (rerun with CHAOS_SEED=%llu)", (unsigned long long)seed,
               (unsigned long long)seed);
    return seed;
}

static void chaos_log_path(const chaos_env *env, const char *log_name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", env->workdir, log_name);
}

static proc *chaos_spawn_cmd(chaos_env *env, const char *command, const char *log_name,
                             const char *db_user, const char *const *extra)
{
    char db[256], ep_env[256], logpath[512];
    snprintf(db, sizeof(db), "DATABASE_URL=postgresql://%s@127.0.0.1:%d/postgres",
             db_user ? db_user : "postgres", pg_harness_port(env->pg));
    snprintf(ep_env, sizeof(ep_env), "AWS_ENDPOINT_URL_EVENTBRIDGE=%s", endpoint_url(env->ep));
    chaos_log_path(env, log_name, logpath, sizeof(logpath));
    const char *base[] = {db,
                          "AWS_REGION=" CHAOS_REGION,
                          ep_env,
                          "AWS_ACCESS_KEY_ID=" CHAOS_AKID,
                          "AWS_SECRET_ACCESS_KEY=" CHAOS_SECRET,
                          "AWS_SESSION_TOKEN=",
                          "AWS_ENDPOINT_URL=",
                          "AWS_DEFAULT_REGION=",
                          "PGHOST=",
                          "PGPORT=",
                          "PGUSER=",
                          "PGDATABASE=",
                          "OUTBOX_RELAY_CLAIM_TIMEOUT_MS=3000",
                          "OUTBOX_RELAY_HTTP_TIMEOUT_MS=1500",
                          "OUTBOX_RELAY_RETRY_BASE_MS=20",
                          "OUTBOX_RELAY_RETRY_CAP_MS=1000",
                          "OUTBOX_RELAY_RECONNECT_MAX_MS=500",
                          "OUTBOX_RELAY_MAX_ATTEMPTS=1000",
                          "OUTBOX_RELAY_POLL_INTERVAL_MS=200",
                          NULL};
    /* extras first; a base entry is dropped when an extra sets the same name */
    const char *env_list[64];
    size_t n = 0;
    for (size_t i = 0; extra && extra[i] && n < 30; i++)
        env_list[n++] = extra[i];
    for (size_t i = 0; base[i]; i++) {
        size_t klen = strcspn(base[i], "=");
        bool dup = false;
        for (size_t k = 0; extra && extra[k]; k++)
            if (strncmp(extra[k], base[i], klen) == 0 && extra[k][klen] == '=')
                dup = true;
        if (!dup)
            env_list[n++] = base[i];
    }
    env_list[n] = NULL;
    const char *argv[] = {OUTBOX_RELAY_BIN, command, NULL};
    proc *p = proc_spawn(argv, env_list, logpath);
    ck_assert_msg(p != NULL, "cannot start %s", OUTBOX_RELAY_BIN);
    return p;
}

proc *chaos_spawn_relay(chaos_env *env, const char *log_name, const char *db_user,
                        const char *const *extra)
{
    return chaos_spawn_cmd(env, "run", log_name, db_user, extra);
}

void chaos_dump_tail(const chaos_env *env, const char *log_name, int nlines)
{
    char path[512];
    chaos_log_path(env, log_name, path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "---- %s: cannot open ----\n", path);
        return;
    }
    /* a ring of the last nlines lines */
    char **ring = xcalloc((size_t)nlines, sizeof(char *));
    long total = 0;
    char line[2048];
    while (fgets(line, sizeof(line), f)) {
        size_t slot = (size_t)(total % nlines);
        free(ring[slot]);
        ring[slot] = xstrdup(line);
        total++;
    }
    fclose(f);
    fprintf(stderr, "---- last lines of %s (%ld lines in all) ----\n", path, total);
    long first = total > nlines ? total - nlines : 0;
    for (long i = first; i < total; i++)
        fputs(ring[i % nlines], stderr);
    for (int i = 0; i < nlines; i++)
        free(ring[i]);
    free(ring);
    fprintf(stderr, "---- end of %s ----\n", log_name);
}

long chaos_log_size(const chaos_env *env, const char *log_name)
{
    char path[512];
    struct stat sb;
    chaos_log_path(env, log_name, path, sizeof(path));
    return stat(path, &sb) == 0 ? (long)sb.st_size : 0;
}

bool chaos_log_since_contains(const chaos_env *env, const char *log_name, long offset,
                              const char *needle)
{
    char path[512], line[2048];
    chaos_log_path(env, log_name, path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    bool found = false;
    if (fseek(f, offset, SEEK_SET) == 0) {
        fprintf(stderr, "---- %s from byte %ld ----\n", log_name, offset);
        while (fgets(line, sizeof(line), f)) {
            fputs(line, stderr);
            found |= strstr(line, needle) != NULL;
        }
    }
    fclose(f);
    return found;
}

bool chaos_stop_relay(chaos_env *env, proc *p, const char *log_name)
{
    int64_t t0 = clock_mono_ms();
    proc_signal(p, SIGCONT);
    proc_signal(p, SIGTERM);
    int status = -1;
    bool done = proc_wait(p, 10000, &status);
    int64_t took = clock_mono_ms() - t0;
    if (!done || status != 0) {
        fprintf(stderr, "relay %s: %s (status %d) %lld ms after SIGTERM\n", log_name,
                done ? "exited non-zero" : "did not exit", status, (long long)took);
        chaos_dump_tail(env, log_name, 50);
        if (!done)
            proc_kill_wait(p);
        return false;
    }
    return true;
}

static int chaos_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

void chaos_env_start(chaos_env *env)
{
    memset(env, 0, sizeof(*env));
    snprintf(env->workdir, sizeof(env->workdir), "/tmp/outbox-chaos.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(env->workdir));
    env->pg = pg_harness_start();
    pg_harness_create_users(env->pg);
    env->ep = endpoint_start(CHAOS_AKID, CHAOS_SECRET, CHAOS_REGION);
    proc *m = chaos_spawn_cmd(env, "migrate", "migrate.log", NULL, NULL);
    int status = -1;
    bool done = proc_wait(m, 30000, &status);
    proc_free(m);
    if (!done || status != 0)
        chaos_dump_tail(env, "migrate.log", 50);
    ck_assert_msg(done && status == 0, "outbox-relay migrate failed (status %d)", status);
}

void chaos_env_stop(chaos_env *env)
{
    endpoint_free(env->ep);
    env->ep = NULL;
    pg_harness_free(env->pg);
    env->pg = NULL;
    const char *keep = getenv("OUTBOX_KEEP_TMP");
    if (keep != NULL && strcmp(keep, "1") == 0)
        fprintf(stderr, "keeping %s\n", env->workdir);
    else if (env->workdir[0])
        (void)nftw(env->workdir, chaos_rm, 16, FTW_DEPTH | FTW_PHYS);
}

void chaos_env_reset(chaos_env *env)
{
    pg_harness_exec(env->pg, "TRUNCATE public.users RESTART IDENTITY");
    pg_harness_exec(env->pg, "TRUNCATE outbox_relay.outbox RESTART IDENTITY");
    endpoint_reset_faults(env->ep);
    endpoint_clear_records(env->ep);
}

long long chaos_count_state(chaos_env *env, const char *state)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox_relay.outbox WHERE state = '%s'",
             state);
    return pg_harness_scalar(env->pg, sql);
}

bool chaos_wait_drained(chaos_env *env, long timeout_ms)
{
    int64_t t0 = clock_mono_ms(), next_note = t0 + 5000;
    for (;;) {
        long long pending = chaos_count_state(env, "pending");
        int64_t now = clock_mono_ms();
        if (pending == 0) {
            chaos_note("drained: nothing pending after %lld ms", (long long)(now - t0));
            return true;
        }
        if (now - t0 > timeout_ms) {
            chaos_note("still %lld rows pending after %ld ms", pending, timeout_ms);
            return false;
        }
        if (now >= next_note) {
            endpoint_counters st;
            endpoint_stats(env->ep, &st);
            chaos_note("draining: %lld pending, %lld sent, %lld dead, %lld entries received",
                       pending, chaos_count_state(env, "sent"), chaos_count_state(env, "dead"),
                       st.accepted_entries);
            next_note = now + 5000;
        }
        clock_sleep_ms(200);
    }
}

/* ---- record checks ---- */

typedef struct chaos_rec {
    char event_id[48];
    char aggregate_id[48];
    long long outbox_id;
    size_t arrival; /* index in the endpoint's records */
    const char *detail;
} chaos_rec;

typedef struct chaos_row {
    char event_id[48];
    long long id;
    char state[16];
} chaos_row;

static int chaos_rec_by_event(const void *a, const void *b)
{
    const chaos_rec *x = a, *y = b;
    int c = strcmp(x->event_id, y->event_id);
    if (c != 0)
        return c;
    return x->arrival < y->arrival ? -1 : x->arrival > y->arrival;
}

static int chaos_rec_by_user_arrival(const void *a, const void *b)
{
    const chaos_rec *x = *(const chaos_rec *const *)a, *y = *(const chaos_rec *const *)b;
    int c = strcmp(x->aggregate_id, y->aggregate_id);
    if (c != 0)
        return c;
    return x->arrival < y->arrival ? -1 : x->arrival > y->arrival;
}

static int chaos_row_by_event(const void *a, const void *b)
{
    return strcmp(((const chaos_row *)a)->event_id, ((const chaos_row *)b)->event_id);
}

/* Fills r from record i; false if a field is missing. detail stays owned by recs. */
static bool chaos_parse_record(json_object *recs, size_t i, chaos_rec *r)
{
    json_object *rec = json_object_array_get_idx(recs, i), *d, *meta, *v;
    memset(r, 0, sizeof(*r));
    r->arrival = i;
    if (!json_object_object_get_ex(rec, "Detail", &d))
        return false;
    r->detail = json_object_get_string(d);
    json_object *detail = json_tokener_parse(r->detail);
    bool ok = detail != NULL && json_object_object_get_ex(detail, "metadata", &meta) &&
              json_object_object_get_ex(meta, "event_id", &v);
    if (ok) {
        snprintf(r->event_id, sizeof(r->event_id), "%s", json_object_get_string(v));
        ok = json_object_object_get_ex(meta, "outbox_id", &v);
    }
    if (ok) {
        r->outbox_id = (long long)json_object_get_int64(v);
        ok = json_object_object_get_ex(meta, "aggregate_id", &v);
    }
    if (ok)
        snprintf(r->aggregate_id, sizeof(r->aggregate_id), "%s", json_object_get_string(v));
    json_object_put(detail);
    return ok;
}

static chaos_row *chaos_load_rows(chaos_env *env, size_t *nrows)
{
    PGconn *c = pg_harness_connect(env->pg);
    PGresult *res = PQexec(c, "SELECT event_id::text, id, state FROM outbox_relay.outbox "
                              "ORDER BY event_id::text COLLATE \"C\"");
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "reading the outbox: %s",
                  PQerrorMessage(c));
    int n = PQntuples(res);
    chaos_row *rows = xcalloc((size_t)n + 1, sizeof(*rows));
    for (int i = 0; i < n; i++) {
        snprintf(rows[i].event_id, sizeof(rows[i].event_id), "%s", PQgetvalue(res, i, 0));
        rows[i].id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        snprintf(rows[i].state, sizeof(rows[i].state), "%s", PQgetvalue(res, i, 2));
    }
    PQclear(res);
    PQfinish(c);
    /* sort here too, in case the server's text order differs from strcmp */
    qsort(rows, (size_t)n, sizeof(*rows), chaos_row_by_event);
    *nrows = (size_t)n;
    return rows;
}

bool chaos_check_records(chaos_env *env, const char *secret_marker, chaos_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    json_object *recs = endpoint_records(env->ep);
    size_t n = json_object_array_length(recs);
    rep->records = n;
    chaos_rec *r = xcalloc(n + 1, sizeof(*r));
    size_t nr = 0;
    for (size_t i = 0; i < n; i++) {
        if (!chaos_parse_record(recs, i, &r[nr])) {
            if (rep->bad_records++ < CHAOS_MAX_REPORTED)
                fprintf(stderr, "CHECK record %zu: no metadata.event_id/outbox_id/aggregate_id\n",
                        i);
            continue;
        }
        /* d) no secret column, no secret value */
        const char *det = r[nr].detail;
        if (strstr(det, "password_hash") != NULL ||
            (secret_marker != NULL && strstr(det, secret_marker) != NULL)) {
            if (rep->secret_leaks++ < CHAOS_MAX_REPORTED)
                fprintf(stderr, "CHECK record %zu leaks a secret: %s\n", i, det);
        }
        nr++;
    }
    qsort(r, nr, sizeof(*r), chaos_rec_by_event);

    size_t nrows = 0;
    chaos_row *rows = chaos_load_rows(env, &nrows);
    rep->outbox_rows = nrows;

    /* firsts[k]: the first arrival of each distinct event */
    chaos_rec **firsts = xcalloc(nr + 1, sizeof(*firsts));
    size_t nf = 0;
    for (size_t i = 0; i < nr;) {
        size_t j = i + 1;
        while (j < nr && strcmp(r[j].event_id, r[i].event_id) == 0) {
            /* c) a redelivery carries the identical Detail */
            if (strcmp(r[j].detail, r[i].detail) != 0 && rep->dup_mismatches++ < CHAOS_MAX_REPORTED)
                fprintf(stderr,
                        "CHECK event %s: arrival %zu differs from arrival %zu:\n  %s\n  %s\n",
                        r[i].event_id, r[j].arrival, r[i].arrival, r[i].detail, r[j].detail);
            j++;
        }
        size_t extra = j - i - 1;
        rep->duplicates += extra;
        if (extra > rep->max_dups)
            rep->max_dups = extra;
        firsts[nf++] = &r[i];
        i = j;
    }
    rep->distinct_events = nf;

    /* a) merge the distinct events with the outbox rows, both sorted by event id */
    size_t a = 0, b = 0;
    while (a < nf || b < nrows) {
        int c = a >= nf ? 1 : b >= nrows ? -1 : strcmp(firsts[a]->event_id, rows[b].event_id);
        if (c < 0) {
            if (rep->phantoms++ < CHAOS_MAX_REPORTED)
                fprintf(stderr, "CHECK phantom: event %s (arrival %zu) is not in the outbox\n",
                        firsts[a]->event_id, firsts[a]->arrival);
            a++;
        } else if (c > 0) {
            if (rep->unpublished++ < CHAOS_MAX_REPORTED)
                fprintf(stderr, "CHECK lost: outbox row %lld (event %s, state %s) never arrived\n",
                        rows[b].id, rows[b].event_id, rows[b].state);
            b++;
        } else {
            if (firsts[a]->outbox_id != rows[b].id && rep->phantoms++ < CHAOS_MAX_REPORTED)
                fprintf(stderr, "CHECK event %s arrived with outbox_id %lld but is row %lld\n",
                        rows[b].event_id, firsts[a]->outbox_id, rows[b].id);
            a++;
            b++;
        }
    }
    for (size_t i = 0; i < nrows; i++)
        if (strcmp(rows[i].state, "sent") != 0 && rep->not_sent++ < CHAOS_MAX_REPORTED)
            fprintf(stderr, "CHECK outbox row %lld is %s, not sent\n", rows[i].id, rows[i].state);

    /* b) per user, first arrivals in increasing outbox id order */
    qsort(firsts, nf, sizeof(*firsts), chaos_rec_by_user_arrival);
    for (size_t i = 1; i < nf; i++) {
        const chaos_rec *p = firsts[i - 1], *q = firsts[i];
        if (strcmp(p->aggregate_id, q->aggregate_id) != 0)
            continue;
        if (q->outbox_id <= p->outbox_id && rep->order_violations++ < CHAOS_MAX_REPORTED)
            fprintf(stderr,
                    "CHECK order: user %s: outbox %lld (first arrival #%zu) was published "
                    "after outbox %lld (first arrival #%zu)\n",
                    q->aggregate_id, q->outbox_id, q->arrival, p->outbox_id, p->arrival);
    }

    free(firsts);
    free(rows);
    free(r);
    json_object_put(recs);
    return rep->unpublished == 0 && rep->phantoms == 0 && rep->not_sent == 0 &&
           rep->order_violations == 0 && rep->dup_mismatches == 0 && rep->secret_leaks == 0 &&
           rep->bad_records == 0 && nrows > 0;
}
