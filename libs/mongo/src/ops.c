/*
 * ops.c: the BSON API (wa/mongo.h "BSON API"): writes with counts, find_doc,
 * find-one-and-update, cursors fetched page by page, bulk writes, migrate. The jobs, their
 * pool and their lifetimes are mongo.c's; this file adds the kinds, their worker side (ops_run,
 * ops_run_cursor) and their loop side (ops_notify, ops_cursor_done).
 *
 * Cursors: struct wa_mongo_cursor is owned by the caller. Its driver state (a popped client and
 * the mongoc_cursor_t) is touched only by its jobs on the pool, one at a time (a second
 * wa_mongo_cursor_next while a page is in flight is refused), and is destroyed on the pool by a
 * close job, because closing a server cursor sends killCursors (blocking I/O). The cursor holds
 * a reference on the client (mongo_retain) until its struct is freed, after that close job.
 *
 * Bulk writes: the mongoc_bulk_operation_t is built on the loop thread (appending copies the
 * documents; no I/O) and executed and destroyed on the pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "wa/log.h"

#define PAGE_DEFAULT 1000u
#define PAGE_MAX     100000u
#define PAGE_BYTES   (16u * 1024u * 1024u) /* a page ends at this many bytes of documents */
#define BULK_MAX     1000000u              /* operations in one wa_mongo_bulk */
#define KEYS_MAX     256                   /* "field:1,other:-1" strings */

struct wa_mongo_cursor {
    struct wa_mongo *m;
    char coll[MAX_NAME + 1];
    bool aggregate;
    bson_t *query; /* filter, or the pipeline */
    bson_t *opts;
    uint32_t page_size;
    /* driver state: the jobs' (one at a time) */
    mongoc_client_t *client;
    mongoc_cursor_t *mc;
    /* loop thread */
    struct job *inflight; /* the page being fetched */
    bool finished;        /* the last page (or an error) was delivered */
    bool freed;           /* wa_mongo_cursor_free ran */
};

struct wa_mongo_bulk {
    mongoc_bulk_operation_t *op;
    size_t n;
};

/* ---- worker side ---- */

static void
read_result(struct job *job, const bson_t *reply)
{
    job->wr.inserted = mongo_reply_int(reply, "insertedCount");
    job->wr.matched = mongo_reply_int(reply, "matchedCount");
    job->wr.modified = mongo_reply_int(reply, "modifiedCount");
    job->wr.deleted = mongo_reply_int(reply, "deletedCount");
    job->wr.upserted = mongo_reply_int(reply, "upsertedCount");
}

static void
run_write(struct job *job, mongoc_collection_t *coll)
{
    bson_t reply, *opts = NULL;
    bson_error_t error;
    bool ok = false, many = (job->flags & WA_MONGO_MULTI) != 0;

    switch (job->op) {
    case WRITE_INSERT:
        ok = mongoc_collection_insert_one(coll, job->a, NULL, &reply, &error);
        break;
    case WRITE_UPDATE:
        opts = BCON_NEW("upsert", BCON_BOOL((job->flags & WA_MONGO_UPSERT) != 0));
        ok = many ? mongoc_collection_update_many(coll, job->a, job->b, opts, &reply, &error)
                  : mongoc_collection_update_one(coll, job->a, job->b, opts, &reply, &error);
        break;
    case WRITE_DELETE:
        ok = many ? mongoc_collection_delete_many(coll, job->a, NULL, &reply, &error)
                  : mongoc_collection_delete_one(coll, job->a, NULL, &reply, &error);
        break;
    }
    if (ok) {
        read_result(job, &reply);
    } else {
        mongo_translate(job, &error);
    }
    bson_destroy(&reply);
    bson_destroy(opts);
}

static void
run_find_doc(struct job *job, mongoc_collection_t *coll)
{
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, job->a, job->c, NULL);
    const bson_t *doc;
    bson_error_t error;

    if (mongoc_cursor_next(cursor, &doc)) {
        job->rdoc = bson_copy(doc);
    } else if (mongoc_cursor_error(cursor, &error)) {
        mongo_translate(job, &error);
    } else {
        job->err = WA_ENOTFOUND;
    }
    mongoc_cursor_destroy(cursor);
}

