/*
 * service.c: the life of a daemon: arguments, configuration, logging, loop, HTTP probes,
 * signals, the stages' start, drain and stop. See wa/service.h for the contract.
 *
 * Order at start: config -> log -> loop -> metrics -> httpd (routes only) -> def->clients ->
 * clients named in def->uses -> stages' start, in order -> httpd listening -> "ready" log
 * line -> loop runs. Order at stop: SIGTERM -> httpd quiesce, consumers paused, stages' drain
 * (reverse) -> no stage busy and no request in flight (or timeout) -> loop stops -> producer
 * flushed, consumers closed -> silence: producer, Redis, MongoDB closed, httpd freed, worker
 * pool closed and the loop turned until its jobs' completions ran -> stages' stop (reverse) ->
 * state freed -> clients -> pool -> metrics -> loop.
 */
#include "wa/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>

#include "service_internal.h"
#include "wa/clock.h"
#include "wa/log.h"
#include "wa/trace.h"

#define MAX_PROBES    WA_ARRAY_LEN(((struct wa_service *)0)->probes)
#define BUSY_POLL_MS  5    /* while draining: how often the stages' busy hooks are asked */
#define SETTLE_MIN_MS 1000 /* the pool's jobs get at least this long to finish */

static void
usage(const struct wa_service_def *def, FILE *out)
{
    fprintf(out,
            "%s %s: %s\n\n"
            "Usage: %s [--help] [--version] [--check-config] [--print-config]\n\n"
            "  --help          this text\n"
            "  --version       print the version and exit\n"
            "  --check-config  validate the configuration and exit (0 valid, 2 invalid)\n"
            "  --print-config  print the effective configuration as JSON (secrets redacted)\n\n"
            "Configuration comes from the environment; every secret may instead be read from\n"
            "the file named by <NAME>_FILE. Logs are JSON lines on stdout. HTTP: GET /healthz,\n"
            "GET /readyz, GET /metrics on WA_ADMIN_LISTEN (WA_LISTEN when empty). SIGTERM stops\n"
            "gracefully, SIGHUP reloads.\n\n",
            def->name, WA_VERSION, def->summary, def->name);
    wa_cfg_help(def->spec, def->nspec, out);
}

struct wa_loop *
wa_service_loop(struct wa_service *svc)
{
    return svc->loop;
}

struct wa_tracer *
wa_service_tracer(struct wa_service *svc)
{
    return svc->tracer;
}

struct wa_metrics *
wa_service_metrics(struct wa_service *svc)
{
    return svc->metrics;
}

struct wa_httpd *
wa_service_httpd(struct wa_service *svc)
{
    return svc->httpd;
}

struct wa_httpd *
wa_service_admin_httpd(struct wa_service *svc)
{
    return svc->admin != NULL ? svc->admin : svc->httpd;
}

const struct wa_common_config *
wa_service_common(struct wa_service *svc)
{
    return svc->common;
}

const char *
wa_service_name(struct wa_service *svc)
{
    return svc->def->name;
}

const char *
wa_service_instance(struct wa_service *svc)
{
    return svc->instance;
}

bool
wa_service_stopping(struct wa_service *svc)
{
    return svc->stopping;
}

const void *
wa_service_config(struct wa_service *svc)
{
    return svc->cfg;
}

struct wa_pool *
wa_service_pool(struct wa_service *svc)
{
    if (svc->silenced) {
        return NULL;
    }
    if (svc->pool == NULL &&
        wa_pool_new(svc->loop, (unsigned)svc->common->workers, &svc->pool) != WA_OK) {
        svc->pool = NULL;
    }
    return svc->pool;
}

enum wa_err
wa_service_probe(struct wa_service *svc, const char *name, wa_service_ready_fn fn, void *arg)
{
    struct probe *p;

    if (svc->nprobes == MAX_PROBES) {
        return WA_ELIMIT;
    }
    p = &svc->probes[svc->nprobes++];
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->fn = fn;
    p->arg = arg;
    p->advisory = false;
    return WA_OK;
}

enum wa_err
wa_service_probe_advisory(struct wa_service *svc, const char *name)
{
    for (size_t i = 0; i < svc->nprobes; i++) {
        if (strcmp(svc->probes[i].name, name) == 0) {
            svc->probes[i].advisory = true;
            return WA_OK;
        }
    }
    return WA_ENOTFOUND;
}

