/*
 * proxy.c: the fan-out routes, after limit.c (the route's scope was checked by auth.c):
 *   GET /v1/messages/{id}, /v1/analytics/...  -> wa-analytics (WA_GATEWAY_ANALYTICS_URL)
 *   /v1/contacts...                          -> wa-users (WA_GATEWAY_USERS_URL)
 *   GET /v1/templates                        -> Cloud API GET /{WABA id}/message_templates
 *   GET, POST /v1/business-profile           -> Cloud API /{phone_number_id}/whatsapp_business_profile
 * The internal services answer with the same paths and problem+json errors: method, path,
 * query (re-encoded), body, request id and traceparent are forwarded, and status, content type
 * and body come back as they are. The Cloud API is called with WA_ACCESS_TOKEN; its errors
 * become problem+json (the client never sees the token or Meta's raw error). An upstream that
 * does not answer is 502 (504 on timeout).
 *
 * Threading: loop thread (libs/httpc). Ownership: struct op lives from the call to its
 * callback; ops in flight are on gw->ops, so the stop hook can cancel and answer them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "wa/httpc.h"
#include "wa/log.h"

enum target { T_PASS, T_GRAPH };

struct op {
    struct wa_list node;
    struct gw_call *c;
    struct wa_httpc_call *call;
    enum target target;
};

static bool
unreserved(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static void
encode(struct wa_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if (unreserved(ch)) {
            (void)wa_buf_append(b, s, 1);
        } else {
            (void)wa_buf_printf(b, "%%%02X", ch);
        }
    }
}

struct query {
    struct wa_buf *b;
    bool first;
};

static void
on_query_arg(void *arg, const char *name, const char *value)
{
    struct query *q = arg;

    (void)wa_buf_append_str(q->b, q->first ? "?" : "&");
    q->first = false;
    encode(q->b, name);
    if (value != NULL) {
        (void)wa_buf_append_str(q->b, "=");
        encode(q->b, value);
    }
}

/* The path as the listener decoded it, encoded again: a decoded "%3F" must not become a query. */
static void
append_path(struct wa_buf *b, const char *path)
{
    for (; *path != '\0'; path++) {
        unsigned char ch = (unsigned char)*path;

        if (unreserved(ch) || strchr("/+:@!$&'()*,;=", ch) != NULL) {
            (void)wa_buf_append(b, path, 1);
        } else {
            (void)wa_buf_printf(b, "%%%02X", ch);
        }
    }
}

static void
append_query(struct gw_call *c, struct wa_buf *b)
{
    struct query q = {b, true};

    wa_http_req_query_each(c->req, on_query_arg, &q);
}

static void
op_end(struct op *o)
{
    wa_list_remove(&o->node);
    free(o);
}

static void
on_answer(const struct wa_httpc_result *res, void *arg)
{
    struct op *o = arg;
    struct gw_call *c = o->c;
    const char *ct = wa_httpc_result_header(res, "Content-Type");
    const char *loc = wa_httpc_result_header(res, "Location");
    enum target target = o->target;

    o->call = NULL;
    op_end(o);
    if (res->err != WA_OK) {
        wa_log_warn(
            &(struct wa_log_ctx){.request_id = c->req != NULL ? wa_http_req_id(c->req) : NULL},
            "upstream of %s: %s", c->req != NULL ? wa_http_req_path(c->req) : "", res->message);
        gw_call_problem(c, res->err == WA_ETIMEDOUT ? 504 : 502,
                        res->err == WA_ETIMEDOUT ? "Gateway Timeout" : "Bad Gateway",
                        "the service behind this resource did not answer; retry later");
        return;
    }
    if (target == T_GRAPH && (res->status < 200 || res->status > 299)) {
        json_t *v = NULL;
        const char *msg = NULL;
        char detail[300];

        if (wa_json_parse(res->body, res->body_len, 8, &v, NULL) == WA_OK) {
            msg = wa_json_path_str(v, "error.message");
        }
        snprintf(detail, sizeof(detail), "the Cloud API answered %ld: %s", res->status,
                 msg != NULL ? msg : "no detail");
        json_decref(v);
        gw_call_problem(c, 502, "Bad Gateway", detail);
        return;
    }
    if (c->req != NULL && loc != NULL) {
        wa_http_reply_header(c->req, "Location", loc);
    }
    gw_call_raw(c, (int)res->status, ct != NULL ? ct : "application/json", res->body,
                res->body_len);
}

