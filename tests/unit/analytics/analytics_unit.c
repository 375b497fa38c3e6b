/*
 * analytics_unit.c: wa-analytics' pure parts through their interfaces: the timeline state
 * machine (order, duplicates, late failures, groups), the update it becomes, histograms
 * (merging and quantiles), zones and bucket labels (tzdata), the rate card and the cost of a
 * hand-computed day (tests/data/analytics), engagement, KPIs and query parameters.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "wa_test.h"

struct step {
    enum an_state s;
    int64_t t;
};

static void
apply_all(struct an_timeline *tl, const struct step *steps, const size_t *order, size_t n)
{
    struct an_error e = {.has_code = true, .code = 131026, .title = "Message Undeliverable"};

    an_timeline_init(tl);
    for (size_t i = 0; i < n; i++) {
        const struct step *st = &steps[order[i]];
        an_timeline_apply(tl, st->s, st->t, st->s == AN_FAILED ? &e : NULL);
    }
}

static void
timeline__any_order_and_duplicates__same_result(void **state)
{
    static const struct step steps[] = {
        {AN_REQUESTED, 1000}, {AN_ACCEPTED, 1200}, {AN_SENT, 2000},
        {AN_DELIVERED, 3000}, {AN_READ, 9000},     {AN_DELIVERED, 3000},
    };
    static const size_t orders[][6] = {
        {0, 1, 2, 3, 4, 5},
        {4, 3, 2, 1, 0, 5},
        {2, 4, 0, 5, 1, 3},
        {5, 5, 4, 4, 0, 1},
    };
    struct an_timeline ref, tl;

    (void)state;
    apply_all(&ref, steps, orders[0], 6);
    assert_int_equal(an_timeline_state(&ref), AN_READ);
    assert_int_equal(ref.at[AN_SENT], 2000);
    /* the third order lacks "sent": everything else must match */
    for (size_t o = 1; o < 3; o++) {
        apply_all(&tl, steps, orders[o], 6);
        assert_memory_equal(&tl, &ref, sizeof(tl));
    }
    apply_all(&tl, steps, orders[3], 6);
    assert_int_equal(an_timeline_state(&tl), AN_READ);
    assert_int_equal(tl.at[AN_DELIVERED], 3000);
}

static void
timeline__delivered_after_read__no_regression_first_time_kept(void **state)
{
    struct an_timeline tl;

    (void)state;
    an_timeline_init(&tl);
    an_timeline_apply(&tl, AN_READ, 5000, NULL);
    an_timeline_apply(&tl, AN_DELIVERED, 4000, NULL);
    an_timeline_apply(&tl, AN_DELIVERED, 4500, NULL); /* a later copy: the first time stays */
    assert_int_equal(an_timeline_state(&tl), AN_READ);
    assert_int_equal(tl.at[AN_DELIVERED], 4000);
}

static void
timeline__failed_after_delivered__recorded_with_error(void **state)
{
    struct an_timeline tl;
    struct an_error e = {.has_code = true, .code = 131049};

    (void)state;
    an_timeline_init(&tl);
    an_timeline_apply(&tl, AN_SENT, 1000, NULL);
    an_timeline_apply(&tl, AN_DELIVERED, 2000, NULL);
    an_timeline_apply(&tl, AN_FAILED, 3000, &e);
    assert_int_equal(an_timeline_state(&tl), AN_FAILED);
    assert_int_equal(tl.at[AN_DELIVERED], 2000);
    assert_int_equal(tl.error.code, 131049);
}

static void
update__operators__min_max_set_and_participant(void **state)
{
    struct an_error e = {.has_code = true, .code = 131026, .title = "Message Undeliverable"};
    struct an_event ev = {.id = "r1",
                          .request_id = "r1",
                          .wamid = "wamid.A",
                          .state = AN_FAILED,
                          .at_ms = 7000,
                          .participant = "4915100000001",
                          .contact = "4915100000001",
                          .error = &e,
                          .pricing_billable = -1};
    json_t *u = NULL;

    (void)state;
    assert_int_equal(an_timeline_update(&ev, &u), WA_OK);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(u, "$min"), "t.failed")),
                     7000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(u, "$min"), "at")), 7000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(u, "$max"), "rank")),
                     AN_FAILED);
    assert_non_null(json_object_get(json_object_get(u, "$min"), "p.4915100000001.t.failed"));
    assert_non_null(json_object_get(json_object_get(u, "$max"), "p.4915100000001.rank"));
    assert_int_equal(json_integer_value(wa_json_path(u, "$set.error.code")), 131026);
    /* personal data only on insert, so an erasure stays */
    assert_string_equal(json_string_value(wa_json_path(u, "$setOnInsert.contact")),
                        "4915100000001");
    json_decref(u);
    ev.participant = "bad.key"; /* not usable as a field name: no participant entry */
    assert_int_equal(an_timeline_update(&ev, &u), WA_OK);
    assert_null(json_object_get(json_object_get(u, "$min"), "p.bad.key.t.failed"));
    json_decref(u);
    ev.id = NULL;
    assert_int_equal(an_timeline_update(&ev, &u), WA_EINVAL);
    assert_null(u);
}

