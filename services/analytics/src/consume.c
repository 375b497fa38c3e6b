/*
 * consume.c: stage 1. Input: outbound.request, outbound.result, inbound.status,
 * inbound.message and contact.event, consumed as the group WA_ANALYTICS_GROUP. Each event
 * becomes MongoDB updates (an_consume_translate, pure); events gather in a batch of at most
 * WA_ANALYTICS_BATCH (or WA_ANALYTICS_FLUSH old) written together; the batch's Kafka messages
 * are handed back (their offsets become committable) only once every write of the batch
 * succeeded. A failed write retries the whole batch a second later: every update is idempotent
 * (timeline.c), so a repeat, or the redelivery after a crash, changes nothing.
 *
 * Erasure (contact.event "erased"): the contact is replaced by a random pseudonym
 * ("erased:<ULID>") in every message and inbound document; totals stay.
 *
 * Threading: loop thread. Ownership: a batch owns its operations and holds its Kafka messages
 * until they are done; at stop no write of it is in flight any more (the scaffolding silenced
 * MongoDB first), so an_consume_stop frees it; its messages come again after a restart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract.h"
#include "wa/contract_outbound.h"
#include "wa/id.h"
#include "wa/kafka.h"
#include "wa/log.h"
#include "wa/loop.h"
#include "wa/metrics.h"
#include "wa/mongo.h"
#include "wa/whatsapp_message.h"

#define RETRY_MS     1000
#define EEXIST_TRIES 3

/* Order of the m.events counters. */
static const char *const topics[] = {
    WA_TOPIC_OUTBOUND_REQUEST, WA_TOPIC_OUTBOUND_RESULT, WA_TOPIC_INBOUND_STATUS,
    WA_TOPIC_INBOUND_MESSAGE,  WA_TOPIC_CONTACT_EVENT,
};
#define NTOPICS (sizeof(topics) / sizeof(topics[0]))

/* The phases of a batch's write, in order (run_phase). */
enum phase { P_LOAD, P_CONTACTS, P_JOURNAL, P_OPS, P_ROWS, P_FORGET, P_ERASE, P_DONE };

struct an_batch {
    struct an *an;    /* the service's state: outlives every batch */
    json_t *ops;      /* updates, one per document (merged) */
    json_t *index;    /* "<coll>/<_id>" -> its update in ops */
    json_t *erase;    /* erasure operations, run after the updates */
    json_t *olds;     /* "<coll>/<_id>" -> the stored document, or null (P_LOAD, P_CONTACTS) */
    json_t *news;     /* "<coll>/<_id>" -> the document as the batch leaves it */
    json_t *contacts; /* contact -> ["<coll>/<_id>" of its documents the batch changes] */
    json_t *journal;  /* {_id, ops, rows}, or NULL when no row changes */
    enum phase phase;
    struct wa_kafka_msg **msgs;
    size_t nmsgs, cap;
    size_t pending;
    bool failed;
    struct wa_timer *retry;
};

/* ---- translation (pure) ---- */

static int
add_op(json_t *ops, const char *coll, json_t *filter, json_t *update)
{
    json_t *op = json_pack("{s:s, s:o, s:o}", "coll", coll, "filter", filter, "update", update);

    return op != NULL ? json_array_append_new(ops, op) : -1;
}

static int64_t
event_time(const struct wa_cloudevent_doc *doc, int64_t kafka_ts_ms)
{
    int64_t ms;

    if (doc->ev.time[0] != '\0' && wa_contract_time_parse(doc->ev.time, &ms) == WA_OK && ms > 0) {
        return ms;
    }
    return kafka_ts_ms > 0 ? kafka_ts_ms : 1;
}

static enum wa_err
message_op(json_t *ops, const struct an_event *ev)
{
    json_t *u;
    enum wa_err err = an_timeline_update(ev, &u);

    if (err != WA_OK) {
        return err;
    }
    return add_op(ops, AN_COLL_MESSAGES, json_pack("{s:s}", "_id", ev->id), u) == 0 ? WA_OK
                                                                                    : WA_ENOMEM;
}

static enum wa_err
from_request(const json_t *data, int64_t at, const struct an_ratecard *rc, json_t *ops,
             struct wa_error *error)
{
    struct wa_contract_outbound_request rq;
    struct an_event ev = {.state = AN_REQUESTED, .at_ms = at, .pricing_billable = -1};
    char digits[32];
    enum wa_err err = wa_contract_outbound_request_decode(data, &rq, error);

    if (err != WA_OK) {
        return err;
    }
    ev.id = ev.request_id = rq.request_id;
    ev.phone_number_id = rq.phone_number_id;
    ev.contact = rq.recipient;
    if (rq.recipient == NULL && rq.to != NULL &&
        wa_whatsapp_wa_id_from_to(rq.to, digits, sizeof(digits)) == WA_OK) {
        ev.contact = digits;
    }
    ev.country = an_ratecard_country(rc, ev.contact);
    ev.type = rq.type;
    ev.category = rq.category;
    if (strcmp(rq.type, "template") == 0) {
        ev.template_name = wa_json_str(rq.body, "name");
    }
    if (strcmp(rq.type, "read-receipt") == 0) {
        return wa_error_set(error, WA_ENOTFOUND, "a read receipt is not a message");
    }
    return message_op(ops, &ev);
}

