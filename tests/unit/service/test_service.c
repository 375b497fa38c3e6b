/*
 * test_service.c: the daemon lifecycle of libs/service, through wa_service_main() in this
 * process. Each case declares a small stage table whose hooks append to one event log; a timer
 * raises SIGTERM; the test reads the log once wa_service_main() returned.
 *
 * Without servers: Redis is a "silent server" (a listening socket nobody accepts on: the TCP
 * handshake completes, no reply ever comes), Kafka an unreachable broker, so their commands and
 * messages stay pending until the scaffolding silences the clients.
 */
#include "wa_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wa/httpc.h"
#include "wa/kafka.h"
#include "wa/kv.h"
#include "wa/service.h"

struct t_config {
    struct wa_common_config common;
};

static const struct wa_cfg_spec spec[] = {
    WA_CFG_COMMON(struct t_config, common, "127.0.0.1:0"),
};

/* ---- the event log ---- */

static char events[4096];

static void
event(const char *what, const char *detail)
{
    size_t len = strlen(events);

    snprintf(events + len, sizeof(events) - len, "%s%s ", what, detail);
}

/* Position of what in the log; fails the test when absent. */
static size_t
at(const char *what)
{
    const char *p = strstr(events, what);

    if (p == NULL) {
        fail_msg("\"%s\" not in the log: %s", what, events);
    }
    return (size_t)(p - events);
}

static int
run(const struct wa_service_def *def)
{
    char *argv[] = {"test-service", NULL};

    events[0] = '\0';
    return wa_service_main(1, argv, def);
}

static int
silent_server(int *port)
{
    struct sockaddr_in sa = {0};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* ---- the stages' state and hooks ---- */

struct st {
    struct wa_service *svc;
    struct wa_timer *term; /* raises SIGTERM */
    struct wa_timer *work; /* stage B: its in-flight work finishes when this fires */
    struct wa_timer *send; /* silence cases: sends the command that stays pending */
    bool b_busy;
    struct wa_kafka_producer *producer;
    struct wa_kv *kv;
    struct wa_pool *pool;
};

static void
on_term(struct wa_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    raise(SIGTERM);
}

static enum wa_err
a_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct st *s = state;

    (void)error;
    s->svc = svc;
    event("start:", "A");
    return WA_OK;
}

static void
a_drain(struct wa_service *svc, void *state)
{
    (void)svc;
    (void)state;
    event("drain:", "A");
}

static void
a_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    (void)state;
    event("stop:", "A");
}

static void
on_work_done(struct wa_timer *t, void *arg)
{
    struct st *s = arg;

    (void)t;
    s->b_busy = false;
    event("idle:", "B");
}

static enum wa_err
b_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct st *s = state;

    (void)error;
    event("start:", "B");
    s->work = wa_timer_new(wa_service_loop(svc), on_work_done, s);
    return s->work != NULL ? WA_OK : WA_ENOMEM;
}

/* SIGTERM: work B had in flight takes 100 ms more. */
static void
b_drain(struct wa_service *svc, void *state)
{
    struct st *s = state;

    (void)svc;
    event("drain:", "B");
    s->b_busy = true;
    wa_timer_start(s->work, 100, 0);
}

static bool
b_busy(void *state)
{
    return ((struct st *)state)->b_busy;
}

static void
b_stop(struct wa_service *svc, void *state)
{
    struct st *s = state;

    (void)svc;
    event("stop:", "B");
    wa_timer_free(s->work);
}

static enum wa_err
c_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct st *s = state;

    (void)error;
    event("start:", "C");
    if ((s->term = wa_timer_new(wa_service_loop(svc), on_term, s)) == NULL) {
        return WA_ENOMEM;
    }
    wa_timer_start(s->term, 20, 0);
    return WA_OK;
}

static void
c_drain(struct wa_service *svc, void *state)
{
    (void)svc;
    (void)state;
    event("drain:", "C");
}

static void
c_stop(struct wa_service *svc, void *state)
{
    struct st *s = state;

    (void)svc;
    event("stop:", "C");
    wa_timer_free(s->term);
}

static enum wa_err
fail_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    (void)state;
    event("start:", "B");
    return wa_error_set(error, WA_EUNAVAIL, "refused");
}

