/*
 * read.c: wactl's Kafka reading and writing, and how a record is matched and printed.
 *
 * wx_read joins a new consumer group ("wactl-<ULID>", never reused) so it disturbs no daemon
 * and starts where asked (earliest, or latest for a live tail). Every record is handed back at
 * once (its offset is committed to that throw-away group). A 100 ms timer checks the stop
 * conditions: idle time counts from the later of the last record and the first assignment,
 * so a slow group join is not mistaken for an empty topic.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wa/id.h"
#include "wa/json.h"
#include "wa/log.h"
#include "wactl.h"

struct reader {
    struct wx *x;
    struct wa_loop *loop;
    struct wa_kafka_consumer *consumer;
    wx_record_fn fn;
    void *arg;
    uint64_t start, last, assigned_at;
    int64_t idle_ms, timeout_ms, seen;
    bool stop, timed_out;
};

static volatile sig_atomic_t interrupted;

static void
on_sigint(int signo)
{
    (void)signo;
    interrupted = 1;
}

static void
on_message(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct reader *rd = arg;
    struct wa_cloudevent_doc *doc = NULL;
    struct wx_record r = {0};
    char trace[WA_TRACE_ID_LEN] = "";

    rd->last = wa_loop_now(rd->loop);
    if (!rd->stop) {
        r.topic = msg->topic;
        r.partition = msg->partition;
        r.offset = msg->offset;
        r.timestamp_ms = msg->timestamp_ms;
        r.key = msg->key;
        r.keylen = msg->key != NULL ? msg->keylen : 0;
        r.value = msg->value != NULL ? msg->value : "";
        r.len = msg->value != NULL ? msg->len : 0;
        if (wa_cloudevent_decode(r.value, r.len, &doc, NULL) == WA_OK) {
            r.ev = &doc->ev;
            if (doc->ev.traceparent != NULL) {
                (void)wa_traceparent_trace_id(doc->ev.traceparent, trace);
            }
        }
        r.trace_id = trace;
        if (!rd->fn(&r, rd->arg)) {
            rd->stop = true;
        }
        rd->seen++;
        wa_cloudevent_doc_free(doc);
    }
    wa_kafka_consumer_done(c, msg);
    if (rd->stop) {
        wa_loop_stop(rd->loop);
    }
}

static void
on_tick(struct wa_timer *t, void *arg)
{
    struct reader *rd = arg;
    uint64_t now = wa_loop_now(rd->loop);

    (void)t;
    if (rd->assigned_at == 0 && wa_kafka_consumer_assigned(rd->consumer) > 0) {
        rd->assigned_at = now;
    }
    if (interrupted || rd->stop) {
        wa_loop_stop(rd->loop);
    } else if (rd->timeout_ms > 0 && now - rd->start >= (uint64_t)rd->timeout_ms) {
        rd->timed_out = rd->assigned_at == 0;
        wa_loop_stop(rd->loop);
    } else if (rd->idle_ms > 0 && rd->assigned_at != 0 &&
               now - (rd->last > rd->assigned_at ? rd->last : rd->assigned_at) >=
                   (uint64_t)rd->idle_ms) {
        wa_loop_stop(rd->loop);
    }
}

int
wx_read(struct wx *x, const char *const *topics, size_t n, bool from_beginning, int64_t idle_ms,
        int64_t timeout_ms, wx_record_fn fn, void *arg)
{
    const struct wa_kafka_property props[] = {
        {"auto.offset.reset", from_beginning ? "earliest" : "latest"},
        {"session.timeout.ms", "6000"},
    };
    struct wa_kafka_config kc = {.brokers = x->brokers,
                                 .client_id = "wactl",
                                 .security = x->security,
                                 .topic_prefix = x->prefix,
                                 .props = props,
                                 .nprops = WA_ARRAY_LEN(props)};
    struct reader rd = {.x = x, .fn = fn, .arg = arg, .idle_ms = idle_ms, .timeout_ms = timeout_ms};
    char full[16][256], group[64], ulid[WA_ULID_LEN];
    const char *names[16];
    struct wa_timer *tick = NULL;
    struct wa_error error = {0};
    struct sigaction sa = {0};
    int rc = WX_OK;

    if (n > WA_ARRAY_LEN(full)) {
        return WX_USAGE;
    }
    for (size_t i = 0; i < n; i++) {
        if (wa_kafka_topic(&kc, topics[i], full[i], sizeof(full[i])) != WA_OK) {
            fprintf(stderr, "wactl: bad topic name '%s'\n", topics[i]);
            return WX_USAGE;
        }
        names[i] = full[i];
    }
    wa_ulid_new(ulid);
    snprintf(group, sizeof(group), "wactl-%s", ulid);
    if (wa_loop_new(&rd.loop) != WA_OK) {
        fprintf(stderr, "wactl: cannot create the event loop\n");
        return WX_UNAVAIL;
    }
    if (wa_kafka_consumer_new(rd.loop, &kc, group, names, n, on_message, &rd, &rd.consumer,
                              &error) != WA_OK) {
        fprintf(stderr, "wactl: kafka consumer: %s\n", error.message);
        rc = error.code == WA_ECONFIG || error.code == WA_EINVAL ? WX_USAGE : WX_UNAVAIL;
        goto out;
    }
    if ((tick = wa_timer_new(rd.loop, on_tick, &rd)) == NULL) {
        rc = WX_UNAVAIL;
        goto out;
    }
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rd.start = rd.last = wa_loop_now(rd.loop);
    wa_timer_start(tick, 100, 100);
    if (wa_loop_run(rd.loop) != WA_OK) {
        rc = WX_UNAVAIL;
    }
    if (rd.timed_out || (rd.assigned_at == 0 && !rd.stop && !interrupted)) {
        fprintf(stderr, "wactl: no partition of %s was assigned within %lld ms (is Kafka at %s?)\n",
                names[0], (long long)timeout_ms, x->brokers);
        rc = WX_UNAVAIL;
    }
out:
    wa_timer_free(tick);
    if (rd.consumer != NULL) {
        (void)wa_kafka_consumer_close(rd.consumer, NULL);
    }
    wa_kafka_consumer_free(rd.consumer);
    wa_loop_free(rd.loop);
    return rc;
}

struct produced {
    struct wa_loop *loop;
    enum wa_err err;
    bool done;
};

static void
on_delivery(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct produced *p = arg;

    (void)partition;
    (void)offset;
    p->err = err;
    p->done = true;
    wa_loop_stop(p->loop);
}

int
wx_produce(struct wx *x, const char *topic, const char *key, const struct wa_cloudevent *ev)
{
    struct wa_kafka_config kc = {.brokers = x->brokers,
                                 .client_id = "wactl",
                                 .security = x->security,
                                 .topic_prefix = x->prefix,
                                 .message_timeout_ms = 10000};
    struct wa_kafka_producer *p = NULL;
    struct produced pr = {0};
    struct wa_cloudevent e = *ev;
    struct wa_error error = {0};
    char full[256];
    int rc = WX_UNAVAIL;

    e.subject = key;
    if (wa_kafka_topic(&kc, topic, full, sizeof(full)) != WA_OK || wa_loop_new(&pr.loop) != WA_OK) {
        return WX_USAGE;
    }
    if (wa_kafka_producer_new(pr.loop, &kc, &p, &error) != WA_OK) {
        fprintf(stderr, "wactl: kafka producer: %s\n", error.message);
        goto out;
    }
    if (wa_kafka_produce_event(p, full, &e, on_delivery, &pr) != WA_OK) {
        fprintf(stderr, "wactl: cannot produce to %s\n", full);
        goto out;
    }
    (void)wa_loop_run(pr.loop);
    if (pr.done && pr.err == WA_OK) {
        rc = WX_OK;
    } else {
        fprintf(stderr, "wactl: %s did not acknowledge the event: %s\n", full, wa_err_name(pr.err));
    }
out:
    wa_kafka_producer_free(p);
    wa_loop_free(pr.loop);
    return rc;
}

bool
wx_match(const struct wx *x, const struct wx_record *r)
{
    const struct wa_cloudevent *ev = r->ev;

    if (x->conversation != NULL &&
        (ev == NULL || ev->subject == NULL || strcmp(ev->subject, x->conversation) != 0)) {
        return false;
    }
    if (x->type != NULL && (ev == NULL || strcmp(ev->type, x->type) != 0)) {
        return false;
    }
    if (x->trace != NULL && strcasecmp(r->trace_id, x->trace) != 0) {
        return false;
    }
    if (x->request_id != NULL) {
        const char *id = ev != NULL ? wa_json_str(ev->data, "request_id") : NULL;

        if (id == NULL || strcmp(id, x->request_id) != 0) {
            return false;
        }
    }
    return true;
}

/* A one-line summary of well-known data fields, in a fixed order. */
static void
print_summary(FILE *out, const json_t *data)
{
    static const char *const fields[] = {
        "wamid",     "request_id", "status",          "type",  "to",
        "contact",   "reason",     "phone_number_id", "field", "raw_id",
        "text.body", "error.code", "error.title",
    };
    const char *sep = "";

    for (size_t i = 0; i < WA_ARRAY_LEN(fields); i++) {
        json_t *v = wa_json_path(data, fields[i]);
        char *s;

        if (v == NULL || json_is_null(v)) {
            continue;
        }
        if (json_is_string(v)) {
            fprintf(out, "%s%s=%s", sep, fields[i], json_string_value(v));
        } else if (json_is_integer(v)) {
            fprintf(out, "%s%s=%" JSON_INTEGER_FORMAT, sep, fields[i], json_integer_value(v));
        } else if ((s = wa_json_dump(v)) != NULL) {
            fprintf(out, "%s%s=%.80s", sep, fields[i], s);
            free(s);
        }
        sep = " ";
    }
    if (json_is_object(data) && json_object_get(data, "message") != NULL) {
        const char *body = wa_json_path_str(data, "message.text.body");

        if (body != NULL) {
            fprintf(out, "%stext=%.80s", sep, body);
        }
    }
}

void
wx_print_record(const struct wx *x, const struct wx_record *r, FILE *out)
{
    char when[32] = "-";
    time_t secs;
    struct tm tm;

    if (x->json) {
        fprintf(out, "%.*s\n", (int)r->len, r->value);
        return;
    }
    if (r->timestamp_ms >= 0) {
        secs = (time_t)(r->timestamp_ms / 1000);
        gmtime_r(&secs, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    }
    if (r->ev == NULL) {
        fprintf(out, "%s.%03dZ %s[%d]@%" PRId64 " (not a CloudEvent, %zu bytes)\n", when,
                (int)(r->timestamp_ms % 1000), r->topic, r->partition, r->offset, r->len);
        return;
    }
    fprintf(out, "%s.%03dZ %s[%d]@%" PRId64 " %s subject=%s id=%s trace=%s\n    ", when,
            (int)(r->timestamp_ms >= 0 ? r->timestamp_ms % 1000 : 0), r->topic, r->partition,
            r->offset, r->ev->type, r->ev->subject != NULL ? r->ev->subject : "-", r->ev->id,
            r->trace_id[0] != '\0' ? r->trace_id : "-");
    print_summary(out, r->ev->data);
    fprintf(out, "\n");
}
