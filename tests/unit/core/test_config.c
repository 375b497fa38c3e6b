/* test_config.c: unit tests of wa/config.h: spec tables, bounds, *_FILE secrets, printing. */
#include "wa_test.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wa/config.h"

struct test_config {
    char *listen;
    int64_t workers;
    bool verbose;
    int64_t timeout_ms;
    int64_t max_body;
    char *secret;
};

static const struct wa_cfg_spec spec[] = {
    {"WA_LISTEN", WA_CFG_STRING, "0.0.0.0:8080", 0, 0, 0, offsetof(struct test_config, listen),
     "address"},
    {"WA_WORKERS", WA_CFG_INT, "4", 1, 64, 0, offsetof(struct test_config, workers), "threads"},
    {"WA_VERBOSE", WA_CFG_BOOL, "false", 0, 0, 0, offsetof(struct test_config, verbose), "log"},
    {"WA_TIMEOUT", WA_CFG_MS, "5s", 1, 7LL * 86400000, 0, offsetof(struct test_config, timeout_ms),
     "timeout"},
    {"WA_MAX_BODY", WA_CFG_SIZE, "1MiB", 1, 1LL << 30, 0, offsetof(struct test_config, max_body),
     "body limit"},
    {"WA_APP_SECRET", WA_CFG_STRING, NULL, 0, 0, WA_CFG_SECRET,
     offsetof(struct test_config, secret), "secret"},
};

/* A lookup over a NULL-terminated array of "NAME", "value" pairs. */
static const char *
lookup(const char *name, void *arg)
{
    const char *const *kv = arg;

    for (; kv[0] != NULL; kv += 2) {
        if (strcmp(kv[0], name) == 0) {
            return kv[1];
        }
    }
    return NULL;
}

static enum wa_err
load(const char *const *kv, struct test_config *cfg, struct wa_error *error)
{
    memset(cfg, 0, sizeof(*cfg));
    return wa_cfg_load(spec, WA_ARRAY_LEN(spec), cfg, lookup, (void *)kv, error);
}

static void
load__nothing_set__defaults(void **state)
{
    const char *kv[] = {NULL};
    struct test_config cfg;

    (void)state;
    assert_int_equal(load(kv, &cfg, NULL), WA_OK);
    assert_string_equal(cfg.listen, "0.0.0.0:8080");
    assert_int_equal(cfg.workers, 4);
    assert_false(cfg.verbose);
    assert_int_equal(cfg.timeout_ms, 5000);
    assert_int_equal(cfg.max_body, 1048576);
    assert_null(cfg.secret);
    wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
    assert_null(cfg.listen);
}

static void
load__values_set__parsed(void **state)
{
    const char *kv[] = {"WA_LISTEN",  "127.0.0.1:9", "WA_WORKERS",  "64",   "WA_VERBOSE", "yes",
                        "WA_TIMEOUT", "250ms",       "WA_MAX_BODY", "3MiB", NULL};
    struct test_config cfg;

    (void)state;
    assert_int_equal(load(kv, &cfg, NULL), WA_OK);
    assert_string_equal(cfg.listen, "127.0.0.1:9");
    assert_int_equal(cfg.workers, 64);
    assert_true(cfg.verbose);
    assert_int_equal(cfg.timeout_ms, 250);
    assert_int_equal(cfg.max_body, 3 * 1048576);
    wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
}

static void
load__out_of_bounds__error_names_variable(void **state)
{
    const char *high[] = {"WA_WORKERS", "65", NULL};
    const char *low[] = {"WA_WORKERS", "0", NULL};
    const char *longer[] = {"WA_TIMEOUT", "8d", NULL};
    struct test_config cfg;
    struct wa_error error = {0};

    (void)state;
    assert_int_equal(load(high, &cfg, &error), WA_ECONFIG);
    assert_non_null(strstr(error.message, "WA_WORKERS"));
    wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
    memset(&error, 0, sizeof(error));
    assert_int_equal(load(low, &cfg, &error), WA_ECONFIG);
    assert_non_null(strstr(error.message, "WA_WORKERS"));
    wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
    memset(&error, 0, sizeof(error));
    assert_int_equal(load(longer, &cfg, &error), WA_ECONFIG);
    assert_non_null(strstr(error.message, "WA_TIMEOUT"));
    wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
}

