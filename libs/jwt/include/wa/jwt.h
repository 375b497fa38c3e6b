/*
 * wa/jwt.h: bearer JWTs (compact JWS) checked against a JSON Web Key Set: wa-gateway's
 * tokens from a company identity provider.
 *
 * Verification is strict by construction: the header's alg must be in the caller's allow-list
 * ("none" never is, whatever the list says), the key is chosen by kid (a token without kid
 * matches only a set of one key), the key's type must be the one the alg family needs (RS* /
 * PS* RSA, ES* EC, HS* only an "oct" key, so an HMAC token "signed" with a public key is
 * refused), a key whose "use" is not "sig" or whose "alg" differs is not used, and then the
 * signature is checked (cjose, OpenSSL). Claims are checked separately (wa_jwt_check_claims):
 * exp required, nbf, iss, aud, with a leeway.
 *
 * Ownership: struct wa_jwks is immutable once parsed; free with wa_jwks_free. Claims are a new
 * jansson reference. Thread-safe (no shared state); cjose's types never leave the library.
 */
#ifndef WA_JWT_H
#define WA_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/err.h"
#include "wa/json.h"

#define WA_JWT_MAX     8192 /* bytes of a token */
#define WA_JWT_KID_MAX 128

struct wa_jwks;

/* Parses a JWKS document ({"keys": [...]}, at most 64 keys). Keys cjose cannot import are
 * skipped (and counted in *skipped, may be NULL); none usable is WA_EPARSE. Returns a new set
 * in *out; free with wa_jwks_free. */
enum wa_err wa_jwks_parse(const char *json, size_t len, struct wa_jwks **out, size_t *skipped,
                          struct wa_error *error);
void wa_jwks_free(struct wa_jwks *keys);
size_t wa_jwks_count(const struct wa_jwks *keys);

/*
 * Verifies token's signature. algs: the allowed alg names (borrowed). On WA_OK *claims is the
 * payload object (new reference). WA_ENOTFOUND: the header names a kid the set does not hold
 * (the caller may refetch the set); kid (may be NULL) receives the header's kid in any case.
 * WA_EAUTH for everything else (malformed, alg not allowed, key type mismatch, bad signature,
 * payload not a JSON object), with the reason in error.
 */
enum wa_err wa_jwt_verify(const struct wa_jwks *keys, const char *token, const char *const *algs,
                          size_t nalgs, json_t **claims, char kid[WA_JWT_KID_MAX],
                          struct wa_error *error);

/*
 * Checks registered claims at now_s (seconds since the epoch) with leeway_s: exp required and
 * > now - leeway; nbf (when present) <= now + leeway; iss equal to iss; aud (a string or an
 * array of strings) containing aud. WA_EAUTH with the claim named in error. Pure.
 */
enum wa_err wa_jwt_check_claims(const json_t *claims, const char *iss, const char *aud,
                                int64_t now_s, int64_t leeway_s, struct wa_error *error);

/*
 * For tests and tools: signs claims (a JSON object) with the private JWK jwk_json under alg and
 * kid (NULL: none) into a new compact token in *out (free()). typ "JWT".
 */
enum wa_err wa_jwt_sign(const char *jwk_json, const char *alg, const char *kid,
                        const json_t *claims, char **out, struct wa_error *error);
/* For tests and tools: a new key pair, "RSA" (2048 bits) or "EC" (P-256), with kid, as the
 * private JWK and the public JWK (JSON text, free()). */
enum wa_err wa_jwk_generate(const char *kty, const char *kid, char **private_jwk, char **public_jwk,
                            struct wa_error *error);

#endif
