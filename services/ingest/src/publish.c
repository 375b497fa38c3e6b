/*
 * publish.c: stage 6 of 7. Input: the request's records: webhook.raw parts (archive.c) and
 * one per event, encoded by ig_publish_encode before the dedup round trip; the duplicates are
 * marked skip. Output: the HTTP reply, sent only once every record is durable.
 *
 *   produce all (idempotent producer, acks=all, keys per the contract)
 *     -> every delivery report OK                      -> 200 ("ok")
 *     -> a failure, or no answer within WA_INGEST_ACK_TIMEOUT
 *          -> ig_spool_start (fsynced local file) -> ig_publish_spooled: 200 ("spooled")
 *                                                    or, when even that fails, 503
 * The loop never waits: the HTTP request stays suspended until the reply. In spool mode (Kafka
 * failed or was late, and no replay window has been acknowledged since) requests go straight to
 * the spool, so the replayer keeps each key's order during the outage.
 * Reports arriving after the reply (a late ack of a spooled record) only release the request.
 */
#include <string.h>

#include "wa/clock.h"
#include "wa/kafka.h"

#include "ingest.h"

static const char *const types[4] = {WA_CE_TYPE_INBOUND_MESSAGE, WA_CE_TYPE_INBOUND_STATUS,
                                     WA_CE_TYPE_ACCOUNT_EVENT, WA_CE_TYPE_WEBHOOK_RAW};

/* The CloudEvent's time: now, formatted once per millisecond. */
static const char *
event_time(struct ig *ig)
{
    uint64_t now = wa_clock_wall_ms();

    if (now != ig->time_ms || ig->time[0] == '\0') {
        ig->time_ms = now;
        wa_clock_rfc3339(now, ig->time);
    }
    return ig->time;
}

enum wa_err
ig_record_add(struct ig_request *r, int topic, const char *type, const char *key,
              const char *phone_number_id, int dedup, wa_cloudevent_data_fn encode, const void *arg)
{
    struct wa_buf *b = &r->arena;
    size_t start = b->len;
    struct wa_cloudevent ce = {.source = wa_service_instance(r->ig->svc),
                               .type = type,
                               .subject = key,
                               .phonenumberid = phone_number_id,
                               .traceparent = r->traceparent};
    struct ig_record *rec;
    enum wa_err err;

    WA_ASSERT(r->nrecords < r->caprecords);
    rec = &r->records[r->nrecords];
    memset(rec, 0, sizeof(*rec));
    wa_ulid_new(rec->id);
    rec->req = r;
    rec->topic = topic;
    rec->dedup = dedup;
    rec->event = -1;
    rec->key_off = b->len;
    if ((err = wa_buf_append(b, key, strlen(key) + 1)) != WA_OK) {
        goto out;
    }
    rec->value_off = b->len;
    _Static_assert(sizeof(rec->id) <= sizeof(ce.id), "ULID fits a CloudEvent id");
    _Static_assert(sizeof(r->ig->time) <= sizeof(ce.time), "RFC 3339 time fits");
    memcpy(ce.id, rec->id, sizeof(rec->id));
    memcpy(ce.time, event_time(r->ig), sizeof(r->ig->time));
    if ((err = wa_cloudevent_write(&ce, encode, arg, b, NULL)) != WA_OK) {
        goto out;
    }
    rec->value_len = b->len - rec->value_off;
    r->nrecords++;
out:
    if (err != WA_OK) {
        b->len = start; /* leave the arena as it was */
        if (b->data != NULL) {
            b->data[start] = '\0';
        }
    }
    return err;
}

static enum wa_err
encode_event(struct wa_buf *b, const void *arg)
{
    return wa_contract_event_data_write(b, arg);
}

enum wa_err
ig_publish_encode(struct ig_request *r)
{
    struct ig *ig = r->ig;

    for (size_t i = 0; i < r->batch.count; i++) {
        const struct wa_webhook_event *ev = &r->batch.events[i];
        char key[WA_CONTRACT_KEY_MAX];
        enum wa_err err;

        if (wa_contract_event_key(ev, key, sizeof(key)) != WA_OK) {
            snprintf(key, sizeof(key), "unknown"); /* absurdly long ids: still published */
        }
        err = ig_record_add(r, (int)ev->kind, types[ev->kind], key, ev->phone_number_id,
                            r->ev_dedup[i], encode_event, ev);
        if (err != WA_OK) {
            return err;
        }
        r->records[r->nrecords - 1].event = (int)i;
    }
    /* The document is in split.c's arena scope: forgotten with it, not walked to be freed. */
    if (wa_json_arena_owns(&ig->json_arena, r->batch.root)) {
        r->batch.root = NULL;
    }
    wa_webhook_batch_cleanup(&r->batch);
    return WA_OK;
}

static void
stop_deadline(struct ig_request *r)
{
    if (r->deadline != NULL) {
        wa_timer_stop(r->deadline);
    }
}

