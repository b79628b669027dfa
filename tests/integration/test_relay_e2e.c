/*
 * test_relay_e2e.c - the relay binary end to end: a real PostgreSQL started
 * by the harness, the SigV4-verifying PutEvents endpoint, relay replicas
 * configured by environment only.
 */
#include <check.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "support/endpoint_ctl.h"
#include "support/pg_harness.h"
#include "support/proc.h"
#include "support/check_main.h"

#define AKID   "AKIDE2EEXAMPLE"
#define SECRET "e2e/secret/EXAMPLEKEY"
#define REGION "eu-west-1"

static pg_harness *pg;
static endpoint *ep;
static char workdir[] = "/tmp/outbox-e2e.XXXXXX";

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(workdir));
    pg = pg_harness_start();
    pg_harness_create_users(pg);
    ep = endpoint_start(AKID, SECRET, REGION);
}

static void teardown(void)
{
    endpoint_free(ep);
    pg_harness_free(pg);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", workdir);
}

/* Environment of a replica: only what the issue allows, plus extras. */
static proc *spawn_relay_cmd(const char *command, const char *log_name, const char *const *extra,
                             const char *endpoint_url)
{
    static char db[256], ep_env[256], logpath[512];
    snprintf(db, sizeof(db), "DATABASE_URL=%s", pg_harness_url(pg));
    snprintf(ep_env, sizeof(ep_env), "AWS_ENDPOINT_URL_EVENTBRIDGE=%s", endpoint_url);
    snprintf(logpath, sizeof(logpath), "%s/%s", workdir, log_name);
    const char *base[] = {db,
                          "AWS_REGION=" REGION,
                          ep_env,
                          "AWS_ACCESS_KEY_ID=" AKID,
                          "AWS_SECRET_ACCESS_KEY=" SECRET,
                          "AWS_SESSION_TOKEN=",
                          "AWS_ENDPOINT_URL=",
                          "AWS_DEFAULT_REGION=",
                          "PGHOST=",
                          "PGPORT=",
                          "PGUSER=",
                          "PGDATABASE=",
                          NULL};
    /* extras first; a base entry is dropped when an extra sets the same name */
    const char *env[40];
    size_t n = 0;
    for (size_t i = 0; extra && extra[i] && n < 20; i++)
        env[n++] = extra[i];
    for (size_t i = 0; base[i]; i++) {
        size_t klen = strcspn(base[i], "=");
        bool dup = false;
        for (size_t k = 0; extra && extra[k]; k++)
            if (strncmp(extra[k], base[i], klen) == 0 && extra[k][klen] == '=')
                dup = true;
        if (!dup)
            env[n++] = base[i];
    }
    env[n] = NULL;
    const char *argv[] = {OUTBOX_RELAY_BIN, command, NULL};
    proc *p = proc_spawn(argv, env, logpath);
    ck_assert_msg(p != NULL, "cannot start %s", OUTBOX_RELAY_BIN);
    return p;
}

static proc *spawn_relay(const char *log_name, const char *const *extra)
{
    return spawn_relay_cmd("run", log_name, extra, endpoint_url(ep));
}

static void dump_file(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", workdir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "---- %s ----\n", name);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof(line), f) && n++ < 200)
        fputs(line, stderr);
    fclose(f);
}

static int run_to_exit(const char *command, const char *log_name, const char *const *extra)
{
    proc *p = spawn_relay_cmd(command, log_name, extra, endpoint_url(ep));
    int status = -1;
    ck_assert_msg(proc_wait(p, 30000, &status), "%s did not finish", command);
    proc_free(p);
    return status;
}

static void migrate(void)
{
    int st = run_to_exit("migrate", "migrate.log", NULL);
    if (st != 0)
        dump_file("migrate.log");
    ck_assert_int_eq(st, 0);
}