static enum wa_err
from_result(const json_t *data, int64_t at, json_t *ops, struct wa_error *error)
{
    struct wa_contract_outbound_result r;
    struct an_error e = {0};
    struct an_event ev = {.at_ms = at, .pricing_billable = -1};
    enum wa_err err = wa_contract_outbound_result_decode(data, &r, error);

    if (err != WA_OK) {
        return err;
    }
    ev.id = ev.request_id = r.request_id;
    ev.wamid = r.wamid;
    ev.phone_number_id = r.phone_number_id;
    ev.state = r.accepted ? AN_ACCEPTED : AN_FAILED;
    ev.reason = r.reason;
    if (!r.accepted) {
        e.has_code = r.has_code;
        e.code = r.code;
        snprintf(e.title, sizeof(e.title), "%s", r.title != NULL ? r.title : "");
        snprintf(e.details, sizeof(e.details), "%s", r.details != NULL ? r.details : "");
        ev.error = &e;
    }
    return message_op(ops, &ev);
}

static enum wa_err
from_status(const json_t *data, const struct an_ratecard *rc, json_t *ops, struct wa_error *error)
{
    struct wa_contract_inbound_status st;
    struct an_error e = {0};
    struct an_event ev = {.pricing_billable = -1};
    char id[WA_CONTRACT_REQUEST_ID_MAX + 200];
    const json_t *err0, *billable;
    enum wa_err err = wa_contract_inbound_status_decode(data, &st, error);

    if (err != WA_OK) {
        return err;
    }
    if (!an_state_parse(st.status, &ev.state) || ev.state < AN_SENT) {
        return wa_error_set(error, WA_ENOTFOUND, "status %s is not tracked", st.status);
    }
    if (st.timestamp <= 0) {
        return wa_error_set(error, WA_EPARSE, "timestamp: missing");
    }
    if (st.biz_opaque_callback_data != NULL && st.biz_opaque_callback_data[0] != '\0' &&
        strlen(st.biz_opaque_callback_data) <= WA_CONTRACT_REQUEST_ID_MAX) {
        ev.id = ev.request_id = st.biz_opaque_callback_data; /* wa-notify's request_id */
    } else {
        snprintf(id, sizeof(id), "wamid:%s", st.wamid);
        ev.id = id;
    }
    ev.wamid = st.wamid;
    ev.at_ms = st.timestamp * 1000;
    ev.phone_number_id = st.phone_number_id;
    ev.contact = st.contact;
    ev.country = an_ratecard_country(rc, st.contact);
    ev.participant = wa_json_str(st.status_object, "recipient_participant_id");
    if (st.pricing != NULL) {
        ev.pricing_category = wa_json_str(st.pricing, "category");
        ev.pricing_type = wa_json_str(st.pricing, "type");
        billable = json_object_get(st.pricing, "billable");
        ev.pricing_billable = json_is_boolean(billable) ? json_is_true(billable) : -1;
    }
    if (ev.state == AN_FAILED) {
        err0 = json_array_get(st.errors, 0);
        e.has_code = json_is_integer(json_object_get(err0, "code"));
        e.code = e.has_code ? json_integer_value(json_object_get(err0, "code")) : 0;
        snprintf(e.title, sizeof(e.title), "%s",
                 wa_json_str(err0, "title") != NULL ? wa_json_str(err0, "title") : "");
        snprintf(e.details, sizeof(e.details), "%s",
                 wa_json_path_str(err0, "error_data.details") != NULL
                     ? wa_json_path_str(err0, "error_data.details")
                     : "");
        ev.error = &e;
    }
    return message_op(ops, &ev);
}

static enum wa_err
from_inbound(const json_t *data, json_t *ops, struct wa_error *error)
{
    struct wa_contract_inbound_message m;
    enum wa_err err = wa_contract_inbound_message_decode(data, &m, error);
    json_t *u;

    if (err != WA_OK) {
        return err;
    }
    if (m.timestamp <= 0) {
        return wa_error_set(error, WA_EPARSE, "timestamp: missing");
    }
    u = json_pack("{s:{s:s, s:s?}, s:{s:I}}", "$setOnInsert", "contact", m.contact,
                  "phone_number_id", m.phone_number_id, "$min", "at",
                  (json_int_t)(m.timestamp * 1000));
    return u != NULL && add_op(ops, AN_COLL_INBOUND, json_pack("{s:s}", "_id", m.wamid), u) == 0
               ? WA_OK
               : WA_ENOMEM;
}

/* contact.event (wa-users): {"kind": "erased", "contact": "+<digits>" or BSUID, "identity":
 * the contact as the other topics name it (digits without "+")}. */
static enum wa_err
from_contact(const json_t *data, json_t *ops, struct wa_error *error)
{
    const char *kind = wa_json_str(data, "kind"), *contact = wa_json_str(data, "identity");

    if (kind == NULL) {
        return wa_error_set(error, WA_EPARSE, "kind: missing");
    }
    if (strcmp(kind, "erased") != 0) {
        return wa_error_set(error, WA_ENOTFOUND, "contact event %s changes no timeline", kind);
    }
    if (contact == NULL && (contact = wa_json_str(data, "contact")) != NULL && contact[0] == '+') {
        contact++;
    }
    if (contact == NULL || contact[0] == '\0') {
        return wa_error_set(error, WA_EPARSE, "identity: missing");
    }
    return json_array_append_new(ops, json_pack("{s:s}", "erase", contact)) == 0 ? WA_OK
                                                                                 : WA_ENOMEM;
}

