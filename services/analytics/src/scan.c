/*
 * scan.c: loads the stored rows of the half hours a period overlaps (rows.c; one pass of a
 * cursor, filtered by the query's dimensions) and turns them into the summary and the series
 * (report.c).
 *
 * Threading: loop thread; MongoDB calls run on the worker pool (libs/mongo).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics.h"
#include "wa/log.h"
#include "wa/mongo.h"

static void
finish(struct an_scan *s, enum wa_err err)
{
    s->done(s, err, s->arg);
}

json_t *
an_bson_json(const bson_t *doc)
{
    char *text = bson_as_relaxed_extended_json(doc, NULL);
    json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;

    bson_free(text);
    return v;
}

static void
on_rows(void *arg, enum wa_err err, const bson_t *docs, size_t n, bool more)
{
    struct an_scan *s = arg;

    if (s->an == NULL) {
        finish(s, WA_ECLOSED);
        return;
    }
    if (err != WA_OK) {
        finish(s, err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *row = an_bson_json(&docs[i]);

        if (row == NULL) {
            finish(s, WA_ENOMEM);
            return;
        }
        /* inbound rows count whatever the filters, as inbound messages have no template */
        if (json_object_get(row, "kind") != NULL || an_query_match(&s->q, row)) {
            (void)json_array_append(s->rows, row);
        }
        json_decref(row);
    }
    if (json_array_size(s->rows) > (size_t)s->an->cfg->max_scan) {
        finish(s, WA_ETOOBIG);
        return;
    }
    if (more) {
        if ((err = wa_mongo_cursor_next(s->cursor, on_rows, s)) != WA_OK) {
            finish(s, err);
        }
        return;
    }
    finish(s, WA_OK);
}

/* The rows whose half hour overlaps [from, to), in one pass. */
static enum wa_err
rows_start(struct an_scan *s)
{
    bson_t *filter = BCON_NEW("b", "{", "$gte", BCON_INT64(an_bucket_half_hour(s->q.from_ms)),
                              "$lt", BCON_INT64(s->q.to_ms), "}");
    /* small pages: each one a short request even where the server scans (FerretDB) */
    struct wa_mongo_find_opts opts = {.page_size = 500};
    enum wa_err err = filter != NULL ? wa_mongo_cursor_find(s->an->mongo, AN_COLL_BUCKETS, filter,
                                                            &opts, &s->cursor)
                                     : WA_ENOMEM;

    bson_destroy(filter);
    if (err == WA_OK && (err = wa_mongo_cursor_next(s->cursor, on_rows, s)) != WA_OK) {
        wa_mongo_cursor_free(s->cursor);
        s->cursor = NULL;
    }
    return err;
}

enum wa_err
an_scan_start(struct an *an, struct an_scan *s, an_scan_fn done, void *arg)
{
    enum wa_err err;

    s->an = an;
    s->done = done;
    s->arg = arg;
    s->cursor = NULL;
    s->rows = json_array();
    if (s->rows == NULL) {
        an_scan_cleanup(s);
        return WA_ENOMEM;
    }
    if ((err = rows_start(s)) != WA_OK) {
        an_scan_cleanup(s);
    }
    return err;
}

void
an_scan_cleanup(struct an_scan *s)
{
    wa_mongo_cursor_free(s->cursor);
    s->cursor = NULL;
    json_decref(s->rows);
    s->rows = NULL;
}

static json_t *
period_json(const struct an_scan *s)
{
    char from[40], to[40];
    time_t f = (time_t)(s->q.from_ms / 1000), t = (time_t)(s->q.to_ms / 1000);
    struct tm a, b;

    gmtime_r(&f, &a);
    gmtime_r(&t, &b);
    strftime(from, sizeof(from), "%Y-%m-%dT%H:%M:%SZ", &a);
    strftime(to, sizeof(to), "%Y-%m-%dT%H:%M:%SZ", &b);
    return json_pack("{s:s, s:s, s:s, s:I, s:I}", "from", from, "to", to, "tz", s->tz->name,
                     "from_ms", (json_int_t)s->q.from_ms, "to_ms", (json_int_t)s->q.to_ms);
}

static int
by_sent_desc(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "sent"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "sent"));
    int c = (x < y) - (x > y);

    return c != 0 ? c
                  : strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
                           json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

/* The templates of the period with the most messages sent: [{name, sent, delivered, read,
 * failed}], at most TOP_TEMPLATES, counted like the totals (reached states), from the rows. */