static void reset_state(void)
{
    pg_harness_exec(pg, "TRUNCATE public.users RESTART IDENTITY");
    pg_harness_exec(pg, "TRUNCATE outbox_relay.outbox RESTART IDENTITY");
    endpoint_reset_faults(ep);
    endpoint_clear_records(ep);
}

/* Waits until the endpoint holds at least want records and nothing is pending. */
static bool wait_delivered(size_t want, long timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    while (clock_mono_ms() < deadline) {
        if (endpoint_record_count(ep) >= want &&
            pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox "
                                  "WHERE state <> 'sent'") == 0)
            return true;
        clock_sleep_ms(50);
    }
    return false;
}

static void stop_relay(proc *p, const char *log_name)
{
    int64_t t0 = clock_mono_ms();
    proc_signal(p, SIGTERM);
    int status = -1;
    bool done = proc_wait(p, 10000, &status);
    int64_t took = clock_mono_ms() - t0;
    if (!done || status != 0)
        dump_file(log_name);
    ck_assert_msg(done, "relay did not exit within 10 s of SIGTERM");
    ck_assert_msg(status == 0, "relay exited with status %d after SIGTERM", status);
    ck_assert_msg(took < 6000, "relay took %lld ms to stop", (long long)took);
    proc_free(p);
}

/* Every outbox row was published at least once, with its own event id. */
static void check_records_match_outbox(size_t expect_exact)
{
    json_object *recs = endpoint_records(ep);
    size_t n = json_object_array_length(recs);
    if (expect_exact)
        ck_assert_uint_eq(n, expect_exact);
    PGconn *c = pg_harness_connect(pg);
    PGresult *res = PQexec(c, "SELECT event_id::text FROM outbox_relay.outbox ORDER BY id");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    int rows = PQntuples(res);
    /* build the set of published event ids */
    char **ids = calloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(recs, i), *d, *meta, *id;
        ck_assert(json_object_object_get_ex(r, "Detail", &d));
        json_object *detail = json_tokener_parse(json_object_get_string(d));
        ck_assert_ptr_nonnull(detail);
        ck_assert(json_object_object_get_ex(detail, "metadata", &meta));
        ck_assert(json_object_object_get_ex(meta, "event_id", &id));
        ids[i] = strdup(json_object_get_string(id));
        json_object_put(detail);
    }
    for (int i = 0; i < rows; i++) {
        const char *want = PQgetvalue(res, i, 0);
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
            found = strcmp(ids[k], want) == 0;
        ck_assert_msg(found, "outbox event %s was never published", want);
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    PQclear(res);
    PQfinish(c);
    json_object_put(recs);
}

/* Waits until no row is pending (sent or dead only). */
static bool wait_settled(long timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    while (clock_mono_ms() < deadline) {
        if (pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox "
                                  "WHERE state = 'pending'") == 0)
            return true;
        clock_sleep_ms(50);
    }
    return false;
}

START_TEST(permanent_entry_errors_dead_letter_only_their_rows)
{
    reset_state();
    endpoint_control(ep, "{\"entry_fail_code\": \"MalformedDetail\", \"entry_fail_every\": 5}");
    proc *r1 = spawn_relay("dead.log", NULL);
    pg_harness_exec(pg,
                    "INSERT INTO users (username, email) "
                    "SELECT 'd' || g, 'd' || g || '@example.com' FROM generate_series(1, 50) g");
    bool ok = wait_settled(30000);
    if (!ok)
        dump_file("dead.log");
    ck_assert(ok);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox WHERE "
                                           "state = 'dead' AND last_error_code = 'MalformedDetail'"
                                           " AND attempts = 1 AND entry_failures = 1"),
                     10);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox "
                                           "WHERE state = 'sent'"),
                     40);
    ck_assert_uint_eq(endpoint_record_count(ep), 40);
    stop_relay(r1, "dead.log");
}
END_TEST

