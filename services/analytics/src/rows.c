/*
 * rows.c: the stored per-bucket aggregates ("rows", collection "buckets"; pure).
 *
 * A row holds the figures of the message documents whose "at" lies in one half-hour bucket
 * (UTC) and that share the filter dimensions (phone number, template, category, country):
 *   {_id: "[b,pnid,template,category,country]", b, phone_number_id, template, category,
 *    country, m (messages), n: {<state>: reached}, attempted, late_failures, unpriced,
 *    cost: {<category>: micros}, fail: {<code>|"none": count},
 *    h: {s (accepted->sent), d (sent->delivered), r (delivered->read), a (accepted->delivered)}
 *       each {c: count, s: sum ms, b: {<bin>: count}},
 *    j: the last journal applied (consume.c)}
 * Every figure is a sum over the row's messages, so a row is a pure function of the message
 * documents (an_rows_add_message of each), a change of one document moves the rows by
 * contribution(new) - contribution(old), and a day is the merge of its rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

#define NHIST  5
#define DAY_MS 86400000LL

static const char *const hist_keys[NHIST] = {"s", "d", "r", "a", "f"};

static struct an_hist *
hist_of(struct an_totals *t, size_t i)
{
    return i < 3 ? &t->lat[i] : i == 3 ? &t->delivery : &t->first_response;
}

static const struct an_hist *
hist_of_const(const struct an_totals *t, size_t i)
{
    return hist_of((struct an_totals *)t, i);
}

json_t *
an_row_dims(const json_t *doc)
{
    const json_t *at = json_object_get(doc, "at");
    const char *cat = json_string_value(json_object_get(doc, "category"));

    if (!json_is_integer(at)) {
        return NULL;
    }
    if (cat == NULL) { /* the category Meta priced it in (an_query_match does the same) */
        cat = json_string_value(json_object_get(json_object_get(doc, "pricing"), "category"));
    }
    return json_pack("{s:I, s:s?, s:s?, s:s?, s:s?}", "b",
                     (json_int_t)an_bucket_half_hour(json_integer_value(at)), "phone_number_id",
                     json_string_value(json_object_get(doc, "phone_number_id")), "template",
                     json_string_value(json_object_get(doc, "template")), "category", cat,
                     "country", json_string_value(json_object_get(doc, "country")));
}

/* [b, phone_number_id, template, category, country] (null for an absent one), then "inbound"
 * for an inbound row. New reference. */
static json_t *
row_key(const json_t *dims)
{
    json_t *key =
        json_pack("[O, O?, O?, O?, O?]", json_object_get(dims, "b"),
                  json_object_get(dims, "phone_number_id"), json_object_get(dims, "template"),
                  json_object_get(dims, "category"), json_object_get(dims, "country"));

    if (key != NULL && json_object_get(dims, "kind") != NULL &&
        json_array_append(key, json_object_get(dims, "kind")) != 0) {
        json_decref(key);
        return NULL;
    }
    return key;
}

/* The dimensions of a row key (row_key's array). New reference. */
static json_t *
key_dims(const json_t *key)
{
    static const char *const names[] = {"b",        "phone_number_id", "template",
                                        "category", "country",         "kind"};
    json_t *dims = json_object();

    for (size_t i = 0; dims != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *v = json_array_get(key, i);

        if (v != NULL && !json_is_null(v) && json_object_set(dims, names[i], v) != 0) {
            json_decref(dims);
            return NULL;
        }
    }
    return dims;
}

char *
an_row_id(const json_t *dims)
{
    json_t *key = row_key(dims);
    char *id = key != NULL ? json_dumps(key, JSON_COMPACT) : NULL;

    json_decref(key);
    return id;
}

void
an_rows_init(struct an_rows *r)
{
    memset(r, 0, sizeof(*r));
    r->index = json_object();
}

void
an_rows_clear(struct an_rows *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].id);
        json_decref(r->v[i].dims);
        an_totals_clear(&r->v[i].t);
    }
    free(r->v);
    json_decref(r->index);
    memset(r, 0, sizeof(*r));
}

