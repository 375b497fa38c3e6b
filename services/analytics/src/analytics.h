/*
 * analytics.h: wa-analytics' model and stages (README.md has the flow).
 *
 * Pure parts (no I/O, unit-tested in tests/unit/analytics):
 *   timeline.c  the per-message state machine and the MongoDB update that applies one event
 *   hist.c      mergeable log-scale latency histograms
 *   bucket.c    half-hour bucket keys, roll-up to hour/day/month in an IANA zone (TZif reader)
 *   ratecard.c  the rate card file and the cost of a priced message
 *   report.c    totals, rates, latencies, failures, cost, replies of a set of timelines; KPIs
 *   query.c     the query parameters of /v1/analytics/...
 * Stages (loop thread): consume.c (Kafka -> batch -> MongoDB -> commit), api.c (REST),
 * dashboard.c (GET /dashboard), health.c (metrics, KPI gauges), config.c.
 *
 * Times are int64 milliseconds since the epoch (UTC) unless a name says otherwise.
 * Ownership: functions returning json_t return a new reference (json_decref); inputs borrowed.
 */
#ifndef ANALYTICS_H
#define ANALYTICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/err.h"
#include "wa/json.h"
#include "wa/list.h"
#include "wa/mongo.h"
#include "wa/service.h"

/* ---- timeline ---- */

/* States in the order a message moves through them; failed ranks last (terminal). */
enum an_state {
    AN_REQUESTED = 0,
    AN_ACCEPTED,
    AN_SENT,
    AN_DELIVERED,
    AN_READ,
    AN_FAILED,
    AN_NSTATES
};

/* "requested", ...; NULL for a bad value. */
const char *an_state_name(enum an_state s);
/* Parses a state name (Cloud API status or outbound.result status). false when unknown. */
bool an_state_parse(const char *name, enum an_state *out);

/* The error of a failed state. */
struct an_error {
    bool has_code;
    int64_t code;
    char title[128];
    char details[256];
};

/* A timeline in memory: the reference semantics the MongoDB update reproduces. */
struct an_timeline {
    int rank;               /* highest state reached, -1 = none */
    int64_t at[AN_NSTATES]; /* first time of each state, 0 = never */
    struct an_error error;  /* of the failed state */
};

void an_timeline_init(struct an_timeline *tl);
/*
 * Applies "state s at time t" (error only for AN_FAILED): keeps the first time of every state,
 * moves rank only forward (a delivered after read changes no rank; a failed after delivered is
 * recorded and becomes the state). Applying the same event twice, or events in any order, ends
 * in the same timeline.
 */
void an_timeline_apply(struct an_timeline *tl, enum an_state s, int64_t t,
                       const struct an_error *error);
/* The state shown: the highest reached. */
enum an_state an_timeline_state(const struct an_timeline *tl);

/* What one consumed event says about one message (strings borrowed from the event). */
struct an_event {
    const char *id;         /* the message's document id: request_id, else "wamid:<wamid>" */
    const char *request_id; /* NULL when unknown */
    const char *wamid;      /* NULL when unknown */
    enum an_state state;
    int64_t at_ms;
    const char *participant;     /* group status: the participant, else NULL */
    const char *phone_number_id; /* NULL: unchanged */
    const char *contact;
    const char *country; /* calling code matched in the rate card, or NULL */
    const char *type;    /* message type (outbound.request) */
    const char *template_name;
    const char *category;
    const char *pricing_category; /* status pricing, or NULL */
    const char *pricing_type;
    int pricing_billable;         /* -1 unknown, 0, 1 */
    const struct an_error *error; /* for AN_FAILED */
    const char *reason;           /* outbound.result reason */
};

/*
 * Builds the update of the message document for ev: {$min: first times and "at"}, {$max:
 * rank}, {$set: attributes and error}. Every operator is idempotent and the $min/$max ones
 * commute, so redelivered and reordered events give the same document. New reference in *out.
 * WA_EINVAL when ev has no id, WA_ENOMEM.
 */
