/*
 * bucket.c: a token bucket kept in Redis, shared by every process that uses the same key
 * (wa/kv.h, wa_kv_bucket_take). One Lua script per take, timed by Redis's own clock (TIME,
 * microseconds), so instances on different hosts agree on the refill without synchronised
 * clocks. The hash <key> holds "tokens" (a float), "ts" (µs) and, after wa_kv_bucket_pause,
 * "paused" (µs, Redis's clock: nothing is granted before it); it expires 10 s after the last take
 * (when it would be full again anyway for any rate above 0.1/s) or when the pause ends.
 *
 * Users: wa-notify (Meta's per-number throughput), wa-router (a CRM destination's rate).
 */
#include <stdio.h>
#include <stdlib.h>

#include "wa/kv.h"

/* Tokens are refilled continuously; grant <= want. Returns {granted, wait_ms until one token
 * exists when none was granted}. */
static const char take_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
    "local rate = tonumber(ARGV[1]) local burst = tonumber(ARGV[2]) "
    "local want = tonumber(ARGV[3]) "
    "local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'paused') "
    "local tokens = tonumber(b[1]) local ts = tonumber(b[2]) "
    "local paused = tonumber(b[3]) "
    "if paused ~= nil and paused > now then "
    "  return {0, math.ceil((paused - now) / 1000)} end "
    "if tokens == nil or ts == nil then tokens = burst ts = now end "
    "if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000000) ts = now end "
    "local grant = math.min(want, math.floor(tokens)) "
    "if grant < 0 then grant = 0 end "
    "tokens = tokens - grant "
    "redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts)) "
    "if redis.call('PTTL', KEYS[1]) < 10000 then redis.call('PEXPIRE', KEYS[1], 10000) end "
    "local wait = 0 "
    "if grant == 0 then wait = math.ceil((1 - tokens) * 1000 / rate) end "
    "return {grant, wait}";

struct take {
    wa_kv_bucket_fn cb;
    void *arg;
};

static void
on_taken(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct take *t = arg;
    long long grant = 0, wait = 0;

    if (err == WA_OK && wa_kv_reply_len(reply) == 2) {
        grant = wa_kv_reply_int(wa_kv_reply_at(reply, 0));
        wait = wa_kv_reply_int(wa_kv_reply_at(reply, 1));
    } else if (err == WA_OK) {
        err = WA_EPARSE;
    }
    t->cb(t->arg, err, grant > 0 ? (uint64_t)grant : 0, wait > 0 ? (uint64_t)wait : 1);
    free(t);
}

/* Pauses the bucket until now + ARGV[1] ms (Redis's clock), never shortening a longer pause; the
 * tokens left are dropped (a pause is a throttling signal, not a gap to burst into after). */
static const char pause_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
    "local ms = tonumber(ARGV[1]) "
    "local old = tonumber(redis.call('HGET', KEYS[1], 'paused') or '0') "
    "local untl = math.max(old, now + ms * 1000) "
    "redis.call('HSET', KEYS[1], 'paused', string.format('%.0f', untl), 'tokens', '0', "
    "  'ts', string.format('%.0f', untl)) "
    "redis.call('PEXPIRE', KEYS[1], math.ceil((untl - now) / 1000) + 10000) "
    "return math.ceil((untl - now) / 1000)";

struct pause {
    wa_kv_done_fn cb;
    void *arg;
};

static void
on_paused(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct pause *p = arg;

    (void)reply;
    if (p->cb != NULL) {
        p->cb(p->arg, err);
    }
    free(p);
}

enum wa_err
wa_kv_bucket_pause(struct wa_kv *kv, const char *key, uint64_t pause_ms, wa_kv_done_fn cb,
                   void *arg)
{
    char ms[32];
    const char *keys[1] = {key}, *args[1] = {ms};
    struct pause *p;
    enum wa_err err;

    if (key == NULL || pause_ms == 0) {
        return WA_EINVAL;
    }
    if ((p = malloc(sizeof(*p))) == NULL) {
        return WA_ENOMEM;
    }
    p->cb = cb;
    p->arg = arg;
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)pause_ms);
    if ((err = wa_kv_eval(kv, pause_lua, 1, keys, 1, args, on_paused, p)) != WA_OK) {
        free(p);
    }
    return err;
}

enum wa_err
wa_kv_bucket_take(struct wa_kv *kv, const char *key, double rate_per_s, uint64_t burst,
                  uint64_t want, wa_kv_bucket_fn cb, void *arg)
{
    char rate[32], depth[32], n[32];
    const char *keys[1] = {key}, *args[3] = {rate, depth, n};
    struct take *t;
    enum wa_err err;

    if (key == NULL || cb == NULL || !(rate_per_s > 0) || burst < 1 || want < 1) {
        return WA_EINVAL;
    }
    if ((t = malloc(sizeof(*t))) == NULL) {
        return WA_ENOMEM;
    }
    t->cb = cb;
    t->arg = arg;
    snprintf(rate, sizeof(rate), "%.3f", rate_per_s);
    snprintf(depth, sizeof(depth), "%llu", (unsigned long long)burst);
    snprintf(n, sizeof(n), "%llu", (unsigned long long)want);
    if ((err = wa_kv_eval(kv, take_lua, 1, keys, 3, args, on_taken, t)) != WA_OK) {
        free(t);
    }
    return err;
}
