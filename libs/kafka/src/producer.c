/*
 * producer.c: the idempotent producer, with delivery reports served on the loop thread.
 *
 * Flow: wa_kafka_produce() copies the message into librdkafka with a small struct delivery as
 * its opaque -> librdkafka's threads batch, send and await acks=all -> the delivery report is
 * queued on the main queue, whose io event wakes the loop -> drain() calls rd_kafka_poll(),
 * which runs on_delivery() here on the loop thread -> the caller's callback, exactly once.
 *
 * Ownership: struct delivery is owned by librdkafka from a successful produce until its report,
 * and sits on the producer's pending list meanwhile, so wa_kafka_producer_close() can still
 * call back anything librdkafka never reported (exactly-once callback even on abortive
 * shutdown); a report arriving after the close only frees its struct delivery.
 * Readiness: statistics (every probe_interval_ms, served on the loop thread like every other
 * callback) report broker states; ALL_BROKERS_DOWN clears it at once; an acknowledged
 * delivery sets it. No metadata request ever blocks the loop.
 */
#include <stdlib.h>
#include <string.h>

#include "kafka_int.h"
#include "wa/buf.h"
#include "wa/cloudevent.h"
#include "wa/list.h"
#include "wa/log.h"

#define DRAIN_BUDGET   64  /* rd_kafka_poll calls per wake-up */
#define SAFETY_POLL_MS 250 /* safety-net drain period */
#define FREE_DRAIN_MS  2000

struct delivery {
    wa_kafka_delivery_fn cb;
    void *arg;
    struct wa_list link; /* on the producer's pending list */
};

struct wa_kafka_producer {
    struct wa_loop *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *main_queue;
    struct kafka_wakeup wake;
    struct wa_list pending; /* struct delivery, not yet reported */
    size_t outq;
    struct wa_metrics *metrics; /* borrowed, may be NULL */
    /* wa_kafka_produced_total's series met so far (loop thread), so a delivery report costs a
     * few string compares instead of formatting labels and a registry lookup */
    struct {
        char topic[256];
        bool ok;
        struct wa_counter *counter; /* borrowed from metrics */
    } series[8];
    size_t nseries;
    bool ready;
    bool fatal;
    bool closed; /* wa_kafka_producer_close: no callback runs any more */
};

static void
pending_remove(struct wa_kafka_producer *p, struct delivery *d)
{
    wa_list_remove(&d->link);
    p->outq--;
}

/* wa_kafka_produced_total{topic,outcome}: topics are the contract's, so the series stay bounded. */
static void
count_delivery(struct wa_kafka_producer *p, const char *topic, bool ok)
{
    char labels[320];
    struct wa_counter *c;

    if (p->metrics == NULL || topic == NULL) {
        return;
    }
    for (size_t i = 0; i < p->nseries; i++) {
        if (p->series[i].ok == ok && strcmp(p->series[i].topic, topic) == 0) {
            wa_counter_inc(p->series[i].counter);
            return;
        }
    }
    snprintf(labels, sizeof(labels), "topic=\"%s\",outcome=\"%s\"", topic, ok ? "ok" : "error");
    c = wa_metrics_counter(p->metrics, "wa_kafka_produced_total",
                           "records acknowledged (ok) or given up (error), by topic", labels);
    if (c != NULL && p->nseries < sizeof(p->series) / sizeof(p->series[0]) &&
        strlen(topic) < sizeof(p->series[0].topic)) {
        memcpy(p->series[p->nseries].topic, topic, strlen(topic) + 1);
        p->series[p->nseries].ok = ok;
        p->series[p->nseries++].counter = c;
    }
    wa_counter_inc(c);
}

/* ---- callbacks, in the order they fire ---- */

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct wa_kafka_producer *p = opaque;

    p->ready = kafka_on_error(rk, err, reason, p->ready, "producer");
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        p->fatal = true;
    }
}

static int
on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct wa_kafka_producer *p = opaque;
    bool up = kafka_stats_broker_up(json, len);

    (void)rk;
    if (up != p->ready) {
        wa_log_info(NULL, "kafka producer: %s", up ? "a broker is up" : "no broker is up");
    }
    p->ready = up && !p->fatal;
    return 0; /* librdkafka frees json */
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct wa_kafka_producer *p = opaque;
    struct delivery *d = m->_private;
    enum wa_err err = kafka_err(m->err);

    (void)rk;
    if (d == NULL) {
        return;
    }
    pending_remove(p, d);
    count_delivery(p, rd_kafka_topic_name(m->rkt), err == WA_OK);
    if (p->closed) { /* its callback already ran with WA_ECLOSED */
        free(d);
        return;
    }
    if (err == WA_OK) {
        p->ready = !p->fatal;
    } else {
        wa_log_debug(NULL, "kafka producer: delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
                     rd_kafka_err2str(m->err));
    }
    if (d->cb != NULL) {
        d->cb(err, err == WA_OK ? m->partition : -1, err == WA_OK ? m->offset : -1, d->arg);
    }
    free(d);
}

