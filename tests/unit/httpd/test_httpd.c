/*
 * test_httpd.c: the HTTP server over real sockets on 127.0.0.1, with wa::httpc as the client
 * (and raw sockets where a misbehaving client is needed), everything on one wa_loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wa/clock.h"
#include "wa/httpc.h"
#include "wa/httpd.h"
#include "wa/metrics.h"
#include "wa/rest.h"
#include "wa_test.h"

/* ---- fixture ---- */

#define MAX_PENDING 256

struct fx {
    struct wa_loop *loop;
    struct wa_metrics *metrics;
    struct wa_httpd *httpd;
    struct wa_httpc *httpc;
    char base[64];
    int handler_calls;
    bool ready;
    /* requests held by the "slow" handler, answered later or never */
    struct wa_http_req *pending[MAX_PENDING];
    size_t npending;
    int aborted;
    struct wa_timer *later;
};

struct got {
    bool done;
    enum wa_err err;
    long status;
    char *body;
    char request_id[80];
    char allow[64];
    char content_type[64];
    char traceparent[64];
    uint64_t done_ms;
};

static void
on_done(const struct wa_httpc_result *res, void *arg)
{
    struct got *g = arg;
    const char *v;

    g->done = true;
    g->done_ms = wa_clock_mono_ms();
    g->err = res->err;
    g->status = res->status;
    g->body = strdup(res->body);
    if ((v = wa_httpc_result_header(res, "X-Request-Id")) != NULL) {
        snprintf(g->request_id, sizeof(g->request_id), "%s", v);
    }
    if ((v = wa_httpc_result_header(res, "Allow")) != NULL) {
        snprintf(g->allow, sizeof(g->allow), "%s", v);
    }
    if ((v = wa_httpc_result_header(res, "Content-Type")) != NULL) {
        snprintf(g->content_type, sizeof(g->content_type), "%s", v);
    }
    if ((v = wa_httpc_result_header(res, "traceparent")) != NULL) {
        snprintf(g->traceparent, sizeof(g->traceparent), "%s", v);
    }
}

static bool
is_done(void *arg)
{
    return ((struct got *)arg)->done;
}

static void
got_cleanup(struct got *g)
{
    free(g->body);
    g->body = NULL;
}

/* handlers */

static void
on_hello(struct wa_http_req *req, void *arg)
{
    struct fx *f = arg;

    f->handler_calls++;
    wa_http_reply_header(req, "X-Test", "yes");
    wa_http_reply(req, 200, "text/plain", "hi", 2);
}

static void
on_echo(struct wa_http_req *req, void *arg)
{
    struct fx *f = arg;
    size_t len;
    const char *body = wa_http_req_body(req, &len);

    f->handler_calls++;
    wa_http_reply(req, 200, "application/octet-stream", body, len);
}

static void
on_path(struct wa_http_req *req, void *arg)
{
    struct fx *f = arg;
    const char *q = wa_http_req_query(req, "q");
    char out[256];

    f->handler_calls++;
    snprintf(out, sizeof(out), "%s %s q=%s", wa_http_req_method(req), wa_http_req_path(req),
             q != NULL ? q : "-");
    wa_http_reply(req, 200, "text/plain", out, strlen(out));
}

/* Holds the request: it is answered by on_later (simulating a Kafka ack) or never. */
static void
on_slow(struct wa_http_req *req, void *arg)
{
    struct fx *f = arg;

    f->handler_calls++;
    assert_true(f->npending < MAX_PENDING);
    f->pending[f->npending++] = req;
}

static void
on_later(struct wa_timer *t, void *arg)
{
    struct fx *f = arg;
    size_t i;

    (void)t;
    for (i = 0; i < f->npending; i++) {
        wa_http_reply_json(f->pending[i], 202, "{\"accepted\":true}");
    }
    f->npending = 0;
}

static void
on_abort(struct wa_http_req *req, void *data)
{
    struct fx *f = data;
    size_t i;

    for (i = 0; i < f->npending; i++) {
        if (f->pending[i] == req) {
            f->pending[i] = f->pending[--f->npending];
            f->aborted++;
            return;
        }
    }
    fail_msg("abort for a request that is not pending");
}

static void
on_slow_abortable(struct wa_http_req *req, void *arg)
{
    struct fx *f = arg;

    wa_http_req_set_data(req, f);
    wa_http_req_set_abort(req, on_abort);
    on_slow(req, arg);
}

static bool
ready_fn(void *arg, struct wa_buf *detail)
{
    struct fx *f = arg;

    (void)wa_buf_append_str(detail, f->ready ? "{\"kafka\":\"up\"}" : "{\"kafka\":\"down\"}");
    return f->ready;
}

