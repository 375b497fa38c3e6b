/*
 * httpd.c: the HTTP server of every daemon: libmicrohttpd (MHD) driven by the wa_loop.
 *
 * MHD runs in "external epoll" mode: it owns one epoll descriptor holding the listen socket,
 * its connections and its inter-thread channel; the wa_loop watches that descriptor and calls
 * MHD_run() when it is readable, and a wa_timer fires when MHD_get_timeout() says so (connection
 * timeouts, connections with buffered data). The timer is re-armed after every MHD_run().
 *
 * Life of a request, in the order MHD calls us (on_access, several times per request):
 *   1. headers complete (*con_cls == NULL): allocate struct wa_http_req, pick the id, match the
 *      route; 404/405 and a too large Content-Length are answered at once, without the body.
 *   2. body chunks: appended to req->body (bounded by the route's max_body).
 *   3. final call: the handler runs; if it replied, the response is queued; if not, the
 *      connection is suspended. A later wa_http_reply*() stores the response and resumes the
 *      connection; MHD then calls on_access once more, which queues it (MHD accepts responses
 *      only from inside the access handler).
 *   4. on_completed (MHD_OPTION_NOTIFY_COMPLETED): metrics, then the request is freed. This is
 *      the only place a request is freed. MHD reports completion of a suspended connection only
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

#define DEFAULT_MAX_BODY     (1024u * 1024u)
#define DEFAULT_MAX_CONNS    1024u
#define DEFAULT_CONN_TIMEOUT 10u
#define DEFAULT_CONN_MEMORY  (32u * 1024u)
#define LISTEN_BACKLOG       1024u
#define REQUEST_ID_MAX       64u
#define FREE_FLUSH_ROUNDS    16
#define DISCARD_MIN          (64u * 1024u)

struct route {
    char *method;
    char *path; /* without the trailing '*' when prefix */
    size_t path_len;
    bool prefix;
    size_t max_body;
    wa_http_handler_fn fn;
    void *arg;
    struct wa_histogram *duration;
    /* wa_http_requests_total series already looked up for this route (by method and status):
     * spares the label formatting and the registry search per request */
    struct {
        const char *method; /* one of method_label()'s constants */
        int status;
        struct wa_counter *counter;
    } seen[8];
    size_t nseen;
};

struct reply_header {
    char *name;
    char *value;
    struct reply_header *next;
};

struct wa_http_req {
    struct wa_httpd *h;
    struct MHD_Connection *conn;
    const char *method; /* borrowed from MHD: valid until on_completed */
    const char *path;
    const struct route *route; /* NULL when unmatched */
    struct wa_buf body;
    char id[REQUEST_ID_MAX + 1];
    uint64_t start_us;
    int status;                    /* of the reply; 0 while none */
    struct MHD_Response *response; /* built by the reply, not yet queued */
    struct reply_header *headers;  /* added before the reply */
    bool headers_seen;             /* the first on_access call has happened */
    bool too_big;                  /* the body grew past the limit */
    size_t discarded;              /* body bytes dropped since */
    bool handler_called;
    bool replied;
    bool suspended;
    bool queued;
    void *data;
    wa_http_abort_fn abort_fn;
    struct wa_http_req *prev, *next; /* the server's list of live requests */
};

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

static const struct route *
find_route(const struct wa_httpd *h, const char *method, const char *path, bool *path_known)
{
    size_t i, len = strlen(path);
    const struct route *prefix = NULL;

    *path_known = false;
    for (i = 0; i < h->nroutes; i++) {
        const struct route *r = &h->routes[i];
        bool match = r->prefix ? len >= r->path_len && memcmp(path, r->path, r->path_len) == 0
                               : len == r->path_len && memcmp(path, r->path, len) == 0;
        if (!match) {
            continue;
        }
        *path_known = true;
        if (strcmp(r->method, method) != 0) {
            continue;
        }
        if (!r->prefix) {
            return r; /* an exact match wins over any prefix */
        }
        if (prefix == NULL || r->path_len > prefix->path_len) {
            prefix = r;
        }
    }
    return prefix;
}

/* Writes the methods allowed for path, comma separated, into b (for 405 Allow). */
static void
allowed_methods(const struct wa_httpd *h, const char *path, struct wa_buf *b)
{
    size_t i, j, len = strlen(path);

    for (i = 0; i < h->nroutes; i++) {
        const struct route *r = &h->routes[i];
        bool match = r->prefix ? len >= r->path_len && memcmp(path, r->path, r->path_len) == 0
                               : len == r->path_len && memcmp(path, r->path, len) == 0;
        bool dup = false;
        if (!match) {
            continue;
        }
        for (j = 0; j < i; j++) {
            const struct route *q = &h->routes[j];
            bool qmatch = q->prefix ? len >= q->path_len && memcmp(path, q->path, q->path_len) == 0
                                    : len == q->path_len && memcmp(path, q->path, len) == 0;
            if (qmatch && strcmp(q->method, r->method) == 0) {
                dup = true;
            }
        }
        if (!dup) {
            (void)wa_buf_printf(b, "%s%s", b->len > 0 ? ", " : "", r->method);
        }
    }
}

