/*
 * cloudsim.h: shared declarations of wa-cloudsim, the WhatsApp Cloud API simulator.
 *
 * Flow of a send (files in reading order):
 *   graph.c    POST /{ver}/{phone_number_id}/messages: auth, number, faults, validation
 *              (libs/whatsapp), policies, template registry, success body; records the message.
 *   policy.c   the per-number throughput bucket, the pair limiter, 24 h windows, user flags.
 *   templates.c the template registry (JSON file or built-in defaults).
 *   state.c    the simulator state: configuration views, hash map, message history ring,
 *              wamid generation, statistics.
 *   webhooks.c status events (sent/delivered/read/failed) and inbound messages scheduled on a
 *              heap, batched into signed webhook POSTs to WA_WEBHOOK_URL, retried with growing
 *              delays until WA_SIM_WEBHOOK_RETRY_MAX_AGE.
 *   media.c    upload (multipart), GET /{media_id} -> short-lived URL, download with bearer.
 *   control.c  /_sim/ endpoints: inbound, messages, stats, faults, users, templates, reset.
 *   faults.c   injected errors, latency, 5xx, hangs and dropped connections.
 *
 * Threading: everything runs on the loop thread. Ownership: struct cs_sim owns every module's
 * state; modules borrow it.
 */
#ifndef CLOUDSIM_H
#define CLOUDSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/buf.h"
#include "wa/crypto.h"
#include "wa/err.h"
#include "wa/httpd.h"
#include "wa/json.h"
#include "wa/loop.h"
#include "wa/rest.h"
#include "wa/service.h"
#include "wa/whatsapp_errors.h"
#include "wa/whatsapp_message.h"

/* ---- configuration (filled by main.c's spec table) ---- */
struct cs_config {
    struct wa_common_config common;
    char *access_tokens;    /* comma-separated; "token" or "phone_id=token" */
    char *phone_number_ids; /* comma-separated; the first is the sandbox number */
    char *display_number;   /* of the first number; others get +1555000000N */
    char *waba_id;
    char *app_secret;
    char *webhook_url; /* "" disables delivery */
    char *public_url;  /* base of media URLs; "" = http://<WA_LISTEN> */
    char *templates;   /* path of the registry JSON; "" = built-in */
    bool limits;       /* master switch of throughput, pair and window policies */
    int64_t mps;
    int64_t pair_burst;
    int64_t pair_interval_ms;
    bool window_enforce;
    bool window_sync;
    int64_t window_ms;
    int64_t throttle_status; /* HTTP status of 130429 / 131056 (400 or 429) */
    char *undeliverable;     /* comma-separated wa_ids -> 131026 */
    char *marketing_stopped; /* comma-separated wa_ids -> 131050 for marketing templates */
    int64_t sent_delay_ms;
    int64_t delivered_delay_ms;
    int64_t read_delay_ms;
    int64_t delivered_pct;
    int64_t read_pct;
    int64_t duplicate_pct;
    int64_t reorder_pct;
    int64_t batch_max;
    int64_t flush_ms;
    int64_t retry_base_ms;
    int64_t retry_max_age_ms;
    int64_t webhook_concurrency;
    int64_t webhook_timeout_ms;
    int64_t webhook_queue_max;
    int64_t history;
    int64_t media_url_ttl_ms;
    int64_t media_max_total;
};

/* ---- state.c: a string-keyed hash map (keys copied, values borrowed or owned by the user) ---- */
struct cs_map_entry {
    struct cs_map_entry *next;
    uint64_t hash;
    void *value;
    char key[]; /* NUL-terminated */
};

struct cs_map {
    struct cs_map_entry **slots;
    size_t nslots; /* power of two */
    size_t count;
};

void cs_map_init(struct cs_map *m);
/* Calls free_value (may be NULL) on each value, then frees the map's memory. */
void cs_map_cleanup(struct cs_map *m, void (*free_value)(void *));
void *cs_map_get(const struct cs_map *m, const char *key);
/* Inserts or replaces; returns the previous value (or NULL). WA_ENOMEM leaves m unchanged. */
enum wa_err cs_map_put(struct cs_map *m, const char *key, void *value, void **old);
/* Removes key; returns its value or NULL. */
void *cs_map_del(struct cs_map *m, const char *key);