static void
view__document__states_in_order_with_times(void **state)
{
    json_t *doc =
        json_pack("{s:s, s:s, s:i, s:{s:I, s:I, s:I}, s:{s:i, s:s, s:s}}", "_id", "r1", "wamid",
                  "wamid.A", "rank", AN_FAILED, "t", "accepted", (json_int_t)1796342400000,
                  "delivered", (json_int_t)1796342402000, "failed", (json_int_t)1796342403000,
                  "error", "code", 131050, "title", "x", "details", "y");
    json_t *v = an_timeline_view(doc), *states = json_object_get(v, "states");

    (void)state;
    assert_string_equal(json_string_value(json_object_get(v, "state")), "failed");
    assert_int_equal(json_array_size(states), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(states, 1), "state")),
                        "delivered");
    assert_string_equal(json_string_value(json_object_get(json_array_get(states, 0), "at")),
                        "2026-12-04T00:00:00.000Z");
    assert_true(json_is_true(json_object_get(v, "late_failure")));
    assert_int_equal(json_integer_value(wa_json_path(v, "error.code")), 131050);
    json_decref(v);
    json_decref(doc);
}

static void
hist__merge_of_halves__equals_whole(void **state)
{
    struct an_hist whole = {0}, a = {0}, b = {0};

    (void)state;
    for (int64_t i = 0; i < 10000; i++) {
        int64_t ms = (i * 7919) % 60000;
        an_hist_add(&whole, ms);
        an_hist_add(i % 2 ? &a : &b, ms);
    }
    an_hist_merge(&a, &b);
    assert_memory_equal(&a, &whole, sizeof(whole));
    assert_true(an_hist_quantile(&a, 0.5) == an_hist_quantile(&whole, 0.5));
}

static void
hist__quantiles__within_one_bucket(void **state)
{
    struct an_hist h = {0};

    (void)state;
    assert_true(an_hist_quantile(&h, 0.5) == 0);
    for (int64_t ms = 1; ms <= 1000; ms++) {
        an_hist_add(&h, ms);
    }
    /* true p50 is 500, p99 is 990; the answer is the upper edge of their bucket (<= 19% up) */
    assert_true(an_hist_quantile(&h, 0.50) > 500 && an_hist_quantile(&h, 0.50) <= 500 * 1.19);
    assert_true(an_hist_quantile(&h, 0.99) > 990 && an_hist_quantile(&h, 0.99) <= 990 * 1.19);
    assert_int_equal(h.sum_ms, 500500);
    for (size_t i = 1; i < AN_HIST_BUCKETS; i++) {
        assert_true(an_hist_upper(i) > an_hist_upper(i - 1));
    }
}