static int
start_server(struct fx *f, const struct wa_httpd_config *cfg_in)
{
    struct wa_httpd_config cfg = {.listen = "127.0.0.1:0", .conn_timeout_s = 5};
    struct wa_error error = {0};

    if (cfg_in != NULL) {
        cfg = *cfg_in;
    }
    cfg.metrics = f->metrics;
    assert_int_equal(wa_httpd_new(f->loop, &cfg, &f->httpd, &error), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "GET", "/hello", 0, on_hello, f), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "POST", "/echo", 0, on_echo, f), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "POST", "/small", 16, on_echo, f), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "GET", "/files/*", 0, on_path, f), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "DELETE", "/files/*", 0, on_path, f), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "POST", "/slow", 0, on_slow, f), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "POST", "/held", 0, on_slow_abortable, f), WA_OK);
    assert_int_equal(wa_httpd_serve_probes(f->httpd, ready_fn, f, f->metrics), WA_OK);
    assert_int_equal(wa_httpd_start(f->httpd, &error), WA_OK);
    assert_true(wa_httpd_port(f->httpd) > 0);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", wa_httpd_port(f->httpd));
    return 0;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct wa_httpc_config ccfg = {.timeout_ms = 10000};

    assert_non_null(f);
    f->ready = true;
    assert_int_equal(wa_loop_new(&f->loop), WA_OK);
    assert_int_equal(wa_metrics_new(&f->metrics), WA_OK);
    assert_int_equal(wa_httpc_new(f->loop, &ccfg, &f->httpc, NULL), WA_OK);
    f->later = wa_timer_new(f->loop, on_later, f);
    assert_non_null(f->later);
    *state = f;
    return 0;
}

static int
setup_started(void **state)
{
    setup(state);
    return start_server(*state, NULL);
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    wa_httpc_free(f->httpc);
    wa_httpd_free(f->httpd);
    wa_timer_free(f->later);
    wa_metrics_free(f->metrics);
    wa_loop_free(f->loop);
    free(f);
    return 0;
}

/* Sends one request and runs the loop until its answer. */
static void
request(struct fx *f, const char *method, const char *path, const char *body,
        const struct wa_httpc_header *headers, size_t nheaders, struct got *g)
{
    char url[256];
    struct wa_httpc_request rq = {0};

    snprintf(url, sizeof(url), "%s%s", f->base, path);
    rq.method = method;
    rq.url = url;
    rq.headers = headers;
    rq.nheaders = nheaders;
    rq.body = body;
    rq.body_len = body != NULL ? strlen(body) : 0;
    memset(g, 0, sizeof(*g));
    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, g, NULL, NULL), WA_OK);
    assert_true(wa_test_run_until(f->loop, is_done, g, 10000));
}

/* ---- raw sockets ---- */