enum wa_err an_timeline_update(const struct an_event *ev, json_t **out);
/*
 * Folds the update from (an_timeline_update's shape) into into, so one write applies both with
 * the same result as applying them in turn: $min keeps the smaller value, $max the larger, $set
 * the later, $setOnInsert the earlier. WA_ENOMEM.
 */
enum wa_err an_update_merge(json_t *into, const json_t *from);
/*
 * Applies update (an_timeline_update's shape, or $inc) to the document doc in place as MongoDB
 * does ($setOnInsert only when inserting, i.e. doc was not stored yet), so the consumer knows
 * the document a write leaves without reading it back. WA_EINVAL for a path through a
 * non-object, WA_ENOMEM.
 */
enum wa_err an_update_apply(json_t *doc, const json_t *update, bool inserting);
/*
 * Fills tl from a stored message document (the fields an_timeline_update writes).
 */
void an_timeline_from_doc(const json_t *doc, struct an_timeline *tl);
/*
 * The public view of a stored message document: {"id", "request_id", "wamid", "state",
 * "states": [{"state", "at"}...], "error", "late_failure", "participants", ...}. New reference.
 */
json_t *an_timeline_view(const json_t *doc);

/* ---- histograms ---- */

/* Fixed log-scale buckets: bucket 0 holds [0, 1 ms), bucket i >= 1 holds [2^((i-1)/4),
 * 2^(i/4)) ms; the last one is open. Same edges everywhere, so merging is adding counts. */
#define AN_HIST_BUCKETS 140

struct an_hist {
    uint64_t n[AN_HIST_BUCKETS];
    uint64_t count;
    int64_t sum_ms;
};

void an_hist_add(struct an_hist *h, int64_t ms);
void an_hist_merge(struct an_hist *into, const struct an_hist *from);
/* The upper edge of the bucket holding quantile q (0 < q <= 1), in ms; 0 when empty. */
double an_hist_quantile(const struct an_hist *h, double q);
/* Upper edge of bucket i in ms. */
double an_hist_upper(size_t i);
/* {"count", "avg", "p50", "p90", "p99"} (ms; null when empty). New reference. */
json_t *an_hist_json(const struct an_hist *h);

/* ---- buckets and time zones ---- */

enum an_granularity { AN_HALF_HOUR = 0, AN_HOUR, AN_DAY, AN_MONTH };
#define AN_HALF_HOUR_MS 1800000LL

bool an_granularity_parse(const char *s, enum an_granularity *out);

/* A zone's UTC offsets, read from a TZif file. */
struct an_tz {
    char name[64];
    size_t n;        /* transitions */
    int64_t *when;   /* UTC seconds, ascending */
    int32_t *offset; /* offset (seconds east of UTC) from when[i] on */
    int32_t initial; /* offset before the first transition */
};

/*
 * Loads the zone name ("UTC", "Europe/Berlin", ...) from dir (NULL = /usr/share/zoneinfo).
 * WA_EINVAL for a name that is not a zone name (characters, "..", leading "/"), WA_ENOTFOUND
 * when the file is missing, WA_EPARSE when it is not TZif. Free with an_tz_free.
 */
enum wa_err an_tz_load(const char *name, const char *dir, struct an_tz *tz, struct wa_error *error);
/* Parses TZif bytes (v1 or the 64-bit v2+ section). */
enum wa_err an_tz_parse(const unsigned char *data, size_t len, struct an_tz *tz,
                        struct wa_error *error);
void an_tz_free(struct an_tz *tz);
/* Offset in seconds east of UTC at UTC time t_ms. */
int32_t an_tz_offset(const struct an_tz *tz, int64_t t_ms);

