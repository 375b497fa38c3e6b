/*
 * encode.c: the hot-path encoders of wa-ingest's record values, written straight into the
 * request's arena instead of building jansson trees and dumping them.
 *
 * The bytes are exactly those of the contract's encoders (wa_contract_event_data,
 * wa_contract_raw_data) dumped by jansson with JSON_COMPACT | JSON_ENCODE_ANY, so consumers and
 * the golden files see no difference (checked by tests/unit/ingest/encode_test.c against every webhook
 * fixture):
 *   - objects keep insertion order, separators "," and ":" without spaces;
 *   - strings escape '"', '\\', \b \f \n \r \t, other controls as \u00XX (upper-case hex),
 *     and copy everything else (UTF-8 included) verbatim;
 *   - integers are printed in decimal; reals are handed to jansson itself (json_dumpb).
 * Every string written here is valid UTF-8 by construction: the splitter's document was
 * validated by jansson's parser, the raw body by wa_contract_utf8_text, and header values are
 * checked the way json_string() checks them. Bodies that are not UTF-8 text, or need more than
 * one webhook.raw part, are not handled here (WA_ENOTFOUND): the caller uses the contract's
 * encoder for them.
 * No shared state: safe on any thread.
 */
#include <stdint.h>
#include <string.h>

#include "wa/crypto.h"
#include "wa/json.h"

#include "ingest.h"

/* Per byte: 0 copied verbatim, else the character after the backslash ('u' for \u00XX). */
static const char escape[256] = {
    ['\0'] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u',  [0x04] = 'u', [0x05] = 'u',
    [0x06] = 'u', [0x07] = 'u', ['\b'] = 'b', ['\t'] = 't',  ['\n'] = 'n', [0x0B] = 'u',
    ['\f'] = 'f', ['\r'] = 'r', [0x0E] = 'u', [0x0F] = 'u',  [0x10] = 'u', [0x11] = 'u',
    [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u',  [0x16] = 'u', [0x17] = 'u',
    [0x18] = 'u', [0x19] = 'u', [0x1A] = 'u', [0x1B] = 'u',  [0x1C] = 'u', [0x1D] = 'u',
    [0x1E] = 'u', [0x1F] = 'u', ['"'] = '"',  ['\\'] = '\\',
};

static enum wa_err
put(struct wa_buf *b, const char *s, size_t len)
{
    return wa_buf_append(b, s, len);
}

#define PUT_LIT(b, lit) put((b), (lit), sizeof(lit) - 1)

enum wa_err
ig_json_put_string(struct wa_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;
    size_t out = len + 2;
    enum wa_err err;
    char *o;

    /* Two passes: the exact size, then the bytes written in place. */
    for (size_t i = 0; i < len; i++) {
        char e = escape[p[i]];

        out += e == 0 ? 0 : e == 'u' ? 5 : 1;
    }
    if ((err = wa_buf_reserve(b, out)) != WA_OK) {
        return err;
    }
    o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        char e = escape[p[i]];

        if (e == 0) {
            *o++ = (char)p[i];
            continue;
        }
        *o++ = '\\';
        *o++ = e;
        if (e == 'u') {
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[p[i] >> 4];
            *o++ = hex[p[i] & 15];
        }
    }
    *o++ = '"';
    b->len += out;
    b->data[b->len] = '\0';
    return WA_OK;
}

static enum wa_err
put_str(struct wa_buf *b, const char *s)
{
    return ig_json_put_string(b, s, strlen(s));
}

/* A string, or null for NULL (the contract's set_str). */
static enum wa_err
put_str_or_null(struct wa_buf *b, const char *s)
{
    return s != NULL ? put_str(b, s) : PUT_LIT(b, "null");
}

static enum wa_err
put_int(struct wa_buf *b, long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0) {
        tmp[--i] = '-';
    }
    return put(b, tmp + i, sizeof(tmp) - i);
}

/* Reals: jansson's own formatting (precision, ".0", exponent) by jansson itself. */
static enum wa_err
put_real(struct wa_buf *b, const json_t *v)
{
    char tmp[64];
    size_t n = json_dumpb(v, tmp, sizeof(tmp), JSON_COMPACT | JSON_ENCODE_ANY);

    if (n == 0 || n > sizeof(tmp)) {
        return WA_EINVAL; /* jansson refuses NaN and infinities; nothing else is that long */
    }
    return put(b, tmp, n);
}

