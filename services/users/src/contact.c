/*
 * contact.c: what the profile events ask of a contact, pure (no I/O): an inbound message
 * (upsert the contact, its identities and profile name, last_interaction_at, one more unread
 * message) and an accepted outbound result (the business answered: unread back to 0).
 *
 * Threading: any thread; no state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "wa/contract.h"
#include "wa/contract_outbound.h"

static enum wa_err
put(char *dst, size_t size, const char *src, const char *field, struct wa_error *error)
{
    int w = snprintf(dst, size, "%s", src != NULL ? src : "");

    if (w < 0 || (size_t)w >= size) {
        return wa_error_set(error, WA_EPARSE, "%s: too long", field);
    }
    return WA_OK;
}

enum wa_err
us_decide_inbound(const json_t *data, int64_t event_ms, struct us_inbound *out,
                  struct wa_error *error)
{
    struct wa_contract_inbound_message m;
    const char *identity;
    enum wa_err err;

    memset(out, 0, sizeof(*out));
    if ((err = wa_contract_inbound_message_decode(data, &m, error)) != WA_OK) {
        return err;
    }
    identity = m.from != NULL ? m.from : m.contact;
    if (us_contact_id(identity, out->contact_id, sizeof(out->contact_id)) != WA_OK) {
        return wa_error_set(error, WA_EPARSE, "from: not a wa_id or business-scoped user id");
    }
    if (m.from_user_id != NULL && m.from != NULL &&
        us_contact_id(m.from_user_id, out->bsuid, sizeof(out->bsuid)) != WA_OK) {
        out->bsuid[0] = '\0'; /* an unreadable BSUID beside a number: keep the number */
    }
    if ((err = put(out->wamid, sizeof(out->wamid), m.wamid, "wamid", error)) != WA_OK ||
        (err = put(out->profile_name, sizeof(out->profile_name), m.profile_name, "profile.name",
                   error)) != WA_OK ||
        (err = put(out->phone_number_id, sizeof(out->phone_number_id), m.phone_number_id,
                   "phone_number_id", error)) != WA_OK) {
        return err;
    }
    out->at_ms = m.timestamp > 0 ? m.timestamp * 1000 : event_ms;
    return WA_OK;
}

enum wa_err
us_decide_result(const json_t *data, char *contact_id, size_t size, struct wa_error *error)
{
    const char *status = wa_json_str(data, "status"), *to = wa_json_str(data, "to");

    contact_id[0] = '\0';
    if (status == NULL) {
        return wa_error_set(error, WA_EPARSE, "status: missing");
    }
    if (strcmp(status, "accepted") != 0 || to == NULL) {
        return WA_OK; /* a failure, or sent to a BSUID only: nothing answered */
    }
    if (us_contact_id(to, contact_id, size) != WA_OK) {
        contact_id[0] = '\0';
        return wa_error_set(error, WA_EPARSE, "to: not a phone number or wa_id");
    }
    return WA_OK;
}

enum wa_err
us_phone_canonical(const char *in, char *out, size_t size)
{
    char digits[32];
    size_t n = 0;
    const char *s = in;
    bool plus = false;

    if (in == NULL || size < 2) {
        return WA_EINVAL;
    }
    out[0] = '\0';
    while (*s == ' ') {
        s++;
    }
    if (*s == '+') {
        plus = true;
        s++;
    } else if (s[0] == '0' && s[1] == '0') {
        plus = true; /* the international prefix */
        s += 2;
    }
    (void)plus; /* without a prefix the number is taken as already international */
    for (; *s != '\0'; s++) {
        if (*s == ' ' || *s == '-' || *s == '(' || *s == ')' || *s == '.') {
            continue;
        }
        if (*s < '0' || *s > '9' || n + 1 >= sizeof(digits)) {
            return WA_EINVAL;
        }
        digits[n++] = *s;
    }
    digits[n] = '\0';
    /* E.164: at most 15 digits; then the country's own rules (phone.c) */
    if (n == 0 || n > 15 || n + 2 > size || us_phone_check(digits, NULL) != WA_OK) {
        return WA_EINVAL;
    }
    out[0] = '+';
    memcpy(out + 1, digits, n + 1);
    return WA_OK;
}

