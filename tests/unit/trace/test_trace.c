/*
 * test_trace.c: libs/trace against a local OTLP/HTTP receiver (wa::httpd on 127.0.0.1): spans
 * arrive batched as OTLP JSON with the traceparents' ids, a flush timer sends a partial batch,
 * sampling follows the sampled flag and the trace id, a collector that answers 500 costs the
 * batch (counted as dropped), never the caller.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/httpd.h"
#include "wa/trace.h"
#include "wa_test.h"

#define TP_A      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
#define TP_A2     "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
#define TP_UNSAMP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"

struct fx {
    struct wa_loop *loop;
    struct wa_httpd *httpd;
    char base[64];
    int status;   /* what the receiver answers */
    int posts;    /* requests received */
    size_t spans; /* spans received */
    json_t *last; /* the last request's body */
};

static void
on_traces(struct wa_http_req *req, void *arg)
{
    struct fx *f = arg;
    size_t len;
    const char *body = wa_http_req_body(req, &len);
    json_t *spans;

    f->posts++;
    json_decref(f->last);
    f->last = json_loadb(body, len, 0, NULL);
    assert_non_null(f->last);
    spans = json_object_get(
        json_array_get(json_object_get(json_array_get(json_object_get(f->last, "resourceSpans"), 0),
                                       "scopeSpans"),
                       0),
        "spans");
    f->spans += json_array_size(spans);
    wa_http_reply(req, f->status, "application/json", "{}", 2);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct wa_httpd_config cfg = {.listen = "127.0.0.1:0"};

    assert_non_null(f);
    f->status = 200;
    assert_int_equal(wa_loop_new(&f->loop), WA_OK);
    assert_int_equal(wa_httpd_new(f->loop, &cfg, &f->httpd, NULL), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "POST", "/v1/traces", 0, on_traces, f), WA_OK);
    assert_int_equal(wa_httpd_start(f->httpd, NULL), WA_OK);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d/", wa_httpd_port(f->httpd));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    json_decref(f->last);
    wa_httpd_free(f->httpd);
    wa_loop_free(f->loop);
    free(f);
    return 0;
}

static bool
posted(void *arg)
{
    return ((struct fx *)arg)->posts > 0;
}

static bool
two_posts(void *arg)
{
    return ((struct fx *)arg)->posts >= 2;
}

static bool
three_exported(void *arg)
{
    return wa_tracer_exported(arg) == 3;
}

static bool
one_dropped(void *arg)
{
    return wa_tracer_dropped(arg) == 1;
}

static struct wa_tracer *
tracer(struct fx *f, int percent, unsigned batch, unsigned flush_ms)
{
    struct wa_trace_config cfg = {.service = "wa-test",
                                  .endpoint = f->base,
                                  .sample_percent = percent,
                                  .batch_max = batch,
                                  .flush_ms = flush_ms};
    struct wa_tracer *t = NULL;

    assert_int_equal(wa_tracer_new(f->loop, &cfg, &t, NULL), WA_OK);
    return t;
}

static void
spans__batch_full_then_timer__otlp_json_with_ids_and_parent(void **state)
{
    struct fx *f = *state;
    struct wa_tracer *t = tracer(f, 100, 2, 300);
    const struct wa_trace_attr attrs[] = {{"messaging.destination", "wa.inbound.message", 0},
                                          {"wa.events", NULL, 3}};
    json_t *span, *rs;

    wa_tracer_span(t, "ingest receive", TP_A, NULL, 1000, 2000, attrs, 2, NULL);
    wa_tracer_span(t, "router decide", TP_A2, TP_A, 2000, 3000, NULL, 0, "rule failed");
    assert_true(wa_test_run_until(f->loop, posted, f, 10000)); /* batch of 2: sent at once */
    assert_int_equal(f->spans, 2);
    rs = json_array_get(json_object_get(f->last, "resourceSpans"), 0);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(
                json_array_get(json_object_get(json_object_get(rs, "resource"), "attributes"), 0),
                "value"),
            "stringValue")),
        "wa-test");
    span = json_array_get(
        json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0), "spans"), 1);
    assert_string_equal(json_string_value(json_object_get(span, "traceId")),
                        "0af7651916cd43dd8448eb211c80319c");
    assert_string_equal(json_string_value(json_object_get(span, "spanId")), "00f067aa0ba902b7");
    assert_string_equal(json_string_value(json_object_get(span, "parentSpanId")),
                        "b7ad6b7169203331");
    assert_string_equal(json_string_value(json_object_get(span, "startTimeUnixNano")), "2000");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(span, "status"), "code")),
                     2);
    /* one more span waits for the timer */
    wa_tracer_span(t, "notify send", TP_A2, TP_A2, 3000, 4000, attrs, 1, NULL);
    assert_true(wa_test_run_until(f->loop, two_posts, f, 10000));
    assert_int_equal(f->spans, 3);
    /* the receiver counted them; the answer to the POST reaches the tracer a moment later */
    assert_true(wa_test_run_until(f->loop, three_exported, t, 10000));
    assert_int_equal(wa_tracer_recorded(t), 3);
    assert_int_equal(wa_tracer_dropped(t), 0);
    wa_tracer_free(t);
}

