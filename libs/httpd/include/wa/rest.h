/*
 * wa/rest.h: the REST layer of libs/httpd: route tables with path templates and middleware,
 * path and query parameters, RFC 9457 problem answers, the enum wa_err -> HTTP status mapping,
 * JSON bodies validated by a libs/json schema, and opaque tamper-evident page cursors.
 *
 *   static const struct wa_http_route routes[] = {
 *       {"GET", "/v1/contacts/{id}", get_contact, 0},
 *       {"POST", "/v1/contacts/{id}/consent", post_consent, 64 * 1024},
 *   };
 *   struct wa_http_mw mw[] = {{"auth", check_token, st}, wa_http_mw_json(&consent_schema)};
 *   wa_httpd_routes(h, routes, 2, mw, 2, st, error);
 *
 * Routing (wa_httpd_route/wa_httpd_routes, wa/httpd.h): a path is literal ("/healthz"), a
 * template ("/v1/contacts/{id}/consent": "{name}" is one whole non-empty segment, matched
 * after the segments are split and then percent-decoded), or a prefix ("/files/" then "*"). The most
 * specific match wins: literal, then templates (more literal segments first, then the order of
 * registration), then the longest prefix. A path that matches with another method only is
 * 405 with Allow; a parameter with a bad escape or %00 is 400; no match is 404: all answered by
 * the server as problem+json.
 *
 * Middleware: each route has a chain (copied at registration) run in order once the body is
 * read, before the handler. A middleware either answers (any wa_http_reply*: the chain ends)
 * or hands on with wa_http_next(req), at once or later from the loop (after a Redis round
 * trip, a timer, ...): the request stays suspended meanwhile. While it holds the request it
 * may set the abort hook (wa_http_req_set_abort) like a handler; wa_http_next() clears the
 * request's data and abort hook for the next owner.
 *
 * Every response carries X-Request-Id (the client's if 1-64 of [A-Za-z0-9._:-], else a ULID)
 * and traceparent (a child of the client's valid traceparent, else a new trace).
 *
 * Threading: loop thread only, except the pure functions (marked) which are safe anywhere.
 */
#ifndef WA_REST_H
#define WA_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "wa/err.h"
#include "wa/httpd.h"
#include "wa/json.h"
#include "wa/traceparent.h"

/* ---- routes and middleware ---- */

/* One row of a route table (strings borrowed for the call, copied). */
struct wa_http_route {
    const char *method;
    const char *path;      /* literal, template or prefix (see above) */
    wa_http_handler_fn fn; /* gets the arg given to wa_httpd_routes */
    size_t max_body;       /* 0: the server's default */
};

typedef void (*wa_http_mw_fn)(struct wa_http_req *req, void *arg);

/* One middleware: name (for logs; borrowed, static storage), function and its argument. */
struct wa_http_mw {
    const char *name;
    wa_http_mw_fn fn;
    void *arg;
};

/*
 * Adds every route of the table with the same middleware chain (mw[0..nmw), copied; may be
 * NULL) and handler argument. Before wa_httpd_start. WA_EINVAL names a bad row in error.
 */
enum wa_err wa_httpd_routes(struct wa_httpd *h, const struct wa_http_route *routes, size_t n,
                            const struct wa_http_mw *mw, size_t nmw, void *arg,
                            struct wa_error *error);

/* Hands the request to the next middleware or the handler. Exactly once per middleware that
 * does not answer; ignored (and logged) after a reply. */
void wa_http_next(struct wa_http_req *req);

/* A path parameter ("id" of "/v1/contacts/{id}"), percent-decoded, NUL-free; NULL if the
 * route has none of that name. Borrowed until the reply. */
const char *wa_http_req_param(const struct wa_http_req *req, const char *name);
/* The matched route's path as registered ("/v1/contacts/{id}"), NULL if none. */
const char *wa_http_req_route(const struct wa_http_req *req);
/* This request's traceparent (also sent as the response's traceparent header). */
const char *wa_http_req_traceparent(const struct wa_http_req *req);
/* Query parameters ("?tag=a&tag=b"): wa_http_req_query (wa/httpd.h) gives the first value;
 * this fills values[0..max) with every value of name in order and returns how many there are.
 * Decoded ('+' is a space), borrowed until the reply. A malformed query string (bad escape,
 * %00, more than WA_HTTP_QUERY_MAX parameters) is answered 400 before any middleware runs. */
