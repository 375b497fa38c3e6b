/*
 * test_rest.c: libs/httpd's pure REST helpers: path templates, percent-decoding, query strings,
 * the wa_err -> status mapping and sealed page cursors. (Routes and middleware over real sockets
 * are in test_httpd.c, "rest__" tests.)
 */
#include <string.h>

#include "wa/rest.h"
#include "wa_test.h"

static void
template_match__params__decoded_in_order(void **state)
{
    char buf[256];
    struct wa_http_params p;

    (void)state;
    assert_int_equal(wa_http_template_match("/v1/contacts/{id}", "/v1/contacts/%2B15551234567", buf,
                                            sizeof(buf), &p),
                     WA_OK);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.value[0], "+15551234567");
    assert_int_equal(p.name_len[0], 2);
    assert_memory_equal(p.name[0], "id", 2);
    assert_int_equal(wa_http_template_match("/a/{x}/b/{y}", "/a/1%2F2/b/%7E", buf, sizeof(buf), &p),
                     WA_OK);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.value[0], "1/2");
    assert_string_equal(p.value[1], "~");
    assert_int_equal(wa_http_template_match("/v1/contacts", "/v1/contacts", buf, sizeof(buf), &p),
                     WA_OK);
    assert_int_equal(p.n, 0);
    /* exactly strlen(path) + 1 bytes suffice */
    assert_int_equal(wa_http_template_match("/{a}/{b}", "/x/y", buf, 5, &p), WA_OK);
    assert_string_equal(p.value[1], "y");
}

static void
template_match__other_shapes_and_bad_escapes__refused(void **state)
{
    char buf[512];
    struct wa_http_params p;

    (void)state;
    assert_int_equal(wa_http_template_match("/v1/c/{id}", "/v1/c/", buf, sizeof(buf), &p),
                     WA_ENOTFOUND);
    assert_int_equal(wa_http_template_match("/v1/c/{id}", "/v1/c", buf, sizeof(buf), &p),
                     WA_ENOTFOUND);
    assert_int_equal(wa_http_template_match("/v1/c/{id}", "/v1/c/1/x", buf, sizeof(buf), &p),
                     WA_ENOTFOUND);
    assert_int_equal(wa_http_template_match("/v1/c/{id}/a", "/v1/c/1/b", buf, sizeof(buf), &p),
                     WA_ENOTFOUND);
    assert_int_equal(wa_http_template_match("/v1/c/{id}", "v1/c/1", buf, sizeof(buf), &p),
                     WA_ENOTFOUND);
    assert_int_equal(wa_http_template_match("/v1/c/{id}", "/v1/c/%2", buf, sizeof(buf), &p),
                     WA_EPARSE);
    assert_int_equal(wa_http_template_match("/v1/c/{id}", "/v1/c/%zz", buf, sizeof(buf), &p),
                     WA_EPARSE);
    assert_int_equal(wa_http_template_match("/v1/c/{id}", "/v1/c/a%00b", buf, sizeof(buf), &p),
                     WA_EPARSE);
    assert_int_equal(p.n, 0);
    /* the shape decides first: a bad escape in another shape is just no match */
    assert_int_equal(wa_http_template_match("/v1/c/{id}/a", "/v1/c/%zz/b", buf, sizeof(buf), &p),
                     WA_ENOTFOUND);
    assert_int_equal(wa_http_template_match("/{a}/{b}", "/x/y", buf, 3, &p), WA_ETOOBIG);
}

