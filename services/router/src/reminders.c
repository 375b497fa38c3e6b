/*
 * reminders.c: durable delayed actions ("no business reply within 4 h -> escalate",
 * "customer silent for 48 h -> reminder or tag").
 *
 * The remind action stores a job (jobs.c) in <p>rt:rem / <p>rt:remd with a deterministic id
 * "<c>|<reminder id>|<conversation>", so the same reminder scheduled again moves rather than
 * multiplies; c says what cancels it: 'b' a business reply (an accepted outbound.result whose
 * request did not come from the router itself), 'i' any later inbound message (window.c
 * cancels those in its per-message script), 'n' nothing. The conversation's index
 * <p>rt:remi:<conversation> lists its reminders for cancellation. The job body carries the
 * message facts and a copy of the actions, so a reload of the rules does not change what an
 * already scheduled reminder does. Delays are divided by WA_ROUTER_DELAY_SCALE (tests compress
 * the clock).
 *
 * The pump claims due reminders every WA_ROUTER_TICK (leased; see jobs.c), runs their actions
 * with ids "rt:rem:<job>:<n>", then removes the job, or retries it after WA_ROUTER_RETRY.
 * Threading: loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa/clock.h"
#include "wa/kv.h"
#include "wa/log.h"

static void
keys(struct rt *rt, char zset[RT_KEY_MAX], char hash[RT_KEY_MAX])
{
    snprintf(zset, RT_KEY_MAX, "%srt:rem", rt->prefix);
    snprintf(hash, RT_KEY_MAX, "%srt:remd", rt->prefix);
}

enum wa_err
rt_act_remind(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t idx, rt_done_fn fn,
              void *arg)
{
    const struct rt_msg *m = ctx->msg;
    char zset[RT_KEY_MAX], hash[RT_KEY_MAX], index[RT_KEY_MAX], conv[WA_CONTRACT_KEY_MAX];
    char id[RT_KEY_MAX];
    char c = a->cancel_on == RT_CANCEL_BUSINESS_REPLY ? 'b'
             : a->cancel_on == RT_CANCEL_INBOUND      ? 'i'
                                                      : 'n';
    int64_t due = (int64_t)wa_clock_wall_ms() + a->after_ms / ctx->rt->cfg->delay_scale;
    json_t *body;
    char *text;
    enum wa_err err;

    (void)idx;
    if (wa_contract_conversation_key(m->phone_number_id, m->contact, conv, sizeof(conv)) != WA_OK) {
        return WA_ETOOBIG;
    }
    keys(ctx->rt, zset, hash);
    snprintf(index, sizeof(index), "%srt:remi:%s", ctx->rt->prefix, conv);
    snprintf(id, sizeof(id), "%c|%s|%s", c, a->remind_id, conv);
    body = json_pack("{s:s,s:s,s:s?,s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:O}", "rule", ctx->rule,
                     "remind_id", a->remind_id, "wamid", m->wamid, "phone_number_id",
                     m->phone_number_id, "contact", m->contact, "to", m->to, "recipient",
                     m->recipient, "profile_name", m->profile_name, "text", m->text, "type",
                     m->type, "actions", a->remind_actions);
    if (body == NULL || (text = wa_json_dump(body)) == NULL) {
        json_decref(body);
        return WA_ENOMEM;
    }
    json_decref(body);
    err = rt_jobs_put(ctx->rt, zset, hash, index, id, due, text, fn, arg);
    free(text);
    if (err == WA_OK) {
        wa_counter_inc(ctx->rt->m.reminders_scheduled);
    }
    return err;
}

/* One reminder firing: owns the job body and the parsed actions. */
struct firing {
    struct rt *rt;
    char id[RT_KEY_MAX];
    char *body_text;
    json_t *body;
    struct rt_action *actions;
    size_t nactions;
    struct rt_ruleset *rules;
    struct rt_msg msg;
    char base[RT_KEY_MAX];
};

static void
firing_free(struct firing *f)
{
    rt_actions_free(f->actions, f->nactions);
    rt_rules_unref(f->rules);
    json_decref(f->body);
    free(f->body_text);
    free(f);
}

static void
on_settled(void *arg, enum wa_err err)
{
    struct firing *f = arg;

    if (err != WA_OK) {
        wa_log_warn(NULL, "reminder %s: could not settle: %s (it reappears after the lease)", f->id,
                    wa_err_name(err));
    }
    f->rt->rem.running--;
    firing_free(f);
}

static void
on_fired(void *arg, enum wa_err err)
{
    struct firing *f = arg;
    struct rt *rt = f->rt;
    char zset[RT_KEY_MAX], hash[RT_KEY_MAX], index[RT_KEY_MAX];
    const char *conv = strchr(strchr(f->id, '|') + 1, '|') + 1;
    enum wa_err e2;

    keys(rt, zset, hash);
    snprintf(index, sizeof(index), "%srt:remi:%s", rt->prefix, conv);
    if (err == WA_OK) {
        wa_counter_inc(rt->m.reminders_fired);
        wa_log_info(NULL, "reminder %s fired (rule %s)", f->id, wa_json_str(f->body, "rule"));
        e2 = rt_jobs_remove(rt, zset, hash, index, f->id, on_settled, f);
    } else {
        e2 = rt_jobs_retry(rt, zset, hash, f->id, (int64_t)wa_clock_wall_ms() + rt->cfg->retry_ms,
                           f->body_text, on_settled, f);
    }
    if (e2 != WA_OK) {
        on_settled(f, e2);
    }
}

