/*
 * act_tag.c: the contact actions tag, untag, opt_out, opt_in and set_attribute. Each publishes
 * one contact.command (wa/contract_router.h) for wa-users, the owner of profiles and opt-in
 * state. Tags and attributes are also recorded in the router's own view of the contact
 * (<p>rt:tags:<conversation> set, <p>rt:attr:<conversation> hash) so later rules can match on
 * them without asking wa-users. command_id is deterministic ("rt:<wamid>:<rule>:<n>").
 * Threading: loop thread. Completion: once both the event is acknowledged and Redis answered.
 */
#include <stdio.h>
#include <stdlib.h>

#include "router.h"
#include "wa/contract_outbound.h"
#include "wa/clock.h"
#include "wa/contract_router.h"
#include "wa/kv.h"

struct join {
    int pending;
    enum wa_err err;
    rt_done_fn fn;
    void *arg;
};

static void
join_done(void *arg, enum wa_err err)
{
    struct join *j = arg;

    if (err != WA_OK && j->err == WA_OK) {
        j->err = err;
    }
    if (--j->pending == 0) {
        j->fn(j->arg, j->err);
        free(j);
    }
}

static void
on_redis(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    (void)reply;
    join_done(arg, err);
}

/* Records the change in the router's view of the contact. WA_ENOTFOUND: nothing to record. */
static enum wa_err
record(struct rt *rt, const struct rt_action *a, const char *conv, struct join *j)
{
    const char *argv[RT_TAGS_MAX + 2];
    char key[RT_KEY_MAX];
    int argc = 0;

    switch (a->kind) {
    case RT_ACT_TAG:
    case RT_ACT_UNTAG:
        snprintf(key, sizeof(key), "%srt:tags:%s", rt->prefix, conv);
        argv[argc++] = a->kind == RT_ACT_TAG ? "SADD" : "SREM";
        argv[argc++] = key;
        for (size_t i = 0; i < a->tags.n && i < RT_TAGS_MAX; i++) {
            argv[argc++] = a->tags.v[i];
        }
        break;
    case RT_ACT_SET_ATTRIBUTE:
        snprintf(key, sizeof(key), "%srt:attr:%s", rt->prefix, conv);
        argv[argc++] = "HSET";
        argv[argc++] = key;
        argv[argc++] = a->attr_name;
        argv[argc++] = a->attr_value;
        break;
    default:
        return WA_ENOTFOUND;
    }
    return wa_kv_command_argv(rt->kv, argc, argv, NULL, on_redis, j);
}

enum wa_err
rt_act_command(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t idx, rt_done_fn fn,
               void *arg)
{
    const struct rt_msg *m = ctx->msg;
    char id[WA_CONTRACT_REQUEST_ID_MAX + 32], conv[WA_CONTRACT_KEY_MAX], now[WA_RFC3339_LEN];
    struct wa_contract_contact_command c = {0};
    json_t *data = NULL;
    struct join *j;
    enum wa_err err;

    rt_act_id(ctx->id_base, idx, id, sizeof(id));
    if (wa_contract_conversation_key(m->phone_number_id, m->contact, conv, sizeof(conv)) != WA_OK) {
        return WA_ETOOBIG;
    }
    wa_clock_rfc3339(wa_clock_wall_ms(), now);
    c.command_id = id;
    c.phone_number_id = m->phone_number_id;
    c.contact = m->contact;
    c.reason = ctx->rule;
    c.source = "wa-router";
    c.wamid = m->wamid;
    c.requested_at = now;
    switch (a->kind) {
    case RT_ACT_TAG:
    case RT_ACT_UNTAG:
        c.command = a->kind == RT_ACT_TAG ? WA_CONTRACT_CMD_TAG : WA_CONTRACT_CMD_UNTAG;
        for (size_t i = 0; i < a->tags.n && i < WA_CONTRACT_TAGS_MAX; i++) {
            c.tags[c.ntags++] = a->tags.v[i];
        }
        break;
    case RT_ACT_OPT_OUT:
        c.command = WA_CONTRACT_CMD_OPT_OUT;
        break;
    case RT_ACT_OPT_IN:
        c.command = WA_CONTRACT_CMD_OPT_IN;
        break;
    case RT_ACT_SET_ATTRIBUTE:
        c.command = WA_CONTRACT_CMD_SET_ATTRIBUTE;
        c.attribute_name = a->attr_name;
        c.attribute_value = a->attr_value;
        break;
    default:
        return WA_EINVAL;
    }
    if ((err = wa_contract_contact_command_data(&c, &data, NULL)) != WA_OK) {
        return err;
    }
    if ((j = calloc(1, sizeof(*j))) == NULL) {
        json_decref(data);
        return WA_ENOMEM;
    }
    j->fn = fn;
    j->arg = arg;
    j->pending = 1;
    err = rt_publish(ctx->rt, ctx->rt->topic_command, conv, WA_CE_TYPE_CONTACT_COMMAND,
                     m->phone_number_id, ctx->traceparent, data, join_done, j);
    json_decref(data);
    if (err != WA_OK) {
        free(j);
        return err;
    }
    j->pending++;
    if ((err = record(ctx->rt, a, conv, j)) != WA_OK) {
        /* the event is on its way; a Redis failure is reported through the join */
        j->pending--;
        if (err != WA_ENOTFOUND) {
            j->err = err;
        }
    }
    return WA_OK;
}
