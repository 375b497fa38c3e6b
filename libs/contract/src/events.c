/*
 * events.c: keys, encoders and decoders of inbound.message, inbound.status and account.event
 * (shapes in wa/contract.h). Encoders start from the webhook splitter's events and share
 * Meta's verbatim objects by reference; decoders borrow from the data they are given.
 */
#include <stdio.h>
#include <string.h>

#include "wa/contract.h"

/* Writes the n strings one after another into out (NUL-terminated); WA_ETOOBIG and "" when
 * they do not fit. The keys below are made per event on wa-ingest's hot path: copies, not
 * snprintf. */
static enum wa_err
join(char *out, size_t size, const char *const *parts, size_t n)
{
    size_t at = 0;

    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(parts[i]);

        if (len >= size - at) {
            if (size > 0) {
                out[0] = '\0';
            }
            return WA_ETOOBIG;
        }
        memcpy(out + at, parts[i], len);
        at += len;
    }
    if (size == 0) {
        return WA_ETOOBIG;
    }
    out[at] = '\0';
    return WA_OK;
}

enum wa_err
wa_contract_conversation_key(const char *phone_number_id, const char *contact, char *out,
                             size_t size)
{
    const char *parts[] = {phone_number_id != NULL ? phone_number_id : "unknown", ":",
                           contact != NULL ? contact : "unknown"};

    return join(out, size, parts, 3);
}

const char *
wa_contract_event_topic(enum wa_webhook_kind kind)
{
    switch (kind) {
    case WA_WEBHOOK_MESSAGE:
        return WA_TOPIC_INBOUND_MESSAGE;
    case WA_WEBHOOK_STATUS:
        return WA_TOPIC_INBOUND_STATUS;
    case WA_WEBHOOK_ACCOUNT:
        return WA_TOPIC_ACCOUNT_EVENT;
    }
    return WA_TOPIC_ACCOUNT_EVENT;
}

const char *
wa_contract_event_type(enum wa_webhook_kind kind)
{
    switch (kind) {
    case WA_WEBHOOK_MESSAGE:
        return WA_CE_TYPE_INBOUND_MESSAGE;
    case WA_WEBHOOK_STATUS:
        return WA_CE_TYPE_INBOUND_STATUS;
    case WA_WEBHOOK_ACCOUNT:
        return WA_CE_TYPE_ACCOUNT_EVENT;
    }
    return WA_CE_TYPE_ACCOUNT_EVENT;
}

enum wa_err
wa_contract_event_key(const struct wa_webhook_event *ev, char *out, size_t size)
{
    const char *parts[] = {ev->waba_id != NULL ? ev->waba_id : "unknown"};

    if (ev->kind != WA_WEBHOOK_ACCOUNT || ev->contact != NULL) {
        return wa_contract_conversation_key(ev->phone_number_id, ev->contact, out, size);
    }
    return join(out, size, parts, 1);
}

enum wa_err
wa_contract_event_dedup_id(const struct wa_webhook_event *ev, char *out, size_t size)
{
    const char *parts[6];

    if (ev->id == NULL || (ev->kind == WA_WEBHOOK_STATUS && ev->status == NULL)) {
        return WA_ENOTFOUND; /* the splitter never emits these: nothing to deduplicate on */
    }
    switch (ev->kind) {
    case WA_WEBHOOK_MESSAGE:
        parts[0] = "m:";
        parts[1] = ev->id;
        return join(out, size, parts, 2);
    case WA_WEBHOOK_STATUS:
        parts[0] = "s:";
        parts[1] = ev->id;
        parts[2] = ":";
        parts[3] = ev->status;
        parts[4] = ":";
        parts[5] = ev->participant;
        return join(out, size, parts, ev->participant != NULL ? 6 : 4);
    default:
        return WA_ENOTFOUND;
    }
}