static int
raw_connect(int port)
{
    struct sockaddr_in a = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void
raw_send(int fd, const char *s)
{
    size_t len = strlen(s);

    assert_int_equal(send(fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

struct raw {
    int fd;
    char buf[8192];
    size_t len;
    bool eof;
    uint64_t eof_ms;
};

/* Condition: the peer closed the connection (reads what arrives meanwhile). */
static bool
raw_closed(void *arg)
{
    struct raw *r = arg;
    ssize_t n;

    while (!r->eof) {
        n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len, MSG_DONTWAIT);
        if (n > 0) {
            r->len += (size_t)n;
            r->buf[r->len] = '\0';
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            r->eof = true;
            r->eof_ms = wa_clock_mono_ms();
        }
        break;
    }
    return r->eof;
}

/* ---- tests ---- */

static void
route__known_route__200_with_generated_request_id(void **state)
{
    struct fx *f = *state;
    struct got g;

    request(f, "GET", "/hello", NULL, NULL, 0, &g);
    assert_int_equal(g.err, WA_OK);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "hi");
    assert_int_equal(strlen(g.request_id), 26); /* a ULID */
    assert_int_equal(f->handler_calls, 1);
    got_cleanup(&g);
}

static void
route__client_request_id__is_echoed(void **state)
{
    struct fx *f = *state;
    struct wa_httpc_header h[] = {{"X-Request-Id", "abc-123.x"}};
    struct wa_httpc_header bad[] = {{"X-Request-Id", "no spaces allowed"}};
    struct got g;

    request(f, "GET", "/hello", NULL, h, 1, &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.request_id, "abc-123.x");
    got_cleanup(&g);
    request(f, "GET", "/hello", NULL, bad, 1, &g);
    assert_int_equal(g.status, 200);
    assert_int_equal(strlen(g.request_id), 26);
    got_cleanup(&g);
}

static void
route__unknown_path__404_problem(void **state)
{
    struct fx *f = *state;
    struct got g;
    char want[128];

    request(f, "GET", "/nope", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 404);
    assert_string_equal(g.content_type, "application/problem+json");
    assert_non_null(strstr(g.body, "{\"type\":\"about:blank\",\"title\":\"Not Found\","
                                   "\"status\":404,\"detail\":"));
    assert_non_null(strstr(g.body, "\"instance\":\"/nope\""));
    snprintf(want, sizeof(want), "\"request_id\":\"%s\"}", g.request_id);
    assert_non_null(strstr(g.body, want));
    assert_int_equal(f->handler_calls, 0);
    got_cleanup(&g);
}

static void
problem_errors__on__404_and_405_as_problem_json(void **state)
{
    struct fx *f = *state;
    struct got g;

    wa_httpd_problem_errors(f->httpd, true);
    request(f, "GET", "/nope", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 404);
    assert_string_equal(g.content_type, "application/problem+json");
    assert_non_null(strstr(g.body, "\"title\":\"Not Found\",\"status\":404"));
    assert_non_null(strstr(g.body, "\"instance\":\"/nope\""));
    got_cleanup(&g);
    request(f, "PUT", "/hello", "x", NULL, 0, &g);
    assert_int_equal(g.status, 405);
    assert_string_equal(g.allow, "GET");
    assert_string_equal(g.content_type, "application/problem+json");
    got_cleanup(&g);
    wa_httpd_problem_errors(f->httpd, false);
}

static void
route__wrong_method__405_with_allow(void **state)
{
    struct fx *f = *state;
    struct got g;

    request(f, "PUT", "/hello", "x", NULL, 0, &g);
    assert_int_equal(g.status, 405);
    assert_string_equal(g.allow, "GET");
    assert_non_null(strstr(g.body, "\"title\":\"Method Not Allowed\",\"status\":405"));
    got_cleanup(&g);
    request(f, "POST", "/files/a", "x", NULL, 0, &g);
    assert_int_equal(g.status, 405);
    assert_string_equal(g.allow, "GET, DELETE");
    got_cleanup(&g);
    assert_int_equal(f->handler_calls, 0);
}

static void
route__prefix__matches_longer_paths_and_decodes_query(void **state)
{
    struct fx *f = *state;
    struct got g;

    request(f, "GET", "/files/a/b.txt?q=hello%20world", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "GET /files/a/b.txt q=hello world");
    got_cleanup(&g);
    request(f, "DELETE", "/files/x", NULL, NULL, 0, &g);
    assert_string_equal(g.body, "DELETE /files/x q=-");
    got_cleanup(&g);
}

static void
body__within_limit__handler_sees_it(void **state)
{
    struct fx *f = *state;
    struct got g;

    request(f, "POST", "/echo", "{\"a\":1}", NULL, 0, &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "{\"a\":1}");
    got_cleanup(&g);
}

static void
body__content_length_above_limit__413_without_handler(void **state)
{
    struct fx *f = *state;
    struct got g;

    request(f, "POST", "/small", "0123456789abcdefXYZ", NULL, 0, &g);
    assert_int_equal(g.status, 413);
    assert_non_null(strstr(g.body, "\"title\":\"Content Too Large\",\"status\":413"));
    assert_int_equal(f->handler_calls, 0);
    got_cleanup(&g);
    request(f, "POST", "/small", "0123456789abcdef", NULL, 0, &g);
    assert_int_equal(g.status, 200);
    got_cleanup(&g);
}

static bool one_pending(void *arg);

/* The body budget is shared by every connection: while a held request keeps 80 of its 100
 * bytes, a 30-byte body is refused at once (503, Retry-After, no handler) and a 20-byte one is
 * served; once the held request is answered, its bytes are free again. */
static void
body__budget_spent_by_held_request__503_retry_after_until_released(void **state)
{
    struct fx *f = *state;
    struct wa_httpd_config cfg = {.listen = "127.0.0.1:0", .conn_timeout_s = 5, .body_budget = 100};
    char body80[81], body30[31], body20[21], url[128];
    struct got held = {0}, g;
    struct wa_httpc_request rq = {.url = url, .body = body80, .body_len = 80};

    memset(body80, 'a', 80);
    body80[80] = '\0';
    memset(body30, 'b', 30);
    body30[30] = '\0';
    memset(body20, 'c', 20);
    body20[20] = '\0';
    start_server(f, &cfg);
    snprintf(url, sizeof(url), "%s/slow", f->base);
    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &held, NULL, NULL), WA_OK);
    assert_true(wa_test_run_until(f->loop, one_pending, f, 10000));
    request(f, "POST", "/echo", body30, NULL, 0, &g);
    assert_int_equal(g.status, 503);
    assert_non_null(strstr(g.body, "\"status\":503"));
    assert_int_equal(f->handler_calls, 1); /* only the held one */
    got_cleanup(&g);
    request(f, "POST", "/echo", body20, NULL, 0, &g);
    assert_int_equal(g.status, 200);
    got_cleanup(&g);
    on_later(NULL, f); /* the held request is answered: its 80 bytes are free */
    assert_true(wa_test_run_until(f->loop, is_done, &held, 10000));
    assert_int_equal(held.status, 202);
    got_cleanup(&held);
    request(f, "POST", "/echo", body30, NULL, 0, &g);
    assert_int_equal(g.status, 200);
    got_cleanup(&g);
}

