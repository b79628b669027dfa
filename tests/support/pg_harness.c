/*
 * pg_harness.c - throwaway PostgreSQL clusters for the integration tests.
 */
#include "pg_harness.h"
#include "proc.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PGH_DEFAULT_BINDIR "/usr/lib/postgresql/15/bin"

struct pg_harness {
    char dir[256];     /* mkdtemp directory, owned by postgres when root */
    char datadir[300]; /* dir/data */
    char logfile[300]; /* dir/log: the server log */
    char cmdlog[300];  /* dir/cmd.log: output of initdb/pg_ctl */
    char bindir[512];
    char conninfo[256];
    char url[256];
    int port;
    bool running;
    pid_t owner; /* only the process that started it tears it down */
};

/* Last bytes of a file, for failure messages. */
static void pgh_tail(const char *path, char *out, size_t outlen)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    long want = (long)outlen - 1;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > want)
            (void)fseek(f, size - want, SEEK_SET);
        else
            (void)fseek(f, 0, SEEK_SET);
    }
    size_t n = fread(out, 1, outlen - 1, f);
    out[n] = '\0';
    fclose(f);
}

/* Finds the PostgreSQL server binaries: $OUTBOX_PG_BINDIR, pg_config, default. */
static void pgh_find_bindir(char *out, size_t outlen)
{
    const char *env = getenv("OUTBOX_PG_BINDIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(out, outlen, "%s", env);
        return;
    }
    snprintf(out, outlen, "%s", PGH_DEFAULT_BINDIR);
    FILE *p = popen("pg_config --bindir 2>/dev/null", "r");
    if (p == NULL)
        return;
    char line[512];
    if (fgets(line, sizeof(line), p) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char initdb[600];
        snprintf(initdb, sizeof(initdb), "%s/initdb", line);
        if (line[0] != '\0' && access(initdb, X_OK) == 0)
            snprintf(out, outlen, "%s", line);
    }
    pclose(p);
}

/*
 * Runs bindir/prog with args (NULL-terminated) in h->dir, as postgres when we
 * are root, output appended to h->cmdlog. Returns the exit status (or -1).
 */
