/*
 * kafka_test.c: libs/kafka against the real broker (WA_KAFKA_BROKERS) and librdkafka's mock
 * cluster (fault injection, in addition to the real broker).
 *
 * Every test uses fresh topics and groups (wa_test_unique_prefix) and ends by checking that
 * librdkafka released everything (wa_kafka_wait_destroyed), so LeakSanitizer sees a clean exit.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/cloudevent.h"
#include "wa/kafka.h"
#include "wa_test.h"

#define WAIT_MS 30000

struct env {
    struct wa_loop *loop;
    struct wa_kafka_config cfg;
    char prefix[64];
    char topic[128];
    char group[128];
    pthread_t loop_thread;
};

struct delivery {
    int calls;
    enum wa_err err;
    int32_t partition;
    int64_t offset;
    pthread_t thread;
};

#define MAX_SEEN 64

struct seen {
    struct wa_kafka_consumer *c;
    struct wa_kafka_msg *msgs[MAX_SEEN];
    int64_t offsets[MAX_SEEN];
    size_t n;
    bool done_at_once;
    bool wrong_thread;
    pthread_t loop_thread;
};

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    const char *topics[1];
    struct wa_error error = {0};

    assert_non_null(e);
    assert_int_equal(wa_loop_new(&e->loop), WA_OK);
    e->loop_thread = pthread_self();
    wa_test_unique_prefix(e->prefix, sizeof(e->prefix));
    e->cfg.brokers = wa_test_env("WA_KAFKA_BROKERS");
    e->cfg.client_id = "wa-kafka-test";
    e->cfg.topic_prefix = e->prefix;
    assert_int_equal(wa_kafka_topic(&e->cfg, "it.events", e->topic, sizeof(e->topic)), WA_OK);
    assert_int_equal(wa_kafka_topic(&e->cfg, "group", e->group, sizeof(e->group)), WA_OK);
    topics[0] = e->topic;
    if (wa_kafka_topics_ensure(&e->cfg, topics, 1, 1, 15000, &error) != WA_OK) {
        fail_msg("topics_ensure: %s", error.message);
    }
    *state = e;
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;

    wa_loop_free(e->loop);
    free(e);
    assert_true(wa_kafka_wait_destroyed(10000));
    return 0;
}

static void
on_delivery(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct delivery *d = arg;

    d->calls++;
    d->err = err;
    d->partition = partition;
    d->offset = offset;
    d->thread = pthread_self();
}

static bool
delivered(void *arg)
{
    return ((struct delivery *)arg)->calls > 0;
}

static void
on_message(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct seen *s = arg;

    if (!pthread_equal(pthread_self(), s->loop_thread)) {
        s->wrong_thread = true;
    }
    assert_true(s->n < MAX_SEEN);
    s->offsets[s->n] = msg->offset;
    if (s->done_at_once) {
        wa_kafka_consumer_done(c, msg);
        s->msgs[s->n++] = NULL;
    } else {
        s->msgs[s->n++] = msg;
    }
}

static size_t want_seen;

static bool
seen_enough(void *arg)
{
    return ((struct seen *)arg)->n >= want_seen;
}

static struct wa_kafka_consumer *
consumer_new(struct env *e, struct seen *s)
{
    struct wa_kafka_consumer *c = NULL;
    const char *topics[] = {e->topic};
    struct wa_error error = {0};

    memset(s, 0, sizeof(*s));
    s->loop_thread = e->loop_thread;
    if (wa_kafka_consumer_new(e->loop, &e->cfg, e->group, topics, 1, on_message, s, &c, &error) !=
        WA_OK) {
        fail_msg("consumer_new: %s", error.message);
    }
    s->c = c;
    return c;
}

static void
produce_plain(struct env *e, struct wa_kafka_producer *p, int count, struct delivery *d)
{
    for (int i = 0; i < count; i++) {
        char value[32];
        int n = snprintf(value, sizeof(value), "message %d", i);

        assert_int_equal(
            wa_kafka_produce(p, e->topic, "k", 1, value, (size_t)n, NULL, 0, on_delivery, &d[i]),
            WA_OK);
    }
    want_seen = (size_t)count;
    for (int i = 0; i < count; i++) {
        assert_true(wa_test_run_until(e->loop, delivered, &d[i], WAIT_MS));
        assert_int_equal(d[i].err, WA_OK);
        assert_int_equal(d[i].calls, 1);
    }
}

/* (a) + (c): a CloudEvent goes through; callbacks run on the loop thread; done is committed. */
static void
event__produced_consumed_done__committed_and_on_loop_thread(void **state)
{
    struct env *e = *state;
    struct wa_kafka_producer *p = NULL;
    struct wa_kafka_consumer *c;
    struct wa_cloudevent ev;
    struct wa_cloudevent_doc *doc = NULL;
    struct delivery d = {0}, d2 = {0};
    struct seen s;
    char tp[WA_TRACEPARENT_LEN];
    const void *hv;
    size_t hlen = 0;
    json_t *data = json_pack("{s:s}", "text", "hello");

    assert_int_equal(wa_kafka_producer_new(e->loop, &e->cfg, &p, NULL), WA_OK);
    wa_cloudevent_init(&ev, "wa-kafka-test", "wa.test.v1");
    wa_traceparent_new(tp);
    ev.subject = "100000000000001:15551234567";
    ev.traceparent = tp;
    ev.data = data;
    assert_int_equal(wa_kafka_produce_event(p, e->topic, &ev, on_delivery, &d), WA_OK);
    assert_int_equal(wa_kafka_producer_outq(p), 1);
    assert_true(wa_test_run_until(e->loop, delivered, &d, WAIT_MS));
    assert_int_equal(d.err, WA_OK);
    assert_int_equal(d.partition, 0);
    assert_int_equal(d.offset, 0);
    assert_true(pthread_equal(d.thread, e->loop_thread));
    assert_int_equal(wa_kafka_producer_outq(p), 0);
    assert_true(wa_kafka_producer_ready(p));

    c = consumer_new(e, &s);
    want_seen = 1;
    assert_true(wa_test_run_until(e->loop, seen_enough, &s, WAIT_MS));
    assert_false(s.wrong_thread);
    assert_int_equal(s.msgs[0]->offset, 0);
    assert_int_equal(s.msgs[0]->keylen, strlen(ev.subject));
    assert_memory_equal(s.msgs[0]->key, ev.subject, s.msgs[0]->keylen);
    hv = wa_kafka_msg_header(s.msgs[0], "traceparent", &hlen);
    assert_non_null(hv);
    assert_int_equal(hlen, strlen(tp));
    assert_memory_equal(hv, tp, hlen);
    hv = wa_kafka_msg_header(s.msgs[0], "ce_id", &hlen);
    assert_non_null(hv);
    assert_memory_equal(hv, ev.id, hlen);
    assert_null(wa_kafka_msg_header(s.msgs[0], "absent", &hlen));
    assert_int_equal(wa_cloudevent_decode(s.msgs[0]->value, s.msgs[0]->len, &doc, NULL), WA_OK);
    assert_string_equal(doc->ev.id, ev.id);
    assert_string_equal(doc->ev.traceparent, tp);
    assert_true(json_equal(doc->ev.data, data));
    wa_cloudevent_doc_free(doc);
    assert_true(wa_kafka_consumer_ready(c));
    assert_int_equal(wa_kafka_consumer_in_flight(c), 1);
    wa_kafka_consumer_done(c, s.msgs[0]);
    assert_int_equal(wa_kafka_consumer_in_flight(c), 0);
    assert_int_equal(wa_kafka_consumer_close(c, NULL), WA_OK);
    wa_kafka_consumer_free(c);

    /* committed: a new member of the group starts after the first event */
    assert_int_equal(wa_kafka_produce(p, e->topic, NULL, 0, "second", 6, NULL, 0, on_delivery, &d2),
                     WA_OK);
    assert_true(wa_test_run_until(e->loop, delivered, &d2, WAIT_MS));
    assert_int_equal(d2.offset, 1);
    c = consumer_new(e, &s);
    s.done_at_once = true;
    want_seen = 1;
    assert_true(wa_test_run_until(e->loop, seen_enough, &s, WAIT_MS));
    assert_int_equal(s.offsets[0], 1);
    wa_kafka_consumer_free(c);
    assert_int_equal(wa_kafka_producer_flush(p, 5000), WA_OK);
    wa_kafka_producer_free(p);
    json_decref(data);
}

