/*
 * health.c: wa-ingest's metrics series and readiness (beside the stages; not in the flow).
 *
 * Series (Prometheus, prefix wa_ingest_): requests_total{outcome}, signature_failures_total,
 * duplicates_total{kind}, events_total{type}, malformed_items_total, dedup_failures_total,
 * spool_written_total (requests), spool_replayed_total (records), spool_bytes, spool_files,
 * spool_damaged_total{kind=corrupt|refused} (damaged frames skipped, their file quarantined;
 * records Kafka refused for good, moved to a dead-letter file), spool_write_failures_total,
 * spool_writable (1 when the last write or probe succeeded),
 * inflight, ack_seconds (receive to durable, histogram). The HTTP server adds per-route status
 * counts (413s appear there: they are answered before the handler runs).
 * Readiness: "durable" (Kafka connected or the spool writable; the spool alone once Kafka was
 * seen or 10 s after start) decides; "kafka", "redis" and "spool" (last write or writability
 * probe succeeded) are reported, advisory.
 */
#include "wa/clock.h"
#include "wa/kafka.h"

#include "ingest.h"

static bool
spool_ready(void *arg)
{
    struct ig *ig = arg;

    return ig->spool == NULL || ig_spool_ready(ig->spool);
}

/* A webhook can be made durable: Kafka is connected, or the spool takes writes. At start the
 * spool alone counts only after DURABLE_GRACE_MS without Kafka, so a pod that is starting waits
 * for its broker as before instead of spooling its first webhooks. */
#define DURABLE_GRACE_MS 10000

static bool
durable_ready(void *arg)
{
    struct ig *ig = arg;

    if (wa_kafka_producer_ready(ig->producer)) {
        ig->kafka_seen = true;
        return true;
    }
    return spool_ready(ig) &&
           (ig->kafka_seen || wa_clock_mono_ms() - ig->started_ms >= DURABLE_GRACE_MS);
}

enum wa_err
ig_health_start(struct ig *ig, struct wa_error *error)
{
    static const char *const outcomes[IG_OUT__COUNT] = {
        "outcome=\"ok\"",           "outcome=\"spooled\"",     "outcome=\"unparsed\"",
        "outcome=\"unauthorized\"", "outcome=\"bad_request\"", "outcome=\"unavailable\""};
    static const char *const kinds[4] = {"type=\"message\"", "type=\"status\"", "type=\"account\"",
                                         "type=\"raw\""};
    struct wa_metrics *m = wa_service_metrics(ig->svc);
    struct ig_metrics *s = &ig->m;

    ig->started_ms = wa_clock_mono_ms();

    for (int i = 0; i < IG_OUT__COUNT; i++) {
        s->requests[i] = wa_metrics_counter(m, "wa_ingest_requests_total",
                                            "webhook POSTs by outcome", outcomes[i]);
    }
    for (int i = 0; i < 4; i++) {
        s->events[i] = wa_metrics_counter(m, "wa_ingest_events_total",
                                          "events published (or spooled) by type", kinds[i]);
    }
    s->duplicates[0] = wa_metrics_counter(m, "wa_ingest_duplicates_total",
                                          "redelivered updates skipped", "kind=\"message\"");
    s->duplicates[1] = wa_metrics_counter(m, "wa_ingest_duplicates_total",
                                          "redelivered updates skipped", "kind=\"status\"");
    s->signature_failures = wa_metrics_counter(m, "wa_ingest_signature_failures_total",
                                               "POSTs with a missing or wrong signature", NULL);
    s->malformed_items = wa_metrics_counter(m, "wa_ingest_malformed_items_total",
                                            "webhook items skipped (kept in webhook.raw)", NULL);
    s->dedup_failures =
        wa_metrics_counter(m, "wa_ingest_dedup_failures_total",
                           "Redis unavailable for dedup: published unchecked", NULL);
    s->spool_written = wa_metrics_counter(m, "wa_ingest_spool_written_total",
                                          "requests written to the spool", NULL);
    s->spool_replayed = wa_metrics_counter(m, "wa_ingest_spool_replayed_total",
                                           "records replayed from the spool into Kafka", NULL);
    s->spool_damaged[0] = wa_metrics_counter(
        m, "wa_ingest_spool_damaged_total",
        "spooled records set aside: damaged frames (file kept as quarantine-*), records Kafka "
        "refused for good (kept in dead-letter-*)",
        "kind=\"corrupt\"");
    s->spool_damaged[1] = wa_metrics_counter(
        m, "wa_ingest_spool_damaged_total",
        "spooled records set aside: damaged frames (file kept as quarantine-*), records Kafka "
        "refused for good (kept in dead-letter-*)",
        "kind=\"refused\"");
    s->spool_write_failures =
        wa_metrics_counter(m, "wa_ingest_spool_write_failures_total",
                           "spool writes that failed (a full disk): those webhooks got 503", NULL);
    s->spool_writable =
        wa_metrics_gauge(m, "wa_ingest_spool_writable",
                         "1 when the last spool write or probe succeeded (readiness)", NULL);
    s->spool_bytes = wa_metrics_gauge(m, "wa_ingest_spool_bytes", "spool bytes not replayed", NULL);
    s->spool_files = wa_metrics_gauge(m, "wa_ingest_spool_files", "spool files not replayed", NULL);
    s->inflight = wa_metrics_gauge(m, "wa_ingest_inflight", "webhook requests in progress", NULL);
    s->ack_seconds = wa_metrics_histogram(
        m, "wa_ingest_ack_seconds", "receive to durable (Kafka ack or spool fsync)", NULL, NULL, 0);
    if (s->requests[0] == NULL || s->ack_seconds == NULL || s->spool_files == NULL ||
        s->spool_writable == NULL || s->spool_write_failures == NULL) {
        return wa_error_set(error, WA_ENOMEM, "cannot register metrics");
    }
    /* Ready while a webhook can be made durable: Kafka away is the spool's job and Redis away
     * only costs dedup, so both are reported but do not take the pod out of its Service. */
    if (wa_service_probe(ig->svc, "spool", spool_ready, ig) != WA_OK ||
        wa_service_probe(ig->svc, "durable", durable_ready, ig) != WA_OK) {
        return wa_error_set(error, WA_ENOMEM, "cannot register the readiness checks");
    }
    /* WA_ENOTFOUND only, when a client was not made: then there is nothing to relax */
    (void)wa_service_probe_advisory(ig->svc, "kafka");
    (void)wa_service_probe_advisory(ig->svc, "redis");
    (void)wa_service_probe_advisory(ig->svc, "spool");
    return WA_OK;
}
