/*
 * suppress.c: stage 1 of 3 (suppression keys). wa-notify reads <p>optout:<h> ("1" while the
 * identity opted out of marketing, missing otherwise; h = HMAC-SHA256(WA_OPTOUT_KEY, identity)
 * in hex, identity = wa_id digits without '+', or the BSUID: wa/optout.h, docs/architecture.md
 * "Shared state contracts"). MongoDB `suppressions` holds one document {_id: h, at} per
 * opted-out identity: no number, no name, so it stays after the contact's erasure (rest.c) and
 * keeps the opt-out honoured; a START (or any opt-in) of the same identity later removes it.
 * This file writes both:
 *   - us_suppress_apply: for one contact document, for each identity it has (phone and bsuid):
 *     upsert the suppressions document then SET the key, or delete the document then DEL the
 *     key, after every consent change (ledger.c) and at erasure (rest.c);
 *   - rebuild at start: every contact with a marketing state is read from MongoDB (pages of
 *     REBUILD_PAGE by _id) and applied as above (which also fills `suppressions` for contacts
 *     that opted out before it existed), then every suppressions document's key is SET (the
 *     erased contacts'), so a flushed or new Redis is made true again before the consumer
 *     starts (readiness probe "suppression" turns true when done);
 *   - the same rebuild on demand: POST /v1/admin/suppression/rebuild (202; 409 while one
 *     runs), for a Redis flushed or replaced while the daemon runs.
 *
 * Threading: loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "wa/clock.h"
#include "wa/httpd.h"
#include "wa/kv.h"
#include "wa/log.h"
#include "wa/mongo.h"

#define REBUILD_PAGE 500
#define KEY_MAX      512

/* one us_suppress_apply call: its identities in parallel, cb once when every one is done */
struct sup {
    struct us *us;
    size_t pending;
    enum wa_err err;
    us_done_fn cb;
    void *arg;
};

/* one identity: the MongoDB document first, then the Redis key */
struct one {
    struct sup *s;
    bool set;
    char key[KEY_MAX];
};

static void
sup_one_done(struct sup *s, enum wa_err err)
{
    if (err != WA_OK && s->err == WA_OK) {
        s->err = err;
    }
    if (--s->pending == 0) {
        s->cb(s->arg, s->err);
        free(s);
    }
}

static void
one_done(struct one *o, enum wa_err err)
{
    struct sup *s = o->s;

    free(o);
    sup_one_done(s, err);
}

static void
on_set(void *arg, enum wa_err err)
{
    struct one *o = arg;

    if (err == WA_OK) {
        wa_counter_inc(o->s->us->m.keys_set);
    }
    one_done(o, err);
}

static void
on_del(void *arg, enum wa_err err, long long n)
{
    struct one *o = arg;

    if (err == WA_OK && n > 0) {
        wa_counter_inc(o->s->us->m.keys_deleted);
    }
    one_done(o, err);
}

/* The suppressions document is durable: now the key. */
static void
write_key(struct one *o, enum wa_err err)
{
    struct us *us = o->s->us;

    if (err == WA_OK) {
        err = o->set ? wa_kv_set_px(us->kv, o->key, "1", 0, on_set, o)
                     : wa_kv_del(us->kv, o->key, on_del, o);
    }
    if (err != WA_OK) {
        one_done(o, err);
    }
}

static void
on_doc_upserted(void *arg, enum wa_err err, int64_t matched, int64_t modified, bool upserted)
{
    (void)matched;
    (void)modified;
    (void)upserted;
    write_key(arg, err);
}

static void
on_doc_deleted(void *arg, enum wa_err err, int64_t count)
{
    (void)count;
    write_key(arg, err);
}

/* Starts one identity's document and key. On an error returned nothing was started. */
static enum wa_err
apply_one(struct sup *s, const char *identity, bool opted_out)
{
    struct us *us = s->us;
    char h[WA_OPTOUT_HASH_LEN + 1], at[WA_RFC3339_LEN];
    struct one *o;
    json_t *filter, *update = NULL;
    enum wa_err err;

    if ((err = wa_optout_hash(us->optout, identity, h)) != WA_OK) {
        return err;
    }
    if ((o = calloc(1, sizeof(*o))) == NULL) {
        return WA_ENOMEM;
    }
    o->s = s;
    o->set = opted_out;
    if ((err = wa_optout_key_of_hash(us->prefix, h, o->key, sizeof(o->key))) != WA_OK) {
        free(o);
        return err;
    }
    wa_clock_rfc3339(wa_clock_wall_ms(), at);
    filter = json_pack("{s:s}", "_id", h);
    if (opted_out) {
        update = json_pack("{s:{s:s}}", "$set", "at", at);
        err = filter != NULL && update != NULL
                  ? wa_mongo_update_one(us->mongo, US_COLL_SUPPRESSIONS, filter, update, true,
                                        on_doc_upserted, o)
                  : WA_ENOMEM;
    } else {
        err = filter != NULL
                  ? wa_mongo_delete_many(us->mongo, US_COLL_SUPPRESSIONS, filter, on_doc_deleted, o)
                  : WA_ENOMEM;
    }
    json_decref(filter);
    json_decref(update);
    if (err != WA_OK) {
        free(o);
    }
    return err;
}

