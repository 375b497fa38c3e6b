/*
 * policy.c: stage 2 of 7. Input: a valid request (consume.c). Outputs: a refusal (result.c:
 * expired, opted_out, window), a request parked until not_before (park.c: further ahead than
 * WA_NOTIFY_PARK_AFTER), a hold in memory until a nearer not_before, or the request queued for
 * pacing (pace.c). One Redis script reads, in one round trip, the state other daemons own
 * (docs/architecture.md "Shared state contracts": <p>win:<phone_number_id>:<contact> written
 * by wa-router, the contact's opt-out key <p>optout:<hash> (wa/optout.h) by wa-users) and this
 * request's own idempotency record:
 * a request already sent (a redelivery) is answered from the record without a second send.
 *
 * Threading: loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "notify.h"
#include "wa/clock.h"
#include "wa/log.h"

#define WINDOW_MS (24ull * 3600 * 1000)

static const char policy_lua[] =
    "local w = redis.call('GET', KEYS[1]) "
    "local o = redis.call('GET', KEYS[2]) "
    "local s = redis.call('HMGET', KEYS[3], 'state', 'wamid', 'attempts', 'code', 'reason') "
    "return {w or '', o or '', s[1] or '', s[2] or '', s[3] or '', s[4] or '', s[5] or ''}";

static void on_policy(void *arg, enum wa_err err, const struct wa_kv_reply *reply);

bool
nt_policy_expired(struct nt_req *r)
{
    if (r->rq.expires_at_ms > 0 && wa_clock_wall_ms() >= (uint64_t)r->rq.expires_at_ms) {
        nt_result_failed(r, "expired", false, 0, "expired", "expires_at has passed");
        return true;
    }
    return false;
}

static const char *
contact_of(const struct nt_req *r)
{
    const char *colon = strchr(r->conv, ':');

    return colon != NULL ? colon + 1 : r->conv;
}

void
nt_policy_start(struct nt_req *r)
{
    struct nt *nt = r->nt;
    char kwin[512], kopt[512], kreq[512];
    const char *keys[3] = {kwin, kopt, kreq};

    r->state = NT_REQ_POLICY;
    if (nt_policy_expired(r) || nt_park_take(r)) {
        return;
    }
    snprintf(kwin, sizeof(kwin), "%swin:%s", nt->key_prefix, r->conv);
    if (wa_optout_key(nt->optout, nt->key_prefix, contact_of(r), kopt, sizeof(kopt)) != WA_OK) {
        snprintf(kopt, sizeof(kopt), "%soptout:", nt->key_prefix); /* no contact: none to read */
    }
    snprintf(kreq, sizeof(kreq), "%snt:req:%s", nt->key_prefix, r->rq.request_id);
    if (wa_kv_eval(nt->kv, policy_lua, 3, keys, 0, NULL, on_policy, r) != WA_OK) {
        nt_req_later(r, 200);
    }
}

static const char *
elem(const struct wa_kv_reply *reply, size_t i)
{
    const char *s = wa_kv_reply_str(wa_kv_reply_at(reply, i), NULL);

    return s != NULL ? s : "";
}

static bool
free_form(const struct nt_req *r)
{
    return strcmp(r->rq.type, "template") != 0 && strcmp(r->rq.type, "read-receipt") != 0;
}

static void resolve_category(struct nt_req *r);

static void
opted_out(struct nt_req *r)
{
    nt_result_failed(r, "opted_out", false, 0, "Contact opted out of marketing",
                     "the contact opted out; marketing messages are not sent");
}

