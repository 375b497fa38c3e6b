/*
 * daemons_test.c: the operability contract of every daemon, through its binary.
 *
 * For each of the six daemons and wa-cloudsim: --version, --help, --check-config (valid and
 * invalid), --print-config redaction; then the daemon started against the real test
 * infrastructure: /healthz, /readyz 200, /metrics, a JSON 404, and SIGTERM -> exit 0 within
 * 5 s. Finally, readiness follows Redis: a private redis-server is stopped (/readyz 503 within
 * 5 s) and restarted (/readyz 200 again) without restarting the daemon.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wa/buf.h"
#include "wa/clock.h"
#include "wa_test.h"
#include "wa_test_proc.h"

static const char *const daemons[] = {"wa-gateway",   "wa-ingest", "wa-router",  "wa-notify",
                                      "wa-analytics", "wa-users",  "wa-cloudsim"};

/* Runs a command to completion, capturing stdout into out; returns the exit status. */
static int
run_capture(const char *const *argv, const char *const *env, struct wa_buf *out)
{
    char path[] = "/tmp/wa-daemons-test-XXXXXX";
    int fd = mkstemp(path), rc;
    size_t len = 0;
    char *text;

    assert_true(fd >= 0);
    close(fd);
    rc = wa_test_wait_exit(wa_test_spawn(argv, env, path, 0), 10000);
    text = wa_test_read_file(path, &len);
    unlink(path);
    assert_non_null(text);
    wa_buf_append(out, text, len);
    free(text);
    return rc;
}

/* GET http://127.0.0.1:port/path; returns the status (0 if no answer), body into out. */
static long
http_get(int port, const char *path, struct wa_buf *out)
{
    struct wa_test_http_req req = {.port = port, .path = path, .timeout_ms = 2000};

    return wa_test_http(&req, out);
}

struct env {
    char listen[64], brokers[256], redis[256], mongo[256], prefix[64], spool[128];
    const char *list[9];
};

static void
env_init(struct env *e, int port, const char *redis_url)
{
    char p[40];

    wa_test_unique_prefix(p, sizeof(p));
    snprintf(e->listen, sizeof(e->listen), "WA_LISTEN=127.0.0.1:%d", port);
    snprintf(e->brokers, sizeof(e->brokers), "WA_KAFKA_BROKERS=%s",
             wa_test_env("WA_KAFKA_BROKERS"));
    snprintf(e->redis, sizeof(e->redis), "WA_REDIS_URL=%s",
             redis_url != NULL ? redis_url : wa_test_env("WA_REDIS_URL"));
    snprintf(e->mongo, sizeof(e->mongo), "WA_MONGO_URI=%s", wa_test_env("WA_MONGO_URI"));
    snprintf(e->prefix, sizeof(e->prefix), "WA_TOPIC_PREFIX=%s", p);
    snprintf(e->spool, sizeof(e->spool), "WA_SPOOL_DIR=/tmp/wa-daemons-test-spool-%d", port);
    e->list[0] = e->listen;
    e->list[1] = e->brokers;
    e->list[2] = e->redis;
    e->list[3] = e->mongo;
    e->list[4] = e->prefix;
    e->list[5] = e->spool;
    e->list[6] = "WA_SANDBOX=1"; /* the sandbox's public secrets are the daemons' defaults */
    e->list[7] = NULL;
}

static void
cli__every_daemon__answers_version_help_and_config_checks(void **state)
{
    struct wa_buf out;
    char path[512];
    size_t i;

    (void)state;
    wa_buf_init(&out, 1 << 20);
    for (i = 0; i < WA_ARRAY_LEN(daemons); i++) {
        const char *version[] = {path, "--version", NULL};
        const char *help[] = {path, "--help", NULL};
        const char *check[] = {path, "--check-config", NULL};
        const char *print[] = {path, "--print-config", NULL};
        const char *sandbox[] = {"WA_SANDBOX=1", NULL};
        const char *bad[] = {"WA_SANDBOX=1", "WA_LISTEN=nonsense", NULL};
        const char *secret[] = {"WA_SANDBOX=1", "WA_REDIS_URL=redis://:hunter2@127.0.0.1:6379/0",
                                NULL};

        wa_test_bin_path(daemons[i], path, sizeof(path));
        wa_buf_reset(&out);
        assert_int_equal(run_capture(version, NULL, &out), 0);
        assert_non_null(strstr(out.data, daemons[i]));
        wa_buf_reset(&out);
        assert_int_equal(run_capture(help, NULL, &out), 0);
        assert_non_null(strstr(out.data, "WA_LISTEN"));
        wa_buf_reset(&out);
        assert_int_equal(run_capture(check, sandbox, &out), 0);
        wa_buf_reset(&out);
        assert_int_equal(run_capture(check, bad, &out), 2);
        wa_buf_reset(&out);
        assert_int_equal(run_capture(print, secret, &out), 0);
        assert_null(strstr(out.data, "hunter2"));
        assert_non_null(strstr(out.data, "<redacted>"));
    }
    wa_buf_cleanup(&out);
}

