/*
 * httpd.c: the HTTP server of every daemon: libmicrohttpd (MHD) driven by the wa_loop.
 *
 * MHD runs in "external epoll" mode: it owns one epoll descriptor holding the listen socket,
 * its connections and its inter-thread channel; the wa_loop watches that descriptor and calls
 * MHD_run() when it is readable, and a wa_timer fires when MHD_get_timeout() says so (connection
 * timeouts, connections with buffered data). The timer is re-armed after every MHD_run().
 *
 * Life of a request, in the order MHD calls us:
 *   0. on_uri (MHD_OPTION_URI_LOG_CALLBACK): the request line was read: struct wa_http_req is
 *      allocated with a copy of the raw query string (MHD shows it nowhere else; paths and
 *      arguments stay raw: on_unescape decodes nothing, rest.c decodes per segment/parameter).
 *   1. on_access, headers complete (!headers_seen): the id and traceparent are chosen, the query
 *      parsed, the route matched (rest.c: templates); 400 (bad query or parameter encoding),
 *      404, 405 and a too large Content-Length are answered at once, without the body.
 *   2. body chunks: appended to req->body (bounded by the route's max_body).
 *   3. final call: the route's chain runs (run_chain: each middleware, then the handler); if
 *      it replied, the response is queued; if not, the connection is suspended. A later
 *      wa_http_next() continues the chain, and a later wa_http_reply*() stores the response and
 *      resumes the connection; MHD then calls on_access once more, which queues it (MHD accepts
 *      responses only from inside the access handler).
 *   4. on_completed (MHD_OPTION_NOTIFY_COMPLETED): metrics, then the request is freed. This is
 *      the only place a request is freed (MHD calls it for every request on_uri made, even one
 *      whose headers never completed). MHD reports completion of a suspended connection only
 *      after it was resumed, so a handler may always reply to a request it was given, even when
 *      the client has gone away meanwhile.
 *
 * Threading: everything runs on the loop thread; MHD starts no thread of its own.
 * Ownership: the server owns its requests; handlers borrow them until their reply.
 */
#include "wa/httpd.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "wa/clock.h"
#include "wa/config.h"
#include "wa/id.h"
#include "wa/log.h"
#include "wa/traceparent.h"
#include "httpd_int.h"

#define DEFAULT_MAX_BODY     (1024u * 1024u)
#define DEFAULT_MAX_CONNS    1024u
#define DEFAULT_CONN_TIMEOUT 10u
#define DEFAULT_CONN_MEMORY  (16u * 1024u)
#define DEFAULT_BODY_BUDGET  ((size_t)64 * 1024 * 1024)
#define LISTEN_BACKLOG       1024u
#define FREE_FLUSH_ROUNDS    16
#define DISCARD_MIN          (64u * 1024u)

struct wa_httpd {
    struct wa_loop *loop;
    struct MHD_Daemon *mhd;
    struct wa_io *io;
    struct wa_timer *timer;
    char *listen;
    char *service;
    size_t max_body;
    unsigned max_connections;
    unsigned conn_timeout_s;
    size_t conn_memory;
    size_t body_budget; /* request bodies held at once, all connections */
    size_t body_held;
    unsigned max_per_ip;
    struct wa_counter *over_budget;
    bool problem_errors; /* wa_httpd_problem_errors: built-in errors as problem+json */
    struct wa_metrics *metrics;
    struct wa_gauge *inflight_gauge;
    struct wa_counter *connections;
    struct route *routes;
    size_t nroutes;
    int port;
    bool quiesced;
    struct wa_http_req *reqs; /* live requests, newest first */
    size_t inflight;
    /* probes */
    wa_ready_fn ready_fn;
    void *ready_arg;
    struct wa_metrics *probe_metrics;
};

/* ---- the loop drives MHD ---- */

static void
schedule(struct wa_httpd *h)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;

    if (h->mhd == NULL) {
        return;
    }
    if (MHD_get_timeout(h->mhd, &ms) == MHD_YES) {
        wa_timer_start(h->timer, ms > 60000 ? 60000 : (uint64_t)ms, 0);
    } else {
        wa_timer_stop(h->timer);
    }
}

static void
on_epoll_ready(struct wa_io *io, int fd, unsigned events, void *arg)
{
    struct wa_httpd *h = arg;

    (void)io;
    (void)fd;
    (void)events;
    MHD_run(h->mhd);
    schedule(h);
}

static void
on_timer(struct wa_timer *t, void *arg)
{
    struct wa_httpd *h = arg;

    (void)t;
    MHD_run(h->mhd);
    schedule(h);
}

/* ---- routes ---- */

/* How r matches path: 1 yes (a template's parameters in *params, decoded into buf), 0 no, -1
 * the template's shape matches but a parameter is badly encoded. */
static int
route_matches(const struct route *r, const char *path, size_t len, char *buf, size_t size,
              struct wa_http_params *params)
{
    enum wa_err err;

    switch (r->kind) {
    case ROUTE_LITERAL:
        return len == r->path_len && memcmp(path, r->path, len) == 0;
    case ROUTE_PREFIX:
        return len >= r->path_len && memcmp(path, r->path, r->path_len) == 0;
    case ROUTE_TEMPLATE:
        err = wa_http_template_match(r->path, path, buf, size, params);
        return err == WA_OK ? 1 : err == WA_EPARSE ? -1 : 0;
    }
    return 0;
}