/* A static view of the document or array at it (nothing to destroy). */
static bool
sub_doc(const bson_iter_t *it, bson_t *out)
{
    const uint8_t *data = NULL;
    uint32_t len = 0;

    if (BSON_ITER_HOLDS_DOCUMENT(it)) {
        bson_iter_document(it, &len, &data);
    } else if (BSON_ITER_HOLDS_ARRAY(it)) {
        bson_iter_array(it, &len, &data);
    }
    return data != NULL && bson_init_static(out, data, len);
}

static void
run_fam(struct job *job, mongoc_collection_t *coll)
{
    mongoc_find_and_modify_opts_t *o = mongoc_find_and_modify_opts_new();
    mongoc_find_and_modify_flags_t flags = MONGOC_FIND_AND_MODIFY_NONE;
    bson_t reply, sub;
    bson_error_t error;
    bson_iter_t it;

    mongoc_find_and_modify_opts_set_update(o, job->b);
    if (bson_iter_init_find(&it, job->c, "sort") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        sub_doc(&it, &sub)) {
        mongoc_find_and_modify_opts_set_sort(o, &sub);
        bson_destroy(&sub);
    }
    if (bson_iter_init_find(&it, job->c, "projection") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        sub_doc(&it, &sub)) {
        mongoc_find_and_modify_opts_set_fields(o, &sub);
        bson_destroy(&sub);
    }
    if (job->flags & WA_MONGO_UPSERT) {
        flags |= MONGOC_FIND_AND_MODIFY_UPSERT;
    }
    if (job->flags & WA_MONGO_RETURN_NEW) {
        flags |= MONGOC_FIND_AND_MODIFY_RETURN_NEW;
    }
    mongoc_find_and_modify_opts_set_flags(o, flags);
    if (!mongoc_collection_find_and_modify_with_opts(coll, job->a, o, &reply, &error)) {
        mongo_translate(job, &error);
    } else if (bson_iter_init_find(&it, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
               sub_doc(&it, &sub)) {
        job->rdoc = bson_copy(&sub);
        bson_destroy(&sub);
    } else {
        job->err = WA_ENOTFOUND;
    }
    bson_destroy(&reply);
    mongoc_find_and_modify_opts_destroy(o);
}

static size_t
array_len(const bson_t *reply, const char *field)
{
    bson_iter_t it, sub;
    size_t n = 0;

    if (bson_iter_init_find(&it, reply, field) && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &sub)) {
        while (bson_iter_next(&sub)) {
            n++;
        }
    }
    return n;
}

static void
run_bulk(struct job *job, mongoc_client_t *client)
{
    mongoc_bulk_operation_t *op = job->bulk->op;
    bson_t reply;
    bson_error_t error;

    mongoc_bulk_operation_set_client(op, client);
    mongoc_bulk_operation_set_database(op, job->m->database);
    mongoc_bulk_operation_set_collection(op, job->coll);
    if (mongoc_bulk_operation_execute(op, &reply, &error) == 0) {
        mongo_translate(job, &error);
    }
    job->wr.inserted = mongo_reply_int(&reply, "nInserted");
    job->wr.matched = mongo_reply_int(&reply, "nMatched");
    job->wr.modified = mongo_reply_int(&reply, "nModified");
    job->wr.deleted = mongo_reply_int(&reply, "nRemoved");
    job->wr.upserted = mongo_reply_int(&reply, "nUpserted");
    job->wr.write_errors = array_len(&reply, "writeErrors");
    bson_destroy(&reply);
    /* destroyed here, with its client still popped: it may hold the client's implicit session */
    mongoc_bulk_operation_destroy(op);
    job->bulk->op = NULL;
}

/* NamespaceExists (48), also as FerretDB words it */
static bool
exists_error(const bson_error_t *error)
{
    return error->code == 48 || strstr(error->message, "already exists") != NULL;
}

/* Appends to cmd's "indexes" array the index documents of plan (at it) not yet on coll, by
 * name. Creating only missing indexes keeps migrate idempotent on servers whose createIndexes
 * mishandles repeated compound indexes (FerretDB 1.24 panics). */
