/*
 * fuzz_hub_signature.c: libFuzzer driver for the X-Hub-Signature-256 check wa-ingest runs
 * before anything else (wa_hub_signature_verify). Input layout: the header value up to the
 * first newline, the body after it. Invariants: no crash; a header made with one of the secrets
 * verifies; the fuzzed header verifies only if it is (case-insensitively) that header.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wa/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const secrets[] = {"sandbox-secret", "previous-secret"};
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl != NULL ? (size_t)(nl - data) : size;
    const uint8_t *body = nl != NULL ? nl + 1 : data + size;
    size_t blen = size - hlen - (nl != NULL ? 1 : 0);
    char *header = malloc(hlen + 1);
    char good[WA_HUB_SIGNATURE_LEN];
    enum wa_err err;

    if (header == NULL) {
        return 0;
    }
    memcpy(header, data, hlen);
    header[hlen] = '\0';
    err = wa_hub_signature_verify(header, body, blen, secrets, 2, NULL);
    wa_hub_signature_make(secrets[1], body, blen, good);
    if (wa_hub_signature_verify(good, body, blen, secrets, 2, NULL) != WA_OK) {
        abort();
    }
    if (err == WA_OK && strlen(header) == hlen) {
        char other[WA_HUB_SIGNATURE_LEN];

        wa_hub_signature_make(secrets[0], body, blen, other);
        if (strcasecmp(header, good) != 0 && strcasecmp(header, other) != 0) {
            abort();
        }
    } else if (err != WA_OK && err != WA_EAUTH) {
        abort();
    }
    free(header);
    return 0;
}
