/*
 * act_crm.c: forwarding to CRM endpoints: the forward action and the delivery pump.
 *
 * The forward action only queues: one durable job (jobs.c) per message and rule in
 * <p>rt:crm:<destination> / <p>rt:crmd:<destination>, id "<wamid>:<rule>:<n>", body
 * {"attempts", "record"}. The message is done once Redis has the job, so a slow or failing CRM
 * never holds up auto-replies.
 *
 * The pump, per destination of the current rules, every WA_ROUTER_TICK:
 *   - rate: rate_per_s requests per second, bursts up to burst, in a token bucket in Redis
 *     (<p>rt:crmrate:<destination>, wa_kv_bucket_take) shared by every instance, so N routers
 *     together still send at the destination's rate; a claimed delivery takes its token before
 *     it is sent and, while it waits for one, nothing more is claimed for that destination;
 *   - claims up to batch_max due jobs (leased) and POSTs them as one request: a single record
 *     when batch_max is 1, else {"count", "events": [records]}; with batching, at most one
 *     request per batch_wait so records accumulate;
 *   - sends X-Wabridge-Delivery (first job id), X-Wabridge-Attempt, X-Wabridge-Timestamp (Unix
 *     seconds) and signs them with the body: X-Wabridge-Signature-256: sha256=<hex
 *     HMAC-SHA256(secret, "<timestamp>.<delivery>.<body>")>, so a receiver can refuse replays
 *     (old timestamps, delivery ids it has seen) as well as forgeries;
 *   - 2xx: the jobs are removed. 408, 429, 5xx, timeouts and connection errors: each job is
 *     rescheduled after backoff_initial * 2^(attempts-1) (at most backoff_max, +-20% jitter);
 *     other 4xx, or max_attempts reached: the record goes to <p>router.crm.dlq with the last
 *     status and error, and the job is removed once Kafka acknowledged the dead letter.
 * Threading: loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa/buf.h"
#include "wa/clock.h"
#include "wa/crypto.h"
#include "wa/httpc.h"
#include "wa/id.h"
#include "wa/kv.h"
#include "wa/list.h"
#include "wa/log.h"

#define DESTS_MAX    64
#define INFLIGHT_MAX 4

struct dest_state {
    char name[RT_NAME_MAX];
    char rate_key[RT_KEY_MAX]; /* <p>rt:crmrate:<destination> */
    uint64_t last_send_ms;
    bool claiming;
    bool waiting; /* a claimed delivery waits for a token */
    int inflight; /* claimed deliveries: waiting for a token or sent */
};

struct rt_crm {
    struct rt *rt;
    struct wa_httpc *http;
    struct wa_timer *timer;
    struct dest_state dests[DESTS_MAX];
    size_t ndests;
    struct wa_list
        live; /* struct delivery in flight, freed at stop (cancelled calls never call back) */
};

/* One request in flight. */
struct delivery {
    struct rt_crm *crm;
    struct rt_ruleset *rules; /* keeps dest alive */
    const struct rt_dest *dest;
    struct dest_state *ds;
    size_t n;
    char **ids;
    json_t **jobs; /* parsed bodies */
    char *body;
    struct wa_timer *timer; /* next try for a token */
    struct wa_list link;    /* on crm->live */
};

static void pump_dest(struct rt_crm *crm, struct rt_ruleset *rs, const struct rt_dest *d);

static void
job_keys(struct rt *rt, const char *dest, char zset[RT_KEY_MAX], char hash[RT_KEY_MAX])
{
    snprintf(zset, RT_KEY_MAX, "%srt:crm:%s", rt->prefix, dest);
    snprintf(hash, RT_KEY_MAX, "%srt:crmd:%s", rt->prefix, dest);
}

static void
kick(void *arg)
{
    struct rt_crm *crm = arg;
    struct rt_ruleset *rs;

    if (crm->timer == NULL) {
        return;
    }
    rs = rt_current_rules(crm->rt);
    for (size_t i = 0; rs != NULL && i < rs->ndests; i++) {
        pump_dest(crm, rs, &rs->dests[i]);
    }
    rt_rules_unref(rs);
}

