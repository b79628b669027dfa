/* test_config.c - settings: defaults, file, environment, precedence, validation, printing. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "support/check_main.h"

#define ENV_MAX 16

/* Fake environment: NULL-terminated "NAME=value" strings. */
typedef struct test_env {
    const char *vars[ENV_MAX];
} test_env;

static const char *test_getenv(const char *name, void *ctx)
{
    const test_env *env = ctx;
    size_t n = strlen(name);
    for (size_t i = 0; i < ENV_MAX && env->vars[i] != NULL; i++) {
        if (strncmp(env->vars[i], name, n) == 0 && env->vars[i][n] == '=')
            return env->vars[i] + n + 1;
    }
    return NULL;
}

/* Writes text to a fresh temporary file; path receives its name. */
static void write_temp(const char *text, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "/tmp/test_config_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "mkstemp failed");
    size_t len = strlen(text);
    ck_assert_msg(write(fd, text, len) == (ssize_t)len, "short write to %s", path);
    close(fd);
}

/*
 * Loads yaml (NULL = no file) with env. The temp file's name goes to path so
 * error messages can be checked against it.
 */
static or_status load(const char *yaml, const test_env *env, relay_config **cfg, or_error *err,
                      char *path, size_t pathlen)
{
    char local[64];
    if (path == NULL) {
        path = local;
        pathlen = sizeof(local);
    }
    path[0] = '\0';
    if (yaml != NULL)
        write_temp(yaml, path, pathlen);
    memset(err->msg, 0, sizeof(err->msg));
    or_status rc = config_load(yaml ? path : NULL, test_getenv, (void *)env, cfg, err);
    if (yaml != NULL)
        unlink(path);
    if (rc == OR_OK)
        ck_assert_ptr_nonnull(*cfg);
    else
        ck_assert_ptr_null(*cfg);
    return rc;
}

static relay_config *load_ok(const char *yaml, const test_env *env)
{
    relay_config *cfg = NULL;
    or_error err;
    or_status rc = load(yaml, env, &cfg, &err, NULL, 0);
    ck_assert_msg(rc == OR_OK, "load failed: %s", err.msg);
    return cfg;
}

static void assert_one_line(const char *msg)
{
    ck_assert_msg(msg[0] != '\0', "error message is empty");
    ck_assert_msg(strchr(msg, '\n') == NULL, "error message has a newline: %s", msg);
}

static char *print_to_string(const relay_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    config_print(cfg, f);
    fclose(f);
    return buf;
}

/* ---- defaults and sources ---- */

START_TEST(defaults_apply_when_only_region_is_set)
{
    test_env env = {{"AWS_REGION=eu-west-1"}};
    relay_config *cfg = load_ok(NULL, &env);
    ck_assert_ptr_null(cfg->database_url);
    ck_assert_str_eq(cfg->aws_region, "eu-west-1");
    ck_assert_ptr_null(cfg->aws_access_key_id);
    ck_assert_ptr_null(cfg->aws_secret_access_key);
    ck_assert_ptr_null(cfg->aws_session_token);
    ck_assert_str_eq(cfg->endpoint_url, "https://events.eu-west-1.amazonaws.com");
    ck_assert(cfg->endpoint_derived);
    ck_assert_str_eq(cfg->event_bus_name, "user-service-bus");
    ck_assert_str_eq(cfg->event_source, "user-service");
    ck_assert_int_eq(cfg->max_request_bytes, 262144);
    ck_assert_int_eq(cfg->max_entries_per_request, 10);
    ck_assert_int_eq(cfg->batch_size, 500);
    ck_assert_int_eq(cfg->poll_interval_ms, 1000);
    ck_assert_int_eq(cfg->max_in_flight, 200);
    ck_assert_int_eq(cfg->pipelines, 4);
    ck_assert_int_eq(cfg->http_timeout_ms, 10000);
    ck_assert_int_eq(cfg->connect_timeout_ms, 3000);
    ck_assert_int_eq(cfg->retry_base_ms, 200);
    ck_assert_int_eq(cfg->retry_cap_ms, 60000);
    ck_assert_int_eq(cfg->reconnect_max_ms, 10000);
    ck_assert_int_eq(cfg->shutdown_timeout_ms, 5000);
    ck_assert_int_eq(cfg->log_level, LOG_INFO);
    config_free(cfg);
}
END_TEST

static const char full_yaml[] =
    "# every setting\n"
    "database:\n"
    "  url: postgresql://relay@db:5432/app\n"
    "aws:\n"
    "  region: ap-southeast-2\n"
    "  access_key_id: AKIAIOSFODNN7EXAMPLE\n"
    "  secret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n"
    "  session_token: \"tok/en==\"\n"
    "eventbridge:\n"
    "  endpoint_url: http://127.0.0.1:4010\n"
    "  bus_name: arn:aws:events:ap-southeast-2:123456789012:event-bus/b\n"
    "  source: com.example.users\n"
    "  max_request_bytes: 1024\n"
    "  max_entries_per_request: 1\n"
    "relay:\n"
    "  batch_size: 10000\n"
    "  poll_interval_ms: 10\n"
    "  max_in_flight: 256\n"
    "  http_timeout_ms: 100\n"
    "  connect_timeout_ms: 60000\n"
    "  retry_base_ms: 5\n"
    "  retry_cap_ms: 5\n"
    "  reconnect_max_ms: 600000\n"
    "  shutdown_timeout_ms: 0\n"
    "log:\n"
    "  level: DEBUG\n";

