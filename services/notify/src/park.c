/*
 * park.c: beside stage 2 (policy). Input: a valid request whose not_before lies in the future.
 * Outputs: a refusal (not_before more than WA_CONTRACT_NOT_BEFORE_MAX_MS ahead: invalid;
 * expires_at not after not_before: expired), the request parked in Redis with its Kafka
 * message handed back, or nothing (policy.c holds it in memory: due within
 * WA_NOTIFY_PARK_AFTER).
 *
 * Why: a held request stays uncommitted and counts against WA_NOTIFY_MAX_IN_FLIGHT, so a few
 * thousand requests scheduled for tomorrow would stall the consumer. Parked, they cost nothing
 * in memory and the consumer goes on.
 *
 * The parking store (docs/architecture.md "Shared state contracts"): <p>nt:park, a sorted set
 * of request ids by due time (not_before, ms since the epoch), and <p>nt:parkd, a hash of the
 * request's Kafka key, traceparent and event bytes by request id. Parking is one script that
 * writes both only when the id is not there yet (a redelivered or duplicated request parks
 * once) and answers "hold it yourself" when Redis's clock says the request is due within the
 * horizon; the offset is handed back only after Redis answered.
 *
 * The scheduler: every instance scans every WA_NOTIFY_PARK_TICK; one script claims due
 * entries by moving their score to now + WA_NOTIFY_PARK_LEASE (times from Redis's TIME), so one
 * instance moves an entry while the lease lasts. Each claimed entry is produced to
 * outbound.request again, byte for byte, and removed only once the broker acknowledged it. A
 * crash before the removal leaves the entry to come back after the lease and be republished:
 * a second copy of the request, which the idempotency record (idempotency.c) answers without
 * a second send. Nothing is lost on kill -9 and nothing is sent twice.
 *
 * Threading: loop thread. Ownership: a release context lives until its removal answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify.h"
#include "wa/clock.h"
#include "wa/log.h"

#define PARK_BATCH 500 /* entries claimed per scan; also the most releases in flight */

/* KEYS park parkd; ARGV id due body horizon_ms.
 * 1: parked; 0: already parked; 2: due within the horizon by Redis's clock (hold in memory). */
static const char park_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "if tonumber(ARGV[2]) - now <= tonumber(ARGV[4]) then return 2 end "
    "if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 0 then return 0 end "
    "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) "
    "return 1";

/* KEYS park parkd; ARGV lease_ms limit. Returns {ZCARD, id1, body1, id2, body2, ...}. */
static const char claim_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, "
    "  tonumber(ARGV[2])) "
    "local out = {redis.call('ZCARD', KEYS[1])} "
    "for _, id in ipairs(ids) do "
    "  local d = redis.call('HGET', KEYS[2], id) "
    "  if d then "
    "    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id) "
    "    out[#out + 1] = id "
    "    out[#out + 1] = d "
    "  else redis.call('ZREM', KEYS[1], id) end "
    "end "
    "return out";

/* KEYS park parkd; ARGV id */
static const char remove_lua[] = "redis.call('ZREM', KEYS[1], ARGV[1]) "
                                 "return redis.call('HDEL', KEYS[2], ARGV[1])";

/* ---- parking one request ---- */

static void
on_parked(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct nt_req *r = arg;
    struct nt *nt = r->nt;
    struct wa_log_ctx ctx = {r->rq.request_id, r->trace_id, NULL};
    long long v = err == WA_OK ? wa_kv_reply_int(reply) : -1;

    if (v < 0 || v > 2) {
        wa_log_warn(&ctx, "not parked (%s); trying again", wa_err_name(err));
        r->state = NT_REQ_POLICY; /* the timer starts the policy again */
        nt_req_later(r, 500);
        return;
    }
    if (v == 2) {
        r->hold_here = true; /* due soon by Redis's clock: held in memory like a near one */
        nt_policy_start(r);
        return;
    }
    if (v == 1) {
        wa_counter_inc(nt->c_parked);
    }
    wa_log_debug(&ctx, "%s until not_before %lld", v == 1 ? "parked" : "already parked",
                 (long long)r->rq.not_before_ms);
    /* the store holds it: the offset may be committed */
    wa_kafka_consumer_done(nt->consumer, r->msg);
    r->msg = NULL;
    nt_req_free(r);
}