#define TOP_TEMPLATES 10
static json_t *
top_templates(const json_t *rows)
{
    json_t *by = json_object(), *out = json_array(), *v;
    json_t **list;
    const json_t *r;
    const char *name;
    size_t i, n = 0;
    static const char *const states[] = {"sent", "delivered", "read", "failed"};

    if (by == NULL || out == NULL) {
        json_decref(by);
        json_decref(out);
        return NULL;
    }
    json_array_foreach(rows, i, r)
    {
        const char *t = json_string_value(json_object_get(r, "template"));
        json_t *row;

        if (t == NULL || json_integer_value(json_object_get(r, "m")) == 0) {
            continue;
        }
        if ((row = json_object_get(by, t)) == NULL) {
            row = json_pack("{s:s, s:I, s:I, s:I, s:I}", "name", t, "sent", (json_int_t)0,
                            "delivered", (json_int_t)0, "read", (json_int_t)0, "failed",
                            (json_int_t)0);
            if (row == NULL || json_object_set_new(by, t, row) != 0) {
                continue;
            }
        }
        for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
            json_int_t add =
                json_integer_value(json_object_get(json_object_get(r, "n"), states[k]));

            (void)json_object_set_new(
                row, states[k],
                json_integer(json_integer_value(json_object_get(row, states[k])) + add));
        }
    }
    list = calloc(json_object_size(by) + 1, sizeof(*list));
    if (list != NULL) {
        json_object_foreach(by, name, v)
        {
            list[n++] = v;
        }
        qsort(list, n, sizeof(*list), by_sent_desc);
        for (i = 0; i < n && i < TOP_TEMPLATES; i++) {
            (void)json_array_append(out, list[i]);
        }
        free(list);
    }
    json_decref(by);
    return out;
}

json_t *
an_scan_summary(const struct an_scan *s, struct an_totals *out)
{
    struct an_totals t;
    size_t i;
    const json_t *d;
    json_t *o;

    an_totals_init(&t);
    json_array_foreach(s->rows, i, d)
    {
        an_totals_add_row(&t, d);
    }
    o = an_totals_json(&t, s->an->ratecard.currency);
    if (o != NULL) {
        (void)json_object_set_new(o, "period", period_json(s));
        (void)json_object_set_new(o, "templates", top_templates(s->rows));
    }
    if (out != NULL) {
        *out = t;
    } else {
        an_totals_clear(&t);
    }
    return o;
}

static int
label_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *
an_scan_series(const struct an_scan *s)
{
    static const char *const names[] = {"half_hour", "hour", "day", "month"};
    json_t *index = json_object(), *series = json_array(), *o;
    struct an_totals *per = NULL;
    size_t n = 0, i;
    const json_t *d;
    const char *label;
    json_t *v;

    if (index == NULL || series == NULL) {
        json_decref(index);
        json_decref(series);
        return NULL;
    }
    json_array_foreach(s->rows, i, d)
    {
        char key[32];
        int64_t b = json_integer_value(json_object_get(d, "b"));
        json_t *slot;

        an_bucket_label(s->tz, b, s->q.granularity, key, sizeof(key));
        if ((slot = json_object_get(index, key)) == NULL) {
            struct an_totals *p = realloc(per, (n + 1) * sizeof(*per));

            if (p == NULL) {
                continue;
            }
            per = p;
            an_totals_init(&per[n]);
            (void)json_object_set_new(index, key, json_integer((json_int_t)n));
            slot = json_object_get(index, key);
            n++;
        }
        an_totals_add_row(&per[json_integer_value(slot)], d);
    }
    /* labels sort as their periods do */
    {
        const char **keys = calloc(n + 1, sizeof(*keys));
        size_t k = 0;

        json_object_foreach(index, label, v)
        {
            if (keys != NULL) {
                keys[k++] = label;
            }
        }
        if (keys != NULL) {
            qsort(keys, k, sizeof(*keys), label_cmp);
        }
        for (size_t a = 0; keys != NULL && a < k; a++) {
            json_t *p = an_totals_json(&per[json_integer_value(json_object_get(index, keys[a]))],
                                       s->an->ratecard.currency);

            if (p != NULL) {
                (void)json_object_set_new(p, "period_start", json_string(keys[a]));
                (void)json_array_append_new(series, p);
            }
        }
        free(keys);
    }
    for (i = 0; i < n; i++) {
        an_totals_clear(&per[i]);
    }
    free(per);
    json_decref(index);
    o = json_pack("{s:o, s:s, s:o}", "period", period_json(s), "granularity",
                  names[s->q.granularity], "series", series);
    return o;
}
