/*
 * pace.c: stage 3 of 7. Input: requests that passed policy (policy.c). Output: requests
 * released to idempotency.c, one at a time per recipient and at the sending number's rate.
 *
 * Per recipient (conversation key <phone_number_id>:<contact>): a FIFO; only its head is
 * active, and the next request goes out only once the head reached its final outcome (Meta
 * does not keep order between messages in flight, cloud-api.md §1.6). A 131056 blocks only
 * that recipient for 4^X s (retry.c).
 *
 * Per sending number: requests whose recipient is free wait in one queue ordered by the request's
 * `priority` (higher first; arrival order within a priority, so requests without one stay FIFO):
 * an OTP is not stuck behind a campaign's backlog at 80 messages/s.
 *
 * Per sending number: a token bucket in Redis (<p>nt:rate:<phone_number_id>,
 * wa_kv_bucket_take: one Lua script, Redis's own clock), shared by every instance, so the
 * configured rate holds however many instances run. An instance leases a few tokens at a time
 * (about 20 ms worth) and only when it has requests waiting, so idle instances hold none; a
 * lease not spent within NT_LEASE_MS is dropped, so N instances cannot store up N leases and
 * burst together. A 130429 pauses the number for every instance (retry.c: the shared bucket
 * grants nothing until the pause ends).
 *
 * Threading: loop thread. Ownership: struct nt owns numbers and recipients; queues borrow
 * requests (a request is in at most one queue of each kind).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify.h"
#include "wa/clock.h"
#include "wa/log.h"

/* How long leased tokens stay spendable (a lease is about 20 ms of the number's rate). */
#define NT_LEASE_MS 250

static uint64_t
hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

enum wa_err
nt_pace_init(struct nt *nt, struct wa_error *error)
{
    nt->rtab_size = 16384;
    nt->rtab = calloc(nt->rtab_size, sizeof(*nt->rtab));
    if (nt->rtab == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    return WA_OK;
}

void
nt_pace_cleanup(struct nt *nt)
{
    struct nt_number *num, *next;

    for (size_t i = 0; nt->rtab != NULL && i < nt->rtab_size; i++) {
        struct nt_recipient *rc = nt->rtab[i], *rn;

        for (; rc != NULL; rc = rn) {
            rn = rc->hnext;
            free(rc);
        }
    }
    free(nt->rtab);
    nt->rtab = NULL;
    for (num = nt->numbers; num != NULL; num = next) {
        next = num->next;
        wa_timer_free(num->timer);
        free(num);
    }
    nt->numbers = NULL;
}

static void
on_number_timer(struct wa_timer *t, void *arg)
{
    (void)t;
    nt_pace_pump(arg);
}

struct nt_number *
nt_pace_number(struct nt *nt, const char *id)
{
    struct nt_number *num;
    char rate[32];
    int64_t mps = nt->cfg->mps;

    for (num = nt->numbers; num != NULL; num = num->next) {
        if (strcmp(num->id, id) == 0) {
            return num;
        }
    }
    if ((num = calloc(1, sizeof(*num))) == NULL) {
        return NULL;
    }
    wa_list_init(&num->queue);
    if ((num->timer = wa_timer_new(nt->loop, on_number_timer, num)) == NULL) {
        free(num);
        return NULL;
    }
    num->nt = nt;
    snprintf(num->id, sizeof(num->id), "%s", id);
    if (nt_config_lookup(nt->cfg->access_token, id, num->token, sizeof(num->token)) != WA_OK) {
        num->token[0] = '\0';
    }
    if (nt->cfg->rates[0] != '\0' &&
        nt_config_lookup(nt->cfg->rates, id, rate, sizeof(rate)) == WA_OK &&
        (wa_parse_int(rate, &mps) != WA_OK || mps < 1)) {
        wa_log_warn(NULL, "WA_NOTIFY_RATES: bad rate for %s; using %lld", id,
                    (long long)nt->cfg->mps);
        mps = nt->cfg->mps;
    }
    num->mps = (double)mps;
    num->burst = (uint64_t)(num->mps * (double)nt->cfg->burst_ms / 1000.0);
    num->batch = (uint64_t)(num->mps / 50.0); /* 20 ms worth */
    if (num->batch < 2) {
        num->batch = 2;
    }
    if (num->burst < num->batch) {
        num->burst = num->batch;
    }
    snprintf(num->bucket_key, sizeof(num->bucket_key), "%snt:rate:%s", nt->key_prefix, id);
    num->next = nt->numbers;
    nt->numbers = num;
    nt_health_number(num);
    return num;
}

static struct nt_recipient *
recipient(struct nt *nt, const char *key, bool create)
{
    size_t i = hash(key) % nt->rtab_size;
    struct nt_recipient *rc;

    for (rc = nt->rtab[i]; rc != NULL; rc = rc->hnext) {
        if (strcmp(rc->key, key) == 0) {
            return rc;
        }
    }
    if (!create || (rc = calloc(1, sizeof(*rc))) == NULL) {
        return NULL;
    }
    wa_list_init(&rc->reqs);
    snprintf(rc->key, sizeof(rc->key), "%s", key);
    rc->hnext = nt->rtab[i];
    nt->rtab[i] = rc;
    nt->nrecipients++;
    return rc;
}

static void
recipient_drop(struct nt *nt, struct nt_recipient *rc)
{
    struct nt_recipient **pp = &nt->rtab[hash(rc->key) % nt->rtab_size];

    for (; *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == rc) {
            *pp = rc->hnext;
            nt->nrecipients--;
            free(rc);
            return;
        }
    }
}