enum wa_err
us_contact_path_id(const char *param, char *out, size_t size)
{
    if (param != NULL && strchr(param, '.') != NULL && param[0] != '+' &&
        us_contact_id(param, out, size) == WA_OK) {
        return WA_OK; /* a BSUID */
    }
    return us_phone_canonical(param, out, size);
}

static void
field_error(struct us_body_check *c, const char *pointer, const char *detail)
{
    struct us_field_error *e;

    if (c->n >= US_BODY_ERRORS_MAX) {
        return;
    }
    e = &c->errors[c->n++];
    snprintf(e->pointer, sizeof(e->pointer), "%s", pointer);
    snprintf(e->detail, sizeof(e->detail), "%s", detail);
}

static size_t
utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

/* BCP 47, as far as a CRM needs: a language of 2-3 letters, then subtags of 1-8 letters or
 * digits ("ar", "en-US", "zh-Hant-TW", "es-419"). */
static bool
bcp47(const char *s)
{
    size_t seg = 0, nseg = 0;

    if (strlen(s) > 35) {
        return false;
    }
    for (;; s++) {
        char ch = *s;
        bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        bool digit = ch >= '0' && ch <= '9';

        if (ch == '-' || ch == '\0') {
            if (seg == 0 || (nseg == 0 && seg < 2) || (nseg == 0 && seg > 3)) {
                return false;
            }
            nseg++;
            seg = 0;
            if (ch == '\0') {
                return true;
            }
            continue;
        }
        if (!alpha && !(digit && nseg > 0)) {
            return false;
        }
        if (++seg > 8) {
            return false;
        }
    }
}

static const char *const writable[] = {"name", "order_status", "priority",           "language",
                                       "tags", "attributes",   "last_interaction_at"};
#define NWRITABLE (sizeof(writable) / sizeof(writable[0]))

static void
check_value(struct us_body_check *c, const char *key, const json_t *v)
{
    char ptr[80];

    snprintf(ptr, sizeof(ptr), "/%s", key);
    if (strcmp(key, "name") == 0 || strcmp(key, "order_status") == 0) {
        size_t max = key[0] == 'n' ? 256 : 64;

        if (!json_is_string(v) || json_string_length(v) == 0 ||
            utf8_chars(json_string_value(v)) > max) {
            field_error(c, ptr,
                        key[0] == 'n' ? "must be a string of 1 to 256 characters"
                                      : "must be a string code of 1 to 64 characters");
        }
    } else if (strcmp(key, "priority") == 0) {
        const char *p = json_string_value(v);

        if (p == NULL ||
            (strcmp(p, "high") != 0 && strcmp(p, "medium") != 0 && strcmp(p, "low") != 0)) {
            field_error(c, ptr, "must be one of high, medium, low");
        }
    } else if (strcmp(key, "language") == 0) {
        if (!json_is_string(v) || !bcp47(json_string_value(v))) {
            field_error(c, ptr, "must be a BCP 47 language tag such as en, ar or en-US");
        }
    } else if (strcmp(key, "tags") == 0) {
        size_t i, j;
        const json_t *t;

        if (!json_is_array(v) || json_array_size(v) > US_TAGS_MAX) {
            field_error(c, ptr, "must be an array of at most 50 tags");
            return;
        }
        json_array_foreach(v, i, t)
        {
            if (!json_is_string(t) || json_string_length(t) == 0 ||
                utf8_chars(json_string_value(t)) > 64) {
                snprintf(ptr, sizeof(ptr), "/tags/%zu", i);
                field_error(c, ptr, "must be a string of 1 to 64 characters");
                continue;
            }
            for (j = 0; j < i; j++) {
                if (json_equal(t, json_array_get(v, j))) {
                    snprintf(ptr, sizeof(ptr), "/tags/%zu", i);
                    field_error(c, ptr, "repeats an earlier tag (tags are a set)");
                }
            }
        }
    } else if (strcmp(key, "attributes") == 0) {
        char *text;

        if (!json_is_object(v)) {
            field_error(c, ptr, "must be an object");
            return;
        }
        text = json_dumps(v, JSON_COMPACT);
        if (text == NULL || strlen(text) > US_ATTRIBUTES_MAX) {
            field_error(c, ptr, "must be at most 16384 bytes of JSON");
        }
        free(text);
    } else if (strcmp(key, "last_interaction_at") == 0) {
        int64_t ms;

        if (!json_is_string(v) || wa_contract_time_parse(json_string_value(v), &ms) != WA_OK) {
            field_error(c, ptr, "must be an RFC 3339 date-time");
        }
    }
}