enum wa_err
wa_httpd_route(struct wa_httpd *h, const char *method, const char *path, size_t max_body,
               wa_http_handler_fn fn, void *arg)
{
    struct route *routes, *r;
    size_t len;

    if (h == NULL || method == NULL || path == NULL || fn == NULL || path[0] != '/' ||
        h->mhd != NULL || strpbrk(path, "\"\\\n") != NULL || strpbrk(method, "\"\\\n ") != NULL) {
        return WA_EINVAL;
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
    if (r->method == NULL || r->path == NULL) {
        free(r->method);
        free(r->path);
        return WA_ENOMEM;
    }
    len = strlen(path);
    r->prefix = path[len - 1] == '*';
    if (r->prefix) {
        r->path[--len] = '\0';
    }
    r->path_len = len;
    r->max_body = max_body != 0 ? max_body : h->max_body;
    r->fn = fn;
    r->arg = arg;
    h->nroutes++;
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
        snprintf(out, size, "%s%s", r->path, r->prefix ? "*" : "");
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

static struct wa_http_req *
req_new(struct wa_httpd *h, struct MHD_Connection *conn, const char *method, const char *path)
{
    struct wa_http_req *req = calloc(1, sizeof(*req));
    const char *given;

    if (req == NULL) {
        return NULL;
    }
    req->h = h;
    req->conn = conn;
    req->method = method;
    req->path = path;
    req->start_us = wa_clock_mono_us();
    given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (sane_request_id(given)) {
        snprintf(req->id, sizeof(req->id), "%s", given);
    } else {
        wa_ulid_new(req->id);
    }
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
    for (hd = req->headers; hd != NULL; hd = next) {
        next = hd->next;
        free(hd->name);
        free(hd->value);
        free(hd);
    }
    if (req->response != NULL) {
        MHD_destroy_response(req->response);
    }
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
    record_request(h, req);
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

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct wa_httpd *h = cls;
    struct wa_http_req *req = *con_cls;
    bool path_known;

    (void)version;
    if (req == NULL) {
        /* 1. headers complete */
        req = req_new(h, conn, method, url);
        if (req == NULL) {
            return MHD_NO;
        }
        *con_cls = req;
        req->headers_seen = true;
        req->route = find_route(h, method, url, &path_known);
        if (req->route == NULL && !path_known) {
            wa_http_reply_error(req, 404, "not_found", "no route for %s", url);
            return queue_reply(req);
        }
        if (req->route == NULL) {
            struct wa_buf allow;
            wa_buf_init(&allow, 1024);
            allowed_methods(h, url, &allow);
            wa_http_reply_header(req, "Allow", allow.data != NULL ? allow.data : "");
            wa_buf_cleanup(&allow);
            wa_http_reply_error(req, 405, "method_not_allowed", "method %s not allowed on %s",
                                method, url);
            return queue_reply(req);
        }
        req->body.max = req->route->max_body;
        if (content_length_above(conn, req->route->max_body)) {
            wa_http_reply_error(req, 413, "body_too_large", "body larger than %zu bytes",
                                req->route->max_body);
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
        if (!req->replied) {
            wa_http_reply_error(req, 413, "body_too_large", "body larger than %zu bytes",
                                req->route->max_body);
        }
        return queue_reply(req);
    }
    if (!req->handler_called) {
        req->handler_called = true;
        req->route->fn(req, req->route->arg);
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
    return req->path;
}

const char *
wa_http_req_header(const struct wa_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
wa_http_req_query(const struct wa_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_each {
    wa_http_query_fn fn;
    void *arg;
};

static enum MHD_Result
on_query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct query_each *q = cls;

    (void)kind;
    q->fn(q->arg, key, value);
    return MHD_YES;
}

void
wa_http_req_query_each(const struct wa_http_req *req, wa_http_query_fn fn, void *arg)
{
    struct query_each q = {fn, arg};

    (void)MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, on_query_arg, &q);
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
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
        h->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, h->conn_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, h->conn_memory, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        LISTEN_BACKLOG, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, h, MHD_OPTION_END);
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
                wa_http_reply_error(req, 503, "shutting_down", "the server is shutting down");
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
    }
    free(h->routes);
    free(h->listen);
    free(h->service);
    free(h);
}