enum wa_err
an_consume_translate(const char *topic, const void *value, size_t len, int64_t kafka_ts_ms,
                     const struct an_ratecard *rc, json_t *ops, struct wa_error *error)
{
    struct wa_cloudevent_doc *doc = NULL;
    enum wa_err err;

    if (value == NULL) {
        return wa_error_set(error, WA_EPARSE, "empty message");
    }
    if ((err = wa_cloudevent_decode(value, len, &doc, error)) != WA_OK) {
        return err;
    }
    if (doc->ev.data == NULL || !json_is_object(doc->ev.data)) {
        err = wa_error_set(error, WA_EPARSE, "data: not an object");
    } else if (strcmp(topic, WA_TOPIC_OUTBOUND_REQUEST) == 0) {
        err = from_request(doc->ev.data, event_time(doc, kafka_ts_ms), rc, ops, error);
    } else if (strcmp(topic, WA_TOPIC_OUTBOUND_RESULT) == 0) {
        err = from_result(doc->ev.data, event_time(doc, kafka_ts_ms), ops, error);
    } else if (strcmp(topic, WA_TOPIC_INBOUND_STATUS) == 0) {
        err = from_status(doc->ev.data, rc, ops, error);
    } else if (strcmp(topic, WA_TOPIC_INBOUND_MESSAGE) == 0) {
        err = from_inbound(doc->ev.data, ops, error);
    } else if (strcmp(topic, WA_TOPIC_CONTACT_EVENT) == 0) {
        err = from_contact(doc->ev.data, ops, error);
    } else {
        err = wa_error_set(error, WA_ENOTFOUND, "topic %s is not consumed", topic);
    }
    wa_cloudevent_doc_free(doc);
    return err;
}

/* ---- batches ---- */

static struct an_batch *
batch_new(struct an *an)
{
    struct an_batch *b = calloc(1, sizeof(*b));

    if (b == NULL || (b->ops = json_array()) == NULL || (b->index = json_object()) == NULL ||
        (b->erase = json_array()) == NULL) {
        if (b != NULL) {
            json_decref(b->ops);
            json_decref(b->index);
            free(b);
        }
        return NULL;
    }
    b->an = an;
    return b;
}

static void
batch_free(struct an_batch *b)
{
    if (b == NULL) {
        return;
    }
    json_decref(b->ops);
    json_decref(b->index);
    json_decref(b->erase);
    json_decref(b->olds);
    json_decref(b->news);
    json_decref(b->contacts);
    json_decref(b->journal);
    free(b->msgs);
    wa_timer_free(b->retry);
    free(b);
}

static void run_phase(struct an_batch *b);
static void flush(struct an *an);
static void replay_next(struct an *an);

bool
an_busy(const struct an *an)
{
    return an->writing != NULL || (an->filling != NULL && an->filling->nmsgs > 0) ||
           an->queries > 0;
}

static void
on_retry(struct wa_timer *t, void *arg)
{
    (void)t;
    run_phase(arg);
}

/* A fresh journal id: above every id used or found at start (the last applied journal stays
 * as a marker), so each row's guard "j < id" holds for this batch only; microseconds of the
 * wall clock when it is ahead. */
static int64_t
journal_id(struct an *an)
{
    int64_t now = (int64_t)wa_clock_wall_ms() * 1000;

    an->journal_last = now > an->journal_last ? now : an->journal_last + 1;
    return an->journal_last;
}

static bool
loaded_coll(const char *coll)
{
    return strcmp(coll, AN_COLL_MESSAGES) == 0 || strcmp(coll, AN_COLL_INBOUND) == 0;
}

/* After P_LOAD: each message and inbound document as the batch's update leaves it
 * (an_update_apply on the document read, as the server will), and the contacts they belong to. */
static enum wa_err
compute_news(struct an_batch *b)
{
    json_t *op;
    size_t i;
    char key[512];

    json_decref(b->news);
    json_decref(b->contacts);
    if ((b->news = json_object()) == NULL || (b->contacts = json_object()) == NULL) {
        return WA_ENOMEM;
    }
    json_array_foreach(b->ops, i, op)
    {
        const char *coll = wa_json_str(op, "coll"), *id = wa_json_path_str(op, "filter._id");
        const char *contact;
        json_t *old, *doc, *list;

        if (!loaded_coll(coll) || id == NULL) {
            continue;
        }
        snprintf(key, sizeof(key), "%s/%s", coll, id);
        old = json_object_get(b->olds, key);
        old = json_is_object(old) ? old : NULL;
        if ((doc = old != NULL ? json_deep_copy(old) : json_pack("{s:s}", "_id", id)) == NULL) {
            return WA_ENOMEM;
        }
        if (an_update_apply(doc, json_object_get(op, "update"), old == NULL) != WA_OK ||
            json_object_set_new(b->news, key, doc) != 0) {
            return WA_ENOMEM;
        }
        if ((contact = json_string_value(json_object_get(doc, "contact"))) == NULL) {
            continue;
        }
        if ((list = json_object_get(b->contacts, contact)) == NULL &&
            json_object_set_new(b->contacts, contact, list = json_array()) != 0) {
            return WA_ENOMEM;
        }
        if (json_array_append_new(list, json_string(key)) != 0) {
            return WA_ENOMEM;
        }
    }
    return WA_OK;
}

/* The engagement document of contact as the batch leaves it, with its update appended to ops;
 * both contributions in rows. Nothing when the document does not change. */
