/*
 * notify.h: shared declarations of wa-notify's stages (README.md has the flow).
 *
 * One struct nt owns everything: the configuration view, the shared clients (borrowed from the
 * scaffolding), the consumer, the HTTP client, the sending numbers and recipients, and every
 * request in flight. A struct nt_req is one consumed outbound.request; it owns its Kafka
 * message until nt_result_finish() hands it back with wa_kafka_consumer_done() (after the
 * outcome is durable), so a crash anywhere before that redelivers the request: this is what
 * makes scheduled retries durable (docs/adr/002-notify-durable-retries.md).
 *
 * Threading: the loop thread only. Stage functions are named nt_<stage>_<verb>.
 */
#ifndef NOTIFY_H
#define NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/cloudevent.h"
#include "wa/contract.h"
#include "wa/contract_outbound.h"
#include "wa/err.h"
#include "wa/httpc.h"
#include "wa/json.h"
#include "wa/kafka.h"
#include "wa/kv.h"
#include "wa/list.h"
#include "wa/loop.h"
#include "wa/metrics.h"
#include "wa/optout.h"
#include "wa/service.h"
#include "wa/whatsapp_errors.h"
#include "wa/whatsapp_message.h"

/* ---- config.c ---- */
struct nt_config {
    struct wa_common_config common;
    char *graph_url;
    char *access_token; /* "token" and/or "phone_number_id=token" items, comma-separated */
    char *group;
    int64_t mps;
    char *rates; /* "phone_number_id=mps,..." */
    int64_t burst_ms;
    int64_t max_attempts;
    int64_t max_age_ms;
    int64_t backoff_base_ms;
    int64_t backoff_max_ms;
    int64_t pair_backoff_max_ms;
    int64_t http_timeout_ms;
    int64_t claim_ms;
    int64_t record_ttl_ms;
    int64_t max_in_flight;
    int64_t max_http;
    int64_t breaker_threshold;
    int64_t breaker_cooldown_ms;
    char *waba_id; /* "waba" and/or "phone_number_id=waba" items: the template registry */
    int64_t template_ttl_ms;
    int64_t park_after_ms;
    int64_t park_tick_ms;
    int64_t park_lease_ms;
    char *optout_key; /* WA_OPTOUT_KEY: names <p>optout:<hash> (wa/optout.h) */
};

extern const struct wa_cfg_spec nt_config_spec[];
extern const size_t nt_config_nspec;

/*
 * Looks up phone_number_id in a "id=value,..." list (spec, borrowed). Writes the value into out
 * (size bytes) and returns WA_OK; the item without "id=" is the default for every number.
 * WA_ENOTFOUND when neither exists, WA_ETOOBIG when the value does not fit.
 */
enum wa_err nt_config_lookup(const char *spec, const char *phone_number_id, char *out, size_t size);

/* ---- retry.c: pure back-off arithmetic ---- */

/* Exponential back-off with jitter: base * 2^(attempt-1), capped at max, then scaled to
 * [50 %, 100 %] by rnd in [0, 1). attempt >= 1. */
uint64_t nt_retry_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned attempt, double rnd);
/* Meta's pair-rate guidance: 4^x seconds (x = 0, 1, ...), capped at max_ms. */
uint64_t nt_retry_pair_backoff_ms(unsigned x, uint64_t max_ms);

/* ---- classify.c: the answer of one send ---- */
enum nt_outcome {
    NT_ACCEPTED,  /* 200 with a wamid */
    NT_RETRY,     /* retryable: back off and send again */
    NT_THROTTLED, /* 130429, 131048 & co: back off and slow the number */
    NT_PAIR_RATE, /* 131056: back off this recipient only (4^X s) */
    NT_TOKEN,     /* 0 / 190: stop the number until the token is replaced */
    NT_PERMANENT, /* will never succeed as is */
    NT_CAPPED,    /* 131049: the user's marketing cap: much later, growing delays, no opt-out */
};