static bool
missing_indexes(mongoc_collection_t *coll, bson_iter_t *it, bson_t *indexes, bson_error_t *error)
{
    mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts(coll, NULL);
    const bson_t *doc;
    bson_iter_t sub, name;
    bson_t have = BSON_INITIALIZER, one;
    uint32_t n = 0;
    char key[16];
    bool ok = true;

    while (mongoc_cursor_next(cursor, &doc)) {
        if (bson_iter_init_find(&name, doc, "name") && BSON_ITER_HOLDS_UTF8(&name)) {
            BSON_APPEND_BOOL(&have, bson_iter_utf8(&name, NULL), true);
        }
    }
    if (mongoc_cursor_error(cursor, error) && error->code != 26) { /* 26: no collection yet */
        ok = false;
    }
    mongoc_cursor_destroy(cursor);
    if (ok && BSON_ITER_HOLDS_ARRAY(it) && bson_iter_recurse(it, &sub)) {
        while (bson_iter_next(&sub)) {
            if (sub_doc(&sub, &one) && bson_iter_init_find(&name, &one, "name") &&
                !bson_has_field(&have, bson_iter_utf8(&name, NULL))) {
                snprintf(key, sizeof(key), "%u", n++);
                BSON_APPEND_DOCUMENT(indexes, key, &one);
            }
        }
    }
    bson_destroy(&have);
    return ok;
}

static void
run_migrate(struct job *job, mongoc_client_t *client)
{
    mongoc_database_t *db = mongoc_client_get_database(client, job->m->database);
    bson_iter_t it;
    bson_error_t error;

    /* job->a: {<coll>: [index documents] or null, ...}: each collection created, then the
     * indexes it lacks */
    if (!bson_iter_init(&it, job->a)) {
        job->err = WA_EINVAL;
    }
    while (job->err == WA_OK && bson_iter_next(&it)) {
        const char *name = bson_iter_key(&it);
        mongoc_collection_t *coll = mongoc_database_create_collection(db, name, NULL, &error);
        bson_t cmd = BSON_INITIALIZER, indexes = BSON_INITIALIZER;

        if (coll == NULL && !exists_error(&error)) {
            mongo_translate(job, &error);
            break;
        }
        mongoc_collection_destroy(coll);
        coll = mongoc_database_get_collection(db, name);
        if (!missing_indexes(coll, &it, &indexes, &error)) {
            mongo_translate(job, &error);
        } else if (!bson_empty(&indexes)) {
            BSON_APPEND_UTF8(&cmd, "createIndexes", name);
            BSON_APPEND_ARRAY(&cmd, "indexes", &indexes);
            if (!mongoc_collection_write_command_with_opts(coll, &cmd, NULL, NULL, &error)) {
                mongo_translate(job, &error);
            }
        }
        bson_destroy(&indexes);
        bson_destroy(&cmd);
        mongoc_collection_destroy(coll);
    }
    mongoc_database_destroy(db);
}

void
ops_run(struct job *job, mongoc_client_t *client, mongoc_collection_t *coll)
{
    switch (job->kind) {
    case JOB_WRITE:
        run_write(job, coll);
        break;
    case JOB_FIND_DOC:
        run_find_doc(job, coll);
        break;
    case JOB_FAM:
        run_fam(job, coll);
        break;
    case JOB_BULK:
        run_bulk(job, client);
        break;
    case JOB_MIGRATE:
        run_migrate(job, client);
        break;
    default:
        job->err = WA_EINTERNAL;
        break;
    }
}

static void
cursor_release_driver(struct wa_mongo_cursor *c)
{
    mongoc_cursor_destroy(c->mc); /* may send killCursors: on the pool only */
    c->mc = NULL;
    if (c->client != NULL) {
        mongoc_client_pool_push(c->m->clients, c->client);
        c->client = NULL;
    }
}