static void
tz__berlin__offsets_and_dst_day_has_46_half_hours(void **state)
{
    struct an_tz tz;
    struct wa_error error = {0};
    char label[32];
    int64_t day_start = 1774738800000LL; /* 2026-03-28T23:00Z = 2026-03-29 00:00 CET */
    size_t n = 0;

    (void)state;
    assert_int_equal(an_tz_load("Europe/Berlin", NULL, &tz, &error), WA_OK);
    assert_int_equal(an_tz_offset(&tz, 1796342400000LL), 3600);          /* December */
    assert_int_equal(an_tz_offset(&tz, 1782864000000LL), 7200);          /* July */
    an_bucket_label(&tz, 1796340600000LL, AN_DAY, label, sizeof(label)); /* 23:30Z */
    assert_string_equal(label, "2026-12-04");
    an_bucket_label(&tz, 1796340600000LL, AN_HALF_HOUR, label, sizeof(label));
    assert_string_equal(label, "2026-12-04T00:30");
    for (int64_t b = day_start - 4 * AN_HALF_HOUR_MS; b < day_start + 52 * AN_HALF_HOUR_MS;
         b += AN_HALF_HOUR_MS) {
        an_bucket_label(&tz, b, AN_DAY, label, sizeof(label));
        n += strcmp(label, "2026-03-29") == 0;
    }
    assert_int_equal(n, 46); /* the spring-forward day has 23 hours */
    an_bucket_label(&tz, day_start, AN_MONTH, label, sizeof(label));
    assert_string_equal(label, "2026-03");
    an_tz_free(&tz);
    assert_int_equal(an_tz_load("../etc/passwd", NULL, &tz, &error), WA_EINVAL);
    assert_int_equal(an_tz_load("Mars/Olympus", NULL, &tz, &error), WA_ENOTFOUND);
    assert_int_equal(an_tz_load("UTC", NULL, &tz, &error), WA_OK);
    assert_int_equal(an_tz_offset(&tz, 0), 0);
    assert_int_equal(an_bucket_half_hour(1796340601234LL), 1796340600000LL);
    assert_int_equal(an_bucket_half_hour(-1), -AN_HALF_HOUR_MS);
}

static void
tz__garbage__rejected(void **state)
{
    struct an_tz tz;
    struct wa_error error = {0};
    unsigned char junk[64] = "TZif2";

    (void)state;
    assert_int_equal(an_tz_parse(junk, sizeof(junk), &tz, &error), WA_EPARSE);
    assert_int_equal(an_tz_parse(junk, 3, &tz, &error), WA_EPARSE);
}

static char *
data_file(const char *name, size_t *len)
{
    char path[1024];
    char *s;

    snprintf(path, sizeof(path), "%s/analytics/%s", wa_test_env("WA_TEST_DATA"), name);
    s = wa_test_read_file(path, len);
    assert_non_null(s);
    return s;
}

static void
ratecard__effective_dates_free_types_and_errors(void **state)
{
    struct an_ratecard rc;
    struct wa_error error = {0};
    size_t len;
    char *text = data_file("ratecard.json", &len);
    int64_t m;
    static const char *const bad[] = {
        "{\"currency\":\"USD\",\"rates\":[{\"calling_code\":\"9x\",\"effective\":\"2026-01-01\"}]}",
        "{\"currency\":\"USD\",\"rates\":[{\"calling_code\":\"91\",\"effective\":\"2026-02-30\"}]}",
        "{\"currency\":\"USD\",\"rates\":[{\"calling_code\":\"91\",\"effective\":\"2026-01-01\","
        "\"marketing\":-1}]}",
        "{\"currency\":\"US\",\"rates\":[]}",
        "{\"currency\":\"USD\",\"rates\":[{\"calling_code\":\"91\",\"effective\":\"2026-01-01\"},"
        "{\"calling_code\":\"91\",\"effective\":\"2026-01-01\"}]}",
        "[]",
    };

    (void)state;
    assert_int_equal(an_ratecard_parse(text, len, &rc, &error), WA_OK);
    free(text);
    assert_string_equal(rc.currency, "USD");
    assert_string_equal(an_ratecard_country(&rc, "+919800000001"), "91");
    assert_null(an_ratecard_country(&rc, "447700000001"));
    assert_true(an_ratecard_cost(&rc, "91", "marketing", "regular", 1, 1796342399000LL, &m));
    assert_int_equal(m, 10700); /* the day before the new rate */
    assert_true(an_ratecard_cost(&rc, "91", "marketing", "regular", 1, 1796342400000LL, &m));
    assert_int_equal(m, 11800);
    assert_true(an_ratecard_cost(&rc, "55", "service", "free_customer_service", 0, 0, &m));
    assert_int_equal(m, 0);
    assert_false(an_ratecard_cost(&rc, "91", "marketing", "regular", 1, 0, &m)); /* before any */
    assert_false(an_ratecard_cost(&rc, "44", "marketing", "regular", 1, 1796342400000LL, &m));
    an_ratecard_free(&rc);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(an_ratecard_parse(bad[i], strlen(bad[i]), &rc, &error), WA_EPARSE);
        assert_null(rc.rates);
    }
}

