/*
 * test_rest.c: libs/httpd's path templates (wa_http_path_match): literal and parameter
 * segments, percent-decoding, what is refused.
 */
#include <string.h>

#include "wa/httpd.h"
#include "wa_test.h"

static void
path_match__templates__params_decoded(void **state)
{
    char p[4][WA_HTTP_PARAM_MAX];
    size_t n;

    (void)state;
    assert_true(wa_http_path_match("/v1/contacts/{id}", "/v1/contacts/%2B15551234567", p, 4, &n));
    assert_int_equal(n, 1);
    assert_string_equal(p[0], "+15551234567");
    assert_true(
        wa_http_path_match("/v1/contacts/{id}/consent", "/v1/contacts/US.a1/consent", p, 4, &n));
    assert_string_equal(p[0], "US.a1");
    assert_true(wa_http_path_match("/v1/contacts", "/v1/contacts", p, 4, &n));
    assert_int_equal(n, 0);
    assert_true(wa_http_path_match("/a/{x}/b/{y}", "/a/1/b/2", p, 4, &n));
    assert_int_equal(n, 2);
    assert_string_equal(p[1], "2");
}

static void
path_match__mismatches__refused(void **state)
{
    char p[1][WA_HTTP_PARAM_MAX];
    char longer[WA_HTTP_PARAM_MAX + 32];
    size_t n;

    (void)state;
    assert_false(wa_http_path_match("/v1/contacts/{id}", "/v1/contacts/", p, 1, &n));
    assert_false(wa_http_path_match("/v1/contacts/{id}", "/v1/contacts", p, 1, &n));
    assert_false(wa_http_path_match("/v1/contacts/{id}", "/v1/contacts/1/consent", p, 1, &n));
    assert_false(
        wa_http_path_match("/v1/contacts/{id}/consent", "/v1/contacts/1/export", p, 1, &n));
    assert_false(wa_http_path_match("/v1/contacts/{id}", "/v1/contacts/%2", p, 1, &n));
    assert_false(wa_http_path_match("/v1/contacts/{id}", "/v1/contacts/%zz", p, 1, &n));
    assert_false(wa_http_path_match("/v1/contacts/{id}", "/v1/contacts/a%00b", p, 1, &n));
    assert_false(wa_http_path_match("/a/{x}/{y}", "/a/1/2", p, 1, &n));
    memset(longer, 'x', sizeof(longer) - 1);
    longer[0] = '/';
    longer[sizeof(longer) - 1] = '\0';
    assert_false(wa_http_path_match("/{x}", longer, p, 1, &n));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(path_match__templates__params_decoded),
        cmocka_unit_test(path_match__mismatches__refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