/* Each setter returns 0 on success, -1 when out of memory (json_object_set_new's convention). */
static int
set_str(json_t *o, const char *key, const char *v)
{
    return json_object_set_new_nocheck(o, key, v != NULL ? json_string(v) : json_null());
}

static int
set_ts(json_t *o, const char *key, int64_t v)
{
    return json_object_set_new_nocheck(o, key, v >= 0 ? json_integer(v) : json_null());
}

/* Shares v (a value of the splitter's document) by reference; NULL becomes null. */
static int
set_shared(json_t *o, const char *key, const json_t *v)
{
    return json_object_set_nocheck(o, key, v != NULL ? (json_t *)v : json_null());
}

enum wa_err
wa_contract_event_data(const struct wa_webhook_event *ev, json_t **out)
{
    json_t *o = json_object();
    int rc = 0;

    *out = NULL;
    if (o == NULL) {
        return WA_ENOMEM;
    }
    switch (ev->kind) {
    case WA_WEBHOOK_MESSAGE:
        rc |= set_str(o, "wamid", ev->id);
        rc |= set_str(o, "type", ev->type != NULL ? ev->type : "unknown");
        rc |= set_ts(o, "timestamp", ev->timestamp);
        rc |= set_str(o, "phone_number_id", ev->phone_number_id);
        rc |= set_str(o, "display_phone_number", ev->display_phone_number);
        rc |= set_str(o, "waba_id", ev->waba_id);
        rc |= set_str(o, "contact", ev->contact != NULL ? ev->contact : "unknown");
        rc |= set_str(o, "from", wa_json_str(ev->item, "from"));
        rc |= set_str(o, "from_user_id", wa_json_str(ev->item, "from_user_id"));
        rc |= set_shared(o, "profile", ev->profile);
        rc |= set_shared(o, "message", ev->item);
        if (ev->repaired) {
            rc |= json_object_set_new_nocheck(o, "repaired", json_true());
        }
        break;
    case WA_WEBHOOK_STATUS:
        rc |= set_str(o, "wamid", ev->id);
        rc |= set_str(o, "status", ev->status);
        rc |= set_ts(o, "timestamp", ev->timestamp);
        rc |= set_str(o, "phone_number_id", ev->phone_number_id);
        rc |= set_str(o, "display_phone_number", ev->display_phone_number);
        rc |= set_str(o, "waba_id", ev->waba_id);
        rc |= set_str(o, "contact", ev->contact != NULL ? ev->contact : "unknown");
        rc |= set_str(o, "biz_opaque_callback_data",
                      wa_json_str(ev->item, "biz_opaque_callback_data"));
        rc |= set_shared(o, "status_object", ev->item);
        if (ev->repaired) {
            rc |= json_object_set_new_nocheck(o, "repaired", json_true());
        }
        break;
    case WA_WEBHOOK_ACCOUNT:
        rc |= set_str(o, "waba_id", ev->waba_id);
        rc |= set_str(o, "field", ev->field != NULL ? ev->field : "unknown");
        rc |= set_str(o, "event", ev->type);
        rc |= set_ts(o, "timestamp", ev->timestamp);
        rc |= set_str(o, "phone_number_id", ev->phone_number_id);
        rc |= set_str(o, "contact", ev->contact);
        rc |= set_shared(o, "value", ev->item);
        if (ev->repaired) {
            rc |= json_object_set_new_nocheck(o, "repaired", json_true());
        }
        break;
    }
    if (rc != 0) {
        json_decref(o);
        return WA_ENOMEM;
    }
    *out = o;
    return WA_OK;
}

/* ---- decoders ---- */

static enum wa_err
need_str(const json_t *data, const char *key, const char **out, struct wa_error *error)
{
    *out = wa_json_str(data, key);
    if (*out == NULL) {
        return wa_error_set(error, WA_EPARSE, "data.%s: missing or not a string", key);
    }
    return WA_OK;
}