/* The half-hour bucket (UTC start, ms) holding t_ms. */
int64_t an_bucket_half_hour(int64_t t_ms);
/*
 * The local label of the period of granularity g holding the half-hour bucket starting at
 * b_ms in zone tz: "2026-12-04T10:30" (half hour), "2026-12-04T10" (hour), "2026-12-04"
 * (day), "2026-12" (month). Zones whose offset is not a multiple of 30 minutes (Asia/Kathmandu)
 * put a half-hour bucket in the local period of its start. out: at least 20 bytes.
 */
void an_bucket_label(const struct an_tz *tz, int64_t b_ms, enum an_granularity g, char *out,
                     size_t size);

/* ---- rate card ---- */

/* Micro-units of the card's currency per message, by category. */
enum an_category { AN_MARKETING = 0, AN_UTILITY, AN_AUTHENTICATION, AN_SERVICE, AN_NCATEGORIES };
bool an_category_parse(const char *s, enum an_category *out);
const char *an_category_name(enum an_category c);

struct an_rate {
    char calling_code[8]; /* digits */
    char country[4];      /* ISO 3166 alpha-2, informative */
    int64_t effective_ms; /* UTC midnight of the effective date */
    int64_t micros[AN_NCATEGORIES];
};

struct an_ratecard {
    char currency[4];
    size_t n;
    struct an_rate *rates; /* sorted by calling_code, then effective_ms */
};

/*
 * Parses a rate card (JSON; README.md "Rate card"): {"currency": "USD", "rates": [{
 * "calling_code": "91", "country": "IN", "effective": "2025-07-01", "marketing": 0.0107,
 * "utility": 0.0014, "authentication": 0.0014, "service": 0}, ...]}. Prices are rounded to
 * micro-units. WA_EPARSE (message names the entry and field). Free with an_ratecard_free.
 */
enum wa_err an_ratecard_parse(const char *text, size_t len, struct an_ratecard *rc,
                              struct wa_error *error);
void an_ratecard_free(struct an_ratecard *rc);
/* Loads the rate card file path (empty or NULL: none, rc left empty). WA_ECONFIG naming the
 * file and the fault. */
enum wa_err an_ratecard_load(const char *path, struct an_ratecard *rc, struct wa_error *error);
/* The longest calling code of the card that prefixes the digits of contact; NULL when none. */
const char *an_ratecard_country(const struct an_ratecard *rc, const char *contact);
/*
 * Cost in micro-units of one message to calling_code of category at t_ms: pricing type
 * "regular" (or billable without a type) costs the rate in force at t_ms (latest effective
 * date <= t_ms); free types and non-billable cost 0. false when no rate applies (unpriced).
 */
bool an_ratecard_cost(const struct an_ratecard *rc, const char *calling_code, const char *category,
                      const char *pricing_type, int billable, int64_t t_ms, int64_t *micros);

/* ---- reports ---- */

/* The filters and period of a query (strings borrowed from the request). */
struct an_query {
    int64_t from_ms, to_ms; /* [from, to) */
    enum an_granularity granularity;
    const char *phone_number_id, *template_name, *category, *country;
};

/*
 * Parses the query parameters (get(arg, name) returns a parameter or NULL): from, to (RFC 3339,
 * or YYYY-MM-DD: local midnight in tz, the zone the caller loaded from the "tz" parameter;
 * default: the 7 days before now_ms), granularity (series; default day), filters
 * phone_number_id, template, category, country (calling code). to - from at most 400 days.
 * WA_EINVAL with the parameter named in error.
 */
typedef const char *(*an_param_fn)(void *arg, const char *name);
enum wa_err an_query_parse(an_param_fn get, void *arg, int64_t now_ms, const struct an_tz *tz,
                           struct an_query *q, struct wa_error *error);
/* True when the message document matches q's filters (not the period). */
bool an_query_match(const struct an_query *q, const json_t *doc);