static void
ratecard__shipped_sample__parses(void **state)
{
    struct an_ratecard rc;
    struct wa_error error = {0};
    size_t len;
    char path[1024], *text;

    (void)state;
    snprintf(path, sizeof(path), "%s/../../services/analytics/ratecard.sample.json",
             wa_test_env("WA_TEST_DATA"));
    text = wa_test_read_file(path, &len);
    assert_non_null(text);
    assert_int_equal(an_ratecard_parse(text, len, &rc, &error), WA_OK);
    assert_true(rc.n >= 5);
    free(text);
    an_ratecard_free(&rc);
}

/* The fixture's messages of its day, costed, per half-hour bucket, merged. */
static void
cost__fixture_day__equals_hand_computed_and_buckets_merge(void **state)
{
    struct an_ratecard rc;
    struct wa_error error = {0};
    struct an_totals day, direct, bucket[48];
    size_t len, i;
    char *rtext = data_file("ratecard.json", &len), *ftext;
    json_t *fx, *msg, *a, *b;
    int64_t start = 1796342400000LL;

    (void)state;
    assert_int_equal(an_ratecard_parse(rtext, len, &rc, &error), WA_OK);
    ftext = data_file("day.json", &len);
    assert_int_equal(wa_json_parse(ftext, len, 16, &fx, &error), WA_OK);
    an_totals_init(&day);
    an_totals_init(&direct);
    for (i = 0; i < 48; i++) {
        an_totals_init(&bucket[i]);
    }
    json_array_foreach(json_object_get(fx, "messages"), i, msg)
    {
        int64_t at = json_integer_value(json_object_get(msg, "at"));
        const char *cc =
            an_ratecard_country(&rc, json_string_value(json_object_get(msg, "contact")));

        if (cc != NULL) {
            json_object_set_new(msg, "country", json_string(cc));
        }
        if (at < start || at >= start + 48 * AN_HALF_HOUR_MS) {
            continue;
        }
        an_totals_add_message(&bucket[(an_bucket_half_hour(at) - start) / AN_HALF_HOUR_MS], msg,
                              &rc);
        an_totals_add_message(&direct, msg, &rc);
    }
    for (i = 0; i < 48; i++) {
        an_totals_merge(&day, &bucket[i]);
        an_totals_clear(&bucket[i]);
    }
    assert_int_equal(day.cost_micros[AN_MARKETING] + day.cost_micros[AN_UTILITY] +
                         day.cost_micros[AN_AUTHENTICATION] + day.cost_micros[AN_SERVICE],
                     json_integer_value(json_object_get(fx, "total_micros")));
    assert_int_equal(day.cost_micros[AN_MARKETING],
                     json_integer_value(json_object_get(fx, "marketing_micros")));
    assert_int_equal(day.cost_micros[AN_UTILITY],
                     json_integer_value(json_object_get(fx, "utility_micros")));
    assert_int_equal(day.cost_micros[AN_AUTHENTICATION],
                     json_integer_value(json_object_get(fx, "authentication_micros")));
    assert_int_equal(day.unpriced, json_integer_value(json_object_get(fx, "unpriced")));
    assert_int_equal(day.n[AN_SENT], 9);
    assert_int_equal(day.n[AN_DELIVERED], 7); /* m10 was delivered before it failed */
    assert_int_equal(day.n[AN_FAILED], 1);
    assert_int_equal(day.late_failures, 1);
    a = an_totals_json(&day, rc.currency);
    b = an_totals_json(&direct, rc.currency);
    assert_true(json_equal(a, b)); /* the day is exactly the merge of its half hours */
    assert_int_equal(json_integer_value(wa_json_path(a, "cost.total_micros")), 139600);
    assert_int_equal(json_array_size(json_object_get(a, "failures_by_code")), 1);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(a, "failures_by_code"), 0), "code")),
                     131026);
    json_decref(a);
    json_decref(b);
    an_totals_clear(&day);
    an_totals_clear(&direct);
    json_decref(fx);
    free(ftext);
    free(rtext);
    an_ratecard_free(&rc);
}

/* The nested row document a $inc of t makes from nothing (what MongoDB stores). */
static json_t *
row_doc(const struct an_totals *t)
{
    json_t *doc = json_object(), *u = json_pack("{s:o}", "$inc", an_totals_inc(t));

    assert_int_equal(an_update_apply(doc, u, true), WA_OK);
    json_decref(u);
    return doc;
}

