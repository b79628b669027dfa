/*
 * test_claim.c - claim / complete / release, the waiter lock and db_conn
 * against a real server.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "db/conn.h"
#include "db/migrate.h"
#include "db/outbox.h"
#include "support/pg_harness.h"
#include "support/check_main.h"

#define NROWS 1000

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

static void reset_with_users(int n)
{
    char sql[512];
    pg_harness_exec(pg, "TRUNCATE public.users RESTART IDENTITY;"
                        "TRUNCATE outbox_relay.outbox RESTART IDENTITY");
    if (n > 0) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO users (username, email)"
                 " SELECT 'u' || g, 'u' || g || '@x' FROM generate_series(1, %d) g",
                 n);
        pg_harness_exec(pg, sql);
    }
}

static db_conn *relay_conn(bool listen)
{
    db_conn_options o = {.conninfo = pg_harness_conninfo(pg), .listen = listen};
    db_conn *c = db_conn_new(&o);
    or_error err = {{0}};
    ck_assert_msg(db_conn_connect(c, &err) == OR_OK, "connect: %s", err.msg);
    return c;
}

static outbox_batch *claim(db_conn *c, int limit)
{
    outbox_batch *b = NULL;
    or_error err = {{0}};
    ck_assert_msg(outbox_claim(c, limit, OUTBOX_ORDER_NONE, &b, &err) == OR_OK, "claim: %s",
                  err.msg);
    ck_assert_ptr_nonnull(b);
    return b;
}

static void complete_all_sent(db_conn *c, const outbox_batch *b)
{
    outbox_outcome *oc = calloc(b->n ? b->n : 1, sizeof(*oc));
    for (size_t i = 0; i < b->n; i++)
        oc[i].kind = OUTBOX_SENT;
    or_error err = {{0}};
    or_status st = outbox_complete(c, b, oc, &err);
    free(oc);
    ck_assert_msg(st == OR_OK, "complete: %s", err.msg);
}

static long long next_ready(db_conn *c)
{
    long long ms = -2;
    or_error err = {{0}};
    ck_assert_msg(outbox_next_ready_in(c, &ms, &err) == OR_OK, "next ready: %s", err.msg);
    return ms;
}

/* EXPLAIN of the prepared claim, as one string; true when it uses the index. */
static bool claim_uses_pending_index(db_conn *c, char *plan, size_t planlen)
{
    PGresult *res = PQexec(db_conn_pg(c), "EXPLAIN EXECUTE outbox_claim(100)");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    bool uses = false;
    plan[0] = '\0';
    for (int i = 0; i < PQntuples(res); i++) {
        uses = uses || strstr(PQgetvalue(res, i, 0), "outbox_pending_idx") != NULL;
        size_t len = strlen(plan);
        snprintf(plan + len, planlen - len, "%s\n", PQgetvalue(res, i, 0));
    }
    PQclear(res);
    return uses;
}

