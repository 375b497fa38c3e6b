/*
 * metrics.c: the metrics registry and its Prometheus text rendering.
 *
 * Layout: a registry holds families (one per metric name, kept in registration order, which
 * is the render order) and each family holds its series in creation order. A small chained
 * hash table keyed by (name, labels) finds a series on lookup. Series are never freed before
 * the registry, which is what makes the pointers handed out stable.
 *
 * Threading: lookups and rendering take the registry mutex; updates touch only C11 atomics
 * (relaxed ordering: each value is independent). Doubles (gauges, histogram sums) are stored
 * as their IEEE-754 bit patterns in atomic uint64_t and updated with compare-and-swap.
 * A histogram renders _count as its +Inf bucket so the two agree even while being updated.
 */
#include "wa/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/list.h"

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

struct series;

struct family {
    char *name;
    char *help;
    enum kind kind;
    double *bounds; /* histograms only; owned */
    size_t nbounds;
    struct wa_list series; /* struct series, creation order */
    struct wa_list link;   /* on the registry's families, registration order */
};

struct series {
    struct family *fam;
    char *labels; /* owned; "" when there are none */
    uint64_t hash;
    struct wa_list link;  /* on the family's series */
    struct series *hnext; /* next in the hash chain */
};

/* Each series type starts with struct series so the registry can handle them alike. */
struct wa_counter {
    struct series s;
    _Atomic uint64_t value;
};

struct wa_gauge {
    struct series s;
    _Atomic uint64_t bits;
};

struct wa_histogram {
    struct series s;
    const double *bounds; /* the family's */
    size_t nbounds;
    _Atomic uint64_t count;
    _Atomic uint64_t sum_bits;
    _Atomic uint64_t buckets[]; /* nbounds + 1, not cumulative; the last is +Inf */
};

struct wa_metrics {
    pthread_mutex_t lock;
    struct wa_list families; /* struct family, registration order */
    struct series **table;
    size_t nbuckets; /* a power of two */
    size_t nseries;
};

/* Latency buckets: at most 1.5x apart from 1 to 250 ms, where the pipeline's hops live, so a
 * quantile read from them is within that factor there; coarse above. */
static const double default_bounds[] = {0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.006,
                                        0.008,  0.01,  0.0125, 0.015, 0.02,  0.025, 0.03,  0.04,
                                        0.05,   0.06,  0.08,   0.1,   0.125, 0.15,  0.2,   0.25,
                                        0.5,    1,     2.5,    5,     10};

static uint64_t
to_bits(double v)
{
    uint64_t b;

    memcpy(&b, &v, sizeof(b));
    return b;
}

static double
from_bits(uint64_t b)
{
    double v;

    memcpy(&v, &b, sizeof(v));
    return v;
}

static void
atomic_add_double(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(bits, &old, to_bits(from_bits(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
        /* old was reloaded by the failed exchange; retry with it */
    }
}

static uint64_t
hash_key(const char *name, const char *labels)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    const unsigned char *p;

    for (p = (const unsigned char *)name; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211ULL;
    }
    h = (h ^ 0xFF) * 1099511628211ULL; /* separator that cannot occur in a name */
    for (p = (const unsigned char *)labels; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211ULL;
    }
    return h;
}

static bool
valid_name(const char *name)
{
    const char *p;

    if (name == NULL || name[0] == '\0' || (name[0] >= '0' && name[0] <= '9')) {
        return false;
    }
    for (p = name; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':')) {
            return false;
        }
    }
    return true;
}

static bool
valid_bounds(const double *bounds, size_t n)
{
    size_t i;

    if (n == 0) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
            return false;
        }
    }
    return true;
}

enum wa_err
wa_metrics_new(struct wa_metrics **out)
{
    struct wa_metrics *m = calloc(1, sizeof(*m));

    *out = NULL;
    if (m == NULL) {
        return WA_ENOMEM;
    }
    wa_list_init(&m->families);
    m->nbuckets = 64;
    m->table = calloc(m->nbuckets, sizeof(*m->table));
    if (m->table == NULL) {
        free(m);
        return WA_ENOMEM;
    }
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return WA_OK;
}

