/*
 * gateway.h: wa-gateway's state and the interfaces between its stages (README.md has the flow
 * and the files in reading order).
 *
 * Pure parts (apikey.c: key format, hashing, scopes, key records; gcra.c: the rate limiter's
 * arithmetic; message.c: the POST /v1/messages body, the outbound.request it becomes and the
 * idempotency decisions) take and return plain values and are unit-tested without the daemon
 * (tests/unit/gateway). The stages (api.c, auth.c, limit.c, idempotency.c, publish.c, admin.c)
 * run on the loop thread.
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/config.h"
#include "wa/crypto.h"
#include "wa/err.h"
#include "wa/rest.h"
#include "wa/json.h"
#include "wa/list.h"
#include "wa/log.h"
#include "wa/service.h"

/* ---- API keys (apikey.c, pure) ---- */

/* wab_<id>_<secret>: id 16 lowercase hex digits (8 random bytes, public: the MongoDB _id),
 * secret 64 lowercase hex digits (32 random bytes, stored only as HMAC-SHA256(pepper, secret)). */
#define GW_KEY_PREFIX     "wab_"
#define GW_KEY_ID_HEX     16
#define GW_KEY_SECRET_HEX 64
#define GW_KEY_LEN        (4 + GW_KEY_ID_HEX + 1 + GW_KEY_SECRET_HEX) /* without the NUL */
#define GW_HASH_HEX       64

enum gw_scope {
    GW_SCOPE_MESSAGES_SEND = 1u << 0,
    GW_SCOPE_MESSAGES_READ = 1u << 1,
    GW_SCOPE_CONTACTS_READ = 1u << 2,
    GW_SCOPE_CONTACTS_WRITE = 1u << 3,
    GW_SCOPE_ANALYTICS_READ = 1u << 4,
    GW_SCOPE_ADMIN = 1u << 5,
};
#define GW_SCOPES_ALL 0x3fu

/* The parts of a presented key. Plain value. */
struct gw_key_parts {
    char id[GW_KEY_ID_HEX + 1];
    char secret[GW_KEY_SECRET_HEX + 1];
};

/* Splits token (the Bearer credential) into id and secret. WA_EAUTH when it is not exactly
 * wab_<16 lowercase hex>_<64 lowercase hex>. Pure. */
enum wa_err gw_apikey_parse(const char *token, struct gw_key_parts *out);
/* A new random key: parts and the whole key text (key: GW_KEY_LEN + 1 bytes). */
enum wa_err gw_apikey_generate(struct gw_key_parts *out, char key[GW_KEY_LEN + 1]);
/* HMAC-SHA256(pepper, secret) as 64 lowercase hex digits and a NUL. */
void gw_apikey_hash(struct wa_hmac *pepper, const char *secret, char out[GW_HASH_HEX + 1]);

/* Static name of one scope bit ("messages:send"), NULL for another value. */
const char *gw_scope_name(unsigned bit);
/* Parses "messages:send,contacts:read" (commas or spaces; "all" = every scope) into *out.
 * WA_EINVAL with the unknown name copied into bad (may be NULL) when one is not a scope. */
enum wa_err gw_scopes_parse(const char *list, unsigned *out, char *bad, size_t badsize);
/* Parses a JSON array of scope names. WA_EINVAL (bad as above) for another value. */
enum wa_err gw_scopes_from_json(const json_t *arr, unsigned *out, char *bad, size_t badsize);
/* The known scopes named by a token's claim: a space-separated string or an array of strings;
 * other names ("openid", ...) are ignored. */
unsigned gw_scopes_from_claim(const json_t *claim);
/* The scopes as a JSON array of names. New reference or NULL. */
json_t *gw_scopes_to_json(unsigned scopes);

/* One stored key (MongoDB api_keys document, the Redis cache entry). Plain value. */
struct gw_key_record {
    char id[GW_KEY_ID_HEX + 1];
    char hash[GW_HASH_HEX + 1];
    char name[128];
    unsigned scopes;
    int64_t rate_per_min; /* 0: the configured default */
    int64_t burst;        /* 0: the default for the rate */
    int64_t created_ms;
    int64_t expires_ms; /* 0: never */
    int64_t revoked_ms; /* 0: not revoked */
};

/* Reads a record from an api_keys document or a cache entry. WA_EPARSE when a field is
 * missing or malformed. Pure. */
enum wa_err gw_key_record_from_json(const json_t *doc, struct gw_key_record *out);
/* The api_keys document (also the cache entry): {_id, key_hash, name, scopes, rate_per_min,
 * burst, created_at, expires_at, revoked_at}. New reference or NULL. */
