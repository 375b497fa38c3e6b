/*
 * report.c: the figures of a set of message documents (pure): totals of each state reached,
 * rates with their denominators, latency histograms, failures by code, cost, replies and first
 * responses; and the go-live KPIs computed from them. A bucket's figures merge into a longer
 * period's by addition, so a day is exactly the merge of its half hours.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "wa/whatsapp_errors.h"

void
an_totals_init(struct an_totals *t)
{
    memset(t, 0, sizeof(*t));
    t->failures = json_object();
}

void
an_totals_clear(struct an_totals *t)
{
    json_decref(t->failures);
    memset(t, 0, sizeof(*t));
}

static int64_t
num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) ? json_integer_value(v)
           : json_is_real(v)  ? (int64_t)json_real_value(v)
                              : 0;
}

/* A failure without Meta's code is counted by wa-notify's reason when it is a plain word (it
 * becomes part of a MongoDB field name in the rows). */
static bool
reason_key(const char *r)
{
    size_t n = r != NULL ? strlen(r) : 0;

    if (n == 0 || n > 24 || strcmp(r, "none") == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(r[i] >= 'a' && r[i] <= 'z') && r[i] != '_') {
            return false;
        }
    }
    return true;
}

/* What a wa-notify reason means (wa/contract_outbound.h lists them). */
static const char *
reason_meaning(const char *r)
{
    static const struct {
        const char *reason, *meaning;
    } m[] = {
        {"opted_out", "not sent: the contact opted out of marketing"},
        {"invalid", "not sent: the request was invalid"},
        {"expired", "not sent: expired before it could be sent"},
        {"window", "not sent: the 24-hour customer service window was closed"},
        {"rejected", "refused by the Cloud API"},
        {"retries_exhausted", "not sent: the Cloud API kept failing until the retries ran out"},
    };

    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        if (strcmp(r, m[i].reason) == 0) {
            return m[i].meaning;
        }
    }
    return "not sent by wa-notify";
}

static void
count_failure(json_t *failures, const char *key, uint64_t n)
{
    json_t *v = json_object_get(failures, key);

    (void)json_object_set_new(
        failures, key, json_integer((v != NULL ? json_integer_value(v) : 0) + (json_int_t)n));
}

void
an_totals_add_message(struct an_totals *t, const json_t *doc, const struct an_ratecard *rc)
{
    struct an_timeline tl;
    const json_t *pricing = json_object_get(doc, "pricing");
    bool reached[AN_NSTATES] = {false};

    an_timeline_from_doc(doc, &tl);
    /* a later state implies the earlier ones of the delivery path, even when their webhook
     * was lost or has not arrived yet */
    for (int s = AN_READ; s >= AN_ACCEPTED; s--) {
        reached[s] = tl.at[s] != 0 || (s < AN_READ && reached[s + 1]);
    }
    reached[AN_REQUESTED] = tl.at[AN_REQUESTED] != 0;
    reached[AN_FAILED] = tl.at[AN_FAILED] != 0;
    t->messages++;
    for (size_t s = 0; s < AN_NSTATES; s++) {
        t->n[s] += reached[s];
    }
    t->attempted += reached[AN_ACCEPTED] || reached[AN_FAILED];
    t->late_failures += reached[AN_FAILED] && tl.at[AN_DELIVERED] != 0;
    if (tl.at[AN_ACCEPTED] && tl.at[AN_SENT]) {
        an_hist_add(&t->lat[0], tl.at[AN_SENT] - tl.at[AN_ACCEPTED]);
    }
    if (tl.at[AN_SENT] && tl.at[AN_DELIVERED]) {
        an_hist_add(&t->lat[1], tl.at[AN_DELIVERED] - tl.at[AN_SENT]);
    }
    if (tl.at[AN_DELIVERED] && tl.at[AN_READ]) {
        an_hist_add(&t->lat[2], tl.at[AN_READ] - tl.at[AN_DELIVERED]);
    }
    if (tl.at[AN_ACCEPTED] && tl.at[AN_DELIVERED]) {
        an_hist_add(&t->delivery, tl.at[AN_DELIVERED] - tl.at[AN_ACCEPTED]);
    }
    if (reached[AN_FAILED]) {
        char key[32];

        const char *reason = json_string_value(json_object_get(doc, "reason"));

        /* Meta's code; else why wa-notify did not send it (opted_out, window, ...) */
        if (tl.error.has_code) {
            snprintf(key, sizeof(key), "%lld", (long long)tl.error.code);
        } else if (reason_key(reason)) {
            snprintf(key, sizeof(key), "%s", reason);
        } else {
            snprintf(key, sizeof(key), "none");
        }
        count_failure(t->failures, key, 1);
    }
    if (json_is_object(pricing)) {
        const char *cat = json_string_value(json_object_get(pricing, "category"));
        const char *type = json_string_value(json_object_get(pricing, "type"));
        const json_t *b = json_object_get(pricing, "billable");
        int billable = json_is_boolean(b) ? json_is_true(b) : -1;
        int64_t when = tl.at[AN_SENT] ? tl.at[AN_SENT] : num(doc, "at"), micros;
        enum an_category c;

        if (an_ratecard_cost(rc, json_string_value(json_object_get(doc, "country")), cat, type,
                             billable, when, &micros)) {
            if (micros > 0 && an_category_parse(cat, &c)) {
                t->cost_micros[c] += micros;
            }
        } else {
            t->unpriced++;
        }
    }
}

