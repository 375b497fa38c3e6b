/*
 * health.c: metrics, readiness and reload of wa-notify (beside the flow).
 *
 * /readyz checks: "kafka", "kafka_consumer" and "redis" (the scaffolding's), one
 * "token:<phone_number_id>" per sending number (down after a 0/190 answer until SIGHUP brings a
 * token: WA_ACCESS_TOKEN_FILE is read again; without it the same token is tried again), and
 * "cloud_api" (the circuit breaker is not open). Metrics are listed in README.md.
 *
 * Threading: loop thread (metric updates are atomic and could come from anywhere).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify.h"
#include "wa/clock.h"
#include "wa/log.h"

static bool
cloud_ready(void *arg)
{
    struct nt *nt = arg;

    return nt_breaker_state(&nt->breaker, wa_clock_mono_ms()) != 1;
}

static bool
token_ready(void *arg)
{
    const struct nt_number *num = arg;

    return !num->token_bad && num->token[0] != '\0';
}

static void
on_breaker_timer(struct wa_timer *t, void *arg)
{
    struct nt *nt = arg;

    (void)t;
    wa_gauge_set(nt->g_breaker, nt_breaker_state(&nt->breaker, wa_loop_now(nt->loop)));
    nt_pace_pump_all(nt);
}

enum wa_err
nt_health_start(struct nt *nt, struct wa_error *error)
{
    struct wa_metrics *m = nt->metrics;
    static const double pacing_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,     2.5,  5,     10,   30,  60};

    nt->g_inflight =
        wa_metrics_gauge(m, "wa_notify_in_flight", "requests consumed, not finished", NULL);
    nt->g_http =
        wa_metrics_gauge(m, "wa_notify_http_in_flight", "Cloud API requests in flight", NULL);
    nt->g_queued =
        wa_metrics_gauge(m, "wa_notify_queued", "requests waiting for a send token", NULL);
    nt->g_breaker = wa_metrics_gauge(m, "wa_notify_breaker_state",
                                     "circuit breaker: 0 closed, 1 open, 2 half-open", NULL);
    nt->g_lag = wa_metrics_gauge(m, "wa_notify_lag_seconds",
                                 "age of the last consumed request when it arrived", NULL);
    nt->c_retries = wa_metrics_counter(m, "wa_notify_retries_total", "retries scheduled", NULL);
    nt->c_takeover = wa_metrics_counter(m, "wa_notify_claim_takeovers_total",
                                        "sends after an expired claim (possible duplicates)", NULL);
    nt->c_dup =
        wa_metrics_counter(m, "wa_notify_redelivered_sent_total",
                           "redelivered requests answered from the record, not resent", NULL);
    nt->c_malformed = wa_metrics_counter(m, "wa_notify_malformed_total",
                                         "unreadable events sent raw to the DLQ", NULL);
    nt->c_held = wa_metrics_counter(m, "wa_notify_held_total",
                                    "requests held in memory for not_before", NULL);
    nt->g_parked = wa_metrics_gauge(m, "wa_notify_parked",
                                    "requests in the parking store (Redis) at the last scan", NULL);
    nt->c_parked = wa_metrics_counter(m, "wa_notify_parked_total",
                                      "requests parked until a later not_before", NULL);
    nt->c_released = wa_metrics_counter(m, "wa_notify_released_total",
                                        "parked requests republished when due", NULL);
    nt->c_registry_failures =
        wa_metrics_counter(m, "wa_notify_template_registry_failures_total",
                           "template category lookups the Cloud API did not answer", NULL);
    nt->h_latency = wa_metrics_histogram(m, "wa_notify_send_latency_seconds",
                                         "Cloud API request latency", NULL, NULL, 0);
    nt->h_req_to_send = wa_metrics_histogram(m, "wa_notify_request_to_send_seconds",
                                             "from consumed to the Cloud API request", NULL,
                                             pacing_bounds, WA_ARRAY_LEN(pacing_bounds));
    nt->h_pacing = wa_metrics_histogram(m, "wa_notify_pacing_delay_seconds",
                                        "time spent waiting for a send token", NULL, pacing_bounds,
                                        WA_ARRAY_LEN(pacing_bounds));
    nt->breaker_timer = wa_timer_new(nt->loop, on_breaker_timer, nt);
    if (nt->breaker_timer == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    if (wa_service_probe(nt->svc, "cloud_api", cloud_ready, nt) != WA_OK) {
        return wa_error_set(error, WA_ELIMIT, "too many readiness probes");
    }
    return WA_OK;
}

void
nt_health_number(struct nt_number *num)
{
    struct nt *nt = num->nt;
    char labels[128], name[96];

    snprintf(labels, sizeof(labels), "number=\"%s\"", num->id);
    num->stopped = wa_metrics_gauge(nt->metrics, "wa_notify_token_stopped",
                                    "1 while the number is stopped by a rejected token", labels);
    wa_gauge_set(num->stopped, 0);
    snprintf(name, sizeof(name), "token:%s", num->id);
    if (wa_service_probe(nt->svc, name, token_ready, num) != WA_OK) {
        wa_log_warn(NULL, "no readiness probe left for %s", name);
    }
}

void
nt_health_count_send(struct nt *nt, const char *outcome, bool has_code, int64_t code)
{
    char labels[96];

    /* Codes outside Meta's table are folded into "other" so the series stay bounded. */
    if (!has_code) {
        snprintf(labels, sizeof(labels), "outcome=\"%s\",code=\"none\"", outcome);
    } else if (wa_whatsapp_error_lookup(code) != NULL) {
        snprintf(labels, sizeof(labels), "outcome=\"%s\",code=\"%lld\"", outcome, (long long)code);
    } else {
        snprintf(labels, sizeof(labels), "outcome=\"%s\",code=\"other\"", outcome);
    }
    wa_counter_inc(wa_metrics_counter(nt->metrics, "wa_notify_sends_total",
                                      "Cloud API sends by outcome and code", labels));
}

