/*
 * window.c: stage 2 of 5 (state). One Redis script per inbound message does everything the
 * router must know or record about it before rules run, atomically and in one round trip:
 *   - idempotency: <p>rt:seen:<wamid> "pending:<first>|<snapshot>" until the actions are
 *     acknowledged, then "done" (WA_ROUTER_SEEN_TTL). The snapshot (JSON {lang, tags, at}) is
 *     what the rules are evaluated against: the contact's language and tags as they were
 *     before this message's own actions changed them, and the evaluation time (hours
 *     conditions). A "done" message is a duplicate and skipped; a "pending" one (its instance
 *     died mid-way, or it was redelivered) is evaluated again against its snapshot and
 *     first-message flag, so it gets the same decision as the first time (a reply is not
 *     skipped because of a tag its first run wrote), and its actions keep their deterministic
 *     ids, so downstream idempotency (wa-notify's request_id) absorbs the repeat;
 *   - the 24 h customer-service window <p>win:<phone_number_id>:<contact> (shared contract,
 *     docs/architecture.md): last inbound time in ms since the epoch, expiring 24 h after it;
 *     set from the message's own timestamp (cloud-api.md 3.5), never moved backwards;
 *   - the first-message flag: no open window before this message;
 *   - reminders cancelled by any inbound message ("customer silent for 48 h");
 *   - the contact attributes the router knows (<p>rt:tags:..., <p>rt:attr:...).
 * It also feeds two sorted sets from which the window pump below emits window-expiring and
 * window-closed events on <p>router.window (at most once: a crash between pop and produce
 * loses that one event).
 *
 * Threading: loop thread. Keys are documented in README.md and docs/architecture.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa/clock.h"
#include "wa/kv.h"
#include "wa/log.h"

/* KEYS: seen win tags attr winz winw remi rem remd
 * ARGV: ts_ms now_ms window_ms seen_ttl_ms conv warn_ms */
static const char inbound_script[] =
    "local s = redis.call('GET', KEYS[1])\n"
    "if s == 'done' then return {0, 0, false, {}, 0} end\n"
    "local first, lang, tags, at\n"
    "if s then\n"
    "  first = tonumber(string.sub(s, 9, 9)) or 0\n"
    "  if string.sub(s, 10, 10) == '|' then\n"
    "    local snap = cjson.decode(string.sub(s, 11))\n"
    "    lang, tags, at = snap.lang, snap.tags, snap.at\n"
    "  end\n"
    "else\n"
    "  if redis.call('EXISTS', KEYS[2]) == 1 then first = 0 else first = 1 end\n"
    "  for _, id in ipairs(redis.call('SMEMBERS', KEYS[7])) do\n"
    "    if string.sub(id, 1, 2) == 'i|' then\n"
    "      redis.call('ZREM', KEYS[8], id)\n"
    "      redis.call('HDEL', KEYS[9], id)\n"
    "      redis.call('SREM', KEYS[7], id)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if not tags then\n"
    "  lang = redis.call('HGET', KEYS[4], 'language')\n"
    "  tags = redis.call('SRANDMEMBER', KEYS[3], 32)\n"
    "  at = tonumber(ARGV[2])\n"
    "  if not s then\n"
    "    redis.call('SET', KEYS[1], 'pending:' .. first .. '|' ..\n"
    "      cjson.encode({lang = lang, tags = tags, at = at}), 'PX', ARGV[4])\n"
    "  end\n"
    "end\n"
    "local ts = tonumber(ARGV[1])\n"
    "local exp = ts + tonumber(ARGV[3])\n"
    "local cur = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "if ts > cur and exp > tonumber(ARGV[2]) then\n"
    "  redis.call('SET', KEYS[2], ARGV[1], 'PXAT', exp)\n"
    "  redis.call('ZADD', KEYS[5], exp, ARGV[5])\n"
    "  redis.call('ZADD', KEYS[6], exp - tonumber(ARGV[6]), ARGV[5])\n"
    "end\n"
    "return {1, first, lang, tags, tostring(at)}\n";

/* KEYS: zset; ARGV: now limit. Pops due members with their scores. */
static const char pop_script[] =
    "local r = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, "
    "ARGV[2])\n"
    "for i = 1, #r, 2 do redis.call('ZREM', KEYS[1], r[i]) end\n"
    "return r\n";

struct claim_call {
    rt_state_fn fn;
    void *arg;
};

