/*
 * crypto.c: SHA-1 / SHA-256 / HMAC-SHA256 over OpenSSL, hex coding and X-Hub-Signature-256
 * checks, stateless or keyed once (struct wa_hmac, struct wa_hub_verifier).
 *
 * The stateless functions are thread-safe (OpenSSL 1.1+ initialises itself). OpenSSL failures here can only
 * mean out of memory or a broken library, so they are treated as broken invariants.
 */
#include "wa/crypto.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "wa/hex.h"

#define SHA256_BLOCK   64
#define HUB_PREFIX     "sha256="
#define HUB_PREFIX_LEN (sizeof(HUB_PREFIX) - 1)

struct wa_hmac {
    EVP_MAC_CTX *ctx; /* owned: keyed once; re-initialised with the same key per message */
};

/* At most two secrets are live during a rotation; a few more cost nothing. */
#define HUB_MAX_SECRETS 8

struct wa_hub_verifier {
    struct wa_hmac *mac[HUB_MAX_SECRETS]; /* owned: one per usable secret */
    size_t nmac;
};

void
wa_sha1(const void *data, size_t len, unsigned char out[WA_SHA1_LEN])
{
    unsigned int outlen = 0;
    int ok;

    ok = EVP_Digest(len > 0 ? data : "", len, out, &outlen, EVP_sha1(), NULL);
    WA_ASSERT(ok == 1 && outlen == WA_SHA1_LEN);
}

void
wa_sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int outlen = 0;
    int ok;

    ok = EVP_Digest(len > 0 ? data : "", len, out, &outlen, EVP_sha256(), NULL);
    WA_ASSERT(ok == 1 && outlen == WA_SHA256_LEN);
}

void
wa_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[32])
{
    unsigned char khash[WA_SHA256_LEN];
    unsigned int outlen = 0;
    unsigned char *r;

    /* RFC 2104 hashes keys longer than the block; doing it here keeps keylen within int. */
    if (keylen > SHA256_BLOCK) {
        wa_sha256(key, keylen, khash);
        key = khash;
        keylen = sizeof(khash);
    }
    r = HMAC(EVP_sha256(), keylen > 0 ? key : "", (int)keylen, len > 0 ? data : (const void *)"",
             len, out, &outlen);
    WA_ASSERT(r != NULL && outlen == WA_SHA256_LEN);
    OPENSSL_cleanse(khash, sizeof(khash));
}

bool
wa_crypto_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

bool
wa_crypto_str_equal(const char *given, const char *secret)
{
    size_t n;

    if (given == NULL || secret == NULL) {
        return false;
    }
    n = strlen(secret);
    return strlen(given) == n && wa_crypto_equal(given, secret, n);
}