static void
run_page(struct job *job)
{
    struct wa_mongo_cursor *c = job->cursor;
    const bson_t *doc;
    bson_error_t error;
    size_t cap = 0, bytes = 0;

    if (c->mc == NULL) {
        mongoc_collection_t *coll;

        c->client = mongoc_client_pool_pop(c->m->clients);
        coll = mongoc_client_get_collection(c->client, c->m->database, c->coll);
        c->mc = c->aggregate
                    ? mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, c->query, c->opts, NULL)
                    : mongoc_collection_find_with_opts(coll, c->query, c->opts, NULL);
        mongoc_collection_destroy(coll); /* the cursor keeps its own namespace and client */
    }
    job->more = true;
    while (job->ndocs < c->page_size && bytes < PAGE_BYTES) {
        if (!mongoc_cursor_next(c->mc, &doc)) {
            job->more = false;
            break;
        }
        if (job->ndocs == cap) {
            size_t ncap = cap == 0 ? 64 : cap * 2;
            bson_t *grown;

            if (ncap > c->page_size) {
                ncap = c->page_size;
            }
            /* a bson_t cannot be moved (realloc): an allocated one points into itself */
            if ((grown = malloc(ncap * sizeof(*grown))) == NULL) {
                job->err = WA_ENOMEM;
                break;
            }
            for (size_t i = 0; i < job->ndocs; i++) {
                bson_copy_to(&job->docs[i], &grown[i]);
                bson_destroy(&job->docs[i]);
            }
            free(job->docs);
            job->docs = grown;
            cap = ncap;
        }
        bson_copy_to(doc, &job->docs[job->ndocs++]);
        bytes += doc->len;
    }
    if (job->err == WA_OK && !job->more && mongoc_cursor_error(c->mc, &error)) {
        mongo_translate(job, &error);
    }
    if (job->err == WA_OK && job->more) {
        job->more = mongoc_cursor_more(c->mc);
    }
    if (job->err != WA_OK || !job->more) {
        job->more = false;
        cursor_release_driver(c); /* the client goes back at once, not at free */
    }
}

void
ops_run_cursor(struct job *job)
{
    if (job->kind == JOB_PAGE) {
        run_page(job);
    } else {
        cursor_release_driver(job->cursor);
    }
}

/* ---- loop side ---- */

static void
docs_free(struct job *job)
{
    for (size_t i = 0; i < job->ndocs; i++) {
        bson_destroy(&job->docs[i]);
    }
    free(job->docs);
    job->docs = NULL;
    job->ndocs = 0;
}

void
ops_job_cleanup(struct job *job)
{
    bson_destroy(job->c);
    bson_destroy(job->rdoc);
    docs_free(job);
    wa_mongo_bulk_free(job->bulk);
}

void
ops_notify(struct job *job, enum wa_err err)
{
    static const struct wa_mongo_result none;
    bool ok = err == WA_OK;

    switch (job->kind) {
    case JOB_WRITE:
    case JOB_BULK:
        /* a bulk write's counts stand also when some operations were refused */
        job->cb.result(job->arg, err,
                       ok || (job->kind == JOB_BULK && err != WA_ECLOSED) ? &job->wr : &none);
        break;
    case JOB_FIND_DOC:
    case JOB_FAM:
        job->cb.bdoc(job->arg, err, ok ? job->rdoc : NULL);
        break;
    case JOB_PAGE:
        job->cb.page(job->arg, err, NULL, 0, false);
        break;
    case JOB_MIGRATE:
        job->cb.done(job->arg, err);
        break;
    default:
        break;
    }
}

static void
cursor_destroy(struct wa_mongo_cursor *c)
{
    struct wa_mongo *m = c->m;

    bson_destroy(c->query);
    bson_destroy(c->opts);
    free(c);
    mongo_release(m);
}

/* Closes the driver state on the pool (or here, if the pool refuses), then frees c. */
static void
cursor_close(struct wa_mongo_cursor *c)
{
    struct job *job;

    if (c->mc == NULL && c->client == NULL) {
        cursor_destroy(c);
        return;
    }
    /* after wa_mongo_free the pool may be gone (shutdown order): closed here then */
    if (!c->m->closing && (job = calloc(1, sizeof(*job))) != NULL) {
        job->m = c->m;
        job->kind = JOB_CLOSE;
        job->cursor = c;
        if (mongo_job_submit(c->m, job) == WA_OK) {
            return; /* ops_cursor_done frees c */
        }
    }
    cursor_release_driver(c);
    cursor_destroy(c);
}

