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
on_inbound(void *arg, enum wa_err err, int64_t matched, int64_t modified, bool upserted)
{
    struct pf *p = arg;
    char id[US_ID_MAX + 16];

    (void)matched;
    (void)modified;
    if (err == WA_EEXIST) {
        wa_counter_inc(p->us->m.duplicates); /* this wamid was counted already */
        pf_finish(p, WA_OK);
        return;
    }
    if (err != WA_OK || !upserted || p->us->stopped) {
        pf_finish(p, err);
        return;
    }
    snprintf(id, sizeof(id), "created:%s", p->cid);
    if ((err = us_event_produce(p->us, id, "created", p->cid, p->pnid, NULL, on_created_event,
                                p)) != WA_OK) {
        pf_finish(p, err);
    }
}

enum wa_err
us_profile_inbound(struct us *us, const struct us_inbound *in, us_done_fn cb, void *arg)
{
    struct pf *p = calloc(1, sizeof(*p));
    char at[WA_RFC3339_LEN], now[WA_RFC3339_LEN];
    json_t *filter, *set, *insert, *update;
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
    filter = json_pack("{s:s, s:{s:s}}", "_id", in->contact_id, "unread_wamids", "$ne", in->wamid);
    set = json_pack("{s:s}", "updated_at", now);
    insert = json_pack("{s:s}", "created_at", now);
    if (set != NULL && insert != NULL) {
        json_object_set_new(insert, in->contact_id[0] == '+' ? "phone" : "bsuid",
                            json_string(in->contact_id));
        if (in->profile_name[0] != '\0') {
            json_object_set_new(set, "profile_name", json_string(in->profile_name));
            json_object_set_new(insert, "name", json_string(in->profile_name));
        }
        if (in->bsuid[0] != '\0') {
            json_object_set_new(set, "bsuid", json_string(in->bsuid));
        }
    }
    update = set != NULL && insert != NULL
                 ? json_pack("{s:O, s:O, s:{s:i}, s:{s:s}, s:{s:s}}", "$set", set, "$setOnInsert",
                             insert, "$inc", "unread_count", 1, "$push", "unread_wamids", in->wamid,
                             "$max", "last_interaction_at", at)
                 : NULL;
    err =
        filter != NULL && update != NULL
            ? wa_mongo_update_one(us->mongo, US_COLL_CONTACTS, filter, update, true, on_inbound, p)
            : WA_ENOMEM;
    json_decref(filter);
    json_decref(set);
    json_decref(insert);
    json_decref(update);
    if (err != WA_OK) {
        free(p);
    }
    return err;
}

static void
on_replied(void *arg, enum wa_err err, int64_t matched, int64_t modified, bool upserted)
{
    (void)matched;
    (void)modified;
    (void)upserted;
    pf_finish(arg, err);
}

enum wa_err
us_profile_replied(struct us *us, const char *contact_id, us_done_fn cb, void *arg)
{
    struct pf *p = calloc(1, sizeof(*p));
    char now[WA_RFC3339_LEN];
    json_t *filter, *update;
    enum wa_err err;

    if (p == NULL) {
        return WA_ENOMEM;
    }
    p->us = us;
    p->cb = cb;
    p->arg = arg;
    wa_clock_rfc3339(wa_clock_wall_ms(), now);
    filter = json_pack("{s:s, s:{s:i}}", "_id", contact_id, "unread_count", "$gt", 0);
    update = json_pack("{s:{s:i, s:[], s:s}}", "$set", "unread_count", 0, "unread_wamids",
                       "updated_at", now);
    err =
        filter != NULL && update != NULL
            ? wa_mongo_update_one(us->mongo, US_COLL_CONTACTS, filter, update, false, on_replied, p)
            : WA_ENOMEM;
    json_decref(filter);
    json_decref(update);
    if (err != WA_OK) {
        free(p);
    }
    return err;
}
