/*
 * rest.c: the contacts API (README.md "REST"): JSON bodies, RFC 9457 problem+json errors with
 * every invalid field named (libs/httpd, wa/rest.h). Routes (a libs/httpd route table,
 * us_rest_start; unknown paths and methods are the server's 404 and 405):
 *   GET    /v1/contacts                  list: tag, priority, language, order_status,
 *                                        opted_out=marketing, updated_since, limit (<= 1000),
 *                                        cursor -> {"data": [...], "next_cursor": ...}
 *   PUT    /v1/contacts/{id}             create (201) or replace (200) the writable fields
 *   PATCH  /v1/contacts/{id}             JSON merge patch (200, 404)
 *   GET    /v1/contacts/{id}             200 / 404
 *   DELETE /v1/contacts/{id}             erasure (204, 404): contact, ledger, cache; an opt-out's
 *                                        suppression (a hash) stays; event erased
 *   POST   /v1/contacts/{id}/consent     a ledger entry, source api (201)
 *   GET    /v1/contacts/{id}/consent     the ledger and the derived state
 *   GET    /v1/contacts/{id}/export      everything held about the contact
 *   GET    /v1/contacts/export           NDJSON, one contact a line: the list's filters, every
 *                                        page (EXPORT_PAGE contacts a read) up to EXPORT_MAX
 *                                        bytes; X-Next-Cursor when more remain
 *   POST   /v1/contacts/import           import.c
 *   POST   /v1/admin/suppression/rebuild suppress.c: the optout keys rewritten on demand
 * {id}: "+15551234567", "%2B15551234567", "15551234567", "00 1 555 123 4567" or a BSUID.
 *
 * Threading: loop thread; each request is answered once, later, from a MongoDB callback.
 * Ownership: struct rq owns its documents; freed after the reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "wa/clock.h"
#include "wa/contract_outbound.h"
#include "wa/crypto.h"
#include "wa/rest.h"
#include "wa/log.h"
#include "wa/mongo.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000
#define BODY_MAX     (64u * 1024u)
#define EXPORT_PAGE  1000
#define EXPORT_MAX   (64u * 1024u * 1024u)

enum op {
    OP_GET,
    OP_PUT,
    OP_PATCH,
    OP_DELETE,
    OP_CONSENT_POST,
    OP_CONSENT_GET,
    OP_EXPORT,
    OP_LIST,
    OP_EXPORT_ALL
};

struct rq {
    struct us *us;
    struct wa_http_req *req;
    enum op op;
    char cid[US_ID_MAX];
    int status;
    json_t *body;    /* the parsed request body */
    json_t *contact; /* the contact document read */
    size_t limit;
    struct us_entry entry;
    int pending; /* erasure: MongoDB deletes not answered */
    enum wa_err err;
    json_t *filter;       /* export: the list's filter, without the page's _id bound */
    struct wa_buf ndjson; /* export: the lines so far */
};

static void
rq_free(struct rq *r)
{
    json_decref(r->body);
    json_decref(r->contact);
    json_decref(r->filter);
    wa_buf_cleanup(&r->ndjson);
    free(r);
}

static void
problem(struct rq *r, int status, const char *title, const char *detail)
{
    wa_http_reply_problem(r->req, status, title, detail, NULL, 0);
    rq_free(r);
}

static void
unavailable(struct rq *r, enum wa_err err)
{
    wa_log_warn(NULL, "%s %s: MongoDB %s", wa_http_req_method(r->req), wa_http_req_path(r->req),
                wa_err_name(err));
    problem(r, 503, "Service Unavailable", "the contact store did not answer; retry later");
}

static void
reply_json(struct rq *r, int status, json_t *v)
{
    char *text = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;

    if (text == NULL) {
        json_decref(v);
        problem(r, 500, "Internal Server Error", "out of memory");
        return;
    }
    wa_http_reply_json(r->req, status, text);
    free(text);
    json_decref(v);
    rq_free(r);
}