/* Accumulated figures of a set of messages (one bucket, or a whole period). */
struct an_totals {
    uint64_t messages;       /* message documents added */
    uint64_t n[AN_NSTATES];  /* messages that reached each state */
    uint64_t attempted;      /* reached accepted or failed */
    uint64_t late_failures;  /* failed after delivered */
    struct an_hist lat[3];   /* accepted->sent, sent->delivered, delivered->read */
    struct an_hist delivery; /* accepted->delivered (the KPI's latency) */
    int64_t cost_micros[AN_NCATEGORIES];
    uint64_t unpriced;           /* billable messages without a rate */
    uint64_t business_initiated; /* templates that reached sent */
    uint64_t replied;            /* of those, answered within 24 h */
    uint64_t inbound;
    struct an_hist first_response;
    json_t *failures; /* {"<code>": count} */
};

void an_totals_init(struct an_totals *t);
void an_totals_clear(struct an_totals *t);
/* Adds one message document (the fields an_timeline_update writes), costed with rc (NULL: no
 * cost). */
void an_totals_add_message(struct an_totals *t, const json_t *doc, const struct an_ratecard *rc);
void an_totals_merge(struct an_totals *into, const struct an_totals *from);
/* into -= from (counts wrap: a row delta may be negative; see rows.c). */
void an_totals_subtract(struct an_totals *into, const struct an_totals *from);
/* {"totals", "rates", "latency_ms", "failures_by_code", "cost", "inbound", "reply_rate",
 * "first_response_ms"}. New reference. */
json_t *an_totals_json(const struct an_totals *t, const char *currency);

/* ---- stored rows (rows.c) ---- */

/* The row of a message document: {"b": its half-hour bucket, "phone_number_id", "template",
 * "category" (else its pricing category), "country"} (absent ones left out). New reference;
 * NULL when doc has no integer "at". */
json_t *an_row_dims(const json_t *doc);
/* The row's _id: the compact JSON array [b, phone_number_id, template, category, country]
 * (null for an absent one). Returns a new string (free), NULL when out of memory. */
char *an_row_id(const json_t *dims);

/* Rows being accumulated: contributions (or changes) of message documents per row. */
struct an_row {
    char *id;
    json_t *dims; /* an_row_dims */
    struct an_totals t;
};
struct an_rows {
    struct an_row *v;
    size_t n, cap;
    json_t *index; /* id -> position in v */
};
void an_rows_init(struct an_rows *r);
void an_rows_clear(struct an_rows *r);
/* Adds (sign > 0) or takes away (sign < 0) the contribution of the message document doc (NULL:
 * none) to its row, costed with rc. WA_ENOMEM. */
enum wa_err an_rows_add_message(struct an_rows *r, const json_t *doc, const struct an_ratecard *rc,
                                int sign);
/* The figures of t as a MongoDB $inc: {"n.sent": 3, "h.d.b.41": 1, ...}, every non-zero figure
 * (negative for a decrease). New reference; NULL when out of memory. */
json_t *an_totals_inc(const struct an_totals *t);
/* Adds the figures of a stored row (the $inc fields, nested) to t. */
void an_totals_add_row(struct an_totals *t, const json_t *row);

/*
 * Engagement (replies, inbound messages, first responses) joins a contact's messages and
 * inbound messages, so it is kept per contact: an engagement document {_id: contact, o: [the
 * entries of its message documents], i: [the entries of its inbound documents]} and its
 * contribution to the rows (an_rows_add_contact), a pure function of the entries.
 */
/* The entry of a message document: {id, t (sent, else at), s (sent, else delivered, else read;
 * 0 = none), tp (a template), r (its row key)}. New reference; NULL without contact or at. */
json_t *an_engage_out(const json_t *doc);
/* The entry of an inbound document: {id, at, phone_number_id}. New reference; NULL without
 * contact or at. */