START_TEST(outages_never_dead_letter_but_repeated_entry_failures_do)
{
    reset_state();
    const char *extra[] = {"OUTBOX_RELAY_MAX_ATTEMPTS=3", "OUTBOX_RELAY_RETRY_BASE_MS=5",
                           "OUTBOX_RELAY_RETRY_CAP_MS=40", NULL};
    /* an outage: every request fails with 503 for a while */
    endpoint_control(ep, "{\"http_status\": 503, \"http_count\": 1000000}");
    proc *r1 = spawn_relay("attempts.log", extra);
    pg_harness_exec(pg, "INSERT INTO users (username, email) VALUES ('o1', 'o1@example.com'), "
                        "('o2', 'o2@example.com')");
    int64_t deadline = clock_mono_ms() + 20000;
    while (clock_mono_ms() < deadline &&
           pg_harness_scalar(pg, "SELECT min(attempts) FROM outbox_relay.outbox") < 5)
        clock_sleep_ms(50);
    ck_assert_int_ge(pg_harness_scalar(pg, "SELECT min(attempts) FROM outbox_relay.outbox"), 5);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox "
                                           "WHERE state <> 'pending' OR entry_failures <> 0"),
                     0);
    /* the endpoint comes back: both rows go out */
    endpoint_reset_faults(ep);
    bool ok = wait_delivered(2, 30000);
    if (!ok)
        dump_file("attempts.log");
    ck_assert(ok);

    /* an entry that keeps failing on its own is dead after max_attempts */
    endpoint_control(ep, "{\"entry_fail_code\": \"InternalFailure\", \"entry_fail_rate\": 1.0}");
    pg_harness_exec(pg, "INSERT INTO users (username, email) VALUES ('o3', 'o3@example.com')");
    ok = wait_settled(30000);
    if (!ok)
        dump_file("attempts.log");
    ck_assert(ok);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox WHERE "
                                           "aggregate_id = '3' AND state = 'dead' AND "
                                           "entry_failures = 3 AND "
                                           "last_error_code = 'InternalFailure'"),
                     1);
    stop_relay(r1, "attempts.log");
}
END_TEST

START_TEST(each_users_events_arrive_in_order_through_failures)
{
    reset_state();
    endpoint_control(ep, "{\"entry_fail_code\": \"InternalFailure\", \"entry_fail_rate\": 0.3}");
    const char *extra[] = {"OUTBOX_RELAY_RETRY_BASE_MS=5", "OUTBOX_RELAY_RETRY_CAP_MS=50",
                           "OUTBOX_RELAY_MAX_ATTEMPTS=1000", NULL};
    proc *r1 = spawn_relay("order1.log", extra);
    proc *r2 = spawn_relay("order2.log", extra);
    pg_harness_exec(pg,
                    "INSERT INTO users (username, email) "
                    "SELECT 'o' || g, 'o' || g || '@example.com' FROM generate_series(1, 20) g");
    for (int round = 0; round < 10; round++)
        pg_harness_exec(pg, "UPDATE users SET email = 'r' || floor(random() * 1000000) || "
                            "'@example.com'");
    bool ok = wait_delivered(220, 60000);
    if (!ok) {
        dump_file("order1.log");
        dump_file("order2.log");
    }
    ck_assert(ok);
    /* first arrivals of each user's events must be in outbox order */
    json_object *recs = endpoint_records(ep);
    long long last_id[32] = {0};
    for (size_t i = 0; i < json_object_array_length(recs); i++) {
        json_object *r = json_object_array_get_idx(recs, i), *d, *meta, *v;
        ck_assert(json_object_object_get_ex(r, "Detail", &d));
        json_object *detail = json_tokener_parse(json_object_get_string(d));
        ck_assert(json_object_object_get_ex(detail, "metadata", &meta));
        ck_assert(json_object_object_get_ex(meta, "outbox_id", &v));
        long long id = json_object_get_int64(v);
        ck_assert(json_object_object_get_ex(meta, "aggregate_id", &v));
        int user = atoi(json_object_get_string(v));
        ck_assert(user >= 1 && user <= 20);
        if (id > last_id[user]) {
            last_id[user] = id;
        } else {
            /* only a redelivery of an already delivered event may look back */
            bool seen = false;
            for (size_t k = 0; k < i && !seen; k++) {
                json_object *o = json_object_array_get_idx(recs, k), *od;
                json_object_object_get_ex(o, "Detail", &od);
                seen = strcmp(json_object_get_string(od), json_object_get_string(d)) == 0;
            }
            ck_assert_msg(seen, "user %d: outbox row %lld arrived after row %lld", user, id,
                          last_id[user]);
        }
        json_object_put(detail);
    }
    json_object_put(recs);
    ck_assert_int_gt(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox "
                                           "WHERE entry_failures > 0"),
                     0);
    stop_relay(r1, "order1.log");
    stop_relay(r2, "order2.log");
}
END_TEST