static void
assert_same_totals(const struct an_totals *a, const struct an_totals *b)
{
    json_t *x = an_totals_json(a, "USD"), *y = an_totals_json(b, "USD");

    if (!json_equal(x, y)) {
        char *dx = wa_json_dump(x), *dy = wa_json_dump(y);

        fail_msg("totals differ:\n%s\n%s", dx, dy);
    }
    assert_int_equal(a->messages, b->messages);
    json_decref(x);
    json_decref(y);
}

/* A message wa-notify did not send (no Meta code) counts under its reason, with a meaning, also
 * after a trip through a stored row; an unknown shape of reason counts as "none". */
static void
failures__without_code__counted_by_reason(void **state)
{
    json_t *docs = json_pack(
        "[{s:s, s:i, s:I, s:{s:I, s:I}, s:s}, {s:s, s:i, s:I, s:{s:I, s:I}, s:s}]", "_id", "r1",
        "rank", AN_FAILED, "at", (json_int_t)1796342400000, "t", "requested",
        (json_int_t)1796342400000, "failed", (json_int_t)1796342400001, "reason", "opted_out",
        "_id", "r2", "rank", AN_FAILED, "at", (json_int_t)1796342400000, "t", "requested",
        (json_int_t)1796342400000, "failed", (json_int_t)1796342400001, "reason", "Not.A-key");
    struct an_totals t, back;
    json_t *row, *j, *f, *d;
    size_t i;

    (void)state;
    an_totals_init(&t);
    an_totals_init(&back);
    json_array_foreach(docs, i, d)
    {
        an_totals_add_message(&t, d, NULL);
    }
    row = row_doc(&t);
    an_totals_add_row(&back, row);
    assert_same_totals(&t, &back);
    j = an_totals_json(&back, "USD");
    f = json_object_get(j, "failures_by_code");
    assert_int_equal(json_array_size(f), 2);
    json_array_foreach(f, i, d)
    {
        assert_true(json_is_null(json_object_get(d, "code")));
        assert_int_equal(json_integer_value(json_object_get(d, "count")), 1);
        if (json_is_string(json_object_get(d, "reason"))) {
            assert_string_equal(json_string_value(json_object_get(d, "reason")), "opted_out");
            assert_string_equal(json_string_value(json_object_get(d, "meaning")),
                                "not sent: the contact opted out of marketing");
        } else {
            assert_string_equal(json_string_value(json_object_get(d, "meaning")), "");
        }
    }
    json_decref(j);
    json_decref(row);
    json_decref(docs);
    an_totals_clear(&t);
    an_totals_clear(&back);
}

/* The fixture's messages, per row, stored as MongoDB would and read back, merge into exactly
 * the totals of the documents; each row holds only its dimensions. */
static void
rows__contributions_merged__equal_totals_of_documents(void **state)
{
    struct an_ratecard rc;
    struct wa_error error = {0};
    struct an_totals direct, merged;
    struct an_rows rows;
    size_t len, i;
    char *rtext = data_file("ratecard.json", &len), *ftext;
    json_t *fx, *msg;

    (void)state;
    assert_int_equal(an_ratecard_parse(rtext, len, &rc, &error), WA_OK);
    ftext = data_file("day.json", &len);
    assert_int_equal(wa_json_parse(ftext, len, 16, &fx, &error), WA_OK);
    an_totals_init(&direct);
    an_totals_init(&merged);
    an_rows_init(&rows);
    json_array_foreach(json_object_get(fx, "messages"), i, msg)
    {
        const char *cc =
            an_ratecard_country(&rc, json_string_value(json_object_get(msg, "contact")));

        if (cc != NULL) {
            json_object_set_new(msg, "country", json_string(cc));
        }
        an_totals_add_message(&direct, msg, &rc);
        assert_int_equal(an_rows_add_message(&rows, msg, &rc, 1), WA_OK);
    }
    assert_true(rows.n > 1);
    for (i = 0; i < rows.n; i++) {
        json_t *doc = row_doc(&rows.v[i].t);
        struct an_query q = {.category =
                                 json_string_value(json_object_get(rows.v[i].dims, "category"))};
        json_t *dims = rows.v[i].dims;

        json_object_update(doc, dims);
        assert_true(an_query_match(&q, doc));
        assert_int_equal(json_integer_value(json_object_get(dims, "b")) % AN_HALF_HOUR_MS, 0);
        an_totals_add_row(&merged, doc);
        json_decref(doc);
    }
    assert_same_totals(&merged, &direct);
    an_rows_clear(&rows);
    an_totals_clear(&direct);
    an_totals_clear(&merged);
    json_decref(fx);
    free(ftext);
    free(rtext);
    an_ratecard_free(&rc);
}