/* True when a is more specific than b: literal, then templates with more literal segments,
 * then the longer prefix; between equals the first registered stays. */
static bool
more_specific(const struct route *a, const struct route *b)
{
    if (b == NULL) {
        return true;
    }
    if (a->kind != b->kind) {
        return a->kind < b->kind;
    }
    if (a->kind == ROUTE_TEMPLATE) {
        return a->literals > b->literals;
    }
    return a->kind == ROUTE_PREFIX && a->path_len > b->path_len;
}

/*
 * The route for req's method and path, its parameters in req->params (decoded into
 * req->param_buf). *path_known: some route matches the path with another method (405);
 * *bad_param: a template matched but a parameter is badly encoded (400).
 */
static const struct route *
find_route(const struct wa_httpd *h, struct wa_http_req *req, bool *path_known, bool *bad_param)
{
    size_t len = strlen(req->path), size = len + 1;
    const struct route *best = NULL;
    struct wa_http_params scratch;

    *path_known = false;
    *bad_param = false;
    for (size_t i = 0; i < h->nroutes; i++) {
        const struct route *r = &h->routes[i];
        int m = route_matches(r, req->path, len, req->param_buf, size, &scratch);

        if (m < 0) {
            *bad_param = true;
        }
        if (m <= 0) {
            continue;
        }
        *path_known = true;
        if (strcmp(r->method, req->method) == 0 && more_specific(r, best)) {
            best = r;
        }
    }
    memset(&req->params, 0, sizeof(req->params));
    if (best != NULL && best->kind == ROUTE_TEMPLATE) {
        (void)route_matches(best, req->path, len, req->param_buf, size, &req->params);
    }
    return best;
}

/* Writes the methods allowed for req's path, comma separated, into b (for 405 Allow). */
static void
allowed_methods(const struct wa_httpd *h, struct wa_http_req *req, struct wa_buf *b)
{
    size_t len = strlen(req->path);
    struct wa_http_params scratch;

    for (size_t i = 0; i < h->nroutes; i++) {
        const struct route *r = &h->routes[i];
        bool dup = false;

        if (route_matches(r, req->path, len, req->param_buf, len + 1, &scratch) != 1) {
            continue;
        }
        for (size_t j = 0; j < i && !dup; j++) {
            const struct route *q = &h->routes[j];

            dup = strcmp(q->method, r->method) == 0 &&
                  route_matches(q, req->path, len, req->param_buf, len + 1, &scratch) == 1;
        }
        if (!dup) {
            (void)wa_buf_printf(b, "%s%s", b->len > 0 ? ", " : "", r->method);
        }
    }
}

/* Checks a template's syntax; returns its number of literal segments, or -1. */
static long
template_check(const char *path)
{
    long literals = 0, params = 0;

    for (const char *seg = path + 1;; seg++) {
        const char *end = strchr(seg, '/');
        size_t n = end != NULL ? (size_t)(end - seg) : strlen(seg);

        if (n >= 2 && seg[0] == '{' && seg[n - 1] == '}') {
            if (n == 2 || memchr(seg + 1, '{', n - 2) != NULL ||
                memchr(seg + 1, '}', n - 2) != NULL || ++params > WA_HTTP_PARAMS_MAX) {
                return -1;
            }
        } else if (memchr(seg, '{', n) != NULL || memchr(seg, '}', n) != NULL) {
            return -1;
        } else {
            literals++;
        }
        if (end == NULL) {
            break;
        }
        seg = end;
    }
    return literals;
}

static enum wa_err
add_route(struct wa_httpd *h, const char *method, const char *path, size_t max_body,
          wa_http_handler_fn fn, void *arg, const struct wa_http_mw *mw, size_t nmw)
{
    struct route *routes, *r;
    size_t len;
    long literals = 0;

    if (h == NULL || method == NULL || path == NULL || fn == NULL || path[0] != '/' ||
        h->mhd != NULL || strpbrk(path, "\"\\\n?#") != NULL || strpbrk(method, "\"\\\n ") != NULL ||
        (nmw > 0 && mw == NULL)) {
        return WA_EINVAL;
    }
    len = strlen(path);
    if (strchr(path, '*') != NULL && (strchr(path, '*') != path + len - 1 || strchr(path, '{'))) {
        return WA_EINVAL; /* '*' only ends a prefix, which has no parameters */
    }
    if (strchr(path, '{') != NULL && (literals = template_check(path)) < 0) {
        return WA_EINVAL;
    }
    for (size_t i = 0; i < nmw; i++) {
        if (mw[i].fn == NULL) {
            return WA_EINVAL;
        }
    }
    routes = realloc(h->routes, (h->nroutes + 1) * sizeof(*routes));
    if (routes == NULL) {
        return WA_ENOMEM;
    }
    h->routes = routes;
    r = &routes[h->nroutes];
    memset(r, 0, sizeof(*r));
    r->method = strdup(method);
    r->path = strdup(path);
    r->mw = nmw > 0 ? malloc(nmw * sizeof(*mw)) : NULL;
    if (r->method == NULL || r->path == NULL || (nmw > 0 && r->mw == NULL)) {
        free(r->method);
        free(r->path);
        free(r->mw);
        return WA_ENOMEM;
    }
    if (nmw > 0) {
        memcpy(r->mw, mw, nmw * sizeof(*mw));
    }
    r->nmw = nmw;
    r->kind = path[len - 1] == '*'        ? ROUTE_PREFIX
              : strchr(path, '{') != NULL ? ROUTE_TEMPLATE
                                          : ROUTE_LITERAL;
    if (r->kind == ROUTE_PREFIX) {
        r->path[--len] = '\0';
    }
    r->path_len = len;
    r->literals = (size_t)literals;
    r->max_body = max_body != 0 ? max_body : h->max_body;
    r->fn = fn;
    r->arg = arg;
    h->nroutes++;
    return WA_OK;
}

