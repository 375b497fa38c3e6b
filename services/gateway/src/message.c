/*
 * message.c: POST /v1/messages bodies, pure (gateway.h). Checks every top-level field and
 * names each invalid one by JSON pointer, checks the type's body with libs/whatsapp's Cloud API
 * rules (the rules wa-notify applies before sending, so a request accepted here is not refused
 * there for its shape), and builds the outbound.request data (wa/contract_outbound.h), which is
 * decoded once more with the consumers' own decoder before it is published. not_before may lie
 * at most WA_CONTRACT_NOT_BEFORE_MAX_MS (30 days) ahead of the wall clock. Also the
 * idempotency helpers: body fingerprints, request ids of keyed requests, decisions.
 * Thread-safe; json_t values belong to the caller.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "wa/clock.h"
#include "wa/contract_outbound.h"
#include "wa/whatsapp_message.h"

#define METADATA_MAX 4096 /* bytes of compact JSON */

static const char *const send_types[] = {
    "text",    "template", "image",    "video",       "audio",    "document",
    "sticker", "location", "contacts", "interactive", "reaction",
};
static const char *const categories[] = {"marketing", "utility", "authentication", "service"};
static const char *const envelope[] = {
    "to",
    "recipient",
    "type",
    "category",
    "phone_number_id",
    "not_before",
    "expires_at",
    "priority",
    "metadata",
    "context",
    "fallback_template",
    "messaging_product",
    "recipient_type",
};

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static bool
in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++) {
        if (strcmp(s, list[i]) == 0) {
            return true;
        }
    }
    return false;
}

static void field_error(struct gw_body_check *c, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
field_error(struct gw_body_check *c, const char *pointer, const char *fmt, ...)
{
    va_list ap;
    struct gw_field_error *e;

    if (c->n >= GW_FIELD_ERRORS_MAX) {
        return;
    }
    e = &c->errors[c->n++];
    snprintf(e->pointer, sizeof(e->pointer), "%s", pointer);
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
    va_end(ap);
}

static bool
digits(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
    }
    return true;
}

/* A time field; max_ahead_ms > 0: at most that far in the future (wall clock). */
static void
check_time(const json_t *body, const char *key, int64_t max_ahead_ms, struct gw_body_check *c)
{
    const json_t *v = json_object_get(body, key);
    char ptr[32];
    int64_t ms;

    if (v == NULL || json_is_null(v)) {
        return;
    }
    snprintf(ptr, sizeof(ptr), "/%s", key);
    if (json_is_integer(v)
            ? (ms = json_integer_value(v)) < 0
            : !json_is_string(v) || wa_contract_time_parse(json_string_value(v), &ms) != WA_OK) {
        field_error(c, ptr, "must be an RFC 3339 date-time or milliseconds since the epoch");
    } else if (max_ahead_ms > 0 && ms - (int64_t)wa_clock_wall_ms() > max_ahead_ms) {
        field_error(c, ptr, "must be at most %lld days ahead",
                    (long long)(max_ahead_ms / (24ll * 3600 * 1000)));
    }
}

/* The type's body against the Cloud API's rules, as the Cloud API body wa-notify sends. */
static void
check_type_body(const json_t *body, const char *type, const char *to, const char *recipient,
                struct gw_body_check *c)
{
    json_t *send =
        json_pack("{s:s, s:s, s:s, s:O}", "messaging_product", "whatsapp", "recipient_type",
                  "individual", "type", type, type, json_object_get(body, type));
    struct wa_whatsapp_send parsed;
    struct wa_whatsapp_send_error serr = {0};
    char ptr[40];

    snprintf(ptr, sizeof(ptr), "/%s", type);
    if (send == NULL) {
        field_error(c, ptr, "could not be checked (out of memory)");
        return;
    }
    json_object_set_new(send, recipient != NULL ? "recipient" : "to",
                        json_string(recipient != NULL ? recipient : to));
    if (json_object_get(body, "context") != NULL) {
        json_object_set(send, "context", json_object_get(body, "context"));
    }
    if (wa_whatsapp_send_parse(send, &parsed, &serr) != WA_OK) {
        field_error(c, ptr, "%s (Cloud API error %lld)", serr.details, (long long)serr.code);
    }
    json_decref(send);
}

