/*
 * router.h: the shared declarations of wa-router (stages, rules, state). Private to the service.
 *
 * Flow of one inbound.message event (files in reading order, README.md):
 *   consume.c   Kafka consumer (inbound.message, outbound.result), per-conversation queues,
 *               the per-message pipeline: state -> evaluate -> act -> done
 *   window.c    one Redis script per message: idempotency claim, 24 h window, first-message
 *               flag, contact attributes; window-expiring / window-closed events
 *   rules.c     the rules file: parse, validate (errors name rule and field), reference counts
 *   match.c     text normalisation (case, diacritics, Arabic forms) and rule evaluation (pure)
 *   act.c       runs a rule's actions: reply (act_reply.c), forward (act_crm.c), hand-off
 *               (act_handoff.c), tag/untag/opt-out (act_tag.c), remind (reminders.c)
 *   jobs.c      durable delayed jobs in Redis sorted sets (CRM deliveries, reminders)
 *   replay.c    wa-router --replay: candidate rules against archived webhook.raw traffic
 *   health.c    metrics and probes
 *
 * Threading: everything runs on the loop thread; no locks.
 * Ownership: struct rt owns every stage's state; a ruleset is reference counted so work in
 * flight keeps the rules it started with while SIGHUP swaps in new ones.
 */
#ifndef RT_ROUTER_H
#define RT_ROUTER_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/buf.h"
#include "wa/contract.h"
#include "wa/err.h"
#include "wa/json.h"
#include "wa/metrics.h"
#include "wa/service.h"

#define RT_NAME_MAX 64 /* rule and destination names, NUL included */
#define RT_TEXT_MAX \
    4096 /* bytes of message text looked at (Meta's body limit is 4096
                                  characters; longer input is cut, never rejected) */
#define RT_NORM_MAX       (RT_TEXT_MAX * 2 + 8)
#define RT_MATCH_MAX      16 /* rules one message can match (stop ends earlier) */
#define RT_KEY_MAX        512
#define RT_TAGS_MAX       32
#define RT_ACTIONS_MAX    16
#define RT_RULES_MAX      1000
#define RT_RULES_FILE_MAX (4u * 1024u * 1024u)

/* ---- configuration (config.c) ---- */
struct rt_config {
    struct wa_common_config common;
    char *rules_path;       /* WA_ROUTER_RULES */
    char *group;            /* WA_ROUTER_GROUP: consumer group */
    int64_t window_ms;      /* WA_ROUTER_WINDOW: 24 h */
    int64_t window_warn_ms; /* WA_ROUTER_WINDOW_WARN: window-expiring lead time */
    bool window_events;     /* WA_ROUTER_WINDOW_EVENTS */
    int64_t seen_ttl_ms;    /* WA_ROUTER_SEEN_TTL: idempotency records */
    int64_t delay_scale;    /* WA_ROUTER_DELAY_SCALE: reminder delays divided by this */
    int64_t tick_ms;        /* WA_ROUTER_TICK: job pump period */
    int64_t retry_ms;       /* WA_ROUTER_RETRY: re-run a message whose actions failed */
    int64_t lease_ms;       /* WA_ROUTER_LEASE: a claimed job reappears after this */
    char *crm_ca_file;      /* WA_ROUTER_CRM_CA_FILE */
};
extern const struct wa_cfg_spec rt_config_spec[];
extern const size_t rt_config_nspec;

/* ---- rules (rules.c) ---- */
struct rt_strlist {
    char **v; /* owned strings */
    size_t n;
};

/* exact: the whole message; contains: anywhere; prefix: at the start; word: a whole word (or
 * words) anywhere, bounded by the text's ends, spaces or punctuation. All case-insensitive. */
enum rt_kw_mode { RT_KW_EXACT, RT_KW_CONTAINS, RT_KW_PREFIX, RT_KW_WORD, RT_KW__COUNT };

struct rt_hours {
    bool set;
    bool outside;  /* true: match outside these hours */
    char tz[64];   /* IANA zone, e.g. "Asia/Dubai"; "UTC" */
    unsigned days; /* bit 0 Sunday .. bit 6 Saturday */
    int from_min;  /* minutes since local midnight */
    int to_min;    /* exclusive; from > to spans midnight */
};

struct rt_match {
    struct rt_strlist types;
    struct rt_strlist kw[RT_KW__COUNT]; /* normalised */
    bool has_regex;
    regex_t regex;
    struct rt_strlist reply_ids;
    struct rt_strlist payloads;
    struct rt_strlist tags_any, tags_all, tags_none;
    struct rt_strlist languages;
    struct rt_hours hours;
    int first; /* -1 either, 0 not the first message, 1 the first */
};

