/*
 * raw.c: the webhook.raw archive record (shape in wa/contract.h): the body verbatim, split
 * into parts small enough for Kafka's default message size, with receive time, the headers
 * worth keeping and a SHA-256 of the whole body so a reassembled body can be checked.
 */
#include <stdint.h>
#include <string.h>

#include "wa/contract.h"
#include "wa/crypto.h"
#include "wa/utf8.h"

bool
wa_contract_utf8_text(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, step;

    /* Eight bytes per step while they are ASCII without NUL (a byte with its high bit set, or
     * a zero byte, which is the only one below 1, ends the step loop). */
    for (; i + 8 <= len; i += 8) {
        uint64_t w;

        memcpy(&w, p + i, 8);
        if (((w | ((w - 0x0101010101010101ull) & ~w)) & 0x8080808080808080ull) != 0) {
            break;
        }
    }
    while (i < len) {
        if (p[i] == 0) {
            return false;
        }
        if (p[i] < 0x80) { /* ASCII fast path: no call per byte */
            i++;
            continue;
        }
        step = wa_utf8_next(p + i, len - i, NULL);
        if (step == 0) {
            return false;
        }
        i += step;
    }
    return true;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Returns a new json string holding base64(data), or NULL when out of memory. */
static json_t *
base64_string(const unsigned char *data, size_t len)
{
    struct wa_buf b;
    json_t *s = NULL;
    size_t i;
    char q[4];

    wa_buf_init(&b, 0);
    if (wa_buf_reserve(&b, (len + 2) / 3 * 4 + 1) != WA_OK) {
        goto out;
    }
    for (i = 0; i + 2 < len; i += 3) {
        unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];

        q[0] = b64[v >> 18], q[1] = b64[(v >> 12) & 63], q[2] = b64[(v >> 6) & 63];
        q[3] = b64[v & 63];
        wa_buf_append(&b, q, 4);
    }
    if (i < len) {
        unsigned v = (unsigned)data[i] << 16 | (i + 1 < len ? (unsigned)data[i + 1] << 8 : 0);

        q[0] = b64[v >> 18], q[1] = b64[(v >> 12) & 63];
        q[2] = i + 1 < len ? b64[(v >> 6) & 63] : '=', q[3] = '=';
        wa_buf_append(&b, q, 4);
    }
    s = json_stringn_nocheck(b.data != NULL ? b.data : "", b.len);
out:
    wa_buf_cleanup(&b);
    return s;
}

/* Length of the next part starting at off: at most the part maximum, ending on a UTF-8 lead
 * byte boundary in text mode (a valid body always has one within the last 4 bytes). */
static size_t
part_len(const char *body, size_t len, size_t off, bool text)
{
    size_t n = len - off;

    if (n <= WA_CONTRACT_RAW_PART_MAX) {
        return n;
    }
    n = WA_CONTRACT_RAW_PART_MAX;
    if (text) {
        while (n > 0 && ((unsigned char)body[off + n] & 0xC0) == 0x80) {
            n--;
        }
    }
    return n;
}

static json_t *
headers_object(const struct wa_contract_raw_meta *meta)
{
    json_t *h = json_object();
    size_t i;

    if (h == NULL) {
        return NULL;
    }
    for (i = 0; i < meta->nheaders; i++) {
        const char *name = meta->headers[2 * i], *value = meta->headers[2 * i + 1];

        /* Header bytes are not guaranteed UTF-8: json_string() refuses those, and they are
         * dropped rather than failing the archive. */
        if (name != NULL && value != NULL) {
            json_t *v = json_string(value);

            if (v != NULL && json_object_set_new(h, name, v) != 0) {
                json_decref(h);
                return NULL;
            }
        }
    }
    return h;
}