/* The row of dims (borrowed), added when new; NULL when out of memory. */
static struct an_row *
row_get(struct an_rows *r, const json_t *dims)
{
    char *id = an_row_id(dims);
    const json_t *at;
    struct an_row *row;

    if (id == NULL || r->index == NULL) {
        free(id);
        return NULL;
    }
    if ((at = json_object_get(r->index, id)) != NULL) {
        free(id);
        return &r->v[json_integer_value(at)];
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct an_row *v = realloc(r->v, cap * sizeof(*v));

        if (v == NULL) {
            free(id);
            return NULL;
        }
        r->v = v;
        r->cap = cap;
    }
    if (json_object_set_new(r->index, id, json_integer((json_int_t)r->n)) != 0) {
        free(id);
        return NULL;
    }
    row = &r->v[r->n++];
    row->id = id;
    row->dims = json_incref((json_t *)dims);
    an_totals_init(&row->t);
    return row;
}

enum wa_err
an_rows_add_message(struct an_rows *r, const json_t *doc, const struct an_ratecard *rc, int sign)
{
    json_t *dims;
    struct an_row *row;
    struct an_totals one;

    if (doc == NULL || (dims = an_row_dims(doc)) == NULL) {
        return WA_OK; /* no document, or none with a time: in no row */
    }
    row = row_get(r, dims);
    json_decref(dims);
    if (row == NULL) {
        return WA_ENOMEM;
    }
    if (sign >= 0) {
        an_totals_add_message(&row->t, doc, rc);
        return WA_OK;
    }
    an_totals_init(&one);
    an_totals_add_message(&one, doc, rc);
    an_totals_subtract(&row->t, &one);
    an_totals_clear(&one);
    return WA_OK;
}

static int
inc(json_t *o, const char *key, int64_t v)
{
    return v != 0 ? json_object_set_new(o, key, json_integer((json_int_t)v)) : 0;
}

json_t *
an_totals_inc(const struct an_totals *t)
{
    json_t *o = json_object(), *v;
    char key[64];
    const char *code;
    int bad = 0;

    if (o == NULL) {
        return NULL;
    }
    bad |= inc(o, "m", (int64_t)t->messages);
    for (size_t s = 0; s < AN_NSTATES; s++) {
        snprintf(key, sizeof(key), "n.%s", an_state_name((enum an_state)s));
        bad |= inc(o, key, (int64_t)t->n[s]);
    }
    bad |= inc(o, "attempted", (int64_t)t->attempted);
    bad |= inc(o, "late_failures", (int64_t)t->late_failures);
    bad |= inc(o, "unpriced", (int64_t)t->unpriced);
    bad |= inc(o, "bi", (int64_t)t->business_initiated);
    bad |= inc(o, "replied", (int64_t)t->replied);
    bad |= inc(o, "inbound", (int64_t)t->inbound);
    for (size_t c = 0; c < AN_NCATEGORIES; c++) {
        snprintf(key, sizeof(key), "cost.%s", an_category_name((enum an_category)c));
        bad |= inc(o, key, t->cost_micros[c]);
    }
    json_object_foreach(t->failures, code, v)
    {
        snprintf(key, sizeof(key), "fail.%.40s", code);
        bad |= inc(o, key, json_integer_value(v));
    }
    for (size_t i = 0; i < NHIST; i++) {
        const struct an_hist *h = hist_of_const(t, i);

        snprintf(key, sizeof(key), "h.%s.c", hist_keys[i]);
        bad |= inc(o, key, (int64_t)h->count);
        snprintf(key, sizeof(key), "h.%s.s", hist_keys[i]);
        bad |= inc(o, key, h->sum_ms);
        for (size_t b = 0; b < AN_HIST_BUCKETS; b++) {
            snprintf(key, sizeof(key), "h.%s.b.%zu", hist_keys[i], b);
            bad |= inc(o, key, (int64_t)h->n[b]);
        }
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int64_t
int_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) ? json_integer_value(v)
           : json_is_real(v)  ? (int64_t)json_real_value(v)
                              : 0;
}

