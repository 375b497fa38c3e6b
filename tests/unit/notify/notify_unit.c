/*
 * notify_unit.c: wa-notify's pure logic through its stage interfaces: answer classification
 * (cloud-api.md §2.3/§2.4), back-off arithmetic, the circuit breaker, request validation and
 * body building, per-number configuration lookup, and the outbound contract decoder.
 */
#include <string.h>

#include "notify.h"
#include "wa_test.h"

static void
classify__200_with_wamid__accepted(void **state)
{
    static const char body[] =
        "{\"messaging_product\":\"whatsapp\",\"messages\":[{\"id\":\"wamid.A\"}]}";
    struct nt_answer a;

    (void)state;
    nt_classify(WA_OK, "", 200, body, strlen(body), &a);
    assert_int_equal(a.outcome, NT_ACCEPTED);
    assert_string_equal(a.wamid, "wamid.A");
}

static void
classify__codes__follow_the_reference_table(void **state)
{
    static const struct {
        int64_t code;
        long status;
        enum nt_outcome want;
    } cases[] = {
        {131000, 500, NT_RETRY},     {2, 503, NT_RETRY},          {131016, 500, NT_RETRY},
        {130429, 400, NT_THROTTLED}, {130429, 429, NT_THROTTLED}, {4, 400, NT_THROTTLED},
        {131056, 400, NT_PAIR_RATE}, {190, 401, NT_TOKEN},        {0, 401, NT_TOKEN},
        {131047, 400, NT_PERMANENT}, {131026, 400, NT_PERMANENT}, {132001, 404, NT_PERMANENT},
        {100, 400, NT_PERMANENT},    {131050, 400, NT_PERMANENT}, {131048, 400, NT_THROTTLED},
        {131049, 400, NT_CAPPED},    {131014, 400, NT_PERMANENT}, {132018, 400, NT_PERMANENT},
    };
    char body[256];
    struct nt_answer a;

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        snprintf(body, sizeof(body),
                 "{\"error\":{\"message\":\"(#%lld) x\",\"code\":%lld,\"error_data\":"
                 "{\"details\":\"why\"}}}",
                 (long long)cases[i].code, (long long)cases[i].code);
        nt_classify(WA_OK, "", cases[i].status, body, strlen(body), &a);
        if (a.outcome != cases[i].want) {
            fail_msg("code %lld: outcome %d, want %d", (long long)cases[i].code, a.outcome,
                     cases[i].want);
        }
        assert_true(a.has_code);
        assert_int_equal(a.code, cases[i].code);
        assert_string_equal(a.details, "why");
    }
}

static void
classify__no_graph_body__by_status_and_transport(void **state)
{
    struct nt_answer a;

    (void)state;
    nt_classify(WA_OK, "", 503, "oops", 4, &a);
    assert_int_equal(a.outcome, NT_RETRY);
    assert_true(a.breaker_failure);
    nt_classify(WA_ETIMEDOUT, "timeout after 10 s", 0, "", 0, &a);
    assert_int_equal(a.outcome, NT_RETRY);
    assert_true(a.breaker_failure);
    assert_false(a.has_code);
    nt_classify(WA_OK, "", 400, "", 0, &a);
    assert_int_equal(a.outcome, NT_PERMANENT);
    nt_classify(WA_OK, "", 200, "{}", 2, &a);
    assert_int_equal(a.outcome, NT_RETRY); /* 200 without a wamid is not an acceptance */
}

static void
backoff__doubles_with_jitter_and_caps(void **state)
{
    (void)state;
    assert_int_equal(nt_retry_backoff_ms(500, 60000, 1, 0.0), 250);
    assert_int_equal(nt_retry_backoff_ms(500, 60000, 1, 0.999999), 499);
    assert_int_equal(nt_retry_backoff_ms(500, 60000, 3, 0.0), 1000);
    assert_int_equal(nt_retry_backoff_ms(500, 60000, 40, 0.0), 30000);
    assert_true(nt_retry_backoff_ms(500, 60000, 40, 0.5) <= 60000);
}

static void
pair_backoff__four_to_the_x_seconds(void **state)
{
    (void)state;
    assert_int_equal(nt_retry_pair_backoff_ms(0, 256000), 1000);
    assert_int_equal(nt_retry_pair_backoff_ms(1, 256000), 4000);
    assert_int_equal(nt_retry_pair_backoff_ms(2, 256000), 16000);
    assert_int_equal(nt_retry_pair_backoff_ms(9, 256000), 256000);
}

