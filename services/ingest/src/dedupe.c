/*
 * dedupe.c: stage 5 of 7. Input: the request's events. Output: each message (by wamid) and
 * status (by wamid and status) marked duplicate or not, then ig_publish_start().
 *
 * One Redis round trip per request: a Lua script claims every key atomically. A key is
 * "pending:<owner>" while a request works on it (TTL: the ack timeout plus a minute) and "d"
 * once its event is durable (TTL WA_DEDUP_TTL, Meta's redelivery horizon: 7 days). Rules:
 *   - missing key: claim it (pending), publish;
 *   - "d", or pending by this process: a duplicate, skip (if that request then fails it
 *     releases the key and answers 503, so Meta redelivers: nothing is lost);
 *   - pending by another owner (another pod, or this pod before a crash): publish anyway;
 *     duplicates are absorbed by consumers' idempotency, a loss would not be.
 * When Redis is down or slow, everything is published and the failure counted: dedup is an
 * optimisation, durability is the contract. Account events are never deduplicated.
 * Keys: "<WA_TOPIC_PREFIX>ingest:dedup:m:<wamid>", "...:s:<wamid>:<status>" (owner: wa-ingest).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/kv.h"

#include "ingest.h"

static const char claim_script[] = "local r = {}\n"
                                   "for i, k in ipairs(KEYS) do\n"
                                   "  local v = redis.call('GET', k)\n"
                                   "  if not v then\n"
                                   "    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])\n"
                                   "    r[i] = 1\n"
                                   "  elseif v == 'd' or v == ARGV[1] then\n"
                                   "    r[i] = 0\n"
                                   "  else\n"
                                   "    r[i] = 2\n"
                                   "  end\n"
                                   "end\n"
                                   "return r\n";

static const char done_script[] = "for i, k in ipairs(KEYS) do\n"
                                  "  redis.call('SET', k, 'd', 'PX', ARGV[1])\n"
                                  "end\n"
                                  "return #KEYS\n";

static const char release_script[] = "local n = 0\n"
                                     "for i, k in ipairs(KEYS) do\n"
                                     "  if redis.call('GET', k) == ARGV[1] then\n"
                                     "    redis.call('DEL', k)\n"
                                     "    n = n + 1\n"
                                     "  end\n"
                                     "end\n"
                                     "return n\n";

static void
on_claimed(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct ig_request *r = arg;
    struct ig *ig = r->ig;
    bool ok = err == WA_OK && wa_kv_reply_type(reply) == WA_KV_REPLY_ARRAY &&
              wa_kv_reply_len(reply) == r->ndedup;

    if (!ok) {
        wa_counter_inc(ig->m.dedup_failures);
        wa_log_warn(&r->log, "dedup unavailable (%s): publishing %zu events unchecked",
                    wa_err_name(err), r->ndedup);
    } else {
        r->dedup_claimed = true;
        for (size_t i = 0; i < r->ndedup; i++) {
            long long v = wa_kv_reply_int(wa_kv_reply_at(reply, i));

            r->dedup_state[i] = v >= 0 && v <= 2 ? (unsigned char)v : IG_DEDUP_UNKNOWN;
        }
    }
    /* A key repeated inside this body: the script answered 0 for the second copy already. */
    for (size_t i = 0; i < r->batch.count; i++) {
        int k = r->ev_dedup[i];

        if (k >= 0 && r->dedup_state[k] == IG_DEDUP_DUPLICATE) {
            wa_counter_inc(ig->m.duplicates[r->batch.events[i].kind == WA_WEBHOOK_STATUS]);
        }
    }
    ig_publish_start(r);
    ig_request_release(r, true);
}

