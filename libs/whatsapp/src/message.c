/*
 * message.c: validation of Cloud API send bodies (cloud-api.md §1.2-§1.5) with Meta's codes.
 *
 * One walker per message type; each reports the first problem through fail(), which formats
 * Meta-style details ("Param text['body'] must be at most 4096 characters long."). Codes:
 * 100 unknown field / wrong JSON type / over-length of a message's own text (text body,
 * caption, biz_opaque_callback_data), 131008 missing, 131009 bad value, including an
 * over-length value inside an interactive object or a template parameter (Meta: "Parameter
 * value is not valid", e.g. a button title over 20 characters), 131051 unknown message type.
 * Stateless; strings in the result are borrowed from the body.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wa/utf8.h"
#include "wa/whatsapp_message.h"

#define E_PARAM   100
#define E_MISSING 131008
#define E_VALUE   131009
#define E_TYPE    131051

static const char *const type_names[WA_WHATSAPP_MSG__COUNT] = {
    "text",     "image",    "video",       "audio",    "document", "sticker",
    "location", "contacts", "interactive", "template", "reaction", "read",
};

static enum wa_err fail(struct wa_whatsapp_send_error *error, int64_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum wa_err
fail(struct wa_whatsapp_send_error *error, int64_t code, const char *fmt, ...)
{
    va_list ap;

    error->code = code;
    error->subcode = 0;
    va_start(ap, fmt);
    vsnprintf(error->details, sizeof(error->details), fmt, ap);
    va_end(ap);
    return WA_EINVAL;
}

size_t
wa_whatsapp_utf8_len(const char *s)
{
    return wa_utf8_count(s, strlen(s));
}

const char *
wa_whatsapp_msg_type_name(enum wa_whatsapp_msg_type type)
{
    if ((unsigned)type >= WA_WHATSAPP_MSG__COUNT) {
        return "unknown";
    }
    return type_names[type];
}

enum wa_err
wa_whatsapp_msg_type_parse(const char *name, enum wa_whatsapp_msg_type *out)
{
    for (size_t i = 0; i < WA_WHATSAPP_MSG_READ; i++) {
        if (strcmp(name, type_names[i]) == 0) {
            *out = (enum wa_whatsapp_msg_type)i;
            return WA_OK;
        }
    }
    return WA_ENOTFOUND;
}

enum wa_err
wa_whatsapp_wa_id_from_to(const char *to, char *out, size_t outlen)
{
    size_t n = 0;

    for (const char *p = to; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n + 1 >= outlen || n >= 15) {
                return WA_EINVAL;
            }
            out[n++] = *p;
        } else if (*p == '+' && n == 0) {
            continue;
        } else if (*p != '-' && *p != '(' && *p != ')' && *p != ' ') {
            return WA_EINVAL;
        }
    }
    if (outlen > 0) {
        out[n < outlen ? n : outlen - 1] = '\0';
    }
    return n >= 5 ? WA_OK : WA_EINVAL;
}

/* ---- field helpers: path is the Meta-style name of the containing object ---- */

static bool
key_allowed(const char *key, const char *const *allowed)
{
    for (; *allowed != NULL; allowed++) {
        if (strcmp(key, *allowed) == 0) {
            return true;
        }
    }
    return false;
}

static enum wa_err
check_keys(const json_t *obj, const char *path, const char *const *allowed,
           struct wa_whatsapp_send_error *error)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        (void)v;
        if (!key_allowed(key, allowed)) {
            return fail(error, E_PARAM, "Param %s['%s'] is not a valid parameter", path, key);
        }
    }
    return WA_OK;
}

/* A string field: required or not, max characters (0 = no limit), not empty if required. */
static enum wa_err
get_text(const json_t *obj, const char *path, const char *key, bool required, size_t max,
         const char **out, struct wa_whatsapp_send_error *error)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (required) {
            return fail(error, E_MISSING, "The parameter %s['%s'] is required.", path, key);
        }
        return WA_OK;
    }
    if (!json_is_string(v)) {
        return fail(error, E_PARAM, "Param %s['%s'] must be a string.", path, key);
    }
    if (required && json_string_length(v) == 0) {
        return fail(error, E_VALUE, "Param %s['%s'] must not be empty.", path, key);
    }
    if (max > 0 && wa_whatsapp_utf8_len(json_string_value(v)) > max) {
        return fail(error, E_PARAM, "Param %s['%s'] must be at most %zu characters long.", path,
                    key, max);
    }
    *out = json_string_value(v);
    return WA_OK;
}

/* get_text for the values Meta answers with 131009 when too long (interactive objects,
 * template parameters): "<path>['<key>'] length invalid. Max length: <max>". */
static enum wa_err
get_value(const json_t *obj, const char *path, const char *key, bool required, size_t max,
          const char **out, struct wa_whatsapp_send_error *error)
{
    enum wa_err err = get_text(obj, path, key, required, 0, out, error);

    if (err == WA_OK && *out != NULL && wa_whatsapp_utf8_len(*out) > max) {
        *out = NULL;
        return fail(error, E_VALUE, "Param %s['%s'] length invalid. Max length: %zu.", path, key,
                    max);
    }
    return err;
}

