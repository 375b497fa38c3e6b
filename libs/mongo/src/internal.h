/*
 * internal.h: what mongo.c (client, jobs, JSON API) and ops.c (BSON API: writes, cursors, bulk
 * writes, indexes, migrate) share. Private to libs/mongo.
 *
 * A job is one operation: built on the loop thread, run on a worker (run_job in mongo.c, which
 * hands the BSON API's kinds to ops_run), completed on the loop thread (on_job_done, which
 * hands them to ops_notify). The worker touches only the job (and, for cursor pages, the
 * cursor's driver state, which one job at a time owns) and the immutable parts of wa_mongo.
 */
#ifndef WA_MONGO_INTERNAL_H
#define WA_MONGO_INTERNAL_H

#include <mongoc/mongoc.h>

#include "wa/list.h"
#include "wa/mongo.h"

#define MAX_NAME 120 /* collection names; MongoDB's namespace limit is higher */

enum kind {
    /* JSON API (mongo.c) */
    JOB_INSERT,
    JOB_FIND,
    JOB_FIND_ONE,
    JOB_UPDATE,
    JOB_DELETE,
    JOB_COUNT,
    JOB_INDEX,
    JOB_DROP_COLL,
    JOB_DROP_DB,
    JOB_PING,
    /* BSON API (ops.c) */
    JOB_WRITE,    /* insert, update or delete: a wa_mongo_result */
    JOB_FIND_DOC, /* first document matching */
    JOB_FAM,      /* find-one-and-update */
    JOB_BULK,     /* one bulk write */
    JOB_PAGE,     /* the next page of a cursor */
    JOB_CLOSE,    /* a cursor's driver state destroyed, its client returned */
    JOB_MIGRATE,  /* collections and indexes */
};

enum write_op { WRITE_INSERT, WRITE_UPDATE, WRITE_DELETE };

struct job {
    struct wa_mongo *m;
    struct wa_list link; /* m->jobs, loop thread only */
    enum kind kind;
    bool cancelled; /* the callback already ran with WA_ECLOSED */
    char coll[MAX_NAME + 1];
    bson_t *a; /* document, filter, keys or the migrate plan */
    bson_t *b; /* update or options */
    bson_t *c; /* options (BSON API) */
    bool flag; /* upsert or unique */
    uint32_t ttl_seconds;
    enum write_op op;
    unsigned flags; /* WA_MONGO_UPSERT, WA_MONGO_MULTI, WA_MONGO_RETURN_NEW */
    struct wa_mongo_bulk *bulk;
    struct wa_mongo_cursor *cursor;
    union {
        wa_mongo_done_fn done;
        wa_mongo_docs_fn docs;
        wa_mongo_doc_fn doc;
        wa_mongo_update_fn update;
        wa_mongo_count_fn count;
        wa_mongo_result_fn result;
        wa_mongo_bson_fn bdoc;
        wa_mongo_page_fn page;
    } cb;
    void *arg;
    /* results, written by the worker */
    enum wa_err err;
    char message[256];
    json_t *result;
    int64_t n1, n2;
    bool upserted;
    struct wa_mongo_result wr;
    bson_t *rdoc; /* find_doc, find-one-and-update */
    bson_t *docs; /* a page: ndocs initialised documents */
    size_t ndocs;
    bool more; /* a page: the cursor may hold more */
};

struct wa_mongo {
    struct wa_loop *loop;
    struct wa_pool *pool;
    mongoc_uri_t *uri;
    mongoc_client_pool_t *clients;
    char *database;
    uint32_t ping_interval_ms;
    struct wa_timer *ping_timer;
    bool ping_inflight;
    bool ready;
    bool closing; /* wa_mongo_close ran: no callback runs any more */
    bool freed;   /* wa_mongo_free ran: the client's own reference is released */
    unsigned refs;
    struct wa_list jobs;
};

/* mongo.c */
enum wa_err mongo_job_new(struct wa_mongo *m, enum kind kind, const char *coll, void *arg,
                          struct job **out);
/* Submits job; on error frees it and no callback will run. */
enum wa_err mongo_job_submit(struct wa_mongo *m, struct job *job);
void mongo_job_free(struct job *job);
enum wa_err mongo_translate(struct job *job, const bson_error_t *error);
int64_t mongo_reply_int(const bson_t *reply, const char *field);
void mongo_retain(struct wa_mongo *m);
void mongo_release(struct wa_mongo *m);

/* ops.c: the BSON API's kinds, called by run_job (worker) and on_job_done (loop) */
void ops_run(struct job *job, mongoc_client_t *client, mongoc_collection_t *coll);
/* JOB_PAGE and JOB_CLOSE: with the cursor's own client, before run_job pops one */
void ops_run_cursor(struct job *job);
void ops_notify(struct job *job, enum wa_err err);
/* on_job_done of JOB_PAGE / JOB_CLOSE: the cursor's loop side */
void ops_cursor_done(struct job *job);
void ops_job_cleanup(struct job *job);

#endif
