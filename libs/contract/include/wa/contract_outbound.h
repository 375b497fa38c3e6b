/*
 * wa/contract_outbound.h: the shapes of outbound.request, outbound.result and outbound.dlq
 * (docs/architecture.md, "Topics and events"), shared by their producers (wa-gateway,
 * wa-router: requests; wa-notify: results and dead letters) and consumers (wa-notify,
 * wa-analytics, wa-router).
 *
 * outbound.request (type wa.outbound.request.v1, key <phone_number_id>:<contact>)
 *   {"request_id" (caller's idempotency key, <= 128 bytes), "phone_number_id",
 *    "to" (E.164 or wa_id) | "recipient" (BSUID), "type" (text, template, image, video, audio,
 *    document, sticker, location, contacts, interactive, reaction, read-receipt),
 *    <type>: the type's body in Cloud API shape (for "read-receipt": {"message_id",
 *    "typing_indicator"?}), "context"? ({"message_id"}), "category"? (marketing, utility,
 *    authentication, service), "not_before"?, "expires_at"? (RFC 3339 or integer ms since the
 *    epoch), "priority"? (integer), "fallback_template"? (a template body sent instead when the
 *    24 h window is closed), "metadata"? (any JSON, returned untouched)}
 * outbound.result (type wa.outbound.result.v1, same key)
 *   {"request_id", "phone_number_id", "to", "status" ("accepted" | "failed"), "wamid" (| null),
 *    "attempts", "reason" (null when accepted; else invalid, expired, window, opted_out,
 *    rejected, retries_exhausted, ...), "error" ({"code" (Meta code | null), "title",
 *    "details"} | null), "fallback" (true when the fallback template was sent), "metadata"}
 * outbound.dlq (type wa.outbound.dlq.v1, same key, or "unknown" for unreadable events)
 *   the result's fields plus "attempts_log" ([{"at" (RFC 3339), "http_status", "code",
 *   "title", "details", "latency_ms"}]) and "request" (the request's data) or, for an event
 *   that could not be read, "raw" (the bytes as text) or "raw_base64".
 *
 * Ownership: decoders fill caller's structs with pointers borrowed from the json_t given;
 * encoders return new references (json_decref). Pure, thread-safe.
 */
#ifndef WA_CONTRACT_OUTBOUND_H
#define WA_CONTRACT_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/err.h"
#include "wa/json.h"

#define WA_CE_TYPE_OUTBOUND_REQUEST "wa.outbound.request.v1"
#define WA_CE_TYPE_OUTBOUND_RESULT  "wa.outbound.result.v1"
#define WA_CE_TYPE_OUTBOUND_DLQ     "wa.outbound.dlq.v1"

#define WA_CONTRACT_REQUEST_ID_MAX 128 /* bytes, without the NUL */

/* The furthest ahead a request's not_before may lie (30 days): wa-gateway answers a later one
 * with a problem naming /not_before, wa-notify refuses one as invalid (result + dead letter). */
#define WA_CONTRACT_NOT_BEFORE_MAX_MS (30ll * 24 * 3600 * 1000)

/* A decoded outbound.request. Pointers borrowed from the data object. */
struct wa_contract_outbound_request {
    const char *request_id;      /* required */
    const char *phone_number_id; /* required, digits */
    const char *to;              /* one of to / recipient is required */
    const char *recipient;
    const char *type;                /* required */
    const json_t *body;              /* data[type]: required object (array for contacts) */
    const json_t *context;           /* object or NULL */
    const char *category;            /* NULL or one of the four categories */
    int64_t not_before_ms;           /* 0 when absent */
    int64_t expires_at_ms;           /* 0 when absent */
    int64_t priority;                /* 0 when absent */
    const json_t *fallback_template; /* object or NULL */
    const json_t *metadata;          /* any JSON or NULL */
};

/*
 * Fills out from data (the CloudEvent's data). WA_EPARSE with the field named in error when a
 * required field is missing, has the wrong type or an unknown value (type, category), or a
 * time does not parse. out->request_id is set as soon as it was read, so a caller can still
 * answer a request that fails later checks.
 */
enum wa_err wa_contract_outbound_request_decode(const json_t *data,
                                                struct wa_contract_outbound_request *out,
                                                struct wa_error *error);

/* Parses an RFC 3339 date-time into ms since the epoch. WA_EPARSE when it is not one. */
enum wa_err wa_contract_time_parse(const char *s, int64_t *out_ms);

/* What a result says. Strings and metadata borrowed; NULL = absent (null in JSON). */
struct wa_contract_outbound_result {
    const char *request_id;
    const char *phone_number_id;
    const char *to;
    bool accepted;
    const char *wamid;
    int64_t attempts;
    const char *reason;
    bool has_code;
    int64_t code;
    const char *title;
    const char *details;
    bool fallback;
    const json_t *metadata;
};

/* Builds outbound.result data. Returns a new reference in *out (json_decref). WA_ENOMEM. */
enum wa_err wa_contract_outbound_result_data(const struct wa_contract_outbound_result *r,
                                             json_t **out);

/*
 * Fills out from outbound.result data (pointers borrowed from data; metadata NULL for null).
 * WA_EPARSE with the field named when request_id or status is missing or status is neither
 * "accepted" nor "failed"; the other fields are optional (NULL, 0, false when absent).
 */
enum wa_err wa_contract_outbound_result_decode(const json_t *data,
                                               struct wa_contract_outbound_result *out,
                                               struct wa_error *error);

/*
 * Builds outbound.dlq data: r's fields, attempts_log (borrowed, copied by reference; NULL:
 * empty array), and request (borrowed, by reference) or, when request is NULL, raw (len bytes,
 * copied: as text when UTF-8, else base64). Returns a new reference in *out. WA_ENOMEM.
 */
enum wa_err wa_contract_outbound_dlq_data(const struct wa_contract_outbound_result *r,
                                          const json_t *attempts_log, const json_t *request,
                                          const void *raw, size_t len, json_t **out);

#endif