json_t *an_engage_in(const json_t *doc);
/* Puts entry (takes ownership; NULL removes) in place of the entry with id (borrowed) in the
 * list "o" or "i" of the engagement document doc, or appends it. WA_ENOMEM. */
enum wa_err an_engage_set(json_t *doc, const char *list, const json_t *id, json_t *entry);
/*
 * Adds (sign > 0) or takes away the engagement figures of one contact's document: each
 * template that reached sent counts as business-initiated in its row, and as replied when an
 * inbound message came within 24 h after it; each inbound message counts in the inbound row of
 * its half hour (a row matched by every filter) and, when it is the first one since the
 * business last wrote, its first response (time to the next business message) counts in the
 * row of that message's dimensions at the inbound's half hour. WA_ENOMEM.
 */
enum wa_err an_rows_add_contact(struct an_rows *r, const json_t *doc, int sign);

/* The go-live checks: delivery > 98%, average latency < 2 s, reply rate in [12%, 18%]. */
struct an_kpi {
    const char *name; /* "delivery_rate", "average_latency_seconds", "reply_rate" */
    double value;     /* NAN without data */
    const char *op;   /* ">", "<", "between" */
    double lo, hi;    /* threshold(s) */
    bool pass;        /* false without data */
};
#define AN_NKPIS 3
void an_kpis(const struct an_totals *t, struct an_kpi out[AN_NKPIS]);
/* {"kpis": [{"name", "value", "threshold", "pass"}...], "pass"}. New reference. */
json_t *an_kpis_json(const struct an_kpi k[AN_NKPIS]);

/* The meaning of a Cloud API error code for reports ("" when unknown). */
const char *an_error_meaning(int64_t code);

/* ---- the daemon ---- */

struct wa_service;
struct wa_loop;
struct wa_metrics;
struct wa_mongo;
struct wa_kafka_consumer;
struct wa_kafka_msg;
struct wa_timer;
struct wa_counter;
struct wa_gauge;
struct wa_histogram;
struct wa_http_req;

#define AN_COLL_MESSAGES "messages"
#define AN_COLL_INBOUND  "inbound"
#define AN_COLL_BUCKETS  "buckets"    /* the rows (rows.c) */
#define AN_COLL_JOURNAL  "journal"    /* batches being applied (consume.c) */
#define AN_COLL_ENGAGE   "engagement" /* per contact (rows.c) */

struct an_config {
    struct wa_common_config common;
    char *group;
    int64_t batch;
    int64_t flush_ms;
    char *ratecard;
    char *tz_dir;
    int64_t max_scan;
    int64_t kpi_interval_ms;
    int64_t kpi_period_ms;
};
extern const struct wa_cfg_spec an_config_spec[];
extern const size_t an_config_nspec;

struct an_batch;
struct an_kpi_job;

struct an {
    const struct an_config *cfg;
    struct wa_service *svc;
    struct wa_loop *loop;
    struct wa_metrics *metrics;
    struct wa_mongo *mongo;
    struct wa_kafka_consumer *consumer;
    struct an_ratecard ratecard; /* empty when WA_ANALYTICS_RATECARD is unset */
    char topic_prefix[64];
    struct an_batch *filling; /* events waiting for the next write */
    struct an_batch *writing; /* the write in progress, or NULL */
    struct wa_timer *flush_timer;
    /* journals (consume.c): replayed before the first batch; ids only grow */
    bool replayed;
    json_t *replay; /* journals left to apply */
    struct wa_timer *replay_timer;
    int64_t journal_last;
    struct wa_timer *kpi_timer;
    bool draining;
    size_t queries;             /* API queries in progress */
    struct wa_list jobs;        /* API requests waiting for MongoDB (api.c) */
    struct an_kpi_job *kpi_job; /* the KPI gauges' scan in progress (health.c) */
    struct an_tz zones[16];     /* zones loaded so far (api.c) */
    size_t nzones;
    struct {
        struct wa_counter *events[6], *malformed, *ignored, *batches, *write_errors;
        struct wa_histogram *batch_size;
        struct wa_gauge *kpi_value[AN_NKPIS], *kpi_pass[AN_NKPIS], *kpi_messages;
    } m;
};