enum wa_err
wa_httpd_route(struct wa_httpd *h, const char *method, const char *path, size_t max_body,
               wa_http_handler_fn fn, void *arg)
{
    return add_route(h, method, path, max_body, fn, arg, NULL, 0);
}

enum wa_err
wa_httpd_routes(struct wa_httpd *h, const struct wa_http_route *routes, size_t n,
                const struct wa_http_mw *mw, size_t nmw, void *arg, struct wa_error *error)
{
    enum wa_err err;

    for (size_t i = 0; i < n; i++) {
        if ((err = add_route(h, routes[i].method, routes[i].path, routes[i].max_body, routes[i].fn,
                             arg, mw, nmw)) != WA_OK) {
            return wa_error_set(error, err, "route %s %s: %s",
                                routes[i].method != NULL ? routes[i].method : "(null)",
                                routes[i].path != NULL ? routes[i].path : "(null)",
                                err == WA_EINVAL ? "bad method, path or middleware"
                                                 : wa_err_text(err));
        }
    }
    return WA_OK;
}

/* ---- metrics ---- */

/* The method as a bounded label value: clients choose methods freely. */
static const char *
method_label(const char *m)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    size_t i;

    for (i = 0; i < WA_ARRAY_LEN(known); i++) {
        if (m != NULL && strcmp(m, known[i]) == 0) {
            return known[i];
        }
    }
    return "other";
}

static void
route_label(const struct route *r, char *out, size_t size)
{
    if (r == NULL) {
        snprintf(out, size, "unmatched");
    } else {
        snprintf(out, size, "%s%s", r->path, r->kind == ROUTE_PREFIX ? "*" : "");
    }
}

/* The wa_http_requests_total series of (route, method, status); NULL without metrics. */
static struct wa_counter *
requests_counter(struct wa_httpd *h, const struct wa_http_req *req)
{
    char route[256], labels[512];
    const char *method = method_label(req->method);
    struct route *r = (struct route *)req->route; /* the server's own table */
    struct wa_counter *c;
    size_t i;

    for (i = 0; r != NULL && i < r->nseen; i++) {
        if (r->seen[i].method == method && r->seen[i].status == req->status) {
            return r->seen[i].counter;
        }
    }
    route_label(req->route, route, sizeof(route));
    snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",status=\"%d\"", route, method,
             req->status);
    c = wa_metrics_counter(h->metrics, "wa_http_requests_total",
                           "HTTP requests answered, by route, method and status", labels);
    if (r != NULL && c != NULL && r->nseen < WA_ARRAY_LEN(r->seen)) {
        r->seen[r->nseen].method = method;
        r->seen[r->nseen].status = req->status;
        r->seen[r->nseen++].counter = c;
    }
    return c;
}

static void
record_request(struct wa_httpd *h, const struct wa_http_req *req)
{
    char labels[512];
    double seconds = (double)(wa_clock_mono_us() - req->start_us) / 1e6;

    if (h->metrics == NULL) {
        return;
    }
    wa_counter_inc(requests_counter(h, req));
    if (req->route != NULL) {
        wa_histogram_observe(req->route->duration, seconds);
    } else {
        snprintf(labels, sizeof(labels), "route=\"unmatched\"");
        wa_histogram_observe(wa_metrics_histogram(h->metrics, "wa_http_request_duration_seconds",
                                                  "HTTP request duration, by route", labels, NULL,
                                                  0),
                             seconds);
    }
}

/* ---- requests ---- */

static bool
sane_request_id(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0') {
        return false;
    }
    for (i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        if (i >= REQUEST_ID_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':')) {
            return false;
        }
    }
    return true;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the request line was read (headers not yet). The request is
 * made here because only here MHD shows the raw query string; what it returns becomes
 * *con_cls, and MHD calls on_completed for it even when the headers never complete. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct wa_httpd *h = cls;
    struct wa_http_req *req = calloc(1, sizeof(*req));
    const char *q = uri != NULL ? strchr(uri, '?') : NULL;

    if (req == NULL) {
        return NULL; /* on_access retries and refuses the connection if it fails again */
    }
    if (q != NULL) {
        size_t n = strcspn(q + 1, "#");

        if ((req->raw_query = strndup(q + 1, n)) == NULL) {
            free(req);
            return NULL;
        }
    }
    req->h = h;
    req->conn = conn;
    req->start_us = wa_clock_mono_us();
    wa_buf_init(&req->body, h->max_body);
    req->next = h->reqs;
    if (h->reqs != NULL) {
        h->reqs->prev = req;
    }
    h->reqs = req;
    h->inflight++;
    wa_gauge_add(h->inflight_gauge, 1);
    return req;
}

