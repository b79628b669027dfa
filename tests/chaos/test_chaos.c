/*
 * test_chaos.c - three relay replicas under a steady stream of user changes
 * while replicas are killed and paused, PostgreSQL restarts and the
 * endpoint fails, throttles, drops connections, slows down and goes away.
 * Afterwards every committed change must have been published, per-user
 * order must hold, redeliveries must be identical and no secret may leak.
 *
 * CHAOS_SEED=N replays a schedule; CHAOS_WRITE_SECONDS=N changes how long
 * the writer runs (default 70).
 */
#include <check.h>
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chaos/chaos_util.h"
#include "common/clock.h"
#include "common/error.h"
#include "support/check_main.h"

#define N_REPLICAS     3
#define CLAIM_TIMEOUT  3000
#define USER_POOL_MAX  1000
#define WRITE_RATE     520 /* statements per second */
#define SECRET_MARKER  "CHAOS-SECRET"
#define DRAIN_TIMEOUT  90000
#define MAX_TX_CHANGES 5

static chaos_env env;

static void setup(void)
{
    chaos_env_start(&env);
}

static void teardown(void)
{
    chaos_env_stop(&env);
}

/* ---- the writer (a forked child with its own connection) ---- */

typedef struct writer_stats {
    long long committed;  /* changes that publish an event, in committed transactions */
    long long ambiguous;  /* changes whose COMMIT outcome is unknown (connection lost) */
    long long silent;     /* committed password_hash-only updates */
    long long tx_ok;      /* committed transactions */
    long long tx_failed;  /* failed transactions (not counted) */
    long long reconnects; /* successful reconnections */
} writer_stats;

static volatile sig_atomic_t writer_stop;

static void writer_on_term(int sig)
{
    (void)sig;
    writer_stop = 1;
}

enum { OP_INSERT, OP_EMAIL, OP_USERNAME, OP_PASSWORD, OP_DELETE };

typedef struct writer_op {
    int kind;
    long long user; /* target id (not for inserts) */
} writer_op;

static PGconn *writer_connect(const char *conninfo, writer_stats *st, bool first)
{
    for (;;) {
        PGconn *c = PQconnectdb(conninfo);
        if (PQstatus(c) == CONNECTION_OK) {
            if (!first)
                st->reconnects++;
            return c;
        }
        PQfinish(c);
        if (writer_stop)
            return NULL;
        clock_sleep_ms(100);
    }
}

static void pool_remove(long long *pool, size_t *n, long long id)
{
    for (size_t i = 0; i < *n; i++)
        if (pool[i] == id) {
            pool[i] = pool[--*n];
            return;
        }
}

