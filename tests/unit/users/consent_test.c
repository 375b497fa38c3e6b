/*
 * consent_test.c: wa-users' consent model (services/users/src/consent.c): which ledger entries
 * each event asks for, entry ids stable under redelivery, the state derived from a ledger in any
 * order, only marketing muted by a marketing opt-out, identities.
 */
#include <string.h>

#include "users.h"
#include "wa_test.h"

static json_t *
parse(const char *s)
{
    json_t *v = json_loads(s, 0, NULL);

    assert_non_null(v);
    return v;
}

static void
command__stop_from_router__marketing_opted_out_by_keyword(void **state)
{
    json_t *d =
        parse("{\"command_id\":\"c1\",\"command\":\"opt_out\",\"phone_number_id\":\"1001\","
              "\"contact\":\"16505550001\",\"source\":\"wa-router/host\",\"wamid\":\"wamid.A\","
              "\"reason\":\"opt-out\",\"requested_at\":\"2026-01-02T03:04:05Z\"}");
    struct us_entry e[2];
    size_t n = 9;

    (void)state;
    assert_int_equal(us_decide_command(d, 5, e, 2, &n, NULL), WA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].id, "cmd:c1");
    assert_string_equal(e[0].contact, "16505550001");
    assert_int_equal(e[0].category, US_CAT_MARKETING);
    assert_int_equal(e[0].status, US_OPTED_OUT);
    assert_int_equal(e[0].source, US_SRC_KEYWORD);
    assert_string_equal(e[0].scope, "all");
    assert_string_equal(e[0].evidence_wamid, "wamid.A");
    assert_string_equal(e[0].phone_number_id, "1001");
    assert_int_equal(e[0].at_ms, 1767323045000LL);
    json_decref(d);
}

static void
command__start_from_crm_and_tag__opt_in_by_api_and_nothing(void **state)
{
    json_t *in = parse("{\"command_id\":\"c2\",\"command\":\"opt_in\",\"phone_number_id\":\"1\","
                       "\"contact\":\"US.abc123\",\"source\":\"crm\",\"requested_at\":"
                       "\"2026-01-02T03:04:05Z\"}");
    json_t *tag = parse("{\"command_id\":\"c3\",\"command\":\"tag\",\"phone_number_id\":\"1\","
                        "\"contact\":\"16505550001\",\"tags\":[\"vip\"],\"requested_at\":"
                        "\"2026-01-02T03:04:05Z\"}");
    struct us_entry e[1];
    size_t n;

    (void)state;
    assert_int_equal(us_decide_command(in, 0, e, 1, &n, NULL), WA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(e[0].status, US_OPTED_IN);
    assert_int_equal(e[0].source, US_SRC_API);
    assert_int_equal(us_decide_command(tag, 0, e, 1, &n, NULL), WA_OK);
    assert_int_equal(n, 0);
    json_decref(in);
    json_decref(tag);
}

static void
command__bad_contact_or_shape__parse_error(void **state)
{
    json_t *bad = parse("{\"command_id\":\"c4\",\"command\":\"opt_out\",\"phone_number_id\":\"1\","
                        "\"contact\":\"+12ab\",\"requested_at\":\"2026-01-02T03:04:05Z\"}");
    json_t *shape = parse("{\"command\":\"opt_out\"}");
    struct us_entry e[1];
    struct wa_error error = {0};
    size_t n;

    (void)state;
    assert_int_equal(us_decide_command(bad, 0, e, 1, &n, &error), WA_EPARSE);
    assert_non_null(strstr(error.message, "contact"));
    assert_int_equal(us_decide_command(shape, 0, e, 1, &n, NULL), WA_EPARSE);
    json_decref(bad);
    json_decref(shape);
}

static json_t *
status(const char *st, int code)
{
    char s[1024];

    snprintf(s, sizeof(s),
             "{\"wamid\":\"wamid.S\",\"status\":\"%s\",\"timestamp\":1700000000,"
             "\"phone_number_id\":\"1\",\"display_phone_number\":\"1\",\"waba_id\":\"2\","
             "\"contact\":\"16505550002\",\"biz_opaque_callback_data\":null,\"status_object\":"
             "{\"id\":\"wamid.S\",\"status\":\"%s\",\"errors\":[{\"code\":%d}]}}",
             st, st, code);
    return parse(s);
}

static void
status__failed_131050_only__meta_error_entry(void **state)
{
    json_t *stopped = status("failed", 131050), *other = status("failed", 131026),
           *delivered = status("delivered", 131050);
    struct us_entry e[1];
    size_t n;

    (void)state;
    assert_int_equal(us_decide_status(stopped, 0, e, 1, &n, NULL), WA_OK);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].id, "st:wamid.S:131050");
    assert_int_equal(e[0].source, US_SRC_META_ERROR);
    assert_int_equal(e[0].evidence_code, 131050);
    assert_int_equal(e[0].status, US_OPTED_OUT);
    assert_int_equal(e[0].at_ms, 1700000000000LL);
    assert_int_equal(us_decide_status(other, 0, e, 1, &n, NULL), WA_OK);
    assert_int_equal(n, 0);
    assert_int_equal(us_decide_status(delivered, 0, e, 1, &n, NULL), WA_OK);
    assert_int_equal(n, 0);
    json_decref(stopped);
    json_decref(other);
    json_decref(delivered);
}