/* MHD_OPTION_UNESCAPE_CALLBACK: keeps the path and MHD's own argument table raw; paths are
 * split into segments before they are decoded (a "%2F" stays inside its segment) and the
 * query string is decoded by wa_http_query_parse. */
static size_t
on_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

/* Headers complete: the request's identity (id, traceparent), path, query and parameter
 * storage. False when out of memory. */
static bool
req_begin(struct wa_http_req *req, const char *method, const char *path)
{
    const char *given = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-Request-Id");

    req->method = method;
    req->path = path;
    req->headers_seen = true;
    if (sane_request_id(given)) {
        snprintf(req->id, sizeof(req->id), "%s", given);
    } else {
        wa_ulid_new(req->id);
    }
    wa_traceparent_child(MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "traceparent"),
                         req->traceparent);
    req->param_buf = malloc(strlen(path) + 1);
    req->dpath = malloc(strlen(path) + 1);
    return req->param_buf != NULL && req->dpath != NULL;
}

static void
req_free(struct wa_http_req *req)
{
    struct wa_httpd *h = req->h;
    struct reply_header *hd, *next;

    if (req->prev != NULL) {
        req->prev->next = req->next;
    } else {
        h->reqs = req->next;
    }
    if (req->next != NULL) {
        req->next->prev = req->prev;
    }
    h->inflight--;
    wa_gauge_add(h->inflight_gauge, -1);
    h->body_held -= req->body_charged;
    for (hd = req->headers; hd != NULL; hd = next) {
        next = hd->next;
        free(hd->name);
        free(hd->value);
        free(hd);
    }
    if (req->response != NULL) {
        MHD_destroy_response(req->response);
    }
    for (size_t i = 0; i < req->nattrs; i++) {
        free(req->attrs[i].name);
        free(req->attrs[i].value);
    }
    json_decref(req->json);
    free(req->raw_query);
    free(req->query_buf);
    free(req->param_buf);
    free(req->dpath);
    wa_buf_cleanup(&req->body);
    free(req);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct wa_httpd *h = cls;
    struct wa_http_req *req = *con_cls;

    (void)conn;
    if (req == NULL) {
        return;
    }
    *con_cls = NULL;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        wa_log_debug(&(struct wa_log_ctx){.request_id = req->id},
                     "http request ended early (reason %d) on %s %s", (int)toe, req->method,
                     req->path);
    }
    if (req->handler_called && !req->replied && req->abort_fn != NULL) {
        /* Cannot happen while suspended (MHD completes those only after a resume); kept as
         * the owner's last chance to forget req should MHD ever end a request otherwise. */
        req->abort_fn(req, req->data);
    }
    if (req->headers_seen) { /* else MHD answered by itself (431) or the client left early */
        record_request(h, req);
    }
    req_free(req);
}

/* Queues the stored response. Called only from on_access (MHD's rule). */
static enum MHD_Result
queue_reply(struct wa_http_req *req)
{
    enum MHD_Result ret;

    if (req->response == NULL) {
        return MHD_NO; /* the reply could not be built (out of memory): drop the connection */
    }
    ret = MHD_queue_response(req->conn, (unsigned)req->status, req->response);
    MHD_destroy_response(req->response);
    req->response = NULL;
    req->queued = true;
    return ret;
}

static bool
content_length_above(struct MHD_Connection *conn, size_t max)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    char *end = NULL;
    unsigned long long v;

    if (cl == NULL) {
        return false;
    }
    v = strtoull(cl, &end, 10);
    /* A malformed length is MHD's to reject; an overflowing one is too big anyway. */
    return end != cl && v > max;
}

/* One allocation for the whole body when its length is announced (within the limit, which
 * was checked), instead of doubling from 256 bytes. */
static void
reserve_body(struct wa_http_req *req)
{
    const char *cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Content-Length");
    char *end = NULL;
    unsigned long long v;

    if (cl == NULL) {
        return;
    }
    v = strtoull(cl, &end, 10);
    if (end != cl && v > 0 && v <= req->body.max) {
        (void)wa_buf_reserve(&req->body, (size_t)v); /* a failure shows on append */
    }
}

/* Charges n more body bytes of req to the server's budget; false (nothing charged) when the
 * budget cannot take them. */
static bool
charge_body(struct wa_http_req *req, size_t n)
{
    struct wa_httpd *h = req->h;

    if (n > h->body_budget - h->body_held) {
        return false;
    }
    h->body_held += n;
    req->body_charged += n;
    return true;
}

/* The announced length (0 when none or malformed). */
static size_t
content_length(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    char *end = NULL;
    unsigned long long v;

    if (cl == NULL) {
        return 0;
    }
    v = strtoull(cl, &end, 10);
    return end != cl ? (size_t)v : 0;
}

static void
reply_over_budget(struct wa_http_req *req)
{
    wa_counter_inc(req->h->over_budget);
    wa_http_reply_header(req, "Retry-After", "1");
    wa_http_reply_problem(req, 503, NULL,
                          "the server holds as many request bodies as it may; retry shortly", NULL,
                          0);
}

static void
reply_too_big(struct wa_http_req *req)
{
    char detail[96];

    snprintf(detail, sizeof(detail), "the body is larger than %zu bytes", req->route->max_body);
    wa_http_reply_problem(req, 413, NULL, detail, NULL, 0);
}

