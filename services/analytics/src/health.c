/*
 * health.c: wa-analytics' metrics (README.md, "Metrics") and the KPI gauges: every
 * WA_ANALYTICS_KPI_INTERVAL the go-live checks are computed over the WA_ANALYTICS_KPI_PERIOD
 * before now, exactly as GET /v1/analytics/kpis computes them, and exported as
 * wa_analytics_kpi_value{kpi} and wa_analytics_kpi_pass{kpi} so alert rules can use them.
 *
 * Threading: loop thread.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "wa/clock.h"
#include "wa/log.h"
#include "wa/loop.h"
#include "wa/metrics.h"

struct an_kpi_job {
    struct an_scan scan;
};

static const char *const topic_labels[] = {
    "topic=\"outbound.request\"", "topic=\"outbound.result\"", "topic=\"inbound.status\"",
    "topic=\"inbound.message\"",  "topic=\"contact.event\"",   "topic=\"other\"",
};

static void
on_kpi_scan(struct an_scan *scan, enum wa_err err, void *arg)
{
    struct an_kpi_job *job = arg;
    struct an *an = scan->an;
    struct an_totals t;
    struct an_kpi k[AN_NKPIS];

    if (an != NULL) {
        an->kpi_job = NULL;
        if (err == WA_OK) {
            json_decref(an_scan_summary(scan, &t));
            an_kpis(&t, k);
            for (size_t i = 0; i < AN_NKPIS; i++) {
                wa_gauge_set(an->m.kpi_value[i], k[i].value);
                wa_gauge_set(an->m.kpi_pass[i], k[i].pass ? 1 : 0);
            }
            wa_gauge_set(an->m.kpi_messages, (double)t.messages);
            an_totals_clear(&t);
        } else if (err != WA_ECLOSED) {
            wa_log_warn(NULL, "KPI gauges not updated: %s", wa_err_name(err));
        }
    }
    an_scan_cleanup(scan);
    free(job);
}

static void
on_kpi_timer(struct wa_timer *timer, void *arg)
{
    struct an *an = arg;
    struct an_kpi_job *job;
    struct wa_error error = {0};
    const struct an_tz *utc;

    (void)timer;
    if (an->kpi_job != NULL || an->draining || (utc = an_zone(an, "UTC", &error)) == NULL ||
        (job = calloc(1, sizeof(*job))) == NULL) {
        return;
    }
    job->scan.q.to_ms = (int64_t)wa_clock_wall_ms();
    job->scan.q.from_ms = job->scan.q.to_ms - an->cfg->kpi_period_ms;
    job->scan.tz = utc;
    if (an_scan_start(an, &job->scan, on_kpi_scan, job) != WA_OK) {
        free(job);
        return;
    }
    an->kpi_job = job;
}

enum wa_err
an_health_start(struct an *an, struct wa_error *error)
{
    struct wa_metrics *m = an->metrics;

    for (size_t i = 0; i < sizeof(topic_labels) / sizeof(topic_labels[0]); i++) {
        an->m.events[i] = wa_metrics_counter(m, "wa_analytics_events_total",
                                             "events consumed, by topic", topic_labels[i]);
    }
    an->m.malformed = wa_metrics_counter(m, "wa_analytics_events_malformed_total",
                                         "events that could not be read (skipped, logged)", NULL);
    an->m.ignored = wa_metrics_counter(m, "wa_analytics_events_ignored_total",
                                       "events that record nothing (read receipts, ...)", NULL);
    an->m.batches = wa_metrics_counter(m, "wa_analytics_batches_total",
                                       "batches written to MongoDB and committed", NULL);
    an->m.write_errors = wa_metrics_counter(m, "wa_analytics_write_errors_total",
                                            "batch writes that failed (retried)", NULL);
    static const double sizes[] = {1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

    an->m.batch_size =
        wa_metrics_histogram(m, "wa_analytics_batch_events", "events per batch written", NULL,
                             sizes, sizeof(sizes) / sizeof(sizes[0]));
    for (size_t i = 0; i < AN_NKPIS; i++) {
        static const char *const labels[AN_NKPIS] = {
            "kpi=\"delivery_rate\"", "kpi=\"average_latency_seconds\"", "kpi=\"reply_rate\""};

        an->m.kpi_value[i] = wa_metrics_gauge(m, "wa_analytics_kpi_value",
                                              "go-live check value (NaN without data)", labels[i]);
        an->m.kpi_pass[i] = wa_metrics_gauge(m, "wa_analytics_kpi_pass",
                                             "1 when the go-live check passes", labels[i]);
        wa_gauge_set(an->m.kpi_value[i], NAN);
    }
    an->m.kpi_messages = wa_metrics_gauge(m, "wa_analytics_kpi_messages",
                                          "messages the KPI gauges were computed from", NULL);
    if ((an->kpi_timer = wa_timer_new(an->loop, on_kpi_timer, an)) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    wa_timer_start(an->kpi_timer, 1000, (uint64_t)an->cfg->kpi_interval_ms);
    return WA_OK;
}

void
an_health_stop(struct an *an)
{
    wa_timer_free(an->kpi_timer);
    an->kpi_timer = NULL;
    if (an->kpi_job != NULL) {
        an->kpi_job->scan.an = NULL; /* its callback frees it */
        an->kpi_job = NULL;
    }
}