/* (b): restart resumes after the last offset whose predecessors are all done. */
static void
restart__done_out_of_order__resumes_at_first_not_done(void **state)
{
    struct env *e = *state;
    struct wa_kafka_producer *p = NULL;
    struct wa_kafka_consumer *c;
    struct delivery d[10];
    struct seen s;

    memset(d, 0, sizeof(d));
    assert_int_equal(wa_kafka_producer_new(e->loop, &e->cfg, &p, NULL), WA_OK);
    produce_plain(e, p, 10, d);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(d[i].offset, i); /* one partition, in order */
    }

    c = consumer_new(e, &s);
    want_seen = 10;
    assert_true(wa_test_run_until(e->loop, seen_enough, &s, WAIT_MS));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(s.offsets[i], i);
    }
    for (int i = 0; i < 5; i++) { /* #1..#5 in order */
        wa_kafka_consumer_done(c, s.msgs[i]);
    }
    wa_kafka_consumer_done(c, s.msgs[7]); /* #8 and #7 out of order, #6 still busy */
    wa_kafka_consumer_done(c, s.msgs[6]);
    assert_int_equal(wa_kafka_consumer_in_flight(c), 3);
    assert_int_equal(wa_kafka_consumer_close(c, NULL), WA_OK);
    wa_kafka_consumer_done(c, s.msgs[5]); /* after close: allowed, commits nothing */
    wa_kafka_consumer_free(c);            /* frees #9 and #10, never done */

    c = consumer_new(e, &s);
    s.done_at_once = true;
    want_seen = 5;
    assert_true(wa_test_run_until(e->loop, seen_enough, &s, WAIT_MS));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(s.offsets[i], 5 + i); /* #6 first; #7, #8 come again */
    }
    wa_kafka_consumer_free(c);
    wa_kafka_producer_free(p);
}

