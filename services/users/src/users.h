/*
 * users.h: wa-users' state and the interfaces between its stages (README.md has the flow and
 * the files in reading order).
 *
 * Pure parts (consent.c: the ledger model, decisions from events, the derived state) take and
 * return plain values and are unit-tested without the daemon (tests/unit/users). The stages
 * (suppress.c, ledger.c, consume.c) run on the loop thread.
 */
#ifndef US_USERS_H
#define US_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/config.h"
#include "wa/contract.h"
#include "wa/err.h"
#include "wa/json.h"
#include "wa/kafka.h"
#include "wa/optout.h"
#include "wa/service.h"

/* ---- consent model (consent.c, pure) ---- */

enum us_category { US_CAT_MARKETING, US_CAT_UTILITY, US_CAT_AUTHENTICATION, US_CAT_SERVICE };
#define US_NCATEGORIES 4
enum us_status { US_OPTED_IN, US_OPTED_OUT };
enum us_source {
    US_SRC_API,
    US_SRC_KEYWORD,
    US_SRC_USER_PREFERENCES,
    US_SRC_META_ERROR,
    US_SRC_IMPORT
};

#define US_ID_MAX    160 /* entry ids, identities, evidence strings (NUL included) */
#define US_SCOPE_ALL "all"

/* One ledger entry. Plain value: every string is an array of its own. */
struct us_entry {
    char id[US_ID_MAX];      /* idempotency key: the same cause gives the same id */
    char contact[US_ID_MAX]; /* the identity the cause named: wa_id digits or BSUID */
    enum us_category category;
    enum us_status status;
    char scope[US_ID_MAX];    /* phone_number_id, or "all" */
    char phone_number_id[64]; /* the business number the cause came through, "" when none */
    enum us_source source;
    char evidence_wamid[US_ID_MAX];   /* "" when none */
    char evidence_command[US_ID_MAX]; /* contact.command id, "" when none */
    int64_t evidence_code;            /* Cloud API error code, 0 when none */
    int64_t at_ms;                    /* when the customer or Meta said so (ms since epoch) */
};

/* Static names ("marketing", "opted_out", "keyword", ...). */
const char *us_category_name(enum us_category c);
const char *us_status_name(enum us_status s);
const char *us_source_name(enum us_source s);
/* Parse a name. WA_EPARSE when unknown. */
enum wa_err us_category_parse(const char *s, enum us_category *out);
enum wa_err us_status_parse(const char *s, enum us_status *out);
enum wa_err us_source_parse(const char *s, enum us_source *out);

/*
 * The ledger entries an event asks for, written into out[0..*n) (at most max). Zero entries is
 * a valid answer (a tag command, a delivered status, another account field). WA_EPARSE (error
 * names the field) when the event is not of its topic's shape.
 */
enum wa_err us_decide_command(const json_t *data, int64_t event_ms, struct us_entry *out,
                              size_t max, size_t *n, struct wa_error *error);
enum wa_err us_decide_status(const json_t *data, int64_t event_ms, struct us_entry *out, size_t max,
                             size_t *n, struct wa_error *error);
enum wa_err us_decide_account(const json_t *data, int64_t event_ms, struct us_entry *out,
                              size_t max, size_t *n, struct wa_error *error);

/* An entry as a ledger document ({_id, contact, category, ...}). New reference or NULL (ENOMEM). */
json_t *us_entry_doc(const struct us_entry *e, const char *contact_id, int64_t recorded_ms);

/* The current state of one category, derived from its ledger. */
struct us_consent_state {
    bool known;            /* at least one entry with scope "all" */
    enum us_status status; /* the latest entry's (by at, then recorded) */
    int64_t at_ms;
    enum us_source source;
};

/*
 * Derives the state of category from ledger documents (an array, any order; entries of other
 * categories or a narrower scope are ignored for the global state). Pure.
 */
void us_consent_derive(const json_t *ledger, enum us_category category,
                       struct us_consent_state *out);

/* True when a message of category must not be sent under the marketing state st: only
 * marketing is muted by a marketing opt-out (authentication, utility and service never). */
bool us_consent_blocks(const struct us_consent_state *marketing, enum us_category category);

/*
 * The contact document id of an identity: "+<digits>" for a wa_id / phone, the BSUID as is.
 * WA_EINVAL when identity is neither (empty, too long, other characters).
 */
enum wa_err us_contact_id(const char *identity, char *out, size_t size);
/* The suppression-key identity of a contact id: digits without '+' for phones, BSUID as is. */
const char *us_key_identity(const char *contact_id);

/* ---- profile events (contact.c, pure) ---- */

/* What an inbound.message asks of its contact. Plain value. */
struct us_inbound {
    char contact_id[US_ID_MAX]; /* "+<digits>" (from) or the BSUID when no number */
    char bsuid[US_ID_MAX];      /* the BSUID beside a number, "" when none */
    char wamid[US_ID_MAX];      /* counted once: the idempotency key of unread_count += 1 */
    char profile_name[256];
    char phone_number_id[64];
    int64_t at_ms; /* the message's time: last_interaction_at only moves forward */
};