static outbox_batch *claim_ordered(db_conn *c, int limit)
{
    outbox_batch *b = NULL;
    or_error err = {{0}};
    ck_assert_msg(outbox_claim(c, limit, OUTBOX_ORDER_PER_USER, &b, &err) == OR_OK, "claim: %s",
                  err.msg);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* Outbox ids claimed for aggregate agg in batch b (at most 8), in order. */
static int ids_of_user(const outbox_batch *b, const char *agg, long long *out)
{
    int n = 0;
    for (size_t i = 0; i < b->n && n < 8; i++)
        if (strcmp(b->rows[i].aggregate_id, agg) == 0)
            out[n++] = b->rows[i].id;
    return n;
}

START_TEST(test_ordered_claim_takes_only_each_users_earliest_pending_row)
{
    /* user 1: created + 3 updates (outbox ids 1,3,4,5); user 2: created (id 2) */
    reset_with_users(2);
    pg_harness_exec(pg, "UPDATE users SET email = 'a1' WHERE id = 1");
    pg_harness_exec(pg, "UPDATE users SET email = 'a2' WHERE id = 1");
    pg_harness_exec(pg, "UPDATE users SET email = 'a3' WHERE id = 1");
    db_conn *a = relay_conn(false), *b = relay_conn(false);

    outbox_batch *ba = claim_ordered(a, 100);
    long long ids[8];
    ck_assert_int_eq(ids_of_user(ba, "1", ids), 1);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids_of_user(ba, "2", ids), 1);
    ck_assert_uint_eq(ba->n, 2);

    /* while A holds user 1's first event, B may not take user 1's later ones */
    outbox_batch *bb = claim_ordered(b, 100);
    ck_assert_uint_eq(bb->n, 0);
    outbox_batch_free(bb);

    complete_all_sent(a, ba);
    outbox_batch_free(ba);
    bb = claim_ordered(b, 100);
    ck_assert_uint_eq(bb->n, 1);
    ck_assert_int_eq(bb->rows[0].id, 3);
    ck_assert_int_eq(bb->rows[0].entry_failures, 0);

    /* a retry in backoff holds its user back ... */
    outbox_outcome oc = {.kind = OUTBOX_RETRY,
                         .delay_ms = 60000,
                         .error_code = "InternalFailure",
                         .error_message = "x",
                         .entry_failure = true};
    or_error err = {{0}};
    ck_assert_msg(outbox_complete(b, bb, &oc, &err) == OR_OK, "%s", err.msg);
    outbox_batch_free(bb);
    bb = claim_ordered(b, 100);
    ck_assert_uint_eq(bb->n, 0);
    outbox_batch_free(bb);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT entry_failures FROM outbox_relay.outbox "
                                           "WHERE id = 3"),
                     1);

    /* ... until it is dead-lettered: then the user's next event may go */
    pg_harness_exec(pg, "UPDATE outbox_relay.outbox SET next_attempt_at = NULL WHERE id = 3");
    bb = claim_ordered(b, 100);
    ck_assert_uint_eq(bb->n, 1);
    ck_assert_int_eq(bb->rows[0].id, 3);
    oc.kind = OUTBOX_DEAD;
    oc.error_code = "MalformedDetail";
    ck_assert_msg(outbox_complete(b, bb, &oc, &err) == OR_OK, "%s", err.msg);
    outbox_batch_free(bb);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox WHERE id = 3"
                                           " AND state = 'dead' AND next_attempt_at IS NULL"
                                           " AND last_error_code = 'MalformedDetail'"
                                           " AND entry_failures = 2 AND attempts = 2"),
                     1);
    bb = claim_ordered(b, 100);
    ck_assert_uint_eq(bb->n, 1);
    ck_assert_int_eq(bb->rows[0].id, 4);

    /* the unordered claim does not hold users back */
    outbox_batch *bn = claim(a, 100);
    ck_assert_uint_eq(bn->n, 1);
    ck_assert_int_eq(bn->rows[0].id, 5);
    outbox_release(a);
    outbox_batch_free(bn);
    outbox_release(b);
    outbox_batch_free(bb);
    db_conn_free(a);
    db_conn_free(b);
}
END_TEST

START_TEST(test_claim_shows_its_size_in_application_name_until_it_ends)
{
    reset_with_users(7);
    db_conn *a = relay_conn(false);
    outbox_batch *b = claim_ordered(a, 100);
    ck_assert_uint_eq(b->n, 7);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM pg_stat_activity WHERE "
                                           "application_name = 'outbox-relay inflight=7'"),
                     1);
    complete_all_sent(a, b);
    outbox_batch_free(b);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM pg_stat_activity WHERE "
                                           "application_name LIKE 'outbox-relay inflight=%'"),
                     0);
    db_conn_free(a);
}
END_TEST

