/*
 * httpd_int.h: what httpd.c (the server) and rest.c (routes' middleware, problems, cursors)
 * share: the request and the route. Private to libs/httpd. Loop thread only.
 */
#ifndef WA_HTTPD_INT_H
#define WA_HTTPD_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "wa/buf.h"
#include "wa/rest.h"

#define REQUEST_ID_MAX 64u

struct MHD_Connection;
struct MHD_Response;

enum route_kind { ROUTE_LITERAL, ROUTE_TEMPLATE, ROUTE_PREFIX };

struct route {
    char *method;
    char *path; /* as registered, without the trailing '*' of a prefix */
    size_t path_len;
    enum route_kind kind;
    size_t literals; /* templates: literal segments (the more, the more specific) */
    size_t max_body;
    wa_http_handler_fn fn;
    void *arg;
    struct wa_http_mw *mw; /* the chain, copied */
    size_t nmw;
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
    const char *method;        /* borrowed from MHD: valid until on_completed */
    const char *path;          /* raw (percent-encoded), without the query: routes match it */
    char *dpath;               /* the path percent-decoded once: wa_http_req_path */
    const struct route *route; /* NULL when unmatched */
    struct wa_buf body;
    char id[REQUEST_ID_MAX + 1];
    char traceparent[WA_TRACEPARENT_LEN];
    uint64_t start_us;
    int status;                    /* of the reply; 0 while none */
    struct MHD_Response *response; /* built by the reply, not yet queued */
    struct reply_header *headers;  /* added before the reply */
    char *raw_query;               /* copied from the request line; NULL when none */
    bool query_parsed;
    struct wa_http_query query;
    char *query_buf;
    struct wa_http_params params;
    char *param_buf;
    struct {
        char *name, *value;
    } attrs[WA_HTTP_ATTR_MAX];
    size_t nattrs;
    json_t *json;        /* the body parsed by wa_http_mw_json */
    size_t next_mw;      /* the chain's next step: mw[next_mw], or the handler at nmw */
    bool headers_seen;   /* the first on_access call has happened */
    bool too_big;        /* the body grew past the limit */
    bool over_budget;    /* the server's body budget was spent: 503 */
    size_t body_charged; /* bytes of the server's body budget this request holds */
    size_t discarded;    /* body bytes dropped since */
    bool handler_called; /* the chain started */
    bool replied;
    bool suspended;
    bool queued;
    void *data;
    wa_http_abort_fn abort_fn;
    struct wa_http_req *prev, *next; /* the server's list of live requests */
};

/* rest.c: parses req->raw_query into req->query. WA_OK, or an error described in error. */
enum wa_err rest_query_prepare(struct wa_http_req *req, struct wa_error *error);

#endif