/* The member key of type type (JSON_OBJECT or JSON_ARRAY) into *out (NULL when absent). */
static enum wa_err
get_container(const json_t *obj, const char *path, const char *key, json_type type, bool required,
              json_t **out, struct wa_whatsapp_send_error *error)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (required) {
            return fail(error, E_MISSING, "The parameter %s['%s'] is required.", path, key);
        }
        return WA_OK;
    }
    if (json_typeof(v) != type) {
        return fail(error, E_PARAM, "Param %s['%s'] must be %s.", path, key,
                    type == JSON_OBJECT ? "an object" : "an array");
    }
    *out = v;
    return WA_OK;
}

static enum wa_err
get_object(const json_t *obj, const char *path, const char *key, bool required, json_t **out,
           struct wa_whatsapp_send_error *error)
{
    return get_container(obj, path, key, JSON_OBJECT, required, out, error);
}

static enum wa_err
get_array(const json_t *obj, const char *path, const char *key, bool required, json_t **out,
          struct wa_whatsapp_send_error *error)
{
    return get_container(obj, path, key, JSON_ARRAY, required, out, error);
}

static enum wa_err
check_bool(const json_t *obj, const char *path, const char *key,
           struct wa_whatsapp_send_error *error)
{
    json_t *v = json_object_get(obj, key);

    if (v != NULL && !json_is_boolean(v)) {
        return fail(error, E_PARAM, "Param %s['%s'] must be a boolean.", path, key);
    }
    return WA_OK;
}

