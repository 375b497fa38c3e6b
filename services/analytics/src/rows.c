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

static const char *const hist_keys[4] = {"s", "d", "r", "a"};

static struct an_hist *
hist_of(struct an_totals *t, size_t i)
{
    return i < 3 ? &t->lat[i] : &t->delivery;
}

static const struct an_hist *
hist_of_const(const struct an_totals *t, size_t i)
{
    return i < 3 ? &t->lat[i] : &t->delivery;
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

char *
an_row_id(const json_t *dims)
{
    json_t *key =
        json_pack("[O, O?, O?, O?, O?]", json_object_get(dims, "b"),
                  json_object_get(dims, "phone_number_id"), json_object_get(dims, "template"),
                  json_object_get(dims, "category"), json_object_get(dims, "country"));
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
    for (size_t c = 0; c < AN_NCATEGORIES; c++) {
        snprintf(key, sizeof(key), "cost.%s", an_category_name((enum an_category)c));
        bad |= inc(o, key, t->cost_micros[c]);
    }
    json_object_foreach(t->failures, code, v)
    {
        snprintf(key, sizeof(key), "fail.%.40s", code);
        bad |= inc(o, key, json_integer_value(v));
    }
    for (size_t i = 0; i < 4; i++) {
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
    for (size_t c = 0; c < AN_NCATEGORIES; c++) {
        one.cost_micros[c] = int_of(cost, an_category_name((enum an_category)c));
    }
    json_object_foreach((json_t *)json_object_get(row, "fail"), key, v)
    {
        if (json_integer_value(v) != 0) {
            (void)json_object_set_new(one.failures, key, json_integer(json_integer_value(v)));
        }
    }
    for (size_t i = 0; i < 4; i++) {
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
