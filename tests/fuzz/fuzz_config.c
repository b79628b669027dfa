/*
 * fuzz_config.c - libFuzzer target for config_load().
 *
 * The input is written to a memfd and loaded as the YAML config file
 * "/proc/self/fd/N", with an environment that only sets AWS_REGION=us-east-1.
 *
 * Invariants (abort() on violation):
 *   - OR_OK: *out is set, and config_print() to /dev/null works
 *   - OR_ERR: *out is NULL, and the message is non-empty, NUL-terminated and
 *     one line (no '\n')
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"
#include "fuzz/fuzz_target.h"

static void fuzz_fail(const char *what, const or_error *err)
{
    fprintf(stderr, "fuzz_config: invariant violated: %s (error: \"%.*s\")\n", what,
            (int)sizeof(err->msg), err->msg);
    abort();
}

static const char *fuzz_getenv(const char *name, void *ctx)
{
    (void)ctx;
    return strcmp(name, "AWS_REGION") == 0 ? "us-east-1" : NULL;
}

/* Writes all of data to fd, or aborts (the harness itself failed). */
static void fuzz_write_all(int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t w = write(fd, data, size);
        if (w <= 0) {
            perror("fuzz_config: write to memfd");
            abort();
        }
        data += w;
        size -= (size_t)w;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    static relay_config sentinel; /* config_load must replace it with a config or NULL */
    char path[64];
    relay_config *cfg = &sentinel;
    or_error err;

    if (devnull == NULL) {
        devnull = fopen("/dev/null", "w");
        if (devnull == NULL) {
            perror("fuzz_config: /dev/null");
            abort();
        }
    }
    int fd = memfd_create("fuzz_config", MFD_CLOEXEC);
    if (fd < 0) {
        perror("fuzz_config: memfd_create");
        abort();
    }
    fuzz_write_all(fd, data, size);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    memset(err.msg, 'x', sizeof(err.msg)); /* unterminated until config_load sets it */

    or_status rc = config_load(path, fuzz_getenv, NULL, &cfg, &err);
    close(fd);
    if (rc == OR_OK) {
        if (cfg == NULL || cfg == &sentinel)
            fuzz_fail("OR_OK without a config", &err);
        config_print(cfg, devnull);
        if (fflush(devnull) != 0 || ferror(devnull))
            fuzz_fail("config_print to /dev/null failed", &err);
    } else if (rc == OR_ERR) {
        if (cfg != NULL)
            fuzz_fail("OR_ERR with a config", &err);
        if (memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
            fuzz_fail("error message is not NUL-terminated", &err);
        if (err.msg[0] == '\0')
            fuzz_fail("error message is empty", &err);
        if (strchr(err.msg, '\n') != NULL)
            fuzz_fail("error message has a newline", &err);
    } else {
        fuzz_fail("status is neither OR_OK nor OR_ERR", &err);
    }
    config_free(cfg);
    return 0;
}