START_TEST(an_entry_over_the_size_limit_is_dead_lettered_at_once)
{
    reset_state();
    proc *r1 = spawn_relay("size.log", NULL);
    pg_harness_exec(pg, "INSERT INTO users (username, email) VALUES "
                        "('small1', 's1@example.com'), "
                        "(repeat('x', 300000), 'big@example.com'), "
                        "('small2', 's2@example.com')");
    bool ok = wait_settled(30000);
    if (!ok)
        dump_file("size.log");
    ck_assert(ok);
    char *msg = pg_harness_text(pg, "SELECT last_error_message FROM outbox_relay.outbox "
                                    "WHERE state = 'dead' AND last_error_code = 'EntryTooLarge' "
                                    "AND attempts = 1");
    ck_assert_ptr_nonnull(msg);
    ck_assert_msg(strstr(msg, "262144") != NULL, "reason lacks the limit: %s", msg);
    free(msg);
    ck_assert_uint_eq(endpoint_record_count(ep), 2);
    stop_relay(r1, "size.log");
}
END_TEST

/* CPU seconds (user + system) used so far by a process. */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    ck_assert_ptr_nonnull(p);
    unsigned long utime = 0, stime = 0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    ck_assert_int_eq(
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime), 2);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static int count_lines_with(const char *log_name, const char *needle)
{
    char path[512], line[4096];
    snprintf(path, sizeof(path), "%s/%s", workdir, log_name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}

START_TEST(outages_leave_the_relay_near_idle_and_logging_once)
{
    reset_state();
    const char *extra[] = {"OUTBOX_RELAY_RECONNECT_MAX_MS=2000", NULL};
    proc *r1 = spawn_relay("outage.log", extra);
    pg_harness_exec(pg, "INSERT INTO users (username, email) SELECT 'o' || g, 'o' || g || "
                        "'@example.com' FROM generate_series(1, 2000) g");
    ck_assert(wait_delivered(2000, 30000));

    /* EventBridge refuses every request for 8 s while 2,000 changes wait */
    endpoint_control(ep, "{\"http_status\": 503, \"http_count\": 100000000}");
    pg_harness_exec(pg, "INSERT INTO users (username, email) SELECT 'p' || g, 'p' || g || "
                        "'@example.com' FROM generate_series(1, 2000) g");
    clock_sleep_ms(1000);
    endpoint_counters st0, st;
    endpoint_stats(ep, &st0);
    double c0 = cpu_seconds(proc_pid(r1));
    clock_sleep_ms(8000);
    double cpu_ep_outage = cpu_seconds(proc_pid(r1)) - c0;
    endpoint_stats(ep, &st);
    int warns = count_lines_with("outage.log", "level=warn");
    endpoint_reset_faults(ep);
    ck_assert_msg(cpu_ep_outage < 0.5, "relay used %.2f CPU s in 8 s of endpoint outage",
                  cpu_ep_outage);
    ck_assert_msg(warns <= 3, "%d warnings for one outage", warns);

    /* the database goes away for 6 s */
    ck_assert(wait_delivered(4000, 60000));
    pg_harness_stop_server(pg);
    clock_sleep_ms(1000);
    c0 = cpu_seconds(proc_pid(r1));
    clock_sleep_ms(5000);
    double db_cpu = cpu_seconds(proc_pid(r1)) - c0;
    pg_harness_start_server(pg);
    pg_harness_exec(pg, "INSERT INTO users (username, email) VALUES ('q', 'q@example.com')");
    bool ok = wait_delivered(4001, 30000);
    /* the leader logs the recovery once its own backoff lets it reconnect */
    int64_t until = clock_mono_ms() + 10000;
    while (count_lines_with("outage.log", "database connection restored") == 0 &&
           clock_mono_ms() < until)
        clock_sleep_ms(100);
    if (!ok || db_cpu >= 0.5 || count_lines_with("outage.log", "database connection restored") == 0)
        dump_file("outage.log");
    ck_assert(ok);
    ck_assert_msg(db_cpu < 0.5, "relay used %.2f CPU s in 5 s of database outage", db_cpu);
    ck_assert_int_ge(count_lines_with("outage.log", "database connection restored"), 1);
    fprintf(stderr,
            "outage: relay CPU %.2f s over 8 s of endpoint outage (%lld requests in those 8 s), "
            "%.2f s over 5 s of database outage, %d warnings for the endpoint outage\n",
            cpu_ep_outage, st.requests - st0.requests, db_cpu, warns);
    stop_relay(r1, "outage.log");
}
END_TEST

START_TEST(a_retry_is_due_after_its_backoff_not_the_poll_interval)
{
    reset_state();
    /* the first request fails; the user's second event waits behind the first */
    endpoint_control(ep, "{\"http_status\": 500, \"http_count\": 1}");
    const char *extra[] = {"OUTBOX_RELAY_POLL_INTERVAL_MS=20000", "OUTBOX_RELAY_RETRY_BASE_MS=400",
                           "OUTBOX_RELAY_RETRY_CAP_MS=800", "OUTBOX_RELAY_PIPELINES=1", NULL};
    proc *r1 = spawn_relay("retry.log", extra);
    clock_sleep_ms(300); /* idle-waiting */
    int64_t t0 = clock_mono_ms();
    pg_harness_exec(pg, "BEGIN; INSERT INTO users (username, email) VALUES ('r', 'r@x'); "
                        "COMMIT; UPDATE users SET email = 'r2@x'");
    bool ok = wait_delivered(2, 10000);
    int64_t took = clock_mono_ms() - t0;
    if (!ok)
        dump_file("retry.log");
    ck_assert_msg(ok, "the retried event waited for the 20 s poll interval");
    ck_assert_msg(took < 5000, "delivered after %lld ms", (long long)took);
    ck_assert_int_ge(pg_harness_scalar(pg, "SELECT max(attempts) FROM outbox_relay.outbox"), 2);
    stop_relay(r1, "retry.log");
}
END_TEST

/* Migrates once, through the CLI, before the tests run. */
static void setup_and_migrate(void)
{
    setup();
    migrate();
}

START_TEST(two_replicas_publish_exactly_the_1150_allowed_changes)
{
    reset_state();
    proc *r1 = spawn_relay("r1.log", NULL);
    proc *r2 = spawn_relay("r2.log", NULL);

    /* 1000 inserts: 500 single-row transactions and one 500-row statement */
    PGconn *c = pg_harness_connect(pg);
    for (int i = 0; i < 500; i++) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO users (username, email, password_hash) "
                 "VALUES ('user%d', 'user%d@example.com', 'TOPSECRET-HASH-%d')",
                 i, i, i);
        pg_harness_conn_exec(c, sql);
    }
    pg_harness_conn_exec(c, "INSERT INTO users (username, email, password_hash) "
                            "SELECT 'user' || g, 'user' || g || '@example.com', "
                            "'TOPSECRET-HASH-' || g FROM generate_series(500, 999) g");
    pg_harness_conn_exec(c, "UPDATE users SET email = 'new-' || email WHERE id <= 100");
    pg_harness_conn_exec(c, "UPDATE users SET password_hash = 'TOPSECRET-ROTATED' "
                            "WHERE id > 100 AND id <= 200");
    pg_harness_conn_exec(c, "DELETE FROM users WHERE id > 950");
    PQfinish(c);

    bool ok = wait_delivered(1150, 60000);
    if (!ok) {
        dump_file("r1.log");
        dump_file("r2.log");
    }
    ck_assert_msg(ok, "only %zu of 1150 entries arrived", endpoint_record_count(ep));
    clock_sleep_ms(300); /* anything extra would show up now */
    ck_assert_uint_eq(endpoint_record_count(ep), 1150);

    json_object *recs = endpoint_records(ep);
    int created = 0, updated = 0, deleted = 0;
    for (size_t i = 0; i < json_object_array_length(recs); i++) {
        json_object *r = json_object_array_get_idx(recs, i), *v;
        ck_assert(json_object_object_get_ex(r, "Detail", &v));
        const char *detail = json_object_get_string(v);
        ck_assert_msg(strstr(detail, "TOPSECRET") == NULL, "secret in Detail: %s", detail);
        ck_assert_msg(strstr(detail, "password_hash") == NULL, "secret column: %s", detail);
        ck_assert(json_object_object_get_ex(r, "DetailType", &v));
        const char *type = json_object_get_string(v);
        if (strcmp(type, "User Account Created") == 0)
            created++;
        else if (strcmp(type, "User Account Updated") == 0)
            updated++;
        else if (strcmp(type, "User Account Deleted") == 0)
            deleted++;
        ck_assert(json_object_object_get_ex(r, "Source", &v));
        ck_assert_str_eq(json_object_get_string(v), "user-service");
        ck_assert(json_object_object_get_ex(r, "EventBusName", &v));
        ck_assert_str_eq(json_object_get_string(v), "user-service-bus");
        ck_assert(json_object_object_get_ex(r, "AccessKeyId", &v));
        ck_assert_str_eq(json_object_get_string(v), AKID);
    }
    json_object_put(recs);
    ck_assert_int_eq(created, 1000);
    ck_assert_int_eq(updated, 100);
    ck_assert_int_eq(deleted, 50);
    check_records_match_outbox(1150);

    endpoint_counters st;
    endpoint_stats(ep, &st);
    ck_assert_int_eq(st.signature_failures, 0);

    stop_relay(r1, "r1.log");
    stop_relay(r2, "r2.log");
}
END_TEST