static int pgh_run(const pg_harness *h, const char *prog, const char *const *args)
{
    char path[700];
    const char *argv[32];
    int n = 0;
    snprintf(path, sizeof(path), "%s/%s", h->bindir, prog);
    if (geteuid() == 0) {
        argv[n++] = "runuser";
        argv[n++] = "-u";
        argv[n++] = "postgres";
        argv[n++] = "--";
    }
    argv[n++] = path;
    for (int i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(h->cmdlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            close(devnull);
        }
        if (chdir(h->dir) != 0)
            _exit(126);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Fails the test with what failed and the tail of the command log. */
static void pgh_fail(const pg_harness *h, const char *what, int rc)
{
    char tail[1200];
    pgh_tail(h->cmdlog, tail, sizeof(tail));
    ck_abort_msg("pg_harness: %s failed (exit %d); see %s and %s:\n%s", what, rc, h->cmdlog,
                 h->logfile, tail);
}

static int pgh_free_port(void)
{
    int port = proc_free_tcp_port();
    ck_assert_msg(port > 0, "pg_harness: cannot find a free port");
    return port;
}

static void pgh_pg_ctl(pg_harness *h, const char *action, const char *mode)
{
    char opts[512];
    snprintf(opts, sizeof(opts),
             "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
             "-c full_page_writes=off -c max_connections=100",
             h->port, h->dir);
    const char *start_args[] = {"start", "-w",       "-t", "120", "-D", h->datadir,
                                "-l",    h->logfile, "-o", opts,  NULL};
    const char *restart_args[] = {"restart",  "-w", "-t",       "120", "-m", "fast", "-D",
                                  h->datadir, "-l", h->logfile, "-o",  opts, NULL};
    const char *stop_args[] = {"stop", "-w", "-t", "120", "-m", mode, "-D", h->datadir, NULL};
    const char *const *args = start_args;
    if (strcmp(action, "restart") == 0)
        args = restart_args;
    else if (strcmp(action, "stop") == 0)
        args = stop_args;
    int rc = pgh_run(h, "pg_ctl", args);
    if (rc != 0) {
        char what[64];
        snprintf(what, sizeof(what), "pg_ctl %s", action);
        pgh_fail(h, what, rc);
    }
}

pg_harness *pg_harness_start(void)
{
    pg_harness *h = calloc(1, sizeof(*h));
    ck_assert_msg(h != NULL, "pg_harness: out of memory");
    h->owner = getpid();
    snprintf(h->dir, sizeof(h->dir), "/tmp/orpg.XXXXXX");
    if (mkdtemp(h->dir) == NULL) {
        int e = errno;
        free(h);
        ck_abort_msg("pg_harness: mkdtemp: %s", strerror(e));
    }
    snprintf(h->datadir, sizeof(h->datadir), "%s/data", h->dir);
    snprintf(h->logfile, sizeof(h->logfile), "%s/log", h->dir);
    snprintf(h->cmdlog, sizeof(h->cmdlog), "%s/cmd.log", h->dir);
    pgh_find_bindir(h->bindir, sizeof(h->bindir));

    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        ck_assert_msg(pw != NULL, "pg_harness: running as root but there is no postgres user");
        /* the command log is created by us, then written by postgres */
        int fd = open(h->cmdlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0)
            close(fd);
        if (chown(h->dir, pw->pw_uid, pw->pw_gid) != 0 ||
            chown(h->cmdlog, pw->pw_uid, pw->pw_gid) != 0)
            ck_abort_msg("pg_harness: chown %s to postgres: %s", h->dir, strerror(errno));
    }

    const char *initdb_args[] = {"-D",        h->datadir, "-U",   "postgres",   "-A", "trust",
                                 "--no-sync", "-E",       "UTF8", "--locale=C", NULL};
    int rc = pgh_run(h, "initdb", initdb_args);
    if (rc != 0)
        pgh_fail(h, "initdb", rc);

    h->port = pgh_free_port();
    snprintf(h->conninfo, sizeof(h->conninfo),
             "host=127.0.0.1 port=%d user=postgres dbname=postgres", h->port);
    snprintf(h->url, sizeof(h->url), "postgresql://postgres@127.0.0.1:%d/postgres", h->port);
    pgh_pg_ctl(h, "start", NULL);
    h->running = true;
    return h;
}

static int pgh_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

void pg_harness_free(pg_harness *h)
{
    if (h == NULL)
        return;
    if (h->owner == getpid()) {
        /* always: a test child may have restarted it behind our back */
        const char *args[] = {"stop", "-w", "-m", "immediate", "-D", h->datadir, NULL};
        (void)pgh_run(h, "pg_ctl", args);
        (void)nftw(h->dir, pgh_rm, 16, FTW_DEPTH | FTW_PHYS);
    }
    free(h);
}

const char *pg_harness_conninfo(const pg_harness *h)
{
    return h->conninfo;
}

const char *pg_harness_url(const pg_harness *h)
{
    return h->url;
}

int pg_harness_port(const pg_harness *h)
{
    return h->port;
}

const char *pg_harness_dir(const pg_harness *h)
{
    return h->dir;
}

void pg_harness_conninfo_db(const pg_harness *h, const char *dbname, char *out, size_t outlen)
{
    snprintf(out, outlen, "host=127.0.0.1 port=%d user=postgres dbname=%s", h->port, dbname);
}

/* Test output stays readable: server notices are dropped. */
static void pgh_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *pg_harness_connect_db(const pg_harness *h, const char *dbname)
{
    char conninfo[256];
    pg_harness_conninfo_db(h, dbname, conninfo, sizeof(conninfo));
    PGconn *conn = PQconnectdb(conninfo);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        char why[512];
        snprintf(why, sizeof(why), "%s", conn ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);
        ck_abort_msg("pg_harness: cannot connect to %s: %s", conninfo, why);
    }
    PQsetNoticeProcessor(conn, pgh_quiet, NULL);
    return conn;
}

PGconn *pg_harness_connect(const pg_harness *h)
{
    return pg_harness_connect_db(h, "postgres");
}

