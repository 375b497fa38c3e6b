/*
 * health.c: wa-users' metrics (Prometheus, GET /metrics) and readiness probes.
 * Threading: loop thread (updates are atomic anyway).
 */
#include "users.h"

static bool
rebuilt(void *arg)
{
    const struct us *us = arg;

    return us->rebuilt;
}

enum wa_err
us_health_start(struct us *us, struct wa_error *error)
{
    struct wa_metrics *m = wa_service_metrics(us->svc);
    struct us_metrics *x = &us->m;

#define C(field, name, help, labels) x->field = wa_metrics_counter(m, name, help, labels)
    C(consumed, "wa_users_events_total", "events consumed", "outcome=\"consumed\"");
    C(applied, "wa_users_events_total", "events consumed", "outcome=\"applied\"");
    C(ignored, "wa_users_events_total", "events consumed", "outcome=\"no_change\"");
    C(invalid, "wa_users_events_total", "events consumed", "outcome=\"invalid\"");
    C(failures, "wa_users_failures_total", "applies that failed (then retried)", NULL);
    C(entries, "wa_users_ledger_entries_total", "consent ledger entries appended", NULL);
    C(duplicates, "wa_users_duplicates_total",
      "events already applied (redeliveries): ledger entry present or message counted", NULL);
    C(keys_set, "wa_users_suppression_keys_total", "optout keys written", "op=\"set\"");
    C(keys_deleted, "wa_users_suppression_keys_total", "optout keys written", "op=\"del\"");
#undef C
    x->latency = wa_metrics_histogram(m, "wa_users_event_seconds",
                                      "consume to every side effect acknowledged", NULL, NULL, 0);
    if (x->consumed == NULL || x->latency == NULL || x->keys_deleted == NULL) {
        return wa_error_set(error, WA_ENOMEM, "metrics registry full");
    }
    if (wa_service_probe(us->svc, "suppression", rebuilt, us) != WA_OK) {
        return wa_error_set(error, WA_ENOMEM, "probe");
    }
    return us_consume_probe(us, error);
}