START_TEST(injected_endpoint_faults_delay_but_never_lose_events)
{
    reset_state();
    endpoint_control(ep, "{\"entry_fail_code\": \"InternalFailure\", \"entry_fail_every\": 3, "
                         "\"http_status\": 500, \"http_count\": 3, \"drop_count\": 2}");
    const char *extra[] = {"OUTBOX_RELAY_RETRY_BASE_MS=10", "OUTBOX_RELAY_RETRY_CAP_MS=200",
                           "OUTBOX_RELAY_BATCH_SIZE=50", NULL};
    proc *r1 = spawn_relay("faults.log", extra);
    pg_harness_exec(pg,
                    "INSERT INTO users (username, email) "
                    "SELECT 'f' || g, 'f' || g || '@example.com' FROM generate_series(1, 300) g");
    /* let the faults bite, then stop injecting per-entry failures */
    clock_sleep_ms(1500);
    endpoint_reset_faults(ep);
    bool ok = wait_delivered(300, 60000);
    if (!ok)
        dump_file("faults.log");
    ck_assert_msg(ok, "only %zu of 300 arrived", endpoint_record_count(ep));
    check_records_match_outbox(0);
    /* the faults really happened: some rows needed more than one attempt */
    ck_assert_int_gt(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox "
                                           "WHERE attempts > 1"),
                     0);
    endpoint_counters st;
    endpoint_stats(ep, &st);
    ck_assert_int_gt(st.faults_injected, 0);
    stop_relay(r1, "faults.log");
}
END_TEST