size_t wa_http_req_query_all(const struct wa_http_req *req, const char *name, const char **values,
                             size_t max);
/* Request attributes: small strings a middleware leaves for the handler ("tenant", "key_id").
 * Copied; at most WA_HTTP_ATTR_MAX per request (WA_ELIMIT), WA_ENOMEM. */
#define WA_HTTP_ATTR_MAX 8
enum wa_err wa_http_req_set_attr(struct wa_http_req *req, const char *name, const char *value);
const char *wa_http_req_attr(const struct wa_http_req *req, const char *name);

/* ---- problems (RFC 9457 application/problem+json) ---- */

/*
 * One invalid input of a problem answer: pointer is a JSON pointer into the body ("/priority",
 * "" for the whole body), written as "pointer"; any other string names a query or path
 * parameter ("limit"), written as "parameter". Borrowed.
 */
struct wa_http_problem_field {
    const char *pointer;
    const char *detail;
};

struct wa_http_problem {
    int status;
    const char *type;   /* a URI; NULL: "about:blank" */
    const char *title;  /* NULL: the status's reason phrase */
    const char *detail; /* NULL: omitted */
    const struct wa_http_problem_field *errors;
    size_t nerrors;
};

/* Answers {"type","title","status","detail","instance" (the path),"request_id","errors":[...]}
 * ("errors" only when there are some). Everything borrowed for the call. */
void wa_http_reply_problemx(struct wa_http_req *req, const struct wa_http_problem *p);
/* The same with type "about:blank". title NULL: the reason phrase; detail NULL: omitted. */
void wa_http_reply_problem(struct wa_http_req *req, int status, const char *title,
                           const char *detail, const struct wa_http_problem_field *fields,
                           size_t nfields);
/* A problem for an error code: status wa_http_status(err), detail (may be NULL). */
void wa_http_reply_err(struct wa_http_req *req, enum wa_err err, const char *detail);
/* 422 with one errors[] entry per violation (see wa/json.h, wa_json_validate). */
void wa_http_reply_invalid(struct wa_http_req *req, const struct wa_json_violations *v);

/*
 * The one mapping of enum wa_err to an HTTP status (pure): OK 200, EINVAL 422, EPARSE 400,
 * EAUTH 401, ENOTFOUND 404, EEXIST 409, ETOOBIG 413, ELIMIT 429, EAGAIN/EUNAVAIL/ECLOSED/ENOMEM
 * 503, ETIMEDOUT 504, EIO 502, ECONFIG/EINTERNAL (and anything else) 500.
 */
int wa_http_status(enum wa_err err);
/* The reason phrase of a status ("Unprocessable Content"); "Error" if unknown. Pure. */
const char *wa_http_reason(int status);

/* ---- JSON bodies ---- */

/*
 * A middleware that parses the body as JSON (nesting limit WA_JSON_DEPTH_DEFAULT) and, when
 * schema is not NULL, validates it (wa_json_validate): 415 for a Content-Type that is not JSON,
 * 400 for malformed JSON, 422 naming every violation. The schema is borrowed for the server's
 * life. The document is then wa_http_req_json().
 */
struct wa_http_mw wa_http_mw_json(const struct wa_json_validator *schema);
/* The body parsed by wa_http_mw_json: borrowed until the reply; NULL without that middleware. */
json_t *wa_http_req_json(const struct wa_http_req *req);

/* ---- page cursors ---- */

/*
 * A cursor is the caller's position (a few bytes: the last sort key, an offset) sealed with
 * HMAC-SHA256 and bound to a scope (the listing and its filters, e.g. "contacts?tag=vip"), so
 * clients can neither forge nor move it to another listing. Opaque text of [0-9a-f].
 */