static void
body__chunked_past_limit__413_without_handler(void **state)
{
    struct fx *f = *state;
    struct raw r = {0};

    r.fd = raw_connect(wa_httpd_port(f->httpd));
    raw_send(r.fd, "POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "a\r\n0123456789\r\n");
    wa_test_run_for(f->loop, 50); /* let the first chunk be consumed on its own */
    raw_send(r.fd, "a\r\n0123456789\r\n0\r\n\r\n");
    assert_true(wa_test_run_until(f->loop, raw_closed, &r, 10000));
    assert_non_null(strstr(r.buf, "HTTP/1.1 413"));
    assert_non_null(strstr(r.buf, "\"status\":413"));
    assert_int_equal(f->handler_calls, 0);
    close(r.fd);
}

/* Condition: keeps sending chunks (without blocking) until the server closes. */
struct pump {
    struct raw r;
    size_t sent;
};

static bool
pump_until_closed(void *arg)
{
    struct pump *p = arg;
    char chunk[1024 + 16];
    int n;

    n = snprintf(chunk, sizeof(chunk), "3f8\r\n");
    memset(chunk + n, 'z', 1016);
    memcpy(chunk + n + 1016, "\r\n", 2);
    while (p->sent < 4 * 1024 * 1024 &&
           send(p->r.fd, chunk, (size_t)n + 1018, MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
        p->sent += 1016;
    }
    return raw_closed(&p->r);
}

static void
body__chunked_far_past_limit__connection_closed_without_handler(void **state)
{
    struct fx *f = *state;
    struct pump p = {{0}, 0};

    p.r.fd = raw_connect(wa_httpd_port(f->httpd));
    raw_send(p.r.fd, "POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_true(wa_test_run_until(f->loop, pump_until_closed, &p, 20000));
    assert_true(p.sent < 4 * 1024 * 1024); /* cut off, not read to the end */
    assert_null(strstr(p.r.buf, "HTTP/1.1 200"));
    assert_int_equal(f->handler_calls, 0);
    assert_int_equal(wa_httpd_inflight(f->httpd), 0);
    close(p.r.fd);
}

static void
body__chunked_within_limit__handler_sees_it(void **state)
{
    struct fx *f = *state;
    struct raw r = {0};

    r.fd = raw_connect(wa_httpd_port(f->httpd));
    raw_send(r.fd, "POST /small HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n");
    assert_true(wa_test_run_until(f->loop, raw_closed, &r, 10000));
    assert_non_null(strstr(r.buf, "HTTP/1.1 200"));
    assert_non_null(strstr(r.buf, "\r\n\r\nhelloabc"));
    close(r.fd);
}

static void
headers__too_large__rejected_by_server(void **state)
{
    struct fx *f = *state;
    struct wa_httpd_config cfg = {.listen = "127.0.0.1:0", .conn_memory = 4096};
    char big[8192];
    struct wa_httpc_header h[1];
    struct got g;

    start_server(f, &cfg);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    h[0].name = "X-Big";
    h[0].value = big;
    request(f, "GET", "/hello", NULL, h, 1, &g);
    assert_int_equal(g.err, WA_OK);
    assert_true(g.status == 431 || g.status == 413);
    assert_int_equal(f->handler_calls, 0);
    got_cleanup(&g);
}

static void
suspend__reply_from_timer__client_gets_it(void **state)
{
    struct fx *f = *state;
    struct got g = {0};
    char url[128];
    struct wa_httpc_request rq = {.url = url, .body = "event", .body_len = 5};

    snprintf(url, sizeof(url), "%s/slow", f->base);
    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g, NULL, NULL), WA_OK);
    wa_timer_start(f->later, 100, 0);
    assert_true(wa_test_run_until(f->loop, is_done, &g, 10000));
    assert_int_equal(g.status, 202);
    assert_string_equal(g.body, "{\"accepted\":true}");
    assert_int_equal(strlen(g.request_id), 26);
    assert_int_equal(wa_httpd_inflight(f->httpd), 0);
    got_cleanup(&g);
}

static void
probes__healthz_readyz_metrics(void **state)
{
    struct fx *f = *state;
    struct got g;

    request(f, "GET", "/healthz", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "{\"status\":\"ok\"}");
    got_cleanup(&g);
    request(f, "GET", "/readyz", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "{\"kafka\":\"up\"}");
    got_cleanup(&g);
    f->ready = false;
    request(f, "GET", "/readyz", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 503);
    assert_string_equal(g.body, "{\"kafka\":\"down\"}");
    got_cleanup(&g);
    request(f, "GET", "/metrics", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.content_type, "text/plain; version=0.0.4");
    assert_non_null(strstr(g.body, "wa_http_requests_total{route=\"/readyz\",method=\"GET\","
                                   "status=\"503\"} 1"));
    assert_non_null(strstr(g.body, "wa_http_request_duration_seconds_count{route=\"/healthz\"}"));
    assert_non_null(strstr(g.body, "wa_http_inflight"));
    assert_non_null(strstr(g.body, "\nwa_ready 0\n"));
    got_cleanup(&g);
    f->ready = true;
    request(f, "GET", "/metrics", NULL, NULL, 0, &g);
    assert_non_null(strstr(g.body, "\nwa_ready 1\n"));
    got_cleanup(&g);
}

static bool
all_done(void *arg)
{
    struct got *gs = arg;
    size_t i;

    for (i = 0; i < 200; i++) {
        if (!gs[i].done) {
            return false;
        }
    }
    return true;
}

static void
on_tick_reply(struct wa_timer *t, void *arg)
{
    on_later(t, arg);
}

static void
load__200_concurrent_requests__all_answered(void **state)
{
    struct fx *f = *state;
    struct got *gs = calloc(200, sizeof(*gs));
    char url_fast[128], url_slow[128];
    struct wa_timer *tick = wa_timer_new(f->loop, on_tick_reply, f);
    size_t i;

    assert_non_null(gs);
    snprintf(url_fast, sizeof(url_fast), "%s/hello", f->base);
    snprintf(url_slow, sizeof(url_slow), "%s/slow", f->base);
    for (i = 0; i < 200; i++) {
        struct wa_httpc_request rq = {.url = i % 2 ? url_slow : url_fast};
        if (i % 2) {
            rq.body = "e";
            rq.body_len = 1;
        }
        assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &gs[i], NULL, NULL), WA_OK);
    }
    assert_int_equal(wa_httpc_inflight(f->httpc), 200);
    wa_timer_start(tick, 5, 5); /* answers the suspended ones in batches */
    assert_true(wa_test_run_until(f->loop, all_done, gs, 30000));
    for (i = 0; i < 200; i++) {
        assert_int_equal(gs[i].err, WA_OK);
        assert_int_equal(gs[i].status, i % 2 ? 202 : 200);
        got_cleanup(&gs[i]);
    }
    assert_int_equal(wa_httpc_inflight(f->httpc), 0);
    assert_int_equal(wa_httpd_inflight(f->httpd), 0);
    wa_timer_free(tick);
    free(gs);
}

