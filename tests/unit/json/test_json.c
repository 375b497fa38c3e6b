/* test_json.c: unit tests of wa/json.h: parsing limits, typed getters, paths and dumps. */
#include "wa_test.h"

#include <stdlib.h>
#include <string.h>

#include "wa/json.h"

static json_t *
parse_ok(const char *text)
{
    struct wa_error error = {0};
    json_t *v = NULL;

    if (wa_json_parse(text, strlen(text), 0, &v, &error) != WA_OK) {
        fail_msg("parse failed: %s", error.message);
    }
    return v;
}

static void
parse__valid_object__returns_value(void **state)
{
    json_t *v = parse_ok("{\"a\":1,\"b\":[true,null]}");

    (void)state;
    assert_true(json_is_object(v));
    assert_int_equal(json_integer_value(json_object_get(v, "a")), 1);
    json_decref(v);
}

static void
parse__not_nul_terminated__uses_len_only(void **state)
{
    const char text[] = "{\"a\":1}GARBAGE";
    json_t *v = NULL;

    (void)state;
    assert_int_equal(wa_json_parse(text, 7, 0, &v, NULL), WA_OK);
    json_decref(v);
}

static void
parse__deep_nesting__rejected_before_jansson(void **state)
{
    size_t n = 200000, i;
    char *text = malloc(2 * n + 1);
    struct wa_error error = {0};
    json_t *v = (json_t *)1;

    (void)state;
    assert_non_null(text);
    for (i = 0; i < n; i++) {
        text[i] = '[';
        text[n + i] = ']';
    }
    text[2 * n] = '\0';
    assert_int_equal(wa_json_parse(text, 2 * n, 64, &v, &error), WA_ELIMIT);
    assert_null(v);
    assert_non_null(strstr(error.message, "64"));
    free(text);
}

static void
parse__depth_at_limit__accepted_one_more__rejected(void **state)
{
    json_t *v = NULL;

    (void)state;
    assert_int_equal(wa_json_parse("[[{\"a\":[]}]]", 12, 4, &v, NULL), WA_OK);
    json_decref(v);
    v = NULL;
    assert_int_equal(wa_json_parse("[[{\"a\":[[]]}]]", 14, 4, &v, NULL), WA_ELIMIT);
    assert_null(v);
}

static void
parse__brackets_inside_strings__not_counted(void **state)
{
    const char *text = "{\"a\":\"[[[[{{{{\\\"[[[[\",\"b\":\"\\\\\",\"c\":[1]}";
    json_t *v = NULL;

    (void)state;
    assert_int_equal(wa_json_depth(text, strlen(text), 100), 2);
    assert_int_equal(wa_json_parse(text, strlen(text), 2, &v, NULL), WA_OK);
    assert_string_equal(wa_json_str(v, "a"), "[[[[{{{{\"[[[[");
    json_decref(v);
}

static void
parse__invalid_utf8__rejected(void **state)
{
    const char *text = "{\"a\":\"\xff\xfe\"}";
    struct wa_error error = {0};
    json_t *v = NULL;

    (void)state;
    assert_int_equal(wa_json_parse(text, strlen(text), 0, &v, &error), WA_EPARSE);
    assert_null(v);
    assert_true(error.message[0] != '\0');
}

static void
parse__huge_numbers__rejected(void **state)
{
    static const char *const cases[] = {"[99999999999999999999999]", "[1e999]",
                                        "[-99999999999999999999999]"};
    size_t i;

    (void)state;
    for (i = 0; i < WA_ARRAY_LEN(cases); i++) {
        json_t *v = NULL;
        assert_int_equal(wa_json_parse(cases[i], strlen(cases[i]), 0, &v, NULL), WA_EPARSE);
        assert_null(v);
    }
}