enum wa_err
us_suppress_apply(struct us *us, const json_t *contact, bool opted_out, us_done_fn cb, void *arg)
{
    const char *ids[2] = {wa_json_str(contact, "phone"), wa_json_str(contact, "bsuid")};
    struct sup *s = calloc(1, sizeof(*s));
    enum wa_err err = WA_OK;

    if (s == NULL) {
        return WA_ENOMEM;
    }
    s->us = us;
    s->cb = cb;
    s->arg = arg;
    s->pending = 1; /* released below, so cb never runs inside this call */
    for (size_t i = 0; i < 2 && err == WA_OK; i++) {
        if (ids[i] == NULL || ids[i][0] == '\0') {
            continue;
        }
        s->pending++;
        if ((err = apply_one(s, ids[i], opted_out)) != WA_OK) {
            s->pending--;
        }
    }
    if (err != WA_OK && s->pending == 1) {
        free(s);
        return err;
    }
    s->err = err;
    s->pending--;
    if (s->pending == 0) {
        /* no identity at all (cannot happen for documents ledger.c writes): nothing to do */
        free(s);
        return err != WA_OK ? err : WA_ENOTFOUND;
    }
    return WA_OK;
}

/* ---- rebuild ---- */

struct rebuild {
    struct us *us;
    bool hashes;           /* second pass: suppressions (first: contacts) */
    char after[US_ID_MAX]; /* last _id of the previous page */
    size_t pending;        /* applies of this page not finished */
    size_t count, nhashes;
    bool failed;
    bool page_done; /* every apply of the page was issued */
    size_t page_len;
    struct wa_timer *timer;
    bool waiting; /* a MongoDB or Redis callback is due */
};

static void next_page(struct rebuild *r);

static void
rebuild_end(struct rebuild *r)
{
    struct us *us = r->us;
    struct wa_error error = {0};
    bool first = !us->rebuilt;

    wa_log_info(NULL, "suppression keys rebuilt from MongoDB: %zu contacts, %zu suppressions",
                r->count, r->nhashes);
    wa_timer_free(r->timer);
    free(r);
    us->rebuild = NULL;
    us->rebuilt = true;
    if (!first) {
        return; /* an on-demand rebuild: the consumer already runs */
    }
    if (us_consume_start(us, &error) != WA_OK) {
        wa_log_error(NULL, "consumer: %s", error.message);
    }
}

static void
on_retry(struct wa_timer *t, void *arg)
{
    (void)t;
    next_page(arg);
}

static void
page_settled(struct rebuild *r)
{
    if (r->pending > 0 || !r->page_done) {
        return;
    }
    r->waiting = false;
    if (r->failed) {
        r->failed = false; /* the same page again, after a pause */
        wa_timer_start(r->timer, (uint64_t)r->us->cfg->retry_ms, 0);
        return;
    }
    if (r->page_len < REBUILD_PAGE && !r->hashes) {
        r->hashes = true; /* the contacts are done: now the keys of every suppression */
        r->after[0] = '\0';
    } else if (r->page_len < REBUILD_PAGE) {
        rebuild_end(r);
        return;
    }
    next_page(r);
}

static void
on_applied(void *arg, enum wa_err err)
{
    struct rebuild *r = arg;

    r->failed = r->failed || err != WA_OK;
    r->pending--;
    page_settled(r);
}