void
ops_cursor_done(struct job *job)
{
    struct wa_mongo_cursor *c = job->cursor;

    if (job->kind == JOB_CLOSE) {
        cursor_destroy(c);
        return;
    }
    c->inflight = NULL;
    if (c->freed) { /* its callback already ran with WA_ECLOSED */
        cursor_close(c);
        return;
    }
    if (job->err != WA_OK || !job->more) {
        c->finished = true;
    }
    if (job->cancelled) {
        return;
    }
    if (job->err == WA_EIO) {
        wa_log_warn(NULL, "mongo %s: %s", c->coll, job->message);
    }
    job->cb.page(job->arg, job->err, job->err == WA_OK ? job->docs : NULL,
                 job->err == WA_OK ? job->ndocs : 0, job->more);
}

/* ---- public operations ---- */

static bson_t *
copy_or_empty(const bson_t *doc)
{
    return doc != NULL ? bson_copy(doc) : bson_new();
}

static enum wa_err
write_start(struct wa_mongo *m, const char *coll, enum write_op op, const bson_t *a,
            const bson_t *b, unsigned flags, wa_mongo_result_fn cb, void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if ((err = mongo_job_new(m, JOB_WRITE, coll, arg, &job)) != WA_OK) {
        return err;
    }
    job->op = op;
    job->flags = flags;
    job->cb.result = cb;
    job->a = bson_copy(a);
    job->b = b != NULL ? bson_copy(b) : NULL;
    return mongo_job_submit(m, job);
}

enum wa_err
wa_mongo_insert(struct wa_mongo *m, const char *coll, const bson_t *doc, wa_mongo_result_fn cb,
                void *arg)
{
    if (m == NULL || coll == NULL || doc == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    return write_start(m, coll, WRITE_INSERT, doc, NULL, 0, cb, arg);
}

enum wa_err
wa_mongo_update(struct wa_mongo *m, const char *coll, const bson_t *filter, const bson_t *update,
                unsigned flags, wa_mongo_result_fn cb, void *arg)
{
    if (m == NULL || coll == NULL || filter == NULL || update == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    return write_start(m, coll, WRITE_UPDATE, filter, update, flags, cb, arg);
}

enum wa_err
wa_mongo_delete(struct wa_mongo *m, const char *coll, const bson_t *filter, bool many,
                wa_mongo_result_fn cb, void *arg)
{
    if (m == NULL || coll == NULL || filter == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    return write_start(m, coll, WRITE_DELETE, filter, NULL, many ? WA_MONGO_MULTI : 0, cb, arg);
}

/* The find options of opts as a new BSON document (limit forced when limit > 0). */
static bson_t *
find_opts(const struct wa_mongo_find_opts *opts, int64_t limit, uint32_t page_size)
{
    bson_t *o = bson_new();

    if (opts != NULL) {
        if (opts->projection != NULL) {
            BSON_APPEND_DOCUMENT(o, "projection", opts->projection);
        }
        if (opts->sort != NULL) {
            BSON_APPEND_DOCUMENT(o, "sort", opts->sort);
        }
        if (opts->skip > 0) {
            BSON_APPEND_INT64(o, "skip", opts->skip);
        }
        if (limit == 0 && opts->limit > 0) {
            limit = opts->limit;
        }
    }
    if (limit > 0) {
        BSON_APPEND_INT64(o, "limit", limit);
    }
    if (page_size > 0) {
        BSON_APPEND_INT32(o, "batchSize", (int32_t)page_size);
    }
    return o;
}

enum wa_err
wa_mongo_find_doc(struct wa_mongo *m, const char *coll, const bson_t *filter,
                  const struct wa_mongo_find_opts *opts, wa_mongo_bson_fn cb, void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_FIND_DOC, coll, arg, &job)) != WA_OK) {
        return err;
    }
    job->cb.bdoc = cb;
    job->a = copy_or_empty(filter);
    job->c = find_opts(opts, 1, 0);
    return mongo_job_submit(m, job);
}

enum wa_err
wa_mongo_find_one_and_update(struct wa_mongo *m, const char *coll, const bson_t *filter,
                             const bson_t *update, const bson_t *sort, const bson_t *projection,
                             unsigned flags, wa_mongo_bson_fn cb, void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || update == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_FAM, coll, arg, &job)) != WA_OK) {
        return err;
    }
    job->cb.bdoc = cb;
    job->flags = flags;
    job->a = copy_or_empty(filter);
    job->b = bson_copy(update);
    job->c = bson_new();
    if (sort != NULL) {
        BSON_APPEND_DOCUMENT(job->c, "sort", sort);
    }
    if (projection != NULL) {
        BSON_APPEND_DOCUMENT(job->c, "projection", projection);
    }
    return mongo_job_submit(m, job);
}

