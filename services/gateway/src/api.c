/*
 * api.c: the entry of every API request (README.md "Flow"): the route table, the request
 * limits that need no state (credentials in the query string 400, 404/405, content type 415,
 * JSON nesting 400; body size 413 and header size 431 are the listener's), then the stages in
 * order: auth.c (gw_auth_start) -> limit.c (gw_limit_start) -> gw_api_dispatch -> the route's
 * handler. Every error is an RFC 9457 problem+json answer.
 *
 * Ownership: one struct gw_call per request, made here and freed by the gw_call_* reply
 * functions, exactly once. When the listener gives up on a request (shutdown), its abort hook
 * clears c->req; the stage still holding c answers into nothing and frees it.
 * Threading: loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway.h"
#include "wa/clock.h"
#include "wa/log.h"

enum {
    R_PUBLIC = 1u << 0, /* no credentials: limited per client address */
    R_JSON = 1u << 1,   /* a JSON body is required */
};

struct gw_route {
    const char *method;
    const char *tpl; /* wa_http_path_match template */
    unsigned scope;  /* required scope bits (all of them) */
    unsigned flags;
    void (*fn)(struct gw_call *c);
};

static const struct gw_route routes[] = {
    {"POST", "/v1/messages", GW_SCOPE_MESSAGES_SEND, R_JSON, gw_messages_post},
    {"GET", "/v1/messages/{id}", GW_SCOPE_MESSAGES_READ, 0, gw_proxy_analytics},
    {"GET", "/v1/contacts", GW_SCOPE_CONTACTS_READ, 0, gw_proxy_users},
    {"GET", "/v1/contacts/{id}", GW_SCOPE_CONTACTS_READ, 0, gw_proxy_users},
    {"PUT", "/v1/contacts/{id}", GW_SCOPE_CONTACTS_WRITE, R_JSON, gw_proxy_users},
    {"PATCH", "/v1/contacts/{id}", GW_SCOPE_CONTACTS_WRITE, R_JSON, gw_proxy_users},
    {"DELETE", "/v1/contacts/{id}", GW_SCOPE_CONTACTS_WRITE, 0, gw_proxy_users},
    {"GET", "/v1/contacts/{id}/consent", GW_SCOPE_CONTACTS_READ, 0, gw_proxy_users},
    {"POST", "/v1/contacts/{id}/consent", GW_SCOPE_CONTACTS_WRITE, R_JSON, gw_proxy_users},
    {"GET", "/v1/contacts/{id}/export", GW_SCOPE_CONTACTS_READ, 0, gw_proxy_users},
    {"GET", "/v1/analytics/summary", GW_SCOPE_ANALYTICS_READ, 0, gw_proxy_analytics},
    {"GET", "/v1/analytics/series", GW_SCOPE_ANALYTICS_READ, 0, gw_proxy_analytics},
    {"GET", "/v1/analytics/kpis", GW_SCOPE_ANALYTICS_READ, 0, gw_proxy_analytics},
    {"GET", "/v1/templates", GW_SCOPE_MESSAGES_READ, 0, gw_proxy_templates},
    {"GET", "/v1/business-profile", GW_SCOPE_MESSAGES_READ, 0, gw_proxy_business_profile},
    {"POST", "/v1/business-profile", GW_SCOPE_ADMIN, R_JSON, gw_proxy_business_profile},
    {"GET", "/v1/links/click-to-chat", 0, R_PUBLIC, gw_links_click_to_chat},
    {"GET", "/v1/links/click-to-chat.png", 0, R_PUBLIC, gw_links_qr},
    {"GET", "/v1/health", 0, R_PUBLIC, gw_health_get},
    {"GET", "/v1/openapi.json", 0, R_PUBLIC, gw_openapi_get},
    {"POST", "/v1/admin/keys", GW_SCOPE_ADMIN, R_JSON, gw_admin_keys_create},
    {"GET", "/v1/admin/keys", GW_SCOPE_ADMIN, 0, gw_admin_keys_list},
    {"DELETE", "/v1/admin/keys/{id}", GW_SCOPE_ADMIN, 0, gw_admin_keys_delete},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Query parameters that carry credentials elsewhere; refused so keys never sit in URLs (and in
 * the access logs of every proxy on the way). */
static const char *const query_credentials[] = {"api_key", "apikey",       "key",
                                                "token",   "access_token", "authorization"};

static void
call_free(struct gw_call *c)
{
    if (c->req != NULL) {
        wa_http_req_set_data(c->req, NULL);
    }
    json_decref(c->body);
    free(c);
}

static void
on_abort(struct wa_http_req *req, void *data)
{
    struct gw_call *c = data;

    (void)req;
    if (c != NULL) {
        c->req = NULL; /* the stage holding c frees it when its callback runs */
    }
}

void
gw_call_problem(struct gw_call *c, int status, const char *title, const char *detail)
{
    if (c->req != NULL) {
        wa_http_reply_problem(c->req, status, title, detail, NULL, 0);
    }
    call_free(c);
}

void
gw_call_invalid(struct gw_call *c, const struct gw_body_check *chk)
{
    struct wa_http_problem_field f[GW_FIELD_ERRORS_MAX];

    for (size_t i = 0; i < chk->n; i++) {
        f[i].pointer = chk->errors[i].pointer;
        f[i].detail = chk->errors[i].detail;
    }
    if (c->req != NULL) {
        wa_http_reply_problem(c->req, 422, "Unprocessable Content",
                              "the request has invalid fields", f, chk->n);
    }
    call_free(c);
}

void
gw_call_json(struct gw_call *c, int status, const char *json)
{
    if (c->req != NULL) {
        wa_http_reply_json(c->req, status, json);
    }
    call_free(c);
}

void
gw_call_empty(struct gw_call *c, int status)
{
    gw_call_raw(c, status, "application/json", "", 0);
}

void
gw_call_raw(struct gw_call *c, int status, const char *content_type, const void *body, size_t len)
{
    if (c->req != NULL) {
        wa_http_reply(c->req, status, content_type, body, len);
    }
    call_free(c);
}

void
gw_call_reply_value(struct gw_call *c, int status, json_t *v)
{
    char *text = v != NULL ? wa_json_dump(v) : NULL;

    json_decref(v);
    if (text == NULL) {
        gw_call_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    gw_call_json(c, status, text);
    free(text);
}

void
gw_api_dispatch(struct gw_call *c)
{
    c->route->fn(c);
}

static bool
json_content_type(const char *ct)
{
    size_t n = strlen("application/json");

    return ct != NULL && strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void
on_request(struct wa_http_req *req, void *arg)
{
    struct gw *gw = arg;
    const char *method = wa_http_req_method(req), *path = wa_http_req_path(req);
    const struct gw_route *route = NULL;
    struct gw_call *c = calloc(1, sizeof(*c));
    char allow[64] = "";
    size_t n;

    if (c == NULL) {
        wa_http_reply_problem(req, 503, "Service Unavailable", "out of memory", NULL, 0);
        return;
    }
    c->gw = gw;
    c->req = req;
    c->started_us = wa_clock_mono_us();
    wa_http_req_set_data(req, c);
    wa_http_req_set_abort(req, on_abort);
    for (size_t i = 0; i < sizeof(query_credentials) / sizeof(query_credentials[0]); i++) {
        if (wa_http_req_query(req, query_credentials[i]) != NULL) {
            wa_counter_inc(gw->m.auth_invalid);
            gw_call_problem(c, 400, "Bad Request",
                            "credentials are accepted only in the Authorization header");
            return;
        }
    }
    for (size_t i = 0; i < NROUTES; i++) {
        if (!wa_http_path_match(routes[i].tpl, path, c->params, 2, &n)) {
            continue;
        }
        if (strcmp(routes[i].method, method) == 0) {
            route = &routes[i];
            c->nparams = n;
            break;
        }
        if (strstr(allow, routes[i].method) == NULL) {
            snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
                     allow[0] != '\0' ? ", " : "", routes[i].method);
        }
    }
    if (route == NULL && allow[0] != '\0') {
        wa_http_reply_header(req, "Allow", allow);
        gw_call_problem(c, 405, "Method Not Allowed", "this path does not take that method");
        return;
    }
    if (route == NULL) {
        gw_call_problem(c, 404, "Not Found", "no such resource");
        return;
    }
    c->route = route;
    if ((route->flags & R_JSON) != 0) {
        struct wa_error err = {0};
        size_t len;
        const char *body = wa_http_req_body(req, &len);
        enum wa_err e;

        if (!json_content_type(wa_http_req_header(req, "Content-Type"))) {
            gw_call_problem(c, 415, "Unsupported Media Type", "the body must be application/json");
            return;
        }
        e = wa_json_parse(body, len, (size_t)gw->cfg->json_depth, &c->body, &err);
        if (e == WA_ELIMIT) {
            char detail[96];

            snprintf(detail, sizeof(detail), "the JSON body is nested deeper than %lld levels",
                     (long long)gw->cfg->json_depth);
            gw_call_problem(c, 400, "Bad Request", detail);
            return;
        }
        if (e != WA_OK) {
            gw_call_problem(c, 400, "Bad Request", "the body is not valid JSON");
            return;
        }
    }
    if ((route->flags & R_PUBLIC) != 0) {
        char peer[64];

        wa_http_req_peer(req, peer, sizeof(peer));
        snprintf(c->principal, sizeof(c->principal), "ip:%.60s",
                 peer[0] != '\0' ? peer : "unknown");
        gw_limit_start(c);
        return;
    }
    gw_auth_start(c);
}

bool
gw_api_scope_ok(const struct gw_call *c)
{
    return (c->scopes & c->route->scope) == c->route->scope;
}

const char *
gw_api_scope_name(const struct gw_call *c)
{
    const char *name = gw_scope_name(c->route->scope);

    return name != NULL ? name : "";
}

enum wa_err
gw_api_start(struct gw *gw, struct wa_error *error)
{
    /* every method reaches on_request, so 404 and 405 (with the route's own Allow) are ours */
    static const char *const methods[] = {"GET",    "POST", "PUT",     "PATCH",
                                          "DELETE", "HEAD", "OPTIONS", "TRACE"};
    struct wa_httpd *h = wa_service_httpd(gw->svc);

    wa_httpd_problem_errors(h, true); /* 413 and the listener's other answers: problem+json */

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (wa_httpd_route(h, methods[i], "/v1/*", (size_t)gw->cfg->max_body, on_request, gw) !=
            WA_OK) {
            return wa_error_set(error, WA_ENOMEM, "route %s /v1/*", methods[i]);
        }
    }
    return WA_OK;
}