/* /readyz: every probe must answer (advisory ones are only reported); the detail names each
 * check. Not ready while stopping. */
static bool
on_ready(void *arg, struct wa_buf *detail)
{
    struct wa_service *svc = arg;
    bool all = !svc->stopping;
    size_t i;

    wa_buf_append_str(detail, "{\"service\":");
    wa_buf_append_json_string(detail, svc->def->name, strlen(svc->def->name));
    wa_buf_append_str(detail, ",\"checks\":{");
    for (i = 0; i < svc->nprobes; i++) {
        bool up = svc->probes[i].fn(svc->probes[i].arg);
        all = all && (up || svc->probes[i].advisory);
        wa_buf_printf(detail, "%s\"%s\":\"%s\"", i ? "," : "", svc->probes[i].name,
                      up ? "up" : "down");
    }
    wa_buf_printf(detail, "},\"status\":\"%s\"}",
                  all ? "ready" : (svc->stopping ? "stopping" : "not_ready"));
    return all;
}

/* ---- stages ---- */

static bool
busy(struct wa_service *svc)
{
    if (wa_httpd_inflight(svc->httpd) > 0) {
        return true;
    }
    for (size_t i = 0; i < svc->nstarted; i++) {
        const struct wa_service_stage *st = &svc->def->stages[i];

        if (st->busy != NULL && st->busy(svc->state)) {
            return true;
        }
    }
    return false;
}

static void
on_busy_poll(struct wa_timer *t, void *arg)
{
    struct wa_service *svc = arg;

    if (!busy(svc)) {
        wa_timer_stop(t);
        wa_log_info(NULL, "drained: no work in flight");
        wa_loop_stop(svc->loop);
    }
}

static void
on_drain_timeout(struct wa_timer *t, void *arg)
{
    struct wa_service *svc = arg;

    (void)t;
    wa_log_warn(NULL, "shutdown timeout reached with work in flight; stopping anyway");
    wa_loop_stop(svc->loop);
}

static void
on_term(int signo, void *arg)
{
    struct wa_service *svc = arg;

    if (svc->silenced) {
        return; /* the shutdown is past the drain: nothing left to cut short */
    }
    if (svc->stopping) {
        wa_log_warn(NULL, "second signal %d: stopping now", signo);
        wa_loop_stop(svc->loop);
        return;
    }
    svc->stopping = true;
    wa_log_info(NULL, "signal %d: draining (at most %lld ms)", signo,
                (long long)svc->common->shutdown_timeout_ms);
    wa_httpd_quiesce(svc->httpd);
    wa_service_deps_pause(svc);
    for (size_t i = svc->nstarted; i-- > 0;) {
        const struct wa_service_stage *st = &svc->def->stages[i];

        if (st->drain != NULL) {
            st->drain(svc, svc->state);
        }
    }
    svc->drain_timer = wa_timer_new(svc->loop, on_drain_timeout, svc);
    svc->busy_timer = wa_timer_new(svc->loop, on_busy_poll, svc);
    if (svc->drain_timer == NULL || svc->busy_timer == NULL) {
        wa_log_error(NULL, "out of memory: stopping without draining");
        wa_loop_stop(svc->loop);
        return;
    }
    wa_timer_start(svc->drain_timer, (uint64_t)svc->common->shutdown_timeout_ms, 0);
    wa_timer_start(svc->busy_timer, 0, BUSY_POLL_MS);
}

static void
on_hup(int signo, void *arg)
{
    struct wa_service *svc = arg;

    (void)signo;
    if (svc->silenced) {
        return;
    }
    if (svc->def->reload != NULL) {
        wa_log_info(NULL, "SIGHUP: reloading");
        svc->def->reload(svc, svc->state);
    } else {
        wa_log_info(NULL, "SIGHUP: nothing to reload");
    }
}