static enum wa_err
engage_contact(struct an_batch *b, const char *contact, const json_t *keys, struct an_rows *rows,
               json_t *ops)
{
    char key[512];
    const json_t *k;
    json_t *old, *next;
    size_t i;
    enum wa_err err = WA_ENOMEM;

    snprintf(key, sizeof(key), "%s/%s", AN_COLL_ENGAGE, contact);
    old = json_object_get(b->olds, key);
    old = json_is_object(old) ? old : NULL;
    if ((next = old != NULL ? json_deep_copy(old) : json_object()) == NULL) {
        return WA_ENOMEM;
    }
    json_array_foreach(keys, i, k)
    {
        const json_t *doc = json_object_get(b->news, json_string_value(k));
        bool message =
            strncmp(json_string_value(k), AN_COLL_MESSAGES "/", strlen(AN_COLL_MESSAGES "/")) == 0;

        if (an_engage_set(next, message ? "o" : "i", json_object_get(doc, "_id"),
                          message ? an_engage_out(doc) : an_engage_in(doc)) != WA_OK) {
            goto out;
        }
    }
    if (old != NULL && json_equal(old, next)) {
        err = WA_OK;
        goto out;
    }
    if ((!json_is_array(json_object_get(next, "o")) &&
         json_object_set_new(next, "o", json_array()) != 0) ||
        (!json_is_array(json_object_get(next, "i")) &&
         json_object_set_new(next, "i", json_array()) != 0)) {
        goto out;
    }
    if (an_rows_add_contact(rows, next, 1) != WA_OK ||
        (old != NULL && an_rows_add_contact(rows, old, -1) != WA_OK) ||
        json_array_append_new(ops, json_pack("{s:s, s:{s:s}, s:{s:{s:O?, s:O?}}}", "coll",
                                             AN_COLL_ENGAGE, "filter", "_id", contact, "update",
                                             "$set", "o", json_object_get(next, "o"), "i",
                                             json_object_get(next, "i"))) != 0) {
        goto out;
    }
    err = WA_OK;
out:
    json_decref(next);
    return err;
}

/*
 * The rows' change of the batch (after P_CONTACTS): each message document as the batch leaves
 * it contributes to its row and the document as read is taken away; each contact's engagement
 * document likewise. The engagement updates join the batch's updates; the journal {_id, ops,
 * rows: [{_id, dims, inc}]} carries the updates and the changes; NULL when no row changes
 * (then the updates alone are the batch: repeating them changes nothing).
 */
static enum wa_err
make_journal(struct an_batch *b)
{
    struct an *an = b->an;
    struct an_rows rows;
    json_t *list = NULL, *engage = json_array(), *doc, *keys;
    enum wa_err err = WA_ENOMEM;
    const char *key;
    size_t i;

    an_rows_init(&rows);
    if (engage == NULL) {
        goto out;
    }
    json_object_foreach(b->news, key, doc)
    {
        json_t *old = json_object_get(b->olds, key);

        if (strncmp(key, AN_COLL_MESSAGES "/", strlen(AN_COLL_MESSAGES "/")) != 0) {
            continue;
        }
        if ((err = an_rows_add_message(&rows, doc, &an->ratecard, 1)) != WA_OK ||
            (err = an_rows_add_message(&rows, json_is_object(old) ? old : NULL, &an->ratecard,
                                       -1)) != WA_OK) {
            goto out;
        }
    }
    json_object_foreach(b->contacts, key, keys)
    {
        if ((err = engage_contact(b, key, keys, &rows, engage)) != WA_OK) {
            goto out;
        }
    }
    err = WA_ENOMEM;
    if ((list = json_array()) == NULL) {
        goto out;
    }
    for (i = 0; i < rows.n; i++) {
        json_t *inc = an_totals_inc(&rows.v[i].t);

        if (inc == NULL) {
            goto out;
        }
        if (json_object_size(inc) == 0) { /* changes that cancel out */
            json_decref(inc);
            continue;
        }
        if (json_array_append_new(list, json_pack("{s:s, s:O, s:o}", "_id", rows.v[i].id, "dims",
                                                  rows.v[i].dims, "inc", inc)) != 0) {
            goto out;
        }
    }
    if (json_array_extend(b->ops, engage) != 0) {
        goto out;
    }
    json_decref(b->journal);
    b->journal = NULL;
    if (json_array_size(list) > 0 &&
        (b->journal = json_pack("{s:I, s:O, s:O}", "_id", (json_int_t)journal_id(an), "ops", b->ops,
                                "rows", list)) == NULL) {
        goto out;
    }
    err = WA_OK;
out:
    json_decref(engage);
    json_decref(list);
    an_rows_clear(&rows);
    return err;
}

/* The batch is written (or a replayed journal applied): hand its events back. */
static void
batch_end(struct an_batch *b)
{
    struct an *an = b->an;

    for (size_t i = 0; i < b->nmsgs; i++) {
        wa_kafka_consumer_done(an->consumer, b->msgs[i]);
    }
    if (b->nmsgs > 0) {
        wa_counter_inc(an->m.batches);
        wa_histogram_observe(an->m.batch_size, (double)b->nmsgs);
    }
    an->writing = NULL;
    batch_free(b);
    if (json_array_size(an->replay) > 0) {
        replay_next(an);
    } else if (an->filling != NULL && an->filling->nmsgs > 0) {
        flush(an); /* what arrived during the write goes next, without waiting */
    }
}

/* Every operation of the phase answered. A failure retries a second later from the phase the
 * batch can repeat: the loads (nothing written yet), else the journal's insert (everything
 * after it is idempotent or guarded). */
static void
phase_done(struct an_batch *b)
{
    struct an *an = b->an;

    if (b->failed) {
        wa_counter_inc(an->m.write_errors);
        wa_log_warn(NULL, "batch of %zu events not written; retrying in %d ms", b->nmsgs, RETRY_MS);
        b->phase = b->phase <= P_CONTACTS ? P_LOAD : b->journal != NULL ? P_JOURNAL : P_OPS;
        if (b->retry == NULL) {
            b->retry = wa_timer_new(an->loop, on_retry, b);
        }
        if (b->retry != NULL) {
            wa_timer_start(b->retry, RETRY_MS, 0);
            return;
        }
        /* no timer: retry at once rather than lose the batch */
        run_phase(b);
        return;
    }
    if ((b->phase == P_LOAD && compute_news(b) != WA_OK) ||
        (b->phase == P_CONTACTS && make_journal(b) != WA_OK)) {
        b->failed = true;
        phase_done(b);
        return;
    }
    b->phase++;
    if (b->journal == NULL && (b->phase == P_JOURNAL || b->phase == P_ROWS)) {
        b->phase++; /* no row changes: the updates alone */
    }
    if (b->journal == NULL && b->phase == P_FORGET) {
        b->phase++;
    }
    if (b->phase == P_DONE) {
        batch_end(b);
        return;
    }
    run_phase(b);
}

