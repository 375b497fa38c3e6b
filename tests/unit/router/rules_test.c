/*
 * rules_test.c: validation of wa-router's rules file (services/router/src/rules.c): errors
 * name the rule and the field; the shipped defaults load and decide as documented.
 */
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa_test.h"

/* Parses json; returns the error lines (new string, free) or NULL when accepted. */
static char *
errors_of(const char *json)
{
    struct rt_ruleset *rs = NULL;
    struct wa_buf errors;
    struct wa_error error = {0};
    enum wa_err err;

    wa_buf_init(&errors, 0);
    err = rt_rules_parse(json, strlen(json), "t.json", &rs, &errors, &error);
    if (err == WA_OK) {
        assert_non_null(rs);
        rt_rules_unref(rs);
        wa_buf_cleanup(&errors);
        return NULL;
    }
    assert_int_equal(err, WA_ECONFIG);
    assert_null(rs);
    assert_non_null(strstr(error.message, "t.json: "));
    return wa_buf_steal(&errors);
}

static void
expect_error(const char *json, const char *needle)
{
    char *e = errors_of(json);

    if (e == NULL || strstr(e, needle) == NULL) {
        fail_msg("expected \"%s\" in:\n%s", needle, e != NULL ? e : "(accepted)");
    }
    free(e);
}

static void
rules__errors__name_rule_and_field(void **state)
{
    (void)state;
    expect_error("[1]", "file: top level must be an object");
    expect_error("{\"rules\":[}", "file: not valid JSON");
    expect_error("{\"rules\":[{\"name\":\"a\",\"actions\":[]}]}",
                 "rule 0 \"a\": actions: 1 to 16 actions required");
    expect_error("{\"rules\":[{\"name\":\"ok\",\"actions\":[{\"tag\":\"x\"}]},"
                 "{\"name\":\"price\",\"match\":{\"keywords\":{\"exact\":[\"a\",7]}},"
                 "\"actions\":[{\"tag\":\"x\"}]}]}",
                 "rule 1 \"price\": match.keywords.exact[1]: must be a non-empty string");
    expect_error("{\"rules\":[{\"name\":\"r\",\"match\":{\"regex\":\"(\"},"
                 "\"actions\":[{\"tag\":\"x\"}]}]}",
                 "rule 0 \"r\": match.regex: does not compile");
    expect_error("{\"rules\":[{\"name\":\"r\",\"match\":{\"typo\":1},"
                 "\"actions\":[{\"tag\":\"x\"}]}]}",
                 "rule 0 \"r\": match.typo: unknown key");
    expect_error("{\"rules\":[{\"name\":\"r\",\"actions\":[{\"forward\":\"crm\"}]}]}",
                 "rule 0 \"r\": actions[0].forward: destination \"crm\" is not defined");
    expect_error("{\"rules\":[{\"name\":\"r\",\"actions\":[{\"reply\":{\"text\":\"\"}}]}]}",
                 "rule 0 \"r\": actions[0].reply.text: rejected by the Cloud API rules");
    expect_error("{\"rules\":[{\"name\":\"r\",\"actions\":[{\"handoff\":{\"queue\":\"q\","
                 "\"priority\":\"urgent\"}}]}]}",
                 "rule 0 \"r\": actions[0].handoff.priority: must be high, medium or low");
    expect_error("{\"rules\":[{\"name\":\"r\",\"actions\":[{\"tag\":\"x\"}]},"
                 "{\"name\":\"r\",\"actions\":[{\"tag\":\"x\"}]}]}",
                 "rule 1 \"r\": name: duplicate of rule 0");
    expect_error("{\"rules\":[{\"name\":\"r\",\"match\":{\"hours\":{\"tz\":\"Nowhere/X\","
                 "\"from\":\"09:00\",\"to\":\"25:00\"}},\"actions\":[{\"tag\":\"x\"}]}]}",
                 "rule 0 \"r\": match.hours.tz: must name a time zone");
    expect_error("{\"rules\":[{\"name\":\"r\",\"actions\":[{\"remind\":{\"id\":\"x\","
                 "\"after\":\"soon\",\"actions\":[{\"tag\":\"t\"}]}}]}]}",
                 "rule 0 \"r\": actions[0].remind.after: must be a positive duration");
    expect_error("{\"rules\":[{\"name\":\"r\",\"actions\":[{\"remind\":{\"id\":\"x\","
                 "\"after\":\"1h\",\"actions\":[{\"remind\":{}}]}}]}]}",
                 "actions[0].remind.actions[0].remind: a reminder cannot schedule another");
    expect_error("{\"destinations\":{\"crm\":{\"url\":\"ftp://x\"}},\"rules\":[]}",
                 "destination \"crm\": url: required, http:// or https://");
    expect_error("{\"destinations\":{\"crm\":{\"url\":\"http://crm.example/h\","
                 "\"unsigned\":true}},\"rules\":[]}",
                 "destination \"crm\": url: plain http:// sends customer data unencrypted");
    expect_error("{\"destinations\":{\"crm\":{\"url\":\"https://crm.example/h\"}},"
                 "\"rules\":[]}",
                 "destination \"crm\": secret_env: required");
    expect_error("{\"destinations\":{\"crm\":{\"url\":\"https://crm.example/h\","
                 "\"unsigned\":\"yes\"}},\"rules\":[]}",
                 "destination \"crm\": unsigned: must be true or false");
}

