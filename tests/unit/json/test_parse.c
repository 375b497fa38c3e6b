/*
 * test_parse.c: wa_json_parse's reader (libs/json/src/parse.c) against jansson's json_loadb:
 * for every input the same verdict (accepted or refused) and, when accepted, the same document,
 * compared by json_equal and by the compact dump (member order, reals to the last bit). Inputs:
 * a table of the grammar's corners, every file under tests/data, and a spread of prefixes and
 * one-byte mutations of those files.
 */
#define _XOPEN_SOURCE 700
#include "wa_test.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/json.h"

static size_t compared, accepted;

/* Fails the test when the two readers disagree on data (unique: wa_json_parse_unique against
 * JSON_REJECT_DUPLICATES). */
static void
same_as_jansson_mode(const char *data, size_t len, const char *what, bool unique)
{
    struct wa_error error = {0};
    json_t *ours = NULL, *theirs = json_loadb(data, len, unique ? JSON_REJECT_DUPLICATES : 0, NULL);
    enum wa_err err = unique ? wa_json_parse_unique(data, len, WA_JSON_DEPTH_MAX, &ours, &error)
                             : wa_json_parse(data, len, WA_JSON_DEPTH_MAX, &ours, &error);

    compared++;
    if (memchr(data, '\0', len) != NULL) {
        /* jansson drops a NUL byte right after a number or literal ("[1\0]" passes); a NUL
         * byte is never valid JSON text, and this reader refuses it wherever it is */
        if (err != WA_EPARSE && err != WA_ELIMIT) {
            fail_msg("%s: a NUL byte accepted", what);
        }
        json_decref(ours);
        json_decref(theirs);
        return;
    }
    if (err == WA_ELIMIT) {
        json_decref(theirs);
        return; /* deeper than the limit: refused before any comparison makes sense */
    }
    if ((err == WA_OK) != (theirs != NULL)) {
        fail_msg("%s (%zu bytes): wa_json_parse says %s (%s), json_loadb %s", what, len,
                 err == WA_OK ? "valid" : "invalid", error.message,
                 theirs != NULL ? "valid" : "invalid");
    }
    if (err == WA_OK) {
        char *a = wa_json_dump(ours), *b = wa_json_dump(theirs);

        accepted++;
        if (!json_equal(ours, theirs) || a == NULL || b == NULL || strcmp(a, b) != 0) {
            fail_msg("%s: documents differ:\n  ours   %s\n  jansson %s", what, a ? a : "?",
                     b ? b : "?");
        }
        free(a);
        free(b);
    } else if (error.message[0] == '\0' || strstr(error.message, "line ") == NULL) {
        fail_msg("%s: refused without a located reason: '%s'", what, error.message);
    }
    json_decref(ours);
    json_decref(theirs);
}

static void
same_as_jansson(const char *data, size_t len, const char *what)
{
    same_as_jansson_mode(data, len, what, false);
    same_as_jansson_mode(data, len, what, true);
}

