/*
 * wa-notify: turns each outbound.request into exactly one accepted Cloud API send, or a clear
 * failure, within Meta's limits (docs/architecture.md; design: README.md and
 * docs/adr/002-notify-durable-retries.md).
 *
 * Composition root only (docs/style.md). Flow of one request, one file per stage:
 *   consume (+ validate) -> policy -> pace -> idempotency -> send (+ classify) -> retry -> result
 * Threads: the loop thread only (Kafka callbacks, Redis, libcurl multi, timers).
 *
 * Stages (the table at the end), started in order and stopped in reverse; at SIGTERM the sends
 * in flight finish while the rest stays uncommitted, and the scaffolding silences the shared
 * clients before any stop (docs/internals/service.md):
 *   1. clients     the scaffolding's Kafka producer and Redis (100,000 commands in flight,
 *                  through the clients hook), the Cloud API HTTP client (send.c)
 *   2. health      metrics series and readiness probes
 *   3. pace        numbers (token buckets) and recipients (ordered queues)
 *   4. park        the scheduler that republishes parked requests when due (park.c)
 *   5. consume     the outbound.request consumer (the scaffolding's); requests start flowing
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify.h"
#include "wa/id.h"
#include "wa/log.h"

/* Numbers named in "id=value" lists exist from the start, so their readiness shows at once. */
static void
known_numbers(struct nt *nt, const char *spec)
{
    const char *p = spec;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ','), *eq;
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char id[64];

        eq = memchr(p, '=', len);
        if (eq != NULL && (size_t)(eq - p) < sizeof(id) && eq > p) {
            memcpy(id, p, (size_t)(eq - p));
            id[eq - p] = '\0';
            (void)nt_pace_number(nt, id);
        }
        p = end != NULL ? end + 1 : NULL;
    }
}

static void
clients(const void *cfg, struct wa_service_clients *c)
{
    (void)cfg;
    c->kv_max_pending = 100000; /* claims, leases and records of every request in flight */
}

static enum wa_err
clients_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    const struct nt_config *cfg = wa_service_config(svc);
    struct nt *nt = state;
    char boot[WA_ULID_LEN];
    enum wa_err err;
    const char *pfx = cfg->common.topic_prefix;

    nt->cfg = cfg;
    nt->svc = svc;
    nt->loop = wa_service_loop(svc);
    nt->metrics = wa_service_metrics(svc);
    nt->breaker.threshold = (unsigned)cfg->breaker_threshold;
    nt->breaker.cooldown_ms = (uint64_t)cfg->breaker_cooldown_ms;
    wa_ulid_new(boot);
    snprintf(nt->instance, sizeof(nt->instance), "%s/%s", wa_service_instance(svc), boot);
    snprintf(nt->key_prefix, sizeof(nt->key_prefix), "%s", pfx);
    snprintf(nt->topic_request, sizeof(nt->topic_request), "%s%s", pfx, WA_TOPIC_OUTBOUND_REQUEST);
    snprintf(nt->topic_result, sizeof(nt->topic_result), "%s%s", pfx, WA_TOPIC_OUTBOUND_RESULT);
    snprintf(nt->topic_dlq, sizeof(nt->topic_dlq), "%s%s", pfx, WA_TOPIC_OUTBOUND_DLQ);
    if (cfg->claim_ms <= cfg->http_timeout_ms) {
        return wa_error_set(error, WA_ECONFIG,
                            "WA_NOTIFY_CLAIM must be longer than WA_NOTIFY_HTTP_TIMEOUT");
    }
    /* A drain cut short cancels sends whose outcome is unknown; the next owner of the request
     * would send it again once the claim expires. */
    if (cfg->common.shutdown_timeout_ms < cfg->http_timeout_ms + 1000) {
        return wa_error_set(error, WA_ECONFIG,
                            "WA_SHUTDOWN_TIMEOUT (%lld ms) must exceed WA_NOTIFY_HTTP_TIMEOUT "
                            "(%lld ms) by at least 1s, so a drain finishes every Cloud API call",
                            (long long)cfg->common.shutdown_timeout_ms,
                            (long long)cfg->http_timeout_ms);
    }
    if (wa_optout_new(cfg->optout_key, &nt->optout) != WA_OK) {
        return wa_error_set(error, WA_ENOMEM, "WA_OPTOUT_KEY: the opt-out key's HMAC");
    }
    if ((err = wa_service_kafka_producer(svc, &nt->producer, error)) != WA_OK ||
        (err = wa_service_kv(svc, &nt->kv, error)) != WA_OK) {
        return err;
    }
    return nt_send_init(nt, error);
}

static void
clients_stop(struct wa_service *svc, void *state)
{
    struct nt *nt = state;

    (void)svc;
    wa_httpc_free(nt->http); /* the requests (and their calls) are gone: consume stopped */
    nt->http = NULL;
    nt_category_cleanup(nt); /* their lookups' calls went with the client */
    wa_timer_free(nt->breaker_timer);
    nt->breaker_timer = NULL;
    wa_optout_free(nt->optout);
    nt->optout = NULL;
}

static enum wa_err
health_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return nt_health_start(state, error);
}

static enum wa_err
pace_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct nt *nt = state;
    enum wa_err err;

    (void)svc;
    if ((err = nt_pace_init(nt, error)) != WA_OK) {
        return err;
    }
    known_numbers(nt, nt->cfg->access_token);
    known_numbers(nt, nt->cfg->rates);
    return WA_OK;
}

static void
pace_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    nt_pace_cleanup(state);
}

static enum wa_err
park_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return nt_park_start(state, error);
}

/* Republished requests finish (ack, removal); a claimed entry left behind is due again after
 * WA_NOTIFY_PARK_LEASE. */
static bool
park_busy(void *state)
{
    const struct nt *nt = state;

    return nt->park_scanning || nt->park_releasing > 0;
}

static void
park_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    nt_park_stop(state);
}

static enum wa_err
consume_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return nt_consume_start(state, error);
}

/* SIGTERM: no new send starts (the scaffolding paused the consumer); sends in flight finish
 * with their results; the rest (held, backing off, queued) stays uncommitted and is redelivered
 * to the next instance. */
static void
consume_drain(struct wa_service *svc, void *state)
{
    struct nt *nt = state;

    (void)svc;
    nt->draining = true;
}

static bool
consume_busy(void *state)
{
    return nt_busy(state);
}

static void
consume_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    nt_consume_stop(state);
}

static void
reload(struct wa_service *svc, void *state)
{
    (void)svc;
    nt_health_reload(state);
}

static const struct wa_service_stage stages[] = {
    {"clients", clients_start, NULL, NULL, clients_stop},
    {"health", health_start, NULL, NULL, NULL},
    {"pace", pace_start, NULL, NULL, pace_stop},
    {"park", park_start, NULL, park_busy, park_stop},
    {"consume", consume_start, consume_drain, consume_busy, consume_stop},
};

int
main(int argc, char **argv)
{
    struct wa_service_def def = {
        .name = "wa-notify",
        .summary = "sends outbound messages to the Cloud API within Meta's limits.",
        .spec = nt_config_spec,
        .nspec = nt_config_nspec,
        .cfg_size = sizeof(struct nt_config),
        .common_offset = offsetof(struct nt_config, common),
        .clients = clients,
        .state_size = sizeof(struct nt),
        .stages = stages,
        .nstages = WA_ARRAY_LEN(stages),
        .reload = reload,
    };

    return wa_service_main(argc, argv, &def);
}
