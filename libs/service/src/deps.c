/*
 * deps.c: the shared clients a daemon uses (Kafka producer and consumers, Redis, MongoDB),
 * built from the common configuration and the service's struct wa_service_clients, each with
 * its /readyz probe. Owned by the scaffolding; their shutdown is split in the steps service.c
 * calls in order: pause (consumers, at SIGTERM), flush (producer, then the consumers' final
 * commit), silence (every client closed: pending callbacks complete with WA_ECLOSED, later
 * calls fail with WA_ECLOSED), free (after the stages stopped).
 */
#include <stdio.h>
#include <string.h>

#include "service_internal.h"
#include "wa/kafka.h"
#include "wa/kv.h"
#include "wa/log.h"
#include "wa/mongo.h"

#define FLUSH_MAX_MS 2000 /* the drain already waited for in-flight work */

static bool
producer_ready(void *arg)
{
    return wa_kafka_producer_ready(arg);
}

static bool
consumer_ready(void *arg)
{
    return wa_kafka_consumer_ready(arg);
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
    out->linger_us = (int)svc->common->kafka_linger_us;        /* bounded to [0, 1 s] by the spec */
    out->probe_interval_ms = (int)svc->common->kafka_probe_ms; /* [100 ms, 10 min] */
    out->compression = svc->common->kafka_compression;
    out->metrics = svc->metrics;
    wa_kafka_security_from_cfg(&svc->common->kafka_security, &out->security);
}

enum wa_err
wa_service_kafka_producer(struct wa_service *svc, struct wa_kafka_producer **out,
                          struct wa_error *error)
{
    struct wa_kafka_property props[1 + WA_SERVICE_PRODUCER_PROPS];
    struct wa_kafka_config kc;
    enum wa_err err;

    *out = NULL;
    if (svc->silenced) {
        return wa_error_set(error, WA_ECLOSED, "the service is stopping");
    }
    if (svc->producer == NULL) {
        wa_service_kafka_config(svc, &kc);
        /* the common properties, then the service's, so the service's win */
        WA_ASSERT(kc.nprops + svc->opts.nproducer_props <= WA_ARRAY_LEN(props));
        memcpy(props, kc.props, kc.nprops * sizeof(props[0]));
        memcpy(props + kc.nprops, svc->opts.producer_props,
               svc->opts.nproducer_props * sizeof(props[0]));
        kc.props = props;
        kc.nprops += svc->opts.nproducer_props;
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
wa_service_consumer(struct wa_service *svc, const struct wa_service_consumer *def,
                    struct wa_kafka_consumer **out, struct wa_error *error)
{
    struct wa_kafka_consumer *c = NULL;
    struct wa_kafka_config kc;
    enum wa_err err;

    *out = NULL;
    if (svc->silenced || svc->stopping) {
        return wa_error_set(error, WA_ECLOSED, "the service is stopping");
    }
    if (svc->nconsumers == MAX_CONSUMERS) {
        return wa_error_set(error, WA_ELIMIT, "more than %d consumers", MAX_CONSUMERS);
    }
    wa_service_kafka_config(svc, &kc);
    kc.max_in_flight = def->max_in_flight;
    if ((err = wa_kafka_consumer_new(svc->loop, &kc, def->group, def->topics, def->ntopics,
                                     def->on_message, def->arg, &c, error)) != WA_OK) {
        return err;
    }
    svc->consumers[svc->nconsumers++] = c;
    if ((err = wa_service_probe(svc, "kafka_consumer", consumer_ready, c)) != WA_OK) {
        return wa_error_set(error, err, "too many readiness probes");
    }
    *out = c;
    return WA_OK;
}

enum wa_err
wa_service_kv(struct wa_service *svc, struct wa_kv **out, struct wa_error *error)
{
    struct wa_kv_config kc = {0};
    enum wa_err err;

    *out = NULL;
    if (svc->silenced) {
        return wa_error_set(error, WA_ECLOSED, "the service is stopping");
    }
    if (svc->kv == NULL) {
        kc.url = svc->common->redis_url;
        kc.max_pending = svc->opts.kv_max_pending;
        kc.command_timeout_ms = svc->opts.kv_command_timeout_ms;
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

    *out = NULL;
    if (svc->silenced) {
        return wa_error_set(error, WA_ECLOSED, "the service is stopping");
    }
    if (svc->mongo == NULL) {
        if ((pool = wa_service_pool(svc)) == NULL) {
            return wa_error_set(error, WA_ENOMEM, "cannot start the worker pool");
        }
        mc.uri = svc->common->mongo_uri;
        mc.app_name = svc->def->name;
        mc.timeout_ms = svc->opts.mongo_timeout_ms;
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
wa_service_deps_pause(struct wa_service *svc)
{
    for (size_t i = 0; i < svc->nconsumers; i++) {
        wa_kafka_consumer_pause(svc->consumers[i]);
    }
}

void
wa_service_deps_flush(struct wa_service *svc)
{
    struct wa_error error = {0};
    int ms = (int)svc->common->shutdown_timeout_ms;

    /* Delivery reports run here, so work they finish (a message handed back) is committed. */
    if (svc->producer != NULL) {
        (void)wa_kafka_producer_flush(svc->producer, ms < FLUSH_MAX_MS ? ms : FLUSH_MAX_MS);
    }
    for (size_t i = 0; i < svc->nconsumers; i++) {
        if (wa_kafka_consumer_close(svc->consumers[i], &error) != WA_OK) {
            wa_log_warn(NULL, "kafka consumer: final commit failed: %s", error.message);
        }
    }
}

void
wa_service_deps_silence(struct wa_service *svc)
{
    size_t left;

    svc->silenced = true;
    if (svc->producer != NULL) {
        left = wa_kafka_producer_outq(svc->producer);
        if (left > 0) {
            wa_log_warn(NULL, "%zu Kafka messages not acknowledged at shutdown", left);
        }
        wa_kafka_producer_close(svc->producer);
    }
    wa_kv_close(svc->kv);
    wa_mongo_close(svc->mongo);
}

void
wa_service_deps_free(struct wa_service *svc)
{
    for (size_t i = 0; i < svc->nconsumers; i++) {
        wa_kafka_consumer_free(svc->consumers[i]);
        svc->consumers[i] = NULL;
    }
    svc->nconsumers = 0;
    wa_kafka_producer_free(svc->producer);
    svc->producer = NULL;
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