enum rt_action_kind {
    RT_ACT_REPLY,
    RT_ACT_FORWARD,
    RT_ACT_HANDOFF,
    RT_ACT_TAG,
    RT_ACT_UNTAG,
    RT_ACT_OPT_OUT,
    RT_ACT_OPT_IN,
    RT_ACT_SET_ATTRIBUTE,
    RT_ACT_REMIND,
    RT_ACT__COUNT,
};

enum rt_cancel_on { RT_CANCEL_BUSINESS_REPLY, RT_CANCEL_INBOUND, RT_CANCEL_NEVER };

struct rt_action {
    enum rt_action_kind kind;
    json_t *spec; /* the action's object in the rules file (reference held) */
    /* reply */
    const char *reply_type; /* borrowed from spec: text, template, interactive, image, ... */
    const json_t *reply_body;
    const char *category;
    bool quote; /* reply in context of the inbound message */
    /* forward */
    char dest[RT_NAME_MAX];
    /* handoff */
    const char *queue, *priority, *note;
    /* tag, untag */
    struct rt_strlist tags;
    /* set_attribute */
    const char *attr_name, *attr_value;
    /* remind */
    int64_t after_ms;
    enum rt_cancel_on cancel_on;
    char remind_id[RT_NAME_MAX];
    const json_t *remind_actions; /* validated like a rule's actions; run when due */
};

struct rt_rule {
    char name[RT_NAME_MAX];
    bool enabled;
    bool stop; /* "then": "stop" (default) or "continue" */
    struct rt_match match;
    struct rt_action *actions;
    size_t nactions;
    struct wa_counter *hits; /* metrics, set by rt_health_rules() */
};

struct rt_dest {
    char name[RT_NAME_MAX];
    char *url;
    char *secret; /* from the variable named by secret_env; NULL: no signature */
    double rate_per_s;
    double burst;
    int batch_max;
    int64_t batch_wait_ms;
    int64_t timeout_ms;
    int max_attempts;
    int64_t backoff_initial_ms;
    int64_t backoff_max_ms;
};

struct rt_ruleset {
    int refs;
    json_t *root;
    char path[512];
    struct rt_rule *rules;
    size_t nrules;
    struct rt_dest *dests;
    size_t ndests;
};

/*
 * Loads and validates a rules file. Returns a new ruleset (one reference) in *out; release
 * with rt_rules_unref(). On WA_ECONFIG / WA_EPARSE every problem found is appended to errors
 * (one line each, "rule 2 \"price\": match.keywords.exact[0]: must be a string") and the
 * first one is in error. env looks up secret_env variables (NULL: getenv).
 */
enum wa_err rt_rules_load(const char *path, struct rt_ruleset **out, struct wa_buf *errors,
                          struct wa_error *error);
enum wa_err rt_rules_parse(const char *text, size_t len, const char *path, struct rt_ruleset **out,
                           struct wa_buf *errors, struct wa_error *error);
/* Validates a list of actions (a reminder's); exposed for the job runner. */
enum wa_err rt_rules_parse_actions(const struct rt_ruleset *rs, const json_t *arr,
                                   const char *where, bool nested, struct rt_action **out,
                                   size_t *n, struct wa_buf *errors);
void rt_actions_free(struct rt_action *a, size_t n);
struct rt_ruleset *rt_rules_ref(struct rt_ruleset *rs);
void rt_rules_unref(struct rt_ruleset *rs);
const struct rt_dest *rt_rules_dest(const struct rt_ruleset *rs, const char *name);
const char *rt_action_name(enum rt_action_kind kind);

/* ---- matching (match.c), pure ---- */

/* Facts about one inbound message, all borrowed. */
struct rt_msg {
    const char *type;
    const char *text; /* text body, caption, button text or reply title; may be NULL */
    const char *norm; /* rt_text_normalize(text) */
    const char *reply_id;
    const char *payload;
    const char *phone_number_id;
    const char *contact;
    const char *to;        /* wa_id, or NULL for a BSUID-only contact */
    const char *recipient; /* BSUID when to is NULL */
    const char *wamid;
    const char *profile_name;
    int64_t ts_ms;  /* message time */
    int64_t now_ms; /* evaluation time (message time during --replay) */
    bool first;
    bool attrs_known;
    const char *const *tags;
    size_t ntags;
    const char *language;
};

struct rt_decision {
    size_t rule[RT_MATCH_MAX]; /* indexes into the ruleset, in order */
    size_t n;
};

/*
 * Writes the normalised form of s (len bytes of UTF-8) into out (size bytes, NUL-terminated):
 * lower case, Latin diacritics removed (Latin-1, Latin Extended-A, combining marks), Arabic
 * harakat and tatweel removed and alef / yeh / teh marbuta / kaf forms unified, Arabic-Indic
 * digits as ASCII, whitespace runs as one space, trimmed. Invalid UTF-8 bytes are dropped.
 * Returns the length written.
 */
