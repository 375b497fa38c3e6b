/*
 * act.c: stage 4 of 5 (act). Runs the actions of the matching rules of one message, in rule
 * order, and reports once when every one of them is acknowledged (Kafka acks=all for published
 * events, Redis replies for queued deliveries and reminders). The per-kind work is in
 * act_reply.c, act_crm.c, act_handoff.c, act_tag.c and reminders.c.
 *
 * Ordering: actions start in order; events for one conversation share a Kafka key, so the
 * idempotent producer keeps them in that order on their partition; Redis commands go out in
 * order on one connection.
 * Idempotency: every action carries an id derived from the message and the rule
 * ("rt:<wamid>:<rule>:<n>"), so processing a message again produces the same ids.
 * Threading: loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa/contract_outbound.h"
#include "wa/cloudevent.h"
#include "wa/crypto.h"
#include "wa/kafka.h"
#include "wa/log.h"

struct act_group {
    size_t pending;
    enum wa_err err;
    rt_done_fn fn;
    void *arg;
    struct rt *rt;
    char rule[RT_NAME_MAX];
};

struct act_one {
    struct act_group *g;
    enum rt_action_kind kind;
    char rule[RT_NAME_MAX];
};

void
rt_act_id(const char *base, size_t idx, char *out, size_t size)
{
    int n = snprintf(out, size, "rt:%s:%zu", base, idx);

    if (n < 0 || (size_t)n >= size || (size_t)n > WA_CONTRACT_REQUEST_ID_MAX) {
        /* too long for a request id: keep it deterministic with a digest of the base */
        unsigned char d[WA_SHA256_LEN];
        char hex[2 * WA_SHA256_LEN + 1];

        wa_sha256(base, strlen(base), d);
        wa_hex_encode(d, 20, hex);
        snprintf(out, size, "rt:h%s:%zu", hex, idx);
    }
}

static void
group_finish(struct act_group *g)
{
    rt_done_fn fn = g->fn;
    void *arg = g->arg;
    enum wa_err err = g->err;

    free(g);
    fn(arg, err);
}

static void
on_action_done(void *arg, enum wa_err err)
{
    struct act_one *one = arg;
    struct act_group *g = one->g;

    rt_health_action(g->rt, one->rule, one->kind, err == WA_OK);
    if (err != WA_OK) {
        wa_log_warn(NULL, "rule %s: action %s failed: %s", one->rule, rt_action_name(one->kind),
                    wa_err_name(err));
        if (g->err == WA_OK) {
            g->err = err;
        }
    }
    free(one);
    if (--g->pending == 0) {
        group_finish(g);
    }
}

static void
on_posted(void *arg)
{
    group_finish(arg);
}

static enum wa_err
start_one(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t idx, struct act_one *one)
{
    switch (a->kind) {
    case RT_ACT_REPLY:
        return rt_act_reply(ctx, a, idx, on_action_done, one);
    case RT_ACT_FORWARD:
        return rt_act_forward(ctx, a, idx, on_action_done, one);
    case RT_ACT_HANDOFF:
        return rt_act_handoff(ctx, a, idx, on_action_done, one);
    case RT_ACT_TAG:
    case RT_ACT_UNTAG:
    case RT_ACT_OPT_OUT:
    case RT_ACT_OPT_IN:
    case RT_ACT_SET_ATTRIBUTE:
        return rt_act_command(ctx, a, idx, on_action_done, one);
    case RT_ACT_REMIND:
        return rt_act_remind(ctx, a, idx, on_action_done, one);
    case RT_ACT__COUNT:
        break;
    }
    return WA_EINVAL;
}

enum wa_err
rt_act_run(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t n, rt_done_fn fn,
           void *arg)
{
    struct act_group *g = calloc(1, sizeof(*g));
    enum wa_err err;
    size_t i;

    if (g == NULL) {
        return WA_ENOMEM;
    }
    g->fn = fn;
    g->arg = arg;
    g->rt = ctx->rt;
    g->pending = 1; /* held until every action started, so none can finish the group early */
    for (i = 0; i < n; i++) {
        struct act_one *one = calloc(1, sizeof(*one));

        if (one == NULL) {
            err = WA_ENOMEM;
        } else {
            one->g = g;
            one->kind = a[i].kind;
            snprintf(one->rule, sizeof(one->rule), "%s", ctx->rule);
            g->pending++;
            err = start_one(ctx, &a[i], i, one);
            if (err != WA_OK) {
                g->pending--;
                free(one);
            }
        }
        if (err != WA_OK) {
            rt_health_action(ctx->rt, ctx->rule, a[i].kind, false);
            wa_log_warn(NULL, "rule %s: action %s not started: %s", ctx->rule,
                        rt_action_name(a[i].kind), wa_err_name(err));
            if (g->err == WA_OK) {
                g->err = err;
            }
        }
    }
    if (--g->pending > 0) {
        return WA_OK;
    }
    /* nothing is pending: either nothing started (an error, no callback) or there were no
     * actions (report later, never from inside this call: the async contract) */
    if (g->err != WA_OK || wa_loop_post(ctx->rt->loop, on_posted, g) != WA_OK) {
        err = g->err != WA_OK ? g->err : WA_ENOMEM;
        free(g);
        return err;
    }
    return WA_OK;
}

/* ---- publishing ---- */

struct pub_call {
    rt_done_fn fn;
    void *arg;
};

static void
on_delivery(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct pub_call *pc = arg;

    (void)partition;
    (void)offset;
    if (pc->fn != NULL) {
        pc->fn(pc->arg, err);
    }
    free(pc);
}

enum wa_err
rt_publish(struct rt *rt, const char *topic, const char *subject, const char *type,
           const char *pnid, const char *parent_tp, json_t *data, rt_done_fn fn, void *arg)
{
    struct wa_cloudevent ev;
    char tp[WA_TRACEPARENT_LEN];
    struct pub_call *pc = calloc(1, sizeof(*pc));
    enum wa_err err;

    if (pc == NULL) {
        return WA_ENOMEM;
    }
    pc->fn = fn;
    pc->arg = arg;
    wa_cloudevent_init(&ev, wa_service_instance(rt->svc), type);
    /* the event carries the producing span's context: the message's span recorded by
     * consume.c, so wa-notify's span is its child; a new trace when there is none */
    if (parent_tp != NULL && wa_traceparent_valid(parent_tp)) {
        snprintf(tp, sizeof(tp), "%s", parent_tp);
    } else {
        wa_traceparent_new(tp);
    }
    ev.subject = subject;
    ev.phonenumberid = pnid;
    ev.traceparent = tp;
    ev.data = data;
    if ((err = wa_kafka_produce_event(rt->producer, topic, &ev, on_delivery, pc)) != WA_OK) {
        free(pc);
    }
    return err;
}