static void
parse__grammar_corners__same_verdict_and_document_as_jansson(void **state)
{
    static const char *const cases[] = {
        /* structure */
        "{}",
        "[]",
        " \t\r\n[ ] \n",
        "[[]]",
        "{\"a\":{}}",
        "[",
        "]",
        "{",
        "}",
        "[}",
        "{]",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{\"a\" 1}",
        "{\"a\":1,}",
        "{,}",
        "{\"a\"}",
        "{1:2}",
        "{\"a\":1 \"b\":2}",
        "[1]x",
        "[1] [2]",
        "x",
        "",
        " ",
        "1",
        "\"s\"",
        "true",
        "null",
        "\xEF\xBB\xBF[]",
        "[]\xEF\xBB\xBF",
        /* literals */
        "[true,false,null]",
        "[tru]",
        "[truex]",
        "[nul]",
        "[nulL]",
        "[True]",
        "[true1]",
        "[true_]",
        "[falsey]",
        "[-true]",
        /* numbers */
        "[0]",
        "[-0]",
        "[-0.0]",
        "[0.0]",
        "[01]",
        "[-01]",
        "[00]",
        "[1.]",
        "[.1]",
        "[+1]",
        "[1e]",
        "[1e+]",
        "[1e-5]",
        "[1E5]",
        "[1.5e+10]",
        "[-]",
        "[--1]",
        "[1-2]",
        "[0x10]",
        "[9223372036854775807]",
        "[9223372036854775808]",
        "[-9223372036854775808]",
        "[-9223372036854775809]",
        "[18446744073709551616]",
        "[1e308]",
        "[1e309]",
        "[-1e309]",
        "[1e-400]",
        "[4.9e-324]",
        "[2.2250738585072014e-308]",
        "[37.483307]",
        "[0.1,0.2,0.30000000000000004]",
        "[123456789012345678901234567890.5]",
        "[1.7976931348623157e308]",
        "[1.7976931348623159e308]",
        "[1e0001]",
        "[Infinity]",
        "[NaN]",
        "[-Infinity]",
        "[1 ]",
        "[ 1]",
        "[1\t,2]",
        /* strings */
        "[\"\"]",
        "[\"a\"]",
        "[\"a\\\"b\"]",
        "[\"\\\\\"]",
        "[\"\\/\"]",
        "[\"\\b\\f\\n\\r\\t\"]",
        "[\"\\a\"]",
        "[\"\\x41\"]",
        "[\"\\u0041\"]",
        "[\"\\u00e9\"]",
        "[\"\\u00E9\"]",
        "[\"\\u20ac\"]",
        "[\"\\ud83d\\ude00\"]",
        "[\"\\uD83D\\uDE00\"]",
        "[\"\\ud83d\"]",
        "[\"\\ud83dx\"]",
        "[\"\\ud83d\\u0041\"]",
        "[\"\\ude00\"]",
        "[\"\\ude00\\ud83d\"]",
        "[\"\\u0000\"]",
        "[\"\\u000\"]",
        "[\"\\u00g0\"]",
        "[\"\\u\"]",
        "[\"\\\"]",
        "[\"\\",
        "[\"abc",
        "[\"a\x01\"]",
        "[\"a\x1f\"]",
        "[\"a\x7f\"]",
        "[\"a\tb\"]",
        "[\"a\nb\"]",
        "[\"\xC3\xA9\"]",
        "[\"\xC3\"]",
        "[\"\xC3\x28\"]",
        "[\"\xC0\x80\"]",
        "[\"\xE2\x82\xAC\"]",
        "[\"\xED\xA0\x80\"]",
        "[\"\xF0\x9F\x98\x80\"]",
        "[\"\xF4\x90\x80\x80\"]",
        "[\"\xF8\x88\x80\x80\x80\"]",
        "[\"\x80\"]",
        "[\"\xFF\"]",
        "[\"a\xE2\x82\"]",
        "[\"12345678\\n12345678\xC3\xA9"
        "12345678\"]",
        "[\"a very long plain ascii string that crosses several eight byte words\"]",
        /* keys */
        "{\"a\":1,\"a\":2}",
        "{\"a\":{\"x\":1},\"b\":2,\"a\":3}",
        "{\"\":1}",
        "{\"\\u00e9\":1}",
        "{\"k\\n\":\"v\\n\"}",
        "{\"\\u0000\":1}",
        "{\"\xC3\":1}",
        "{\"a\":1,\"\\u0061\":2}",
        "{\"an escaped key longer than the stack copy of one hundred and twenty eight bytes "
        "is copied to the heap\\t before the value is read, and this one is long enough\":"
        "\"\\u00e9\"}",
        /* nesting */
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "{\"a\":[{\"b\":[{\"c\":[]}]}]}",
    };

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        same_as_jansson(cases[i], strlen(cases[i]), cases[i]);
    }
    /* NUL bytes, which the table's C strings cannot carry */
    same_as_jansson("[1]\0", 4, "[1] then NUL");
    same_as_jansson("[1\0]", 4, "NUL after a number");
    same_as_jansson("[true\0]", 7, "NUL after a literal");
    same_as_jansson("\0[1]", 4, "NUL then [1]");
    same_as_jansson("{\"a\":\"b\0c\"}", 11, "NUL inside a string");
}

