/*
 * wa/whatsapp_errors.h: the Cloud API error codes (cloud-api.md §2.3) and what to do about each
 * (§2.4), shared by wa-notify (classify a failed send) and wa-cloudsim (answer like Meta).
 *
 * The key is the numeric `code`; Meta tells integrators to build on it, not on subcodes or the
 * HTTP status. Every known code has a title (Meta's, usable as "(#<code>) <title>"), the HTTP
 * status a simulator returns for it, a default `error_data.details` text and a class. Unknown
 * codes are classified from the HTTP status (5xx and 429: retryable; else permanent).
 *
 * Everything here is a static table lookup: thread-safe, no allocation except in the
 * wa_whatsapp_error_*_json() writers, which append to a caller's wa_buf.
 */
#ifndef WA_WHATSAPP_ERRORS_H
#define WA_WHATSAPP_ERRORS_H

#include <stdbool.h>
#include <stdint.h>

#include "wa/buf.h"
#include "wa/err.h"

/* What a sender should do about an error (§2.4). */
enum wa_whatsapp_error_class {
    WA_WHATSAPP_ERROR_RETRYABLE, /* transient (2, 131000, 131016, 5xx...): retry with backoff */
    WA_WHATSAPP_ERROR_THROTTLED, /* 130429, 4, 80007, 131048: back off and slow the number */
    WA_WHATSAPP_ERROR_PAIR_RATE, /* 131056: delay only this recipient (4^X seconds) */
    WA_WHATSAPP_ERROR_TOKEN,     /* 0, 190: stop, alert, refresh credentials */
    WA_WHATSAPP_ERROR_WINDOW,    /* 131047: outside the 24 h window; send a template instead */
    WA_WHATSAPP_ERROR_OPTED_OUT, /* 131050: the user stopped marketing messages */
    WA_WHATSAPP_ERROR_TEMPLATE,  /* 132xxx: template missing, paused, disabled, bad params */
    WA_WHATSAPP_ERROR_PERMANENT, /* everything else: the request will never succeed as is */
    WA_WHATSAPP_ERROR_CAPPED,    /* 131049: per-user marketing cap; much later, never suppress */
};

/* One row of the table. Static storage; strings never NULL. */
struct wa_whatsapp_error_info {
    int64_t code;
    int http_status; /* what a simulator answers synchronously (Meta's table B) */
    enum wa_whatsapp_error_class cls;
    const char *title;   /* "Rate limit hit"; message is "(#<code>) <title>" */
    const char *details; /* default error_data.details */
    const char *type;    /* "OAuthException" or "GraphMethodException" */
};

/* Returns the row for code, or NULL for a code the table does not know. Borrowed (static). */
const struct wa_whatsapp_error_info *wa_whatsapp_error_lookup(int64_t code);

/* Class of code; unknown codes by http_status (0 if none: permanent). */
enum wa_whatsapp_error_class wa_whatsapp_error_classify(int64_t code, int http_status);

/* True for RETRYABLE, THROTTLED, PAIR_RATE and CAPPED: the same request may succeed later. */
bool wa_whatsapp_error_class_retryable(enum wa_whatsapp_error_class cls);

/* Static name such as "retryable", "pair_rate"; never NULL. */
const char *wa_whatsapp_error_class_name(enum wa_whatsapp_error_class cls);

/* Title for code ("Unknown error" for unknown codes). Static; never NULL. */
const char *wa_whatsapp_error_title(int64_t code);

/* HTTP status a simulator answers for code (400 for unknown codes). */
int wa_whatsapp_error_http_status(int64_t code);

/*
 * Appends a synchronous Graph error body (§2.1) to out:
 * {"error":{"message":"(#code) title","type":..,"code":..,"error_data":{"messaging_product":
 * "whatsapp","details":..},"error_subcode":..,"fbtrace_id":..}}. details NULL: the default
 * details; subcode 0: omitted; fbtrace_id NULL: omitted. Borrows all strings.
 */
enum wa_err wa_whatsapp_error_graph_json(struct wa_buf *out, int64_t code, int64_t subcode,
                                         const char *details, const char *fbtrace_id);

/*
 * Appends an asynchronous (webhook) error object (§2.2) to out:
 * {"code":..,"title":..,"message":..,"error_data":{"details":..},"href":..}.
 * details NULL: the default details. Borrows all strings.
 */
enum wa_err wa_whatsapp_error_webhook_json(struct wa_buf *out, int64_t code, const char *details);

#endif