START_TEST(test_a_stalled_claim_is_broken_after_the_claim_timeout)
{
    reset_with_users(5);
    db_conn_options o = {.conninfo = pg_harness_conninfo(pg), .claim_timeout_ms = 1000};
    db_conn *stalled = db_conn_new(&o);
    or_error err = {{0}};
    ck_assert_msg(db_conn_connect(stalled, &err) == OR_OK, "%s", err.msg);
    outbox_batch *b = claim_ordered(stalled, 100);
    ck_assert_uint_eq(b->n, 5);

    db_conn *other = relay_conn(false);
    outbox_batch *none = claim_ordered(other, 100);
    ck_assert_uint_eq(none->n, 0);
    outbox_batch_free(none);

    long long t0 = clock_mono_ms();
    outbox_batch *taken = NULL;
    while (clock_mono_ms() - t0 < 5000) {
        taken = claim_ordered(other, 100);
        if (taken->n > 0)
            break;
        outbox_batch_free(taken);
        taken = NULL;
        usleep(50 * 1000);
    }
    long long took = clock_mono_ms() - t0;
    ck_assert_msg(taken != NULL && taken->n == 5, "rows not taken over within 5 s");
    ck_assert_msg(took >= 800 && took < 3000, "took over after %lld ms", took);
    complete_all_sent(other, taken);
    outbox_batch_free(taken);

    /* the stalled replica wakes up: it cannot mark or overwrite anything */
    outbox_outcome oc[5];
    for (int i = 0; i < 5; i++)
        oc[i] = (outbox_outcome){.kind = OUTBOX_RETRY, .delay_ms = 0, .error_code = "X"};
    ck_assert_int_eq(outbox_complete(stalled, b, oc, &err), OR_ERR);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox "
                                           "WHERE state = 'sent' AND last_error_code IS NULL"),
                     5);
    outbox_batch_free(b);
    db_conn_free(stalled);
    db_conn_free(other);
}
END_TEST

START_TEST(test_claim_query_uses_the_partial_pending_index)
{
    char plan[2048];
    db_conn *c = relay_conn(false);
    /* a backlog: everything pending */
    reset_with_users(NROWS);
    pg_harness_exec(pg, "ANALYZE outbox_relay.outbox");
    ck_assert_msg(claim_uses_pending_index(c, plan, sizeof(plan)),
                  "backlog: the claim does not use outbox_pending_idx:\n%s", plan);
    /* steady state: nearly everything sent */
    pg_harness_exec(pg, "UPDATE outbox_relay.outbox SET state = 'sent' WHERE id <= 990;"
                        "ANALYZE outbox_relay.outbox");
    ck_assert_msg(claim_uses_pending_index(c, plan, sizeof(plan)),
                  "steady state: the claim does not use outbox_pending_idx:\n%s", plan);
    db_conn_free(c);
}
END_TEST

START_TEST(test_claim_returns_ready_rows_in_id_order_and_complete_marks_them_sent)
{
    reset_with_users(3);
    db_conn *c = relay_conn(false);
    outbox_batch *b = claim(c, 10);
    ck_assert_uint_eq(b->n, 3);
    ck_assert_int_eq(PQtransactionStatus(db_conn_pg(c)), PQTRANS_INTRANS);
    long long wall = (long long)time(NULL) * 1000;
    for (size_t i = 0; i < b->n; i++) {
        const outbox_row *r = &b->rows[i];
        char agg[32];
        snprintf(agg, sizeof(agg), "%zu", i + 1);
        ck_assert_int_eq(r->id, (long long)i + 1);
        ck_assert_str_eq(r->aggregate_id, agg);
        ck_assert_str_eq(r->event_type, "created");
        ck_assert_uint_eq(strlen(r->event_id), 36);
        ck_assert_ptr_nonnull(strstr(r->payload, "\"username\": \"u"));
        ck_assert_int_eq(r->attempts, 0);
        ck_assert_msg(r->occurred_at_ms > wall - 60000 && r->occurred_at_ms < wall + 60000,
                      "occurred_at_ms %lld far from now %lld", r->occurred_at_ms, wall);
    }
    complete_all_sent(c, b);
    outbox_batch_free(b);
    ck_assert_int_eq(PQtransactionStatus(db_conn_pg(c)), PQTRANS_IDLE);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox WHERE "
                                           "state = 'sent' AND attempts = 1 AND sent_at IS NOT "
                                           "NULL"),
                     3);

    b = claim(c, 10);
    ck_assert_uint_eq(b->n, 0);
    ck_assert_int_eq(PQtransactionStatus(db_conn_pg(c)), PQTRANS_IDLE);
    outbox_batch_free(b);
    db_conn_free(c);
}
END_TEST