START_TEST(delivery_survives_a_database_restart)
{
    reset_state();
    const char *extra[] = {"OUTBOX_RELAY_RECONNECT_MAX_MS=500", NULL};
    proc *r1 = spawn_relay("restart.log", extra);
    pg_harness_exec(pg,
                    "INSERT INTO users (username, email) "
                    "SELECT 'a' || g, 'a' || g || '@example.com' FROM generate_series(1, 200) g");
    ck_assert(wait_delivered(200, 30000));

    pg_harness_restart(pg);
    pg_harness_exec(pg,
                    "INSERT INTO users (username, email) "
                    "SELECT 'b' || g, 'b' || g || '@example.com' FROM generate_series(1, 200) g");
    /* and a longer outage: the server is down for 2 s */
    pg_harness_stop_server(pg);
    clock_sleep_ms(2000);
    pg_harness_start_server(pg);
    pg_harness_exec(pg,
                    "INSERT INTO users (username, email) "
                    "SELECT 'c' || g, 'c' || g || '@example.com' FROM generate_series(1, 200) g");
    bool ok = wait_delivered(600, 60000);
    if (!ok)
        dump_file("restart.log");
    ck_assert_msg(ok, "only %zu of 600 arrived after restarts", endpoint_record_count(ep));
    check_records_match_outbox(0);
    ck_assert(proc_running(r1));
    stop_relay(r1, "restart.log");
}
END_TEST

