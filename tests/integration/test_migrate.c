/*
 * test_migrate.c - migrate_apply() and the sql/ files against a real server.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/migrate.h"
#include "support/pg_harness.h"
#include "support/check_main.h"

#define NREPLICAS 4

static pg_harness *pg;

static void setup_cluster(void)
{
    pg = pg_harness_start();
}

static void teardown_cluster(void)
{
    pg_harness_free(pg);
    pg = NULL;
}

/* A new database named name, with public.users when with_users. */
static PGconn *fresh_db(const char *name, bool with_users)
{
    pg_harness_create_database(pg, name);
    PGconn *conn = pg_harness_connect_db(pg, name);
    if (with_users)
        pg_harness_conn_create_users(conn);
    return conn;
}

/* Runs psql on one sql/ file; returns its exit status. */
static int run_psql(const char *dbname, const char *file)
{
    char conninfo[256];
    pg_harness_conninfo_db(pg, dbname, conninfo, sizeof(conninfo));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        execlp("psql", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d",
               conninfo, "-f", file, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ck_assert_int_eq(errno, EINTR);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_embedded_migrations_are_numbered_in_order)
{
    ck_assert_uint_ge(migrate_count(), 2);
    ck_assert_str_eq(migrate_name(0), "001_outbox");
    ck_assert_str_eq(migrate_name(1), "002_capture_users");
    for (unsigned i = 0; i < migrate_count(); i++) {
        ck_assert_ptr_nonnull(migrate_sql(i));
        ck_assert_ptr_nonnull(strstr(migrate_sql(i), "schema_migrations"));
        if (i > 0)
            ck_assert_int_lt(strcmp(migrate_name(i - 1), migrate_name(i)), 0);
    }
    ck_assert_ptr_null(migrate_name(migrate_count()));
}
END_TEST

START_TEST(test_migrate_without_users_fails_and_applies_nothing)
{
    PGconn *conn = fresh_db("m_nousers", false);
    or_error err = {{0}};
    int applied = -1;
    ck_assert_int_eq(migrate_apply(conn, &applied, &err), OR_ERR);
    ck_assert_int_eq(applied, 0);
    ck_assert_msg(strstr(err.msg, "public.users") != NULL, "message: %s", err.msg);
    ck_assert_msg(strchr(err.msg, '\n') == NULL, "message is not one line: %s", err.msg);
    ck_assert_int_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
    ck_assert_int_eq(pg_harness_conn_scalar(
                         conn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'outbox_relay'"),
                     0);
    PQfinish(conn);
}
END_TEST

START_TEST(test_migrate_applies_every_file_once)
{
    PGconn *conn = fresh_db("m_basic", true);
    or_error err = {{0}};
    int applied = -1;
    ck_assert_msg(migrate_apply(conn, &applied, &err) == OR_OK, "%s", err.msg);
    ck_assert_int_eq(applied, (int)migrate_count());
    ck_assert_int_eq(pg_harness_conn_scalar(conn, "SELECT count(*) FROM "
                                                  "outbox_relay.schema_migrations"),
                     migrate_count());
    char *first = pg_harness_conn_text(
        conn, "SELECT name FROM outbox_relay.schema_migrations WHERE version = '001'");
    ck_assert_str_eq(first, "001_outbox");
    free(first);

    applied = -1;
    ck_assert_msg(migrate_apply(conn, &applied, &err) == OR_OK, "%s", err.msg);
    ck_assert_int_eq(applied, 0);
    ck_assert_int_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
    PQfinish(conn);
}
END_TEST

START_TEST(test_concurrent_replicas_serialise_and_apply_once)
{
    PGconn *setup = fresh_db("m_conc", true);
    PQfinish(setup);

    int gate[2], results[2];
    ck_assert_int_eq(pipe(gate), 0);
    ck_assert_int_eq(pipe(results), 0);
    pid_t kids[NREPLICAS];
    for (int i = 0; i < NREPLICAS; i++) {
        kids[i] = fork();
        ck_assert_int_ge(kids[i], 0);
        if (kids[i] == 0) {
            close(gate[1]);
            close(results[0]);
            char conninfo[256];
            pg_harness_conninfo_db(pg, "m_conc", conninfo, sizeof(conninfo));
            PGconn *conn = PQconnectdb(conninfo);
            char go;
            /* wait until every replica is connected, then all migrate at once */
            while (read(gate[0], &go, 1) < 0 && errno == EINTR)
                ;
            int out[2] = {0, -1};
            or_error err = {{0}};
            if (PQstatus(conn) == CONNECTION_OK)
                out[0] = migrate_apply(conn, &out[1], &err) == OR_OK ? 1 : 0;
            PQfinish(conn);
            ssize_t w = write(results[1], out, sizeof(out));
            _exit(w == (ssize_t)sizeof(out) ? 0 : 1);
        }
    }
    close(gate[0]);
    close(results[1]);
    usleep(300 * 1000);
    close(gate[1]); /* releases every replica */

    int ok = 0, total = 0;
    for (int i = 0; i < NREPLICAS; i++) {
        int in[2];
        ck_assert_int_eq(read(results[0], in, sizeof(in)), (ssize_t)sizeof(in));
        ok += in[0];
        total += in[1];
    }
    close(results[0]);
    for (int i = 0; i < NREPLICAS; i++) {
        int status = 0;
        ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ck_assert_int_eq(ok, NREPLICAS);
    ck_assert_int_eq(total, (int)migrate_count());

    PGconn *conn = pg_harness_connect_db(pg, "m_conc");
    ck_assert_int_eq(pg_harness_conn_scalar(conn, "SELECT count(*) FROM "
                                                  "outbox_relay.schema_migrations"),
                     migrate_count());
    PQfinish(conn);
}
END_TEST

START_TEST(test_files_applied_with_psql_count_as_applied)
{
    PGconn *conn = fresh_db("m_psql", true);
    for (unsigned i = 0; i < migrate_count(); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/sql/%s.sql", OUTBOX_SOURCE_DIR, migrate_name(i));
        ck_assert_msg(run_psql("m_psql", path) == 0, "psql failed on %s", path);
    }
    /* applying them twice by hand is harmless (idempotent files) */
    for (unsigned i = 0; i < migrate_count(); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/sql/%s.sql", OUTBOX_SOURCE_DIR, migrate_name(i));
        ck_assert_msg(run_psql("m_psql", path) == 0, "psql failed re-applying %s", path);
    }
    or_error err = {{0}};
    int applied = -1;
    ck_assert_msg(migrate_apply(conn, &applied, &err) == OR_OK, "%s", err.msg);
    ck_assert_int_eq(applied, 0);
    ck_assert_int_eq(pg_harness_conn_scalar(conn, "SELECT count(*) FROM "
                                                  "outbox_relay.schema_migrations"),
                     migrate_count());
    /* and the capture is installed exactly once */
    pg_harness_conn_exec(conn, "INSERT INTO users (username, email) VALUES ('a', 'a@x')");
    ck_assert_int_eq(pg_harness_conn_scalar(conn, "SELECT count(*) FROM outbox_relay.outbox"), 1);
    PQfinish(conn);
}
END_TEST

START_TEST(test_psql_file_without_users_fails_and_creates_nothing)
{
    PGconn *conn = fresh_db("m_psql_nousers", false);
    char path[512];
    snprintf(path, sizeof(path), "%s/sql/%s.sql", OUTBOX_SOURCE_DIR, migrate_name(0));
    ck_assert_int_ne(run_psql("m_psql_nousers", path), 0);
    ck_assert_int_eq(pg_harness_conn_scalar(
                         conn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'outbox_relay'"),
                     0);
    PQfinish(conn);
}
END_TEST

START_TEST(test_failing_file_is_named_and_nothing_is_applied)
{
    PGconn *conn = fresh_db("m_broken", true);
    /* a conflicting object makes 002 fail after 001 ran in the same transaction */
    pg_harness_conn_exec(conn, "CREATE SCHEMA outbox_relay; "
                               "CREATE TABLE outbox_relay.published_columns (column_name int)");
    or_error err = {{0}};
    int applied = -1;
    ck_assert_int_eq(migrate_apply(conn, &applied, &err), OR_ERR);
    ck_assert_int_eq(applied, 0);
    ck_assert_msg(strstr(err.msg, "002_capture_users") != NULL, "message: %s", err.msg);
    ck_assert_msg(strstr(err.msg, "integer") != NULL, "server reason missing: %s", err.msg);
    ck_assert_int_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
    ck_assert_int_eq(pg_harness_conn_scalar(conn, "SELECT count(*) FROM pg_class "
                                                  "WHERE relname IN ('outbox', "
                                                  "'schema_migrations')"),
                     0);
    PQfinish(conn);
}
END_TEST

static Suite *migrate_suite(void)
{
    Suite *s = suite_create("migrate");
    TCase *tc = tcase_create("postgres");
    tcase_add_unchecked_fixture(tc, setup_cluster, teardown_cluster);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_embedded_migrations_are_numbered_in_order);
    tcase_add_test(tc, test_migrate_without_users_fails_and_applies_nothing);
    tcase_add_test(tc, test_migrate_applies_every_file_once);
    tcase_add_test(tc, test_concurrent_replicas_serialise_and_apply_once);
    tcase_add_test(tc, test_files_applied_with_psql_count_as_applied);
    tcase_add_test(tc, test_psql_file_without_users_fails_and_creates_nothing);
    tcase_add_test(tc, test_failing_file_is_named_and_nothing_is_applied);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_suite(migrate_suite());
}