/* Everything durable one way or the other: answer 200 and confirm the dedup claims. */
static void
succeed(struct ig_request *r, enum ig_outcome outcome)
{
    struct ig *ig = r->ig;

    wa_histogram_observe(ig->m.ack_seconds, (double)(wa_clock_mono_us() - r->start_us) / 1e6);
    stop_deadline(r);
    ig_request_reply(r, r->parsed ? outcome : IG_OUT_UNPARSED, 200, "{\"ok\":true}");
    ig_dedupe_finish(r, true);
}

static void
fail(struct ig_request *r, const char *why)
{
    wa_log_error(&r->log, "webhook not durable (%s): 503 so Meta redelivers", why);
    stop_deadline(r);
    ig_request_reply(r, IG_OUT_UNAVAILABLE, 503,
                     "{\"error\":{\"code\":\"unavailable\",\"message\":\"no durable store\"}}");
    ig_dedupe_finish(r, false);
}

/* kafka_late: Kafka failed or did not answer in time (spool mode), rather than a request sent
 * to the spool because spool mode is on. */
static void
to_spool(struct ig_request *r, bool kafka_late)
{
    if (r->spooling || r->replied) {
        return;
    }
    if (kafka_late) {
        ig_spool_kafka_late(r->ig->spool);
    }
    r->spooling = true;
    stop_deadline(r);
    ig_spool_start(r);
}

void
ig_publish_spooled(struct ig_request *r, bool ok)
{
    if (ok) {
        wa_log_info(&r->log, "kafka late: %zu records spooled", r->nrecords);
        succeed(r, IG_OUT_SPOOLED);
    } else {
        fail(r, "spool write failed");
    }
}

static void
on_delivery(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct ig_record *rec = arg;
    struct ig_request *r = rec->req;

    (void)partition;
    (void)offset;
    r->unacked--;
    rec->acked = err == WA_OK;
    if (err != WA_OK && !r->kafka_failed) {
        r->kafka_failed = true;
        wa_log_warn(&r->log, "kafka delivery failed: %s", wa_err_name(err));
    }
    if (!r->replied && !r->spooling) {
        if (r->kafka_failed) {
            to_spool(r, true);
        } else if (r->unacked == 0) {
            succeed(r, IG_OUT_OK);
        }
    }
    ig_request_release(r, true);
}

static void
on_deadline(struct wa_timer *t, void *arg)
{
    struct ig_request *r = arg;

    (void)t;
    if (!r->replied && !r->spooling) {
        wa_log_warn(&r->log, "kafka did not acknowledge within %lld ms: spooling",
                    (long long)r->ig->cfg->ack_timeout_ms);
        to_spool(r, true);
    }
}

static void
produce_all(struct ig_request *r)
{
    struct ig *ig = r->ig;
    const char *source = wa_service_instance(ig->svc);

    for (size_t i = 0; i < r->nrecords; i++) {
        struct ig_record *rec = &r->records[i];
        const char *key = r->arena.data + rec->key_off;
        const char *type = types[rec->topic];
        struct wa_kafka_header h[5] = {
            {"ce_specversion", "1.0", 3},
            {"ce_id", rec->id, strlen(rec->id)},
            {"ce_type", type, strlen(type)},
            {"ce_source", source, strlen(source)},
            {"traceparent", r->traceparent, strlen(r->traceparent)},
        };
        enum wa_err err;

        if (rec->skip) {
            continue; /* a duplicate */
        }
        err = wa_kafka_produce(ig->producer, ig->topic[rec->topic], key, strlen(key),
                               r->arena.data + rec->value_off, rec->value_len, h, 5, on_delivery,
                               rec);
        if (err != WA_OK) {
            wa_log_warn(&r->log, "kafka produce refused: %s", wa_err_name(err));
            r->kafka_failed = true;
            break;
        }
        r->unacked++;
        r->outstanding++;
    }
}

void
ig_publish_start(struct ig_request *r)
{
    struct ig *ig = r->ig;

    r->publish_us = wa_clock_mono_us();
    for (size_t i = 0; i < r->nrecords; i++) {
        if (r->records[i].event >= 0 && !r->records[i].skip) {
            wa_counter_inc(ig->m.events[r->records[i].topic]);
        }
    }
    wa_counter_inc(ig->m.events[IG_EVENTS_RAW]);
    if (ig_spool_divert(ig->spool)) {
        to_spool(r, false);
        ig_request_release(r, false);
        return;
    }
    produce_all(r);
    if (r->kafka_failed) {
        to_spool(r, true);
    } else if (r->unacked > 0) {
        r->deadline = wa_timer_new(ig->loop, on_deadline, r);
        if (r->deadline == NULL) {
            to_spool(r, false);
        } else {
            wa_timer_start(r->deadline, (uint64_t)ig->cfg->ack_timeout_ms, 0);
        }
    }
    ig_request_release(r, false);
}
