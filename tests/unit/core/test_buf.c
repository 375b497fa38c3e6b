/* test_buf.c: unit tests of wa/buf.h: the maximum and JSON string escaping. */
#include "wa_test.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wa/buf.h"

static void
append__within_max__ok_and_nul_terminated(void **state)
{
    struct wa_buf b;

    (void)state;
    wa_buf_init(&b, 10);
    assert_null(b.data);
    assert_int_equal(wa_buf_append(&b, "hello", 5), WA_OK);
    assert_int_equal(wa_buf_append_str(&b, "world"), WA_OK);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    wa_buf_cleanup(&b);
    assert_null(b.data);
    wa_buf_cleanup(NULL);
}

static void
append__past_max__etoobig_and_unchanged(void **state)
{
    struct wa_buf b;

    (void)state;
    wa_buf_init(&b, 10);
    assert_int_equal(wa_buf_append(&b, "12345678", 8), WA_OK);
    assert_int_equal(wa_buf_append(&b, "abc", 3), WA_ETOOBIG);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(wa_buf_printf(&b, "%d", 123), WA_ETOOBIG);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(wa_buf_append_json_string(&b, "x", 1), WA_ETOOBIG);
    assert_int_equal(b.len, 8);
    assert_int_equal(wa_buf_append(&b, "ab", 2), WA_OK); /* exactly max */
    assert_int_equal(wa_buf_append(&b, "", 0), WA_OK);
    assert_int_equal(wa_buf_append(&b, "c", 1), WA_ETOOBIG);
    assert_int_equal(wa_buf_reserve(&b, SIZE_MAX), WA_ETOOBIG);
    wa_buf_cleanup(&b);
}

static void
printf__formats_and_appends(void **state)
{
    struct wa_buf b;

    (void)state;
    wa_buf_init(&b, 0);
    assert_int_equal(wa_buf_printf(&b, "%s=%d", "n", 42), WA_OK);
    assert_int_equal(wa_buf_printf(&b, ",%05.1f", 2.5), WA_OK);
    assert_string_equal(b.data, "n=42,002.5");
    wa_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    wa_buf_cleanup(&b);
}

static void
steal__returns_data_and_reinitialises(void **state)
{
    struct wa_buf b;
    char *s;

    (void)state;
    wa_buf_init(&b, 0);
    s = wa_buf_steal(&b);
    assert_string_equal(s, ""); /* never NULL, even before any append */
    free(s);
    assert_int_equal(wa_buf_append_str(&b, "abc"), WA_OK);
    s = wa_buf_steal(&b);
    assert_string_equal(s, "abc");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
}

/* Escapes in[0..len) and returns the result (without the buffer). */
static char *
escape(const char *in, size_t len)
{
    struct wa_buf b;

    wa_buf_init(&b, 0);
    assert_int_equal(wa_buf_append_json_string(&b, in, len), WA_OK);
    return wa_buf_steal(&b);
}

/* The escaped text must be a JSON string that jansson reads back. Returns its value. */
static char *
roundtrip(const char *escaped)
{
    json_error_t jerr;
    json_t *v = json_loads(escaped, JSON_DECODE_ANY, &jerr);
    char *s;

    if (v == NULL) {
        fail_msg("not valid JSON: %s (%s)", escaped, jerr.text);
    }
    assert_true(json_is_string(v));
    s = strdup(json_string_value(v));
    json_decref(v);
    return s;
}

static void
json_string__quotes_backslash_controls__escaped(void **state)
{
    const char in[] = "a\"b\\c\n\r\t\b\f\x01\x1f";
    char *out = escape(in, sizeof(in) - 1), *back;

    (void)state;
    assert_string_equal(out, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001F\"");
    back = roundtrip(out);
    assert_string_equal(back, in);
    free(back);
    free(out);
}

static void
json_string__embedded_nul__escaped(void **state)
{
    char *out = escape("a\0b", 3);

    (void)state;
    assert_string_equal(out, "\"a\\u0000b\"");
    free(out);
}

static void
json_string__invalid_utf8__replaced_by_fffd(void **state)
{
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"a\xff"
         "b",
         "\"a\xef\xbf\xbd"
         "b\""},                                                      /* never valid */
        {"\xc3", "\"\xef\xbf\xbd\""},                                 /* truncated at end */
        {"\xc3(", "\"\xef\xbf\xbd(\""},                               /* bad continuation */
        {"\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\""},                 /* overlong '/' */
        {"\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* surrogate */
        {"\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* >10FFFF */
        {"\x80", "\"\xef\xbf\xbd\""}, /* lone continuation */
    };
    size_t i;

    (void)state;
    for (i = 0; i < WA_ARRAY_LEN(cases); i++) {
        char *out = escape(cases[i].in, strlen(cases[i].in)), *back;
        assert_string_equal(out, cases[i].want);
        back = roundtrip(out);
        free(back);
        free(out);
    }
}

