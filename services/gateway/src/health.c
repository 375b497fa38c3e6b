/*
 * health.c: wa-gateway's metrics (Prometheus, GET /metrics; label values are fixed words: never
 * a key, a path or an address) and GET /v1/health: the /readyz of every daemon in
 * WA_GATEWAY_HEALTH_TARGETS, asked at once (2 s each), and this gateway's own, in the shape of
 * Meta's on-premises client: {"health": {"<daemon>:<host:port>": {"gateway_status":
 * "connected" | "disconnected", "role", "errors"?: [{"code": 1011, "title": "Service not
 * ready", "details"}]}}}, 200 when every node is ready, else 503. Readiness of this process
 * (/readyz) is the scaffolding's (Kafka producer, Redis, MongoDB).
 * Threading: loop thread. Ownership: struct agg lives until its answer; in flight on
 * gw->health_ops so the stop hook can cancel it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "wa/httpc.h"
#include "wa/kafka.h"
#include "wa/kv.h"
#include "wa/mongo.h"

enum wa_err
gw_health_start(struct gw *gw, struct wa_error *error)
{
    struct wa_metrics *m = wa_service_metrics(gw->svc);
    struct gw_metrics *x = &gw->m;

#define C(field, name, help, labels) x->field = wa_metrics_counter(m, name, help, labels)
    C(auth_ok, "wa_gateway_auth_total", "authentication outcomes", "result=\"ok\"");
    C(auth_missing, "wa_gateway_auth_total", "authentication outcomes", "result=\"missing\"");
    C(auth_invalid, "wa_gateway_auth_total", "authentication outcomes", "result=\"invalid\"");
    C(auth_forbidden, "wa_gateway_auth_total", "authentication outcomes", "result=\"forbidden\"");
    C(auth_unavailable, "wa_gateway_auth_total", "authentication outcomes",
      "result=\"unavailable\"");
    C(limit_allowed, "wa_gateway_ratelimit_total", "rate limit decisions", "result=\"allowed\"");
    C(limit_limited, "wa_gateway_ratelimit_total", "rate limit decisions", "result=\"limited\"");
    C(limit_local, "wa_gateway_ratelimit_local_total",
      "decisions of the process-local limiter (Redis unavailable)", NULL);
    C(msg_accepted, "wa_gateway_messages_total", "POST /v1/messages outcomes",
      "outcome=\"accepted\"");
    C(msg_invalid, "wa_gateway_messages_total", "POST /v1/messages outcomes",
      "outcome=\"invalid\"");
    C(msg_replayed, "wa_gateway_messages_total", "POST /v1/messages outcomes",
      "outcome=\"replayed\"");
    C(msg_conflict, "wa_gateway_messages_total", "POST /v1/messages outcomes",
      "outcome=\"conflict\"");
    C(msg_failed, "wa_gateway_messages_total", "POST /v1/messages outcomes", "outcome=\"failed\"");
#undef C
    x->publish_latency = wa_metrics_histogram(
        m, "wa_gateway_publish_seconds",
        "POST /v1/messages from arrival to Kafka's acknowledgement", NULL, NULL, 0);
    if (x->auth_ok == NULL || x->msg_failed == NULL || x->publish_latency == NULL ||
        x->limit_local == NULL) {
        return wa_error_set(error, WA_ENOMEM, "metrics registry full");
    }
    return WA_OK;
}

/* ---- GET /v1/health: every daemon's readiness in the shape of Meta's on-premises client ---- */

#define TARGETS_MAX 16

struct probe {
    struct agg *agg;
    struct wa_httpc_call *call;
    char name[64];  /* "wa-ingest" */
    char node[192]; /* "wa-ingest:127.0.0.1:8081" */
    bool ready;
    char details[160];
};

struct agg {
    struct wa_list node;
    struct gw_call *c;
    size_t n, pending;
    struct probe probes[TARGETS_MAX];
};

/* "http://host:port/..." -> "host:port" */
static void
authority(const char *url, char *out, size_t size)
{
    const char *p = strstr(url, "://");
    size_t n;

    p = p != NULL ? p + 3 : url;
    n = strcspn(p, "/");
    snprintf(out, size, "%.*s", (int)n, p);
}