/* wa_json_number_too_big says "too big" exactly where the reader refuses a number for its
 * size, and never for a token that is not a number. */
static void
number_too_big__matches_the_reader(void **state)
{
    static const struct {
        const char *token;
        bool too_big;
    } cases[] = {
        {"9223372036854775807", false},
        {"9223372036854775808", true},
        {"-9223372036854775808", false},
        {"-9223372036854775809", true},
        {"1e308", false},
        {"1e309", true},
        {"-1e309", true},
        {"1e-400", false},
        {"37.483307", false},
        {"0", false},
        {"1-2", false},
        {"-", false},
        {"", false},
        {"12a", false},
        {"1234567890123456789012345678901234567890123456789012345678901234567890", true},
        {"1.0000000000000000000000000000000000000000000000000000000000000000000e400", true},
    };

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        const char *t = cases[i].token;
        char doc[128];
        json_t *v = NULL;
        enum wa_err err;

        assert_int_equal(wa_json_number_too_big(t, strlen(t)), cases[i].too_big);
        snprintf(doc, sizeof(doc), "[%s]", t);
        err = wa_json_parse(doc, strlen(doc), 0, &v, NULL);
        if (cases[i].too_big) {
            assert_int_equal(err, WA_EPARSE);
        }
        json_decref(v);
    }
}

/* Every file under tests/data, prefixes of it (a spread, and each of the last 16) and one-byte
 * mutations at a spread of places: the readers agree on all of them. */
static int
check_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    static const char swaps[] = {'"', '\\', '{', '}', '[',    ']',    ',',    ':',  '0', '-',
                                 'e', '.',  ' ', 'u', '\x80', '\xC3', '\x01', '\0', 'n'};
    char *data;
    size_t len, step;
    FILE *f;

    (void)ftw;
    if (type != FTW_F || st->st_size > 256 * 1024) {
        return 0;
    }
    if ((f = fopen(path, "rb")) == NULL) {
        fail_msg("cannot open %s", path);
    }
    len = (size_t)st->st_size;
    data = test_malloc(len + 1);
    assert_int_equal(fread(data, 1, len, f), len);
    fclose(f);
    same_as_jansson(data, len, path);
    step = len / 41 + 1;
    for (size_t n = 0; n < len; n += n + 16 < len ? step : 1) {
        same_as_jansson(data, n, path);
    }
    step = len / 23 + 1;
    for (size_t at = 0; at < len; at += step) {
        char was = data[at];

        for (size_t k = 0; k < sizeof(swaps); k++) {
            data[at] = swaps[k];
            same_as_jansson(data, len, path);
        }
        data[at] = was;
    }
    test_free(data);
    return 0;
}

static void
parse__every_fixture_prefix_and_mutation__same_as_jansson(void **state)
{
    const char *dir = getenv("WA_TEST_DATA");

    (void)state;
    if (dir == NULL) {
        fail_msg("WA_TEST_DATA is not set (run through ctest)");
    }
    compared = accepted = 0;
    assert_int_equal(nftw(dir, check_file, 16, FTW_PHYS), 0);
    /* the walk found the fixtures, and both verdicts occurred */
    assert_true(compared > 10000);
    assert_true(accepted > 100);
    assert_true(accepted < compared);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse__grammar_corners__same_verdict_and_document_as_jansson),
        cmocka_unit_test(parse__every_fixture_prefix_and_mutation__same_as_jansson),
        cmocka_unit_test(number_too_big__matches_the_reader),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