ssize_t
wa_hex_decode(const char *hex, unsigned char *out, size_t outlen)
{
    size_t n, i;

    if (hex == NULL || outlen > SSIZE_MAX / 2) {
        return -1;
    }
    /* Never scan further than a valid input could reach: hostile input may be long. */
    n = strnlen(hex, 2 * outlen + 1);
    if (n % 2 != 0 || n / 2 > outlen) {
        return -1;
    }
    for (i = 0; i < n / 2; i++) {
        int hi = wa_hex_value(hex[2 * i]), lo = wa_hex_value(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return (ssize_t)(n / 2);
}

enum wa_err
wa_hub_signature_verify(const char *header_value, const void *body, size_t len,
                        const char *const *secrets, size_t nsecrets, struct wa_error *error)
{
    struct wa_hub_verifier *v = NULL;
    enum wa_err err;

    err = wa_hub_verifier_new(secrets, nsecrets, &v, error);
    if (err == WA_OK) {
        err = wa_hub_verifier_check(v, header_value, body, len, error);
    }
    wa_hub_verifier_free(v);
    return err;
}

void
wa_hub_signature_make(const char *secret, const void *body, size_t len,
                      char out[WA_HUB_SIGNATURE_LEN])
{
    unsigned char mac[WA_SHA256_LEN];

    wa_hmac_sha256(secret, strlen(secret), body, len, mac);
    memcpy(out, "sha256=", 7);
    wa_hex_encode(mac, sizeof(mac), out + 7);
}

enum wa_err
wa_hmac_new(const void *key, size_t keylen, struct wa_hmac **out)
{
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    struct wa_hmac *h = calloc(1, sizeof(*h));
    EVP_MAC *mac;

    *out = NULL;
    if (h == NULL) {
        return WA_ENOMEM;
    }
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    h->ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    /* a zero-length key is a valid HMAC key: it must not be passed as NULL (= keep the key) */
    if (h->ctx == NULL ||
        EVP_MAC_init(h->ctx, keylen > 0 ? key : (const void *)"", keylen, params) != 1) {
        wa_hmac_free(h);
        return WA_ENOMEM;
    }
    *out = h;
    return WA_OK;
}

void
wa_hmac_free(struct wa_hmac *h)
{
    if (h != NULL) {
        EVP_MAC_CTX_free(h->ctx);
        free(h);
    }
}

void
wa_hmac_digest(struct wa_hmac *h, const void *data, size_t len, unsigned char out[WA_SHA256_LEN])
{
    size_t n = 0;
    int ok;

    ok = EVP_MAC_init(h->ctx, NULL, 0, NULL) == 1 &&
         EVP_MAC_update(h->ctx, len > 0 ? data : (const void *)"", len) == 1 &&
         EVP_MAC_final(h->ctx, out, &n, WA_SHA256_LEN) == 1;
    WA_ASSERT(ok && n == WA_SHA256_LEN);
}

void
wa_hmac_hub_signature(struct wa_hmac *h, const void *body, size_t len,
                      char out[WA_HUB_SIGNATURE_LEN])
{
    unsigned char mac[WA_SHA256_LEN];

    wa_hmac_digest(h, body, len, mac);
    memcpy(out, HUB_PREFIX, HUB_PREFIX_LEN);
    wa_hex_encode(mac, sizeof(mac), out + HUB_PREFIX_LEN);
}

enum wa_err
wa_hub_verifier_new(const char *const *secrets, size_t nsecrets, struct wa_hub_verifier **out,
                    struct wa_error *error)
{
    struct wa_hub_verifier *v;
    enum wa_err err;

    *out = NULL;
    if (nsecrets > HUB_MAX_SECRETS) {
        return wa_error_set(error, WA_EINVAL, "more than %d app secrets", HUB_MAX_SECRETS);
    }
    if ((v = calloc(1, sizeof(*v))) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nsecrets; i++) {
        if (secrets[i] == NULL || secrets[i][0] == '\0') {
            continue;
        }
        if ((err = wa_hmac_new(secrets[i], strlen(secrets[i]), &v->mac[v->nmac])) != WA_OK) {
            wa_hub_verifier_free(v);
            return wa_error_set(error, err, "cannot key HMAC-SHA256");
        }
        v->nmac++;
    }
    if (v->nmac == 0) {
        wa_hub_verifier_free(v);
        return wa_error_set(error, WA_ECONFIG, "no app secret configured for signature checks");
    }
    *out = v;
    return WA_OK;
}

void
wa_hub_verifier_free(struct wa_hub_verifier *v)
{
    if (v != NULL) {
        for (size_t i = 0; i < v->nmac; i++) {
            wa_hmac_free(v->mac[i]);
        }
        free(v);
    }
}

enum wa_err
wa_hub_verifier_check(struct wa_hub_verifier *v, const char *header_value, const void *body,
                      size_t len, struct wa_error *error)
{
    unsigned char got[WA_SHA256_LEN], want[WA_SHA256_LEN];
    bool match = false;

    if (header_value == NULL || strncmp(header_value, HUB_PREFIX, HUB_PREFIX_LEN) != 0) {
        return wa_error_set(error, WA_EAUTH, "missing or malformed X-Hub-Signature-256");
    }
    if (wa_hex_decode(header_value + HUB_PREFIX_LEN, got, sizeof(got)) != (ssize_t)sizeof(got)) {
        return wa_error_set(error, WA_EAUTH, "X-Hub-Signature-256 is not sha256=<64 hex digits>");
    }
    /* Every secret is tried even after a match: the time taken does not reveal which one. */
    for (size_t i = 0; i < v->nmac; i++) {
        wa_hmac_digest(v->mac[i], body, len, want);
        match |= wa_crypto_equal(want, got, sizeof(want));
    }
    OPENSSL_cleanse(want, sizeof(want));
    if (!match) {
        return wa_error_set(error, WA_EAUTH, "X-Hub-Signature-256 does not match");
    }
    return WA_OK;
}
