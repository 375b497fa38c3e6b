/*
 * jwt_test.c: libs/jwt with real keys (an RSA and an EC key generated per run): valid RS256
 * and ES256 tokens verify and their claims pass; refused: alg none (with or without a
 * signature), HS256 "signed" with the RSA public key (the key-confusion attack), an alg outside
 * the allow-list, an alg of another family than the kid's key, a tampered payload, a token
 * without kid against several keys, malformed tokens; an unknown kid is WA_ENOTFOUND (the
 * caller refetches); expired, not yet valid, wrong issuer and wrong audience fail the claims.
 */
#include <stdlib.h>
#include <string.h>

#include "wa/jwt.h"
#include "wa_test.h"

static struct {
    char *rsa_priv, *rsa_pub, *ec_priv, *ec_pub;
    struct wa_jwks *keys;
} K;

static const char *const ALGS[] = {"RS256", "ES256", "HS256"};

static void
b64url(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);

        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        if (i + 1 < n) {
            out[o++] = t[(v >> 6) & 63];
        }
        if (i + 2 < n) {
            out[o++] = t[v & 63];
        }
    }
    out[o] = '\0';
}

static json_t *
claims(int64_t exp_delta, const char *aud)
{
    int64_t now = 1800000000;

    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", "https://id.example", "sub", "svc-1",
                     "aud", aud, "exp", (json_int_t)(now + exp_delta), "iat", (json_int_t)now,
                     "scope", "messages:send");
}

static char *
sign(const char *jwk, const char *alg, const char *kid, json_t *c)
{
    char *t = NULL;

    assert_int_equal(wa_jwt_sign(jwk, alg, kid, c, &t, NULL), WA_OK);
    json_decref(c);
    return t;
}

static int
setup(void **state)
{
    char doc[8192];

    (void)state;
    assert_int_equal(wa_jwk_generate("RSA", "rsa-1", &K.rsa_priv, &K.rsa_pub, NULL), WA_OK);
    assert_int_equal(wa_jwk_generate("EC", "ec-1", &K.ec_priv, &K.ec_pub, NULL), WA_OK);
    assert_null(strstr(K.rsa_pub, "\"d\""));
    snprintf(doc, sizeof(doc),
             "{\"keys\":[%s,%s,{\"kty\":\"oct\",\"use\":\"enc\",\"k\":\"AAAA\"}]}", K.rsa_pub,
             K.ec_pub);
    assert_int_equal(wa_jwks_parse(doc, strlen(doc), &K.keys, NULL, NULL), WA_OK);
    assert_int_equal(wa_jwks_count(K.keys), 2); /* the "enc" key is not a signing key */
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    wa_jwks_free(K.keys);
    free(K.rsa_priv);
    free(K.rsa_pub);
    free(K.ec_priv);
    free(K.ec_pub);
    return 0;
}

static void
verify__rs256_and_es256__claims_pass(void **state)
{
    char *t1 = sign(K.rsa_priv, "RS256", "rsa-1", claims(60, "wabridge"));
    char *t2 = sign(K.ec_priv, "ES256", "ec-1", claims(60, "wabridge"));
    json_t *c = NULL;
    char kid[WA_JWT_KID_MAX];

    (void)state;
    assert_int_equal(wa_jwt_verify(K.keys, t1, ALGS, 3, &c, kid, NULL), WA_OK);
    assert_string_equal(kid, "rsa-1");
    assert_string_equal(wa_json_str(c, "sub"), "svc-1");
    assert_int_equal(wa_jwt_check_claims(c, "https://id.example", "wabridge", 1800000000, 30, NULL),
                     WA_OK);
    json_decref(c);
    assert_int_equal(wa_jwt_verify(K.keys, t2, ALGS, 3, &c, kid, NULL), WA_OK);
    json_decref(c);
    free(t1);
    free(t2);
}

static void
verify__alg_none__refused(void **state)
{
    char hdr[128], body[256], tok[512];
    const char *h = "{\"alg\":\"none\",\"kid\":\"rsa-1\"}",
               *p = "{\"sub\":\"x\",\"exp\":9999999999}";
    json_t *c = NULL;

    (void)state;
    b64url((const unsigned char *)h, strlen(h), hdr);
    b64url((const unsigned char *)p, strlen(p), body);
    snprintf(tok, sizeof(tok), "%s.%s.", hdr, body);
    assert_int_equal(wa_jwt_verify(K.keys, tok, ALGS, 3, &c, NULL, NULL), WA_EAUTH);
    snprintf(tok, sizeof(tok), "%s.%s.c2ln", hdr, body);
    assert_int_equal(wa_jwt_verify(K.keys, tok, ALGS, 3, &c, NULL, NULL), WA_EAUTH);
    {
        static const char *const with_none[] = {"none", "NONE", "RS256"};

        assert_int_equal(wa_jwt_verify(K.keys, tok, with_none, 3, &c, NULL, NULL), WA_EAUTH);
    }
    assert_null(c);
}

static void
verify__hs256_signed_with_the_public_key__refused(void **state)
{
    char k[4096], oct[4200], *t;
    json_t *c = NULL;

    (void)state;
    b64url((const unsigned char *)K.rsa_pub, strlen(K.rsa_pub), k);
    snprintf(oct, sizeof(oct), "{\"kty\":\"oct\",\"k\":\"%s\"}", k);
    t = sign(oct, "HS256", "rsa-1", claims(60, "wabridge"));
    assert_int_equal(wa_jwt_verify(K.keys, t, ALGS, 3, &c, NULL, NULL), WA_EAUTH);
    assert_null(c);
    free(t);
}

