/*
 * wa/service.h: the scaffolding every wabridge daemon shares.
 *
 * wa_service_main() is the whole life of a daemon: command line (--help, --version,
 * --check-config, --print-config), configuration from the service's spec table plus the common
 * WA_* variables, JSON logging, the loop, the HTTP listener with /healthz /readyz /metrics,
 * the shared clients (Kafka producer and consumers, Redis, MongoDB, the worker pool), signals
 * (SIGTERM/SIGINT: graceful stop; SIGHUP: reload), and the daemon's stages: a table of
 * (name, start, drain, busy, stop) rows started in order and stopped in reverse. A service
 * supplies a struct wa_service_def and never repeats any of this.
 *
 * Shutdown, in this order (docs/internals/service.md has the reasons):
 *   1. drain: /readyz answers 503, the listener stops accepting, every consumer made with
 *      wa_service_consumer() is paused, each stage's drain hook runs (reverse order); the loop
 *      keeps running until no stage is busy and no HTTP request is in flight, or
 *      WA_SHUTDOWN_TIMEOUT passes;
 *   2. flush: the shared producer delivers what is queued; the consumers commit their offsets;
 *   3. silence: every shared client is closed: whatever is still pending completes with
 *      WA_ECLOSED (suspended HTTP requests are answered 503; the worker pool takes no new job,
 *      the running ones finish and their completions run), and no callback of a shared client
 *      runs afterwards;
 *   4. stop: each stage's stop hook, in reverse order of start; the stages' state is freed;
 *   5. the clients, the HTTP server, metrics and the loop are freed.
 * So a stage's state outlives every callback that can reach it, and a stage never counts
 * references to survive shutdown.
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
#include "wa/kafka.h"
#include "wa/loop.h"
#include "wa/metrics.h"
#include "wa/pool.h"

struct wa_service;
struct wa_kv;
struct wa_mongo;
struct wa_tracer;

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
    int64_t kafka_probe_ms;
    char *kafka_compression;
    int64_t http_max_connections;
    int64_t http_timeout_ms;
    int64_t http_conn_memory;
    int64_t http_body_budget;
    int64_t http_max_per_ip;
    char *otlp_endpoint;
    int64_t trace_sample;
    char *admin_listen;                          /* "" : the probes share listen */
    struct wa_kafka_security_cfg kafka_security; /* WA_KAFKA_SECURITY_PROTOCOL & co */
};

/* Spec rows for struct wa_common_config embedded as member m of struct type T. */
#define WA_CFG_COMMON(T, m, listen_default) WA_CFG_COMMON_DRAIN(T, m, listen_default, "4s")
/* The same with another WA_SHUTDOWN_TIMEOUT default, for a daemon whose in-flight work may take
 * longer to finish (e.g. wa-notify's Cloud API calls). */
#define WA_CFG_COMMON_DRAIN(T, m, listen_default, shutdown_default) \
    WA_CFG_COMMON_DEFAULTS(T, m, listen_default, shutdown_default, "16KiB", "500us")
/* The same with other WA_HTTP_MAX_HEADER and WA_KAFKA_LINGER defaults too (wa-ingest: small
 * headers, which libmicrohttpd zeroes after every request, and no linger, because Meta waits
 * for the answer). */
