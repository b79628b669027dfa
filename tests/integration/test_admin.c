/*
 * test_admin.c - admin_status() / admin_requeue() and the `status` and
 * `requeue` commands against a real server.
 */
#include <check.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/admin.h"
#include "db/migrate.h"
#include "support/pg_harness.h"
#include "support/check_main.h"

static pg_harness *pg;
static char workdir[256];

static void setup_cluster(void)
{
    pg = pg_harness_start_migrated();
    snprintf(workdir, sizeof(workdir), "%s", pg_harness_dir(pg));
}

static void teardown_cluster(void)
{
    pg_harness_free(pg);
    pg = NULL;
}

/*
 * The fixture every test starts from (ids 1..10, all from user inserts):
 *   1, 2      sent
 *   3, 4, 5   dead, MalformedDetail
 *   6         dead, InternalFailure
 *   7         dead, no error code
 *   8         pending, occurred an hour ago
 *   9         pending, waiting for a retry in an hour
 *   10        pending, ready
 */
static void reset_fixture(void)
{
    /* sessions of an earlier test may take a moment to leave pg_stat_activity */
    for (int i = 0; i < 100; i++) {
        if (pg_harness_scalar(pg, "SELECT count(*) FROM pg_stat_activity"
                                  " WHERE application_name LIKE 'outbox-relay%'") == 0)
            break;
        usleep(50 * 1000);
    }
    pg_harness_exec(
        pg, "TRUNCATE public.users RESTART IDENTITY;"
            "TRUNCATE outbox_relay.outbox RESTART IDENTITY;"
            "INSERT INTO users (username, email)"
            " SELECT 'u' || g, 'u' || g || '@x' FROM generate_series(1, 10) g;"
            "UPDATE outbox_relay.outbox SET state = 'sent', sent_at = now(), attempts = 1"
            " WHERE id IN (1, 2);"
            "UPDATE outbox_relay.outbox SET state = 'dead', attempts = 1,"
            " last_error_code = 'MalformedDetail', last_error_message = 'bad detail'"
            " WHERE id IN (3, 4, 5);"
            "UPDATE outbox_relay.outbox SET state = 'dead', attempts = 12, entry_failures = 10,"
            " last_error_code = 'InternalFailure', last_error_message = 'boom'"
            " WHERE id = 6;"
            "UPDATE outbox_relay.outbox SET state = 'dead', attempts = 3 WHERE id = 7;"
            "UPDATE outbox_relay.outbox SET occurred_at = now() - interval '1 hour'"
            " WHERE id = 8;"
            "UPDATE outbox_relay.outbox SET attempts = 2, next_attempt_at = now() +"
            " interval '1 hour', last_error_code = 'ThrottlingException' WHERE id = 9");
}

static long long count_where(const char *cond)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox_relay.outbox WHERE %s", cond);
    return pg_harness_scalar(pg, sql);
}

static admin_status_info status_now(void)
{
    PGconn *conn = pg_harness_connect(pg);
    admin_status_info st;
    or_error err = {{0}};
    or_status s = admin_status(conn, &st, &err);
    PQfinish(conn);
    ck_assert_msg(s == OR_OK, "status: %s", err.msg);
    return st;
}

static long long dead_code_count(const admin_status_info *st, const char *code)
{
    for (size_t i = 0; i < st->n_dead_codes; i++)
        if (strcmp(st->dead_by_code[i].code, code) == 0)
            return st->dead_by_code[i].count;
    return -1;
}

/* A session named like a relay; with inflight > 0 it holds an open claim transaction. */
static PGconn *fake_relay_session(int inflight)
{
    PGconn *conn = pg_harness_connect(pg);
    pg_harness_conn_exec(conn, "SET application_name = 'outbox-relay'");
    if (inflight > 0) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "BEGIN; SELECT set_config('application_name', 'outbox-relay inflight=%d', true)",
                 inflight);
        pg_harness_conn_exec(conn, sql);
    }
    return conn;
}

typedef struct cli_run {
    int exit_code;
    char out[8192];
    char err[8192];
} cli_run;

static void slurp(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    size_t got = fread(buf, 1, len - 1, f);
    buf[got] = '\0';
    fclose(f);
    unlink(path);
}

/*
 * Runs the binary with args (NULL-terminated) against database_url, with
 * stdout and stderr captured. Only the database is configured: status and
 * requeue must not need AWS settings.
 */