static json_t *
node_entry(const char *name, bool ready, const char *details)
{
    const char *role = strncmp(name, "wa-", 3) == 0 ? name + 3 : name;
    json_t *e = json_pack("{s:s, s:s}", "gateway_status", ready ? "connected" : "disconnected",
                          "role", role);

    if (e != NULL && !ready) {
        json_object_set_new(e, "errors",
                            json_pack("[{s:i, s:s, s:s}]", "code", 1011, "title",
                                      "Service not ready", "details", details));
    }
    return e;
}

static void
agg_reply(struct agg *a)
{
    struct gw_call *c = a->c;
    struct gw *gw = c->gw;
    bool all = true, self;
    char node[256];
    json_t *health = json_object();

    self = wa_kafka_producer_ready(gw->producer) && wa_kv_ready(gw->kv) &&
           wa_mongo_ready(gw->mongo) && !wa_service_stopping(gw->svc);
    snprintf(node, sizeof(node), "wa-gateway:%s", wa_service_common(gw->svc)->listen);
    json_object_set_new(health, node,
                        node_entry("wa-gateway", self, "Kafka, Redis or MongoDB not answering"));
    all = self;
    for (size_t i = 0; i < a->n; i++) {
        json_object_set_new(
            health, a->probes[i].node,
            node_entry(a->probes[i].name, a->probes[i].ready, a->probes[i].details));
        all = all && a->probes[i].ready;
    }
    wa_list_remove(&a->node);
    free(a);
    gw_call_reply_value(c, all ? 200 : 503, json_pack("{s:o}", "health", health));
}

static void
on_probe(const struct wa_httpc_result *res, void *arg)
{
    struct probe *p = arg;
    struct agg *a = p->agg;

    p->call = NULL;
    p->ready = res->err == WA_OK && res->status == 200;
    /* the route is public: say what failed, not the daemon's own words (hosts, dependencies) */
    if (res->err != WA_OK) {
        snprintf(p->details, sizeof(p->details), "no answer (%s)",
                 res->err == WA_ETIMEDOUT ? "timed out" : "unreachable");
    } else if (!p->ready) {
        snprintf(p->details, sizeof(p->details), "/readyz answered %ld", res->status);
    }
    if (--a->pending == 0) {
        agg_reply(a);
    }
}

void
gw_health_get(struct gw_call *c)
{
    struct gw *gw = c->gw;
    struct agg *a = calloc(1, sizeof(*a));
    const char *t = gw->cfg->health_targets;

    if (a == NULL) {
        gw_call_problem(c, 503, "Service Unavailable", "out of memory");
        return;
    }
    a->c = c;
    wa_list_push_back(&gw->health_ops, &a->node);
    while (t != NULL && *t != '\0' && a->n < TARGETS_MAX) {
        size_t len = strcspn(t, ","), eq;
        struct probe *p = &a->probes[a->n];
        char item[512], url[600];
        struct wa_httpc_request rq = {0};

        snprintf(item, sizeof(item), "%.*s", (int)len, t);
        t += len + (t[len] == ',');
        eq = strcspn(item, "=");
        if (item[eq] != '=') {
            continue;
        }
        item[eq] = '\0';
        p->agg = a;
        snprintf(p->name, sizeof(p->name), "%.60s", item);
        authority(item + eq + 1, url, sizeof(url));
        snprintf(p->node, sizeof(p->node), "%.60s:%.120s", item, url);
        snprintf(url, sizeof(url), "%s/readyz", item + eq + 1);
        rq.url = url;
        rq.timeout_ms = 2000;
        a->n++;
        a->pending++;
        if (wa_httpc_send(gw->httpc, &rq, on_probe, p, &p->call, NULL) != WA_OK) {
            a->pending--;
            p->call = NULL;
            snprintf(p->details, sizeof(p->details), "%s", "could not be asked");
        }
    }
    if (a->pending == 0) {
        agg_reply(a);
    }
}

void
gw_health_stop(struct gw *gw)
{
    struct wa_list *pos, *tmp;

    WA_LIST_FOREACH_SAFE(pos, tmp, &gw->health_ops)
    {
        struct agg *a = WA_LIST_ENTRY(pos, struct agg, node);
        struct gw_call *c = a->c;

        for (size_t i = 0; i < a->n; i++) {
            if (a->probes[i].call != NULL) {
                wa_httpc_call_cancel(a->probes[i].call);
            }
        }
        wa_list_remove(&a->node);
        free(a);
        gw_call_problem(c, 503, "Service Unavailable", "the gateway is stopping");
    }
}