/* Outside sandbox mode, the daemons that hold Meta's secrets (and the opt-out key) refuse the
 * public sandbox values. */
static void
cli__secret_daemons__refuse_sandbox_secrets_outside_sandbox_mode(void **state)
{
    static const struct {
        const char *daemon, *variable;
        const char *env[4];
    } cases[] = {
        {"wa-ingest", "WA_APP_SECRET", {"WA_VERIFY_TOKEN=v-real", NULL}},
        {"wa-ingest", "WA_APP_SECRET", {"WA_APP_SECRET=sandbox-secret", "WA_VERIFY_TOKEN=v", NULL}},
        {"wa-ingest", "WA_VERIFY_TOKEN", {"WA_APP_SECRET=s-real", "WA_SANDBOX=0", NULL}},
        {"wa-notify", "WA_ACCESS_TOKEN", {"WA_ACCESS_TOKEN=", NULL}},
        {"wa-notify", "WA_ACCESS_TOKEN", {"WA_ACCESS_TOKEN=1=t-real,sandbox-token", NULL}},
        {"wa-notify", "WA_OPTOUT_KEY", {"WA_ACCESS_TOKEN=t-real", NULL}},
        {"wa-users", "WA_OPTOUT_KEY", {"WA_OPTOUT_KEY=sandbox-optout-key", NULL}},
    };
    const char *ingest_ok[] = {"WA_APP_SECRET=s-real", "WA_VERIFY_TOKEN=v-real", NULL};
    const char *notify_ok[] = {"WA_ACCESS_TOKEN=t-real", "WA_OPTOUT_KEY=o-real", NULL};
    const char *users_ok[] = {"WA_OPTOUT_KEY=o-real", NULL};
    struct wa_buf out;
    char path[512];
    size_t i;

    (void)state;
    wa_buf_init(&out, 1 << 16);
    for (i = 0; i < WA_ARRAY_LEN(cases); i++) {
        const char *check[] = {path, "--check-config", NULL};

        wa_test_bin_path(cases[i].daemon, path, sizeof(path));
        wa_buf_reset(&out);
        assert_int_equal(run_capture(check, cases[i].env, &out), 2);
        assert_non_null(strstr(out.data, cases[i].variable));
    }
    {
        const char *check[] = {path, "--check-config", NULL};

        wa_test_bin_path("wa-ingest", path, sizeof(path));
        assert_int_equal(run_capture(check, ingest_ok, &out), 0);
        wa_test_bin_path("wa-notify", path, sizeof(path));
        assert_int_equal(run_capture(check, notify_ok, &out), 0);
        wa_test_bin_path("wa-users", path, sizeof(path));
        assert_int_equal(run_capture(check, users_ok, &out), 0);
    }
    wa_buf_cleanup(&out);
}

/* Kafka TLS/SASL settings that cannot work and rediss:// are refused at start (exit 2), naming
 * the variable and never printing the password. */