json_t *gw_key_record_to_json(const struct gw_key_record *rec);
/* The key as the admin API shows it: the document without key_hash, "id" for "_id". */
json_t *gw_key_record_render(const struct gw_key_record *rec);

enum gw_key_verdict { GW_KEY_OK, GW_KEY_BAD_SECRET, GW_KEY_EXPIRED, GW_KEY_REVOKED };
/* Checks secret against rec (HMAC under pepper, compared in constant time), then revocation
 * and expiry at now_ms. rec NULL (unknown id): the HMAC is still computed, BAD_SECRET. */
enum gw_key_verdict gw_key_verify(const struct gw_key_record *rec, struct wa_hmac *pepper,
                                  const char *secret, int64_t now_ms);

/* ---- GCRA rate limiting (gcra.c, pure) ---- */

/* A limit of rate_per_min requests per minute with burst requests at once. Plain value. */
struct gw_gcra_policy {
    int64_t limit;       /* requests per window (RateLimit-Policy q) */
    int64_t window_s;    /* 60 */
    int64_t interval_us; /* emission interval T = 60 s / rate */
    int64_t tau_us;      /* burst tolerance T * (burst - 1) */
};
/* burst 0: rate / 10 (at least 1): a fresh key admits at most 110 % of the rate in its first
 * minute. rate_per_min >= 1. */
void gw_gcra_policy_init(struct gw_gcra_policy *p, int64_t rate_per_min, int64_t burst);

struct gw_gcra_result {
    bool allowed;
    int64_t remaining;      /* requests admitted at once after this one */
    int64_t retry_after_us; /* rejected: when one will be admitted */
    int64_t reset_us;       /* until the whole burst is available again */
};
/* One request at now_us against the theoretical arrival time *tat_us (0: none yet), which is
 * advanced only when the request is admitted: rejected requests consume nothing. Pure; the
 * Redis script in limit.c is the same arithmetic. */
void gw_gcra_take(const struct gw_gcra_policy *p, int64_t *tat_us, int64_t now_us,
                  struct gw_gcra_result *out);

/* Process-local limiter (Redis down): a fixed table of theoretical arrival times by key hash. */
#define GW_LOCAL_SLOTS 4096
struct gw_local_limiter {
    uint64_t hash[GW_LOCAL_SLOTS];
    int64_t tat[GW_LOCAL_SLOTS];
};
/* gw_gcra_take on the slot of key (a colliding key takes the slot over). */
void gw_local_take(struct gw_local_limiter *l, const char *key, const struct gw_gcra_policy *p,
                   int64_t now_us, struct gw_gcra_result *out);

/* ---- POST /v1/messages bodies (message.c, pure) ---- */

#define GW_FIELD_ERRORS_MAX 16

struct gw_field_error {
    char pointer[64];
    char detail[256];
};
struct gw_body_check {
    struct gw_field_error errors[GW_FIELD_ERRORS_MAX];
    size_t n; /* 0: valid */
};

/*
 * Checks a POST /v1/messages body and builds the outbound.request data for it. Every invalid
 * top-level field is reported with its JSON pointer; the type's body is checked with
 * libs/whatsapp's Cloud API rules (its first problem, with Meta's wording). On success (c->n
 * == 0) *data is a new reference (request_id set to request_id, phone_number_id defaulted to
 * default_pnid) and wa_id holds the recipient's digits (the conversation key's contact).
 */
void gw_message_check(const json_t *body, const char *request_id, const char *default_pnid,
                      struct gw_body_check *c, json_t **data, char *wa_id, size_t wa_id_size);

/* The fingerprint of a body for idempotency: SHA-256 hex of its canonical JSON (sorted keys,
 * compact), so the same document in another key order or spacing is the same request. */
void gw_body_fingerprint(const json_t *body, char out[2 * WA_SHA256_LEN + 1]);

/* An Idempotency-Key header value: 1..255 visible ASCII characters. */
bool gw_idempotency_key_valid(const char *key);
/* The request_id of an idempotent request: "idk_" + 40 hex digits of SHA-256(principal ":"
 * key), the same on every replica and after Redis lost the record (wa-notify sends a
 * request_id once). out: at least 45 bytes. */
void gw_idempotency_request_id(const char *principal, const char *key, char *out, size_t size);

enum gw_idem_decision {
    GW_IDEM_NEW,         /* claimed: process it */
    GW_IDEM_REPLAY,      /* done with the same body: answer the stored response */
    GW_IDEM_IN_PROGRESS, /* pending with the same body: 409 */
    GW_IDEM_MISMATCH,    /* another body under the same key: 422 */
};
/* What a claim's answer means. state "new" (claimed), "pending" or "done"; stored_fp the
 * record's body fingerprint. */