START_TEST(sigterm_mid_publish_exits_cleanly_and_loses_nothing)
{
    reset_state();
    endpoint_control(ep, "{\"delay_ms\": 1500}");
    const char *extra[] = {"OUTBOX_RELAY_SHUTDOWN_TIMEOUT_MS=3000", NULL};
    proc *r1 = spawn_relay("term.log", extra);
    pg_harness_exec(pg,
                    "INSERT INTO users (username, email) "
                    "SELECT 't' || g, 't' || g || '@example.com' FROM generate_series(1, 100) g");
    /* wait until a batch is in flight, held by the slow endpoint */
    endpoint_counters st = {0};
    int64_t deadline = clock_mono_ms() + 20000;
    while (st.requests == 0 && clock_mono_ms() < deadline) {
        clock_sleep_ms(20);
        endpoint_stats(ep, &st);
    }
    ck_assert_msg(st.requests > 0, "no request reached the endpoint");
    stop_relay(r1, "term.log");
    /* nothing is lost: a new replica delivers whatever was not marked sent */
    endpoint_reset_faults(ep);
    proc *r2 = spawn_relay("term2.log", NULL);
    bool ok = wait_delivered(100, 30000);
    if (!ok)
        dump_file("term2.log");
    ck_assert(ok);
    check_records_match_outbox(0);
    stop_relay(r2, "term2.log");
}
END_TEST

START_TEST(a_wrong_secret_is_refused_and_rows_stay_pending)
{
    reset_state();
    const char *extra[] = {"AWS_SECRET_ACCESS_KEY=not-the-secret", "OUTBOX_RELAY_RETRY_BASE_MS=10",
                           "OUTBOX_RELAY_RETRY_CAP_MS=100", NULL};
    proc *r1 = spawn_relay("badkey.log", extra);
    pg_harness_exec(pg, "INSERT INTO users (username, email) VALUES ('k', 'k@example.com')");
    clock_sleep_ms(1500);
    ck_assert_uint_eq(endpoint_record_count(ep), 0);
    endpoint_counters st;
    endpoint_stats(ep, &st);
    ck_assert_int_gt(st.signature_failures, 0);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox "
                                           "WHERE state = 'pending' AND attempts > 0 AND "
                                           "last_error_code = 'InvalidSignatureException'"),
                     1);
    stop_relay(r1, "badkey.log");
    /* with the right key the row goes out */
    proc *r2 = spawn_relay("goodkey.log", NULL);
    pg_harness_exec(pg, "UPDATE outbox_relay.outbox SET next_attempt_at = NULL");
    ck_assert(wait_delivered(1, 20000));
    stop_relay(r2, "goodkey.log");
}
END_TEST