void
wa_metrics_free(struct wa_metrics *m)
{
    struct wa_list *fi, *ftmp, *si, *stmp;

    if (m == NULL) {
        return;
    }
    WA_LIST_FOREACH_SAFE(fi, ftmp, &m->families)
    {
        struct family *f = WA_LIST_ENTRY(fi, struct family, link);

        WA_LIST_FOREACH_SAFE(si, stmp, &f->series)
        {
            struct series *s = WA_LIST_ENTRY(si, struct series, link);

            free(s->labels);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
    }
    free(m->table);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Doubles the hash table when chains grow long; keeps the old one if memory is short. */
static void
maybe_grow(struct wa_metrics *m)
{
    size_t n = m->nbuckets * 2, i;
    struct series **t;

    if (m->nseries <= 2 * m->nbuckets || (t = calloc(n, sizeof(*t))) == NULL) {
        return;
    }
    for (i = 0; i < m->nbuckets; i++) {
        struct series *s = m->table[i], *next;
        for (; s != NULL; s = next) {
            next = s->hnext;
            s->hnext = t[s->hash & (n - 1)];
            t[s->hash & (n - 1)] = s;
        }
    }
    free(m->table);
    m->table = t;
    m->nbuckets = n;
}

static struct family *
family_find(struct wa_metrics *m, const char *name)
{
    for (struct wa_list *it = m->families.next; it != &m->families; it = it->next) {
        struct family *f = WA_LIST_ENTRY(it, struct family, link);

        if (strcmp(f->name, name) == 0) {
            return f;
        }
    }
    return NULL;
}

static bool
family_accepts(const struct family *f, enum kind kind, const double *bounds, size_t nbounds)
{
    size_t i;

    if (f->kind != kind) {
        return false;
    }
    if (kind != KIND_HISTOGRAM) {
        return true;
    }
    if (f->nbounds != nbounds) {
        return false;
    }
    for (i = 0; i < nbounds; i++) {
        if (f->bounds[i] != bounds[i]) {
            return false;
        }
    }
    return true;
}

static struct family *
family_new(struct wa_metrics *m, enum kind kind, const char *name, const char *help,
           const double *bounds, size_t nbounds)
{
    struct family *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return NULL;
    }
    f->kind = kind;
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : "");
    if (kind == KIND_HISTOGRAM) {
        f->bounds = malloc(nbounds * sizeof(*bounds));
        if (f->bounds != NULL) {
            memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
        }
        f->nbounds = nbounds;
    }
    if (f->name == NULL || f->help == NULL || (kind == KIND_HISTOGRAM && f->bounds == NULL)) {
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
        return NULL;
    }
    wa_list_init(&f->series);
    wa_list_push_back(&m->families, &f->link);
    return f;
}

static struct series *
series_new(struct family *f)
{
    struct wa_counter *c;
    struct wa_gauge *g;
    struct wa_histogram *h;
    size_t i;

    switch (f->kind) {
    case KIND_COUNTER:
        if ((c = calloc(1, sizeof(*c))) == NULL) {
            return NULL;
        }
        atomic_init(&c->value, 0);
        return &c->s;
    case KIND_GAUGE:
        if ((g = calloc(1, sizeof(*g))) == NULL) {
            return NULL;
        }
        atomic_init(&g->bits, to_bits(0.0));
        return &g->s;
    case KIND_HISTOGRAM:
        h = calloc(1, sizeof(*h) + (f->nbounds + 1) * sizeof(h->buckets[0]));
        if (h == NULL) {
            return NULL;
        }
        h->bounds = f->bounds;
        h->nbounds = f->nbounds;
        atomic_init(&h->count, 0);
        atomic_init(&h->sum_bits, to_bits(0.0));
        for (i = 0; i <= f->nbounds; i++) {
            atomic_init(&h->buckets[i], 0);
        }
        return &h->s;
    }
    return NULL;
}