struct write_op {
    struct an_batch *b;
    const json_t *op; /* update or erasure (P_OPS, P_ERASE), row change (P_ROWS) */
    int tries;
    /* erasure */
    const char *coll;
    char pseudonym[40];
};

static void op_finish(struct write_op *w, enum wa_err err);
static void start_op(struct write_op *w);
static void rename_engagement(struct write_op *w);

/*
 * Erasure, last step: the contact's engagement document moves to the pseudonym its messages now
 * carry (copied under the pseudonym, then the original deleted; figures unchanged). A crash in
 * between leaves the copy and the original; the redelivered erasure moves the original again.
 */
static void
on_engagement_moved(void *arg, enum wa_err err, int64_t count)
{
    (void)count;
    op_finish(arg, err);
}

static void
on_engagement_copied(void *arg, enum wa_err err)
{
    struct write_op *w = arg;
    json_t *f = json_pack("{s:s}", "_id", wa_json_str(w->op, "erase"));

    if (err == WA_OK || err == WA_EEXIST) {
        err = f != NULL
                  ? wa_mongo_delete_many(w->b->an->mongo, AN_COLL_ENGAGE, f, on_engagement_moved, w)
                  : WA_ENOMEM;
    }
    json_decref(f);
    if (err != WA_OK) {
        op_finish(w, err);
    }
}

static void
on_engagement_found(void *arg, enum wa_err err, json_t *doc)
{
    struct write_op *w = arg;

    if (err == WA_OK) {
        json_t *copy = json_deep_copy(doc);

        err = copy != NULL && json_object_set_new(copy, "_id", json_string(w->pseudonym)) == 0
                  ? wa_mongo_insert_one(w->b->an->mongo, AN_COLL_ENGAGE, copy, on_engagement_copied,
                                        w)
                  : WA_ENOMEM;
        json_decref(copy);
        if (err == WA_OK) {
            return;
        }
    }
    op_finish(w, err == WA_ENOTFOUND ? WA_OK : err);
}

static void
rename_engagement(struct write_op *w)
{
    json_t *f = json_pack("{s:s}", "_id", wa_json_str(w->op, "erase"));
    enum wa_err err = f != NULL ? wa_mongo_find_one(w->b->an->mongo, AN_COLL_ENGAGE, f, NULL,
                                                    on_engagement_found, w)
                                : WA_ENOMEM;

    json_decref(f);
    if (err != WA_OK) {
        op_finish(w, err);
    }
}

static void
on_updated(void *arg, enum wa_err err, int64_t matched, int64_t modified, bool upserted)
{
    struct write_op *w = arg;

    (void)modified;
    (void)upserted;
    if (err == WA_EEXIST && w->b->phase == P_ROWS) {
        err = WA_OK; /* the guard did not match: this journal's change is already in the row */
    }
    if (err == WA_EEXIST && ++w->tries < EEXIST_TRIES) {
        start_op(w); /* two upserts of one new _id raced: the second one now updates */
        return;
    }
    if (err == WA_OK && w->coll != NULL && matched > 0) {
        start_op(w); /* erasure: one document per update, until none is left */
        return;
    }
    if (err == WA_OK && w->coll != NULL && strcmp(w->coll, AN_COLL_MESSAGES) == 0) {
        w->coll = AN_COLL_INBOUND;
        start_op(w);
        return;
    }
    if (err == WA_OK && w->coll != NULL) {
        rename_engagement(w);
        return;
    }
    op_finish(w, err);
}

/* A row change applied once: the upsert matches only while the row's last journal is older
 * than this one; otherwise it tries to insert the existing _id and fails with WA_EEXIST. */
static enum wa_err
start_row(struct write_op *w)
{
    struct an *an = w->b->an;
    json_int_t jid = json_integer_value(json_object_get(w->b->journal, "_id"));
    json_t *f = json_pack("{s:O, s:{s:{s:I}}}", "_id", json_object_get(w->op, "_id"), "j", "$not",
                          "$gte", jid);
    json_t *u = json_pack("{s:O, s:{s:I}, s:O}", "$inc", json_object_get(w->op, "inc"), "$set", "j",
                          jid, "$setOnInsert", json_object_get(w->op, "dims"));
    enum wa_err err = f != NULL && u != NULL ? wa_mongo_update_one(an->mongo, AN_COLL_BUCKETS, f, u,
                                                                   true, on_updated, w)
                                             : WA_ENOMEM;

    json_decref(f);
    json_decref(u);
    return err;
}

static void
start_op(struct write_op *w)
{
    struct an *an = w->b->an;
    const char *erase = wa_json_str(w->op, "erase");
    enum wa_err err;

    if (w->b->phase == P_ROWS) {
        err = start_row(w);
    } else if (erase != NULL) {
        json_t *f = json_pack("{s:s}", "contact", erase);
        json_t *u = json_pack("{s:{s:s}}", "$set", "contact", w->pseudonym);

        err = f != NULL && u != NULL
                  ? wa_mongo_update_one(an->mongo, w->coll, f, u, false, on_updated, w)
                  : WA_ENOMEM;
        json_decref(f);
        json_decref(u);
    } else {
        err = wa_mongo_update_one(an->mongo, wa_json_str(w->op, "coll"),
                                  json_object_get(w->op, "filter"),
                                  json_object_get(w->op, "update"), true, on_updated, w);
    }
    if (err != WA_OK) {
        op_finish(w, err);
    }
}