void
an_totals_add_row(struct an_totals *t, const json_t *row)
{
    const json_t *n = json_object_get(row, "n"), *cost = json_object_get(row, "cost"), *v;
    const char *key;
    struct an_totals one;

    an_totals_init(&one);
    one.messages = (uint64_t)int_of(row, "m");
    for (size_t s = 0; s < AN_NSTATES; s++) {
        one.n[s] = (uint64_t)int_of(n, an_state_name((enum an_state)s));
    }
    one.attempted = (uint64_t)int_of(row, "attempted");
    one.late_failures = (uint64_t)int_of(row, "late_failures");
    one.unpriced = (uint64_t)int_of(row, "unpriced");
    one.business_initiated = (uint64_t)int_of(row, "bi");
    one.replied = (uint64_t)int_of(row, "replied");
    one.inbound = (uint64_t)int_of(row, "inbound");
    for (size_t c = 0; c < AN_NCATEGORIES; c++) {
        one.cost_micros[c] = int_of(cost, an_category_name((enum an_category)c));
    }
    json_object_foreach((json_t *)json_object_get(row, "fail"), key, v)
    {
        if (json_integer_value(v) != 0) {
            (void)json_object_set_new(one.failures, key, json_integer(json_integer_value(v)));
        }
    }
    for (size_t i = 0; i < NHIST; i++) {
        const json_t *h = json_object_get(json_object_get(row, "h"), hist_keys[i]);
        struct an_hist *into = hist_of(&one, i);

        into->count = (uint64_t)int_of(h, "c");
        into->sum_ms = int_of(h, "s");
        json_object_foreach((json_t *)json_object_get(h, "b"), key, v)
        {
            char *end;
            long b = strtol(key, &end, 10);

            if (*end == '\0' && b >= 0 && b < AN_HIST_BUCKETS && json_is_integer(v)) {
                into->n[b] = (uint64_t)json_integer_value(v);
            }
        }
    }
    an_totals_merge(t, &one);
    an_totals_clear(&one);
}

/* ---- engagement: replies within 24 h, inbound messages, first responses ---- */

json_t *
an_engage_out(const json_t *doc)
{
    const json_t *t = json_object_get(doc, "t");
    const char *type = json_string_value(json_object_get(doc, "type"));
    const char *contact = json_string_value(json_object_get(doc, "contact"));
    int64_t at = int_of(doc, "at"), sent = int_of(t, "sent"), since = sent;
    json_t *dims, *key;

    if (contact == NULL || at <= 0 || (dims = an_row_dims(doc)) == NULL) {
        return NULL;
    }
    if (since == 0) {
        since = int_of(t, "delivered") ? int_of(t, "delivered") : int_of(t, "read");
    }
    key = row_key(dims);
    json_decref(dims);
    return key != NULL ? json_pack("{s:O, s:I, s:I, s:b, s:o}", "id", json_object_get(doc, "_id"),
                                   "t", (json_int_t)(sent ? sent : at), "s", (json_int_t)since,
                                   "tp", type != NULL && strcmp(type, "template") == 0, "r", key)
                       : NULL;
}

json_t *
an_engage_in(const json_t *doc)
{
    const char *contact = json_string_value(json_object_get(doc, "contact"));
    int64_t at = int_of(doc, "at");
    const json_t *pnid = json_object_get(doc, "phone_number_id");

    if (contact == NULL || at <= 0) {
        return NULL;
    }
    return json_pack("{s:O, s:I, s:O?}", "id", json_object_get(doc, "_id"), "at", (json_int_t)at,
                     "phone_number_id", json_is_string(pnid) ? pnid : NULL);
}

enum wa_err
an_engage_set(json_t *doc, const char *list, const json_t *id, json_t *entry)
{
    json_t *a = json_object_get(doc, list), *e;
    size_t i;

    if (!json_is_array(a)) {
        if (json_object_set_new(doc, list, a = json_array()) != 0) {
            json_decref(entry);
            return WA_ENOMEM;
        }
    }
    json_array_foreach(a, i, e)
    {
        if (json_equal(json_object_get(e, "id"), id)) {
            if (entry == NULL) {
                return json_array_remove(a, i) == 0 ? WA_OK : WA_ENOMEM;
            }
            return json_array_set_new(a, i, entry) == 0 ? WA_OK : WA_ENOMEM;
        }
    }
    if (entry == NULL) {
        return WA_OK;
    }
    return json_array_append_new(a, entry) == 0 ? WA_OK : WA_ENOMEM;
}