/* The shared clients named in def->uses, made before the service's own start. */
static enum wa_err
start_uses(struct wa_service *svc, struct wa_error *error)
{
    struct wa_kafka_producer *p;
    struct wa_kv *kv;
    struct wa_mongo *m;
    enum wa_err err = WA_OK;

    if (svc->def->clients != NULL) {
        svc->def->clients(svc->cfg, &svc->opts);
        if (svc->opts.nproducer_props > WA_SERVICE_PRODUCER_PROPS) {
            return wa_error_set(error, WA_ECONFIG, "more than %d producer properties",
                                WA_SERVICE_PRODUCER_PROPS);
        }
    }
    if ((svc->def->uses & WA_SERVICE_USES_KAFKA) &&
        (err = wa_service_kafka_producer(svc, &p, error)) != WA_OK) {
        return err;
    }
    if ((svc->def->uses & WA_SERVICE_USES_REDIS) &&
        (err = wa_service_kv(svc, &kv, error)) != WA_OK) {
        return err;
    }
    if ((svc->def->uses & WA_SERVICE_USES_MONGO) &&
        (err = wa_service_mongo(svc, &m, error)) != WA_OK) {
        return err;
    }
    return WA_OK;
}

static int
settle_ms(const struct wa_service *svc)
{
    return svc->common->shutdown_timeout_ms > SETTLE_MIN_MS ? (int)svc->common->shutdown_timeout_ms
                                                            : SETTLE_MIN_MS;
}

static void
on_settled(void *arg)
{
    wa_loop_stop(arg);
}

/* Silence: once the pool has no job queued or running, every completion was posted; the post
 * made now runs after them and stops the loop. */
static void
on_settle_poll(struct wa_timer *t, void *arg)
{
    struct wa_service *svc = arg;

    if (svc->pool == NULL || wa_pool_pending(svc->pool) == 0) {
        wa_timer_stop(t);
        if (wa_loop_post(svc->loop, on_settled, svc->loop) != WA_OK) {
            wa_loop_stop(svc->loop);
        }
    }
}

/* Jobs blocked that long (a server that accepts and never answers) may still complete later:
 * nothing they can reach is freed any more, the process just exits. */
static void
on_settle_timeout(struct wa_timer *t, void *arg)
{
    struct wa_service *svc = arg;

    (void)t;
    svc->abandoned = true;
    wa_log_error(NULL,
                 "%zu worker-pool jobs still running %d ms after the drain: exiting "
                 "without stopping the stages",
                 wa_pool_pending(svc->pool), settle_ms(svc));
    wa_loop_stop(svc->loop);
}

/* The shutdown after the loop stopped (drained, timed out, or start failed). */
static void
shutdown_stages(struct wa_service *svc)
{
    struct wa_timer *settle, *deadline;

    wa_timer_free(svc->busy_timer);
    svc->busy_timer = NULL;
    wa_timer_free(svc->drain_timer);
    svc->drain_timer = NULL;
    wa_service_deps_flush(svc);
    /* Silence: every callback of a shared client runs now, while the stages' state exists. */
    wa_service_deps_silence(svc);
    wa_httpd_free(svc->httpd); /* suspended requests: 503 and their abort callbacks */
    svc->httpd = NULL;
    wa_httpd_free(svc->admin);
    svc->admin = NULL;
    /* The pool takes no new job; the loop turns until the running ones completed, so their
     * completions (and anything the callbacks above posted) run while the state exists. */
    wa_pool_close(svc->pool);
    settle = wa_timer_new(svc->loop, on_settle_poll, svc);
    deadline = wa_timer_new(svc->loop, on_settle_timeout, svc);
    if (settle != NULL && deadline != NULL) {
        wa_timer_start(settle, 0, BUSY_POLL_MS);
        wa_timer_start(deadline, (uint64_t)settle_ms(svc), 0);
        (void)wa_loop_run(svc->loop);
    }
    wa_timer_free(settle);
    wa_timer_free(deadline);
    if (svc->abandoned) {
        return;
    }
    for (size_t i = svc->nstarted; i-- > 0;) {
        const struct wa_service_stage *st = &svc->def->stages[i];

        if (st->stop != NULL) {
            st->stop(svc, svc->state);
        }
    }
    svc->nstarted = 0;
    free(svc->state);
    svc->state = NULL;
}