struct nt_answer {
    enum nt_outcome outcome;
    bool has_code;
    int64_t code; /* Meta's code when has_code */
    long http_status;
    bool breaker_failure; /* 5xx or transport failure: counts toward the circuit breaker */
    char title[128];
    char details[256];
    char wamid[256]; /* NT_ACCEPTED */
};

/*
 * Classifies one HTTP exchange (cloud-api.md §2.3, §2.4) into *out: transport error
 * (transport != WA_OK: network, timeout -> NT_RETRY), status and body. Pure.
 */
void nt_classify(enum wa_err transport, const char *transport_msg, long status, const char *body,
                 size_t len, struct nt_answer *out);

/* A circuit breaker: opens after threshold consecutive failures, for cooldown (doubling while
 * half-open probes fail, up to 16 x); half-open lets one probe through. Caller's storage. */
struct nt_breaker {
    unsigned threshold;
    uint64_t cooldown_ms;
    unsigned failures;
    unsigned trips;
    uint64_t open_until; /* 0: closed */
    bool probing;
};
/* True when a request may go out at now (ms); marks the half-open probe as taken. */
bool nt_breaker_allow(struct nt_breaker *b, uint64_t now);
/* Records the result of a request that went out. */
void nt_breaker_record(struct nt_breaker *b, bool failure, uint64_t now);
/* 0 closed, 1 open, 2 half-open (for the metric). */
int nt_breaker_state(const struct nt_breaker *b, uint64_t now);

/* ---- validate.c ---- */
struct nt_invalid {
    bool has_code;
    int64_t code; /* Meta's code (100, 131008, 131009, 131051) when has_code */
    char details[256];
};

/*
 * Builds the Cloud API body of rq (request_id as biz_opaque_callback_data) into a new
 * reference *out and validates it with libs/whatsapp. template_body, when not NULL, replaces
 * the request's type and body by a template (the window fallback). WA_EINVAL with *why set
 * when the request is invalid; WA_ENOMEM.
 */
enum wa_err nt_validate_build(const struct wa_contract_outbound_request *rq,
                              const json_t *template_body, json_t **out, struct nt_invalid *why);

/* ---- the daemon ---- */
struct nt;
struct nt_req;

struct nt_recipient {
    struct nt_recipient *hnext; /* hash chain */
    char key[WA_CONTRACT_KEY_MAX];
    struct wa_list reqs;    /* FIFO of this recipient's requests (rlink); first is active */
    unsigned pair_x;        /* 131056 count for 4^X */
    uint64_t blocked_until; /* monotonic ms */
    bool active;            /* head is queued on its number or being sent */
};

struct nt_number {
    struct nt_number *next;
    struct nt *nt;
    char id[64];
    char token[1024];
    char bucket_key[192];
    double mps;
    uint64_t burst;
    uint64_t batch;
    uint64_t tokens;       /* granted by the shared bucket, not spent yet */
    uint64_t tokens_until; /* loop ms: unspent tokens are dropped then (no stored-up bursts) */
    bool leasing;          /* a lease script is in flight */
    uint64_t paused_until; /* after 130429 */
    unsigned throttle_x;
    bool token_bad;       /* 0/190 seen: stopped until reload */
    struct wa_list queue; /* ready to send (qlink): priority (higher first), then arrival */
    size_t qlen;
    struct wa_timer *timer; /* lease wait / pause end */
    struct wa_counter *sent, *throttled;
    struct wa_gauge *stopped;
};

enum nt_req_state {
    NT_REQ_NEW,
    NT_REQ_POLICY, /* policy script in flight */
    NT_REQ_PARK,   /* park script in flight (park.c) */
    NT_REQ_HELD,   /* not_before, within WA_NOTIFY_PARK_AFTER */
    NT_REQ_WAIT,   /* in its recipient's queue behind another */
    NT_REQ_READY,  /* in its number's queue */
    NT_REQ_CLAIM,  /* claim script in flight */
    NT_REQ_SEND,   /* HTTP in flight */
    NT_REQ_RECORD, /* record script in flight */
    NT_REQ_BACKOFF,
    NT_REQ_RESULT, /* result / dlq being produced */
};