static void
slow_client__half_header__dropped_after_timeout_while_others_served(void **state)
{
    struct fx *f = *state;
    struct wa_httpd_config cfg = {.listen = "127.0.0.1:0", .conn_timeout_s = 1};
    struct raw r = {0};
    struct got g;
    uint64_t t0;

    start_server(f, &cfg);
    r.fd = raw_connect(wa_httpd_port(f->httpd));
    t0 = wa_clock_mono_ms();
    raw_send(r.fd, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Half");
    request(f, "GET", "/hello", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 200);
    got_cleanup(&g);
    assert_false(raw_closed(&r));
    assert_true(wa_test_run_until(f->loop, raw_closed, &r, 10000));
    assert_true(r.eof_ms - t0 >= 900);
    assert_true(g.done_ms < r.eof_ms);
    assert_int_equal(r.len, 0); /* dropped without an answer */
    assert_int_equal(f->handler_calls, 1);
    close(r.fd);
    request(f, "GET", "/hello", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 200);
    got_cleanup(&g);
}

static bool
has_pending(void *arg)
{
    struct fx *f = arg;

    return f->npending == 3;
}

static bool
one_pending(void *arg)
{
    struct fx *f = arg;

    return f->npending == 1;
}

static bool
three_done(void *arg)
{
    struct got *gs = arg;

    return gs[0].done && gs[1].done && gs[2].done;
}

static void
shutdown__suspended_requests__answered_503_and_owners_told(void **state)
{
    struct fx *f = *state;
    struct got gs[3] = {{0}};
    char url[128];
    struct wa_httpc_request rq = {.url = url, .body = "x", .body_len = 1};
    size_t i;

    snprintf(url, sizeof(url), "%s/held", f->base);
    for (i = 0; i < 3; i++) {
        assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &gs[i], NULL, NULL), WA_OK);
    }
    assert_true(wa_test_run_until(f->loop, has_pending, f, 10000));
    assert_int_equal(wa_httpd_inflight(f->httpd), 3);
    wa_httpd_free(f->httpd);
    f->httpd = NULL;
    assert_int_equal(f->aborted, 3);
    assert_int_equal(f->npending, 0);
    assert_true(wa_test_run_until(f->loop, three_done, gs, 10000));
    for (i = 0; i < 3; i++) {
        assert_int_equal(gs[i].err, WA_OK);
        assert_int_equal(gs[i].status, 503);
        assert_non_null(strstr(gs[i].body, "\"detail\":\"the server is shutting down\""));
        got_cleanup(&gs[i]);
    }
}

static void
shutdown__suspended_client_gone__no_crash(void **state)
{
    struct fx *f = *state;
    struct raw r = {0};

    r.fd = raw_connect(wa_httpd_port(f->httpd));
    raw_send(r.fd, "POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx");
    assert_true(wa_test_run_until(f->loop, one_pending, f, 10000));
    close(r.fd); /* the client leaves while its request is suspended */
    wa_test_run_for(f->loop, 50);
    assert_int_equal(wa_httpd_inflight(f->httpd), 1);
    on_later(NULL, f); /* the late reply must be safe */
    wa_test_run_for(f->loop, 100);
    assert_int_equal(wa_httpd_inflight(f->httpd), 0);
}

static void
quiesce__new_connections_refused_pending_answered(void **state)
{
    struct fx *f = *state;
    struct got slow = {0}, g;
    char url[128];
    struct wa_httpc_request rq = {.url = url, .body = "x", .body_len = 1};

    snprintf(url, sizeof(url), "%s/slow", f->base);
    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &slow, NULL, NULL), WA_OK);
    assert_true(wa_test_run_until(f->loop, one_pending, f, 10000));
    wa_httpd_quiesce(f->httpd);
    request(f, "GET", "/hello", NULL, NULL, 0, &g);
    /* the client's cached connection is busy with /slow, so this one needs a new one */
    assert_int_equal(g.err, WA_EUNAVAIL);
    got_cleanup(&g);
    on_later(NULL, f);
    assert_true(wa_test_run_until(f->loop, is_done, &slow, 10000));
    assert_int_equal(slow.status, 202);
    got_cleanup(&slow);
}