enum wa_err
ig_json_put(struct wa_buf *b, const json_t *v)
{
    enum wa_err err = WA_OK;

    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        void *it;
        bool first = true;

        if ((err = PUT_LIT(b, "{")) != WA_OK) {
            return err;
        }
        for (it = json_object_iter((json_t *)v); it != NULL;
             it = json_object_iter_next((json_t *)v, it)) {
            key = json_object_iter_key(it);
            if ((!first && (err = PUT_LIT(b, ",")) != WA_OK) ||
                (err = ig_json_put_string(b, key, json_object_iter_key_len(it))) != WA_OK ||
                (err = PUT_LIT(b, ":")) != WA_OK ||
                (err = ig_json_put(b, json_object_iter_value(it))) != WA_OK) {
                return err;
            }
            first = false;
        }
        return PUT_LIT(b, "}");
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);

        if ((err = PUT_LIT(b, "[")) != WA_OK) {
            return err;
        }
        for (size_t i = 0; i < n; i++) {
            if ((i > 0 && (err = PUT_LIT(b, ",")) != WA_OK) ||
                (err = ig_json_put(b, json_array_get(v, i))) != WA_OK) {
                return err;
            }
        }
        return PUT_LIT(b, "]");
    }
    case JSON_STRING:
        return ig_json_put_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return put_int(b, (long long)json_integer_value(v));
    case JSON_REAL:
        return put_real(b, v);
    case JSON_TRUE:
        return PUT_LIT(b, "true");
    case JSON_FALSE:
        return PUT_LIT(b, "false");
    case JSON_NULL:
        return PUT_LIT(b, "null");
    }
    return WA_EINVAL;
}

/* ,"name": then a string or null */
static enum wa_err
member_str(struct wa_buf *b, const char *name, size_t nlen, const char *v)
{
    enum wa_err err;

    if ((err = put(b, name, nlen)) != WA_OK) {
        return err;
    }
    return put_str_or_null(b, v);
}

static enum wa_err
member_ts(struct wa_buf *b, const char *name, size_t nlen, int64_t v)
{
    enum wa_err err;

    if ((err = put(b, name, nlen)) != WA_OK) {
        return err;
    }
    return v >= 0 ? put_int(b, (long long)v) : PUT_LIT(b, "null");
}

static enum wa_err
member_json(struct wa_buf *b, const char *name, size_t nlen, const json_t *v)
{
    enum wa_err err;

    if ((err = put(b, name, nlen)) != WA_OK) {
        return err;
    }
    return v != NULL ? ig_json_put(b, v) : PUT_LIT(b, "null");
}

#define STR(b, lit, v)  member_str((b), (lit), sizeof(lit) - 1, (v))
#define TS(b, lit, v)   member_ts((b), (lit), sizeof(lit) - 1, (v))
#define JSON(b, lit, v) member_json((b), (lit), sizeof(lit) - 1, (v))

enum wa_err
ig_encode_event_data(struct wa_buf *b, const struct wa_webhook_event *ev)
{
    const char *contact = ev->contact != NULL ? ev->contact : "unknown";
    enum wa_err err = WA_OK;

    /* Same members in the same order as wa_contract_event_data (libs/contract/src/events.c). */
    switch (ev->kind) {
    case WA_WEBHOOK_MESSAGE:
        if ((err = STR(b, "{\"wamid\":", ev->id)) != WA_OK ||
            (err = STR(b, ",\"type\":", ev->type != NULL ? ev->type : "unknown")) != WA_OK ||
            (err = TS(b, ",\"timestamp\":", ev->timestamp)) != WA_OK ||
            (err = STR(b, ",\"phone_number_id\":", ev->phone_number_id)) != WA_OK ||
            (err = STR(b, ",\"display_phone_number\":", ev->display_phone_number)) != WA_OK ||
            (err = STR(b, ",\"waba_id\":", ev->waba_id)) != WA_OK ||
            (err = STR(b, ",\"contact\":", contact)) != WA_OK ||
            (err = STR(b, ",\"from\":", wa_json_str(ev->item, "from"))) != WA_OK ||
            (err = STR(b, ",\"from_user_id\":", wa_json_str(ev->item, "from_user_id"))) != WA_OK ||
            (err = JSON(b, ",\"profile\":", ev->profile)) != WA_OK ||
            (err = JSON(b, ",\"message\":", ev->item)) != WA_OK) {
            return err;
        }
        break;
    case WA_WEBHOOK_STATUS:
        if ((err = STR(b, "{\"wamid\":", ev->id)) != WA_OK ||
            (err = STR(b, ",\"status\":", ev->status)) != WA_OK ||
            (err = TS(b, ",\"timestamp\":", ev->timestamp)) != WA_OK ||
            (err = STR(b, ",\"phone_number_id\":", ev->phone_number_id)) != WA_OK ||
            (err = STR(b, ",\"display_phone_number\":", ev->display_phone_number)) != WA_OK ||
            (err = STR(b, ",\"waba_id\":", ev->waba_id)) != WA_OK ||
            (err = STR(b, ",\"contact\":", contact)) != WA_OK ||
            (err = STR(b, ",\"biz_opaque_callback_data\":",
                       wa_json_str(ev->item, "biz_opaque_callback_data"))) != WA_OK ||
            (err = JSON(b, ",\"status_object\":", ev->item)) != WA_OK) {
            return err;
        }
        break;
    case WA_WEBHOOK_ACCOUNT:
        if ((err = STR(b, "{\"waba_id\":", ev->waba_id)) != WA_OK ||
            (err = STR(b, ",\"field\":", ev->field != NULL ? ev->field : "unknown")) != WA_OK ||
            (err = STR(b, ",\"event\":", ev->type)) != WA_OK ||
            (err = TS(b, ",\"timestamp\":", ev->timestamp)) != WA_OK ||
            (err = STR(b, ",\"phone_number_id\":", ev->phone_number_id)) != WA_OK ||
            (err = JSON(b, ",\"value\":", ev->item)) != WA_OK) {
            return err;
        }
        break;
    default:
        return WA_EINVAL;
    }
    return PUT_LIT(b, "}");
}

