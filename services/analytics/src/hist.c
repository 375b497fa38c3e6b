/*
 * hist.c: mergeable latency histograms (pure). The bucket edges are fixed (2^(i/4) ms, four
 * buckets per doubling, about 19% wide), so the histogram of a day is exactly the sum of its
 * half-hour histograms and a quantile read from either is the same number.
 */
#include <math.h>

#include "analytics.h"

double
an_hist_upper(size_t i)
{
    return i == 0 ? 1.0 : exp2((double)i / 4.0);
}

static size_t
bucket_of(int64_t ms)
{
    size_t i;

    if (ms < 1) {
        return 0;
    }
    /* smallest i with ms < 2^(i/4); log2 first, then fix rounding at the edges */
    i = (size_t)floor(log2((double)ms) * 4.0) + 1;
    while (i > 1 && (double)ms < an_hist_upper(i - 1)) {
        i--;
    }
    while (i < AN_HIST_BUCKETS - 1 && (double)ms >= an_hist_upper(i)) {
        i++;
    }
    return i < AN_HIST_BUCKETS ? i : AN_HIST_BUCKETS - 1;
}

void
an_hist_add(struct an_hist *h, int64_t ms)
{
    if (ms < 0) {
        ms = 0; /* second-resolution webhook times can precede a millisecond accept time */
    }
    h->n[bucket_of(ms)]++;
    h->count++;
    h->sum_ms += ms;
}

void
an_hist_merge(struct an_hist *into, const struct an_hist *from)
{
    for (size_t i = 0; i < AN_HIST_BUCKETS; i++) {
        into->n[i] += from->n[i];
    }
    into->count += from->count;
    into->sum_ms += from->sum_ms;
}

double
an_hist_quantile(const struct an_hist *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->count == 0) {
        return 0;
    }
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1) {
        rank = 1;
    }
    for (size_t i = 0; i < AN_HIST_BUCKETS; i++) {
        seen += h->n[i];
        if (seen >= rank) {
            return an_hist_upper(i);
        }
    }
    return an_hist_upper(AN_HIST_BUCKETS - 1);
}

static json_t *
num_or_null(const struct an_hist *h, double v)
{
    return h->count == 0 ? json_null() : json_real(round(v * 1000.0) / 1000.0);
}

json_t *
an_hist_json(const struct an_hist *h)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o}", "count", (json_int_t)h->count, "avg",
                     num_or_null(h, h->count ? (double)h->sum_ms / (double)h->count : 0), "p50",
                     num_or_null(h, an_hist_quantile(h, 0.50)), "p90",
                     num_or_null(h, an_hist_quantile(h, 0.90)), "p99",
                     num_or_null(h, an_hist_quantile(h, 0.99)));
}