static void
invalid_fields(struct rq *r, const struct us_body_check *c)
{
    struct wa_http_problem_field f[US_BODY_ERRORS_MAX];

    for (size_t i = 0; i < c->n; i++) {
        f[i].pointer = c->errors[i].pointer;
        f[i].detail = c->errors[i].detail;
    }
    wa_http_reply_problem(r->req, 422, "Unprocessable Content", "the request has invalid fields", f,
                          c->n);
    rq_free(r);
}

static void
invalid_one(struct rq *r, const char *pointer, const char *detail)
{
    struct wa_http_problem_field f = {pointer, detail};

    wa_http_reply_problem(r->req, 422, "Unprocessable Content", detail, &f, 1);
    rq_free(r);
}

/* ---- read one contact ---- */

static void
on_ledger(void *arg, enum wa_err err, json_t *docs)
{
    struct rq *r = arg;
    json_t *data, *state, *out, *doc;
    size_t i;

    if (err != WA_OK) {
        unavailable(r, err);
        return;
    }
    data = json_array();
    state = json_object();
    json_array_foreach(docs, i, doc)
    {
        json_t *e = json_deep_copy(doc);

        if (e != NULL) {
            json_object_set(e, "id", json_object_get(doc, "_id"));
            json_object_del(e, "_id");
            json_array_append_new(data, e);
        }
    }
    for (int c = 0; c < US_NCATEGORIES; c++) {
        struct us_consent_state st;

        us_consent_derive(docs, (enum us_category)c, &st);
        json_object_set_new(state, us_category_name((enum us_category)c),
                            json_pack("{s:s, s:b}", "status",
                                      us_status_name(st.known ? st.status : US_OPTED_IN),
                                      "recorded", st.known));
    }
    if (r->op == OP_EXPORT) {
        out = json_pack("{s:o, s:o, s:o}", "contact", us_contact_render(r->contact), "consent",
                        data, "state", state);
    } else {
        out = json_pack("{s:s, s:o, s:o}", "contact", r->cid, "data", data, "state", state);
    }
    reply_json(r, 200, out);
}

static void
read_ledger(struct rq *r)
{
    json_t *filter = json_pack("{s:s}", "contact", r->cid);
    json_t *opts = json_pack("{s:{s:i, s:i}, s:i}", "sort", "at_ms", 1, "recorded_ms", 1, "limit",
                             WA_MONGO_MAX_DOCS);
    enum wa_err err = filter != NULL && opts != NULL
                          ? wa_mongo_find(r->us->mongo, US_COLL_CONSENT, filter, opts, on_ledger, r)
                          : WA_ENOMEM;

    json_decref(filter);
    json_decref(opts);
    if (err != WA_OK) {
        unavailable(r, err);
    }
}

static void start_erasure(struct rq *r);

static void
on_contact(void *arg, enum wa_err err, json_t *doc)
{
    struct rq *r = arg;

    if (err == WA_ENOTFOUND) {
        problem(r, 404, "Not Found", "no such contact");
        return;
    }
    if (err != WA_OK) {
        unavailable(r, err);
        return;
    }
    r->contact = json_incref(doc);
    switch (r->op) {
    case OP_CONSENT_GET:
    case OP_EXPORT:
        read_ledger(r);
        return;
    case OP_DELETE:
        start_erasure(r);
        return;
    default:
        reply_json(r, r->status, us_contact_render(doc));
        return;
    }
}

static void
read_contact(struct rq *r)
{
    json_t *filter = json_pack("{s:s}", "_id", r->cid);
    enum wa_err err = filter != NULL ? wa_mongo_find_one(r->us->mongo, US_COLL_CONTACTS, filter,
                                                         NULL, on_contact, r)
                                     : WA_ENOMEM;

    json_decref(filter);
    if (err != WA_OK) {
        unavailable(r, err);
    }
}

/* GET /v1/contacts/{id}: through the read cache (cache.c). */
static void
on_cached(void *arg, enum wa_err err, const char *json, size_t len, bool hit)
{
    struct rq *r = arg;

    (void)hit;
    if (err == WA_ENOTFOUND) {
        problem(r, 404, "Not Found", "no such contact");
    } else if (err != WA_OK) {
        unavailable(r, err);
    } else {
        wa_http_reply(r->req, 200, "application/json", json, len);
        rq_free(r);
    }
}

