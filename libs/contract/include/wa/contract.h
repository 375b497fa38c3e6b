/*
 * wa/contract.h: the names and shapes every producer and consumer of a topic agrees on
 * (docs/architecture.md, "Topics and events").
 *
 * - Topic names after the prefix (WA_TOPIC_*; full name = WA_TOPIC_PREFIX + name, see
 *   wa_kafka_topic()), CloudEvent types (WA_CE_TYPE_*), key formats.
 * - The data of the four topics wa-ingest produces, built from the webhook splitter's events
 *   (encoders, used by wa-ingest and wa-router's --replay) and read back into plain structs
 *   (decoders, used by wa-router, wa-users, wa-analytics). Golden files in
 *   tests/data/webhook/valid/<case>/expected pin the shapes.
 *
 * Data shapes (v1; a new required field or a changed meaning makes a v2 type):
 *
 * inbound.message (type wa.inbound.message.v1, key <phone_number_id>:<contact>)
 *   {"wamid", "type", "timestamp" (int seconds | null), "phone_number_id",
 *    "display_phone_number", "waba_id", "contact" (wa_id or BSUID), "from" (wa_id | null),
 *    "from_user_id" (BSUID | null), "profile" (the webhook's contacts[] item | null),
 *    "message" (Meta's message object verbatim: body, context, referral, errors, ...)}
 * inbound.status (type wa.inbound.status.v1, key <phone_number_id>:<contact>)
 *   {"wamid", "status", "timestamp", "phone_number_id", "display_phone_number", "waba_id",
 *    "contact", "biz_opaque_callback_data" (string | null), "status_object" (Meta's status
 *    object verbatim: errors, pricing, conversation, ...)}
 * account.event (type wa.account.event.v1, key <WABA id>, or <phone_number_id>:<contact> for
 *   the per-item events of array-carrying fields: user_preferences, smb_message_echoes,
 *   calls, smb_app_state_sync, history; see wa/whatsapp_webhook.h)
 *   {"waba_id", "field" (changes[].field), "event" (value.event or the item's "event",
 *    "error" for value.errors[] items, or null), "timestamp" (the item's timestamp, else entry
 *    time | null), "phone_number_id" (| null), "contact" (the item's user | null), "value"
 *    (the change's value, the error object, or for a per-item event the change's value with
 *    its array reduced to that one item and contacts[] to that user's entry)}
 * Any of the three may also carry "repaired": true: a string in it was not valid JSON text
 * (\u0000, a lone surrogate, invalid UTF-8) and holds U+FFFD in its place; webhook.raw has
 * Meta's bytes. Group statuses (recipient_participant_id) are one event per participant.
 * webhook.raw (type wa.webhook.raw.v1, key phone_number_id, else WABA id, else "unknown")
 *   {"raw_id" (one id per body), "request_id", "received_at" (RFC 3339), "parsed" (bool),
 *    "size" (bytes of the whole body), "sha256" (hex, whole body), "part", "parts",
 *    "headers" {lower-case name: value}, and either "body" (text, when the body is UTF-8
 *    without NUL) or "body_base64"}: bodies above WA_CONTRACT_RAW_PART_MAX are split into
 *    parts (same key, so in order on one partition); concatenating the parts' decoded bytes in
 *    "part" order gives the body back byte for byte.
 *
 * Ownership: encoders return new references (json_decref); decoders fill caller's structs with
 * pointers borrowed from the json_t they were given. Pure, thread-safe.
 */
#ifndef WA_CONTRACT_H
#define WA_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/buf.h"
#include "wa/err.h"
#include "wa/json.h"
#include "wa/whatsapp_webhook.h"

/* ---- topics (after the prefix) ---- */
#define WA_TOPIC_WEBHOOK_RAW      "webhook.raw"
#define WA_TOPIC_INBOUND_MESSAGE  "inbound.message"
#define WA_TOPIC_INBOUND_STATUS   "inbound.status"
#define WA_TOPIC_ACCOUNT_EVENT    "account.event"
#define WA_TOPIC_OUTBOUND_REQUEST "outbound.request"
#define WA_TOPIC_OUTBOUND_RESULT  "outbound.result"
#define WA_TOPIC_OUTBOUND_DLQ     "outbound.dlq"
#define WA_TOPIC_CONTACT_COMMAND  "contact.command"
#define WA_TOPIC_CONTACT_EVENT    "contact.event"
#define WA_TOPIC_HANDOFF          "handoff"
#define WA_TOPIC_ROUTER_WINDOW    "router.window"  /* wa-router: window expiring / closed */
#define WA_TOPIC_ROUTER_CRM_DLQ   "router.crm.dlq" /* wa-router: CRM deliveries given up */
/* Every topic above, for whoever creates them (wa-infra in tools/infra, from deploy/local). */
#define WA_CONTRACT_TOPICS                                                                         \
    WA_TOPIC_WEBHOOK_RAW, WA_TOPIC_INBOUND_MESSAGE, WA_TOPIC_INBOUND_STATUS,                       \
        WA_TOPIC_ACCOUNT_EVENT, WA_TOPIC_OUTBOUND_REQUEST, WA_TOPIC_OUTBOUND_RESULT,               \
        WA_TOPIC_OUTBOUND_DLQ, WA_TOPIC_CONTACT_COMMAND, WA_TOPIC_CONTACT_EVENT, WA_TOPIC_HANDOFF, \
        WA_TOPIC_ROUTER_WINDOW, WA_TOPIC_ROUTER_CRM_DLQ