/* Finds or creates the series (name, labels) of the given kind. NULL on any mismatch. */
static struct series *
lookup(struct wa_metrics *m, enum kind kind, const char *name, const char *help, const char *labels,
       const double *bounds, size_t nbounds)
{
    struct series *s = NULL;
    struct family *f;
    uint64_t h;

    if (m == NULL || !valid_name(name)) {
        return NULL;
    }
    if (labels == NULL) {
        labels = "";
    }
    if (strchr(labels, '\n') != NULL) {
        return NULL; /* would break the line-oriented exposition format */
    }
    h = hash_key(name, labels);
    pthread_mutex_lock(&m->lock);
    for (s = m->table[h & (m->nbuckets - 1)]; s != NULL; s = s->hnext) {
        if (s->hash == h && strcmp(s->fam->name, name) == 0 && strcmp(s->labels, labels) == 0) {
            break;
        }
    }
    if (s != NULL) {
        if (!family_accepts(s->fam, kind, bounds, nbounds)) {
            s = NULL;
        }
        goto out;
    }
    f = family_find(m, name);
    if (f != NULL && !family_accepts(f, kind, bounds, nbounds)) {
        goto out;
    }
    if (f == NULL && (f = family_new(m, kind, name, help, bounds, nbounds)) == NULL) {
        goto out;
    }
    if ((s = series_new(f)) == NULL) {
        goto out; /* the family may stay empty; it renders nothing */
    }
    if ((s->labels = strdup(labels)) == NULL) {
        free(s);
        s = NULL;
        goto out;
    }
    s->fam = f;
    s->hash = h;
    wa_list_push_back(&f->series, &s->link);
    s->hnext = m->table[h & (m->nbuckets - 1)];
    m->table[h & (m->nbuckets - 1)] = s;
    m->nseries++;
    maybe_grow(m);
out:
    pthread_mutex_unlock(&m->lock);
    return s;
}

struct wa_counter *
wa_metrics_counter(struct wa_metrics *m, const char *name, const char *help, const char *labels)
{
    struct series *s = lookup(m, KIND_COUNTER, name, help, labels, NULL, 0);

    return s != NULL ? (struct wa_counter *)(void *)s : NULL;
}

struct wa_gauge *
wa_metrics_gauge(struct wa_metrics *m, const char *name, const char *help, const char *labels)
{
    struct series *s = lookup(m, KIND_GAUGE, name, help, labels, NULL, 0);

    return s != NULL ? (struct wa_gauge *)(void *)s : NULL;
}

struct wa_histogram *
wa_metrics_histogram(struct wa_metrics *m, const char *name, const char *help, const char *labels,
                     const double *bounds, size_t nbounds)
{
    struct series *s;

    if (bounds == NULL) {
        bounds = default_bounds;
        nbounds = WA_ARRAY_LEN(default_bounds);
    }
    if (!valid_bounds(bounds, nbounds)) {
        return NULL;
    }
    s = lookup(m, KIND_HISTOGRAM, name, help, labels, bounds, nbounds);
    return s != NULL ? (struct wa_histogram *)(void *)s : NULL;
}

void
wa_counter_add(struct wa_counter *c, uint64_t n)
{
    if (c != NULL) {
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
    }
}

void
wa_counter_inc(struct wa_counter *c)
{
    wa_counter_add(c, 1);
}

uint64_t
wa_counter_value(const struct wa_counter *c)
{
    /* atomic_load takes a non-const pointer in C11; reading does not modify the counter */
    return c != NULL ? atomic_load_explicit((_Atomic uint64_t *)&c->value, memory_order_relaxed)
                     : 0;
}

void
wa_gauge_set(struct wa_gauge *g, double v)
{
    if (g != NULL) {
        atomic_store_explicit(&g->bits, to_bits(v), memory_order_relaxed);
    }
}

void
wa_gauge_add(struct wa_gauge *g, double delta)
{
    if (g != NULL) {
        atomic_add_double(&g->bits, delta);
    }
}

double
wa_gauge_value(const struct wa_gauge *g)
{
    return g != NULL
               ? from_bits(atomic_load_explicit((_Atomic uint64_t *)&g->bits, memory_order_relaxed))
               : 0.0;
}