/* ---- cases ---- */

static void
setenv_common(void)
{
    setenv("WA_LISTEN", "127.0.0.1:0", 1);
    setenv("WA_LOG_LEVEL", "error", 1);
    setenv("WA_SHUTDOWN_TIMEOUT", "3s", 1);
    setenv("WA_KAFKA_BROKERS", "127.0.0.1:1", 1); /* nobody listens: messages stay queued */
}

static struct wa_service_def
def_with(const struct wa_service_stage *stages, size_t n)
{
    return (struct wa_service_def){
        .name = "test-service",
        .summary = "stages",
        .spec = spec,
        .nspec = WA_ARRAY_LEN(spec),
        .cfg_size = sizeof(struct t_config),
        .common_offset = offsetof(struct t_config, common),
        .state_size = sizeof(struct st),
        .stages = stages,
        .nstages = n,
    };
}

static void
stages__sigterm__drain_reverse_wait_busy_then_stop_reverse(void **state)
{
    static const struct wa_service_stage stages[] = {
        {"A", a_start, a_drain, NULL, a_stop},
        {"B", b_start, b_drain, b_busy, b_stop},
        {"C", c_start, c_drain, NULL, c_stop},
    };
    struct wa_service_def def = def_with(stages, WA_ARRAY_LEN(stages));

    (void)state;
    setenv_common();
    assert_int_equal(run(&def), 0);
    assert_string_equal(events, "start:A start:B start:C drain:C drain:B drain:A idle:B stop:C "
                                "stop:B stop:A ");
}

static void
stages__one_start_fails__started_ones_stopped_in_reverse_exit_1(void **state)
{
    static const struct wa_service_stage stages[] = {
        {"A", a_start, a_drain, NULL, a_stop},
        {"B", fail_start, b_drain, b_busy, NULL},
        {"C", c_start, c_drain, NULL, c_stop},
    };
    struct wa_service_def def = def_with(stages, WA_ARRAY_LEN(stages));

    (void)state;
    setenv_common();
    assert_int_equal(run(&def), 1);
    assert_string_equal(events, "start:A start:B stop:A ");
}

/* ---- silence: pending callbacks complete with WA_ECLOSED before any stop ---- */

static void
on_delivery(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    (void)partition;
    (void)offset;
    (void)arg;
    event("delivery:", wa_err_name(err));
}

static void
on_reply(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    (void)arg;
    (void)reply;
    event("redis:", wa_err_name(err));
}

static void
on_send(struct wa_timer *t, void *arg)
{
    struct st *s = arg;
    const char *argv[] = {"GET", "k"};

    (void)t;
    assert_int_equal(wa_kv_command_argv(s->kv, 2, argv, NULL, on_reply, s), WA_OK);
    assert_int_equal(wa_kafka_produce(s->producer, "t", "k", 1, "v", 1, NULL, 0, on_delivery, s),
                     WA_OK);
    event("sent", "");
}

static enum wa_err
clients_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct st *s = state;
    enum wa_err err;

    event("start:", "clients");
    if ((err = wa_service_kafka_producer(svc, &s->producer, error)) != WA_OK ||
        (err = wa_service_kv(svc, &s->kv, error)) != WA_OK) {
        return err;
    }
    if ((s->send = wa_timer_new(wa_service_loop(svc), on_send, s)) == NULL ||
        (s->term = wa_timer_new(wa_service_loop(svc), on_term, s)) == NULL) {
        return WA_ENOMEM;
    }
    wa_timer_start(s->send, 100, 0); /* connected to the silent server by then */
    wa_timer_start(s->term, 1300, 0);
    return WA_OK;
}

/* The clients are closed, not freed: calls fail with WA_ECLOSED and never call back. */
static void
clients_stop(struct wa_service *svc, void *state)
{
    struct st *s = state;
    const char *argv[] = {"GET", "k"};

    (void)svc;
    event("stop:", "clients");
    assert_int_equal(wa_kv_command_argv(s->kv, 2, argv, NULL, on_reply, s), WA_ECLOSED);
    assert_int_equal(wa_kafka_produce(s->producer, "t", "k", 1, "v", 1, NULL, 0, on_delivery, s),
                     WA_ECLOSED);
    wa_timer_free(s->send);
    wa_timer_free(s->term);
}

