/*
 * wa/whatsapp_message.h: Cloud API send bodies (cloud-api.md §1): validation with Meta's field
 * limits (§1.5) and Meta's error codes, shared by wa-notify (check before sending) and
 * wa-cloudsim (answer like Meta).
 *
 * wa_whatsapp_send_parse() walks one POST /{phone_number_id}/messages body and either fills a
 * struct wa_whatsapp_send (what the message is: type, recipient, template reference with its
 * parameter counts, media reference...) or reports the first problem as Meta would: code 100
 * (unknown field, wrong type, over-length message text, caption or biz_opaque_callback_data),
 * 131008 (required parameter missing), 131009 (parameter value not valid, over-length values
 * of interactive objects and template parameters included), 131051 (unsupported message
 * type), with error_data.details
 * naming the field the way Meta does ("Param text['body'] ..."). Whether a template exists
 * (132001) or has that many parameters (132000) needs a template registry and is the caller's
 * job, from the counts reported here.
 *
 * Ownership: the strings in struct wa_whatsapp_send are borrowed from the json_t given to
 * wa_whatsapp_send_parse() and valid while it lives. Stateless and thread-safe.
 */
#ifndef WA_WHATSAPP_MESSAGE_H
#define WA_WHATSAPP_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/err.h"
#include "wa/json.h"

/* §1.5 field limits, in characters (Unicode code points), but biz_opaque_callback_data's. */
#define WA_WHATSAPP_TEXT_BODY_MAX           4096
#define WA_WHATSAPP_CAPTION_MAX             1024
#define WA_WHATSAPP_BIZ_OPAQUE_MAX          512 /* bytes */
#define WA_WHATSAPP_HEADER_TEXT_MAX         60
#define WA_WHATSAPP_BODY_TEXT_MAX           1024 /* reply buttons, CTA URL */
#define WA_WHATSAPP_LIST_BODY_TEXT_MAX      4096
#define WA_WHATSAPP_FOOTER_TEXT_MAX         60
#define WA_WHATSAPP_BUTTONS_MAX             3
#define WA_WHATSAPP_BUTTON_TITLE_MAX        20
#define WA_WHATSAPP_BUTTON_ID_MAX           256
#define WA_WHATSAPP_LIST_BUTTON_MAX         20
#define WA_WHATSAPP_LIST_SECTIONS_MAX       10
#define WA_WHATSAPP_LIST_SECTION_TITLE_MAX  24
#define WA_WHATSAPP_LIST_ROWS_MAX           10 /* in total across sections */
#define WA_WHATSAPP_LIST_ROW_ID_MAX         200
#define WA_WHATSAPP_LIST_ROW_TITLE_MAX      24
#define WA_WHATSAPP_LIST_ROW_DESC_MAX       72
#define WA_WHATSAPP_CTA_DISPLAY_TEXT_MAX    20
#define WA_WHATSAPP_TEMPLATE_NAME_MAX       512
#define WA_WHATSAPP_TPL_HEADER_PARAM_MAX    60    /* a header's text parameter */
#define WA_WHATSAPP_TPL_BODY_PARAM_MAX      1024  /* a body's, next to other components */
#define WA_WHATSAPP_TPL_BODY_ONLY_PARAM_MAX 32768 /* a body's, when it is the only component */
#define WA_WHATSAPP_STICKER_STATIC_MAX      (100u * 1024u) /* bytes */
#define WA_WHATSAPP_STICKER_ANIMATED_MAX    (500u * 1024u)
#define WA_WHATSAPP_WA_ID_MAX               16 /* digits of an E.164 number, and a NUL */

enum wa_whatsapp_msg_type {
    WA_WHATSAPP_MSG_TEXT,
    WA_WHATSAPP_MSG_IMAGE,
    WA_WHATSAPP_MSG_VIDEO,
    WA_WHATSAPP_MSG_AUDIO,
    WA_WHATSAPP_MSG_DOCUMENT,
    WA_WHATSAPP_MSG_STICKER,
    WA_WHATSAPP_MSG_LOCATION,
    WA_WHATSAPP_MSG_CONTACTS,
    WA_WHATSAPP_MSG_INTERACTIVE,
    WA_WHATSAPP_MSG_TEMPLATE,
    WA_WHATSAPP_MSG_REACTION,
    WA_WHATSAPP_MSG_READ, /* mark-as-read / typing indicator: {"status":"read",...} */
    WA_WHATSAPP_MSG__COUNT
};

/* Meta's answer to an invalid body. Caller's storage. */
struct wa_whatsapp_send_error {
    int64_t code;      /* 100, 131008, 131009, 131051 */
    int64_t subcode;   /* 0 when none */
    char details[256]; /* error_data.details, NUL-terminated */
};

/* What a valid send body asks for. Strings borrowed from the parsed body (see above). */
struct wa_whatsapp_send {
    enum wa_whatsapp_msg_type type;
    const char *type_name; /* "text", ...; "read" for mark-as-read */
    const char *to;        /* exactly as sent (echoed in contacts[].input); NULL with recipient */
    const char *recipient; /* BSUID when sent with "recipient"; else NULL */
    char wa_id[WA_WHATSAPP_WA_ID_MAX + 1]; /* digits of to; "" with recipient or for READ */
    const char *biz_opaque_callback_data;  /* or NULL */
    const char *context_message_id;        /* or NULL */
    const char *media_id;                  /* media types: exactly one of id / link */
    const char *media_link;
    const char *interactive_type; /* "button", "list", "cta_url", ... */
    const char *reaction_message_id;
    const char *read_message_id; /* READ */
    bool typing_indicator;       /* READ with typing_indicator */
    bool group;                  /* recipient_type "group": to is a group id, wa_id "" */
    struct {
        const char *name;
        const char *language;
        size_t header_params; /* parameters of the header component */
        size_t body_params;   /* parameters of the body component */
        size_t button_params; /* parameters of all button components */
        size_t named_params;  /* body parameters carrying parameter_name */
    } tpl;
};

/*
 * Validates body (a parsed request body) and fills *out. Returns WA_OK, or WA_EINVAL with
 * *error set to Meta's code and details for the first problem found (out is then partly
 * filled). out and error are caller's storage; error may not be NULL.
 */
enum wa_err wa_whatsapp_send_parse(const json_t *body, struct wa_whatsapp_send *out,
                                   struct wa_whatsapp_send_error *error);

/* Static name of a type ("text", ..., "read"); "unknown" out of range. */
const char *wa_whatsapp_msg_type_name(enum wa_whatsapp_msg_type type);
/* The type named name (send-side names, not "read"); WA_ENOTFOUND when unknown. */
enum wa_err wa_whatsapp_msg_type_parse(const char *name, enum wa_whatsapp_msg_type *out);

/*
 * Normalises a `to` value ("+1 (650) 555-1234") into its digits ("16505551234") in out (size
 * outlen). Accepts '+' (leading only), '-', '(', ')', spaces. Returns WA_OK, or WA_EINVAL when
 * another character appears or the digit count is outside 5..15 (E.164).
 */
enum wa_err wa_whatsapp_wa_id_from_to(const char *to, char *out, size_t outlen);

/* Number of Unicode code points in the UTF-8 string s (bytes of invalid UTF-8 count one each). */
size_t wa_whatsapp_utf8_len(const char *s);

#endif