/* ---- policy.c ---- */
struct cs_bucket {
    double tokens;
    double capacity;
    double per_ms; /* refill rate */
    uint64_t last_ms;
};

void cs_bucket_init(struct cs_bucket *b, double capacity, double per_second, uint64_t now_ms);
/* Takes one token if available at now_ms. */
bool cs_bucket_take(struct cs_bucket *b, uint64_t now_ms);

#define CS_USER_UNDELIVERABLE 0x1u
#define CS_USER_NO_MARKETING  0x2u

/* Per (number, user) conversation state. */
struct cs_user {
    uint64_t last_inbound_wall_ms; /* 0 = never wrote: window closed */
    struct cs_bucket pair;
    bool pair_init;
};

/* ---- templates.c ---- */
struct cs_template {
    char name[WA_WHATSAPP_TEMPLATE_NAME_MAX + 1];
    char language[17];
    char category[24]; /* MARKETING, UTILITY, AUTHENTICATION */
    char status[24];   /* APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ... */
    int64_t header_params;
    int64_t body_params;
    int64_t button_params;
    bool paced;       /* answered with message_status "held_for_quality_assessment" */
    char id[24];      /* Graph id, stable: derived from name and language */
    char *components; /* JSON text of the components given at creation, or NULL */
};

struct cs_templates {
    struct cs_map by_key; /* "name\nlanguage" -> struct cs_template * (owned) */
};

/* Loads path (NULL or "" = built-in registry) into t. */
enum wa_err cs_templates_load(struct cs_templates *t, const char *path, struct wa_error *error);
/* Adds or replaces one template described by a registry JSON object. */
enum wa_err cs_templates_put_json(struct cs_templates *t, const json_t *obj,
                                  struct wa_error *error);
const struct cs_template *cs_templates_find(const struct cs_templates *t, const char *name,
                                            const char *language);
void cs_templates_cleanup(struct cs_templates *t);
/* Appends the registry as a JSON array to out. */
enum wa_err cs_templates_json(const struct cs_templates *t, struct wa_buf *out);
/* The template (name, language), writable, or NULL. */
struct cs_template *cs_templates_get(struct cs_templates *t, const char *name,
                                     const char *language);
/* Deletes the templates named name (every language; only the one with Graph id hsm_id when
 * hsm_id is not NULL). Returns how many were deleted. */
size_t cs_templates_delete(struct cs_templates *t, const char *name, const char *hsm_id);

/*
 * Checks a template send against the registry: returns 0 when it may be sent, else the Meta
 * code (132001 missing/not approved, 132015 paused, 132016 disabled, 132000 parameter count)
 * with details in details (size n). *tpl_out receives the template when found.
 */
int64_t cs_templates_check(const struct cs_templates *t, const struct wa_whatsapp_send *send,
                           const struct cs_template **tpl_out, char *details, size_t n);

/* ---- state.c: numbers, history, stats ---- */
struct cs_number {
    char *id;
    char *display; /* digits, no '+' (as in webhook metadata) */
    char *token;   /* per-number token or NULL */
    struct cs_bucket bucket;
};

#define CS_WAMID_MAX 96

enum cs_status { CS_ST_ACCEPTED, CS_ST_SENT, CS_ST_DELIVERED, CS_ST_READ, CS_ST_FAILED };

struct cs_record {
    char wamid[CS_WAMID_MAX];
    char wa_id[WA_WHATSAPP_WA_ID_MAX + 1]; /* "" for a send to a BSUID (then to is the BSUID) */
    char *to;                              /* as sent */
    char *type;                            /* message type */
    char *body;                            /* the request body, verbatim */
    char *biz;                             /* biz_opaque_callback_data or NULL */
    size_t number;
    uint64_t time_ms; /* wall */
    enum cs_status status;
    int64_t error_code; /* with CS_ST_FAILED */
    int version;        /* Graph API major version of the send (21 for v21.0; 0 unknown) */
    bool group;         /* sent to a group: to is the group id */
    bool free_window;   /* a utility template inside an open window: free_customer_service */
};