/* Runs in the child; writes the stats to fd at the end. */
static void writer_main(const char *conninfo, uint64_t seed, long duration_ms, int fd)
{
    writer_stats st = {0};
    long long pool[USER_POOL_MAX];
    size_t npool = 0;
    uint64_t rng = seed ^ 0x5eedULL;
    unsigned long long seq = 0, statements = 0;
    int64_t t0 = clock_mono_ms();
    PGconn *c = writer_connect(conninfo, &st, true);

    while (c != NULL && !writer_stop && clock_mono_ms() - t0 < duration_ms) {
        writer_op ops[MAX_TX_CHANGES];
        int nops = 1 + (int)chaos_rng_below(&rng, MAX_TX_CHANGES);
        char sql[4096];
        size_t len = (size_t)snprintf(sql, sizeof(sql), "BEGIN;");
        for (int i = 0; i < nops; i++) {
            unsigned pick = (unsigned)chaos_rng_below(&rng, 100);
            int kind;
            if (npool < 50 || (npool < USER_POOL_MAX && pick < 40) || pick < 15)
                kind = OP_INSERT;
            else if (pick < 50)
                kind = OP_EMAIL;
            else if (pick < 72)
                kind = OP_USERNAME;
            else if (pick < 88)
                kind = OP_PASSWORD;
            else
                kind = OP_DELETE;
            ops[i].kind = kind;
            ops[i].user = npool ? pool[chaos_rng_below(&rng, npool)] : 0;
            seq++;
            switch (kind) {
            case OP_INSERT:
                len += (size_t)snprintf(sql + len, sizeof(sql) - len,
                                        "INSERT INTO users (username, email, password_hash) "
                                        "VALUES ('cu%llu', 'cu%llu@example.com', "
                                        "'" SECRET_MARKER "-%llu') RETURNING id;",
                                        seq, seq, seq);
                break;
            case OP_EMAIL:
                len += (size_t)snprintf(sql + len, sizeof(sql) - len,
                                        "UPDATE users SET email = 'e%llu-%lld@example.com' "
                                        "WHERE id = %lld;",
                                        seq, ops[i].user, ops[i].user);
                break;
            case OP_USERNAME:
                len += (size_t)snprintf(sql + len, sizeof(sql) - len,
                                        "UPDATE users SET username = 'u%llu-%lld' WHERE id = %lld;",
                                        seq, ops[i].user, ops[i].user);
                break;
            case OP_PASSWORD:
                len += (size_t)snprintf(sql + len, sizeof(sql) - len,
                                        "UPDATE users SET password_hash = '" SECRET_MARKER
                                        "-PW-%llu' WHERE id = %lld;",
                                        seq, ops[i].user);
                break;
            default:
                len += (size_t)snprintf(sql + len, sizeof(sql) - len,
                                        "DELETE FROM users WHERE id = %lld;", ops[i].user);
                break;
            }
        }
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, "COMMIT;");

        /* one result per statement: BEGIN, the ops, COMMIT */
        long long events = 0, silent = 0, inserted[MAX_TX_CHANGES];
        int ninserted = 0, got = 0, first_fail = -1;
        bool committed = false;
        if (PQsendQuery(c, sql)) {
            PGresult *res;
            while ((res = PQgetResult(c)) != NULL) {
                ExecStatusType rs = PQresultStatus(res);
                if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
                    if (first_fail < 0)
                        first_fail = got;
                    if (st.tx_failed < 20) {
                        char msg[256];
                        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
                        msg[strcspn(msg, "\n")] = '\0';
                        chaos_note("writer: statement %d of %d failed: %s", got, nops + 2, msg);
                    }
                } else if (first_fail >= 0) {
                    /* nothing after a failure counts */
                } else if (got >= 1 && got <= nops) {
                    const writer_op *op = &ops[got - 1];
                    long long touched = strtoll(PQcmdTuples(res), NULL, 10);
                    if (op->kind == OP_INSERT && PQntuples(res) == 1) {
                        inserted[ninserted++] = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
                        events++;
                    } else if (op->kind == OP_PASSWORD) {
                        silent += touched;
                    } else {
                        events += touched;
                    }
                } else if (got == nops + 1) {
                    committed = strcmp(PQcmdStatus(res), "COMMIT") == 0;
                }
                got++;
                PQclear(res);
            }
        } else {
            first_fail = 0;
        }
        statements += (unsigned long long)nops;

        if (committed) {
            st.tx_ok++;
            st.committed += events;
            st.silent += silent;
            for (int i = 0; i < ninserted; i++)
                if (npool < USER_POOL_MAX) /* beyond that, new users are left alone */
                    pool[npool++] = inserted[i];
            for (int i = 0; i < nops; i++)
                if (ops[i].kind == OP_DELETE)
                    pool_remove(pool, &npool, ops[i].user);
        } else {
            st.tx_failed++;
            /* every statement ran and only the COMMIT's reply is missing or an error */
            if (first_fail == nops + 1 || (first_fail < 0 && got == nops + 1))
                st.ambiguous += events;
        }
        if (PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = writer_connect(conninfo, &st, false);
        } else if (PQtransactionStatus(c) != PQTRANS_IDLE) {
            PQclear(PQexec(c, "ROLLBACK"));
        }
        /* pace: WRITE_RATE statements per second */
        int64_t due = t0 + (int64_t)(statements * 1000ULL / WRITE_RATE);
        int64_t now = clock_mono_ms();
        if (due > now)
            clock_sleep_ms(due - now);
    }
    PQfinish(c);
    ssize_t w = write(fd, &st, sizeof(st));
    (void)w;
}