static bool
producer_ready(void *arg)
{
    return wa_kafka_producer_ready(arg);
}

static bool
in_flight_at_least_3(void *arg)
{
    return wa_kafka_consumer_in_flight(((struct seen *)arg)->c) >= 3;
}

/* max_in_flight pauses fetching; handing messages back resumes it without loss or repeat. */
static void
back_pressure__max_in_flight__pauses_then_resumes_in_order(void **state)
{
    struct env *e = *state;
    struct wa_kafka_producer *p = NULL;
    struct wa_kafka_consumer *c;
    struct delivery d[10];
    struct seen s;

    memset(d, 0, sizeof(d));
    assert_int_equal(wa_kafka_producer_new(e->loop, &e->cfg, &p, NULL), WA_OK);
    produce_plain(e, p, 10, d);
    e->cfg.max_in_flight = 3;
    c = consumer_new(e, &s);
    assert_true(wa_test_run_until(e->loop, in_flight_at_least_3, &s, WAIT_MS));
    assert_true(wa_kafka_consumer_paused(c));
    wa_test_run_for(e->loop, 1000); /* paused: nothing more may arrive */
    assert_int_equal(s.n, 3);
    for (size_t i = 0; i < 3; i++) {
        wa_kafka_consumer_done(c, s.msgs[i]);
    }
    assert_false(wa_kafka_consumer_paused(c));
    s.done_at_once = true;
    want_seen = 10;
    assert_true(wa_test_run_until(e->loop, seen_enough, &s, WAIT_MS));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(s.offsets[i], i);
    }
    wa_test_run_for(e->loop, 300);
    assert_int_equal(s.n, 10);
    wa_kafka_consumer_free(c);
    wa_kafka_producer_free(p);
}

struct lag_probe {
    struct wa_metrics *m;
    char series[192];
};

/* True once the rendered registry has the series with a value above 0. */
static bool
series_positive(void *arg)
{
    struct lag_probe *lp = arg;
    struct wa_buf out;
    const char *at;
    bool ok = false;

    wa_buf_init(&out, 0);
    assert_int_equal(wa_metrics_render(lp->m, &out), WA_OK);
    assert_int_equal(wa_buf_append(&out, "", 1), WA_OK);
    if ((at = strstr(out.data, lp->series)) != NULL) {
        ok = strtod(at + strlen(lp->series), NULL) > 0;
    }
    wa_buf_cleanup(&out);
    return ok;
}

/* cfg.metrics: acknowledged records are counted per topic; held records show as consumer lag. */
static void
metrics__produced_and_held__counted_and_lag_reported(void **state)
{
    struct env *e = *state;
    struct wa_kafka_producer *p = NULL;
    struct wa_kafka_consumer *c;
    struct delivery d[6];
    struct lag_probe lp;
    struct seen s;

    memset(d, 0, sizeof(d));
    assert_int_equal(wa_metrics_new(&lp.m), WA_OK);
    e->cfg.metrics = lp.m;
    e->cfg.probe_interval_ms = 200;
    assert_int_equal(wa_kafka_producer_new(e->loop, &e->cfg, &p, NULL), WA_OK);
    produce_plain(e, p, 6, d);
    snprintf(lp.series, sizeof(lp.series), "wa_kafka_produced_total{topic=\"%s\",outcome=\"ok\"} ",
             e->topic);
    assert_true(series_positive(&lp));
    e->cfg.max_in_flight = 2;
    c = consumer_new(e, &s);
    snprintf(lp.series, sizeof(lp.series), "wa_kafka_consumer_lag{topic=\"%s\"} ", e->topic);
    assert_true(wa_test_run_until(e->loop, series_positive, &lp, WAIT_MS));
    assert_int_equal(wa_kafka_consumer_assigned(c), 1);
    for (size_t i = 0; i < s.n; i++) {
        wa_kafka_consumer_done(c, s.msgs[i]);
    }
    wa_kafka_consumer_free(c);
    wa_kafka_producer_free(p);
    wa_metrics_free(lp.m);
}