/* Runs the next step of req's chain: a middleware, or the handler after the last one. */
static void
run_chain(struct wa_http_req *req)
{
    const struct route *r = req->route;
    size_t i = req->next_mw++;

    if (i < r->nmw) {
        r->mw[i].fn(req, r->mw[i].arg);
    } else if (i == r->nmw) {
        r->fn(req, r->arg);
    }
}

void
wa_http_next(struct wa_http_req *req)
{
    if (req->replied || !req->handler_called || req->next_mw > req->route->nmw) {
        wa_log_error(&(struct wa_log_ctx){.request_id = req->id},
                     "wa_http_next on %s %s after its handler or reply: ignored", req->method,
                     req->path);
        return;
    }
    req->data = NULL;
    req->abort_fn = NULL;
    run_chain(req);
}

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct wa_httpd *h = cls;
    struct wa_http_req *req = *con_cls;
    bool path_known, bad_param;
    struct wa_error error = {0};

    (void)version;
    if (req == NULL || !req->headers_seen) {
        /* 1. headers complete */
        if (req == NULL && (req = on_uri(h, NULL, conn)) == NULL) {
            return MHD_NO;
        }
        *con_cls = req;
        if (!req_begin(req, method, url)) {
            return MHD_NO;
        }
        if (wa_http_pct_decode(url, strlen(url), false, req->dpath, strlen(url) + 1) < 0) {
            snprintf(req->dpath, strlen(url) + 1, "%s", url);
            wa_http_reply_problem(req, 400, NULL, "the path has a bad percent-encoding or %00",
                                  NULL, 0);
            return queue_reply(req);
        }
        if (rest_query_prepare(req, &error) != WA_OK) {
            wa_http_reply_problem(req, error.code == WA_ENOMEM ? 503 : 400, NULL, error.message,
                                  NULL, 0);
            return queue_reply(req);
        }
        req->route = find_route(h, req, &path_known, &bad_param);
        if (req->route == NULL && bad_param) {
            wa_http_reply_problem(req, 400, NULL,
                                  "a path parameter has a bad percent-encoding or %00", NULL, 0);
            return queue_reply(req);
        }
        if (req->route == NULL && !path_known) {
            wa_http_reply_problem(req, 404, NULL, "no such resource", NULL, 0);
            return queue_reply(req);
        }
        if (req->route == NULL) {
            struct wa_buf allow;
            wa_buf_init(&allow, 1024);
            allowed_methods(h, req, &allow);
            wa_http_reply_header(req, "Allow", allow.data != NULL ? allow.data : "");
            wa_buf_cleanup(&allow);
            wa_http_reply_problem(req, 405, NULL, "see the Allow header", NULL, 0);
            return queue_reply(req);
        }
        req->body.max = req->route->max_body;
        if (content_length_above(conn, req->route->max_body)) {
            reply_too_big(req);
            return queue_reply(req);
        }
        if (!charge_body(req, content_length(conn))) { /* answered before the body is read */
            reply_over_budget(req);
            return queue_reply(req);
        }
        reserve_body(req);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* 2. a body chunk. Past the limit MHD takes no response until the body is complete
         * (it refuses one while handing us body data, even when suspended), so the rest is
         * read and dropped, up to DISCARD_MIN or max_body more bytes, then the connection is
         * closed without an answer: a sender that stops in time gets its 413. */
        if (!req->too_big && req->body.len + *upload_data_size > req->body_charged &&
            !charge_body(req, req->body.len + *upload_data_size - req->body_charged)) {
            req->too_big = req->over_budget = true; /* no announced length: charged as it comes */
            wa_buf_cleanup(&req->body);
        }
        if (!req->too_big && wa_buf_append(&req->body, upload_data, *upload_data_size) != WA_OK) {
            req->too_big = true;
            wa_buf_cleanup(&req->body);
        }
        if (req->too_big) {
            req->discarded += *upload_data_size;
            if (req->discarded >
                (req->route->max_body > DISCARD_MIN ? req->route->max_body : DISCARD_MIN)) {
                wa_log_warn(&(struct wa_log_ctx){.request_id = req->id},
                            "body of %s %s far above its limit of %zu bytes: connection closed",
                            req->method, req->path, req->route->max_body);
                return MHD_NO;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* 3. the request is complete */
    if (req->response != NULL) {
        return queue_reply(req);
    }
    if (req->queued) {
        return MHD_YES;
    }
    if (req->too_big) {
        if (!req->replied && req->over_budget) {
            reply_over_budget(req);
        } else if (!req->replied) {
            reply_too_big(req);
        }
        return queue_reply(req);
    }
    if (!req->handler_called) {
        req->handler_called = true;
        run_chain(req);
        if (req->replied) {
            return queue_reply(req);
        }
        req->suspended = true;
        MHD_suspend_connection(conn);
        return MHD_YES;
    }
    /* resumed without a reply: cannot happen, replies resume; keep waiting */
    return MHD_YES;
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
    struct wa_httpd *h = cls;

    (void)conn;
    (void)socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        wa_counter_inc(h->connections);
    }
}

__attribute__((format(printf, 2, 0))) static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    wa_log_warn(NULL, "libmicrohttpd: %s", msg);
}

/* ---- replies ---- */

