/*
 * consume.c: stage 1 of 5 (consume) and the per-message pipeline.
 *
 * Input: <p>inbound.message (and <p>outbound.result, for business replies that cancel
 * reminders, and <p>contact.event, whose erasures forget.c applies), one consumer in group
 * WA_ROUTER_GROUP. For each inbound message:
 *   decode -> conversation queue -> state (window.c: idempotency, window, attributes)
 *   -> evaluate (match.c) -> act, rule after rule (act.c) -> mark done -> Kafka offset done.
 * Per-conversation order: the Kafka key is the conversation, so one conversation's messages
 * arrive in order on one partition; here a conversation has at most one message in the
 * pipeline, later ones wait in its queue. Different conversations proceed concurrently (up to
 * the consumer's max_in_flight).
 * Failures: a message whose state or actions fail is processed again after WA_ROUTER_RETRY
 * (its conversation waits); actions carry deterministic ids so repeats are harmless. A message
 * that cannot be decoded is logged, counted and skipped (it would never decode).
 *
 * Threading: loop thread. Ownership: a work item owns its decoded event and a ruleset
 * reference; it is freed in finish(), after the offset was handed back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract_outbound.h"
#include "wa/kafka.h"
#include "wa/log.h"
#include "wa/trace.h"

struct rt_work {
    struct rt *rt;
    struct wa_kafka_msg *kmsg; /* handed back in finish() */
    struct wa_cloudevent_doc *doc;
    struct wa_contract_inbound_message in;
    struct rt_msg msg;
    char norm[RT_NORM_MAX];
    struct rt_conv *conv;
    struct rt_ruleset *rules;
    char *tags[RT_TAGS_MAX]; /* owned */
    size_t ntags;
    char language[32];
    struct rt_decision d;
    size_t next_rule;
    bool evaluated; /* d holds the first evaluation: a retry resumes it, never re-evaluates (the
                       tags the first attempt wrote would change what matches) */
    char id_base[RT_KEY_MAX];
    char tp[WA_TRACEPARENT_LEN]; /* this message's span; its events carry it (wa/trace.h) */
    uint64_t started_us;
    struct wa_timer *retry;
    bool waiting; /* a Redis or Kafka callback is due */
    struct rt_work *next;
};

struct rt_conv {
    char key[WA_CONTRACT_KEY_MAX];
    struct rt_work *head, *tail;
    struct rt_conv *next;
};

static void start_work(struct rt_work *w);

static void
work_free(struct rt_work *w)
{
    for (size_t i = 0; i < w->ntags; i++) {
        free(w->tags[i]);
    }
    wa_timer_free(w->retry);
    rt_rules_unref(w->rules);
    wa_cloudevent_doc_free(w->doc);
    free(w);
}

static struct rt_conv *
conv_find(struct rt *rt, const char *key, bool create)
{
    struct rt_conv *c;

    for (c = rt->convs; c != NULL; c = c->next) {
        if (strcmp(c->key, key) == 0) {
            return c;
        }
    }
    if (!create || (c = calloc(1, sizeof(*c))) == NULL) {
        return NULL;
    }
    snprintf(c->key, sizeof(c->key), "%s", key);
    c->next = rt->convs;
    rt->convs = c;
    return c;
}

static void
conv_remove(struct rt *rt, struct rt_conv *c)
{
    struct rt_conv **pp;

    for (pp = &rt->convs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            free(c);
            return;
        }
    }
}

/* Hands the Kafka message back, frees w and starts the next message of its conversation. */
static void
finish(struct rt_work *w)
{
    struct rt *rt = w->rt;
    struct rt_conv *c = w->conv;
    struct rt_work *next = NULL;

    if (rt->consumer != NULL && w->kmsg != NULL) {
        wa_kafka_consumer_done(rt->consumer, w->kmsg);
    }
    if (c != NULL) {
        c->head = w->next;
        if (c->head == NULL) {
            c->tail = NULL;
            conv_remove(rt, c);
        } else {
            next = c->head;
        }
    }
    work_free(w);
    rt->inflight--;
    if (next != NULL) {
        start_work(next);
    }
}

static void
on_retry(struct wa_timer *t, void *arg)
{
    struct rt_work *w = arg;

    (void)t;
    start_work(w);
}

