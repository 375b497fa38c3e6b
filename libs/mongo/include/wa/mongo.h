/*
 * wa/mongo.h: MongoDB (wire protocol) access from the loop thread, blocking work on a pool.
 *
 * libmongoc is blocking, so every operation runs on a worker thread of a wa_pool with a client
 * popped from a mongoc_client_pool_t; its result is posted back to the loop thread, where the
 * callback runs. No libmongoc or bson type appears here: documents are jansson json_t in
 * MongoDB relaxed Extended JSON ({"$oid": ...}, {"$date": ...} and plain numbers).
 *
 * Threading: call everything here on the loop thread, except wa_mongo_global_init/cleanup
 * (main thread, before/after everything). Callbacks run on the loop thread.
 *
 * Async contract (docs/style.md): a function taking a callback either returns WA_OK and calls
 * the callback exactly once, later, on the loop thread, or returns an error and never calls it.
 * Input documents (doc, filter, update, opts, keys; json_t or bson_t) are borrowed during the
 * call and copied before it returns; the caller keeps them. Result documents are borrowed
 * during the callback (json_incref() or bson_copy() to keep one).
 *
 * Errors seen by callbacks: WA_OK, WA_EEXIST (duplicate key), WA_EUNAVAIL (no server within
 * the timeout, connection lost), WA_ENOTFOUND (find_one matched nothing), WA_ETOOBIG (find
 * matched more than WA_MONGO_MAX_DOCS documents and no limit was given), WA_EINVAL (the server
 * rejected the request as invalid), WA_EIO (any other server or driver error; logged),
 * WA_ECLOSED (wa_mongo_close or wa_mongo_free ran first).
 *
 * Lifetimes: wa_mongo_close() (and wa_mongo_free(), which closes first) calls the callbacks of
 * operations not finished yet with WA_ECLOSED before it returns; their work still completes on
 * the pool, and the last one to finish releases the client pool. Shutdown order:
 * wa_mongo_close() or wa_mongo_free(), wa_pool_free(), wa_loop_free() (runs the remaining
 * completions), then wa_mongo_global_cleanup().
 */
#ifndef WA_MONGO_H
#define WA_MONGO_H

#include <stdbool.h>
#include <stdint.h>

#include <bson/bson.h>
#include <jansson.h>

#include "wa/err.h"
#include "wa/loop.h"
#include "wa/pool.h"

struct wa_mongo;

/* find without a "limit" option returns at most this many documents (else WA_ETOOBIG). */
#define WA_MONGO_MAX_DOCS 10000

struct wa_mongo_config {
    /* "mongodb://host:port/database?options". Borrowed during wa_mongo_new (copied). */
    const char *uri;
    /* database to use; NULL = the URI's database, or "wabridge". Copied. */
    const char *database;
    /* shown to the server as the client's appname; NULL = none. Copied. */
    const char *app_name;
    /* serverSelectionTimeoutMS and connectTimeoutMS (unless the URI sets them), and 5x this
     * as socketTimeoutMS; 0 = 2000. A down server makes operations fail after about this. */
    uint32_t timeout_ms;
    /* readiness ping period; 0 = 2000 */
    uint32_t ping_interval_ms;
};

/*
 * Initialises libmongoc (mongoc_init) once per process and routes its log lines to wa_log.
 * Idempotent; wa_mongo_new() calls it too. Call it from main before creating threads.
 */
void wa_mongo_global_init(void);
/*
 * Releases libmongoc (mongoc_cleanup). Call once at exit, after every wa_mongo is gone (see the
 * shutdown order above); libmongoc cannot be initialised again afterwards.
 */
void wa_mongo_global_cleanup(void);

/*
 * Returns a new client in *out; free with wa_mongo_free(). loop and pool are borrowed and must
 * outlive it (the pool runs the blocking calls). Does not wait for the server: the first ping
 * starts at once; watch wa_mongo_ready(). Fails with WA_ECONFIG for a bad URI.
 */
enum wa_err wa_mongo_new(struct wa_loop *loop, struct wa_pool *pool,
                         const struct wa_mongo_config *config, struct wa_mongo **out,
                         struct wa_error *error);
/* Closes without freeing: afterwards no callback runs and every operation fails with
 * WA_ECLOSED; the handle stays valid until wa_mongo_free(). See "Lifetimes" above.
 * Idempotent; accepts NULL. */