void
gw_message_check(const json_t *body, const char *request_id, const char *default_pnid,
                 struct gw_body_check *c, json_t **data, char *wa_id, size_t wa_id_size)
{
    const char *to, *recipient, *type, *pnid, *category, *k;
    const json_t *v, *tb;
    bool type_ok = false, to_ok = false;
    char ptr[80];

    c->n = 0;
    *data = NULL;
    wa_id[0] = '\0';
    if (!json_is_object(body)) {
        field_error(c, "", "the body must be a JSON object");
        return;
    }
    to = wa_json_str(body, "to");
    recipient = wa_json_str(body, "recipient");
    type = wa_json_str(body, "type");
    pnid = wa_json_str(body, "phone_number_id");
    category = wa_json_str(body, "category");

    json_object_foreach((json_t *)body, k, v)
    {
        if (!in_list(k, envelope, LEN(envelope)) && (type == NULL || strcmp(k, type) != 0)) {
            snprintf(ptr, sizeof(ptr), "/%.70s", k);
            field_error(c, ptr, "unknown field");
        }
    }
    if (json_object_get(body, "to") != NULL && to == NULL) {
        field_error(c, "/to", "must be a string");
    } else if (to != NULL) {
        if (wa_whatsapp_wa_id_from_to(to, wa_id, wa_id_size) != WA_OK) {
            field_error(c, "/to", "must be a phone number in E.164 (5 to 15 digits)");
        } else {
            to_ok = true;
        }
    }
    if (json_object_get(body, "recipient") != NULL &&
        (recipient == NULL || recipient[0] == '\0' || strlen(recipient) > 160)) {
        field_error(c, "/recipient", "must be a business-scoped user id (string)");
    } else if (recipient != NULL && to != NULL) {
        field_error(c, "/recipient", "give either to or recipient, not both");
    } else if (recipient != NULL) {
        snprintf(wa_id, wa_id_size, "%s", recipient);
        to_ok = true;
    }
    if (json_object_get(body, "to") == NULL && json_object_get(body, "recipient") == NULL) {
        field_error(c, "/to", "required");
    }
    if (type == NULL) {
        field_error(c, "/type",
                    json_object_get(body, "type") == NULL ? "required" : "must be a string");
    } else if (!in_list(type, send_types, LEN(send_types))) {
        field_error(c, "/type",
                    "must be one of text, template, image, video, audio, document, sticker, "
                    "location, contacts, interactive, reaction");
    } else if ((tb = json_object_get(body, type)) == NULL) {
        snprintf(ptr, sizeof(ptr), "/%s", type);
        field_error(c, ptr, "required for type %s", type);
    } else if (strcmp(type, "contacts") == 0 ? !json_is_array(tb) : !json_is_object(tb)) {
        snprintf(ptr, sizeof(ptr), "/%s", type);
        field_error(c, ptr, "must be an %s", strcmp(type, "contacts") == 0 ? "array" : "object");
    } else {
        type_ok = true;
    }
    if ((v = json_object_get(body, "category")) != NULL && !json_is_null(v) &&
        !in_list(category, categories, LEN(categories))) {
        field_error(c, "/category", "must be marketing, utility, authentication or service");
    }
    if ((v = json_object_get(body, "phone_number_id")) != NULL &&
        (pnid == NULL || !digits(pnid, 32))) {
        field_error(c, "/phone_number_id", "must be a string of digits");
    }
    check_time(body, "not_before", WA_CONTRACT_NOT_BEFORE_MAX_MS, c);
    check_time(body, "expires_at", 0, c);
    if ((v = json_object_get(body, "priority")) != NULL && !json_is_null(v) &&
        (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 9)) {
        field_error(c, "/priority", "must be an integer from 0 to 9");
    }
    if ((v = json_object_get(body, "metadata")) != NULL) {
        char *text = wa_json_dump(v);

        if (text == NULL || strlen(text) > METADATA_MAX) {
            field_error(c, "/metadata", "must be at most %d bytes of JSON", METADATA_MAX);
        }
        free(text);
    }
    if ((v = json_object_get(body, "context")) != NULL &&
        (!json_is_object(v) || wa_json_str(v, "message_id") == NULL)) {
        field_error(c, "/context", "must be an object with a message_id string");
    }
    /* Cloud API bodies carry these two; accepted with their only values, not passed on */
    if ((v = json_object_get(body, "messaging_product")) != NULL &&
        (!json_is_string(v) || strcmp(json_string_value(v), "whatsapp") != 0)) {
        field_error(c, "/messaging_product", "must be whatsapp when given");
    }
    if ((v = json_object_get(body, "recipient_type")) != NULL &&
        (!json_is_string(v) || strcmp(json_string_value(v), "individual") != 0)) {
        field_error(c, "/recipient_type", "must be individual when given");
    }
    if ((v = json_object_get(body, "fallback_template")) != NULL && !json_is_object(v)) {
        field_error(c, "/fallback_template", "must be a template body (object)");
    }
    if (type_ok && to_ok && c->n == 0) {
        check_type_body(body, type, to != NULL ? wa_id : NULL, recipient, c);
    }
    if (c->n > 0) {
        return;
    }