/* Processes w again later: its state said "pending", so its decisions repeat. */
static void
retry_later(struct rt_work *w, const char *what, enum wa_err err)
{
    struct rt *rt = w->rt;
    struct wa_log_ctx lc = {.event_id = w->doc != NULL ? w->doc->ev.id : NULL};

    w->waiting = false;
    if (rt->draining) {
        /* Not handed back: its offset (and every later one of its partition) stays
         * uncommitted, so the next owner of the partition processes it again. */
        w->kmsg = NULL;
        finish(w);
        return;
    }
    wa_counter_inc(rt->m.retries);
    wa_log_warn(&lc, "message %s: %s failed (%s); retrying in %lld ms", w->msg.wamid, what,
                wa_err_name(err), (long long)rt->cfg->retry_ms);
    if (w->retry == NULL && (w->retry = wa_timer_new(rt->loop, on_retry, w)) == NULL) {
        finish(w);
        return;
    }
    wa_timer_start(w->retry, (uint64_t)rt->cfg->retry_ms, 0);
}

/* The message's span: consumed to every action done, child of wa-ingest's webhook span. */
static void
record_span(const struct rt_work *w)
{
    struct wa_tracer *t = wa_service_tracer(w->rt->svc);
    const struct wa_trace_attr attrs[] = {{"wa.wamid", w->msg.wamid, 0},
                                          {"wa.rules_matched", NULL, (int64_t)w->d.n}};
    uint64_t end_ns = wa_trace_now_ns(), took_ns = (wa_clock_mono_us() - w->started_us) * 1000u;

    wa_tracer_span(t, "router decide and act", w->tp, w->doc->ev.traceparent, end_ns - took_ns,
                   end_ns, attrs, WA_ARRAY_LEN(attrs), NULL);
}

static void
on_marked(void *arg, enum wa_err err)
{
    struct rt_work *w = arg;
    struct rt *rt = w->rt;

    w->waiting = false;
    if (err != WA_OK) {
        /* the actions are out; a redelivery would repeat them with the same ids */
        wa_log_warn(NULL, "message %s: idempotency record not completed: %s", w->msg.wamid,
                    wa_err_name(err));
    }
    wa_counter_inc(rt->m.processed);
    wa_histogram_observe(rt->m.latency, (double)(wa_clock_mono_us() - w->started_us) / 1e6);
    record_span(w);
    finish(w);
}

static void run_next_rule(struct rt_work *w);

static void
on_rule_done(void *arg, enum wa_err err)
{
    struct rt_work *w = arg;

    w->waiting = false;
    if (err != WA_OK) {
        wa_counter_inc(w->rt->m.failures);
        retry_later(w, "actions", err);
        return;
    }
    w->next_rule++;
    run_next_rule(w);
}

static void
run_next_rule(struct rt_work *w)
{
    struct rt *rt = w->rt;
    struct rt_act_ctx ctx = {0};
    const struct rt_rule *rule;
    enum wa_err err;

    if (w->next_rule >= w->d.n) {
        w->waiting = true;
        if ((err = rt_window_done(rt, w->msg.wamid, on_marked, w)) != WA_OK) {
            on_marked(w, err);
        }
        return;
    }
    rule = &w->rules->rules[w->d.rule[w->next_rule]];
    snprintf(w->id_base, sizeof(w->id_base), "%s:%s", w->msg.wamid, rule->name);
    ctx.rt = rt;
    ctx.msg = &w->msg;
    ctx.rule = rule->name;
    ctx.id_base = w->id_base;
    ctx.traceparent = w->tp;
    ctx.inbound = w->doc->ev.data;
    w->waiting = true;
    if ((err = rt_act_run(&ctx, rule->actions, rule->nactions, on_rule_done, w)) != WA_OK) {
        on_rule_done(w, err);
    }
}

static void
on_state(void *arg, enum wa_err err, struct rt_state_reply *st)
{
    struct rt_work *w = arg;
    struct rt *rt = w->rt;
    struct wa_log_ctx lc = {.event_id = w->doc->ev.id};

    w->waiting = false;
    if (err != WA_OK) {
        retry_later(w, "state", err);
        return;
    }
    if (st->duplicate) {
        wa_counter_inc(rt->m.duplicates);
        wa_log_debug(&lc, "message %s already processed", w->msg.wamid);
        finish(w);
        return;
    }
    if (w->evaluated) { /* a retry: the same rules, from the one that failed */
        run_next_rule(w);
        return;
    }
    for (size_t i = 0; i < w->ntags; i++) {
        free(w->tags[i]);
    }
    /* take the tags over from the reply */
    memcpy(w->tags, st->tags, st->ntags * sizeof(char *));
    w->ntags = st->ntags;
    st->ntags = 0;
    snprintf(w->language, sizeof(w->language), "%s", st->language);
    w->msg.first = st->first;
    w->msg.attrs_known = st->attrs_known;
    w->msg.tags = (const char *const *)w->tags;
    w->msg.ntags = w->ntags;
    w->msg.language = w->language[0] != '\0' ? w->language : NULL;
    /* the first attempt's time: a redelivered message is judged by the same hours */
    w->msg.now_ms = st->at_ms > 0 ? st->at_ms : (int64_t)wa_clock_wall_ms();
    rt_rules_evaluate(w->rules, &w->msg, &w->d);
    w->evaluated = true;
    for (size_t i = 0; i < w->d.n; i++) {
        const struct rt_rule *r = &w->rules->rules[w->d.rule[i]];
        wa_counter_inc(r->hits);
        wa_log_info(&lc, "message %s (%s) matched rule %s", w->msg.wamid, w->msg.type, r->name);
    }
    w->next_rule = 0;
    run_next_rule(w);
}