static bool
is_http_url(const char *s)
{
    return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

/* ---- message types ---- */

static enum wa_err
parse_text(const json_t *obj, struct wa_whatsapp_send_error *error)
{
    static const char *const keys[] = {"body", "preview_url", NULL};
    const char *body;
    enum wa_err err;

    if ((err = check_keys(obj, "text", keys, error)) != WA_OK ||
        (err = get_text(obj, "text", "body", true, WA_WHATSAPP_TEXT_BODY_MAX, &body, error)) !=
            WA_OK) {
        return err;
    }
    return check_bool(obj, "text", "preview_url", error);
}

/* A media object (message body or interactive/template header): exactly one of id / link. */
static enum wa_err
parse_media_ref(const json_t *obj, const char *path, const char **id, const char **link,
                struct wa_whatsapp_send_error *error)
{
    enum wa_err err;

    if ((err = get_text(obj, path, "id", false, 0, id, error)) != WA_OK ||
        (err = get_text(obj, path, "link", false, 2048, link, error)) != WA_OK) {
        return err;
    }
    if (*id == NULL && *link == NULL) {
        return fail(error, E_MISSING, "Param %s must have either 'id' or 'link'.", path);
    }
    if (*id != NULL && *link != NULL) {
        return fail(error, E_VALUE, "Param %s must have either 'id' or 'link', not both.", path);
    }
    if (*id != NULL && **id == '\0') {
        return fail(error, E_VALUE, "Param %s['id'] must not be empty.", path);
    }
    if (*link != NULL && !is_http_url(*link)) {
        return fail(error, E_VALUE, "Param %s['link'] must be an http or https URL.", path);
    }
    return WA_OK;
}

static enum wa_err
parse_media(const json_t *obj, struct wa_whatsapp_send *out, struct wa_whatsapp_send_error *error)
{
    static const char *const with_caption[] = {"id", "link", "caption", NULL};
    static const char *const document[] = {"id", "link", "caption", "filename", NULL};
    static const char *const audio[] = {"id", "link", "voice", NULL};
    static const char *const bare[] = {"id", "link", NULL};
    const char *const *keys = bare;
    const char *path = out->type_name, *caption, *filename;
    enum wa_err err;

    switch (out->type) {
    case WA_WHATSAPP_MSG_IMAGE:
    case WA_WHATSAPP_MSG_VIDEO:
        keys = with_caption;
        break;
    case WA_WHATSAPP_MSG_DOCUMENT:
        keys = document;
        break;
    case WA_WHATSAPP_MSG_AUDIO:
        keys = audio;
        break;
    default:
        break;
    }
    if ((err = check_keys(obj, path, keys, error)) != WA_OK ||
        (err = parse_media_ref(obj, path, &out->media_id, &out->media_link, error)) != WA_OK ||
        (err = get_text(obj, path, "caption", false, WA_WHATSAPP_CAPTION_MAX, &caption, error)) !=
            WA_OK ||
        (err = get_text(obj, path, "filename", false, 240, &filename, error)) != WA_OK) {
        return err;
    }
    return check_bool(obj, path, "voice", error);
}

/* A coordinate as a number or a numeric string, within [-limit, limit]. */
static enum wa_err
check_coordinate(const json_t *obj, const char *path, const char *key, double limit,
                 struct wa_whatsapp_send_error *error)
{
    json_t *v = json_object_get(obj, key);
    double d;

    if (v == NULL || json_is_null(v)) {
        return fail(error, E_MISSING, "The parameter %s['%s'] is required.", path, key);
    }
    if (json_is_number(v)) {
        d = json_number_value(v);
    } else if (json_is_string(v)) {
        char *end = NULL;

        d = strtod(json_string_value(v), &end);
        if (end == json_string_value(v) || *end != '\0') {
            return fail(error, E_VALUE, "Param %s['%s'] must be a number.", path, key);
        }
    } else {
        return fail(error, E_PARAM, "Param %s['%s'] must be a number.", path, key);
    }
    if (!(d >= -limit && d <= limit)) {
        return fail(error, E_VALUE, "Param %s['%s'] must be between %g and %g.", path, key, -limit,
                    limit);
    }
    return WA_OK;
}

static enum wa_err
parse_location(const json_t *obj, struct wa_whatsapp_send_error *error)
{
    static const char *const keys[] = {"latitude", "longitude", "name", "address", NULL};
    const char *s;
    enum wa_err err;

    if ((err = check_keys(obj, "location", keys, error)) != WA_OK ||
        (err = check_coordinate(obj, "location", "latitude", 90.0, error)) != WA_OK ||
        (err = check_coordinate(obj, "location", "longitude", 180.0, error)) != WA_OK ||
        (err = get_text(obj, "location", "name", false, 1000, &s, error)) != WA_OK) {
        return err;
    }
    return get_text(obj, "location", "address", false, 1000, &s, error);
}

static enum wa_err
parse_contacts(const json_t *arr, struct wa_whatsapp_send_error *error)
{
    static const char *const name_keys[] = {
        "formatted_name", "first_name", "last_name", "middle_name", "suffix", "prefix", NULL};
    size_t i;
    json_t *c;

    if (json_array_size(arr) == 0) {
        return fail(error, E_MISSING, "The parameter contacts must have at least one contact.");
    }
    json_array_foreach(arr, i, c)
    {
        char path[128];
        json_t *name, *list;
        const char *s;
        bool other = false;
        enum wa_err err;

        snprintf(path, sizeof(path), "contacts[%zu]", i);
        if (!json_is_object(c)) {
            return fail(error, E_PARAM, "Param %s must be an object.", path);
        }
        if ((err = get_object(c, path, "name", true, &name, error)) != WA_OK) {
            return err;
        }
        snprintf(path, sizeof(path), "contacts[%zu]['name']", i);
        if ((err = check_keys(name, path, name_keys, error)) != WA_OK ||
            (err = get_text(name, path, "formatted_name", true, 0, &s, error)) != WA_OK) {
            return err;
        }
        for (size_t k = 1; name_keys[k] != NULL; k++) {
            if ((err = get_text(name, path, name_keys[k], false, 0, &s, error)) != WA_OK) {
                return err;
            }
            other = other || (s != NULL && *s != '\0');
        }
        if (!other) {
            return fail(error, E_MISSING,
                        "Param %s requires at least one of first_name, last_name, middle_name, "
                        "suffix or prefix.",
                        path);
        }
        snprintf(path, sizeof(path), "contacts[%zu]", i);
        if ((err = get_array(c, path, "phones", false, &list, error)) != WA_OK ||
            (err = get_array(c, path, "emails", false, &list, error)) != WA_OK ||
            (err = get_array(c, path, "urls", false, &list, error)) != WA_OK ||
            (err = get_array(c, path, "addresses", false, &list, error)) != WA_OK ||
            (err = get_text(c, path, "birthday", false, 10, &s, error)) != WA_OK) {
            return err;
        }
    }
    return WA_OK;
}

static enum wa_err
parse_interactive_header(const json_t *ia, bool text_only, struct wa_whatsapp_send_error *error)
{
    static const char *const bare[] = {"id", "link", NULL};
    static const char *const doc[] = {"id", "link", "filename", NULL};
    const char *type, *s, *id, *link;
    json_t *header, *media;
    enum wa_err err;

    if ((err = get_object(ia, "interactive", "header", false, &header, error)) != WA_OK ||
        header == NULL) {
        return err;
    }
    if ((err = get_text(header, "interactive['header']", "type", true, 0, &type, error)) != WA_OK) {
        return err;
    }
    if (strcmp(type, "text") == 0) {
        return get_value(header, "interactive['header']", "text", true, WA_WHATSAPP_HEADER_TEXT_MAX,
                         &s, error);
    }
    if (text_only || (strcmp(type, "image") != 0 && strcmp(type, "video") != 0 &&
                      strcmp(type, "document") != 0)) {
        return fail(error, E_VALUE, "Param interactive['header']['type'] '%s' is not supported.",
                    type);
    }
    if ((err = get_object(header, "interactive['header']", type, true, &media, error)) != WA_OK ||
        (err = check_keys(media, "interactive['header']",
                          strcmp(type, "document") == 0 ? doc : bare, error)) != WA_OK) {
        return err; /* media headers have no caption */
    }
    return parse_media_ref(media, "interactive['header']", &id, &link, error);
}

static enum wa_err
parse_reply_buttons(const json_t *action, struct wa_whatsapp_send_error *error)
{
    const char *ids[WA_WHATSAPP_BUTTONS_MAX], *titles[WA_WHATSAPP_BUTTONS_MAX];
    json_t *buttons, *b;
    size_t i, n;
    enum wa_err err;

    if ((err = get_array(action, "interactive['action']", "buttons", true, &buttons, error)) !=
        WA_OK) {
        return err;
    }
    n = json_array_size(buttons);
    if (n < 1 || n > WA_WHATSAPP_BUTTONS_MAX) {
        return fail(error, E_VALUE,
                    "Param interactive['action']['buttons'] must have between 1 and %d elements; "
                    "got %zu.",
                    WA_WHATSAPP_BUTTONS_MAX, n);
    }
    json_array_foreach(buttons, i, b)
    {
        char path[128];
        const char *type;
        json_t *reply;

        snprintf(path, sizeof(path), "interactive['action']['buttons'][%zu]", i);
        if (!json_is_object(b)) {
            return fail(error, E_PARAM, "Param %s must be an object.", path);
        }
        if ((err = get_text(b, path, "type", true, 0, &type, error)) != WA_OK) {
            return err;
        }
        if (strcmp(type, "reply") != 0) {
            return fail(error, E_VALUE, "Param %s['type'] must be 'reply'.", path);
        }
        if ((err = get_object(b, path, "reply", true, &reply, error)) != WA_OK) {
            return err;
        }
        snprintf(path, sizeof(path), "interactive['action']['buttons'][%zu]['reply']", i);
        if ((err = get_value(reply, path, "id", true, WA_WHATSAPP_BUTTON_ID_MAX, &ids[i], error)) !=
                WA_OK ||
            (err = get_value(reply, path, "title", true, WA_WHATSAPP_BUTTON_TITLE_MAX, &titles[i],
                             error)) != WA_OK) {
            return err;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(ids[k], ids[i]) == 0 || strcmp(titles[k], titles[i]) == 0) {
                return fail(error, E_VALUE, "Buttons must have unique ids and titles (%s).", path);
            }
        }
    }
    return WA_OK;
}

