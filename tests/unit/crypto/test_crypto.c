/*
 * test_crypto.c: unit tests of wa/crypto.h: SHA-1/SHA-256 and RFC 4231 HMAC vectors (stateless
 * and keyed once), hex, hub signatures (stateless and with a wa_hub_verifier).
 */
#include "wa_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/crypto.h"

static void
check_hex(const unsigned char *got, size_t len, const char *want_hex)
{
    char hex[129];

    assert_true(len <= 64);
    wa_hex_encode(got, len, hex);
    assert_string_equal(hex, want_hex);
}

static void
sha256__known_vectors(void **state)
{
    unsigned char out[32];

    (void)state;
    wa_sha256("", 0, out);
    check_hex(out, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    wa_sha256("abc", 3, out);
    check_hex(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
sha1__known_vectors(void **state)
{
    unsigned char out[WA_SHA1_LEN];

    (void)state;
    wa_sha1("", 0, out);
    check_hex(out, WA_SHA1_LEN, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    wa_sha1("abc", 3, out);
    check_hex(out, WA_SHA1_LEN, "a9993e364706816aba3e25717850c26c9cd0d89d");
    wa_sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
    check_hex(out, WA_SHA1_LEN, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

struct rfc4231_case {
    unsigned char key[131];
    size_t keylen;
    const char *data; /* NULL: use fill */
    unsigned char fill;
    size_t datalen;
    const char *mac;
    size_t maclen; /* bytes compared (case 5 truncates to 16) */
};

static void
hmac_sha256__rfc4231_vectors(void **state)
{
    static struct rfc4231_case cases[7];
    unsigned char out[32];
    size_t i;

    (void)state;
    memset(cases, 0, sizeof(cases));
    memset(cases[0].key, 0x0b, 20);
    cases[0].keylen = 20;
    cases[0].data = "Hi There";
    cases[0].mac = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
    memcpy(cases[1].key, "Jefe", 4);
    cases[1].keylen = 4;
    cases[1].data = "what do ya want for nothing?";
    cases[1].mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    memset(cases[2].key, 0xaa, 20);
    cases[2].keylen = 20;
    cases[2].fill = 0xdd;
    cases[2].datalen = 50;
    cases[2].mac = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe";
    for (i = 0; i < 25; i++) {
        cases[3].key[i] = (unsigned char)(i + 1);
    }
    cases[3].keylen = 25;
    cases[3].fill = 0xcd;
    cases[3].datalen = 50;
    cases[3].mac = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b";
    memset(cases[4].key, 0x0c, 20);
    cases[4].keylen = 20;
    cases[4].data = "Test With Truncation";
    cases[4].mac = "a3b6167473100ee06e0c796c2955552b";
    memset(cases[5].key, 0xaa, 131);
    cases[5].keylen = 131;
    cases[5].data = "Test Using Larger Than Block-Size Key - Hash Key First";
    cases[5].mac = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
    memset(cases[6].key, 0xaa, 131);
    cases[6].keylen = 131;
    cases[6].data = "This is a test using a larger than block-size key and a larger than "
                    "block-size data. The key needs to be hashed before being used by the HMAC "
                    "algorithm.";
    cases[6].mac = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";

    for (i = 0; i < WA_ARRAY_LEN(cases); i++) {
        unsigned char data[50];
        const void *d = cases[i].data;
        size_t len = cases[i].data != NULL ? strlen(cases[i].data) : cases[i].datalen;

        if (d == NULL) {
            memset(data, cases[i].fill, sizeof(data));
            d = data;
        }
        wa_hmac_sha256(cases[i].key, cases[i].keylen, d, len, out);
        check_hex(out, strlen(cases[i].mac) / 2, cases[i].mac);
        /* the same key set up once gives the same MAC, for this message and the next */
        struct wa_hmac *h = NULL;
        assert_int_equal(wa_hmac_new(cases[i].key, cases[i].keylen, &h), WA_OK);
        for (int round = 0; round < 2; round++) {
            memset(out, 0, sizeof(out));
            wa_hmac_digest(h, d, len, out);
            check_hex(out, strlen(cases[i].mac) / 2, cases[i].mac);
        }
        wa_hmac_free(h);
    }
}

static void
hmac_sha256__empty_key_and_data__matches_reference(void **state)
{
    unsigned char out[32];

    (void)state;
    /* HMAC-SHA256("", "") as computed by `openssl dgst -sha256 -hmac ""` */
    wa_hmac_sha256("", 0, "", 0, out);
    check_hex(out, 32, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");

    struct wa_hmac *h = NULL;
    assert_int_equal(wa_hmac_new("", 0, &h), WA_OK);
    memset(out, 0, sizeof(out));
    wa_hmac_digest(h, "", 0, out);
    check_hex(out, 32, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    wa_hmac_free(h);
    wa_hmac_free(NULL);
}

static void
crypto_equal__detects_any_difference(void **state)
{
    unsigned char a[32], b[32];
    size_t i;

    (void)state;
    memset(a, 0x5a, sizeof(a));
    memcpy(b, a, sizeof(b));
    assert_true(wa_crypto_equal(a, b, sizeof(a)));
    assert_true(wa_crypto_equal(a, b, 0));
    for (i = 0; i < sizeof(a); i++) {
        b[i] ^= 0x01;
        assert_false(wa_crypto_equal(a, b, sizeof(a)));
        b[i] ^= 0x01;
    }
}

static void
crypto_str_equal__length_content_and_null(void **state)
{
    (void)state;
    assert_true(wa_crypto_str_equal("sandbox-token", "sandbox-token"));
    assert_true(wa_crypto_str_equal("", ""));
    assert_false(wa_crypto_str_equal("sandbox-tokem", "sandbox-token"));
    assert_false(wa_crypto_str_equal("sandbox-token-", "sandbox-token"));
    assert_false(wa_crypto_str_equal("sandbox", "sandbox-token"));
    assert_false(wa_crypto_str_equal(NULL, "sandbox-token"));
    assert_false(wa_crypto_str_equal("x", NULL));
}

static void
hex_encode__lowercase_and_terminated(void **state)
{
    const unsigned char in[] = {0x00, 0x0f, 0xa5, 0xff};
    char out[9];

    (void)state;
    memset(out, 'X', sizeof(out));
    assert_int_equal(wa_hex_encode(in, sizeof(in), out), 8);
    assert_string_equal(out, "000fa5ff");
    assert_int_equal(wa_hex_encode(in, 0, out), 0);
    assert_string_equal(out, "");
}

static void
hex_decode__upper_and_lower_case(void **state)
{
    unsigned char out[4];

    (void)state;
    assert_int_equal(wa_hex_decode("000fA5fF", out, sizeof(out)), 4);
    assert_int_equal(out[0], 0x00);
    assert_int_equal(out[1], 0x0f);
    assert_int_equal(out[2], 0xa5);
    assert_int_equal(out[3], 0xff);
    assert_int_equal(wa_hex_decode("ab", out, sizeof(out)), 1);
    assert_int_equal(out[0], 0xab);
    assert_int_equal(wa_hex_decode("", out, sizeof(out)), 0);
}

static void
hex_decode__hostile_input__minus_one(void **state)
{
    static const char *const cases[] = {"abc",
                                        "0g",
                                        "g0",
                                        "zz",
                                        " 0a",
                                        "0a ",
                                        "0x00",
                                        "0a\n",
                                        "0102030405",
                                        "-1",
                                        "\xc3\xa9\xc3\xa9"};
    unsigned char out[4];
    size_t i;

    (void)state;
    for (i = 0; i < WA_ARRAY_LEN(cases); i++) {
        assert_int_equal(wa_hex_decode(cases[i], out, sizeof(out)), -1);
    }
    assert_int_equal(wa_hex_decode(NULL, out, sizeof(out)), -1);
    assert_int_equal(wa_hex_decode("00", out, 0), -1);
}

static void
hub_signature__make_then_verify__ok(void **state)
{
    const char *body = "{\"object\":\"whatsapp_business_account\"}";
    const char *secrets[] = {"app-secret"};
    char sig[WA_HUB_SIGNATURE_LEN];

    (void)state;
    wa_hub_signature_make("app-secret", body, strlen(body), sig);
    assert_int_equal(strlen(sig), 71);
    assert_memory_equal(sig, "sha256=", 7);
    assert_int_equal(wa_hub_signature_verify(sig, body, strlen(body), secrets, 1, NULL), WA_OK);
}

static void
hub_signature__known_value(void **state)
{
    char sig[WA_HUB_SIGNATURE_LEN];

    (void)state;
    /* RFC 4231 case 2 expressed as a header */
    wa_hub_signature_make("Jefe", "what do ya want for nothing?", 28, sig);
    assert_string_equal(sig,
                        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void
hub_signature__uppercase_hex__accepted(void **state)
{
    const char *secrets[] = {"Jefe"};
    const char *hdr = "sha256=5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843";

    (void)state;
    assert_int_equal(
        wa_hub_signature_verify(hdr, "what do ya want for nothing?", 28, secrets, 1, NULL), WA_OK);
}

static void
hub_signature__rotated_secret__second_one_matches(void **state)
{
    const char *body = "payload";
    const char *secrets[] = {"new-secret", "old-secret"};
    char sig[WA_HUB_SIGNATURE_LEN];

    (void)state;
    wa_hub_signature_make("old-secret", body, strlen(body), sig);
    assert_int_equal(wa_hub_signature_verify(sig, body, strlen(body), secrets, 2, NULL), WA_OK);
    wa_hub_signature_make("new-secret", body, strlen(body), sig);
    assert_int_equal(wa_hub_signature_verify(sig, body, strlen(body), secrets, 2, NULL), WA_OK);
    assert_int_equal(wa_hub_signature_verify(sig, body, strlen(body), secrets + 1, 1, NULL),
                     WA_EAUTH);
}

static void
hub_signature__tampered_body_or_wrong_secret__eauth(void **state)
{
    const char *secrets[] = {"s1"};
    const char *wrong[] = {"s2"};
    char sig[WA_HUB_SIGNATURE_LEN];
    struct wa_error error = {0};

    (void)state;
    wa_hub_signature_make("s1", "body", 4, sig);
    assert_int_equal(wa_hub_signature_verify(sig, "bodx", 4, secrets, 1, &error), WA_EAUTH);
    assert_non_null(strstr(error.message, "does not match"));
    assert_int_equal(wa_hub_signature_verify(sig, "body", 3, secrets, 1, NULL), WA_EAUTH);
    assert_int_equal(wa_hub_signature_verify(sig, "body", 4, wrong, 1, NULL), WA_EAUTH);
}

static void
hub_signature__malformed_header__eauth(void **state)
{
    const char *secrets[] = {"s1"};
    char sig[WA_HUB_SIGNATURE_LEN], buf[128];
    const char *cases[8];
    size_t i;

    (void)state;
    wa_hub_signature_make("s1", "body", 4, sig);
    cases[0] = NULL;
    cases[1] = "";
    cases[2] = "sha256=";
    cases[3] = sig + 7; /* no prefix */
    cases[4] = "sha1=0123456789abcdef0123456789abcdef01234567";
    snprintf(buf, sizeof(buf), "SHA256=%s", sig + 7);
    cases[5] = strdup(buf);                  /* prefix is case-sensitive, as Meta sends it */
    snprintf(buf, sizeof(buf), "%s00", sig); /* too long */
    cases[6] = strdup(buf);
    snprintf(buf, sizeof(buf), "%.70sg", sig); /* last digit not hex */
    cases[7] = strdup(buf);
    for (i = 0; i < WA_ARRAY_LEN(cases); i++) {
        struct wa_error error = {0};
        assert_int_equal(wa_hub_signature_verify(cases[i], "body", 4, secrets, 1, &error),
                         WA_EAUTH);
        assert_true(error.message[0] != '\0');
    }
    for (i = 5; i < 8; i++) {
        free((void *)cases[i]);
    }
}

static void
hub_signature__no_usable_secret__econfig(void **state)
{
    const char *secrets[] = {NULL, ""};
    char sig[WA_HUB_SIGNATURE_LEN];

    (void)state;
    wa_hub_signature_make("", "body", 4, sig);
    assert_int_equal(wa_hub_signature_verify(sig, "body", 4, secrets, 2, NULL), WA_ECONFIG);
    assert_int_equal(wa_hub_signature_verify(sig, "body", 4, secrets, 0, NULL), WA_ECONFIG);
}

static void
hmac_hub_signature__equals_stateless_make(void **state)
{
    const char *bodies[] = {"", "body", "{\"object\":\"whatsapp_business_account\"}"};
    char want[WA_HUB_SIGNATURE_LEN], got[WA_HUB_SIGNATURE_LEN];
    struct wa_hmac *h = NULL;

    (void)state;
    assert_int_equal(wa_hmac_new("app-secret", 10, &h), WA_OK);
    for (size_t i = 0; i < WA_ARRAY_LEN(bodies); i++) {
        wa_hub_signature_make("app-secret", bodies[i], strlen(bodies[i]), want);
        wa_hmac_hub_signature(h, bodies[i], strlen(bodies[i]), got);
        assert_string_equal(got, want);
    }
    wa_hmac_free(h);
}

static void
hub_verifier__rotation_tamper_and_malformed__same_as_stateless(void **state)
{
    const char *secrets[] = {"new-secret", NULL, "old-secret"};
    const char *headers[] = {NULL, "", "sha256=", "sha1=0123", "sha256=zz", NULL, NULL, NULL};
    char sig_new[WA_HUB_SIGNATURE_LEN], sig_old[WA_HUB_SIGNATURE_LEN],
        sig_other[WA_HUB_SIGNATURE_LEN];
    struct wa_hub_verifier *v = NULL;
    struct wa_error e1 = {0}, e2 = {0};

    (void)state;
    wa_hub_signature_make("new-secret", "body", 4, sig_new);
    wa_hub_signature_make("old-secret", "body", 4, sig_old);
    wa_hub_signature_make("someone-else", "body", 4, sig_other);
    headers[5] = sig_new;
    headers[6] = sig_old;
    headers[7] = sig_other;
    assert_int_equal(wa_hub_verifier_new(secrets, 3, &v, NULL), WA_OK);
    assert_int_equal(wa_hub_verifier_check(v, sig_new, "body", 4, NULL), WA_OK);
    assert_int_equal(wa_hub_verifier_check(v, sig_old, "body", 4, NULL), WA_OK);
    assert_int_equal(wa_hub_verifier_check(v, sig_new, "bodx", 4, NULL), WA_EAUTH);
    assert_int_equal(wa_hub_verifier_check(v, sig_other, "body", 4, NULL), WA_EAUTH);
    for (size_t i = 0; i < WA_ARRAY_LEN(headers); i++) {
        enum wa_err a = wa_hub_verifier_check(v, headers[i], "body", 4, &e1);
        enum wa_err b = wa_hub_signature_verify(headers[i], "body", 4, secrets, 3, &e2);

        assert_int_equal(a, b);
        if (a != WA_OK) {
            assert_string_equal(e1.message, e2.message);
        }
    }
    wa_hub_verifier_free(v);
    wa_hub_verifier_free(NULL);

    const char *none[] = {NULL, ""};
    v = (struct wa_hub_verifier *)&e1; /* must be reset to NULL on failure */
    assert_int_equal(wa_hub_verifier_new(none, 2, &v, NULL), WA_ECONFIG);
    assert_null(v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha1__known_vectors),
        cmocka_unit_test(sha256__known_vectors),
        cmocka_unit_test(hmac_sha256__rfc4231_vectors),
        cmocka_unit_test(hmac_sha256__empty_key_and_data__matches_reference),
        cmocka_unit_test(crypto_equal__detects_any_difference),
        cmocka_unit_test(crypto_str_equal__length_content_and_null),
        cmocka_unit_test(hex_encode__lowercase_and_terminated),
        cmocka_unit_test(hex_decode__upper_and_lower_case),
        cmocka_unit_test(hex_decode__hostile_input__minus_one),
        cmocka_unit_test(hub_signature__make_then_verify__ok),
        cmocka_unit_test(hub_signature__known_value),
        cmocka_unit_test(hub_signature__uppercase_hex__accepted),
        cmocka_unit_test(hub_signature__rotated_secret__second_one_matches),
        cmocka_unit_test(hub_signature__tampered_body_or_wrong_secret__eauth),
        cmocka_unit_test(hub_signature__malformed_header__eauth),
        cmocka_unit_test(hub_signature__no_usable_secret__econfig),
        cmocka_unit_test(hmac_hub_signature__equals_stateless_make),
        cmocka_unit_test(hub_verifier__rotation_tamper_and_malformed__same_as_stateless),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
