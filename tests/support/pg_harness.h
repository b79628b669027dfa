/*
 * pg_harness.h - a throwaway PostgreSQL cluster for integration tests.
 *
 * pg_harness_start() runs initdb in a fresh /tmp directory and starts a
 * server on a free 127.0.0.1 port (as the postgres user when run as root).
 * Every helper fails the current Check test with ck_abort_msg() and a clear
 * reason instead of returning an error. Helpers that take a pg_harness open
 * a short-lived connection to the default database ("postgres").
 */
#ifndef OUTBOX_TESTS_PG_HARNESS_H
#define OUTBOX_TESTS_PG_HARNESS_H

#include <libpq-fe.h>
#include <stddef.h>

typedef struct pg_harness pg_harness;

/* initdb + start; aborts the test on failure. */
pg_harness *pg_harness_start(void);

/* Stops the server (immediate) and removes its directory; NULL is a no-op. */
void pg_harness_free(pg_harness *h);

/* "host=127.0.0.1 port=N user=postgres dbname=postgres" */
const char *pg_harness_conninfo(const pg_harness *h);

/* "postgresql://postgres@127.0.0.1:N/postgres" */
const char *pg_harness_url(const pg_harness *h);

/* The server's TCP port. */
int pg_harness_port(const pg_harness *h);

/* The cluster's temporary directory (holds the data dir and the server log). */
const char *pg_harness_dir(const pg_harness *h);

/* Writes the key=value conninfo of database dbname into out. */
void pg_harness_conninfo_db(const pg_harness *h, const char *dbname, char *out, size_t outlen);

/* A new connection to the default database (caller PQfinish()es). */
PGconn *pg_harness_connect(const pg_harness *h);

/* A new connection to database dbname (caller PQfinish()es). */
PGconn *pg_harness_connect_db(const pg_harness *h, const char *dbname);

/* CREATE DATABASE name (dropping an existing one first). */
void pg_harness_create_database(const pg_harness *h, const char *name);

/* Runs sql (may be several statements); fails the test with the server message. */
void pg_harness_exec(const pg_harness *h, const char *sql);

/* Runs sql returning one non-NULL integer value. */
long long pg_harness_scalar(const pg_harness *h, const char *sql);

/* Runs sql returning one value as a new string (NULL for SQL NULL); caller frees. */
char *pg_harness_text(const pg_harness *h, const char *sql);

/* The same three on a given connection. */
void pg_harness_conn_exec(PGconn *conn, const char *sql);
long long pg_harness_conn_scalar(PGconn *conn, const char *sql);
char *pg_harness_conn_text(PGconn *conn, const char *sql);

/* The User Service's table: public.users(id, username, email, password_hash, created_at). */
void pg_harness_create_users(const pg_harness *h);

/*
 * pg_harness_start(), then the users table and every embedded migration
 * (tests/support/pg_migrated.c; needs or_db). Aborts the test on failure.
 */
pg_harness *pg_harness_start_migrated(void);
void pg_harness_conn_create_users(PGconn *conn);

/* pg_ctl stop -m fast / start again on the same port and data / restart -m fast. */
void pg_harness_stop_server(pg_harness *h);
void pg_harness_start_server(pg_harness *h);
void pg_harness_restart(pg_harness *h);

#endif
