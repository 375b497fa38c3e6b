/*
 * trace.c: span recording and OTLP/HTTP JSON export (wa/trace.h, docs/internals/trace.md).
 *
 * Spans are encoded as they end into `batch` (a comma-separated list of OTLP span objects);
 * a flush wraps the list into one ExportTraceServiceRequest
 *   {"resourceSpans":[{"resource":{"attributes":[service.name]},
 *                      "scopeSpans":[{"scope":{"name":"wabridge"},"spans":[...]}]}]}
 * moves it to `body` and POSTs it; the next flush waits until that POST answered. OTLP's JSON
 * encoding writes trace and span ids as hex and times as decimal strings of nanoseconds.
 */
#include "wa/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wa/buf.h"
#include "wa/cloudevent.h"
#include "wa/httpc.h"
#include "wa/log.h"

struct wa_tracer {
    struct wa_loop *loop;
    struct wa_httpc *http;
    struct wa_timer *timer;
    char *service;
    char url[512];
    uint64_t threshold; /* sampled when the trace id's low 64 bits are below it */
    bool all;           /* 100%: every sampled-flag trace */
    unsigned batch_max;
    size_t queue_max;
    struct wa_buf batch; /* encoded spans, comma separated */
    size_t nbatch;
    struct wa_buf body; /* the request in flight */
    size_t nbody;
    struct wa_httpc_call *call;
    uint64_t recorded, exported, dropped;
    struct wa_counter *c_exported, *c_dropped; /* NULL without a registry */
    struct wa_log_limit warn_limit;
};

uint64_t
wa_trace_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void flush(struct wa_tracer *t);

static void
drop(struct wa_tracer *t, size_t n)
{
    t->dropped += n;
    wa_counter_add(t->c_dropped, n);
}

static void
on_exported(const struct wa_httpc_result *res, void *arg)
{
    struct wa_tracer *t = arg;
    uint64_t skipped;

    t->call = NULL;
    if (res->err == WA_OK && res->status >= 200 && res->status < 300) {
        t->exported += t->nbody;
        wa_counter_add(t->c_exported, t->nbody);
    } else {
        drop(t, t->nbody);
        if (wa_log_limit_pass(&t->warn_limit, &skipped)) {
            wa_log_warn(NULL, "trace export to %s failed (%s, HTTP %ld): %zu spans dropped", t->url,
                        res->message, res->status, t->nbody);
        }
    }
    wa_buf_reset(&t->body);
    t->nbody = 0;
    if (t->nbatch >= t->batch_max) {
        flush(t);
    }
}

static void
flush(struct wa_tracer *t)
{
    static const struct wa_httpc_header json = {"Content-Type", "application/json"};
    struct wa_httpc_request rq = {.method = "POST",
                                  .url = t->url,
                                  .headers = &json,
                                  .nheaders = 1,
                                  .body_borrowed = true,
                                  .timeout_ms = 5000};
    struct wa_error error = {0};

    if (t->call != NULL || t->nbatch == 0) {
        return;
    }
    wa_buf_reset(&t->body);
    if (wa_buf_append_str(&t->body, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
                                    "\"service.name\",\"value\":{\"stringValue\":") != WA_OK ||
        wa_buf_append_json_string(&t->body, t->service, strlen(t->service)) != WA_OK ||
        wa_buf_append_str(&t->body, "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"wabridge\"},"
                                    "\"spans\":[") != WA_OK ||
        wa_buf_append(&t->body, t->batch.data, t->batch.len) != WA_OK ||
        wa_buf_append_str(&t->body, "]}]}]}") != WA_OK) {
        drop(t, t->nbatch);
        goto reset;
    }
    t->nbody = t->nbatch;
    rq.body = t->body.data;
    rq.body_len = t->body.len;
    if (wa_httpc_send(t->http, &rq, on_exported, t, &t->call, &error) != WA_OK) {
        drop(t, t->nbody);
        t->nbody = 0;
        t->call = NULL;
    }
reset:
    wa_buf_reset(&t->batch);
    t->nbatch = 0;
}

static void
on_timer(struct wa_timer *timer, void *arg)
{
    (void)timer;
    flush(arg);
}

enum wa_err
wa_tracer_new(struct wa_loop *loop, const struct wa_trace_config *cfg, struct wa_tracer **out,
              struct wa_error *error)
{
    struct wa_httpc_config hc = {.max_connections = 2,
                                 .max_per_host = 2,
                                 .timeout_ms = 5000,
                                 .connect_timeout_ms = 2000,
                                 .max_response = 64 * 1024};
    struct wa_tracer *t;
    size_t elen;
    enum wa_err err;