static void
on_page(void *arg, enum wa_err err, json_t *docs)
{
    struct rebuild *r = arg;
    size_t i;
    json_t *doc;
    char last[US_ID_MAX] = "";

    if (err != WA_OK) {
        if (err != WA_OK && err != WA_ECLOSED) {
            wa_log_warn(NULL, "suppression rebuild: MongoDB %s; retrying", wa_err_name(err));
        }
        r->failed = true;
        r->page_done = true;
        page_settled(r);
        return;
    }
    r->page_done = false;
    r->page_len = json_array_size(docs);
    json_array_foreach(docs, i, doc)
    {
        const char *status = wa_json_path_str(doc, "consent.marketing.status");
        const char *id = wa_json_str(doc, "_id");
        char key[KEY_MAX];

        if (id != NULL) {
            snprintf(last, sizeof(last), "%s", id);
        }
        if (r->hashes) {
            if (wa_optout_key_of_hash(r->us->prefix, id, key, sizeof(key)) != WA_OK) {
                continue; /* not a hash: not ours to repair */
            }
            r->pending++;
            if (wa_kv_set_px(r->us->kv, key, "1", 0, on_applied, r) != WA_OK) {
                r->pending--;
                r->failed = true;
            } else {
                r->nhashes++;
            }
            continue;
        }
        if (status == NULL) {
            continue;
        }
        r->pending++;
        if (us_suppress_apply(r->us, doc, strcmp(status, "opted_out") == 0, on_applied, r) !=
            WA_OK) {
            r->pending--;
            r->failed = true;
        } else {
            r->count++;
        }
    }
    if (!r->failed && last[0] != '\0') {
        snprintf(r->after, sizeof(r->after), "%s", last);
    }
    r->page_done = true;
    page_settled(r);
}

static void
next_page(struct rebuild *r)
{
    json_t *filter, *opts;
    enum wa_err err;

    r->page_done = false;
    if (r->hashes) {
        filter =
            r->after[0] != '\0' ? json_pack("{s:{s:s}}", "_id", "$gt", r->after) : json_object();
        opts = json_pack("{s:{s:i}, s:i, s:{s:i}}", "sort", "_id", 1, "limit", REBUILD_PAGE,
                         "projection", "_id", 1);
    } else {
        filter = r->after[0] != '\0' ? json_pack("{s:{s:b}, s:{s:s}}", "consent.marketing",
                                                 "$exists", 1, "_id", "$gt", r->after)
                                     : json_pack("{s:{s:b}}", "consent.marketing", "$exists", 1);
        opts = json_pack("{s:{s:i}, s:i, s:{s:i, s:i, s:i}}", "sort", "_id", 1, "limit",
                         REBUILD_PAGE, "projection", "phone", 1, "bsuid", 1, "consent", 1);
    }
    err = filter != NULL && opts != NULL
              ? wa_mongo_find(r->us->mongo, r->hashes ? US_COLL_SUPPRESSIONS : US_COLL_CONTACTS,
                              filter, opts, on_page, r)
              : WA_ENOMEM;
    json_decref(filter);
    json_decref(opts);
    r->waiting = err == WA_OK;
    if (err != WA_OK) {
        r->failed = false;
        wa_timer_start(r->timer, (uint64_t)r->us->cfg->retry_ms, 0);
    }
}

enum wa_err
us_suppress_rebuild_start(struct us *us, struct wa_error *error)
{
    struct rebuild *r = calloc(1, sizeof(*r));

    if (r == NULL || (r->timer = wa_timer_new(us->loop, on_retry, r)) == NULL) {
        free(r);
        return wa_error_set(error, WA_ENOMEM, "rebuild state");
    }
    r->us = us;
    us->rebuild = r;
    next_page(r);
    return WA_OK;
}

static void
on_rebuild_request(struct wa_http_req *req, void *arg)
{
    struct us *us = arg;
    struct wa_error error = {0};

    if (us->rebuild != NULL) {
        wa_http_reply_problem(req, 409, "Conflict", "a rebuild of the suppression keys runs", NULL,
                              0);
        return;
    }
    if (us_suppress_rebuild_start(us, &error) != WA_OK) {
        wa_http_reply_problem(req, 503, "Service Unavailable", error.message, NULL, 0);
        return;
    }
    wa_log_info(NULL, "suppression rebuild asked by request %s", wa_http_req_id(req));
    wa_http_reply_json(req, 202, "{\"status\":\"started\"}");
}

enum wa_err
us_suppress_routes(struct us *us, struct wa_error *error)
{
    if (wa_httpd_route(wa_service_httpd(us->svc), "POST", "/v1/admin/suppression/rebuild", 0,
                       on_rebuild_request, us) != WA_OK) {
        return wa_error_set(error, WA_ENOMEM, "route POST /v1/admin/suppression/rebuild");
    }
    return WA_OK;
}

void
us_suppress_stop(struct us *us)
{
    struct rebuild *r = us->rebuild;

    /* Its MongoDB and Redis callbacks already ran (the scaffolding silenced the clients). */
    if (r != NULL) {
        wa_timer_free(r->timer);
        free(r);
        us->rebuild = NULL;
    }
}