static void
verify__wrong_alg_family_tampered_unknown_kid__refused(void **state)
{
    static const char *const rs_only[] = {"RS256"};
    char *es_as_rsa = sign(K.ec_priv, "ES256", "rsa-1", claims(60, "wabridge"));
    char *es = sign(K.ec_priv, "ES256", "ec-1", claims(60, "wabridge"));
    char *unknown = sign(K.rsa_priv, "RS256", "rsa-2", claims(60, "wabridge"));
    char *nokid = sign(K.rsa_priv, "RS256", NULL, claims(60, "wabridge"));
    char *good = sign(K.rsa_priv, "RS256", "rsa-1", claims(60, "wabridge"));
    char tampered[8192], kid[WA_JWT_KID_MAX];
    char *dot;
    json_t *c = NULL;

    (void)state;
    assert_int_equal(wa_jwt_verify(K.keys, es_as_rsa, ALGS, 3, &c, NULL, NULL), WA_EAUTH);
    assert_int_equal(wa_jwt_verify(K.keys, es, rs_only, 1, &c, NULL, NULL), WA_EAUTH);
    assert_int_equal(wa_jwt_verify(K.keys, unknown, ALGS, 3, &c, kid, NULL), WA_ENOTFOUND);
    assert_string_equal(kid, "rsa-2");
    assert_int_equal(wa_jwt_verify(K.keys, nokid, ALGS, 3, &c, NULL, NULL), WA_EAUTH);
    /* another payload under the same signature */
    snprintf(tampered, sizeof(tampered), "%s", good);
    dot = strchr(tampered, '.') + 1;
    *dot = *dot == 'e' ? 'f' : 'e';
    assert_int_equal(wa_jwt_verify(K.keys, tampered, ALGS, 3, &c, NULL, NULL), WA_EAUTH);
    assert_int_equal(wa_jwt_verify(K.keys, "a.b", ALGS, 3, &c, NULL, NULL), WA_EAUTH);
    assert_int_equal(wa_jwt_verify(K.keys, "a.b.c.d", ALGS, 3, &c, NULL, NULL), WA_EAUTH);
    assert_int_equal(wa_jwt_verify(K.keys, "a+.b.c", ALGS, 3, &c, NULL, NULL), WA_EAUTH);
    assert_int_equal(wa_jwt_verify(K.keys, "", ALGS, 3, &c, NULL, NULL), WA_EAUTH);
    /* a segment of 4k + 1 characters is no base64 (cjose would abort on it): refused first */
    assert_int_equal(wa_jwt_verify(K.keys, "aaaaa.bbbb.cccc", ALGS, 3, &c, NULL, NULL), WA_EAUTH);
    assert_null(c);
    free(es_as_rsa);
    free(es);
    free(unknown);
    free(nokid);
    free(good);
}

static void
claims__expired_not_yet_wrong_issuer_or_audience__refused(void **state)
{
    json_t *c = claims(60, "wabridge");
    json_t *arr = json_pack("{s:s, s:[s,s], s:I}", "iss", "https://id.example", "aud", "other",
                            "wabridge", "exp", (json_int_t)1800000060);

    (void)state;
    assert_int_equal(wa_jwt_check_claims(c, "https://id.example", "wabridge", 1800000000, 30, NULL),
                     WA_OK);
    /* expired: 60 s after exp, beyond the 30 s leeway; within it still valid */
    assert_int_equal(wa_jwt_check_claims(c, "https://id.example", "wabridge", 1800000120, 30, NULL),
                     WA_EAUTH);
    assert_int_equal(wa_jwt_check_claims(c, "https://id.example", "wabridge", 1800000080, 30, NULL),
                     WA_OK);
    assert_int_equal(
        wa_jwt_check_claims(c, "https://evil.example", "wabridge", 1800000000, 30, NULL), WA_EAUTH);
    assert_int_equal(wa_jwt_check_claims(c, "https://id.example", "other", 1800000000, 30, NULL),
                     WA_EAUTH);
    json_object_set_new(c, "nbf", json_integer(1800000100));
    assert_int_equal(wa_jwt_check_claims(c, "https://id.example", "wabridge", 1800000000, 30, NULL),
                     WA_EAUTH);
    json_object_del(c, "exp");
    json_object_del(c, "nbf");
    assert_int_equal(wa_jwt_check_claims(c, "https://id.example", "wabridge", 1800000000, 30, NULL),
                     WA_EAUTH);
    assert_int_equal(
        wa_jwt_check_claims(arr, "https://id.example", "wabridge", 1800000000, 30, NULL), WA_OK);
    json_decref(c);
    json_decref(arr);
}

static void
jwks__malformed_or_no_signing_key__eparse(void **state)
{
    struct wa_jwks *k = NULL;
    static const char *const bad[] = {
        "[]", "{\"keys\":{}}", "{\"keys\":[]}", "{\"keys\":[{\"kty\":\"RSA\"}]}", "not json",
        /* found by fuzzing: cjose aborts on base64 of a 4k + 1 length or with '=' inside */
        "{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"ABCDE\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"AB=CDEFG\"}]}"};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(wa_jwks_parse(bad[i], strlen(bad[i]), &k, NULL, NULL), WA_OK);
        assert_null(k);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verify__rs256_and_es256__claims_pass),
        cmocka_unit_test(verify__alg_none__refused),
        cmocka_unit_test(verify__hs256_signed_with_the_public_key__refused),
        cmocka_unit_test(verify__wrong_alg_family_tampered_unknown_kid__refused),
        cmocka_unit_test(claims__expired_not_yet_wrong_issuer_or_audience__refused),
        cmocka_unit_test(jwks__malformed_or_no_signing_key__eparse),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