static void
account__user_preferences__stop_and_resume_entries_stable_ids(void **state)
{
    json_t *d =
        parse("{\"waba_id\":\"2\",\"field\":\"user_preferences\",\"event\":null,\"timestamp\":1,"
              "\"phone_number_id\":\"1\",\"value\":{\"user_preferences\":["
              "{\"wa_id\":\"16505550003\",\"category\":\"marketing_messages\",\"value\":\"stop\","
              "\"timestamp\":1700000001},"
              "{\"wa_id\":\"16505550004\",\"category\":\"marketing_messages\",\"value\":\"resume\","
              "\"timestamp\":1700000002},"
              "{\"wa_id\":\"16505550005\",\"category\":\"other\",\"value\":\"stop\"}]}}");
    json_t *other = parse("{\"waba_id\":\"2\",\"field\":\"account_update\",\"event\":\"X\","
                          "\"timestamp\":1,\"phone_number_id\":null,\"value\":{}}");
    struct us_entry e[4], again[4];
    size_t n, n2;

    (void)state;
    assert_int_equal(us_decide_account(d, 0, e, 4, &n, NULL), WA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(e[0].status, US_OPTED_OUT);
    assert_int_equal(e[1].status, US_OPTED_IN);
    assert_int_equal(e[0].source, US_SRC_USER_PREFERENCES);
    assert_int_equal(us_decide_account(d, 99, again, 4, &n2, NULL), WA_OK);
    assert_string_equal(e[0].id, again[0].id);
    assert_string_equal(e[1].id, again[1].id);
    assert_string_not_equal(e[0].id, e[1].id);
    assert_int_equal(us_decide_account(d, 0, e, 1, &n, NULL), WA_ETOOBIG);
    assert_int_equal(us_decide_account(other, 0, e, 4, &n, NULL), WA_OK);
    assert_int_equal(n, 0);
    json_decref(d);
    json_decref(other);
}

static void
derive__any_order__latest_by_time_then_recorded(void **state)
{
    json_t *ledger =
        parse("[{\"category\":\"marketing\",\"status\":\"opted_in\",\"scope\":\"all\",\"source\":"
              "\"keyword\",\"at_ms\":300,\"recorded_ms\":2},"
              "{\"category\":\"marketing\",\"status\":\"opted_out\",\"scope\":\"all\",\"source\":"
              "\"keyword\",\"at_ms\":100,\"recorded_ms\":1},"
              "{\"category\":\"marketing\",\"status\":\"opted_out\",\"scope\":\"all\",\"source\":"
              "\"meta_error\",\"at_ms\":300,\"recorded_ms\":3},"
              "{\"category\":\"marketing\",\"status\":\"opted_in\",\"scope\":\"1001\",\"source\":"
              "\"api\",\"at_ms\":900,\"recorded_ms\":4},"
              "{\"category\":\"utility\",\"status\":\"opted_in\",\"scope\":\"all\",\"source\":"
              "\"api\",\"at_ms\":999,\"recorded_ms\":5}]");
    struct us_consent_state st;
    json_t *empty = json_array();

    (void)state;
    us_consent_derive(ledger, US_CAT_MARKETING, &st);
    assert_true(st.known);
    assert_int_equal(st.status, US_OPTED_OUT);
    assert_int_equal(st.source, US_SRC_META_ERROR);
    assert_int_equal(st.at_ms, 300);
    assert_true(us_consent_blocks(&st, US_CAT_MARKETING));
    assert_false(us_consent_blocks(&st, US_CAT_UTILITY));
    assert_false(us_consent_blocks(&st, US_CAT_AUTHENTICATION));
    assert_false(us_consent_blocks(&st, US_CAT_SERVICE));
    us_consent_derive(empty, US_CAT_MARKETING, &st);
    assert_false(st.known);
    assert_false(us_consent_blocks(&st, US_CAT_MARKETING));
    json_decref(ledger);
    json_decref(empty);
}

static void
entry_doc__fields__as_the_ledger_stores_them(void **state)
{
    struct us_entry e = {.id = "cmd:c1",
                         .contact = "16505550001",
                         .category = US_CAT_MARKETING,
                         .status = US_OPTED_OUT,
                         .scope = "all",
                         .source = US_SRC_KEYWORD,
                         .evidence_wamid = "wamid.A",
                         .at_ms = 1767323045000LL};
    json_t *doc = us_entry_doc(&e, "+16505550001", 7);

    (void)state;
    assert_non_null(doc);
    assert_string_equal(wa_json_str(doc, "_id"), "cmd:c1");
    assert_string_equal(wa_json_str(doc, "contact"), "+16505550001");
    assert_string_equal(wa_json_str(doc, "at"), "2026-01-02T03:04:05.000Z");
    assert_string_equal(wa_json_path_str(doc, "evidence.wamid"), "wamid.A");
    assert_null(wa_json_path(doc, "evidence.error_code"));
    json_decref(doc);
}

static void
identity__phone_and_bsuid__canonical_ids_and_keys(void **state)
{
    char id[US_ID_MAX];

    (void)state;
    assert_int_equal(us_contact_id("16505550001", id, sizeof(id)), WA_OK);
    assert_string_equal(id, "+16505550001");
    assert_string_equal(us_key_identity(id), "16505550001");
    assert_int_equal(us_contact_id("+16505550001", id, sizeof(id)), WA_OK);
    assert_string_equal(id, "+16505550001");
    assert_int_equal(us_contact_id("US.13491208655302741918", id, sizeof(id)), WA_OK);
    assert_string_equal(us_key_identity(id), "US.13491208655302741918");
    assert_int_equal(us_contact_id("+12ab", id, sizeof(id)), WA_EINVAL);
    assert_int_equal(us_contact_id("", id, sizeof(id)), WA_EINVAL);
    assert_int_equal(us_contact_id("1234567890123456", id, sizeof(id)), WA_EINVAL);
    assert_int_equal(us_contact_id("US.a b", id, sizeof(id)), WA_EINVAL);
    assert_int_equal(us_contact_id("16505550001", id, 5), WA_EINVAL);
}

static void
names__round_trip(void **state)
{
    enum us_category c;
    enum us_status s;
    enum us_source src;

    (void)state;
    for (int i = 0; i < US_NCATEGORIES; i++) {
        assert_int_equal(us_category_parse(us_category_name((enum us_category)i), &c), WA_OK);
        assert_int_equal((int)c, i);
    }
    assert_int_equal(us_status_parse("opted_out", &s), WA_OK);
    assert_int_equal(s, US_OPTED_OUT);
    assert_int_equal(us_source_parse("import", &src), WA_OK);
    assert_int_equal(src, US_SRC_IMPORT);
    assert_int_equal(us_category_parse("promo", &c), WA_EPARSE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(command__stop_from_router__marketing_opted_out_by_keyword),
        cmocka_unit_test(command__start_from_crm_and_tag__opt_in_by_api_and_nothing),
        cmocka_unit_test(command__bad_contact_or_shape__parse_error),
        cmocka_unit_test(status__failed_131050_only__meta_error_entry),
        cmocka_unit_test(account__user_preferences__stop_and_resume_entries_stable_ids),
        cmocka_unit_test(derive__any_order__latest_by_time_then_recorded),
        cmocka_unit_test(entry_doc__fields__as_the_ledger_stores_them),
        cmocka_unit_test(identity__phone_and_bsuid__canonical_ids_and_keys),
        cmocka_unit_test(names__round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