enum wa_err
rt_act_forward(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t idx, rt_done_fn fn,
               void *arg)
{
    const struct rt_msg *m = ctx->msg;
    char zset[RT_KEY_MAX], hash[RT_KEY_MAX], id[RT_KEY_MAX], conv[WA_CONTRACT_KEY_MAX];
    char now[WA_RFC3339_LEN];
    json_t *job;
    char *text;
    enum wa_err err;

    if (wa_contract_conversation_key(m->phone_number_id, m->contact, conv, sizeof(conv)) != WA_OK) {
        return WA_ETOOBIG;
    }
    job_keys(ctx->rt, a->dest, zset, hash);
    snprintf(id, sizeof(id), "%s:%zu", ctx->id_base, idx);
    wa_clock_rfc3339(wa_clock_wall_ms(), now);
    job = json_pack("{s:i,s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s,s:O?}}",
                    "attempts", 0, "record", "id", id, "type", WA_CE_TYPE_ROUTER_FORWARD, "rule",
                    ctx->rule, "destination", a->dest, "conversation", conv, "phone_number_id",
                    m->phone_number_id, "contact", m->contact, "wamid", m->wamid, "message_type",
                    m->type, "profile_name", m->profile_name, "text", m->text, "forwarded_at", now,
                    "message", ctx->inbound);
    if (job == NULL || (text = wa_json_dump(job)) == NULL) {
        json_decref(job);
        return WA_ENOMEM;
    }
    json_decref(job);
    err = rt_jobs_put(ctx->rt, zset, hash, NULL, id, (int64_t)wa_clock_wall_ms(), text, fn, arg);
    free(text);
    if (err == WA_OK && ctx->rt->crm != NULL) {
        wa_loop_post(ctx->rt->loop, kick, ctx->rt->crm); /* deliver now, not at the next tick */
    }
    return err;
}

static struct dest_state *
dest_state(struct rt_crm *crm, const struct rt_dest *d)
{
    for (size_t i = 0; i < crm->ndests; i++) {
        if (strcmp(crm->dests[i].name, d->name) == 0) {
            return &crm->dests[i];
        }
    }
    if (crm->ndests == DESTS_MAX) {
        return NULL;
    }
    struct dest_state *s = &crm->dests[crm->ndests++];
    snprintf(s->name, sizeof(s->name), "%s", d->name);
    snprintf(s->rate_key, sizeof(s->rate_key), "%srt:crmrate:%s", crm->rt->prefix, d->name);
    return s;
}

/* Takes dl off the live list. */
static void
delivery_unlink(struct delivery *dl)
{
    wa_list_remove(&dl->link);
}

static void
delivery_free(struct delivery *dl)
{
    delivery_unlink(dl);
    wa_timer_free(dl->timer);
    for (size_t i = 0; i < dl->n; i++) {
        free(dl->ids != NULL ? dl->ids[i] : NULL);
        json_decref(dl->jobs != NULL ? dl->jobs[i] : NULL);
    }
    free(dl->ids);
    free(dl->jobs);
    free(dl->body);
    rt_rules_unref(dl->rules);
    free(dl);
}

static void
on_settled(void *arg, enum wa_err err)
{
    (void)arg;
    if (err != WA_OK) {
        wa_log_warn(NULL, "crm: job state not updated: %s (the job reappears after its lease)",
                    wa_err_name(err));
    }
}

/* A dead letter being published: its job is removed once Kafka acknowledged it. */
struct dead_letter {
    struct rt *rt;
    char zset[RT_KEY_MAX], hash[RT_KEY_MAX];
    char *id;
};

static void
on_dead_letter_published(void *arg, enum wa_err err)
{
    struct dead_letter *d = arg;

    if (err == WA_OK) {
        rt_jobs_remove(d->rt, d->zset, d->hash, NULL, d->id, on_settled, NULL);
    } else if (err != WA_ECLOSED) {
        wa_log_warn(NULL,
                    "crm: dead letter %s not acknowledged (%s); the job reappears after its "
                    "lease",
                    d->id, wa_err_name(err));
    }
    free(d->id);
    free(d);
}

static int64_t
backoff_ms(const struct rt_dest *d, int64_t attempts)
{
    int64_t ms = d->backoff_initial_ms;
    uint32_t r = 0;

    for (int64_t i = 1; i < attempts && ms < d->backoff_max_ms; i++) {
        ms *= 2;
    }
    if (ms > d->backoff_max_ms) {
        ms = d->backoff_max_ms;
    }
    wa_random_bytes(&r, sizeof(r));
    return ms - ms / 5 + (int64_t)((double)(r % 10000) / 10000.0 * (double)(ms * 2 / 5));
}

