/*
 * health.c: wa-router's metrics (Prometheus, GET /metrics) and readiness. Per-rule series are
 * labelled with the rule name, which the rules file bounds (1-63 of [A-Za-z0-9_.-]), so the
 * number of series stays bounded by the rules ever loaded.
 * Threading: loop thread (updates are atomic anyway).
 */
#include <stdio.h>

#include "router.h"
#include "wa/kafka.h"
#include "wa/kv.h"

enum wa_err
rt_health_start(struct rt *rt, struct wa_error *error)
{
    struct wa_metrics *m = wa_service_metrics(rt->svc);
    struct rt_metrics *x = &rt->m;

#define C(field, name, help, labels) x->field = wa_metrics_counter(m, name, help, labels)
    C(consumed, "wa_router_messages_total", "inbound messages consumed", "outcome=\"consumed\"");
    C(processed, "wa_router_messages_total", "inbound messages consumed", "outcome=\"processed\"");
    C(duplicates, "wa_router_messages_total", "inbound messages consumed", "outcome=\"duplicate\"");
    C(invalid, "wa_router_messages_total", "inbound messages consumed", "outcome=\"invalid\"");
    C(failures, "wa_router_failures_total", "messages whose actions failed (then retried)", NULL);
    C(retries, "wa_router_retries_total", "messages processed again after a failure", NULL);
    C(reloads, "wa_router_reloads_total", "rules reloads", "outcome=\"ok\"");
    C(reload_failures, "wa_router_reloads_total", "rules reloads", "outcome=\"rejected\"");
    C(window_events, "wa_router_window_events_total", "window-expiring/closed events", NULL);
    C(crm_sent, "wa_router_crm_records_total", "CRM records", "outcome=\"delivered\"");
    C(crm_failed, "wa_router_crm_records_total", "CRM records", "outcome=\"failed_attempt\"");
    C(crm_retried, "wa_router_crm_records_total", "CRM records", "outcome=\"retry_scheduled\"");
    C(crm_dlq, "wa_router_crm_records_total", "CRM records", "outcome=\"dead_lettered\"");
    C(crm_limited, "wa_router_crm_rate_limited_total",
      "CRM deliveries that waited for a token of the shared rate limit", NULL);
    C(reminders_scheduled, "wa_router_reminders_total", "reminders", "outcome=\"scheduled\"");
    C(reminders_fired, "wa_router_reminders_total", "reminders", "outcome=\"fired\"");
    C(reminders_cancelled, "wa_router_reminders_total", "reminders", "outcome=\"cancel_checked\"");
    C(erasures, "wa_router_erasures_total", "erased contacts whose conversation keys were deleted",
      NULL);
#undef C
    x->latency = wa_metrics_histogram(m, "wa_router_message_seconds",
                                      "consume to every action acknowledged", NULL, NULL, 0);
    x->rules = wa_metrics_gauge(m, "wa_router_rules", "rules loaded", NULL);
    if (x->consumed == NULL || x->latency == NULL) {
        return wa_error_set(error, WA_ENOMEM, "metrics registry full");
    }
    return WA_OK;
}

void
rt_health_rules(struct rt *rt, struct rt_ruleset *rs)
{
    char labels[128];

    for (size_t i = 0; rs != NULL && i < rs->nrules; i++) {
        snprintf(labels, sizeof(labels), "rule=\"%s\"", rs->rules[i].name);
        rs->rules[i].hits =
            wa_metrics_counter(wa_service_metrics(rt->svc), "wa_router_rule_hits_total",
                               "messages matched per rule", labels);
    }
    wa_gauge_set(rt->m.rules, rs != NULL ? (double)rs->nrules : 0);
}

void
rt_health_action(struct rt *rt, const char *rule, enum rt_action_kind kind, bool ok)
{
    char labels[160];

    snprintf(labels, sizeof(labels), "rule=\"%s\",action=\"%s\",outcome=\"%s\"", rule,
             rt_action_name(kind), ok ? "ok" : "failed");
    wa_counter_inc(wa_metrics_counter(wa_service_metrics(rt->svc), "wa_router_actions_total",
                                      "actions run per rule, kind and outcome", labels));
}