/* Events of several messages applied one at a time in a shuffled order with duplicates: the
 * rows moved by contribution(new) - contribution(old) of each change end equal to the rows of
 * the final documents, and the documents equal those the updates make in order. */
static void
rows__changes_as_deltas__equal_rows_of_final_documents(void **state)
{
    enum { NMSG = 6 };
    struct an_event evs[NMSG * 6];
    struct an_error e = {.has_code = true, .code = 131026, .title = "Message Undeliverable"};
    char ids[NMSG][8];
    json_t *docs = json_object(), *store = json_object(), *doc, *row;
    struct an_totals from_store, from_docs;
    struct an_rows final;
    const char *key;
    size_t n = 0;
    unsigned seed = 7;
    int64_t t0 = 1796374800000LL;

    (void)state;
    for (int m = 0; m < NMSG; m++) {
        snprintf(ids[m], sizeof(ids[m]), "m%d", m);
        for (int s = AN_REQUESTED; s <= AN_READ - (m % 3); s++) {
            /* the first time of a message straddles a bucket edge for m odd */
            evs[n++] = (struct an_event){.id = ids[m],
                                         .state = (enum an_state)s,
                                         .at_ms = t0 + m * 600000LL - (m % 2) * 1000 + s * 1500 +
                                                  (s == 0) * 3000,
                                         .phone_number_id = "100",
                                         .template_name = m % 2 ? "a" : "b",
                                         .category = "marketing",
                                         .type = "template",
                                         .contact = "919800000001",
                                         .country = "91",
                                         .pricing_billable = -1};
            if (s == AN_SENT) {
                evs[n - 1].pricing_category = "marketing";
                evs[n - 1].pricing_type = "regular";
                evs[n - 1].pricing_billable = 1;
            }
        }
        if (m == 4) {
            evs[n++] = (struct an_event){.id = ids[m],
                                         .state = AN_FAILED,
                                         .at_ms = t0 + 9e6,
                                         .error = &e,
                                         .pricing_billable = -1};
        }
    }
    for (size_t round = 0; round < 2 * n; round++) { /* every event, in a shuffled order, twice */
        const struct an_event *ev = &evs[(round < n ? round : round - n) * 7 % n];
        json_t *u, *old, *next, *inc;
        struct an_rows delta;

        if (round % 5 == 4) {
            ev = &evs[rand_r(&seed) % n]; /* and some more duplicates */
        }
        assert_int_equal(an_timeline_update(ev, &u), WA_OK);
        old = json_object_get(docs, ev->id);
        next = old != NULL ? json_deep_copy(old) : json_object();
        assert_int_equal(an_update_apply(next, u, old == NULL), WA_OK);
        an_rows_init(&delta);
        assert_int_equal(an_rows_add_message(&delta, next, NULL, 1), WA_OK);
        assert_int_equal(an_rows_add_message(&delta, old, NULL, -1), WA_OK);
        for (size_t i = 0; i < delta.n; i++) {
            json_t *up;

            if ((row = json_object_get(store, delta.v[i].id)) == NULL) {
                json_object_set_new(store, delta.v[i].id, row = json_object());
            }
            inc = an_totals_inc(&delta.v[i].t);
            up = json_pack("{s:o}", "$inc", inc);
            assert_int_equal(an_update_apply(row, up, false), WA_OK);
            json_decref(up);
        }
        an_rows_clear(&delta);
        json_object_set_new(docs, ev->id, next);
        json_decref(u);
    }
    an_totals_init(&from_store);
    an_totals_init(&from_docs);
    an_rows_init(&final);
    json_object_foreach(store, key, row)
    {
        an_totals_add_row(&from_store, row);
    }
    json_object_foreach(docs, key, doc)
    {
        an_totals_add_message(&from_docs, doc, NULL);
        assert_int_equal(an_rows_add_message(&final, doc, NULL, 1), WA_OK);
    }
    assert_same_totals(&from_store, &from_docs);
    assert_int_equal(from_docs.messages, NMSG);
    assert_int_equal(from_docs.n[AN_FAILED], 1);
    for (size_t i = 0; i < final.n; i++) { /* row by row too */
        struct an_totals one;

        an_totals_init(&one);
        assert_non_null(json_object_get(store, final.v[i].id));
        an_totals_add_row(&one, json_object_get(store, final.v[i].id));
        assert_same_totals(&one, &final.v[i].t);
        an_totals_clear(&one);
    }
    an_rows_clear(&final);
    an_totals_clear(&from_store);
    an_totals_clear(&from_docs);
    json_decref(docs);
    json_decref(store);
}