#define WA_HTTP_CURSOR_STATE_MAX 256
#define WA_HTTP_CURSOR_MAX       (2 * (1 + WA_HTTP_CURSOR_STATE_MAX + 16) + 1)
struct wa_http_cursors;
/* Keys a new sealer with a copy of secret (at least 16 bytes); secret NULL: a random key, so
 * cursors die with the process. free with wa_http_cursors_free(). WA_EINVAL, WA_ENOMEM. */
enum wa_err wa_http_cursors_new(const void *secret, size_t len, struct wa_http_cursors **out);
void wa_http_cursors_free(struct wa_http_cursors *c);
/* Writes the cursor of state[0..len) in scope into out. WA_ETOOBIG past the maximum. */
enum wa_err wa_http_cursor_seal(struct wa_http_cursors *c, const char *scope, const void *state,
                                size_t len, char out[WA_HTTP_CURSOR_MAX]);
/* Recovers the state of a cursor sealed in the same scope into state (max bytes): WA_EINVAL
 * for anything else (malformed, forged, another scope or key), in constant time per length. */
enum wa_err wa_http_cursor_open(struct wa_http_cursors *c, const char *scope, const char *cursor,
                                void *state, size_t max, size_t *len);

/*
 * The usual page parameters: "limit" (1..max_limit, default def_limit) and "cursor" (opened in
 * scope). On success *limit is set and state[0..*len) holds the cursor's position (*len 0: the
 * first page). On bad input returns WA_EINVAL and fills *bad naming the parameter.
 */
enum wa_err wa_http_page_params(const struct wa_http_req *req, struct wa_http_cursors *c,
                                const char *scope, size_t def_limit, size_t max_limit,
                                size_t *limit, void *state, size_t max, size_t *len,
                                struct wa_http_problem_field *bad);

/* ---- pure helpers the server uses (exposed for tests and fuzzing) ---- */

#define WA_HTTP_PARAMS_MAX 8
/* Path parameters: name[i] points into the template (name_len[i] bytes, not NUL-terminated);
 * value[i] is decoded, NUL-terminated, in the caller's buffer. */
struct wa_http_params {
    size_t n;
    const char *name[WA_HTTP_PARAMS_MAX];
    size_t name_len[WA_HTTP_PARAMS_MAX];
    const char *value[WA_HTTP_PARAMS_MAX];
};

/*
 * Matches path (raw, still percent-encoded) against a template. WA_OK with the parameters
 * decoded into buf (size >= strlen(path) + 1 always suffices); WA_ENOTFOUND when the shapes
 * differ; WA_EPARSE when the shape matches but a parameter has a bad escape or %00, or there
 * are more than WA_HTTP_PARAMS_MAX; WA_ETOOBIG when buf is too small. Pure.
 */
enum wa_err wa_http_template_match(const char *tpl, const char *path, char *buf, size_t size,
                                   struct wa_http_params *out);

/*
 * Percent-decodes s[0..n) into out (size bytes, NUL-terminated); plus_space: '+' is a space
 * (query strings). Returns the decoded length, or -1 for a bad escape, %00, or no room. Pure.
 */
ssize_t wa_http_pct_decode(const char *s, size_t n, bool plus_space, char *out, size_t size);

#define WA_HTTP_QUERY_MAX 64
struct wa_http_query {
    size_t n;
    const char *name[WA_HTTP_QUERY_MAX];
    const char *value[WA_HTTP_QUERY_MAX]; /* "" for "?flag" */
};
/*
 * Parses a raw query string ("a=1&b=x+y&c"; without the '?') into out, names and values
 * decoded into buf (size >= len + 1 suffices). Empty pieces ("a=1&&b") are skipped. WA_EPARSE
 * (the message names the parameter) for a bad escape or %00, WA_ELIMIT past WA_HTTP_QUERY_MAX
 * parameters, WA_ETOOBIG when buf is too small. Pure.
 */
enum wa_err wa_http_query_parse(const char *raw, size_t len, char *buf, size_t size,
                                struct wa_http_query *out, struct wa_error *error);

/* Legacy (until its last caller moves to routes): matches like wa_http_template_match, the
 * values copied into params[0..*n). */
#define WA_HTTP_PARAM_MAX 256
bool wa_http_path_match(const char *tpl, const char *path, char params[][WA_HTTP_PARAM_MAX],
                        size_t max, size_t *n);

#endif
