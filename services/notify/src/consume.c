/*
 * consume.c: stage 1 of 7. Input: outbound.request events, consumed as the group
 * WA_NOTIFY_GROUP (at-least-once: an offset is committed only after wa_kafka_consumer_done(),
 * which result.c calls once the request's outcome is durable). Output: a struct nt_req with its
 * Cloud API body validated (validate.c), handed to policy.c; or, for an event that cannot be
 * read, a raw dead letter; for a readable but invalid request, a failed result and a dead
 * letter. Nothing a producer sends can stop the consumer.
 *
 * Threading: loop thread. Ownership: the request owns its Kafka message and decoded event.
 */
#include <stdlib.h>
#include <string.h>

#include "notify.h"
#include "wa/clock.h"
#include "wa/log.h"

static void
on_message(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct nt *nt = arg;
    struct nt_req *r = calloc(1, sizeof(*r));
    struct wa_error error = {0};
    struct nt_invalid why;
    const char *contact;
    char digits[WA_WHATSAPP_WA_ID_MAX + 1];

    if (r == NULL) {
        /* Not done: the message is redelivered after a restart; nothing else is safe. */
        wa_log_error(NULL, "out of memory: request at offset %lld left unconsumed",
                     (long long)msg->offset);
        return;
    }
    (void)c;
    r->nt = nt;
    r->msg = msg;
    r->consumed_us = wa_clock_mono_us();
    r->next_all = nt->all;
    if (nt->all != NULL) {
        nt->all->prev_all = r;
    }
    nt->all = r;
    nt->nreqs++;
    wa_gauge_set(nt->g_inflight, (double)nt->nreqs);
    if (msg->timestamp_ms > 0) {
        wa_gauge_set(nt->g_lag, (double)((int64_t)wa_clock_wall_ms() - msg->timestamp_ms) / 1e3);
    }
    snprintf(r->conv, sizeof(r->conv), "unknown");
    if (msg->value == NULL ||
        wa_cloudevent_decode(msg->value, msg->len, &r->doc, &error) != WA_OK) {
        nt_result_malformed(r, msg->value == NULL ? "empty message" : error.message);
        return;
    }
    wa_traceparent_child(r->doc->ev.traceparent, r->traceparent);
    (void)wa_traceparent_trace_id(r->traceparent, r->trace_id);
    if (wa_contract_outbound_request_decode(r->doc->ev.data, &r->rq, &error) != WA_OK) {
        if (r->rq.request_id == NULL) {
            nt_result_malformed(r, error.message);
        } else {
            nt_result_failed(r, "invalid", false, 0, "invalid request", error.message);
        }
        return;
    }
    r->valid_rq = true;
    contact = r->rq.recipient != NULL ? r->rq.recipient : r->rq.to;
    if (r->rq.recipient == NULL &&
        wa_whatsapp_wa_id_from_to(r->rq.to, digits, sizeof(digits)) == WA_OK) {
        contact = digits;
    }
    (void)wa_contract_conversation_key(r->rq.phone_number_id, contact, r->conv, sizeof(r->conv));
    if (nt_validate_build(&r->rq, NULL, &r->body, &why) != WA_OK) {
        nt_result_failed(r, "invalid", why.has_code, why.code,
                         why.has_code ? wa_whatsapp_error_title(why.code) : "invalid request",
                         why.details[0] != '\0' ? why.details : "out of memory");
        return;
    }
    nt_policy_start(r);
}

enum wa_err
nt_consume_start(struct nt *nt, struct wa_error *error)
{
    const char *topics[1] = {nt->topic_request};
    struct wa_service_consumer sc = {.group = nt->cfg->group,
                                     .topics = topics,
                                     .ntopics = 1,
                                     .max_in_flight = (int)nt->cfg->max_in_flight,
                                     .on_message = on_message,
                                     .arg = nt};

    return wa_service_consumer(nt->svc, &sc, &nt->consumer, error);
}

void
nt_consume_stop(struct nt *nt)
{
    /* Every Redis and Kafka callback already ran (the scaffolding silenced the clients); a
     * Cloud API call still in flight is cancelled by nt_req_free and never calls back. */
    while (nt->all != NULL) {
        nt_req_free(nt->all);
    }
}