/* Child of the concurrency test: claims batches until none is left. */
static void claimer(int gate_fd, int out_fd)
{
    char go;
    db_conn *c = relay_conn(false);
    while (read(gate_fd, &go, 1) < 0 && errno == EINTR)
        ;
    for (;;) {
        outbox_batch *b = claim(c, 100);
        if (b->n == 0) {
            outbox_batch_free(b);
            break;
        }
        long long ids[100];
        for (size_t i = 0; i < b->n; i++)
            ids[i] = b->rows[i].id;
        usleep(5000); /* "publishing": lets the other claimer overlap */
        complete_all_sent(c, b);
        ssize_t want = (ssize_t)(b->n * sizeof(ids[0]));
        outbox_batch_free(b);
        ck_assert_int_eq(write(out_fd, ids, (size_t)want), want);
    }
    db_conn_free(c);
}

START_TEST(test_two_claimers_together_claim_every_row_exactly_once)
{
    reset_with_users(NROWS);
    int gate[2], out[2][2];
    ck_assert_int_eq(pipe(gate), 0);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(pipe(out[k]), 0);
        kids[k] = fork();
        ck_assert_int_ge(kids[k], 0);
        if (kids[k] == 0) {
            close(gate[1]);
            close(out[k][0]);
            claimer(gate[0], out[k][1]);
            close(out[k][1]);
            _exit(0);
        }
        close(out[k][1]);
    }
    close(gate[0]);
    usleep(200 * 1000);
    close(gate[1]);

    static int seen[NROWS + 1];
    memset(seen, 0, sizeof(seen));
    int per_child[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        long long id;
        ssize_t r;
        while ((r = read(out[k][0], &id, sizeof(id))) == (ssize_t)sizeof(id)) {
            ck_assert_msg(id >= 1 && id <= NROWS, "unexpected id %lld", id);
            seen[id]++;
            per_child[k]++;
        }
        ck_assert_int_eq(r, 0);
        close(out[k][0]);
        int status = 0;
        ck_assert_int_eq(waitpid(kids[k], &status, 0), kids[k]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "claimer %d failed", k);
    }
    for (int id = 1; id <= NROWS; id++)
        ck_assert_msg(seen[id] == 1, "id %d claimed %d times", id, seen[id]);
    ck_assert_msg(per_child[0] > 0 && per_child[1] > 0, "claims did not overlap: %d / %d",
                  per_child[0], per_child[1]);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox "
                                           "WHERE state = 'sent' AND attempts = 1"),
                     NROWS);
}
END_TEST

START_TEST(test_open_claim_is_skipped_and_freed_when_its_session_ends)
{
    reset_with_users(20);
    db_conn *a = relay_conn(false);
    db_conn *b = relay_conn(false);
    outbox_batch *ba = claim(a, 10);
    ck_assert_uint_eq(ba->n, 10);
    ck_assert_int_eq(ba->rows[9].id, 10);

    outbox_batch *bb = claim(b, 100);
    ck_assert_uint_eq(bb->n, 10);
    for (size_t i = 0; i < bb->n; i++)
        ck_assert_int_gt(bb->rows[i].id, 10);
    outbox_batch_free(bb);
    outbox_release(b);

    outbox_batch_free(ba);
    db_conn_close(a); /* dies without committing */

    /* the server aborts a's transaction as soon as it sees the disconnect */
    size_t got = 0;
    long long deadline = clock_mono_ms() + 5000;
    while (got != 20 && clock_mono_ms() < deadline) {
        bb = claim(b, 100);
        got = bb->n;
        if (got == 20)
            ck_assert_int_eq(bb->rows[0].id, 1);
        outbox_batch_free(bb);
        outbox_release(b);
        if (got != 20)
            usleep(20 * 1000);
    }
    ck_assert_uint_eq(got, 20);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox "
                                           "WHERE state = 'pending' AND attempts = 0"),
                     20);
    db_conn_free(a);
    db_conn_free(b);
}
END_TEST