void
rt_state_reply_cleanup(struct rt_state_reply *st)
{
    for (size_t i = 0; i < st->ntags; i++) {
        free(st->tags[i]);
        st->tags[i] = NULL;
    }
    st->ntags = 0;
}

static void
on_claim(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct claim_call *c = arg;
    struct rt_state_reply st = {0};
    const struct wa_kv_reply *lang, *tags;
    const char *at;

    if (err == WA_OK &&
        (wa_kv_reply_type(reply) != WA_KV_REPLY_ARRAY || wa_kv_reply_len(reply) < 5)) {
        err = WA_EPARSE;
    }
    if (err == WA_OK) {
        st.duplicate = wa_kv_reply_int(wa_kv_reply_at(reply, 0)) == 0;
        st.first = wa_kv_reply_int(wa_kv_reply_at(reply, 1)) == 1;
        st.attrs_known = true;
        lang = wa_kv_reply_at(reply, 2);
        if (wa_kv_reply_type(lang) == WA_KV_REPLY_STRING) {
            snprintf(st.language, sizeof(st.language), "%s", wa_kv_reply_str(lang, NULL));
        }
        at = wa_kv_reply_str(wa_kv_reply_at(reply, 4), NULL);
        st.at_ms = at != NULL ? strtoll(at, NULL, 10) : 0;
        tags = wa_kv_reply_at(reply, 3);
        for (size_t i = 0; i < wa_kv_reply_len(tags) && st.ntags < RT_TAGS_MAX; i++) {
            const char *t = wa_kv_reply_str(wa_kv_reply_at(tags, i), NULL);
            if (t != NULL && (st.tags[st.ntags] = strdup(t)) != NULL) {
                st.ntags++;
            }
        }
    }
    c->fn(c->arg, err, &st);
    rt_state_reply_cleanup(&st);
    free(c);
}

enum wa_err
rt_window_claim(struct rt *rt, const struct rt_msg *msg, rt_state_fn fn, void *arg)
{
    char keys[9][RT_KEY_MAX];
    const char *kp[9];
    char a_ts[24], a_now[24], a_win[24], a_ttl[24], a_conv[WA_CONTRACT_KEY_MAX], a_warn[24];
    const char *ap[6] = {a_ts, a_now, a_win, a_ttl, a_conv, a_warn};
    const char *p = rt->prefix;
    struct claim_call *c;
    int64_t now = (int64_t)wa_clock_wall_ms(), ts = msg->ts_ms;
    enum wa_err err;

    if (ts <= 0 || ts > now) {
        ts = now; /* no timestamp, or a sender clock ahead of ours: never open a window late */
    }
    snprintf(a_conv, sizeof(a_conv), "%s:%s", msg->phone_number_id, msg->contact);
    snprintf(keys[0], RT_KEY_MAX, "%srt:seen:%s", p, msg->wamid);
    snprintf(keys[1], RT_KEY_MAX, "%swin:%s", p, a_conv);
    snprintf(keys[2], RT_KEY_MAX, "%srt:tags:%s", p, a_conv);
    snprintf(keys[3], RT_KEY_MAX, "%srt:attr:%s", p, a_conv);
    snprintf(keys[4], RT_KEY_MAX, "%srt:winz", p);
    snprintf(keys[5], RT_KEY_MAX, "%srt:winw", p);
    snprintf(keys[6], RT_KEY_MAX, "%srt:remi:%s", p, a_conv);
    snprintf(keys[7], RT_KEY_MAX, "%srt:rem", p);
    snprintf(keys[8], RT_KEY_MAX, "%srt:remd", p);
    for (int i = 0; i < 9; i++) {
        kp[i] = keys[i];
    }
    snprintf(a_ts, sizeof(a_ts), "%lld", (long long)ts);
    snprintf(a_now, sizeof(a_now), "%lld", (long long)now);
    snprintf(a_win, sizeof(a_win), "%lld", (long long)rt->cfg->window_ms);
    snprintf(a_ttl, sizeof(a_ttl), "%lld", (long long)rt->cfg->seen_ttl_ms);
    snprintf(a_warn, sizeof(a_warn), "%lld", (long long)rt->cfg->window_warn_ms);
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        return WA_ENOMEM;
    }
    c->fn = fn;
    c->arg = arg;
    if ((err = wa_kv_eval(rt->kv, inbound_script, 9, kp, 6, ap, on_claim, c)) != WA_OK) {
        free(c);
    }
    return err;
}

struct done_call {
    void (*fn)(void *, enum wa_err);
    void *arg;
};

