/*
 * act_handoff.c: the handoff action. Publishes one handoff event (wa/contract_router.h) that
 * hands the conversation to people: queue, priority, the message that caused it.
 * handoff_id is deterministic ("rt:<wamid>:<rule>:<n>") so agent tooling can drop repeats.
 * Threading: loop thread.
 */
#include "router.h"
#include "wa/contract_outbound.h"
#include "wa/clock.h"
#include "wa/contract_router.h"

enum wa_err
rt_act_handoff(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t idx, rt_done_fn fn,
               void *arg)
{
    const struct rt_msg *m = ctx->msg;
    char id[WA_CONTRACT_REQUEST_ID_MAX + 32], conv[WA_CONTRACT_KEY_MAX], now[WA_RFC3339_LEN];
    struct wa_contract_handoff h = {0};
    json_t *data = NULL;
    enum wa_err err;

    rt_act_id(ctx->id_base, idx, id, sizeof(id));
    if (wa_contract_conversation_key(m->phone_number_id, m->contact, conv, sizeof(conv)) != WA_OK) {
        return WA_ETOOBIG;
    }
    wa_clock_rfc3339(wa_clock_wall_ms(), now);
    h.handoff_id = id;
    h.phone_number_id = m->phone_number_id;
    h.contact = m->contact;
    h.queue = a->queue;
    h.priority = a->priority;
    h.reason = ctx->rule;
    h.source = "wa-router";
    h.wamid = m->wamid;
    h.text = m->text;
    h.profile_name = m->profile_name;
    h.requested_at = now;
    h.note = a->note;
    if ((err = wa_contract_handoff_data(&h, &data, NULL)) != WA_OK) {
        return err;
    }
    err = rt_publish(ctx->rt, ctx->rt->topic_handoff, conv, WA_CE_TYPE_HANDOFF, m->phone_number_id,
                     ctx->traceparent, data, fn, arg);
    json_decref(data);
    return err;
}
