/*
 * result.c: stage 7 of 7. Input: a request's final outcome. Outputs: outbound.result
 * (accepted with wamid and attempts, or failed with code, title, details; metadata untouched)
 * and, for failures, outbound.dlq with every attempt; then the Kafka message is handed back
 * (wa_kafka_consumer_done) only when every event it produced was acknowledged by the broker,
 * so the outcome is durable before the offset can be committed. A failed delivery is produced
 * again after a pause; the request is never dropped.
 *
 * Threading: loop thread. Ownership: frees the request after handing its message back.
 */
#include <stdlib.h>
#include <string.h>

#include "notify.h"
#include "wa/clock.h"
#include "wa/log.h"
#include "wa/trace.h"

static void produce(struct nt_req *r);

void
nt_req_free(struct nt_req *r)
{
    struct nt *nt;

    if (r == NULL) {
        return;
    }
    nt = r->nt;
    if (r->prev_all != NULL) {
        r->prev_all->next_all = r->next_all;
    } else if (nt->all == r) {
        nt->all = r->next_all;
    }
    if (r->next_all != NULL) {
        r->next_all->prev_all = r->prev_all;
    }
    nt->nreqs--;
    wa_gauge_set(nt->g_inflight, (double)nt->nreqs);
    wa_timer_free(r->timer);
    if (r->call != NULL) {
        wa_httpc_call_cancel(r->call);
    }
    json_decref(r->body);
    json_decref(r->history);
    json_decref(r->res_data);
    json_decref(r->dlq_data);
    free(r->body_json);
    wa_cloudevent_doc_free(r->doc);
    free(r);
}

static void
finish(struct nt_req *r)
{
    struct nt *nt = r->nt;

    nt_pace_release(r);
    wa_kafka_consumer_done(nt->consumer, r->msg);
    r->msg = NULL;
    nt_req_free(r);
}

static void
on_delivery(enum wa_err err, int32_t partition, int64_t offset, void *arg, bool dlq)
{
    struct nt_req *r = arg;

    (void)partition;
    (void)offset;
    r->produce_pending--;
    if (err != WA_OK) {
        r->produce_failed = true;
    } else if (dlq) {
        r->dlq_done = true;
    } else {
        r->res_done = true;
    }
    if (r->produce_pending > 0) {
        return;
    }
    if (r->produce_failed) {
        r->produce_failed = false;
        wa_log_warn(NULL, "result of %s not acknowledged (%s); producing again",
                    r->rq.request_id != NULL ? r->rq.request_id : "?", wa_err_name(err));
        nt_req_later(r, 500);
        return;
    }
    finish(r);
}

static void
on_result(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    on_delivery(err, partition, offset, arg, false);
}

static void
on_dlq(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    on_delivery(err, partition, offset, arg, true);
}

static enum wa_err
emit(struct nt_req *r, const char *topic, const char *type, json_t *data, wa_kafka_delivery_fn cb)
{
    struct wa_cloudevent ev;
    enum wa_err err;

    wa_cloudevent_init(&ev, r->nt->instance, type);
    ev.subject = r->conv;
    ev.phonenumberid = r->valid_rq ? r->rq.phone_number_id : NULL;
    ev.traceparent = r->traceparent[0] != '\0' ? r->traceparent : NULL;
    ev.data = data;
    err = wa_kafka_produce_event(r->nt->producer, topic, &ev, cb, r);
    if (err == WA_OK) {
        r->produce_pending++;
    }
    return err;
}

static void
produce(struct nt_req *r)
{
    struct nt *nt = r->nt;
    enum wa_err err = WA_OK;

    r->state = NT_REQ_RESULT;
    if (r->res_data != NULL && !r->res_done) {
        err = emit(r, nt->topic_result, WA_CE_TYPE_OUTBOUND_RESULT, r->res_data, on_result);
    }
    if (err == WA_OK && r->dlq_data != NULL && !r->dlq_done) {
        err = emit(r, nt->topic_dlq, WA_CE_TYPE_OUTBOUND_DLQ, r->dlq_data, on_dlq);
    }
    if (err != WA_OK) {
        r->produce_failed = r->produce_pending > 0;
        if (r->produce_pending == 0) {
            nt_req_later(r, 200); /* local queue full or producer failing: try again */
        }
        return;
    }
    if (r->produce_pending == 0) {
        finish(r);
    }
}

void
nt_result_retry(struct nt_req *r)
{
    produce(r);
}

