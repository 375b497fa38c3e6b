/*
 * fuzz_jwt.c: libFuzzer driver for libs/jwt's parsers of external input: a bearer token (any
 * client) against a fixed key set, and a JWKS document (the issuer's endpoint). The input is
 * split at the first NUL: before it the token, after it a JWKS. Invariants beyond "no crash,
 * no sanitizer report": nothing verifies against the fixed set (its private key is not in the
 * corpus and alg none never passes), so every token is refused with WA_EAUTH or WA_ENOTFOUND
 * and no claims; a parsed JWKS holds 1..64 keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An RSA public key whose private half was thrown away. */
static const char jwks[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\",\"e\":\"AQAB\",\"n\":\"xLqJuuc_V6LTUAk-CL116dVa9AB"
    "fiYD3rvzdCtp4YCvT1ciFYAIE3BTB3Yc_sgO3UhAumv4VcayBJcdyCrMjmUZG3Hg7Qy8GJVkqHY_GTcWKQ0810LwEvr_"
    "N5IX_Xz22F_qdvvZzPINVn4DKiFxY6bNCJp0HdtQ3MYZvXRys7PQyWD2lSwYhgACifxyzyJtYVY5nZTVuycGLzJzJW9q"
    "HcqWHR_xdAdiwnfjxjRQNAkGjx9FvyTLKTvCxUS3vAnetqx0-n9m-KRIh-dcXVMjTeonzqIFous5DvMHIygyUUmXPxby"
    "T9_g1xYU8qiJBx_9k967edeYFslyyaeG4bKf0jw\"}]}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct wa_jwks *keys;
    static const char *const algs[] = {"RS256", "ES256", "HS256", "none"};
    char *text = malloc(size + 1);
    struct wa_jwks *parsed = NULL;
    json_t *claims = NULL;
    char kid[WA_JWT_KID_MAX];
    const char *doc;
    enum wa_err err;

    if (text == NULL) {
        return 0;
    }
    if (keys == NULL && wa_jwks_parse(jwks, strlen(jwks), &keys, NULL, NULL) != WA_OK) {
        abort();
    }
    memcpy(text, data, size);
    text[size] = '\0';
    err = wa_jwt_verify(keys, text, algs, 4, &claims, kid, NULL);
    if (err == WA_OK || claims != NULL || (err != WA_EAUTH && err != WA_ENOTFOUND)) {
        abort();
    }
    doc = memchr(data, '\0', size) != NULL ? text + strlen(text) + 1 : NULL;
    if (doc != NULL &&
        wa_jwks_parse(doc, size - (size_t)(doc - text), &parsed, NULL, NULL) == WA_OK &&
        (wa_jwks_count(parsed) < 1 || wa_jwks_count(parsed) > 64)) {
        abort();
    }
    wa_jwks_free(parsed);
    free(text);
    return 0;
}
