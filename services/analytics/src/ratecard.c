/*
 * ratecard.c: the rate card file (README.md, "Rate card") and the cost of one priced message
 * (pure). Prices are kept in integer micro-units of the card's currency, so the cost of a day
 * is an exact sum.
 */
#define _DEFAULT_SOURCE /* timegm */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics.h"

static const char *const category_names[AN_NCATEGORIES] = {
    "marketing",
    "utility",
    "authentication",
    "service",
};

bool
an_category_parse(const char *s, enum an_category *out)
{
    for (size_t i = 0; s != NULL && i < AN_NCATEGORIES; i++) {
        if (strcmp(s, category_names[i]) == 0) {
            *out = (enum an_category)i;
            return true;
        }
    }
    return false;
}

const char *
an_category_name(enum an_category c)
{
    return (unsigned)c < AN_NCATEGORIES ? category_names[c] : NULL;
}

void
an_ratecard_free(struct an_ratecard *rc)
{
    free(rc->rates);
    rc->rates = NULL;
    rc->n = 0;
}

/* "YYYY-MM-DD" -> UTC midnight in ms. */
static bool
parse_date(const char *s, int64_t *out)
{
    int y, m, d;
    char tail;
    struct tm tm;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (s == NULL || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 ||
        s[4] != '-' || s[7] != '-' || y < 2000 || y > 2200 || m < 1 || m > 12 || d < 1 ||
        d > mdays[m - 1]) {
        return false;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    *out = (int64_t)timegm(&tm) * 1000;
    return true;
}

static int
rate_cmp(const void *a, const void *b)
{
    const struct an_rate *x = a, *y = b;
    int c = strcmp(x->calling_code, y->calling_code);

    if (c != 0) {
        return c;
    }
    return (x->effective_ms > y->effective_ms) - (x->effective_ms < y->effective_ms);
}

static enum wa_err
parse_rate(const json_t *e, size_t i, struct an_rate *r, struct wa_error *error)
{
    const char *cc = json_string_value(json_object_get(e, "calling_code"));
    const char *country = json_string_value(json_object_get(e, "country"));
    const char *eff = json_string_value(json_object_get(e, "effective"));
    size_t n;

    memset(r, 0, sizeof(*r));
    if (!json_is_object(e)) {
        return wa_error_set(error, WA_EPARSE, "rates[%zu]: not an object", i);
    }
    n = cc != NULL ? strlen(cc) : 0;
    if (n == 0 || n >= sizeof(r->calling_code) || strspn(cc, "0123456789") != n) {
        return wa_error_set(error, WA_EPARSE, "rates[%zu].calling_code: 1-7 digits", i);
    }
    memcpy(r->calling_code, cc, n + 1);
    if (country != NULL) {
        if (strlen(country) != 2) {
            return wa_error_set(error, WA_EPARSE, "rates[%zu].country: two letters", i);
        }
        memcpy(r->country, country, 3);
    }
    if (!parse_date(eff, &r->effective_ms)) {
        return wa_error_set(error, WA_EPARSE, "rates[%zu].effective: YYYY-MM-DD", i);
    }
    for (size_t c = 0; c < AN_NCATEGORIES; c++) {
        const json_t *v = json_object_get(e, category_names[c]);
        double p;

        if (v == NULL) {
            continue; /* 0: free */
        }
        if (!json_is_number(v) || !((p = json_number_value(v)) >= 0.0) || p > 1000.0) {
            return wa_error_set(error, WA_EPARSE, "rates[%zu].%s: a price from 0 to 1000", i,
                                category_names[c]);
        }
        r->micros[c] = llround(p * 1e6);
    }
    return WA_OK;
}

enum wa_err
an_ratecard_parse(const char *text, size_t len, struct an_ratecard *rc, struct wa_error *error)
{
    json_t *root = NULL, *rates;
    const char *cur;
    enum wa_err err;

    memset(rc, 0, sizeof(*rc));
    if ((err = wa_json_parse(text, len, 8, &root, error)) != WA_OK) {
        return err;
    }
    cur = json_string_value(json_object_get(root, "currency"));
    rates = json_object_get(root, "rates");
    if (cur == NULL || strlen(cur) != 3) {
        json_decref(root);
        return wa_error_set(error, WA_EPARSE, "currency: a three-letter code");
    }
    if (!json_is_array(rates) || json_array_size(rates) > 10000) {
        json_decref(root);
        return wa_error_set(error, WA_EPARSE, "rates: an array of at most 10000 entries");
    }
    memcpy(rc->currency, cur, 4);
    rc->rates = calloc(json_array_size(rates) + 1, sizeof(*rc->rates));
    if (rc->rates == NULL) {
        json_decref(root);
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < json_array_size(rates); i++) {
        if ((err = parse_rate(json_array_get(rates, i), i, &rc->rates[i], error)) != WA_OK) {
            json_decref(root);
            an_ratecard_free(rc);
            return err;
        }
        rc->n++;
    }
    json_decref(root);
    qsort(rc->rates, rc->n, sizeof(*rc->rates), rate_cmp);
    for (size_t i = 1; i < rc->n; i++) {
        if (rate_cmp(&rc->rates[i - 1], &rc->rates[i]) == 0) {
            err = wa_error_set(error, WA_EPARSE,
                               "calling code %s has two rates effective on "
                               "the same date",
                               rc->rates[i].calling_code);
            an_ratecard_free(rc);
            return err;
        }
    }
    return WA_OK;
}

const char *
an_ratecard_country(const struct an_ratecard *rc, const char *contact)
{
    const char *best = NULL;
    size_t best_len = 0;

    if (rc == NULL || contact == NULL) {
        return NULL;
    }
    if (*contact == '+') {
        contact++;
    }
    for (size_t i = 0; i < rc->n; i++) {
        size_t n = strlen(rc->rates[i].calling_code);
        if (n > best_len && strncmp(contact, rc->rates[i].calling_code, n) == 0) {
            best = rc->rates[i].calling_code;
            best_len = n;
        }
    }
    return best;
}

bool
an_ratecard_cost(const struct an_ratecard *rc, const char *calling_code, const char *category,
                 const char *pricing_type, int billable, int64_t t_ms, int64_t *micros)
{
    enum an_category c;
    const struct an_rate *hit = NULL;

    *micros = 0;
    if (pricing_type != NULL ? strcmp(pricing_type, "regular") != 0 : billable == 0) {
        return true; /* free customer service, free entry point, or not billable */
    }
    if (rc == NULL || calling_code == NULL || !an_category_parse(category, &c)) {
        return false;
    }
    for (size_t i = 0; i < rc->n; i++) {
        if (strcmp(rc->rates[i].calling_code, calling_code) == 0 &&
            rc->rates[i].effective_ms <= t_ms) {
            hit = &rc->rates[i]; /* sorted by date: the last one in force wins */
        }
    }
    if (hit == NULL) {
        return false;
    }
    *micros = hit->micros[c];
    return true;
}

enum wa_err
an_ratecard_load(const char *path, struct an_ratecard *rc, struct wa_error *error)
{
    FILE *f;
    char *text;
    size_t len;
    enum wa_err err;

    if (path == NULL || path[0] == '\0') {
        return WA_OK;
    }
    if ((f = fopen(path, "rb")) == NULL) {
        return wa_error_set(error, WA_ECONFIG, "WA_ANALYTICS_RATECARD: cannot open %s", path);
    }
    text = malloc(4 << 20);
    len = text != NULL ? fread(text, 1, 4 << 20, f) : 0;
    fclose(f);
    if (text == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    err = an_ratecard_parse(text, len, rc, error);
    free(text);
    if (err != WA_OK) {
        char msg[sizeof(error->message)];

        snprintf(msg, sizeof(msg), "%s", error->message);
        return wa_error_set(error, WA_ECONFIG, "WA_ANALYTICS_RATECARD %s: %s", path, msg);
    }
    return WA_OK;
}