static enum wa_err
parse_list(const json_t *action, struct wa_whatsapp_send_error *error)
{
    json_t *sections, *sec, *rows, *row;
    const char *s;
    size_t i, j, nsec, total = 0;
    enum wa_err err;

    if ((err = get_value(action, "interactive['action']", "button", true,
                         WA_WHATSAPP_LIST_BUTTON_MAX, &s, error)) != WA_OK ||
        (err = get_array(action, "interactive['action']", "sections", true, &sections, error)) !=
            WA_OK) {
        return err;
    }
    nsec = json_array_size(sections);
    if (nsec < 1 || nsec > WA_WHATSAPP_LIST_SECTIONS_MAX) {
        return fail(error, E_VALUE,
                    "Param interactive['action']['sections'] must have between 1 and %d "
                    "elements; got %zu.",
                    WA_WHATSAPP_LIST_SECTIONS_MAX, nsec);
    }
    json_array_foreach(sections, i, sec)
    {
        char path[128];

        snprintf(path, sizeof(path), "interactive['action']['sections'][%zu]", i);
        if (!json_is_object(sec)) {
            return fail(error, E_PARAM, "Param %s must be an object.", path);
        }
        /* Required in every section, even a lone one (Meta's current list reference). */
        if ((err = get_value(sec, path, "title", true, WA_WHATSAPP_LIST_SECTION_TITLE_MAX, &s,
                             error)) != WA_OK ||
            (err = get_array(sec, path, "rows", true, &rows, error)) != WA_OK) {
            return err;
        }
        if (json_array_size(rows) == 0) {
            return fail(error, E_VALUE, "Param %s['rows'] must have at least one row.", path);
        }
        json_array_foreach(rows, j, row)
        {
            snprintf(path, sizeof(path), "interactive['action']['sections'][%zu]['rows'][%zu]", i,
                     j);
            if (!json_is_object(row)) {
                return fail(error, E_PARAM, "Param %s must be an object.", path);
            }
            if ((err = get_value(row, path, "id", true, WA_WHATSAPP_LIST_ROW_ID_MAX, &s, error)) !=
                    WA_OK ||
                (err = get_value(row, path, "title", true, WA_WHATSAPP_LIST_ROW_TITLE_MAX, &s,
                                 error)) != WA_OK ||
                (err = get_value(row, path, "description", false, WA_WHATSAPP_LIST_ROW_DESC_MAX, &s,
                                 error)) != WA_OK) {
                return err;
            }
            total++;
        }
    }
    if (total > WA_WHATSAPP_LIST_ROWS_MAX) {
        return fail(error, E_VALUE, "Total row count exceeded max allowed count: %d (got %zu).",
                    WA_WHATSAPP_LIST_ROWS_MAX, total);
    }
    return WA_OK;
}

