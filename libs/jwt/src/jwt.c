/*
 * jwt.c: wa/jwt.h over cjose. The header is decoded and judged here before cjose sees the
 * token (alg allow-list, "none", crit, kid, the key's type for the alg family), so the
 * algorithm-confusion attacks never reach a verify call; cjose then checks the signature with
 * the one key chosen. Keys are cjose_jwk_t objects owned by the set.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjose/cjose.h>

#include "wa/jwt.h"

#define KEYS_MAX 64

struct key {
    cjose_jwk_t *jwk;
    cjose_jwk_kty_t kty;
    char kid[WA_JWT_KID_MAX]; /* "" when none */
    char alg[16];             /* "" when the key does not restrict it */
};

struct wa_jwks {
    struct key keys[KEYS_MAX];
    size_t n;
};

void
wa_jwks_free(struct wa_jwks *keys)
{
    if (keys == NULL) {
        return;
    }
    for (size_t i = 0; i < keys->n; i++) {
        cjose_jwk_release(keys->keys[i].jwk);
    }
    free(keys);
}

size_t
wa_jwks_count(const struct wa_jwks *keys)
{
    return keys != NULL ? keys->n : 0;
}

static bool
b64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            return false;
        }
    }
    /* cjose's decoder asserts (aborts) on a length of 4k + 1: refuse it before */
    return n > 0 && n % 4 != 1;
}

/* The base64url members of a JWK, each checked before cjose decodes it. */
static bool
jwk_members_ok(const json_t *k)
{
    static const char *const members[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi", "x", "y", "k"};

    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        const json_t *v = json_object_get(k, members[i]);

        if (v != NULL &&
            (!json_is_string(v) || !b64url(json_string_value(v), json_string_length(v)))) {
            return false;
        }
    }
    return true;
}

enum wa_err
wa_jwks_parse(const char *json, size_t len, struct wa_jwks **out, size_t *skipped,
              struct wa_error *error)
{
    json_t *doc = NULL, *arr, *k;
    struct wa_jwks *set = NULL;
    size_t i, skip = 0;
    enum wa_err err;

    *out = NULL;
    if ((err = wa_json_parse(json, len, 8, &doc, error)) != WA_OK) {
        return err == WA_ENOMEM ? err : WA_EPARSE;
    }
    arr = json_object_get(doc, "keys");
    if (!json_is_array(arr) || json_array_size(arr) > KEYS_MAX) {
        json_decref(doc);
        return wa_error_set(error, WA_EPARSE, "JWKS: \"keys\" must be an array of at most %d",
                            KEYS_MAX);
    }
    if ((set = calloc(1, sizeof(*set))) == NULL) {
        json_decref(doc);
        return WA_ENOMEM;
    }
    json_array_foreach(arr, i, k)
    {
        const char *use = wa_json_str(k, "use"), *kid = wa_json_str(k, "kid");
        const char *alg = wa_json_str(k, "alg");
        char *text = wa_json_dump(k);
        struct key *key = &set->keys[set->n];
        cjose_err cerr;

        if (text == NULL || !json_is_object(k) || !jwk_members_ok(k) ||
            (use != NULL && strcmp(use, "sig") != 0) ||
            (kid != NULL && strlen(kid) >= WA_JWT_KID_MAX) || (alg != NULL && strlen(alg) >= 16) ||
            (key->jwk = cjose_jwk_import(text, strlen(text), &cerr)) == NULL) {
            free(text);
            skip++;
            continue;
        }
        free(text);
        key->kty = cjose_jwk_get_kty(key->jwk, &cerr);
        snprintf(key->kid, sizeof(key->kid), "%s", kid != NULL ? kid : "");
        snprintf(key->alg, sizeof(key->alg), "%s", alg != NULL ? alg : "");
        set->n++;
    }
    json_decref(doc);
    if (skipped != NULL) {
        *skipped = skip;
    }
    if (set->n == 0) {
        wa_jwks_free(set);
        return wa_error_set(error, WA_EPARSE, "JWKS: no usable signing key");
    }
    *out = set;
    return WA_OK;
}

