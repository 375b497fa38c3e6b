/*
 * wa/service.h: the scaffolding every wabridge daemon shares.
 *
 * wa_service_main() is the whole life of a daemon: command line (--help, --version,
 * --check-config, --print-config), configuration from the service's spec table plus the common
 * WA_* variables, JSON logging, the loop, the HTTP listener with /healthz /readyz /metrics,
 * signals (SIGTERM/SIGINT: graceful stop; SIGHUP: reload), and the ordered start and reverse
 * stop of the service's stages. A service supplies a struct wa_service_def and never repeats any
 * of this.
 *
 * Shutdown: on SIGTERM the listener stops accepting, the service's drain hook is called and the
 * loop keeps running until the service calls wa_service_drained() or shutdown_timeout passes;
 * then stop hooks run in reverse order of start and everything is freed.
 *
 * Threading: everything here runs on the loop thread (the main thread).
 */
#ifndef WA_SERVICE_H
#define WA_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/config.h"
#include "wa/err.h"
#include "wa/httpd.h"
#include "wa/loop.h"
#include "wa/metrics.h"
#include "wa/pool.h"

struct wa_service;
struct wa_kafka_producer;
struct wa_kv;
struct wa_mongo;

/* Variables every daemon reads (docs/configuration.md). Embedded in each service's config. */
struct wa_common_config {
    char *listen;
    char *kafka_brokers;
    char *topic_prefix;
    char *redis_url;
    char *mongo_uri;
    char *log_level;
    int64_t shutdown_timeout_ms;
    int64_t workers;
    int64_t kafka_linger_us;
    int64_t http_max_connections;
    int64_t http_timeout_ms;
    int64_t http_conn_memory;
};

/* Spec rows for struct wa_common_config embedded as member m of struct type T. */
#define WA_CFG_COMMON(T, m, listen_default) WA_CFG_COMMON_DRAIN(T, m, listen_default, "4s")
/* The same with another WA_SHUTDOWN_TIMEOUT default, for a daemon whose in-flight work may take
 * longer to finish (e.g. wa-notify's Cloud API calls). */
/* clang-format off */
#define WA_CFG_COMMON_DRAIN(T, m, listen_default, shutdown_default)                                \
    {"WA_LISTEN", WA_CFG_STRING, listen_default, 0, 0, 0, offsetof(T, m.listen),                   \
     "host:port of the HTTP listener"},                                                            \
    {"WA_KAFKA_BROKERS", WA_CFG_STRING, "127.0.0.1:9092", 0, 0, 0, offsetof(T, m.kafka_brokers),  \
     "Kafka bootstrap servers"},                                                                   \
    {"WA_TOPIC_PREFIX", WA_CFG_STRING, "wa.", 0, 0, 0, offsetof(T, m.topic_prefix),               \
     "prefix of every topic name and Redis key"},                                                  \
    {"WA_REDIS_URL", WA_CFG_STRING, "redis://127.0.0.1:6379/0", 0, 0, WA_CFG_SECRET,              \
     offsetof(T, m.redis_url), "Redis URL (may hold a password)"},                                 \
    {"WA_MONGO_URI", WA_CFG_STRING, "mongodb://127.0.0.1:27017/wabridge", 0, 0, WA_CFG_SECRET,     \
     offsetof(T, m.mongo_uri), "MongoDB URI (may hold credentials)"},                              \
    {"WA_LOG_LEVEL", WA_CFG_STRING, "info", 0, 0, 0, offsetof(T, m.log_level),                    \
     "debug, info, warn, error"},                                                                  \
    {"WA_SHUTDOWN_TIMEOUT", WA_CFG_MS, shutdown_default, 0, 60000, 0,                              \
     offsetof(T, m.shutdown_timeout_ms),                                                           \
     "how long SIGTERM waits for in-flight work"},                                                 \
    {"WA_WORKERS", WA_CFG_INT, "2", 1, 64, 0, offsetof(T, m.workers),                             \
     "worker threads for blocking work (MongoDB, fsync)"},                                         \
    {"WA_KAFKA_LINGER", WA_CFG_US, "500us", 0, 1000000, 0, offsetof(T, m.kafka_linger_us),         \
     "producer batching delay (latency against broker CPU; 0 sends at once)"},                     \
    {"WA_HTTP_MAX_CONNECTIONS", WA_CFG_INT, "1024", 1, 65536, 0,                                   \
     offsetof(T, m.http_max_connections), "HTTP connections served at once"},                      \
    {"WA_HTTP_TIMEOUT", WA_CFG_MS, "10s", 1000, 3600000, 0, offsetof(T, m.http_timeout_ms),       \
     "idle or slow HTTP connections are closed after this (defeats slow clients)"},                \
    {"WA_HTTP_MAX_HEADER", WA_CFG_SIZE, "32KiB", 4096, 1048576, 0,                                 \
     offsetof(T, m.http_conn_memory),                                                              \
     "per-connection read buffer; bounds the request line and headers (431 above)"}