/* clang-format off */
#define WA_CFG_COMMON_DEFAULTS(T, m, listen_default, shutdown_default, max_header_default,         \
                               linger_default)                                                     \
    {"WA_LISTEN", WA_CFG_STRING, listen_default, 0, 0, 0, offsetof(T, m.listen),                   \
     "host:port of the HTTP listener"},                                                            \
    {"WA_ADMIN_LISTEN", WA_CFG_STRING, "", 0, 0, 0, offsetof(T, m.admin_listen),                   \
     "host:port of a separate listener for /healthz, /readyz and /metrics; empty: WA_LISTEN"},     \
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
    {"WA_KAFKA_LINGER", WA_CFG_US, linger_default, 0, 1000000, 0, offsetof(T, m.kafka_linger_us),  \
     "producer batching delay (latency against broker CPU; 0 sends at once)"},                     \
    {"WA_KAFKA_COMPRESSION", WA_CFG_STRING, "none", 0, 0, 0, offsetof(T, m.kafka_compression),    \
     "producer compression.type: none, lz4, snappy, zstd or gzip (CPU against bytes)"},          \
    {"WA_KAFKA_PROBE_INTERVAL", WA_CFG_MS, "1s", 100, 600000, 0, offsetof(T, m.kafka_probe_ms),    \
     "how often Kafka clients report broker states (readiness) and consumer lag"},                 \
    {"WA_HTTP_MAX_CONNECTIONS", WA_CFG_INT, "1024", 1, 65536, 0,                                   \
     offsetof(T, m.http_max_connections), "HTTP connections served at once"},                      \
    {"WA_HTTP_TIMEOUT", WA_CFG_MS, "10s", 1000, 3600000, 0, offsetof(T, m.http_timeout_ms),       \
     "idle or slow HTTP connections are closed after this (defeats slow clients)"},                \
    {"WA_HTTP_MAX_HEADER", WA_CFG_SIZE, max_header_default, 4096, 1048576, 0,                      \
     offsetof(T, m.http_conn_memory),                                                              \
     "per-connection read buffer; bounds the request line and headers (431 above)"},              \
    {"WA_HTTP_BODY_BUDGET", WA_CFG_SIZE, "64MiB", 65536, 68719476736LL, 0,                         \
     offsetof(T, m.http_body_budget),                                                              \
     "request bodies held at once, all connections together (503 + Retry-After above)"},          \
    {"WA_HTTP_MAX_CONNECTIONS_PER_IP", WA_CFG_INT, "0", 0, 65536, 0,                               \
     offsetof(T, m.http_max_per_ip),                                                               \
     "connections from one client address (0: no limit; keep 0 behind a proxy)"},                 \
    {"WA_OTLP_ENDPOINT", WA_CFG_STRING, "", 0, 0, 0, offsetof(T, m.otlp_endpoint),                 \
     "OTLP/HTTP collector base URL for spans, e.g. http://127.0.0.1:4318 (empty: no tracing)"},    \
    {"WA_TRACE_SAMPLE", WA_CFG_INT, "100", 0, 100, 0, offsetof(T, m.trace_sample),                \
     "percent of traces recorded (decided by trace id, the same in every daemon)"},               \
    WA_CFG_KAFKA_SECURITY(T, m.kafka_security)
/* clang-format on */

/* Shared clients the scaffolding creates before start (see wa_service_kafka_producer & co). */
#define WA_SERVICE_USES_KAFKA 0x1u
#define WA_SERVICE_USES_REDIS 0x2u
#define WA_SERVICE_USES_MONGO 0x4u

struct wa_service_clients;

/*
 * One stage of a daemon's flow. Rows are static storage; state is the service's state (see
 * struct wa_service_def, state_size), shared by every stage.
 */
struct wa_service_stage {
    const char *name; /* for logs: "spool", "consume" */
    /* Creates the stage: timers, routes, consumers. NULL: nothing to create. On failure the
     * stages started so far, this one included, are stopped in reverse, so stop must accept
     * what a partial start left (every destructor accepts NULL). */
    enum wa_err (*start)(struct wa_service *svc, void *state, struct wa_error *error);
    /* SIGTERM: stop taking new work (timers that start work, pumps). NULL: nothing to do. */
    void (*drain)(struct wa_service *svc, void *state);
    /* While draining: true while the stage still has work in flight that must finish before
     * the clients are flushed and silenced. Polled; NULL: never busy. */
    bool (*busy)(void *state);
    /* Frees what start made. Runs once every shared client is silenced: no callback of theirs
     * can reach the state any more. NULL: nothing to free. */
    void (*stop)(struct wa_service *svc, void *state);
};

/* What a daemon is. All pointers borrowed, static storage. */
struct wa_service_def {
    const char *name;    /* e.g. "wa-ingest" */
    const char *summary; /* one line for --help */
    const struct wa_cfg_spec *spec;
    size_t nspec;
    size_t cfg_size;      /* sizeof the service's config struct */
    size_t common_offset; /* offsetof(<cfg>, <struct wa_common_config member>) */
    unsigned uses;        /* WA_SERVICE_USES_*: clients made (with probes) before the stages */
    /* Per-service settings of the shared clients, called once before any client is made.
     * NULL: the common settings only. */
    void (*clients)(const void *cfg, struct wa_service_clients *clients);
    size_t state_size; /* the stages' state: zeroed before the first start, freed after the
                          last stop; 0: the stages get NULL */
    const struct wa_service_stage *stages; /* started in order, stopped in reverse */
    size_t nstages;
    /* SIGHUP (optional). */
    void (*reload)(struct wa_service *svc, void *state);
};

/*
 * Per-service settings of the shared clients, filled by def->clients. Starts zeroed; a zero
 * keeps the library default. Strings are borrowed and must live as long as the daemon (static
 * storage or the configuration).
 */
