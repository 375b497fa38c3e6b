/*
 * ingress.c: stage 1 of 7. Input: HTTP requests on /webhook. Outputs: the handshake answer
 * (GET), or a new struct ig_request handed to ig_verify_start() (POST).
 *
 * Limits that defeat slow or greedy clients are enforced by the server before a handler runs
 * (libs/httpd: connection limit, per-connection memory bounding the headers, idle/slow
 * connection timeout, and this route's body maximum WA_INGEST_MAX_BODY -> 413). This stage adds
 * the content type check and owns the request's life: reply once, free once nothing is owed.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wa/clock.h"
#include "wa/crypto.h"
#include "wa/trace.h"

#include "ingest.h"

/* GET /webhook?hub.mode=subscribe&hub.verify_token=...&hub.challenge=... (cloud-api.md §3.1) */
static void
on_handshake(struct wa_http_req *req, void *arg)
{
    struct ig *ig = arg;
    const char *mode = wa_http_req_query(req, "hub.mode");
    const char *token = wa_http_req_query(req, "hub.verify_token");
    const char *challenge = wa_http_req_query(req, "hub.challenge");
    struct wa_log_ctx log = {.request_id = wa_http_req_id(req)};

    if (mode == NULL || strcmp(mode, "subscribe") != 0 ||
        !wa_crypto_str_equal(token, ig->cfg->verify_token)) {
        wa_log_warn(&log, "webhook handshake refused (mode or verify token wrong)");
        wa_http_reply_error(req, 403, "forbidden", "hub.mode or hub.verify_token is wrong");
        return;
    }
    if (challenge == NULL) {
        challenge = "";
    }
    wa_log_info(&log, "webhook handshake accepted");
    wa_http_reply(req, 200, "text/plain", challenge, strlen(challenge));
}

static bool
is_json(const char *content_type)
{
    static const char want[] = "application/json";
    size_t n = sizeof(want) - 1;

    if (content_type == NULL || strncasecmp(content_type, want, n) != 0) {
        return false;
    }
    return content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' ';
}

/* n random bytes from a buffer refilled from getrandom(2) (wa_random_bytes) when used up:
 * one system call per few dozen requests instead of two per request. */
static bool
random_take(struct ig *ig, unsigned char *out, size_t n)
{
    if (ig->rnd_off + n > sizeof(ig->rnd)) {
        if (wa_random_bytes(ig->rnd, sizeof(ig->rnd)) != WA_OK) {
            return false;
        }
        ig->rnd_off = 0;
    }
    memcpy(out, ig->rnd + ig->rnd_off, n);
    explicit_bzero(ig->rnd + ig->rnd_off, n); /* used once */
    ig->rnd_off += n;
    return true;
}

/* wa_traceparent_child(parent, out), with the new ids drawn from the request path's random
 * buffer when the trace starts here (no valid parent: the common case). */
static void
traceparent_start(struct ig *ig, const char *parent, char out[WA_TRACEPARENT_LEN])
{
    unsigned char b[WA_TRACEPARENT_RANDOM_LEN];

    if (parent != NULL && wa_traceparent_valid(parent)) {
        wa_traceparent_child(parent, out);
        return;
    }
    if (!random_take(ig, b, sizeof(b))) {
        wa_traceparent_new(out); /* getrandom refused: the library's own fallback */
        return;
    }
    wa_traceparent_from_random(b, out);
}

/* The server gave up on the HTTP request (shutdown): the work goes on without a reply. */
static void
on_abort(struct wa_http_req *req, void *data)
{
    struct ig_request *r = data;

    (void)req;
    r->req = NULL;
    r->body = NULL;
    r->replied = true;
    r->ig->unreplied--;
    ig_request_release(r, false);
}

static void
on_webhook(struct wa_http_req *req, void *arg)
{
    struct ig *ig = arg;
    struct ig_request *r;
    const char *parent = wa_http_req_header(req, "traceparent");

    if (!is_json(wa_http_req_header(req, "Content-Type"))) {
        wa_http_reply_error(req, 415, "unsupported_media_type", "Content-Type must be JSON");
        wa_counter_inc(ig->m.requests[IG_OUT_BAD_REQUEST]);
        return;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        wa_http_reply_error(req, 503, "unavailable", "out of memory");
        wa_counter_inc(ig->m.requests[IG_OUT_UNAVAILABLE]);
        return;
    }
    r->ig = ig;
    r->req = req;
    r->start_us = wa_clock_mono_us();
    r->received_ms = wa_clock_wall_ms();
    snprintf(r->request_id, sizeof(r->request_id), "%s", wa_http_req_id(req));
    /* The trace starts here unless a proxy in front already started one. */
    traceparent_start(ig, parent, r->traceparent);
    snprintf(r->parent, sizeof(r->parent), "%s", parent != NULL ? parent : "");
    if (wa_traceparent_trace_id(r->traceparent, r->trace_id) != WA_OK) {
        r->trace_id[0] = '\0';
    }
    r->log.request_id = r->request_id;
    r->log.trace_id = r->trace_id;
    r->body = wa_http_req_body(req, &r->len);
    wa_buf_init(&r->arena, 0);
    /* Room for the records (raw body escaped, events, envelopes) in one allocation. */
    (void)wa_buf_reserve(&r->arena, r->len * 2 + 2048);
    wa_webhook_batch_init(&r->batch);
    wa_http_req_set_data(req, r);
    wa_http_req_set_abort(req, on_abort);
    wa_http_reply_header(req, "traceparent", r->traceparent);
    ig->inflight++;
    ig->unreplied++;
    wa_gauge_set(ig->m.inflight, (double)ig->inflight);
    ig_verify_start(r);
}