static void
load__unparsable__error_names_variable(void **state)
{
    static const char *const bad[][3] = {{"WA_WORKERS", "4x", NULL},
                                         {"WA_WORKERS", "", NULL},
                                         {"WA_VERBOSE", "maybe", NULL},
                                         {"WA_TIMEOUT", "5 parsecs", NULL},
                                         {"WA_MAX_BODY", "-1", NULL},
                                         {"WA_TIMEOUT", "-5s", NULL},
                                         {"WA_WORKERS", "99999999999999999999", NULL}};
    struct test_config cfg;
    size_t i;

    (void)state;
    for (i = 0; i < WA_ARRAY_LEN(bad); i++) {
        struct wa_error error = {0};
        assert_int_equal(load(bad[i], &cfg, &error), WA_ECONFIG);
        assert_non_null(strstr(error.message, bad[i][0]));
        wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
    }
}

static void
required__missing__error_names_variable(void **state)
{
    static const struct wa_cfg_spec req[] = {
        {"WA_TOKEN", WA_CFG_STRING, NULL, 0, 0, WA_CFG_REQUIRED, 0, "token"},
    };
    const char *kv[] = {NULL};
    char *token = NULL;
    struct wa_error error = {0};

    (void)state;
    assert_int_equal(wa_cfg_load(req, 1, &token, lookup, (void *)kv, &error), WA_ECONFIG);
    assert_non_null(strstr(error.message, "WA_TOKEN"));
    wa_cfg_cleanup(req, 1, &token);
}

/* Loads {"WA_TOKEN": value} (value NULL: unset) from a sandbox-default spec; sandbox: WA_SANDBOX. */
static enum wa_err
load_sandboxed(const char *value, const char *sandbox, struct wa_error *error)
{
    static const struct wa_cfg_spec spec_sb[] = {
        {"WA_TOKEN", WA_CFG_STRING, "sandbox-token", 0, 0, WA_CFG_SECRET | WA_CFG_SANDBOX, 0,
         "token"},
    };
    const char *kv[5] = {NULL};
    char *token = NULL;
    size_t n = 0;
    enum wa_err err;

    if (value != NULL) {
        kv[n++] = "WA_TOKEN";
        kv[n++] = value;
    }
    if (sandbox != NULL) {
        kv[n++] = "WA_SANDBOX";
        kv[n++] = sandbox;
    }
    err = wa_cfg_load(spec_sb, 1, &token, lookup, (void *)kv, error);
    wa_cfg_cleanup(spec_sb, 1, &token);
    return err;
}

static void
sandbox__public_default_refused_outside_sandbox_mode(void **state)
{
    static const char *const refused[] = {NULL,
                                          "",
                                          "sandbox-token",
                                          "real-token,sandbox-token",
                                          "123=sandbox-token",
                                          "sandbox-token,123=real"};
    static const char *const accepted[] = {"real-token", "sandbox-token-2", "123=real,real2",
                                           "xsandbox-token"};
    struct wa_error error = {0};
    size_t i;

    (void)state;
    for (i = 0; i < WA_ARRAY_LEN(refused); i++) {
        memset(&error, 0, sizeof(error));
        assert_int_equal(load_sandboxed(refused[i], NULL, &error), WA_ECONFIG);
        assert_non_null(strstr(error.message, "WA_TOKEN"));
        assert_non_null(strstr(error.message, "WA_SANDBOX"));
        assert_int_equal(load_sandboxed(refused[i], "0", &error), WA_ECONFIG);
        assert_int_equal(load_sandboxed(refused[i], "1", &error), WA_OK);
    }
    for (i = 0; i < WA_ARRAY_LEN(accepted); i++) {
        assert_int_equal(load_sandboxed(accepted[i], NULL, &error), WA_OK);
    }
    assert_int_equal(load_sandboxed("real", "maybe", &error), WA_ECONFIG);
    assert_non_null(strstr(error.message, "WA_SANDBOX"));
}

static void
https__plain_http_refused_outside_sandbox_mode(void **state)
{
    static const struct wa_cfg_spec spec_url[] = {
        {"WA_URL", WA_CFG_STRING, "https://graph.example/v21.0", 0, 0, WA_CFG_HTTPS, 0, "url"},
    };
    const char *plain[] = {"WA_URL", "http://127.0.0.1:8090/v21.0", NULL};
    const char *plain_sandbox[] = {"WA_URL", "http://127.0.0.1:8090/v21.0", "WA_SANDBOX", "1",
                                   NULL};
    const char *other[] = {"WA_URL", "ftp://x", NULL};
    const char *none[] = {NULL};
    char *url = NULL;
    struct wa_error error = {0};

    (void)state;
    assert_int_equal(wa_cfg_load(spec_url, 1, &url, lookup, (void *)plain, &error), WA_ECONFIG);
    assert_non_null(strstr(error.message, "WA_URL"));
    wa_cfg_cleanup(spec_url, 1, &url);
    assert_int_equal(wa_cfg_load(spec_url, 1, &url, lookup, (void *)other, &error), WA_ECONFIG);
    wa_cfg_cleanup(spec_url, 1, &url);
    assert_int_equal(wa_cfg_load(spec_url, 1, &url, lookup, (void *)plain_sandbox, &error), WA_OK);
    assert_string_equal(url, "http://127.0.0.1:8090/v21.0");
    wa_cfg_cleanup(spec_url, 1, &url);
    assert_int_equal(wa_cfg_load(spec_url, 1, &url, lookup, (void *)none, &error), WA_OK);
    assert_string_equal(url, "https://graph.example/v21.0");
    wa_cfg_cleanup(spec_url, 1, &url);
}

