/*
 * match_test.c: wa-router's text normalisation, rule conditions, business hours and template
 * variables (services/router/src/match.c), through rules parsed from JSON like the daemon's.
 */
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa_test.h"

static void
norm_is(const char *in, const char *want)
{
    char out[256];

    rt_text_normalize(in, strlen(in), out, sizeof(out));
    assert_string_equal(out, want);
}

static void
normalize__latin_case_and_diacritics__folded(void **state)
{
    (void)state;
    norm_is("PRICE", "price");
    norm_is("  Précio   ÀÉÎÕÜ ", "precio aeiou");
    norm_is("Straße Œuvre Łódź Ĳssel", "strasse oeuvre lodz ijssel");
    norm_is("cafe\xcc\x81", "cafe"); /* combining acute accent stripped */
    norm_is("ΤΙΜΉ Цена Ёж", "τιμη цена еж");
}

static void
normalize__arabic_forms__unified(void **state)
{
    (void)state;
    /* harakat and tatweel stripped; alef with hamza -> alef; teh marbuta -> heh */
    norm_is("إِلْغَاء", "الغاء");
    norm_is("الأســعار", "الاسعار");
    norm_is("قائمة", "قايمه"); /* yeh with hamza -> yeh */
    norm_is("مستشفى", "مستشفي");
    norm_is("١٢٣ ۴۵", "123 45");
}

static void
normalize__invalid_utf8_and_bounds__safe(void **state)
{
    char out[8];

    (void)state;
    norm_is("ab\xff\xfe"
            "c",
            "abc");
    assert_int_equal(rt_text_normalize("abcdefghijkl", 12, out, sizeof(out)), 7);
    assert_string_equal(out, "abcdefg");
    /* never cuts a multi-byte character */
    rt_text_normalize("abcdeféé", strlen("abcdeféé"), out, sizeof(out));
    assert_string_equal(out, "abcdefe");
}

static struct rt_ruleset *
parse(const char *json)
{
    struct rt_ruleset *rs = NULL;
    struct wa_buf errors;
    struct wa_error error = {0};

    wa_buf_init(&errors, 0);
    if (rt_rules_parse(json, strlen(json), "test", &rs, &errors, &error) != WA_OK) {
        fail_msg("rules rejected: %s", errors.data);
    }
    wa_buf_cleanup(&errors);
    return rs;
}

static struct rt_msg
text_msg(const char *text, char *norm, size_t size)
{
    struct rt_msg m = {0};

    m.type = "text";
    m.text = text;
    rt_text_normalize(text, strlen(text), norm, size);
    m.norm = norm;
    m.contact = "16505551234";
    m.to = "16505551234";
    m.phone_number_id = "100000000000001";
    m.wamid = "wamid.1";
    m.profile_name = "Ada Lovelace";
    m.now_ms = 1700000000000;
    return m;
}

static const char *
first_rule(const struct rt_ruleset *rs, const struct rt_msg *m)
{
    struct rt_decision d;

    rt_rules_evaluate(rs, m, &d);
    return d.n > 0 ? rs->rules[d.rule[0]].name : NULL;
}

static const char *
decide(const struct rt_ruleset *rs, const char *text)
{
    char norm[512];
    struct rt_msg m = text_msg(text, norm, sizeof(norm));
    static char name[RT_NAME_MAX];
    const char *r = first_rule(rs, &m);

    snprintf(name, sizeof(name), "%s", r != NULL ? r : "-");
    return name;
}

static const char keyword_rules[] =
    "{\"rules\":["
    "{\"name\":\"stop\",\"match\":{\"keywords\":{\"exact\":[\"STOP\",\"إلغاء\"]}},"
    " \"actions\":[{\"opt_out\":true}]},"
    "{\"name\":\"order\",\"match\":{\"keywords\":{\"prefix\":[\"Order\"]}},"
    " \"actions\":[{\"tag\":\"orders\"}]},"
    "{\"name\":\"price\",\"match\":{\"keywords\":{\"contains\":[\"prix\",\"price\"]}},"
    " \"actions\":[{\"reply\":{\"text\":\"list\"}}]},"
    "{\"name\":\"re\",\"match\":{\"regex\":\"^#[0-9]{4}$\"},\"actions\":[{\"tag\":\"code\"}]}"
    "]}";

static void
keywords__exact_prefix_contains__match_insensitively(void **state)
{
    struct rt_ruleset *rs = parse(keyword_rules);

    (void)state;
    assert_string_equal(decide(rs, "stop"), "stop");
    assert_string_equal(decide(rs, "  Stop! "), "stop");
    assert_string_equal(decide(rs, "STOP please"), "-");
    assert_string_equal(decide(rs, "الغاء"), "stop");
    assert_string_equal(decide(rs, "إِلْغَاء؟"), "stop");
    assert_string_equal(decide(rs, "ORDER 42"), "order");
    assert_string_equal(decide(rs, "my order"), "-");
    assert_string_equal(decide(rs, "What is the PRÎCE?"), "price");
    assert_string_equal(decide(rs, "le prix svp"), "price");
    assert_string_equal(decide(rs, "#1234"), "re");
    assert_string_equal(decide(rs, "#12345"), "-");
    rt_rules_unref(rs);
}

