/*
 * deps.c: the shared clients a daemon uses (Kafka producer, Redis, MongoDB), built from the
 * common configuration, each with its /readyz probe. Owned by the scaffolding: freed by
 * wa_service_deps_free() after the service's stop hook, the producer flushed first.
 */
#include <stdio.h>

#include "service_internal.h"
#include "wa/kafka.h"
#include "wa/kv.h"
#include "wa/log.h"
#include "wa/mongo.h"

static bool
producer_ready(void *arg)
{
    return wa_kafka_producer_ready(arg);
}

static bool
kv_ready(void *arg)
{
    return wa_kv_ready(arg);
}

static bool
mongo_ready(void *arg)
{
    return wa_mongo_ready(arg);
}

void
wa_service_kafka_config(struct wa_service *svc, struct wa_kafka_config *out)
{
    /* Requests wait on acknowledgements (webhooks, replies): send each batch at once. */
    static const struct wa_kafka_property props[] = {{"socket.nagle.disable", "true"}};

    *out = (struct wa_kafka_config){0};
    out->props = props;
    out->nprops = WA_ARRAY_LEN(props);
    out->brokers = svc->common->kafka_brokers;
    out->client_id = svc->def->name;
    out->topic_prefix = svc->common->topic_prefix;
    out->linger_us = (int)svc->common->kafka_linger_us; /* bounded to [0, 1 s] by the spec */
    out->metrics = svc->metrics;
}

enum wa_err
wa_service_kafka_producer(struct wa_service *svc, struct wa_kafka_producer **out,
                          struct wa_error *error)
{
    struct wa_kafka_config kc;
    enum wa_err err;

    if (svc->producer == NULL) {
        wa_service_kafka_config(svc, &kc);
        if ((err = wa_kafka_producer_new(svc->loop, &kc, &svc->producer, error)) != WA_OK) {
            return err;
        }
        if ((err = wa_service_probe(svc, "kafka", producer_ready, svc->producer)) != WA_OK) {
            return wa_error_set(error, err, "too many readiness probes");
        }
    }
    *out = svc->producer;
    return WA_OK;
}

enum wa_err
wa_service_kv(struct wa_service *svc, struct wa_kv **out, struct wa_error *error)
{
    struct wa_kv_config kc = {0};
    enum wa_err err;

    if (svc->kv == NULL) {
        kc.url = svc->common->redis_url;
        if ((err = wa_kv_new(svc->loop, &kc, &svc->kv, error)) != WA_OK) {
            return err;
        }
        if ((err = wa_service_probe(svc, "redis", kv_ready, svc->kv)) != WA_OK) {
            return wa_error_set(error, err, "too many readiness probes");
        }
    }
    *out = svc->kv;
    return WA_OK;
}

enum wa_err
wa_service_mongo(struct wa_service *svc, struct wa_mongo **out, struct wa_error *error)
{
    struct wa_mongo_config mc = {0};
    struct wa_pool *pool;
    enum wa_err err;

    if (svc->mongo == NULL) {
        if ((pool = wa_service_pool(svc)) == NULL) {
            return wa_error_set(error, WA_ENOMEM, "cannot start the worker pool");
        }
        mc.uri = svc->common->mongo_uri;
        mc.app_name = svc->def->name;
        svc->mongo_used = true;
        if ((err = wa_mongo_new(svc->loop, pool, &mc, &svc->mongo, error)) != WA_OK) {
            return err;
        }
        if ((err = wa_service_probe(svc, "mongodb", mongo_ready, svc->mongo)) != WA_OK) {
            return wa_error_set(error, err, "too many readiness probes");
        }
    }
    *out = svc->mongo;
    return WA_OK;
}

void
wa_service_deps_free(struct wa_service *svc)
{
    if (svc->producer != NULL) {
        size_t left;
        /* Bounded: the drain phase already waited for in-flight work. */
        wa_kafka_producer_flush(svc->producer, 2000);
        left = wa_kafka_producer_outq(svc->producer);
        if (left > 0) {
            wa_log_warn(NULL, "%zu Kafka messages not acknowledged at shutdown", left);
        }
        wa_kafka_producer_free(svc->producer);
        svc->producer = NULL;
    }
    wa_kv_free(svc->kv);
    svc->kv = NULL;
    wa_mongo_free(svc->mongo);
    svc->mongo = NULL;
}

void
wa_service_deps_global_cleanup(struct wa_service *svc)
{
    if (svc->mongo_used) {
        wa_mongo_global_cleanup();
    }
}