void wa_mongo_close(struct wa_mongo *m);
/* See "Lifetimes" above. May be called from inside a wa_mongo callback. Accepts NULL. */
void wa_mongo_free(struct wa_mongo *m);
/* True while the last periodic ping ({ping: 1}) succeeded. */
bool wa_mongo_ready(const struct wa_mongo *m);

typedef void (*wa_mongo_done_fn)(void *arg, enum wa_err err);
/* docs: a JSON array of the documents found, borrowed during the call; NULL on error. */
typedef void (*wa_mongo_docs_fn)(void *arg, enum wa_err err, json_t *docs);
/* doc: the document found, borrowed during the call; NULL with WA_ENOTFOUND when none. */
typedef void (*wa_mongo_doc_fn)(void *arg, enum wa_err err, json_t *doc);
/* upserted is true when the update inserted a new document. */
typedef void (*wa_mongo_update_fn)(void *arg, enum wa_err err, int64_t matched, int64_t modified,
                                   bool upserted);
/* count: documents counted (wa_mongo_count) or deleted (wa_mongo_delete_many). */
typedef void (*wa_mongo_count_fn)(void *arg, enum wa_err err, int64_t count);

/* Inserts doc (a JSON object; an _id is generated when absent). Duplicate key: WA_EEXIST. */
enum wa_err wa_mongo_insert_one(struct wa_mongo *m, const char *coll, const json_t *doc,
                                wa_mongo_done_fn cb, void *arg);
/*
 * Finds the documents matching filter (NULL = all). opts (NULL = none) is a JSON object of
 * find options: "sort", "limit", "skip", "projection".
 */
enum wa_err wa_mongo_find(struct wa_mongo *m, const char *coll, const json_t *filter,
                          const json_t *opts, wa_mongo_docs_fn cb, void *arg);
/* Like wa_mongo_find with limit 1. */
enum wa_err wa_mongo_find_one(struct wa_mongo *m, const char *coll, const json_t *filter,
                              const json_t *opts, wa_mongo_doc_fn cb, void *arg);
/* Updates one document matching filter with update (operators such as "$set"). */
enum wa_err wa_mongo_update_one(struct wa_mongo *m, const char *coll, const json_t *filter,
                                const json_t *update, bool upsert, wa_mongo_update_fn cb,
                                void *arg);
/* Deletes every document matching filter (an object; {} deletes all). */
enum wa_err wa_mongo_delete_many(struct wa_mongo *m, const char *coll, const json_t *filter,
                                 wa_mongo_count_fn cb, void *arg);
/* Counts the documents matching filter (NULL = all). */
enum wa_err wa_mongo_count(struct wa_mongo *m, const char *coll, const json_t *filter,
                           wa_mongo_count_fn cb, void *arg);
/*
 * Creates an index on keys (e.g. {"wamid": 1}), named as MongoDB would ("wamid_1"). unique
 * rejects duplicates; ttl_seconds > 0 makes documents expire that long after the date in the
 * (single) key field. Creating an existing identical index succeeds.
 */
enum wa_err wa_mongo_create_index(struct wa_mongo *m, const char *coll, const json_t *keys,
                                  bool unique, uint32_t ttl_seconds, wa_mongo_done_fn cb,
                                  void *arg);
/* Drops the collection (missing is not an error). */
enum wa_err wa_mongo_drop_collection(struct wa_mongo *m, const char *coll, wa_mongo_done_fn cb,
                                     void *arg);
/* Drops the whole database of this client (tests use a unique database per run). */
enum wa_err wa_mongo_drop_database(struct wa_mongo *m, wa_mongo_done_fn cb, void *arg);

/* ---- BSON API ---- */

/* What a write did. Counts are the server's; on a bulk write that failed part-way they say
 * what was applied before (ordered) or besides (unordered) the failed operations. */
struct wa_mongo_result {
    int64_t inserted, matched, modified, deleted, upserted;
    size_t write_errors; /* bulk: operations the server refused */
};
/* r is never NULL (zeroes when nothing was written); borrowed during the call. */
typedef void (*wa_mongo_result_fn)(void *arg, enum wa_err err, const struct wa_mongo_result *r);
/* doc: borrowed during the call; NULL with WA_ENOTFOUND when nothing matched. */
typedef void (*wa_mongo_bson_fn)(void *arg, enum wa_err err, const bson_t *doc);