void
wa_histogram_observe(struct wa_histogram *h, double v)
{
    size_t i = 0;

    if (h == NULL) {
        return;
    }
    /* first bucket whose upper bound holds v; NaN and values past the last go to +Inf */
    while (i < h->nbounds && !(v <= h->bounds[i])) {
        i++;
    }
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

uint64_t
wa_histogram_count(const struct wa_histogram *h)
{
    return h != NULL ? atomic_load_explicit((_Atomic uint64_t *)&h->count, memory_order_relaxed)
                     : 0;
}

/* Formats v the way Prometheus reads it: shortest round-trip decimal, +Inf, -Inf, NaN. */
static void
format_double(double v, char *out, size_t size)
{
    int prec;

    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (prec = 15; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, v);
        if (strtod(out, NULL) == v) {
            return;
        }
    }
}

/* HELP text escapes backslash and newline (text format 0.0.4). */
static enum wa_err
append_help(struct wa_buf *b, const char *help)
{
    enum wa_err err = WA_OK;
    const char *p;

    for (p = help; *p != '\0' && err == WA_OK; p++) {
        if (*p == '\\') {
            err = wa_buf_append(b, "\\\\", 2);
        } else if (*p == '\n') {
            err = wa_buf_append(b, "\\n", 2);
        } else {
            err = wa_buf_append(b, p, 1);
        }
    }
    return err;
}

static enum wa_err
render_histogram(struct wa_buf *b, const struct family *f, struct wa_histogram *h)
{
    const char *sep = h->s.labels[0] != '\0' ? "," : "";
    char num[40];
    uint64_t cum = 0;
    enum wa_err err = WA_OK;
    size_t i;

    for (i = 0; i <= h->nbounds && err == WA_OK; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->nbounds) {
            format_double(h->bounds[i], num, sizeof(num));
        } else {
            snprintf(num, sizeof(num), "+Inf");
        }
        err = wa_buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", f->name, h->s.labels, sep,
                            num, cum);
    }
    if (err != WA_OK) {
        return err;
    }
    format_double(from_bits(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)), num,
                  sizeof(num));
    if (h->s.labels[0] != '\0') {
        return wa_buf_printf(b, "%s_sum{%s} %s\n%s_count{%s} %" PRIu64 "\n", f->name, h->s.labels,
                             num, f->name, h->s.labels, cum);
    }
    return wa_buf_printf(b, "%s_sum %s\n%s_count %" PRIu64 "\n", f->name, num, f->name, cum);
}

static enum wa_err
render_series(struct wa_buf *b, const struct family *f, struct series *s)
{
    char num[40];
    enum wa_err err;

    if (f->kind == KIND_HISTOGRAM) {
        return render_histogram(b, f, (struct wa_histogram *)(void *)s);
    }
    if (f->kind == KIND_COUNTER) {
        snprintf(num, sizeof(num), "%" PRIu64,
                 wa_counter_value((const struct wa_counter *)(void *)s));
    } else {
        format_double(wa_gauge_value((const struct wa_gauge *)(void *)s), num, sizeof(num));
    }
    if (s->labels[0] != '\0') {
        err = wa_buf_printf(b, "%s{%s} %s\n", f->name, s->labels, num);
    } else {
        err = wa_buf_printf(b, "%s %s\n", f->name, num);
    }
    return err;
}

enum wa_err
wa_metrics_render(struct wa_metrics *m, struct wa_buf *out)
{
    size_t mark = out->len;
    enum wa_err err = WA_OK;

    pthread_mutex_lock(&m->lock);
    for (struct wa_list *fi = m->families.next; fi != &m->families && err == WA_OK; fi = fi->next) {
        const struct family *f = WA_LIST_ENTRY(fi, struct family, link);

        if (wa_list_empty(&f->series)) {
            continue;
        }
        if (f->help[0] != '\0') {
            if ((err = wa_buf_printf(out, "# HELP %s ", f->name)) != WA_OK ||
                (err = append_help(out, f->help)) != WA_OK ||
                (err = wa_buf_append(out, "\n", 1)) != WA_OK) {
                break;
            }
        }
        err = wa_buf_printf(out, "# TYPE %s %s\n", f->name, kind_names[f->kind]);
        for (struct wa_list *si = f->series.next; si != &f->series && err == WA_OK; si = si->next) {
            err = render_series(out, f, WA_LIST_ENTRY(si, struct series, link));
        }
    }
    pthread_mutex_unlock(&m->lock);
    return wa_buf_rollback(out, mark, err); /* all or nothing */
}