static void
cli__every_daemon__refuses_unusable_kafka_security_and_rediss(void **state)
{
    static const struct {
        const char *env[6];
        const char *names;
    } cases[] = {
        {{"WA_SANDBOX=1", "WA_KAFKA_SECURITY_PROTOCOL=SASL_SSL", "WA_KAFKA_SASL_USERNAME=u",
          "WA_KAFKA_SASL_PASSWORD=hunter2", NULL},
         "WA_KAFKA_SASL_MECHANISM"},
        {{"WA_SANDBOX=1", "WA_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
          "WA_KAFKA_SASL_MECHANISM=PLAIN", "WA_KAFKA_SASL_USERNAME=u",
          "WA_KAFKA_SASL_PASSWORD=hunter2", NULL},
         "clear text"},
        {{"WA_SANDBOX=1", "WA_KAFKA_SSL_CA_PATH=/etc/hostname", NULL}, "WA_KAFKA_SSL_"},
        {{"WA_SANDBOX=1", "WA_REDIS_URL=rediss://:hunter2@127.0.0.1:6380/0", NULL},
         "Redis over TLS"},
    };
    const char *sasl[] = {"WA_SANDBOX=1",
                          "WA_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                          "WA_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
                          "WA_KAFKA_SASL_USERNAME=u",
                          "WA_KAFKA_SASL_PASSWORD=hunter2",
                          NULL};
    struct wa_buf out;
    char path[512];

    (void)state;
    wa_buf_init(&out, 1 << 16);
    for (size_t i = 0; i < WA_ARRAY_LEN(daemons); i++) {
        const char *check[] = {path, "--check-config", NULL};
        const char *print[] = {path, "--print-config", NULL};

        wa_test_bin_path(daemons[i], path, sizeof(path));
        /* a valid SASL_SSL set: accepted, the password redacted */
        wa_buf_reset(&out);
        assert_int_equal(run_capture(print, sasl, &out), 0);
        if (strstr(out.data, "hunter2") != NULL || strstr(out.data, "SCRAM-SHA-512") == NULL) {
            fail_msg("%s --print-config: %s", daemons[i], out.data);
        }
        for (size_t k = 0; k < WA_ARRAY_LEN(cases); k++) {
            wa_buf_reset(&out);
            assert_int_equal(run_capture(check, cases[k].env, &out), 2);
            if (strstr(out.data, cases[k].names) == NULL || strstr(out.data, "hunter2") != NULL) {
                fail_msg("%s, case %zu: %s", daemons[i], k, out.data);
            }
        }
    }
    wa_buf_cleanup(&out);
}

static void
lifecycle__every_daemon__serves_probes_and_stops_on_sigterm(void **state)
{
    struct wa_buf body;
    char path[512], log[256];
    size_t i;

    (void)state;
    wa_buf_init(&body, 1 << 22);
    for (i = 0; i < WA_ARRAY_LEN(daemons); i++) {
        int port = wa_test_free_port();
        struct env e;
        const char *argv[] = {path, NULL};
        pid_t pid;
        uint64_t t0;

        env_init(&e, port, NULL);
        wa_test_bin_path(daemons[i], path, sizeof(path));
        snprintf(log, sizeof(log), "/tmp/wa-daemons-test-%s.log", daemons[i]);
        pid = wa_test_spawn(argv, e.list, log, 0);
        if (!wa_test_poll_status(port, "/readyz", 200, 30000, NULL)) {
            http_get(port, "/readyz", &body);
            wa_test_stop(pid, SIGKILL, 5000);
            fail_msg("%s: /readyz not 200 within 30 s (last body: %s; log %s)", daemons[i],
                     body.data != NULL ? body.data : "none", log);
        }
        assert_int_equal(http_get(port, "/healthz", &body), 200);
        assert_int_equal(http_get(port, "/metrics", &body), 200);
        assert_non_null(strstr(body.data, "# TYPE"));
        assert_int_equal(http_get(port, "/no/such/path", &body), 404);
        /* every daemon's server answers an unknown path with RFC 9457 problem+json */
        assert_non_null(strstr(body.data, "\"status\":404"));
        t0 = wa_clock_mono_ms();
        assert_int_equal(wa_test_stop(pid, SIGTERM, 5000), 0);
        assert_true(wa_clock_mono_ms() - t0 < 5000);
    }
    wa_buf_cleanup(&body);
}

/* A daemon (wa-router: a consumer and a producer) over the broker's SASL_SSL listener with its
 * password from a file is ready; with a wrong password its start fails, logging the broker's
 * reason at error level, never the password. Skipped without the listener (kafka.sh). */