/* True when row id's last_error_message equals want exactly. */
static bool stored_message_is(long long id, const char *column, const char *want)
{
    char sql[256], ids[32];
    snprintf(ids, sizeof(ids), "%lld", id);
    snprintf(sql, sizeof(sql),
             "SELECT %s IS NOT DISTINCT FROM $2 FROM outbox_relay.outbox WHERE id = $1::bigint",
             column);
    PGconn *conn = pg_harness_connect(pg);
    const char *params[2] = {ids, want};
    PGresult *res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
    bool same = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    PQfinish(conn);
    return same;
}

START_TEST(test_retry_records_the_error_and_hides_the_row_until_its_time)
{
    reset_with_users(3);
    db_conn *c = relay_conn(false);
    ck_assert_int_eq(next_ready(c), -1); /* ready rows, but no retry waiting */

    outbox_batch *b = claim(c, 10);
    ck_assert_uint_eq(b->n, 3);
    const char *msg = "rate \"exceeded\" \\ {a,b} NULL caf\xc3\xa9";
    outbox_outcome oc[3] = {
        {.kind = OUTBOX_SENT},
        {.kind = OUTBOX_RETRY,
         .delay_ms = 60000,
         .error_code = "ThrottlingException",
         .error_message = msg},
        {.kind = OUTBOX_RETRY, .delay_ms = 0, .error_code = NULL, .error_message = ""},
    };
    or_error err = {{0}};
    ck_assert_msg(outbox_complete(c, b, oc, &err) == OR_OK, "complete: %s", err.msg);
    outbox_batch_free(b);

    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox WHERE id = 1"
                                           " AND state = 'sent' AND attempts = 1"),
                     1);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox WHERE id = 2"
                                           " AND state = 'pending' AND attempts = 1"
                                           " AND next_attempt_at > now() + interval '55 s'"
                                           " AND next_attempt_at <= now() + interval '61 s'"),
                     1);
    ck_assert(stored_message_is(2, "last_error_code", "ThrottlingException"));
    ck_assert(stored_message_is(2, "last_error_message", msg));
    ck_assert(stored_message_is(3, "last_error_code", NULL));
    ck_assert(stored_message_is(3, "last_error_message", ""));

    /* row 3 (delay 0) is ready again; row 2's retry is due in about a minute */
    long long due = next_ready(c);
    ck_assert_msg(due > 55000 && due <= 60000, "next retry in %lld ms", due);
    b = claim(c, 10);
    ck_assert_uint_eq(b->n, 1);
    ck_assert_int_eq(b->rows[0].id, 3);
    ck_assert_int_eq(b->rows[0].attempts, 1);
    complete_all_sent(c, b);
    outbox_batch_free(b);

    long long ms = next_ready(c);
    ck_assert_msg(ms > 55000 && ms <= 60000, "next ready in %lld ms", ms);
    b = claim(c, 10);
    ck_assert_uint_eq(b->n, 0);
    outbox_batch_free(b);

    pg_harness_exec(pg, "UPDATE outbox_relay.outbox SET state = 'sent' WHERE id = 2");
    ck_assert_int_eq(next_ready(c), -1);
    db_conn_free(c);
}
END_TEST

/* Error messages are stored cut and cleaned, never rejected by the server. */
typedef struct message_case {
    const char *name;
    size_t repeat;    /* times `unit` is repeated */
    const char *unit; /* the message's building block */
    const char *want; /* stored text (NULL: only check the limits) */
} message_case;

static const message_case message_cases[] = {
    {"invalid utf-8 bytes become question marks", 1, "bad \xff\xfe end", "bad ?? end"},
    {"control characters are replaced", 1,
     "a\tb\nc\x01"
     "d",
     "a b c?d"},
    {"long text is cut on a character boundary", 2000, "\xc3\xa9", NULL},
    {"truncated multi-byte sequence at the end is replaced", 1, "x\xe2\x82", "x??"},
};