static void
read_cached(struct rq *r)
{
    enum wa_err err = us_cache_get(r->us, r->cid, on_cached, r);

    if (err != WA_OK) {
        unavailable(r, err);
    }
}

/* ---- PUT / PATCH ---- */

/* The write is durable whatever happened to its event: answer from MongoDB. */
static void
on_written_event(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct rq *r = arg;

    (void)partition;
    (void)offset;
    if (err != WA_OK) {
        wa_log_warn(NULL, "contact.event of request %s: %s", wa_http_req_id(r->req),
                    wa_err_name(err));
    }
    read_contact(r);
}

static void
on_written(void *arg, enum wa_err err, int64_t matched, int64_t modified, bool upserted)
{
    struct rq *r = arg;

    (void)modified;
    if (err != WA_OK) {
        unavailable(r, err);
        return;
    }
    if (r->op == OP_PATCH && matched == 0) {
        problem(r, 404, "Not Found", "no such contact");
        return;
    }
    (void)us_cache_invalidate(r->us, r->cid, NULL, NULL);
    r->status = upserted ? 201 : 200;
    r->op = OP_GET;
    if ((err = us_event_written(r->us, wa_http_req_id(r->req), r->cid, upserted, r->body,
                                on_written_event, r)) != WA_OK) {
        on_written_event(err, -1, -1, r);
    }
}

static void
write_contact(struct rq *r)
{
    struct us_body_check c;
    char now[WA_RFC3339_LEN];
    json_t *update = NULL, *filter;
    bool patch = r->op == OP_PATCH;
    enum wa_err err;

    us_contact_body_check(r->body, patch, &c);
    if (c.n > 0) {
        invalid_fields(r, &c);
        return;
    }
    wa_clock_rfc3339(wa_clock_wall_ms(), now);
    if (us_contact_update(r->body, patch, now, &update) != WA_OK) {
        problem(r, 500, "Internal Server Error", "out of memory");
        return;
    }
    if (!patch) {
        json_object_set_new(update, "$setOnInsert",
                            json_pack("{s:s, s:s, s:i}", "created_at", now,
                                      r->cid[0] == '+' ? "phone" : "bsuid", r->cid, "unread_count",
                                      0));
    }
    filter = json_pack("{s:s}", "_id", r->cid);
    err = filter != NULL ? wa_mongo_update_one(r->us->mongo, US_COLL_CONTACTS, filter, update,
                                               !patch, on_written, r)
                         : WA_ENOMEM;
    json_decref(filter);
    json_decref(update);
    if (err != WA_OK) {
        unavailable(r, err);
    }
}

/* ---- DELETE: erasure ---- */

static void
on_erased_event(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct rq *r = arg;

    (void)partition;
    (void)offset;
    if (err != WA_OK) {
        wa_log_warn(NULL, "contact.event erased: %s", wa_err_name(err));
    }
    wa_http_reply(r->req, 204, NULL, "", 0);
    rq_free(r);
}

static void
erasure_step(struct rq *r, enum wa_err err)
{
    char id[US_ID_MAX + 40];

    if (err != WA_OK && r->err == WA_OK) {
        r->err = err;
    }
    if (--r->pending > 0) {
        return;
    }
    if (r->err != WA_OK) {
        unavailable(r, r->err);
        return;
    }
    snprintf(id, sizeof(id), "erased:%s:%llu", r->cid, (unsigned long long)wa_clock_wall_ms());
    if ((err = us_event_produce(r->us, id, "erased", r->cid, NULL, NULL, on_erased_event, r)) !=
        WA_OK) {
        on_erased_event(err, -1, -1, r);
    }
}

static void
on_deleted(void *arg, enum wa_err err, int64_t count)
{
    (void)count;
    erasure_step(arg, err);
}

static void
on_keys_deleted(void *arg, enum wa_err err)
{
    erasure_step(arg, err == WA_ENOTFOUND ? WA_OK : err);
}