static void
hist_merge_sign(struct an_hist *into, const struct an_hist *from, int sign)
{
    if (sign > 0) {
        an_hist_merge(into, from);
        return;
    }
    for (size_t i = 0; i < AN_HIST_BUCKETS; i++) {
        into->n[i] -= from->n[i];
    }
    into->count -= from->count;
    into->sum_ms -= from->sum_ms;
}

/* into += sign * from; unsigned counts wrap, so a difference of two totals is exact */
static void
merge_sign(struct an_totals *into, const struct an_totals *from, int sign)
{
    uint64_t k = sign > 0 ? 1 : (uint64_t)-1;
    const char *key;
    json_t *v;

    into->messages += k * from->messages;
    for (size_t s = 0; s < AN_NSTATES; s++) {
        into->n[s] += k * from->n[s];
    }
    into->attempted += k * from->attempted;
    into->late_failures += k * from->late_failures;
    for (size_t i = 0; i < 3; i++) {
        hist_merge_sign(&into->lat[i], &from->lat[i], sign);
    }
    hist_merge_sign(&into->delivery, &from->delivery, sign);
    for (size_t c = 0; c < AN_NCATEGORIES; c++) {
        into->cost_micros[c] += sign * from->cost_micros[c];
    }
    into->unpriced += k * from->unpriced;
    into->business_initiated += k * from->business_initiated;
    into->replied += k * from->replied;
    into->inbound += k * from->inbound;
    hist_merge_sign(&into->first_response, &from->first_response, sign);
    json_object_foreach(from->failures, key, v)
    {
        count_failure(into->failures, key, k * (uint64_t)json_integer_value(v));
    }
}

void
an_totals_merge(struct an_totals *into, const struct an_totals *from)
{
    merge_sign(into, from, 1);
}

void
an_totals_subtract(struct an_totals *into, const struct an_totals *from)
{
    merge_sign(into, from, -1);
}

/* ---- JSON ---- */

static json_t *
rate(uint64_t num_, uint64_t den)
{
    return json_pack("{s:o, s:I, s:I}", "value",
                     den > 0 ? json_real(round((double)num_ / (double)den * 1e6) / 1e6)
                             : json_null(),
                     "numerator", (json_int_t)num_, "denominator", (json_int_t)den);
}

static json_t *
money(int64_t micros)
{
    return json_real((double)micros / 1e6);
}

