/*
 * verify.c: stage 2 of 7. Input: a request with its raw body. Output: ig_split_start() when
 * X-Hub-Signature-256 is HMAC-SHA256(app secret, raw bytes); else 401 with a JSON error.
 *
 * The raw bytes are hashed as received, never a re-serialisation (cloud-api.md §3.2). During a
 * secret rotation both WA_APP_SECRET and WA_APP_SECRET_PREVIOUS are accepted; every secret is
 * always tried and compared in constant time, so timing reveals neither the digest nor which
 * secret matched. The rules and messages are wa_hub_signature_verify's (libs/crypto); the HMAC
 * of each secret is keyed once at start (ig_verify_new) and re-initialised per body, which
 * saves OpenSSL's per-call algorithm fetch and key schedule on the hot path. Should OpenSSL
 * refuse that set-up, wa_hub_signature_verify itself is used.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "wa/crypto.h"

#include "ingest.h"

enum wa_err
ig_verify_new(struct ig *ig)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                            OSSL_PARAM_construct_end()};
    enum wa_err err = WA_OK;

    for (size_t i = 0; i < 2 && err == WA_OK; i++) {
        const char *s = ig->secrets[i];

        if (s == NULL || s[0] == '\0') {
            continue;
        }
        ig->mac[i] = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
        if (ig->mac[i] == NULL ||
            !EVP_MAC_init(ig->mac[i], (const unsigned char *)s, strlen(s), params)) {
            err = WA_EINTERNAL;
        }
    }
    EVP_MAC_free(mac);
    if (err != WA_OK) {
        ig_verify_free(ig); /* the library's path is used instead */
    }
    return err;
}

void
ig_verify_free(struct ig *ig)
{
    for (size_t i = 0; i < 2; i++) {
        EVP_MAC_CTX_free(ig->mac[i]);
        ig->mac[i] = NULL;
    }
}

/* wa_hub_signature_verify with the pre-keyed contexts. */
static enum wa_err
verify(struct ig *ig, const char *header, const void *body, size_t len, struct wa_error *error)
{
    static const char prefix[] = "sha256=";
    unsigned char got[WA_SHA256_LEN], want[WA_SHA256_LEN];
    size_t usable = 0, n;
    bool match = false, failed = false;

    if (ig->mac[0] == NULL && ig->mac[1] == NULL) {
        return wa_hub_signature_verify(header, body, len, ig->secrets, 2, error);
    }
    if (header == NULL || strncmp(header, prefix, sizeof(prefix) - 1) != 0) {
        return wa_error_set(error, WA_EAUTH, "missing or malformed X-Hub-Signature-256");
    }
    if (wa_hex_decode(header + sizeof(prefix) - 1, got, sizeof(got)) != (ssize_t)sizeof(got)) {
        return wa_error_set(error, WA_EAUTH, "X-Hub-Signature-256 is not sha256=<64 hex digits>");
    }
    /* Every secret is tried even after a match: the time taken does not reveal which one. */
    for (size_t i = 0; i < 2; i++) {
        if (ig->mac[i] == NULL) {
            continue;
        }
        usable++;
        n = 0;
        if (!EVP_MAC_init(ig->mac[i], NULL, 0, NULL) || !EVP_MAC_update(ig->mac[i], body, len) ||
            !EVP_MAC_final(ig->mac[i], want, &n, sizeof(want)) || n != sizeof(want)) {
            failed = true;
            continue;
        }
        match |= wa_crypto_equal(want, got, sizeof(want));
    }
    OPENSSL_cleanse(want, sizeof(want));
    if (failed) {
        return wa_error_set(error, WA_EINTERNAL, "HMAC computation failed");
    }
    if (usable == 0) {
        return wa_error_set(error, WA_ECONFIG, "no app secret configured for signature checks");
    }
    if (!match) {
        return wa_error_set(error, WA_EAUTH, "X-Hub-Signature-256 does not match");
    }
    return WA_OK;
}

void
ig_verify_start(struct ig_request *r)
{
    struct ig *ig = r->ig;
    const char *header = wa_http_req_header(r->req, "X-Hub-Signature-256");
    struct wa_error error = {0};

    if (verify(ig, header, r->body, r->len, &error) != WA_OK) {
        wa_counter_inc(ig->m.signature_failures);
        wa_log_warn(&r->log, "webhook refused: %s", error.message);
        ig_request_reply(r, IG_OUT_UNAUTHORIZED, 401,
                         "{\"error\":{\"code\":\"unauthorized\",\"message\":\"missing or wrong "
                         "X-Hub-Signature-256\"}}");
        ig_request_release(r, false);
        return;
    }
    ig_split_start(r);
}
