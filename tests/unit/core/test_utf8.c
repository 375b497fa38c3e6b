/* test_utf8.c: unit tests of wa/utf8.h: the strict decoder and the lenient counter. */
#include "wa_test.h"

#include <string.h>

#include "wa/err.h"
#include "wa/utf8.h"

static size_t
next(const char *s, size_t n, uint32_t *cp)
{
    return wa_utf8_next((const unsigned char *)s, n, cp);
}

static void
next__valid_sequences__length_and_code_point(void **state)
{
    uint32_t cp = 0;

    (void)state;
    assert_int_equal(next("A", 1, &cp), 1);
    assert_int_equal(cp, 0x41);
    assert_int_equal(next("\0", 1, &cp), 1); /* NUL is valid UTF-8 */
    assert_int_equal(cp, 0);
    assert_int_equal(next("\x7F", 1, &cp), 1);
    assert_int_equal(cp, 0x7F);
    assert_int_equal(next("\xC2\x80", 2, &cp), 2);
    assert_int_equal(cp, 0x80);
    assert_int_equal(next("\xC3\xA9xyz", 5, &cp), 2); /* é, trailing bytes ignored */
    assert_int_equal(cp, 0xE9);
    assert_int_equal(next("\xDF\xBF", 2, &cp), 2);
    assert_int_equal(cp, 0x7FF);
    assert_int_equal(next("\xE0\xA0\x80", 3, &cp), 3);
    assert_int_equal(cp, 0x800);
    assert_int_equal(next("\xD8\xB3", 2, &cp), 2); /* Arabic seen */
    assert_int_equal(cp, 0x633);
    assert_int_equal(next("\xED\x9F\xBF", 3, &cp), 3);
    assert_int_equal(cp, 0xD7FF);
    assert_int_equal(next("\xEE\x80\x80", 3, &cp), 3);
    assert_int_equal(cp, 0xE000);
    assert_int_equal(next("\xEF\xBF\xBD", 3, &cp), 3);
    assert_int_equal(cp, 0xFFFD);
    assert_int_equal(next("\xF0\x90\x80\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x10000);
    assert_int_equal(next("\xF0\x9F\x98\x80", 4, &cp), 4); /* emoji */
    assert_int_equal(cp, 0x1F600);
    assert_int_equal(next("\xF4\x8F\xBF\xBF", 4, &cp), 4);
    assert_int_equal(cp, 0x10FFFF);
    assert_int_equal(next("\xE2\x82\xAC", 3, NULL), 3); /* cp may be NULL */
}

static void
next__invalid_sequences__zero_and_code_point_untouched(void **state)
{
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {"", 0},                     /* nothing to decode */
        {"\x80", 1},                 /* lone continuation byte */
        {"\xBF", 1},                 /* lone continuation byte */
        {"\xC0\x80", 2},             /* overlong NUL */
        {"\xC1\xBF", 2},             /* overlong 0x7F */
        {"\xE0\x9F\xBF", 3},         /* overlong 0x7FF */
        {"\xF0\x8F\xBF\xBF", 4},     /* overlong 0xFFFF */
        {"\xED\xA0\x80", 3},         /* surrogate U+D800 */
        {"\xED\xBF\xBF", 3},         /* surrogate U+DFFF */
        {"\xF4\x90\x80\x80", 4},     /* U+110000 */
        {"\xF7\xBF\xBF\xBF", 4},     /* past U+10FFFF */
        {"\xF8\x88\x80\x80\x80", 5}, /* five-byte form */
        {"\xFF", 1},                 /* never in UTF-8 */
        {"\xC3", 1},                 /* truncated */
        {"\xE2\x82", 2},             /* truncated */
        {"\xF0\x9F\x98", 3},         /* truncated */
        {"\xC3\xA9", 1},             /* valid, but n cuts it */
        {"\xC3(", 2},                /* bad continuation */
        {"\xE2\x28\xA1", 3},         /* bad continuation */
        {"\xF0\x9F\x98\x28", 4},     /* bad continuation */
    };

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(bad); i++) {
        uint32_t cp = 0xABCDEF;

        if (next(bad[i].s, bad[i].n, &cp) != 0) {
            fail_msg("case %zu accepted", i);
        }
        assert_int_equal(cp, 0xABCDEF);
    }
}

static void
next__walking_a_string__visits_every_code_point(void **state)
{
    const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z";
    const uint32_t want[] = {0x61, 0xE9, 0x20AC, 0x1F600, 0x7A};
    size_t i = 0, k = 0, n = strlen(s), step;
    uint32_t cp;

    (void)state;
    while (i < n) {
        step = next(s + i, n - i, &cp);
        assert_true(step > 0);
        assert_true(k < WA_ARRAY_LEN(want));
        assert_int_equal(cp, want[k++]);
        i += step;
    }
    assert_int_equal(k, WA_ARRAY_LEN(want));
}

static void
count__text_and_invalid_bytes__counts_lead_bytes(void **state)
{
    (void)state;
    assert_int_equal(wa_utf8_count("", 0), 0);
    assert_int_equal(wa_utf8_count("hello", 5), 5);
    assert_int_equal(wa_utf8_count("caf\xC3\xA9", 5), 4);
    assert_int_equal(wa_utf8_count("\xF0\x9F\x98\x80\xF0\x9F\x98\x80", 8), 2);
    assert_int_equal(wa_utf8_count("a\0b", 3), 3);     /* n, not NUL, ends the text */
    assert_int_equal(wa_utf8_count("\xFF\xC3", 2), 2); /* invalid lead bytes count one each */
    assert_int_equal(wa_utf8_count("\x80\x80", 2), 0); /* stray continuation bytes do not */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(next__valid_sequences__length_and_code_point),
        cmocka_unit_test(next__invalid_sequences__zero_and_code_point_untouched),
        cmocka_unit_test(next__walking_a_string__visits_every_code_point),
        cmocka_unit_test(count__text_and_invalid_bytes__counts_lead_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