static void
start_work(struct rt_work *w)
{
    enum wa_err err;

    if (w->rules == NULL) {
        w->rules = rt_current_rules(w->rt); /* kept for the whole message, across retries */
    }
    w->waiting = true;
    if ((err = rt_window_claim(w->rt, &w->msg, on_state, w)) != WA_OK) {
        w->waiting = false;
        retry_later(w, "state", err);
    }
}

/* ---- inbound.message ---- */

static void
on_inbound(struct rt *rt, struct wa_kafka_msg *kmsg)
{
    struct rt_work *w = calloc(1, sizeof(*w));
    struct wa_error error = {0};
    char key[WA_CONTRACT_KEY_MAX];
    enum wa_err err;

    if (w == NULL) {
        wa_log_error(NULL, "out of memory: message at %s[%d]@%lld dropped from this run",
                     kmsg->topic, kmsg->partition, (long long)kmsg->offset);
        wa_kafka_consumer_done(rt->consumer, kmsg); /* cannot happen in practice; see log */
        return;
    }
    w->rt = rt;
    w->kmsg = kmsg;
    w->started_us = wa_clock_mono_us();
    rt->inflight++;
    wa_counter_inc(rt->m.consumed);
    if (kmsg->value == NULL ||
        (err = wa_cloudevent_decode(kmsg->value, kmsg->len, &w->doc, &error)) != WA_OK ||
        (err = wa_contract_inbound_message_decode(w->doc->ev.data, &w->in, &error)) != WA_OK ||
        (err = wa_contract_conversation_key(w->in.phone_number_id, w->in.contact, key,
                                            sizeof(key))) != WA_OK) {
        wa_counter_inc(rt->m.invalid);
        wa_log_warn(NULL, "skipping unreadable event at %s[%d]@%lld: %s", kmsg->topic,
                    kmsg->partition, (long long)kmsg->offset,
                    error.message[0] != '\0' ? error.message : "no value");
        finish(w);
        return;
    }
    if (w->in.phone_number_id == NULL) {
        w->in.phone_number_id = "unknown";
    }
    wa_traceparent_child(w->doc->ev.traceparent, w->tp);
    rt_msg_from_inbound(&w->in, &w->msg);
    w->msg.ts_ms = w->in.timestamp > 0 ? w->in.timestamp * 1000 : 0;
    if (w->msg.text != NULL) {
        size_t n = strlen(w->msg.text);
        rt_text_normalize(w->msg.text, n > RT_TEXT_MAX ? RT_TEXT_MAX : n, w->norm, sizeof(w->norm));
        w->msg.norm = w->norm;
    }
    if ((w->conv = conv_find(rt, key, true)) == NULL) {
        retry_later(w, "queueing", WA_ENOMEM);
        return;
    }
    if (w->conv->tail != NULL) {
        w->conv->tail->next = w; /* wait behind the conversation's earlier message */
        w->conv->tail = w;
        return;
    }
    w->conv->head = w->conv->tail = w;
    start_work(w);
}

/* ---- outbound.result ---- */

struct result_work {
    struct rt *rt;
    struct wa_kafka_msg *kmsg;
};

static void
on_cancelled(void *arg, enum wa_err err)
{
    struct result_work *r = arg;
    struct rt *rt = r->rt;

    if (err != WA_OK) {
        wa_log_warn(NULL, "business reply: reminders not cancelled: %s", wa_err_name(err));
    } else {
        wa_counter_inc(rt->m.reminders_cancelled);
    }
    wa_kafka_consumer_done(rt->consumer, r->kmsg);
    free(r);
    rt->inflight--;
}