void
us_contact_body_check(const json_t *body, bool patch, struct us_body_check *c)
{
    const char *key;
    const json_t *v;

    memset(c, 0, sizeof(*c));
    if (!json_is_object(body)) {
        field_error(c, "", "the body must be a JSON object");
        return;
    }
    json_object_foreach((json_t *)body, key, v)
    {
        char ptr[80];
        bool known = false;

        for (size_t i = 0; i < NWRITABLE; i++) {
            known = known || strcmp(key, writable[i]) == 0;
        }
        snprintf(ptr, sizeof(ptr), "/%.70s", key);
        if (strcmp(key, "unread_count") == 0) {
            field_error(c, ptr, "is changed only by events (inbound messages, replies)");
        } else if (strcmp(key, "phone") == 0 || strcmp(key, "bsuid") == 0 ||
                   strcmp(key, "id") == 0 || strcmp(key, "created_at") == 0 ||
                   strcmp(key, "updated_at") == 0 || strcmp(key, "consent") == 0) {
            field_error(c, ptr,
                        "is read-only (the identity is the path; consent has its own "
                        "endpoint)");
        } else if (!known) {
            field_error(c, ptr, "is not a contact field");
        } else if (!(patch && json_is_null(v))) {
            check_value(c, key, v);
        }
    }
}

enum wa_err
us_contact_update(const json_t *body, bool patch, const char *now, json_t **update)
{
    json_t *set = json_pack("{s:s}", "updated_at", now), *unset = json_object();

    *update = NULL;
    if (set == NULL || unset == NULL) {
        json_decref(set);
        json_decref(unset);
        return WA_ENOMEM;
    }
    for (size_t i = 0; i < NWRITABLE; i++) {
        const json_t *v = json_object_get(body, writable[i]);

        if (v != NULL && !json_is_null(v)) {
            json_object_set(set, writable[i], (json_t *)v);
        } else if (v != NULL || !patch) {
            json_object_set_new(unset, writable[i], json_string(""));
        }
    }
    *update = json_object_size(unset) > 0 ? json_pack("{s:o, s:o}", "$set", set, "$unset", unset)
                                          : json_pack("{s:o}", "$set", set);
    if (json_object_size(unset) == 0) {
        json_decref(unset);
    }
    return *update != NULL ? WA_OK : WA_ENOMEM;
}

json_t *
us_contact_render(const json_t *doc)
{
    json_t *out = json_deep_copy(doc);
    const char *id = wa_json_str(doc, "_id");

    if (out == NULL) {
        return NULL;
    }
    json_object_del(out, "_id");
    json_object_del(out, "unread_wamids");
    json_object_set_new(out, "id", json_string(id != NULL ? id : ""));
    if (json_object_get(out, "unread_count") == NULL) {
        json_object_set_new(out, "unread_count", json_integer(0));
    }
    if (json_object_get(out, "tags") == NULL) {
        json_object_set_new(out, "tags", json_array());
    }
    return out;
}