static pid_t writer_start(uint64_t seed, long duration_ms, int *rfd)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo), "%s connect_timeout=2 application_name=chaos-writer",
             pg_harness_conninfo(env.pg));
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(fds[0]);
        signal(SIGTERM, writer_on_term);
        writer_main(conninfo, seed, duration_ms, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    *rfd = fds[0];
    return pid;
}

static bool writer_running(pid_t pid)
{
    return waitpid(pid, NULL, WNOHANG) == 0;
}

static void writer_finish(pid_t pid, int rfd, writer_stats *st)
{
    kill(pid, SIGTERM);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    memset(st, 0, sizeof(*st));
    ssize_t got = read(rfd, st, sizeof(*st));
    close(rfd);
    ck_assert_msg(got == (ssize_t)sizeof(*st), "the writer reported no statistics");
}

/* ---- replicas and the chaos schedule ---- */

typedef struct replica {
    proc *p;
    char log[32];
    int64_t resume_at; /* SIGSTOPped until then; 0 when running */
} replica;

enum {
    ACT_KILL,
    ACT_PAUSE,
    ACT_ENTRY_FAIL,
    ACT_THROTTLE,
    ACT_HTTP500,
    ACT_DROP,
    ACT_SLOW,
    N_RANDOM_ACTS,
    ACT_PG_RESTART = N_RANDOM_ACTS,
    ACT_OUTAGE,
    N_ACTS
};

static const char *const act_names[N_ACTS] = {"kill", "pause", "entry-fail", "throttle", "http500",
                                              "drop", "slow",  "pg-restart", "outage"};

static replica replicas[N_REPLICAS];

static void replica_start(int i)
{
    snprintf(replicas[i].log, sizeof(replicas[i].log), "replica%d.log", i + 1);
    replicas[i].p = chaos_spawn_relay(&env, replicas[i].log, NULL, NULL);
    replicas[i].resume_at = 0;
}

static void dump_all_logs(void)
{
    for (int i = 0; i < N_REPLICAS; i++)
        chaos_dump_tail(&env, replicas[i].log, 50);
    endpoint_dump_log(env.ep);
}

/* A replica that exited on its own is a relay bug: fail with its log. */
static void check_replicas_alive(void)
{
    for (int i = 0; i < N_REPLICAS; i++) {
        int status = -1;
        if (proc_wait(replicas[i].p, 0, &status)) {
            chaos_note("replica%d exited by itself with status %d", i + 1, status);
            chaos_dump_tail(&env, replicas[i].log, 50);
            ck_abort_msg("replica%d exited by itself with status %d", i + 1, status);
        }
    }
}