/* A per-service option: commands wait 30 s, so the one pending is still pending at 1.3 s. */
static void
clients_options(const void *cfg, struct wa_service_clients *c)
{
    (void)cfg;
    c->kv_command_timeout_ms = 30000;
    c->producer_props[c->nproducer_props++] =
        (struct wa_kafka_property){"message.timeout.ms", "60000"};
}

static void
silence__pending_redis_and_kafka__eclosed_before_stop_then_calls_fail(void **state)
{
    static const struct wa_service_stage stages[] = {
        {"clients", clients_start, NULL, NULL, clients_stop},
    };
    struct wa_service_def def = def_with(stages, WA_ARRAY_LEN(stages));
    char url[64];
    int port, fd = silent_server(&port);

    (void)state;
    setenv_common();
    setenv("WA_SHUTDOWN_TIMEOUT", "200ms", 1); /* bounds the producer's flush */
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
    setenv("WA_REDIS_URL", url, 1);
    def.clients = clients_options;
    assert_int_equal(run(&def), 0);
    close(fd);
    assert_true(at("sent") < at("redis:ECLOSED"));
    assert_true(at("sent") < at("delivery:ECLOSED"));
    assert_true(at("redis:ECLOSED") < at("stop:clients"));
    assert_true(at("delivery:ECLOSED") < at("stop:clients"));
    assert_null(strstr(events, "ETIMEDOUT")); /* the option reached the client */
}

static void
clients_options_bad(const void *cfg, struct wa_service_clients *c)
{
    (void)cfg;
    c->producer_props[c->nproducer_props++] = (struct wa_kafka_property){"no.such.property", "1"};
}

static void
options__rejected_producer_property__start_fails(void **state)
{
    static const struct wa_service_stage stages[] = {
        {"clients", clients_start, NULL, NULL, clients_stop},
    };
    struct wa_service_def def = def_with(stages, WA_ARRAY_LEN(stages));

    (void)state;
    setenv_common();
    def.uses = WA_SERVICE_USES_KAFKA;
    def.clients = clients_options_bad;
    assert_int_equal(run(&def), 1);
    assert_string_equal(events, ""); /* the clients of uses come before any stage */
}

/* ---- silence: the worker pool's jobs finish and their completions run before any stop ---- */

static void
slow_work(void *arg)
{
    (void)arg;
    usleep(150 * 1000);
}

static void
slow_done(void *arg)
{
    struct st *s = arg;

    event("pool:", "done");
    /* the pool is closed but still valid: new work is refused, nothing dangles */
    assert_int_equal(wa_pool_submit(s->pool, slow_work, slow_done, s), WA_ECLOSED);
}

static enum wa_err
pool_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct st *s = state;
    struct wa_pool *pool = wa_service_pool(svc);

    event("start:", "pool");
    s->pool = pool;
    if (pool == NULL || wa_pool_submit(pool, slow_work, slow_done, s) != WA_OK) {
        return wa_error_set(error, WA_ENOMEM, "pool");
    }
    if ((s->term = wa_timer_new(wa_service_loop(svc), on_term, s)) == NULL) {
        return WA_ENOMEM;
    }
    wa_timer_start(s->term, 10, 0);
    return WA_OK;
}

static void
pool_stop(struct wa_service *svc, void *state)
{
    struct st *s = state;

    event("stop:", "pool");
    assert_null(wa_service_pool(svc)); /* silenced: no new pool */
    wa_timer_free(s->term);
}

static void
silence__pool_job_running__completion_runs_before_stop(void **state)
{
    static const struct wa_service_stage stages[] = {
        {"pool", pool_start, NULL, NULL, pool_stop},
    };
    struct wa_service_def def = def_with(stages, WA_ARRAY_LEN(stages));

    (void)state;
    setenv_common();
    assert_int_equal(run(&def), 0);
    assert_string_equal(events, "start:pool pool:done stop:pool ");
}

/* ---- WA_ADMIN_LISTEN: the probes on their own listener ---- */

struct probe {
    const char *label;
    int *pending;
};