void
nt_health_count_result(struct nt *nt, const char *status, const char *reason)
{
    char labels[96];

    snprintf(labels, sizeof(labels), "status=\"%s\",reason=\"%s\"", status, reason);
    wa_counter_inc(wa_metrics_counter(nt->metrics, "wa_notify_results_total",
                                      "results by status and reason", labels));
}

/* Reads WA_ACCESS_TOKEN_FILE (the Kubernetes secret) into a new string; NULL when unset. */
static char *
read_token_file(void)
{
    const char *path = getenv("WA_ACCESS_TOKEN_FILE");
    char buf[8192];
    size_t n;
    FILE *f;

    if (path == NULL || path[0] == '\0' || (f = fopen(path, "r")) == NULL) {
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
        n--;
    }
    buf[n] = '\0';
    return strdup(buf);
}

void
nt_health_reload(struct nt *nt)
{
    char *tokens = read_token_file();

    for (struct nt_number *num = nt->numbers; num != NULL; num = num->next) {
        if (tokens != NULL &&
            nt_config_lookup(tokens, num->id, num->token, sizeof(num->token)) != WA_OK) {
            wa_log_warn(NULL, "WA_ACCESS_TOKEN_FILE has no token for %s", num->id);
        }
        if (num->token_bad) {
            wa_log_info(NULL, "number %s resumes with the %s token", num->id,
                        tokens != NULL ? "re-read" : "configured");
        }
        num->token_bad = false;
        wa_gauge_set(num->stopped, 0);
    }
    free(tokens);
    nt_pace_pump_all(nt);
}

bool
nt_busy(const struct nt *nt)
{
    for (const struct nt_req *r = nt->all; r != NULL; r = r->next_all) {
        if (r->state == NT_REQ_CLAIM || r->state == NT_REQ_SEND || r->state == NT_REQ_RECORD ||
            r->state == NT_REQ_RESULT) {
            return true;
        }
    }
    return false;
}