static void
fill(const struct nt_req *r, struct wa_contract_outbound_result *res)
{
    memset(res, 0, sizeof(*res));
    res->request_id = r->rq.request_id;
    res->phone_number_id = r->rq.phone_number_id;
    res->to = r->rq.to != NULL ? r->rq.to : r->rq.recipient;
    res->attempts = r->attempts;
    res->fallback = r->fallback;
    res->metadata = r->rq.metadata;
}

/* The request's span: consumed to result, child of the span that produced the request
 * (wa-router's or wactl's), with the traceparent sent to the Cloud API (wa/trace.h). */
static void
record_span(const struct nt_req *r, const char *wamid, const char *reason)
{
    struct wa_tracer *t = wa_service_tracer(r->nt->svc);
    const struct wa_trace_attr attrs[] = {
        {"wa.request_id", r->rq.request_id != NULL ? r->rq.request_id : "", 0},
        {"wa.attempts", NULL, (int64_t)r->attempts},
        {wamid != NULL ? "wa.wamid" : "wa.reason", wamid != NULL ? wamid : reason, 0}};
    uint64_t end_ns = wa_trace_now_ns(), took_ns = (wa_clock_mono_us() - r->consumed_us) * 1000u;

    wa_tracer_span(t, "notify send", r->traceparent, r->doc != NULL ? r->doc->ev.traceparent : NULL,
                   end_ns - took_ns, end_ns, attrs, WA_ARRAY_LEN(attrs), reason);
}

void
nt_result_accepted(struct nt_req *r, const char *wamid)
{
    struct wa_contract_outbound_result res;
    struct wa_log_ctx ctx = {r->rq.request_id, r->trace_id, NULL};

    r->accepted = true;
    fill(r, &res);
    res.accepted = true;
    res.wamid = wamid;
    if (wa_contract_outbound_result_data(&res, &r->res_data) != WA_OK) {
        nt_req_later(r, 200);
        r->state = NT_REQ_POLICY; /* out of memory: start over later */
        return;
    }
    nt_health_count_result(r->nt, "accepted", "none");
    record_span(r, wamid, NULL);
    wa_log_debug(&ctx, "accepted as %s after %u attempt(s)", wamid, r->attempts);
    produce(r);
}

void
nt_result_failed(struct nt_req *r, const char *reason, bool has_code, int64_t code,
                 const char *title, const char *details)
{
    struct wa_contract_outbound_result res;
    struct wa_log_ctx ctx = {r->rq.request_id, r->trace_id, NULL};

    r->reason = reason;
    fill(r, &res);
    res.reason = reason;
    res.has_code = has_code;
    res.code = code;
    res.title = title;
    res.details = details;
    if (wa_contract_outbound_result_data(&res, &r->res_data) != WA_OK ||
        wa_contract_outbound_dlq_data(&res, r->history, r->doc != NULL ? r->doc->ev.data : NULL,
                                      NULL, 0, &r->dlq_data) != WA_OK) {
        wa_log_error(&ctx, "out of memory building the failure of a request; parked");
        return;
    }
    nt_health_count_result(r->nt, "failed", reason);
    record_span(r, NULL, reason != NULL ? reason : "failed");
    wa_log_info(&ctx, "failed: %s (%s%lld) %s", reason, has_code ? "code " : "",
                has_code ? (long long)code : 0ll, details != NULL ? details : "");
    produce(r);
}

void
nt_result_malformed(struct nt_req *r, const char *details)
{
    struct wa_contract_outbound_result res;

    wa_counter_inc(r->nt->c_malformed);
    memset(&res, 0, sizeof(res));
    res.reason = "malformed";
    res.title = "malformed event";
    res.details = details;
    if (r->msg->key != NULL && r->msg->keylen > 0 && r->msg->keylen < sizeof(r->conv)) {
        memcpy(r->conv, r->msg->key, r->msg->keylen);
        r->conv[r->msg->keylen] = '\0';
    }
    if (wa_contract_outbound_dlq_data(&res, NULL, NULL, r->msg->value, r->msg->len, &r->dlq_data) !=
        WA_OK) {
        wa_log_error(NULL, "out of memory building a dead letter; parked");
        return;
    }
    nt_health_count_result(r->nt, "failed", "malformed");
    wa_log_warn(NULL, "malformed outbound.request at offset %lld: %s", (long long)r->msg->offset,
                details);
    produce(r);
}