static void
sampling__flag_and_percent__whole_traces(void **state)
{
    struct fx *f = *state;
    struct wa_tracer *all = tracer(f, 100, 10, 1000), *none = tracer(f, 0, 10, 1000);
    struct wa_tracer *half = tracer(f, 50, 10, 1000);

    assert_true(wa_tracer_sampled(all, TP_A));
    assert_false(wa_tracer_sampled(all, TP_UNSAMP)); /* flags 00 */
    assert_false(wa_tracer_sampled(all, "not a traceparent"));
    assert_false(wa_tracer_sampled(NULL, TP_A));
    assert_false(wa_tracer_sampled(none, TP_A));
    /* low 64 bits 8448eb211c80319c: above half the range; ...0000...01 below it */
    assert_false(wa_tracer_sampled(half, TP_A));
    assert_true(wa_tracer_sampled(half, "00-ffffffffffffffff0000000000000001-b7ad6b7169203331-01"));
    wa_tracer_span(none, "x", TP_A, NULL, 1, 2, NULL, 0, NULL);
    wa_tracer_span(NULL, "x", TP_A, NULL, 1, 2, NULL, 0, NULL);
    assert_int_equal(wa_tracer_recorded(none), 0);
    wa_tracer_free(all);
    wa_tracer_free(none);
    wa_tracer_free(half);
}

static void
collector_fails__batch_dropped_and_counted(void **state)
{
    struct fx *f = *state;
    struct wa_metrics *m = NULL;
    struct wa_trace_config cfg = {
        .service = "wa-test", .endpoint = f->base, .sample_percent = 100, .batch_max = 1};
    struct wa_trace_config bad = {.service = "x", .endpoint = "", .sample_percent = 100};
    struct wa_tracer *t = NULL, *none = NULL;
    struct wa_buf out;

    assert_int_equal(wa_metrics_new(&m), WA_OK);
    cfg.metrics = m;
    assert_int_equal(wa_tracer_new(f->loop, &cfg, &t, NULL), WA_OK);

    f->status = 500;
    wa_tracer_span(t, "ingest receive", TP_A, NULL, 1, 2, NULL, 0, NULL);
    assert_true(wa_test_run_until(f->loop, one_dropped, t, 10000));
    assert_int_equal(f->posts, 1);
    assert_int_equal(wa_tracer_exported(t), 0);
    wa_buf_init(&out, 0);
    assert_int_equal(wa_metrics_render(m, &out), WA_OK);
    assert_int_equal(wa_buf_append(&out, "", 1), WA_OK);
    assert_non_null(strstr(out.data, "wa_trace_spans_total{outcome=\"dropped\"} 1\n"));
    assert_non_null(strstr(out.data, "wa_trace_spans_total{outcome=\"exported\"} 0\n"));
    wa_buf_cleanup(&out);
    wa_tracer_free(t);
    wa_metrics_free(m);
    assert_int_equal(wa_tracer_new(f->loop, &bad, &none, NULL), WA_EINVAL);
    assert_null(none);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(spans__batch_full_then_timer__otlp_json_with_ids_and_parent,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(sampling__flag_and_percent__whole_traces, setup, teardown),
        cmocka_unit_test_setup_teardown(collector_fails__batch_dropped_and_counted, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
