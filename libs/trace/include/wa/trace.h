/*
 * wa/trace.h: spans recorded by the daemons and exported to an OpenTelemetry collector (Jaeger)
 * with OTLP over HTTP, JSON encoding, in batches.
 *
 * A span reuses the W3C traceparent the daemon already propagates: its trace and span ids are
 * the ones of the traceparent it put on its outgoing events (or HTTP calls), its parent is the
 * traceparent it received. So recording adds no id of its own and the spans of wa-ingest,
 * wa-router and wa-notify form one trace per inbound message.
 *
 * Sampling is by trace id (the same decision in every daemon: whole traces are kept or
 * dropped): a traceparent whose sampled flag is 0 is never recorded; otherwise the trace is
 * kept when its last 8 bytes, as an integer, fall below sample_percent of the range.
 *
 * Export never blocks and never fails the caller: a finished span is encoded into the current
 * batch; a batch is POSTed to <endpoint>/v1/traces through wa::httpc (asynchronous, on the loop)
 * when it holds batch_max spans or flush_ms passed; one POST at a time. Spans beyond queue_max
 * waiting (collector slow or away) are dropped and counted (wa_tracer_dropped).
 *
 * Threading: loop thread only. Ownership: the tracer copies what it keeps.
 */
#ifndef WA_TRACE_H
#define WA_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/err.h"
#include "wa/loop.h"
#include "wa/metrics.h"

struct wa_tracer;

struct wa_trace_config {
    const char *service;  /* required: resource attribute service.name, e.g. "wa-ingest" */
    const char *endpoint; /* required: collector base URL, e.g. "http://127.0.0.1:4318" */
    int sample_percent;   /* 0..100 of traces recorded */
    unsigned batch_max;   /* spans per POST; default 256 */
    unsigned flush_ms;    /* longest a span waits; default 1000 */
    size_t queue_max;     /* spans waiting at most; default 8192 */
    /* Optional (borrowed, must outlive the tracer): wa_trace_spans_total{outcome="exported" |
       "dropped"} counts what wa_tracer_exported / wa_tracer_dropped report. */
    struct wa_metrics *metrics;
};

/* One attribute. Exactly one of str (not NULL) or num is the value. Borrowed for the call. */
struct wa_trace_attr {
    const char *key;
    const char *str;
    int64_t num;
};

/* Returns a new tracer in *out; free with wa_tracer_free(). WA_EINVAL (config), WA_ENOMEM. */
enum wa_err wa_tracer_new(struct wa_loop *loop, const struct wa_trace_config *cfg,
                          struct wa_tracer **out, struct wa_error *error);

/* Frees; spans not yet exported (at most flush_ms of them) are dropped. Accepts NULL. */
void wa_tracer_free(struct wa_tracer *t);

/* True when spans of traceparent tp are recorded (t NULL, tp invalid or not sampled: false). */
bool wa_tracer_sampled(const struct wa_tracer *t, const char *tp);

/*
 * Records one finished span named name (copied): ids from tp, parent span id from parent (NULL
 * or invalid: a root span), times in ns since the Unix epoch, attributes (copied), error (NULL
 * for status OK; else status ERROR with this message). Does nothing when t is NULL or the
 * trace is not sampled.
 */
void wa_tracer_span(struct wa_tracer *t, const char *name, const char *tp, const char *parent,
                    uint64_t start_ns, uint64_t end_ns, const struct wa_trace_attr *attrs,
                    size_t nattrs, const char *error);

/* Spans recorded, exported (acknowledged with 2xx) and dropped so far. */
uint64_t wa_tracer_recorded(const struct wa_tracer *t);
uint64_t wa_tracer_exported(const struct wa_tracer *t);
uint64_t wa_tracer_dropped(const struct wa_tracer *t);

/* Wall-clock now in ns since the Unix epoch (CLOCK_REALTIME), for span times. */
uint64_t wa_trace_now_ns(void);

#endif
