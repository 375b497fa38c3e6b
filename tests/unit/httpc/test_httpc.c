/*
 * test_httpc.c: the HTTP client over real sockets on 127.0.0.1 against wa::httpd on the same
 * wa_loop: results, timeouts, response limits, connection reuse, cancellation.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wa/httpc.h"
#include "wa/httpd.h"
#include "wa/metrics.h"
#include "wa_test.h"

struct fx {
    struct wa_loop *loop;
    struct wa_metrics *metrics;
    struct wa_httpd *httpd;
    struct wa_httpc *httpc;
    char base[64];
    struct wa_http_req *held; /* by on_never: answered only when the server is freed */
    char seen_header[128];
    char seen_method[16];
};

struct got {
    int calls;
    enum wa_err err;
    long status;
    char *body;
    size_t body_len;
    char message[256];
    char echo[128];
    double total_s;
};

static void
on_done(const struct wa_httpc_result *res, void *arg)
{
    struct got *g = arg;
    const char *v = wa_httpc_result_header(res, "X-Echo");

    g->calls++;
    g->err = res->err;
    g->status = res->status;
    g->body = malloc(res->body_len + 1);
    memcpy(g->body, res->body, res->body_len + 1);
    g->body_len = res->body_len;
    g->total_s = res->total_s;
    snprintf(g->message, sizeof(g->message), "%s", res->message);
    snprintf(g->echo, sizeof(g->echo), "%s", v != NULL ? v : "");
}

static bool
is_done(void *arg)
{
    return ((struct got *)arg)->calls > 0;
}

static void
got_cleanup(struct got *g)
{
    free(g->body);
    g->body = NULL;
}

/* ---- server side ---- */

static void
on_echo(struct wa_http_req *req, void *arg)
{
    struct fx *f = arg;
    const char *h = wa_http_req_header(req, "X-Test");
    size_t len;
    const char *body = wa_http_req_body(req, &len);

    snprintf(f->seen_header, sizeof(f->seen_header), "%s", h != NULL ? h : "");
    snprintf(f->seen_method, sizeof(f->seen_method), "%s", wa_http_req_method(req));
    wa_http_reply_header(req, "X-Echo", h != NULL ? h : "none");
    wa_http_reply(req, 200, "text/plain", body, len);
}

static void
on_big(struct wa_http_req *req, void *arg)
{
    static char big[10000];

    (void)arg;
    memset(big, 'b', sizeof(big));
    wa_http_reply(req, 200, "text/plain", big, sizeof(big));
}

static void
on_never(struct wa_http_req *req, void *arg)
{
    struct fx *f = arg;

    f->held = req;
}

static void
on_abort(struct wa_http_req *req, void *data)
{
    struct fx *f = data;

    (void)req;
    f->held = NULL;
}

static void
on_never_abortable(struct wa_http_req *req, void *arg)
{
    wa_http_req_set_data(req, arg);
    wa_http_req_set_abort(req, on_abort);
    on_never(req, arg);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct wa_httpd_config scfg = {.listen = "127.0.0.1:0"};
    struct wa_httpc_config ccfg = {.timeout_ms = 10000, .user_agent = "httpc-test"};

    assert_non_null(f);
    assert_int_equal(wa_loop_new(&f->loop), WA_OK);
    assert_int_equal(wa_metrics_new(&f->metrics), WA_OK);
    scfg.metrics = f->metrics;
    assert_int_equal(wa_httpd_new(f->loop, &scfg, &f->httpd, NULL), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "POST", "/echo", 0, on_echo, f), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "PUT", "/echo", 0, on_echo, f), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "GET", "/echo", 0, on_echo, f), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "GET", "/big", 0, on_big, f), WA_OK);
    assert_int_equal(wa_httpd_route(f->httpd, "GET", "/never", 0, on_never_abortable, f), WA_OK);
    assert_int_equal(wa_httpd_start(f->httpd, NULL), WA_OK);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", wa_httpd_port(f->httpd));
    assert_int_equal(wa_httpc_new(f->loop, &ccfg, &f->httpc, NULL), WA_OK);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    wa_httpc_free(f->httpc);
    wa_httpd_free(f->httpd);
    assert_null(f->held);
    wa_metrics_free(f->metrics);
    wa_loop_free(f->loop);
    free(f);
    return 0;
}

static void
url_of(const struct fx *f, const char *path, char *out, size_t size)
{
    snprintf(out, size, "%s%s", f->base, path);
}

/* ---- tests ---- */