static bool
drain(void *arg)
{
    struct wa_kafka_producer *p = arg;

    for (int i = 0; i < DRAIN_BUDGET; i++) {
        if (rd_kafka_poll(p->rk, 0) == 0) {
            return false;
        }
    }
    return true;
}

/* ---- lifecycle ---- */

static enum wa_err
producer_conf(const struct wa_kafka_config *cfg, struct wa_kafka_producer *p, rd_kafka_conf_t **out,
              struct wa_error *error)
{
    rd_kafka_conf_t *conf = NULL;
    char num[4][32];
    enum wa_err err;

    if ((err = kafka_conf_new(cfg, &conf, error)) != WA_OK) {
        return err;
    }
    snprintf(num[0], sizeof(num[0]), "%d",
             cfg->message_timeout_ms > 0 ? cfg->message_timeout_ms : 30000);
    snprintf(num[1], sizeof(num[1]), "%.3f", cfg->linger_us >= 0 ? cfg->linger_us / 1000.0 : 5.0);
    snprintf(num[2], sizeof(num[2]), "%d",
             cfg->queue_max_messages > 0 ? cfg->queue_max_messages : 100000);
    snprintf(num[3], sizeof(num[3]), "%d",
             cfg->queue_max_kbytes > 0 ? cfg->queue_max_kbytes : 65536);
    if ((err = kafka_conf_set(conf, "enable.idempotence", "true", error)) != WA_OK ||
        (err = kafka_conf_set(conf, "acks", "all", error)) != WA_OK ||
        (err = kafka_conf_set(conf, "message.timeout.ms", num[0], error)) != WA_OK ||
        (err = kafka_conf_set(conf, "linger.ms", num[1], error)) != WA_OK ||
        (err = kafka_conf_set(conf, "queue.buffering.max.messages", num[2], error)) != WA_OK ||
        (err = kafka_conf_set(conf, "queue.buffering.max.kbytes", num[3], error)) != WA_OK) {
        goto out;
    }
    /* Small batches (the common case at interactive rates) pay a codec's per-batch set-up, here
     * and in every consumer: lz4 zeroes a 64 KiB state per batch (docs/internals/kafka.md). */
    if (cfg->compression != NULL && *cfg->compression != '\0' &&
        (err = kafka_conf_set(conf, "compression.type", cfg->compression, error)) != WA_OK) {
        goto out;
    }
    if ((err = kafka_conf_props(conf, cfg, error)) != WA_OK) {
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    rd_kafka_conf_set_opaque(conf, p);
    *out = conf;
    conf = NULL;
out:
    if (conf != NULL) {
        rd_kafka_conf_destroy(conf);
    }
    return err;
}

enum wa_err
wa_kafka_producer_new(struct wa_loop *loop, const struct wa_kafka_config *cfg,
                      struct wa_kafka_producer **out, struct wa_error *error)
{
    struct wa_kafka_producer *p = NULL;
    rd_kafka_conf_t *conf = NULL;
    char errstr[512];
    enum wa_err err;