START_TEST(test_stored_error_messages_are_bounded_and_valid)
{
    const message_case *mc = &message_cases[_i];
    reset_with_users(1);
    size_t ulen = strlen(mc->unit);
    char *text = calloc(mc->repeat * ulen + 1, 1);
    for (size_t i = 0; i < mc->repeat; i++)
        memcpy(text + i * ulen, mc->unit, ulen);

    db_conn *c = relay_conn(false);
    outbox_batch *b = claim(c, 1);
    ck_assert_uint_eq(b->n, 1);
    outbox_outcome oc = {
        .kind = OUTBOX_RETRY, .delay_ms = 0, .error_code = "E", .error_message = text};
    or_error err = {{0}};
    ck_assert_msg(outbox_complete(c, b, &oc, &err) == OR_OK, "%s: %s", mc->name, err.msg);
    outbox_batch_free(b);
    free(text);
    ck_assert_int_le(pg_harness_scalar(pg, "SELECT octet_length(last_error_message) FROM "
                                           "outbox_relay.outbox"),
                     1000);
    if (mc->want != NULL) {
        char *got = pg_harness_text(pg, "SELECT last_error_message FROM outbox_relay.outbox");
        char shown[1100];
        snprintf(shown, sizeof(shown), "%s", got ? got : "(null)");
        free(got);
        ck_assert_msg(stored_message_is(1, "last_error_message", mc->want), "%s: stored \"%s\"",
                      mc->name, shown);
    } else
        ck_assert_int_eq(pg_harness_scalar(pg, "SELECT char_length(last_error_message) FROM "
                                               "outbox_relay.outbox"),
                         500);
    db_conn_free(c);
}
END_TEST

START_TEST(test_complete_fails_when_rows_are_no_longer_pending)
{
    reset_with_users(2);
    db_conn *c = relay_conn(false);
    outbox_batch *b = claim(c, 10);
    ck_assert_uint_eq(b->n, 2);
    /* something else already finished row 2 inside this claim */
    PGresult *res = PQexec(db_conn_pg(c), "UPDATE outbox_relay.outbox SET state = 'dead' "
                                          "WHERE id = 2");
    ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    outbox_outcome oc[2] = {{.kind = OUTBOX_SENT}, {.kind = OUTBOX_SENT}};
    or_error err = {{0}};
    ck_assert_int_eq(outbox_complete(c, b, oc, &err), OR_ERR);
    ck_assert_msg(strstr(err.msg, "1 of 2") != NULL, "message: %s", err.msg);
    outbox_batch_free(b);
    ck_assert_int_eq(PQtransactionStatus(db_conn_pg(c)), PQTRANS_IDLE);
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox "
                                           "WHERE state = 'pending' AND attempts = 0"),
                     2);
    db_conn_free(c);
}
END_TEST

START_TEST(test_complete_after_session_was_terminated_fails_and_marks_nothing)
{
    reset_with_users(5);
    db_conn *c = relay_conn(false);
    outbox_batch *b = claim(c, 10);
    ck_assert_uint_eq(b->n, 5);
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)::int", PQbackendPID(db_conn_pg(c)));
    ck_assert_int_eq(pg_harness_scalar(pg, sql), 1);
    usleep(100 * 1000);

    outbox_outcome oc[5] = {{.kind = OUTBOX_SENT},
                            {.kind = OUTBOX_SENT},
                            {.kind = OUTBOX_SENT},
                            {.kind = OUTBOX_SENT},
                            {.kind = OUTBOX_SENT}};
    or_error err = {{0}};
    ck_assert_int_eq(outbox_complete(c, b, oc, &err), OR_ERR);
    ck_assert(err.msg[0] != '\0');
    outbox_batch_free(b);
    outbox_release(c); /* harmless on a dead session */
    ck_assert(!db_conn_ok(c));
    ck_assert_int_eq(pg_harness_scalar(pg, "SELECT count(*) FROM outbox_relay.outbox "
                                           "WHERE state = 'pending' AND attempts = 0"),
                     5);
    /* reconnecting gives a working session again */
    ck_assert_msg(db_conn_connect(c, &err) == OR_OK, "reconnect: %s", err.msg);
    b = claim(c, 10);
    ck_assert_uint_eq(b->n, 5);
    complete_all_sent(c, b);
    outbox_batch_free(b);
    db_conn_free(c);
}
END_TEST

