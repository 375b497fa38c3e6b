/*
 * idempotency.c: stage 4 of 7. Input: a request released by pacing (pace.c). Output: the
 * request claimed and handed to send.c, or answered from its record without sending.
 *
 * The record <p>nt:req:<request_id> (a Redis hash, docs/architecture.md) says what happened to
 * a request across redeliveries and instances: state claimed (owner, until: a lease slightly
 * longer than the HTTP timeout) -> sent (wamid) | failed (code, reason) | retry; attempts and
 * first (wall ms of the first attempt) so retry limits survive a crash; hist (the attempts log
 * for the dead letter). The claim script takes the request only when nobody holds a live claim
 * and it was not sent; a claim left by a crashed instance expires and is taken over: that send
 * may be a duplicate (counted in wa_notify_claim_takeovers_total), the only way one can happen.
 * Lease times come from Redis' clock (TIME), never an instance's own, so instances with skewed
 * clocks agree on when a claim expired. A record is written only by the claim's owner when it
 * releases the claim ("retry"), and a final record never turns "sent" into anything else.
 * A marketing request (policy.c: by the caller's category or the template registry's) is
 * checked against the contact's opt-out key (wa/optout.h) in the same script, right before the send: a contact who
 * opted out while the request was held (not_before), queued or backing off is not sent to.
 *
 * Threading: loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify.h"
#include "wa/log.h"

static const char claim_lua[] =
    "local s = redis.call('HMGET', KEYS[1], 'state', 'owner', 'until', 'attempts', 'first', "
    "'wamid', 'code', 'reason', 'hist') "
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "if s[1] == 'sent' or s[1] == 'failed' then "
    "  return {s[1], s[4] or '0', s[5] or '', s[6] or '', s[7] or '', s[8] or ''} end "
    "if ARGV[4] == '1' then "
    "  local o = redis.call('GET', KEYS[2]) "
    "  if o and o ~= '0' then return {'opted_out', s[4] or '0'} end end "
    "if s[1] == 'claimed' and s[2] ~= ARGV[1] and tonumber(s[3] or '0') > now then "
    "  return {'busy', tostring(tonumber(s[3]) - now)} end "
    "local att = tonumber(s[4] or '0') + 1 "
    "local first = s[5] or tostring(now) "
    "redis.call('HSET', KEYS[1], 'state', 'claimed', 'owner', ARGV[1], 'until', "
    "  tostring(now + tonumber(ARGV[2])), 'attempts', tostring(att), 'first', first) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[3]) "
    "return {'claimed', tostring(att), first, s[1] or '', s[9] or ''}";

static const char record_lua[] =
    "local s = redis.call('HMGET', KEYS[1], 'state', 'owner') "
    "if ARGV[1] == 'retry' and (s[1] ~= 'claimed' or s[2] ~= ARGV[7]) then return 0 end "
    "if s[1] == 'sent' and ARGV[1] ~= 'sent' then return 0 end "
    "redis.call('HSET', KEYS[1], 'state', ARGV[1], 'wamid', ARGV[2], 'code', ARGV[3], "
    "'reason', ARGV[4], 'hist', ARGV[5], 'until', '0') "
    "redis.call('PEXPIRE', KEYS[1], ARGV[6]) "
    "return 1";

static void
req_key(const struct nt_req *r, char *out, size_t size)
{
    snprintf(out, size, "%snt:req:%s", r->nt->key_prefix, r->rq.request_id);
}

static const char *
elem(const struct wa_kv_reply *reply, size_t i)
{
    const char *s = wa_kv_reply_str(wa_kv_reply_at(reply, i), NULL);

    return s != NULL ? s : "";
}

/* The claim did not lead to a send: give back the HTTP slot (and a half-open probe). */
static void
unclaimed(struct nt_req *r)
{
    struct nt *nt = r->nt;

    nt->http_inflight--;
    wa_gauge_set(nt->g_http, (double)nt->http_inflight);
    nt->breaker.probing = false;
    nt_pace_pump(r->num);
}