/* Contact documents built one entry at a time (inbound first), the rows moved by each change:
 * a template answered after 5 min is replied, one answered after 25 h is not; the text message
 * 95 s after the answer is its first response; every inbound message counts. */
static void
engagement__contact_documents__replies_inbound_and_first_response(void **state)
{
    json_t *msgs =
        json_pack("[{s:s, s:s, s:s, s:I, s:{s:I}}, {s:s, s:s, s:s, s:I, s:{s:I}},"
                  " {s:s, s:s, s:s, s:I, s:{s:I}}]",
                  "_id", "a", "type", "template", "contact", "1", "at", (json_int_t)1000, "t",
                  "sent", (json_int_t)1000, "_id", "b", "type", "template", "contact", "2", "at",
                  (json_int_t)1000, "t", "sent", (json_int_t)1000, "_id", "c", "type", "text",
                  "contact", "1", "at", (json_int_t)400000, "t", "sent", (json_int_t)400000);
    json_t *in = json_pack("[{s:s, s:s, s:I}, {s:s, s:s, s:I}]", "_id", "w1", "contact", "1", "at",
                           (json_int_t)305000, "_id", "w2", "contact", "2", "at",
                           (json_int_t)(1000 + 25 * 3600000LL));
    json_t *contacts = json_object(), *store = json_object(), *d, *c, *row;
    struct an_totals t, direct;
    struct an_rows all;
    const char *key;
    size_t i;

    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        json_array_foreach(pass == 0 ? in : msgs, i, d)
        {
            const char *who = json_string_value(json_object_get(d, "contact"));
            json_t *old = json_object_get(contacts, who), *next;
            struct an_rows delta;

            next = old != NULL ? json_deep_copy(old) : json_object();
            assert_int_equal(an_engage_set(next, pass == 0 ? "i" : "o", json_object_get(d, "_id"),
                                           pass == 0 ? an_engage_in(d) : an_engage_out(d)),
                             WA_OK);
            an_rows_init(&delta);
            assert_int_equal(an_rows_add_contact(&delta, next, 1), WA_OK);
            if (old != NULL) {
                assert_int_equal(an_rows_add_contact(&delta, old, -1), WA_OK);
            }
            for (size_t k = 0; k < delta.n; k++) {
                json_t *up = json_pack("{s:o}", "$inc", an_totals_inc(&delta.v[k].t));

                if ((row = json_object_get(store, delta.v[k].id)) == NULL) {
                    json_object_set_new(store, delta.v[k].id, row = json_object());
                }
                assert_int_equal(an_update_apply(row, up, false), WA_OK);
                json_decref(up);
            }
            an_rows_clear(&delta);
            json_object_set_new(contacts, who, next);
        }
    }
    an_totals_init(&t);
    json_object_foreach(store, key, row)
    {
        an_totals_add_row(&t, row);
    }
    assert_int_equal(t.business_initiated, 2);
    assert_int_equal(t.replied, 1);
    assert_int_equal(t.inbound, 2);
    assert_int_equal(t.first_response.count, 1);
    assert_int_equal(t.first_response.sum_ms, 95000);
    an_totals_init(&direct); /* the same as the final documents' contribution */
    an_rows_init(&all);
    json_object_foreach(contacts, key, c)
    {
        assert_int_equal(an_rows_add_contact(&all, c, 1), WA_OK);
    }
    for (i = 0; i < all.n; i++) {
        an_totals_merge(&direct, &all.v[i].t);
    }
    assert_same_totals(&t, &direct);
    an_rows_clear(&all);
    an_totals_clear(&t);
    an_totals_clear(&direct);
    json_decref(contacts);
    json_decref(store);
    json_decref(msgs);
    json_decref(in);
}