/* Fills r->dedup_keys with one key per distinct-or-not dedup id, in event order. */
static enum wa_err
collect_keys(struct ig_request *r)
{
    struct ig *ig = r->ig;
    char id[WA_CONTRACT_KEY_MAX * 2];
    size_t n = r->batch.count;

    r->ev_dedup = malloc((n > 0 ? n : 1) * sizeof(*r->ev_dedup));
    r->dedup_keys = calloc(n > 0 ? n : 1, sizeof(*r->dedup_keys));
    r->dedup_state = malloc(n > 0 ? n : 1);
    if (r->ev_dedup == NULL || r->dedup_keys == NULL || r->dedup_state == NULL) {
        return WA_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int len;

        r->ev_dedup[i] = -1;
        if (wa_contract_event_dedup_id(&r->batch.events[i], id, sizeof(id)) != WA_OK) {
            continue; /* account events; absurdly long ids are published undeduplicated */
        }
        len = snprintf(NULL, 0, "%s%s", ig->dedup_prefix, id);
        if ((r->dedup_keys[r->ndedup] = malloc((size_t)len + 1)) == NULL) {
            return WA_ENOMEM;
        }
        snprintf(r->dedup_keys[r->ndedup], (size_t)len + 1, "%s%s", ig->dedup_prefix, id);
        r->dedup_state[r->ndedup] = IG_DEDUP_UNKNOWN;
        r->ev_dedup[i] = (int)r->ndedup++;
    }
    return WA_OK;
}

void
ig_dedupe_start(struct ig_request *r)
{
    struct ig *ig = r->ig;
    char ttl[32];
    const char *args[2] = {ig->owner, ttl};
    enum wa_err err;

    if (collect_keys(r) != WA_OK) {
        ig_request_reply(r, IG_OUT_UNAVAILABLE, 503,
                         "{\"error\":{\"code\":\"unavailable\",\"message\":\"out of memory\"}}");
        ig_request_release(r, false);
        return;
    }
    if (r->ndedup == 0) {
        ig_publish_start(r);
        return;
    }
    snprintf(ttl, sizeof(ttl), "%lld", (long long)ig->cfg->ack_timeout_ms + 60000);
    err = wa_kv_eval(ig->kv, claim_script, (int)r->ndedup, (const char **)r->dedup_keys, 2, args,
                     on_claimed, r);
    if (err != WA_OK) {
        wa_counter_inc(ig->m.dedup_failures);
        wa_log_debug(&r->log, "dedup unavailable (%s): publishing unchecked", wa_err_name(err));
        ig_publish_start(r);
        return;
    }
    r->outstanding++;
}

static void
on_finished(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct ig_request *r = arg;

    (void)reply;
    if (err != WA_OK && err != WA_ECLOSED) {
        /* Confirm failed: keys stay pending and expire, a redelivery is published again.
         * Release failed: the same, after the pending TTL. Neither loses data. */
        wa_counter_inc(r->ig->m.dedup_failures);
    }
    ig_request_release(r, true);
}

void
ig_dedupe_finish(struct ig_request *r, bool durable)
{
    struct ig *ig = r->ig;
    const char **keys;
    char ttl[32];
    const char *arg;
    size_t n = 0;

    if (!r->dedup_claimed || r->ndedup == 0 || ig->stopped) {
        return;
    }
    r->dedup_claimed = false;
    if ((keys = malloc(r->ndedup * sizeof(*keys))) == NULL) {
        return;
    }
    for (size_t i = 0; i < r->ndedup; i++) {
        unsigned char s = r->dedup_state[i];

        if (durable ? s != IG_DEDUP_DUPLICATE : s == IG_DEDUP_CLAIMED) {
            keys[n++] = r->dedup_keys[i];
        }
    }
    snprintf(ttl, sizeof(ttl), "%lld", (long long)ig->cfg->dedup_ttl_ms);
    arg = durable ? ttl : ig->owner;
    if (n > 0 && wa_kv_eval(ig->kv, durable ? done_script : release_script, (int)n, keys, 1, &arg,
                            on_finished, r) == WA_OK) {
        r->outstanding++;
    } else if (n > 0) {
        wa_counter_inc(ig->m.dedup_failures);
    }
    free(keys);
}
