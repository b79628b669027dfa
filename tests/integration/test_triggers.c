/*
 * test_triggers.c - the capture trigger on public.users, the allow-list and
 * the wake-up notification, against a real server.
 */
#include <check.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/migrate.h"
#include "support/pg_harness.h"
#include "support/check_main.h"

static pg_harness *pg;

static void setup_cluster(void)
{
    pg = pg_harness_start_migrated();
}

static void teardown_cluster(void)
{
    pg_harness_free(pg);
    pg = NULL;
}

/* Every test starts from empty tables and the default allow-list. */
static void reset_state(void)
{
    pg_harness_exec(pg, "ALTER TABLE public.users DROP COLUMN IF EXISTS metadata;"
                        "DELETE FROM outbox_relay.published_columns"
                        " WHERE column_name NOT IN ('id', 'username', 'email');"
                        "INSERT INTO outbox_relay.published_columns VALUES"
                        " ('id'), ('username'), ('email') ON CONFLICT DO NOTHING;"
                        "TRUNCATE public.users RESTART IDENTITY;"
                        "TRUNCATE outbox_relay.outbox RESTART IDENTITY");
}

static long long outbox_rows(void)
{
    return pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox");
}

/* Runs sql expecting an error; returns the server's primary message (caller frees). */
static char *exec_expect_error(const char *sql)
{
    PGconn *conn = pg_harness_connect(pg);
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    char *copy = strdup(msg ? msg : "");
    PQclear(res);
    PQfinish(conn);
    ck_assert_msg(st == PGRES_FATAL_ERROR, "expected an error from: %s", sql);
    return copy;
}

/* Counts notifications on channel outbox_relay arriving within ms. */
static int wait_notifies(PGconn *conn, int ms)
{
    int n = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long elapsed = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (elapsed >= ms)
            break;
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        if (poll(&pfd, 1, (int)(ms - elapsed)) > 0) {
            ck_assert_int_eq(PQconsumeInput(conn), 1);
            PGnotify *note;
            while ((note = PQnotifies(conn)) != NULL) {
                ck_assert_str_eq(note->relname, "outbox_relay");
                n++;
                PQfreemem(note);
            }
        }
    }
    return n;
}

/* --- table: one statement on users -> what lands in the outbox --- */

typedef struct capture_case {
    const char *name;
    const char *setup;   /* run first; the outbox is emptied after it */
    const char *action;  /* the statement under test */
    long long rows;      /* outbox rows it must write */
    const char *type;    /* their event_type (when rows > 0) */
    const char *payload; /* exact payload of the first row (jsonb), or NULL */
} capture_case;

#define ANN "INSERT INTO users (username, email, password_hash) VALUES ('ann', 'ann@x', 'secret')"

static const capture_case capture_cases[] = {
    {"insert writes created with the allow-listed columns only", NULL, ANN, 1, "created",
     "{\"id\": 1, \"username\": \"ann\", \"email\": \"ann@x\"}"},
    {"update of email writes updated with the new values", ANN,
     "UPDATE users SET email = 'new@x' WHERE id = 1", 1, "updated",
     "{\"id\": 1, \"username\": \"ann\", \"email\": \"new@x\"}"},
    {"update of password_hash only writes nothing", ANN,
     "UPDATE users SET password_hash = 'other' WHERE id = 1", 0, NULL, NULL},
    {"update to the same values writes nothing", ANN,
     "UPDATE users SET username = username, email = email WHERE id = 1", 0, NULL, NULL},
    {"delete writes deleted with the old values", ANN, "DELETE FROM users WHERE id = 1", 1,
     "deleted", "{\"id\": 1, \"username\": \"ann\", \"email\": \"ann@x\"}"},
    {"multi-row insert writes one row per user", NULL,
     "INSERT INTO users (username, email, password_hash)"
     " SELECT 'u' || g, 'u' || g || '@x', 'pw' FROM generate_series(1, 100) g",
     100, "created", "{\"id\": 1, \"username\": \"u1\", \"email\": \"u1@x\"}"},
    {"rolled-back transaction writes nothing", NULL, "BEGIN; " ANN "; ROLLBACK", 0, NULL, NULL},
    {"update of username and password_hash writes updated", ANN,
     "UPDATE users SET username = 'anne', password_hash = NULL WHERE id = 1", 1, "updated",
     "{\"id\": 1, \"username\": \"anne\", \"email\": \"ann@x\"}"},
};

