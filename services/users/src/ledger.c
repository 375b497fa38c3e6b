/*
 * ledger.c: stage 2 of 3 (apply). Input: one ledger entry decided from an event (consent.c).
 * Steps, each finished before the next starts:
 *   1. append the entry to Mongo consent_ledger (_id = the entry id: a redelivery finds it
 *      there and goes on, so a crash between steps is repaired by the redelivery)
 *   2. read the contact's ledger for the category and derive its state (consent.c)
 *   3. upsert the contact document with that state (contacts, _id = "+<digits>" or BSUID)
 *   4. write or delete the suppressions document and <p>optout:<h> of every identity of the
 *      contact (suppress.c)
 *   5. produce contact.event {kind: "consent"} (event id = the entry id, so copies dedupe)
 * Output: cb(arg, WA_OK) once all five are done; any failure: cb with the error (consume.c
 * retries the whole event later; every step is idempotent).
 *
 * Threading: loop thread. Ownership: struct ap owns its documents; freed when cb has run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "wa/clock.h"
#include "wa/log.h"
#include "wa/mongo.h"

#define LEDGER_READ_MAX 1000 /* newest entries of one category read to derive its state */

struct ap {
    struct us *us;
    struct us_entry e;
    char cid[US_ID_MAX];
    struct us_consent_state st;
    json_t *contact;
    bool duplicate;
    us_done_fn cb;
    void *arg;
};

static void
finish(struct ap *a, enum wa_err err)
{
    a->cb(a->arg, err);
    json_decref(a->contact);
    free(a);
}

static void
on_produced(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct ap *a = arg;

    (void)partition;
    (void)offset;
    finish(a, err);
}

static void
produce_event(struct ap *a)
{
    char at[WA_RFC3339_LEN];
    json_t *data;
    enum wa_err err;

    wa_clock_rfc3339((uint64_t)(a->st.at_ms > 0 ? a->st.at_ms : 0), at);
    data = json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "category", us_category_name(a->e.category), "status",
        us_status_name(a->e.status), "source", us_source_name(a->e.source), "state", "status",
        us_status_name(a->st.status), "source", us_source_name(a->st.source), "at", at);
    err = data != NULL ? us_event_produce(a->us, a->e.id, "consent", a->cid, a->e.phone_number_id,
                                          data, on_produced, a)
                       : WA_ENOMEM;
    if (err != WA_OK) {
        finish(a, err);
    }
}

static void
on_keys(void *arg, enum wa_err err)
{
    struct ap *a = arg;

    if (err != WA_OK) {
        finish(a, err != WA_OK ? err : WA_ECLOSED);
        return;
    }
    produce_event(a);
}

static void
on_contact(void *arg, enum wa_err err, json_t *doc)
{
    struct ap *a = arg;

    if (err != WA_OK) {
        finish(a, err != WA_OK ? err : WA_ECLOSED);
        return;
    }
    a->contact = json_incref(doc);
    if (a->e.category != US_CAT_MARKETING) {
        produce_event(a);
        return;
    }
    if ((err = us_suppress_apply(a->us, a->contact, a->st.known && a->st.status == US_OPTED_OUT,
                                 on_keys, a)) != WA_OK) {
        finish(a, err);
    }
}

static void
on_upserted(void *arg, enum wa_err err, int64_t matched, int64_t modified, bool upserted)
{
    struct ap *a = arg;
    json_t *filter;

    (void)matched;
    (void)modified;
    (void)upserted;
    if (err != WA_OK) {
        finish(a, err != WA_OK ? err : WA_ECLOSED);
        return;
    }
    (void)us_cache_invalidate(a->us, a->cid, NULL, NULL); /* its consent state changed */
    filter = json_pack("{s:s}", "_id", a->cid);
    err = filter != NULL
              ? wa_mongo_find_one(a->us->mongo, US_COLL_CONTACTS, filter, NULL, on_contact, a)
              : WA_ENOMEM;
    json_decref(filter);
    if (err != WA_OK) {
        finish(a, err);
    }
}