static void
rules__several_problems__all_reported(void **state)
{
    char *e = errors_of("{\"rules\":[{\"name\":\"a b\",\"actions\":[{\"bogus\":1}]},"
                        "{\"name\":\"c\",\"then\":\"maybe\",\"actions\":[{\"tag\":\"x\"}]}]}");

    (void)state;
    assert_non_null(e);
    assert_non_null(strstr(e, "name: required"));
    assert_non_null(strstr(e, "actions[0].bogus: unknown action"));
    assert_non_null(strstr(e, "rule 1 \"c\": then: must be \"stop\" or \"continue\""));
    free(e);
}

static void
rules__complete_file__accepted(void **state)
{
    static const char json[] =
        "{\"version\":1,\"destinations\":{\"crm\":{\"url\":\"http://127.0.0.1:9/hook\","
        "\"allow_http\":true,\"unsigned\":true,"
        "\"rate_per_s\":5,\"batch_max\":10,\"batch_wait\":\"100ms\",\"max_attempts\":3,"
        "\"backoff_initial\":\"200ms\"}},"
        "\"rules\":[{\"name\":\"all\",\"match\":{\"type\":[\"text\"],"
        "\"keywords\":{\"contains\":\"help\"},\"hours\":{\"tz\":\"Europe/Paris\","
        "\"days\":\"mon-fri\",\"from\":\"09:00\",\"to\":\"18:00\"},\"first_message\":false},"
        "\"actions\":[{\"reply\":{\"template\":{\"name\":\"hello_world\",\"language\":"
        "{\"code\":\"en_US\"}},\"category\":\"utility\"}},"
        "{\"reply\":{\"image\":{\"link\":\"https://example.com/p.png\",\"caption\":\"{{name}}\"}}},"
        "{\"forward\":{\"destination\":\"crm\"}},"
        "{\"handoff\":{\"queue\":\"sales\",\"priority\":\"high\"}},"
        "{\"set_attribute\":{\"name\":\"language\",\"value\":\"fr\"}},"
        "{\"remind\":{\"id\":\"escalate\",\"after\":\"4h\",\"cancel_on\":\"business_reply\","
        "\"actions\":[{\"handoff\":{\"queue\":\"escalations\",\"priority\":\"high\"}}]}}]}]}";
    struct rt_ruleset *rs = NULL;
    struct wa_buf errors;

    (void)state;
    wa_buf_init(&errors, 0);
    assert_int_equal(rt_rules_parse(json, strlen(json), "x", &rs, &errors, NULL), WA_OK);
    assert_int_equal(rs->nrules, 1);
    assert_int_equal(rs->ndests, 1);
    assert_int_equal(rs->dests[0].batch_max, 10);
    assert_int_equal(rs->dests[0].batch_wait_ms, 100);
    assert_int_equal(rs->rules[0].nactions, 6);
    assert_int_equal(rs->rules[0].actions[5].after_ms, 4 * 3600 * 1000);
    assert_string_equal(rs->rules[0].actions[0].reply_type, "template");
    assert_true(rs->rules[0].match.hours.set);
    assert_int_equal(rs->rules[0].match.hours.days, 0x3E);
    rt_rules_unref(rs);
    wa_buf_cleanup(&errors);
}

