/*
 * apikey.c: API keys, pure (gateway.h). The key text wab_<id>_<secret>, its hash
 * HMAC-SHA256(pepper, secret), scopes, and the stored record (MongoDB api_keys, the Redis
 * cache entry). The raw secret exists only in the caller's request and in the one answer that
 * creates it; nothing here logs. Thread-safe (the wa_hmac object belongs to one thread).
 */
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "wa/clock.h"
#include "wa/contract_outbound.h"
#include "wa/id.h"

static const char *const scope_names[] = {
    "messages:send", "messages:read", "contacts:read", "contacts:write", "analytics:read", "admin",
};
#define NSCOPES (sizeof(scope_names) / sizeof(scope_names[0]))

static bool
lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

enum wa_err
gw_apikey_parse(const char *token, struct gw_key_parts *out)
{
    const char *id, *secret;

    if (token == NULL || strlen(token) != GW_KEY_LEN ||
        strncmp(token, GW_KEY_PREFIX, strlen(GW_KEY_PREFIX)) != 0) {
        return WA_EAUTH;
    }
    id = token + strlen(GW_KEY_PREFIX);
    secret = id + GW_KEY_ID_HEX + 1;
    if (id[GW_KEY_ID_HEX] != '_' || !lower_hex(id, GW_KEY_ID_HEX) ||
        !lower_hex(secret, GW_KEY_SECRET_HEX)) {
        return WA_EAUTH;
    }
    memcpy(out->id, id, GW_KEY_ID_HEX);
    out->id[GW_KEY_ID_HEX] = '\0';
    memcpy(out->secret, secret, GW_KEY_SECRET_HEX);
    out->secret[GW_KEY_SECRET_HEX] = '\0';
    return WA_OK;
}

enum wa_err
gw_apikey_generate(struct gw_key_parts *out, char key[GW_KEY_LEN + 1])
{
    if (wa_random_hex(out->id, GW_KEY_ID_HEX / 2) != WA_OK ||
        wa_random_hex(out->secret, GW_KEY_SECRET_HEX / 2) != WA_OK) {
        return WA_EIO;
    }
    snprintf(key, GW_KEY_LEN + 1, GW_KEY_PREFIX "%s_%s", out->id, out->secret);
    return WA_OK;
}

void
gw_apikey_hash(struct wa_hmac *pepper, const char *secret, char out[GW_HASH_HEX + 1])
{
    unsigned char mac[WA_SHA256_LEN];

    wa_hmac_digest(pepper, secret, strlen(secret), mac);
    wa_hex_encode(mac, sizeof(mac), out);
}

const char *
gw_scope_name(unsigned bit)
{
    for (size_t i = 0; i < NSCOPES; i++) {
        if (bit == 1u << i) {
            return scope_names[i];
        }
    }
    return NULL;
}

static enum wa_err
scope_add(const char *name, size_t len, unsigned *out, char *bad, size_t badsize)
{
    if (len == 3 && memcmp(name, "all", 3) == 0) {
        *out |= GW_SCOPES_ALL;
        return WA_OK;
    }
    for (size_t i = 0; i < NSCOPES; i++) {
        if (strlen(scope_names[i]) == len && memcmp(scope_names[i], name, len) == 0) {
            *out |= 1u << i;
            return WA_OK;
        }
    }
    if (bad != NULL && badsize > 0) {
        snprintf(bad, badsize, "%.*s", (int)(len < 64 ? len : 64), name);
    }
    return WA_EINVAL;
}

enum wa_err
gw_scopes_parse(const char *list, unsigned *out, char *bad, size_t badsize)
{
    const char *p = list;

    *out = 0;
    while (p != NULL && *p != '\0') {
        size_t n = strcspn(p, ", ");

        if (n > 0 && scope_add(p, n, out, bad, badsize) != WA_OK) {
            return WA_EINVAL;
        }
        p += n;
        p += strspn(p, ", ");
    }
    return WA_OK;
}

enum wa_err
gw_scopes_from_json(const json_t *arr, unsigned *out, char *bad, size_t badsize)
{
    size_t i;
    json_t *v;

    *out = 0;
    if (!json_is_array(arr)) {
        if (bad != NULL && badsize > 0) {
            snprintf(bad, badsize, "%s", "(not an array)");
        }
        return WA_EINVAL;
    }
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v)) {
            if (bad != NULL && badsize > 0) {
                snprintf(bad, badsize, "%s", "(not a string)");
            }
            return WA_EINVAL;
        }
        if (scope_add(json_string_value(v), json_string_length(v), out, bad, badsize) != WA_OK) {
            return WA_EINVAL;
        }
    }
    return WA_OK;
}

