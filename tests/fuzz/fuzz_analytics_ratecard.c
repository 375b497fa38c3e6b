/*
 * fuzz_analytics_ratecard.c: libFuzzer driver for wa-analytics' rate card parser
 * (an_ratecard_parse) and the TZif reader (an_tz_parse) on the same bytes. Invariants beyond
 * "no crash, no sanitizer report": an accepted card has a three-letter currency, digit calling
 * codes, non-negative prices, entries sorted with no two on one date, and every cost it
 * answers is one of its prices or 0; a rejected one says why and holds nothing. An accepted
 * zone has offsets within a day and ascending transitions.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_card(const uint8_t *data, size_t size)
{
    struct an_ratecard rc;
    struct wa_error error = {0};
    int64_t m;

    if (an_ratecard_parse((const char *)data, size, &rc, &error) != WA_OK) {
        if (error.message[0] == '\0' || rc.rates != NULL || rc.n != 0) {
            abort();
        }
        return;
    }
    if (strlen(rc.currency) != 3) {
        abort();
    }
    for (size_t i = 0; i < rc.n; i++) {
        const struct an_rate *r = &rc.rates[i];

        if (r->calling_code[0] == '\0' ||
            strspn(r->calling_code, "0123456789") != strlen(r->calling_code)) {
            abort();
        }
        for (size_t c = 0; c < AN_NCATEGORIES; c++) {
            if (r->micros[c] < 0) {
                abort();
            }
        }
        if (i > 0 && strcmp(rc.rates[i - 1].calling_code, r->calling_code) == 0 &&
            rc.rates[i - 1].effective_ms >= r->effective_ms) {
            abort();
        }
        if (an_ratecard_cost(&rc, r->calling_code, "marketing", "regular", 1, r->effective_ms,
                             &m) &&
            m != r->micros[AN_MARKETING]) {
            abort();
        }
        if (an_ratecard_country(&rc, r->calling_code) == NULL) {
            abort();
        }
    }
    an_ratecard_free(&rc);
}

static void
check_zone(const uint8_t *data, size_t size)
{
    struct an_tz tz;
    struct wa_error error = {0};

    memset(&tz, 0, sizeof(tz));
    if (an_tz_parse(data, size, &tz, &error) != WA_OK) {
        if (tz.when != NULL || tz.offset != NULL) {
            abort();
        }
        return;
    }
    for (size_t i = 0; i < tz.n; i++) {
        if (tz.offset[i] < -86400 || tz.offset[i] > 86400 ||
            (i > 0 && tz.when[i] < tz.when[i - 1])) {
            abort();
        }
    }
    (void)an_tz_offset(&tz, 0);
    an_tz_free(&tz);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_card(data, size);
    check_zone(data, size);
    return 0;
}