static void
listen__ipv6_loopback__serves(void **state)
{
    struct fx *f = *state;
    struct wa_httpd_config cfg = {.listen = "[::1]:0"};
    struct wa_error error = {0};
    struct got g;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};

    if (probe < 0 || bind(probe, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (probe >= 0) {
            close(probe);
        }
        skip(); /* no IPv6 loopback in this environment */
    }
    close(probe);
    cfg.metrics = f->metrics;
    assert_int_equal(wa_httpd_new(f->loop, &cfg, &f->httpd, &error), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "GET", "/hello", 0, on_hello, f), WA_OK);
    assert_int_equal(wa_httpd_start(f->httpd, &error), WA_OK);
    snprintf(f->base, sizeof(f->base), "http://[::1]:%d", wa_httpd_port(f->httpd));
    request(f, "GET", "/hello", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 200);
    got_cleanup(&g);
}

static void
config__bad_listen__rejected(void **state)
{
    struct fx *f = *state;
    struct wa_httpd_config cfg = {.listen = "no-port"};
    struct wa_httpd *h = NULL;
    struct wa_error error = {0};

    assert_int_equal(wa_httpd_new(f->loop, &cfg, &h, &error), WA_ECONFIG);
    assert_null(h);
    assert_non_null(strstr(error.message, "no-port"));
}

/* ---- the REST layer: templates, middleware, problems, trace context ---- */

/* Answers "<route> id=<id> sub=<sub> user=<attr user> q=<all q values>". */
static void
on_rest(struct wa_http_req *req, void *arg)
{
    struct fx *f = arg;
    const char *id = wa_http_req_param(req, "id"), *sub = wa_http_req_param(req, "sub");
    const char *user = wa_http_req_attr(req, "user"), *q[4];
    size_t nq = wa_http_req_query_all(req, "q", q, 4);
    char out[512];

    f->handler_calls++;
    snprintf(out, sizeof(out), "%s id=%s sub=%s user=%s q=%zu:%s,%s", wa_http_req_route(req),
             id != NULL ? id : "-", sub != NULL ? sub : "-", user != NULL ? user : "-", nq,
             nq > 0 ? q[0] : "", nq > 1 ? q[1] : "");
    wa_http_reply(req, 200, "text/plain", out, strlen(out));
}

/* Middleware 1: authentication, answered at once (401) or handed on. */
static void
mw_auth(struct wa_http_req *req, void *arg)
{
    const char *auth = wa_http_req_header(req, "Authorization");

    (void)arg;
    if (auth == NULL || strcmp(auth, "Bearer good") != 0) {
        wa_http_reply_err(req, WA_EAUTH, "a bearer token is required");
        return;
    }
    assert_int_equal(wa_http_req_set_attr(req, "user", "alice"), WA_OK);
    wa_http_next(req);
}

/* Middleware 2: "rate limiting" that waits for the loop (a timer) before handing on. */
struct wait {
    struct wa_timer *timer;
    struct wa_http_req *req;
};

static void
on_waited(struct wa_timer *t, void *arg)
{
    struct wait *w = arg;
    struct wa_http_req *req = w->req;

    (void)t;
    wa_timer_free(w->timer);
    free(w);
    if (wa_http_req_header(req, "X-Over-Limit") != NULL) {
        wa_http_reply_problem(req, 429, NULL, "slow down", NULL, 0);
        return;
    }
    wa_http_next(req);
}

static void
mw_wait(struct wa_http_req *req, void *arg)
{
    struct fx *f = arg;
    struct wait *w = calloc(1, sizeof(*w));

    assert_non_null(w);
    w->req = req;
    w->timer = wa_timer_new(f->loop, on_waited, w);
    assert_non_null(w->timer);
    wa_timer_start(w->timer, 5, 0);
}

static const char *const colors[] = {"red", "green", NULL};
static const struct wa_json_schema item_props[] = {
    {.name = "name",
     .types = WA_JSON_T_STRING,
     .flags = WA_JSON_REQUIRED,
     .min_len = 1,
     .max_len = 3},
    {.name = "color", .types = WA_JSON_T_STRING, .enums = colors},
};
static const struct wa_json_schema item_schema = {
    .types = WA_JSON_T_OBJECT, .props = item_props, .nprops = 2};

static struct wa_json_validator *item_validator;