    /* Build the outbound.request data: the checked fields, normalised. */
    {
        static const char *const copy[] = {"category", "not_before", "expires_at",       "priority",
                                           "metadata", "context",    "fallback_template"};
        struct wa_contract_outbound_request decoded;
        struct wa_error err = {0};
        json_t *d = json_pack("{s:s, s:s, s:s, s:O}", "request_id", request_id, "phone_number_id",
                              pnid != NULL ? pnid : default_pnid, "type", type, type,
                              json_object_get(body, type));

        if (d == NULL) {
            field_error(c, "", "could not be encoded (out of memory)");
            return;
        }
        json_object_set_new(d, to != NULL ? "to" : "recipient",
                            json_string(to != NULL ? wa_id : recipient));
        for (size_t i = 0; i < LEN(copy); i++) {
            if ((v = json_object_get(body, copy[i])) != NULL && !json_is_null(v)) {
                json_object_set(d, copy[i], (json_t *)v);
            }
        }
        if (wa_contract_outbound_request_decode(d, &decoded, &err) != WA_OK) {
            field_error(c, "", "not a valid outbound.request: %s", err.message);
            json_decref(d);
            return;
        }
        *data = d;
    }
}

void
gw_body_fingerprint(const json_t *body, char out[2 * WA_SHA256_LEN + 1])
{
    unsigned char d[WA_SHA256_LEN];
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

    wa_sha256(text != NULL ? text : "", text != NULL ? strlen(text) : 0, d);
    free(text);
    wa_hex_encode(d, sizeof(d), out);
}

bool
gw_idempotency_key_valid(const char *key)
{
    size_t n = key != NULL ? strlen(key) : 0;

    if (n == 0 || n > 255) {
        return false;
    }
    for (; *key != '\0'; key++) {
        if (*key < 0x21 || *key > 0x7e) {
            return false;
        }
    }
    return true;
}

void
gw_idempotency_request_id(const char *principal, const char *key, char *out, size_t size)
{
    unsigned char d[WA_SHA256_LEN];
    char hex[2 * WA_SHA256_LEN + 1];
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%s:%s", principal, key);

    wa_sha256(buf, n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1, d);
    wa_hex_encode(d, sizeof(d), hex);
    snprintf(out, size, "idk_%.40s", hex);
}

enum gw_idem_decision
gw_idem_decide(const char *state, const char *stored_fp, const char *fp)
{
    if (state == NULL || strcmp(state, "new") == 0) {
        return GW_IDEM_NEW;
    }
    if (stored_fp == NULL || fp == NULL || strcmp(stored_fp, fp) != 0) {
        return GW_IDEM_MISMATCH;
    }
    return strcmp(state, "done") == 0 ? GW_IDEM_REPLAY : GW_IDEM_IN_PROGRESS;
}