static void
kpis__thresholds(void **state)
{
    struct an_totals t;
    struct an_kpi k[AN_NKPIS];
    json_t *j;

    (void)state;
    an_totals_init(&t);
    an_kpis(&t, k);
    assert_true(isnan(k[0].value) && !k[0].pass); /* no data is not a pass */
    t.n[AN_SENT] = 1000;
    t.n[AN_DELIVERED] = 981;
    an_hist_add(&t.delivery, 1500);
    an_hist_add(&t.delivery, 2400);
    t.business_initiated = 100;
    t.replied = 18;
    an_kpis(&t, k);
    assert_true(k[0].pass);
    assert_true(k[1].pass && fabs(k[1].value - 1.95) < 1e-9);
    assert_true(k[2].pass);
    t.n[AN_DELIVERED] = 980; /* exactly 98% is not above it */
    t.replied = 19;
    an_kpis(&t, k);
    assert_false(k[0].pass);
    assert_false(k[2].pass);
    j = an_kpis_json(k);
    assert_false(json_is_true(json_object_get(j, "pass")));
    assert_int_equal(json_array_size(json_object_get(j, "kpis")), 3);
    json_decref(j);
    an_totals_clear(&t);
}

struct params {
    const char *const *kv;
};

static const char *
param(void *arg, const char *name)
{
    const char *const *kv = ((struct params *)arg)->kv;

    for (; kv[0] != NULL; kv += 2) {
        if (strcmp(kv[0], name) == 0) {
            return kv[1];
        }
    }
    return NULL;
}

static void
query__parameters__parsed_and_rejected_with_names(void **state)
{
    static const char *const ok[] = {
        "from",        "2026-12-01", "to",       "2026-12-04T12:00:00Z",
        "granularity", "hour",       "category", "marketing",
        "country",     "91",         NULL};
    static const char *const bad[][3] = {
        {"from", "yesterday", "from"},          {"to", "2026-13-01", "to"},
        {"granularity", "week", "granularity"}, {"category", "spam", "category"},
        {"country", "IN", "country"},           {"from", "2020-01-01", "from"},
        {"template", "", "template"},
    };
    struct an_tz tz;
    struct wa_error error = {0};
    struct an_query q;
    struct params p = {ok};

    (void)state;
    assert_int_equal(an_tz_load("Europe/Berlin", NULL, &tz, &error), WA_OK);
    assert_int_equal(an_query_parse(param, &p, 1796342400000LL, &tz, &q, &error), WA_OK);
    assert_int_equal(q.from_ms, 1796079600000LL); /* 2026-12-01 00:00 CET = 23:00Z the day before */
    assert_int_equal(q.granularity, AN_HOUR);
    assert_string_equal(q.country, "91");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *kv[] = {bad[i][0], bad[i][1], NULL};

        p.kv = kv;
        memset(&error, 0, sizeof(error));
        assert_int_equal(an_query_parse(param, &p, 1796342400000LL, &tz, &q, &error), WA_EINVAL);
        assert_non_null(strstr(error.message, bad[i][2]));
    }
    an_tz_free(&tz);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timeline__any_order_and_duplicates__same_result),
        cmocka_unit_test(timeline__delivered_after_read__no_regression_first_time_kept),
        cmocka_unit_test(timeline__failed_after_delivered__recorded_with_error),
        cmocka_unit_test(update__operators__min_max_set_and_participant),
        cmocka_unit_test(view__document__states_in_order_with_times),
        cmocka_unit_test(hist__merge_of_halves__equals_whole),
        cmocka_unit_test(hist__quantiles__within_one_bucket),
        cmocka_unit_test(tz__berlin__offsets_and_dst_day_has_46_half_hours),
        cmocka_unit_test(tz__garbage__rejected),
        cmocka_unit_test(ratecard__effective_dates_free_types_and_errors),
        cmocka_unit_test(ratecard__shipped_sample__parses),
        cmocka_unit_test(cost__fixture_day__equals_hand_computed_and_buckets_merge),
        cmocka_unit_test(rows__contributions_merged__equal_totals_of_documents),
        cmocka_unit_test(failures__without_code__counted_by_reason),
        cmocka_unit_test(rows__changes_as_deltas__equal_rows_of_final_documents),
        cmocka_unit_test(engagement__contact_documents__replies_inbound_and_first_response),
        cmocka_unit_test(kpis__thresholds),
        cmocka_unit_test(query__parameters__parsed_and_rejected_with_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