static void
conditions__type_reply_id_payload_first_tags__all_required(void **state)
{
    struct rt_ruleset *rs = parse(
        "{\"rules\":["
        "{\"name\":\"btn\",\"match\":{\"type\":\"button\",\"button_payload\":\"order:stop\"},"
        " \"actions\":[{\"tag\":\"b\"}]},"
        "{\"name\":\"list\",\"match\":{\"type\":\"interactive\",\"reply_id\":[\"ship_express\"]},"
        " \"actions\":[{\"tag\":\"l\"}]},"
        "{\"name\":\"vip\",\"match\":{\"tags_any\":[\"vip\",\"gold\"],\"tags_none\":\"blocked\","
        " \"language\":\"ar\"},\"actions\":[{\"tag\":\"v\"}]},"
        "{\"name\":\"welcome\",\"match\":{\"first_message\":true},\"then\":\"continue\","
        " \"actions\":[{\"reply\":{\"text\":\"Welcome {{name}}\"}}]},"
        "{\"name\":\"disabled\",\"enabled\":false,\"actions\":[{\"tag\":\"x\"}]},"
        "{\"name\":\"fallback\",\"actions\":[{\"handoff\":{\"queue\":\"general\"}}]}"
        "]}");
    char norm[64];
    struct rt_msg m = text_msg("hello", norm, sizeof(norm));
    const char *tags[] = {"gold"}, *tags2[] = {"gold", "blocked"};
    struct rt_decision d;

    (void)state;
    assert_string_equal(first_rule(rs, &m), "fallback");
    m.first = true;
    rt_rules_evaluate(rs, &m, &d);
    assert_int_equal(d.n, 2); /* welcome continues, fallback stops */
    assert_string_equal(rs->rules[d.rule[0]].name, "welcome");
    assert_string_equal(rs->rules[d.rule[1]].name, "fallback");
    m.first = false;
    m.type = "button";
    m.payload = "order:stop";
    assert_string_equal(first_rule(rs, &m), "btn");
    m.payload = "order:go";
    assert_string_equal(first_rule(rs, &m), "fallback");
    m.type = "interactive";
    m.reply_id = "ship_express";
    assert_string_equal(first_rule(rs, &m), "list");
    m.type = "text";
    m.tags = tags;
    m.ntags = 1;
    assert_string_equal(first_rule(rs, &m), "fallback"); /* language unknown */
    m.language = "ar";
    assert_string_equal(first_rule(rs, &m), "vip");
    m.tags = tags2;
    m.ntags = 2;
    assert_string_equal(first_rule(rs, &m), "fallback");
    rt_rules_unref(rs);
}

static void
hours__zone_days_and_overnight__respected(void **state)
{
    struct rt_hours h = {.set = true,
                         .tz = "Asia/Dubai",
                         .days = 0x3E, /* mon-fri */
                         .from_min = 9 * 60,
                         .to_min = 18 * 60};
    /* 2024-01-08 is a Monday. 05:00 UTC = 09:00 in Dubai (UTC+4). */
    int64_t mon_0500z = 1704690000000;

    (void)state;
    assert_true(rt_hours_contain(&h, mon_0500z));
    assert_false(rt_hours_contain(&h, mon_0500z - 60000));          /* 08:59 */
    assert_false(rt_hours_contain(&h, mon_0500z + 9 * 3600000LL));  /* 18:00 */
    assert_false(rt_hours_contain(&h, mon_0500z - 2 * 86400000LL)); /* Saturday */
    /* overnight 22:00-06:00 Friday only: Saturday 03:00 belongs to Friday's night */
    h.days = 1u << 5;
    h.from_min = 22 * 60;
    h.to_min = 6 * 60;
    snprintf(h.tz, sizeof(h.tz), "UTC");
    assert_true(rt_hours_contain(&h, 1704499200000LL + 3 * 3600000LL));  /* Sat 2024-01-06 03:00Z */
    assert_false(rt_hours_contain(&h, 1704585600000LL + 3 * 3600000LL)); /* Sun 03:00Z */
    assert_true(rt_tz_valid("Europe/Paris"));
    assert_false(rt_tz_valid("Mars/Olympus"));
    assert_false(rt_tz_valid("../etc/passwd"));
}

static void
vars__template_strings__substituted_in_copy(void **state)
{
    char norm[64];
    struct rt_msg m = text_msg("price", norm, sizeof(norm));
    json_t *tmpl = json_pack("{s:s,s:[s,i]}", "body", "Hi {{first_name}} ({{ contact }}), {{x}}",
                             "list", "{{rule}}", 3);
    json_t *out = rt_vars_apply(tmpl, &m, "price");
    char *dump = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);

    (void)state;
    assert_string_equal(dump, "{\"body\":\"Hi Ada (16505551234), {{x}}\",\"list\":[\"price\",3]}");
    free(dump);
    json_decref(out);
    json_decref(tmpl);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalize__latin_case_and_diacritics__folded),
        cmocka_unit_test(normalize__arabic_forms__unified),
        cmocka_unit_test(normalize__invalid_utf8_and_bounds__safe),
        cmocka_unit_test(keywords__exact_prefix_contains__match_insensitively),
        cmocka_unit_test(conditions__type_reply_id_payload_first_tags__all_required),
        cmocka_unit_test(hours__zone_days_and_overnight__respected),
        cmocka_unit_test(vars__template_strings__substituted_in_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