void
wa_http_reply_header(struct wa_http_req *req, const char *name, const char *value)
{
    struct reply_header *hd;

    if (req->replied) {
        return;
    }
    hd = calloc(1, sizeof(*hd));
    if (hd == NULL) {
        return;
    }
    hd->name = strdup(name);
    hd->value = strdup(value);
    if (hd->name == NULL || hd->value == NULL) {
        free(hd->name);
        free(hd->value);
        free(hd);
        return;
    }
    hd->next = req->headers;
    req->headers = hd;
}

void
wa_http_reply(struct wa_http_req *req, int status, const char *content_type, const void *body,
              size_t len)
{
    struct wa_httpd *h = req->h;
    struct MHD_Response *resp;
    struct reply_header *hd;

    if (req->replied) {
        wa_log_error(&(struct wa_log_ctx){.request_id = req->id},
                     "second reply (%d) to %s %s ignored", status, req->method, req->path);
        return;
    }
    req->replied = true;
    req->status = status;
    resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (resp != NULL) {
        if ((content_type != NULL &&
             MHD_add_response_header(resp, "Content-Type", content_type) != MHD_YES) ||
            MHD_add_response_header(resp, "X-Request-Id", req->id) != MHD_YES ||
            (req->traceparent[0] != '\0' &&
             MHD_add_response_header(resp, "traceparent", req->traceparent) != MHD_YES) ||
            (h->service != NULL &&
             MHD_add_response_header(resp, "Server", h->service) != MHD_YES)) {
            MHD_destroy_response(resp);
            resp = NULL;
        }
        for (hd = req->headers; resp != NULL && hd != NULL; hd = hd->next) {
            if (MHD_add_response_header(resp, hd->name, hd->value) != MHD_YES) {
                wa_log_warn(&(struct wa_log_ctx){.request_id = req->id},
                            "response header %s rejected", hd->name);
            }
        }
    }
    req->response = resp;
    if (resp == NULL) {
        wa_log_error(&(struct wa_log_ctx){.request_id = req->id},
                     "could not build the %d response; closing the connection", status);
    }
    if (req->suspended) {
        /* on_access runs again after the resume and queues the response there */
        req->suspended = false;
        MHD_resume_connection(req->conn);
        wa_timer_start(h->timer, 0, 0);
    }
}

void
wa_http_reply_drop(struct wa_http_req *req)
{
    struct wa_httpd *h = req->h;

    if (req->replied) {
        return;
    }
    /* No response: queue_reply() returns MHD_NO, which makes MHD close the connection. */
    req->replied = true;
    req->status = 0;
    req->response = NULL;
    if (req->suspended) {
        req->suspended = false;
        MHD_resume_connection(req->conn);
        wa_timer_start(h->timer, 0, 0);
    }
}

void
wa_http_reply_json(struct wa_http_req *req, int status, const char *json)
{
    wa_http_reply(req, status, "application/json", json, strlen(json));
}

void
wa_httpd_problem_errors(struct wa_httpd *h, bool on)
{
    h->problem_errors = on;
}

void
wa_http_reply_error(struct wa_http_req *req, int status, const char *code, const char *fmt, ...)
{
    struct wa_buf msg, body;
    va_list ap;

    wa_buf_init(&msg, 2048);
    wa_buf_init(&body, 4096);
    va_start(ap, fmt);
    (void)wa_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (req->h->problem_errors) {
        const char *title = MHD_get_reason_phrase_for((unsigned)status);

        wa_http_reply_problem(req, status, title != NULL && title[0] != '\0' ? title : code,
                              msg.data != NULL ? msg.data : "", NULL, 0);
        wa_buf_cleanup(&msg);
        wa_buf_cleanup(&body);
        return;
    }
    (void)wa_buf_append_str(&body, "{\"error\":{\"code\":");
    (void)wa_buf_append_json_string(&body, code, strlen(code));
    (void)wa_buf_append_str(&body, ",\"message\":");
    (void)wa_buf_append_json_string(&body, msg.data != NULL ? msg.data : "", msg.len);
    (void)wa_buf_append_str(&body, ",\"request_id\":");
    (void)wa_buf_append_json_string(&body, req->id, strlen(req->id));
    (void)wa_buf_append_str(&body, "}}");
    wa_http_reply(req, status, "application/json", body.data != NULL ? body.data : "", body.len);
    wa_buf_cleanup(&msg);
    wa_buf_cleanup(&body);
}

/* ---- request accessors ---- */

const char *
wa_http_req_method(const struct wa_http_req *req)
{
    return req->method;
}

const char *
wa_http_req_path(const struct wa_http_req *req)
{
    return req->dpath != NULL ? req->dpath : req->path;
}

const char *
wa_http_req_header(const struct wa_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
wa_http_req_query(const struct wa_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->query.n; i++) {
        if (strcmp(req->query.name[i], name) == 0) {
            return req->query.value[i];
        }
    }
    return NULL;
}

void
wa_http_req_peer(const struct wa_http_req *req, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;
    socklen_t len = sa == NULL                  ? 0
                    : sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in);

    if (size == 0) {
        return;
    }
    out[0] = '\0';
    if (sa == NULL || getnameinfo(sa, len, out, (socklen_t)size, NULL, 0, NI_NUMERICHOST) != 0) {
        out[0] = '\0';
    }
}

const char *
wa_http_req_body(const struct wa_http_req *req, size_t *len)
{
    if (len != NULL) {
        *len = req->body.len;
    }
    return req->body.data != NULL ? req->body.data : "";
}