static const char *
decide(const struct rt_ruleset *rs, const char *type, const char *text)
{
    char norm[512];
    struct rt_msg m = {0};
    struct rt_decision d;

    m.type = type;
    m.text = text;
    rt_text_normalize(text, strlen(text), norm, sizeof(norm));
    m.norm = norm;
    rt_rules_evaluate(rs, &m, &d);
    return d.n > 0 ? rs->rules[d.rule[0]].name : "-";
}

static void
defaults__shipped_file__opt_out_and_price(void **state)
{
    struct rt_ruleset *rs = NULL;
    struct wa_buf errors;
    struct wa_error error = {0};

    (void)state;
    wa_buf_init(&errors, 0);
    if (rt_rules_load(RT_DEFAULT_RULES, &rs, &errors, &error) != WA_OK) {
        fail_msg("%s\n%s", error.message, errors.data);
    }
    assert_string_equal(decide(rs, "text", "STOP"), "opt-out");
    assert_string_equal(decide(rs, "text", "Unsubscribe."), "opt-out");
    assert_string_equal(decide(rs, "text", "إلغاء"), "opt-out");
    assert_string_equal(decide(rs, "text", "الغاء الاشتراك"), "opt-out");
    assert_string_equal(decide(rs, "text", "Price"), "price");
    assert_string_equal(decide(rs, "text", "what is the price list?"), "price");
    assert_string_equal(decide(rs, "text", "الأسعار"), "price");
    assert_string_equal(decide(rs, "text", "Hi, what is the PRICE of the blue one?"), "price");
    assert_string_equal(decide(rs, "text", "كم السعر؟ شكرا"), "price");
    assert_string_equal(decide(rs, "text", "START"), "opt-in");
    assert_string_equal(decide(rs, "text", "hello"), "-");
    assert_string_equal(decide(rs, "text", "the priced items, priceless"), "-");
    assert_string_equal(decide(rs, "text", "please don't stop the music"), "-");
    assert_string_equal(decide(rs, "image", "price"), "-");
    assert_int_equal(rs->rules[0].actions[0].kind, RT_ACT_OPT_OUT);
    assert_int_equal(rs->rules[0].actions[1].kind, RT_ACT_REPLY);
    rt_rules_unref(rs);
    wa_buf_cleanup(&errors);
}

/* word: a whole word anywhere, bounded by the ends, spaces or punctuation, in any case */
static void
keywords__word__whole_word_anywhere_any_case(void **state)
{
    static const char file[] =
        "{\"version\":1,\"rules\":[{\"name\":\"w\",\"match\":{\"keywords\":{\"word\":"
        "[\"price\",\"price list\",\"سعر\"]}},\"actions\":[{\"tag\":[\"x\"]}]}]}";
    struct rt_ruleset *rs = NULL;
    struct wa_buf errors;

    (void)state;
    wa_buf_init(&errors, 0);
    assert_int_equal(rt_rules_parse(file, strlen(file), "t", &rs, &errors, NULL), WA_OK);
    assert_string_equal(decide(rs, "text", "PRICE"), "w");
    assert_string_equal(decide(rs, "text", "the Price, please"), "w");
    assert_string_equal(decide(rs, "text", "(price)"), "w");
    assert_string_equal(decide(rs, "text", "send the PRICE LIST now"), "w");
    assert_string_equal(decide(rs, "text", "ما هو سعر، هذا"), "w");
    assert_string_equal(decide(rs, "text", "prices"), "-");
    assert_string_equal(decide(rs, "text", "overprice"), "-");
    assert_string_equal(decide(rs, "text", "pricelist"), "-");
    rt_rules_unref(rs);
    wa_buf_cleanup(&errors);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rules__errors__name_rule_and_field),
        cmocka_unit_test(rules__several_problems__all_reported),
        cmocka_unit_test(rules__complete_file__accepted),
        cmocka_unit_test(defaults__shipped_file__opt_out_and_price),
        cmocka_unit_test(keywords__word__whole_word_anywhere_any_case),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