static void
breaker__opens_after_threshold_then_one_probe(void **state)
{
    struct nt_breaker b = {.threshold = 3, .cooldown_ms = 100};

    (void)state;
    for (int i = 0; i < 2; i++) {
        nt_breaker_record(&b, true, 0);
    }
    assert_true(nt_breaker_allow(&b, 0));
    nt_breaker_record(&b, true, 0);
    assert_false(nt_breaker_allow(&b, 50));
    assert_int_equal(nt_breaker_state(&b, 50), 1);
    assert_true(nt_breaker_allow(&b, 100)); /* half-open: one probe */
    assert_false(nt_breaker_allow(&b, 100));
    nt_breaker_record(&b, true, 100); /* probe failed: open for twice as long */
    assert_false(nt_breaker_allow(&b, 250));
    assert_true(nt_breaker_allow(&b, 300));
    nt_breaker_record(&b, false, 300);
    assert_int_equal(nt_breaker_state(&b, 300), 0);
    assert_true(nt_breaker_allow(&b, 300));
}

static json_t *
parse(const char *s)
{
    json_t *v = NULL;

    assert_int_equal(wa_json_parse(s, strlen(s), 0, &v, NULL), WA_OK);
    return v;
}

static void
validate__text__body_with_request_id_as_callback_data(void **state)
{
    json_t *data =
        parse("{\"request_id\":\"r1\",\"phone_number_id\":\"1001\","
              "\"to\":\"+1 (650) 555-1234\",\"type\":\"text\",\"text\":{\"body\":\"hi\"},"
              "\"category\":\"service\",\"metadata\":{\"a\":1}}");
    struct wa_contract_outbound_request rq;
    struct nt_invalid why;
    json_t *body = NULL;

    (void)state;
    assert_int_equal(wa_contract_outbound_request_decode(data, &rq, NULL), WA_OK);
    assert_int_equal(nt_validate_build(&rq, NULL, &body, &why), WA_OK);
    assert_string_equal(wa_json_str(body, "to"), "+16505551234");
    assert_string_equal(wa_json_str(body, "biz_opaque_callback_data"), "r1");
    assert_string_equal(wa_json_path_str(body, "text.body"), "hi");
    json_decref(body);
    json_decref(data);
}

static void
validate__invalid_bodies__meta_codes(void **state)
{
    static const struct {
        const char *data;
        int64_t code;
    } cases[] = {
        {"{\"request_id\":\"r\",\"phone_number_id\":\"1\",\"to\":\"16505551234\",\"type\":\"text\","
         "\"text\":{}}",
         131008},
        {"{\"request_id\":\"r\",\"phone_number_id\":\"1\",\"to\":\"16505551234\",\"type\":"
         "\"image\",\"image\":{\"caption\":\"no media\"}}",
         0},
        {"{\"request_id\":\"r\",\"phone_number_id\":\"1\",\"to\":\"12\",\"type\":\"text\","
         "\"text\":{\"body\":\"x\"}}",
         100},
    };
    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        json_t *data = parse(cases[i].data), *body = NULL;
        struct wa_contract_outbound_request rq;
        struct nt_invalid why;

        assert_int_equal(wa_contract_outbound_request_decode(data, &rq, NULL), WA_OK);
        assert_int_equal(nt_validate_build(&rq, NULL, &body, &why), WA_EINVAL);
        assert_null(body);
        assert_true(why.has_code);
        if (cases[i].code != 0) {
            assert_int_equal(why.code, cases[i].code);
        }
        assert_true(why.details[0] != '\0');
        json_decref(data);
    }
}

static void
validate__fallback_template__replaces_free_form(void **state)
{
    json_t *data = parse("{\"request_id\":\"r\",\"phone_number_id\":\"1\",\"to\":\"16505551234\","
                         "\"type\":\"text\",\"text\":{\"body\":\"x\"},\"fallback_template\":"
                         "{\"name\":\"hello_world\",\"language\":{\"code\":\"en_US\"}}}");
    struct wa_contract_outbound_request rq;
    struct nt_invalid why;
    json_t *body = NULL;

    (void)state;
    assert_int_equal(wa_contract_outbound_request_decode(data, &rq, NULL), WA_OK);
    assert_int_equal(nt_validate_build(&rq, rq.fallback_template, &body, &why), WA_OK);
    assert_string_equal(wa_json_str(body, "type"), "template");
    assert_null(json_object_get(body, "text"));
    json_decref(body);
    json_decref(data);
}