START_TEST(three_replicas_under_chaos_publish_every_change_in_per_user_order)
{
    chaos_env_reset(&env);
    uint64_t rng = chaos_seed();
    long write_ms = 70000;
    const char *ws = getenv("CHAOS_WRITE_SECONDS");
    if (ws != NULL && ws[0]) {
        char *end = NULL;
        long v = strtol(ws, &end, 10);
        ck_assert_msg(end != ws && *end == '\0' && v > 0 && v <= 600,
                      "CHAOS_WRITE_SECONDS=%s is not 1..600", ws);
        write_ms = v * 1000;
    }
    int64_t t0 = clock_mono_ms();
    for (int i = 0; i < N_REPLICAS; i++)
        replica_start(i);
    int rfd = -1;
    pid_t writer = writer_start(chaos_rng_next(&rng), write_ms, &rfd);
    chaos_note("writer %d started for %ld s, %d replicas running", (int)writer, write_ms / 1000,
               N_REPLICAS);

    /* the chaos schedule, relative to t0 */
    int64_t outage_at = t0 + write_ms * (20 + (int64_t)chaos_rng_below(&rng, 15)) / 100;
    int64_t restart_at = t0 + write_ms * (55 + (int64_t)chaos_rng_below(&rng, 15)) / 100;
    int64_t next_act = t0 + 2000 + (int64_t)chaos_rng_below(&rng, 2000);
    int64_t ep_reset_at = 0, outage_until = 0, stop_chaos_at = t0 + write_ms - 3000;
    int counts[N_ACTS] = {0};

    while (writer_running(writer)) {
        int64_t now = clock_mono_ms();
        for (int i = 0; i < N_REPLICAS; i++)
            if (replicas[i].resume_at && now >= replicas[i].resume_at) {
                proc_signal(replicas[i].p, SIGCONT);
                replicas[i].resume_at = 0;
                chaos_note("SIGCONT replica%d", i + 1);
            }
        if (ep_reset_at && now >= ep_reset_at) {
            endpoint_reset_faults(env.ep);
            ep_reset_at = 0;
            chaos_note("endpoint faults cleared");
        }
        check_replicas_alive();
        int act = -1;
        if (now >= stop_chaos_at) {
            act = -1;
        } else if (outage_at && now >= outage_at) {
            act = ACT_OUTAGE;
            outage_at = 0;
        } else if (restart_at && now >= restart_at) {
            act = ACT_PG_RESTART;
            restart_at = 0;
        } else if (now >= next_act) {
            act = (int)chaos_rng_below(&rng, N_RANDOM_ACTS);
            next_act = now + 2000 + (int64_t)chaos_rng_below(&rng, 2500);
            /* the outage runs its full length: no other endpoint fault replaces it */
            if (act != ACT_KILL && act != ACT_PAUSE && now < outage_until)
                act = -1;
        }
        int victim =
            act == ACT_KILL || act == ACT_PAUSE ? (int)chaos_rng_below(&rng, N_REPLICAS) : 0;
        switch (act) {
        case ACT_KILL: {
            int64_t gap = (int64_t)chaos_rng_below(&rng, 1001);
            proc_kill_wait(replicas[victim].p);
            proc_free(replicas[victim].p);
            chaos_note("SIGKILL replica%d, restart in %lld ms", victim + 1, (long long)gap);
            clock_sleep_ms(gap);
            replica_start(victim);
            break;
        }
        case ACT_PAUSE:
            if (replicas[victim].resume_at) {
                act = -1; /* already paused; skip */
                break;
            }
            replicas[victim].resume_at =
                now + CLAIM_TIMEOUT + 1000 + (int64_t)chaos_rng_below(&rng, 1001);
            proc_signal(replicas[victim].p, SIGSTOP);
            chaos_note("SIGSTOP replica%d for %lld ms", victim + 1,
                       (long long)(replicas[victim].resume_at - now));
            break;
        case ACT_ENTRY_FAIL:
            endpoint_control(env.ep, "{\"reset\":true,\"entry_fail_code\":\"InternalFailure\","
                                     "\"entry_fail_rate\":0.05}");
            ep_reset_at = now + 5000;
            chaos_note("endpoint: 5%% of entries fail with InternalFailure for 5 s");
            break;
        case ACT_THROTTLE:
            endpoint_control(env.ep, "{\"reset\":true,\"http_status\":400,"
                                     "\"http_error_type\":\"ThrottlingException\","
                                     "\"http_count\":30,"
                                     "\"entry_fail_code\":\"ThrottlingException\","
                                     "\"entry_fail_rate\":0.2}");
            ep_reset_at = now + 5000;
            chaos_note("endpoint: 30 requests throttled, then 20%% of entries for 5 s");
            break;
        case ACT_HTTP500:
            endpoint_control(env.ep, "{\"reset\":true,\"http_status\":500,\"http_count\":20}");
            ep_reset_at = now + 5000;
            chaos_note("endpoint: the next 20 requests get 500");
            break;
        case ACT_DROP:
            endpoint_control(env.ep, "{\"reset\":true,\"drop_count\":10}");
            ep_reset_at = now + 5000;
            chaos_note("endpoint: the next 10 connections are dropped");
            break;
        case ACT_SLOW:
            endpoint_control(env.ep, "{\"reset\":true,\"delay_ms\":200}");
            ep_reset_at = now + 5000;
            chaos_note("endpoint: replies delayed by 200 ms for 5 s");
            break;
        case ACT_OUTAGE:
            endpoint_control(env.ep,
                             "{\"reset\":true,\"http_status\":503,\"http_count\":100000000}");
            ep_reset_at = outage_until = now + 10000;
            chaos_note("endpoint: outage (503 to everything) for 10 s");
            break;
        case ACT_PG_RESTART: {
            chaos_note("PostgreSQL: restart -m fast");
            pg_harness_restart(env.pg);
            chaos_note("PostgreSQL: back after %lld ms", (long long)(clock_mono_ms() - now));
            break;
        }
        default:
            break;
        }
        if (act >= 0)
            counts[act]++;
        clock_sleep_ms(50);
    }

    writer_stats ws_out;
    writer_finish(writer, rfd, &ws_out);
    chaos_note("writer done: %lld changes committed (+%lld unknown outcome, %lld silent "
               "password updates), %lld transactions, %lld failed, %lld reconnects",
               ws_out.committed, ws_out.ambiguous, ws_out.silent, ws_out.tx_ok, ws_out.tx_failed,
               ws_out.reconnects);

    /* calm: no faults, every replica running */
    endpoint_reset_faults(env.ep);
    for (int i = 0; i < N_REPLICAS; i++) {
        proc_signal(replicas[i].p, SIGCONT);
        replicas[i].resume_at = 0;
    }
    check_replicas_alive();
    bool drained = chaos_wait_drained(&env, DRAIN_TIMEOUT);
    if (!drained) {
        dump_all_logs();
        pg_harness_exec(env.pg, "SELECT 1"); /* the database still answers */
    }
    ck_assert_msg(drained, "the outbox did not drain within %d ms (seed in the first line)",
                  DRAIN_TIMEOUT);
    check_replicas_alive();
    bool stopped_ok = true;
    for (int i = 0; i < N_REPLICAS; i++) {
        stopped_ok &= chaos_stop_relay(&env, replicas[i].p, replicas[i].log);
        proc_free(replicas[i].p);
        replicas[i].p = NULL;
    }

    chaos_report rep;
    bool ok = chaos_check_records(&env, SECRET_MARKER, &rep);
    endpoint_counters est;
    endpoint_stats(env.ep, &est);
    long long rows = (long long)rep.outbox_rows;
    bool count_ok = rows >= ws_out.committed && rows <= ws_out.committed + ws_out.ambiguous;
    char acts[512];
    size_t alen = 0;
    for (int k = 0; k < N_ACTS; k++)
        alen += (size_t)snprintf(acts + alen, sizeof(acts) - alen, "%s%s=%d", k ? " " : "",
                                 act_names[k], counts[k]);
    fprintf(stderr,
            "SUMMARY chaos: changes committed %lld (outbox rows %zu), entries received %zu, "
            "distinct %zu, duplicates %zu, max duplicates of one event %zu, order violations "
            "%zu, lost %zu, phantoms %zu, not sent %zu, detail mismatches %zu, leaks %zu, "
            "signature failures %lld, faults injected %lld; actions: %s; duration %.1f s\n",
            ws_out.committed, rep.outbox_rows, rep.records, rep.distinct_events, rep.duplicates,
            rep.max_dups, rep.order_violations, rep.unpublished, rep.phantoms, rep.not_sent,
            rep.dup_mismatches, rep.secret_leaks, est.signature_failures, est.faults_injected, acts,
            (double)(clock_mono_ms() - t0) / 1000.0);
    if (!ok || !stopped_ok || !count_ok || est.signature_failures != 0)
        dump_all_logs();
    ck_assert_msg(count_ok,
                  "the outbox holds %lld rows but the writer committed %lld (+%lld "
                  "unknown)",
                  rows, ws_out.committed, ws_out.ambiguous);
    ck_assert_msg(ws_out.committed >= 10000, "the writer committed only %lld changes",
                  ws_out.committed);
    ck_assert_msg(counts[ACT_PG_RESTART] == 1 && counts[ACT_OUTAGE] == 1,
                  "the schedule did not run (restart %d, outage %d)", counts[ACT_PG_RESTART],
                  counts[ACT_OUTAGE]);
    ck_assert_int_eq(est.signature_failures, 0);
    ck_assert_msg(stopped_ok, "a replica did not exit 0 on SIGTERM");
    ck_assert_msg(ok, "record checks failed: see CHECK lines above");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chaos");
    TCase *tc = tcase_create("chaos");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 400);
    tcase_add_test(tc, three_replicas_under_chaos_publish_every_change_in_per_user_order);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