static void
settle(struct delivery *dl, long status, const char *error)
{
    struct rt *rt = dl->crm->rt;
    char zset[RT_KEY_MAX], hash[RT_KEY_MAX];
    bool ok = status >= 200 && status < 300;
    bool retryable = status == 0 || status == 408 || status == 429 || status >= 500;
    int64_t now = (int64_t)wa_clock_wall_ms();

    job_keys(rt, dl->dest->name, zset, hash);
    for (size_t i = 0; i < dl->n; i++) {
        json_t *job = dl->jobs[i];
        int64_t attempts = json_integer_value(json_object_get(job, "attempts")) + 1;
        char *text;

        if (ok) {
            wa_counter_inc(rt->m.crm_sent);
            rt_jobs_remove(rt, zset, hash, NULL, dl->ids[i], on_settled, NULL);
            continue;
        }
        wa_counter_inc(rt->m.crm_failed);
        json_object_set_new(job, "attempts", json_integer(attempts));
        json_object_set_new(job, "last_status", json_integer(status));
        json_object_set_new(job, "last_error", json_string(error));
        if (retryable && attempts < dl->dest->max_attempts) {
            if ((text = wa_json_dump(job)) != NULL) {
                wa_counter_inc(rt->m.crm_retried);
                rt_jobs_retry(rt, zset, hash, dl->ids[i], now + backoff_ms(dl->dest, attempts),
                              text, on_settled, NULL);
                free(text);
            }
            continue;
        }
        /* dead letter: publish, and forget the job once Kafka acknowledged it (a job whose
         * publish fails stays leased and comes back after its lease) */
        json_object_set_new(job, "destination", json_string(dl->dest->name));
        json_object_set_new(job, "reason",
                            json_string(retryable ? "retries_exhausted" : "rejected"));
        {
            struct dead_letter *d = calloc(1, sizeof(*d));

            if (d == NULL || (d->id = strdup(dl->ids[i])) == NULL) {
                free(d);
                continue;
            }
            d->rt = rt;
            snprintf(d->zset, sizeof(d->zset), "%s", zset);
            snprintf(d->hash, sizeof(d->hash), "%s", hash);
            if (rt_publish(rt, rt->topic_crm_dlq, dl->ids[i], WA_CE_TYPE_ROUTER_CRM_DLQ, NULL, NULL,
                           job, on_dead_letter_published, d) != WA_OK) {
                free(d->id);
                free(d);
                continue;
            }
        }
        wa_counter_inc(rt->m.crm_dlq);
        wa_log_warn(NULL, "crm %s: %s dead-lettered after %lld attempt(s), last %ld %s",
                    dl->dest->name, dl->ids[i], (long long)attempts, status, error);
    }
}

static void
on_response(const struct wa_httpc_result *res, void *arg)
{
    struct delivery *dl = arg;
    struct rt_crm *crm = dl->crm;

    dl->ds->inflight--;
    if (res->err != WA_OK) {
        settle(dl, 0, res->message);
    } else {
        settle(dl, res->status, res->status >= 200 && res->status < 300 ? "" : "HTTP status");
    }
    delivery_free(dl);
    (void)crm;
}