/* Decodes an inbound.message. WA_EPARSE (error names the field) when it is not one. */
enum wa_err us_decide_inbound(const json_t *data, int64_t event_ms, struct us_inbound *out,
                              struct wa_error *error);
/*
 * The contact an outbound.result answered (status accepted, "to" a number), into contact_id;
 * "" when the result resets nothing (failed, BSUID recipient). WA_EPARSE for a malformed result.
 */
enum wa_err us_decide_result(const json_t *data, char *contact_id, size_t size,
                             struct wa_error *error);

/* ---- the contact document and REST bodies (contact.c, pure) ---- */

#define US_TAGS_MAX        50
#define US_ATTRIBUTES_MAX  16384 /* bytes of compact JSON */
#define US_BODY_ERRORS_MAX 16

/*
 * Canonical E.164 "+<digits>" from a number as people write it: spaces, dashes, dots and
 * parentheses ignored; "+" or the international prefix "00" optional (a number without either
 * is taken as already international: country code first). At most 15 digits, a known calling
 * code, and a national number whose length and leading digits its country allows
 * (us_phone_check). WA_EINVAL otherwise ("+12ab", "+999123").
 */
enum wa_err us_phone_canonical(const char *in, char *out, size_t size);

/* ---- per-country phone rules (phone.c over the generated phone_table.c, pure) ---- */

#define US_PHONE_PREFIX_MAX 4 /* leading digits a rule checks at most (the generator's DEPTH) */
struct us_phone_rule {
    uint16_t cc;                          /* country calling code */
    char prefix[US_PHONE_PREFIX_MAX + 1]; /* leading digits of the national number, "" = any */
    uint32_t lengths;                     /* bit n: a national number of n digits is valid */
};
extern const struct us_phone_rule us_phone_rules[]; /* sorted by (cc, prefix) */
extern const size_t us_phone_nrules;
extern const char us_phone_metadata[]; /* the metadata it was generated from */
/*
 * WA_OK when digits (an international number without '+': calling code first, digits only)
 * has a known calling code and a national number whose length its longest matching rule
 * allows; WA_EINVAL otherwise, *why (optional) a static sentence.
 */
enum wa_err us_phone_check(const char *digits, const char **why);
/* The contact id of a REST path parameter: a BSUID as is, else us_phone_canonical. */
enum wa_err us_contact_path_id(const char *param, char *out, size_t size);

struct us_field_error {
    char pointer[80]; /* JSON pointer into the body, "" for the whole body */
    char detail[160];
};
struct us_body_check {
    struct us_field_error errors[US_BODY_ERRORS_MAX];
    size_t n; /* 0: valid */
};
/*
 * Validates a PUT (patch false) or a JSON merge patch (patch true; null removes a field) body
 * of a contact: the writable fields name, order_status, priority (high|medium|low), language
 * (BCP 47), tags (a set of at most 50 short strings), attributes (an object of at most 16 KiB),
 * last_interaction_at (RFC 3339). unread_count, identities, timestamps and consent are refused,
 * unknown keys too. Every violation is reported with its JSON pointer.
 */
void us_contact_body_check(const json_t *body, bool patch, struct us_body_check *c);
/* The MongoDB update of a checked body: $set of the given fields (and updated_at = now), $unset
 * of the fields a PUT leaves out or a patch sets to null. New reference in *update. */
enum wa_err us_contact_update(const json_t *body, bool patch, const char *now, json_t **update);
/* A contacts document as the API shows it ("id" instead of "_id", internal fields dropped).
 * New reference or NULL. */
json_t *us_contact_render(const json_t *doc);

/* ---- the daemon ---- */

struct us_config {
    struct wa_common_config common;
    char *group;
    int64_t retry_ms;
    int64_t max_in_flight;
    int64_t cache_ttl_ms; /* 0: no cache */
    char *cache_secret;
    char *optout_key; /* WA_OPTOUT_KEY: names <p>optout:<hash> (wa/optout.h) */
};
extern const struct wa_cfg_spec us_config_spec[];
extern const size_t us_config_nspec;

struct us_metrics {
    struct wa_counter *consumed, *applied, *ignored, *invalid, *failures, *entries, *duplicates,
        *keys_set, *keys_deleted;
    struct wa_histogram *latency;
};

/* a queued event (consume.c) */
struct us_work;

struct us {
    struct wa_service *svc;
    const struct us_config *cfg;
    struct wa_loop *loop;
    struct wa_kafka_producer *producer;
    struct wa_kv *kv;
    struct wa_mongo *mongo;
    struct wa_kv_cache *cache; /* NULL when disabled (cache.c) */
    struct wa_kafka_consumer *consumer;
    char prefix[128];
    struct wa_optout *optout; /* the opt-out keys' names and hashes (suppress.c) */
    char topic_command[192], topic_status[192], topic_account[192], topic_event[192],
        topic_inbound[192], topic_result[192];
    struct us_metrics m;
    bool rebuilt; /* the suppression keys were rebuilt from MongoDB (readiness) */
    size_t inflight;
    struct us_work *head, *tail; /* the queue: one event at a time (consume.c) */
    struct wa_timer *retry;
    void *rebuild; /* suppress.c's rebuild while it runs */
};