enum wa_err
wa_contract_raw_data(const struct wa_contract_raw_meta *meta, const char *body, size_t len,
                     json_t **parts, size_t max_parts, size_t *n)
{
    unsigned char digest[WA_SHA256_LEN];
    char hex[2 * WA_SHA256_LEN + 1];
    bool text;
    size_t off = 0, count = 0, i;
    json_t *headers = NULL;
    enum wa_err err = WA_OK;

    *n = 0;
    if (meta->raw_id == NULL || meta->received_at == NULL || (body == NULL && len > 0)) {
        return WA_EINVAL;
    }
    text = wa_contract_utf8_text(body, len);
    /* Count first so "parts" is known in every part. */
    do {
        off += part_len(body, len, off, text);
        count++;
    } while (off < len);
    if (count > max_parts) {
        return WA_ETOOBIG;
    }
    wa_sha256(body != NULL ? body : "", len, digest);
    wa_hex_encode(digest, sizeof(digest), hex);
    if ((headers = headers_object(meta)) == NULL) {
        return WA_ENOMEM;
    }
    off = 0;
    for (i = 0; i < count; i++) {
        size_t plen = part_len(body, len, off, text);
        json_t *o = json_object();
        int rc = 0;

        if (o == NULL) {
            err = WA_ENOMEM;
            goto out;
        }
        parts[i] = o;
        rc |= json_object_set_new(o, "raw_id", json_string(meta->raw_id));
        rc |= json_object_set_new(o, "request_id",
                                  meta->request_id != NULL ? json_string(meta->request_id)
                                                           : json_null());
        rc |= json_object_set_new(o, "received_at", json_string(meta->received_at));
        rc |= json_object_set_new(o, "parsed", json_boolean(meta->parsed));
        rc |= json_object_set_new(o, "size", json_integer((json_int_t)len));
        rc |= json_object_set_new(o, "sha256", json_string(hex));
        rc |= json_object_set_new(o, "part", json_integer((json_int_t)i));
        rc |= json_object_set_new(o, "parts", json_integer((json_int_t)count));
        rc |= json_object_set(o, "headers", headers);
        if (text) {
            rc |= json_object_set_new(o, "body",
                                      json_stringn_nocheck(plen > 0 ? body + off : "", plen));
        } else {
            rc |= json_object_set_new(o, "body_base64",
                                      base64_string((const unsigned char *)body + off, plen));
        }
        *n = i + 1;
        if (rc != 0) {
            err = WA_ENOMEM;
            goto out;
        }
        off += plen;
    }
out:
    json_decref(headers);
    if (err != WA_OK) {
        for (i = 0; i < *n; i++) {
            json_decref(parts[i]);
            parts[i] = NULL;
        }
        *n = 0;
    }
    return err;
}

enum wa_err
wa_contract_raw_decode(const json_t *data, struct wa_contract_raw *out, struct wa_error *error)
{
    const json_t *v;

    memset(out, 0, sizeof(*out));
    out->raw_id = wa_json_str(data, "raw_id");
    out->received_at = wa_json_str(data, "received_at");
    if (out->raw_id == NULL || out->received_at == NULL) {
        return wa_error_set(error, WA_EPARSE, "data.raw_id/received_at: missing");
    }
    out->request_id = wa_json_str(data, "request_id");
    out->parsed = json_is_true(json_object_get(data, "parsed"));
    out->size = json_integer_value(json_object_get(data, "size"));
    out->sha256 = wa_json_str(data, "sha256");
    out->part = json_integer_value(json_object_get(data, "part"));
    out->parts = json_integer_value(json_object_get(data, "parts"));
    out->headers = json_object_get(data, "headers");
    if ((v = json_object_get(data, "body")) != NULL && json_is_string(v)) {
        out->body = json_string_value(v);
        out->body_len = json_string_length(v);
    } else if ((v = json_object_get(data, "body_base64")) != NULL && json_is_string(v)) {
        out->body_base64 = json_string_value(v);
        out->body_len = json_string_length(v);
    } else {
        return wa_error_set(error, WA_EPARSE, "data.body/body_base64: missing");
    }
    if (out->parts < 1 || out->part < 0 || out->part >= out->parts) {
        return wa_error_set(error, WA_EPARSE, "data.part/parts: out of range");
    }
    return WA_OK;
}

static int
b64_value(char c)
{
    const char *p = c != '\0' ? strchr(b64, c) : NULL;

    return p != NULL ? (int)(p - b64) : -1;
}

enum wa_err
wa_contract_raw_append_body(const struct wa_contract_raw *raw, struct wa_buf *body,
                            struct wa_error *error)
{
    size_t i;

    if (raw->body != NULL) {
        if (wa_buf_append(body, raw->body, raw->body_len) != WA_OK) {
            return wa_error_set(error, WA_ETOOBIG, "reassembled body too large");
        }
        return WA_OK;
    }
    if (raw->body_base64 == NULL || raw->body_len % 4 != 0) {
        return wa_error_set(error, WA_EPARSE, "body_base64: bad length");
    }
    for (i = 0; i < raw->body_len; i += 4) {
        const char *q = raw->body_base64 + i;
        int a = b64_value(q[0]), b = b64_value(q[1]);
        int c = q[2] == '=' ? 0 : b64_value(q[2]), d = q[3] == '=' ? 0 : b64_value(q[3]);
        unsigned char out[3];
        size_t nout = q[2] == '=' ? 1 : q[3] == '=' ? 2 : 3;

        if (a < 0 || b < 0 || c < 0 || d < 0 || (nout < 3 && i + 4 != raw->body_len)) {
            return wa_error_set(error, WA_EPARSE, "body_base64: invalid character");
        }
        out[0] = (unsigned char)(a << 2 | b >> 4);
        out[1] = (unsigned char)((b & 15) << 4 | c >> 2);
        out[2] = (unsigned char)((c & 3) << 6 | d);
        if (wa_buf_append(body, out, nout) != WA_OK) {
            return wa_error_set(error, WA_ETOOBIG, "reassembled body too large");
        }
    }
    return WA_OK;
}
