/*
 * wa-ingest: receives Meta's webhooks, verifies them, and makes them durable in Kafka before
 * answering 200 (docs/architecture.md, "Guarantees").
 *
 * Composition root only (docs/style.md). Flow of one POST /webhook, one file per stage:
 *   ingress -> verify -> split -> archive -> dedupe -> publish (-> spool when Kafka is late)
 * Files in reading order and configuration: README.md. Threads: the loop thread (HTTP, Kafka
 * delivery reports, Redis) and the scaffolding's worker pool (spool writes, fsync, replay reads).
 *
 * Stages (the table at the end), started in order and stopped in reverse; at SIGTERM the
 * scaffolding waits for every webhook to be answered, flushes the producer and silences the
 * clients before any stop (docs/internals/service.md):
 *   1. verify    struct ig, topic names, the HMAC verifier keyed with the app secrets
 *   2. clients   the scaffolding's Kafka producer (idempotent, acks=all) and Redis
 *   3. health    metrics series and readiness probes
 *   4. dedupe    claim and confirmation batches
 *   5. spool     directory scan, replayer timer (files left by an earlier run replay)
 *   6. ingress   routes GET/POST /webhook (the listener opens after the stages started)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/kafka.h"

#include "ingest.h"

static enum wa_err
verify_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    static const char *const topics[4] = {WA_TOPIC_INBOUND_MESSAGE, WA_TOPIC_INBOUND_STATUS,
                                          WA_TOPIC_ACCOUNT_EVENT, WA_TOPIC_WEBHOOK_RAW};
    struct ig *ig = state;
    const struct ig_config *cfg = wa_service_config(svc);
    char boot[WA_ULID_LEN];

    ig->cfg = cfg;
    ig->svc = svc;
    ig->loop = wa_service_loop(svc);
    ig->secrets[0] = cfg->app_secret;
    ig->secrets[1] = cfg->app_secret_previous;
    ig->rnd_off = sizeof(ig->rnd); /* empty: filled on first use */
    /* a typical webhook's document takes 5-10 KiB; a 3 MiB batch grows the arena for its scope */
    wa_json_arena_init(&ig->json_arena, 64 * 1024);
    for (size_t i = 0; i < 4; i++) {
        snprintf(ig->topic[i], sizeof(ig->topic[i]), "%s%s", cfg->common.topic_prefix, topics[i]);
    }
    snprintf(ig->dedup_prefix, sizeof(ig->dedup_prefix),
             "%singest:dedup:", cfg->common.topic_prefix);
    wa_ulid_new(boot);
    snprintf(ig->owner, sizeof(ig->owner), "p:%s", boot);
    if (cfg->app_secret == NULL || cfg->app_secret[0] == '\0') {
        return wa_error_set(error, WA_ECONFIG, "WA_APP_SECRET is empty");
    }
    return ig_verify_new(ig, error);
}

static void
verify_stop(struct wa_service *svc, void *state)
{
    struct ig *ig = state;

    (void)svc;
    ig_verify_free(ig);
    wa_json_arena_free(&ig->json_arena); /* no scope is open: the loop is not in a request */
}

static enum wa_err
clients_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct ig *ig = state;
    enum wa_err err;

    if ((err = wa_service_kafka_producer(svc, &ig->producer, error)) != WA_OK) {
        return err;
    }
    return wa_service_kv(svc, &ig->kv, error);
}

static enum wa_err
health_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return ig_health_start(state, error);
}

static enum wa_err
dedupe_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return ig_dedupe_new(state, error);
}

static void
dedupe_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    ig_dedupe_stop(state);
}

static enum wa_err
spool_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct ig *ig = state;

    (void)svc;
    return ig_spool_new(ig, &ig->spool, error);
}

static void
spool_stop(struct wa_service *svc, void *state)
{
    struct ig *ig = state;

    (void)svc;
    ig_spool_free(ig->spool);
    ig->spool = NULL;
}

static enum wa_err
ingress_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return ig_ingress_start(state, error);
}

static bool
ingress_busy(void *state)
{
    return ig_ingress_busy(state);
}

static const struct wa_service_stage stages[] = {
    {"verify", verify_start, NULL, NULL, verify_stop},
    {"clients", clients_start, NULL, NULL, NULL},
    {"health", health_start, NULL, NULL, NULL},
    {"dedupe", dedupe_start, NULL, NULL, dedupe_stop},
    {"spool", spool_start, NULL, NULL, spool_stop},
    {"ingress", ingress_start, NULL, ingress_busy, NULL},
};

static const struct wa_service_def def = {
    .name = "wa-ingest",
    .summary = "receives Meta's webhooks, verifies them, publishes them durably to Kafka.",
    .spec = ig_config_spec,
    .cfg_size = sizeof(struct ig_config),
    .common_offset = offsetof(struct ig_config, common),
    .state_size = sizeof(struct ig),
    .stages = stages,
    .nstages = WA_ARRAY_LEN(stages),
};

int
main(int argc, char **argv)
{
    struct wa_service_def d = def;

    d.nspec = ig_config_nspec; /* not a constant expression in def's initialiser */
    return wa_service_main(argc, argv, &d);
}