static void
sasl_ssl__router__ready_with_the_password_refused_with_a_wrong_one(void **state)
{
    const char *brokers = getenv("WA_TEST_KAFKA_SASL_SSL_BROKERS");
    char path[512], log[256], pwfile[] = "/tmp/wa-daemons-test-pw-XXXXXX";
    char b[300], user[128], pw[300], ca[300];
    const char *argv[] = {path, NULL};
    const char *env[16];
    struct wa_buf body;
    struct env e;
    size_t n = 0;
    int fd, port;
    pid_t pid;

    (void)state;
    if (brokers == NULL || *brokers == '\0') {
        skip();
    }
    fd = mkstemp(pwfile);
    assert_true(fd >= 0);
    assert_true(write(fd, wa_test_env("WA_TEST_KAFKA_SASL_PASSWORD"),
                      strlen(wa_test_env("WA_TEST_KAFKA_SASL_PASSWORD"))) > 0);
    close(fd);
    wa_buf_init(&body, 1 << 16);
    wa_test_bin_path("wa-router", path, sizeof(path));
    for (int attempt = 0; attempt < 2; attempt++) {
        bool right = attempt == 0;

        port = wa_test_free_port();
        env_init(&e, port, NULL);
        for (n = 0; e.list[n] != NULL; n++) {
            env[n] = strncmp(e.list[n], "WA_KAFKA_BROKERS=", 17) == 0 ? b : e.list[n];
        }
        snprintf(b, sizeof(b), "WA_KAFKA_BROKERS=%s", brokers);
        snprintf(user, sizeof(user), "WA_KAFKA_SASL_USERNAME=%s",
                 wa_test_env("WA_TEST_KAFKA_SASL_USERNAME"));
        if (right) {
            snprintf(pw, sizeof(pw), "WA_KAFKA_SASL_PASSWORD_FILE=%s", pwfile);
        } else {
            snprintf(pw, sizeof(pw), "WA_KAFKA_SASL_PASSWORD=wrong-pw-x");
        }
        snprintf(ca, sizeof(ca), "WA_KAFKA_SSL_CA_PATH=%s", wa_test_env("WA_TEST_KAFKA_CA_PATH"));
        env[n++] = "WA_KAFKA_SECURITY_PROTOCOL=SASL_SSL";
        env[n++] = "WA_KAFKA_SASL_MECHANISM=SCRAM-SHA-256";
        env[n++] = user;
        env[n++] = pw;
        env[n++] = ca;
        env[n] = NULL;
        snprintf(log, sizeof(log), "/tmp/wa-daemons-test-sasl-%d.log", attempt);
        pid = wa_test_spawn(argv, env, log, 0);
        if (right && !wa_test_poll_status(port, "/readyz", 200, 30000, NULL)) {
            http_get(port, "/readyz", &body);
            wa_test_stop(pid, SIGKILL, 5000);
            fail_msg("wa-router over SASL_SSL: /readyz not 200 within 30 s (%s; log %s)",
                     body.data != NULL ? body.data : "no answer", log);
        }
        if (!right) {
            char *text;

            /* its start creates its topics: that fails (exit 1) once the admin call times out */
            assert_int_equal(wa_test_wait_exit(pid, 40000), 1);
            text = wa_test_read_file(log, NULL);
            assert_non_null(text);
            if (strstr(text, "\"level\":\"error\"") == NULL ||
                strstr(text, "SASL authentication error") == NULL ||
                strstr(text, "wrong-pw-x") != NULL) {
                fail_msg("wrong password, log %s: %s", log, text);
            }
            free(text);
        } else {
            assert_int_equal(wa_test_stop(pid, SIGTERM, 10000), 0);
        }
    }
    unlink(pwfile);
    wa_buf_cleanup(&body);
}

/* wa-notify refuses a drain shorter than its Cloud API timeout: a drain cut short would cancel
 * sends whose outcome is unknown, and the next owner would send them again. */