/* ---- CloudEvent types ---- */
#define WA_CE_TYPE_WEBHOOK_RAW            "wa.webhook.raw.v1"
#define WA_CE_TYPE_INBOUND_MESSAGE        "wa.inbound.message.v1"
#define WA_CE_TYPE_INBOUND_STATUS         "wa.inbound.status.v1"
#define WA_CE_TYPE_ACCOUNT_EVENT          "wa.account.event.v1"
#define WA_CE_TYPE_ROUTER_WINDOW_EXPIRING "wa.router.window.expiring.v1"
#define WA_CE_TYPE_ROUTER_WINDOW_CLOSED   "wa.router.window.closed.v1"
#define WA_CE_TYPE_ROUTER_CRM_DLQ         "wa.router.crm.dlq.v1"
#define WA_CE_TYPE_ROUTER_FORWARD         "wa.router.forward.v1" /* the CRM webhook's record */

/* ---- keys ---- */
#define WA_CONTRACT_KEY_MAX 256 /* conversation keys and subjects, NUL included */

/*
 * Writes the conversation key "<phone_number_id>:<contact>" into out (size bytes). NULL parts
 * are written as "unknown" so a key always exists. Returns WA_ETOOBIG (out then "") when it
 * does not fit.
 */
enum wa_err wa_contract_conversation_key(const char *phone_number_id, const char *contact,
                                         char *out, size_t size);

/* Topic (after the prefix) and CloudEvent type of a splitter event. Static strings. */
const char *wa_contract_event_topic(enum wa_webhook_kind kind);
const char *wa_contract_event_type(enum wa_webhook_kind kind);

/*
 * Writes the Kafka key / CloudEvent subject of ev into out: the conversation key for messages
 * and statuses, the WABA id (or "unknown") for account events. WA_ETOOBIG when it does not fit.
 */
enum wa_err wa_contract_event_key(const struct wa_webhook_event *ev, char *out, size_t size);

/*
 * Returns the dedup identity of ev in out: "m:<wamid>" for messages, "s:<wamid>:<status>" for
 * statuses ("s:<wamid>:<status>:<recipient_participant_id>" for a group's); WA_ENOTFOUND for account events (never deduplicated), WA_ETOOBIG when too long.
 */
enum wa_err wa_contract_event_dedup_id(const struct wa_webhook_event *ev, char *out, size_t size);

/*
 * Builds the data object of ev (shapes above). Returns a new reference in *out (json_decref);
 * the verbatim parts are shared with ev's batch by reference, so keep the batch alive until
 * the data is serialised or released. WA_ENOMEM.
 */
enum wa_err wa_contract_event_data(const struct wa_webhook_event *ev, json_t **out);
/*
 * Appends the data object of ev to b as compact JSON: the bytes of wa_contract_event_data(ev)
 * dumped by json_dump*(JSON_COMPACT | JSON_ENCODE_ANY), without building the tree (hot path).
 * Borrows ev for the call only. WA_OK, WA_EINVAL (unknown kind), WA_ENOMEM, WA_ETOOBIG (b's
 * maximum); on error b is unchanged.
 */
enum wa_err wa_contract_event_data_write(struct wa_buf *b, const struct wa_webhook_event *ev);

/* ---- webhook.raw ---- */

#define WA_CONTRACT_RAW_PART_MAX  (256u * 1024u) /* body bytes per webhook.raw event */
#define WA_CONTRACT_RAW_PARTS_MAX 32u            /* so bodies up to 8 MiB */

/* What the archive records besides the body. Borrowed strings; NULL = absent. */
struct wa_contract_raw_meta {
    const char *raw_id;         /* required: one id per body, e.g. a ULID */
    const char *request_id;     /* the HTTP request id */
    const char *received_at;    /* required: RFC 3339 */
    bool parsed;                /* the splitter accepted the body */
    const char *const *headers; /* pairs: lower-case name, value; NULL values skipped */
    size_t nheaders;            /* number of pairs */
};