/* The contact, its ledger and its cached copy go, in parallel. */
static void
erase(struct rq *r)
{
    json_t *by_id = json_pack("{s:s}", "_id", r->cid);
    json_t *by_contact = json_pack("{s:s}", "contact", r->cid);

    r->pending = 1;
    if (by_id != NULL &&
        wa_mongo_delete_many(r->us->mongo, US_COLL_CONTACTS, by_id, on_deleted, r) == WA_OK) {
        r->pending++;
    } else {
        r->err = WA_EUNAVAIL;
    }
    if (by_contact != NULL &&
        wa_mongo_delete_many(r->us->mongo, US_COLL_CONSENT, by_contact, on_deleted, r) == WA_OK) {
        r->pending++;
    } else {
        r->err = WA_EUNAVAIL;
    }
    if (us_cache_invalidate(r->us, r->cid, on_keys_deleted, r) == WA_OK) {
        r->pending++; /* the cached contact (name, number) goes too */
    }
    json_decref(by_id);
    json_decref(by_contact);
    erasure_step(r, WA_OK);
}

static void
on_suppression_kept(void *arg, enum wa_err err)
{
    struct rq *r = arg;

    if (err != WA_OK) {
        unavailable(r, err); /* nothing erased yet: a retry does it all */
        return;
    }
    erase(r);
}

/* An opt-out outlives the contact: its suppressions (hashes, no number: suppress.c) stay.
 * They are written again first, in case the opt-out predates them; without an opt-out there
 * is no suppression to keep. */
static void
start_erasure(struct rq *r)
{
    const char *marketing = wa_json_path_str(r->contact, "consent.marketing.status");
    enum wa_err err;

    if (marketing == NULL || strcmp(marketing, "opted_out") != 0) {
        erase(r);
        return;
    }
    if ((err = us_suppress_apply(r->us, r->contact, true, on_suppression_kept, r)) != WA_OK) {
        unavailable(r, err);
    }
}

/* ---- POST consent ---- */

static void
on_consent(void *arg, enum wa_err err)
{
    struct rq *r = arg;

    if (err != WA_OK) {
        unavailable(r, err);
        return;
    }
    reply_json(r, 201, us_entry_doc(&r->entry, r->cid, (int64_t)wa_clock_wall_ms()));
}

static void
post_consent(struct rq *r)
{
    struct us_body_check c;
    const char *category = wa_json_str(r->body, "category"),
               *status = wa_json_str(r->body, "status"), *scope = wa_json_str(r->body, "scope");
    struct us_entry *e = &r->entry;
    enum wa_err err;

    memset(&c, 0, sizeof(c));
    memset(e, 0, sizeof(*e));
    if (!json_is_object(r->body)) {
        invalid_one(r, "", "the body must be a JSON object");
        return;
    }
    if (us_category_parse(category, &e->category) != WA_OK) {
        snprintf(c.errors[c.n].pointer, sizeof(c.errors[0].pointer), "/category");
        snprintf(c.errors[c.n++].detail, sizeof(c.errors[0].detail),
                 "must be one of marketing, utility, authentication, service");
    }
    if (us_status_parse(status, &e->status) != WA_OK) {
        snprintf(c.errors[c.n].pointer, sizeof(c.errors[0].pointer), "/status");
        snprintf(c.errors[c.n++].detail, sizeof(c.errors[0].detail),
                 "must be opted_in or opted_out");
    }
    if (scope != NULL && (strlen(scope) == 0 || strlen(scope) >= sizeof(e->scope))) {
        snprintf(c.errors[c.n].pointer, sizeof(c.errors[0].pointer), "/scope");
        snprintf(c.errors[c.n++].detail, sizeof(c.errors[0].detail),
                 "must be \"all\" or a phone_number_id");
    }
    if (c.n > 0) {
        invalid_fields(r, &c);
        return;
    }
    /* the request id (X-Request-Id when the client sends one) makes a retried POST one entry */
    {
        char cause[3 * US_ID_MAX], hex[65];
        unsigned char digest[32];
        int w =
            snprintf(cause, sizeof(cause), "%s\n%s\n%s", wa_http_req_id(r->req), category, r->cid);

        wa_sha256(cause, w > 0 ? (size_t)w : 0, digest);
        wa_hex_encode(digest, 16, hex);
        snprintf(e->id, sizeof(e->id), "api:%s", hex);
    }
    snprintf(e->contact, sizeof(e->contact), "%s", us_key_identity(r->cid));
    snprintf(e->scope, sizeof(e->scope), "%s", scope != NULL ? scope : US_SCOPE_ALL);
    snprintf(e->evidence_command, sizeof(e->evidence_command), "%s", wa_http_req_id(r->req));
    e->source = US_SRC_API;
    e->at_ms = (int64_t)wa_clock_wall_ms();
    if ((err = us_ledger_apply(r->us, e, on_consent, r)) != WA_OK) {
        unavailable(r, err);
    }
}