static void
on_ledger(void *arg, enum wa_err err, json_t *docs)
{
    struct ap *a = arg;
    char path[64], at[WA_RFC3339_LEN], now[WA_RFC3339_LEN];
    json_t *filter, *update, *set, *insert;

    if (err != WA_OK) {
        finish(a, err != WA_OK ? err : WA_ECLOSED);
        return;
    }
    us_consent_derive(docs, a->e.category, &a->st);
    wa_clock_rfc3339((uint64_t)(a->st.at_ms > 0 ? a->st.at_ms : 0), at);
    wa_clock_rfc3339(wa_clock_wall_ms(), now);
    snprintf(path, sizeof(path), "consent.%s", us_category_name(a->e.category));
    filter = json_pack("{s:s}", "_id", a->cid);
    set = json_pack("{s:{s:s, s:s, s:s, s:I}, s:s}", path, "status", us_status_name(a->st.status),
                    "source", us_source_name(a->st.source), "at", at, "at_ms",
                    (json_int_t)a->st.at_ms, "updated_at", now);
    insert = json_pack("{s:s}", "created_at", now);
    if (insert != NULL) {
        json_object_set_new(insert, a->cid[0] == '+' ? "phone" : "bsuid", json_string(a->cid));
    }
    update = set != NULL && insert != NULL
                 ? json_pack("{s:O, s:O}", "$set", set, "$setOnInsert", insert)
                 : NULL;
    err = filter != NULL && update != NULL
              ? wa_mongo_update_one(a->us->mongo, US_COLL_CONTACTS, filter, update, true,
                                    on_upserted, a)
              : WA_ENOMEM;
    json_decref(filter);
    json_decref(set);
    json_decref(insert);
    json_decref(update);
    if (err != WA_OK) {
        finish(a, err);
    }
}

static void
on_appended(void *arg, enum wa_err err)
{
    struct ap *a = arg;
    json_t *filter, *opts;

    if (err == WA_EEXIST) {
        a->duplicate = true; /* a redelivery: the rest is done again, idempotently */
        wa_counter_inc(a->us->m.duplicates);
        err = WA_OK;
    } else if (err == WA_OK) {
        wa_counter_inc(a->us->m.entries);
    }
    if (err != WA_OK) {
        finish(a, err != WA_OK ? err : WA_ECLOSED);
        return;
    }
    filter =
        json_pack("{s:s, s:s}", "contact", a->cid, "category", us_category_name(a->e.category));
    opts = json_pack("{s:{s:i, s:i}, s:i}", "sort", "at_ms", -1, "recorded_ms", -1, "limit",
                     LEDGER_READ_MAX);
    err = filter != NULL && opts != NULL
              ? wa_mongo_find(a->us->mongo, US_COLL_CONSENT, filter, opts, on_ledger, a)
              : WA_ENOMEM;
    json_decref(filter);
    json_decref(opts);
    if (err != WA_OK) {
        finish(a, err);
    }
}

enum wa_err
us_ledger_apply(struct us *us, const struct us_entry *e, us_done_fn cb, void *arg)
{
    struct ap *a = calloc(1, sizeof(*a));
    json_t *doc;
    enum wa_err err;

    if (a == NULL) {
        return WA_ENOMEM;
    }
    a->us = us;
    a->e = *e;
    a->cb = cb;
    a->arg = arg;
    if (us_contact_id(e->contact, a->cid, sizeof(a->cid)) != WA_OK) {
        free(a);
        return WA_EINVAL;
    }
    if ((doc = us_entry_doc(e, a->cid, (int64_t)wa_clock_wall_ms())) == NULL) {
        free(a);
        return WA_ENOMEM;
    }
    err = wa_mongo_insert_one(us->mongo, US_COLL_CONSENT, doc, on_appended, a);
    json_decref(doc);
    if (err != WA_OK) {
        free(a);
    }
    return err;
}