struct nt_req {
    struct nt *nt;
    struct nt_req *next_all, *prev_all; /* every live request */
    struct wa_list rlink;               /* on its recipient's reqs */
    struct wa_list qlink;               /* on its number's queue while ready */
    enum nt_req_state state;
    struct wa_kafka_msg *msg; /* owned until wa_kafka_consumer_done */
    struct wa_cloudevent_doc *doc;
    struct wa_contract_outbound_request rq; /* borrowed from doc */
    bool valid_rq;
    char conv[WA_CONTRACT_KEY_MAX];
    char traceparent[WA_TRACEPARENT_LEN];
    char call_tp[WA_TRACEPARENT_LEN]; /* the Cloud API call's span (a child), sent as its header */
    char trace_id[WA_TRACE_ID_LEN];
    json_t *body; /* Cloud API body (new reference) */
    char *body_json;
    bool fallback;
    bool opted_out;       /* the contact's optout key was set when policy ran */
    bool marketing;       /* by the caller's category or the registry's: muted by an opt-out */
    struct wa_list clink; /* waiting for a template category (category.c) */
    struct nt_number *num;
    struct nt_recipient *rcp;
    unsigned attempts;
    uint64_t first_ms; /* wall ms of the first attempt (from the record) */
    json_t *history;   /* attempts_log array */
    bool takeover;     /* the claim was taken from an expired one (possible duplicate) */
    uint64_t consumed_us, ready_us;
    struct wa_timer *timer;
    struct wa_httpc_call *call;
    struct nt_answer ans;
    int produce_pending;
    bool produce_failed;
    /* final outcome */
    bool accepted;
    const char *reason;
    const char *record_state; /* static: "sent", "failed", "retry" */
    json_t *res_data, *dlq_data;
    bool res_done, dlq_done;
    bool orphan;
    bool hold_here; /* Redis's clock put not_before within the horizon: hold in memory */
};

struct nt {
    const struct nt_config *cfg;
    struct wa_service *svc;
    struct wa_loop *loop;
    struct wa_metrics *metrics;
    struct wa_kafka_producer *producer;
    struct wa_kv *kv;
    struct wa_kafka_consumer *consumer;
    struct wa_httpc *http;
    char instance[96];
    char topic_request[256], topic_result[256], topic_dlq[256];
    char key_prefix[128];     /* WA_TOPIC_PREFIX */
    struct wa_optout *optout; /* the opt-out key's name (policy.c, idempotency.c) */
    struct nt_number *numbers;
    struct nt_recipient **rtab;
    size_t rtab_size, nrecipients;
    struct nt_req *all;
    size_t nreqs;
    size_t http_inflight;
    struct nt_breaker breaker;
    struct wa_timer *breaker_timer;
    bool draining; /* SIGTERM: no new send starts */
    /* metrics (health.c) */
    struct wa_gauge *g_inflight, *g_http, *g_breaker, *g_queued, *g_lag;
    struct wa_counter *c_retries, *c_takeover, *c_dup, *c_malformed, *c_held;
    struct wa_counter *c_registry_failures;
    /* park.c */
    char key_park[256], key_parkd[256];
    struct wa_timer *park_timer;
    bool park_scanning;    /* a claim script is in flight */
    size_t park_releasing; /* republished requests waiting for their ack and removal */
    struct wa_gauge *g_parked;
    struct wa_counter *c_parked, *c_released;
    struct nt_category_cache *categories; /* category.c */
    struct wa_histogram *h_latency, *h_req_to_send, *h_pacing;
};

/* consume.c: stage 1 */
enum wa_err nt_consume_start(struct nt *nt, struct wa_error *error);
/* Frees every request left (held, backing off, queued): their messages are not handed back, so
 * the next instance gets them again. */
void nt_consume_stop(struct nt *nt);

/* policy.c: stage 2 (after validation) */
void nt_policy_start(struct nt_req *r);
/* Fails r as expired and returns true when its expires_at passed. */
bool nt_policy_expired(struct nt_req *r);
/* Continues r's policy with its template's registry category ("" unknown; err WA_EUNAVAIL
 * when the registry did not answer). Called by category.c. */