    *out = NULL;
    if (cfg == NULL || cfg->service == NULL || cfg->endpoint == NULL || cfg->endpoint[0] == '\0' ||
        cfg->sample_percent < 0 || cfg->sample_percent > 100) {
        return wa_error_set(error, WA_EINVAL, "trace: needs a service, an endpoint and 0..100%%");
    }
    if ((t = calloc(1, sizeof(*t))) == NULL || (t->service = strdup(cfg->service)) == NULL) {
        free(t);
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    elen = strlen(cfg->endpoint);
    while (elen > 0 && cfg->endpoint[elen - 1] == '/') {
        elen--;
    }
    snprintf(t->url, sizeof(t->url), "%.*s/v1/traces", (int)elen, cfg->endpoint);
    t->loop = loop;
    t->all = cfg->sample_percent == 100;
    t->threshold = (uint64_t)((double)cfg->sample_percent / 100.0 * 18446744073709551615.0);
    t->batch_max = cfg->batch_max > 0 ? cfg->batch_max : 256;
    t->queue_max = cfg->queue_max > 0 ? cfg->queue_max : 8192;
    wa_buf_init(&t->batch, 0);
    wa_buf_init(&t->body, 0);
    t->warn_limit.interval_ms = 60000;
    t->c_exported =
        wa_metrics_counter(cfg->metrics, "wa_trace_spans_total",
                           "spans exported to the collector or dropped", "outcome=\"exported\"");
    t->c_dropped =
        wa_metrics_counter(cfg->metrics, "wa_trace_spans_total",
                           "spans exported to the collector or dropped", "outcome=\"dropped\"");
    if ((err = wa_httpc_new(loop, &hc, &t->http, error)) != WA_OK) {
        wa_tracer_free(t);
        return err;
    }
    if ((t->timer = wa_timer_new(loop, on_timer, t)) == NULL) {
        wa_tracer_free(t);
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    wa_timer_start(t->timer, cfg->flush_ms > 0 ? cfg->flush_ms : 1000,
                   cfg->flush_ms > 0 ? cfg->flush_ms : 1000);
    *out = t;
    return WA_OK;
}

void
wa_tracer_free(struct wa_tracer *t)
{
    if (t == NULL) {
        return;
    }
    wa_timer_free(t->timer);
    wa_httpc_free(t->http); /* cancels the POST in flight: its callback does not run */
    wa_buf_cleanup(&t->batch);
    wa_buf_cleanup(&t->body);
    free(t->service);
    free(t);
}

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool
wa_tracer_sampled(const struct wa_tracer *t, const char *tp)
{
    uint64_t low = 0;

    if (t == NULL || tp == NULL || !wa_traceparent_valid(tp) || (hexval(tp[54]) & 1) == 0) {
        return false; /* "00-<32>-<16>-<2>": the flags' low bit is "sampled" */
    }
    if (t->all) {
        return true;
    }
    for (int i = 19; i < 35; i++) { /* the trace id's last 16 hex digits */
        low = low << 4 | (uint64_t)hexval(tp[i]);
    }
    return low < t->threshold;
}

static enum wa_err
encode(struct wa_buf *b, const char *name, const char *tp, const char *parent, uint64_t start_ns,
       uint64_t end_ns, const struct wa_trace_attr *attrs, size_t nattrs, const char *error)
{
    enum wa_err err;

    err = wa_buf_printf(b, "{\"traceId\":\"%.32s\",\"spanId\":\"%.16s\",", tp + 3, tp + 36);
    if (err == WA_OK && parent != NULL && wa_traceparent_valid(parent)) {
        err = wa_buf_printf(b, "\"parentSpanId\":\"%.16s\",", parent + 36);
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(b, "\"name\":");
    }
    if (err == WA_OK) {
        err = wa_buf_append_json_string(b, name, strlen(name));
    }
    if (err == WA_OK) {
        err = wa_buf_printf(b,
                            ",\"kind\":1,\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":"
                            "\"%llu\",\"attributes\":[",
                            (unsigned long long)start_ns,
                            (unsigned long long)(end_ns >= start_ns ? end_ns : start_ns));
    }
    for (size_t i = 0; err == WA_OK && i < nattrs; i++) {
        err = wa_buf_printf(b, "%s{\"key\":", i > 0 ? "," : "");
        if (err == WA_OK) {
            err = wa_buf_append_json_string(b, attrs[i].key, strlen(attrs[i].key));
        }
        if (err == WA_OK && attrs[i].str != NULL) {
            err = wa_buf_append_str(b, ",\"value\":{\"stringValue\":");
            if (err == WA_OK) {
                err = wa_buf_append_json_string(b, attrs[i].str, strlen(attrs[i].str));
            }
            if (err == WA_OK) {
                err = wa_buf_append_str(b, "}}");
            }
        } else if (err == WA_OK) {
            err = wa_buf_printf(b, ",\"value\":{\"intValue\":\"%lld\"}}", (long long)attrs[i].num);
        }
    }
    if (err == WA_OK && error != NULL) {
        err = wa_buf_append_str(b, "],\"status\":{\"code\":2,\"message\":");
        if (err == WA_OK) {
            err = wa_buf_append_json_string(b, error, strlen(error));
        }
        if (err == WA_OK) {
            err = wa_buf_append_str(b, "}}");
        }
    } else if (err == WA_OK) {
        err = wa_buf_append_str(b, "],\"status\":{\"code\":1}}");
    }
    return err;
}

void
wa_tracer_span(struct wa_tracer *t, const char *name, const char *tp, const char *parent,
               uint64_t start_ns, uint64_t end_ns, const struct wa_trace_attr *attrs, size_t nattrs,
               const char *error)
{
    size_t start;

    if (!wa_tracer_sampled(t, tp) || name == NULL) {
        return;
    }
    if (t->nbatch >= t->queue_max) {
        drop(t, 1);
        return;
    }
    start = t->batch.len;
    if ((t->nbatch > 0 && wa_buf_append(&t->batch, ",", 1) != WA_OK) ||
        encode(&t->batch, name, tp, parent, start_ns, end_ns, attrs, nattrs, error) != WA_OK) {
        t->batch.len = start; /* the batch stays a valid list */
        drop(t, 1);
        return;
    }
    t->nbatch++;
    t->recorded++;
    if (t->nbatch >= t->batch_max) {
        flush(t);
    }
}

uint64_t
wa_tracer_recorded(const struct wa_tracer *t)
{
    return t != NULL ? t->recorded : 0;
}

uint64_t
wa_tracer_exported(const struct wa_tracer *t)
{
    return t != NULL ? t->exported : 0;
}

uint64_t
wa_tracer_dropped(const struct wa_tracer *t)
{
    return t != NULL ? t->dropped : 0;
}