/* (d): nobody listens on port 1: the callback reports the timeout; not ready. */
static void
producer__unreachable_broker__delivery_error_not_ready(void **state)
{
    struct env *e = *state;
    struct wa_kafka_producer *p = NULL;
    struct wa_kafka_config cfg = {.brokers = "127.0.0.1:1", .message_timeout_ms = 2000};
    struct wa_kafka_property props[] = {{"socket.timeout.ms", "1000"},
                                        {"reconnect.backoff.max.ms", "200"}};
    struct delivery d = {0};

    cfg.props = props;
    cfg.nprops = WA_ARRAY_LEN(props);
    assert_int_equal(wa_kafka_producer_new(e->loop, &cfg, &p, NULL), WA_OK);
    assert_int_equal(wa_kafka_produce(p, "wa.nowhere", "k", 1, "v", 1, NULL, 0, on_delivery, &d),
                     WA_OK);
    assert_true(wa_test_run_until(e->loop, delivered, &d, 10000));
    assert_int_equal(d.calls, 1);
    assert_int_not_equal(d.err, WA_OK);
    assert_int_equal(d.offset, -1);
    assert_true(pthread_equal(d.thread, e->loop_thread));
    assert_false(wa_kafka_producer_ready(p));
    assert_int_equal(wa_kafka_producer_outq(p), 0);
    wa_kafka_producer_free(p);
}

/* Freeing with a message outstanding calls it back with WA_ECLOSED, exactly once. */
static void
producer__freed_with_outstanding__callback_eclosed(void **state)
{
    struct env *e = *state;
    struct wa_kafka_producer *p = NULL;
    struct wa_kafka_config cfg = {.brokers = "127.0.0.1:1"};
    struct delivery d = {0};

    assert_int_equal(wa_kafka_producer_new(e->loop, &cfg, &p, NULL), WA_OK);
    assert_int_equal(wa_kafka_produce(p, "wa.nowhere", NULL, 0, "v", 1, NULL, 0, on_delivery, &d),
                     WA_OK);
    wa_kafka_producer_free(p);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.err, WA_ECLOSED);
}

/* (e) mock cluster: retriable produce errors are retried to success; all brokers down fails. */
static void
mock__produce_errors_then_brokers_down__retried_then_failed(void **state)
{
    struct env *e = *state;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *owner;
    rd_kafka_mock_cluster_t *mc;
    struct wa_kafka_producer *p = NULL;
    struct wa_kafka_config cfg = {.message_timeout_ms = 3000};
    struct wa_kafka_property props[] = {{"reconnect.backoff.max.ms", "200"}};
    struct delivery d1 = {0}, d2 = {0};
    char errstr[256];

    owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(owner);
    mc = rd_kafka_mock_cluster_new(owner, 3);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "mock.events", 1, 3), 0);
    cfg.brokers = rd_kafka_mock_cluster_bootstraps(mc);
    cfg.props = props;
    cfg.nprops = WA_ARRAY_LEN(props);
    /* ApiKey 0 is Produce */
    rd_kafka_mock_push_request_errors(mc, 0, 3, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    assert_int_equal(wa_kafka_producer_new(e->loop, &cfg, &p, NULL), WA_OK);
    assert_int_equal(wa_kafka_produce(p, "mock.events", "k", 1, "v1", 2, NULL, 0, on_delivery, &d1),
                     WA_OK);
    assert_true(wa_test_run_until(e->loop, delivered, &d1, WAIT_MS));
    assert_int_equal(d1.err, WA_OK);
    assert_int_equal(d1.offset, 0);
    assert_true(wa_test_run_until(e->loop, producer_ready, p, 5000));

    for (int32_t b = 1; b <= 3; b++) {
        rd_kafka_mock_broker_set_down(mc, b);
    }
    assert_int_equal(wa_kafka_produce(p, "mock.events", "k", 1, "v2", 2, NULL, 0, on_delivery, &d2),
                     WA_OK);
    assert_true(wa_test_run_until(e->loop, delivered, &d2, WAIT_MS));
    assert_int_not_equal(d2.err, WA_OK);
    assert_false(wa_kafka_producer_ready(p));
    wa_kafka_producer_free(p);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(owner);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(event__produced_consumed_done__committed_and_on_loop_thread,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(restart__done_out_of_order__resumes_at_first_not_done,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(back_pressure__max_in_flight__pauses_then_resumes_in_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(metrics__produced_and_held__counted_and_lag_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(producer__unreachable_broker__delivery_error_not_ready,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(producer__freed_with_outstanding__callback_eclosed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(mock__produce_errors_then_brokers_down__retried_then_failed,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