static void
send_delivery(struct delivery *dl)
{
    const struct rt_dest *d = dl->dest;
    struct wa_httpc_header h[6];
    struct wa_httpc_request rq = {0};
    char sig[WA_HUB_SIGNATURE_LEN], attempt[24], ts[24];
    json_t *payload;
    size_t nh = 0;
    int64_t attempts = json_integer_value(json_object_get(dl->jobs[0], "attempts")) + 1;

    if (d->batch_max == 1 && dl->n == 1) {
        payload = json_incref(json_object_get(dl->jobs[0], "record"));
    } else {
        payload = json_pack("{s:i,s:[]}", "count", (json_int_t)dl->n, "events");
        for (size_t i = 0; payload != NULL && i < dl->n; i++) {
            json_array_append(json_object_get(payload, "events"),
                              json_object_get(dl->jobs[i], "record"));
        }
    }
    dl->body = payload != NULL ? wa_json_dump(payload) : NULL;
    json_decref(payload);
    if (dl->body == NULL) {
        settle(dl, 0, "out of memory");
        dl->ds->inflight--;
        delivery_free(dl);
        return;
    }
    snprintf(attempt, sizeof(attempt), "%lld", (long long)attempts);
    snprintf(ts, sizeof(ts), "%llu", (unsigned long long)(wa_clock_wall_ms() / 1000));
    h[nh++] = (struct wa_httpc_header){"Content-Type", "application/json"};
    h[nh++] = (struct wa_httpc_header){"X-Wabridge-Delivery", dl->ids[0]};
    h[nh++] = (struct wa_httpc_header){"X-Wabridge-Attempt", attempt};
    h[nh++] = (struct wa_httpc_header){"X-Wabridge-Timestamp", ts};
    if (d->secret != NULL) {
        struct wa_buf signed_text;

        wa_buf_init(&signed_text, 0);
        if (wa_buf_printf(&signed_text, "%s.%s.", ts, dl->ids[0]) != WA_OK ||
            wa_buf_append_str(&signed_text, dl->body) != WA_OK) {
            wa_buf_cleanup(&signed_text);
            settle(dl, 0, "out of memory");
            dl->ds->inflight--;
            delivery_free(dl);
            return;
        }
        wa_hub_signature_make(d->secret, signed_text.data, signed_text.len, sig);
        wa_buf_cleanup(&signed_text);
        h[nh++] = (struct wa_httpc_header){"X-Wabridge-Signature-256", sig};
    }
    rq.method = "POST";
    rq.url = d->url;
    rq.headers = h;
    rq.nheaders = nh;
    rq.body = dl->body;
    rq.body_len = strlen(dl->body);
    rq.body_borrowed = true;
    rq.timeout_ms = (unsigned)d->timeout_ms;
    rq.max_response = 64 * 1024;
    if (wa_httpc_send(dl->crm->http, &rq, on_response, dl, NULL, NULL) != WA_OK) {
        settle(dl, 0, "request not started");
        dl->ds->inflight--;
        delivery_free(dl);
    }
}

static void
on_token(void *arg, enum wa_err err, uint64_t granted, uint64_t wait_ms)
{
    struct delivery *dl = arg;
    struct rt_crm *crm = dl->crm;
    struct rt_ruleset *rs;
    const struct rt_dest *d = dl->dest;

    if (err != WA_OK || granted == 0) {
        if (err == WA_OK) {
            wa_counter_inc(crm->rt->m.crm_limited);
        }
        wa_timer_start(dl->timer, err == WA_OK ? wait_ms : 100, 0);
        return;
    }
    dl->ds->waiting = false;
    rs = rt_rules_ref(dl->rules);
    send_delivery(dl);     /* may free dl */
    pump_dest(crm, rs, d); /* claiming was held while this one waited */
    rt_rules_unref(rs);
}

/* One token of the destination's shared bucket for dl; sent once granted. */
static void
take_token(struct delivery *dl)
{
    const struct rt_dest *d = dl->dest;
    uint64_t burst = d->burst >= 1 ? (uint64_t)d->burst : 1;

    dl->ds->waiting = true;
    if (wa_kv_bucket_take(dl->crm->rt->kv, dl->ds->rate_key, d->rate_per_s, burst, 1, on_token,
                          dl) != WA_OK) {
        wa_timer_start(dl->timer, 100, 0); /* Redis refused at once: try again */
    }
}

static void
on_token_timer(struct wa_timer *t, void *arg)
{
    (void)t;
    take_token(arg);
}

struct claim_ctx {
    struct rt_crm *crm;
    struct rt_ruleset *rules;
    const struct rt_dest *dest;
    struct dest_state *ds;
};