static void
parse__durations_and_sizes(void **state)
{
    int64_t v = 0;

    (void)state;
    assert_int_equal(wa_parse_ms("5s", &v), WA_OK);
    assert_int_equal(v, 5000);
    assert_int_equal(wa_parse_ms("250ms", &v), WA_OK);
    assert_int_equal(v, 250);
    assert_int_equal(wa_parse_ms("2m", &v), WA_OK);
    assert_int_equal(v, 120000);
    assert_int_equal(wa_parse_ms("1h", &v), WA_OK);
    assert_int_equal(v, 3600000);
    assert_int_equal(wa_parse_ms("7d", &v), WA_OK);
    assert_int_equal(v, 7LL * 86400000);
    assert_int_equal(wa_parse_ms("100", &v), WA_OK); /* bare numbers are milliseconds */
    assert_int_equal(v, 100);
    assert_int_equal(wa_parse_ms("5 weeks", &v), WA_EINVAL);
    assert_int_equal(wa_parse_ms("s", &v), WA_EINVAL);
    assert_int_equal(wa_parse_ms("9223372036854775807d", &v), WA_EINVAL);
    assert_int_equal(wa_parse_size("3MiB", &v), WA_OK);
    assert_int_equal(v, 3145728);
    assert_int_equal(wa_parse_size("512k", &v), WA_OK);
    assert_int_equal(v, 524288);
    assert_int_equal(wa_parse_size("2GiB", &v), WA_OK);
    assert_int_equal(v, 2LL << 30);
    assert_int_equal(wa_parse_size("12", &v), WA_OK);
    assert_int_equal(v, 12);
    assert_int_equal(wa_parse_size("3XB", &v), WA_EINVAL);
}

static void
parse__microsecond_durations(void **state)
{
    int64_t v = 0;

    (void)state;
    assert_int_equal(wa_parse_us("500us", &v), WA_OK);
    assert_int_equal(v, 500);
    assert_int_equal(wa_parse_us("2ms", &v), WA_OK);
    assert_int_equal(v, 2000);
    assert_int_equal(wa_parse_us("1s", &v), WA_OK);
    assert_int_equal(v, 1000000);
    assert_int_equal(wa_parse_us("7d", &v), WA_OK);
    assert_int_equal(v, 7LL * 86400000000);
    assert_int_equal(wa_parse_us("3", &v), WA_OK); /* bare numbers are milliseconds here too */
    assert_int_equal(v, 3000);
    assert_int_equal(wa_parse_us("0", &v), WA_OK);
    assert_int_equal(v, 0);
    assert_int_equal(wa_parse_us("9223372036854775807", &v), WA_EINVAL); /* overflows as ms */
    assert_int_equal(wa_parse_us("1000000000000d", &v), WA_EINVAL);
    assert_int_equal(wa_parse_us("5 ns", &v), WA_EINVAL);
}