static enum wa_err
need_obj(const json_t *data, const char *key, const json_t **out, struct wa_error *error)
{
    *out = json_object_get(data, key);
    if (!json_is_object(*out)) {
        *out = NULL;
        return wa_error_set(error, WA_EPARSE, "data.%s: missing or not an object", key);
    }
    return WA_OK;
}

static int64_t
opt_ts(const json_t *data, const char *key)
{
    const json_t *v = json_object_get(data, key);

    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : -1;
}

static const json_t *
opt_obj(const json_t *data, const char *key)
{
    const json_t *v = json_object_get(data, key);

    return json_is_object(v) ? v : NULL;
}

enum wa_err
wa_contract_inbound_message_decode(const json_t *data, struct wa_contract_inbound_message *out,
                                   struct wa_error *error)
{
    enum wa_err err;

    memset(out, 0, sizeof(*out));
    if ((err = need_str(data, "wamid", &out->wamid, error)) != WA_OK ||
        (err = need_str(data, "type", &out->type, error)) != WA_OK ||
        (err = need_str(data, "contact", &out->contact, error)) != WA_OK ||
        (err = need_obj(data, "message", &out->message, error)) != WA_OK) {
        return err;
    }
    out->timestamp = opt_ts(data, "timestamp");
    out->phone_number_id = wa_json_str(data, "phone_number_id");
    out->display_phone_number = wa_json_str(data, "display_phone_number");
    out->waba_id = wa_json_str(data, "waba_id");
    out->from = wa_json_str(data, "from");
    out->from_user_id = wa_json_str(data, "from_user_id");
    out->profile = opt_obj(data, "profile");
    out->profile_name = wa_json_str(opt_obj(out->profile, "profile"), "name");
    out->context = opt_obj(out->message, "context");
    out->referral = opt_obj(out->message, "referral");
    out->text = wa_json_str(opt_obj(out->message, "text"), "body");
    return WA_OK;
}

enum wa_err
wa_contract_inbound_status_decode(const json_t *data, struct wa_contract_inbound_status *out,
                                  struct wa_error *error)
{
    const json_t *errors;
    enum wa_err err;

    memset(out, 0, sizeof(*out));
    if ((err = need_str(data, "wamid", &out->wamid, error)) != WA_OK ||
        (err = need_str(data, "status", &out->status, error)) != WA_OK ||
        (err = need_obj(data, "status_object", &out->status_object, error)) != WA_OK) {
        return err;
    }
    out->timestamp = opt_ts(data, "timestamp");
    out->phone_number_id = wa_json_str(data, "phone_number_id");
    out->display_phone_number = wa_json_str(data, "display_phone_number");
    out->waba_id = wa_json_str(data, "waba_id");
    out->contact = wa_json_str(data, "contact");
    out->biz_opaque_callback_data = wa_json_str(data, "biz_opaque_callback_data");
    errors = json_object_get(out->status_object, "errors");
    out->errors = json_is_array(errors) ? errors : NULL;
    out->pricing = opt_obj(out->status_object, "pricing");
    out->conversation = opt_obj(out->status_object, "conversation");
    return WA_OK;
}

enum wa_err
wa_contract_account_event_decode(const json_t *data, struct wa_contract_account_event *out,
                                 struct wa_error *error)
{
    enum wa_err err;

    memset(out, 0, sizeof(*out));
    if ((err = need_str(data, "field", &out->field, error)) != WA_OK) {
        return err;
    }
    out->value = json_object_get(data, "value");
    if (out->value == NULL || json_is_null(out->value)) {
        return wa_error_set(error, WA_EPARSE, "data.value: missing");
    }
    out->waba_id = wa_json_str(data, "waba_id");
    out->event = wa_json_str(data, "event");
    out->timestamp = opt_ts(data, "timestamp");
    out->phone_number_id = wa_json_str(data, "phone_number_id");
    out->contact = wa_json_str(data, "contact");
    return WA_OK;
}