/* ---- list ---- */

static void find_page(struct rq *r, const char *after);

/* Export: appends a page's lines; reads the next page, or replies when the list or the
 * EXPORT_MAX bytes are done (then X-Next-Cursor names where a next export goes on). */
static void
export_page(struct rq *r, const json_t *docs)
{
    size_t i, n = json_array_size(docs);
    const json_t *doc;
    const char *last = NULL;
    char cursor[2 * US_ID_MAX + 1] = "";

    json_array_foreach(docs, i, doc)
    {
        json_t *c = i < EXPORT_PAGE ? us_contact_render(doc) : NULL;
        char *line = c != NULL ? json_dumps(c, JSON_COMPACT) : NULL;

        json_decref(c);
        if (i >= EXPORT_PAGE) {
            break;
        }
        if (line == NULL || wa_buf_append_str(&r->ndjson, line) != WA_OK ||
            wa_buf_append(&r->ndjson, "\n", 1) != WA_OK) {
            free(line);
            problem(r, 500, "Internal Server Error", "out of memory");
            return;
        }
        free(line);
        last = wa_json_str(doc, "_id");
    }
    if (n > EXPORT_PAGE && last != NULL) {
        if (r->ndjson.len < EXPORT_MAX) {
            find_page(r, last);
            return;
        }
        if (2 * strlen(last) < sizeof(cursor)) {
            wa_hex_encode((const unsigned char *)last, strlen(last), cursor);
            wa_http_reply_header(r->req, "X-Next-Cursor", cursor);
        }
    }
    wa_http_reply(r->req, 200, "application/x-ndjson", r->ndjson.data, r->ndjson.len);
    rq_free(r);
}

static void
on_list(void *arg, enum wa_err err, json_t *docs)
{
    struct rq *r = arg;
    json_t *data, *doc, *out;
    size_t i, n = json_array_size(docs);
    char cursor[2 * US_ID_MAX + 1] = "";

    if (err != WA_OK) {
        unavailable(r, err);
        return;
    }
    if (r->op == OP_EXPORT_ALL) {
        export_page(r, docs);
        return;
    }
    data = json_array();
    json_array_foreach(docs, i, doc)
    {
        if (i < r->limit) {
            json_array_append_new(data, us_contact_render(doc));
        }
    }
    if (n > r->limit) {
        const char *last = wa_json_str(json_array_get(docs, r->limit - 1), "_id");

        if (last != NULL && 2 * strlen(last) < sizeof(cursor)) {
            wa_hex_encode((const unsigned char *)last, strlen(last), cursor);
        }
    }
    out = json_pack("{s:o, s:o}", "data", data, "next_cursor",
                    cursor[0] != '\0' ? json_string(cursor) : json_null());
    reply_json(r, 200, out);
}