enum wa_err
ig_ingress_start(struct ig *ig, struct wa_error *error)
{
    struct wa_httpd *h = wa_service_httpd(ig->svc);

    if (wa_httpd_route(h, "GET", "/webhook", 0, on_handshake, ig) != WA_OK ||
        wa_httpd_route(h, "POST", "/webhook", (size_t)ig->cfg->max_body, on_webhook, ig) != WA_OK) {
        return wa_error_set(error, WA_ENOMEM, "cannot add the /webhook routes");
    }
    return WA_OK;
}

/* The request's span, receive to answer, with the ids its events carry, and two children:
 * verify, split and dedupe (to ig_publish_start), then publish (Kafka acks or the spool's
 * fsync) (wa/trace.h). */
static void
record_span(const struct ig_request *r, int status)
{
    struct wa_tracer *t = wa_service_tracer(r->ig->svc);
    const struct wa_trace_attr attrs[] = {{"http.response.status_code", NULL, status},
                                          {"wa.records", NULL, (int64_t)r->nrecords},
                                          {"wa.request_id", r->request_id, 0}};
    const struct wa_trace_attr spooled[] = {{"wa.spooled", NULL, r->spooling ? 1 : 0}};
    uint64_t now_us = wa_clock_mono_us(), end_ns = wa_trace_now_ns(), start_ns, publish_ns;
    char error[32], child[WA_TRACEPARENT_LEN];

    if (!wa_tracer_sampled(t, r->traceparent)) {
        return;
    }
    start_ns = end_ns - (now_us - r->start_us) * 1000u;
    snprintf(error, sizeof(error), "answered %d", status);
    wa_tracer_span(t, "ingest webhook", r->traceparent, r->parent[0] ? r->parent : NULL, start_ns,
                   end_ns, attrs, WA_ARRAY_LEN(attrs), status >= 500 ? error : NULL);
    if (r->publish_us == 0) {
        return; /* refused before publishing (signature, body): the one span says it */
    }
    publish_ns = end_ns - (now_us - r->publish_us) * 1000u;
    wa_traceparent_child(r->traceparent, child);
    wa_tracer_span(t, "ingest verify, split, dedupe", child, r->traceparent, start_ns, publish_ns,
                   NULL, 0, NULL);
    wa_traceparent_child(r->traceparent, child);
    wa_tracer_span(t, "ingest publish", child, r->traceparent, publish_ns, end_ns, spooled,
                   WA_ARRAY_LEN(spooled), status >= 500 ? error : NULL);
}

void
ig_request_reply(struct ig_request *r, enum ig_outcome outcome, int status, const char *json)
{
    if (r->replied) {
        return;
    }
    r->replied = true;
    r->ig->unreplied--;
    wa_counter_inc(r->ig->m.requests[outcome]);
    record_span(r, status);
    if (r->req != NULL) {
        wa_http_req_set_abort(r->req, NULL);
        wa_http_req_set_data(r->req, NULL);
        wa_http_reply_json(r->req, status, json);
        r->req = NULL;
        r->body = NULL; /* borrowed from the HTTP request, which the server now frees */
    }
}

static void
request_free(struct ig_request *r)
{
    wa_timer_free(r->deadline);
    for (size_t i = 0; i < r->ndedup; i++) {
        free(r->dedup_keys[i]);
    }
    free(r->dedup_keys);
    free(r->dedup_state);
    free(r->ev_dedup);
    free(r->records);
    wa_buf_cleanup(&r->arena);
    /* A document from split.c's arena must be gone before its scope ends (ig_publish_encode) */
    WA_ASSERT(r->ig->json_arena.active || !wa_json_arena_owns(&r->ig->json_arena, r->batch.root));
    wa_webhook_batch_cleanup(&r->batch);
    free(r);
}

void
ig_request_release(struct ig_request *r, bool callback_done)
{
    struct ig *ig = r->ig;

    if (callback_done) {
        WA_ASSERT(r->outstanding > 0);
        r->outstanding--;
    }
    if (r->outstanding > 0 || !r->replied) {
        return;
    }
    request_free(r);
    ig->inflight--;
    wa_gauge_set(ig->m.inflight, (double)ig->inflight);
}

bool
ig_ingress_busy(const struct ig *ig)
{
    return ig->unreplied > 0; /* late Kafka reports of answered requests are not waited for */
}
