/*
 * send.c: stage 5 of 7. Input: a claimed request (idempotency.c). Output: its answer,
 * classified (classify.c) and routed: accepted or permanent -> the record (idempotency.c) ->
 * result.c; retryable -> retry.c; token errors stop the number (health.c shows it).
 *
 * One libcurl multi handle (libs/httpc) driven by the loop: many requests in flight
 * (WA_NOTIFY_MAX_HTTP), kept-alive connections, HTTP/2 multiplexing when the server offers it,
 * TLS verification always on, a whole-request timeout (WA_NOTIFY_HTTP_TIMEOUT). A timeout is
 * ambiguous (Meta may have accepted the message): it is retried like Meta advises (§2.4) and
 * the request_id in biz_opaque_callback_data lets status webhooks reconcile a duplicate.
 *
 * Threading: loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify.h"
#include "wa/clock.h"
#include "wa/log.h"
#include "wa/trace.h"

enum wa_err
nt_send_init(struct nt *nt, struct wa_error *error)
{
    struct wa_httpc_config hc;

    memset(&hc, 0, sizeof(hc));
    hc.max_connections = (unsigned)nt->cfg->max_http;
    hc.max_per_host = (unsigned)nt->cfg->max_http;
    hc.timeout_ms = (unsigned)nt->cfg->http_timeout_ms;
    hc.connect_timeout_ms = 5000;
    hc.max_response = 64 * 1024;
    return wa_httpc_new(nt->loop, &hc, &nt->http, error);
}

static void
log_attempt(struct nt_req *r, double latency_s)
{
    const struct nt_answer *a = &r->ans;
    char when[WA_RFC3339_LEN];
    json_t *e;

    if (r->history == NULL && (r->history = json_array()) == NULL) {
        return;
    }
    wa_clock_rfc3339(wa_clock_wall_ms(), when);
    e = json_pack("{s:s, s:i, s:i, s:o, s:s, s:s, s:f}", "at", when, "attempt", (int)r->attempts,
                  "http_status", (int)a->http_status, "code",
                  a->has_code ? json_integer(a->code) : json_null(), "title", a->title, "details",
                  a->details, "latency_ms", latency_s * 1e3);
    if (e != NULL) {
        json_array_append_new(r->history, e);
    }
}

/* The Cloud API call's span, a child of the request's (wa/trace.h). */
static void
record_call_span(const struct nt_req *r, const struct wa_httpc_result *res,
                 const struct nt_answer *a)
{
    struct wa_tracer *t = wa_service_tracer(r->nt->svc);
    const struct wa_trace_attr attrs[] = {{"http.request.method", "POST", 0},
                                          {"http.response.status_code", NULL, res->status},
                                          {"wa.code", NULL, a->has_code ? a->code : 0},
                                          {"wa.attempt", NULL, (int64_t)r->attempts}};
    uint64_t end_ns = wa_trace_now_ns(), took_ns = (uint64_t)(res->total_s * 1e9);

    if (!wa_tracer_sampled(t, r->call_tp)) {
        return;
    }
    wa_tracer_span(t, "notify Cloud API POST /messages", r->call_tp, r->traceparent,
                   end_ns - (took_ns < end_ns ? took_ns : 0), end_ns, attrs, WA_ARRAY_LEN(attrs),
                   a->outcome == NT_ACCEPTED ? NULL
                   : res->err != WA_OK       ? res->message
                                             : "the Cloud API answered an error");
}

static void
on_done(const struct wa_httpc_result *res, void *arg)
{
    struct nt_req *r = arg;
    struct nt *nt = r->nt;
    struct nt_number *num = r->num;
    struct nt_answer *a = &r->ans;
    struct wa_log_ctx ctx = {r->rq.request_id, r->trace_id, NULL};

    r->call = NULL;
    nt->http_inflight--;
    wa_gauge_set(nt->g_http, (double)nt->http_inflight);
    nt_classify(res->err, res->message, res->status, res->body, res->body_len, a);
    wa_histogram_observe(nt->h_latency, res->total_s);
    nt_breaker_record(&nt->breaker, a->breaker_failure, wa_loop_now(nt->loop));
    wa_gauge_set(nt->g_breaker, nt_breaker_state(&nt->breaker, wa_loop_now(nt->loop)));
    log_attempt(r, res->total_s);
    record_call_span(r, res, a);
    nt_health_count_send(nt, a->outcome == NT_ACCEPTED ? "accepted" : "error", a->has_code,
                         a->code);
    switch (a->outcome) {
    case NT_ACCEPTED:
        num->throttle_x = 0;
        nt_idem_record(r, "sent");
        break;
    case NT_PERMANENT:
        r->reason = "rejected";
        nt_idem_record(r, "failed");
        break;
    case NT_TOKEN:
        if (!num->token_bad) {
            num->token_bad = true;
            wa_gauge_set(num->stopped, 1);
            wa_log_error(&ctx,
                         "access token rejected (code %lld) for %s: number stopped until "
                         "the token is replaced (SIGHUP)",
                         (long long)a->code, num->id);
        }
        nt_idem_record(r, "retry");
        nt_retry_handle(r);
        break;
    default:
        if (nt_retry_exhausted(r)) {
            r->reason = "retries_exhausted";
            nt_idem_record(r, "failed");
        } else {
            nt_idem_record(r, "retry");
            nt_retry_handle(r);
        }
        break;
    }
    nt_pace_pump(num);
}

void
nt_send_start(struct nt_req *r)
{
    struct nt *nt = r->nt;
    char url[1024], auth[1100];
    struct wa_httpc_header headers[3] = {
        {"Authorization", auth}, {"Content-Type", "application/json"}, {"traceparent", r->call_tp}};
    struct wa_httpc_request rq;
    struct wa_error error = {0};

    r->state = NT_REQ_SEND;
    if (r->traceparent[0] != '\0') {
        wa_traceparent_child(r->traceparent, r->call_tp); /* this attempt's span */
    }
    if (r->body_json == NULL && (r->body_json = wa_json_dump(r->body)) == NULL) {
        nt->http_inflight--;
        nt_result_failed(r, "internal", false, 0, "out of memory", "cannot encode the body");
        return;
    }
    snprintf(url, sizeof(url), "%s/%s/messages", nt->cfg->graph_url, r->rq.phone_number_id);
    snprintf(auth, sizeof(auth), "Bearer %s", r->num->token);
    memset(&rq, 0, sizeof(rq));
    rq.method = "POST";
    rq.url = url;
    rq.headers = headers;
    rq.nheaders = r->traceparent[0] != '\0' ? 3 : 2;
    rq.body = r->body_json;
    rq.body_len = strlen(r->body_json);
    rq.body_borrowed = true;
    wa_histogram_observe(nt->h_req_to_send, (double)(wa_clock_mono_us() - r->consumed_us) / 1e6);
    if (wa_httpc_send(nt->http, &rq, on_done, r, &r->call, &error) != WA_OK) {
        struct wa_httpc_result res = {
            .err = error.code != WA_OK ? error.code : WA_EIO, .message = error.message, .body = ""};

        r->call = NULL;
        on_done(&res, r); /* as a transport failure; gives the HTTP slot back */
    }
}
