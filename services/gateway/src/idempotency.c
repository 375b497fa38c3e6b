/*
 * idempotency.c: the Redis record of an Idempotency-Key (part of POST /v1/messages, publish.c).
 * One hash per (principal, key): <p>gw:idem:<principal>:<SHA-256 of the key, 32 hex digits>
 * with state (pending, done), fp (the body's fingerprint), and once done the answer's status
 * and body. A claim is one Lua call: it creates the record (pending, expiring after
 * PENDING_MS so a crashed replica's claim does not block the key for a day) or reports the
 * record found; gw_idem_decide (message.c) says what that means. Finishing stores the answer
 * for WA_GATEWAY_IDEMPOTENCY_TTL, or deletes the claim when the publish failed so the client may
 * retry; both only while the record still has the caller's fingerprint.
 *
 * Threading: loop thread. Ownership: struct claim lives until its callback ran.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "wa/kv.h"

#define PENDING_MS 60000 /* longer than the producer's delivery timeout (30 s) */

static const char claim_lua[] =
    "local v = redis.call('HMGET', KEYS[1], 'state', 'fp', 'status', 'body') "
    "if not v[1] then "
    "redis.call('HSET', KEYS[1], 'state', 'pending', 'fp', ARGV[1]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
    "return {'new', '', '', ''} end "
    "return {v[1], v[2] or '', v[3] or '', v[4] or ''}";

static const char finish_lua[] =
    "if redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then return 0 end "
    "if ARGV[2] == '' then redis.call('DEL', KEYS[1]) return 1 end "
    "redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[4]) "
    "return 1";

struct claim {
    struct gw_call *c;
    gw_idem_claim_fn cb;
    char fp[2 * WA_SHA256_LEN + 1];
};

static void
record_key(const struct gw_call *c, const char *key, char *out, size_t size)
{
    unsigned char d[WA_SHA256_LEN];
    char hex[2 * WA_SHA256_LEN + 1];

    wa_sha256(key, strlen(key), d);
    wa_hex_encode(d, sizeof(d), hex);
    snprintf(out, size, "%sgw:idem:%s:%.32s", c->gw->prefix, c->principal, hex);
}

static const char *
element(const struct wa_kv_reply *reply, size_t i)
{
    const char *s = wa_kv_reply_str(wa_kv_reply_at(reply, i), NULL);

    return s != NULL ? s : "";
}

static void
on_claimed(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct claim *cl = arg;
    struct gw_call *c = cl->c;
    gw_idem_claim_fn cb = cl->cb;
    enum gw_idem_decision d = GW_IDEM_NEW;
    const char *response = NULL;
    int status = 0;

    if (err == WA_OK && wa_kv_reply_len(reply) != 4) {
        err = WA_EPARSE;
    }
    if (err == WA_OK) {
        d = gw_idem_decide(element(reply, 0), element(reply, 1), cl->fp);
        status = (int)strtol(element(reply, 2), NULL, 10);
        response = element(reply, 3);
    }
    free(cl);
    cb(c, err, d, status, response);
}

void
gw_idem_claim(struct gw_call *c, const char *key, const char *fp, gw_idem_claim_fn cb)
{
    struct claim *cl = calloc(1, sizeof(*cl));
    char rkey[256], pending[32];
    const char *keys[1] = {rkey}, *args[2] = {fp, pending};
    enum wa_err err = WA_ENOMEM;

    if (cl != NULL) {
        cl->c = c;
        cl->cb = cb;
        snprintf(cl->fp, sizeof(cl->fp), "%s", fp);
        record_key(c, key, rkey, sizeof(rkey));
        snprintf(pending, sizeof(pending), "%d", PENDING_MS);
        err = wa_kv_eval(c->gw->kv, claim_lua, 1, keys, 2, args, on_claimed, cl);
    }
    if (err != WA_OK) {
        free(cl);
        cb(c, err, GW_IDEM_NEW, 0, NULL);
    }
}

static void
on_finished(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    (void)arg;
    (void)err;
    (void)reply; /* a lost answer only means the key is claimable again after PENDING_MS */
}

void
gw_idem_finish(struct gw_call *c, const char *key, const char *fp, int status, const char *response)
{
    char rkey[256], st[16], ttl[32];
    const char *keys[1] = {rkey}, *args[4] = {fp, st, response != NULL ? response : "", ttl};

    record_key(c, key, rkey, sizeof(rkey));
    if (response != NULL) {
        snprintf(st, sizeof(st), "%d", status);
    } else {
        st[0] = '\0';
    }
    snprintf(ttl, sizeof(ttl), "%lld", (long long)c->gw->cfg->idempotency_ttl_ms);
    (void)wa_kv_eval(c->gw->kv, finish_lua, 1, keys, 4, args, on_finished, NULL);
}
