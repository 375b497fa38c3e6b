/*
 * phone_test.c: wa-users' phone numbers (services/users/src/contact.c, phone.c and the
 * generated phone_table.c): canonical E.164 from the ways people write numbers, per-country
 * length and leading-digit rules, REST path ids. phone_oracle.py checks the same code against
 * libphonenumber over many numbers.
 */
#include <string.h>

#include "users.h"
#include "wa_test.h"

static void
expect(const char *in, const char *want)
{
    char out[32];

    assert_int_equal(us_phone_canonical(in, out, sizeof(out)), WA_OK);
    assert_string_equal(out, want);
}

static void
refused(const char *in)
{
    char out[32];

    assert_int_equal(us_phone_canonical(in, out, sizeof(out)), WA_EINVAL);
}

static void
canonical__written_forms__one_e164(void **state)
{
    (void)state;
    expect("+1 (555) 123-4567", "+15551234567");
    expect("00966500000001", "+966500000001");
    expect("966500000001", "+966500000001");
    expect("+44 20 7946 0958", "+442079460958");
    expect("0044.20.7946.0958", "+442079460958");
    expect("  +39 06 6982 0000", "+390669820000"); /* Italy keeps its leading 0 */
}

static void
canonical__bad_characters_or_unknown_code_or_length__einval(void **state)
{
    char small[8];

    (void)state;
    refused("+12ab");
    refused("+999123");           /* no country uses +999 */
    refused("+1 555 123 456");    /* +1 numbers have 10 digits */
    refused("+1 155 123 4567");   /* NANP area codes do not start with 1 */
    refused("+966 4 0000 0001");  /* Saudi numbers start 1, 5, 800 or 92 */
    refused("+4412345678901234"); /* more than 15 digits */
    refused("");
    refused("+");
    refused(NULL);
    assert_int_equal(us_phone_canonical("+15551234567", small, sizeof(small)), WA_EINVAL);
}

static void
check__rules__longest_prefix_and_length(void **state)
{
    const char *why = NULL;

    (void)state;
    assert_int_equal(us_phone_check("15551234567", &why), WA_OK);
    assert_null(why);
    assert_int_equal(us_phone_check("999123", &why), WA_EINVAL);
    assert_non_null(strstr(why, "calling code"));
    assert_int_equal(us_phone_check("9665000", &why), WA_EINVAL);
    assert_non_null(strstr(why, "length"));
    assert_int_equal(us_phone_check("9668001234567", NULL), WA_OK);    /* 800 + 7: 10 digits */
    assert_int_equal(us_phone_check("966800123456", NULL), WA_EINVAL); /* 800 numbers: 10 */
    assert_non_null(strstr(us_phone_metadata, "phonenumbers"));
    for (size_t i = 1; i < us_phone_nrules; i++) { /* the binary search relies on the order */
        const struct us_phone_rule *a = &us_phone_rules[i - 1], *b = &us_phone_rules[i];

        assert_true(a->cc < b->cc || (a->cc == b->cc && strcmp(a->prefix, b->prefix) < 0));
    }
}

static void
path_id__phone_forms_and_bsuid__contact_ids(void **state)
{
    char out[US_ID_MAX];

    (void)state;
    assert_int_equal(us_contact_path_id("15551234567", out, sizeof(out)), WA_OK);
    assert_string_equal(out, "+15551234567");
    assert_int_equal(us_contact_path_id("US.13491208655302741918", out, sizeof(out)), WA_OK);
    assert_string_equal(out, "US.13491208655302741918");
    assert_int_equal(us_contact_path_id("+999123", out, sizeof(out)), WA_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canonical__written_forms__one_e164),
        cmocka_unit_test(canonical__bad_characters_or_unknown_code_or_length__einval),
        cmocka_unit_test(check__rules__longest_prefix_and_length),
        cmocka_unit_test(path_id__phone_forms_and_bsuid__contact_ids),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