static void run_cli_db(const char *database_url, const char *const args[], cli_run *r)
{
    char out_path[512], err_path[512];
    snprintf(out_path, sizeof(out_path), "%s/admin-cli.out", workdir);
    snprintf(err_path, sizeof(err_path), "%s/admin-cli.err", workdir);
    const char *argv[32];
    size_t n = 0;
    argv[n++] = OUTBOX_RELAY_BIN;
    for (size_t i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(126);
        setenv("DATABASE_URL", database_url, 1);
        unsetenv("AWS_REGION");
        unsetenv("AWS_DEFAULT_REGION");
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "%s killed by signal %d", OUTBOX_RELAY_BIN,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    r->exit_code = WEXITSTATUS(status);
    slurp(out_path, r->out, sizeof(r->out));
    slurp(err_path, r->err, sizeof(r->err));
}

static void run_cli(const char *const args[], cli_run *r)
{
    run_cli_db(pg_harness_url(pg), args, r);
}

static long long json_int(json_object *o, const char *key)
{
    json_object *v = NULL;
    ck_assert_msg(json_object_object_get_ex(o, key, &v), "key %s missing", key);
    ck_assert_msg(json_object_is_type(v, json_type_int), "key %s is not an integer", key);
    return json_object_get_int64(v);
}

START_TEST(status_counts_pending_retry_dead_and_groups_dead_by_code)
{
    reset_fixture();
    admin_status_info st = status_now();
    ck_assert_int_eq(st.pending, 3);
    ck_assert_int_eq(st.retry_waiting, 1);
    ck_assert_int_eq(st.dead, 5);
    ck_assert_int_eq(st.n_dead_codes, 3);
    ck_assert_str_eq(st.dead_by_code[0].code, "MalformedDetail"); /* most frequent first */
    ck_assert_int_eq(dead_code_count(&st, "MalformedDetail"), 3);
    ck_assert_int_eq(dead_code_count(&st, "InternalFailure"), 1);
    ck_assert_int_eq(dead_code_count(&st, ADMIN_NO_ERROR_CODE), 1);
    ck_assert_int_eq(st.in_flight, 0);
    ck_assert_int_eq(st.relay_sessions, 0);
    ck_assert(st.has_oldest_pending);
    ck_assert_msg(st.oldest_pending_age_s >= 3600.0 && st.oldest_pending_age_s < 3700.0,
                  "oldest pending age %f", st.oldest_pending_age_s);
    ck_assert_msg(strchr(st.oldest_pending_age, '.') != NULL &&
                      strlen(strchr(st.oldest_pending_age, '.')) == 4,
                  "age text %s has not 3 decimals", st.oldest_pending_age);
}
END_TEST

START_TEST(status_reports_no_oldest_age_when_nothing_is_pending)
{
    reset_fixture();
    pg_harness_exec(pg, "UPDATE outbox_relay.outbox SET state = 'sent' WHERE state = 'pending'");
    admin_status_info st = status_now();
    ck_assert_int_eq(st.pending, 0);
    ck_assert_int_eq(st.retry_waiting, 0);
    ck_assert(!st.has_oldest_pending);
    ck_assert_int_eq(st.dead, 5);
}
END_TEST

START_TEST(status_sums_in_flight_rows_of_open_claims_and_counts_relay_sessions)
{
    reset_fixture();
    PGconn *claiming = fake_relay_session(7);
    PGconn *claiming2 = fake_relay_session(5);
    PGconn *idle = fake_relay_session(0);
    PGconn *other = pg_harness_connect(pg); /* not a relay: not counted */
    pg_harness_conn_exec(other, "SET application_name = 'outbox-relay migrate'");
    admin_status_info st = status_now();
    ck_assert_int_eq(st.in_flight, 12);
    ck_assert_int_eq(st.relay_sessions, 3);

    /* the claim ends: the transaction-local name reverts */
    pg_harness_conn_exec(claiming, "COMMIT");
    st = status_now();
    ck_assert_int_eq(st.in_flight, 5);
    ck_assert_int_eq(st.relay_sessions, 3);
    PQfinish(claiming);
    PQfinish(claiming2);
    PQfinish(idle);
    PQfinish(other);
}
END_TEST

static void requeue(const admin_requeue_filter *f, bool dry_run, admin_requeue_result *r)
{
    PGconn *conn = pg_harness_connect(pg);
    or_error err = {{0}};
    or_status s = admin_requeue(conn, f, dry_run, r, &err);
    PQfinish(conn);
    ck_assert_msg(s == OR_OK, "requeue: %s", err.msg);
}

START_TEST(requeue_by_code_resets_only_those_dead_rows_and_keeps_their_error)
{
    reset_fixture();
    admin_requeue_filter f = {.kind = ADMIN_REQUEUE_ERROR_CODE, .error_code = "MalformedDetail"};
    admin_requeue_result r;
    requeue(&f, false, &r);
    ck_assert_int_eq(r.count, 3);
    ck_assert_int_eq(r.n_skipped, 0);
    admin_requeue_result_free(&r);
    ck_assert_int_eq(count_where("id IN (3,4,5) AND state = 'pending' AND attempts = 0"
                                 " AND next_attempt_at IS NULL"
                                 " AND last_error_code = 'MalformedDetail'"
                                 " AND last_error_message = 'bad detail'"),
                     3);
    ck_assert_int_eq(count_where("state = 'dead'"), 2);
    ck_assert_int_eq(count_where("state = 'sent'"), 2);
    /* the retry-waiting pending row keeps its schedule */
    ck_assert_int_eq(count_where("id = 9 AND next_attempt_at > now() AND attempts = 2"), 1);
}
END_TEST

START_TEST(requeue_all_moves_every_dead_row_and_nothing_else)
{
    reset_fixture();
    admin_requeue_filter f = {.kind = ADMIN_REQUEUE_ALL};
    admin_requeue_result r;
    requeue(&f, false, &r);
    ck_assert_int_eq(r.count, 5);
    admin_requeue_result_free(&r);
    ck_assert_int_eq(count_where("state = 'dead'"), 0);
    ck_assert_int_eq(count_where("state = 'pending'"), 8);
    ck_assert_int_eq(count_where("state = 'sent'"), 2);
    requeue(&f, false, &r);
    ck_assert_int_eq(r.count, 0);
    admin_requeue_result_free(&r);
}
END_TEST

START_TEST(requeue_by_id_skips_rows_that_are_not_dead)
{
    reset_fixture();
    const long long ids[] = {6, 1, 10, 6, 999};
    admin_requeue_filter f = {.kind = ADMIN_REQUEUE_IDS, .ids = ids, .n_ids = 5};
    admin_requeue_result r;
    requeue(&f, false, &r);
    ck_assert_int_eq(r.count, 1);
    ck_assert_int_eq(r.n_skipped, 3);
    ck_assert_int_eq(r.skipped[0].id, 1);
    ck_assert_str_eq(r.skipped[0].state, "sent");
    ck_assert_int_eq(r.skipped[1].id, 10);
    ck_assert_str_eq(r.skipped[1].state, "pending");
    ck_assert_int_eq(r.skipped[2].id, 999);
    ck_assert_str_eq(r.skipped[2].state, "");
    admin_requeue_result_free(&r);
    ck_assert_int_eq(
        count_where("id = 6 AND state = 'pending' AND attempts = 0 AND entry_failures = 0"
                    " AND last_error_code = 'InternalFailure' AND last_error_message = 'boom'"),
        1);
    ck_assert_int_eq(count_where("id = 1 AND state = 'sent'"), 1);
    ck_assert_int_eq(count_where("state = 'dead'"), 4);
}
END_TEST

/* Dry runs, table-driven: each selector's count, and nothing changes. */
static const struct {
    admin_requeue_kind kind;
    const char *code;
    long long id;
    long long want;
} dry_cases[] = {
    {ADMIN_REQUEUE_ALL, NULL, 0, 5},
    {ADMIN_REQUEUE_ERROR_CODE, "MalformedDetail", 0, 3},
    {ADMIN_REQUEUE_ERROR_CODE, "NoSuchCode", 0, 0},
    {ADMIN_REQUEUE_IDS, NULL, 7, 1},
    {ADMIN_REQUEUE_IDS, NULL, 2, 0},
};

START_TEST(requeue_dry_run_counts_without_changing_anything)
{
    reset_fixture();
    char *before = pg_harness_text(pg, "SELECT string_agg(id || state || attempts ||"
                                       " coalesce(next_attempt_at::text, '-'), ',' ORDER BY id)"
                                       " FROM outbox_relay.outbox");
    admin_requeue_filter f = {.kind = dry_cases[_i].kind,
                              .error_code = dry_cases[_i].code,
                              .ids = &dry_cases[_i].id,
                              .n_ids = 1};
    admin_requeue_result r;
    requeue(&f, true, &r);
    ck_assert_int_eq(r.count, dry_cases[_i].want);
    admin_requeue_result_free(&r);
    char *after = pg_harness_text(pg, "SELECT string_agg(id || state || attempts ||"
                                      " coalesce(next_attempt_at::text, '-'), ',' ORDER BY id)"
                                      " FROM outbox_relay.outbox");
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
}
END_TEST

START_TEST(cli_status_json_has_the_stable_keys_and_counts)
{
    reset_fixture();
    PGconn *claiming = fake_relay_session(7);
    cli_run r;
    run_cli((const char *const[]){"status", "--json", NULL}, &r);
    PQfinish(claiming);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    json_object *o = json_tokener_parse(r.out);
    ck_assert_msg(o != NULL, "not JSON: %s", r.out);
    ck_assert_int_eq(json_int(o, "pending"), 3);
    ck_assert_int_eq(json_int(o, "in_flight"), 7);
    ck_assert_int_eq(json_int(o, "retry_waiting"), 1);
    ck_assert_int_eq(json_int(o, "dead"), 5);
    ck_assert_int_eq(json_int(o, "relay_sessions"), 1);
    json_object *age = NULL;
    ck_assert(json_object_object_get_ex(o, "oldest_pending_age_seconds", &age));
    ck_assert(json_object_is_type(age, json_type_double));
    ck_assert(json_object_get_double(age) >= 3600.0);
    json_object *codes = NULL;
    ck_assert(json_object_object_get_ex(o, "dead_by_error_code", &codes));
    ck_assert_int_eq(json_object_object_length(codes), 3);
    ck_assert_int_eq(json_int(codes, "MalformedDetail"), 3);
    ck_assert_int_eq(json_int(codes, "InternalFailure"), 1);
    json_object_put(o);
}
END_TEST

START_TEST(cli_status_json_age_is_null_and_human_output_says_none_when_idle)
{
    pg_harness_exec(pg, "TRUNCATE outbox_relay.outbox RESTART IDENTITY");
    cli_run r;
    run_cli((const char *const[]){"status", "--json", NULL}, &r);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    json_object *o = json_tokener_parse(r.out);
    ck_assert_msg(o != NULL, "not JSON: %s", r.out);
    json_object *age = (json_object *)1;
    ck_assert(json_object_object_get_ex(o, "oldest_pending_age_seconds", &age));
    ck_assert_ptr_null(age);
    ck_assert_int_eq(json_int(o, "pending"), 0);
    json_object_put(o);

    run_cli((const char *const[]){"status", NULL}, &r);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    ck_assert_msg(strstr(r.out, "pending:") != NULL, "%s", r.out);
    ck_assert_msg(strstr(r.out, "oldest pending age:    none") != NULL, "%s", r.out);
}
END_TEST

START_TEST(cli_requeue_by_code_and_dry_run)
{
    reset_fixture();
    cli_run r;
    run_cli((const char *const[]){"requeue", "--error-code", "MalformedDetail", "--dry-run", NULL},
            &r);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    ck_assert_str_eq(r.out, "would requeue 3 dead rows\n");
    ck_assert_int_eq(count_where("state = 'dead'"), 5);

    run_cli((const char *const[]){"requeue", "--error-code=MalformedDetail", NULL}, &r);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    ck_assert_str_eq(r.out, "requeued 3 dead rows\n");
    ck_assert_int_eq(count_where("state = 'dead'"), 2);
    ck_assert_int_eq(count_where("state = 'pending' AND last_error_code = 'MalformedDetail'"), 3);
}
END_TEST

START_TEST(cli_requeue_by_id_reports_ids_that_are_not_dead)
{
    reset_fixture();
    cli_run r;
    run_cli((const char *const[]){"requeue", "--id", "1", "--id", "7", NULL}, &r);
    ck_assert_msg(r.exit_code == 0, "exit %d: %s", r.exit_code, r.err);
    ck_assert_str_eq(r.out, "requeued 1 dead row\n");
    ck_assert_msg(strstr(r.err, "id 1 is not dead (state sent), skipped") != NULL, "%s", r.err);
    ck_assert_int_eq(count_where("id = 7 AND state = 'pending'"), 1);
    ck_assert_int_eq(count_where("id = 1 AND state = 'sent'"), 1);
}
END_TEST

/* Usage errors: exit 2 with a message naming the problem, and no row changes. */
static const struct {
    const char *args[6];
    const char *message;
} usage_cases[] = {
    {{"requeue", NULL}, "exactly one of"},
    {{"requeue", "--all", "--id", "3", NULL}, "exactly one of"},
    {{"requeue", "--id", "3", "--error-code", "X", NULL}, "exactly one of"},
    {{"requeue", "--all", "--error-code", "X", NULL}, "exactly one of"},
    {{"requeue", "--id", "0", NULL}, "\"0\""},
    {{"requeue", "--id", "-4", NULL}, "\"-4\""},
    {{"requeue", "--id", "12abc", NULL}, "\"12abc\""},
    {{"requeue", "--id", "99999999999999999999", NULL}, "\"99999999999999999999\""},
    {{"requeue", "--id", " 5", NULL}, "\" 5\""},
    {{"requeue", "--id", NULL}, "--id needs a value"},
    {{"requeue", "--error-code", "", NULL}, "non-empty"},
    {{"requeue", "--all", "--json", NULL}, "--json"},
    {{"status", "--all", NULL}, "status takes only --json"},
    {{"migrate", "--json", NULL}, "--json is not valid for \"migrate\""},
    {{"run", "--dry-run", NULL}, "--dry-run is not valid for \"run\""},
};

START_TEST(cli_bad_selectors_exit_2_and_change_nothing)
{
    reset_fixture();
    cli_run r;
    run_cli(usage_cases[_i].args, &r);
    ck_assert_msg(r.exit_code == 2, "exit %d for case %d: %s", r.exit_code, _i, r.err);
    ck_assert_msg(strstr(r.err, usage_cases[_i].message) != NULL, "case %d: %s", _i, r.err);
    ck_assert_int_eq(count_where("state = 'dead'"), 5);
}
END_TEST

START_TEST(cli_unreachable_database_exits_1_without_the_password)
{
    int port = pg_harness_port(pg);
    char url[256];
    /* a port next to the server's, where nothing listens */
    snprintf(url, sizeof(url), "postgresql://relay:S3CRETPW@127.0.0.1:%d/postgres",
             port == 65535 ? port - 1 : port + 1);
    cli_run r;
    run_cli_db(url, (const char *const[]){"status", NULL}, &r);
    ck_assert_int_eq(r.exit_code, 1);
    ck_assert_msg(strstr(r.err, "cannot connect to database") != NULL, "%s", r.err);
    ck_assert_msg(strstr(r.err, "127.0.0.1") != NULL, "server not named: %s", r.err);
    ck_assert_msg(strstr(r.err, "S3CRETPW") == NULL, "password printed: %s", r.err);
}
END_TEST

START_TEST(cli_missing_schema_exits_1_with_a_migrate_hint)
{
    pg_harness_create_database(pg, "empty");
    char url[256];
    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/empty", pg_harness_port(pg));
    cli_run r;
    run_cli_db(url, (const char *const[]){"status", NULL}, &r);
    ck_assert_int_eq(r.exit_code, 1);
    ck_assert_msg(strstr(r.err, "outbox_relay.outbox does not exist") != NULL, "%s", r.err);
    ck_assert_msg(strstr(r.err, "HINT: run outbox-relay migrate") != NULL, "%s", r.err);
    run_cli_db(url, (const char *const[]){"requeue", "--all", NULL}, &r);
    ck_assert_int_eq(r.exit_code, 1);
    ck_assert_msg(strstr(r.err, "HINT: run outbox-relay migrate") != NULL, "%s", r.err);
}
END_TEST

static Suite *admin_suite(void)
{
    Suite *s = suite_create("admin");
    TCase *tc = tcase_create("postgres");
    tcase_add_unchecked_fixture(tc, setup_cluster, teardown_cluster);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, status_counts_pending_retry_dead_and_groups_dead_by_code);
    tcase_add_test(tc, status_reports_no_oldest_age_when_nothing_is_pending);
    tcase_add_test(tc, status_sums_in_flight_rows_of_open_claims_and_counts_relay_sessions);
    tcase_add_test(tc, requeue_by_code_resets_only_those_dead_rows_and_keeps_their_error);
    tcase_add_test(tc, requeue_all_moves_every_dead_row_and_nothing_else);
    tcase_add_test(tc, requeue_by_id_skips_rows_that_are_not_dead);
    tcase_add_loop_test(tc, requeue_dry_run_counts_without_changing_anything, 0,
                        (int)(sizeof(dry_cases) / sizeof(dry_cases[0])));
    tcase_add_test(tc, cli_status_json_has_the_stable_keys_and_counts);
    tcase_add_test(tc, cli_status_json_age_is_null_and_human_output_says_none_when_idle);
    tcase_add_test(tc, cli_requeue_by_code_and_dry_run);
    tcase_add_test(tc, cli_requeue_by_id_reports_ids_that_are_not_dead);
    tcase_add_loop_test(tc, cli_bad_selectors_exit_2_and_change_nothing, 0,
                        (int)(sizeof(usage_cases) / sizeof(usage_cases[0])));
    tcase_add_test(tc, cli_unreachable_database_exits_1_without_the_password);
    tcase_add_test(tc, cli_missing_schema_exits_1_with_a_migrate_hint);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_suite(admin_suite());
}