struct point {
    int64_t at;
    const json_t *e;
};

static int
point_cmp(const void *a, const void *b)
{
    const struct point *x = a, *y = b;

    return (x->at > y->at) - (x->at < y->at);
}

/* The points of a list sorted by time (key "t" or "at"). */
static struct point *
points_of(const json_t *list, const char *key, size_t *n)
{
    struct point *p = calloc(json_array_size(list) + 1, sizeof(*p));
    const json_t *e;
    size_t i;

    *n = 0;
    if (p == NULL) {
        return NULL;
    }
    json_array_foreach(list, i, e)
    {
        p[*n].at = int_of(e, key);
        p[(*n)++].e = e;
    }
    qsort(p, *n, sizeof(*p), point_cmp);
    return p;
}

/* Index of the first point with at > t, or n. */
static size_t
after(const struct point *p, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (p[mid].at <= t) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The row of a row key (an_engage_out's "r"), or of an inbound row at bucket b. */
static struct an_row *
row_of_key(struct an_rows *r, const json_t *key)
{
    json_t *dims = key_dims(key);
    struct an_row *row = dims != NULL ? row_get(r, dims) : NULL;

    json_decref(dims);
    return row;
}

static void
add_sign(uint64_t *v, int sign)
{
    *v += sign > 0 ? 1 : (uint64_t)-1;
}

static void
hist_sign(struct an_hist *h, int64_t ms, int sign)
{
    struct an_hist one;

    if (sign > 0) {
        an_hist_add(h, ms);
        return;
    }
    memset(&one, 0, sizeof(one));
    an_hist_add(&one, ms);
    for (size_t i = 0; i < AN_HIST_BUCKETS; i++) {
        h->n[i] -= one.n[i];
    }
    h->count -= one.count;
    h->sum_ms -= one.sum_ms;
}

enum wa_err
an_rows_add_contact(struct an_rows *r, const json_t *doc, int sign)
{
    size_t nout, nin, i;
    struct point *out = points_of(json_object_get(doc, "o"), "t", &nout);
    struct point *in = points_of(json_object_get(doc, "i"), "at", &nin);
    enum wa_err err = WA_ENOMEM;

    if (out == NULL || in == NULL) {
        goto out;
    }
    /* a template that reached sent is replied when the contact wrote within 24 h after */
    for (i = 0; i < nout; i++) {
        const json_t *e = out[i].e;
        int64_t since = int_of(e, "s");
        struct an_row *row;
        size_t j;

        if (!json_is_true(json_object_get(e, "tp")) || since == 0) {
            continue;
        }
        if ((row = row_of_key(r, json_object_get(e, "r"))) == NULL) {
            goto out;
        }
        add_sign(&row->t.business_initiated, sign);
        j = after(in, nin, since);
        if (j < nin && in[j].at <= since + DAY_MS) {
            add_sign(&row->t.replied, sign);
        }
    }
    /* every inbound message in its half hour; its first response (the first business message
     * after it, when no earlier inbound waits for the same one) in the row of that message at
     * the inbound's half hour */
    for (i = 0; i < nin; i++) {
        json_t *key =
            json_pack("[I, n, n, n, n, s]", (json_int_t)an_bucket_half_hour(in[i].at), "inbound");
        struct an_row *row = key != NULL ? row_of_key(r, key) : NULL;
        size_t j = after(out, nout, in[i].at);

        json_decref(key);
        if (row == NULL) {
            goto out;
        }
        add_sign(&row->t.inbound, sign);
        if (j < nout && (i == 0 || after(out, nout, in[i - 1].at) != j)) {
            json_t *rk = json_deep_copy(json_object_get(out[j].e, "r"));

            if (rk == NULL ||
                json_array_set_new(rk, 0, json_integer(an_bucket_half_hour(in[i].at))) != 0 ||
                (row = row_of_key(r, rk)) == NULL) {
                json_decref(rk);
                goto out;
            }
            json_decref(rk);
            hist_sign(&row->t.first_response, out[j].at - in[i].at, sign);
        }
    }
    err = WA_OK;
out:
    free(out);
    free(in);
    return err;
}