static enum wa_err
cursor_new(struct wa_mongo *m, const char *coll, uint32_t page_size, struct wa_mongo_cursor **out)
{
    struct wa_mongo_cursor *c;

    if (m->closing) {
        return WA_ECLOSED;
    }
    if (coll[0] == '\0' || strlen(coll) > MAX_NAME || page_size > PAGE_MAX) {
        return WA_EINVAL;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        return WA_ENOMEM;
    }
    c->m = m;
    memcpy(c->coll, coll, strlen(coll) + 1);
    c->page_size = page_size > 0 ? page_size : PAGE_DEFAULT;
    mongo_retain(m);
    *out = c;
    return WA_OK;
}

enum wa_err
wa_mongo_cursor_find(struct wa_mongo *m, const char *coll, const bson_t *filter,
                     const struct wa_mongo_find_opts *opts, struct wa_mongo_cursor **out)
{
    struct wa_mongo_cursor *c = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || out == NULL) {
        return WA_EINVAL;
    }
    if ((err = cursor_new(m, coll, opts != NULL ? opts->page_size : 0, &c)) != WA_OK) {
        return err;
    }
    c->query = copy_or_empty(filter);
    c->opts = find_opts(opts, 0, c->page_size);
    *out = c;
    return WA_OK;
}

enum wa_err
wa_mongo_cursor_aggregate(struct wa_mongo *m, const char *coll, const bson_t *pipeline,
                          uint32_t page_size, struct wa_mongo_cursor **out)
{
    struct wa_mongo_cursor *c = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || pipeline == NULL || out == NULL) {
        return WA_EINVAL;
    }
    if ((err = cursor_new(m, coll, page_size, &c)) != WA_OK) {
        return err;
    }
    c->aggregate = true;
    c->query = bson_copy(pipeline);
    c->opts = BCON_NEW("batchSize", BCON_INT32((int32_t)c->page_size));
    *out = c;
    return WA_OK;
}

enum wa_err
wa_mongo_cursor_next(struct wa_mongo_cursor *c, wa_mongo_page_fn cb, void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (c == NULL || cb == NULL || c->freed) {
        return WA_EINVAL;
    }
    if (c->inflight != NULL) {
        return WA_EAGAIN;
    }
    if (c->finished) {
        return WA_ENOTFOUND;
    }
    if ((err = mongo_job_new(c->m, JOB_PAGE, c->coll, arg, &job)) != WA_OK) {
        return err;
    }
    job->cursor = c;
    job->cb.page = cb;
    if ((err = mongo_job_submit(c->m, job)) == WA_OK) {
        c->inflight = job;
    }
    return err;
}

void
wa_mongo_cursor_free(struct wa_mongo_cursor *c)
{
    struct job *job;

    if (c == NULL || c->freed) {
        return;
    }
    c->freed = true;
    if ((job = c->inflight) != NULL) {
        if (!job->cancelled) {
            job->cancelled = true;
            job->cb.page(job->arg, WA_ECLOSED, NULL, 0, false);
        }
        return; /* ops_cursor_done closes it */
    }
    cursor_close(c);
}

struct wa_mongo_bulk *
wa_mongo_bulk_new(bool ordered)
{
    struct wa_mongo_bulk *b = calloc(1, sizeof(*b));

    if (b != NULL && (b->op = mongoc_bulk_operation_new(ordered)) == NULL) {
        free(b);
        b = NULL;
    }
    return b;
}

void
wa_mongo_bulk_free(struct wa_mongo_bulk *b)
{
    if (b == NULL) {
        return;
    }
    mongoc_bulk_operation_destroy(b->op);
    free(b);
}

static enum wa_err
bulk_added(struct wa_mongo_bulk *b, bool ok, const bson_error_t *error)
{
    if (!ok) {
        wa_log_debug(NULL, "mongo bulk operation refused: %s", error->message);
        return WA_EINVAL;
    }
    b->n++;
    return WA_OK;
}