static void
batch_op_done(struct an_batch *b, enum wa_err err)
{
    if (err != WA_OK) {
        if (!b->failed) {
            wa_log_warn(NULL, "analytics write failed: %s", wa_err_name(err));
        }
        b->failed = true;
    }
    if (--b->pending == 0) {
        phase_done(b);
    }
}

static void
op_finish(struct write_op *w, enum wa_err err)
{
    struct an_batch *b = w->b;

    free(w);
    batch_op_done(b, err);
}

/* Starts every operation of ops (updates, erasures or row changes) at once. */
static void
write_ops(struct an_batch *b, const json_t *ops)
{
    size_t i;
    const json_t *op;
    char ulid[WA_ULID_LEN];

    json_array_foreach(ops, i, op)
    {
        struct write_op *w = calloc(1, sizeof(*w));

        if (w == NULL) {
            b->failed = true;
            continue;
        }
        w->b = b;
        w->op = op;
        if (wa_json_str(op, "erase") != NULL) {
            wa_ulid_new(ulid);
            snprintf(w->pseudonym, sizeof(w->pseudonym), "erased:%s", ulid);
            w->coll = AN_COLL_MESSAGES;
        }
        b->pending++;
        start_op(w);
    }
}

struct load {
    struct an_batch *b;
    char key[]; /* "<coll>/<_id>" */
};

static void
on_loaded(void *arg, enum wa_err err, json_t *doc)
{
    struct load *l = arg;
    struct an_batch *b = l->b;

    if (err == WA_OK || err == WA_ENOTFOUND) {
        err = json_object_set(b->olds, l->key, err == WA_OK ? doc : json_null()) == 0 ? WA_OK
                                                                                      : WA_ENOMEM;
    }
    free(l);
    batch_op_done(b, err);
}

/* Reads the document _id of coll into b->olds (MongoDB-wire servers without an index on
 * "$in", such as FerretDB, answer an _id equality alone from the index). */
static void
load_doc(struct an_batch *b, const char *coll, const char *id)
{
    size_t len = strlen(coll) + 1 + strlen(id);
    struct load *l = malloc(sizeof(*l) + len + 1);
    json_t *f = json_pack("{s:s}", "_id", id);
    enum wa_err err;

    if (l == NULL || f == NULL) {
        free(l);
        json_decref(f);
        b->failed = true;
        return;
    }
    l->b = b;
    snprintf(l->key, len + 1, "%s/%s", coll, id);
    b->pending++;
    if ((err = wa_mongo_find_one(b->an->mongo, coll, f, NULL, on_loaded, l)) != WA_OK) {
        free(l);
        batch_op_done(b, err);
    }
    json_decref(f);
}

/* P_LOAD: the stored message and inbound documents the batch changes. */
static void
load_docs(struct an_batch *b)
{
    size_t i;
    const json_t *op;

    json_decref(b->olds);
    if ((b->olds = json_object()) == NULL) {
        b->failed = true;
        return;
    }
    json_array_foreach(b->ops, i, op)
    {
        const char *coll = wa_json_str(op, "coll"), *id = wa_json_path_str(op, "filter._id");

        if (loaded_coll(coll) && id != NULL) {
            load_doc(b, coll, id);
        }
    }
}

/* P_CONTACTS: the engagement documents of their contacts. */
static void
load_contacts(struct an_batch *b)
{
    const char *contact;
    json_t *v;

    json_object_foreach(b->contacts, contact, v)
    {
        load_doc(b, AN_COLL_ENGAGE, contact);
    }
}

static void
on_journal_written(void *arg, enum wa_err err)
{
    /* WA_EEXIST: written by an earlier try of this batch */
    batch_op_done(arg, err == WA_EEXIST ? WA_OK : err);
}

/* Stored as {_id, batch: the text of {ops, rows}}: the updates' field names ("$min",
 * "t.sent") are not field names a MongoDB-wire server takes in a stored document. */
static enum wa_err
journal_write(struct an_batch *b)
{
    json_t *body = json_pack("{s:O, s:O}", "ops", json_object_get(b->journal, "ops"), "rows",
                             json_object_get(b->journal, "rows"));
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_t *doc = text != NULL ? json_pack("{s:O, s:s}", "_id", json_object_get(b->journal, "_id"),
                                           "batch", text)
                               : NULL;
    enum wa_err err =
        doc != NULL ? wa_mongo_insert_one(b->an->mongo, AN_COLL_JOURNAL, doc, on_journal_written, b)
                    : WA_ENOMEM;

    json_decref(doc);
    free(text);
    json_decref(body);
    return err;
}

static void
on_journal_forgotten(void *arg, enum wa_err err, int64_t count)
{
    (void)count;
    batch_op_done(arg, err);
}

/* The journal is kept as a marker {_id, done: true} (its id is the floor of the next ones after
 * a restart, whatever the clock did), and older markers go. */
static void
on_journal_done(void *arg, enum wa_err err, int64_t matched, int64_t modified, bool upserted)
{
    struct an_batch *b = arg;
    json_t *f = json_pack("{s:{s:O}}", "_id", "$lt", json_object_get(b->journal, "_id"));

    (void)matched;
    (void)modified;
    (void)upserted;
    if (err == WA_OK) {
        err = f != NULL
                  ? wa_mongo_delete_many(b->an->mongo, AN_COLL_JOURNAL, f, on_journal_forgotten, b)
                  : WA_ENOMEM;
    }
    json_decref(f);
    if (err != WA_OK) {
        batch_op_done(b, err);
    }
}

