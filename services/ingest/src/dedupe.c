/*
 * dedupe.c: stage 5 of 7. Input: the request's events. Output: their records (encoded at once
 * by ig_publish_encode, so the document does not wait on Redis), each message (by wamid) and
 * status (by wamid, status and group participant) marked duplicate (record skip) or not, then ig_publish_start().
 *
 * One Redis round trip per loop iteration, not per request: the claims of every request that
 * reached this stage during one pass of the loop are sent as one EVALSHA on a 0 ms timer
 * (claim_flush), and the script answers key by key in order, exactly as if the requests had
 * been sent one after the other. Confirmations ("d" once durable) are batched the same way;
 * nothing waits for them (the 200 has been sent; a lost confirmation only lets a redelivery
 * through, which consumers absorb). A key is
 * "pending:<owner>" while a request works on it (TTL: the ack timeout plus a minute) and "d"
 * once its event is durable (TTL WA_DEDUP_TTL, Meta's redelivery horizon: 7 days). Rules:
 *   - missing key: claim it (pending), publish;
 *   - "d": durable already, a duplicate: skip;
 *   - pending by anyone else (another request of this process, a claim whose reply timed out or
 *     whose release failed, another pod, this pod before a crash): publish anyway, so a 200
 *     always means this request's own copy is durable; duplicates are absorbed by consumers'
 *     idempotency, a loss would not be. Only a copy repeated inside one body is skipped (the
 *     body's first copy, claimed by the same call, becomes durable with it).
 * When Redis is down or slow, everything is published and the failure counted: dedup is an
 * optimisation, durability is the contract. Account events are never deduplicated.
 * Keys: "<WA_TOPIC_PREFIX>ingest:dedup:m:<wamid>", "...:s:<wamid>:<status>", and for a group's
 * statuses "...:s:<wamid>:<status>:<participant>" (owner: wa-ingest).
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
                                   "  elseif v == 'd' then\n"
                                   "    r[i] = 0\n"
                                   "  elseif v == ARGV[1] then\n"
                                   "    r[i] = 4\n"
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

/* The claim answer for r: ok with reply[off .. off + r->ndedup) as the keys' states. */
static void
claimed(struct ig_request *r, bool ok, enum wa_err err, const struct wa_kv_reply *reply, size_t off)
{
    struct ig *ig = r->ig;

    if (!ok) {
        wa_counter_inc(ig->m.dedup_failures);
        if (reply == NULL && err != WA_ETIMEDOUT) { /* refused at once: Redis is down */
            wa_log_debug(&r->log, "dedup unavailable (%s): publishing unchecked", wa_err_name(err));
        } else {
            wa_log_warn(&r->log, "dedup unavailable (%s): publishing %zu events unchecked",
                        wa_err_name(err), r->ndedup);
        }
    } else {
        r->dedup_claimed = true;
        for (size_t i = 0; i < r->ndedup; i++) {
            long long v = wa_kv_reply_int(wa_kv_reply_at(reply, off + i));

            if (v == 4) { /* pending by this process: this body's own earlier copy? */
                v = IG_DEDUP_FOREIGN;
                for (size_t j = 0; j < i; j++) {
                    if (r->dedup_state[j] == IG_DEDUP_CLAIMED &&
                        strcmp(r->dedup_keys[j], r->dedup_keys[i]) == 0) {
                        v = IG_DEDUP_DUPLICATE;
                        break;
                    }
                }
            }
            r->dedup_state[i] = v >= 0 && v <= 2 ? (unsigned char)v : IG_DEDUP_UNKNOWN;
        }
    }
    /* A key repeated inside this body: the script answered 0 for the second copy already. */
    for (size_t i = 0; i < r->nrecords; i++) {
        struct ig_record *rec = &r->records[i];

        if (rec->dedup >= 0 && r->dedup_state[rec->dedup] == IG_DEDUP_DUPLICATE) {
            rec->skip = true;
            wa_counter_inc(ig->m.duplicates[rec->topic == WA_WEBHOOK_STATUS]);
        }
    }
    ig_publish_start(r);
    ig_request_release(r, true);
}

