/*
 * validate.c: part of stage 1 (after consume.c). Input: a decoded outbound.request. Output:
 * the Cloud API body to send (cloud-api.md §1.2) validated by libs/whatsapp against Meta's
 * fields and limits (§1.5), or the reason it is invalid with Meta's code (100, 131008, 131009,
 * 131051), so an invalid request fails here instead of costing a send.
 *
 * The request_id travels as biz_opaque_callback_data: every status webhook of the message can
 * be tied back to its request (architecture.md, "Guarantees"). Pure; thread-safe.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "notify.h"

/* A BSUID: two letters, '.', then alphanumerics (and '.' for parent ids). */
static bool
is_bsuid(const char *s)
{
    if (!isupper((unsigned char)s[0]) || !isupper((unsigned char)s[1]) || s[2] != '.' ||
        s[3] == '\0') {
        return false;
    }
    for (s += 3; *s != '\0'; s++) {
        if (!isalnum((unsigned char)*s) && *s != '.') {
            return false;
        }
    }
    return true;
}

static enum wa_err invalid(struct nt_invalid *why, int64_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum wa_err
invalid(struct nt_invalid *why, int64_t code, const char *fmt, ...)
{
    va_list ap;

    why->has_code = code != 0;
    why->code = code;
    va_start(ap, fmt);
    vsnprintf(why->details, sizeof(why->details), fmt, ap);
    va_end(ap);
    return WA_EINVAL;
}

static enum wa_err
build_read(const struct wa_contract_outbound_request *rq, json_t *o)
{
    const char *k;
    json_t *v;

    if (!json_is_object(rq->body)) {
        return WA_EINVAL;
    }
    json_object_foreach((json_t *)rq->body, k, v)
    {
        if (json_object_set(o, k, v) != 0) {
            return WA_ENOMEM;
        }
    }
    if (json_object_set_new(o, "status", json_string("read")) != 0) {
        return WA_ENOMEM;
    }
    return WA_OK;
}

enum wa_err
nt_validate_build(const struct wa_contract_outbound_request *rq, const json_t *template_body,
                  json_t **out, struct nt_invalid *why)
{
    json_t *o = json_object();
    const char *type = template_body != NULL ? "template" : rq->type;
    const json_t *body = template_body != NULL ? template_body : rq->body;
    const char *to = rq->to;
    char digits[WA_WHATSAPP_WA_ID_MAX + 2];
    struct wa_whatsapp_send send;
    struct wa_whatsapp_send_error serr;
    enum wa_err err = WA_OK;
    int bad = 0;

    memset(why, 0, sizeof(*why));
    *out = NULL;
    if (o == NULL) {
        return WA_ENOMEM;
    }
    bad |= json_object_set_new(o, "messaging_product", json_string("whatsapp"));
    if (strcmp(type, "read-receipt") == 0) {
        if ((err = build_read(rq, o)) != WA_OK) {
            goto out;
        }
    } else {
        bad |= json_object_set_new(o, "recipient_type", json_string("individual"));
        if (rq->recipient != NULL || is_bsuid(to)) {
            const char *id = rq->recipient != NULL ? rq->recipient : to;

            if (!is_bsuid(id)) {
                err = invalid(why, 100, "Invalid parameter: recipient '%s' is not a BSUID", id);
                goto out;
            }
            bad |= json_object_set_new(o, "recipient", json_string(id));
        } else {
            if (wa_whatsapp_wa_id_from_to(to, digits + 1, sizeof(digits) - 1) != WA_OK) {
                err = invalid(why, 100, "Invalid parameter: to '%.64s' is not an E.164 number", to);
                goto out;
            }
            digits[0] = '+';
            bad |= json_object_set_new(o, "to", json_string(digits));
        }
        bad |= json_object_set_new(o, "type", json_string(type));
        bad |= json_object_set(o, type, (json_t *)body);
        if (rq->context != NULL && template_body == NULL) {
            bad |= json_object_set(o, "context", (json_t *)rq->context);
        }
        bad |= json_object_set_new(o, "biz_opaque_callback_data", json_string(rq->request_id));
    }
    if (bad != 0) {
        err = WA_ENOMEM;
        goto out;
    }
    if (wa_whatsapp_send_parse(o, &send, &serr) != WA_OK) {
        why->has_code = true;
        why->code = serr.code;
        snprintf(why->details, sizeof(why->details), "%s", serr.details);
        err = WA_EINVAL;
        goto out;
    }
    *out = o;
    o = NULL;
out:
    json_decref(o);
    return err;
}
