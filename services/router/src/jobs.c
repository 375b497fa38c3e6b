/*
 * jobs.c: durable delayed jobs in Redis, shared by reminders and CRM deliveries.
 *
 * A job is an id in a sorted set scored by its due time (ms since the epoch) and a JSON body in
 * a hash under the same id; optionally its id is also in an index set (a conversation's
 * reminders) so it can be cancelled by later events. Claiming is atomic and leased: a claimed
 * job's score moves to now + WA_ROUTER_LEASE, so if the instance that claimed it dies the job
 * becomes due again (at-least-once; consumers of the effects deduplicate by the job id).
 * Several router instances can share the queues.
 *
 * Async contract: each function returns WA_OK and calls fn once later, or an error and never.
 * Threading: loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa/kv.h"

/* KEYS zset hash index; ARGV id due body use_index */
static const char put_script[] = "redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])\n"
                                 "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])\n"
                                 "if ARGV[4] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) "
                                 "end\n"
                                 "return 1\n";

/* KEYS zset hash; ARGV now lease limit */
static const char claim_script[] =
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
    "local out = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  local d = redis.call('HGET', KEYS[2], id)\n"
    "  if d then\n"
    "    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)\n"
    "    out[#out + 1] = id\n"
    "    out[#out + 1] = d\n"
    "  else\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS zset hash index; ARGV id use_index */
static const char remove_script[] = "redis.call('ZREM', KEYS[1], ARGV[1])\n"
                                    "redis.call('HDEL', KEYS[2], ARGV[1])\n"
                                    "if ARGV[2] == '1' then redis.call('SREM', KEYS[3], ARGV[1]) "
                                    "end\n"
                                    "return 1\n";

/* KEYS zset hash; ARGV id due body */
static const char retry_script[] = "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then "
                                   "return 0 end\n"
                                   "redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])\n"
                                   "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])\n"
                                   "return 1\n";

/* KEYS index zset hash; ARGV prefix */
static const char cancel_script[] = "local n = 0\n"
                                    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
                                    "  if string.sub(id, 1, #ARGV[1]) == ARGV[1] then\n"
                                    "    redis.call('ZREM', KEYS[2], id)\n"
                                    "    redis.call('HDEL', KEYS[3], id)\n"
                                    "    redis.call('SREM', KEYS[1], id)\n"
                                    "    n = n + 1\n"
                                    "  end\n"
                                    "end\n"
                                    "return n\n";

struct call {
    rt_done_fn fn;
    rt_jobs_claim_fn claim;
    void *arg;
};

static void
on_reply(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct call *c = arg;

    (void)reply;
    c->fn(c->arg, err);
    free(c);
}

static enum wa_err
eval(struct rt *rt, const char *script, int nkeys, const char **keys, int nargs, const char **args,
     wa_kv_reply_fn cb, struct call *c)
{
    enum wa_err err;

    if (c == NULL) {
        return WA_ENOMEM;
    }
    if ((err = wa_kv_eval(rt->kv, script, nkeys, keys, nargs, args, cb, c)) != WA_OK) {
        free(c);
    }
    return err;
}

static struct call *
call_new(rt_done_fn fn, rt_jobs_claim_fn claim, void *arg)
{
    struct call *c = calloc(1, sizeof(*c));

    if (c != NULL) {
        c->fn = fn;
        c->claim = claim;
        c->arg = arg;
    }
    return c;
}

enum wa_err
rt_jobs_put(struct rt *rt, const char *zset, const char *hash, const char *index, const char *id,
            int64_t due_ms, const char *body, rt_done_fn fn, void *arg)
{
    char due[24];
    const char *keys[3] = {zset, hash, index != NULL ? index : zset};
    const char *args[4] = {id, due, body, index != NULL ? "1" : "0"};

    snprintf(due, sizeof(due), "%lld", (long long)due_ms);
    return eval(rt, put_script, 3, keys, 4, args, on_reply, call_new(fn, NULL, arg));
}

static void
on_claim(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct call *c = arg;
    size_t n = err == WA_OK ? wa_kv_reply_len(reply) / 2 : 0, i;
    const char **ids = NULL, **bodies = NULL;

    if (n > 0) {
        ids = calloc(n, sizeof(*ids));
        bodies = calloc(n, sizeof(*bodies));
        if (ids == NULL || bodies == NULL) {
            err = WA_ENOMEM; /* the jobs stay leased and come back after the lease */
            n = 0;
        }
    }
    for (i = 0; i < n; i++) {
        ids[i] = wa_kv_reply_str(wa_kv_reply_at(reply, 2 * i), NULL);
        bodies[i] = wa_kv_reply_str(wa_kv_reply_at(reply, 2 * i + 1), NULL);
        if (ids[i] == NULL || bodies[i] == NULL) {
            ids[i] = "";
            bodies[i] = "";
        }
    }
    c->claim(c->arg, err, n, ids, bodies);
    free(ids);
    free(bodies);
    free(c);
}

enum wa_err
rt_jobs_claim(struct rt *rt, const char *zset, const char *hash, int64_t now_ms, size_t limit,
              rt_jobs_claim_fn fn, void *arg)
{
    char now[24], lease[24], lim[24];
    const char *keys[2] = {zset, hash};
    const char *args[3] = {now, lease, lim};

    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(lease, sizeof(lease), "%lld", (long long)rt->cfg->lease_ms);
    snprintf(lim, sizeof(lim), "%zu", limit);
    return eval(rt, claim_script, 2, keys, 3, args, on_claim, call_new(NULL, fn, arg));
}

enum wa_err
rt_jobs_remove(struct rt *rt, const char *zset, const char *hash, const char *index, const char *id,
               rt_done_fn fn, void *arg)
{
    const char *keys[3] = {zset, hash, index != NULL ? index : zset};
    const char *args[2] = {id, index != NULL ? "1" : "0"};

    return eval(rt, remove_script, 3, keys, 2, args, on_reply, call_new(fn, NULL, arg));
}

enum wa_err
rt_jobs_retry(struct rt *rt, const char *zset, const char *hash, const char *id, int64_t due_ms,
              const char *body, rt_done_fn fn, void *arg)
{
    char due[24];
    const char *keys[2] = {zset, hash};
    const char *args[3] = {id, due, body};

    snprintf(due, sizeof(due), "%lld", (long long)due_ms);
    return eval(rt, retry_script, 2, keys, 3, args, on_reply, call_new(fn, NULL, arg));
}

enum wa_err
rt_jobs_cancel(struct rt *rt, const char *zset, const char *hash, const char *index,
               const char *prefix, rt_done_fn fn, void *arg)
{
    const char *keys[3] = {index, zset, hash};
    const char *args[1] = {prefix};

    return eval(rt, cancel_script, 3, keys, 1, args, on_reply, call_new(fn, NULL, arg));
}
