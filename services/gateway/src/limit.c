/*
 * limit.c: stage 2 of 3 (after auth.c). Input: a request with its principal (an API key, or
 * the client address on public paths). Output: gw_api_dispatch(), or 429 with Retry-After.
 * Every answer carries RateLimit-Policy and RateLimit (IETF httpapi ratelimit headers draft,
 * structured fields: policy "key" or "ip", q = requests per w seconds, r = remaining, t =
 * seconds until the full quota is back).
 *
 * One Lua script call per request in Redis (<p>gw:rl:<principal>, the theoretical arrival
 * time in µs of Redis's clock, expiring when it is in the past): the GCRA of gcra.c, shared by
 * every replica; a rejected request leaves the state alone. When Redis cannot be asked, the
 * process-local limiter takes over at the rate divided by WA_GATEWAY_REPLICAS, so the fleet
 * stays near the limit and nobody gets a 5xx for it.
 *
 * Threading: loop thread.
 */
#include <stdio.h>
#include <stdlib.h>

#include "gateway.h"
#include "wa/clock.h"
#include "wa/kv.h"
#include "wa/log.h"

/* KEYS[1] state; ARGV[1] T (µs), ARGV[2] tau (µs). Returns {allowed, remaining, retry_after
 * µs, reset µs}. The same arithmetic as gw_gcra_take. */
static const char gcra_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
    "local T = tonumber(ARGV[1]) local tau = tonumber(ARGV[2]) "
    "local tat = tonumber(redis.call('GET', KEYS[1]) or 0) "
    "if tat < now then tat = now end "
    "local allow_at = tat - tau "
    "if now < allow_at then return {0, 0, allow_at - now, tat - now} end "
    "tat = tat + T "
    "redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', "
    "math.floor((tat - now) / 1000) + 1) "
    "local rem = math.floor((tau + T - (tat - now)) / T) "
    "if rem < 0 then rem = 0 end "
    "return {1, rem, 0, tat - now}";

struct take {
    struct gw_call *c;
    struct gw_gcra_policy policy;
    char key[256];
};

static int64_t
ceil_s(int64_t us)
{
    return us <= 0 ? 0 : (us + 999999) / 1000000;
}

static void
decided(struct take *t, const struct gw_gcra_result *r)
{
    struct gw_call *c = t->c;
    char v[128];

    if (c->req != NULL) {
        const char *name = c->authenticated ? "key" : "ip";

        snprintf(v, sizeof(v), "\"%s\";q=%lld;w=%lld", name, (long long)t->policy.limit,
                 (long long)t->policy.window_s);
        wa_http_reply_header(c->req, "RateLimit-Policy", v);
        snprintf(v, sizeof(v), "\"%s\";r=%lld;t=%lld", name, (long long)r->remaining,
                 (long long)ceil_s(r->reset_us));
        wa_http_reply_header(c->req, "RateLimit", v);
    }
    free(t);
    if (!r->allowed) {
        wa_counter_inc(c->gw->m.limit_limited);
        if (c->req != NULL) {
            snprintf(v, sizeof(v), "%lld", (long long)ceil_s(r->retry_after_us));
            wa_http_reply_header(c->req, "Retry-After", v);
        }
        gw_call_problem(c, 429, "Too Many Requests", "the rate limit of this client is reached");
        return;
    }
    wa_counter_inc(c->gw->m.limit_allowed);
    gw_api_dispatch(c);
}

/* Redis unavailable: this replica's share of the limit. */
static void
local(struct take *t)
{
    struct gw *gw = t->c->gw;
    struct gw_gcra_policy share;
    struct gw_gcra_result r;
    int64_t n = gw->cfg->replicas, rate = t->policy.limit / n;
    int64_t burst = (t->policy.tau_us / t->policy.interval_us + 1) / n;

    gw_gcra_policy_init(&share, rate > 0 ? rate : 1, burst > 0 ? burst : 1);
    gw_local_take(&gw->local, t->key, &share, (int64_t)wa_clock_mono_us(), &r);
    wa_counter_inc(gw->m.limit_local);
    decided(t, &r);
}

static void
on_taken(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct take *t = arg;
    struct gw_gcra_result r = {0};

    if (err != WA_OK || wa_kv_reply_len(reply) != 4) {
        uint64_t skipped = 0;

        if (wa_log_limit_pass(&t->c->gw->warn_limit, &skipped)) {
            wa_log_warn(NULL, "rate limit script: %s; local limiter (%llu similar suppressed)",
                        wa_err_name(err != WA_OK ? err : WA_EPARSE), (unsigned long long)skipped);
        }
        local(t);
        return;
    }
    r.allowed = wa_kv_reply_int(wa_kv_reply_at(reply, 0)) == 1;
    r.remaining = wa_kv_reply_int(wa_kv_reply_at(reply, 1));
    r.retry_after_us = wa_kv_reply_int(wa_kv_reply_at(reply, 2));
    r.reset_us = wa_kv_reply_int(wa_kv_reply_at(reply, 3));
    decided(t, &r);
}

void
gw_limit_start(struct gw_call *c)
{
    struct gw *gw = c->gw;
    struct take *t = calloc(1, sizeof(*t));
    char interval[32], tau[32];
    const char *keys[1], *args[2] = {interval, tau};

    if (t == NULL) {
        gw_call_problem(c, 503, "Service Unavailable", "out of memory");
        return;
    }
    t->c = c;
    if (c->authenticated) {
        gw_gcra_policy_init(&t->policy, c->rate_per_min, c->burst);
    } else {
        gw_gcra_policy_init(&t->policy, gw->cfg->ip_rate_per_min, 0);
    }
    snprintf(t->key, sizeof(t->key), "%sgw:rl:%s", gw->prefix, c->principal);
    snprintf(interval, sizeof(interval), "%lld", (long long)t->policy.interval_us);
    snprintf(tau, sizeof(tau), "%lld", (long long)t->policy.tau_us);
    keys[0] = t->key;
    if (!wa_kv_ready(gw->kv) ||
        wa_kv_eval(gw->kv, gcra_lua, 1, keys, 2, args, on_taken, t) != WA_OK) {
        local(t);
    }
}
