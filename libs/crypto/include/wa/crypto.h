/*
 * wa/crypto.h: hashing, HMAC, constant-time comparison, hex and Meta webhook signatures.
 *
 * Backed by OpenSSL (libcrypto); no OpenSSL type appears here. The functions are stateless and
 * thread-safe, outputs go to the caller's storage; the exceptions are the keyed objects
 * (struct wa_hmac, struct wa_hub_verifier): keyed once, used by one thread at a time.
 * Random bytes and ids live in wa/id.h (core).
 */
#ifndef WA_CRYPTO_H
#define WA_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "wa/err.h"
#include "wa/hex.h"

#define WA_SHA1_LEN   20
#define WA_SHA256_LEN 32
/* "sha256=" + 64 hex digits + NUL */
#define WA_HUB_SIGNATURE_LEN 72

/* Writes SHA-1(data) into out (for names others define with it, e.g. Redis script names). */
void wa_sha1(const void *data, size_t len, unsigned char out[WA_SHA1_LEN]);
/* Writes SHA-256(data) into out. */
void wa_sha256(const void *data, size_t len, unsigned char out[32]);
/* Writes HMAC-SHA256(key, data) into out (RFC 2104; keys longer than 64 bytes are hashed). */
void wa_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    unsigned char out[32]);
/* Compares len bytes in time that depends only on len. Returns true when equal. */
bool wa_crypto_equal(const void *a, const void *b, size_t len);
/* True when the NUL-terminated strings given and secret are equal (NULL never matches), in time
 * that depends only on their lengths: for tokens and passwords. The length is not secret. */
bool wa_crypto_str_equal(const char *given, const char *secret);

/* wa_hex_encode (lowercase hex) is in wa/hex.h, included here. */
/*
 * Decodes the NUL-terminated hex string (upper or lower case) into out (size outlen).
 * Returns the number of bytes decoded, or -1 for an odd length, a non-hex character, or more
 * than outlen bytes of output. out may be partly written on failure.
 */
ssize_t wa_hex_decode(const char *hex, unsigned char *out, size_t outlen);

/*
 * Checks an X-Hub-Signature-256 header value ("sha256=<64 hex digits>") against
 * HMAC-SHA256(secret, body) for each of the nsecrets secrets (several during secret rotation).
 * Each comparison takes constant time and every secret is tried, so timing reveals neither
 * the digest nor which secret matched. NULL or empty secrets are skipped (never match).
 * Returns WA_OK on a match, WA_EAUTH when the header is missing, malformed or matches no
 * secret, WA_ECONFIG when no usable secret was given. Borrows all arguments.
 */
enum wa_err wa_hub_signature_verify(const char *header_value, const void *body, size_t len,
                                    const char *const *secrets, size_t nsecrets,
                                    struct wa_error *error);
/* Writes "sha256=<64 lowercase hex digits>" for HMAC-SHA256(secret, body) and a NUL into out. */
void wa_hub_signature_make(const char *secret, const void *body, size_t len,
                           char out[WA_HUB_SIGNATURE_LEN]);

/*
 * HMAC-SHA256 keyed once and used for many messages: the key schedule and OpenSSL's algorithm
 * lookup happen in wa_hmac_new only. One thread at a time per object.
 */
struct wa_hmac;
/* Keys a new object with a copy of key. Returns WA_OK and sets *out, or WA_ENOMEM. */
enum wa_err wa_hmac_new(const void *key, size_t keylen, struct wa_hmac **out);
/* Frees h (NULL is fine). */
void wa_hmac_free(struct wa_hmac *h);
/* Writes HMAC-SHA256(key, data) into out; equal to wa_hmac_sha256 with the same key. */
void wa_hmac_digest(struct wa_hmac *h, const void *data, size_t len,
                    unsigned char out[WA_SHA256_LEN]);
/* Writes "sha256=<64 lowercase hex digits>" of HMAC-SHA256(key, body) and a NUL into out. */
void wa_hmac_hub_signature(struct wa_hmac *h, const void *body, size_t len,
                           char out[WA_HUB_SIGNATURE_LEN]);

/*
 * X-Hub-Signature-256 checks keyed once for a set of secrets (several during a rotation):
 * wa_hub_signature_verify without the per-call key set-up. One thread at a time per object.
 */
struct wa_hub_verifier;
/*
 * Keys one HMAC per usable secret (NULL and empty ones are skipped). Returns WA_OK and sets *out,
 * WA_ECONFIG when no usable secret was given, WA_ENOMEM. Copies the secrets.
 */
enum wa_err wa_hub_verifier_new(const char *const *secrets, size_t nsecrets,
                                struct wa_hub_verifier **out, struct wa_error *error);
/* Frees v (NULL is fine). */
void wa_hub_verifier_free(struct wa_hub_verifier *v);
/*
 * Same rules, results and messages as wa_hub_signature_verify with v's secrets: every secret is
 * tried, each comparison in constant time. Borrows all arguments.
 */
enum wa_err wa_hub_verifier_check(struct wa_hub_verifier *v, const char *header_value,
                                  const void *body, size_t len, struct wa_error *error);

#endif
