/* test_traceparent.c: W3C traceparent generation, continuation and validation. */
#include <string.h>

#include "wa/traceparent.h"
#include "wa_test.h"

static void
new__twice__valid_and_different(void **state)
{
    char a[WA_TRACEPARENT_LEN], b[WA_TRACEPARENT_LEN];

    (void)state;
    wa_traceparent_new(a);
    wa_traceparent_new(b);
    assert_int_equal(strlen(a), 55);
    assert_true(wa_traceparent_valid(a));
    assert_true(wa_traceparent_valid(b));
    assert_memory_equal(a, "00-", 3);
    assert_string_equal(a + 52, "-01");
    assert_memory_not_equal(a + 3, b + 3, 32);
}

static void
child__of_valid_parent__keeps_trace_and_flags_new_span(void **state)
{
    const char *parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    char child[WA_TRACEPARENT_LEN], trace[WA_TRACE_ID_LEN];

    (void)state;
    wa_traceparent_child(parent, child);
    assert_true(wa_traceparent_valid(child));
    assert_memory_equal(child, parent, 36);
    assert_memory_not_equal(child + 36, parent + 36, 16);
    assert_string_equal(child + 52, "-00");
    assert_int_equal(wa_traceparent_trace_id(child, trace), WA_OK);
    assert_string_equal(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
}

static void
child__of_malformed_parent__starts_new_trace(void **state)
{
    const char *bad[] = {NULL, "", "garbage",
                         "00-00000000000000000000000000000000-00f067aa0ba902b7-01"};
    char child[WA_TRACEPARENT_LEN];

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(bad); i++) {
        wa_traceparent_child(bad[i], child);
        assert_true(wa_traceparent_valid(child));
        assert_memory_not_equal(child + 3, "00000000000000000000000000000000", 32);
    }
}

static void
valid__malformed_values__rejected(void **state)
{
    const char *bad[] = {
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",    /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* v00 with extra */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero span */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   /* not hex */
    };
    char trace[WA_TRACE_ID_LEN];

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(bad); i++) {
        assert_false(wa_traceparent_valid(bad[i]));
        assert_int_equal(wa_traceparent_trace_id(bad[i], trace), WA_EPARSE);
        assert_string_equal(trace, "");
    }
    assert_false(wa_traceparent_valid(NULL));
}

static void
valid__future_version_with_extra_field__accepted(void **state)
{
    (void)state;
    assert_true(
        wa_traceparent_valid("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"));
    assert_true(wa_traceparent_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
}

static void
from_random__given_bytes__hex_ids_and_never_all_zero(void **state)
{
    unsigned char rnd[WA_TRACEPARENT_RANDOM_LEN];
    char tp[WA_TRACEPARENT_LEN];

    (void)state;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        rnd[i] = (unsigned char)(0xa0 + i);
    }
    wa_traceparent_from_random(rnd, tp);
    assert_string_equal(tp, "00-a0a1a2a3a4a5a6a7a8a9aaabacadaeaf-b0b1b2b3b4b5b6b7-01");
    assert_true(wa_traceparent_valid(tp));
    memset(rnd, 0, sizeof(rnd)); /* all-zero ids are invalid: the last byte becomes 1 */
    wa_traceparent_from_random(rnd, tp);
    assert_string_equal(tp, "00-00000000000000000000000000000001-0000000000000001-01");
    assert_true(wa_traceparent_valid(tp));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new__twice__valid_and_different),
        cmocka_unit_test(from_random__given_bytes__hex_ids_and_never_all_zero),
        cmocka_unit_test(child__of_valid_parent__keeps_trace_and_flags_new_span),
        cmocka_unit_test(child__of_malformed_parent__starts_new_trace),
        cmocka_unit_test(valid__malformed_values__rejected),
        cmocka_unit_test(valid__future_version_with_extra_field__accepted),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