/* Runs sql on conn; aborts the test (after clearing) unless it succeeded. */
static PGresult *pgh_query(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char why[768];
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        snprintf(why, sizeof(why), "%s", msg ? msg : PQerrorMessage(conn));
        PQclear(res);
        ck_abort_msg("pg_harness: SQL failed: %s\n  SQL: %.300s", why, sql);
    }
    return res;
}

void pg_harness_conn_exec(PGconn *conn, const char *sql)
{
    PQclear(pgh_query(conn, sql));
}

char *pg_harness_conn_text(PGconn *conn, const char *sql)
{
    PGresult *res = pgh_query(conn, sql);
    if (PQntuples(res) != 1 || PQnfields(res) != 1) {
        int rows = PQntuples(res);
        PQclear(res);
        ck_abort_msg("pg_harness: expected one value, got %d rows: %.300s", rows, sql);
    }
    char *v = PQgetisnull(res, 0, 0) ? NULL : strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* Parses a query's single value as an integer; takes ownership of v. */
static long long pgh_parse_ll(char *v, const char *sql)
{
    ck_assert_msg(v != NULL, "pg_harness: NULL where a number was expected: %.300s", sql);
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    bool ok = errno == 0 && end != v && *end == '\0';
    char copy[64];
    snprintf(copy, sizeof(copy), "%s", v);
    free(v);
    ck_assert_msg(ok, "pg_harness: \"%s\" is not an integer: %.300s", copy, sql);
    return n;
}

long long pg_harness_conn_scalar(PGconn *conn, const char *sql)
{
    return pgh_parse_ll(pg_harness_conn_text(conn, sql), sql);
}

void pg_harness_exec(const pg_harness *h, const char *sql)
{
    PGconn *conn = pg_harness_connect(h);
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char why[768];
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        snprintf(why, sizeof(why), "%s", msg ? msg : PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        ck_abort_msg("pg_harness: SQL failed: %s\n  SQL: %.300s", why, sql);
    }
    PQclear(res);
    PQfinish(conn);
}

char *pg_harness_text(const pg_harness *h, const char *sql)
{
    PGconn *conn = pg_harness_connect(h);
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    char why[768] = "";
    char *v = NULL;
    bool ok = false;
    if (st != PGRES_TUPLES_OK) {
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        snprintf(why, sizeof(why), "SQL failed: %s", msg ? msg : PQerrorMessage(conn));
    } else if (PQntuples(res) != 1 || PQnfields(res) != 1) {
        snprintf(why, sizeof(why), "expected one value, got %d rows", PQntuples(res));
    } else {
        v = PQgetisnull(res, 0, 0) ? NULL : strdup(PQgetvalue(res, 0, 0));
        ok = true;
    }
    PQclear(res);
    PQfinish(conn);
    ck_assert_msg(ok, "pg_harness: %s\n  SQL: %.300s", why, sql);
    return v;
}

long long pg_harness_scalar(const pg_harness *h, const char *sql)
{
    return pgh_parse_ll(pg_harness_text(h, sql), sql);
}

void pg_harness_create_database(const pg_harness *h, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\"", name);
    pg_harness_exec(h, sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
    pg_harness_exec(h, sql);
}

static const char pgh_users_sql[] =
    "CREATE TABLE public.users (id bigserial PRIMARY KEY, username text NOT NULL, "
    "email text NOT NULL, password_hash text, created_at timestamptz DEFAULT now())";

void pg_harness_create_users(const pg_harness *h)
{
    pg_harness_exec(h, pgh_users_sql);
}

void pg_harness_conn_create_users(PGconn *conn)
{
    pg_harness_conn_exec(conn, pgh_users_sql);
}

void pg_harness_stop_server(pg_harness *h)
{
    if (!h->running)
        return;
    pgh_pg_ctl(h, "stop", "fast");
    h->running = false;
}

void pg_harness_start_server(pg_harness *h)
{
    if (h->running)
        return;
    pgh_pg_ctl(h, "start", NULL);
    h->running = true;
}

void pg_harness_restart(pg_harness *h)
{
    pgh_pg_ctl(h, "restart", NULL);
    h->running = true;
}