/*
 * A batch, in phases (README.md "Guarantees"): P_LOAD reads the documents it changes,
 * P_CONTACTS their contacts' engagement documents, and the rows' change is computed; P_JOURNAL stores it with the updates; P_OPS writes the updates;
 * P_ROWS applies each row's change once; P_FORGET deletes the journal; P_ERASE runs the
 * erasures; then the events are handed back. A crash after P_JOURNAL leaves the journal, which
 * the next start applies again (an_consume_start) before any new batch.
 */
static void
run_phase(struct an_batch *b)
{
    enum wa_err err = WA_OK;
    json_t *f, *u;

    b->failed = false;
    b->pending = 1; /* held while the phase starts, so none can finish it early */
    switch (b->phase) {
    case P_LOAD:
        load_docs(b);
        break;
    case P_CONTACTS:
        load_contacts(b);
        break;
    case P_JOURNAL:
        b->pending++;
        err = journal_write(b);
        break;
    case P_OPS:
        write_ops(b, b->ops);
        break;
    case P_ROWS:
        write_ops(b, json_object_get(b->journal, "rows"));
        break;
    case P_FORGET:
        f = json_pack("{s:O}", "_id", json_object_get(b->journal, "_id"));
        u = json_pack("{s:{s:b, s:s}}", "$set", "done", 1, "batch", "");
        b->pending++;
        err = f != NULL && u != NULL ? wa_mongo_update_one(b->an->mongo, AN_COLL_JOURNAL, f, u,
                                                           false, on_journal_done, b)
                                     : WA_ENOMEM;
        json_decref(f);
        json_decref(u);
        break;
    default:
        write_ops(b, b->erase);
        break;
    }
    if (err != WA_OK) {
        batch_op_done(b, err);
    }
    batch_op_done(b, WA_OK);
}

/* ---- journals left by a crash: applied before any new batch ---- */

static void
replay_next(struct an *an)
{
    struct an_batch *b = batch_new(an);
    json_t *j = json_array_get(an->replay, 0);

    if (b == NULL) {
        wa_log_error(NULL, "out of memory: journal not replayed; retrying");
        wa_timer_start(an->replay_timer, RETRY_MS, 0);
        return;
    }
    wa_log_info(NULL, "replaying the journal %lld of a batch not finished",
                (long long)json_integer_value(json_object_get(j, "_id")));
    json_decref(b->ops);
    b->ops = json_incref(json_object_get(j, "ops"));
    b->journal = json_incref(j);
    (void)json_array_remove(an->replay, 0);
    if (!json_is_array(b->ops) || !json_is_array(json_object_get(j, "rows"))) {
        wa_log_error(NULL, "journal %lld malformed: left in place",
                     (long long)json_integer_value(json_object_get(j, "_id")));
        batch_free(b);
        replay_next(an);
        return;
    }
    b->phase = P_JOURNAL;
    an->writing = b;
    run_phase(b);
}

static int
journal_cmp(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "_id"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "_id"));

    return (x > y) - (x < y);
}

static void replay_start(struct an *an);

static void
on_journals(void *arg, enum wa_err err, json_t *docs)
{
    struct an *an = arg;
    json_t **v;
    size_t n = json_array_size(docs), i;
    json_t *d;

    if (err != WA_OK) {
        wa_log_warn(NULL, "journal not read: %s; retrying", wa_err_name(err));
        wa_timer_start(an->replay_timer, RETRY_MS, 0);
        return;
    }
    if ((v = calloc(n + 1, sizeof(*v))) == NULL || (an->replay = json_array()) == NULL) {
        free(v);
        wa_timer_start(an->replay_timer, RETRY_MS, 0);
        return;
    }
    n = 0;
    json_array_foreach(docs, i, d)
    {
        const char *text = wa_json_str(d, "batch");
        json_t *body = text != NULL ? json_loads(text, 0, NULL) : NULL;

        if (json_integer_value(json_object_get(d, "_id")) > an->journal_last) {
            an->journal_last = json_integer_value(json_object_get(d, "_id"));
        }
        if (json_is_true(json_object_get(d, "done"))) {
            json_decref(body);
            continue; /* applied: only its id counts */
        }
        if (json_is_object(body)) {
            (void)json_object_update_missing(d, body);
        }
        json_decref(body);
        v[n++] = d;
    }
    qsort(v, n, sizeof(*v), journal_cmp); /* in the order they were written */
    for (i = 0; i < n; i++) {
        (void)json_array_append(an->replay, v[i]);
    }
    free(v);
    an->replayed = true;
    if (n > 0) {
        replay_next(an);
    } else if (an->filling != NULL && an->filling->nmsgs > 0) {
        flush(an);
    }
}

/* Before the first batch: every journal left, in order; the newest id (an applied journal's
 * marker, or one left) is the floor of new ids. */
static void
replay_start(struct an *an)
{
    json_t *opts = json_pack("{s:i}", "limit", 1000);

    if (opts == NULL ||
        wa_mongo_find(an->mongo, AN_COLL_JOURNAL, NULL, opts, on_journals, an) != WA_OK) {
        wa_timer_start(an->replay_timer, RETRY_MS, 0);
    }
    json_decref(opts);
}

static void
on_replay_timer(struct wa_timer *t, void *arg)
{
    struct an *an = arg;

    (void)t;
    if (!an->replayed) {
        replay_start(an);
    } else if (an->writing == NULL && json_array_size(an->replay) > 0) {
        replay_next(an);
    }
}

static void
flush(struct an *an)
{
    struct an_batch *b = an->filling;

    wa_timer_stop(an->flush_timer);
    if (!an->replayed || an->writing != NULL || b == NULL || b->nmsgs == 0) {
        return;
    }
    an->filling = NULL;
    an->writing = b;
    b->phase = P_LOAD;
    run_phase(b);
}

static void
on_flush_timer(struct wa_timer *t, void *arg)
{
    (void)t;
    flush(arg);
}

