/*
 * write.c: the hot-path writers of the contract's data members: event data and the single
 * webhook.raw part, appended straight to a wa_buf instead of building jansson trees and
 * dumping them.
 *
 * The bytes are exactly those of wa_contract_event_data (events.c) and wa_contract_raw_data
 * (raw.c) dumped by jansson with JSON_COMPACT | JSON_ENCODE_ANY, so consumers and the golden
 * files see no difference (tests/unit/contract/write_test.c compares them over every webhook
 * fixture and the splitter's fuzz corpus); the JSON itself is written by wa_json_write*
 * (libs/json). Every string written is valid UTF-8 by construction: the splitter's document
 * was validated by wa_json_parse's reader, the raw body by wa_contract_utf8_text, and header values
 * are checked the way json_string() checks them. Bodies that are not UTF-8 text, or need more
 * than one webhook.raw part, are not handled here (WA_ENOTFOUND): the caller uses
 * wa_contract_raw_data for them.
 * No shared state: safe on any thread.
 */
#include <string.h>

#include "wa/contract.h"
#include "wa/crypto.h"

#define PUT_LIT(b, lit) wa_buf_append((b), (lit), sizeof(lit) - 1)

/* A string, or null for NULL (the contract's set_str). */
static enum wa_err
put_str_or_null(struct wa_buf *b, const char *s)
{
    return s != NULL ? wa_buf_append_json_string(b, s, strlen(s)) : PUT_LIT(b, "null");
}

/* name (the literal ,"member": with its separator) then a string or null */
static enum wa_err
member_str(struct wa_buf *b, const char *name, size_t nlen, const char *v)
{
    enum wa_err err;

    if ((err = wa_buf_append(b, name, nlen)) != WA_OK) {
        return err;
    }
    return put_str_or_null(b, v);
}

/* name then a timestamp, or null when negative (absent) */
static enum wa_err
member_ts(struct wa_buf *b, const char *name, size_t nlen, int64_t v)
{
    enum wa_err err;

    if ((err = wa_buf_append(b, name, nlen)) != WA_OK) {
        return err;
    }
    return v >= 0 ? wa_json_write_int(b, v) : PUT_LIT(b, "null");
}

/* name then a JSON value, or null for NULL */
static enum wa_err
member_json(struct wa_buf *b, const char *name, size_t nlen, const json_t *v)
{
    enum wa_err err;

    if ((err = wa_buf_append(b, name, nlen)) != WA_OK) {
        return err;
    }
    return v != NULL ? wa_json_write(b, v) : PUT_LIT(b, "null");
}

#define STR(b, lit, v)  member_str((b), (lit), sizeof(lit) - 1, (v))
#define TS(b, lit, v)   member_ts((b), (lit), sizeof(lit) - 1, (v))
#define JSON(b, lit, v) member_json((b), (lit), sizeof(lit) - 1, (v))

static enum wa_err
event_data(struct wa_buf *b, const struct wa_webhook_event *ev)
{
    const char *contact = ev->contact != NULL ? ev->contact : "unknown";
    enum wa_err err = WA_OK;

    /* Same members in the same order as wa_contract_event_data (events.c). */
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
            (err = STR(b, ",\"contact\":", ev->contact)) != WA_OK ||
            (err = JSON(b, ",\"value\":", ev->item)) != WA_OK) {
            return err;
        }
        break;
    default:
        return WA_EINVAL;
    }
    if (ev->repaired && (err = PUT_LIT(b, ",\"repaired\":true")) != WA_OK) {
        return err;
    }
    return PUT_LIT(b, "}");
}

enum wa_err
wa_contract_event_data_write(struct wa_buf *b, const struct wa_webhook_event *ev)
{
    size_t start = b->len; /* read before event_data: argument order is unspecified */

    return wa_buf_rollback(b, start, event_data(b, ev));
}

static enum wa_err
raw_data(struct wa_buf *b, const struct wa_contract_raw_meta *meta, const char *body, size_t len)
{
    unsigned char digest[WA_SHA256_LEN];
    char hex[2 * WA_SHA256_LEN + 1];
    bool first = true;
    enum wa_err err;

    wa_sha256(body, len, digest);
    wa_hex_encode(digest, sizeof(digest), hex);
    /* Same members in the same order as wa_contract_raw_data (raw.c). */
    if ((err = STR(b, "{\"raw_id\":", meta->raw_id)) != WA_OK ||
        (err = STR(b, ",\"request_id\":", meta->request_id)) != WA_OK ||
        (err = STR(b, ",\"received_at\":", meta->received_at)) != WA_OK ||
        (err = meta->parsed ? PUT_LIT(b, ",\"parsed\":true") : PUT_LIT(b, ",\"parsed\":false")) !=
            WA_OK ||
        (err = PUT_LIT(b, ",\"size\":")) != WA_OK ||
        (err = wa_json_write_int(b, (int64_t)len)) != WA_OK ||
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
        if ((!first && (err = PUT_LIT(b, ",")) != WA_OK) ||
            (err = wa_buf_append_json_string(b, name, strlen(name))) != WA_OK ||
            (err = PUT_LIT(b, ":")) != WA_OK ||
            (err = wa_buf_append_json_string(b, value, strlen(value))) != WA_OK) {
            return err;
        }
        first = false;
    }
    if ((err = PUT_LIT(b, "},\"body\":")) != WA_OK ||
        (err = wa_buf_append_json_string(b, len > 0 ? body : "", len)) != WA_OK) {
        return err;
    }
    return PUT_LIT(b, "}");
}

enum wa_err
wa_contract_raw_data_write(struct wa_buf *b, const struct wa_contract_raw_meta *meta,
                           const char *body, size_t len)
{
    size_t start;

    if (meta->raw_id == NULL || meta->received_at == NULL || len > WA_CONTRACT_RAW_PART_MAX ||
        !wa_contract_utf8_text(body, len)) {
        return WA_ENOTFOUND; /* incomplete meta, several parts or base64: wa_contract_raw_data */
    }
    start = b->len;
    return wa_buf_rollback(b, start, raw_data(b, meta, body, len));
}
