/*
 * classify.c: the answer of one Cloud API send (after send.c), as cloud-api.md §2.3/§2.4 ask:
 * the class comes from Meta's `code` (libs/whatsapp's table), never from the title; without a
 * Graph error body, from the HTTP status (5xx, 429: retryable) or the transport error (network,
 * timeout: retryable, and counted by the circuit breaker). Also the breaker itself.
 * Pure functions: no I/O, no clock of their own.
 */
#include <stdio.h>
#include <string.h>

#include "notify.h"

static void
set(char *dst, size_t size, const char *s)
{
    snprintf(dst, size, "%s", s != NULL ? s : "");
}

static void
from_success(const json_t *root, struct nt_answer *out)
{
    const char *id = wa_json_path_str(root, "messages.0.id");

    if (id == NULL) {
        id = json_is_true(json_object_get(root, "success")) ? "" : NULL;
    }
    if (id == NULL) {
        /* 200 without a wamid: not a Cloud API answer; the send may have happened. */
        out->outcome = NT_RETRY;
        out->breaker_failure = true;
        set(out->title, sizeof(out->title), "unexpected response");
        set(out->details, sizeof(out->details), "HTTP 200 without messages[0].id");
        return;
    }
    out->outcome = NT_ACCEPTED;
    set(out->wamid, sizeof(out->wamid), id);
}

void
nt_classify(enum wa_err transport, const char *transport_msg, long status, const char *body,
            size_t len, struct nt_answer *out)
{
    json_t *root = NULL, *err;

    memset(out, 0, sizeof(*out));
    out->http_status = status;
    if (transport != WA_OK) {
        out->outcome = NT_RETRY;
        out->breaker_failure = true;
        set(out->title, sizeof(out->title),
            transport == WA_ETIMEDOUT ? "timeout" : "network error");
        set(out->details, sizeof(out->details), transport_msg);
        return;
    }
    if (body != NULL && len > 0) {
        (void)wa_json_parse(body, len, 32, &root, NULL);
    }
    if (status >= 200 && status < 300) {
        from_success(root, out);
        json_decref(root);
        return;
    }
    err = json_object_get(root, "error");
    if (json_is_object(err) && json_is_integer(json_object_get(err, "code"))) {
        enum wa_whatsapp_error_class cls;
        const char *details = wa_json_path_str(err, "error_data.details");
        const char *msg = wa_json_str(err, "message");

        out->has_code = true;
        out->code = json_integer_value(json_object_get(err, "code"));
        cls = wa_whatsapp_error_classify(out->code, (int)status);
        set(out->title, sizeof(out->title),
            wa_whatsapp_error_lookup(out->code) != NULL ? wa_whatsapp_error_title(out->code) : msg);
        set(out->details, sizeof(out->details),
            details != NULL ? details
                            : (json_is_string(json_object_get(err, "error_data"))
                                   ? json_string_value(json_object_get(err, "error_data"))
                                   : msg));
        switch (cls) {
        case WA_WHATSAPP_ERROR_RETRYABLE:
            out->outcome = NT_RETRY;
            out->breaker_failure = status >= 500;
            break;
        case WA_WHATSAPP_ERROR_THROTTLED:
            out->outcome = NT_THROTTLED;
            break;
        case WA_WHATSAPP_ERROR_PAIR_RATE:
            out->outcome = NT_PAIR_RATE;
            break;
        case WA_WHATSAPP_ERROR_TOKEN:
            out->outcome = NT_TOKEN;
            break;
        case WA_WHATSAPP_ERROR_CAPPED:
            out->outcome = NT_CAPPED;
            break;
        default:
            out->outcome = NT_PERMANENT;
            break;
        }
        json_decref(root);
        return;
    }
    json_decref(root);
    /* No Graph error body: decide on the status alone. */
    snprintf(out->title, sizeof(out->title), "HTTP %ld", status);
    set(out->details, sizeof(out->details), "response without a Graph error object");
    if (status >= 500 || status == 429 || status == 408) {
        out->outcome = status == 429 ? NT_THROTTLED : NT_RETRY;
        out->breaker_failure = status >= 500;
    } else if (status == 401) {
        out->outcome = NT_TOKEN;
    } else {
        out->outcome = NT_PERMANENT;
    }
}

bool
nt_breaker_allow(struct nt_breaker *b, uint64_t now)
{
    if (b->open_until == 0) {
        return true;
    }
    if (now < b->open_until || b->probing) {
        return false;
    }
    b->probing = true; /* half-open: exactly one probe */
    return true;
}

void
nt_breaker_record(struct nt_breaker *b, bool failure, uint64_t now)
{
    if (!failure) {
        b->failures = 0;
        b->trips = 0;
        b->open_until = 0;
        b->probing = false;
        return;
    }
    b->failures++;
    if (b->probing || (b->open_until == 0 && b->failures >= b->threshold)) {
        uint64_t d = b->cooldown_ms;

        for (unsigned i = 0; i < b->trips && i < 4; i++) {
            d *= 2;
        }
        b->trips++;
        b->open_until = now + d;
        b->probing = false;
    }
}

int
nt_breaker_state(const struct nt_breaker *b, uint64_t now)
{
    if (b->open_until == 0) {
        return 0;
    }
    return now < b->open_until ? 1 : 2;
}