static void
on_claim(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct nt_req *r = arg;
    struct nt *nt = r->nt;
    const char *state;
    struct wa_log_ctx ctx = {r->rq.request_id, r->trace_id, NULL};

    if (err != WA_OK || wa_kv_reply_len(reply) < 2) {
        /* No claim, no send: Redis is the only guard against a second instance. */
        unclaimed(r);
        nt_retry_schedule(r, 200);
        return;
    }
    state = elem(reply, 0);
    if (strcmp(state, "opted_out") == 0) {
        /* the contact opted out while the request was held, queued or backing off */
        unclaimed(r);
        nt_result_failed(r, "opted_out", false, 0, "Contact opted out of marketing",
                         "the contact opted out before the send; marketing messages are not "
                         "sent");
        return;
    }
    if (strcmp(state, "busy") == 0) {
        uint64_t left = strtoull(elem(reply, 1), NULL, 10); /* ms, by Redis' clock */

        wa_log_info(&ctx, "another instance holds the claim; waiting");
        unclaimed(r);
        nt_retry_schedule(r, left + 10);
        return;
    }
    r->attempts = (unsigned)strtoul(elem(reply, 1), NULL, 10);
    r->first_ms = strtoull(elem(reply, 2), NULL, 10);
    if (strcmp(state, "sent") == 0 || strcmp(state, "failed") == 0) {
        unclaimed(r);
        if (state[0] == 's') {
            wa_counter_inc(nt->c_dup);
            nt_result_accepted(r, elem(reply, 3));
        } else {
            const char *code = elem(reply, 4);

            nt_result_failed(r, "rejected", code[0] != '\0', strtoll(code, NULL, 10),
                             "already failed",
                             "an earlier delivery of this request failed permanently");
        }
        return;
    }
    if (strcmp(elem(reply, 3), "claimed") == 0) {
        /* The previous holder vanished mid-send: this send may duplicate its. */
        r->takeover = true;
        wa_counter_inc(nt->c_takeover);
        wa_log_warn(&ctx, "took over an expired claim: possible duplicate send");
    }
    if (r->history == NULL && elem(reply, 4)[0] != '\0') {
        (void)wa_json_parse(elem(reply, 4), strlen(elem(reply, 4)), 8, &r->history, NULL);
        if (!json_is_array(r->history)) {
            json_decref(r->history);
            r->history = NULL;
        }
    }
    nt_send_start(r);
}

void
nt_idem_claim(struct nt_req *r)
{
    struct nt *nt = r->nt;
    char key[512], kopt[512], claim[32], ttl[32];
    const char *keys[2] = {key, kopt},
               *args[4] = {nt->instance, claim, ttl, r->marketing ? "1" : "0"};
    const char *colon = strchr(r->conv, ':');

    r->state = NT_REQ_CLAIM;
    req_key(r, key, sizeof(key));
    /* the same key policy.c read: the contact after the conversation's ':' */
    if (wa_optout_key(nt->optout, nt->key_prefix, colon != NULL ? colon + 1 : r->conv, kopt,
                      sizeof(kopt)) != WA_OK) {
        snprintf(kopt, sizeof(kopt), "%soptout:", nt->key_prefix); /* no contact: none to read */
    }
    snprintf(claim, sizeof(claim), "%lld", (long long)nt->cfg->claim_ms);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)nt->cfg->record_ttl_ms);
    if (wa_kv_eval(nt->kv, claim_lua, 2, keys, 4, args, on_claim, r) != WA_OK) {
        unclaimed(r);
        nt_retry_schedule(r, 200);
    }
}

static void
on_ignored(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    (void)arg;
    (void)err;
    (void)reply;
}

static void
on_record(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct nt_req *r = arg;
    struct nt_answer *a = &r->ans;

    (void)reply;
    if (err != WA_OK) {
        /* The outcome must be durable before the result: keep trying. */
        nt_req_later(r, 500);
        return;
    }
    if (strcmp(r->record_state, "sent") == 0) {
        nt_result_accepted(r, a->wamid);
    } else {
        nt_result_failed(r, r->reason != NULL ? r->reason : "rejected", a->has_code, a->code,
                         a->title, a->details);
    }
}

void
nt_idem_record(struct nt_req *r, const char *state)
{
    struct nt *nt = r->nt;
    char key[512], code[32], ttl[32];
    char *hist = r->history != NULL ? wa_json_dump(r->history) : NULL;
    const char *keys[1] = {key};
    const char *args[7] = {state, r->ans.wamid, code, "", hist != NULL ? hist : "[]",
                           ttl,   nt->instance};
    bool final = strcmp(state, "retry") != 0;

    r->record_state = state;
    if (final) {
        r->state = NT_REQ_RECORD;
    }
    req_key(r, key, sizeof(key));
    snprintf(code, sizeof(code), "%lld", r->ans.has_code ? (long long)r->ans.code : 0ll);
    if (!r->ans.has_code) {
        code[0] = '\0';
    }
    args[3] = strcmp(state, "failed") == 0 ? (r->reason != NULL ? r->reason : "rejected") : "";
    snprintf(ttl, sizeof(ttl), "%lld", (long long)nt->cfg->record_ttl_ms);
    /* A "retry" record only releases the claim early: fire-and-forget (the claim expires). */
    if (wa_kv_eval(nt->kv, record_lua, 1, keys, 7, args, final ? on_record : on_ignored,
                   final ? r : NULL) != WA_OK &&
        final) {
        nt_req_later(r, 500);
    }
    free(hist);
}