static void
send__post_with_headers__response_body_status_and_headers(void **state)
{
    struct fx *f = *state;
    char url[128];
    struct wa_httpc_header h[] = {{"X-Test", "value-1"}};
    struct wa_httpc_request rq = {
        .url = url, .headers = h, .nheaders = 1, .body = "payload", .body_len = 7};
    struct got g = {0};

    url_of(f, "/echo", url, sizeof(url));
    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g, NULL, NULL), WA_OK);
    assert_int_equal(g.calls, 0); /* never from inside send */
    assert_true(wa_test_run_until(f->loop, is_done, &g, 10000));
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, WA_OK);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "payload");
    assert_string_equal(g.echo, "value-1");
    assert_string_equal(f->seen_method, "POST");
    assert_true(g.total_s > 0.0);
    got_cleanup(&g);
    wa_test_run_for(f->loop, 20);
    assert_int_equal(g.calls, 1); /* exactly once */
}

static void
send__put_with_borrowed_body__sent_as_is(void **state)
{
    struct fx *f = *state;
    char url[128], body[] = "borrowed";
    struct wa_httpc_request rq = {
        .method = "PUT", .url = url, .body = body, .body_len = strlen(body), .body_borrowed = true};
    struct got g = {0};

    url_of(f, "/echo", url, sizeof(url));
    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g, NULL, NULL), WA_OK);
    assert_true(wa_test_run_until(f->loop, is_done, &g, 10000));
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "borrowed");
    assert_string_equal(f->seen_method, "PUT");
    got_cleanup(&g);
}

static void
send__non_2xx__is_ok_with_status(void **state)
{
    struct fx *f = *state;
    char url[128];
    struct wa_httpc_request rq = {.url = url};
    struct got g = {0};

    url_of(f, "/missing", url, sizeof(url));
    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g, NULL, NULL), WA_OK);
    assert_true(wa_test_run_until(f->loop, is_done, &g, 10000));
    assert_int_equal(g.err, WA_OK);
    assert_int_equal(g.status, 404);
    assert_non_null(strstr(g.body, "\"status\":404"));
    got_cleanup(&g);
}

static void
timeout__handler_never_answers__ETIMEDOUT(void **state)
{
    struct fx *f = *state;
    char url[128];
    struct wa_httpc_request rq = {.url = url, .timeout_ms = 300};
    struct got g = {0};

    url_of(f, "/never", url, sizeof(url));
    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g, NULL, NULL), WA_OK);
    assert_true(wa_test_run_until(f->loop, is_done, &g, 10000));
    assert_int_equal(g.err, WA_ETIMEDOUT);
    assert_int_equal(g.status, 0);
    assert_string_equal(g.body, "");
    assert_true(g.total_s >= 0.25);
    assert_non_null(f->held); /* the server still holds it; freed by teardown (503) */
    got_cleanup(&g);
}

static void
limit__response_above_max__ETOOBIG(void **state)
{
    struct fx *f = *state;
    char url[128];
    struct wa_httpc_request rq = {.url = url, .max_response = 1000};
    struct got g = {0};

    url_of(f, "/big", url, sizeof(url));
    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g, NULL, NULL), WA_OK);
    assert_true(wa_test_run_until(f->loop, is_done, &g, 10000));
    assert_int_equal(g.err, WA_ETOOBIG);
    assert_non_null(strstr(g.message, "1000"));
    got_cleanup(&g);
    rq.max_response = 10000; /* exactly the size: fine */
    memset(&g, 0, sizeof(g));
    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g, NULL, NULL), WA_OK);
    assert_true(wa_test_run_until(f->loop, is_done, &g, 10000));
    assert_int_equal(g.err, WA_OK);
    assert_int_equal(g.body_len, 10000);
    got_cleanup(&g);
}

static void
reuse__sequential_requests__one_connection(void **state)
{
    struct fx *f = *state;
    char url[128];
    struct wa_httpc_request rq = {.url = url};
    struct wa_counter *accepted =
        wa_metrics_counter(f->metrics, "wa_http_connections_total", "", NULL);
    int i;

    url_of(f, "/echo", url, sizeof(url));
    for (i = 0; i < 5; i++) {
        struct got g = {0};
        assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g, NULL, NULL), WA_OK);
        assert_true(wa_test_run_until(f->loop, is_done, &g, 10000));
        assert_int_equal(g.status, 200);
        got_cleanup(&g);
    }
    assert_non_null(accepted);
    assert_int_equal(wa_counter_value(accepted), 1);
}

static void
connect__nobody_listening__EUNAVAIL(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char url[128];
    struct wa_httpc_request rq = {.url = url};
    struct got g = {0};

    /* a port that was free a moment ago and has no listener */
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g, NULL, NULL), WA_OK);
    assert_true(wa_test_run_until(f->loop, is_done, &g, 10000));
    close(fd);
    assert_int_equal(g.err, WA_EUNAVAIL);
    assert_int_equal(g.status, 0);
    got_cleanup(&g);
}