#define WA_SERVICE_PRODUCER_PROPS 8
struct wa_service_clients {
    /* Kafka producer: librdkafka properties applied after the common ones (they win). */
    struct wa_kafka_property producer_props[WA_SERVICE_PRODUCER_PROPS];
    size_t nproducer_props;
    /* Redis: commands in flight at most, per-command timeout. */
    uint32_t kv_max_pending;
    uint32_t kv_command_timeout_ms;
    /* MongoDB: server selection and connect timeout. */
    uint32_t mongo_timeout_ms;
};

/* Runs the daemon; returns the process exit status (0 ok, 1 runtime failure, 2 usage/config). */
int wa_service_main(int argc, char **argv, const struct wa_service_def *def);

/* Borrowed handles, valid from the first stage's start until the last stop returns (the HTTP
 * server and the pool: until the clients are silenced). */
struct wa_loop *wa_service_loop(struct wa_service *svc);
struct wa_metrics *wa_service_metrics(struct wa_service *svc);
struct wa_httpd *wa_service_httpd(struct wa_service *svc);
/* The listener of WA_ADMIN_LISTEN (the probes; a daemon may add its operator routes there), or
 * the public one when WA_ADMIN_LISTEN is empty. */
struct wa_httpd *wa_service_admin_httpd(struct wa_service *svc);
const struct wa_common_config *wa_service_common(struct wa_service *svc);
const char *wa_service_name(struct wa_service *svc);
/* A source for CloudEvents: "<name>/<hostname>". */
const char *wa_service_instance(struct wa_service *svc);
/* The worker pool, created on first use with WA_WORKERS threads. NULL if it cannot be made or
 * the clients are silenced (then submitting to a pool already made fails with WA_ECLOSED). */
struct wa_pool *wa_service_pool(struct wa_service *svc);
/* The span recorder (wa/trace.h) when WA_OTLP_ENDPOINT is set, else NULL (wa_tracer_span
 * accepts NULL). Borrowed, valid from start until stop returns. */
struct wa_tracer *wa_service_tracer(struct wa_service *svc);
/* True once SIGTERM arrived (a stage's own readiness answer, for instance). */
bool wa_service_stopping(struct wa_service *svc);
/* The service's configuration (the struct of def->cfg_size), borrowed. */
const void *wa_service_config(struct wa_service *svc);

/* Adds a readiness check named name (copied) to /readyz. */
typedef bool (*wa_service_ready_fn)(void *arg);
enum wa_err wa_service_probe(struct wa_service *svc, const char *name, wa_service_ready_fn fn,
                             void *arg);
/* Makes the check named name (a shared client's or one added with wa_service_probe) advisory:
 * /readyz still reports it, but it does not make the daemon unready (a daemon that copes without
 * that dependency, e.g. wa-ingest, whose spool takes the webhooks while Kafka is away).
 * WA_ENOTFOUND when no check has that name. */
enum wa_err wa_service_probe_advisory(struct wa_service *svc, const char *name);

/*
 * Shared clients built from the common configuration and def->clients, each with its
 * readiness probe registered, owned by the scaffolding (flushed, silenced and freed as the
 * header comment says). Returned handles are borrowed until the last stage stopped; after the
 * silence they answer every call with WA_ECLOSED and never call back.
 */
enum wa_err wa_service_kafka_producer(struct wa_service *svc, struct wa_kafka_producer **out,
                                      struct wa_error *error);
enum wa_err wa_service_kv(struct wa_service *svc, struct wa_kv **out, struct wa_error *error);
enum wa_err wa_service_mongo(struct wa_service *svc, struct wa_mongo **out, struct wa_error *error);

/* The Kafka settings of the common configuration (brokers, prefix, client id = daemon name,
 * linger, no Nagle, TLS and SASL). Strings borrowed from the configuration. */
void wa_service_kafka_config(struct wa_service *svc, struct wa_kafka_config *out);

/*
 * A Kafka consumer owned by the scaffolding, made from the common settings: group (copied),
 * topics (full names, copied), max_in_flight (0: the library default), on_message(c, msg, arg)
 * on the loop thread. Its probe is "kafka_consumer". At SIGTERM it is paused before the stages
 * drain; after the drain and the producer's flush it is closed (done offsets committed); it
 * is freed after the last stage stopped, so wa_kafka_consumer_done() stays valid in stop
 * hooks. Returns a borrowed handle in *out.
 */
struct wa_service_consumer {
    const char *group;
    const char *const *topics;
    size_t ntopics;
    int max_in_flight;
    wa_kafka_message_fn on_message;
    void *arg;
};
enum wa_err wa_service_consumer(struct wa_service *svc, const struct wa_service_consumer *def,
                                struct wa_kafka_consumer **out, struct wa_error *error);

#endif