/* One EVALSHA of claims: the requests it answers, in key order. Owned by the kv callback. */
struct claim_batch {
    size_t nkeys;
    size_t n;
    struct ig_request *reqs[];
};

static void
on_batch_claimed(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct claim_batch *cb = arg;
    bool ok = err == WA_OK && wa_kv_reply_type(reply) == WA_KV_REPLY_ARRAY &&
              wa_kv_reply_len(reply) == cb->nkeys;
    size_t off = 0;

    for (size_t i = 0; i < cb->n; i++) {
        struct ig_request *r = cb->reqs[i];
        size_t nk = r->ndedup;

        claimed(r, ok, err, reply, off); /* may free r */
        off += nk;
    }
    free(cb);
}

/* Sends the claims of queue[0 .. n) (nkeys keys in all) as one script call. */
static void
claim_send(struct ig *ig, struct ig_request **queue, size_t n, size_t nkeys)
{
    struct claim_batch *cb = malloc(sizeof(*cb) + n * sizeof(cb->reqs[0]));
    const char **keys = malloc(nkeys * sizeof(*keys));
    const char *args[2] = {ig->owner, ig->claim_ttl};
    enum wa_err err = WA_ENOMEM;
    size_t k = 0;

    if (cb != NULL && keys != NULL) {
        cb->nkeys = nkeys;
        cb->n = n;
        for (size_t i = 0; i < n; i++) {
            cb->reqs[i] = queue[i];
            for (size_t j = 0; j < queue[i]->ndedup; j++) {
                keys[k++] = queue[i]->dedup_keys[j];
            }
        }
        err = wa_kv_eval(ig->kv, claim_script, (int)nkeys, keys, 2, args, on_batch_claimed, cb);
    }
    free(keys);
    if (err == WA_OK) {
        return;
    }
    free(cb);
    for (size_t i = 0; i < n; i++) {
        claimed(queue[i], false, err, NULL, 0);
    }
}

/* The 0 ms timer: every claim queued during this loop pass, in batches of at most
 * IG_DEDUP_BATCH_KEYS keys. */
static void
claim_flush(struct wa_timer *t, void *arg)
{
    struct ig *ig = arg;
    struct ig_request **queue = ig->claims;
    size_t n = ig->nclaims, first = 0, nkeys = 0;

    (void)t;
    ig->claims = NULL;
    ig->nclaims = ig->capclaims = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > first && nkeys + queue[i]->ndedup > IG_DEDUP_BATCH_KEYS) {
            claim_send(ig, queue + first, i - first, nkeys);
            first = i;
            nkeys = 0;
        }
        nkeys += queue[i]->ndedup;
    }
    if (n > first) {
        claim_send(ig, queue + first, n - first, nkeys);
    }
    free(queue);
}

/* Queues r's claims for this loop pass's batch. */
static enum wa_err
claim_queue(struct ig_request *r)
{
    struct ig *ig = r->ig;

    if (r->ndedup > IG_DEDUP_BATCH_KEYS) {
        if (ig->nclaims > 0) {
            claim_flush(NULL, ig); /* keep arrival order: the queued ones go first */
        }
        claim_send(ig, &r, 1, r->ndedup); /* one huge body: its own call (answers it) */
        return WA_OK;
    }
    if (ig->nclaims == ig->capclaims) {
        size_t cap = ig->capclaims ? ig->capclaims * 2 : 64;
        struct ig_request **q = realloc(ig->claims, cap * sizeof(*q));

        if (q == NULL) {
            return WA_ENOMEM;
        }
        ig->claims = q;
        ig->capclaims = cap;
    }
    ig->claims[ig->nclaims++] = r;
    if (!wa_timer_active(ig->claim_timer)) {
        wa_timer_start(ig->claim_timer, 0, 0);
    }
    return WA_OK;
}