/* Writes content to a new temporary file; returns its path (free with free(), unlink). */
static char *
temp_file(const char *content)
{
    char *path = strdup("/tmp/wa_test_secret_XXXXXX");
    int fd;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void
secret_file__trailing_newline__stripped(void **state)
{
    char *path = temp_file("s3cr3t value\n");
    const char *kv[] = {"WA_APP_SECRET_FILE", path, NULL};
    struct test_config cfg;

    (void)state;
    assert_int_equal(load(kv, &cfg, NULL), WA_OK);
    assert_string_equal(cfg.secret, "s3cr3t value");
    wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
    unlink(path);
    free(path);
}

static void
secret_file__crlf__stripped(void **state)
{
    char *path = temp_file("abc\r\n");
    const char *kv[] = {"WA_APP_SECRET_FILE", path, NULL};
    struct test_config cfg;

    (void)state;
    assert_int_equal(load(kv, &cfg, NULL), WA_OK);
    assert_string_equal(cfg.secret, "abc");
    wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
    unlink(path);
    free(path);
}

static void
secret__both_value_and_file__error(void **state)
{
    char *path = temp_file("x\n");
    const char *kv[] = {"WA_APP_SECRET", "inline", "WA_APP_SECRET_FILE", path, NULL};
    struct test_config cfg;
    struct wa_error error = {0};

    (void)state;
    assert_int_equal(load(kv, &cfg, &error), WA_ECONFIG);
    assert_non_null(strstr(error.message, "WA_APP_SECRET"));
    assert_non_null(strstr(error.message, "WA_APP_SECRET_FILE"));
    wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
    unlink(path);
    free(path);
}

static void
secret_file__missing__error_names_path(void **state)
{
    const char *kv[] = {"WA_APP_SECRET_FILE", "/nonexistent/wa/secret", NULL};
    struct test_config cfg;
    struct wa_error error = {0};

    (void)state;
    assert_int_equal(load(kv, &cfg, &error), WA_ECONFIG);
    assert_non_null(strstr(error.message, "/nonexistent/wa/secret"));
    wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
}

static void
print__secret_redacted_others_shown(void **state)
{
    const char *kv[] = {"WA_APP_SECRET", "hunter2-do-not-print", "WA_LISTEN", "h:1", NULL};
    struct test_config cfg;
    char *text = NULL;
    size_t size = 0;
    FILE *f;

    (void)state;
    assert_int_equal(load(kv, &cfg, NULL), WA_OK);
    f = open_memstream(&text, &size);
    assert_non_null(f);
    wa_cfg_print(spec, WA_ARRAY_LEN(spec), &cfg, f);
    fclose(f);
    assert_null(strstr(text, "hunter2"));
    assert_non_null(strstr(text, "\"WA_APP_SECRET\":\"<redacted>\""));
    assert_non_null(strstr(text, "\"WA_LISTEN\":\"h:1\""));
    assert_non_null(strstr(text, "\"WA_WORKERS\":4"));
    free(text);
    wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
}

static void
print__unset_secret__null(void **state)
{
    const char *kv[] = {NULL};
    struct test_config cfg;
    char *text = NULL;
    size_t size = 0;
    FILE *f;

    (void)state;
    assert_int_equal(load(kv, &cfg, NULL), WA_OK);
    f = open_memstream(&text, &size);
    wa_cfg_print(spec, WA_ARRAY_LEN(spec), &cfg, f);
    fclose(f);
    assert_non_null(strstr(text, "\"WA_APP_SECRET\":null"));
    free(text);
    wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
}

static void
help__lists_variables_hides_secret_default(void **state)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);

    (void)state;
    wa_cfg_help(spec, WA_ARRAY_LEN(spec), f);
    fclose(f);
    assert_non_null(strstr(text, "WA_LISTEN"));
    assert_non_null(strstr(text, "WA_APP_SECRET"));
    assert_non_null(strstr(text, "_FILE"));
    free(text);
}

static void
hostport__forms(void **state)
{
    char host[64];
    int port = 0;

    (void)state;
    assert_int_equal(wa_parse_hostport("127.0.0.1:8080", host, sizeof(host), &port), WA_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(wa_parse_hostport("[::1]:9", host, sizeof(host), &port), WA_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 9);
    assert_int_equal(wa_parse_hostport("nohost", host, sizeof(host), &port), WA_EINVAL);
    assert_int_equal(wa_parse_hostport(":80", host, sizeof(host), &port), WA_EINVAL);
    assert_int_equal(wa_parse_hostport("h:65536", host, sizeof(host), &port), WA_EINVAL);
    assert_int_equal(wa_parse_hostport("toolonghostname:1", host, 4, &port), WA_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(load__nothing_set__defaults),
        cmocka_unit_test(load__values_set__parsed),
        cmocka_unit_test(load__out_of_bounds__error_names_variable),
        cmocka_unit_test(load__unparsable__error_names_variable),
        cmocka_unit_test(required__missing__error_names_variable),
        cmocka_unit_test(sandbox__public_default_refused_outside_sandbox_mode),
        cmocka_unit_test(https__plain_http_refused_outside_sandbox_mode),
        cmocka_unit_test(parse__durations_and_sizes),
        cmocka_unit_test(parse__microsecond_durations),
        cmocka_unit_test(secret_file__trailing_newline__stripped),
        cmocka_unit_test(secret_file__crlf__stripped),
        cmocka_unit_test(secret__both_value_and_file__error),
        cmocka_unit_test(secret_file__missing__error_names_path),
        cmocka_unit_test(print__secret_redacted_others_shown),
        cmocka_unit_test(print__unset_secret__null),
        cmocka_unit_test(help__lists_variables_hides_secret_default),
        cmocka_unit_test(hostport__forms),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