static void
on_done(void *arg, enum wa_err err)
{
    struct done_call *d = arg;

    d->fn(d->arg, err);
    free(d);
}

enum wa_err
rt_window_done(struct rt *rt, const char *wamid, void (*fn)(void *, enum wa_err), void *arg)
{
    char key[RT_KEY_MAX];
    struct done_call *d = calloc(1, sizeof(*d));
    enum wa_err err;

    if (d == NULL) {
        return WA_ENOMEM;
    }
    d->fn = fn;
    d->arg = arg;
    snprintf(key, sizeof(key), "%srt:seen:%s", rt->prefix, wamid);
    if ((err = wa_kv_set_px(rt->kv, key, "done", (uint64_t)rt->cfg->seen_ttl_ms, on_done, d)) !=
        WA_OK) {
        free(d);
    }
    return err;
}

/* ---- window events ---- */

struct pop_call {
    struct rt *rt;
    bool closed;
};

static void
on_window_event_sent(void *arg, enum wa_err err)
{
    (void)arg;
    if (err != WA_OK) {
        wa_log_warn(NULL, "window event not delivered: %s", wa_err_name(err));
    }
}

static void
on_pop(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct pop_call *pc = arg;
    struct rt *rt = pc->rt;

    for (size_t i = 0; err == WA_OK && i + 1 < wa_kv_reply_len(reply); i += 2) {
        const char *conv = wa_kv_reply_str(wa_kv_reply_at(reply, i), NULL);
        const char *score = wa_kv_reply_str(wa_kv_reply_at(reply, i + 1), NULL);
        long long when = score != NULL ? strtoll(score, NULL, 10) : 0;
        char pnid[64], at[WA_RFC3339_LEN];
        const char *colon = conv != NULL ? strchr(conv, ':') : NULL;
        json_t *data;

        if (colon == NULL || (size_t)(colon - conv) >= sizeof(pnid)) {
            continue;
        }
        memcpy(pnid, conv, (size_t)(colon - conv));
        pnid[colon - conv] = '\0';
        if (!pc->closed) {
            when += rt->cfg->window_warn_ms; /* the warning set is scored expiry - warn */
        }
        wa_clock_rfc3339((uint64_t)when, at);
        data = json_pack("{s:s,s:s,s:s,s:s,s:s}", "conversation", conv, "phone_number_id", pnid,
                         "contact", colon + 1, "state", pc->closed ? "closed" : "expiring",
                         "expires_at", at);
        if (data != NULL) {
            if (rt_publish(rt, rt->topic_window, conv,
                           pc->closed ? WA_CE_TYPE_ROUTER_WINDOW_CLOSED
                                      : WA_CE_TYPE_ROUTER_WINDOW_EXPIRING,
                           pnid, NULL, data, on_window_event_sent, NULL) == WA_OK) {
                wa_counter_inc(rt->m.window_events);
            }
            json_decref(data);
        }
    }
    free(pc);
}

static void
pop(struct rt *rt, bool closed, int64_t now)
{
    char key[RT_KEY_MAX], a_now[24];
    const char *kp[1] = {key}, *ap[2] = {a_now, "200"};
    struct pop_call *pc = calloc(1, sizeof(*pc));

    if (pc == NULL) {
        return;
    }
    pc->rt = rt;
    pc->closed = closed;
    snprintf(key, sizeof(key), "%srt:%s", rt->prefix, closed ? "winz" : "winw");
    snprintf(a_now, sizeof(a_now), "%lld", (long long)now);
    if (wa_kv_eval(rt->kv, pop_script, 1, kp, 2, ap, on_pop, pc) != WA_OK) {
        free(pc);
    }
}

static void
on_window_tick(struct wa_timer *t, void *arg)
{
    struct rt *rt = arg;
    int64_t now = (int64_t)wa_clock_wall_ms();

    (void)t;
    if (!wa_kv_ready(rt->kv)) {
        return;
    }
    pop(rt, false, now);
    pop(rt, true, now);
}

enum wa_err
rt_window_start(struct rt *rt, struct wa_error *error)
{
    if (!rt->cfg->window_events) {
        return WA_OK;
    }
    if ((rt->window_timer = wa_timer_new(rt->loop, on_window_tick, rt)) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    wa_timer_start(rt->window_timer, 1000, 1000);
    return WA_OK;
}

void
rt_window_stop(struct rt *rt)
{
    wa_timer_free(rt->window_timer);
    rt->window_timer = NULL;
}