struct cs_stats {
    uint64_t requests;
    uint64_t accepted;
    uint64_t rejected;
    uint64_t by_type[WA_WHATSAPP_MSG__COUNT];
    uint64_t inbound;
    uint64_t media_uploads;
    uint64_t async_failed;
    uint64_t webhooks_sent;         /* POSTs answered 200 */
    uint64_t webhook_attempts;      /* POSTs made */
    uint64_t webhook_failures;      /* non-200 or transport errors */
    uint64_t webhooks_dropped;      /* gave up after max age or queue full */
    uint64_t events;                /* status/inbound updates emitted */
    struct cs_map rejected_by_code; /* "130429" -> (uintptr_t) count */
};

struct cs_webhooks;
struct cs_media;
struct cs_faults;

struct cs_sim {
    const struct cs_config *cfg;
    struct wa_loop *loop;
    struct wa_service *svc; /* NULL in tests that build the state alone */
    char **tokens;          /* global tokens */
    size_t ntokens;
    struct cs_number *numbers;
    size_t nnumbers;
    struct cs_map users; /* "<number index>:<wa_id>" -> struct cs_user * (owned) */
    struct cs_map flags; /* wa_id -> (uintptr_t) CS_USER_* flags */
    struct cs_templates templates;
    struct cs_record *ring; /* history, cfg->history slots */
    size_t ring_cap, ring_head, ring_len;
    struct cs_map by_wamid; /* wamid -> struct cs_record * in ring (borrowed) */
    struct cs_map inbound;  /* wamid of a user's message -> (uintptr_t) number index + 1 */
    struct cs_map groups;   /* group id -> json_t array of participant wa_ids (owned) */
    struct cs_stats stats;
    uint64_t seq;
    char salt[9];
    struct cs_webhooks *webhooks;
    struct cs_media *media;
    struct cs_faults *faults;
    char public_url[256];
    json_t *profiles; /* business.c: one business profile object per number (owned), or NULL */
    bool subscribed;  /* business.c: the app is subscribed to the WABA's webhooks */
};

/* Builds the state from cfg (borrowed, must outlive sim). loop may be NULL in unit tests. */
enum wa_err cs_sim_init(struct cs_sim *sim, const struct cs_config *cfg, struct wa_loop *loop,
                        struct wa_error *error);
void cs_sim_cleanup(struct cs_sim *sim);
/* Forgets history, windows, buckets, stats and flags back to configuration. */
void cs_sim_reset_state(struct cs_sim *sim);

/* Index of the number with that id, or -1. */
long cs_sim_number(const struct cs_sim *sim, const char *id);
/* True when the Authorization header value carries a token accepted for number (-1: any). */
bool cs_sim_auth(const struct cs_sim *sim, const char *authorization, long number);

/* Writes a new unique wamid for wa_id into out. */
void cs_sim_wamid(struct cs_sim *sim, const char *wa_id, char out[CS_WAMID_MAX]);
/* Records an accepted message (copies strings); returns the record (borrowed) or NULL. */
struct cs_record *cs_sim_record(struct cs_sim *sim, const char *wamid,
                                const struct wa_whatsapp_send *send, const char *body,
                                size_t body_len, size_t number);
struct cs_record *cs_sim_find(const struct cs_sim *sim, const char *wamid);
/* Remembers wamid as a message number received (what mark-as-read may name); at most
 * cfg->history of them, the oldest forgotten wholesale. */
void cs_sim_note_inbound(struct cs_sim *sim, const char *wamid, size_t number);
/* True when wamid is a message number received. */
bool cs_sim_is_inbound(const struct cs_sim *sim, const char *wamid, size_t number);
/* Adds wa_id to the participants of group (statuses of a group send: one per participant). */
enum wa_err cs_sim_group_join(struct cs_sim *sim, const char *group, const char *wa_id);
/* The participants of group (a JSON array of wa_ids, borrowed) or NULL. */
const json_t *cs_sim_group(const struct cs_sim *sim, const char *group);
void cs_sim_count_rejected(struct cs_sim *sim, int64_t code);
const char *cs_status_name(enum cs_status st);