/* wa_mongo_update / find-one-and-update flags */
#define WA_MONGO_UPSERT     1u /* insert when nothing matches */
#define WA_MONGO_MULTI      2u /* update: every matching document (default: the first) */
#define WA_MONGO_RETURN_NEW 4u /* find-one-and-update: the document after the update */

/* Inserts doc (an _id is generated by the driver when absent). Duplicate key: WA_EEXIST. */
enum wa_err wa_mongo_insert(struct wa_mongo *m, const char *coll, const bson_t *doc,
                            wa_mongo_result_fn cb, void *arg);
/* Updates the first (or, WA_MONGO_MULTI, every) document matching filter with update (operators
 * such as $set, or a pipeline); WA_MONGO_UPSERT inserts when none matches. */
enum wa_err wa_mongo_update(struct wa_mongo *m, const char *coll, const bson_t *filter,
                            const bson_t *update, unsigned flags, wa_mongo_result_fn cb, void *arg);
/* Deletes the first (many false) or every document matching filter ({} matches all). */
enum wa_err wa_mongo_delete(struct wa_mongo *m, const char *coll, const bson_t *filter, bool many,
                            wa_mongo_result_fn cb, void *arg);

/* Find options; every member optional (NULL / 0). Borrowed during the call (copied). */
struct wa_mongo_find_opts {
    const bson_t *projection; /* {field: 1, ...} or {field: 0, ...} */
    const bson_t *sort;       /* {field: 1 | -1, ...} */
    int64_t limit;            /* 0 = no limit */
    int64_t skip;
    /* cursors: documents per page (and per server batch); 0 = 1000, at most 100000. A page
     * also ends at 16 MiB of documents. */
    uint32_t page_size;
};
/* The first document matching filter (NULL = all) in opts' order. WA_ENOTFOUND when none. */
enum wa_err wa_mongo_find_doc(struct wa_mongo *m, const char *coll, const bson_t *filter,
                              const struct wa_mongo_find_opts *opts, wa_mongo_bson_fn cb,
                              void *arg);
/*
 * findAndModify: updates the first document matching filter in sort's order (NULL = any) and
 * calls back with it as it was before, or after with WA_MONGO_RETURN_NEW; projection NULL =
 * whole document. WA_ENOTFOUND when none matched and no upsert happened (with
 * WA_MONGO_UPSERT and without WA_MONGO_RETURN_NEW, an insert also gives WA_ENOTFOUND: there
 * was no document before).
 */
enum wa_err wa_mongo_find_one_and_update(struct wa_mongo *m, const char *coll, const bson_t *filter,
                                         const bson_t *update, const bson_t *sort,
                                         const bson_t *projection, unsigned flags,
                                         wa_mongo_bson_fn cb, void *arg);

/*
 * Cursors: a find or an aggregate read page by page, each page fetched on the pool when asked
 * for, so a scan of any size holds one page at a time. A cursor holds one pooled client (and
 * the server cursor) from its first page until the last page or wa_mongo_cursor_free().
 *
 *   wa_mongo_cursor_find(m, "contacts", filter, &opts, &c);
 *   wa_mongo_cursor_next(c, on_page, ctx);   on_page: use docs[0..n); more ? next : free
 *   wa_mongo_cursor_free(c);                 always, also after the last page
 */
struct wa_mongo_cursor;
/*
 * A page: docs[0..n) borrowed during the call (bson_copy() to keep one). more false: this was
 * the last page (it may be empty); calling wa_mongo_cursor_next again returns WA_ENOTFOUND.
 * On an error the cursor is finished too (n is 0).
 */
typedef void (*wa_mongo_page_fn)(void *arg, enum wa_err err, const bson_t *docs, size_t n,
                                 bool more);
/* Returns a new cursor over the documents matching filter (NULL = all); free with
 * wa_mongo_cursor_free(). Nothing is sent before the first wa_mongo_cursor_next. */
enum wa_err wa_mongo_cursor_find(struct wa_mongo *m, const char *coll, const bson_t *filter,
                                 const struct wa_mongo_find_opts *opts,
                                 struct wa_mongo_cursor **out);
/* Returns a new cursor over the results of pipeline (a BSON array of stages, e.g. built with
 * BCON_NEW("0", "{", "$match", ...)); page_size as in wa_mongo_find_opts. */
enum wa_err wa_mongo_cursor_aggregate(struct wa_mongo *m, const char *coll, const bson_t *pipeline,
                                      uint32_t page_size, struct wa_mongo_cursor **out);