/* consume.c: Kafka -> one batch -> MongoDB -> commit (README.md "Guarantees"). */
enum wa_err an_consume_start(struct an *an, struct wa_error *error);
void an_consume_drain(struct an *an); /* write the batch being filled, start no KPI scan */
/* True while a write, a filling batch or an API query is in flight (SIGTERM waits). */
bool an_busy(const struct an *an);
void an_consume_stop(struct an *an);
/* The events of one consumed message (pure; used by tests and fuzzing through it). Appends
 * {"coll", "filter", "update"} operations to ops; an erased contact gives {"erase": contact}.
 * WA_EPARSE for an event that cannot be read (error says why), WA_ENOTFOUND for one that
 * carries nothing to record. */
enum wa_err an_consume_translate(const char *topic_suffix, const void *value, size_t len,
                                 int64_t kafka_ts_ms, const struct an_ratecard *rc, json_t *ops,
                                 struct wa_error *error);

/* query.c helpers used by api.c: run a query against MongoDB, then call done. */
struct an_scan;
typedef void (*an_scan_fn)(struct an_scan *scan, enum wa_err err, void *arg);
struct an_scan {
    struct an *an; /* set to NULL by stop: the scan then ends with WA_ECLOSED */
    struct an_query q;
    const struct an_tz *tz; /* borrowed from an->zones */
    bool engagement;        /* set by the caller: load messages and inbound (summary, KPIs) */
    json_t *rows;           /* matching the filters, half hour overlapping [from, to) */
    struct wa_mongo_cursor *cursor;
    json_t *messages; /* matching the filters, "at" in [from, to) */
    json_t *inbound;  /* "at" in [from, to + 24 h) */
    char last_id[256];
    int phase;
    an_scan_fn done;
    void *arg;
};
/* Starts loading; done runs once, later, with WA_OK, WA_ETOOBIG (more than
 * WA_ANALYTICS_MAX_SCAN rows), WA_ECLOSED (stopping) or a MongoDB error (or an error is
 * returned and done never runs). */
enum wa_err an_scan_start(struct an *an, struct an_scan *scan, an_scan_fn done, void *arg);
void an_scan_cleanup(struct an_scan *scan);
/* A document read from a cursor as JSON (relaxed Extended JSON). New reference; NULL when out
 * of memory. */
json_t *an_bson_json(const bson_t *doc);
/* Figures of the scan: the whole period (engagement included). New reference. */
json_t *an_scan_summary(const struct an_scan *scan, struct an_totals *out_totals);
/* Per period of the query's granularity in its zone. New reference. */
json_t *an_scan_series(const struct an_scan *scan);

/* api.c: REST routes; dashboard.c: GET /dashboard. */
enum wa_err an_api_start(struct an *an, struct wa_error *error);
/* Forgets the requests still waiting (their callbacks then free them). */
void an_api_stop(struct an *an);
enum wa_err an_dashboard_start(struct an *an, struct wa_error *error);
/* The zone called name, loaded on first use (cached); NULL with error set when unknown. */
const struct an_tz *an_zone(struct an *an, const char *name, struct wa_error *error);
/* Answers req with application/problem+json. */
void an_problem(struct wa_http_req *req, int status, const char *title, const char *detail);

/* rebuild.c: `wa-analytics rebuild`: every row recomputed from the message documents; 0 on
 * success, 1 on a MongoDB error, 2 on a configuration error. */
int an_rebuild_main(void);

/* health.c: metrics and the KPI gauges (recomputed every WA_ANALYTICS_KPI_INTERVAL). */
enum wa_err an_health_start(struct an *an, struct wa_error *error);
void an_health_stop(struct an *an);

#endif