static enum wa_err
parse_cta_url(const json_t *action, struct wa_whatsapp_send_error *error)
{
    const char *name, *s, *url;
    json_t *params;
    enum wa_err err;

    if ((err = get_text(action, "interactive['action']", "name", true, 0, &name, error)) != WA_OK) {
        return err;
    }
    if (strcmp(name, "cta_url") != 0) {
        return fail(error, E_VALUE, "Param interactive['action']['name'] must be 'cta_url'.");
    }
    if ((err = get_object(action, "interactive['action']", "parameters", true, &params, error)) !=
            WA_OK ||
        (err = get_value(params, "interactive['action']['parameters']", "display_text", true,
                         WA_WHATSAPP_CTA_DISPLAY_TEXT_MAX, &s, error)) != WA_OK ||
        (err = get_text(params, "interactive['action']['parameters']", "url", true, 2048, &url,
                        error)) != WA_OK) {
        return err;
    }
    if (!is_http_url(url)) {
        return fail(error, E_VALUE,
                    "Param interactive['action']['parameters']['url'] must be an http or https "
                    "URL.");
    }
    return WA_OK;
}

static enum wa_err
parse_interactive(const json_t *ia, struct wa_whatsapp_send *out,
                  struct wa_whatsapp_send_error *error)
{
    static const char *const keys[] = {"type", "header", "body", "footer", "action", NULL};
    static const char *const others[] = {"flow",
                                         "product",
                                         "product_list",
                                         "catalog_message",
                                         "location_request_message",
                                         "call_permission_request",
                                         "address_message",
                                         "voice_call",
                                         NULL};
    const char *type, *s;
    json_t *body, *footer, *action;
    size_t body_max = WA_WHATSAPP_BODY_TEXT_MAX;
    bool list, buttons, cta;
    enum wa_err err;

    if ((err = check_keys(ia, "interactive", keys, error)) != WA_OK ||
        (err = get_text(ia, "interactive", "type", true, 0, &type, error)) != WA_OK) {
        return err;
    }
    out->interactive_type = type;
    list = strcmp(type, "list") == 0;
    buttons = strcmp(type, "button") == 0;
    cta = strcmp(type, "cta_url") == 0;
    if (!list && !buttons && !cta && !key_allowed(type, others)) {
        return fail(error, E_VALUE, "Param interactive['type'] '%s' is not a valid type.", type);
    }
    if (list) {
        body_max = WA_WHATSAPP_LIST_BODY_TEXT_MAX;
    }
    if ((err = parse_interactive_header(ia, list, error)) != WA_OK ||
        (err = get_object(ia, "interactive", "body", list || buttons || cta, &body, error)) !=
            WA_OK) {
        return err;
    }
    if (body != NULL && (err = get_value(body, "interactive['body']", "text", true, body_max, &s,
                                         error)) != WA_OK) {
        return err;
    }
    if ((err = get_object(ia, "interactive", "footer", false, &footer, error)) != WA_OK) {
        return err;
    }
    if (footer != NULL && (err = get_value(footer, "interactive['footer']", "text", true,
                                           WA_WHATSAPP_FOOTER_TEXT_MAX, &s, error)) != WA_OK) {
        return err;
    }
    if ((err = get_object(ia, "interactive", "action",
                          strcmp(type, "location_request_message") != 0, &action, error)) !=
        WA_OK) {
        return err;
    }
    if (buttons) {
        return parse_reply_buttons(action, error);
    }
    if (list) {
        return parse_list(action, error);
    }
    if (cta) {
        return parse_cta_url(action, error);
    }
    return WA_OK;
}

/* A keycap emoji: one of 0-9 # *, an optional U+FE0F, then U+20E3 (and nothing else). */
static bool
keycap(const char *s)
{
    if (!((*s >= '0' && *s <= '9') || *s == '#' || *s == '*')) {
        return false;
    }
    s++;
    if (strncmp(s, "\xef\xb8\x8f", 3) == 0) { /* U+FE0F */
        s += 3;
    }
    return strcmp(s, "\xe2\x83\xa3") == 0; /* U+20E3 */
}

static enum wa_err
parse_reaction(const json_t *obj, struct wa_whatsapp_send *out,
               struct wa_whatsapp_send_error *error)
{
    static const char *const keys[] = {"message_id", "emoji", NULL};
    const char *emoji;
    enum wa_err err;

    if ((err = check_keys(obj, "reaction", keys, error)) != WA_OK ||
        (err = get_text(obj, "reaction", "message_id", true, 0, &out->reaction_message_id,
                        error)) != WA_OK) {
        return err;
    }
    /* A string, possibly empty (an empty emoji removes the reaction); null is not one. */
    if (json_object_get(obj, "emoji") == NULL || json_is_null(json_object_get(obj, "emoji"))) {
        return fail(error, E_MISSING, "The parameter reaction['emoji'] is required.");
    }
    if ((err = get_text(obj, "reaction", "emoji", false, 0, &emoji, error)) != WA_OK) {
        return err;
    }
    /* One emoji: no ASCII letters, no digits but a keycap's ("1\uFE0F\u20E3", "#\u20E3"),
     * and a bounded sequence (ZWJ families, modifiers). */
    if (emoji != NULL && *emoji != '\0' && keycap(emoji)) {
        return WA_OK;
    }
    for (const char *p = emoji; p != NULL && *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == ' ') {
            return fail(error, E_VALUE, "Param reaction['emoji'] must be a single emoji.");
        }
    }
    if (emoji != NULL && wa_whatsapp_utf8_len(emoji) > 10) {
        return fail(error, E_VALUE, "Param reaction['emoji'] must be a single emoji.");
    }
    return WA_OK;
}