START_TEST(test_only_one_relay_enters_the_waiter_lock)
{
    db_conn *a = relay_conn(false);
    db_conn *b = relay_conn(false);
    or_error err = {{0}};
    bool entered = false;
    ck_assert_msg(outbox_waiter_enter(a, &entered, &err) == OR_OK, "%s", err.msg);
    ck_assert(entered);

    long long t0 = clock_mono_ms();
    entered = true;
    ck_assert_msg(outbox_waiter_enter(b, &entered, &err) == OR_OK, "%s", err.msg);
    long long took = clock_mono_ms() - t0;
    ck_assert(!entered);
    ck_assert_msg(took < 1000, "second waiter_enter took %lld ms", took);
    char *lt = pg_harness_conn_text(db_conn_pg(b), "SHOW lock_timeout");
    ck_assert_str_eq(lt, "0");
    free(lt);

    ck_assert_msg(outbox_waiter_leave(a, &err) == OR_OK, "%s", err.msg);
    ck_assert_msg(outbox_waiter_enter(b, &entered, &err) == OR_OK, "%s", err.msg);
    ck_assert(entered);
    ck_assert_msg(outbox_waiter_leave(b, &err) == OR_OK, "%s", err.msg);
    db_conn_free(a);
    db_conn_free(b);
}
END_TEST

START_TEST(test_wait_wakes_on_notification_wake_fd_and_reports_a_dead_session)
{
    reset_with_users(0);
    db_conn *c = relay_conn(true);
    ck_assert(db_conn_listening(c));
    or_error err = {{0}};

    long long t0 = clock_mono_ms();
    ck_assert_int_eq(db_conn_wait(c, 150, -1, &err), 0);
    ck_assert_int_ge(clock_mono_ms() - t0, 140);

    bool entered = false;
    ck_assert_msg(outbox_waiter_enter(c, &entered, &err) == OR_OK, "%s", err.msg);
    ck_assert(entered);
    pg_harness_exec(pg, "INSERT INTO users (username, email) VALUES ('n', 'n@x')");
    ck_assert_int_eq(db_conn_wait(c, 5000, -1, &err), 1);
    ck_assert_msg(outbox_waiter_leave(c, &err) == OR_OK, "%s", err.msg);

    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    t0 = clock_mono_ms();
    ck_assert_int_eq(db_conn_wait(c, 5000, p[0], &err), 0);
    ck_assert_int_lt(clock_mono_ms() - t0, 1000);
    close(p[0]);
    close(p[1]);

    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)::int", PQbackendPID(db_conn_pg(c)));
    ck_assert_int_eq(pg_harness_scalar(pg, sql), 1);
    ck_assert_int_eq(db_conn_wait(c, 5000, -1, &err), -1);
    ck_assert(!db_conn_ok(c));
    db_conn_free(c);
}
END_TEST

START_TEST(test_connect_failure_names_the_server_but_not_the_password)
{
    db_conn_options o = {.conninfo = "postgresql://postgres:sekrit@127.0.0.1:1/postgres",
                         .connect_timeout_s = 2};
    db_conn *c = db_conn_new(&o);
    or_error err = {{0}};
    ck_assert_int_eq(db_conn_connect(c, &err), OR_ERR);
    ck_assert_msg(strstr(err.msg, "127.0.0.1") != NULL, "message: %s", err.msg);
    ck_assert_msg(strstr(err.msg, "sekrit") == NULL, "password leaked: %s", err.msg);
    ck_assert_msg(strchr(err.msg, '\n') == NULL, "not one line: %s", err.msg);
    ck_assert(!db_conn_ok(c));
    ck_assert_ptr_null(db_conn_pg(c));
    db_conn_free(c);
    db_conn_free(NULL);
}
END_TEST