    *out = NULL;
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    p->loop = loop;
    p->metrics = cfg != NULL ? cfg->metrics : NULL;
    wa_list_init(&p->pending);
    p->wake.fds[0] = p->wake.fds[1] = -1;
    if ((err = producer_conf(cfg, p, &conf, error)) != WA_OK) {
        goto out;
    }
    if ((p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) == NULL) {
        err = wa_error_set(error, WA_ECONFIG, "kafka producer: %s", errstr);
        goto out;
    }
    conf = NULL; /* rd_kafka_new took it */
    p->main_queue = rd_kafka_queue_get_main(p->rk);
    if ((err = kafka_wakeup_start(&p->wake, loop, p->main_queue, SAFETY_POLL_MS, drain, p,
                                  error)) != WA_OK) {
        goto out;
    }
    wa_log_info(NULL, "kafka producer %s started (brokers %s)", rd_kafka_name(p->rk), cfg->brokers);
    *out = p;
    p = NULL;
out:
    if (conf != NULL) {
        rd_kafka_conf_destroy(conf);
    }
    wa_kafka_producer_free(p);
    return err;
}

void
wa_kafka_producer_close(struct wa_kafka_producer *p)
{
    struct wa_list *it, *tmp;

    if (p == NULL || p->closed) {
        return;
    }
    if (p->rk != NULL && p->outq > 0) {
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(p->rk, FREE_DRAIN_MS); /* serves the purge reports: WA_ECLOSED */
    }
    p->closed = true;
    p->ready = false;
    /* Reports librdkafka still owes find p->closed and only free their struct delivery. */
    WA_LIST_FOREACH_SAFE(it, tmp, &p->pending)
    {
        struct delivery *d = WA_LIST_ENTRY(it, struct delivery, link);
        wa_kafka_delivery_fn cb = d->cb;

        d->cb = NULL;
        if (cb != NULL) {
            cb(WA_ECLOSED, -1, -1, d->arg);
        }
    }
}

void
wa_kafka_producer_free(struct wa_kafka_producer *p)
{
    struct wa_list *it;
    struct delivery *d;

    if (p == NULL) {
        return;
    }
    wa_kafka_producer_close(p);
    kafka_wakeup_stop(&p->wake);
    if (p->main_queue != NULL) {
        rd_kafka_queue_destroy(p->main_queue);
    }
    if (p->rk != NULL) {
        wa_log_info(NULL, "kafka producer %s stopped", rd_kafka_name(p->rk));
        rd_kafka_destroy(p->rk);
    }
    while ((it = wa_list_first(&p->pending)) != NULL) { /* never reported: called back above */
        d = WA_LIST_ENTRY(it, struct delivery, link);
        pending_remove(p, d);
        free(d);
    }
    free(p);
}

/* ---- producing ---- */

enum wa_err
wa_kafka_produce(struct wa_kafka_producer *p, const char *topic, const void *key, size_t keylen,
                 const void *value, size_t len, const struct wa_kafka_header *headers,
                 size_t nheaders, wa_kafka_delivery_fn cb, void *arg)
{
    rd_kafka_headers_t *hdrs = NULL;
    struct delivery *d = NULL;
    rd_kafka_resp_err_t rerr;

    if (topic == NULL || *topic == '\0' || (nheaders > 0 && headers == NULL)) {
        return WA_EINVAL;
    }
    if (p->closed) {
        return WA_ECLOSED;
    }
    if (p->fatal) {
        return WA_EUNAVAIL;
    }
    if ((d = calloc(1, sizeof(*d))) == NULL) {
        return WA_ENOMEM;
    }
    d->cb = cb;
    d->arg = arg;
    if (nheaders > 0) {
        hdrs = rd_kafka_headers_new(nheaders);
        for (size_t i = 0; i < nheaders; i++) {
            if (headers[i].name == NULL) {
                rd_kafka_headers_destroy(hdrs);
                free(d);
                return WA_EINVAL;
            }
            rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                                (ssize_t)headers[i].len);
        }
    }
    /* the header list is owned by librdkafka only when producev succeeds */
    rerr = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
                             RD_KAFKA_V_VALUE((void *)value, len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(d),
                             RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (hdrs != NULL) {
            rd_kafka_headers_destroy(hdrs);
        }
        free(d);
        return kafka_err(rerr);
    }
    wa_list_push_back(&p->pending, &d->link);
    p->outq++;
    return WA_OK;
}

enum wa_err
wa_kafka_produce_event(struct wa_kafka_producer *p, const char *topic,
                       const struct wa_cloudevent *ev, wa_kafka_delivery_fn cb, void *arg)
{
    struct wa_kafka_header headers[5];
    size_t n = 0;
    struct wa_buf body;
    enum wa_err err;

    wa_buf_init(&body, WA_CLOUDEVENT_MAX);
    if ((err = wa_cloudevent_encode(ev, &body, NULL)) != WA_OK) {
        goto out;
    }
    headers[n++] = (struct wa_kafka_header){"ce_specversion", "1.0", 3};
    headers[n++] = (struct wa_kafka_header){"ce_id", ev->id, strlen(ev->id)};
    headers[n++] = (struct wa_kafka_header){"ce_type", ev->type, strlen(ev->type)};
    headers[n++] = (struct wa_kafka_header){"ce_source", ev->source, strlen(ev->source)};
    if (ev->traceparent != NULL && *ev->traceparent != '\0') {
        headers[n++] =
            (struct wa_kafka_header){"traceparent", ev->traceparent, strlen(ev->traceparent)};
    }
    err = wa_kafka_produce(p, topic, ev->subject, ev->subject != NULL ? strlen(ev->subject) : 0,
                           body.data, body.len, headers, n, cb, arg);
out:
    wa_buf_cleanup(&body);
    return err;
}

enum wa_err
wa_kafka_producer_flush(struct wa_kafka_producer *p, int timeout_ms)
{
    rd_kafka_resp_err_t rerr = rd_kafka_flush(p->rk, timeout_ms);

    return rerr == RD_KAFKA_RESP_ERR_NO_ERROR && p->outq == 0 ? WA_OK : WA_ETIMEDOUT;
}

bool
wa_kafka_producer_ready(const struct wa_kafka_producer *p)
{
    return p->ready && !p->fatal && !p->closed;
}

size_t
wa_kafka_producer_outq(const struct wa_kafka_producer *p)
{
    return p->outq;
}