enum wa_err
wa_mongo_bulk_insert(struct wa_mongo_bulk *b, const bson_t *doc)
{
    bson_error_t error;

    if (b == NULL || doc == NULL) {
        return WA_EINVAL;
    }
    if (b->n >= BULK_MAX) {
        return WA_ELIMIT;
    }
    return bulk_added(b, mongoc_bulk_operation_insert_with_opts(b->op, doc, NULL, &error), &error);
}

enum wa_err
wa_mongo_bulk_update(struct wa_mongo_bulk *b, const bson_t *filter, const bson_t *update,
                     unsigned flags)
{
    bson_t opts = BSON_INITIALIZER;
    bson_error_t error;
    bool ok;

    if (b == NULL || filter == NULL || update == NULL) {
        return WA_EINVAL;
    }
    if (b->n >= BULK_MAX) {
        return WA_ELIMIT;
    }
    if (flags & WA_MONGO_UPSERT) {
        BSON_APPEND_BOOL(&opts, "upsert", true);
    }
    ok = (flags & WA_MONGO_MULTI)
             ? mongoc_bulk_operation_update_many_with_opts(b->op, filter, update, &opts, &error)
             : mongoc_bulk_operation_update_one_with_opts(b->op, filter, update, &opts, &error);
    bson_destroy(&opts);
    return bulk_added(b, ok, &error);
}

enum wa_err
wa_mongo_bulk_delete(struct wa_mongo_bulk *b, const bson_t *filter, bool many)
{
    bson_error_t error;
    bool ok;

    if (b == NULL || filter == NULL) {
        return WA_EINVAL;
    }
    if (b->n >= BULK_MAX) {
        return WA_ELIMIT;
    }
    ok = many ? mongoc_bulk_operation_remove_many_with_opts(b->op, filter, NULL, &error)
              : mongoc_bulk_operation_remove_one_with_opts(b->op, filter, NULL, &error);
    return bulk_added(b, ok, &error);
}

size_t
wa_mongo_bulk_count(const struct wa_mongo_bulk *b)
{
    return b != NULL ? b->n : 0;
}

enum wa_err
wa_mongo_bulk_execute(struct wa_mongo *m, const char *coll, struct wa_mongo_bulk *b,
                      wa_mongo_result_fn cb, void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || b == NULL || b->n == 0 || cb == NULL) {
        wa_mongo_bulk_free(b);
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_BULK, coll, arg, &job)) != WA_OK) {
        wa_mongo_bulk_free(b);
        return err;
    }
    job->cb.result = cb;
    job->bulk = b;
    return mongo_job_submit(m, job);
}

/* "a:1,b:-1" -> {a: 1, b: -1}. */
static enum wa_err
parse_keys(const char *spec, bson_t *keys)
{
    char buf[KEYS_MAX], *save = NULL, *field;

    if (spec == NULL || snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf)) {
        return WA_EINVAL;
    }
    for (field = strtok_r(buf, ",", &save); field != NULL; field = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(field, ':');
        int dir;

        if (colon == NULL || colon == field) {
            return WA_EINVAL;
        }
        *colon = '\0';
        if (strcmp(colon + 1, "1") == 0) {
            dir = 1;
        } else if (strcmp(colon + 1, "-1") == 0) {
            dir = -1;
        } else {
            return WA_EINVAL;
        }
        BSON_APPEND_INT32(keys, field, dir);
    }
    return bson_count_keys(keys) > 0 ? WA_OK : WA_EINVAL;
}

