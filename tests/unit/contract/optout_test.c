/*
 * optout_test.c: the opt-out key is HMAC-SHA256 of the identity under WA_OPTOUT_KEY (RFC 4231
 * test case 2 as the known vector; the others from Python's hmac), a '+' before the digits
 * names the same key, and nothing in a key name is the number.
 */
#include <string.h>

#include "wa_test.h"
#include "wa/optout.h"

static void
optout_hash__rfc4231_case_2__known_digest(void **state)
{
    struct wa_optout *o = NULL;
    char h[WA_OPTOUT_HASH_LEN + 1];

    (void)state;
    assert_int_equal(wa_optout_new("Jefe", &o), WA_OK);
    assert_int_equal(wa_optout_hash(o, "what do ya want for nothing?", h), WA_OK);
    assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    wa_optout_free(o);
}

static void
optout_key__number_with_or_without_plus_and_bsuid__one_hashed_name_each(void **state)
{
    struct wa_optout *o = NULL;
    char a[128], b[128];

    (void)state;
    assert_int_equal(wa_optout_new(WA_OPTOUT_SANDBOX_KEY, &o), WA_OK);
    assert_int_equal(wa_optout_key(o, "t1.", "15551234567", a, sizeof(a)), WA_OK);
    assert_string_equal(
        a, "t1.optout:7804fa15ecc3488c91d36a3a68ac13f3d6dab3034d2685afeb53f1ccf6016b2b");
    assert_int_equal(wa_optout_key(o, "t1.", "+15551234567", b, sizeof(b)), WA_OK);
    assert_string_equal(a, b);
    assert_null(strstr(a, "5551234567"));
    assert_int_equal(wa_optout_key(o, "", "US.7788990011", a, sizeof(a)), WA_OK);
    assert_string_equal(a,
                        "optout:77a6a1b8095d6b06b2f05fbd48e472af9ff4e197873a271ba2e4f4557a3e38bd");
    /* the stored hash names the same key */
    assert_int_equal(
        wa_optout_key_of_hash(
            "", "77a6a1b8095d6b06b2f05fbd48e472af9ff4e197873a271ba2e4f4557a3e38bd", b, sizeof(b)),
        WA_OK);
    assert_string_equal(a, b);
    wa_optout_free(o);
}

static void
optout_key__bad_input__einval_or_etoobig(void **state)
{
    struct wa_optout *o = NULL;
    char k[32] = "x";

    (void)state;
    assert_int_equal(wa_optout_new("", &o), WA_EINVAL);
    assert_null(o);
    assert_int_equal(wa_optout_new(NULL, &o), WA_EINVAL);
    assert_int_equal(wa_optout_new("k", &o), WA_OK);
    assert_int_equal(wa_optout_key(o, "p.", "", k, sizeof(k)), WA_EINVAL);
    assert_int_equal(wa_optout_key(o, "p.", "+", k, sizeof(k)), WA_EINVAL);
    assert_int_equal(wa_optout_key(o, "p.", NULL, k, sizeof(k)), WA_EINVAL);
    assert_int_equal(wa_optout_key(o, "p.", "15551234567", k, sizeof(k)), WA_ETOOBIG);
    assert_string_equal(k, "");
    assert_int_equal(wa_optout_key_of_hash("p.", "15551234567", k, sizeof(k)), WA_EINVAL);
    assert_int_equal(
        wa_optout_key_of_hash(
            "p.", "77A6A1B8095D6B06B2F05FBD48E472AF9FF4E197873A271BA2E4F4557A3E38BD", k, sizeof(k)),
        WA_EINVAL);
    wa_optout_free(o);
    wa_optout_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(optout_hash__rfc4231_case_2__known_digest),
        cmocka_unit_test(optout_key__number_with_or_without_plus_and_bsuid__one_hashed_name_each),
        cmocka_unit_test(optout_key__bad_input__einval_or_etoobig),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