/* The key type an alg family needs; 0 for an alg this library does not take. */
static cjose_jwk_kty_t
family(const char *alg)
{
    static const char *const rsa[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"};
    static const char *const ec[] = {"ES256", "ES384", "ES512"};
    static const char *const hs[] = {"HS256", "HS384", "HS512"};

    for (size_t i = 0; i < 6; i++) {
        if (strcmp(alg, rsa[i]) == 0) {
            return CJOSE_JWK_KTY_RSA;
        }
    }
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(alg, ec[i]) == 0) {
            return CJOSE_JWK_KTY_EC;
        }
        if (strcmp(alg, hs[i]) == 0) {
            return CJOSE_JWK_KTY_OCT;
        }
    }
    return (cjose_jwk_kty_t)0;
}

enum wa_err
wa_jwt_verify(const struct wa_jwks *keys, const char *token, const char *const *algs, size_t nalgs,
              json_t **claims, char kid_out[WA_JWT_KID_MAX], struct wa_error *error)
{
    const char *d1, *d2, *alg, *kid;
    size_t len = token != NULL ? strnlen(token, WA_JWT_MAX + 1) : 0;
    uint8_t *hdr = NULL, *payload = NULL;
    size_t hlen = 0, plen = 0;
    json_t *h = NULL;
    const struct key *key = NULL;
    cjose_jws_t *jws = NULL;
    cjose_err cerr;
    bool allowed = false;
    enum wa_err err = WA_EAUTH;

    *claims = NULL;
    if (kid_out != NULL) {
        kid_out[0] = '\0';
    }
    if (keys == NULL || len == 0 || len > WA_JWT_MAX || (d1 = strchr(token, '.')) == NULL ||
        (d2 = strchr(d1 + 1, '.')) == NULL || strchr(d2 + 1, '.') != NULL ||
        !b64url(token, (size_t)(d1 - token)) || !b64url(d1 + 1, (size_t)(d2 - d1 - 1)) ||
        !b64url(d2 + 1, strlen(d2 + 1))) {
        return wa_error_set(error, WA_EAUTH, "not a compact JWS (header.payload.signature)");
    }
    if (!cjose_base64url_decode(token, (size_t)(d1 - token), &hdr, &hlen, &cerr) ||
        wa_json_parse((const char *)hdr, hlen, 4, &h, NULL) != WA_OK || !json_is_object(h)) {
        err = wa_error_set(error, WA_EAUTH, "the header is not a JSON object");
        goto out;
    }
    alg = wa_json_str(h, "alg");
    kid = wa_json_str(h, "kid");
    if (kid != NULL && kid_out != NULL) {
        snprintf(kid_out, WA_JWT_KID_MAX, "%s", kid);
    }
    for (size_t i = 0; alg != NULL && i < nalgs; i++) {
        allowed = allowed || strcmp(alg, algs[i]) == 0;
    }
    if (alg == NULL || strcasecmp(alg, "none") == 0 || !allowed || family(alg) == 0) {
        err = wa_error_set(error, WA_EAUTH, "alg %.16s is not accepted",
                           alg != NULL ? alg : "(missing)");
        goto out;
    }
    if (json_object_get(h, "crit") != NULL) {
        err = wa_error_set(error, WA_EAUTH, "critical header extensions are not supported");
        goto out;
    }
    if (kid != NULL) {
        for (size_t i = 0; i < keys->n && key == NULL; i++) {
            key = strcmp(keys->keys[i].kid, kid) == 0 ? &keys->keys[i] : NULL;
        }
        if (key == NULL) {
            err = wa_error_set(error, WA_ENOTFOUND, "unknown kid");
            goto out;
        }
    } else if (keys->n == 1) {
        key = &keys->keys[0];
    } else {
        err = wa_error_set(error, WA_EAUTH, "the token names no kid");
        goto out;
    }
    if (key->kty != family(alg) || (key->alg[0] != '\0' && strcmp(key->alg, alg) != 0)) {
        err = wa_error_set(error, WA_EAUTH, "alg %s does not fit the key of that kid", alg);
        goto out;
    }
    if ((jws = cjose_jws_import(token, len, &cerr)) == NULL ||
        !cjose_jws_verify(jws, key->jwk, &cerr)) {
        err = wa_error_set(error, WA_EAUTH, "bad signature");
        goto out;
    }
    if (!cjose_jws_get_plaintext(jws, &payload, &plen, &cerr) ||
        wa_json_parse((const char *)payload, plen, 16, claims, NULL) != WA_OK ||
        !json_is_object(*claims)) {
        json_decref(*claims);
        *claims = NULL;
        err = wa_error_set(error, WA_EAUTH, "the payload is not a JSON object");
        goto out;
    }
    err = WA_OK;
out:
    cjose_jws_release(jws);
    json_decref(h);
    free(hdr);
    return err;
}