START_TEST(test_connect_accepts_a_url_and_db_exec_reports_server_errors)
{
    db_conn_options o = {.conninfo = pg_harness_url(pg),
                         .application_name = "relay-test",
                         .claim_timeout_ms = 30000};
    db_conn *c = db_conn_new(&o);
    or_error err = {{0}};
    ck_assert_msg(db_conn_connect(c, &err) == OR_OK, "%s", err.msg);
    ck_assert(!db_conn_listening(c));
    char *v = pg_harness_conn_text(db_conn_pg(c), "SHOW idle_in_transaction_session_timeout");
    ck_assert_str_eq(v, "30s");
    free(v);
    v = pg_harness_conn_text(db_conn_pg(c), "SHOW application_name");
    ck_assert_str_eq(v, "relay-test");
    free(v);
    ck_assert_int_eq(db_exec(c, "SELECT 1", &err), OR_OK);
    ck_assert_int_eq(db_exec(c, "SELECT * FROM no_such_table", &err), OR_ERR);
    ck_assert_msg(strstr(err.msg, "no_such_table") != NULL, "message: %s", err.msg);
    db_conn_free(c);
}
END_TEST

START_TEST(test_server_restart_is_noticed_and_reconnect_works)
{
    reset_with_users(1);
    db_conn *c = relay_conn(true);
    or_error err = {{0}};
    pg_harness_restart(pg);
    ck_assert_int_eq(db_conn_wait(c, 5000, -1, &err), -1);
    ck_assert_msg(err.msg[0] != '\0', "no message");

    pg_harness_stop_server(pg);
    ck_assert_int_eq(db_conn_connect(c, &err), OR_ERR);
    pg_harness_start_server(pg);
    ck_assert_msg(db_conn_connect(c, &err) == OR_OK, "reconnect: %s", err.msg);
    ck_assert(db_conn_listening(c));
    outbox_batch *b = claim(c, 10);
    ck_assert_uint_eq(b->n, 1);
    complete_all_sent(c, b);
    outbox_batch_free(b);
    db_conn_free(c);
}
END_TEST

static Suite *claim_suite(void)
{
    Suite *s = suite_create("claim");
    TCase *tc = tcase_create("postgres");
    tcase_add_unchecked_fixture(tc, setup_cluster, teardown_cluster);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_claim_query_uses_the_partial_pending_index);
    tcase_add_test(tc, test_claim_returns_ready_rows_in_id_order_and_complete_marks_them_sent);
    tcase_add_test(tc, test_two_claimers_together_claim_every_row_exactly_once);
    tcase_add_test(tc, test_open_claim_is_skipped_and_freed_when_its_session_ends);
    tcase_add_test(tc, test_retry_records_the_error_and_hides_the_row_until_its_time);
    tcase_add_loop_test(tc, test_stored_error_messages_are_bounded_and_valid, 0,
                        (int)(sizeof(message_cases) / sizeof(message_cases[0])));
    tcase_add_test(tc, test_complete_fails_when_rows_are_no_longer_pending);
    tcase_add_test(tc, test_complete_after_session_was_terminated_fails_and_marks_nothing);
    tcase_add_test(tc, test_only_one_relay_enters_the_waiter_lock);
    tcase_add_test(tc, test_wait_wakes_on_notification_wake_fd_and_reports_a_dead_session);
    tcase_add_test(tc, test_connect_failure_names_the_server_but_not_the_password);
    tcase_add_test(tc, test_connect_accepts_a_url_and_db_exec_reports_server_errors);
    tcase_add_test(tc, test_server_restart_is_noticed_and_reconnect_works);
    tcase_add_test(tc, test_ordered_claim_takes_only_each_users_earliest_pending_row);
    tcase_add_test(tc, test_claim_shows_its_size_in_application_name_until_it_ends);
    tcase_add_test(tc, test_a_stalled_claim_is_broken_after_the_claim_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_suite(claim_suite());
}