static void
list(struct rq *r)
{
    const char *q;
    json_t *filter = json_object(), *opts;
    struct wa_http_problem_field f[4];
    size_t nf = 0;
    enum wa_err err;

    static const char *const equal[] = {"tag", "priority", "language", "order_status"};
    for (size_t i = 0; i < 4; i++) {
        if ((q = wa_http_req_query(r->req, equal[i])) != NULL) {
            json_object_set_new(filter, i == 0 ? "tags" : equal[i], json_string(q));
        }
    }
    if ((q = wa_http_req_query(r->req, "opted_out")) != NULL) {
        enum us_category c;

        if (us_category_parse(q, &c) != WA_OK) {
            f[nf++] =
                (struct wa_http_problem_field){"opted_out", "must be a category (marketing, ...)"};
        } else {
            char path[64];

            snprintf(path, sizeof(path), "consent.%s.status", q);
            json_object_set_new(filter, path, json_string("opted_out"));
        }
    }
    if ((q = wa_http_req_query(r->req, "updated_since")) != NULL) {
        int64_t ms;
        char at[WA_RFC3339_LEN];

        if (wa_contract_time_parse(q, &ms) != WA_OK || ms < 0) {
            f[nf++] =
                (struct wa_http_problem_field){"updated_since", "must be an RFC 3339 date-time"};
        } else {
            wa_clock_rfc3339((uint64_t)ms, at);
            json_object_set_new(filter, "updated_at", json_pack("{s:s}", "$gte", at));
        }
    }
    r->limit = LIST_DEFAULT;
    if ((q = wa_http_req_query(r->req, "limit")) != NULL) {
        char *end = NULL;
        long long v = strtoll(q, &end, 10);

        if (end == q || *end != '\0' || v < 1 || v > LIST_MAX) {
            f[nf++] = (struct wa_http_problem_field){"limit", "must be an integer 1..1000"};
        } else {
            r->limit = (size_t)v;
        }
    }
    if ((q = wa_http_req_query(r->req, "cursor")) != NULL) {
        char last[US_ID_MAX], check[US_ID_MAX];
        ssize_t len = wa_hex_decode(q, (unsigned char *)last, sizeof(last) - 1);
        bool ok = len > 0 && memchr(last, '\0', (size_t)len) == NULL;

        last[ok ? len : 0] = '\0';
        if (!ok || us_contact_id(last, check, sizeof(check)) != WA_OK) {
            f[nf++] = (struct wa_http_problem_field){"cursor", "is not a cursor of this list"};
        } else {
            json_object_set_new(filter, "_id", json_pack("{s:s}", "$gt", last));
        }
    }
    if (nf > 0) {
        json_decref(filter);
        wa_http_reply_problem(r->req, 422, "Unprocessable Content",
                              "the query has invalid parameters", f, nf);
        rq_free(r);
        return;
    }
    if (r->op == OP_EXPORT_ALL) {
        const json_t *after = json_object_get(json_object_get(filter, "_id"), "$gt");
        char last[US_ID_MAX];

        snprintf(last, sizeof(last), "%s", after != NULL ? json_string_value(after) : "");
        r->filter = filter;
        wa_buf_init(&r->ndjson, 2 * EXPORT_MAX); /* a page (<= 1000 x 64 KiB) fits past the mark */
        find_page(r, last[0] != '\0' ? last : NULL);
        return;
    }
    opts = json_pack("{s:{s:i}, s:I, s:{s:i}}", "sort", "_id", 1, "limit",
                     (json_int_t)(r->limit + 1), "projection", "unread_wamids", 0);
    err = filter != NULL && opts != NULL
              ? wa_mongo_find(r->us->mongo, US_COLL_CONTACTS, filter, opts, on_list, r)
              : WA_ENOMEM;
    json_decref(filter);
    json_decref(opts);
    if (err != WA_OK) {
        unavailable(r, err);
    }
}

/* One export page: the filter with _id > after (NULL: from the start), EXPORT_PAGE + 1 read. */
static void
find_page(struct rq *r, const char *after)
{
    json_t *opts = json_pack("{s:{s:i}, s:i, s:{s:i}}", "sort", "_id", 1, "limit", EXPORT_PAGE + 1,
                             "projection", "unread_wamids", 0);
    enum wa_err err = WA_ENOMEM;

    if (after != NULL) {
        json_object_set_new(r->filter, "_id", json_pack("{s:s}", "$gt", after));
    }
    if (r->filter != NULL && opts != NULL) {
        err = wa_mongo_find(r->us->mongo, US_COLL_CONTACTS, r->filter, opts, on_list, r);
    }
    json_decref(opts);
    if (err != WA_OK) {
        unavailable(r, err);
    }
}

