/*
 * suppress.c: stage 1 of 3 (suppression keys). wa-notify, wa-gateway and wa-router read
 * <p>optout:<identity> ("1" while the contact opted out of marketing, missing otherwise;
 * identity = wa_id digits without '+', or the BSUID; docs/architecture.md "Shared state
 * contracts"). This file writes them:
 *   - us_suppress_apply: for one contact document, SET or DEL the key of each identity it has
 *     (phone and bsuid), after every consent change (ledger.c);
 *   - rebuild at start: every contact with a marketing state is read from MongoDB (pages of
 *     REBUILD_PAGE by _id) and its keys written, so a flushed or new Redis is made true again
 *     before the consumer starts (readiness probe "suppression" turns true when done);
 *   - the same rebuild on demand: POST /v1/admin/suppression/rebuild (202; 409 while one
 *     runs), for a Redis flushed or replaced while the daemon runs.
 *
 * Threading: loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "wa/httpd.h"
#include "wa/kv.h"
#include "wa/log.h"
#include "wa/mongo.h"

#define REBUILD_PAGE 500

struct sup {
    struct us *us;
    size_t pending;
    enum wa_err err;
    us_done_fn cb;
    void *arg;
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
on_set(void *arg, enum wa_err err)
{
    struct sup *s = arg;

    if (err == WA_OK) {
        wa_counter_inc(s->us->m.keys_set);
    }
    sup_one_done(s, err);
}

static void
on_del(void *arg, enum wa_err err, long long n)
{
    struct sup *s = arg;

    if (err == WA_OK && n > 0) {
        wa_counter_inc(s->us->m.keys_deleted);
    }
    sup_one_done(s, err);
}

enum wa_err
us_suppress_apply(struct us *us, const json_t *contact, bool opted_out, us_done_fn cb, void *arg)
{
    const char *ids[2] = {wa_json_str(contact, "phone"), wa_json_str(contact, "bsuid")};
    struct sup *s = calloc(1, sizeof(*s));
    char key[512];
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
        if (snprintf(key, sizeof(key), "%soptout:%s", us->prefix, us_key_identity(ids[i])) >=
            (int)sizeof(key)) {
            err = WA_ETOOBIG;
            break;
        }
        s->pending++;
        err = opted_out ? wa_kv_set_px(us->kv, key, "1", 0, on_set, s)
                        : wa_kv_del(us->kv, key, on_del, s);
        if (err != WA_OK) {
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
    char after[US_ID_MAX]; /* last _id of the previous page */
    size_t pending;        /* applies of this page not finished */
    size_t count;
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

    wa_log_info(NULL, "suppression keys rebuilt from MongoDB: %zu contacts", r->count);
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
    if (r->page_len < REBUILD_PAGE) {
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

        if (id != NULL) {
            snprintf(last, sizeof(last), "%s", id);
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
    filter = r->after[0] != '\0' ? json_pack("{s:{s:b}, s:{s:s}}", "consent.marketing", "$exists",
                                             1, "_id", "$gt", r->after)
                                 : json_pack("{s:{s:b}}", "consent.marketing", "$exists", 1);
    opts = json_pack("{s:{s:i}, s:i, s:{s:i, s:i, s:i}}", "sort", "_id", 1, "limit", REBUILD_PAGE,
                     "projection", "phone", 1, "bsuid", 1, "consent", 1);
    err = filter != NULL && opts != NULL
              ? wa_mongo_find(r->us->mongo, US_COLL_CONTACTS, filter, opts, on_page, r)
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
