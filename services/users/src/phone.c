/*
 * phone.c: per-country checks of an international number (calling code, then the national
 * number's length and leading digits), pure, over the generated table phone_table.c
 * (services/users/gen/phone_table.py, from libphonenumber's metadata). The rule of a number is
 * the entry of its calling code with the longest prefix its national number starts with; the
 * number is valid when that entry allows its length.
 *
 * Threading: any thread; the table is constant.
 */
#include <stdio.h>
#include <string.h>

#include "users.h"

/* (cc, prefix) ordered as the generator sorts them; -1, 0, 1 */
static int
rule_cmp(unsigned cc, const char *prefix, size_t plen, const struct us_phone_rule *r)
{
    int c;

    if (cc != r->cc) {
        return cc < r->cc ? -1 : 1;
    }
    c = strncmp(prefix, r->prefix, plen);
    if (c != 0) {
        return c;
    }
    return r->prefix[plen] == '\0' ? 0 : -1;
}

static const struct us_phone_rule *
rule_find(unsigned cc, const char *prefix, size_t plen)
{
    size_t lo = 0, hi = us_phone_nrules;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = rule_cmp(cc, prefix, plen, &us_phone_rules[mid]);

        if (c == 0) {
            return &us_phone_rules[mid];
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

/* true when some rule has calling code cc */
static bool
cc_known(unsigned cc)
{
    size_t lo = 0, hi = us_phone_nrules;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (us_phone_rules[mid].cc == cc) {
            return true;
        }
        if (us_phone_rules[mid].cc < cc) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

enum wa_err
us_phone_check(const char *digits, const char **why)
{
    size_t n = strlen(digits), cclen;
    unsigned cc = 0;
    const char *nat;
    size_t natlen, k;
    bool known = false;

    if (why != NULL) {
        *why = NULL;
    }
    /* calling codes are prefix-free: at most one of the first 1..3 digits is one */
    for (cclen = 1; cclen <= 3 && cclen < n; cclen++) {
        cc = cc * 10 + (unsigned)(digits[cclen - 1] - '0');
        if (cc_known(cc)) {
            known = true;
            break;
        }
    }
    if (!known) {
        if (why != NULL) {
            *why = "no country uses this calling code";
        }
        return WA_EINVAL;
    }
    nat = digits + cclen;
    natlen = n - cclen;
    for (k = natlen < US_PHONE_PREFIX_MAX ? natlen : US_PHONE_PREFIX_MAX;; k--) {
        const struct us_phone_rule *r = rule_find(cc, nat, k);

        if (r != NULL) {
            if (natlen < 32 && (r->lengths >> natlen & 1u) != 0) {
                return WA_OK;
            }
            break;
        }
        if (k == 0) {
            break;
        }
    }
    if (why != NULL) {
        *why = "the number's length or leading digits are not valid for its country";
    }
    return WA_EINVAL;
}