/* Appends idx's index document to the array of its collection in plan. */
static enum wa_err
plan_index(bson_t *plan, const struct wa_mongo_index *idx, size_t nidx)
{
    enum wa_err err = WA_OK;

    /* one array per collection, in the order collections first appear */
    for (size_t i = 0; i < nidx && err == WA_OK; i++) {
        bson_t arr, doc, keys;
        uint32_t k = 0;
        char key[16];

        if (idx[i].coll == NULL || bson_has_field(plan, idx[i].coll)) {
            err = idx[i].coll == NULL ? WA_EINVAL : WA_OK;
            continue;
        }
        BSON_APPEND_ARRAY_BEGIN(plan, idx[i].coll, &arr);
        for (size_t j = i; j < nidx && err == WA_OK; j++) {
            char *name;

            if (idx[j].coll == NULL || strcmp(idx[j].coll, idx[i].coll) != 0) {
                continue;
            }
            bson_init(&keys);
            if ((err = parse_keys(idx[j].keys, &keys)) == WA_OK &&
                (name = mongoc_collection_keys_to_index_string(&keys)) != NULL) {
                snprintf(key, sizeof(key), "%u", k++);
                BSON_APPEND_DOCUMENT_BEGIN(&arr, key, &doc);
                BSON_APPEND_DOCUMENT(&doc, "key", &keys);
                BSON_APPEND_UTF8(&doc, "name", name);
                if (idx[j].unique) {
                    BSON_APPEND_BOOL(&doc, "unique", true);
                }
                if (idx[j].ttl_seconds > 0 && idx[j].ttl_seconds <= INT32_MAX) {
                    BSON_APPEND_INT32(&doc, "expireAfterSeconds", (int32_t)idx[j].ttl_seconds);
                }
                bson_append_document_end(&arr, &doc);
                bson_free(name);
            } else if (err == WA_OK) {
                err = WA_EINVAL;
            }
            bson_destroy(&keys);
        }
        bson_append_array_end(plan, &arr);
    }
    return err;
}

enum wa_err
wa_mongo_migrate(struct wa_mongo *m, const char *const *colls, const struct wa_mongo_index *idx,
                 size_t nidx, wa_mongo_done_fn cb, void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (m == NULL || cb == NULL || (idx == NULL && nidx > 0)) {
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_MIGRATE, NULL, arg, &job)) != WA_OK) {
        return err;
    }
    job->cb.done = cb;
    job->a = bson_new();
    for (size_t i = 0; colls != NULL && colls[i] != NULL; i++) {
        if (strlen(colls[i]) == 0 || strlen(colls[i]) > MAX_NAME) {
            mongo_job_free(job);
            return WA_EINVAL;
        }
    }
    if ((err = plan_index(job->a, idx, nidx)) != WA_OK) {
        mongo_job_free(job);
        return err;
    }
    for (size_t i = 0; colls != NULL && colls[i] != NULL; i++) {
        if (!bson_has_field(job->a, colls[i])) {
            BSON_APPEND_NULL(job->a, colls[i]);
        }
    }
    return mongo_job_submit(m, job);
}

struct migrate_run {
    struct wa_loop *loop;
    enum wa_err err;
};

static void
on_migrated(void *arg, enum wa_err err)
{
    struct migrate_run *r = arg;

    r->err = err;
    wa_loop_stop(r->loop);
}

static void
on_migrate_deadline(struct wa_timer *t, void *arg)
{
    struct migrate_run *r = arg;

    (void)t;
    wa_loop_stop(r->loop);
}

enum wa_err
wa_mongo_migrate_sync(const struct wa_mongo_config *config, const char *const *colls,
                      const struct wa_mongo_index *idx, size_t nidx, uint32_t timeout_ms,
                      struct wa_error *error)
{
    struct migrate_run r = {NULL, WA_ETIMEDOUT};
    struct wa_pool *pool = NULL;
    struct wa_mongo *m = NULL;
    struct wa_timer *deadline = NULL;
    enum wa_err err;

    if ((err = wa_loop_new(&r.loop)) != WA_OK || (err = wa_pool_new(r.loop, 1, &pool)) != WA_OK ||
        (err = wa_mongo_new(r.loop, pool, config, &m, error)) != WA_OK) {
        goto out;
    }
    if ((deadline = wa_timer_new(r.loop, on_migrate_deadline, &r)) == NULL) {
        err = WA_ENOMEM;
        goto out;
    }
    if ((err = wa_mongo_migrate(m, colls, idx, nidx, on_migrated, &r)) != WA_OK) {
        goto out;
    }
    wa_timer_start(deadline, timeout_ms, 0);
    (void)wa_loop_run(r.loop);
    err = r.err;
out:
    if (err != WA_OK && error != NULL && error->message[0] == '\0') {
        wa_error_set(error, err, "migrate: %s", wa_err_name(err));
    }
    wa_timer_free(deadline);
    wa_mongo_free(m); /* a migrate still running gets WA_ECLOSED: r is still valid */
    wa_pool_free(pool);
    wa_loop_free(r.loop);
    return err;
}