static int
setup_rest(void **state)
{
    static const struct wa_http_route plain[] = {
        {"GET", "/v1/items/{id}", on_rest, 0},    {"DELETE", "/v1/items/{id}", on_rest, 0},
        {"GET", "/v1/items/special", on_rest, 0}, {"GET", "/v1/items/{id}/parts/{sub}", on_rest, 0},
        {"GET", "/v1/x/*", on_rest, 0},
    };
    static const struct wa_http_route guarded[] = {
        {"GET", "/v1/secret/{id}", on_rest, 0},
    };
    static const struct wa_http_route bodies[] = {
        {"POST", "/v1/items", on_rest, 0},
    };
    static const struct wa_http_route bad[] = {
        {"GET", "/v1/{a/b}", on_rest, 0},
    };
    struct fx *f;
    struct wa_httpd_config cfg = {.listen = "127.0.0.1:0", .conn_timeout_s = 5};
    struct wa_error error = {0};

    setup(state);
    f = *state;
    struct wa_http_mw chain[] = {{"auth", mw_auth, f}, {"wait", mw_wait, f}};
    struct wa_http_mw json[] = {wa_http_mw_json(NULL)};

    assert_int_equal(wa_json_validator_new(&item_schema, &item_validator, &error), WA_OK);
    json[0] = wa_http_mw_json(item_validator);
    cfg.metrics = f->metrics;
    assert_int_equal(wa_httpd_new(f->loop, &cfg, &f->httpd, &error), WA_OK);
    assert_int_equal(wa_httpd_routes(f->httpd, plain, WA_ARRAY_LEN(plain), NULL, 0, f, &error),
                     WA_OK);
    assert_int_equal(wa_httpd_routes(f->httpd, guarded, 1, chain, 2, f, &error), WA_OK);
    assert_int_equal(wa_httpd_routes(f->httpd, bodies, 1, json, 1, f, &error), WA_OK);
    assert_int_equal(wa_httpd_routes(f->httpd, bad, 1, NULL, 0, f, &error), WA_EINVAL);
    assert_non_null(strstr(error.message, "/v1/{a/b}"));
    assert_int_equal(wa_httpd_start(f->httpd, &error), WA_OK);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", wa_httpd_port(f->httpd));
    return 0;
}

static int
teardown_rest(void **state)
{
    teardown(state);
    wa_json_validator_free(item_validator);
    item_validator = NULL;
    return 0;
}

static void
rest__templates__params_decoded_and_literal_wins(void **state)
{
    struct fx *f = *state;
    struct got g;

    request(f, "GET", "/v1/items/a%2Fb%20c", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "/v1/items/{id} id=a/b c sub=- user=- q=0:,");
    got_cleanup(&g);
    request(f, "GET", "/v1/items/special", NULL, NULL, 0, &g);
    assert_string_equal(g.body, "/v1/items/special id=- sub=- user=- q=0:,");
    got_cleanup(&g);
    request(f, "GET", "/v1/items/7/parts/%2B1?q=a+b&q=%26&r", NULL, NULL, 0, &g);
    assert_string_equal(g.body, "/v1/items/{id}/parts/{sub} id=7 sub=+1 user=- q=2:a b,&");
    got_cleanup(&g);
    request(f, "GET", "/v1/x/any/thing", NULL, NULL, 0, &g);
    assert_string_equal(g.body, "/v1/x/ id=- sub=- user=- q=0:,");
    got_cleanup(&g);
}

static void
rest__bad_paths_and_methods__problems(void **state)
{
    struct fx *f = *state;
    struct got g;

    request(f, "PUT", "/v1/items/7", "x", NULL, 0, &g);
    assert_int_equal(g.status, 405);
    assert_string_equal(g.allow, "GET, DELETE");
    assert_string_equal(g.content_type, "application/problem+json");
    got_cleanup(&g);
    request(f, "GET", "/v1/items/a%00b", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 400);
    assert_non_null(strstr(g.body, "percent-encoding"));
    got_cleanup(&g);
    request(f, "GET", "/v1/items/7?q=%zz", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 400);
    assert_non_null(strstr(g.body, "query parameter q"));
    got_cleanup(&g);
    request(f, "GET", "/v1/items/", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 404);
    got_cleanup(&g);
    assert_int_equal(f->handler_calls, 0);
}

static void
rest__middleware__answers_or_resumes_from_the_loop(void **state)
{
    struct fx *f = *state;
    struct got g;
    const struct wa_httpc_header good[] = {{"Authorization", "Bearer good"}};
    const struct wa_httpc_header over[] = {{"Authorization", "Bearer good"}, {"X-Over-Limit", "1"}};

    request(f, "GET", "/v1/secret/s1", NULL, NULL, 0, &g);
    assert_int_equal(g.status, 401);
    assert_non_null(strstr(g.body, "\"title\":\"Unauthorized\""));
    got_cleanup(&g);
    request(f, "GET", "/v1/secret/s1", NULL, good, 1, &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "/v1/secret/{id} id=s1 sub=- user=alice q=0:,");
    got_cleanup(&g);
    request(f, "GET", "/v1/secret/s1", NULL, over, 2, &g);
    assert_int_equal(g.status, 429);
    got_cleanup(&g);
    assert_int_equal(f->handler_calls, 1);
}