static void
parse__garbage_and_truncation__rejected(void **state)
{
    static const char *const cases[] = {"",
                                        "{",
                                        "{\"a\":}",
                                        "[1,]",
                                        "nope",
                                        "\"scalar\"",
                                        "{\"a\":\"\\u0000\"}",
                                        "{\"a\":1} {\"b\":2}"};
    size_t i;

    (void)state;
    for (i = 0; i < WA_ARRAY_LEN(cases); i++) {
        json_t *v = NULL;
        assert_int_equal(wa_json_parse(cases[i], strlen(cases[i]), 0, &v, NULL), WA_EPARSE);
        assert_null(v);
    }
}

static void
parse__embedded_nul_byte__rejected(void **state)
{
    const char text[] = "{\"a\":1}\0{}";
    json_t *v = NULL;

    (void)state;
    assert_int_equal(wa_json_parse(text, sizeof(text) - 1, 0, &v, NULL), WA_EPARSE);
}

static void
parse__duplicate_keys__last_wins(void **state)
{
    json_t *v = parse_ok("{\"a\":\"first\",\"a\":\"second\"}");

    (void)state;
    assert_string_equal(wa_json_str(v, "a"), "second");
    json_decref(v);
}

static void
str__missing_or_wrong_type__null(void **state)
{
    json_t *v = parse_ok("{\"s\":\"x\",\"n\":1,\"o\":{}}");
    json_t *arr = parse_ok("[\"s\"]");

    (void)state;
    assert_string_equal(wa_json_str(v, "s"), "x");
    assert_null(wa_json_str(v, "n"));
    assert_null(wa_json_str(v, "o"));
    assert_null(wa_json_str(v, "missing"));
    assert_null(wa_json_str(arr, "s"));
    assert_null(wa_json_str(NULL, "s"));
    json_decref(v);
    json_decref(arr);
}

static void
get_str__bounds_and_errors__name_the_field(void **state)
{
    json_t *v = parse_ok("{\"name\":\"abcdef\",\"num\":5}");
    struct wa_error error = {0};
    const char *s = NULL;

    (void)state;
    assert_int_equal(wa_json_get_str(v, "name", 6, &s, &error), WA_OK);
    assert_string_equal(s, "abcdef");
    assert_int_equal(wa_json_get_str(v, "name", 5, &s, &error), WA_ETOOBIG);
    assert_non_null(strstr(error.message, "\"name\""));
    assert_int_equal(wa_json_get_str(v, "num", 100, &s, &error), WA_EPARSE);
    assert_non_null(strstr(error.message, "\"num\""));
    assert_int_equal(wa_json_get_str(v, "nope", 100, &s, &error), WA_ENOTFOUND);
    assert_non_null(strstr(error.message, "\"nope\""));
    assert_int_equal(wa_json_get_str(v, "nope", 100, &s, NULL), WA_ENOTFOUND);
    json_decref(v);
}

static void
get_str__utf8_length_counts_bytes(void **state)
{
    /* "مرحبا" is 5 characters, 10 bytes */
    json_t *v = parse_ok("{\"t\":\"\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7\"}");
    const char *s = NULL;

    (void)state;
    assert_int_equal(wa_json_get_str(v, "t", 9, &s, NULL), WA_ETOOBIG);
    assert_int_equal(wa_json_get_str(v, "t", 10, &s, NULL), WA_OK);
    assert_string_equal(s, "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7");
    json_decref(v);
}

static void
get_str__embedded_nul__rejected(void **state)
{
    json_t *v = json_object();
    const char *s = NULL;

    (void)state;
    json_object_set_new(v, "k", json_stringn("a\0b", 3));
    assert_int_equal(wa_json_get_str(v, "k", 100, &s, NULL), WA_EPARSE);
    assert_null(wa_json_str(v, "k"));
    json_decref(v);
}