static void
notify__drain_shorter_than_http_timeout__refused_at_start(void **state)
{
    struct wa_buf out;
    struct env e;
    char path[512];
    const char *argv[] = {path, NULL};
    const char *env[12];
    size_t n = 0;

    (void)state;
    env_init(&e, wa_test_free_port(), NULL);
    for (; e.list[n] != NULL; n++) {
        env[n] = e.list[n];
    }
    env[n++] = "WA_NOTIFY_HTTP_TIMEOUT=10s";
    env[n++] = "WA_SHUTDOWN_TIMEOUT=4s";
    env[n] = NULL;
    wa_test_bin_path("wa-notify", path, sizeof(path));
    wa_buf_init(&out, 1 << 16);
    assert_int_not_equal(run_capture(argv, env, &out), 0);
    assert_non_null(strstr(out.data, "WA_SHUTDOWN_TIMEOUT"));
    wa_buf_cleanup(&out);
}

/* A test process that dies (a failed assertion, a crash, SIGKILL) leaves none of the processes it
 * spawned behind. */
static void
spawn__test_process_dies__its_children_are_killed(void **state)
{
    const char *argv[] = {"sleep", "1000", NULL};
    int fds[2];
    pid_t tester, child = 0;
    uint64_t t0;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    tester = fork();
    assert_true(tester >= 0);
    if (tester == 0) {
        pid_t p = wa_test_spawn(argv, NULL, "/dev/null", 0);

        (void)!write(fds[1], &p, sizeof(p));
        pause(); /* "fails" when killed below */
        _exit(0);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &child, sizeof(child)), (ssize_t)sizeof(child));
    close(fds[0]);
    assert_true(child > 0);
    assert_int_equal(kill(child, 0), 0);
    assert_int_equal(kill(tester, SIGKILL), 0);
    assert_int_equal(wa_test_wait_exit(tester, 5000), 128 + SIGKILL);
    t0 = wa_clock_mono_ms();
    while (kill(child, 0) == 0 && wa_clock_mono_ms() - t0 < 5000) {
        usleep(20000); /* the child is an orphan: init reaps it once it is killed */
    }
    if (kill(child, 0) == 0) {
        kill(child, SIGKILL);
        fail_msg("the child (pid %d) outlived its test process", (int)child);
    }
}

static pid_t
start_redis(int port)
{
    char portarg[16];
    const char *argv[] = {
        "/usr/bin/redis-server", "--port", portarg, "--bind", "127.0.0.1", "--save", "",
        "--appendonly",          "no",     NULL};

    snprintf(portarg, sizeof(portarg), "%d", port);
    return wa_test_spawn(argv, NULL, "/dev/null", 0);
}

static void
readiness__redis_stops_and_returns__readyz_follows_without_restart(void **state)
{
    int rport = wa_test_free_port(), port = wa_test_free_port();
    char url[64], path[512];
    const char *argv[] = {path, NULL};
    struct env e;
    pid_t redis, pid;

    (void)state;
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", rport);
    redis = start_redis(rport);
    env_init(&e, port, url);
    wa_test_bin_path("wa-router", path, sizeof(path));
    pid = wa_test_spawn(argv, e.list, "/tmp/wa-daemons-test-readiness.log", 0);
    assert_true(wa_test_poll_status(port, "/readyz", 200, 30000, NULL));

    wa_test_stop(redis, SIGKILL, 5000);
    assert_true(wa_test_poll_status(port, "/readyz", 503, 5000, NULL));

    redis = start_redis(rport);
    assert_true(wa_test_poll_status(port, "/readyz", 200, 15000, NULL));

    assert_int_equal(wa_test_stop(pid, SIGTERM, 5000), 0);
    wa_test_stop(redis, SIGTERM, 5000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cli__every_daemon__answers_version_help_and_config_checks),
        cmocka_unit_test(cli__secret_daemons__refuse_sandbox_secrets_outside_sandbox_mode),
        cmocka_unit_test(cli__every_daemon__refuses_unusable_kafka_security_and_rediss),
        cmocka_unit_test(sasl_ssl__router__ready_with_the_password_refused_with_a_wrong_one),
        cmocka_unit_test(lifecycle__every_daemon__serves_probes_and_stops_on_sigterm),
        cmocka_unit_test(notify__drain_shorter_than_http_timeout__refused_at_start),
        cmocka_unit_test(spawn__test_process_dies__its_children_are_killed),
        cmocka_unit_test(readiness__redis_stops_and_returns__readyz_follows_without_restart),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