static void
on_claimed(void *arg, enum wa_err err, size_t n, const char *const *ids, const char *const *bodies)
{
    struct claim_ctx *cc = arg;
    struct delivery *dl = NULL;
    size_t i, k = 0;

    cc->ds->claiming = false;
    if (err != WA_OK || n == 0 || cc->crm->timer == NULL) {
        goto out;
    }
    if ((dl = calloc(1, sizeof(*dl))) == NULL || (dl->ids = calloc(n, sizeof(char *))) == NULL ||
        (dl->jobs = calloc(n, sizeof(json_t *))) == NULL) {
        goto out; /* leased: the jobs come back */
    }
    dl->crm = cc->crm;
    wa_list_push_back(&cc->crm->live, &dl->link);
    dl->rules = rt_rules_ref(cc->rules);
    dl->dest = cc->dest;
    dl->ds = cc->ds;
    for (i = 0; i < n; i++) {
        json_t *job = NULL;
        if (wa_json_parse(bodies[i], strlen(bodies[i]), 0, &job, NULL) != WA_OK ||
            !json_is_object(json_object_get(job, "record"))) {
            char zset[RT_KEY_MAX], hash[RT_KEY_MAX];
            wa_log_error(NULL, "crm %s: job %s unreadable, dropped", cc->dest->name, ids[i]);
            json_decref(job);
            job_keys(cc->crm->rt, cc->dest->name, zset, hash);
            rt_jobs_remove(cc->crm->rt, zset, hash, NULL, ids[i], on_settled, NULL);
            continue;
        }
        dl->ids[k] = strdup(ids[i]);
        dl->jobs[k] = job;
        dl->n = ++k;
    }
    if (k == 0) {
        goto out;
    }
    if ((dl->timer = wa_timer_new(cc->crm->rt->loop, on_token_timer, dl)) == NULL) {
        goto out; /* leased: the jobs come back */
    }
    cc->ds->inflight++;
    cc->ds->last_send_ms = wa_loop_now(cc->crm->rt->loop);
    take_token(dl);
    dl = NULL;
    pump_dest(cc->crm, cc->rules, cc->dest); /* more may be due and allowed */
out:
    if (dl != NULL) {
        delivery_free(dl);
    }
    rt_rules_unref(cc->rules);
    free(cc);
}

static void
pump_dest(struct rt_crm *crm, struct rt_ruleset *rs, const struct rt_dest *d)
{
    struct rt *rt = crm->rt;
    uint64_t now = wa_loop_now(rt->loop);
    struct dest_state *ds = dest_state(crm, d);
    char zset[RT_KEY_MAX], hash[RT_KEY_MAX];
    struct claim_ctx *cc;

    if (ds == NULL || ds->claiming || ds->waiting || ds->inflight >= INFLIGHT_MAX || rt->draining ||
        !wa_kv_ready(rt->kv)) {
        return;
    }
    if (d->batch_max > 1 && now - ds->last_send_ms < (uint64_t)d->batch_wait_ms) {
        return;
    }
    if ((cc = calloc(1, sizeof(*cc))) == NULL) {
        return;
    }
    cc->crm = crm;
    cc->rules = rt_rules_ref(rs);
    cc->dest = d;
    cc->ds = ds;
    job_keys(rt, d->name, zset, hash);
    if (rt_jobs_claim(rt, zset, hash, (int64_t)wa_clock_wall_ms(), (size_t)d->batch_max, on_claimed,
                      cc) != WA_OK) {
        rt_rules_unref(cc->rules);
        free(cc);
        return;
    }
    ds->claiming = true;
}

static void
on_tick(struct wa_timer *t, void *arg)
{
    (void)t;
    kick(arg);
}

enum wa_err
rt_crm_start(struct rt *rt, struct wa_error *error)
{
    struct wa_httpc_config hc = {0};
    struct rt_crm *crm = calloc(1, sizeof(*crm));
    enum wa_err err;

    if (crm == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    rt->crm = crm; /* freed by rt_crm_stop, whatever start did */
    wa_list_init(&crm->live);
    crm->rt = rt;
    hc.ca_file = rt->cfg->crm_ca_file;
    hc.max_per_host = INFLIGHT_MAX * 2;
    if ((err = wa_httpc_new(rt->loop, &hc, &crm->http, error)) != WA_OK) {
        return err;
    }
    if ((crm->timer = wa_timer_new(rt->loop, on_tick, crm)) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    wa_timer_start(crm->timer, (uint64_t)rt->cfg->tick_ms, (uint64_t)rt->cfg->tick_ms);
    return WA_OK;
}

void
rt_crm_stop(struct rt *rt)
{
    struct rt_crm *crm = rt->crm;
    struct wa_list *it;

    if (crm == NULL) {
        return;
    }
    wa_timer_free(crm->timer);
    /* Token requests and claims were answered when the scaffolding silenced Redis; cancelled
     * HTTP calls never call back: what is left is freed, the jobs' lease returns them. */
    wa_httpc_free(crm->http);
    while ((it = wa_list_first(&crm->live)) != NULL) {
        delivery_free(WA_LIST_ENTRY(it, struct delivery, link));
    }
    free(crm);
    rt->crm = NULL;
}
