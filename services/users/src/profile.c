/*
 * profile.c: stage 2b (profile events). Input: a decoded inbound message or an accepted reply
 * (contact.c). Output: the contact document in Mongo contacts changed in one atomic update:
 *   - inbound: upsert by _id with filter {unread_wamids: {$ne: wamid}}; $inc unread_count,
 *     $push the wamid, $max last_interaction_at (only moves forward), $set profile_name and
 *     the BSUID; a new contact gets created_at and name. A redelivered message matches nothing,
 *     the upsert then collides on _id (duplicate key): already counted, nothing changes twice.
 *     A new contact produces contact.event {kind: "created"} (event id "created:<contact>").
 *   - reply: unread_count 0 and unread_wamids emptied (the business answered).
 *
 * Documents are built with libbson (libs/mongo BSON API): no JSON on this path. After each
 * acknowledged change the contact's cached GET answer is invalidated (cache.c).
 *
 * Threading: loop thread. Ownership: struct pf is freed once cb ran.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "wa/clock.h"
#include "wa/mongo.h"

struct pf {
    struct us *us;
    char cid[US_ID_MAX];
    char pnid[64];
    us_done_fn cb;
    void *arg;
};

static void
pf_finish(struct pf *p, enum wa_err err)
{
    p->cb(p->arg, err);
    free(p);
}

static void
on_created_event(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    (void)partition;
    (void)offset;
    pf_finish(arg, err);
}

static void
on_inbound(void *arg, enum wa_err err, const struct wa_mongo_result *r)
{
    struct pf *p = arg;
    char id[US_ID_MAX + 16];

    if (err == WA_EEXIST) {
        wa_counter_inc(p->us->m.duplicates); /* this wamid was counted already */
        pf_finish(p, WA_OK);
        return;
    }
    if (err == WA_OK) {
        (void)us_cache_invalidate(p->us, p->cid, NULL, NULL);
    }
    if (err != WA_OK || r->upserted == 0) {
        pf_finish(p, err);
        return;
    }
    snprintf(id, sizeof(id), "created:%s", p->cid);
    if ((err = us_event_produce(p->us, id, "created", p->cid, p->pnid, NULL, on_created_event,
                                p)) != WA_OK) {
        pf_finish(p, err);
    }
}

/* The hot path of event consumption: filter and update built as BSON (libs/mongo BSON API). */
enum wa_err
us_profile_inbound(struct us *us, const struct us_inbound *in, us_done_fn cb, void *arg)
{
    struct pf *p = calloc(1, sizeof(*p));
    char at[WA_RFC3339_LEN], now[WA_RFC3339_LEN];
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, child, sub;
    enum wa_err err;

    if (p == NULL) {
        return WA_ENOMEM;
    }
    p->us = us;
    p->cb = cb;
    p->arg = arg;
    snprintf(p->cid, sizeof(p->cid), "%s", in->contact_id);
    snprintf(p->pnid, sizeof(p->pnid), "%s", in->phone_number_id);
    wa_clock_rfc3339((uint64_t)(in->at_ms > 0 ? in->at_ms : 0), at);
    wa_clock_rfc3339(wa_clock_wall_ms(), now);
    /* {_id, unread_wamids: {$ne: wamid}} */
    BSON_APPEND_UTF8(&filter, "_id", in->contact_id);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "unread_wamids", &child);
    BSON_APPEND_UTF8(&child, "$ne", in->wamid);
    bson_append_document_end(&filter, &child);
    /* $set, $setOnInsert, $inc unread_count, $push the wamid, $max last_interaction_at */
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &child);
    BSON_APPEND_UTF8(&child, "updated_at", now);
    if (in->profile_name[0] != '\0') {
        BSON_APPEND_UTF8(&child, "profile_name", in->profile_name);
    }
    if (in->bsuid[0] != '\0') {
        BSON_APPEND_UTF8(&child, "bsuid", in->bsuid);
    }
    bson_append_document_end(&update, &child);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$setOnInsert", &child);
    BSON_APPEND_UTF8(&child, "created_at", now);
    BSON_APPEND_UTF8(&child, in->contact_id[0] == '+' ? "phone" : "bsuid", in->contact_id);
    if (in->profile_name[0] != '\0') {
        BSON_APPEND_UTF8(&child, "name", in->profile_name);
    }
    bson_append_document_end(&update, &child);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$inc", &sub);
    BSON_APPEND_INT32(&sub, "unread_count", 1);
    bson_append_document_end(&update, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$push", &sub);
    BSON_APPEND_UTF8(&sub, "unread_wamids", in->wamid);
    bson_append_document_end(&update, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$max", &sub);
    BSON_APPEND_UTF8(&sub, "last_interaction_at", at);
    bson_append_document_end(&update, &sub);
    err = wa_mongo_update(us->mongo, US_COLL_CONTACTS, &filter, &update, WA_MONGO_UPSERT,
                          on_inbound, p);
    bson_destroy(&filter);
    bson_destroy(&update);
    if (err != WA_OK) {
        free(p);
    }
    return err;
}

static void
on_replied(void *arg, enum wa_err err, const struct wa_mongo_result *r)
{
    struct pf *p = arg;

    if (err == WA_OK && r->matched > 0) {
        (void)us_cache_invalidate(p->us, p->cid, NULL, NULL);
    }
    pf_finish(p, err);
}

enum wa_err
us_profile_replied(struct us *us, const char *contact_id, us_done_fn cb, void *arg)
{
    struct pf *p = calloc(1, sizeof(*p));
    char now[WA_RFC3339_LEN];
    bson_t *filter, *update;
    enum wa_err err;

    if (p == NULL) {
        return WA_ENOMEM;
    }
    p->us = us;
    p->cb = cb;
    p->arg = arg;
    snprintf(p->cid, sizeof(p->cid), "%s", contact_id);
    wa_clock_rfc3339(wa_clock_wall_ms(), now);
    filter = BCON_NEW("_id", BCON_UTF8(contact_id), "unread_count", "{", "$gt", BCON_INT32(0), "}");
    update = BCON_NEW("$set", "{", "unread_count", BCON_INT32(0), "unread_wamids", "[", "]",
                      "updated_at", BCON_UTF8(now), "}");
    err = wa_mongo_update(us->mongo, US_COLL_CONTACTS, filter, update, 0, on_replied, p);
    bson_destroy(filter);
    bson_destroy(update);
    if (err != WA_OK) {
        free(p);
    }
    return err;
}
