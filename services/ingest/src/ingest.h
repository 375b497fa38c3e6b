/*
 * ingest.h: wa-ingest's private types and the one hand-over function of each stage.
 *
 * A webhook POST becomes one struct ig_request that travels through the stages in this order
 * (each file opens with "stage n of 7"):
 *   ingress.c  ig_ingress_start   routes, handshake, content type; body limit by the server
 *   verify.c   ig_verify_start    X-Hub-Signature-256 over the raw bytes (current + previous)
 *   split.c    ig_split_start     webhook -> events (wa/whatsapp_webhook.h), in a JSON arena
 *                                 scope that ends when the synchronous part of the chain returns
 *   archive.c  ig_archive_start   the raw body -> webhook.raw records
 *   dedupe.c   ig_dedupe_start    Redis claim per wamid / (wamid, status)
 *   publish.c  ig_publish_start   Kafka, acks=all; reply 200 once every record is acknowledged
 *   spool.c    ig_spool_start     fallback when Kafka is late: fsynced local files, replayed
 * health.c adds metrics and readiness; config.c holds the spec table.
 *
 * Threading: everything runs on the loop thread except the spool's file work, which runs on
 * the service's worker pool and reports back through its done callback.
 *
 * Lifetimes: struct ig (one per process) is the service's state: the scaffolding allocates it
 * before main.c's first stage starts and frees it after the last one stopped, once every
 * callback of the shared clients ran (docs/internals/service.md). A request owns its batch,
 * records and timer; it borrows the HTTP request until it replied (ig_request_reply) or the
 * server gave up on it (abort callback). It is freed by ig_request_release() once its reply
 * is sent and no callback (Kafka, Redis, pool) is outstanding.
 */
#ifndef IG_INGEST_H
#define IG_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/buf.h"
#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract.h"
#include "wa/httpd.h"
#include "wa/id.h"
#include "wa/json.h"
#include "wa/log.h"
#include "wa/metrics.h"
#include "wa/service.h"
#include "wa/whatsapp_webhook.h"

struct wa_kafka_producer;
struct wa_kv;
struct ig_spool;

/* ---- configuration (config.c) ---- */

struct ig_config {
    struct wa_common_config common;
    char *app_secret;
    char *app_secret_previous;
    char *verify_token;
    int64_t max_body;
    int64_t dedup_ttl_ms;
    int64_t ack_timeout_ms;
    char *spool_dir;
    int64_t spool_replay_ms;
    int64_t spool_file_max;
    int64_t spool_dead_letter_ms;
};

extern const struct wa_cfg_spec ig_config_spec[];
extern const size_t ig_config_nspec;

/* ---- metrics (health.c) ---- */

enum ig_outcome {
    IG_OUT_OK,           /* 200 after Kafka acknowledged everything */
    IG_OUT_SPOOLED,      /* 200 after the records were fsynced to the spool */
    IG_OUT_UNPARSED,     /* 200: signed but not a webhook; archived raw */
    IG_OUT_UNAUTHORIZED, /* 401 */
    IG_OUT_BAD_REQUEST,  /* 415 (content type) */
    IG_OUT_UNAVAILABLE,  /* 503: neither Kafka nor the spool took it */
    IG_OUT__COUNT
};

struct ig_metrics {
    struct wa_counter *requests[IG_OUT__COUNT];
    struct wa_counter *signature_failures;
    struct wa_counter *duplicates[2]; /* message, status */
    struct wa_counter *events[4];     /* message, status, account, raw */
    struct wa_counter *malformed_items;
    struct wa_counter *dedup_failures;
    struct wa_counter *spool_written;
    struct wa_counter *spool_replayed;
    struct wa_counter *spool_damaged[2]; /* corrupt frames, records Kafka refused for good */
    struct wa_counter *spool_write_failures;
    struct wa_gauge *spool_writable;
    struct wa_gauge *spool_bytes;
    struct wa_gauge *spool_files;
    struct wa_gauge *inflight;
    struct wa_histogram *ack_seconds;
};

#define IG_EVENTS_RAW 3 /* index of webhook.raw in ig_metrics.events */

/* ---- the process ---- */