static void
rest__json_body__every_violation_named(void **state)
{
    struct fx *f = *state;
    struct got g;
    const struct wa_httpc_header xml[] = {{"Content-Type", "application/xml"}};
    const struct wa_httpc_header js[] = {{"Content-Type", "application/json; charset=utf-8"}};

    request(f, "POST", "/v1/items", "{\"name\":\"long\",\"color\":\"blue\",\"x/y\":1}", js, 1, &g);
    assert_int_equal(g.status, 422);
    assert_non_null(strstr(g.body, "{\"pointer\":\"/name\",\"detail\":\"must be 1 to 3 "
                                   "characters long\"}"));
    assert_non_null(strstr(g.body, "{\"pointer\":\"/color\",\"detail\":\"must be one of red, "
                                   "green\"}"));
    assert_non_null(strstr(g.body, "{\"pointer\":\"/x~1y\",\"detail\":\"is not a known member\"}"));
    got_cleanup(&g);
    request(f, "POST", "/v1/items", "{\"name\":", js, 1, &g);
    assert_int_equal(g.status, 400);
    got_cleanup(&g);
    request(f, "POST", "/v1/items", "{\"name\":\"ab\"}", xml, 1, &g);
    assert_int_equal(g.status, 415);
    got_cleanup(&g);
    assert_int_equal(f->handler_calls, 0);
    request(f, "POST", "/v1/items", "{\"name\":\"\\u00e9t\\u00e9\"}", js, 1, &g);
    assert_int_equal(g.status, 200);
    got_cleanup(&g);
}

static void
rest__traceparent__continued_or_started(void **state)
{
    struct fx *f = *state;
    struct got g;
    const char *parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const struct wa_httpc_header tp[] = {{"traceparent", parent}};

    request(f, "GET", "/v1/items/1", NULL, tp, 1, &g);
    assert_true(wa_traceparent_valid(g.traceparent));
    assert_memory_equal(g.traceparent, parent, 36); /* same trace id */
    assert_string_not_equal(g.traceparent + 36, parent + 36);
    got_cleanup(&g);
    request(f, "GET", "/nope", NULL, NULL, 0, &g);
    assert_true(wa_traceparent_valid(g.traceparent));
    got_cleanup(&g);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(route__known_route__200_with_generated_request_id,
                                        setup_started, teardown),
        cmocka_unit_test_setup_teardown(route__client_request_id__is_echoed, setup_started,
                                        teardown),
        cmocka_unit_test_setup_teardown(problem_errors__on__404_and_405_as_problem_json,
                                        setup_started, teardown),
        cmocka_unit_test_setup_teardown(route__unknown_path__404_problem, setup_started, teardown),
        cmocka_unit_test_setup_teardown(route__wrong_method__405_with_allow, setup_started,
                                        teardown),
        cmocka_unit_test_setup_teardown(route__prefix__matches_longer_paths_and_decodes_query,
                                        setup_started, teardown),
        cmocka_unit_test_setup_teardown(body__within_limit__handler_sees_it, setup_started,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            body__budget_spent_by_held_request__503_retry_after_until_released, setup, teardown),
        cmocka_unit_test_setup_teardown(body__content_length_above_limit__413_without_handler,
                                        setup_started, teardown),
        cmocka_unit_test_setup_teardown(body__chunked_past_limit__413_without_handler,
                                        setup_started, teardown),
        cmocka_unit_test_setup_teardown(
            body__chunked_far_past_limit__connection_closed_without_handler, setup_started,
            teardown),
        cmocka_unit_test_setup_teardown(body__chunked_within_limit__handler_sees_it, setup_started,
                                        teardown),
        cmocka_unit_test_setup_teardown(headers__too_large__rejected_by_server, setup, teardown),
        cmocka_unit_test_setup_teardown(suspend__reply_from_timer__client_gets_it, setup_started,
                                        teardown),
        cmocka_unit_test_setup_teardown(probes__healthz_readyz_metrics, setup_started, teardown),
        cmocka_unit_test_setup_teardown(load__200_concurrent_requests__all_answered, setup_started,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            slow_client__half_header__dropped_after_timeout_while_others_served, setup, teardown),
        cmocka_unit_test_setup_teardown(shutdown__suspended_requests__answered_503_and_owners_told,
                                        setup_started, teardown),
        cmocka_unit_test_setup_teardown(shutdown__suspended_client_gone__no_crash, setup_started,
                                        teardown),
        cmocka_unit_test_setup_teardown(quiesce__new_connections_refused_pending_answered,
                                        setup_started, teardown),
        cmocka_unit_test_setup_teardown(listen__ipv6_loopback__serves, setup, teardown),
        cmocka_unit_test_setup_teardown(config__bad_listen__rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(rest__templates__params_decoded_and_literal_wins,
                                        setup_rest, teardown_rest),
        cmocka_unit_test_setup_teardown(rest__bad_paths_and_methods__problems, setup_rest,
                                        teardown_rest),
        cmocka_unit_test_setup_teardown(rest__middleware__answers_or_resumes_from_the_loop,
                                        setup_rest, teardown_rest),
        cmocka_unit_test_setup_teardown(rest__json_body__every_violation_named, setup_rest,
                                        teardown_rest),
        cmocka_unit_test_setup_teardown(rest__traceparent__continued_or_started, setup_rest,
                                        teardown_rest),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