enum wa_err
gw_click_to_chat_url(const char *phone, const char *text, char *out, size_t size)
{
    char digits[WA_WHATSAPP_WA_ID_MAX + 2];
    size_t o;
    int n;

    if (phone == NULL || wa_whatsapp_wa_id_from_to(phone, digits, sizeof(digits)) != WA_OK) {
        return WA_EINVAL;
    }
    if (text != NULL && wa_whatsapp_utf8_len(text) > GW_LINK_TEXT_MAX) {
        return WA_ETOOBIG;
    }
    n = snprintf(out, size, "https://wa.me/%s", digits);
    if (n < 0 || (size_t)n >= size) {
        return WA_ETOOBIG;
    }
    o = (size_t)n;
    if (text == NULL || text[0] == '\0') {
        return WA_OK;
    }
    if (o + 6 >= size) {
        return WA_ETOOBIG;
    }
    memcpy(out + o, "?text=", 6);
    o += 6;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';

        if (o + (plain ? 1 : 3) >= size) {
            return WA_ETOOBIG;
        }
        if (plain) {
            out[o++] = (char)*p;
        } else {
            snprintf(out + o, 4, "%%%02X", *p);
            o += 3;
        }
    }
    out[o] = '\0';
    return WA_OK;
}

void
gw_profile_check(const json_t *body, struct gw_body_check *c)
{
    static const struct {
        const char *key;
        size_t max; /* characters */
    } fields[] = {{"about", 139},
                  {"address", 256},
                  {"description", 512},
                  {"email", 128},
                  {"profile_picture_handle", 1024}};
    static const char *const verticals[] = {
        "UNDEFINED",     "OTHER",   "AUTO",    "BEAUTY",     "APPAREL",  "EDU",    "ENTERTAIN",
        "EVENT_PLAN",    "FINANCE", "GROCERY", "GOVT",       "HOTEL",    "HEALTH", "NONPROFIT",
        "PROF_SERVICES", "RETAIL",  "TRAVEL",  "RESTAURANT", "NOT_A_BIZ"};
    const char *k;
    json_t *v;
    char ptr[80];

    c->n = 0;
    if (!json_is_object(body)) {
        field_error(c, "", "the body must be a JSON object");
        return;
    }
    json_object_foreach((json_t *)body, k, v)
    {
        bool known = false;

        snprintf(ptr, sizeof(ptr), "/%.70s", k);
        for (size_t i = 0; i < LEN(fields) && !known; i++) {
            if (strcmp(k, fields[i].key) == 0) {
                known = true;
                if (!json_is_string(v) ||
                    wa_whatsapp_utf8_len(json_string_value(v)) > fields[i].max) {
                    field_error(c, ptr, "must be a string of at most %zu characters",
                                fields[i].max);
                }
            }
        }
        if (known) {
            continue;
        }
        if (strcmp(k, "vertical") == 0) {
            if (!in_list(json_is_string(v) ? json_string_value(v) : NULL, verticals,
                         LEN(verticals))) {
                field_error(c, ptr,
                            "must be one of Meta's business categories (OTHER, RETAIL, ...)");
            }
        } else if (strcmp(k, "websites") == 0) {
            size_t i;
            json_t *w;
            bool ok = json_is_array(v) && json_array_size(v) <= 2;

            json_array_foreach(v, i, w)
            {
                ok = ok && json_is_string(w) && json_string_length(w) <= 256 &&
                     (strncmp(json_string_value(w), "http://", 7) == 0 ||
                      strncmp(json_string_value(w), "https://", 8) == 0);
            }
            if (!ok) {
                field_error(c, ptr, "must be at most 2 http(s) URLs of at most 256 bytes");
            }
        } else if (strcmp(k, "messaging_product") == 0) {
            if (!json_is_string(v) || strcmp(json_string_value(v), "whatsapp") != 0) {
                field_error(c, ptr, "must be whatsapp when given");
            }
        } else {
            field_error(c, ptr, "unknown field");
        }
    }
}
