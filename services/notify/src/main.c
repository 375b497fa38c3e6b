/*
 * wa-notify: turns each outbound.request into exactly one accepted Cloud API send, or a clear
 * failure, within Meta's limits (docs/architecture.md; design: README.md and
 * docs/adr/002-notify-durable-retries.md).
 *
 * Composition root only (docs/style.md). Flow of one request, one file per stage:
 *   consume (+ validate) -> policy -> pace -> idempotency -> send (+ classify) -> retry -> result
 * Threads: the loop thread only (Kafka callbacks, Redis, libcurl multi, timers).
 *
 * Stages started in order (start) and stopped in reverse (stop):
 *   1. clients     Kafka producer and Redis client owned here (so their callbacks can be
 *                  silenced before requests are freed), HTTP client (send.c)
 *   2. health      metrics series and readiness probes
 *   3. pace        numbers (token buckets) and recipients (ordered queues)
 *   4. consume     the outbound.request consumer group; requests start flowing
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

static enum wa_err
start(struct wa_service *svc, const void *config, void **state, struct wa_error *error)
{
    const struct nt_config *cfg = config;
    struct nt *nt = calloc(1, sizeof(*nt));
    struct wa_kafka_config kcfg;
    struct wa_kv_config kvc;
    char boot[WA_ULID_LEN];
    enum wa_err err;
    const char *pfx = cfg->common.topic_prefix;

    if (nt == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    *state = nt;
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
    memset(&kcfg, 0, sizeof(kcfg));
    wa_service_kafka_config(svc, &kcfg);
    memset(&kvc, 0, sizeof(kvc));
    kvc.url = cfg->common.redis_url;
    kvc.max_pending = 100000;
    if ((err = wa_kafka_producer_new(nt->loop, &kcfg, &nt->producer, error)) != WA_OK ||
        (err = wa_kv_new(nt->loop, &kvc, &nt->kv, error)) != WA_OK ||
        (err = nt_send_init(nt, error)) != WA_OK || (err = nt_health_start(nt, error)) != WA_OK ||
        (err = nt_pace_init(nt, error)) != WA_OK) {
        return err;
    }
    known_numbers(nt, cfg->access_token);
    known_numbers(nt, cfg->rates);
    return nt_consume_start(nt, error);
}

/* SIGTERM: stop taking requests; finish sends in flight and their results; the rest (held,
 * backing off, queued) stays uncommitted and is redelivered to the next instance. */
static void
drain(struct wa_service *svc, void *state)
{
    struct nt *nt = state;

    (void)svc;
    nt->draining = true;
    if (nt->consumer != NULL) {
        wa_kafka_consumer_pause(nt->consumer);
    }
    nt_drain_check(nt);
}

static void
reload(struct wa_service *svc, void *state)
{
    (void)svc;
    nt_health_reload(state);
}

static void
stop(struct wa_service *svc, void *state)
{
    struct nt *nt = state;
    struct nt_req *r, *next;

    if (nt == NULL) {
        return;
    }
    /* Results already produced are delivered (their messages handed back) before the
     * consumer's final commit; then every callback is silenced before requests are freed. */
    if (nt->producer != NULL) {
        (void)wa_kafka_producer_flush(nt->producer,
                                      (int)wa_service_common(svc)->shutdown_timeout_ms);
    }
    nt->stopped = true;
    wa_kafka_producer_free(nt->producer);
    nt->producer = NULL;
    wa_kv_free(nt->kv);
    nt->kv = NULL;
    nt_consume_stop(nt);
    for (r = nt->all; r != NULL; r = r->next_all) {
        r->call = NULL; /* cancelled by wa_httpc_free */
    }
    wa_httpc_free(nt->http);
    nt_category_cleanup(nt);
    for (r = nt->all; r != NULL; r = next) {
        next = r->next_all;
        nt_req_free(r);
    }
    wa_timer_free(nt->breaker_timer);
    nt_pace_cleanup(nt);
    free(nt);
}

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
        .start = start,
        .drain = drain,
        .stop = stop,
        .reload = reload,
    };

    return wa_service_main(argc, argv, &def);
}