/* Fetches the next page; cb once. WA_EAGAIN: a page is already being fetched; WA_ENOTFOUND:
 * the last page was delivered; WA_ECLOSED: wa_mongo_free ran. */
enum wa_err wa_mongo_cursor_next(struct wa_mongo_cursor *c, wa_mongo_page_fn cb, void *arg);
/* Frees the cursor; a page being fetched calls back with WA_ECLOSED before this returns. The
 * server cursor is closed on the pool. May be called from the page callback. Accepts NULL. */
void wa_mongo_cursor_free(struct wa_mongo_cursor *c);

/*
 * Bulk writes: operations gathered on the loop thread, sent as one command per kind of
 * operation in a row (one round trip for a batch of upserts, up to the server's batch limit of
 * 100000 operations / 48 MB). ordered: stop at the first failed operation; unordered: apply
 * every operation that can be applied (the server may reorder them).
 */
struct wa_mongo_bulk;
/* Returns a new, empty bulk write (NULL: out of memory). Free with wa_mongo_bulk_free(), or
 * hand it to wa_mongo_bulk_execute(), which takes ownership. */
struct wa_mongo_bulk *wa_mongo_bulk_new(bool ordered);
void wa_mongo_bulk_free(struct wa_mongo_bulk *b);
/* Appends one operation (documents copied). WA_EINVAL for a document libmongoc refuses (an
 * update without operators, a replacement with them). */
enum wa_err wa_mongo_bulk_insert(struct wa_mongo_bulk *b, const bson_t *doc);
/* flags: WA_MONGO_UPSERT, WA_MONGO_MULTI */
enum wa_err wa_mongo_bulk_update(struct wa_mongo_bulk *b, const bson_t *filter,
                                 const bson_t *update, unsigned flags);
enum wa_err wa_mongo_bulk_delete(struct wa_mongo_bulk *b, const bson_t *filter, bool many);
/* Operations appended so far. */
size_t wa_mongo_bulk_count(const struct wa_mongo_bulk *b);
/*
 * Sends the operations in one bulk write; takes ownership of b (also on error). cb once, with
 * the counts; WA_EEXIST when the (first) refused operation was a duplicate key, WA_EIO for
 * another refusal (r->write_errors says how many), WA_EINVAL for an empty bulk.
 */
enum wa_err wa_mongo_bulk_execute(struct wa_mongo *m, const char *coll, struct wa_mongo_bulk *b,
                                  wa_mongo_result_fn cb, void *arg);

/*
 * Indexes and collections for a migration step: a table per daemon, applied idempotently
 * (an existing collection or identical index is success).
 *
 *   static const struct wa_mongo_index idx[] = {
 *       {"contacts", "bsuid:1", false}, {"consent_ledger", "contact:1,category:1,at_ms:-1", false},
 *   };
 */
struct wa_mongo_index {
    const char *coll;
    const char *keys; /* "field:1,other:-1" (1 ascending, -1 descending); named as MongoDB does */
    bool unique;
    uint32_t ttl_seconds; /* > 0: documents expire that long after the date in the key field */
};
/* Creates every collection named in idx (and in colls, NULL-terminated, NULL = none) and every
 * index of idx, in one job. WA_EINVAL (synchronously) for a malformed keys string. */
enum wa_err wa_mongo_migrate(struct wa_mongo *m, const char *const *colls,
                             const struct wa_mongo_index *idx, size_t nidx, wa_mongo_done_fn cb,
                             void *arg);
/*
 * Runs wa_mongo_migrate to completion on a private loop and pool, for `<daemon> migrate`
 * commands (never on a running loop): WA_OK, or the error of the first failed step, or
 * WA_ETIMEDOUT after timeout_ms. uri/app_name as in wa_mongo_config.
 */
enum wa_err wa_mongo_migrate_sync(const struct wa_mongo_config *config, const char *const *colls,
                                  const struct wa_mongo_index *idx, size_t nidx,
                                  uint32_t timeout_ms, struct wa_error *error);

/*
 * Blocking {ping: 1} to the server of uri, giving up after about timeout_ms: for scripts and
 * tools (wa-infra), never on a running loop. WA_OK when the server answered; WA_EUNAVAIL when
 * it did not, WA_ECONFIG for a bad URI.
 */
enum wa_err wa_mongo_ping_sync(const char *uri, uint32_t timeout_ms, struct wa_error *error);

#endif
