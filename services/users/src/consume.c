/*
 * consume.c: stage 3 of 3 (consume). Input: <p>contact.command (wa-router's STOP / START and
 * other services' requests), <p>inbound.status (failed with 131050), <p>account.event
 * (user_preferences), <p>inbound.message and <p>outbound.result, one consumer in group
 * WA_USERS_GROUP, started once the suppression keys were rebuilt (suppress.c). For each event:
 *   decode -> decide (consent.c: ledger entries; contact.c: profile change)
 *   -> apply (ledger.c each entry; profile.c) -> offset done.
 * Order: one event at a time, in arrival order (the queue below), so two events about one
 * contact never interleave their read-derive-write steps. An event whose apply fails is applied
 * again after WA_USERS_RETRY (its entries are idempotent); an event that does not decode is
 * logged, counted and skipped (it would never decode). The offset is handed back only after
 * every side effect (MongoDB, Redis, contact.event) was acknowledged.
 *
 * Threading: loop thread. Ownership: a work item owns its decoded event until finish().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract_outbound.h"
#include "wa/kafka.h"
#include "wa/log.h"

#define ENTRIES_MAX 16 /* ledger entries one event may ask for */

enum work_kind { W_LEDGER, W_INBOUND, W_REPLY };

struct us_work {
    struct us *us;
    struct wa_kafka_msg *kmsg;
    enum work_kind kind;
    struct us_entry entries[ENTRIES_MAX]; /* W_LEDGER */
    struct us_inbound in;                 /* W_INBOUND */
    char replied[US_ID_MAX];              /* W_REPLY */
    size_t n, next;                       /* steps to apply (0: the event changes nothing) */
    uint64_t started_us;
    bool waiting; /* an apply callback is due */
    struct us_work *next_work;
};

static void run(struct us *us);

static void
finish(struct us_work *w)
{
    struct us *us = w->us;

    us->head = w->next_work;
    if (us->head == NULL) {
        us->tail = NULL;
    }
    if (us->consumer != NULL && w->kmsg != NULL) {
        wa_kafka_consumer_done(us->consumer, w->kmsg);
    }
    wa_histogram_observe(us->m.latency, (double)(wa_clock_mono_us() - w->started_us) / 1e6);
    free(w);
    us->inflight--;
    run(us);
}

static void apply_next(struct us_work *w);

static void
on_applied(void *arg, enum wa_err err)
{
    struct us_work *w = arg;
    struct us *us = w->us;

    w->waiting = false;
    if (err != WA_OK) {
        wa_counter_inc(us->m.failures);
        wa_log_warn(NULL, "%s@%d:%lld: %s; the event is applied again later",
                    w->kmsg != NULL ? w->kmsg->topic : "?",
                    w->kmsg != NULL ? (int)w->kmsg->partition : -1,
                    w->kmsg != NULL ? (long long)w->kmsg->offset : -1LL, wa_err_name(err));
        wa_timer_start(us->retry, (uint64_t)us->cfg->retry_ms, 0);
        return;
    }
    w->next++;
    apply_next(w);
}

static void
apply_next(struct us_work *w)
{
    struct us *us = w->us;
    enum wa_err err;

    if (w->next >= w->n) {
        wa_counter_inc(w->n > 0 ? us->m.applied : us->m.ignored);
        finish(w);
        return;
    }
    switch (w->kind) {
    case W_INBOUND:
        err = us_profile_inbound(us, &w->in, on_applied, w);
        break;
    case W_REPLY:
        err = us_profile_replied(us, w->replied, on_applied, w);
        break;
    default:
        err = us_ledger_apply(us, &w->entries[w->next], on_applied, w);
        break;
    }
    if (err != WA_OK) {
        wa_counter_inc(us->m.failures);
        wa_timer_start(us->retry, (uint64_t)us->cfg->retry_ms, 0);
        return;
    }
    w->waiting = true;
}

static void
on_retry(struct wa_timer *t, void *arg)
{
    struct us *us = arg;

    (void)t;
    if (us->head != NULL && !us->head->waiting) {
        apply_next(us->head);
    }
}

