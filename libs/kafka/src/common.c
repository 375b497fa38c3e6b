/*
 * common.c: configuration, error translation, the loop wake-up and the readiness probe shared
 * by the producer, the consumer and the admin helper.
 *
 * Threading: kafka_on_log runs on librdkafka's threads and only calls wa_log (thread-safe);
 * everything else runs on the caller's thread (the loop thread for the wake-up).
 */
#include "kafka_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wa/log.h"

#define DRAIN_SAFETY_MIN_MS 10

enum wa_err
wa_kafka_topic(const struct wa_kafka_config *cfg, const char *name, char *buf, size_t size)
{
    const char *prefix = cfg != NULL && cfg->topic_prefix != NULL ? cfg->topic_prefix : "";
    int n;

    if (size == 0) {
        return WA_ETOOBIG;
    }
    buf[0] = '\0';
    if (name == NULL || *name == '\0') {
        return WA_EINVAL;
    }
    n = snprintf(buf, size, "%s%s", prefix, name);
    if (n < 0 || (size_t)n >= size) {
        buf[0] = '\0';
        return WA_ETOOBIG;
    }
    return WA_OK;
}

enum wa_err
kafka_err(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return WA_OK;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return WA_EAGAIN;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return WA_ETIMEDOUT;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return WA_ETOOBIG;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return WA_ENOTFOUND;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
        return WA_EAUTH;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY:
        return WA_ECLOSED;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
        return WA_EINVAL;
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
        return WA_EEXIST;
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
        return WA_EUNAVAIL;
    default:
        return WA_EIO;
    }
}

/* librdkafka threads: syslog levels to wa_log levels; routine chatter goes to debug. */
static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum wa_log_level lvl = level <= 2 ? WA_LOG_ERROR : level <= 4 ? WA_LOG_WARN : WA_LOG_DEBUG;

    WA_LOG_AT(lvl, NULL, "kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

enum wa_err
kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, struct wa_error *error)
{
    char errstr[256];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        return wa_error_set(error, WA_ECONFIG, "kafka property %s=%s: %s", name,
                            kafka_conf_secret(name) ? "<redacted>" : value, errstr);
    }
    return WA_OK;
}

enum wa_err
kafka_conf_props(rd_kafka_conf_t *conf, const struct wa_kafka_config *cfg, struct wa_error *error)
{
    enum wa_err err;

    for (size_t i = 0; i < cfg->nprops; i++) {
        if (cfg->props[i].name == NULL || cfg->props[i].value == NULL) {
            return wa_error_set(error, WA_ECONFIG, "kafka property %zu has no name or value", i);
        }
        if ((err = kafka_conf_set(conf, cfg->props[i].name, cfg->props[i].value, error)) != WA_OK) {
            return err;
        }
    }
    return WA_OK;
}

enum wa_err
kafka_conf_new(const struct wa_kafka_config *cfg, rd_kafka_conf_t **out, struct wa_error *error)
{
    rd_kafka_conf_t *conf = NULL;
    char num[32];
    enum wa_err err;

    *out = NULL;
    if (cfg == NULL || cfg->brokers == NULL || *cfg->brokers == '\0') {
        return wa_error_set(error, WA_ECONFIG, "kafka brokers are not configured");
    }
    if ((conf = rd_kafka_conf_new()) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    snprintf(num, sizeof(num), "%d", cfg->probe_interval_ms > 0 ? cfg->probe_interval_ms : 1000);
    if ((err = kafka_conf_set(conf, "bootstrap.servers", cfg->brokers, error)) != WA_OK ||
        (err = kafka_conf_set(conf, "client.id",
                              cfg->client_id != NULL ? cfg->client_id : "wabridge", error)) !=
            WA_OK ||
        (err = kafka_conf_set(conf, "statistics.interval.ms", num, error)) != WA_OK ||
        (err = kafka_conf_security(conf, &cfg->security, error)) != WA_OK) {
        rd_kafka_conf_destroy(conf);
        return err;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    *out = conf;
    return WA_OK;
}

bool
kafka_on_error(rd_kafka_t *rk, int err, const char *reason, bool ready, const char *what)
{
    char fatal[256];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        wa_log_error(NULL, "kafka %s: fatal error: %s", what, fatal);
        return false;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (ready) {
            wa_log_warn(NULL, "kafka %s: all brokers are down: %s", what, reason);
        }
        return false;
    }
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL) {
        /* wrong credentials or certificates: retried by librdkafka, but never healed by it */
        wa_log_error(NULL, "kafka %s: %s", what, reason);
        return false;
    }
    wa_log_debug(NULL, "kafka %s: %s: %s", what, rd_kafka_err2name(err), reason);
    return ready;
}

