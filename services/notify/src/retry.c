/*
 * retry.c: stage 6 of 7. Input: a classified answer (classify.c) of a request that is its
 * recipient's head. Outputs: the next attempt scheduled (timer, durable because the Kafka
 * message stays un-done), or the final failure (result.c). Also the pure back-off arithmetic.
 *
 * Limits: WA_NOTIFY_MAX_ATTEMPTS sends and WA_NOTIFY_MAX_AGE since the first attempt (read
 * from the Redis record, so both survive a crash), and the request's own expires_at.
 * Threading: loop thread.
 */
#include <math.h>
#include <stdlib.h>

#include "notify.h"
#include "wa/clock.h"
#include "wa/id.h"
#include "wa/log.h"

uint64_t
nt_retry_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned attempt, double rnd)
{
    uint64_t d = base_ms;

    for (unsigned i = 1; i < attempt && d < max_ms; i++) {
        d *= 2;
    }
    if (d > max_ms) {
        d = max_ms;
    }
    if (rnd < 0) {
        rnd = 0;
    } else if (rnd >= 1) {
        rnd = 0.999999;
    }
    return (uint64_t)((double)d * (0.5 + rnd / 2));
}

uint64_t
nt_retry_pair_backoff_ms(unsigned x, uint64_t max_ms)
{
    uint64_t d = 1000;

    for (unsigned i = 0; i < x && d < max_ms; i++) {
        d *= 4;
    }
    return d < max_ms ? d : max_ms;
}

static double
jitter(void)
{
    uint32_t v = 0;

    (void)wa_random_bytes(&v, sizeof(v));
    return (double)v / 4294967296.0;
}

static void
on_timer(struct wa_timer *t, void *arg)
{
    struct nt_req *r = arg;

    (void)t;
    switch (r->state) {
    case NT_REQ_POLICY: /* Redis was unavailable: ask again */
        nt_policy_start(r);
        break;
    case NT_REQ_HELD: /* not_before reached */
        if (!nt_policy_expired(r)) {
            nt_pace_submit(r);
        }
        break;
    case NT_REQ_RECORD:
        nt_idem_record(r, r->record_state);
        break;
    case NT_REQ_RESULT:
        nt_result_retry(r);
        break;
    default: /* NT_REQ_BACKOFF */
        if (!nt_policy_expired(r)) {
            nt_pace_ready(r);
        }
        break;
    }
}

void
nt_req_later(struct nt_req *r, uint64_t delay_ms)
{
    if (r->timer == NULL) {
        r->timer = wa_timer_new(r->nt->loop, on_timer, r);
    }
    if (r->timer == NULL) {
        /* Out of memory: leave the request un-done; it is redelivered after a restart. */
        wa_log_error(NULL, "out of memory: request %s parked", r->rq.request_id);
        return;
    }
    wa_timer_start(r->timer, delay_ms, 0);
}

void
nt_retry_schedule(struct nt_req *r, uint64_t delay_ms)
{
    r->state = NT_REQ_BACKOFF;
    nt_req_later(r, delay_ms);
}

bool
nt_retry_exhausted(const struct nt_req *r)
{
    const struct nt_config *cfg = r->nt->cfg;

    return r->attempts >= (unsigned)cfg->max_attempts ||
           wa_clock_wall_ms() >= r->first_ms + (uint64_t)cfg->max_age_ms;
}

void
nt_retry_handle(struct nt_req *r)
{
    struct nt *nt = r->nt;
    const struct nt_config *cfg = nt->cfg;
    const struct nt_answer *a = &r->ans;
    uint64_t now = wa_clock_wall_ms(), delay;
    struct wa_log_ctx ctx = {r->rq.request_id, r->trace_id, NULL};

    if (a->outcome == NT_TOKEN) {
        /* Not the request's fault: it waits with its number until the token is replaced. */
        if (r->attempts > 0) {
            r->attempts--;
        }
        nt_retry_schedule(r, 1000);
        return;
    }
    if (nt_retry_exhausted(r)) {
        nt_result_failed(r, "retries_exhausted", a->has_code, a->code, a->title, a->details);
        return;
    }
    wa_counter_inc(nt->c_retries);
    if (a->outcome == NT_CAPPED) {
        /* 131049: Meta holds marketing back for this user for a while (cloud-api.md §2.4):
         * retry from the longest ordinary delay on, doubling; the contact stays opted in. */
        delay = nt_retry_backoff_ms((uint64_t)cfg->backoff_max_ms,
                                    64 * (uint64_t)cfg->backoff_max_ms, r->attempts, jitter());
    } else if (a->outcome == NT_PAIR_RATE && r->rcp != NULL) {
        delay = nt_retry_pair_backoff_ms(r->rcp->pair_x, (uint64_t)cfg->pair_backoff_max_ms);
        r->rcp->pair_x++;
        r->rcp->blocked_until = wa_loop_now(nt->loop) + delay;
    } else {
        delay = nt_retry_backoff_ms((uint64_t)cfg->backoff_base_ms, (uint64_t)cfg->backoff_max_ms,
                                    r->attempts, jitter());
        if (a->outcome == NT_THROTTLED && r->num != NULL) {
            uint64_t pause = nt_retry_backoff_ms(1000, 60000, ++r->num->throttle_x, jitter());

            r->num->paused_until = wa_loop_now(nt->loop) + pause;
            r->num->tokens = 0;
            /* every instance pauses the number: the shared bucket grants nothing until then */
            (void)wa_kv_bucket_pause(nt->kv, r->num->bucket_key, pause, NULL, NULL);
        }
    }
    if (r->rq.expires_at_ms > 0 && now + delay >= (uint64_t)r->rq.expires_at_ms) {
        nt_result_failed(r, "expired", a->has_code, a->code, a->title,
                         "expires_at passes before the next attempt");
        return;
    }
    wa_log_info(&ctx, "send attempt %u failed (%s%lld), retry in %llu ms", r->attempts,
                a->has_code ? "code " : "http ",
                a->has_code ? (long long)a->code : (long long)a->http_status,
                (unsigned long long)delay);
    nt_retry_schedule(r, delay);
}