/* ---- policy.c ---- */
/* The user's state for (number, wa_id), created on first use; NULL when out of memory. */
struct cs_user *cs_policy_user(struct cs_sim *sim, size_t number, const char *wa_id);
/* Records an inbound message at wall time now: opens/refreshes the 24 h window. */
void cs_policy_inbound(struct cs_sim *sim, size_t number, const char *wa_id, uint64_t wall_ms);
/* True when the window of (number, wa_id) is open at wall_ms. */
bool cs_policy_window_open(struct cs_sim *sim, size_t number, const char *wa_id, uint64_t wall_ms);
/* Throughput: true when number may send one more message at mono now_ms. */
bool cs_policy_throughput(struct cs_sim *sim, size_t number, uint64_t now_ms);
/* Pair limit: true when number may send one more message to wa_id at mono now_ms. */
bool cs_policy_pair(struct cs_sim *sim, size_t number, const char *wa_id, uint64_t now_ms);
unsigned cs_policy_flags(const struct cs_sim *sim, const char *wa_id);
void cs_policy_set_flags(struct cs_sim *sim, const char *wa_id, unsigned flags);
/* Loads the flag lists of the configuration. */
enum wa_err cs_policy_load_flags(struct cs_sim *sim);

/* ---- webhooks.c ---- */
enum cs_event_kind { CS_EV_STATUS, CS_EV_INBOUND, CS_EV_TEMPLATE };

enum wa_err cs_webhooks_new(struct cs_sim *sim, struct cs_webhooks **out, struct wa_error *error);
void cs_webhooks_free(struct cs_webhooks *w);
/* Drops pending events and deliveries (calls in flight finish and are forgotten). */
void cs_webhooks_reset(struct cs_webhooks *w);
/*
 * Schedules the status lifecycle of an accepted message: sent -> delivered -> read (with the
 * configured delays and probabilities), or one failed status with code when code != 0.
 * category: pricing category ("service", "marketing", ...). Copies everything.
 */
void cs_webhooks_message(struct cs_webhooks *w, const struct cs_record *rec, const char *category,
                         int64_t failed_code, bool reaction);
/* An accepted send that fails later: its statuses up to after (CS_ST_ACCEPTED: none, SENT,
 * DELIVERED) on the usual delays, then `failed` with code, or with value_level a "messages"
 * webhook whose value carries errors[] with code and no status. */
void cs_webhooks_late_failure(struct cs_webhooks *w, const struct cs_record *rec,
                              const char *category, int64_t code, enum cs_status after,
                              bool value_level);
/* Queues an inbound message (the value.messages[0] object and the contact's name) for number. */
enum wa_err cs_webhooks_inbound(struct cs_webhooks *w, size_t number, const json_t *message,
                                const char *wa_id, const char *name);
/*
 * Schedules the review of template (name, language), created PENDING: after delay_ms it
 * becomes APPROVED, or REJECTED (reason INVALID_FORMAT) when its name starts with "reject",
 * and a message_template_status_update webhook says so. Without webhook delivery the verdict
 * is applied at once. Copies name and language.
 */
void cs_webhooks_template_review(struct cs_webhooks *w, const char *name, const char *language,
                                 uint64_t delay_ms);
/* Appends {"pending_events":..,"queued":..,"inflight":..} to out. */
enum wa_err cs_webhooks_stats(const struct cs_webhooks *w, struct wa_buf *out);

/*
 * Builds the webhook body for statuses of one number as ASCII-only JSON (non-ASCII as \u
 * escapes with lowercase hex, the form Meta signs) into out, and its signature into sig.
 * statuses: a JSON array (borrowed). Exposed for tests.
 */
enum wa_err cs_webhooks_build(const struct cs_sim *sim, size_t number, json_t *value_items,
                              const char *items_key, json_t *contacts, struct wa_buf *out,
                              char sig[WA_HUB_SIGNATURE_LEN]);