const char *
wa_http_req_id(const struct wa_http_req *req)
{
    return req->id;
}

void
wa_http_req_set_data(struct wa_http_req *req, void *data)
{
    req->data = data;
}

void
wa_http_req_set_abort(struct wa_http_req *req, wa_http_abort_fn fn)
{
    req->abort_fn = fn;
}

/* ---- probes ---- */

static void
on_healthz(struct wa_http_req *req, void *arg)
{
    (void)arg;
    wa_http_reply_json(req, 200, "{\"status\":\"ok\"}");
}

static void
on_readyz(struct wa_http_req *req, void *arg)
{
    struct wa_httpd *h = arg;
    struct wa_buf detail;
    bool ready = true;

    wa_buf_init(&detail, 64 * 1024);
    if (h->ready_fn != NULL) {
        ready = h->ready_fn(h->ready_arg, &detail);
    }
    if (detail.len == 0) {
        (void)wa_buf_append_str(&detail,
                                ready ? "{\"status\":\"ready\"}" : "{\"status\":\"not ready\"}");
    }
    wa_http_reply(req, ready ? 200 : 503, "application/json", detail.data, detail.len);
    wa_buf_cleanup(&detail);
}

static void
on_metrics(struct wa_http_req *req, void *arg)
{
    struct wa_httpd *h = arg;
    struct wa_buf out;

    wa_buf_init(&out, 0);
    if (h->probe_metrics != NULL && h->ready_fn != NULL) {
        /* wa_ready: what /readyz would answer now, so alerts see a daemon that is not ready */
        struct wa_buf detail;
        bool ready;

        wa_buf_init(&detail, 64 * 1024);
        ready = h->ready_fn(h->ready_arg, &detail);
        wa_buf_cleanup(&detail);
        wa_gauge_set(wa_metrics_gauge(h->probe_metrics, "wa_ready",
                                      "1 when GET /readyz answers 200, else 0", NULL),
                     ready ? 1 : 0);
    }
    if (h->probe_metrics != NULL && wa_metrics_render(h->probe_metrics, &out) != WA_OK) {
        wa_buf_cleanup(&out);
        wa_http_reply_error(req, 500, "internal", "could not render the metrics");
        return;
    }
    wa_http_reply(req, 200, "text/plain; version=0.0.4", out.data != NULL ? out.data : "", out.len);
    wa_buf_cleanup(&out);
}

enum wa_err
wa_httpd_serve_probes(struct wa_httpd *h, wa_ready_fn ready, void *ready_arg,
                      struct wa_metrics *metrics)
{
    enum wa_err err;

    h->ready_fn = ready;
    h->ready_arg = ready_arg;
    h->probe_metrics = metrics;
    if ((err = wa_httpd_route(h, "GET", "/healthz", 1, on_healthz, h)) != WA_OK ||
        (err = wa_httpd_route(h, "GET", "/readyz", 1, on_readyz, h)) != WA_OK ||
        (err = wa_httpd_route(h, "GET", "/metrics", 1, on_metrics, h)) != WA_OK) {
        return err;
    }
    return WA_OK;
}

/* ---- lifecycle ---- */

enum wa_err
wa_httpd_new(struct wa_loop *loop, const struct wa_httpd_config *cfg, struct wa_httpd **out,
             struct wa_error *error)
{
    struct wa_httpd *h = NULL;
    char host[256];
    int port;
    enum wa_err err = WA_OK;

    *out = NULL;
    if (cfg == NULL || cfg->listen == NULL ||
        wa_parse_hostport(cfg->listen, host, sizeof(host), &port) != WA_OK) {
        return wa_error_set(error, WA_ECONFIG, "listen address must be host:port, got %s",
                            cfg != NULL && cfg->listen != NULL ? cfg->listen : "(null)");
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    h->loop = loop;
    h->max_body = cfg->max_body != 0 ? cfg->max_body : DEFAULT_MAX_BODY;
    h->max_connections = cfg->max_connections != 0 ? cfg->max_connections : DEFAULT_MAX_CONNS;
    h->conn_timeout_s = cfg->conn_timeout_s != 0 ? cfg->conn_timeout_s : DEFAULT_CONN_TIMEOUT;
    h->conn_memory = cfg->conn_memory != 0 ? cfg->conn_memory : DEFAULT_CONN_MEMORY;
    h->body_budget = cfg->body_budget != 0 ? cfg->body_budget : DEFAULT_BODY_BUDGET;
    h->max_per_ip = cfg->max_per_ip;
    h->metrics = cfg->metrics;
    h->listen = strdup(cfg->listen);
    h->service = cfg->service != NULL ? strdup(cfg->service) : NULL;
    h->timer = wa_timer_new(loop, on_timer, h);
    if (h->listen == NULL || (cfg->service != NULL && h->service == NULL) || h->timer == NULL) {
        err = wa_error_set(error, WA_ENOMEM, "out of memory");
        goto out;
    }
    if (h->metrics != NULL) {
        h->inflight_gauge = wa_metrics_gauge(h->metrics, "wa_http_inflight",
                                             "HTTP requests accepted and not yet answered", NULL);
        h->connections = wa_metrics_counter(h->metrics, "wa_http_connections_total",
                                            "TCP connections accepted by the HTTP server", NULL);
        h->over_budget = wa_metrics_counter(
            h->metrics, "wa_http_body_budget_refusals_total",
            "requests answered 503 because the body budget (WA_HTTP_BODY_BUDGET) was spent", NULL);
    }
    *out = h;
    h = NULL;
out:
    wa_httpd_free(h);
    return err;
}

/* Resolves host (a literal or a name, at start only) into addr. */
static enum wa_err
resolve_listen(const char *host, int port, struct sockaddr_storage *addr, bool *v6,
               struct wa_error *error)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
    struct addrinfo hints = {0}, *res = NULL;
    int rc;

