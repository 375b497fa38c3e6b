/*
 * gcra.c: the generic cell rate algorithm, pure (gateway.h). A limit of r requests per minute
 * is an emission interval T = 60 s / r; a key's state is one number, its theoretical arrival
 * time (TAT). A request at now is admitted when now >= TAT - tau (tau = T * (burst - 1)), and
 * then TAT becomes max(TAT, now) + T; a rejected request leaves TAT alone, so hammering a
 * limit does not push it further away. limit.c runs the same arithmetic in one Redis script
 * (shared by every replica) and falls back to gw_local_take when Redis is down.
 */
#include <string.h>

#include "gateway.h"

#define MINUTE_US 60000000LL

void
gw_gcra_policy_init(struct gw_gcra_policy *p, int64_t rate_per_min, int64_t burst)
{
    if (rate_per_min < 1) {
        rate_per_min = 1;
    }
    if (burst < 1) {
        burst = rate_per_min / 10 > 0 ? rate_per_min / 10 : 1;
    }
    p->limit = rate_per_min;
    p->window_s = 60;
    p->interval_us = MINUTE_US / rate_per_min;
    if (p->interval_us < 1) {
        p->interval_us = 1;
    }
    p->tau_us = p->interval_us * (burst - 1);
}

void
gw_gcra_take(const struct gw_gcra_policy *p, int64_t *tat_us, int64_t now_us,
             struct gw_gcra_result *out)
{
    int64_t tat = *tat_us > now_us ? *tat_us : now_us;
    int64_t allow_at = tat - p->tau_us;

    memset(out, 0, sizeof(*out));
    if (now_us < allow_at) {
        out->retry_after_us = allow_at - now_us;
        out->reset_us = tat - now_us;
        return;
    }
    tat += p->interval_us;
    *tat_us = tat;
    out->allowed = true;
    out->remaining = (p->tau_us + p->interval_us - (tat - now_us)) / p->interval_us;
    if (out->remaining < 0) {
        out->remaining = 0;
    }
    out->reset_us = tat - now_us;
}

/* FNV-1a, 64 bits: spreads key names over the table. */
static uint64_t
fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h != 0 ? h : 1;
}

void
gw_local_take(struct gw_local_limiter *l, const char *key, const struct gw_gcra_policy *p,
              int64_t now_us, struct gw_gcra_result *out)
{
    uint64_t h = fnv1a(key);
    size_t slot = (size_t)(h % GW_LOCAL_SLOTS);

    if (l->hash[slot] != h) {
        l->hash[slot] = h;
        l->tat[slot] = 0;
    }
    gw_gcra_take(p, &l->tat[slot], now_us, out);
}
