/*
 * wa-gateway: the public REST API: API keys and JWTs, rate limits, idempotency, validation,
 * the publication of messages to send as outbound.request, and the fan-out to wa-users,
 * wa-analytics and the Cloud API.
 *
 * Composition root only (docs/style.md). Flow of one request, one file per stage (README.md
 * has the files in reading order, configuration, keys and collections):
 *   api.c      route, credentials-in-URL / content type / JSON depth checks (400, 404, 405, 415)
 *   -> auth.c  Bearer API key -> principal and scopes (Redis cache, MongoDB api_keys) (401, 403)
 *              or token.c: a JWT of the configured issuer against its JWKS
 *   -> limit.c GCRA in Redis, one script call; local limiter without Redis (429, RateLimit-*)
 *   -> the route: publish.c (POST /v1/messages: check, Idempotency-Key, Kafka acks, 202),
 *                 proxy.c (wa-users, wa-analytics, the Cloud API), health.c (GET /v1/health),
 *                 links.c (click-to-chat, its QR code, openapi.json), admin.c (/v1/admin/keys)
 * Public routes (health, links, openapi.json) skip auth and are limited per client address.
 * `wa-gateway keys create|revoke` (keys.c) administers keys without the API.
 *
 * Threads: the loop thread; MongoDB calls and JWKS file reads on the scaffolding's worker pool.
 * Stages (libs/service), started in order and stopped in reverse; the state is struct gw:
 *   1. keys     the pepper's HMAC, topic and key prefixes
 *   2. clients  Kafka producer, Redis, MongoDB (the scaffolding's), the HTTP client of the
 *               upstreams (ours: its calls still running at stop are cancelled and answered)
 *   3. token    the JWT issuer's key set, when one is configured
 *   4. health   metrics
 *   5. api      the routes on the scaffolding's listener; busy while a request is in flight,
 *               so SIGTERM lets every accepted request finish
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "wa/contract.h"
#include "wa/httpc.h"
#include "wa/kafka.h"
#include "wa/log.h"

static enum wa_err
keys_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct gw *gw = state;
    struct wa_kafka_config kc;

    gw->svc = svc;
    gw->cfg = wa_service_config(svc);
    gw->loop = wa_service_loop(svc);
    gw->warn_limit.interval_ms = 10000;
    wa_list_init(&gw->ops);
    wa_list_init(&gw->health_ops);
    snprintf(gw->prefix, sizeof(gw->prefix), "%s", gw->cfg->common.topic_prefix);
    wa_service_kafka_config(svc, &kc);
    if (wa_kafka_topic(&kc, WA_TOPIC_OUTBOUND_REQUEST, gw->topic_outbound,
                       sizeof(gw->topic_outbound)) != WA_OK) {
        return wa_error_set(error, WA_ECONFIG, "WA_TOPIC_PREFIX too long");
    }
    if (gw->cfg->pepper == NULL || gw->cfg->pepper[0] == '\0') {
        wa_log_warn(NULL, "WA_GATEWAY_KEY_PEPPER is empty: every API key is refused (503)");
        return WA_OK;
    }
    return wa_hmac_new(gw->cfg->pepper, strlen(gw->cfg->pepper), &gw->pepper);
}

static void
keys_stop(struct wa_service *svc, void *state)
{
    struct gw *gw = state;

    (void)svc;
    wa_hmac_free(gw->pepper);
    gw->pepper = NULL;
}

static enum wa_err
clients_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct gw *gw = state;
    struct wa_httpc_config hc = {.max_per_host = 64, .timeout_ms = 10000};
    enum wa_err err;

    if ((err = wa_service_kafka_producer(svc, &gw->producer, error)) != WA_OK ||
        (err = wa_service_kv(svc, &gw->kv, error)) != WA_OK ||
        (err = wa_service_mongo(svc, &gw->mongo, error)) != WA_OK) {
        return err;
    }
    return wa_httpc_new(gw->loop, &hc, &gw->httpc, error);
}

static void
clients_stop(struct wa_service *svc, void *state)
{
    struct gw *gw = state;

    (void)svc;
    if (gw->ops.next != NULL) {
        gw_proxy_stop(gw);
        gw_health_stop(gw);
    }
    wa_httpc_free(gw->httpc);
    gw->httpc = NULL;
}

static enum wa_err
token_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return gw_token_init(state, error);
}

static void
token_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    gw_token_stop(state);
}

static enum wa_err
health_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return gw_health_start(state, error);
}

static enum wa_err
api_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return gw_api_start(state, error);
}

static bool
api_busy(void *state)
{
    const struct gw *gw = state;

    return wa_httpd_inflight(wa_service_httpd(gw->svc)) > 0;
}

static const struct wa_service_stage stages[] = {
    {"keys", keys_start, NULL, NULL, keys_stop},
    {"clients", clients_start, NULL, NULL, clients_stop},
    {"token", token_start, NULL, NULL, token_stop},
    {"health", health_start, NULL, NULL, NULL},
    {"api", api_start, NULL, api_busy, NULL},
};

static const struct wa_service_def def = {
    .name = "wa-gateway",
    .summary = "the public REST API: API keys and JWTs, rate limits, idempotency, validation, "
               "fan-out.",
    .spec = gw_config_spec,
    .cfg_size = sizeof(struct gw_config),
    .common_offset = offsetof(struct gw_config, common),
    .state_size = sizeof(struct gw),
    .stages = stages,
    .nstages = sizeof(stages) / sizeof(stages[0]),
};

int
main(int argc, char **argv)
{
    struct wa_service_def d = def;

    if (argc >= 2 && strcmp(argv[1], "keys") == 0) {
        return gw_keys_main(argc, argv);
    }
    d.nspec = gw_config_nspec;
    return wa_service_main(argc, argv, &d);
}