static void
get_int64__bounds_and_types(void **state)
{
    json_t *v = parse_ok("{\"i\":42,\"neg\":-9223372036854775808,\"r\":1.0,\"s\":\"42\"}");
    struct wa_error error = {0};
    int64_t n = 0;

    (void)state;
    assert_int_equal(wa_json_get_int64(v, "i", 0, 100, &n, &error), WA_OK);
    assert_int_equal(n, 42);
    assert_int_equal(wa_json_get_int64(v, "i", 0, 41, &n, &error), WA_EPARSE);
    assert_non_null(strstr(error.message, "\"i\""));
    assert_int_equal(wa_json_get_int64(v, "neg", INT64_MIN, INT64_MAX, &n, NULL), WA_OK);
    assert_true(n == INT64_MIN);
    assert_int_equal(wa_json_get_int64(v, "r", 0, 100, &n, NULL), WA_EPARSE);
    assert_int_equal(wa_json_get_int64(v, "s", 0, 100, &n, NULL), WA_EPARSE);
    assert_int_equal(wa_json_get_int64(v, "x", 0, 100, &n, NULL), WA_ENOTFOUND);
    json_decref(v);
}

static void
get_bool__only_true_false(void **state)
{
    json_t *v = parse_ok("{\"t\":true,\"f\":false,\"one\":1,\"null\":null}");
    bool b = false;

    (void)state;
    assert_int_equal(wa_json_get_bool(v, "t", &b, NULL), WA_OK);
    assert_true(b);
    assert_int_equal(wa_json_get_bool(v, "f", &b, NULL), WA_OK);
    assert_false(b);
    assert_int_equal(wa_json_get_bool(v, "one", &b, NULL), WA_EPARSE);
    assert_int_equal(wa_json_get_bool(v, "null", &b, NULL), WA_EPARSE);
    assert_int_equal(wa_json_get_bool(v, "none", &b, NULL), WA_ENOTFOUND);
    json_decref(v);
}

static void
get_object_and_array__types_and_bounds(void **state)
{
    json_t *v = parse_ok("{\"o\":{\"k\":1},\"a\":[1,2,3]}");
    struct wa_error error = {0};
    json_t *out = NULL;

    (void)state;
    assert_int_equal(wa_json_get_object(v, "o", &out, NULL), WA_OK);
    assert_true(json_is_object(out));
    assert_int_equal(wa_json_get_object(v, "a", &out, NULL), WA_EPARSE);
    assert_int_equal(wa_json_get_object(v, "x", &out, NULL), WA_ENOTFOUND);
    assert_int_equal(wa_json_get_array(v, "a", 3, &out, NULL), WA_OK);
    assert_int_equal(json_array_size(out), 3);
    assert_int_equal(wa_json_get_array(v, "a", 2, &out, &error), WA_ETOOBIG);
    assert_non_null(strstr(error.message, "\"a\""));
    assert_int_equal(wa_json_get_array(v, "o", 10, &out, NULL), WA_EPARSE);
    assert_int_equal(wa_json_get_array(v, "x", 10, &out, NULL), WA_ENOTFOUND);
    json_decref(v);
}

static void
path__webhook_shape__finds_nested_values(void **state)
{
    json_t *v = parse_ok("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
                         "\"changes\":[{\"field\":\"messages\",\"value\":{\"messages\":[{\"id\":"
                         "\"wamid.X\"}]}}]}]}");

    (void)state;
    assert_true(json_is_object(wa_json_path(v, "entry.0.changes.0.value")));
    assert_string_equal(wa_json_path_str(v, "entry.0.changes.0.value.messages.0.id"), "wamid.X");
    assert_string_equal(wa_json_path_str(v, "entry.0.changes.0.field"), "messages");
    assert_string_equal(wa_json_path_str(v, "object"), "whatsapp_business_account");
    assert_null(wa_json_path(v, "entry.1"));
    assert_null(wa_json_path(v, "entry.x"));
    assert_null(wa_json_path(v, "entry.-1"));
    assert_null(wa_json_path(v, "entry.99999999999999999999"));
    assert_null(wa_json_path(v, "entry.0.id.more"));
    assert_null(wa_json_path(v, "entry..0"));
    assert_null(wa_json_path(v, "entry.0."));
    assert_null(wa_json_path_str(v, "entry.0"));
    assert_null(wa_json_path(NULL, "a"));
    json_decref(v);
}

static void
path__numeric_key_on_object__is_a_key(void **state)
{
    json_t *v = parse_ok("{\"0\":{\"1\":\"yes\"}}");

    (void)state;
    assert_string_equal(wa_json_path_str(v, "0.1"), "yes");
    json_decref(v);
}