enum gw_idem_decision gw_idem_decide(const char *state, const char *stored_fp, const char *fp);

/* A POST /v1/business-profile body against the Cloud API's rules (about <= 139 characters,
 * address 256, description 512, email 128, websites at most 2 http(s) URLs, vertical one of
 * Meta's categories, no other field), every violation named. */
void gw_profile_check(const json_t *body, struct gw_body_check *c);

/* ---- click-to-chat links (message.c, pure) ---- */

#define GW_LINK_TEXT_MAX 1024 /* characters of prefilled text */
#define GW_LINK_URL_MAX  (32 + 3 * 4 * GW_LINK_TEXT_MAX)
/* https://wa.me/<digits>[?text=<percent-encoded UTF-8>] of phone (any form
 * wa_whatsapp_wa_id_from_to takes) into out. WA_EINVAL for the phone, WA_ETOOBIG for a text
 * over GW_LINK_TEXT_MAX characters or out too small. */
enum wa_err gw_click_to_chat_url(const char *phone, const char *text, char *out, size_t size);

/* ---- the daemon ---- */

struct gw_config {
    struct wa_common_config common;
    char *pepper;
    int64_t key_cache_ms;
    int64_t rate_per_min;
    int64_t burst;
    int64_t ip_rate_per_min;
    int64_t replicas;
    int64_t idempotency_ttl_ms;
    int64_t max_body;
    int64_t json_depth;
    char *phone_number_id;
    char *waba_id;
    char *users_url;
    char *analytics_url;
    char *graph_url;
    char *access_token;
    int64_t upstream_timeout_ms;
    char *health_targets;
    char *jwt_issuer;
    char *jwt_audience;
    char *jwt_algs;
    char *jwks;
    int64_t jwks_refresh_ms;
    int64_t jwt_leeway_ms;
};
extern const struct wa_cfg_spec gw_config_spec[];
extern const size_t gw_config_nspec;

struct gw_metrics {
    struct wa_counter *auth_ok, *auth_missing, *auth_invalid, *auth_forbidden, *auth_unavailable;
    struct wa_counter *limit_allowed, *limit_limited, *limit_local;
    struct wa_counter *msg_accepted, *msg_invalid, *msg_replayed, *msg_conflict, *msg_failed;
    struct wa_histogram *publish_latency;
};

struct wa_kafka_producer;
struct wa_httpc;
struct wa_kv;
struct wa_mongo;

struct gw {
    struct wa_service *svc;
    const struct gw_config *cfg;
    struct wa_loop *loop;
    struct wa_kafka_producer *producer;
    struct wa_kv *kv;
    struct wa_mongo *mongo;
    struct wa_httpc *httpc;    /* wa-users, wa-analytics, the Cloud API, /readyz of every daemon */
    struct wa_list ops;        /* upstream calls in flight (proxy.c) */
    struct wa_list health_ops; /* GET /v1/health in flight (health.c) */
    struct wa_hmac *pepper;    /* NULL: WA_GATEWAY_KEY_PEPPER unset, API keys refused (503) */
    struct gw_jwt *jwt;        /* NULL: no JWT issuer configured */
    char prefix[128];
    char topic_outbound[192];
    struct gw_metrics m;
    struct gw_local_limiter local;
    struct wa_log_limit warn_limit; /* Redis/MongoDB outage warnings */
};

/* One API request travelling through the stages; owned by api.c (gw_call_end frees it). */
struct gw_route;
struct gw_call {
    struct gw *gw;
    struct wa_http_req *req;
    const struct gw_route *route;
    char params[2][WA_HTTP_PARAM_MAX];
    size_t nparams;
    /* the authenticated principal (auth.c) */
    bool authenticated;
    char principal[64]; /* "key:<id>" */
    char key_id[GW_KEY_ID_HEX + 1];
    unsigned scopes;
    int64_t rate_per_min, burst;
    json_t *body; /* the parsed JSON body of a POST/PUT/PATCH, or NULL */
    uint64_t started_us;
    void *stage; /* the running stage's state (idempotency.c, publish.c) */
};

