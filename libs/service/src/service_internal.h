/* service_internal.h: the service struct, shared by service.c and deps.c (private). */
#ifndef WA_SERVICE_INTERNAL_H
#define WA_SERVICE_INTERNAL_H

#include "wa/service.h"

struct probe {
    char name[32];
    wa_service_ready_fn fn;
    void *arg;
};

struct wa_service {
    const struct wa_service_def *def;
    void *cfg;                             /* owned: the service's config struct */
    const struct wa_common_config *common; /* points into cfg */
    char instance[128];
    struct wa_loop *loop;
    struct wa_metrics *metrics;
    struct wa_httpd *httpd;
    struct wa_pool *pool;
    struct wa_timer *drain_timer;
    void *state;
    bool started;
    bool stopping;
    struct probe probes[16];
    size_t nprobes;
    /* shared dependencies (deps.c) */
    struct wa_kafka_producer *producer;
    struct wa_kv *kv;
    struct wa_mongo *mongo;
    bool mongo_used;
};

void wa_service_deps_free(struct wa_service *svc);
/* After the loop is freed: library-global cleanup (libmongoc). */
void wa_service_deps_global_cleanup(struct wa_service *svc);

#endif
