/*
 * wa/whatsapp_webhook.h: splits one Meta webhook body into events (cloud-api.md §3, §5.3-5.4).
 *
 * A POST can carry several entry[], each several changes[], each value several messages[],
 * statuses[] and errors[] (up to 1,000 updates). wa_webhook_split() walks all of them and yields
 * one event per update, in body order:
 *   - WA_WEBHOOK_MESSAGE per value.messages[] item (any type, unknown ones included), with the
 *     matching value.contacts[] item and the change's metadata;
 *   - WA_WEBHOOK_STATUS per value.statuses[] item;
 *   - WA_WEBHOOK_ACCOUNT per change whose field is not "messages" (template status, quality and
 *     category updates, phone quality, account updates, and every field not known today), per
 *     value.errors[] item of a "messages" change, and per "messages" change that holds none of
 *     messages/statuses/errors (so nothing Meta sends is dropped without trace);
 *   - except for fields whose value carries an array of items (user_preferences,
 *     smb_message_echoes, calls, smb_app_state_sync, history): one WA_WEBHOOK_ACCOUNT per item
 *     (per thread for history), whose value is the change's value with that array reduced to
 *     the one item (contacts[] to the item's contact), and whose contact is the user the item
 *     is about, so the event is keyed by conversation (docs/cloud-api.md §5.4).
 * Items that cannot become an event (not an object; a message without a string "id"; a status
 * without "id" or "status") are skipped and counted in wa_webhook_batch.malformed: one bad item
 * never costs the others. The raw body stays the record of everything (webhook.raw).
 *
 * Values jansson refuses do not cost the batch either. When the body does not parse, a repaired
 * copy is parsed instead: in strings, "\u0000", lone surrogate escapes and invalid UTF-8
 * bytes become U+FFFD and raw control bytes are escaped; integers past int64 become strings
 * holding Meta's digits exactly. The events whose item holds a repaired string carry
 * repaired = true (U+FFFD is how they are recognised) and wa_webhook_batch.repaired counts the
 * repairs. Reals are kept as doubles; wa_json_write prints them as sent (wa/json.h).
 *
 * Pure: no I/O, no global state, thread-safe on distinct batches. wa-ingest and wa-router's
 * --replay use it; the contract library (wa/contract.h) turns events into the topics' data.
 *
 * Ownership: the batch owns the parsed document; every pointer in an event (strings and json_t)
 * is borrowed from it and valid until wa_webhook_batch_cleanup().
 */
#ifndef WA_WHATSAPP_WEBHOOK_H
#define WA_WHATSAPP_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/err.h"
#include "wa/json.h"

/* Largest body Meta sends (3 MB) rounded up to 3 MiB: the default maximum of wa-ingest. */
#define WA_WEBHOOK_MAX_BODY (3u * 1024u * 1024u)
/* JSON nesting accepted; Meta's payloads nest about 8 deep (interactive nfm_reply, contacts). */
#define WA_WEBHOOK_MAX_DEPTH 32

enum wa_webhook_kind {
    WA_WEBHOOK_MESSAGE, /* topic inbound.message */
    WA_WEBHOOK_STATUS,  /* topic inbound.status */
    WA_WEBHOOK_ACCOUNT, /* topic account.event */
};

/*
 * One update. Strings are NULL when Meta did not send them (never "" for absent).
 * contact is the conversation's other party: for messages "from" (the wa_id) or, for users
 * known only by a business-scoped user id, "from_user_id"; for statuses "recipient_id" or
 * "recipient_user_id" (an empty string counts as absent); for account events split per item,
 * the item's user; NULL for other account events.
 */
struct wa_webhook_event {
    enum wa_webhook_kind kind;
    const char *waba_id;              /* entry[].id */
    const char *field;                /* changes[].field */
    const char *phone_number_id;      /* value.metadata.phone_number_id */
    const char *display_phone_number; /* value.metadata.display_phone_number */
    const char *contact;              /* see above */
    const char *id;                   /* wamid (messages, statuses); NULL for account events */
    const char *status;               /* statuses: sent, delivered, read, failed, played, ... */
    const char *type;                 /* messages: message type; account: value.event, or "error" */
    int64_t timestamp;       /* message/status "timestamp" or entry "time"; -1 when absent */
    const json_t *item;      /* the message, status, error object, or the change's value */
    const json_t *profile;   /* messages: the matching value.contacts[] item, else NULL */
    const char *participant; /* group statuses: recipient_participant_id, else NULL */
    bool repaired;           /* the item holds a string repaired as described above */
};

/* The events of one body. Caller's storage; zero-initialise or use wa_webhook_batch_init. */
struct wa_webhook_batch {
    json_t *root;                    /* owned */
    struct wa_webhook_event *events; /* owned array */
    size_t count;
    size_t cap;
    size_t malformed; /* items skipped (see the header comment) */
    size_t repaired;  /* values repaired before parsing (see the header comment) */
    json_t *made;     /* owned: the per-item values built for array-carrying fields */
};

void wa_webhook_batch_init(struct wa_webhook_batch *batch);
/* Frees the document and the events; batch may be reused after. Accepts NULL. */
void wa_webhook_batch_cleanup(struct wa_webhook_batch *batch);

/*
 * Parses len bytes of body and appends its events to batch (which must be initialised and
 * empty). Returns WA_OK (possibly with zero events), WA_EPARSE for a body that is not JSON or not
 * a webhook (top level not an object, "entry" missing or not an array), WA_ELIMIT for JSON
 * nested deeper than WA_WEBHOOK_MAX_DEPTH, WA_ENOMEM. On error the batch is left empty. A body
 * that is JSON but for values jansson refuses is repaired (see above), not refused.
 * body is borrowed (copied by the parser).
 */
enum wa_err wa_webhook_split(const char *body, size_t len, struct wa_webhook_batch *batch,
                             struct wa_error *error);

/*
 * Parses Meta's Unix-seconds timestamp, sent as a string ("1603087229") or a number.
 * Returns -1 when v is NULL or not a non-negative integer.
 */
int64_t wa_webhook_timestamp(const json_t *v);

#endif