/* Fills r->dedup_keys with one key per distinct-or-not dedup id, in event order. */
static enum wa_err
collect_keys(struct ig_request *r)
{
    struct ig *ig = r->ig;
    char id[WA_CONTRACT_KEY_MAX * 2];
    size_t n = r->batch.count, plen = strlen(ig->dedup_prefix);

    r->ev_dedup = malloc((n > 0 ? n : 1) * sizeof(*r->ev_dedup));
    r->dedup_keys = calloc(n > 0 ? n : 1, sizeof(*r->dedup_keys));
    r->dedup_state = malloc(n > 0 ? n : 1);
    if (r->ev_dedup == NULL || r->dedup_keys == NULL || r->dedup_state == NULL) {
        return WA_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len;

        r->ev_dedup[i] = -1;
        if (wa_contract_event_dedup_id(&r->batch.events[i], id, sizeof(id)) != WA_OK) {
            continue; /* account events; absurdly long ids are published undeduplicated */
        }
        len = strlen(id);
        if ((r->dedup_keys[r->ndedup] = malloc(plen + len + 1)) == NULL) {
            return WA_ENOMEM;
        }
        memcpy(r->dedup_keys[r->ndedup], ig->dedup_prefix, plen);
        memcpy(r->dedup_keys[r->ndedup] + plen, id, len + 1);
        r->dedup_state[r->ndedup] = IG_DEDUP_UNKNOWN;
        r->ev_dedup[i] = (int)r->ndedup++;
    }
    return WA_OK;
}

void
ig_dedupe_start(struct ig_request *r)
{
    enum wa_err err;

    /* The events' records are made now, before the round trip, so the document can go */
    if ((err = collect_keys(r)) != WA_OK || (err = ig_publish_encode(r)) != WA_OK) {
        wa_log_error(&r->log, "webhook not durable (%s encoding events): 503 so Meta redelivers",
                     wa_err_name(err));
        ig_request_reply(r, IG_OUT_UNAVAILABLE, 503,
                         "{\"error\":{\"code\":\"unavailable\",\"message\":\"out of memory\"}}");
        ig_request_release(r, false);
        return;
    }
    if (r->ndedup == 0) {
        ig_publish_start(r);
        return;
    }
    r->outstanding++; /* claimed() answers it, from the batch or at once */
    if (claim_queue(r) != WA_OK) {
        claimed(r, false, WA_ENOMEM, NULL, 0);
    }
}

static void
on_released(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct ig_request *r = arg;

    (void)reply;
    if (err != WA_OK && err != WA_ECLOSED) {
        /* Release failed: the keys stay pending until their TTL; a redelivery is then
         * published again. Nothing is lost. */
        wa_counter_inc(r->ig->m.dedup_failures);
    }
    ig_request_release(r, true);
}

/* One EVALSHA of confirmations: owns its keys. */
struct confirm_batch {
    struct ig *ig;
    size_t n;
    char *keys[];
};

static void
on_confirmed(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct confirm_batch *cb = arg;
    struct ig *ig = cb->ig;

    (void)reply;
    if (err != WA_OK && err != WA_ECLOSED) {
        /* Keys stay pending and expire: a redelivery is published again. Nothing is lost. */
        wa_counter_inc(ig->m.dedup_failures);
    }
    for (size_t i = 0; i < cb->n; i++) {
        free(cb->keys[i]);
    }
    free(cb);
}

static void
confirm_send(struct ig *ig, char **keys, size_t n)
{
    struct confirm_batch *cb = malloc(sizeof(*cb) + n * sizeof(cb->keys[0]));
    const char *arg = ig->done_ttl;

    if (cb != NULL) {
        cb->ig = ig;
        cb->n = n;
        memcpy(cb->keys, keys, n * sizeof(*keys));
        if (wa_kv_eval(ig->kv, done_script, (int)n, (const char **)cb->keys, 1, &arg, on_confirmed,
                       cb) == WA_OK) {
            return;
        }
        free(cb);
    }
    wa_counter_inc(ig->m.dedup_failures);
    for (size_t i = 0; i < n; i++) {
        free(keys[i]);
    }
}

