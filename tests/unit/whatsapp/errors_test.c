/*
 * errors_test.c: the Cloud API error table (libs/whatsapp errors.c): lookup, classes per
 * cloud-api.md §2.4, HTTP statuses, and the Graph / webhook error JSON shapes.
 */
#include <stdlib.h>
#include <string.h>

#include "wa_test.h"
#include "wa/json.h"
#include "wa/whatsapp_errors.h"

static void
lookup__known_codes__have_titles_and_statuses(void **state)
{
    static const int64_t codes[] = {0,      1,      2,      4,      100,    190,    368,    80007,
                                    130429, 131000, 131008, 131009, 131026, 131047, 131050, 131051,
                                    131053, 131056, 132000, 132001, 132015, 132016, 133010};
    int64_t prev = -1;

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(codes); i++) {
        const struct wa_whatsapp_error_info *info = wa_whatsapp_error_lookup(codes[i]);

        assert_non_null(info);
        assert_int_equal(info->code, codes[i]);
        assert_true(strlen(info->title) > 0);
        assert_true(info->http_status >= 400 && info->http_status < 600);
        assert_true(codes[i] > prev);
        prev = codes[i];
    }
    assert_null(wa_whatsapp_error_lookup(424242));
    assert_string_equal(wa_whatsapp_error_title(130429), "Rate limit hit");
    assert_int_equal(wa_whatsapp_error_http_status(132001), 404);
    assert_int_equal(wa_whatsapp_error_http_status(190), 401);
    assert_int_equal(wa_whatsapp_error_http_status(424242), 400);
}

static void
classify__reference_policy__matches_section_2_4(void **state)
{
    (void)state;
    assert_int_equal(wa_whatsapp_error_classify(130429, 400), WA_WHATSAPP_ERROR_THROTTLED);
    assert_int_equal(wa_whatsapp_error_classify(4, 400), WA_WHATSAPP_ERROR_THROTTLED);
    assert_int_equal(wa_whatsapp_error_classify(80007, 400), WA_WHATSAPP_ERROR_THROTTLED);
    assert_int_equal(wa_whatsapp_error_classify(131056, 429), WA_WHATSAPP_ERROR_PAIR_RATE);
    assert_int_equal(wa_whatsapp_error_classify(2, 503), WA_WHATSAPP_ERROR_RETRYABLE);
    assert_int_equal(wa_whatsapp_error_classify(131000, 500), WA_WHATSAPP_ERROR_RETRYABLE);
    assert_int_equal(wa_whatsapp_error_classify(131016, 500), WA_WHATSAPP_ERROR_RETRYABLE);
    assert_int_equal(wa_whatsapp_error_classify(133004, 503), WA_WHATSAPP_ERROR_RETRYABLE);
    assert_int_equal(wa_whatsapp_error_classify(131057, 500), WA_WHATSAPP_ERROR_RETRYABLE);
    assert_int_equal(wa_whatsapp_error_classify(190, 401), WA_WHATSAPP_ERROR_TOKEN);
    assert_int_equal(wa_whatsapp_error_classify(0, 401), WA_WHATSAPP_ERROR_TOKEN);
    assert_int_equal(wa_whatsapp_error_classify(131047, 400), WA_WHATSAPP_ERROR_WINDOW);
    assert_int_equal(wa_whatsapp_error_classify(131050, 400), WA_WHATSAPP_ERROR_OPTED_OUT);
    assert_int_equal(wa_whatsapp_error_classify(132001, 404), WA_WHATSAPP_ERROR_TEMPLATE);
    assert_int_equal(wa_whatsapp_error_classify(132999, 400), WA_WHATSAPP_ERROR_TEMPLATE);
    assert_int_equal(wa_whatsapp_error_classify(100, 400), WA_WHATSAPP_ERROR_PERMANENT);
    assert_int_equal(wa_whatsapp_error_classify(131026, 400), WA_WHATSAPP_ERROR_PERMANENT);
    assert_int_equal(wa_whatsapp_error_classify(131053, 400), WA_WHATSAPP_ERROR_PERMANENT);
    /* Unknown codes: by HTTP status. */
    assert_int_equal(wa_whatsapp_error_classify(999999, 502), WA_WHATSAPP_ERROR_RETRYABLE);
    assert_int_equal(wa_whatsapp_error_classify(999999, 429), WA_WHATSAPP_ERROR_THROTTLED);
    assert_int_equal(wa_whatsapp_error_classify(999999, 400), WA_WHATSAPP_ERROR_PERMANENT);
    assert_true(wa_whatsapp_error_class_retryable(WA_WHATSAPP_ERROR_PAIR_RATE));
    assert_false(wa_whatsapp_error_class_retryable(WA_WHATSAPP_ERROR_WINDOW));
    assert_string_equal(wa_whatsapp_error_class_name(WA_WHATSAPP_ERROR_OPTED_OUT), "opted_out");
    /* 131048: the number is restricted for spam: slow it down, not a dead request. */
    assert_int_equal(wa_whatsapp_error_classify(131048, 400), WA_WHATSAPP_ERROR_THROTTLED);
    /* 131049: the user's marketing cap: later, with growing delays; not an opt-out. */
    assert_int_equal(wa_whatsapp_error_classify(131049, 400), WA_WHATSAPP_ERROR_CAPPED);
    assert_true(wa_whatsapp_error_class_retryable(WA_WHATSAPP_ERROR_CAPPED));
    assert_string_equal(wa_whatsapp_error_class_name(WA_WHATSAPP_ERROR_CAPPED), "marketing_cap");
    assert_int_equal(wa_whatsapp_error_classify(131014, 400), WA_WHATSAPP_ERROR_PERMANENT);
    assert_int_equal(wa_whatsapp_error_classify(130501, 400), WA_WHATSAPP_ERROR_PERMANENT);
    assert_int_equal(wa_whatsapp_error_classify(132018, 400), WA_WHATSAPP_ERROR_TEMPLATE);
    assert_non_null(wa_whatsapp_error_lookup(131014));
    assert_non_null(wa_whatsapp_error_lookup(130501));
    assert_non_null(wa_whatsapp_error_lookup(132018));
}