struct ig {
    const struct ig_config *cfg;        /* borrowed from the scaffolding */
    struct wa_service *svc;             /* borrowed */
    struct wa_loop *loop;               /* borrowed */
    struct wa_kafka_producer *producer; /* borrowed: the scaffolding's */
    struct wa_kv *kv;                   /* borrowed: owned by the scaffolding */
    struct ig_spool *spool;             /* owned */
    const char *secrets[2];             /* borrowed from cfg */
    struct wa_hub_verifier *verifier;   /* owned: keyed with secrets */
    unsigned char rnd[512];             /* getrandom output not used yet: rnd[rnd_off..] */
    size_t rnd_off;
    char topic[4][160];     /* full names: message, status, account, raw */
    char dedup_prefix[160]; /* "<topic prefix>ingest:dedup:" */
    char owner[40];         /* this process's pending-claim token */
    struct ig_metrics m;
    struct wa_json_arena json_arena; /* the webhook document's memory; see split.c */
    uint64_t time_ms;                /* CloudEvent time cache: wall clock of time[] */
    char time[WA_RFC3339_LEN];       /* formatted time_ms */
    /* dedupe.c's batches, filled during one loop pass and sent by 0 ms timers */
    struct ig_request **claims; /* requests waiting for their claims, in arrival order */
    size_t nclaims, capclaims;
    struct wa_timer *claim_timer; /* owned */
    char **confirms;              /* owned keys to mark durable */
    size_t nconfirms, capconfirms;
    struct wa_timer *confirm_timer; /* owned */
    char claim_ttl[24];             /* pending TTL, ms (ack timeout + 60 s) */
    char done_ttl[24];              /* WA_DEDUP_TTL, ms */
    size_t inflight;                /* requests not yet released (the inflight gauge) */
    size_t unreplied;               /* requests not yet answered (what SIGTERM waits for) */
    uint64_t started_ms;            /* monotonic, health.c: the readiness grace at start */
    bool kafka_seen;                /* the producer was connected once (readiness) */
};

/* Claim results per dedup key (the claim script's answers). */
#define IG_DEDUP_DUPLICATE 0 /* already durable, or repeated in this body: skip */
#define IG_DEDUP_CLAIMED   1 /* this request owns it now */
#define IG_DEDUP_FOREIGN \
    2 /* in flight elsewhere (another request or pod, a crashed run): publish */
#define IG_DEDUP_UNKNOWN 3 /* Redis did not answer: publish */

/* One Kafka message of a request: what is produced, and what the spool stores. */
struct ig_record {
    struct ig_request *req; /* back pointer for the delivery callback */
    int topic;              /* index into ig.topic */
    size_t key_off;         /* NUL-terminated key in ig_request.arena */
    size_t value_off;       /* value bytes in ig_request.arena */
    size_t value_len;
    char id[WA_ULID_LEN]; /* CloudEvent id (also the ce_id header) */
    int dedup;            /* index into ig_request.dedup_keys, -1 = not deduplicated */
    int event;            /* index the event had in the batch, -1 for webhook.raw */
    bool skip;            /* a duplicate: not published, not spooled */
    bool acked;
};

struct ig_request {
    struct ig *ig;
    struct wa_http_req *req; /* borrowed until replied or aborted; NULL after */
    char request_id[64];
    char traceparent[WA_TRACEPARENT_LEN];
    char parent[WA_TRACEPARENT_LEN]; /* the caller's traceparent, "" when it sent none */
    char trace_id[WA_TRACE_ID_LEN];
    struct wa_log_ctx log;
    uint64_t start_us;
    uint64_t publish_us; /* ig_publish_start, 0 before: the stage spans (ingress.c) */
    uint64_t received_ms;
    const char *body; /* borrowed from req; valid only through ig_archive_start */
    size_t len;
    struct wa_webhook_batch batch; /* document and events: only until ig_publish_encode */
    bool parsed;

    struct wa_buf arena;       /* keys and encoded values of the records */
    struct ig_record *records; /* raw parts first, then events in body order */
    size_t nrecords;
    size_t caprecords;

    char **dedup_keys; /* owned strings: the Redis keys of this request's events */
    size_t ndedup;
    unsigned char *dedup_state; /* per key: IG_DEDUP_* */
    int *ev_dedup;              /* per batch event: index into dedup_keys, or -1 */
    bool dedup_claimed;         /* the claim script ran: release or confirm the keys at the end */