static bool
template_name_ok(const char *name)
{
    for (const char *p = name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            return false;
        }
    }
    return *name != '\0';
}

/*
 * One parameter of a template component. text_max bounds a text parameter (60 in a header,
 * 1024 in a body next to other components, else 32768; 131009 past it).
 */
static enum wa_err
parse_template_param(const json_t *p, const char *path, size_t text_max,
                     struct wa_whatsapp_send_error *error)
{
    static const char *const types[] = {"text",
                                        "currency",
                                        "date_time",
                                        "image",
                                        "video",
                                        "document",
                                        "location",
                                        "payload",
                                        "coupon_code",
                                        "action",
                                        "product",
                                        "order_status",
                                        "limited_time_offer",
                                        NULL};
    const char *type, *s;
    json_t *obj;
    enum wa_err err;

    if (!json_is_object(p)) {
        return fail(error, E_PARAM, "Param %s must be an object.", path);
    }
    if ((err = get_text(p, path, "type", true, 0, &type, error)) != WA_OK) {
        return err;
    }
    if (!key_allowed(type, types)) {
        return fail(error, E_PARAM, "Param %s['type'] '%s' is not a valid parameter type.", path,
                    type);
    }
    if (strcmp(type, "text") == 0) {
        return get_value(p, path, type, true, text_max, &s, error);
    }
    if (strcmp(type, "payload") == 0 || strcmp(type, "coupon_code") == 0) {
        return get_text(p, path, type, true, 32768, &s, error);
    }
    if (strcmp(type, "location") == 0) { /* a header location: all four fields */
        char lpath[224];

        if ((err = get_object(p, path, type, true, &obj, error)) != WA_OK) {
            return err;
        }
        snprintf(lpath, sizeof(lpath), "%s['location']", path);
        if ((err = check_coordinate(obj, lpath, "latitude", 90.0, error)) != WA_OK ||
            (err = check_coordinate(obj, lpath, "longitude", 180.0, error)) != WA_OK ||
            (err = get_text(obj, lpath, "name", true, 1000, &s, error)) != WA_OK) {
            return err;
        }
        return get_text(obj, lpath, "address", true, 1000, &s, error);
    }
    if (strcmp(type, "limited_time_offer") == 0) { /* {"expiration_time_ms": <ms>} */
        json_t *exp;

        if ((err = get_object(p, path, type, true, &obj, error)) != WA_OK) {
            return err;
        }
        exp = json_object_get(obj, "expiration_time_ms");
        if (exp != NULL && !json_is_integer(exp)) {
            return fail(error, E_PARAM,
                        "Param %s['limited_time_offer']['expiration_time_ms'] must be an "
                        "integer.",
                        path);
        }
        return WA_OK;
    }
    if (strcmp(type, "image") == 0 || strcmp(type, "video") == 0 || strcmp(type, "document") == 0) {
        const char *id, *link;

        if ((err = get_object(p, path, type, true, &obj, error)) != WA_OK) {
            return err;
        }
        return parse_media_ref(obj, path, &id, &link, error);
    }
    if (strcmp(type, "currency") == 0 || strcmp(type, "date_time") == 0) {
        if ((err = get_object(p, path, type, true, &obj, error)) != WA_OK) {
            return err;
        }
        return get_text(obj, path, "fallback_value", true, 0, &s, error);
    }
    return WA_OK;
}

static enum wa_err
parse_template(const json_t *tpl, struct wa_whatsapp_send *out,
               struct wa_whatsapp_send_error *error)
{
    static const char *const keys[] = {"name", "language", "components", "namespace", NULL};
    json_t *lang, *components, *c;
    const char *policy;
    size_t i, body_max = WA_WHATSAPP_TPL_BODY_ONLY_PARAM_MAX;
    enum wa_err err;

