/* test_clock.c: unit tests of wa/clock.h: RFC 3339 timestamps of wall-clock milliseconds. */
#include "wa_test.h"

#include <string.h>

#include "wa/clock.h"

static void
rfc3339__four_digit_years__utc_with_milliseconds(void **state)
{
    char out[WA_RFC3339_LEN];

    (void)state;
    wa_clock_rfc3339(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    wa_clock_rfc3339(1750030073123ull, out);
    assert_string_equal(out, "2025-06-15T23:27:53.123Z");
    wa_clock_rfc3339(951782400007ull, out); /* a leap day */
    assert_string_equal(out, "2000-02-29T00:00:00.007Z");
    wa_clock_rfc3339(253402300799999ull, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
}

static void
rfc3339__five_digit_year__written_in_full(void **state)
{
    char out[WA_RFC3339_LEN];

    (void)state;
    wa_clock_rfc3339(253402300800000ull, out);
    assert_string_equal(out, "10000-01-01T00:00:00.000Z");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc3339__four_digit_years__utc_with_milliseconds),
        cmocka_unit_test(rfc3339__five_digit_year__written_in_full),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
