/*
 * main.c - the outbox-relay command line.
 *
 *   outbox-relay run           [--config PATH]   publish the outbox to EventBridge
 *   outbox-relay migrate       [--config PATH]   apply the embedded sql/ migrations
 *   outbox-relay check-config  [--config PATH]   print the effective settings
 *   outbox-relay status        [--json]          the queue at a glance
 *   outbox-relay requeue       (--all | --id N... | --error-code CODE) [--dry-run]
 *   outbox-relay version | help
 *
 * Exit status: 0 success, 1 runtime failure, 2 bad configuration or usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "config/config.h"
#include "db/admin.h"
#include "db/migrate.h"
#include "relay/relay.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

/* lock-free, so async-signal-safe; atomic, so every worker thread may read it */
static atomic_int stop_requested;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
               "the stop flag must be lock-free to be set from a signal handler");
static int wake_pipe[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_store(&stop_requested, 1);
    if (wake_pipe[1] >= 0) {
        char c = 1;
        ssize_t n = write(wake_pipe[1], &c, 1);
        (void)n;
    }
    errno = saved;
}

static int install_signals(void)
{
    if (pipe(wake_pipe) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(wake_pipe[i], F_GETFL);
        fcntl(wake_pipe[i], F_SETFL, fl | O_NONBLOCK);
        fcntl(wake_pipe[i], F_SETFD, FD_CLOEXEC);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: outbox-relay <command> [--config PATH]\n"
                 "       outbox-relay status [--json] [--config PATH]\n"
                 "       outbox-relay requeue (--all | --id N [--id N ...] | --error-code CODE)\n"
                 "                            [--dry-run] [--config PATH]\n"
                 "\n"
                 "commands:\n"
                 "  run           publish pending outbox rows to EventBridge until SIGTERM/SIGINT\n"
                 "  migrate       apply the embedded sql/ migrations (idempotent, replica-safe)\n"
                 "  status        print pending, in-flight, retry-waiting and dead rows, the age\n"
                 "                of the oldest pending change and the relay sessions\n"
                 "                (--json: one JSON object)\n"
                 "  requeue       move dead rows back to pending: all of them, the given ids, or\n"
                 "                those whose last error code is CODE (--dry-run: only count)\n"
                 "  check-config  print the effective settings (secrets masked) and exit\n"
                 "  config-reference  print the settings reference as Markdown\n"
                 "  version       print the version\n"
                 "\n"
                 "Settings come from the YAML file given with --config, overridden by the\n"
                 "environment (DATABASE_URL, AWS_REGION, AWS_ENDPOINT_URL_EVENTBRIDGE, AWS keys,\n"
                 "OUTBOX_RELAY_*). See docs/configuration.md.\n");
}

static int load_config(config_purpose purpose, const char *path, relay_config **cfg)
{
    or_error err = {{0}};
    if (config_load_for(purpose, path, NULL, NULL, cfg, &err) != OR_OK) {
        fprintf(stderr, "outbox-relay: configuration error: %s\n", err.msg);
        return EXIT_USAGE;
    }
    log_set_level((*cfg)->log_level);
    return 0;
}

static int cmd_run(const relay_config *cfg)
{
    or_error err = {{0}};
    if (install_signals() != 0) {
        fprintf(stderr, "outbox-relay: cannot set up signal handling: %s\n", strerror(errno));
        return EXIT_RUNTIME;
    }
    relay *r = relay_new(cfg, &err);
    if (r == NULL) {
        log_error("cannot start: %s", err.msg);
        return EXIT_USAGE;
    }
    or_status st = relay_run(r, &stop_requested, wake_pipe[0], &err);
    relay_free(r);
    if (st != OR_OK) {
        log_error("relay failed: %s", err.msg);
        return EXIT_RUNTIME;
    }
    return 0;
}

/*
 * One connection attempt for the one-shot commands (migrate, status,
 * requeue). On failure prints a message naming the server (password
 * redacted) and returns NULL.
 */
