/*
 * wa/httpd.h: HTTP server on the wa_loop (libmicrohttpd in external epoll mode).
 *
 * Routes are (method, path) pairs; a path is literal, a template with "{name}" segments, or a
 * prefix ending in "*" (wa/rest.h: matching order, middleware, parameters). Each route has a
 * body limit: a larger Content-Length, or a body that grows past it, is answered 413 before the
 * handler runs. Unknown paths get 404, a known path with another method 405 with Allow, all as
 * RFC 9457 application/problem+json (wa_http_reply_problem, wa/rest.h).
 *
 * Handlers run on the loop thread once the whole body is read. A handler answers with exactly
 * one wa_http_reply*() call, either before returning or later (then the connection is suspended
 * until the reply; that is how a handler waits for Kafka acks without blocking the loop).
 * struct wa_http_req is owned by the server: borrowed by the handler until its reply, and freed
 * when the response is complete. Every request gets an id (X-Request-Id if the client sent a
 * sane one, else a ULID) echoed in the X-Request-Id response header, and a traceparent (a child
 * of the client's, else a new trace) sent back in the traceparent header.
 */
#ifndef WA_HTTPD_H
#define WA_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

#include "wa/buf.h"
#include "wa/err.h"
#include "wa/loop.h"
#include "wa/metrics.h"

struct wa_httpd;
struct wa_http_req;

struct wa_httpd_config {
    const char *listen;         /* "host:port"; port 0 picks a free one (see wa_httpd_port) */
    size_t max_body;            /* default body limit for routes that give 0; default 1 MiB */
    unsigned max_connections;   /* default 1024 */
    unsigned conn_timeout_s;    /* idle/slow connection timeout; default 10 */
    size_t conn_memory;         /* per-connection read buffer (bounds headers); default 16 KiB */
    size_t body_budget;         /* request bodies held at once, all connections; default 64 MiB;
                                   a request that would pass it gets 503 with Retry-After */
    unsigned max_per_ip;        /* connections from one client address; 0: no limit */
    struct wa_metrics *metrics; /* optional: requests by route and status, latency */
    const char *service;        /* for logs and the Server header; borrowed */
};

typedef void (*wa_http_handler_fn)(struct wa_http_req *req, void *arg);

/* Returns a new server in *out, not yet listening. free with wa_httpd_free(). */
enum wa_err wa_httpd_new(struct wa_loop *loop, const struct wa_httpd_config *cfg,
                         struct wa_httpd **out, struct wa_error *error);
/* Adds a route (strings copied). max_body 0 = the server default. Before wa_httpd_start. */
enum wa_err wa_httpd_route(struct wa_httpd *h, const char *method, const char *path,
                           size_t max_body, wa_http_handler_fn fn, void *arg);
/* Binds and starts serving on the loop. */
enum wa_err wa_httpd_start(struct wa_httpd *h, struct wa_error *error);
/* The bound port (useful with port 0). */
int wa_httpd_port(const struct wa_httpd *h);
/* Stops accepting new connections; requests in progress continue. */
void wa_httpd_quiesce(struct wa_httpd *h);
/* Number of requests accepted whose response is not complete yet. */
size_t wa_httpd_inflight(const struct wa_httpd *h);
/* Closes everything and frees. Suspended requests are answered 503 first. Accepts NULL. */
void wa_httpd_free(struct wa_httpd *h);

/* The server's own errors (404, 405, 413, and wa_http_reply_error) as RFC 9457 problem+json
 * (wa_http_reply_problem, title the status's reason phrase) instead of {"error": ...}: for
 * public APIs that answer every error that way. Before or after start. */
void wa_httpd_problem_errors(struct wa_httpd *h, bool on);

/* Built-in probes: GET /healthz (always 200 while the loop runs), GET /readyz (200 or 503 with
 * the JSON detail from ready_fn), GET /metrics (Prometheus text of metrics). */
typedef bool (*wa_ready_fn)(void *arg, struct wa_buf *detail_json);
enum wa_err wa_httpd_serve_probes(struct wa_httpd *h, wa_ready_fn ready, void *ready_arg,
                                  struct wa_metrics *metrics);

/* ---- request accessors: borrowed until the reply ---- */
const char *wa_http_req_method(const struct wa_http_req *req);
/* The path without the query, percent-decoded (routes match the raw path segment by segment,
 * so a "%2F" inside a parameter stays in it; see wa_http_req_param). */
const char *wa_http_req_path(const struct wa_http_req *req);
/* Header value (case-insensitive name) or NULL. */
const char *wa_http_req_header(const struct wa_http_req *req, const char *name);
/* The first value of a query parameter (decoded, '+' is a space) or NULL. */
const char *wa_http_req_query(const struct wa_http_req *req, const char *name);
/* Calls fn(arg, name, value) for every query argument in order, decoded (value NULL for a
 * bare "?flag"); the strings are borrowed during the call. */
typedef void (*wa_http_query_fn)(void *arg, const char *name, const char *value);
void wa_http_req_query_each(const struct wa_http_req *req, wa_http_query_fn fn, void *arg);
/* The client's address in numeric form ("127.0.0.1", "::1") into out; "" when unknown. */
void wa_http_req_peer(const struct wa_http_req *req, char *out, size_t size);
/* The raw body bytes (NUL-terminated for convenience; len excludes the NUL). */
const char *wa_http_req_body(const struct wa_http_req *req, size_t *len);
const char *wa_http_req_id(const struct wa_http_req *req);
/* Per-request user pointer, e.g. the state of a pending asynchronous reply; the abort callback
 * below gets it back. */
void wa_http_req_set_data(struct wa_http_req *req, void *data);
/*
 * Called on the loop thread when the server gives up on a request whose handler still owes its
 * reply (only in wa_httpd_free(), which answers it 503): data is the request's user pointer.
 * The owner of the pending reply must forget req here; req is invalid once fn returns.
 */
typedef void (*wa_http_abort_fn)(struct wa_http_req *req, void *data);
void wa_http_req_set_abort(struct wa_http_req *req, wa_http_abort_fn fn);

/* ---- replies: exactly one per request, on the loop thread ---- */
/* Adds a response header (copied); call before the reply. */
void wa_http_reply_header(struct wa_http_req *req, const char *name, const char *value);
/* Copies body. */
void wa_http_reply(struct wa_http_req *req, int status, const char *content_type, const void *body,
                   size_t len);
/* Closes the connection without any answer (fault injection, hostile clients). Counts as the
 * request's one reply. */
void wa_http_reply_drop(struct wa_http_req *req);
void wa_http_reply_json(struct wa_http_req *req, int status, const char *json);
/* {"error":{"code":code,"message":<formatted>,"request_id":...}} with the given status: for
 * APIs that mimic that shape (webhook ingress, the simulator's control API); REST APIs answer
 * problems (wa/rest.h). */
void wa_http_reply_error(struct wa_http_req *req, int status, const char *code, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));

/* Routes with templates and middleware, problem answers, cursors: wa/rest.h, included here
 * (last, after everything it uses) so one include gives the server and its REST layer. */
#include "wa/rest.h"

#endif