/* ---- dispatch ---- */

static bool
parse_body(struct rq *r)
{
    size_t len = 0;
    const char *text = wa_http_req_body(r->req, &len);
    json_error_t jerr;

    r->body = json_loadb(text != NULL ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (r->body == NULL) {
        wa_http_reply_problem(r->req, 400, "Bad Request", jerr.text, NULL, 0);
        rq_free(r);
        return false;
    }
    return true;
}

/* Every route: the request's state, the contact id of the path (when the route has one), then
 * the operation. */
static void
start(struct wa_http_req *req, struct us *us, enum op op)
{
    const char *id = wa_http_req_param(req, "id");
    struct rq *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        wa_http_reply_err(req, WA_ENOMEM, "out of memory");
        return;
    }
    r->us = us;
    r->req = req;
    r->status = 200;
    r->op = op;
    if (id != NULL && us_contact_path_id(id, r->cid, sizeof(r->cid)) != WA_OK) {
        invalid_one(r, "id", "not a phone number valid for its country (+15551234567) or a BSUID");
        return;
    }
    switch (op) {
    case OP_LIST:
    case OP_EXPORT_ALL:
        list(r);
        return;
    case OP_PUT:
    case OP_PATCH:
        if (parse_body(r)) {
            write_contact(r);
        }
        return;
    case OP_CONSENT_POST:
        if (parse_body(r)) {
            post_consent(r);
        }
        return;
    case OP_GET:
        read_cached(r);
        return;
    default:
        read_contact(r);
        return;
    }
}

static void
get_list(struct wa_http_req *req, void *arg)
{
    start(req, arg, OP_LIST);
}

static void
get_export_all(struct wa_http_req *req, void *arg)
{
    start(req, arg, OP_EXPORT_ALL);
}

static void
get_contact(struct wa_http_req *req, void *arg)
{
    start(req, arg, OP_GET);
}

static void
put_contact(struct wa_http_req *req, void *arg)
{
    start(req, arg, OP_PUT);
}

static void
patch_contact(struct wa_http_req *req, void *arg)
{
    start(req, arg, OP_PATCH);
}

static void
delete_contact(struct wa_http_req *req, void *arg)
{
    start(req, arg, OP_DELETE);
}

static void
get_consent(struct wa_http_req *req, void *arg)
{
    start(req, arg, OP_CONSENT_GET);
}

static void
post_consent_route(struct wa_http_req *req, void *arg)
{
    start(req, arg, OP_CONSENT_POST);
}

static void
get_export(struct wa_http_req *req, void *arg)
{
    start(req, arg, OP_EXPORT);
}

enum wa_err
us_rest_start(struct us *us, struct wa_error *error)
{
    static const struct wa_http_route routes[] = {
        {"GET", "/v1/contacts", get_list, 0},
        {"GET", "/v1/contacts/export", get_export_all, 0},
        {"GET", "/v1/contacts/{id}", get_contact, 0},
        {"PUT", "/v1/contacts/{id}", put_contact, BODY_MAX},
        {"PATCH", "/v1/contacts/{id}", patch_contact, BODY_MAX},
        {"DELETE", "/v1/contacts/{id}", delete_contact, 0},
        {"GET", "/v1/contacts/{id}/consent", get_consent, 0},
        {"POST", "/v1/contacts/{id}/consent", post_consent_route, BODY_MAX},
        {"GET", "/v1/contacts/{id}/export", get_export, 0},
    };
    enum wa_err err;

    if ((err = us_import_start(us, error)) != WA_OK ||
        (err = us_suppress_routes(us, error)) != WA_OK) {
        return err;
    }
    return wa_httpd_routes(wa_service_httpd(us->svc), routes, WA_ARRAY_LEN(routes), NULL, 0, us,
                           error);
}
