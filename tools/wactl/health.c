/*
 * health.c: `wactl health`: GET /readyz of each daemon (all at once, through wa::httpc on one
 * loop), or the gateway's GET /v1/health ({"health": {"<daemon>:<host:port>": {"gateway_status":
 * "connected" | "disconnected", "errors"?}}}). One line per daemon; the exit status is the worst:
 * 3 unreachable > 1 not ready > 0 ready.
 */
#include <stdio.h>
#include <string.h>

#include "wa/httpc.h"
#include "wa/json.h"
#include "wactl.h"

static const char *const default_urls[] = {
    "http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1:8082",
    "http://127.0.0.1:8083", "http://127.0.0.1:8084", "http://127.0.0.1:8085",
};

struct probe {
    struct wx *x;
    struct wa_loop *loop;
    const char *base;
    char url[512];
    int rc;
    size_t *pending;
};

/* Prints the daemon's name and the checks that are not "up" from a /readyz body. */
static void
print_checks(const char *body, size_t len)
{
    json_t *root = NULL, *checks, *v;
    const char *name;

    if (wa_json_parse(body, len, 16, &root, NULL) != WA_OK) {
        printf(" -");
        return;
    }
    name = wa_json_str(root, "service");
    printf(" %s", name != NULL ? name : "-");
    checks = json_object_get(root, "checks");
    json_object_foreach(checks, name, v)
    {
        if (!json_is_string(v) || strcmp(json_string_value(v), "up") != 0) {
            printf(" %s=%s", name, json_is_string(v) ? json_string_value(v) : "?");
        }
    }
    json_decref(root);
}

/* The gateway's GET /v1/health (Meta's on-premises shape): one line per node. */
static void
print_nodes(const char *body, size_t len)
{
    json_t *root = NULL, *node;
    const char *name;

    if (wa_json_parse(body, len, 16, &root, NULL) != WA_OK ||
        !json_is_object(json_object_get(root, "health"))) {
        printf("  (no health object in the answer)\n");
        json_decref(root);
        return;
    }
    json_object_foreach(json_object_get(root, "health"), name, node)
    {
        const char *st = wa_json_str(node, "gateway_status");
        const char *details = wa_json_path_str(node, "errors.0.details");

        printf("  %-40s %s%s%s\n", name, st != NULL ? st : "?", details != NULL ? " " : "",
               details != NULL ? details : "");
    }
    json_decref(root);
}

static void
on_answer(const struct wa_httpc_result *res, void *arg)
{
    struct probe *p = arg;

    if (res->err != WA_OK) {
        printf("%-24s unreachable (%s)\n", p->base, res->message);
        p->rc = WX_UNAVAIL;
    } else if (p->x->json) {
        printf("{\"url\":\"%s\",\"status\":%ld,\"body\":%s}\n", p->base, res->status,
               res->body_len > 0 && res->body[0] == '{' ? res->body : "null");
        p->rc = res->status == 200 ? WX_OK : WX_NO;
    } else {
        printf("%-24s %s", p->base, res->status == 200 ? "ready" : "NOT READY");
        if (res->status != 200 && res->status != 503) {
            printf(" (HTTP %ld)", res->status);
        }
        if (p->x->gateway != NULL) {
            printf(" (gateway)\n");
            print_nodes(res->body, res->body_len);
        } else {
            print_checks(res->body, res->body_len);
            printf("\n");
        }
        p->rc = res->status == 200 ? WX_OK : WX_NO;
    }
    if (--*p->pending == 0) {
        wa_loop_stop(p->loop);
    }
}

int
wx_cmd_health(struct wx *x)
{
    struct wa_httpc_config hc = {.timeout_ms = x->timeout_ms > 0 ? (unsigned)x->timeout_ms : 5000,
                                 .connect_timeout_ms = 2000,
                                 .max_response = 1 << 20};
    struct probe probes[WX_MAX_URLS];
    const char *const *urls = x->urls;
    size_t n = x->nurls, pending = 0;
    struct wa_httpc *http = NULL;
    struct wa_loop *loop = NULL;
    struct wa_error error = {0};
    int rc = WX_OK;

    if (x->nargs > 0) {
        fprintf(stderr, "wactl health: unexpected argument '%s'\n", x->args[0]);
        return WX_USAGE;
    }
    if (x->gateway != NULL) {
        urls = &x->gateway;
        n = 1;
    } else if (n == 0) {
        urls = default_urls;
        n = WA_ARRAY_LEN(default_urls);
    }
    if (wa_loop_new(&loop) != WA_OK || wa_httpc_new(loop, &hc, &http, &error) != WA_OK) {
        fprintf(stderr, "wactl: %s\n", error.message[0] ? error.message : "cannot start");
        wa_loop_free(loop);
        return WX_UNAVAIL;
    }
    for (size_t i = 0; i < n; i++) {
        struct probe *p = &probes[i];
        struct wa_httpc_request rq = {.method = "GET", .url = p->url};
        size_t blen = strlen(urls[i]);

        *p =
            (struct probe){.x = x, .loop = loop, .base = urls[i], .rc = WX_OK, .pending = &pending};
        while (blen > 0 && urls[i][blen - 1] == '/') {
            blen--;
        }
        snprintf(p->url, sizeof(p->url), "%.*s%s", (int)blen, urls[i],
                 x->gateway != NULL ? "/v1/health" : "/readyz");
        if (wa_httpc_send(http, &rq, on_answer, p, NULL, &error) != WA_OK) {
            fprintf(stderr, "wactl: %s: %s\n", p->url, error.message);
            p->rc = WX_USAGE;
            continue;
        }
        pending++;
    }
    if (pending > 0) {
        (void)wa_loop_run(loop);
    }
    for (size_t i = 0; i < n; i++) { /* the worst: 0 < 1 not ready < 2 < 3 unreachable */
        rc = probes[i].rc > rc ? probes[i].rc : rc;
    }
    wa_httpc_free(http);
    wa_loop_free(loop);
    return rc;
}