/* Decodes the event and decides its entries; false when it is invalid (counted, skipped). */
static bool
decide(struct us *us, struct us_work *w)
{
    const struct wa_kafka_msg *m = w->kmsg;
    struct wa_cloudevent_doc *doc = NULL;
    struct wa_error error = {0};
    int64_t event_ms = m->timestamp_ms > 0 ? m->timestamp_ms : (int64_t)wa_clock_wall_ms();
    enum wa_err err;

    if (m->value == NULL || wa_cloudevent_decode(m->value, m->len, &doc, &error) != WA_OK) {
        wa_log_warn(NULL, "%s@%d:%lld: not a CloudEvent: %s", m->topic, (int)m->partition,
                    (long long)m->offset, error.message);
        return false;
    }
    (void)wa_contract_time_parse(doc->ev.time, &event_ms);
    w->kind = W_LEDGER;
    if (strcmp(m->topic, us->topic_inbound) == 0) {
        w->kind = W_INBOUND;
        err = us_decide_inbound(doc->ev.data, event_ms, &w->in, &error);
        w->n = err == WA_OK ? 1 : 0;
    } else if (strcmp(m->topic, us->topic_result) == 0) {
        w->kind = W_REPLY;
        err = us_decide_result(doc->ev.data, w->replied, sizeof(w->replied), &error);
        w->n = err == WA_OK && w->replied[0] != '\0' ? 1 : 0;
    } else if (strcmp(m->topic, us->topic_command) == 0) {
        err = us_decide_command(doc->ev.data, event_ms, w->entries, ENTRIES_MAX, &w->n, &error);
    } else if (strcmp(m->topic, us->topic_status) == 0) {
        err = us_decide_status(doc->ev.data, event_ms, w->entries, ENTRIES_MAX, &w->n, &error);
    } else {
        err = us_decide_account(doc->ev.data, event_ms, w->entries, ENTRIES_MAX, &w->n, &error);
    }
    if (err != WA_OK) {
        wa_log_warn(NULL, "%s@%d:%lld (event %s): %s", m->topic, (int)m->partition,
                    (long long)m->offset, doc->ev.id, error.message);
    } else {
        wa_log_debug(NULL, "%s@%d:%lld (event %s): %zu ledger entr%s", m->topic, (int)m->partition,
                     (long long)m->offset, doc->ev.id, w->n, w->n == 1 ? "y" : "ies");
    }
    wa_cloudevent_doc_free(doc);
    return err == WA_OK;
}

static void
run(struct us *us)
{
    struct us_work *w = us->head;

    if (w == NULL || w->waiting || wa_timer_active(us->retry)) {
        return;
    }
    if (w->next == 0 && w->n == 0 && !decide(us, w)) {
        wa_counter_inc(us->m.invalid);
        finish(w);
        return;
    }
    apply_next(w);
}

static void
on_message(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct us *us = arg;
    struct us_work *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        /* cannot queue it: hand it back undone is impossible, so retry by not committing:
         * the message is done only when processed; without memory the process is failing */
        wa_log_error(NULL, "out of memory; event %s@%d:%lld left uncommitted", msg->topic,
                     (int)msg->partition, (long long)msg->offset);
        abort();
    }
    wa_counter_inc(us->m.consumed);
    (void)c;
    w->us = us;
    w->kmsg = msg;
    w->started_us = wa_clock_mono_us();
    us->inflight++;
    if (us->tail != NULL) {
        us->tail->next_work = w;
    } else {
        us->head = w;
    }
    us->tail = w;
    if (us->head == w) {
        run(us);
    }
}

static bool
consumer_ready(void *arg)
{
    struct us *us = arg;

    return us->rebuilt && us->consumer != NULL && wa_kafka_consumer_ready(us->consumer);
}

enum wa_err
us_consume_start(struct us *us, struct wa_error *error)
{
    const char *topics[] = {us->topic_command, us->topic_status, us->topic_account,
                            us->topic_inbound, us->topic_result};
    struct wa_service_consumer sc = {.group = us->cfg->group,
                                     .topics = topics,
                                     .ntopics = 5,
                                     .max_in_flight = (int)us->cfg->max_in_flight,
                                     .on_message = on_message,
                                     .arg = us};

    if ((us->retry = wa_timer_new(us->loop, on_retry, us)) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "retry timer");
    }
    return wa_service_consumer(us->svc, &sc, &us->consumer, error);
}

enum wa_err
us_consume_probe(struct us *us, struct wa_error *error)
{
    return wa_service_probe(us->svc, "consumer", consumer_ready, us) == WA_OK
               ? WA_OK
               : wa_error_set(error, WA_ENOMEM, "probe");
}

bool
us_consume_busy(const struct us *us)
{
    return us->inflight > 0;
}

void
us_consume_stop(struct us *us)
{
    struct us_work *w, *next;

    /* The scaffolding closed the consumer (done offsets committed) and silenced the clients:
     * no apply is due any more. The events left are not handed back: they come again. */
    for (w = us->head; w != NULL; w = next) {
        next = w->next_work;
        free(w);
    }
    us->head = us->tail = NULL;
    us->inflight = 0;
    wa_timer_free(us->retry);
    us->retry = NULL;
}