    size_t outstanding; /* callbacks still owed to this request (Kafka, Redis, pool) */
    size_t unacked;     /* records produced and not yet acknowledged */
    bool kafka_failed;
    bool spooling;
    bool replied;
    struct wa_timer *deadline;
};

/* ---- stages ---- */
enum wa_err ig_ingress_start(struct ig *ig, struct wa_error *error);
/* True while a request is not answered yet (SIGTERM waits for them). */
bool ig_ingress_busy(const struct ig *ig);
/* Keys ig->verifier with the configured secrets (WA_ECONFIG when none, WA_ENOMEM). */
enum wa_err ig_verify_new(struct ig *ig, struct wa_error *error);
void ig_verify_free(struct ig *ig);
void ig_verify_start(struct ig_request *r);
void ig_split_start(struct ig_request *r);
void ig_archive_start(struct ig_request *r);
void ig_dedupe_start(struct ig_request *r);
/* Keys of one claim or confirmation script call, at most. */
#define IG_DEDUP_BATCH_KEYS 512
enum wa_err ig_dedupe_new(struct ig *ig, struct wa_error *error);
/* Stop: flushes the queued batches (Redis is closed by then), frees the timers. */
void ig_dedupe_stop(struct ig *ig);
/* After the records are durable (Kafka or spool): confirm the claims; after a failure (503):
 * release them so Meta's retry is not taken for a duplicate. */
void ig_dedupe_finish(struct ig_request *r, bool durable);
/* From ig_dedupe_start, before anything waits: encodes every event of the batch as a record
 * (duplicates are marked skip once the claims answer), then drops the batch, whose document
 * lives in ig->json_arena and must not outlive split.c's scope. WA_ENOMEM, WA_ETOOBIG. */
enum wa_err ig_publish_encode(struct ig_request *r);
/* Produces the records not marked skip; replies once all are acknowledged or spooled. */
void ig_publish_start(struct ig_request *r);
/*
 * Encodes one CloudEvent (type, subject = key, the request's traceparent, data written by
 * encode(b, arg): wa_contract_event_data_write, wa_contract_raw_data_write, wa_json_write) into
 * the request's arena with wa_cloudevent_write and appends it to r->records (room for it must
 * exist). Returns WA_OK, WA_ENOMEM, WA_ETOOBIG or encode's error; on error the arena and
 * records are unchanged.
 */
enum wa_err ig_record_add(struct ig_request *r, int topic, const char *type, const char *key,
                          const char *phone_number_id, int dedup, wa_cloudevent_data_fn encode,
                          const void *arg);

/* Spool (spool.c). */
enum wa_err ig_spool_new(struct ig *ig, struct ig_spool **out, struct wa_error *error);
/* Stop: nothing of the spool is pending any more (the pool and producer are silenced). */
void ig_spool_free(struct ig_spool *spool);
/* True in spool mode: a request was spooled because Kafka failed or was late, the spool still
 * holds records, no replay window has been acknowledged since (without an outage error), and
 * the spool's last write did not fail. New requests then go to the
 * spool too, so records of one key stay in order during the outage. */
bool ig_spool_divert(const struct ig_spool *spool);
/* A request is being spooled because Kafka failed or did not answer in time: spool mode. */
void ig_spool_kafka_late(struct ig_spool *spool);
/* Appends the request's unacknowledged records and fsyncs; then calls ig_publish_spooled(r, ok)
 * on the loop thread, exactly once. */
void ig_spool_start(struct ig_request *r);
void ig_publish_spooled(struct ig_request *r, bool ok);
/* True when the last write (or writability probe) succeeded (readiness). */
bool ig_spool_ready(const struct ig_spool *spool);

/* Health and metrics (health.c). */
enum wa_err ig_health_start(struct ig *ig, struct wa_error *error);

/* ---- request helpers (ingress.c) ---- */
/* Sends the reply (once; later calls are ignored) and counts the outcome. */
void ig_request_reply(struct ig_request *r, enum ig_outcome outcome, int status, const char *json);
/* Drops one outstanding callback (if one) and frees r when nothing is owed any more. */
void ig_request_release(struct ig_request *r, bool callback_done);

#endif