START_TEST(bad_configuration_exits_2_with_the_key_named)
{
    static const struct {
        const char *env, *want;
    } cases[] = {
        {"OUTBOX_RELAY_BATCH_SIZE=0", "OUTBOX_RELAY_BATCH_SIZE"},
        {"OUTBOX_RELAY_EVENT_SOURCE=aws.user-service", "aws."},
        {"OUTBOX_RELAY_POLL_INTERVAL_MS=soon", "OUTBOX_RELAY_POLL_INTERVAL_MS"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *extra[] = {cases[i].env, NULL};
        int st = run_to_exit("check-config", "badcfg.log", extra);
        ck_assert_msg(st == 2, "%s: exit %d, want 2", cases[i].env, st);
        char path[512], buf[4096] = {0};
        snprintf(path, sizeof(path), "%s/badcfg.log", workdir);
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        size_t got = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[got] = '\0';
        ck_assert_msg(strstr(buf, cases[i].want) != NULL, "%s: message lacks %s: %s", cases[i].env,
                      cases[i].want, buf);
        unlink(path);
    }
}
END_TEST

START_TEST(check_config_masks_the_secret)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/check.out", workdir);
    /* run check-config with stdout redirected into a file */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        FILE *f = freopen(path, "w", stdout);
        (void)f;
        char db[256];
        snprintf(db, sizeof(db), "postgresql://relay:DBPASSWORD@127.0.0.1:%d/postgres",
                 pg_harness_port(pg));
        setenv("DATABASE_URL", db, 1);
        setenv("AWS_REGION", REGION, 1);
        setenv("AWS_ACCESS_KEY_ID", AKID, 1);
        setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
        execl(OUTBOX_RELAY_BIN, OUTBOX_RELAY_BIN, "check-config", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FILE *f = fopen(path, "r");
    char buf[8192] = {0};
    size_t got = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[got] = '\0';
    ck_assert_msg(strstr(buf, SECRET) == NULL, "secret printed: %s", buf);
    ck_assert_msg(strstr(buf, "DBPASSWORD") == NULL, "password printed: %s", buf);
    ck_assert_msg(strstr(buf, "eventbridge.source") != NULL, "no settings printed: %s", buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("relay_e2e");
    TCase *tc = tcase_create("e2e");
    tcase_add_unchecked_fixture(tc, setup_and_migrate, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, two_replicas_publish_exactly_the_1150_allowed_changes);
    tcase_add_test(tc, injected_endpoint_faults_delay_but_never_lose_events);
    tcase_add_test(tc, delivery_survives_a_database_restart);
    tcase_add_test(tc, sigterm_mid_publish_exits_cleanly_and_loses_nothing);
    tcase_add_test(tc, a_wrong_secret_is_refused_and_rows_stay_pending);
    tcase_add_test(tc, permanent_entry_errors_dead_letter_only_their_rows);
    tcase_add_test(tc, outages_never_dead_letter_but_repeated_entry_failures_do);
    tcase_add_test(tc, each_users_events_arrive_in_order_through_failures);
    tcase_add_test(tc, an_entry_over_the_size_limit_is_dead_lettered_at_once);
    tcase_add_test(tc, outages_leave_the_relay_near_idle_and_logging_once);
    tcase_add_test(tc, a_retry_is_due_after_its_backoff_not_the_poll_interval);
    tcase_add_test(tc, bad_configuration_exits_2_with_the_key_named);
    tcase_add_test(tc, check_config_masks_the_secret);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