static bool
aud_has(const json_t *aud, const char *want)
{
    size_t i;
    json_t *v;

    if (json_is_string(aud)) {
        return strcmp(json_string_value(aud), want) == 0;
    }
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0) {
            return true;
        }
    }
    return false;
}

enum wa_err
wa_jwt_check_claims(const json_t *claims, const char *iss, const char *aud, int64_t now_s,
                    int64_t leeway_s, struct wa_error *error)
{
    const json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    const char *got_iss = wa_json_str(claims, "iss");

    if (!json_is_number(exp)) {
        return wa_error_set(error, WA_EAUTH, "exp: required");
    }
    if (json_number_value(exp) <= (double)(now_s - leeway_s)) {
        return wa_error_set(error, WA_EAUTH, "exp: the token expired");
    }
    if (nbf != NULL &&
        (!json_is_number(nbf) || json_number_value(nbf) > (double)(now_s + leeway_s))) {
        return wa_error_set(error, WA_EAUTH, "nbf: the token is not valid yet");
    }
    if (iss != NULL && (got_iss == NULL || strcmp(got_iss, iss) != 0)) {
        return wa_error_set(error, WA_EAUTH, "iss: another issuer");
    }
    if (aud != NULL && !aud_has(json_object_get(claims, "aud"), aud)) {
        return wa_error_set(error, WA_EAUTH, "aud: not for this audience");
    }
    return WA_OK;
}

enum wa_err
wa_jwt_sign(const char *jwk_json, const char *alg, const char *kid, const json_t *claims,
            char **out, struct wa_error *error)
{
    cjose_err cerr;
    cjose_jwk_t *jwk = cjose_jwk_import(jwk_json, strlen(jwk_json), &cerr);
    cjose_header_t *h = cjose_header_new(&cerr);
    cjose_jws_t *jws = NULL;
    char *payload = wa_json_dump(claims);
    const char *ser = NULL;
    enum wa_err err = WA_OK;

    *out = NULL;
    if (jwk == NULL || h == NULL || payload == NULL ||
        !cjose_header_set(h, CJOSE_HDR_ALG, alg, &cerr) ||
        !cjose_header_set(h, "typ", "JWT", &cerr) ||
        (kid != NULL && !cjose_header_set(h, CJOSE_HDR_KID, kid, &cerr)) ||
        (jws = cjose_jws_sign(jwk, h, (const uint8_t *)payload, strlen(payload), &cerr)) == NULL ||
        !cjose_jws_export(jws, &ser, &cerr) || (*out = strdup(ser)) == NULL) {
        err = wa_error_set(error, WA_EINVAL, "cannot sign: %s",
                           jwk == NULL ? "bad JWK" : "cjose refused");
    }
    cjose_jws_release(jws);
    cjose_header_release(h);
    cjose_jwk_release(jwk);
    free(payload);
    return err;
}

enum wa_err
wa_jwk_generate(const char *kty, const char *kid, char **private_jwk, char **public_jwk,
                struct wa_error *error)
{
    static const uint8_t e[] = {0x01, 0x00, 0x01};
    cjose_err cerr;
    cjose_jwk_t *jwk = strcmp(kty, "RSA") == 0 ? cjose_jwk_create_RSA_random(2048, e, 3, &cerr)
                       : strcmp(kty, "EC") == 0
                           ? cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr)
                           : NULL;

    *private_jwk = *public_jwk = NULL;
    if (jwk == NULL || !cjose_jwk_set_kid(jwk, kid, strlen(kid), &cerr) ||
        (*private_jwk = cjose_jwk_to_json(jwk, true, &cerr)) == NULL ||
        (*public_jwk = cjose_jwk_to_json(jwk, false, &cerr)) == NULL) {
        free(*private_jwk);
        *private_jwk = NULL;
        cjose_jwk_release(jwk);
        return wa_error_set(error, WA_EINVAL, "cannot generate a %s key", kty);
    }
    cjose_jwk_release(jwk);
    return WA_OK;
}