size_t rt_text_normalize(const char *s, size_t len, char *out, size_t size);

/* Fills msg's type-dependent fields (text, reply_id, payload) from an inbound message. */
void rt_msg_from_inbound(const struct wa_contract_inbound_message *in, struct rt_msg *msg);

/* True when rule matches msg. */
bool rt_rule_matches(const struct rt_rule *rule, const struct rt_msg *msg);
/* Evaluates rs in order into d (matching rules up to the first that stops). */
void rt_rules_evaluate(const struct rt_ruleset *rs, const struct rt_msg *msg,
                       struct rt_decision *d);
/* True when t (ms since the epoch) falls within h. */
bool rt_hours_contain(const struct rt_hours *h, int64_t t_ms);
/* Validates an IANA zone name (a file under /usr/share/zoneinfo, or "UTC"). */
bool rt_tz_valid(const char *tz);

/* Replaces {{name}}, {{contact}}, {{text}}, {{phone_number_id}}, {{wamid}}, {{rule}} in every
 * string of a deep copy of tmpl. Returns a new reference, NULL when out of memory. */
json_t *rt_vars_apply(const json_t *tmpl, const struct rt_msg *msg, const char *rule);

/* ---- the daemon ---- */
struct rt_conv;
struct rt_work;
struct rt_jobs;
struct rt_crm;

struct rt_metrics {
    struct wa_counter *consumed, *duplicates, *invalid, *processed, *failures, *retries;
    struct wa_counter *reloads, *reload_failures, *window_events;
    struct wa_counter *crm_sent, *crm_failed, *crm_dlq, *crm_retried, *crm_limited;
    struct wa_counter *reminders_scheduled, *reminders_fired, *reminders_cancelled;
    struct wa_counter *erasures;  /* forget.c */
    struct wa_histogram *latency; /* consume -> actions acknowledged, seconds */
    struct wa_gauge *rules;
};

/* reminders.c's pump */
struct rt_reminders {
    struct wa_timer *timer;
    bool claiming;  /* a claim of due reminders is in flight */
    size_t running; /* reminders firing */
};

/* The daemon's state: the stages' state (main.c's table), freed by the scaffolding after the
 * last stage stopped, so every callback of a shared client found it alive. */
struct rt {
    struct wa_service *svc;
    const struct rt_config *cfg;
    struct wa_loop *loop;
    struct wa_kafka_producer *producer;
    struct wa_kv *kv;
    struct wa_kafka_consumer *consumer; /* the scaffolding's (wa_service_consumer) */
    struct rt_ruleset *rules;           /* current; one reference */
    struct rt_conv *convs;              /* conversations with work in flight */
    size_t inflight;                    /* works not finished */
    bool draining;
    struct rt_jobs *jobs;
    struct rt_crm *crm;
    struct rt_reminders rem;
    struct wa_timer *window_timer;
    struct rt_metrics m;
    char prefix[128]; /* WA_TOPIC_PREFIX, also the Redis key prefix */
    char topic_outbound[160], topic_handoff[160], topic_command[160], topic_window[160],
        topic_crm_dlq[160];
};

/* health.c */
enum wa_err rt_health_start(struct rt *rt, struct wa_error *error);
/* Creates the per-rule counters of rs. */
void rt_health_rules(struct rt *rt, struct rt_ruleset *rs);
/* Per rule and action outcome counter ("ok" / "failed"). */
void rt_health_action(struct rt *rt, const char *rule, enum rt_action_kind kind, bool ok);

/* forget.c: a contact.event; kind "erased": the contact's conversation keys deleted, then the
 * message handed back (counted in rt->inflight meanwhile). Takes the message. */
void rt_forget_start(struct rt *rt, struct wa_kafka_msg *kmsg);

/* consume.c */
enum wa_err rt_consume_start(struct rt *rt, struct wa_error *error);
/* SIGTERM: messages that fail from now on are given back to Kafka, not retried. */
void rt_consume_drain(struct rt *rt);
/* True while messages are in flight (SIGTERM waits for them). */
bool rt_consume_busy(const struct rt *rt);
void rt_consume_stop(struct rt *rt);