static void
dump__compact_and_utf8_kept(void **state)
{
    const char *text = "{ \"a\" : [ 1 , 2 ] , \"t\" : \"\xd9\x85\xd8\xb1 \xf0\x9f\x98\x80\" }";
    json_t *v = parse_ok(text);
    char *s = wa_json_dump(v);

    (void)state;
    assert_non_null(s);
    assert_string_equal(s, "{\"a\":[1,2],\"t\":\"\xd9\x85\xd8\xb1 \xf0\x9f\x98\x80\"}");
    free(s);
    json_decref(v);
    v = json_string("scalar");
    s = wa_json_dump(v);
    assert_string_equal(s, "\"scalar\"");
    free(s);
    json_decref(v);
    assert_null(wa_json_dump(NULL));
}

static void
dump_buf__appends_and_respects_max(void **state)
{
    json_t *v = parse_ok("{\"key\":\"a long enough value\"}");
    struct wa_buf b;

    (void)state;
    wa_buf_init(&b, 16);
    assert_int_equal(wa_buf_append_str(&b, "x="), WA_OK);
    assert_int_equal(wa_json_dump_buf(v, &b), WA_ETOOBIG);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "x=");
    wa_buf_cleanup(&b);
    wa_buf_init(&b, 0);
    assert_int_equal(wa_buf_append_str(&b, "x="), WA_OK);
    assert_int_equal(wa_json_dump_buf(v, &b), WA_OK);
    assert_string_equal(b.data, "x={\"key\":\"a long enough value\"}");
    wa_buf_cleanup(&b);
    json_decref(v);
}

/* Meta's numbers come out as sent: the fewest digits that read back as the same double. */
static void
dump__reals_as_sent__fewest_digits_that_round_trip(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"[37.483307]", "[37.483307]"},
        {"[-122.148981]", "[-122.148981]"},
        {"[0.1]", "[0.1]"},
        {"[1.0]", "[1.0]"},
        {"[-0.0]", "[-0.0]"},
        {"[1e300]", "[1e300]"},
        {"[1.5e-7]", "[1.5e-7]"},
        {"[0.30000000000000004]", "[0.30000000000000004]"},
        {"[1234567890.1234567]", "[1234567890.1234567]"},
        {"[1689556908129832]", "[1689556908129832]"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = parse_ok(cases[i].in);
        char *s = wa_json_dump(v);

        assert_non_null(s);
        assert_string_equal(s, cases[i].out);
        free(s);
        json_decref(v);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse__valid_object__returns_value),
        cmocka_unit_test(parse__not_nul_terminated__uses_len_only),
        cmocka_unit_test(parse__deep_nesting__rejected_before_jansson),
        cmocka_unit_test(parse__depth_at_limit__accepted_one_more__rejected),
        cmocka_unit_test(parse__brackets_inside_strings__not_counted),
        cmocka_unit_test(parse__invalid_utf8__rejected),
        cmocka_unit_test(parse__huge_numbers__rejected),
        cmocka_unit_test(parse__garbage_and_truncation__rejected),
        cmocka_unit_test(parse__embedded_nul_byte__rejected),
        cmocka_unit_test(parse__duplicate_keys__last_wins),
        cmocka_unit_test(str__missing_or_wrong_type__null),
        cmocka_unit_test(get_str__bounds_and_errors__name_the_field),
        cmocka_unit_test(get_str__utf8_length_counts_bytes),
        cmocka_unit_test(get_str__embedded_nul__rejected),
        cmocka_unit_test(get_int64__bounds_and_types),
        cmocka_unit_test(get_bool__only_true_false),
        cmocka_unit_test(get_object_and_array__types_and_bounds),
        cmocka_unit_test(path__webhook_shape__finds_nested_values),
        cmocka_unit_test(path__numeric_key_on_object__is_a_key),
        cmocka_unit_test(dump__compact_and_utf8_kept),
        cmocka_unit_test(dump_buf__appends_and_respects_max),
        cmocka_unit_test(dump__reals_as_sent__fewest_digits_that_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
