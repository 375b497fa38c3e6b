/*
 * query.c: the query parameters of /v1/analytics/summary, /series and /kpis (pure): period,
 * time zone, granularity and filters, each rejected with the parameter named.
 */
#include <stdio.h>
#include <string.h>

#include "analytics.h"
#include "wa/contract_outbound.h"

#define DAY_MS      86400000LL
#define MAX_SPAN_MS (400 * DAY_MS)

/* RFC 3339, or YYYY-MM-DD meaning local midnight in tz. */
static bool
parse_time(const char *s, const struct an_tz *tz, int64_t *out)
{
    int y, m, d;
    char tail;

    if (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3) {
        char full[32];
        int64_t local;

        snprintf(full, sizeof(full), "%.10sT00:00:00Z", s);
        if (wa_contract_time_parse(full, &local) != WA_OK) {
            return false;
        }
        /* local midnight: shift by the offset in force then (twice, to settle across a change) */
        *out = local - (int64_t)an_tz_offset(tz, local) * 1000;
        *out = local - (int64_t)an_tz_offset(tz, *out) * 1000;
        return true;
    }
    return wa_contract_time_parse(s, out) == WA_OK;
}

static enum wa_err
filter(an_param_fn get, void *arg, const char *name, const char **out, struct wa_error *error)
{
    const char *v = get(arg, name);

    *out = NULL;
    if (v == NULL) {
        return WA_OK;
    }
    if (v[0] == '\0' || strlen(v) > 128) {
        return wa_error_set(error, WA_EINVAL, "%s: 1 to 128 characters", name);
    }
    *out = v;
    return WA_OK;
}

enum wa_err
an_query_parse(an_param_fn get, void *arg, int64_t now_ms, const struct an_tz *tz,
               struct an_query *q, struct wa_error *error)
{
    const char *from = get(arg, "from"), *to = get(arg, "to"), *g = get(arg, "granularity");
    enum an_category c;
    enum wa_err err;

    memset(q, 0, sizeof(*q));
    q->granularity = AN_DAY;
    q->to_ms = now_ms;
    if (to != NULL && !parse_time(to, tz, &q->to_ms)) {
        return wa_error_set(error, WA_EINVAL, "to: an RFC 3339 time or YYYY-MM-DD");
    }
    q->from_ms = q->to_ms - 7 * DAY_MS;
    if (from != NULL && !parse_time(from, tz, &q->from_ms)) {
        return wa_error_set(error, WA_EINVAL, "from: an RFC 3339 time or YYYY-MM-DD");
    }
    if (q->to_ms <= q->from_ms) {
        return wa_error_set(error, WA_EINVAL, "to: must be after from");
    }
    if (q->to_ms - q->from_ms > MAX_SPAN_MS) {
        return wa_error_set(error, WA_EINVAL, "from: at most 400 days before to");
    }
    if (g != NULL && !an_granularity_parse(g, &q->granularity)) {
        return wa_error_set(error, WA_EINVAL, "granularity: half_hour, hour, day or month");
    }
    if ((err = filter(get, arg, "phone_number_id", &q->phone_number_id, error)) != WA_OK ||
        (err = filter(get, arg, "template", &q->template_name, error)) != WA_OK ||
        (err = filter(get, arg, "category", &q->category, error)) != WA_OK ||
        (err = filter(get, arg, "country", &q->country, error)) != WA_OK) {
        return err;
    }
    if (q->category != NULL && !an_category_parse(q->category, &c)) {
        return wa_error_set(error, WA_EINVAL,
                            "category: marketing, utility, authentication or service");
    }
    if (q->country != NULL && strspn(q->country, "0123456789") != strlen(q->country)) {
        return wa_error_set(error, WA_EINVAL, "country: a calling code (digits)");
    }
    return WA_OK;
}

static bool
eq(const json_t *doc, const char *key, const char *want)
{
    const char *v;

    if (want == NULL) {
        return true;
    }
    v = json_string_value(json_object_get(doc, key));
    return v != NULL && strcmp(v, want) == 0;
}

bool
an_query_match(const struct an_query *q, const json_t *doc)
{
    const char *cat = json_string_value(json_object_get(doc, "category"));

    if (cat == NULL) { /* a status-only message: the category Meta priced it in */
        cat = json_string_value(json_object_get(json_object_get(doc, "pricing"), "category"));
    }
    return eq(doc, "phone_number_id", q->phone_number_id) &&
           eq(doc, "template", q->template_name) && eq(doc, "country", q->country) &&
           (q->category == NULL || (cat != NULL && strcmp(cat, q->category) == 0));
}