START_TEST(test_capture_table)
{
    const capture_case *tc = &capture_cases[_i];
    reset_state();
    if (tc->setup != NULL)
        pg_harness_exec(pg, tc->setup);
    pg_harness_exec(pg, "TRUNCATE outbox_relay.outbox RESTART IDENTITY");
    pg_harness_exec(pg, tc->action);

    ck_assert_msg(outbox_rows() == tc->rows, "%s: %lld rows, want %lld", tc->name, outbox_rows(),
                  tc->rows);
    if (tc->rows == 0)
        return;
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM outbox_relay.outbox WHERE event_type = '%s'"
             " AND state = 'pending' AND attempts = 0 AND aggregate_type = 'user'"
             " AND aggregate_id = payload->>'id' AND NOT payload ? 'password_hash'",
             tc->type);
    ck_assert_msg(pg_harness_scalar(pg, sql) == tc->rows, "%s: rows are not all well-formed %s",
                  tc->name, tc->type);
    if (tc->payload != NULL) {
        PGconn *conn = pg_harness_connect(pg);
        const char *params[1] = {tc->payload};
        PGresult *res = PQexecParams(conn,
                                     "SELECT payload = $1::jsonb, payload::text FROM "
                                     "outbox_relay.outbox ORDER BY id LIMIT 1",
                                     1, NULL, params, NULL, NULL, 0);
        ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
        bool same = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        char got[256];
        snprintf(got, sizeof(got), "%s", PQgetvalue(res, 0, 1));
        PQclear(res);
        PQfinish(conn);
        ck_assert_msg(same, "%s: payload %s, want %s", tc->name, got, tc->payload);
    }
}
END_TEST

START_TEST(test_removing_email_from_allow_list_stops_publishing_it)
{
    reset_state();
    pg_harness_exec(pg, "DELETE FROM outbox_relay.published_columns WHERE column_name = 'email'");
    pg_harness_exec(pg, ANN);
    char *payload = pg_harness_text(pg, "SELECT payload::text FROM outbox_relay.outbox");
    ck_assert_str_eq(payload, "{\"id\": 1, \"username\": \"ann\"}");
    free(payload);

    pg_harness_exec(pg, "UPDATE users SET email = 'changed@x' WHERE id = 1");
    ck_assert_int_eq(outbox_rows(), 1);
    pg_harness_exec(pg, "UPDATE users SET username = 'anne' WHERE id = 1");
    ck_assert_int_eq(outbox_rows(), 2);

    /* putting it back publishes it again */
    pg_harness_exec(pg, "INSERT INTO outbox_relay.published_columns VALUES ('email')");
    pg_harness_exec(pg, "UPDATE users SET email = 'again@x' WHERE id = 1");
    ck_assert_int_eq(outbox_rows(), 3);
    payload = pg_harness_text(pg, "SELECT payload->>'email' FROM outbox_relay.outbox "
                                  "ORDER BY id DESC LIMIT 1");
    ck_assert_str_eq(payload, "again@x");
    free(payload);
}
END_TEST

START_TEST(test_allow_listing_a_missing_column_fails_naming_it)
{
    reset_state();
    char *msg =
        exec_expect_error("INSERT INTO outbox_relay.published_columns VALUES ('shoe_size')");
    ck_assert_msg(strstr(msg, "shoe_size") != NULL, "message: %s", msg);
    ck_assert_msg(strstr(msg, "public.users") != NULL, "message: %s", msg);
    free(msg);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.published_columns"),
                     3);
    /* the capture still works as before */
    pg_harness_exec(pg, ANN);
    ck_assert_int_eq(outbox_rows(), 1);
}
END_TEST