START_TEST(file_sets_every_setting)
{
    test_env env = {{NULL}};
    relay_config *cfg = load_ok(full_yaml, &env);
    ck_assert_str_eq(cfg->database_url, "postgresql://relay@db:5432/app");
    ck_assert_str_eq(cfg->aws_region, "ap-southeast-2");
    ck_assert_str_eq(cfg->aws_access_key_id, "AKIAIOSFODNN7EXAMPLE");
    ck_assert_str_eq(cfg->aws_secret_access_key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    ck_assert_str_eq(cfg->aws_session_token, "tok/en==");
    ck_assert_str_eq(cfg->endpoint_url, "http://127.0.0.1:4010");
    ck_assert(!cfg->endpoint_derived);
    ck_assert_str_eq(cfg->event_bus_name, "arn:aws:events:ap-southeast-2:123456789012:event-bus/b");
    ck_assert_str_eq(cfg->event_source, "com.example.users");
    ck_assert_int_eq(cfg->max_request_bytes, 1024);
    ck_assert_int_eq(cfg->max_entries_per_request, 1);
    ck_assert_int_eq(cfg->batch_size, 10000);
    ck_assert_int_eq(cfg->poll_interval_ms, 10);
    ck_assert_int_eq(cfg->max_in_flight, 256);
    ck_assert_int_eq(cfg->http_timeout_ms, 100);
    ck_assert_int_eq(cfg->connect_timeout_ms, 60000);
    ck_assert_int_eq(cfg->retry_base_ms, 5);
    ck_assert_int_eq(cfg->retry_cap_ms, 5);
    ck_assert_int_eq(cfg->reconnect_max_ms, 600000);
    ck_assert_int_eq(cfg->shutdown_timeout_ms, 0);
    ck_assert_int_eq(cfg->log_level, LOG_DEBUG);
    config_free(cfg);
}
END_TEST

START_TEST(environment_overrides_file)
{
    test_env env = {{"OUTBOX_RELAY_BATCH_SIZE=200", "OUTBOX_RELAY_EVENT_SOURCE=from-env",
                     "DATABASE_URL=host=envdb", "OUTBOX_RELAY_LOG_LEVEL=error",
                     "AWS_DEFAULT_REGION=us-west-2"}};
    relay_config *cfg = load_ok("relay:\n  batch_size: 100\n  max_in_flight: 3\n"
                                "eventbridge:\n  source: from-file\n"
                                "database:\n  url: host=filedb\n"
                                "aws:\n  region: eu-north-1\n"
                                "log:\n  level: warn\n",
                                &env);
    ck_assert_int_eq(cfg->batch_size, 200);
    ck_assert_int_eq(cfg->max_in_flight, 3); /* file value kept where env is silent */
    ck_assert_str_eq(cfg->event_source, "from-env");
    ck_assert_str_eq(cfg->database_url, "host=envdb");
    ck_assert_int_eq(cfg->log_level, LOG_ERROR);
    ck_assert_str_eq(cfg->aws_region, "us-west-2");
    config_free(cfg);
}
END_TEST

static const struct {
    const char *name;
    test_env env;
    const char *want;
} region_cases[] = {
    {"AWS_REGION beats AWS_DEFAULT_REGION",
     {{"AWS_DEFAULT_REGION=eu-west-1", "AWS_REGION=us-east-2"}},
     "us-east-2"},
    {"AWS_DEFAULT_REGION alone", {{"AWS_DEFAULT_REGION=eu-west-1"}}, "eu-west-1"},
    {"empty AWS_REGION counts as unset",
     {{"AWS_REGION=", "AWS_DEFAULT_REGION=eu-west-3"}},
     "eu-west-3"},
};

START_TEST(region_precedence_follows_aws_sdk_order)
{
    relay_config *cfg = load_ok(NULL, &region_cases[_i].env);
    ck_assert_msg(strcmp(cfg->aws_region, region_cases[_i].want) == 0, "%s: got %s",
                  region_cases[_i].name, cfg->aws_region);
    config_free(cfg);
}
END_TEST

static const struct {
    const char *name;
    const char *yaml;
    test_env env;
    const char *want;
    bool derived;
} endpoint_cases[] = {
    {"service-specific env beats generic env",
     "eventbridge:\n  endpoint_url: http://file:1\n",
     {{"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=http://generic:2",
       "AWS_ENDPOINT_URL_EVENTBRIDGE=http://specific:3"}},
     "http://specific:3",
     false},
    {"generic env beats file",
     "eventbridge:\n  endpoint_url: http://file:1\n",
     {{"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=http://generic:2"}},
     "http://generic:2",
     false},
    {"file used when env is silent",
     "eventbridge:\n  endpoint_url: http://file:1\n",
     {{"AWS_REGION=us-east-1"}},
     "http://file:1",
     false},
    {"ignore flag drops env and file endpoints",
     "eventbridge:\n  endpoint_url: http://file:1\n",
     {{"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=http://generic:2",
       "AWS_ENDPOINT_URL_EVENTBRIDGE=http://specific:3",
       "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=TRUE"}},
     "https://events.us-east-1.amazonaws.com",
     true},
    {"ignore flag also skips a bad file endpoint",
     "eventbridge:\n  endpoint_url: ftp://nope\n",
     {{"AWS_REGION=us-east-1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true"}},
     "https://events.us-east-1.amazonaws.com",
     true},
    {"ignore flag other than true has no effect",
     NULL,
     {{"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=http://generic:2",
       "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=false"}},
     "http://generic:2",
     false},
    {"derived for us-east-1",
     NULL,
     {{"AWS_REGION=us-east-1"}},
     "https://events.us-east-1.amazonaws.com",
     true},
    {"derived for cn-north-1 uses amazonaws.com.cn",
     NULL,
     {{"AWS_REGION=cn-north-1"}},
     "https://events.cn-north-1.amazonaws.com.cn",
     true},
    {"empty endpoint env counts as unset",
     NULL,
     {{"AWS_REGION=eu-central-1", "AWS_ENDPOINT_URL_EVENTBRIDGE="}},
     "https://events.eu-central-1.amazonaws.com",
     true},
};

START_TEST(endpoint_precedence_ignore_flag_and_derivation)
{
    relay_config *cfg = load_ok(endpoint_cases[_i].yaml, &endpoint_cases[_i].env);
    ck_assert_msg(strcmp(cfg->endpoint_url, endpoint_cases[_i].want) == 0, "%s: got %s",
                  endpoint_cases[_i].name, cfg->endpoint_url);
    ck_assert_msg(cfg->endpoint_derived == endpoint_cases[_i].derived, "%s: derived flag",
                  endpoint_cases[_i].name);
    config_free(cfg);
}
END_TEST

static const char *const default_yamls[] = {
    "",
    "# only a comment\n\n",
    "---\n",
    "~\n",
    "relay:\nlog:\n",
    "eventbridge:\n  source: ~\n  bus_name:\n  max_entries_per_request: null\n",
    "relay:\n  batch_size: Null\nlog:\n  level: NULL\ndatabase:\n  url: !!null x\n",
};

START_TEST(empty_file_and_null_values_mean_defaults)
{
    test_env env = {{"AWS_REGION=us-east-1", "OUTBOX_RELAY_POLL_INTERVAL_MS="}};
    relay_config *cfg = load_ok(default_yamls[_i], &env);
    ck_assert_str_eq(cfg->event_source, "user-service");
    ck_assert_str_eq(cfg->event_bus_name, "user-service-bus");
    ck_assert_int_eq(cfg->max_entries_per_request, 10);
    ck_assert_int_eq(cfg->batch_size, 500);
    ck_assert_int_eq(cfg->poll_interval_ms, 1000);
    ck_assert_int_eq(cfg->log_level, LOG_INFO);
    ck_assert_ptr_null(cfg->database_url);
    config_free(cfg);
}
END_TEST

/* ---- bad file input ---- */

static const struct {
    const char *name;
    const char *yaml;
    int line; /* 0 = the message has no line */
    const char *want[3];
} bad_files[] = {
    {"unknown key with suggestion",
     "relay:\n  batchsize: 5\n",
     2,
     {"relay.batchsize: unknown key", "did you mean relay.batch_size?"}},
    {"unknown key without suggestion", "aws:\n  profile: prod\n", 2, {"aws.profile: unknown key"}},
    {"unknown section with suggestion",
     "relays:\n  batch_size: 5\n",
     1,
     {"relays: unknown section", "did you mean relay?"}},
    {"unknown section", "metrics:\n  port: 9\n", 1, {"metrics: unknown section"}},
    {"mapping where a value is expected",
     "relay:\n  batch_size:\n    a: 1\n",
     3,
     {"relay.batch_size: expected a single value, got a mapping"}},
    {"sequence where a value is expected",
     "relay:\n  batch_size: [1, 2]\n",
     2,
     {"relay.batch_size: expected a single value, got a sequence"}},
    {"scalar where a section is expected",
     "relay: 5\n",
     1,
     {"relay: expected a mapping of settings, got a scalar"}},
    {"sequence where a section is expected",
     "log: [debug]\n",
     1,
     {"log: expected a mapping of settings, got a sequence"}},
    {"word for an int",
     "relay:\n  batch_size: ten\n",
     2,
     {"relay.batch_size: not an integer: \"ten\""}},
    {"int with trailing junk",
     "relay:\n  batch_size: 10x\n",
     2,
     {"relay.batch_size: not an integer: \"10x\""}},
    {"float for an int",
     "relay:\n  poll_interval_ms: 1.5\n",
     2,
     {"relay.poll_interval_ms: not an integer: \"1.5\""}},
    {"hex for an int",
     "relay:\n  poll_interval_ms: 0x10\n",
     2,
     {"relay.poll_interval_ms: not an integer: \"0x10\""}},
    {"empty quoted int",
     "relay:\n  max_in_flight: \"\"\n",
     2,
     {"relay.max_in_flight: not an integer: \"\""}},
    {"int overflow",
     "relay:\n  batch_size: 99999999999999999999999\n",
     2,
     {"relay.batch_size: must be between 1 and 10000, got 99999999999999999999999"}},
    {"int above int range",
     "relay:\n  retry_cap_ms: 4294967296\n",
     2,
     {"relay.retry_cap_ms: must be between 1 and 86400000, got 4294967296"}},
    {"int below minimum",
     "relay:\n  batch_size: 0\n",
     2,
     {"relay.batch_size: must be between 1 and 10000, got 0"}},
    {"int above maximum",
     "eventbridge:\n  max_entries_per_request: 11\n",
     2,
     {"eventbridge.max_entries_per_request: must be between 1 and 10, got 11"}},
    {"negative int",
     "relay:\n  shutdown_timeout_ms: -1\n",
     2,
     {"relay.shutdown_timeout_ms: must be between 0 and 120000, got -1"}},
    {"duplicate key",
     "relay:\n  batch_size: 5\n  batch_size: 6\n",
     3,
     {"relay.batch_size: duplicate key", "first set on line 2"}},
    {"duplicate section",
     "relay:\n  batch_size: 5\nlog:\n  level: info\nrelay:\n  max_in_flight: 2\n",
     5,
     {"relay: duplicate key", "first set on line 1"}},
    {"yaml syntax error: unclosed flow",
     "relay:\n  batch_size: 5\n  x: [1, 2\n",
     0,
     {"yaml syntax error"}},
    {"yaml syntax error: tab indentation",
     "relay:\n\tbatch_size: 5\n",
     2,
     {"yaml syntax error", "found character that cannot start any token"}},
    {"yaml syntax error: bad indentation",
     "relay:\n  batch_size: 5\n bad: 1\n",
     3,
     {"yaml syntax error"}},
    {"top level sequence",
     "- a\n- b\n",
     1,
     {"top level must be a mapping of sections", "got a sequence"}},
    {"top level scalar", "hello\n", 1, {"top level must be a mapping of sections", "got a scalar"}},
    {"second document",
     "relay:\n  batch_size: 5\n---\nrelay:\n  batch_size: 6\n",
     0,
     {"only one yaml document is allowed"}},
    {"complex section key", "? [a, b]\n: 1\n", 1, {"section names must be plain words"}},
    {"bad log level",
     "log:\n  level: verbose\n",
     2,
     {"log.level: must be one of debug, info, warn, error, got \"verbose\""}},
    {"aws source",
     "eventbridge:\n  source: aws.user-service\n",
     2,
     {"eventbridge.source: must not begin with \"aws.\" (AWS rejects custom events from aws.* "
      "sources), got \"aws.user-service\""}},
    {"empty source",
     "eventbridge:\n  source: \"\"\n",
     2,
     {"eventbridge.source: must not be empty"}},
    {"source too long",
     "eventbridge:\n  source: "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     2,
     {"eventbridge.source: must be at most 256 characters, got 260"}},
    {"bus name with a space",
     "eventbridge:\n  bus_name: my bus\n",
     2,
     {"eventbridge.bus_name: must be a name of", "got \"my bus\""}},
    {"bad region",
     "aws:\n  region: US_EAST\n",
     2,
     {"aws.region: must contain only a-z, 0-9 and '-'", "got \"US_EAST\""}},
    {"endpoint not http",
     "eventbridge:\n  endpoint_url: ftp://example.com\n",
     2,
     {"eventbridge.endpoint_url: ", "does not begin with http:// or https://"}},
    {"endpoint with a path",
     "eventbridge:\n  endpoint_url: https://example.com/v1\n",
     2,
     {"eventbridge.endpoint_url: ", "path"}},
    {"control character in a value",
     "eventbridge:\n  source: \"a\\nb\"\n",
     2,
     {"eventbridge.source: must not contain control characters"}},
    {"key id without secret",
     "aws:\n  access_key_id: AKIAIOSFODNN7EXAMPLE\n",
     0,
     {"aws.access_key_id is set (", "but aws.secret_access_key is not", "AWS_SECRET_ACCESS_KEY"}},
    {"retry base above cap",
     "relay:\n  retry_base_ms: 500\n  retry_cap_ms: 100\n",
     0,
     {"relay.retry_base_ms (500, file ",
      "must not be greater than relay.retry_cap_ms (100, file "}},
    {"claim timeout not above the http timeout (impossible combination)",
     "relay:\n  http_timeout_ms: 20000\n  claim_timeout_ms: 15000\n",
     0,
     {"relay.claim_timeout_ms (15000, file ", "must exceed relay.http_timeout_ms (20000, file ",
      "before PostgreSQL breaks the claim"}},
    {"ordering neither per_user nor none",
     "relay:\n  ordering: by_user\n",
     2,
     {"relay.ordering: must be per_user or none, got \"by_user\""}},
    {"max_attempts zero",
     "relay:\n  max_attempts: 0\n",
     2,
     {"relay.max_attempts: must be between 1 and 1000000, got 0"}},
};

START_TEST(bad_file_input_fails_with_file_line_key_and_reason)
{
    test_env env = {{"AWS_REGION=us-east-1"}};
    relay_config *cfg = NULL;
    or_error err;
    char path[64];
    or_status rc = load(bad_files[_i].yaml, &env, &cfg, &err, path, sizeof(path));
    ck_assert_msg(rc == OR_ERR, "%s: loaded successfully", bad_files[_i].name);
    assert_one_line(err.msg);
    ck_assert_msg(strstr(err.msg, path) != NULL, "%s: no file name in: %s", bad_files[_i].name,
                  err.msg);
    if (bad_files[_i].line > 0) {
        char where[96];
        snprintf(where, sizeof(where), "%s:%d: ", path, bad_files[_i].line);
        ck_assert_msg(strncmp(err.msg, where, strlen(where)) == 0, "%s: want prefix %s in: %s",
                      bad_files[_i].name, where, err.msg);
    }
    for (size_t k = 0; k < 3 && bad_files[_i].want[k]; k++)
        ck_assert_msg(strstr(err.msg, bad_files[_i].want[k]) != NULL, "%s: want \"%s\" in: %s",
                      bad_files[_i].name, bad_files[_i].want[k], err.msg);
}
END_TEST

START_TEST(unreadable_config_file_is_reported)
{
    test_env env = {{"AWS_REGION=us-east-1"}};
    relay_config *cfg = (relay_config *)&env; /* must be reset to NULL */
    or_error err;
    ck_assert_int_eq(config_load("/nonexistent/relay.yaml", test_getenv, &env, &cfg, &err), OR_ERR);
    ck_assert_ptr_null(cfg);
    ck_assert_str_eq(err.msg,
                     "cannot read config file /nonexistent/relay.yaml: No such file or directory");
    ck_assert_int_eq(config_load("/tmp", test_getenv, &env, &cfg, &err), OR_ERR);
    ck_assert_ptr_null(cfg);
    ck_assert_str_eq(err.msg, "cannot read config file /tmp: Is a directory");
}
END_TEST

/* ---- bad environment input ---- */

static const struct {
    const char *name;
    test_env env;
    const char *want[3];
    const char *secret; /* must not appear in the message */
} bad_envs[] = {
    {"int below minimum",
     {{"AWS_REGION=us-east-1", "OUTBOX_RELAY_BATCH_SIZE=0"}},
     {"environment OUTBOX_RELAY_BATCH_SIZE: must be between 1 and 10000, got 0"},
     NULL},
    {"word for an int",
     {{"AWS_REGION=us-east-1", "OUTBOX_RELAY_BATCH_SIZE=ten"}},
     {"environment OUTBOX_RELAY_BATCH_SIZE: not an integer: \"ten\""},
     NULL},
    {"leading space in an int",
     {{"AWS_REGION=us-east-1", "OUTBOX_RELAY_MAX_IN_FLIGHT= 5"}},
     {"environment OUTBOX_RELAY_MAX_IN_FLIGHT: not an integer: \" 5\""},
     NULL},
    {"trailing junk in an int",
     {{"AWS_REGION=us-east-1", "OUTBOX_RELAY_HTTP_TIMEOUT_MS=5000ms"}},
     {"environment OUTBOX_RELAY_HTTP_TIMEOUT_MS: not an integer: \"5000ms\""},
     NULL},
    {"int overflow",
     {{"AWS_REGION=us-east-1", "OUTBOX_RELAY_CONNECT_TIMEOUT_MS=-99999999999999999999"}},
     {"environment OUTBOX_RELAY_CONNECT_TIMEOUT_MS: must be between 100 and 60000, got "
      "-99999999999999999999"},
     NULL},
    {"request bytes below minimum",
     {{"AWS_REGION=us-east-1", "OUTBOX_RELAY_MAX_REQUEST_BYTES=1023"}},
     {"environment OUTBOX_RELAY_MAX_REQUEST_BYTES: must be between 1024 and 1048576, got 1023"},
     NULL},
    {"bad log level",
     {{"AWS_REGION=us-east-1", "OUTBOX_RELAY_LOG_LEVEL=loud"}},
     {"environment OUTBOX_RELAY_LOG_LEVEL: must be one of debug, info, warn, error"},
     NULL},
    {"aws source",
     {{"AWS_REGION=us-east-1", "OUTBOX_RELAY_EVENT_SOURCE=aws.user-service"}},
     {"environment OUTBOX_RELAY_EVENT_SOURCE: must not begin with \"aws.\""},
     NULL},
    {"bad region",
     {{"AWS_REGION=Us-East-1"}},
     {"environment AWS_REGION: must contain only a-z, 0-9 and '-', got \"Us-East-1\""},
     NULL},
    {"bad default region",
     {{"AWS_DEFAULT_REGION=us east"}},
     {"environment AWS_DEFAULT_REGION: must contain only"},
     NULL},
    {"bad endpoint",
     {{"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=localhost:4010"}},
     {"environment AWS_ENDPOINT_URL: ", "does not begin with http:// or https://"},
     NULL},
    {"bad service endpoint",
     {{"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_EVENTBRIDGE=http://"}},
     {"environment AWS_ENDPOINT_URL_EVENTBRIDGE: ", "no host"},
     NULL},
    {"bus name with a bad character",
     {{"AWS_REGION=us-east-1", "OUTBOX_RELAY_EVENT_BUS_NAME=bus!"}},
     {"environment OUTBOX_RELAY_EVENT_BUS_NAME: must be a name of"},
     NULL},
    {"region missing",
     {{"AWS_ENDPOINT_URL=http://localhost:4010"}},
     {"aws.region is not set: set AWS_REGION", "aws.region in the config file"},
     NULL},
    {"region empty counts as unset",
     {{"AWS_REGION=", "AWS_DEFAULT_REGION="}},
     {"aws.region is not set"},
     NULL},
    {"secret without key id",
     {{"AWS_REGION=us-east-1", "AWS_SECRET_ACCESS_KEY=SuperSecretValue123"}},
     {"aws.secret_access_key is set (env AWS_SECRET_ACCESS_KEY) but aws.access_key_id is not",
      "AWS_ACCESS_KEY_ID"},
     "SuperSecretValue123"},
    {"key id without secret",
     {{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"}},
     {"aws.access_key_id is set (", "but aws.secret_access_key is not", "AWS_SECRET_ACCESS_KEY"},
     "AKIAIOSFODNN7EXAMPLE"},
    {"control character in a secret is not echoed",
     {{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
       "AWS_SECRET_ACCESS_KEY=Hidden\tSecret"}},
     {"environment AWS_SECRET_ACCESS_KEY: must not contain control characters"},
     "Hidden"},
    {"control character in a database url is not echoed",
     {{"AWS_REGION=us-east-1", "DATABASE_URL=host=db password=Hunter2\n"}},
     {"environment DATABASE_URL: must not contain control characters"},
     "Hunter2"},
    {"retry base above default cap",
     {{"AWS_REGION=us-east-1", "OUTBOX_RELAY_RETRY_BASE_MS=70000"}},
     {"relay.retry_base_ms (70000, env OUTBOX_RELAY_RETRY_BASE_MS)",
      "relay.retry_cap_ms (60000, default)"},
     NULL},
};

START_TEST(bad_environment_fails_naming_the_variable_and_reason)
{
    relay_config *cfg = NULL;
    or_error err;
    or_status rc = load(NULL, &bad_envs[_i].env, &cfg, &err, NULL, 0);
    ck_assert_msg(rc == OR_ERR, "%s: loaded successfully", bad_envs[_i].name);
    assert_one_line(err.msg);
    for (size_t k = 0; k < 3 && bad_envs[_i].want[k]; k++)
        ck_assert_msg(strstr(err.msg, bad_envs[_i].want[k]) != NULL, "%s: want \"%s\" in: %s",
                      bad_envs[_i].name, bad_envs[_i].want[k], err.msg);
    if (bad_envs[_i].secret)
        ck_assert_msg(strstr(err.msg, bad_envs[_i].secret) == NULL, "%s: secret leaked: %s",
                      bad_envs[_i].name, err.msg);
}
END_TEST

START_TEST(bus_name_length_is_bounded)
{
    char var[64 + 1601];
    relay_config *cfg = NULL;
    or_error err;
    int n = snprintf(var, sizeof(var), "OUTBOX_RELAY_EVENT_BUS_NAME=");
    memset(var + n, 'b', 1600);
    var[n + 1600] = '\0';
    test_env ok = {{"AWS_REGION=us-east-1", var}};
    ck_assert_int_eq(load(NULL, &ok, &cfg, &err, NULL, 0), OR_OK);
    ck_assert_uint_eq(strlen(cfg->event_bus_name), 1600);
    config_free(cfg);

    var[n + 1600] = 'b';
    var[n + 1601] = '\0';
    ck_assert_int_eq(load(NULL, &ok, &cfg, &err, NULL, 0), OR_ERR);
    ck_assert_str_eq(err.msg, "environment OUTBOX_RELAY_EVENT_BUS_NAME: must be at most 1600 "
                              "characters, got 1601");
}
END_TEST

/* ---- printing ---- */

static const struct {
    const char *name;
    const char *db_url;
    const char *want_db;
    const char *password;
} print_cases[] = {
    {"uri password", "DATABASE_URL=postgresql://relay:Pa55word-xyz@db:5432/app",
     "database.url = postgresql://relay:****@db:5432/app  # env DATABASE_URL", "Pa55word-xyz"},
    {"uri query password", "DATABASE_URL=postgresql://relay@db/app?password=Pa55word-xyz&x=1",
     "database.url = postgresql://relay@db/app?password=****&x=1", "Pa55word-xyz"},
    {"key=value password", "DATABASE_URL=host=db password=Pa55word-xyz user=relay",
     "database.url = host=db password=**** user=relay", "Pa55word-xyz"},
};

START_TEST(print_masks_secrets_and_database_password)
{
    test_env env = {{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
                     "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                     "AWS_SESSION_TOKEN=FwoGZXIvYXdzEXAMPLETOKEN", print_cases[_i].db_url}};
    relay_config *cfg = load_ok(NULL, &env);
    char *out = print_to_string(cfg);
    ck_assert_msg(strstr(out, "wJalrXUtnFEMI") == NULL, "secret key printed:\n%s", out);
    ck_assert_msg(strstr(out, "EXAMPLEKEY") == NULL, "secret key printed:\n%s", out);
    ck_assert_msg(strstr(out, "FwoGZXIvYXdz") == NULL, "session token printed:\n%s", out);
    ck_assert_msg(strstr(out, print_cases[_i].password) == NULL, "%s: password printed:\n%s",
                  print_cases[_i].name, out);
    ck_assert_msg(strstr(out, "AKIAIOSFODNN7EXAMPLE") == NULL, "full key id printed:\n%s", out);
    ck_assert_msg(strstr(out, print_cases[_i].want_db) != NULL, "%s: want %s in:\n%s",
                  print_cases[_i].name, print_cases[_i].want_db, out);
    ck_assert_msg(strstr(out, "aws.access_key_id = AKIA****MPLE  # env AWS_ACCESS_KEY_ID\n"), "%s",
                  out);
    ck_assert_msg(strstr(out, "aws.secret_access_key = ****  # env AWS_SECRET_ACCESS_KEY\n"), "%s",
                  out);
    ck_assert_msg(strstr(out, "aws.session_token = ****  # env AWS_SESSION_TOKEN\n"), "%s", out);
    free(out);
    config_free(cfg);
}
END_TEST

START_TEST(print_shows_every_setting_with_its_source_in_table_order)
{
    test_env env = {{"AWS_DEFAULT_REGION=us-east-1", "OUTBOX_RELAY_MAX_IN_FLIGHT=7"}};
    char path[64];
    relay_config *cfg = NULL;
    or_error err;
    ck_assert_int_eq(load("relay:\n  batch_size: 42\n", &env, &cfg, &err, path, sizeof(path)),
                     OR_OK);
    char *out = print_to_string(cfg);
    char want[128];
    snprintf(want, sizeof(want), "relay.batch_size = 42  # file %s:2\n", path);
    ck_assert_msg(strstr(out, want) != NULL, "want %s in:\n%s", want, out);
    ck_assert_msg(strstr(out, "relay.max_in_flight = 7  # env OUTBOX_RELAY_MAX_IN_FLIGHT\n"), "%s",
                  out);
    ck_assert_msg(strstr(out, "aws.region = us-east-1  # env AWS_DEFAULT_REGION\n"), "%s", out);
    ck_assert_msg(strstr(out, "eventbridge.endpoint_url = https://events.us-east-1.amazonaws.com"
                              "  # derived"),
                  "%s", out);
    ck_assert_msg(strstr(out, "eventbridge.bus_name = user-service-bus  # default\n"), "%s", out);
    ck_assert_msg(strstr(out, "aws.secret_access_key = (unset)  # default\n"), "%s", out);
    ck_assert_msg(strstr(out, "database.url = (unset)  # default\n"), "%s", out);
    ck_assert_msg(strstr(out, "log.level = info  # default\n"), "%s", out);
    ck_assert_msg(strncmp(out, "database.url = ", 15) == 0, "first line:\n%s", out);

    /* every line is "key = value  # source"; 20 settings */
    int lines = 0;
    for (char *line = out; *line; lines++) {
        char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        *nl = '\0';
        ck_assert_msg(strstr(line, " = ") && strstr(line, "  # "), "bad line: %s", line);
        line = nl + 1;
    }
    ck_assert_int_eq(lines, 24);
    free(out);
    config_free(cfg);
}
END_TEST

START_TEST(reference_lists_every_key_with_env_default_and_range)
{
    static const char *const want[] = {
        "| Key | Environment | Default | Allowed | Description |",
        "| `database.url` | `DATABASE_URL` |",
        "| `aws.region` | `AWS_REGION`, then `AWS_DEFAULT_REGION` | required |",
        "| `aws.access_key_id` | `AWS_ACCESS_KEY_ID` |",
        "| `aws.secret_access_key` | `AWS_SECRET_ACCESS_KEY` |",
        "| `aws.session_token` | `AWS_SESSION_TOKEN` |",
        "| `eventbridge.endpoint_url` | `AWS_ENDPOINT_URL_EVENTBRIDGE`, then `AWS_ENDPOINT_URL` |",
        "| `eventbridge.bus_name` | `OUTBOX_RELAY_EVENT_BUS_NAME` | `user-service-bus` |",
        "| `eventbridge.source` | `OUTBOX_RELAY_EVENT_SOURCE` | `user-service` |",
        "| `eventbridge.max_request_bytes` | `OUTBOX_RELAY_MAX_REQUEST_BYTES` | `262144` | "
        "1024..1048576 |",
        "| `eventbridge.max_entries_per_request` | `OUTBOX_RELAY_MAX_ENTRIES_PER_REQUEST` | `10` | "
        "1..10 |",
        "| `relay.batch_size` | `OUTBOX_RELAY_BATCH_SIZE` | `500` | 1..10000 |",
        "| `relay.poll_interval_ms` | `OUTBOX_RELAY_POLL_INTERVAL_MS` | `1000` | 10..3600000 |",
        "| `relay.max_in_flight` | `OUTBOX_RELAY_MAX_IN_FLIGHT` | `200` | 1..1024 |",
        "| `relay.pipelines` | `OUTBOX_RELAY_PIPELINES` | `4` | 1..64 |",
        "| `relay.claim_timeout_ms` | `OUTBOX_RELAY_CLAIM_TIMEOUT_MS` | `15000` | 1000..3600000 |",
        "| `relay.max_attempts` | `OUTBOX_RELAY_MAX_ATTEMPTS` | `10` | 1..1000000 |",
        "| `relay.ordering` | `OUTBOX_RELAY_ORDERING` | `per_user` | per_user, none |",
        "| `relay.http_timeout_ms` | `OUTBOX_RELAY_HTTP_TIMEOUT_MS` | `10000` | 100..300000 |",
        "| `relay.connect_timeout_ms` | `OUTBOX_RELAY_CONNECT_TIMEOUT_MS` | `3000` | 100..60000 |",
        "| `relay.retry_base_ms` | `OUTBOX_RELAY_RETRY_BASE_MS` | `200` | 1..600000 |",
        "| `relay.retry_cap_ms` | `OUTBOX_RELAY_RETRY_CAP_MS` | `60000` | 1..86400000 |",
        "| `relay.reconnect_max_ms` | `OUTBOX_RELAY_RECONNECT_MAX_MS` | `10000` | 100..600000 |",
        "| `relay.shutdown_timeout_ms` | `OUTBOX_RELAY_SHUTDOWN_TIMEOUT_MS` | `5000` | 0..120000 |",
        "| `log.level` | `OUTBOX_RELAY_LOG_LEVEL` | `info` | debug, info, warn, error |",
    };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    config_print_reference(f);
    fclose(f);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(buf, want[i]) != NULL, "want %s in the reference", want[i]);
    free(buf);
}
END_TEST

START_TEST(free_null_is_a_no_op)
{
    config_free(NULL);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, defaults_apply_when_only_region_is_set);
    tcase_add_test(tc, file_sets_every_setting);
    tcase_add_test(tc, environment_overrides_file);
    tcase_add_loop_test(tc, region_precedence_follows_aws_sdk_order, 0,
                        sizeof(region_cases) / sizeof(region_cases[0]));
    tcase_add_loop_test(tc, endpoint_precedence_ignore_flag_and_derivation, 0,
                        sizeof(endpoint_cases) / sizeof(endpoint_cases[0]));
    tcase_add_loop_test(tc, empty_file_and_null_values_mean_defaults, 0,
                        sizeof(default_yamls) / sizeof(default_yamls[0]));
    tcase_add_loop_test(tc, bad_file_input_fails_with_file_line_key_and_reason, 0,
                        sizeof(bad_files) / sizeof(bad_files[0]));
    tcase_add_test(tc, unreadable_config_file_is_reported);
    tcase_add_loop_test(tc, bad_environment_fails_naming_the_variable_and_reason, 0,
                        sizeof(bad_envs) / sizeof(bad_envs[0]));
    tcase_add_test(tc, bus_name_length_is_bounded);
    tcase_add_loop_test(tc, print_masks_secrets_and_database_password, 0,
                        sizeof(print_cases) / sizeof(print_cases[0]));
    tcase_add_test(tc, print_shows_every_setting_with_its_source_in_table_order);
    tcase_add_test(tc, reference_lists_every_key_with_env_default_and_range);
    tcase_add_test(tc, free_null_is_a_no_op);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_suite(config_suite());
}