static PGconn *command_connect(const relay_config *cfg, const char *application_name)
{
    char label[256];
    log_redact_conninfo(cfg->database_url ? cfg->database_url : "(PG* environment)", label,
                        sizeof(label));
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", (cfg->connect_timeout_ms + 999) / 1000);
    /* connect_timeout first: a value in the URL overrides it */
    const char *keys[] = {"connect_timeout", "dbname", "application_name", NULL};
    const char *vals[] = {timeout, cfg->database_url ? cfg->database_url : "", application_name,
                          NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        fprintf(stderr, "outbox-relay: cannot connect to database %s: %s\n", label, msg);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static int cmd_migrate(const relay_config *cfg)
{
    PGconn *conn = command_connect(cfg, "outbox-relay migrate");
    if (conn == NULL)
        return EXIT_RUNTIME;
    or_error err = {{0}};
    int applied = 0;
    or_status st = migrate_apply(conn, &applied, &err);
    PQfinish(conn);
    if (st != OR_OK) {
        fprintf(stderr, "outbox-relay: migrate failed: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    if (applied == 0)
        printf("migrations up to date (%u known)\n", migrate_count());
    else
        printf("applied %d migration%s (%u known)\n", applied, applied == 1 ? "" : "s",
               migrate_count());
    return 0;
}

#define REQUEUE_MAX_IDS 1000 /* --id values per requeue run */

/* Options of the status and requeue commands (rejected for the others). */
typedef struct admin_options {
    const char *first;              /* the first such option seen, for error messages */
    bool json;                      /* status --json */
    bool all;                       /* requeue --all */
    bool dry_run;                   /* requeue --dry-run */
    const char *error_code;         /* requeue --error-code CODE */
    long long ids[REQUEUE_MAX_IDS]; /* requeue --id N */
    size_t n_ids;
} admin_options;

/*
 * One connection attempt for status/requeue. On failure prints a message
 * naming the server (password redacted) and returns NULL.
 */
static PGconn *admin_connect(const relay_config *cfg, const char *application_name)
{
    PGconn *conn = command_connect(cfg, application_name);
    if (conn == NULL)
        return NULL;
    or_error err = {{0}};
    bool present = false;
    if (admin_schema_present(conn, &present, &err) != OR_OK) {
        fprintf(stderr, "outbox-relay: %s\n", err.msg);
        PQfinish(conn);
        return NULL;
    }
    if (!present) {
        char label[256];
        log_redact_conninfo(cfg->database_url ? cfg->database_url : "(PG* environment)", label,
                            sizeof(label));
        fprintf(stderr,
                "outbox-relay: table outbox_relay.outbox does not exist in database %s\n"
                "HINT: run outbox-relay migrate\n",
                label);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static void status_print_json(const admin_status_info *st)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "pending", json_object_new_int64(st->pending));
    json_object_object_add(o, "in_flight", json_object_new_int64(st->in_flight));
    json_object_object_add(o, "retry_waiting", json_object_new_int64(st->retry_waiting));
    json_object_object_add(o, "dead", json_object_new_int64(st->dead));
    json_object_object_add(
        o, "oldest_pending_age_seconds",
        st->has_oldest_pending
            ? json_object_new_double_s(st->oldest_pending_age_s, st->oldest_pending_age)
            : NULL);
    json_object *codes = json_object_new_object();
    for (size_t i = 0; i < st->n_dead_codes; i++)
        json_object_object_add(codes, st->dead_by_code[i].code,
                               json_object_new_int64(st->dead_by_code[i].count));
    json_object_object_add(o, "dead_by_error_code", codes);
    json_object_object_add(o, "relay_sessions", json_object_new_int64(st->relay_sessions));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static void status_print_human(const admin_status_info *st)
{
    printf("%-22s %lld\n", "pending:", st->pending);
    printf("%-22s %lld\n", "in flight:", st->in_flight);
    printf("%-22s %lld\n", "waiting for retry:", st->retry_waiting);
    printf("%-22s %lld\n", "dead:", st->dead);
    printf("%-22s %s%s\n",
           "oldest pending age:", st->has_oldest_pending ? st->oldest_pending_age : "none",
           st->has_oldest_pending ? " s" : "");
    printf("%-22s %lld\n", "relay sessions:", st->relay_sessions);
    if (st->n_dead_codes > 0) {
        printf("dead by error code%s:\n",
               st->n_dead_codes == ADMIN_TOP_ERROR_CODES ? " (top 10)" : "");
        for (size_t i = 0; i < st->n_dead_codes; i++)
            printf("  %-30s %lld\n", st->dead_by_code[i].code, st->dead_by_code[i].count);
    }
}

static int cmd_status(const relay_config *cfg, const admin_options *opt)
{
    PGconn *conn = admin_connect(cfg, "outbox-relay status");
    if (conn == NULL)
        return EXIT_RUNTIME;
    or_error err = {{0}};
    admin_status_info st;
    or_status s = admin_status(conn, &st, &err);
    PQfinish(conn);
    if (s != OR_OK) {
        fprintf(stderr, "outbox-relay: status failed: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    if (opt->json)
        status_print_json(&st);
    else
        status_print_human(&st);
    return 0;
}

static int cmd_requeue(const relay_config *cfg, const admin_options *opt)
{
    admin_requeue_filter f = {.kind = ADMIN_REQUEUE_ALL};
    if (opt->n_ids > 0) {
        f.kind = ADMIN_REQUEUE_IDS;
        f.ids = opt->ids;
        f.n_ids = opt->n_ids;
    } else if (opt->error_code != NULL) {
        f.kind = ADMIN_REQUEUE_ERROR_CODE;
        f.error_code = opt->error_code;
    }
    PGconn *conn = admin_connect(cfg, "outbox-relay requeue");
    if (conn == NULL)
        return EXIT_RUNTIME;
    or_error err = {{0}};
    admin_requeue_result r;
    or_status s = admin_requeue(conn, &f, opt->dry_run, &r, &err);
    PQfinish(conn);
    if (s != OR_OK) {
        admin_requeue_result_free(&r);
        fprintf(stderr, "outbox-relay: requeue failed: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    for (size_t i = 0; i < r.n_skipped; i++) {
        const admin_skipped_id *k = &r.skipped[i];
        if (k->state[0] == '\0')
            fprintf(stderr, "outbox-relay: id %lld does not exist, skipped\n", k->id);
        else if (strcmp(k->state, "dead") == 0)
            fprintf(stderr, "outbox-relay: id %lld is no longer dead, skipped\n", k->id);
        else
            fprintf(stderr, "outbox-relay: id %lld is not dead (state %s), skipped\n", k->id,
                    k->state);
    }
    if (opt->dry_run)
        printf("would requeue %lld dead row%s\n", r.count, r.count == 1 ? "" : "s");
    else
        printf("requeued %lld dead row%s\n", r.count, r.count == 1 ? "" : "s");
    admin_requeue_result_free(&r);
    return 0;
}

/* A --id value: a positive integer, all of the string. */
static bool parse_row_id(const char *s, long long *out)
{
    if (s[0] < '0' || s[0] > '9')
        return false; /* strtoll would accept blanks and signs */
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0)
        return false;
    *out = v;
    return true;
}

/*
 * Takes argv[*i] if it is a status/requeue option (consuming its value too).
 * Returns 1 when taken, 0 when it is not one, EXIT_USAGE (after a message)
 * when it is one but malformed.
 */
static int parse_admin_option(int argc, char **argv, int *i, admin_options *opt)
{
    const char *arg = argv[*i];
    const char *value = NULL;
    bool is_id = strcmp(arg, "--id") == 0 || strncmp(arg, "--id=", 5) == 0;
    bool is_code = strcmp(arg, "--error-code") == 0 || strncmp(arg, "--error-code=", 13) == 0;
    if (strcmp(arg, "--json") == 0) {
        opt->json = true;
    } else if (strcmp(arg, "--all") == 0) {
        opt->all = true;
    } else if (strcmp(arg, "--dry-run") == 0) {
        opt->dry_run = true;
    } else if (is_id || is_code) {
        const char *name = is_id ? "--id" : "--error-code";
        const char *eq = strchr(arg, '=');
        if (eq != NULL) {
            value = eq + 1;
        } else if (*i + 1 < argc) {
            value = argv[++*i];
        } else {
            fprintf(stderr, "outbox-relay: %s needs a value\n", name);
            return EXIT_USAGE;
        }
        if (is_id) {
            long long id = 0;
            if (!parse_row_id(value, &id)) {
                fprintf(stderr, "outbox-relay: --id must be a positive integer, got \"%s\"\n",
                        value);
                return EXIT_USAGE;
            }
            if (opt->n_ids == REQUEUE_MAX_IDS) {
                fprintf(stderr, "outbox-relay: at most %d --id values per requeue\n",
                        REQUEUE_MAX_IDS);
                return EXIT_USAGE;
            }
            opt->ids[opt->n_ids++] = id;
        } else {
            if (value[0] == '\0') {
                fprintf(stderr, "outbox-relay: --error-code needs a non-empty code\n");
                return EXIT_USAGE;
            }
            if (opt->error_code != NULL) {
                fprintf(stderr, "outbox-relay: --error-code given twice\n");
                return EXIT_USAGE;
            }
            opt->error_code = value;
        }
    } else {
        return 0;
    }
    if (opt->first == NULL)
        opt->first = is_id ? "--id" : is_code ? "--error-code" : arg;
    return 1;
}

/* The options fit the command: 0, or EXIT_USAGE after a message. */
static int check_admin_options(const char *command, const admin_options *opt)
{
    bool status = strcmp(command, "status") == 0;
    bool requeue = strcmp(command, "requeue") == 0;
    if (!status && !requeue) {
        if (opt->first != NULL) {
            fprintf(stderr, "outbox-relay: option %s is not valid for \"%s\"\n", opt->first,
                    command);
            return EXIT_USAGE;
        }
        return 0;
    }
    if (status && (opt->all || opt->dry_run || opt->n_ids > 0 || opt->error_code != NULL)) {
        fprintf(stderr, "outbox-relay: status takes only --json (and --config)\n");
        return EXIT_USAGE;
    }
    if (requeue) {
        if (opt->json) {
            fprintf(stderr, "outbox-relay: option --json is not valid for \"requeue\"\n");
            return EXIT_USAGE;
        }
        int kinds = (opt->all ? 1 : 0) + (opt->n_ids > 0 ? 1 : 0) + (opt->error_code ? 1 : 0);
        if (kinds != 1) {
            fprintf(stderr, "outbox-relay: requeue needs exactly one of --all, --id N "
                            "(repeatable) or --error-code CODE\n");
            return EXIT_USAGE;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *command = NULL;
    const char *config_path = NULL;
    admin_options aopt = {0};
    for (int i = 1; i < argc; i++) {
        int taken = parse_admin_option(argc, argv, &i, &aopt);
        if (taken == EXIT_USAGE)
            return EXIT_USAGE;
        if (taken == 1)
            continue;
        if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "outbox-relay: --config needs a file path\n");
                return EXIT_USAGE;
            }
            config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "outbox-relay: unknown option %s\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        } else if (command == NULL) {
            command = argv[i];
        } else {
            fprintf(stderr, "outbox-relay: unexpected argument %s\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (command == NULL || strcmp(command, "help") == 0) {
        usage(command ? stdout : stderr);
        return command ? 0 : EXIT_USAGE;
    }
    if (strcmp(command, "version") == 0) {
        printf("outbox-relay %s\n", OUTBOX_RELAY_VERSION);
        return 0;
    }
    if (strcmp(command, "config-reference") == 0) {
        config_print_reference(stdout);
        return 0;
    }
    bool admin_cmd = strcmp(command, "status") == 0 || strcmp(command, "requeue") == 0;
    if (strcmp(command, "run") != 0 && strcmp(command, "migrate") != 0 &&
        strcmp(command, "check-config") != 0 && !admin_cmd) {
        fprintf(stderr, "outbox-relay: unknown command \"%s\"\n", command);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (check_admin_options(command, &aopt) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }

    relay_config *cfg = NULL;
    bool db_only = strcmp(command, "migrate") == 0 || admin_cmd;
    int rc = load_config(db_only ? CONFIG_FOR_DATABASE : CONFIG_FOR_RELAY, config_path, &cfg);
    if (rc != 0)
        return rc;
    if (strcmp(command, "check-config") == 0) {
        config_print(cfg, stdout);
        rc = 0;
    } else if (strcmp(command, "migrate") == 0) {
        rc = cmd_migrate(cfg);
    } else if (strcmp(command, "status") == 0) {
        rc = cmd_status(cfg, &aopt);
    } else if (strcmp(command, "requeue") == 0) {
        rc = cmd_requeue(cfg, &aopt);
    } else {
        rc = cmd_run(cfg);
    }
    config_free(cfg);
    return rc;
}