static struct {
    struct wa_httpc *client;
    struct wa_timer *go;
    struct probe probes[4];
    int pending;
} adm;

static void
on_probe(const struct wa_httpc_result *res, void *arg)
{
    struct probe *p = arg;
    char detail[32];

    snprintf(detail, sizeof(detail), "%ld", res->status);
    event(p->label, detail);
    if (--*p->pending == 0) {
        raise(SIGTERM);
    }
}

static void
on_public(struct wa_http_req *req, void *arg)
{
    (void)arg;
    wa_http_reply_json(req, 200, "{}");
}

/* Once both listen: /readyz and /metrics asked on both ports, and the service's own route. */
static void
on_go(struct wa_timer *t, void *arg)
{
    struct wa_service *svc = arg;
    static const struct {
        const char *label, *path;
        bool admin;
    } asks[] = {{"public/readyz:", "/readyz", false},
                {"admin/readyz:", "/readyz", true},
                {"admin/metrics:", "/metrics", true},
                {"public/v1:", "/v1/x", false}};

    (void)t;
    adm.pending = (int)WA_ARRAY_LEN(asks);
    for (size_t i = 0; i < WA_ARRAY_LEN(asks); i++) {
        char url[128];
        struct wa_httpc_request rq = {.url = url};

        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s",
                 wa_httpd_port(asks[i].admin ? wa_service_admin_httpd(svc) : wa_service_httpd(svc)),
                 asks[i].path);
        adm.probes[i] = (struct probe){asks[i].label, &adm.pending};
        assert_int_equal(wa_httpc_send(adm.client, &rq, on_probe, &adm.probes[i], NULL, NULL),
                         WA_OK);
    }
}

static bool
probe_down(void *arg)
{
    (void)arg;
    return false;
}

static enum wa_err
admin_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct wa_httpc_config hc = {.timeout_ms = 5000};

    (void)state;
    /* a check that is down but advisory leaves the daemon ready */
    assert_int_equal(wa_service_probe(svc, "optional", probe_down, NULL), WA_OK);
    assert_int_equal(wa_service_probe_advisory(svc, "optional"), WA_OK);
    assert_int_equal(wa_service_probe_advisory(svc, "no-such-check"), WA_ENOTFOUND);
    assert_true(wa_service_admin_httpd(svc) != wa_service_httpd(svc));
    assert_int_equal(wa_httpd_route(wa_service_httpd(svc), "GET", "/v1/x", 0, on_public, NULL),
                     WA_OK);
    assert_int_equal(wa_httpc_new(wa_service_loop(svc), &hc, &adm.client, error), WA_OK);
    adm.go = wa_timer_new(wa_service_loop(svc), on_go, svc);
    wa_timer_start(adm.go, 20, 0);
    return WA_OK;
}

static void
admin_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    (void)state;
    wa_timer_free(adm.go);
    wa_httpc_free(adm.client);
}

static void
admin_listen__set__probes_there_not_on_the_public_port_advisory_check_down_still_ready(void **state)
{
    static const struct wa_service_stage stages[] = {
        {"admin", admin_start, NULL, NULL, admin_stop},
    };
    struct wa_service_def def = def_with(stages, WA_ARRAY_LEN(stages));

    (void)state;
    setenv_common();
    setenv("WA_ADMIN_LISTEN", "127.0.0.1:0", 1);
    assert_int_equal(run(&def), 0);
    unsetenv("WA_ADMIN_LISTEN");
    at("public/readyz:404 ");
    at("admin/readyz:200 ");
    at("admin/metrics:200 ");
    at("public/v1:200 ");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            admin_listen__set__probes_there_not_on_the_public_port_advisory_check_down_still_ready),
        cmocka_unit_test(stages__sigterm__drain_reverse_wait_busy_then_stop_reverse),
        cmocka_unit_test(stages__one_start_fails__started_ones_stopped_in_reverse_exit_1),
        cmocka_unit_test(silence__pending_redis_and_kafka__eclosed_before_stop_then_calls_fail),
        cmocka_unit_test(silence__pool_job_running__completion_runs_before_stop),
        cmocka_unit_test(options__rejected_producer_property__start_fails),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    wa_kafka_wait_destroyed(5000);
    return rc;
}
