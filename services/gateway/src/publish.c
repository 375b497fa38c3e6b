/*
 * publish.c: stage 3 of 3 for POST /v1/messages (after limit.c). Input: an authenticated,
 * admitted request with its parsed body. Output: one outbound.request CloudEvent acknowledged
 * by Kafka (acks=all) and 202 {"request_id", "status": "queued"}; or 422 naming every invalid
 * field (message.c), 409 / 422 for an Idempotency-Key in progress / reused with another body,
 * 503 when Kafka did not take it.
 *
 *   check (message.c) -> [Idempotency-Key: claim (idempotency.c) -> replay | 409 | 422]
 *     -> produce -> delivery report -> [record the answer] -> 202
 *
 * A keyed request's request_id is derived from (principal, key), so if Redis cannot be asked
 * the request is still published once per retry with the same request_id and wa-notify sends
 * it at most once. Unkeyed requests get a ULID.
 *
 * Threading: loop thread. Ownership: struct pub (the data, the key) lives from the check to
 * the reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract.h"
#include "wa/contract_outbound.h"
#include "wa/id.h"
#include "wa/kafka.h"
#include "wa/log.h"

struct pub {
    struct gw_call *c;
    json_t *data;
    char request_id[WA_CONTRACT_REQUEST_ID_MAX + 1];
    char contact[WA_CONTRACT_KEY_MAX];
    char idem[256]; /* "" without an Idempotency-Key */
    char fp[2 * WA_SHA256_LEN + 1];
    bool claimed; /* a Redis record was claimed for idem */
};

static void
pub_free(struct pub *p)
{
    json_decref(p->data);
    free(p);
}

static void
fail(struct pub *p, int status, const char *title, const char *detail)
{
    struct gw_call *c = p->c;

    if (p->claimed) {
        gw_idem_finish(c, p->idem, p->fp, 0, NULL);
    }
    pub_free(p);
    wa_counter_inc(c->gw->m.msg_failed);
    gw_call_problem(c, status, title, detail);
}

static void
on_delivery(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct pub *p = arg;
    struct gw_call *c = p->c;
    char body[256], location[WA_CONTRACT_REQUEST_ID_MAX + 32];

    (void)partition;
    (void)offset;
    if (err != WA_OK) {
        wa_log_warn(
            &(struct wa_log_ctx){.request_id = c->req != NULL ? wa_http_req_id(c->req) : NULL},
            "outbound.request %s not acknowledged: %s", p->request_id, wa_err_name(err));
        fail(p, 503, "Service Unavailable", "the message could not be queued; retry later");
        return;
    }
    wa_histogram_observe(c->gw->m.publish_latency,
                         (double)(wa_clock_mono_us() - c->started_us) / 1e6);
    snprintf(body, sizeof(body), "{\"request_id\":\"%s\",\"status\":\"queued\"}", p->request_id);
    if (p->claimed) {
        gw_idem_finish(c, p->idem, p->fp, 202, body);
    }
    snprintf(location, sizeof(location), "/v1/messages/%s", p->request_id);
    if (c->req != NULL) {
        wa_http_reply_header(c->req, "Location", location);
    }
    wa_counter_inc(c->gw->m.msg_accepted);
    pub_free(p);
    gw_call_json(c, 202, body);
}

static void
produce(struct pub *p)
{
    struct gw_call *c = p->c;
    struct gw *gw = c->gw;
    const char *pnid = wa_json_str(p->data, "phone_number_id");
    const char *parent = c->req != NULL ? wa_http_req_header(c->req, "traceparent") : NULL;
    char conv[WA_CONTRACT_KEY_MAX], tp[WA_TRACEPARENT_LEN];
    struct wa_cloudevent ev;
    enum wa_err err;

    if (wa_contract_conversation_key(pnid, p->contact, conv, sizeof(conv)) != WA_OK) {
        fail(p, 500, "Internal Server Error", "conversation key too long");
        return;
    }
    wa_cloudevent_init(&ev, wa_service_instance(gw->svc), WA_CE_TYPE_OUTBOUND_REQUEST);
    if (parent != NULL) {
        wa_traceparent_child(parent, tp);
    } else {
        wa_traceparent_new(tp);
    }
    ev.subject = conv;
    ev.phonenumberid = pnid;
    ev.traceparent = tp;
    ev.data = p->data;
    if ((err = wa_kafka_produce_event(gw->producer, gw->topic_outbound, &ev, on_delivery, p)) !=
        WA_OK) {
        wa_log_warn(NULL, "outbound.request %s not produced: %s", p->request_id, wa_err_name(err));
        fail(p, 503, "Service Unavailable", "the message could not be queued; retry later");
    }
}

static void
on_claimed(struct gw_call *c, enum wa_err err, enum gw_idem_decision d, int status,
           const char *response)
{
    struct pub *p = c->stage;

    if (err != WA_OK) {
        produce(p); /* no record: the derived request_id still makes wa-notify send it once */
        return;
    }
    switch (d) {
    case GW_IDEM_NEW:
        p->claimed = true;
        produce(p);
        return;
    case GW_IDEM_REPLAY:
        pub_free(p);
        wa_counter_inc(c->gw->m.msg_replayed);
        if (c->req != NULL) {
            wa_http_reply_header(c->req, "Idempotent-Replayed", "true");
        }
        gw_call_json(c, status > 0 ? status : 202, response);
        return;
    case GW_IDEM_IN_PROGRESS:
        pub_free(p);
        wa_counter_inc(c->gw->m.msg_conflict);
        if (c->req != NULL) {
            wa_http_reply_header(c->req, "Retry-After", "1");
        }
        gw_call_problem(c, 409, "Conflict",
                        "a request with this Idempotency-Key is still being processed");
        return;
    case GW_IDEM_MISMATCH:
        break;
    }
    pub_free(p);
    wa_counter_inc(c->gw->m.msg_conflict);
    {
        struct gw_body_check chk = {.n = 1};

        snprintf(chk.errors[0].pointer, sizeof(chk.errors[0].pointer), "%s", "");
        snprintf(chk.errors[0].detail, sizeof(chk.errors[0].detail), "%s",
                 "this Idempotency-Key was used with another body");
        gw_call_invalid(c, &chk);
    }
}

void
gw_messages_post(struct gw_call *c)
{
    struct gw *gw = c->gw;
    const char *idem = c->req != NULL ? wa_http_req_header(c->req, "Idempotency-Key") : NULL;
    struct gw_body_check chk;
    struct pub *p;

    if (idem != NULL && !gw_idempotency_key_valid(idem)) {
        gw_call_problem(c, 400, "Bad Request",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters");
        return;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        gw_call_problem(c, 503, "Service Unavailable", "out of memory");
        return;
    }
    p->c = c;
    c->stage = p;
    if (idem != NULL) {
        snprintf(p->idem, sizeof(p->idem), "%s", idem);
        gw_idempotency_request_id(c->principal, idem, p->request_id, sizeof(p->request_id));
    } else {
        char ulid[WA_ULID_LEN];

        wa_ulid_new(ulid);
        snprintf(p->request_id, sizeof(p->request_id), "%s", ulid);
    }
    gw_message_check(c->body, p->request_id, gw->cfg->phone_number_id, &chk, &p->data, p->contact,
                     sizeof(p->contact));
    if (chk.n > 0) {
        pub_free(p);
        wa_counter_inc(gw->m.msg_invalid);
        gw_call_invalid(c, &chk);
        return;
    }
    if (idem == NULL) {
        produce(p);
        return;
    }
    gw_body_fingerprint(c->body, p->fp);
    gw_idem_claim(c, p->idem, p->fp, on_claimed);
}
