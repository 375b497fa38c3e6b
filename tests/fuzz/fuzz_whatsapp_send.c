/*
 * fuzz_whatsapp_send.c: libFuzzer driver for wa_whatsapp_send_parse() (libs/whatsapp), which
 * validates untrusted POST /messages bodies in wa-cloudsim and send requests in wa-notify; also
 * wa_whatsapp_wa_id_from_to() and wa_whatsapp_utf8_len() on the raw input. The body is parsed
 * with wa_json_parse() as both callers do. Invariants checked beyond "no crash, no sanitizer
 * report": an error carries one of Meta's four codes and non-empty details; an accepted body
 * has a known type, a recipient, a wa_id of 5..15 digits, exactly one media reference for media
 * types, and no field over its section 1.5 limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/json.h"
#include "wa/whatsapp_message.h"

#define FUZZ_WA_ID_OUT 8 /* small output buffer, so the length bound is reached */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts when the string at path is longer than max code points. */
static void
check_limit(const json_t *body, const char *path, size_t max)
{
    const char *s = wa_json_path_str(body, path);

    if (s != NULL && wa_whatsapp_utf8_len(s) > max) {
        abort();
    }
}

/* Aborts when the array at path has more than max items. */
static void
check_items(const json_t *body, const char *path, size_t max)
{
    const json_t *a = wa_json_path(body, path);

    if (json_is_array(a) && json_array_size(a) > max) {
        abort();
    }
}

static void
check_interactive(const json_t *body, const char *type)
{
    const json_t *buttons = wa_json_path(body, "interactive.action.buttons");
    const json_t *sections = wa_json_path(body, "interactive.action.sections");
    const char *header = wa_json_path_str(body, "interactive.header.type");
    size_t i, rows = 0;
    json_t *it;

    if (header != NULL && strcmp(header, "text") == 0) {
        check_limit(body, "interactive.header.text", WA_WHATSAPP_HEADER_TEXT_MAX);
    }
    check_limit(body, "interactive.body.text", WA_WHATSAPP_LIST_BODY_TEXT_MAX);
    check_limit(body, "interactive.footer.text", WA_WHATSAPP_FOOTER_TEXT_MAX);
    if (strcmp(type, "button") == 0) {
        check_limit(body, "interactive.body.text", WA_WHATSAPP_BODY_TEXT_MAX);
        check_items(body, "interactive.action.buttons", WA_WHATSAPP_BUTTONS_MAX);
        json_array_foreach(buttons, i, it)
        {
            check_limit(it, "reply.title", WA_WHATSAPP_BUTTON_TITLE_MAX);
            check_limit(it, "reply.id", WA_WHATSAPP_BUTTON_ID_MAX);
        }
    }
    if (strcmp(type, "list") != 0) {
        return;
    }
    check_items(body, "interactive.action.sections", WA_WHATSAPP_LIST_SECTIONS_MAX);
    json_array_foreach(sections, i, it)
    {
        const json_t *r = json_object_get(it, "rows");
        size_t j;
        json_t *row;

        check_limit(it, "title", WA_WHATSAPP_LIST_SECTION_TITLE_MAX);
        rows += json_is_array(r) ? json_array_size(r) : 0;
        json_array_foreach(r, j, row)
        {
            check_limit(row, "id", WA_WHATSAPP_LIST_ROW_ID_MAX);
            check_limit(row, "title", WA_WHATSAPP_LIST_ROW_TITLE_MAX);
            check_limit(row, "description", WA_WHATSAPP_LIST_ROW_DESC_MAX);
        }
    }
    if (rows > WA_WHATSAPP_LIST_ROWS_MAX) {
        abort();
    }
}

static void
check_accepted(const json_t *body, const struct wa_whatsapp_send *s)
{
    size_t n = strlen(s->wa_id);

    if ((unsigned)s->type >= WA_WHATSAPP_MSG__COUNT || s->type_name == NULL ||
        strcmp(s->type_name, wa_whatsapp_msg_type_name(s->type)) != 0) {
        abort();
    }
    if (s->type != WA_WHATSAPP_MSG_READ && s->to == NULL && s->recipient == NULL) {
        abort();
    }
    if (n != 0 && (n < 5 || n > 15 || strspn(s->wa_id, "0123456789") != n)) {
        abort();
    }
    check_limit(body, "biz_opaque_callback_data", WA_WHATSAPP_BIZ_OPAQUE_MAX);
    switch (s->type) {
    case WA_WHATSAPP_MSG_TEXT:
        check_limit(body, "text.body", WA_WHATSAPP_TEXT_BODY_MAX);
        break;
    case WA_WHATSAPP_MSG_IMAGE:
    case WA_WHATSAPP_MSG_VIDEO:
    case WA_WHATSAPP_MSG_AUDIO:
    case WA_WHATSAPP_MSG_DOCUMENT:
    case WA_WHATSAPP_MSG_STICKER: {
        char path[32];

        if ((s->media_id == NULL) == (s->media_link == NULL)) {
            abort();
        }
        snprintf(path, sizeof(path), "%s.caption", s->type_name);
        check_limit(body, path, WA_WHATSAPP_CAPTION_MAX);
        break;
    }
    case WA_WHATSAPP_MSG_INTERACTIVE:
        if (s->interactive_type == NULL) {
            abort();
        }
        check_interactive(body, s->interactive_type);
        break;
    case WA_WHATSAPP_MSG_TEMPLATE:
        if (s->tpl.name == NULL || s->tpl.language == NULL ||
            wa_whatsapp_utf8_len(s->tpl.name) > WA_WHATSAPP_TEMPLATE_NAME_MAX ||
            s->tpl.named_params > s->tpl.body_params) {
            abort();
        }
        break;
    default:
        break;
    }
}

static void
check_raw(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    char out[FUZZ_WA_ID_OUT];

    if (s == NULL) {
        return;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    if (wa_whatsapp_utf8_len(s) > strlen(s)) {
        abort();
    }
    if (wa_whatsapp_wa_id_from_to(s, out, sizeof(out)) == WA_OK &&
        (strlen(out) < 5 || strlen(out) >= sizeof(out) ||
         strspn(out, "0123456789") != strlen(out))) {
        abort();
    }
    free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wa_whatsapp_send send;
    struct wa_whatsapp_send_error error;
    json_t *body = NULL;

    check_raw(data, size);
    if (wa_json_parse((const char *)data, size, 0, &body, NULL) != WA_OK) {
        return 0;
    }
    if (wa_whatsapp_send_parse(body, &send, &error) == WA_OK) {
        check_accepted(body, &send);
    } else if ((error.code != 100 && error.code != 131008 && error.code != 131009 &&
                error.code != 131051) ||
               memchr(error.details, '\0', sizeof(error.details)) == NULL ||
               error.details[0] == '\0') {
        abort();
    }
    json_decref(body);
    return 0;
}