/* ---- business.c: WABA endpoints (after auth; the router picks by edge) ---- */
/* GET (list), POST (create) or DELETE (?name=[&hsm_id=]) /{ver}/{waba_id}/message_templates. */
void cs_business_templates(struct cs_sim *sim, struct wa_http_req *req);
/* GET /{ver}/{template_id}: true when id names a template (answered), else false. */
bool cs_business_template_by_id(struct cs_sim *sim, struct wa_http_req *req, const char *id);
/* GET /{ver}/{waba_id}/phone_numbers. */
void cs_business_phone_numbers(struct cs_sim *sim, struct wa_http_req *req);
/* GET, POST or DELETE /{ver}/{waba_id}/subscribed_apps. */
void cs_business_subscribed_apps(struct cs_sim *sim, struct wa_http_req *req);
/* GET or POST /{ver}/{phone_number_id}/whatsapp_business_profile. */
void cs_business_profile(struct cs_sim *sim, struct wa_http_req *req, size_t number);

/* ---- media.c ---- */
enum wa_err cs_media_new(struct cs_sim *sim, struct cs_media **out);
void cs_media_free(struct cs_media *m);
void cs_media_reset(struct cs_media *m);
bool cs_media_exists(const struct cs_media *m, const char *id);
/* Stores content; writes the new media id into id_out (size >= 24). Copies data. */
enum wa_err cs_media_store(struct cs_media *m, size_t number, const char *mime, const void *data,
                           size_t len, char *id_out);
size_t cs_media_count(const struct cs_media *m);
void cs_media_upload(struct cs_sim *sim, struct wa_http_req *req, size_t number);
void cs_media_get(struct cs_sim *sim, struct wa_http_req *req, const char *id);
void cs_media_delete(struct cs_sim *sim, struct wa_http_req *req, const char *id);
void on_media_download(struct wa_http_req *req, void *arg);
/* Checks type and size of an upload (data: its bytes, to tell an animated WebP sticker): 0,
 * 100 for a type Meta does not take, or 131053 (empty, too large) with details. */
int64_t cs_media_check(const char *mime, const void *data, size_t len, char *details, size_t n);

/* ---- faults.c ---- */
enum cs_fault_scope { CS_FAULT_MESSAGES, CS_FAULT_MEDIA, CS_FAULT_ALL };

enum wa_err cs_faults_new(struct cs_sim *sim, struct cs_faults **out);
void cs_faults_free(struct cs_faults *f);
void cs_faults_reset(struct cs_faults *f);
/* POST /_sim/faults body -> configured; error text in error. */
enum wa_err cs_faults_set(struct cs_faults *f, const json_t *body, struct wa_error *error);
enum wa_err cs_faults_json(const struct cs_faults *f, struct wa_buf *out);

/*
 * For an accepted send: the code it must fail with later (mode late, counted like the other
 * modes) and in *after the last status webhook before the `failed` one, in *value_level
 * whether the failure is a value-level error instead; 0 when none applies.
 */
int64_t cs_faults_late(struct cs_faults *f, enum cs_status *after, bool *value_level);

/*
 * Middleware (wa/rest.h) of the Graph routes, one per scope (arg: the struct cs_sim): applies
 * the configured fault to a request of that scope: answers it (error, 5xx, drop), holds it
 * (latency, then answers or hands it on from a timer), or hands it on at once.
 */
void cs_faults_mw_messages(struct wa_http_req *req, void *arg);
void cs_faults_mw_media(struct wa_http_req *req, void *arg);

/* ---- graph.c / control.c: routes ---- */
/* The Graph API routes (token check and faults as middleware). Before the server starts. */
enum wa_err cs_graph_routes(struct cs_sim *sim, struct wa_httpd *h, struct wa_error *error);
/* Replies a Graph error with the configured throttle status for throttling codes. */
void cs_reply_graph_error(struct cs_sim *sim, struct wa_http_req *req, int64_t code,
                          int64_t subcode, const char *details);
enum wa_err cs_control_routes(struct cs_sim *sim, struct wa_httpd *h, struct wa_error *error);

#endif
