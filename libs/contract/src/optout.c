/*
 * optout.c: the name of the marketing opt-out suppression key (wa/optout.h): HMAC-SHA256 of
 * the identity under WA_OPTOUT_KEY, in hex, after "<prefix>optout:".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/crypto.h"
#include "wa/optout.h"

struct wa_optout {
    struct wa_hmac *mac;
};

enum wa_err
wa_optout_new(const char *secret, struct wa_optout **out)
{
    struct wa_optout *o;
    enum wa_err err;

    *out = NULL;
    if (secret == NULL || secret[0] == '\0') {
        return WA_EINVAL;
    }
    if ((o = calloc(1, sizeof(*o))) == NULL) {
        return WA_ENOMEM;
    }
    if ((err = wa_hmac_new(secret, strlen(secret), &o->mac)) != WA_OK) {
        free(o);
        return err;
    }
    *out = o;
    return WA_OK;
}

void
wa_optout_free(struct wa_optout *o)
{
    if (o != NULL) {
        wa_hmac_free(o->mac);
        free(o);
    }
}

enum wa_err
wa_optout_hash(struct wa_optout *o, const char *identity, char out[WA_OPTOUT_HASH_LEN + 1])
{
    unsigned char mac[WA_SHA256_LEN];

    out[0] = '\0';
    if (identity != NULL && identity[0] == '+') {
        identity++; /* "+<digits>" and "<digits>" are one identity */
    }
    if (identity == NULL || identity[0] == '\0') {
        return WA_EINVAL;
    }
    wa_hmac_digest(o->mac, identity, strlen(identity), mac);
    wa_hex_encode(mac, sizeof(mac), out);
    return WA_OK;
}

enum wa_err
wa_optout_key_of_hash(const char *prefix, const char *hash, char *out, size_t size)
{
    int n;

    if (size > 0) {
        out[0] = '\0';
    }
    if (hash == NULL || strlen(hash) != WA_OPTOUT_HASH_LEN ||
        strspn(hash, "0123456789abcdef") != WA_OPTOUT_HASH_LEN) {
        return WA_EINVAL;
    }
    n = snprintf(out, size, "%soptout:%s", prefix != NULL ? prefix : "", hash);
    if (n < 0 || (size_t)n >= size) {
        if (size > 0) {
            out[0] = '\0';
        }
        return WA_ETOOBIG;
    }
    return WA_OK;
}

enum wa_err
wa_optout_key(struct wa_optout *o, const char *prefix, const char *identity, char *out, size_t size)
{
    char h[WA_OPTOUT_HASH_LEN + 1];
    enum wa_err err;

    if (size > 0) {
        out[0] = '\0';
    }
    if ((err = wa_optout_hash(o, identity, h)) != WA_OK) {
        return err;
    }
    return wa_optout_key_of_hash(prefix, h, out, size);
}