static void
fire(struct rt *rt, const char *id, const char *text)
{
    struct firing *f = calloc(1, sizeof(*f));
    struct rt_act_ctx ctx = {0};
    struct wa_buf errors;
    const char *rule;

    if (f == NULL) {
        return;
    }
    f->rt = rt;
    snprintf(f->id, sizeof(f->id), "%s", id);
    f->body_text = strdup(text);
    if (f->body_text == NULL || wa_json_parse(text, strlen(text), 0, &f->body, NULL) != WA_OK ||
        strchr(id, '|') == NULL || strchr(strchr(id, '|') + 1, '|') == NULL) {
        wa_log_error(NULL, "reminder %s: unreadable job, dropped", id);
        goto drop;
    }
    f->rules = rt_current_rules(rt);
    wa_buf_init(&errors, 4096);
    if (rt_rules_parse_actions(f->rules, json_object_get(f->body, "actions"), id, true, &f->actions,
                               &f->nactions, &errors) != WA_OK) {
        wa_log_error(NULL, "reminder %s: actions no longer valid: %s", id,
                     errors.data != NULL ? errors.data : "?");
        wa_buf_cleanup(&errors);
        goto drop;
    }
    wa_buf_cleanup(&errors);
    rule = wa_json_str(f->body, "rule");
    f->msg.type = wa_json_str(f->body, "type");
    f->msg.phone_number_id = wa_json_str(f->body, "phone_number_id");
    f->msg.contact = wa_json_str(f->body, "contact");
    f->msg.to = wa_json_str(f->body, "to");
    f->msg.recipient = wa_json_str(f->body, "recipient");
    f->msg.wamid = wa_json_str(f->body, "wamid");
    f->msg.profile_name = wa_json_str(f->body, "profile_name");
    f->msg.text = wa_json_str(f->body, "text");
    f->msg.now_ms = (int64_t)wa_clock_wall_ms();
    if (f->msg.phone_number_id == NULL || f->msg.contact == NULL || rule == NULL) {
        wa_log_error(NULL, "reminder %s: incomplete job, dropped", id);
        goto drop;
    }
    snprintf(f->base, sizeof(f->base), "rem:%s:%s:%s", f->msg.wamid != NULL ? f->msg.wamid : "",
             rule, wa_json_str(f->body, "remind_id") ? wa_json_str(f->body, "remind_id") : "");
    ctx.rt = rt;
    ctx.msg = &f->msg;
    ctx.rule = rule;
    ctx.id_base = f->base;
    rt->rem.running++;
    if (rt_act_run(&ctx, f->actions, f->nactions, on_fired, f) != WA_OK) {
        rt->rem.running--;
        /* leased: it comes back after WA_ROUTER_LEASE */
        firing_free(f);
    }
    return;
drop : {
    char zset[RT_KEY_MAX], hash[RT_KEY_MAX];
    keys(rt, zset, hash);
    rt->rem.running++;
    if (rt_jobs_remove(rt, zset, hash, NULL, id, on_settled, f) != WA_OK) {
        rt->rem.running--;
        firing_free(f);
    }
}
}

static void
on_claimed(void *arg, enum wa_err err, size_t n, const char *const *ids, const char *const *bodies)
{
    struct rt *rt = arg;

    rt->rem.claiming = false;
    if (err != WA_OK) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        fire(rt, ids[i], bodies[i]);
    }
}

static void
on_tick(struct wa_timer *t, void *arg)
{
    struct rt *rt = arg;
    char zset[RT_KEY_MAX], hash[RT_KEY_MAX];

    (void)t;
    if (rt->rem.claiming || rt->rem.running > 500 || rt->draining || !wa_kv_ready(rt->kv)) {
        return;
    }
    keys(rt, zset, hash);
    if (rt_jobs_claim(rt, zset, hash, (int64_t)wa_clock_wall_ms(), 100, on_claimed, rt) == WA_OK) {
        rt->rem.claiming = true;
    }
}

enum wa_err
rt_reminders_start(struct rt *rt, struct wa_error *error)
{
    if ((rt->rem.timer = wa_timer_new(rt->loop, on_tick, rt)) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    wa_timer_start(rt->rem.timer, (uint64_t)rt->cfg->tick_ms, (uint64_t)rt->cfg->tick_ms);
    return WA_OK;
}

void
rt_reminders_stop(struct rt *rt)
{
    (void)rt;
    wa_timer_free(rt->rem.timer);
    rt->rem.timer = NULL;
}

enum wa_err
rt_reminders_business_reply(struct rt *rt, const char *conv, rt_done_fn fn, void *arg)
{
    char zset[RT_KEY_MAX], hash[RT_KEY_MAX], index[RT_KEY_MAX];

    keys(rt, zset, hash);
    snprintf(index, sizeof(index), "%srt:remi:%s", rt->prefix, conv);
    return rt_jobs_cancel(rt, zset, hash, index, "b|", fn, arg);
}