    if ((err = check_keys(tpl, "template", keys, error)) != WA_OK ||
        (err = get_text(tpl, "template", "name", true, WA_WHATSAPP_TEMPLATE_NAME_MAX,
                        &out->tpl.name, error)) != WA_OK ||
        (err = get_object(tpl, "template", "language", true, &lang, error)) != WA_OK ||
        (err = get_text(lang, "template['language']", "code", true, 16, &out->tpl.language,
                        error)) != WA_OK ||
        (err = get_text(lang, "template['language']", "policy", false, 0, &policy, error)) !=
            WA_OK) {
        return err;
    }
    if (!template_name_ok(out->tpl.name)) {
        return fail(error, E_VALUE,
                    "Param template['name'] may contain only lowercase letters, digits and "
                    "underscores.");
    }
    if (policy != NULL && strcmp(policy, "deterministic") != 0) {
        return fail(error, E_PARAM,
                    "Param template['language']['policy'] must be 'deterministic'.");
    }
    if ((err = get_array(tpl, "template", "components", false, &components, error)) != WA_OK ||
        components == NULL) {
        return err;
    }
    json_array_foreach(components, i, c) /* a body next to other components: 1024 per text */
    {
        const char *type = wa_json_str(c, "type");

        if (type != NULL && strcasecmp(type, "body") != 0) {
            body_max = WA_WHATSAPP_TPL_BODY_PARAM_MAX;
        }
    }
    json_array_foreach(components, i, c)
    {
        char path[128];
        const char *type, *sub;
        json_t *params, *p, *index;
        size_t j;

        snprintf(path, sizeof(path), "template['components'][%zu]", i);
        if (!json_is_object(c)) {
            return fail(error, E_PARAM, "Param %s must be an object.", path);
        }
        if ((err = get_text(c, path, "type", true, 0, &type, error)) != WA_OK ||
            (err = get_array(c, path, "parameters", false, &params, error)) != WA_OK) {
            return err;
        }
        if (strcasecmp(type, "button") == 0) {
            if ((err = get_text(c, path, "sub_type", true, 0, &sub, error)) != WA_OK) {
                return err;
            }
            index = json_object_get(c, "index");
            if (index == NULL) {
                return fail(error, E_MISSING, "The parameter %s['index'] is required.", path);
            }
            if (!json_is_integer(index) && !json_is_string(index)) {
                return fail(error, E_PARAM, "Param %s['index'] must be an integer.", path);
            }
            out->tpl.button_params += json_array_size(params);
        } else if (strcasecmp(type, "header") == 0) {
            out->tpl.header_params += json_array_size(params);
        } else if (strcasecmp(type, "body") == 0) {
            out->tpl.body_params += json_array_size(params);
        } else if (strcasecmp(type, "footer") != 0 && strcasecmp(type, "carousel") != 0 &&
                   strcasecmp(type, "limited_time_offer") != 0) {
            return fail(error, E_PARAM, "Param %s['type'] '%s' is not a valid component type.",
                        path, type);
        }
        json_array_foreach(params, j, p)
        {
            char ppath[192];

            snprintf(ppath, sizeof(ppath), "%s['parameters'][%zu]", path, j);
            if ((err =
                     parse_template_param(p, ppath,
                                          strcasecmp(type, "header") == 0
                                              ? WA_WHATSAPP_TPL_HEADER_PARAM_MAX
                                              : (strcasecmp(type, "body") == 0 ? body_max : 32768),
                                          error)) != WA_OK) {
                return err;
            }
            if (strcasecmp(type, "body") == 0 && json_object_get(p, "parameter_name") != NULL) {
                out->tpl.named_params++;
            }
        }
    }
    return WA_OK;
}

/* {"messaging_product":"whatsapp","status":"read","message_id":...,"typing_indicator":...} */
static enum wa_err
parse_read(const json_t *body, struct wa_whatsapp_send *out, struct wa_whatsapp_send_error *error)
{
    static const char *const keys[] = {"messaging_product", "status",         "message_id",
                                       "typing_indicator",  "recipient_type", NULL};
    const char *status, *ti_type;
    json_t *ti;
    enum wa_err err;

    out->type = WA_WHATSAPP_MSG_READ;
    out->type_name = "read";
    if ((err = check_keys(body, "message", keys, error)) != WA_OK ||
        (err = get_text(body, "message", "status", true, 0, &status, error)) != WA_OK) {
        return err;
    }
    if (strcmp(status, "read") != 0) {
        return fail(error, E_PARAM, "Param status must be one of {READ} - got \"%s\".", status);
    }
    if ((err = get_text(body, "message", "message_id", true, 0, &out->read_message_id, error)) !=
            WA_OK ||
        (err = get_object(body, "message", "typing_indicator", false, &ti, error)) != WA_OK) {
        return err;
    }
    if (ti != NULL) {
        if ((err = get_text(ti, "typing_indicator", "type", true, 0, &ti_type, error)) != WA_OK) {
            return err;
        }
        if (strcmp(ti_type, "text") != 0) {
            return fail(error, E_PARAM, "Param typing_indicator['type'] must be 'text'.");
        }
        out->typing_indicator = true;
    }
    return WA_OK;
}

enum wa_err
wa_whatsapp_send_parse(const json_t *body, struct wa_whatsapp_send *out,
                       struct wa_whatsapp_send_error *error)
{
    static const char *const keys[] = {"messaging_product",
                                       "recipient_type",
                                       "to",
                                       "recipient",
                                       "context",
                                       "biz_opaque_callback_data",
                                       "type",
                                       "text",
                                       "image",
                                       "video",
                                       "audio",
                                       "document",
                                       "sticker",
                                       "location",
                                       "contacts",
                                       "interactive",
                                       "template",
                                       "reaction",
                                       NULL};
    const char *product, *rtype, *type;
    json_t *ctx, *obj;
    enum wa_err err;

