/* service_internal.h: the service struct, shared by service.c and deps.c (private). */
#ifndef WA_SERVICE_INTERNAL_H
#define WA_SERVICE_INTERNAL_H

#include "wa/service.h"

#define MAX_CONSUMERS 4

struct probe {
    char name[32];
    wa_service_ready_fn fn;
    void *arg;
    bool advisory; /* reported, does not make the daemon unready */
};

struct wa_service {
    const struct wa_service_def *def;
    void *cfg;                             /* owned: the service's config struct */
    const struct wa_common_config *common; /* points into cfg */
    char instance[128];
    struct wa_loop *loop;
    struct wa_metrics *metrics;
    struct wa_httpd *httpd;
    struct wa_httpd *admin; /* WA_ADMIN_LISTEN's: the probes; NULL when they share httpd */
    struct wa_pool *pool;
    struct wa_tracer *tracer;
    struct wa_timer *drain_timer; /* WA_SHUTDOWN_TIMEOUT */
    struct wa_timer *busy_timer;  /* polls the stages' busy hooks while draining */
    void *state;
    size_t nstarted; /* stages whose start was called (they get their stop) */
    bool stopping;   /* SIGTERM arrived */
    bool silenced;   /* the shared clients are closed */
    bool abandoned;  /* pool jobs outlived the silence: nothing is freed, the process exits */
    struct probe probes[16];
    size_t nprobes;
    /* shared clients (deps.c) */
    struct wa_service_clients opts;
    struct wa_kafka_producer *producer;
    struct wa_kv *kv;
    struct wa_mongo *mongo;
    bool mongo_used;
    struct wa_kafka_consumer *consumers[MAX_CONSUMERS];
    size_t nconsumers;
};

/* Shutdown steps of the shared clients, in the order service.c calls them. */
void wa_service_deps_pause(struct wa_service *svc);
void wa_service_deps_flush(struct wa_service *svc);
void wa_service_deps_silence(struct wa_service *svc);
void wa_service_deps_free(struct wa_service *svc);
/* After the loop is freed: library-global cleanup (libmongoc). */
void wa_service_deps_global_cleanup(struct wa_service *svc);

#endif