/* Sends method url with the request's body (when given) and standard headers. */
static void
send_upstream(struct gw_call *c, enum target target, const char *method, const char *url,
              const char *body, size_t len)
{
    struct gw *gw = c->gw;
    struct wa_httpc_header h[5];
    size_t nh = 0;
    char auth[300];
    struct wa_httpc_request rq = {0};
    struct wa_error err = {0};
    const char *tp = wa_http_req_header(c->req, "traceparent");
    struct op *o = calloc(1, sizeof(*o));

    if (o == NULL) {
        gw_call_problem(c, 503, "Service Unavailable", "out of memory");
        return;
    }
    o->c = c;
    o->target = target;
    h[nh++] = (struct wa_httpc_header){"X-Request-Id", wa_http_req_id(c->req)};
    h[nh++] = (struct wa_httpc_header){"Accept", "application/json"};
    if (body != NULL) {
        h[nh++] = (struct wa_httpc_header){"Content-Type", "application/json"};
    }
    if (tp != NULL) {
        h[nh++] = (struct wa_httpc_header){"traceparent", tp};
    }
    if (target == T_GRAPH) {
        snprintf(auth, sizeof(auth), "Bearer %s", gw->cfg->access_token);
        h[nh++] = (struct wa_httpc_header){"Authorization", auth};
    }
    rq.method = method;
    rq.url = url;
    rq.headers = h;
    rq.nheaders = nh;
    rq.body = body;
    rq.body_len = len;
    rq.timeout_ms = (unsigned)gw->cfg->upstream_timeout_ms;
    if (wa_httpc_send(gw->httpc, &rq, on_answer, o, &o->call, &err) != WA_OK) {
        free(o);
        wa_log_warn(NULL, "upstream call not started: %s", err.message);
        gw_call_problem(c, 502, "Bad Gateway", "the service behind this resource is unreachable");
        return;
    }
    wa_list_push_back(&gw->ops, &o->node);
}

static void
pass(struct gw_call *c, const char *base)
{
    struct wa_buf url;
    const char *body = NULL;
    size_t len = 0;
    const char *method = wa_http_req_method(c->req);

    wa_buf_init(&url, 8192);
    (void)wa_buf_append_str(&url, base);
    append_path(&url, wa_http_req_path(c->req));
    append_query(c, &url);
    if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
        body = wa_http_req_body(c->req, &len);
    }
    send_upstream(c, T_PASS, method, url.data, body, len);
    wa_buf_cleanup(&url);
}

void
gw_proxy_users(struct gw_call *c)
{
    pass(c, c->gw->cfg->users_url);
}

void
gw_proxy_analytics(struct gw_call *c)
{
    pass(c, c->gw->cfg->analytics_url);
}

void
gw_proxy_templates(struct gw_call *c)
{
    struct wa_buf url;

    wa_buf_init(&url, 8192);
    (void)wa_buf_printf(&url, "%s/%s/message_templates", c->gw->cfg->graph_url,
                        c->gw->cfg->waba_id);
    append_query(c, &url);
    send_upstream(c, T_GRAPH, "GET", url.data, NULL, 0);
    wa_buf_cleanup(&url);
}

void
gw_proxy_business_profile(struct gw_call *c)
{
    struct wa_buf url;
    const char *body = NULL;
    char *text = NULL;
    size_t len = 0;
    bool post = strcmp(wa_http_req_method(c->req), "POST") == 0;

    wa_buf_init(&url, 8192);
    (void)wa_buf_printf(&url, "%s/%s/whatsapp_business_profile", c->gw->cfg->graph_url,
                        c->gw->cfg->phone_number_id);
    if (post) {
        struct gw_body_check chk;

        gw_profile_check(c->body, &chk);
        if (chk.n > 0) {
            wa_buf_cleanup(&url);
            gw_call_invalid(c, &chk);
            return;
        }
        /* the Cloud API's body: the client's fields and messaging_product */
        json_object_set_new(c->body, "messaging_product", json_string("whatsapp"));
        text = wa_json_dump(c->body);
        body = text;
        len = text != NULL ? strlen(text) : 0;
    } else {
        (void)wa_buf_append_str(&url, "?fields=about,address,description,email,"
                                      "profile_picture_url,websites,vertical");
    }
    send_upstream(c, T_GRAPH, post ? "POST" : "GET", url.data, body, len);
    free(text);
    wa_buf_cleanup(&url);
}

void
gw_proxy_stop(struct gw *gw)
{
    struct wa_list *pos, *tmp;

    WA_LIST_FOREACH_SAFE(pos, tmp, &gw->ops)
    {
        struct op *o = WA_LIST_ENTRY(pos, struct op, node);
        struct gw_call *c = o->c;

        if (o->call != NULL) {
            wa_httpc_call_cancel(o->call);
        }
        op_end(o);
        gw_call_problem(c, 503, "Service Unavailable", "the gateway is stopping");
    }
}