static void
on_policy(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct nt_req *r = arg;
    struct nt *nt = r->nt;
    const char *win, *state;
    uint64_t now = wa_clock_wall_ms();
    char *end = NULL;
    unsigned long long last;

    if (err != WA_OK || wa_kv_reply_len(reply) != 7) {
        nt_req_later(r, 200);
        return;
    }
    state = elem(reply, 2);
    r->attempts = (unsigned)strtoul(elem(reply, 4), NULL, 10);
    if (strcmp(state, "sent") == 0) {
        wa_counter_inc(nt->c_dup);
        nt_result_accepted(r, elem(reply, 3));
        return;
    }
    if (strcmp(state, "failed") == 0) {
        const char *code = elem(reply, 5);

        nt_result_failed(r, elem(reply, 6)[0] != '\0' ? "rejected" : "rejected", code[0] != '\0',
                         strtoll(code, NULL, 10), "already failed",
                         "an earlier delivery of this request failed permanently");
        return;
    }
    r->opted_out = elem(reply, 1)[0] != '\0' && strcmp(elem(reply, 1), "0") != 0;
    r->marketing = r->rq.category != NULL && strcmp(r->rq.category, "marketing") == 0;
    if (r->opted_out && r->marketing) {
        opted_out(r);
        return;
    }
    win = elem(reply, 0);
    last = strtoull(win, &end, 10);
    if (free_form(r) && (win[0] == '\0' || *end != '\0' || last + WINDOW_MS <= now)) {
        struct nt_invalid why;
        json_t *body = NULL;

        if (r->rq.fallback_template == NULL) {
            nt_result_failed(r, "window", true, 131047, wa_whatsapp_error_title(131047),
                             "more than 24 hours have passed since the customer last replied; "
                             "no fallback_template given");
            return;
        }
        if (nt_validate_build(&r->rq, r->rq.fallback_template, &body, &why) != WA_OK) {
            nt_result_failed(r, "invalid", why.has_code, why.code, "invalid fallback_template",
                             why.details);
            return;
        }
        json_decref(r->body);
        r->body = body;
        r->fallback = true;
    }
    resolve_category(r);
}

/* The template that goes out (the request's, or the fallback sent instead), if any. */
static const json_t *
template_sent(const struct nt_req *r)
{
    if (r->fallback) {
        return r->rq.fallback_template;
    }
    return strcmp(r->rq.type, "template") == 0 ? r->rq.body : NULL;
}

/* Looks the template's category up in the Cloud API registry (category.c), then goes on. */
static void
resolve_category(struct nt_req *r)
{
    const json_t *tpl = template_sent(r);
    const char *name = wa_json_str(tpl, "name"), *language = wa_json_path_str(tpl, "language.code");
    const char *category = "";
    enum wa_err err = WA_OK;

    if (name != NULL && language != NULL) {
        err = nt_category_resolve(r, name, language, &category);
        if (err == WA_EAGAIN) {
            return; /* nt_policy_category follows */
        }
    }
    nt_policy_category(r, err, category != NULL ? category : "");
}

void
nt_policy_category(struct nt_req *r, enum wa_err err, const char *category)
{
    struct nt *nt = r->nt;
    uint64_t now = wa_clock_wall_ms();
    struct wa_log_ctx ctx = {r->rq.request_id, r->trace_id, NULL};

    if (strcasecmp(category, "MARKETING") == 0) {
        r->marketing = true;
    }
    if (err != WA_OK && r->opted_out && !r->marketing) {
        /* an opted-out contact and no answer from the registry: ask again rather than guess,
         * for WA_NOTIFY_MAX_AGE; then refuse (a marketing send to them is the worse mistake) */
        if ((wa_clock_mono_us() - r->consumed_us) / 1000 >= (uint64_t)nt->cfg->max_age_ms) {
            nt_result_failed(r, "opted_out", false, 0, "Contact opted out of marketing",
                             "the contact opted out and the template registry did not say "
                             "the template's category");
            return;
        }
        wa_log_info(&ctx, "template registry unavailable (%s); the request waits",
                    wa_err_name(err));
        r->state = NT_REQ_POLICY;
        nt_req_later(r, 1000);
        return;
    }
    if (r->opted_out && r->marketing) {
        opted_out(r);
        return;
    }
    if (r->rq.not_before_ms > 0 && (uint64_t)r->rq.not_before_ms > now) {
        r->state = NT_REQ_HELD;
        wa_counter_inc(nt->c_held);
        nt_req_later(r, (uint64_t)r->rq.not_before_ms - now);
        return;
    }
    nt_pace_submit(r);
}