static void
graph_json__throughput__has_meta_shape(void **state)
{
    struct wa_buf b;
    json_t *root = NULL;

    (void)state;
    wa_buf_init(&b, 0);
    assert_int_equal(wa_whatsapp_error_graph_json(&b, 130429, 2494055, NULL, "Az8or"), WA_OK);
    assert_int_equal(wa_json_parse(b.data, b.len, 0, &root, NULL), WA_OK);
    assert_string_equal(wa_json_path_str(root, "error.message"), "(#130429) Rate limit hit");
    assert_string_equal(wa_json_path_str(root, "error.type"), "OAuthException");
    assert_int_equal(json_integer_value(wa_json_path(root, "error.code")), 130429);
    assert_int_equal(json_integer_value(wa_json_path(root, "error.error_subcode")), 2494055);
    assert_string_equal(wa_json_path_str(root, "error.error_data.messaging_product"), "whatsapp");
    assert_string_equal(wa_json_path_str(root, "error.error_data.details"),
                        "Cloud API message throughput has been reached.");
    assert_string_equal(wa_json_path_str(root, "error.fbtrace_id"), "Az8or");
    json_decref(root);
    wa_buf_cleanup(&b);
}

static void
graph_json__unknown_object__is_graph_method_exception(void **state)
{
    struct wa_buf b;
    json_t *root = NULL;

    (void)state;
    wa_buf_init(&b, 0);
    assert_int_equal(wa_whatsapp_error_graph_json(&b, 100, 33, "Unsupported post request.", NULL),
                     WA_OK);
    assert_int_equal(wa_json_parse(b.data, b.len, 0, &root, NULL), WA_OK);
    assert_string_equal(wa_json_path_str(root, "error.type"), "GraphMethodException");
    assert_string_equal(wa_json_path_str(root, "error.message"), "Unsupported post request.");
    assert_null(wa_json_path(root, "error.fbtrace_id"));
    json_decref(root);
    wa_buf_cleanup(&b);
}

static void
webhook_json__window__has_code_title_details_href(void **state)
{
    struct wa_buf b;
    json_t *root = NULL;

    (void)state;
    wa_buf_init(&b, 0);
    assert_int_equal(wa_whatsapp_error_webhook_json(&b, 131047, NULL), WA_OK);
    assert_int_equal(wa_json_parse(b.data, b.len, 0, &root, NULL), WA_OK);
    assert_int_equal(json_integer_value(json_object_get(root, "code")), 131047);
    assert_string_equal(wa_json_str(root, "title"), "Re-engagement message");
    assert_string_equal(wa_json_str(root, "message"), "Re-engagement message");
    assert_non_null(wa_json_path_str(root, "error_data.details"));
    assert_non_null(wa_json_str(root, "href"));
    json_decref(root);
    wa_buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookup__known_codes__have_titles_and_statuses),
        cmocka_unit_test(classify__reference_policy__matches_section_2_4),
        cmocka_unit_test(graph_json__throughput__has_meta_shape),
        cmocka_unit_test(graph_json__unknown_object__is_graph_method_exception),
        cmocka_unit_test(webhook_json__window__has_code_title_details_href),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
