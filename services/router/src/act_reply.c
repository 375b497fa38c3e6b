/*
 * act_reply.c: the reply action. Publishes one outbound.request (wa/contract_outbound.h) for
 * wa-notify to send: the rule's message body with {{variables}} filled in, addressed to the
 * contact (wa_id, or BSUID as "recipient"), optionally quoting the inbound message.
 * request_id is deterministic ("rt:<wamid>:<rule>:<n>") so a message processed twice is sent
 * once (wa-notify is idempotent per request_id); metadata says where the request came from.
 * Threading: loop thread.
 */
#include <string.h>

#include "router.h"
#include "wa/contract_outbound.h"

enum wa_err
rt_act_reply(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t idx, rt_done_fn fn,
             void *arg)
{
    const struct rt_msg *m = ctx->msg;
    char rid[WA_CONTRACT_REQUEST_ID_MAX + 32], conv[WA_CONTRACT_KEY_MAX];
    json_t *data = NULL, *body = NULL, *filled = NULL;
    enum wa_err err = WA_ENOMEM;

    rt_act_id(ctx->id_base, idx, rid, sizeof(rid));
    if (wa_contract_conversation_key(m->phone_number_id, m->contact, conv, sizeof(conv)) != WA_OK) {
        return WA_ETOOBIG;
    }
    if ((filled = rt_vars_apply(a->reply_body, m, ctx->rule)) == NULL) {
        goto out;
    }
    if (json_is_string(filled)) {
        body = json_pack("{s:O}", "body", filled);
    } else {
        body = json_incref(filled);
    }
    data = json_pack("{s:s,s:s,s:s,s:O,s:{s:s,s:s,s:s?}}", "request_id", rid, "phone_number_id",
                     m->phone_number_id, "type", a->reply_type, a->reply_type, body, "metadata",
                     "source", "wa-router", "rule", ctx->rule, "wamid", m->wamid);
    if (data == NULL || body == NULL) {
        goto out;
    }
    if (m->to != NULL) {
        json_object_set_new(data, "to", json_string(m->to));
    } else {
        json_object_set_new(data, "recipient",
                            json_string(m->recipient != NULL ? m->recipient : m->contact));
    }
    if (a->category != NULL) {
        json_object_set_new(data, "category", json_string(a->category));
    }
    if (a->quote && m->wamid != NULL) {
        json_object_set_new(data, "context", json_pack("{s:s}", "message_id", m->wamid));
    }
    err = rt_publish(ctx->rt, ctx->rt->topic_outbound, conv, WA_CE_TYPE_OUTBOUND_REQUEST,
                     m->phone_number_id, ctx->traceparent, data, fn, arg);
out:
    json_decref(data);
    json_decref(body);
    json_decref(filled);
    return err;
}