static void
send__unsupported_scheme__EINVAL_in_callback(void **state)
{
    struct fx *f = *state;
    struct wa_httpc_request rq = {.url = "ftp://127.0.0.1/x"};
    struct got g = {0};

    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g, NULL, NULL), WA_OK);
    assert_true(wa_test_run_until(f->loop, is_done, &g, 10000));
    assert_int_equal(g.err, WA_EINVAL);
    got_cleanup(&g);
}

static void
send__bad_arguments__error_and_no_callback(void **state)
{
    struct fx *f = *state;
    struct wa_httpc_header h[] = {{"Bad\r\nHeader", "x"}};
    struct wa_httpc_request rq = {.url = "http://127.0.0.1:1/", .headers = h, .nheaders = 1};
    struct wa_httpc_request nourl = {0};
    struct got g = {0};
    struct wa_error error = {0};

    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g, NULL, &error), WA_EINVAL);
    assert_int_equal(wa_httpc_send(f->httpc, &nourl, on_done, &g, NULL, NULL), WA_EINVAL);
    assert_int_equal(wa_httpc_inflight(f->httpc), 0);
    wa_test_run_for(f->loop, 50);
    assert_int_equal(g.calls, 0);
}

static bool
server_holds(void *arg)
{
    return ((struct fx *)arg)->held != NULL;
}

static void
cancel__in_flight__callback_never_runs(void **state)
{
    struct fx *f = *state;
    char url[128];
    struct wa_httpc_request rq = {.url = url};
    struct wa_httpc_call *call = NULL;
    struct got g = {0};

    url_of(f, "/never", url, sizeof(url));
    assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g, &call, NULL), WA_OK);
    assert_non_null(call);
    assert_true(wa_test_run_until(f->loop, server_holds, f, 10000));
    assert_int_equal(wa_httpc_inflight(f->httpc), 1);
    wa_httpc_call_cancel(call);
    assert_int_equal(wa_httpc_inflight(f->httpc), 0);
    wa_test_run_for(f->loop, 100);
    assert_int_equal(g.calls, 0);
}

static void
free__calls_in_flight__no_callbacks(void **state)
{
    struct fx *f = *state;
    char url[128];
    struct wa_httpc_request rq = {.url = url};
    struct got g[3] = {{0}};
    int i;

    url_of(f, "/never", url, sizeof(url));
    for (i = 0; i < 3; i++) {
        assert_int_equal(wa_httpc_send(f->httpc, &rq, on_done, &g[i], NULL, NULL), WA_OK);
    }
    wa_test_run_for(f->loop, 50);
    assert_int_equal(wa_httpc_inflight(f->httpc), 3);
    wa_httpc_free(f->httpc);
    f->httpc = NULL;
    wa_test_run_for(f->loop, 100);
    for (i = 0; i < 3; i++) {
        assert_int_equal(g[i].calls, 0);
    }
}

/* A callback may start the next request: the chain runs to its end. */
struct chain {
    struct fx *f;
    int left;
    int done;
    enum wa_err last;
};

static void on_chain(const struct wa_httpc_result *res, void *arg);

static void
chain_next(struct chain *c)
{
    char url[128];
    struct wa_httpc_request rq = {.url = url};

    url_of(c->f, "/echo", url, sizeof(url));
    assert_int_equal(wa_httpc_send(c->f->httpc, &rq, on_chain, c, NULL, NULL), WA_OK);
}

static void
on_chain(const struct wa_httpc_result *res, void *arg)
{
    struct chain *c = arg;

    c->last = res->err;
    if (--c->left > 0) {
        chain_next(c);
    } else {
        c->done = 1;
    }
}

static bool
chain_done(void *arg)
{
    return ((struct chain *)arg)->done != 0;
}

static void
callback__starts_next_request__chain_completes(void **state)
{
    struct fx *f = *state;
    struct chain c = {.f = f, .left = 4};

    chain_next(&c);
    assert_true(wa_test_run_until(f->loop, chain_done, &c, 10000));
    assert_int_equal(c.last, WA_OK);
    assert_int_equal(wa_httpc_inflight(f->httpc), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(send__post_with_headers__response_body_status_and_headers,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(send__put_with_borrowed_body__sent_as_is, setup, teardown),
        cmocka_unit_test_setup_teardown(send__non_2xx__is_ok_with_status, setup, teardown),
        cmocka_unit_test_setup_teardown(timeout__handler_never_answers__ETIMEDOUT, setup, teardown),
        cmocka_unit_test_setup_teardown(limit__response_above_max__ETOOBIG, setup, teardown),
        cmocka_unit_test_setup_teardown(reuse__sequential_requests__one_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(connect__nobody_listening__EUNAVAIL, setup, teardown),
        cmocka_unit_test_setup_teardown(send__unsupported_scheme__EINVAL_in_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(send__bad_arguments__error_and_no_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cancel__in_flight__callback_never_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(free__calls_in_flight__no_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(callback__starts_next_request__chain_completes, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
