/*
 * kafka_int.h: private helpers shared by producer.c, consumer.c and admin.c (not installed).
 *
 * The wake-up: librdkafka writes one byte into a non-blocking pipe whenever an rd_kafka queue
 * goes from empty to non-empty (rd_kafka_queue_io_event_enable). The loop watches the read end
 * and drains the queue on the loop thread; a slow periodic timer drains it too, as a safety net,
 * and a zero-delay timer continues a drain that hit its per-wake-up budget so one busy queue
 * cannot starve the rest of the loop.
 */
#ifndef WA_KAFKA_INT_H
#define WA_KAFKA_INT_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

#include "wa/kafka.h"

/* Drains up to a budget; returns true when more is left. Runs on the loop thread. */
typedef bool (*kafka_drain_fn)(void *arg);

struct kafka_wakeup {
    int fds[2];
    rd_kafka_queue_t *queue; /* borrowed from the owner */
    struct wa_io *io;
    struct wa_timer *safety; /* periodic */
    struct wa_timer *more;   /* one-shot, 0 ms, when a drain hit its budget */
    kafka_drain_fn drain;
    void *arg;
};

/* Starts watching queue (borrowed; must outlive kafka_wakeup_stop). */
enum wa_err kafka_wakeup_start(struct kafka_wakeup *w, struct wa_loop *loop,
                               rd_kafka_queue_t *queue, uint64_t safety_ms, kafka_drain_fn drain,
                               void *arg, struct wa_error *error);
/* Stops the io event, the watchers and closes the pipe. Idempotent. */
void kafka_wakeup_stop(struct kafka_wakeup *w);

/*
 * Returns a new librdkafka configuration with the common settings (brokers, client id, logging
 * into wa_log, statistics for the readiness probe) and cfg->props applied last by
 * kafka_conf_props(). Errors name the rejected property.
 */
enum wa_err kafka_conf_new(const struct wa_kafka_config *cfg, rd_kafka_conf_t **out,
                           struct wa_error *error);
enum wa_err kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                           struct wa_error *error);
enum wa_err kafka_conf_props(rd_kafka_conf_t *conf, const struct wa_kafka_config *cfg,
                             struct wa_error *error);

/* Checks s (wa_kafka_security_check) and sets security.protocol, sasl.* and ssl.* from it. */
enum wa_err kafka_conf_security(rd_kafka_conf_t *conf, const struct wa_kafka_security *s,
                                struct wa_error *error);
/* True for a property whose value is a secret (passwords, JAAS): never put in a message. */
bool kafka_conf_secret(const char *name);

/* Translates a librdkafka error code into the wabridge vocabulary. */
enum wa_err kafka_err(rd_kafka_resp_err_t err);

/* True when librdkafka's statistics JSON shows at least one real broker in state "UP". */
bool kafka_stats_broker_up(const char *json, size_t len);

/* Sets wa_kafka_consumer_lag{topic} in m (NULL: nothing) from a consumer's statistics JSON: over
 * the topic's assigned partitions, the end (last stable offset) minus the committed offset (or,
 * before the group's first commit, the next offset handed to the application). */
void kafka_stats_consumer_lag(const char *json, size_t len, struct wa_metrics *m);

/* Logs an error_cb report (authentication and TLS failures at error level: they do not heal
 * by themselves); returns the new readiness given the old one. */
bool kafka_on_error(rd_kafka_t *rk, int err, const char *reason, bool ready, const char *what);

#endif