/* clang-format on */

/* Shared clients the scaffolding creates before start (see wa_service_kafka_producer & co). */
#define WA_SERVICE_USES_KAFKA 0x1u
#define WA_SERVICE_USES_REDIS 0x2u
#define WA_SERVICE_USES_MONGO 0x4u

/* What a daemon is. All pointers borrowed, static storage. */
struct wa_service_def {
    const char *name;    /* e.g. "wa-ingest" */
    const char *summary; /* one line for --help */
    const struct wa_cfg_spec *spec;
    size_t nspec;
    size_t cfg_size;      /* sizeof the service's config struct */
    size_t common_offset; /* offsetof(<cfg>, <struct wa_common_config member>) */
    unsigned uses;        /* WA_SERVICE_USES_*: clients made (with probes) before start */
    /* Called after config, loop, metrics and the (not yet listening) HTTP server exist: create
     * clients and stages, add routes. Returns the service's state in *state. NULL: nothing
     * beyond the clients named in uses. */
    enum wa_err (*start)(struct wa_service *svc, const void *cfg, void **state,
                         struct wa_error *error);
    /* SIGTERM: stop taking new work, finish in-flight work, then call wa_service_drained().
     * NULL means "nothing to drain". */
    void (*drain)(struct wa_service *svc, void *state);
    /* After the loop stopped: flush and free everything start created. */
    void (*stop)(struct wa_service *svc, void *state);
    /* SIGHUP (optional). */
    void (*reload)(struct wa_service *svc, void *state);
};

/* Runs the daemon; returns the process exit status (0 ok, 1 runtime failure, 2 usage/config). */
int wa_service_main(int argc, char **argv, const struct wa_service_def *def);

/* Borrowed handles, valid from start until stop returns. */
struct wa_loop *wa_service_loop(struct wa_service *svc);
struct wa_metrics *wa_service_metrics(struct wa_service *svc);
struct wa_httpd *wa_service_httpd(struct wa_service *svc);
const struct wa_common_config *wa_service_common(struct wa_service *svc);
const char *wa_service_name(struct wa_service *svc);
/* A source for CloudEvents: "<name>/<hostname>". */
const char *wa_service_instance(struct wa_service *svc);
/* The worker pool, created on first use with WA_WORKERS threads. NULL if it cannot be made. */
struct wa_pool *wa_service_pool(struct wa_service *svc);
/* True once SIGTERM arrived. */
bool wa_service_stopping(struct wa_service *svc);

/* Adds a readiness check named name (copied) to /readyz. */
typedef bool (*wa_service_ready_fn)(void *arg);
enum wa_err wa_service_probe(struct wa_service *svc, const char *name, wa_service_ready_fn fn,
                             void *arg);

/*
 * Shared dependencies built from the common configuration, each with its readiness probe
 * registered and freed by the scaffolding after the service's stop hook. Returned handles are
 * borrowed. The producer is flushed (bounded by shutdown_timeout) before it is freed.
 */
enum wa_err wa_service_kafka_producer(struct wa_service *svc, struct wa_kafka_producer **out,
                                      struct wa_error *error);
enum wa_err wa_service_kv(struct wa_service *svc, struct wa_kv **out, struct wa_error *error);
enum wa_err wa_service_mongo(struct wa_service *svc, struct wa_mongo **out, struct wa_error *error);

/* The Kafka settings of the common configuration (brokers, prefix, client id = daemon name),
 * for services that create consumers. Strings borrowed from the configuration. */
struct wa_kafka_config;
void wa_service_kafka_config(struct wa_service *svc, struct wa_kafka_config *out);

/* The service finished draining (see drain). */
void wa_service_drained(struct wa_service *svc);

#endif