    memset(out, 0, sizeof(*out));
    memset(error, 0, sizeof(*error));
    if (!json_is_object(body)) {
        return fail(error, E_PARAM, "The request body must be a JSON object.");
    }
    if ((err = get_text(body, "message", "messaging_product", false, 0, &product, error)) !=
        WA_OK) {
        return err;
    }
    if (product == NULL) {
        return fail(error, E_MISSING, "The parameter messaging_product is required.");
    }
    if (strcmp(product, "whatsapp") != 0) {
        return fail(error, E_PARAM,
                    "Param messaging_product must be one of {WHATSAPP} - got \"%s\".", product);
    }
    if (json_object_get(body, "status") != NULL) {
        return parse_read(body, out, error);
    }
    type = wa_json_str(body, "type");
    if (type != NULL && wa_whatsapp_msg_type_parse(type, &out->type) != WA_OK) {
        return fail(error, E_TYPE, "Message type '%.64s' is not currently supported.", type);
    }
    if ((err = check_keys(body, "message", keys, error)) != WA_OK) {
        /* Meta names top-level fields without the container: "Param foo is not valid". */
        return err;
    }
    if ((err = get_text(body, "message", "recipient_type", false, 0, &rtype, error)) != WA_OK) {
        return err;
    }
    out->group = rtype != NULL && strcmp(rtype, "group") == 0;
    if (rtype != NULL && strcmp(rtype, "individual") != 0 && !out->group) {
        return fail(error, E_PARAM,
                    "Param recipient_type must be one of {INDIVIDUAL, GROUP} - got \"%s\".", rtype);
    }
    if ((err = get_text(body, "message", "to", false, 64, &out->to, error)) != WA_OK ||
        (err = get_text(body, "message", "recipient", false, 160, &out->recipient, error)) !=
            WA_OK) {
        return err;
    }
    if (out->to == NULL && out->recipient == NULL) {
        return fail(error, E_MISSING, "The parameter to is required.");
    }
    if (out->to != NULL && (rtype == NULL || strcmp(rtype, "group") != 0) &&
        wa_whatsapp_wa_id_from_to(out->to, out->wa_id, sizeof(out->wa_id)) != WA_OK) {
        return fail(error, E_VALUE, "Param to '%.64s' is not a valid phone number.", out->to);
    }
    if ((err = get_text(body, "message", "biz_opaque_callback_data", false, 0,
                        &out->biz_opaque_callback_data, error)) != WA_OK ||
        (err = get_object(body, "message", "context", false, &ctx, error)) != WA_OK) {
        return err;
    }
    if (out->biz_opaque_callback_data != NULL &&
        strlen(out->biz_opaque_callback_data) > WA_WHATSAPP_BIZ_OPAQUE_MAX) { /* bytes */
        return fail(error, E_PARAM, "Param biz_opaque_callback_data must be at most %d bytes long.",
                    WA_WHATSAPP_BIZ_OPAQUE_MAX);
    }
    if (ctx != NULL && (err = get_text(ctx, "context", "message_id", true, 0,
                                       &out->context_message_id, error)) != WA_OK) {
        return err;
    }
    if ((err = get_text(body, "message", "type", false, 0, &type, error)) != WA_OK) {
        return err;
    }
    if (type == NULL) {
        return fail(error, E_MISSING, "The parameter type is required.");
    }
    if (wa_whatsapp_msg_type_parse(type, &out->type) != WA_OK) {
        return fail(error, E_TYPE, "Message type '%.64s' is not currently supported.", type);
    }
    out->type_name = type_names[out->type];
    if (out->type == WA_WHATSAPP_MSG_CONTACTS) {
        if ((err = get_array(body, "message", "contacts", false, &obj, error)) != WA_OK) {
            return err;
        }
    } else if ((err = get_object(body, "message", type, false, &obj, error)) != WA_OK) {
        return err;
    }
    if (obj == NULL) {
        return fail(error, E_MISSING, "The parameter %s is required.", type);
    }
    switch (out->type) {
    case WA_WHATSAPP_MSG_TEXT:
        return parse_text(obj, error);
    case WA_WHATSAPP_MSG_IMAGE:
    case WA_WHATSAPP_MSG_VIDEO:
    case WA_WHATSAPP_MSG_AUDIO:
    case WA_WHATSAPP_MSG_DOCUMENT:
    case WA_WHATSAPP_MSG_STICKER:
        return parse_media(obj, out, error);
    case WA_WHATSAPP_MSG_LOCATION:
        return parse_location(obj, error);
    case WA_WHATSAPP_MSG_CONTACTS:
        return parse_contacts(obj, error);
    case WA_WHATSAPP_MSG_INTERACTIVE:
        return parse_interactive(obj, out, error);
    case WA_WHATSAPP_MSG_TEMPLATE:
        return parse_template(obj, out, error);
    case WA_WHATSAPP_MSG_REACTION:
        if (ctx != NULL) {
            return fail(error, E_VALUE, "Param context is not allowed with a reaction.");
        }
        return parse_reaction(obj, out, error);
    case WA_WHATSAPP_MSG_READ:
    case WA_WHATSAPP_MSG__COUNT:
        break;
    }
    return fail(error, E_TYPE, "Message type '%.64s' is not currently supported.", type);
}