    memset(addr, 0, sizeof(*addr));
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *v6 = false;
        return WA_OK;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return WA_OK;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        return wa_error_set(error, WA_ECONFIG, "cannot resolve listen host %s: %s", host,
                            gai_strerror(rc));
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    if (*v6) {
        a6->sin6_port = htons((uint16_t)port);
    } else {
        a4->sin_port = htons((uint16_t)port);
    }
    freeaddrinfo(res);
    return WA_OK;
}

enum wa_err
wa_httpd_start(struct wa_httpd *h, struct wa_error *error)
{
    struct sockaddr_storage addr;
    const union MHD_DaemonInfo *info;
    char host[256];
    int port;
    bool v6 = false;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    size_t i;
    enum wa_err err;

    if (h->mhd != NULL) {
        return wa_error_set(error, WA_EINVAL, "server already started");
    }
    if (wa_parse_hostport(h->listen, host, sizeof(host), &port) != WA_OK) {
        return wa_error_set(error, WA_ECONFIG, "bad listen address %s", h->listen);
    }
    if ((err = resolve_listen(host, port, &addr, &v6, error)) != WA_OK) {
        return err;
    }
    if (v6) {
        flags |= MHD_USE_IPv6;
    }
    if (h->metrics != NULL) {
        for (i = 0; i < h->nroutes; i++) {
            char route[256], labels[300];
            route_label(&h->routes[i], route, sizeof(route));
            snprintf(labels, sizeof(labels), "route=\"%s\"", route);
            h->routes[i].duration =
                wa_metrics_histogram(h->metrics, "wa_http_request_duration_seconds",
                                     "HTTP request duration, by route", labels, NULL, 0);
        }
    }
    /* the logger must be the first option to catch messages about the others */
    h->mhd = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_access, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
        h->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, h->conn_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, h->conn_memory, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        h->max_per_ip, MHD_OPTION_LISTEN_BACKLOG_SIZE, LISTEN_BACKLOG, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
    if (h->mhd == NULL) {
        return wa_error_set(error, WA_EIO, "cannot listen on %s (address in use?)", h->listen);
    }
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL ||
        wa_io_new(h->loop, info->epoll_fd, WA_IO_READ, on_epoll_ready, h, &h->io) != WA_OK) {
        MHD_stop_daemon(h->mhd);
        h->mhd = NULL;
        return wa_error_set(error, WA_EIO, "cannot watch the HTTP server's epoll descriptor");
    }
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info != NULL ? (int)info->port : port;
    schedule(h);
    wa_log_info(NULL, "http server listening on %s (port %d)", h->listen, h->port);
    return WA_OK;
}

int
wa_httpd_port(const struct wa_httpd *h)
{
    return h->port;
}

size_t
wa_httpd_inflight(const struct wa_httpd *h)
{
    return h->inflight;
}

void
wa_httpd_quiesce(struct wa_httpd *h)
{
    MHD_socket fd;

    if (h == NULL || h->mhd == NULL || h->quiesced) {
        return;
    }
    h->quiesced = true;
    fd = MHD_quiesce_daemon(h->mhd);
    /* Without MHD threads the socket is ours to close at once: new clients are refused
     * instead of waiting in the backlog of a server that will never accept them. */
    if (fd != MHD_INVALID_SOCKET) {
        close(fd);
    }
    schedule(h);
}

static bool
unqueued_replies(const struct wa_httpd *h)
{
    const struct wa_http_req *r;

    for (r = h->reqs; r != NULL; r = r->next) {
        if (r->replied && !r->queued) {
            return true;
        }
    }
    return false;
}

void
wa_httpd_free(struct wa_httpd *h)
{
    struct wa_http_req *req;
    size_t i;
    int round;

    if (h == NULL) {
        return;
    }
    if (h->mhd != NULL) {
        /* MHD must not be stopped with suspended connections: answer them 503 (which resumes
         * them), let their owners forget them, and run MHD until the answers are queued. */
        for (req = h->reqs; req != NULL; req = req->next) {
            if (req->handler_called && !req->replied) {
                wa_http_reply_problem(req, 503, NULL, "the server is shutting down", NULL, 0);
                if (req->abort_fn != NULL) {
                    req->abort_fn(req, req->data);
                }
            }
        }
        for (round = 0; round < FREE_FLUSH_ROUNDS && unqueued_replies(h); round++) {
            MHD_run(h->mhd);
        }
        wa_io_free(h->io);
        h->io = NULL;
        MHD_stop_daemon(h->mhd); /* completes (and so frees) every remaining request */
        h->mhd = NULL;
    }
    wa_timer_free(h->timer);
    for (i = 0; i < h->nroutes; i++) {
        free(h->routes[i].method);
        free(h->routes[i].path);
        free(h->routes[i].mw);
    }
    free(h->routes);
    free(h->listen);
    free(h->service);
    free(h);
}
