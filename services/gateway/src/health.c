/*
 * health.c: wa-gateway's metrics (Prometheus, GET /metrics). Readiness is the scaffolding's
 * (Kafka producer, Redis, MongoDB). Label values are fixed words: never a key, a path or an
 * address. Threading: loop thread (updates are atomic anyway).
 */
#include "gateway.h"

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