enum wa_err
ig_encode_raw_data(struct wa_buf *b, const struct wa_contract_raw_meta *meta, const char *body,
                   size_t len)
{
    unsigned char digest[WA_SHA256_LEN];
    char hex[2 * WA_SHA256_LEN + 1];
    bool first = true;
    enum wa_err err;

    if (meta->raw_id == NULL || meta->received_at == NULL || len > WA_CONTRACT_RAW_PART_MAX ||
        !wa_contract_utf8_text(body, len)) {
        return WA_ENOTFOUND; /* incomplete meta, several parts or base64: the contract's path */
    }
    wa_sha256(body, len, digest);
    wa_hex_encode(digest, sizeof(digest), hex);
    /* Same members in the same order as wa_contract_raw_data (libs/contract/src/raw.c). */
    if ((err = STR(b, "{\"raw_id\":", meta->raw_id)) != WA_OK ||
        (err = STR(b, ",\"request_id\":", meta->request_id)) != WA_OK ||
        (err = STR(b, ",\"received_at\":", meta->received_at)) != WA_OK ||
        (err = meta->parsed ? PUT_LIT(b, ",\"parsed\":true") : PUT_LIT(b, ",\"parsed\":false")) !=
            WA_OK ||
        (err = PUT_LIT(b, ",\"size\":")) != WA_OK || (err = put_int(b, (long long)len)) != WA_OK ||
        (err = STR(b, ",\"sha256\":", hex)) != WA_OK ||
        (err = PUT_LIT(b, ",\"part\":0,\"parts\":1,\"headers\":{")) != WA_OK) {
        return err;
    }
    for (size_t i = 0; i < meta->nheaders; i++) {
        const char *name = meta->headers[2 * i], *value = meta->headers[2 * i + 1];

        /* As json_string(): a value that is not UTF-8 is dropped, not escaped. Names are the
         * caller's distinct constants. */
        if (name == NULL || value == NULL || !wa_contract_utf8_text(value, strlen(value))) {
            continue;
        }
        if ((!first && (err = PUT_LIT(b, ",")) != WA_OK) || (err = put_str(b, name)) != WA_OK ||
            (err = PUT_LIT(b, ":")) != WA_OK || (err = put_str(b, value)) != WA_OK) {
            return err;
        }
        first = false;
    }
    if ((err = PUT_LIT(b, "},\"body\":")) != WA_OK ||
        (err = ig_json_put_string(b, len > 0 ? body : "", len)) != WA_OK) {
        return err;
    }
    return PUT_LIT(b, "}");
}

/* Appends ,"name":"value" (value escaped as wa_cloudevent_encode does); absent when empty. */
static enum wa_err
put_attr(struct wa_buf *b, const char *name, size_t nlen, const char *value)
{
    enum wa_err err;

    if (value == NULL || *value == '\0') {
        return WA_OK;
    }
    if ((err = wa_buf_append(b, name, nlen)) != WA_OK) {
        return err;
    }
    return wa_buf_append_json_string(b, value, strlen(value));
}

#define ATTR(b, lit, v) put_attr((b), (lit), sizeof(lit) - 1, (v))

enum wa_err
ig_encode_cloudevent(struct wa_buf *b, const struct ig_ce *ce, ig_encode_fn encode, const void *arg)
{
    enum wa_err err;

    /* wa_cloudevent_encode's envelope (libs/kafka), byte for byte: fixed attribute order,
     * empty attributes left out, datacontenttype application/json, then data. */
    if ((err = PUT_LIT(b, "{\"specversion\":\"1.0\"")) != WA_OK ||
        (err = ATTR(b, ",\"id\":", ce->id)) != WA_OK ||
        (err = ATTR(b, ",\"source\":", ce->source)) != WA_OK ||
        (err = ATTR(b, ",\"type\":", ce->type)) != WA_OK ||
        (err = ATTR(b, ",\"subject\":", ce->subject)) != WA_OK ||
        (err = ATTR(b, ",\"time\":", ce->time)) != WA_OK ||
        (err = PUT_LIT(b, ",\"datacontenttype\":\"application/json\"")) != WA_OK ||
        (err = ATTR(b, ",\"phonenumberid\":", ce->phonenumberid)) != WA_OK ||
        (err = ATTR(b, ",\"traceparent\":", ce->traceparent)) != WA_OK ||
        (err = PUT_LIT(b, ",\"data\":")) != WA_OK || (err = encode(b, arg)) != WA_OK) {
        return err;
    }
    return PUT_LIT(b, "}");
}