/* window.c: the per-message Redis state */
struct rt_state_reply {
    bool duplicate;
    bool first;
    bool attrs_known;
    char language[32];
    char *tags[RT_TAGS_MAX]; /* owned; free with rt_state_reply_cleanup */
    size_t ntags;
    int64_t at_ms; /* evaluation time of the first attempt (wall ms); 0: unknown */
};
typedef void (*rt_state_fn)(void *arg, enum wa_err err, struct rt_state_reply *st);
enum wa_err rt_window_claim(struct rt *rt, const struct rt_msg *msg, rt_state_fn fn, void *arg);
void rt_state_reply_cleanup(struct rt_state_reply *st);
/* Marks the message done (idempotency record). */
enum wa_err rt_window_done(struct rt *rt, const char *wamid, void (*fn)(void *, enum wa_err),
                           void *arg);
enum wa_err rt_window_start(struct rt *rt, struct wa_error *error);
void rt_window_stop(struct rt *rt);

/* act.c: runs a list of actions for one message; calls fn once when all finished. */
typedef void (*rt_done_fn)(void *arg, enum wa_err err);
struct rt_act_ctx {
    struct rt *rt;
    const struct rt_msg *msg;
    const char *rule;
    const char *id_base;     /* deterministic idempotency base, e.g. "<wamid>:<rule>" */
    const char *traceparent; /* the message's span (consume.c), carried by events; or NULL */
    const json_t *inbound;   /* the inbound.message data (for CRM records), or NULL */
};
/* Starts every action (in order); fn(arg, err) runs once after all of them finished, with the
 * first failure. Returns WA_OK, or an error and never calls back (nothing was started). */
enum wa_err rt_act_run(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t n,
                       rt_done_fn fn, void *arg);

/* Publishes a CloudEvent on topic carrying parent_tp as its traceparent (a new trace when NULL
 * or invalid). data is borrowed. */
enum wa_err rt_publish(struct rt *rt, const char *topic, const char *subject, const char *type,
                       const char *pnid, const char *parent_tp, json_t *data, rt_done_fn fn,
                       void *arg);

/* Each action: returns WA_OK and calls fn once later, or an error without callback. */
enum wa_err rt_act_reply(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t idx,
                         rt_done_fn fn, void *arg);
enum wa_err rt_act_handoff(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t idx,
                           rt_done_fn fn, void *arg);
enum wa_err rt_act_command(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t idx,
                           rt_done_fn fn, void *arg);
enum wa_err rt_act_forward(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t idx,
                           rt_done_fn fn, void *arg);
enum wa_err rt_act_remind(const struct rt_act_ctx *ctx, const struct rt_action *a, size_t idx,
                          rt_done_fn fn, void *arg);

/* Builds the request id "rt:<base>:<idx>" into out (bounded, hashed when too long). */
void rt_act_id(const char *base, size_t idx, char *out, size_t size);

/* jobs.c: durable delayed jobs (Redis sorted set of ids by due time + hash of JSON bodies) */
typedef void (*rt_jobs_claim_fn)(void *arg, enum wa_err err, size_t n, const char *const *ids,
                                 const char *const *bodies);
enum wa_err rt_jobs_put(struct rt *rt, const char *zset, const char *hash, const char *index,
                        const char *id, int64_t due_ms, const char *body, rt_done_fn fn, void *arg);
enum wa_err rt_jobs_claim(struct rt *rt, const char *zset, const char *hash, int64_t now_ms,
                          size_t limit, rt_jobs_claim_fn fn, void *arg);
enum wa_err rt_jobs_remove(struct rt *rt, const char *zset, const char *hash, const char *index,
                           const char *id, rt_done_fn fn, void *arg);
/* Reschedules an existing job (no-op if it was removed meanwhile). */
enum wa_err rt_jobs_retry(struct rt *rt, const char *zset, const char *hash, const char *id,
                          int64_t due_ms, const char *body, rt_done_fn fn, void *arg);
/* Removes the jobs of index whose id starts with prefix. */
enum wa_err rt_jobs_cancel(struct rt *rt, const char *zset, const char *hash, const char *index,
                           const char *prefix, rt_done_fn fn, void *arg);

/* act_crm.c: the CRM delivery pump */
enum wa_err rt_crm_start(struct rt *rt, struct wa_error *error);
void rt_crm_stop(struct rt *rt);
/* reminders.c */
enum wa_err rt_reminders_start(struct rt *rt, struct wa_error *error);
void rt_reminders_stop(struct rt *rt);
/* outbound.result: a business reply reached the contact; cancels "no business reply" reminders */
enum wa_err rt_reminders_business_reply(struct rt *rt, const char *conv, rt_done_fn fn, void *arg);

/* replay.c: wa-router --replay CANDIDATE [--limit N] [--idle-ms MS]; returns the exit code */
int rt_replay_main(int argc, char **argv);

/* Returns a new ruleset reference: the current rules. */
static inline struct rt_ruleset *
rt_current_rules(struct rt *rt)
{
    return rt_rules_ref(rt->rules);
}

#endif
