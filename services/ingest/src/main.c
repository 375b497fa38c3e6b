/*
 * wa-ingest: receives Meta's webhooks, verifies them, and makes them durable in Kafka before
 * answering 200 (docs/architecture.md, "Guarantees").
 *
 * Composition root only (docs/style.md). Flow of one POST /webhook, one file per stage:
 *   ingress -> verify -> split -> archive -> dedupe -> publish (-> spool when Kafka is late)
 * Files in reading order and configuration: README.md. Threads: the loop thread (HTTP, Kafka
 * delivery reports, Redis) and the scaffolding's worker pool (spool writes, fsync, replay reads).
 *
 * Stages started in order (start) and stopped in reverse (stop):
 *   1. clients           Kafka producer (idempotent, acks=all) owned here, because a webhook
 *                        waits for its acknowledgement and its shutdown order matters
 *                        (flush before the spool is freed); Redis from the scaffolding
 *   2. health            metrics series and readiness probes
 *   3. spool             directory scan, replayer timer (files left by an earlier run replay)
 *   4. ingress           routes GET/POST /webhook (the listener opens after start returns)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/kafka.h"

#include "ingest.h"

static bool
producer_ready(void *arg)
{
    return wa_kafka_producer_ready(arg);
}

static enum wa_err
producer_new(struct ig *ig, struct wa_error *error)
{
    struct wa_kafka_config kc; /* WA_KAFKA_LINGER (500 µs) and no Nagle, from the scaffolding */
    struct wa_kafka_property props[8];
    char client_id[64];
    enum wa_err err;

    wa_service_kafka_config(ig->svc, &kc);
    /* The scaffolding's properties, then the compression (applied last, so it wins over the
     * library's lz4 default). Records are small JSON on a fast network: lz4's per-batch set-up
     * (a zeroed 64 KiB state) cost more CPU here and in the broker than it saved. */
    if (kc.nprops + 1 > WA_ARRAY_LEN(props)) {
        return wa_error_set(error, WA_EINTERNAL, "too many kafka properties");
    }
    memcpy(props, kc.props, kc.nprops * sizeof(props[0]));
    props[kc.nprops] = (struct wa_kafka_property){"compression.type", ig->cfg->kafka_compression};
    kc.props = props;
    kc.nprops++;
    snprintf(client_id, sizeof(client_id), "%s", wa_service_name(ig->svc));
    kc.client_id = client_id;
    if ((err = wa_kafka_producer_new(ig->loop, &kc, &ig->producer, error)) != WA_OK) {
        return err;
    }
    return wa_service_probe(ig->svc, "kafka", producer_ready, ig->producer);
}

static enum wa_err
start(struct wa_service *svc, const void *config, void **state, struct wa_error *error)
{
    static const char *const topics[4] = {WA_TOPIC_INBOUND_MESSAGE, WA_TOPIC_INBOUND_STATUS,
                                          WA_TOPIC_ACCOUNT_EVENT, WA_TOPIC_WEBHOOK_RAW};
    const struct ig_config *cfg = config;
    struct ig *ig = calloc(1, sizeof(*ig));
    char boot[WA_ULID_LEN];
    enum wa_err err;

    if (ig == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    *state = ig;
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
    if ((err = ig_verify_new(ig, error)) != WA_OK) {
        return err;
    }
    if ((err = producer_new(ig, error)) != WA_OK ||
        (err = wa_service_kv(svc, &ig->kv, error)) != WA_OK ||
        (err = ig_health_start(ig, error)) != WA_OK || (err = ig_dedupe_new(ig, error)) != WA_OK ||
        (err = ig_spool_new(ig, &ig->spool, error)) != WA_OK ||
        (err = ig_ingress_start(ig, error)) != WA_OK) {
        return err;
    }
    return WA_OK;
}

static void
drain(struct wa_service *svc, void *state)
{
    struct ig *ig = state;

    ig->draining = true;
    if (ig->unreplied == 0) {
        ig->drained = true;
        wa_service_drained(svc);
    }
}

static void
stop(struct wa_service *svc, void *state)
{
    struct ig *ig = state;

    (void)svc;
    if (ig == NULL) {
        return;
    }
    ig->stopped = true;
    ig->inflight++; /* this hook's own hold: releases below must not free ig under it */
    ig_dedupe_stop(ig);
    ig_verify_free(ig);
    wa_json_arena_free(&ig->json_arena); /* no scope is open: the loop is not in a request */
    ig_spool_free(ig->spool);            /* outlives this while its replay deliveries are pending */
    ig->spool = NULL;
    if (ig->producer != NULL) {
        /* Bounded: drain already waited for every request's reply. Reports still due run
         * here or, purged, inside free (WA_ECLOSED); ig->stopped keeps them to releasing. */
        wa_kafka_producer_flush(ig->producer, 2000);
        wa_kafka_producer_free(ig->producer);
        ig->producer = NULL;
    }
    /* Requests still waiting for Redis hold ig: the last one frees it (ig_request_release)
     * when the scaffolding frees the Redis client after this hook. */
    if (--ig->inflight == 0 && ig->holds == 0) {
        free(ig);
    }
}

static const struct wa_service_def def = {
    .name = "wa-ingest",
    .summary = "receives Meta's webhooks, verifies them, publishes them durably to Kafka.",
    .spec = ig_config_spec,
    .cfg_size = sizeof(struct ig_config),
    .common_offset = offsetof(struct ig_config, common),
    .start = start,
    .drain = drain,
    .stop = stop,
};

int
main(int argc, char **argv)
{
    struct wa_service_def d = def;

    d.nspec = ig_config_nspec; /* not a constant expression in def's initialiser */
    return wa_service_main(argc, argv, &d);
}