START_TEST(test_metadata_is_refused_even_when_users_has_it)
{
    reset_state();
    pg_harness_exec(pg, "ALTER TABLE public.users ADD COLUMN metadata jsonb");
    char *msg = exec_expect_error("INSERT INTO outbox_relay.published_columns VALUES ('metadata')");
    ck_assert_msg(strstr(msg, "published_columns_not_metadata") != NULL, "message: %s", msg);
    free(msg);
    pg_harness_exec(pg, "INSERT INTO users (username, email, metadata)"
                        " VALUES ('m', 'm@x', '{\"k\": 1}')");
    ck_assert_int_eq(pg_harness_scalar(
                         pg, "SELECT count(*) FROM outbox_relay.outbox WHERE payload ? 'metadata'"),
                     0);
}
END_TEST

START_TEST(test_removing_id_from_allow_list_is_refused)
{
    reset_state();
    char *msg =
        exec_expect_error("DELETE FROM outbox_relay.published_columns WHERE column_name = 'id'");
    ck_assert_msg(strstr(msg, "id is required") != NULL, "message: %s", msg);
    free(msg);
    msg = exec_expect_error("TRUNCATE outbox_relay.published_columns");
    ck_assert_msg(strstr(msg, "id is required") != NULL, "message: %s", msg);
    free(msg);
}
END_TEST

START_TEST(test_insert_notifies_once_while_a_relay_holds_the_waiter_lock)
{
    reset_state();
    PGconn *relay = pg_harness_connect(pg);
    pg_harness_conn_exec(relay, "LISTEN outbox_relay");
    pg_harness_conn_exec(relay, "SELECT pg_advisory_lock(28530, 1)");

    pg_harness_exec(pg, ANN);
    ck_assert_int_eq(wait_notifies(relay, 1000), 1);

    /* 100 rows in one transaction: one notification */
    pg_harness_exec(pg, "INSERT INTO users (username, email)"
                        " SELECT 'u' || g, 'e' || g FROM generate_series(1, 100) g");
    ck_assert_int_eq(wait_notifies(relay, 1000), 1);
    PQfinish(relay);
}
END_TEST

START_TEST(test_insert_does_not_notify_without_a_waiter)
{
    reset_state();
    PGconn *relay = pg_harness_connect(pg);
    pg_harness_conn_exec(relay, "LISTEN outbox_relay");
    pg_harness_exec(pg, ANN);
    ck_assert_int_eq(outbox_rows(), 1);
    ck_assert_int_eq(wait_notifies(relay, 500), 0);
    PQfinish(relay);
}
END_TEST

START_TEST(test_waiter_lock_waits_for_writers_in_flight)
{
    reset_state();
    PGconn *writer = pg_harness_connect(pg);
    PGconn *relay = pg_harness_connect(pg);
    pg_harness_conn_exec(writer, "BEGIN; " ANN);
    /* the uncommitted writer holds the shared lock: the relay cannot sleep yet */
    pg_harness_conn_exec(relay, "SET lock_timeout = '200ms'");
    PGresult *res = PQexec(relay, "SELECT pg_advisory_lock(28530, 1)");
    ck_assert_int_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "55P03");
    PQclear(res);
    pg_harness_conn_exec(writer, "COMMIT");
    pg_harness_conn_exec(relay, "SELECT pg_advisory_lock(28530, 1)");
    pg_harness_conn_exec(relay, "SELECT pg_advisory_unlock(28530, 1)");
    PQfinish(writer);
    PQfinish(relay);
}
END_TEST

static Suite *triggers_suite(void)
{
    Suite *s = suite_create("triggers");
    TCase *tc = tcase_create("postgres");
    tcase_add_unchecked_fixture(tc, setup_cluster, teardown_cluster);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_capture_table, 0,
                        (int)(sizeof(capture_cases) / sizeof(capture_cases[0])));
    tcase_add_test(tc, test_removing_email_from_allow_list_stops_publishing_it);
    tcase_add_test(tc, test_allow_listing_a_missing_column_fails_naming_it);
    tcase_add_test(tc, test_metadata_is_refused_even_when_users_has_it);
    tcase_add_test(tc, test_removing_id_from_allow_list_is_refused);
    tcase_add_test(tc, test_insert_notifies_once_while_a_relay_holds_the_waiter_lock);
    tcase_add_test(tc, test_insert_does_not_notify_without_a_waiter);
    tcase_add_test(tc, test_waiter_lock_waits_for_writers_in_flight);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_suite(triggers_suite());
}