/* Starts the park script for r. False when the entry could not be built (held instead). */
static bool
park(struct nt_req *r)
{
    struct nt *nt = r->nt;
    const struct wa_kafka_msg *m = r->msg;
    const char *key = m->key != NULL && m->keylen > 0 ? m->key : r->conv;
    size_t keylen = m->key != NULL && m->keylen > 0 ? m->keylen : strlen(r->conv), tplen = 0;
    const void *tp = wa_kafka_msg_header(m, "traceparent", &tplen);
    const char *keys[2] = {nt->key_park, nt->key_parkd};
    char due[24], horizon[24];
    const char *args[4] = {r->rq.request_id, due, NULL, horizon};
    json_t *o =
        json_pack("{s:s%, s:s%}", "key", key, keylen, "event", (const char *)m->value, m->len);
    char *body = NULL;
    enum wa_err err;

    if (o != NULL && tp != NULL) {
        json_object_set_new(o, "traceparent", json_stringn(tp, tplen));
    }
    if (o == NULL || (body = wa_json_dump(o)) == NULL) {
        json_decref(o);
        return false;
    }
    json_decref(o);
    snprintf(due, sizeof(due), "%lld", (long long)r->rq.not_before_ms);
    snprintf(horizon, sizeof(horizon), "%lld", (long long)nt->cfg->park_after_ms);
    args[2] = body;
    r->state = NT_REQ_PARK;
    err = wa_kv_eval(nt->kv, park_lua, 2, keys, 4, args, on_parked, r);
    free(body);
    if (err != WA_OK) {
        r->state = NT_REQ_POLICY;
        nt_req_later(r, 500);
    }
    return true;
}

bool
nt_park_take(struct nt_req *r)
{
    const struct nt_config *cfg = r->nt->cfg;
    int64_t now = (int64_t)wa_clock_wall_ms(), nb = r->rq.not_before_ms;

    if (nb <= now) {
        return false;
    }
    if (nb - now > WA_CONTRACT_NOT_BEFORE_MAX_MS) {
        nt_result_failed(r, "invalid", false, 0, "not_before too far ahead",
                         "not_before is more than 30 days ahead (the furthest a request may be "
                         "scheduled)");
        return true;
    }
    if (r->rq.expires_at_ms > 0 && r->rq.expires_at_ms <= nb) {
        nt_result_failed(r, "expired", false, 0, "expired",
                         "expires_at is not after not_before: the request could never be sent");
        return true;
    }
    if (r->hold_here || nb - now <= cfg->park_after_ms) {
        return false;
    }
    if (!park(r)) {
        r->hold_here = true; /* out of memory building the entry: hold it here */
        return false;
    }
    return true;
}

/* ---- the scheduler ---- */

struct release {
    struct nt *nt;
    char id[WA_CONTRACT_REQUEST_ID_MAX + 1];
};

static void scan(struct nt *nt);

static void
release_free(struct release *rel)
{
    rel->nt->park_releasing--;
    free(rel);
}

static void
on_removed(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct release *rel = arg;
    struct nt *nt = rel->nt;

    (void)reply;
    if (err == WA_OK) {
        wa_counter_inc(nt->c_released);
    } else {
        /* republished but still parked: it comes back after the lease, and the second copy
         * is answered from the idempotency record */
        wa_log_warn(NULL, "parked request %s republished, not removed (%s)", rel->id,
                    wa_err_name(err));
    }
    release_free(rel);
}

static void
on_republished(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct release *rel = arg;
    struct nt *nt = rel->nt;
    const char *keys[2] = {nt->key_park, nt->key_parkd};
    const char *args[1] = {rel->id};

    (void)partition;
    (void)offset;
    if (err != WA_OK) {
        wa_log_warn(NULL, "parked request %s not republished (%s); due again after the lease",
                    rel->id, wa_err_name(err));
        release_free(rel);
        return;
    }
    if (wa_kv_eval(nt->kv, remove_lua, 2, keys, 1, args, on_removed, rel) != WA_OK) {
        on_removed(rel, WA_EUNAVAIL, NULL);
    }
}