/* health.c */
enum wa_err us_health_start(struct us *us, struct wa_error *error);

/* suppress.c: the suppressions documents and <p>optout:<h> keys (wa/optout.h). */
enum wa_err us_suppress_rebuild_start(struct us *us, struct wa_error *error);
/* POST /v1/admin/suppression/rebuild: the same rebuild on demand (us_rest_start adds it). */
enum wa_err us_suppress_routes(struct us *us, struct wa_error *error);
void us_suppress_stop(struct us *us);
typedef void (*us_done_fn)(void *arg, enum wa_err err);
/* For every identity of contact (a contact document): upserts (opted_out) or deletes its
 * suppressions document, then SETs or DELs its key. cb once, later, on the loop thread. */
enum wa_err us_suppress_apply(struct us *us, const json_t *contact, bool opted_out, us_done_fn cb,
                              void *arg);

/*
 * events.c: produces contact.event kind for contact_id with the caller's fields (a new
 * reference, taken; NULL: none) plus event_id, kind, contact and identity. Same contract as
 * wa_kafka_produce_event (cb once on success; an error returned: cb never called).
 */
/*
 * events.c: contact.event "created" (upserted) or "changed" for a contact written through the
 * API (PUT, PATCH, an import line): {"fields": [the names written, identities and consent
 * left out]} from body (borrowed). Event id "api:<cause>", cause = the request id (and the
 * import line), so a retried request gives the same id. Contract of us_event_produce.
 */
enum wa_err us_event_written(struct us *us, const char *cause, const char *contact_id, bool created,
                             const json_t *body, wa_kafka_delivery_fn cb, void *arg);
enum wa_err us_event_produce(struct us *us, const char *id, const char *kind,
                             const char *contact_id, const char *phone_number_id, json_t *fields,
                             wa_kafka_delivery_fn cb, void *arg);

/* profile.c: an inbound message upserts its contact and counts it unread once (by wamid); a
 * reply accepted by the Cloud API sets unread back to 0. cb once, on the loop thread. */
enum wa_err us_profile_inbound(struct us *us, const struct us_inbound *in, us_done_fn cb,
                               void *arg);
enum wa_err us_profile_replied(struct us *us, const char *contact_id, us_done_fn cb, void *arg);

/* ledger.c: one entry applied: contact resolved, entry appended, state derived and stored,
 * keys written, contact.event produced. cb once, on the loop thread. */
enum wa_err us_ledger_apply(struct us *us, const struct us_entry *e, us_done_fn cb, void *arg);

/*
 * cache.c: the read-through cache of GET /v1/contacts/{id}. us_cache_get answers the contact as
 * rendered JSON (cb as wa_kv_cache_get's; WA_ENOTFOUND for an unknown contact). Call
 * us_cache_invalidate after every acknowledged change of a contact document; cb NULL: fire and
 * forget (a failure is logged). With the cache disabled it returns WA_ENOTFOUND when cb is set
 * (and never calls it), WA_OK otherwise.
 */
struct wa_kv_cache;
enum wa_err us_cache_start(struct us *us, struct wa_error *error);
void us_cache_stop(struct us *us);
enum wa_err us_cache_get(struct us *us, const char *contact_id,
                         void (*cb)(void *arg, enum wa_err err, const char *json, size_t len,
                                    bool hit),
                         void *arg);
enum wa_err us_cache_invalidate(struct us *us, const char *contact_id, us_done_fn cb, void *arg);

/* rest.c: the contacts API routes (before the listener starts). */
enum wa_err us_rest_start(struct us *us, struct wa_error *error);
/* import.c: the POST /v1/contacts/import route (us_rest_start adds it). */
enum wa_err us_import_start(struct us *us, struct wa_error *error);

/* migrate.c: collections and indexes (idempotent); `wa-users migrate` runs us_migrate_main. */
enum wa_err us_migrate_start(struct wa_mongo *mongo, us_done_fn cb, void *arg);
int us_migrate_main(void);

/* consume.c */
enum wa_err us_consume_start(struct us *us, struct wa_error *error);
/* Registers the "consumer" readiness probe (true once the consumer runs and reaches Kafka). */
enum wa_err us_consume_probe(struct us *us, struct wa_error *error);
/* True while an event is being applied or queued (SIGTERM waits for them). */
bool us_consume_busy(const struct us *us);
void us_consume_stop(struct us *us);

/* Mongo collections (docs/architecture.md "Shared state contracts"). */
#define US_COLL_CONTACTS "contacts"
#define US_COLL_CONSENT  "consent_ledger"
/* {_id: the opt-out hash of an identity (wa/optout.h), at}: one per opted-out identity, kept
 * after the contact's erasure (suppress.c) */
#define US_COLL_SUPPRESSIONS "suppressions"

#endif