/* The 0 ms timer: every confirmation queued during this loop pass. */
static void
confirm_flush(struct wa_timer *t, void *arg)
{
    struct ig *ig = arg;

    (void)t;
    for (size_t i = 0; i < ig->nconfirms; i += IG_DEDUP_BATCH_KEYS) {
        size_t n = ig->nconfirms - i;

        confirm_send(ig, ig->confirms + i, n > IG_DEDUP_BATCH_KEYS ? IG_DEDUP_BATCH_KEYS : n);
    }
    ig->nconfirms = 0;
}

/* Moves r's durable keys into this loop pass's confirmation batch. */
static void
confirm_queue(struct ig_request *r)
{
    struct ig *ig = r->ig;

    for (size_t i = 0; i < r->ndedup; i++) {
        if (r->dedup_state[i] == IG_DEDUP_DUPLICATE) {
            continue;
        }
        if (ig->nconfirms == ig->capconfirms) {
            size_t cap = ig->capconfirms ? ig->capconfirms * 2 : 256;
            char **q = realloc(ig->confirms, cap * sizeof(*q));

            if (q == NULL) {
                wa_counter_inc(ig->m.dedup_failures); /* the keys expire as pending */
                break;
            }
            ig->confirms = q;
            ig->capconfirms = cap;
        }
        ig->confirms[ig->nconfirms++] = r->dedup_keys[i];
        r->dedup_keys[i] = NULL; /* the batch owns it now */
    }
    if (ig->nconfirms > 0 && !wa_timer_active(ig->confirm_timer)) {
        wa_timer_start(ig->confirm_timer, 0, 0);
    }
}

void
ig_dedupe_finish(struct ig_request *r, bool durable)
{
    struct ig *ig = r->ig;
    const char **keys;
    size_t n = 0;

    if (!r->dedup_claimed || r->ndedup == 0) {
        return;
    }
    r->dedup_claimed = false;
    if (durable) {
        confirm_queue(r); /* not awaited: the reply does not depend on it */
        return;
    }
    if ((keys = malloc(r->ndedup * sizeof(*keys))) == NULL) {
        return;
    }
    for (size_t i = 0; i < r->ndedup; i++) {
        if (r->dedup_state[i] == IG_DEDUP_CLAIMED) {
            keys[n++] = r->dedup_keys[i];
        }
    }
    if (n > 0 && wa_kv_eval(ig->kv, release_script, (int)n, keys, 1, (const char *[]){ig->owner},
                            on_released, r) == WA_OK) {
        r->outstanding++;
    } else if (n > 0) {
        wa_counter_inc(ig->m.dedup_failures);
    }
    free(keys);
}

enum wa_err
ig_dedupe_new(struct ig *ig, struct wa_error *error)
{
    snprintf(ig->claim_ttl, sizeof(ig->claim_ttl), "%lld",
             (long long)ig->cfg->ack_timeout_ms + 60000);
    snprintf(ig->done_ttl, sizeof(ig->done_ttl), "%lld", (long long)ig->cfg->dedup_ttl_ms);
    ig->claim_timer = wa_timer_new(ig->loop, claim_flush, ig);
    ig->confirm_timer = wa_timer_new(ig->loop, confirm_flush, ig);
    if (ig->claim_timer == NULL || ig->confirm_timer == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    return WA_OK;
}

void
ig_dedupe_stop(struct ig *ig)
{
    /* Still queued: the Redis client is closed, so claims are answered "unavailable" and
     * their requests end; confirmations are dropped (the keys expire: a redelivery is
     * published again, nothing is lost). */
    if (ig->nclaims > 0) {
        claim_flush(NULL, ig);
    }
    if (ig->nconfirms > 0) {
        confirm_flush(NULL, ig);
    }
    wa_timer_free(ig->claim_timer);
    wa_timer_free(ig->confirm_timer);
    ig->claim_timer = ig->confirm_timer = NULL;
    free(ig->confirms);
    ig->confirms = NULL;
    ig->capconfirms = 0;
}