static size_t
topic_index(const struct an *an, const char *topic, const char **suffix)
{
    size_t n = strlen(an->topic_prefix);

    *suffix = topic;
    if (strncmp(topic, an->topic_prefix, n) == 0) {
        *suffix = topic + n;
    }
    for (size_t i = 0; i < NTOPICS; i++) {
        if (strcmp(*suffix, topics[i]) == 0) {
            return i;
        }
    }
    return NTOPICS;
}

/*
 * Adds the operations of one event to b: an update of a document the batch already writes is
 * folded into that write, so no two writes of a batch touch one document (MongoDB-wire servers
 * such as FerretDB do not serialise concurrent updates of one document) and a batch costs one
 * write per document. Erasures run after the updates.
 */
static enum wa_err
batch_add(struct an_batch *b, json_t *ops)
{
    size_t i;
    json_t *op;
    char key[512];

    json_array_foreach(ops, i, op)
    {
        json_t *prev;

        if (json_object_get(op, "erase") != NULL) {
            if (json_array_append(b->erase, op) != 0) {
                return WA_ENOMEM;
            }
            continue;
        }
        snprintf(key, sizeof(key), "%s/%s", wa_json_str(op, "coll"),
                 wa_json_path_str(op, "filter._id") != NULL ? wa_json_path_str(op, "filter._id")
                                                            : "");
        if ((prev = json_object_get(b->index, key)) != NULL) {
            if (an_update_merge(json_object_get(prev, "update"), json_object_get(op, "update")) !=
                WA_OK) {
                return WA_ENOMEM;
            }
        } else if (json_array_append(b->ops, op) != 0 || json_object_set(b->index, key, op) != 0) {
            return WA_ENOMEM;
        }
    }
    return WA_OK;
}

static void
on_message(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct an *an = arg;
    struct an_batch *b;
    struct wa_error error = {0};
    const char *suffix;
    size_t ti = topic_index(an, msg->topic, &suffix);
    json_t *ops;
    enum wa_err err;

    if (an->filling == NULL && (an->filling = batch_new(an)) == NULL) {
        wa_log_error(NULL, "out of memory: event at offset %lld left unconsumed",
                     (long long)msg->offset);
        return; /* not done: redelivered after a restart */
    }
    b = an->filling;
    if (b->nmsgs == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct wa_kafka_msg **m = realloc(b->msgs, cap * sizeof(*m));

        if (m == NULL) {
            wa_log_error(NULL, "out of memory: event at offset %lld left unconsumed",
                         (long long)msg->offset);
            return;
        }
        b->msgs = m;
        b->cap = cap;
    }
    wa_counter_inc(an->m.events[ti]);
    if ((ops = json_array()) == NULL) {
        wa_log_error(NULL, "out of memory: event at offset %lld left unconsumed",
                     (long long)msg->offset);
        return;
    }
    err = an_consume_translate(suffix, msg->value, msg->len, msg->timestamp_ms, &an->ratecard, ops,
                               &error);
    if (err == WA_OK && batch_add(b, ops) != WA_OK) {
        json_decref(ops);
        wa_log_error(NULL, "out of memory: event at offset %lld left unconsumed",
                     (long long)msg->offset);
        return;
    }
    json_decref(ops);
    if (err == WA_ENOTFOUND) {
        wa_counter_inc(an->m.ignored);
    } else if (err != WA_OK) {
        wa_counter_inc(an->m.malformed);
        wa_log_warn(NULL, "%s offset %lld: event skipped: %s", msg->topic, (long long)msg->offset,
                    error.message);
    }
    /* every message rides with the batch, so offsets commit in order after its write */
    b->msgs[b->nmsgs++] = msg;
    (void)c;
    if (b->nmsgs >= (size_t)an->cfg->batch) {
        /* while a write is in progress the batch grows until the consumer's max_in_flight
         * (two batches) pauses fetching; it is written as soon as the write ends */
        flush(an);
    } else if (!wa_timer_active(an->flush_timer)) {
        wa_timer_start(an->flush_timer, (uint64_t)an->cfg->flush_ms, 0);
    }
}

enum wa_err
an_consume_start(struct an *an, struct wa_error *error)
{
    char names[NTOPICS][128];
    const char *list[NTOPICS];
    /* a full batch plus the next one may be held before their offsets are done */
    struct wa_service_consumer sc = {.group = an->cfg->group,
                                     .topics = list,
                                     .ntopics = NTOPICS,
                                     .max_in_flight = (int)an->cfg->batch * 2 + 100,
                                     .on_message = on_message,
                                     .arg = an};

    for (size_t i = 0; i < NTOPICS; i++) {
        snprintf(names[i], sizeof(names[i]), "%s%s", an->topic_prefix, topics[i]);
        list[i] = names[i];
    }
    if ((an->flush_timer = wa_timer_new(an->loop, on_flush_timer, an)) == NULL ||
        (an->replay_timer = wa_timer_new(an->loop, on_replay_timer, an)) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    replay_start(an);
    return wa_service_consumer(an->svc, &sc, &an->consumer, error);
}

void
an_consume_drain(struct an *an)
{
    an->draining = true;
    flush(an);
}

void
an_consume_stop(struct an *an)
{
    /* The scaffolding closed the consumer and silenced MongoDB: a batch still here waits for
     * its retry timer, no callback is due; its events were not handed back and come again. */
    batch_free(an->writing);
    an->writing = NULL;
    batch_free(an->filling);
    an->filling = NULL;
    wa_timer_free(an->flush_timer);
    an->flush_timer = NULL;
    wa_timer_free(an->replay_timer);
    an->replay_timer = NULL;
    json_decref(an->replay);
    an->replay = NULL;
}