void
nt_pace_submit(struct nt_req *r)
{
    struct nt *nt = r->nt;
    struct nt_recipient *rc;

    r->num = nt_pace_number(nt, r->rq.phone_number_id);
    rc = recipient(nt, r->conv, true);
    if (r->num == NULL || rc == NULL) {
        nt_result_failed(r, "internal", false, 0, "out of memory", "cannot queue the request");
        return;
    }
    r->rcp = rc;
    wa_list_push_back(&rc->reqs, &r->rlink);
    if (wa_list_first(&rc->reqs) == &r->rlink) {
        nt_pace_ready(r);
    } else {
        r->state = NT_REQ_WAIT;
    }
}

void
nt_pace_ready(struct nt_req *r)
{
    struct nt_number *num = r->num;
    uint64_t now = wa_loop_now(r->nt->loop);
    struct wa_list *last;

    if (r->rcp != NULL && r->rcp->blocked_until > now) {
        nt_retry_schedule(r, r->rcp->blocked_until - now);
        return;
    }
    r->state = NT_REQ_READY;
    r->ready_us = wa_clock_mono_us();
    last = wa_list_last(&num->queue);
    if (last == NULL || WA_LIST_ENTRY(last, struct nt_req, qlink)->rq.priority >= r->rq.priority) {
        wa_list_push_back(&num->queue, &r->qlink); /* the common case: no higher priority */
    } else {
        /* ahead of every request of lower priority, behind those of its own or higher */
        struct wa_list *pos = num->queue.next;

        while (WA_LIST_ENTRY(pos, struct nt_req, qlink)->rq.priority >= r->rq.priority) {
            pos = pos->next;
        }
        wa_list_insert_before(pos, &r->qlink);
    }
    num->qlen++;
    wa_gauge_add(r->nt->g_queued, 1);
    nt_pace_pump(num);
}

void
nt_pace_release(struct nt_req *r)
{
    struct nt *nt = r->nt;
    struct nt_recipient *rc = r->rcp;
    struct wa_list *first;

    if (rc == NULL) {
        return;
    }
    r->rcp = NULL;
    wa_list_remove(&r->rlink);
    if (r->accepted) {
        rc->pair_x = 0;
    }
    if ((first = wa_list_first(&rc->reqs)) != NULL) {
        struct nt_req *head = WA_LIST_ENTRY(first, struct nt_req, rlink);

        if (head->state == NT_REQ_WAIT) {
            nt_pace_ready(head);
        }
    } else if (rc->blocked_until <= wa_loop_now(nt->loop)) {
        recipient_drop(nt, rc);
    }
}

static void
on_lease(void *arg, enum wa_err err, uint64_t granted, uint64_t wait_ms)
{
    struct nt_number *num = arg;

    num->leasing = false;
    if (err != WA_OK) {
        wa_timer_start(num->timer, 100, 0);
        return;
    }
    if (granted > 0) {
        num->tokens += granted;
        num->tokens_until = wa_loop_now(num->nt->loop) + NT_LEASE_MS;
        nt_pace_pump(num);
    } else {
        wa_timer_start(num->timer, wait_ms, 0);
    }
}

static void
lease(struct nt_number *num)
{
    uint64_t w = num->qlen < num->batch ? num->qlen : num->batch;

    if (num->leasing || wa_timer_active(num->timer)) {
        return;
    }
    if (wa_kv_bucket_take(num->nt->kv, num->bucket_key, num->mps, num->burst, w > 0 ? w : 1,
                          on_lease, num) != WA_OK) {
        wa_timer_start(num->timer, 100, 0);
        return;
    }
    num->leasing = true;
}

void
nt_pace_pump(struct nt_number *num)
{
    struct nt *nt = num->nt;
    uint64_t now = wa_loop_now(nt->loop);
    struct wa_list *first;

    if (nt->draining || num->token_bad) {
        return;
    }
    if (now < num->paused_until) {
        if (!wa_timer_active(num->timer)) {
            wa_timer_start(num->timer, num->paused_until - now, 0);
        }
        return;
    }
    while ((first = wa_list_first(&num->queue)) != NULL &&
           nt->http_inflight < (size_t)nt->cfg->max_http) {
        struct nt_req *r = WA_LIST_ENTRY(first, struct nt_req, qlink);

        if (num->tokens > 0 && now >= num->tokens_until) {
            num->tokens = 0; /* a stale lease: its time slot passed */
        }
        if (num->tokens == 0) {
            lease(num);
            return;
        }
        if (!nt_breaker_allow(&nt->breaker, now)) {
            if (!wa_timer_active(nt->breaker_timer)) {
                wa_timer_start(nt->breaker_timer,
                               nt->breaker.open_until > now ? nt->breaker.open_until - now : 50, 0);
            }
            return;
        }
        wa_list_remove(&r->qlink);
        num->qlen--;
        wa_gauge_add(nt->g_queued, -1);
        num->tokens--;
        wa_histogram_observe(nt->h_pacing, (double)(wa_clock_mono_us() - r->ready_us) / 1e6);
        nt->http_inflight++;
        wa_gauge_set(nt->g_http, (double)nt->http_inflight);
        nt_idem_claim(r);
    }
}

void
nt_pace_pump_all(struct nt *nt)
{
    for (struct nt_number *num = nt->numbers; num != NULL; num = num->next) {
        nt_pace_pump(num);
    }
}
