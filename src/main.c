/*
 * main.c - the outbox-relay command line.
 *
 *   outbox-relay run           [--config PATH]   publish the outbox to EventBridge
 *   outbox-relay migrate       [--config PATH]   apply the embedded sql/ migrations
 *   outbox-relay check-config  [--config PATH]   print the effective settings
 *   outbox-relay version | help
 *
 * Exit status: 0 success, 1 runtime failure, 2 bad configuration or usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "config/config.h"
#include "db/migrate.h"
#include "relay/relay.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

static volatile sig_atomic_t stop_requested;
static int wake_pipe[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    (void)sig;
    int saved = errno;
    stop_requested = 1;
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
                 "\n"
                 "commands:\n"
                 "  run           publish pending outbox rows to EventBridge until SIGTERM/SIGINT\n"
                 "  migrate       apply the embedded sql/ migrations (idempotent, replica-safe)\n"
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

static int cmd_migrate(const relay_config *cfg)
{
    char label[256];
    log_redact_conninfo(cfg->database_url ? cfg->database_url : "(PG* environment)", label,
                        sizeof(label));
    const char *keys[] = {"dbname", "application_name", NULL};
    const char *vals[] = {cfg->database_url ? cfg->database_url : "", "outbox-relay migrate", NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        fprintf(stderr, "outbox-relay: cannot connect to database %s: %s\n", label, msg);
        PQfinish(conn);
        return EXIT_RUNTIME;
    }
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

int main(int argc, char **argv)
{
    const char *command = NULL;
    const char *config_path = NULL;
    for (int i = 1; i < argc; i++) {
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
    if (strcmp(command, "run") != 0 && strcmp(command, "migrate") != 0 &&
        strcmp(command, "check-config") != 0) {
        fprintf(stderr, "outbox-relay: unknown command \"%s\"\n", command);
        usage(stderr);
        return EXIT_USAGE;
    }

    relay_config *cfg = NULL;
    int rc = load_config(strcmp(command, "migrate") == 0 ? CONFIG_FOR_DATABASE : CONFIG_FOR_RELAY,
                         config_path, &cfg);
    if (rc != 0)
        return rc;
    if (strcmp(command, "check-config") == 0) {
        config_print(cfg, stdout);
        rc = 0;
    } else if (strcmp(command, "migrate") == 0) {
        rc = cmd_migrate(cfg);
    } else {
        rc = cmd_run(cfg);
    }
    config_free(cfg);
    return rc;
}