static void
on_result(struct rt *rt, struct wa_kafka_msg *kmsg)
{
    struct wa_cloudevent_doc *doc = NULL;
    const char *rid, *status, *pnid, *to;
    char conv[WA_CONTRACT_KEY_MAX];
    struct result_work *r;
    bool business = false;

    if (kmsg->value != NULL && wa_cloudevent_decode(kmsg->value, kmsg->len, &doc, NULL) == WA_OK) {
        rid = wa_json_str(doc->ev.data, "request_id");
        status = wa_json_str(doc->ev.data, "status");
        pnid = wa_json_str(doc->ev.data, "phone_number_id");
        to = wa_json_str(doc->ev.data, "to");
        /* a business reply: accepted, and not one of the router's own automatic replies */
        business = status != NULL && strcmp(status, "accepted") == 0 && rid != NULL &&
                   strncmp(rid, "rt:", 3) != 0 && pnid != NULL;
        if (business && to != NULL) {
            snprintf(conv, sizeof(conv), "%s:%s", pnid, to[0] == '+' ? to + 1 : to);
        } else if (business && kmsg->key != NULL && kmsg->keylen < sizeof(conv)) {
            memcpy(conv, kmsg->key, kmsg->keylen);
            conv[kmsg->keylen] = '\0';
        } else {
            business = false;
        }
    }
    wa_cloudevent_doc_free(doc);
    if (!business || (r = calloc(1, sizeof(*r))) == NULL) {
        wa_kafka_consumer_done(rt->consumer, kmsg);
        return;
    }
    r->rt = rt;
    r->kmsg = kmsg;
    rt->inflight++;
    if (rt_reminders_business_reply(rt, conv, on_cancelled, r) != WA_OK) {
        /* Redis is down: the result is not retried; the reminder may fire (logged) */
        on_cancelled(r, WA_EUNAVAIL);
    }
}

static void
on_message(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct rt *rt = arg;
    size_t n = strlen(rt->prefix);

    (void)c;
    if (strncmp(msg->topic, rt->prefix, n) == 0 &&
        strcmp(msg->topic + n, WA_TOPIC_OUTBOUND_RESULT) == 0) {
        on_result(rt, msg);
    } else if (strncmp(msg->topic, rt->prefix, n) == 0 &&
               strcmp(msg->topic + n, WA_TOPIC_CONTACT_EVENT) == 0) {
        rt_forget_start(rt, msg);
    } else {
        on_inbound(rt, msg);
    }
}

enum wa_err
rt_consume_start(struct rt *rt, struct wa_error *error)
{
    struct wa_kafka_config kc;
    char t_in[192], t_res[192], t_contact[192];
    const char *topics[3] = {t_in, t_res, t_contact};
    struct wa_service_consumer sc = {.group = rt->cfg->group,
                                     .topics = topics,
                                     .ntopics = 3,
                                     .on_message = on_message,
                                     .arg = rt};
    enum wa_err err;

    wa_service_kafka_config(rt->svc, &kc);
    if ((err = wa_kafka_topic(&kc, WA_TOPIC_INBOUND_MESSAGE, t_in, sizeof(t_in))) != WA_OK ||
        (err = wa_kafka_topic(&kc, WA_TOPIC_OUTBOUND_RESULT, t_res, sizeof(t_res))) != WA_OK ||
        (err = wa_kafka_topic(&kc, WA_TOPIC_CONTACT_EVENT, t_contact, sizeof(t_contact))) !=
            WA_OK) {
        return wa_error_set(error, err, "topic names too long");
    }
    /* the topics exist before the group joins, so a fresh group starts at their beginning */
    if ((err = wa_kafka_topics_ensure(&kc, topics, 3, 4, 10000, error)) != WA_OK) {
        return err;
    }
    return wa_service_consumer(rt->svc, &sc, &rt->consumer, error);
}

void
rt_consume_drain(struct rt *rt)
{
    rt->draining = true; /* failures give their message back to Kafka instead of retrying */
}

bool
rt_consume_busy(const struct rt *rt)
{
    return rt->inflight > 0;
}

void
rt_consume_stop(struct rt *rt)
{
    struct rt_conv *c, *cn;
    struct rt_work *w, *wn;

    /* Every Redis and Kafka callback already ran (the scaffolding silenced the clients): what
     * is left waits for a retry timer or in a conversation's queue. Not handed back: those
     * messages come again to the next owner of their partition. */
    for (c = rt->convs; c != NULL; c = cn) {
        cn = c->next;
        for (w = c->head; w != NULL; w = wn) {
            wn = w->next;
            work_free(w);
            rt->inflight--;
        }
        free(c);
    }
    rt->convs = NULL;
}