/*
 * Builds the data of every webhook.raw part of body (len bytes) into parts[0..*n), at most
 * max_parts, each a new reference (json_decref each). Part boundaries never split a UTF-8
 * sequence when the body is sent as text. Copies what it needs of body and meta.
 * WA_EINVAL (meta incomplete), WA_ETOOBIG (more than max_parts parts), WA_ENOMEM; on error no
 * reference is left in parts.
 */
enum wa_err wa_contract_raw_data(const struct wa_contract_raw_meta *meta, const char *body,
                                 size_t len, json_t **parts, size_t max_parts, size_t *n);
/*
 * Appends the single webhook.raw part of body (len bytes) to b as compact JSON: the bytes of
 * wa_contract_raw_data's only part dumped by json_dump*(JSON_COMPACT | JSON_ENCODE_ANY),
 * without building the tree (hot path). Handles UTF-8 text bodies (wa_contract_utf8_text) of
 * at most WA_CONTRACT_RAW_PART_MAX bytes with complete meta; for any other body it returns
 * WA_ENOTFOUND and appends nothing: use wa_contract_raw_data then. Borrows meta and body for
 * the call only. WA_ENOMEM, WA_ETOOBIG (b's maximum); on error b is unchanged.
 */
enum wa_err wa_contract_raw_data_write(struct wa_buf *b, const struct wa_contract_raw_meta *meta,
                                       const char *body, size_t len);

/* True when s (len bytes) is valid UTF-8 (no overlongs, no surrogates) without NUL bytes. */
bool wa_contract_utf8_text(const char *s, size_t len);

/* ---- decoders ---- */

struct wa_contract_inbound_message {
    const char *wamid; /* required */
    const char *type;  /* required ("unknown" when Meta sent none) */
    int64_t timestamp; /* -1 when absent */
    const char *phone_number_id;
    const char *display_phone_number;
    const char *waba_id;
    const char *contact; /* required */
    const char *from;
    const char *from_user_id;
    const char *profile_name; /* profile.profile.name, or NULL */
    const json_t *profile;    /* NULL when absent */
    const json_t *message;    /* required object */
    const json_t *context;    /* message.context or NULL */
    const json_t *referral;   /* message.referral or NULL */
    const char *text;         /* message.text.body or NULL */
};

struct wa_contract_inbound_status {
    const char *wamid;  /* required */
    const char *status; /* required */
    int64_t timestamp;
    const char *phone_number_id;
    const char *display_phone_number;
    const char *waba_id;
    const char *contact;
    const char *biz_opaque_callback_data;
    const json_t *status_object; /* required object */
    const json_t *errors;        /* status_object.errors (array) or NULL */
    const json_t *pricing;       /* status_object.pricing or NULL */
    const json_t *conversation;  /* status_object.conversation or NULL */
};

struct wa_contract_account_event {
    const char *waba_id;
    const char *field; /* required */
    const char *event;
    int64_t timestamp;
    const char *phone_number_id;
    const char *contact; /* per-item events: the item's user, else NULL */
    const json_t *value; /* required object */
};

struct wa_contract_raw {
    const char *raw_id;
    const char *request_id;
    const char *received_at;
    bool parsed;
    int64_t size;
    const char *sha256;
    int64_t part;
    int64_t parts;
    const json_t *headers;
    const char *body;        /* text part, or NULL */
    const char *body_base64; /* binary part, or NULL */
    size_t body_len;         /* length of whichever is set */
};

/*
 * Fill out from data (the CloudEvent's data object) with pointers borrowed from data.
 * WA_EPARSE (message names the field) when a required field is missing or of the wrong type.
 */
enum wa_err wa_contract_inbound_message_decode(const json_t *data,
                                               struct wa_contract_inbound_message *out,
                                               struct wa_error *error);
enum wa_err wa_contract_inbound_status_decode(const json_t *data,
                                              struct wa_contract_inbound_status *out,
                                              struct wa_error *error);
enum wa_err wa_contract_account_event_decode(const json_t *data,
                                             struct wa_contract_account_event *out,
                                             struct wa_error *error);
enum wa_err wa_contract_raw_decode(const json_t *data, struct wa_contract_raw *out,
                                   struct wa_error *error);

/*
 * Appends the bytes of one decoded webhook.raw part to body (text verbatim, base64 decoded).
 * WA_EPARSE for bad base64, WA_ETOOBIG past body's maximum.
 */
enum wa_err wa_contract_raw_append_body(const struct wa_contract_raw *raw, struct wa_buf *body,
                                        struct wa_error *error);

#endif