static enum wa_err
start_stages(struct wa_service *svc, struct wa_error *error)
{
    enum wa_err err;

    if (svc->def->state_size > 0 && (svc->state = calloc(1, svc->def->state_size)) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    if ((err = start_uses(svc, error)) != WA_OK) {
        return err;
    }
    for (size_t i = 0; i < svc->def->nstages; i++) {
        const struct wa_service_stage *st = &svc->def->stages[i];

        svc->nstarted = i + 1; /* a failed start is stopped too */
        if (st->start != NULL && (err = st->start(svc, svc->state, error)) != WA_OK) {
            char msg[sizeof(error->message)];

            snprintf(msg, sizeof(msg), "%s", error->message);
            return wa_error_set(error, err, "%s: %s", st->name, msg);
        }
    }
    return WA_OK;
}

static int
run(struct wa_service *svc)
{
    struct wa_httpd_config hc = {0};
    struct wa_error error = {0};
    int rc = 1;

    if (wa_loop_new(&svc->loop) != WA_OK || wa_metrics_new(&svc->metrics) != WA_OK) {
        wa_log_error(NULL, "cannot create the event loop or metrics registry");
        goto out;
    }
    hc.listen = svc->common->listen;
    hc.max_connections = (unsigned)svc->common->http_max_connections;
    hc.conn_timeout_s = (unsigned)((svc->common->http_timeout_ms + 999) / 1000);
    hc.conn_memory = (size_t)svc->common->http_conn_memory;
    hc.body_budget = (size_t)svc->common->http_body_budget;
    hc.max_per_ip = (unsigned)svc->common->http_max_per_ip;
    hc.metrics = svc->metrics;
    hc.service = svc->def->name;
    if (wa_httpd_new(svc->loop, &hc, &svc->httpd, &error) != WA_OK) {
        wa_log_error(NULL, "http server: %s", error.message);
        goto out;
    }
    if (svc->common->otlp_endpoint[0] != '\0') {
        struct wa_trace_config tc = {.service = svc->def->name,
                                     .endpoint = svc->common->otlp_endpoint,
                                     .sample_percent = (int)svc->common->trace_sample,
                                     .metrics = svc->metrics};

        if (wa_tracer_new(svc->loop, &tc, &svc->tracer, &error) != WA_OK) {
            wa_log_error(NULL, "tracing: %s", error.message);
            goto out;
        }
        wa_log_info(NULL, "spans go to %s (%d%% of traces)", svc->common->otlp_endpoint,
                    (int)svc->common->trace_sample);
    }
    if (svc->common->admin_listen[0] != '\0') {
        hc.listen = svc->common->admin_listen;
        if (wa_httpd_new(svc->loop, &hc, &svc->admin, &error) != WA_OK) {
            wa_log_error(NULL, "admin http server: %s", error.message);
            goto out;
        }
    }
    if (wa_httpd_serve_probes(wa_service_admin_httpd(svc), on_ready, svc, svc->metrics) != WA_OK) {
        wa_log_error(NULL, "http server: cannot add the probes");
        goto out;
    }
    wa_loop_signal(svc->loop, SIGTERM, on_term, svc);
    wa_loop_signal(svc->loop, SIGINT, on_term, svc);
    wa_loop_signal(svc->loop, SIGHUP, on_hup, svc);
    if (start_stages(svc, &error) != WA_OK) {
        wa_log_error(NULL, "start failed: %s", error.message);
        goto out;
    }
    if (wa_httpd_start(svc->httpd, &error) != WA_OK) {
        wa_log_error(NULL, "cannot listen on %s: %s", svc->common->listen, error.message);
        goto out;
    }
    if (svc->admin != NULL && wa_httpd_start(svc->admin, &error) != WA_OK) {
        wa_log_error(NULL, "cannot listen on %s: %s", svc->common->admin_listen, error.message);
        goto out;
    }
    wa_log_info(NULL, "%s %s ready on %s (pid %d)", svc->def->name, WA_VERSION, svc->common->listen,
                (int)getpid());
    if (wa_loop_run(svc->loop) != WA_OK) {
        wa_log_error(NULL, "event loop failed");
        goto out;
    }
    rc = 0;
out:
    if (svc->loop != NULL) {
        shutdown_stages(svc);
    }
    if (svc->abandoned) { /* see on_settle_timeout: the process exits with everything */
        wa_log_info(NULL, "%s stopped (exit %d)", svc->def->name, rc);
        return rc;
    }
    wa_service_deps_free(svc);
    wa_httpd_free(svc->httpd);
    wa_tracer_free(svc->tracer);
    wa_httpd_free(svc->admin);
    wa_pool_free(svc->pool);
    wa_metrics_free(svc->metrics);
    wa_loop_free(svc->loop);
    wa_service_deps_global_cleanup(svc);
    wa_log_info(NULL, "%s stopped (exit %d)", svc->def->name, rc);
    return rc;
}

/* Settings of the shared clients that cannot work, refused before anything starts (exit 2). */
static enum wa_err
check_clients(struct wa_service *svc, struct wa_error *error)
{
    struct wa_kafka_security ks;

    wa_kafka_security_from_cfg(&svc->common->kafka_security, &ks);
    if (wa_kafka_security_check(&ks, error) != WA_OK) {
        return WA_ECONFIG;
    }
    if (strncmp(svc->common->redis_url, "rediss://", 9) == 0) {
        /* hiredis 0.14 has no TLS: a tunnel beside the daemon carries it */
        return wa_error_set(error, WA_ECONFIG,
                            "WA_REDIS_URL: rediss:// (TLS) is not supported by this build; run a "
                            "TLS tunnel beside the daemon and give its redis:// address "
                            "(docs/operations.md, \"Redis over TLS\")");
    }
    return WA_OK;
}

int
wa_service_main(int argc, char **argv, const struct wa_service_def *def)
{
    struct wa_service svc = {0};
    struct wa_error error = {0};
    enum wa_log_level level;
    bool check = false, print = false;
    char host[64];
    int i, rc = 2;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(def, stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", def->name, WA_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check = true;
        } else if (strcmp(argv[i], "--print-config") == 0) {
            print = true;
        } else {
            fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", def->name, argv[i]);
            return 2;
        }
    }
    svc.def = def;
    svc.cfg = calloc(1, def->cfg_size);
    if (svc.cfg == NULL) {
        return 1;
    }
    svc.common =
        (const struct wa_common_config *)(const void *)((char *)svc.cfg + def->common_offset);
    if (wa_cfg_load(def->spec, def->nspec, svc.cfg, wa_cfg_getenv, NULL, &error) != WA_OK) {
        fprintf(stderr, "%s: configuration error: %s\n", def->name, error.message);
        goto out;
    }
    if (wa_log_level_parse(svc.common->log_level, &level) != WA_OK) {
        fprintf(stderr, "%s: configuration error: WA_LOG_LEVEL: unknown level \"%s\"\n", def->name,
                svc.common->log_level);
        goto out;
    }
    if (wa_parse_hostport(svc.common->listen, host, sizeof(host), &i) != WA_OK) {
        fprintf(stderr, "%s: configuration error: WA_LISTEN: expected host:port, got \"%s\"\n",
                def->name, svc.common->listen);
        goto out;
    }
    if (svc.common->admin_listen[0] != '\0' &&
        wa_parse_hostport(svc.common->admin_listen, host, sizeof(host), &i) != WA_OK) {
        fprintf(stderr,
                "%s: configuration error: WA_ADMIN_LISTEN: expected host:port or empty, got "
                "\"%s\"\n",
                def->name, svc.common->admin_listen);
        goto out;
    }
    if (check_clients(&svc, &error) != WA_OK) {
        fprintf(stderr, "%s: configuration error: %s\n", def->name, error.message);
        goto out;
    }
    if (print) {
        wa_cfg_print(def->spec, def->nspec, svc.cfg, stdout);
    }
    if (check || print) {
        if (check) {
            printf("%s: configuration is valid\n", def->name);
        }
        rc = 0;
        goto out;
    }
    if (gethostname(host, sizeof(host)) != 0) {
        snprintf(host, sizeof(host), "localhost");
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(svc.instance, sizeof(svc.instance), "%s/%s", def->name, host);
    wa_log_init(def->name, level);
    wa_log_info(NULL, "%s %s starting", def->name, WA_VERSION);
    rc = run(&svc);
    if (svc.abandoned) {
        return rc; /* pool jobs may still read the configuration */
    }
out:
    wa_cfg_cleanup(def->spec, def->nspec, svc.cfg);
    free(svc.cfg);
    return rc;
}