void nt_policy_category(struct nt_req *r, enum wa_err err, const char *category);
/* category.c: the registry category of template (name, language) for r's number. WA_OK with
 * *category set (borrowed until the next call; "" when unknown or no registry is configured);
 * WA_EAGAIN: a lookup runs and nt_policy_category(r, ...) follows, later; WA_EUNAVAIL or
 * WA_ENOMEM: no lookup could start. */
enum wa_err nt_category_resolve(struct nt_req *r, const char *name, const char *language,
                                const char **category);
/* Frees the cache (after wa_httpc_free: lookups in flight are already cancelled). */
void nt_category_cleanup(struct nt *nt);

/* park.c: beside stage 2. A request whose not_before lies beyond WA_NOTIFY_PARK_AFTER is
 * stored in Redis and its offset handed back; a scheduler on every instance republishes due
 * entries to outbound.request. */
/* Takes r over and returns true when not_before is too far ahead (refused as invalid) or far
 * enough to park it; false: go on with the policy (held in memory when not yet due). */
bool nt_park_take(struct nt_req *r);
enum wa_err nt_park_start(struct nt *nt, struct wa_error *error);
void nt_park_stop(struct nt *nt);

/* pace.c: stage 3 */
enum wa_err nt_pace_init(struct nt *nt, struct wa_error *error);
void nt_pace_cleanup(struct nt *nt);
struct nt_number *nt_pace_number(struct nt *nt, const char *id);
/* Queues r behind its recipient's earlier requests. */
void nt_pace_submit(struct nt_req *r);
/* r (its recipient's head) may go again now: back into its number's queue. */
void nt_pace_ready(struct nt_req *r);
/* r reached its final outcome: the recipient's next request may go. */
void nt_pace_release(struct nt_req *r);
/* Sends what tokens, breaker and HTTP slots allow. */
void nt_pace_pump(struct nt_number *num);
void nt_pace_pump_all(struct nt *nt);

/* idempotency.c: stage 4 */
void nt_idem_claim(struct nt_req *r);
/* Records the final state of r (sent / failed) or releases the claim (retry). */
void nt_idem_record(struct nt_req *r, const char *state);

/* send.c: stage 5 */
enum wa_err nt_send_init(struct nt *nt, struct wa_error *error);
void nt_send_start(struct nt_req *r);

/* retry.c: stage 6 (after classify.c) */
/* True when r used its attempts or its maximum age. */
bool nt_retry_exhausted(const struct nt_req *r);
void nt_retry_handle(struct nt_req *r);
/* Schedules r's next attempt in delay_ms (counted attempts continue). */
void nt_retry_schedule(struct nt_req *r, uint64_t delay_ms);
/* Runs r's next step (by its state) in delay_ms: the one timer every stage shares. */
void nt_req_later(struct nt_req *r, uint64_t delay_ms);

/* result.c: stage 7 */
void nt_result_accepted(struct nt_req *r, const char *wamid);
/* reason: static string; code/title/details of the failure (has_code false: not Meta's). */
void nt_result_failed(struct nt_req *r, const char *reason, bool has_code, int64_t code,
                      const char *title, const char *details);
/* An event that could not be read: DLQ raw, then done. */
void nt_result_malformed(struct nt_req *r, const char *details);
/* Produces r's pending result / dead letter again (after a failed delivery). */
void nt_result_retry(struct nt_req *r);
void nt_req_free(struct nt_req *r);

/* health.c */
enum wa_err nt_health_start(struct nt *nt, struct wa_error *error);
void nt_health_number(struct nt_number *num);
void nt_health_count_send(struct nt *nt, const char *outcome, bool has_code, int64_t code);
/* status and reason are static strings (bounded label values). */
void nt_health_count_result(struct nt *nt, const char *status, const char *reason);
void nt_health_reload(struct nt *nt);
/* True while a request is claiming, sending, recording or producing its result (SIGTERM waits
 * for those; the others stay uncommitted and are redelivered). */
bool nt_busy(const struct nt *nt);

#endif
