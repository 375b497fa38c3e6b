/*
 * wa-gateway: the public REST API: API keys, rate limits, idempotency, validation, and the
 * publication of messages to send as outbound.request.
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
 * Threads: the loop thread; MongoDB calls run on the scaffolding's worker pool.
 * Stages started in order: shared clients (Kafka producer, Redis, MongoDB), the HTTP client
 * (upstreams), health (metrics), api (routes on the scaffolding's listener). SIGTERM: drained
 * once no request is in flight; stop answers upstream calls still running 503.
 *
 * struct gw is static: callbacks of the shared clients may still run while the scaffolding
 * frees those clients after the stop hook (with WA_ECLOSED), and they reach it.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "wa/contract.h"
#include "wa/httpc.h"
#include "wa/kafka.h"
#include "wa/log.h"

static struct gw gateway;

static enum wa_err
start(struct wa_service *svc, const void *config, void **state, struct wa_error *error)
{
    struct gw *gw = &gateway;
    struct wa_kafka_config kc;
    struct wa_httpc_config hc = {.max_per_host = 64, .timeout_ms = 10000};
    enum wa_err err;

    memset(gw, 0, sizeof(*gw));
    *state = gw;
    gw->svc = svc;
    gw->cfg = config;
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
    if (gw->cfg->pepper != NULL && gw->cfg->pepper[0] != '\0') {
        if (wa_hmac_new(gw->cfg->pepper, strlen(gw->cfg->pepper), &gw->pepper) != WA_OK) {
            return wa_error_set(error, WA_ENOMEM, "pepper");
        }
    } else {
        wa_log_warn(NULL, "WA_GATEWAY_KEY_PEPPER is not set: every API key is refused (503)");
    }
    if ((err = wa_service_kafka_producer(svc, &gw->producer, error)) != WA_OK ||
        (err = wa_service_kv(svc, &gw->kv, error)) != WA_OK ||
        (err = wa_service_mongo(svc, &gw->mongo, error)) != WA_OK ||
        (err = wa_httpc_new(gw->loop, &hc, &gw->httpc, error)) != WA_OK ||
        (err = gw_token_init(gw, error)) != WA_OK || (err = gw_health_start(gw, error)) != WA_OK ||
        (err = gw_api_start(gw, error)) != WA_OK) {
        return err;
    }
    return WA_OK;
}

static void
drain(struct wa_service *svc, void *state)
{
    (void)svc;
    gw_api_drain(state);
}

static void
stop(struct wa_service *svc, void *state)
{
    struct gw *gw = state;

    (void)svc;
    if (gw == NULL) {
        return;
    }
    if (gw->ops.next != NULL) {
        gw_proxy_stop(gw);
        gw_health_stop(gw);
    }
    gw_token_stop(gw);
    wa_httpc_free(gw->httpc);
    gw->httpc = NULL;
    wa_timer_free(gw->drain_timer);
    gw->drain_timer = NULL;
    wa_hmac_free(gw->pepper);
    gw->pepper = NULL;
}

int
main(int argc, char **argv)
{
    struct wa_service_def def = {
        .name = "wa-gateway",
        .summary = "the public REST API: API keys, rate limits, idempotency, validation, "
                   "fan-out.",
        .spec = gw_config_spec,
        .nspec = gw_config_nspec,
        .cfg_size = sizeof(struct gw_config),
        .common_offset = offsetof(struct gw_config, common),
        .start = start,
        .drain = drain,
        .stop = stop,
    };

    if (argc >= 2 && strcmp(argv[1], "keys") == 0) {
        return gw_keys_main(argc, argv);
    }
    return wa_service_main(argc, argv, &def);
}