static void
decode__bad_requests__rejected_with_field(void **state)
{
    static const char *const bad[] = {
        "{\"phone_number_id\":\"1\",\"to\":\"1\",\"type\":\"text\",\"text\":{}}",
        "{\"request_id\":\"r\",\"to\":\"1\",\"type\":\"text\",\"text\":{}}",
        "{\"request_id\":\"r\",\"phone_number_id\":\"1\",\"type\":\"text\",\"text\":{}}",
        "{\"request_id\":\"r\",\"phone_number_id\":\"1\",\"to\":\"1\",\"type\":\"fax\"}",
        "{\"request_id\":\"r\",\"phone_number_id\":\"1\",\"to\":\"1\",\"type\":\"text\"}",
        "{\"request_id\":\"r\",\"phone_number_id\":\"1\",\"to\":\"1\",\"type\":\"text\","
        "\"text\":{},\"category\":\"spam\"}",
        "{\"request_id\":\"r\",\"phone_number_id\":\"1\",\"to\":\"1\",\"type\":\"text\","
        "\"text\":{},\"expires_at\":\"yesterday\"}",
    };
    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(bad); i++) {
        json_t *data = parse(bad[i]);
        struct wa_contract_outbound_request rq;
        struct wa_error e = {0};

        assert_int_equal(wa_contract_outbound_request_decode(data, &rq, &e), WA_EPARSE);
        assert_true(e.message[0] != '\0');
        json_decref(data);
    }
}

static void
time_parse__rfc3339__ms_since_epoch(void **state)
{
    int64_t ms = 0;

    (void)state;
    assert_int_equal(wa_contract_time_parse("2026-01-02T03:04:05.678Z", &ms), WA_OK);
    assert_int_equal(ms, 1767323045678);
    assert_int_equal(wa_contract_time_parse("2026-01-02T05:04:05+02:00", &ms), WA_OK);
    assert_int_equal(ms, 1767323045000);
    assert_int_equal(wa_contract_time_parse("2026-01-02", &ms), WA_EPARSE);
    /* days past the month's end are rejected, not rolled into the next month */
    assert_int_equal(wa_contract_time_parse("2026-02-29T00:00:00Z", &ms), WA_EPARSE);
    assert_int_equal(wa_contract_time_parse("2028-02-29T00:00:00Z", &ms), WA_OK);
    assert_int_equal(wa_contract_time_parse("2026-04-31T00:00:00Z", &ms), WA_EPARSE);
}

static void
config_lookup__per_number_then_default(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(nt_config_lookup("tok,111=a,222=b", "222", out, sizeof(out)), WA_OK);
    assert_string_equal(out, "b");
    assert_int_equal(nt_config_lookup("tok,111=a,222=b", "333", out, sizeof(out)), WA_OK);
    assert_string_equal(out, "tok");
    assert_int_equal(nt_config_lookup("111=a", "333", out, sizeof(out)), WA_ENOTFOUND);
    assert_int_equal(nt_config_lookup("111=abcdef", "111", out, 4), WA_ETOOBIG);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classify__200_with_wamid__accepted),
        cmocka_unit_test(classify__codes__follow_the_reference_table),
        cmocka_unit_test(classify__no_graph_body__by_status_and_transport),
        cmocka_unit_test(backoff__doubles_with_jitter_and_caps),
        cmocka_unit_test(pair_backoff__four_to_the_x_seconds),
        cmocka_unit_test(breaker__opens_after_threshold_then_one_probe),
        cmocka_unit_test(validate__text__body_with_request_id_as_callback_data),
        cmocka_unit_test(validate__invalid_bodies__meta_codes),
        cmocka_unit_test(validate__fallback_template__replaces_free_form),
        cmocka_unit_test(decode__bad_requests__rejected_with_field),
        cmocka_unit_test(time_parse__rfc3339__ms_since_epoch),
        cmocka_unit_test(config_lookup__per_number_then_default),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
