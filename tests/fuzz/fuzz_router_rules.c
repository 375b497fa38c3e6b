/*
 * fuzz_router_rules.c: libFuzzer driver for wa-router's rules-file parser rt_rules_parse()
 * (operator input) and for what it compiles: a parsed ruleset is evaluated against a few fixed
 * messages and against the input itself as message text, normalised with rt_text_normalize()
 * (inbound customer text, external input). Invariants checked beyond "no crash, no sanitizer
 * report": a rejected file leaves *out NULL and names its first problem; normalised text ends
 * with a NUL within its buffer at the length returned; a decision lists at most
 * RT_MATCH_MAX rules, in order, each an index into the ruleset.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

#define FUZZ_NORM_MAX 1024
#define FUZZ_NOW_MS   1795268758000LL /* 2026-11-21T13:45:58Z, a Saturday */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_decision(const struct rt_ruleset *rs, const struct rt_decision *d)
{
    if (d->n > RT_MATCH_MAX) {
        abort();
    }
    for (size_t i = 0; i < d->n; i++) {
        if (d->rule[i] >= rs->nrules || (i > 0 && d->rule[i] <= d->rule[i - 1])) {
            abort();
        }
    }
}

static void
evaluate(const struct rt_ruleset *rs, const char *type, const char *text, size_t len)
{
    static const char *const tags[] = {"vip", "wants-agent"};
    char norm[FUZZ_NORM_MAX];
    struct rt_decision d;
    struct rt_msg msg = {
        .type = type,
        .text = text,
        .norm = norm,
        .reply_id = "btn-1",
        .payload = "PAYLOAD",
        .phone_number_id = "100000000000001",
        .contact = "15551234567",
        .to = "15551234567",
        .wamid = "wamid.HBgL",
        .profile_name = "Ana",
        .ts_ms = FUZZ_NOW_MS,
        .now_ms = FUZZ_NOW_MS,
        .first = len % 2 == 0,
        .attrs_known = true,
        .tags = tags,
        .ntags = 2,
        .language = "es",
    };

    (void)rt_text_normalize(text, len, norm, sizeof(norm));
    rt_rules_evaluate(rs, &msg, &d);
    check_decision(rs, &d);
}

static void
check_normalize(const char *s, size_t len)
{
    char out[64]; /* small, so the bound is reached */
    size_t n;

    memset(out, 'X', sizeof(out));
    n = rt_text_normalize(s, len, out, sizeof(out));
    if (n >= sizeof(out) || out[n] != '\0') {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct rt_ruleset *rs = (struct rt_ruleset *)1;
    struct wa_error error = {0};
    struct wa_buf errors;
    char *copy;

    check_normalize(text, size);
    wa_buf_init(&errors, 64 * 1024);
    if (rt_rules_parse(text, size, "fuzz.json", &rs, &errors, &error) != WA_OK) {
        if (rs != NULL || error.message[0] == '\0') {
            abort();
        }
        wa_buf_cleanup(&errors);
        return 0;
    }
    if (rs == NULL) {
        abort();
    }
    evaluate(rs, "text", "Price list?", 11);
    evaluate(rs, "interactive", "\xd8\xa5\xd9\x84\xd8\xba\xd8\xa7\xd8\xa1", 10);
    evaluate(rs, "button", "STOP", 4);
    /* The input itself as message text (NUL-terminated copy, like a decoded JSON string). */
    if ((copy = malloc(size + 1)) != NULL) {
        memcpy(copy, data, size);
        copy[size] = '\0';
        evaluate(rs, "text", copy, strlen(copy));
        free(copy);
    }
    rt_rules_unref(rs);
    wa_buf_cleanup(&errors);
    return 0;
}