bool
kafka_stats_broker_up(const char *json, size_t len)
{
    /* Only the "brokers" object is parsed (the parse stops at its end), not the whole report
     * with its topics and partitions: found by its key, which no other place in the report can
     * spell (names of topics, brokers and clients hold no quote). The whole report when the
     * key is not found. */
    static const char key[] = "\"brokers\":";
    const char *at = memmem(json, len, key, sizeof(key) - 1);
    json_t *root, *brokers;
    json_t *b;
    const char *name;
    bool up = false;

    if (at != NULL) {
        at += sizeof(key) - 1;
        brokers = root = json_loadb(at, len - (size_t)(at - json), JSON_DISABLE_EOF_CHECK, NULL);
    } else {
        root = json_loadb(json, len, 0, NULL);
        brokers = json_object_get(root, "brokers");
    }
    json_object_foreach(brokers, name, b)
    {
        const char *source = json_string_value(json_object_get(b, "source"));
        const char *state = json_string_value(json_object_get(b, "state"));

        if (source != NULL && (strcmp(source, "internal") == 0 || strcmp(source, "logical") == 0)) {
            continue;
        }
        if (state != NULL && strcmp(state, "UP") == 0) {
            up = true;
            break;
        }
    }
    json_decref(root);
    return up;
}

void
kafka_stats_consumer_lag(const char *json, size_t len, struct wa_metrics *m)
{
    json_t *root, *topics, *t, *parts, *pt;
    const char *topic, *pid;
    char labels[320];

    if (m == NULL || (root = json_loadb(json, len, 0, NULL)) == NULL) {
        return;
    }
    topics = json_object_get(root, "topics");
    json_object_foreach(topics, topic, t)
    {
        double lag = 0;

        parts = json_object_get(t, "partitions");
        json_object_foreach(parts, pid, pt)
        {
            /* read_committed: the end is the last stable offset; the position is the committed
             * offset, else (a group that never committed) the next offset handed to the app */
            json_int_t end = json_integer_value(json_object_get(pt, "ls_offset"));
            json_int_t pos = json_integer_value(json_object_get(pt, "committed_offset"));

            if (strcmp(pid, "-1") == 0 || json_is_false(json_object_get(pt, "desired"))) {
                continue; /* the unassigned-partition placeholder; partitions not assigned */
            }
            if (end < 0) {
                end = json_integer_value(json_object_get(pt, "hi_offset"));
            }
            if (pos < 0) {
                pos = json_integer_value(json_object_get(pt, "app_offset"));
            }
            if (end > 0 && pos >= 0 && end > pos) {
                lag += (double)(end - pos);
            }
        }
        snprintf(labels, sizeof(labels), "topic=\"%s\"", topic);
        wa_gauge_set(wa_metrics_gauge(m, "wa_kafka_consumer_lag",
                                      "records behind the end of the assigned partitions", labels),
                     lag);
    }
    json_decref(root);
}

/* ---- the wake-up ---- */

static void
run_drain(struct kafka_wakeup *w)
{
    if (w->drain(w->arg) && !wa_timer_active(w->more)) {
        wa_timer_start(w->more, 0, 0);
    }
}

static void
on_readable(struct wa_io *io, int fd, unsigned events, void *arg)
{
    char sink[256];

    (void)io;
    (void)events;
    while (read(fd, sink, sizeof(sink)) > 0) {
        /* empty the pipe first: a byte written after this read wakes us again */
    }
    run_drain(arg);
}

static void
on_timer(struct wa_timer *t, void *arg)
{
    (void)t;
    run_drain(arg);
}

enum wa_err
kafka_wakeup_start(struct kafka_wakeup *w, struct wa_loop *loop, rd_kafka_queue_t *queue,
                   uint64_t safety_ms, kafka_drain_fn drain, void *arg, struct wa_error *error)
{
    enum wa_err err;

    memset(w, 0, sizeof(*w));
    w->fds[0] = w->fds[1] = -1;
    w->queue = queue;
    w->drain = drain;
    w->arg = arg;
    if (pipe2(w->fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        return wa_error_set(error, WA_EIO, "pipe2: %s", strerror(errno));
    }
    if ((err = wa_io_new(loop, w->fds[0], WA_IO_READ, on_readable, w, &w->io)) != WA_OK) {
        kafka_wakeup_stop(w);
        return wa_error_set(error, err, "cannot watch the kafka wake-up pipe");
    }
    w->safety = wa_timer_new(loop, on_timer, w);
    w->more = wa_timer_new(loop, on_timer, w);
    if (w->safety == NULL || w->more == NULL) {
        kafka_wakeup_stop(w);
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    safety_ms = safety_ms < DRAIN_SAFETY_MIN_MS ? DRAIN_SAFETY_MIN_MS : safety_ms;
    wa_timer_start(w->safety, safety_ms, safety_ms);
    rd_kafka_queue_io_event_enable(queue, w->fds[1], "1", 1);
    return WA_OK;
}

void
kafka_wakeup_stop(struct kafka_wakeup *w)
{
    if (w->queue != NULL && w->fds[1] >= 0) {
        rd_kafka_queue_io_event_enable(w->queue, -1, NULL, 0);
    }
    w->queue = NULL;
    wa_timer_free(w->more);
    w->more = NULL;
    wa_timer_free(w->safety);
    w->safety = NULL;
    wa_io_free(w->io);
    w->io = NULL;
    for (int i = 0; i < 2; i++) {
        if (w->fds[i] >= 0) {
            close(w->fds[i]);
            w->fds[i] = -1;
        }
    }
}

bool
wa_kafka_wait_destroyed(int timeout_ms)
{
    return rd_kafka_wait_destroyed(timeout_ms) == 0;
}