/* api.c: routes, request limits, the hand-over between stages, replies. */
enum wa_err gw_api_start(struct gw *gw, struct wa_error *error);
/* Runs the route's handler (after auth and limit). */
void gw_api_dispatch(struct gw_call *c);
/* True when the principal holds every scope the route needs; the name of that scope. */
bool gw_api_scope_ok(const struct gw_call *c);
const char *gw_api_scope_name(const struct gw_call *c);
/* Answers a problem (RFC 9457) and frees c. */
void gw_call_problem(struct gw_call *c, int status, const char *title, const char *detail);
/* Answers 422 naming every field of chk and frees c. */
void gw_call_invalid(struct gw_call *c, const struct gw_body_check *chk);
/* Answers JSON text (copied) and frees c. */
void gw_call_json(struct gw_call *c, int status, const char *json);
/* Answers status without a body (204) and frees c. */
void gw_call_empty(struct gw_call *c, int status);
/* Answers body (copied) as content_type and frees c. */
void gw_call_raw(struct gw_call *c, int status, const char *content_type, const void *body,
                 size_t len);
/* Answers v (taken: decref'd) as JSON and frees c. */
void gw_call_reply_value(struct gw_call *c, int status, json_t *v);

/* auth.c: stage 1: the Bearer credential -> principal and scopes, then gw_limit_start.
 * gw_auth_accept: the principal is set: scope check (403) then gw_limit_start; gw_auth_refuse:
 * 401 invalid_token with detail. */
void gw_auth_start(struct gw_call *c);
void gw_auth_accept(struct gw_call *c);
void gw_auth_refuse(struct gw_call *c, const char *detail);

/* token.c: JWT bearer tokens of WA_GATEWAY_JWT_ISSUER against its JWKS (file or URL), part of
 * stage 1. gw_token_init loads the key set (a file at once, a URL asynchronously). */
struct gw_jwt;
enum wa_err gw_token_init(struct gw *gw, struct wa_error *error);
void gw_token_start(struct gw_call *c, const char *token);
void gw_token_stop(struct gw *gw);
/* Drops the cached record of a key (revocation, creation). */
void gw_auth_forget(struct gw *gw, const char *key_id);

/* limit.c: stage 2: GCRA in Redis (the local limiter when Redis is down), RateLimit headers,
 * 429; then gw_api_dispatch. */
void gw_limit_start(struct gw_call *c);

/* publish.c: POST /v1/messages (validate, idempotency, publish, 202). */
void gw_messages_post(struct gw_call *c);

/* idempotency.c: the Redis record of an Idempotency-Key. */
typedef void (*gw_idem_claim_fn)(struct gw_call *c, enum wa_err err, enum gw_idem_decision d,
                                 int status, const char *response);
/* Claims <p>gw:idem:<principal>:<hash of key> for fp. cb once on the loop thread (err !=
 * WA_OK: Redis did not answer; decision NEW then, proceed without a record). */
void gw_idem_claim(struct gw_call *c, const char *key, const char *fp, gw_idem_claim_fn cb);
/* Stores the response of a claimed key (kept WA_GATEWAY_IDEMPOTENCY_TTL), or releases it
 * (response NULL) so the client may retry. Fire and forget. */
void gw_idem_finish(struct gw_call *c, const char *key, const char *fp, int status,
                    const char *response);

/* proxy.c: the fan-out routes (README.md "API"); gw_proxy_stop answers the calls in flight
 * 503 and cancels them (stop hook, before the HTTP client is freed). */
void gw_proxy_users(struct gw_call *c);
void gw_proxy_analytics(struct gw_call *c);
void gw_proxy_templates(struct gw_call *c);
void gw_proxy_business_profile(struct gw_call *c);
void gw_proxy_stop(struct gw *gw);

/* links.c: GET /v1/links/click-to-chat (JSON) and click-to-chat.png (a QR code of the URL);
 * GET /v1/openapi.json. */
void gw_links_click_to_chat(struct gw_call *c);
void gw_links_qr(struct gw_call *c);
void gw_openapi_get(struct gw_call *c);

/* admin.c: /v1/admin/keys. */
void gw_admin_keys_create(struct gw_call *c);
void gw_admin_keys_list(struct gw_call *c);
void gw_admin_keys_delete(struct gw_call *c);

/* keys.c: `wa-gateway keys create|list|revoke` (blocking, before any loop). */
int gw_keys_main(int argc, char **argv);
/* A new key record from a creation request (name, scopes, rate, expiry) and its text. */
enum wa_err gw_keys_new(struct wa_hmac *pepper, const char *name, unsigned scopes,
                        int64_t rate_per_min, int64_t expires_ms, struct gw_key_record *rec,
                        char key[GW_KEY_LEN + 1]);

/* health.c: metrics; GET /v1/health (gw_health_stop answers those in flight 503). */
enum wa_err gw_health_start(struct gw *gw, struct wa_error *error);
void gw_health_get(struct gw_call *c);
void gw_health_stop(struct gw *gw);

#define GW_COLL_API_KEYS "api_keys"

#endif
