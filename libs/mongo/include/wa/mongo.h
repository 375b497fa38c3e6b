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
 * Input documents (doc, filter, update, opts, keys) are borrowed during the call and converted
 * (copied) to BSON before it returns; the caller keeps its references. Result documents are
 * borrowed during the callback (json_incref() to keep one).
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

/*
 * Blocking {ping: 1} to the server of uri, giving up after about timeout_ms: for scripts and
 * tools (wa-infra), never on a running loop. WA_OK when the server answered; WA_EUNAVAIL when
 * it did not, WA_ECONFIG for a bad URI.
 */
enum wa_err wa_mongo_ping_sync(const char *uri, uint32_t timeout_ms, struct wa_error *error);

#endif
