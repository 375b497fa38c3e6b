/*
 * crypto.c: SHA-256 / HMAC-SHA256 over OpenSSL, hex coding and X-Hub-Signature-256 checks.
 *
 * Stateless and thread-safe (OpenSSL 1.1+ initialises itself). OpenSSL failures here can only
 * mean out of memory or a broken library, so they are treated as broken invariants.
 */
#include "wa/crypto.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SHA256_BLOCK 64

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

size_t
wa_hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
    return 2 * len;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
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
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);

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
    static const char prefix[] = "sha256=";
    unsigned char got[WA_SHA256_LEN], want[WA_SHA256_LEN];
    size_t i, usable = 0;
    bool match = false;

    if (header_value == NULL || strncmp(header_value, prefix, sizeof(prefix) - 1) != 0) {
        return wa_error_set(error, WA_EAUTH, "missing or malformed X-Hub-Signature-256");
    }
    if (wa_hex_decode(header_value + sizeof(prefix) - 1, got, sizeof(got)) !=
        (ssize_t)sizeof(got)) {
        return wa_error_set(error, WA_EAUTH, "X-Hub-Signature-256 is not sha256=<64 hex digits>");
    }
    /* Every secret is tried even after a match: the time taken does not reveal which one. */
    for (i = 0; i < nsecrets; i++) {
        if (secrets[i] == NULL || secrets[i][0] == '\0') {
            continue;
        }
        usable++;
        wa_hmac_sha256(secrets[i], strlen(secrets[i]), body, len, want);
        match |= wa_crypto_equal(want, got, sizeof(want));
    }
    OPENSSL_cleanse(want, sizeof(want));
    if (usable == 0) {
        return wa_error_set(error, WA_ECONFIG, "no app secret configured for signature checks");
    }
    if (!match) {
        return wa_error_set(error, WA_EAUTH, "X-Hub-Signature-256 does not match");
    }
    return WA_OK;
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