/* Produces one claimed entry (id, body: the stored JSON) to outbound.request again. */
static void
release(struct nt *nt, const char *id, const char *body, size_t len)
{
    json_t *o = NULL;
    const char *key, *event, *tp;
    struct wa_kafka_header h[1];
    struct release *rel;
    enum wa_err err;

    if (wa_json_parse(body, len, 0, &o, NULL) != WA_OK || (key = wa_json_str(o, "key")) == NULL ||
        (event = wa_json_str(o, "event")) == NULL || strlen(id) > WA_CONTRACT_REQUEST_ID_MAX) {
        wa_log_error(NULL, "parked entry %s is unreadable; left in %s", id, nt->key_parkd);
        json_decref(o);
        return;
    }
    tp = wa_json_str(o, "traceparent");
    if (tp != NULL) {
        h[0].name = "traceparent";
        h[0].value = tp;
        h[0].len = strlen(tp);
    }
    if ((rel = calloc(1, sizeof(*rel))) == NULL) {
        json_decref(o);
        return; /* due again after the lease */
    }
    rel->nt = nt;
    snprintf(rel->id, sizeof(rel->id), "%s", id);
    nt->park_releasing++;
    err = wa_kafka_produce(nt->producer, nt->topic_request, key, strlen(key), event,
                           json_string_length(json_object_get(o, "event")), tp != NULL ? h : NULL,
                           tp != NULL ? 1 : 0, on_republished, rel);
    if (err != WA_OK) {
        wa_log_warn(NULL, "parked request %s not republished (%s); due again after the lease", id,
                    wa_err_name(err));
        release_free(rel);
    }
    json_decref(o);
}

static void
on_claimed(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct nt *nt = arg;
    size_t n, i;

    nt->park_scanning = false;
    if (err != WA_OK || wa_kv_reply_type(reply) != WA_KV_REPLY_ARRAY ||
        wa_kv_reply_len(reply) < 1) {
        return;
    }
    wa_gauge_set(nt->g_parked, (double)wa_kv_reply_int(wa_kv_reply_at(reply, 0)));
    n = (wa_kv_reply_len(reply) - 1) / 2;
    for (i = 0; i < n; i++) {
        size_t len = 0;
        const char *id = wa_kv_reply_str(wa_kv_reply_at(reply, 1 + 2 * i), NULL);
        const char *body = wa_kv_reply_str(wa_kv_reply_at(reply, 2 + 2 * i), &len);

        if (id != NULL && body != NULL) {
            release(nt, id, body, len);
        }
    }
    if (n == PARK_BATCH) {
        scan(nt); /* more are due: go on without waiting for the tick */
    }
}

static void
scan(struct nt *nt)
{
    const char *keys[2] = {nt->key_park, nt->key_parkd};
    char lease[24], limit[24];
    const char *args[2] = {lease, limit};

    if (nt->park_scanning || nt->draining || nt->park_releasing >= PARK_BATCH ||
        !wa_kv_ready(nt->kv)) {
        return;
    }
    snprintf(lease, sizeof(lease), "%lld", (long long)nt->cfg->park_lease_ms);
    snprintf(limit, sizeof(limit), "%d", PARK_BATCH);
    nt->park_scanning = true;
    if (wa_kv_eval(nt->kv, claim_lua, 2, keys, 2, args, on_claimed, nt) != WA_OK) {
        nt->park_scanning = false;
    }
}

static void
on_tick(struct wa_timer *t, void *arg)
{
    (void)t;
    scan(arg);
}

enum wa_err
nt_park_start(struct nt *nt, struct wa_error *error)
{
    snprintf(nt->key_park, sizeof(nt->key_park), "%snt:park", nt->key_prefix);
    snprintf(nt->key_parkd, sizeof(nt->key_parkd), "%snt:parkd", nt->key_prefix);
    if ((nt->park_timer = wa_timer_new(nt->loop, on_tick, nt)) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    wa_timer_start(nt->park_timer, (uint64_t)nt->cfg->park_tick_ms,
                   (uint64_t)nt->cfg->park_tick_ms);
    return WA_OK;
}

void
nt_park_stop(struct nt *nt)
{
    wa_timer_free(nt->park_timer);
    nt->park_timer = NULL;
}