static void
pct_decode__rules(void **state)
{
    char out[16];

    (void)state;
    assert_int_equal(wa_http_pct_decode("a+b%20c", 7, true, out, sizeof(out)), 5);
    assert_string_equal(out, "a b c");
    assert_int_equal(wa_http_pct_decode("a+b", 3, false, out, sizeof(out)), 3);
    assert_string_equal(out, "a+b");
    assert_int_equal(wa_http_pct_decode("%C3%A9", 6, false, out, sizeof(out)), 2);
    assert_int_equal(wa_http_pct_decode("", 0, false, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(wa_http_pct_decode("%", 1, false, out, sizeof(out)), -1);
    assert_int_equal(wa_http_pct_decode("%4", 2, false, out, sizeof(out)), -1);
    assert_int_equal(wa_http_pct_decode("%00", 3, false, out, sizeof(out)), -1);
    assert_int_equal(wa_http_pct_decode("abcd", 4, false, out, 4), -1);
    assert_int_equal(wa_http_pct_decode("abc", 3, false, out, 4), 3);
}

static void
query_parse__pieces__names_values_repeats(void **state)
{
    const char *raw = "tag=a&tag=b+c&&flag&empty=&x%3Dy=1%262";
    char buf[64];
    struct wa_http_query q;

    (void)state;
    assert_int_equal(wa_http_query_parse(raw, strlen(raw), buf, strlen(raw) + 1, &q, NULL), WA_OK);
    assert_int_equal(q.n, 5);
    assert_string_equal(q.name[0], "tag");
    assert_string_equal(q.value[0], "a");
    assert_string_equal(q.value[1], "b c");
    assert_string_equal(q.name[2], "flag");
    assert_string_equal(q.value[2], "");
    assert_string_equal(q.name[3], "empty");
    assert_string_equal(q.value[3], "");
    assert_string_equal(q.name[4], "x=y");
    assert_string_equal(q.value[4], "1&2");
}

static void
query_parse__bad_escape_or_too_many__refused(void **state)
{
    char buf[1024], raw[600];
    struct wa_http_query q;
    struct wa_error error = {0};
    size_t o = 0;

    (void)state;
    assert_int_equal(wa_http_query_parse("a=1&limit=%G1", 13, buf, sizeof(buf), &q, &error),
                     WA_EPARSE);
    assert_non_null(strstr(error.message, "limit"));
    assert_int_equal(wa_http_query_parse("a%00=1", 6, buf, sizeof(buf), &q, NULL), WA_EPARSE);
    for (int i = 0; i <= WA_HTTP_QUERY_MAX; i++) {
        o += (size_t)snprintf(raw + o, sizeof(raw) - o, "a=%d&", i % 10);
    }
    assert_int_equal(wa_http_query_parse(raw, o, buf, sizeof(buf), &q, NULL), WA_ELIMIT);
    assert_int_equal(wa_http_query_parse("a=1", 3, buf, 3, &q, NULL), WA_ETOOBIG);
}

static void
status__every_error__one_status(void **state)
{
    (void)state;
    assert_int_equal(wa_http_status(WA_OK), 200);
    assert_int_equal(wa_http_status(WA_EINVAL), 422);
    assert_int_equal(wa_http_status(WA_EPARSE), 400);
    assert_int_equal(wa_http_status(WA_EAUTH), 401);
    assert_int_equal(wa_http_status(WA_ENOTFOUND), 404);
    assert_int_equal(wa_http_status(WA_EEXIST), 409);
    assert_int_equal(wa_http_status(WA_ETOOBIG), 413);
    assert_int_equal(wa_http_status(WA_ELIMIT), 429);
    assert_int_equal(wa_http_status(WA_EUNAVAIL), 503);
    assert_int_equal(wa_http_status(WA_ETIMEDOUT), 504);
    assert_int_equal(wa_http_status(WA_EIO), 502);
    assert_int_equal(wa_http_status(WA_EINTERNAL), 500);
    for (int e = 0; e < WA_ERR__COUNT; e++) {
        int s = wa_http_status((enum wa_err)e);

        assert_true(s == 200 || (s >= 400 && s <= 504));
        assert_string_not_equal(wa_http_reason(s), "Error");
    }
    assert_string_equal(wa_http_reason(422), "Unprocessable Content");
    assert_string_equal(wa_http_reason(299), "Error");
}

static void
cursor__sealed__opens_only_in_its_scope_and_untouched(void **state)
{
    struct wa_http_cursors *c = NULL, *other = NULL, *bad = NULL;
    char cur[WA_HTTP_CURSOR_MAX], state_out[WA_HTTP_CURSOR_STATE_MAX];
    size_t len;
    const char *secret = "0123456789abcdef-cursor-secret";

    (void)state;
    assert_int_equal(wa_http_cursors_new(secret, strlen(secret), &c), WA_OK);
    assert_int_equal(wa_http_cursors_new(NULL, 0, &other), WA_OK);
    assert_int_equal(wa_http_cursors_new("short", 5, &bad), WA_EINVAL);
    assert_null(bad);
    assert_int_equal(wa_http_cursor_seal(c, "contacts?tag=vip", "+15551234567", 12, cur), WA_OK);
    assert_null(strchr(cur, '+')); /* opaque */
    assert_int_equal(
        wa_http_cursor_open(c, "contacts?tag=vip", cur, state_out, sizeof(state_out), &len), WA_OK);
    assert_int_equal(len, 12);
    assert_memory_equal(state_out, "+15551234567", 12);
    assert_int_equal(
        wa_http_cursor_open(c, "contacts?tag=x", cur, state_out, sizeof(state_out), &len),
        WA_EINVAL);
    assert_int_equal(
        wa_http_cursor_open(other, "contacts?tag=vip", cur, state_out, sizeof(state_out), &len),
        WA_EINVAL);
    cur[5] = cur[5] == '0' ? '1' : '0'; /* one state nibble changed */
    assert_int_equal(
        wa_http_cursor_open(c, "contacts?tag=vip", cur, state_out, sizeof(state_out), &len),
        WA_EINVAL);
    assert_int_equal(wa_http_cursor_open(c, "s", "zz", state_out, sizeof(state_out), &len),
                     WA_EINVAL);
    assert_int_equal(wa_http_cursor_open(c, "s", "", state_out, sizeof(state_out), &len),
                     WA_EINVAL);
    /* an empty state is a valid position; a state larger than the caller's room is refused */
    assert_int_equal(wa_http_cursor_seal(c, "s", NULL, 0, cur), WA_OK);
    assert_int_equal(wa_http_cursor_open(c, "s", cur, state_out, 0, &len), WA_OK);
    assert_int_equal(len, 0);
    assert_int_equal(wa_http_cursor_seal(c, "s", "abcdef", 6, cur), WA_OK);
    assert_int_equal(wa_http_cursor_open(c, "s", cur, state_out, 5, &len), WA_EINVAL);
    assert_int_equal(wa_http_cursor_seal(c, "s", state_out, WA_HTTP_CURSOR_STATE_MAX + 1, cur),
                     WA_ETOOBIG);
    wa_http_cursors_free(c);
    wa_http_cursors_free(other);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(template_match__params__decoded_in_order),
        cmocka_unit_test(template_match__other_shapes_and_bad_escapes__refused),
        cmocka_unit_test(pct_decode__rules),
        cmocka_unit_test(query_parse__pieces__names_values_repeats),
        cmocka_unit_test(query_parse__bad_escape_or_too_many__refused),
        cmocka_unit_test(status__every_error__one_status),
        cmocka_unit_test(cursor__sealed__opens_only_in_its_scope_and_untouched),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