static void
json_string__arabic_and_emoji__unchanged(void **state)
{
    /* "مرحبا بالعالم 😀 👍🏽" */
    const char *in = "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd8\xa8\xd8\xa7\xd9\x84\xd8\xb9"
                     "\xd8\xa7\xd9\x84\xd9\x85 \xf0\x9f\x98\x80 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd";
    char *out = escape(in, strlen(in)), *back;

    (void)state;
    assert_int_equal(strlen(out), strlen(in) + 2);
    assert_memory_equal(out + 1, in, strlen(in));
    back = roundtrip(out);
    assert_string_equal(back, in);
    free(back);
    free(out);
}

static void
json_string__empty__two_quotes(void **state)
{
    char *out = escape("", 0);

    (void)state;
    assert_string_equal(out, "\"\"");
    free(out);
}

static void
json_string__exact_size_at_max__ok_and_past_it__etoobig_unchanged(void **state)
{
    /* 5 bytes in, 16 out: the quotes, 2 + 2 + 6 + 3 + 1 for '"', '\n', 0x01, 0xFF, 'a' */
    static const char in[] = "\"\n\x01\xFF"
                             "a";
    static const char want[] = "\"\\\"\\n\\u0001\xEF\xBF\xBD"
                               "a\"";
    struct wa_buf b;

    (void)state;
    wa_buf_init(&b, 2 + 16);
    assert_int_equal(wa_buf_append(&b, "[=", 2), WA_OK);
    assert_int_equal(wa_buf_append_json_string(&b, in, 5), WA_OK);
    assert_int_equal(b.len, 2 + 16);
    assert_string_equal(b.data + 2, want);
    wa_buf_cleanup(&b);

    wa_buf_init(&b, 2 + 15);
    assert_int_equal(wa_buf_append(&b, "[=", 2), WA_OK);
    assert_int_equal(wa_buf_append_json_string(&b, in, 5), WA_ETOOBIG);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "[=");
    wa_buf_cleanup(&b);
}

static void
json_string__long_and_mostly_escapes__grows_and_round_trips(void **state)
{
    enum { N = 5000 };
    char *in = malloc(N), *out;
    json_t *v;

    (void)state;
    assert_non_null(in);
    for (size_t i = 0; i < N; i++) { /* runs of every length between escapes */
        in[i] = i % 7 == 0 ? '\x02' : i % 5 == 0 ? '"' : (char)('a' + i % 26);
    }
    out = escape(in, N);
    v = json_loads(out, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    assert_int_equal(json_string_length(v), N);
    assert_memory_equal(json_string_value(v), in, N);
    json_decref(v);
    free(out);
    free(in);
}

static void
rollback__on_error_only__cuts_back_to_start(void **state)
{
    struct wa_buf b;

    (void)state;
    wa_buf_init(&b, 0);
    assert_int_equal(wa_buf_append_str(&b, "keep"), WA_OK);
    assert_int_equal(wa_buf_append_str(&b, "+more"), WA_OK);
    assert_int_equal(wa_buf_rollback(&b, 4, WA_OK), WA_OK); /* success: untouched */
    assert_string_equal(b.data, "keep+more");
    assert_int_equal(wa_buf_rollback(&b, 4, WA_ETOOBIG), WA_ETOOBIG);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "keep");
    wa_buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append__within_max__ok_and_nul_terminated),
        cmocka_unit_test(append__past_max__etoobig_and_unchanged),
        cmocka_unit_test(printf__formats_and_appends),
        cmocka_unit_test(steal__returns_data_and_reinitialises),
        cmocka_unit_test(rollback__on_error_only__cuts_back_to_start),
        cmocka_unit_test(json_string__quotes_backslash_controls__escaped),
        cmocka_unit_test(json_string__embedded_nul__escaped),
        cmocka_unit_test(json_string__invalid_utf8__replaced_by_fffd),
        cmocka_unit_test(json_string__arabic_and_emoji__unchanged),
        cmocka_unit_test(json_string__empty__two_quotes),
        cmocka_unit_test(json_string__exact_size_at_max__ok_and_past_it__etoobig_unchanged),
        cmocka_unit_test(json_string__long_and_mostly_escapes__grows_and_round_trips),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