unsigned
gw_scopes_from_claim(const json_t *claim)
{
    unsigned out = 0, one;
    size_t i;
    json_t *v;

    if (json_is_string(claim)) {
        const char *p = json_string_value(claim);

        while (*p != '\0') {
            size_t n = strcspn(p, " ");

            one = 0;
            if (n > 0 && !(n == 3 && memcmp(p, "all", 3) == 0) &&
                scope_add(p, n, &one, NULL, 0) == WA_OK) {
                out |= one;
            }
            p += n;
            p += strspn(p, " ");
        }
        return out;
    }
    json_array_foreach(claim, i, v)
    {
        one = 0;
        if (json_is_string(v) && strcmp(json_string_value(v), "all") != 0 &&
            scope_add(json_string_value(v), json_string_length(v), &one, NULL, 0) == WA_OK) {
            out |= one;
        }
    }
    return out;
}

json_t *
gw_scopes_to_json(unsigned scopes)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < NSCOPES; i++) {
        if ((scopes & (1u << i)) != 0 && json_array_append_new(a, json_string(scope_names[i]))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* An optional time field: absent or null -> 0; RFC 3339 text -> ms. */
static enum wa_err
time_field(const json_t *doc, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(doc, key);

    *out = 0;
    if (v == NULL || json_is_null(v)) {
        return WA_OK;
    }
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return WA_OK;
    }
    if (json_is_string(v) && wa_contract_time_parse(json_string_value(v), out) == WA_OK) {
        return WA_OK;
    }
    if (json_is_object(v) && json_is_string(json_object_get(v, "$date")) &&
        wa_contract_time_parse(json_string_value(json_object_get(v, "$date")), out) == WA_OK) {
        return WA_OK;
    }
    if (json_is_object(v) && json_is_integer(json_object_get(v, "$date"))) {
        *out = json_integer_value(json_object_get(v, "$date"));
        return WA_OK;
    }
    return WA_EPARSE;
}

enum wa_err
gw_key_record_from_json(const json_t *doc, struct gw_key_record *out)
{
    const char *id = wa_json_str(doc, "_id"), *hash = wa_json_str(doc, "key_hash");
    const char *name = wa_json_str(doc, "name");
    const json_t *rate = json_object_get(doc, "rate_per_min"),
                 *burst = json_object_get(doc, "burst");

    memset(out, 0, sizeof(*out));
    if (id == NULL || strlen(id) != GW_KEY_ID_HEX || hash == NULL || strlen(hash) != GW_HASH_HEX ||
        gw_scopes_from_json(json_object_get(doc, "scopes"), &out->scopes, NULL, 0) != WA_OK ||
        time_field(doc, "created_at", &out->created_ms) != WA_OK ||
        time_field(doc, "expires_at", &out->expires_ms) != WA_OK ||
        time_field(doc, "revoked_at", &out->revoked_ms) != WA_OK) {
        return WA_EPARSE;
    }
    memcpy(out->id, id, GW_KEY_ID_HEX + 1);
    memcpy(out->hash, hash, GW_HASH_HEX + 1);
    snprintf(out->name, sizeof(out->name), "%s", name != NULL ? name : "");
    out->rate_per_min = json_is_integer(rate) ? json_integer_value(rate) : 0;
    out->burst = json_is_integer(burst) ? json_integer_value(burst) : 0;
    if (out->rate_per_min < 0 || out->burst < 0) {
        return WA_EPARSE;
    }
    return WA_OK;
}

static json_t *
time_value(int64_t ms)
{
    char t[WA_RFC3339_LEN];

    if (ms <= 0) {
        return json_null();
    }
    wa_clock_rfc3339((uint64_t)ms, t);
    return json_string(t);
}

json_t *
gw_key_record_to_json(const struct gw_key_record *rec)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:o, s:o, s:o}", "_id", rec->id, "key_hash",
                     rec->hash, "name", rec->name, "scopes", gw_scopes_to_json(rec->scopes),
                     "rate_per_min", (json_int_t)rec->rate_per_min, "burst", (json_int_t)rec->burst,
                     "created_at", time_value(rec->created_ms), "expires_at",
                     time_value(rec->expires_ms), "revoked_at", time_value(rec->revoked_ms));
}

json_t *
gw_key_record_render(const struct gw_key_record *rec)
{
    json_t *v = gw_key_record_to_json(rec);

    if (v != NULL) {
        json_object_del(v, "key_hash");
        json_object_set(v, "id", json_object_get(v, "_id"));
        json_object_del(v, "_id");
    }
    return v;
}

enum gw_key_verdict
gw_key_verify(const struct gw_key_record *rec, struct wa_hmac *pepper, const char *secret,
              int64_t now_ms)
{
    char got[GW_HASH_HEX + 1];
    static const char none[GW_HASH_HEX + 1] =
        "0000000000000000000000000000000000000000000000000000000000000000";
    bool match;

    gw_apikey_hash(pepper, secret, got);
    match = wa_crypto_equal(got, rec != NULL ? rec->hash : none, GW_HASH_HEX);
    if (rec == NULL || !match) {
        return GW_KEY_BAD_SECRET;
    }
    if (rec->revoked_ms > 0) {
        return GW_KEY_REVOKED;
    }
    if (rec->expires_ms > 0 && now_ms >= rec->expires_ms) {
        return GW_KEY_EXPIRED;
    }
    return GW_KEY_OK;
}