json_t *
an_totals_json(const struct an_totals *t, const char *currency)
{
    json_t *totals = json_object(), *by_cat = json_object(), *fail = json_array(), *o;
    int64_t total = 0;
    const char *key;
    json_t *v;

    for (size_t s = 0; s < AN_NSTATES; s++) {
        (void)json_object_set_new(totals, an_state_name((enum an_state)s),
                                  json_integer((json_int_t)t->n[s]));
    }
    (void)json_object_set_new(totals, "attempted", json_integer((json_int_t)t->attempted));
    (void)json_object_set_new(totals, "late_failures", json_integer((json_int_t)t->late_failures));
    for (size_t c = 0; c < AN_NCATEGORIES; c++) {
        (void)json_object_set_new(by_cat, an_category_name((enum an_category)c),
                                  money(t->cost_micros[c]));
        total += t->cost_micros[c];
    }
    json_object_foreach(t->failures, key, v)
    {
        char *end;
        long long code = strtoll(key, &end, 10);
        bool has = *end == '\0' && end != key, named = !has && strcmp(key, "none") != 0;

        (void)json_array_append_new(
            fail, json_pack("{s:o, s:o, s:I, s:s}", "code", has ? json_integer(code) : json_null(),
                            "reason", named ? json_string(key) : json_null(), "count",
                            (json_int_t)json_integer_value(v), "meaning",
                            has     ? an_error_meaning(code)
                            : named ? reason_meaning(key)
                                    : ""));
    }
    o = json_pack(
        "{s:o, s:{s:o, s:o, s:o}, s:{s:o, s:o, s:o, s:o}, s:o, s:{s:s, s:o, s:I, s:o, s:I},"
        " s:{s:I}, s:o, s:o}",
        "totals", totals, "rates", "delivery", rate(t->n[AN_DELIVERED], t->n[AN_SENT]), "read",
        rate(t->n[AN_READ], t->n[AN_DELIVERED]), "failure", rate(t->n[AN_FAILED], t->attempted),
        "latency_ms", "accepted_to_sent", an_hist_json(&t->lat[0]), "sent_to_delivered",
        an_hist_json(&t->lat[1]), "delivered_to_read", an_hist_json(&t->lat[2]),
        "accepted_to_delivered", an_hist_json(&t->delivery), "failures_by_code", fail, "cost",
        "currency", currency != NULL ? currency : "", "total", money(total), "total_micros",
        (json_int_t)total, "by_category", by_cat, "unpriced", (json_int_t)t->unpriced, "inbound",
        "messages", (json_int_t)t->inbound, "reply_rate", rate(t->replied, t->business_initiated),
        "first_response_ms", an_hist_json(&t->first_response));
    return o;
}

/* ---- KPIs ---- */

void
an_kpis(const struct an_totals *t, struct an_kpi k[AN_NKPIS])
{
    double dr = t->n[AN_SENT] ? (double)t->n[AN_DELIVERED] / (double)t->n[AN_SENT] : NAN;
    double lat =
        t->delivery.count ? (double)t->delivery.sum_ms / (double)t->delivery.count / 1e3 : NAN;
    double rr = t->business_initiated ? (double)t->replied / (double)t->business_initiated : NAN;

    k[0] = (struct an_kpi){"delivery_rate", dr, ">", 0.98, 0.98, !isnan(dr) && dr > 0.98};
    k[1] = (struct an_kpi){"average_latency_seconds", lat, "<", 2.0, 2.0, !isnan(lat) && lat < 2.0};
    k[2] = (struct an_kpi){"reply_rate", rr,   "between",
                           0.12,         0.18, !isnan(rr) && rr >= 0.12 && rr <= 0.18};
}

json_t *
an_kpis_json(const struct an_kpi k[AN_NKPIS])
{
    json_t *a = json_array();
    bool all = true;

    for (size_t i = 0; i < AN_NKPIS; i++) {
        json_t *thr =
            strcmp(k[i].op, "between") == 0
                ? json_pack("{s:s, s:f, s:f}", "op", k[i].op, "min", k[i].lo, "max", k[i].hi)
                : json_pack("{s:s, s:f}", "op", k[i].op, "value", k[i].lo);

        (void)json_array_append_new(
            a, json_pack("{s:s, s:o, s:o, s:b}", "name", k[i].name, "value",
                         isnan(k[i].value) ? json_null() : json_real(round(k[i].value * 1e6) / 1e6),
                         "threshold", thr, "pass", k[i].pass));
        all = all && k[i].pass;
    }
    return json_pack("{s:o, s:b}", "kpis", a, "pass", all);
}

const char *
an_error_meaning(int64_t code)
{
    const struct wa_whatsapp_error_info *e = wa_whatsapp_error_lookup(code);

    return e != NULL ? e->title : "";
}
