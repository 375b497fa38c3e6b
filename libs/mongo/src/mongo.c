/*
 * mongo.c: libmongoc on a worker pool, results posted back to the loop thread.
 *
 * Flow of one operation: the public function (loop thread) converts its JSON inputs to BSON
 * and submits a job -> run_job (worker thread: pops a client from the mongoc_client_pool_t,
 * makes the blocking call, converts results to JSON, translates bson_error_t) -> on_job_done
 * (loop thread: calls the callback, frees the job).
 *
 * Threading and ownership:
 * - A job is owned by the loop thread except while its work runs; the worker touches only the
 *   job and the immutable parts of struct wa_mongo (client pool, database name).
 * - Every job holds a reference on the client (m->refs), and so does the client itself until
 *   wa_mongo_free(). The last reference released (always on the loop thread) destroys the
 *   client pool, so a job still running on the pool after wa_mongo_free() stays valid.
 * - Closing (wa_mongo_close, wa_mongo_free) marks unfinished jobs cancelled and calls their
 *   callbacks with WA_ECLOSED; on_job_done then only releases them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "wa/log.h"

#define DEFAULT_TIMEOUT_MS 2000u
#define DEFAULT_PING_MS    2000u

/* ---- process-wide libmongoc state ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void
on_mongoc_log(mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
    (void)data;
    if (level <= MONGOC_LOG_LEVEL_ERROR) {
        wa_log_error(NULL, "mongoc %s: %s", domain, message);
    } else if (level == MONGOC_LOG_LEVEL_WARNING) {
        wa_log_warn(NULL, "mongoc %s: %s", domain, message);
    } /* info and below: libmongoc's chatter, dropped */
}

static void
global_init_once(void)
{
    mongoc_init();
    mongoc_log_set_handler(on_mongoc_log, NULL);
}

void
wa_mongo_global_init(void)
{
    pthread_once(&init_once, global_init_once);
}

void
wa_mongo_global_cleanup(void)
{
    mongoc_cleanup();
}

/* ---- conversions and errors ---- */

/* Converts a JSON object to new BSON (NULL json gives an empty document). */
static enum wa_err
to_bson(const json_t *json, bson_t **out)
{
    char *text;
    bson_error_t error;

    if (json == NULL) {
        *out = bson_new();
        return *out != NULL ? WA_OK : WA_ENOMEM;
    }
    if (!json_is_object(json)) {
        return WA_EINVAL;
    }
    if ((text = json_dumps(json, JSON_COMPACT)) == NULL) {
        return WA_ENOMEM;
    }
    *out = bson_new_from_json((const uint8_t *)text, -1, &error);
    free(text);
    return *out != NULL ? WA_OK : WA_EINVAL;
}

/* Converts BSON to a new JSON value (relaxed Extended JSON), or NULL. */
static json_t *
to_json(const bson_t *doc)
{
    char *text = bson_as_relaxed_extended_json(doc, NULL);
    json_t *json;

    if (text == NULL) {
        return NULL;
    }
    json = json_loads(text, JSON_DECODE_ANY, NULL);
    bson_free(text);
    return json;
}

enum wa_err
mongo_translate(struct job *job, const bson_error_t *error)
{
    enum wa_err err = WA_EIO;

    if (error->code == MONGOC_ERROR_DUPLICATE_KEY) {
        err = WA_EEXIST;
    } else if (error->domain == MONGOC_ERROR_SERVER_SELECTION ||
               error->domain == MONGOC_ERROR_STREAM) {
        err = WA_EUNAVAIL;
    } else if (error->domain == MONGOC_ERROR_BSON || error->domain == MONGOC_ERROR_NAMESPACE ||
               (error->domain == MONGOC_ERROR_COMMAND &&
                error->code == MONGOC_ERROR_COMMAND_INVALID_ARG)) {
        err = WA_EINVAL;
    }
    job->err = err;
    snprintf(job->message, sizeof(job->message), "%.*s", (int)sizeof(job->message) - 1,
             error->message);
    return err;
}

int64_t
mongo_reply_int(const bson_t *reply, const char *field)
{
    bson_iter_t it;

    if (bson_iter_init_find(&it, reply, field) && BSON_ITER_HOLDS_NUMBER(&it)) {
        return bson_iter_as_int64(&it);
    }
    return 0;
}

/* ---- worker thread ---- */

static void
run_find(struct job *job, mongoc_collection_t *coll)
{
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, job->a, job->b, NULL);
    const bson_t *doc;
    bson_error_t error;
    json_t *docs = json_array();
    bool limited = bson_has_field(job->b, "limit");

    if (docs == NULL) {
        job->err = WA_ENOMEM;
        goto out;
    }
    while (mongoc_cursor_next(cursor, &doc)) {
        json_t *j = to_json(doc);

        if (j == NULL || json_array_append_new(docs, j) != 0) {
            job->err = WA_ENOMEM;
            goto out;
        }
        if (!limited && json_array_size(docs) > WA_MONGO_MAX_DOCS) {
            job->err = WA_ETOOBIG;
            goto out;
        }
    }
    if (mongoc_cursor_error(cursor, &error)) {
        mongo_translate(job, &error);
        goto out;
    }
    if (job->kind == JOB_FIND_ONE) {
        if (json_array_size(docs) == 0) {
            job->err = WA_ENOTFOUND;
        } else {
            job->result = json_incref(json_array_get(docs, 0));
        }
    } else {
        job->result = docs;
        docs = NULL;
    }
out:
    json_decref(docs);
    mongoc_cursor_destroy(cursor);
}

static void
run_index(struct job *job, mongoc_collection_t *coll)
{
    bson_t cmd = BSON_INITIALIZER, indexes, index;
    bson_error_t error;
    char *name = mongoc_collection_keys_to_index_string(job->a);

    if (name == NULL) {
        job->err = WA_EINVAL;
        return;
    }
    BSON_APPEND_UTF8(&cmd, "createIndexes", job->coll);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    BSON_APPEND_DOCUMENT(&index, "key", job->a);
    BSON_APPEND_UTF8(&index, "name", name);
    if (job->flag) {
        BSON_APPEND_BOOL(&index, "unique", true);
    }
    if (job->ttl_seconds > 0) {
        BSON_APPEND_INT32(&index, "expireAfterSeconds", (int32_t)job->ttl_seconds);
    }
    bson_append_document_end(&indexes, &index);
    bson_append_array_end(&cmd, &indexes);
    if (!mongoc_collection_write_command_with_opts(coll, &cmd, NULL, NULL, &error)) {
        mongo_translate(job, &error);
    }
    bson_destroy(&cmd);
    bson_free(name);
}

static void
run_job(void *arg)
{
    struct job *job = arg;
    struct wa_mongo *m = job->m;
    mongoc_client_t *client;
    mongoc_collection_t *coll = NULL;
    mongoc_database_t *db = NULL;
    bson_t reply, *ping = NULL, *opts = NULL; /* reply: initialised by each call taking it */
    bson_error_t error;
    int64_t n;

    job->err = WA_OK;
    if (job->kind == JOB_PAGE || job->kind == JOB_CLOSE) {
        ops_run_cursor(job); /* the cursor's own client */
        return;
    }
    client = mongoc_client_pool_pop(m->clients);
    if (job->kind == JOB_PING) {
        ping = BCON_NEW("ping", BCON_INT32(1));
        if (!mongoc_client_command_simple(client, "admin", ping, NULL, &reply, &error)) {
            mongo_translate(job, &error);
        }
        bson_destroy(&reply);
        bson_destroy(ping);
        goto out;
    }
    if (job->kind == JOB_DROP_DB) {
        db = mongoc_client_get_database(client, m->database);
        if (!mongoc_database_drop(db, &error)) {
            mongo_translate(job, &error);
        }
        goto out;
    }
    if (job->coll[0] != '\0') {
        coll = mongoc_client_get_collection(client, m->database, job->coll);
    }
    switch (job->kind) {
    case JOB_INSERT:
        if (!mongoc_collection_insert_one(coll, job->a, NULL, &reply, &error)) {
            mongo_translate(job, &error);
        }
        bson_destroy(&reply);
        break;
    case JOB_FIND:
    case JOB_FIND_ONE:
        run_find(job, coll);
        break;
    case JOB_UPDATE:
        opts = BCON_NEW("upsert", BCON_BOOL(job->flag));
        if (!mongoc_collection_update_one(coll, job->a, job->b, opts, &reply, &error)) {
            mongo_translate(job, &error);
        } else {
            job->n1 = mongo_reply_int(&reply, "matchedCount");
            job->n2 = mongo_reply_int(&reply, "modifiedCount");
            job->upserted = mongo_reply_int(&reply, "upsertedCount") > 0 ||
                            bson_has_field(&reply, "upsertedId");
        }
        bson_destroy(&reply);
        break;
    case JOB_DELETE:
        if (!mongoc_collection_delete_many(coll, job->a, NULL, &reply, &error)) {
            mongo_translate(job, &error);
        } else {
            job->n1 = mongo_reply_int(&reply, "deletedCount");
        }
        bson_destroy(&reply);
        break;
    case JOB_COUNT:
        n = mongoc_collection_count_documents(coll, job->a, NULL, NULL, NULL, &error);
        if (n < 0) {
            mongo_translate(job, &error);
        } else {
            job->n1 = n;
        }
        break;
    case JOB_INDEX:
        run_index(job, coll);
        break;
    case JOB_DROP_COLL:
        if (!mongoc_collection_drop(coll, &error) &&
            !(error.domain == MONGOC_ERROR_SERVER && error.code == 26) && /* NamespaceNotFound */
            strstr(error.message, "ns not found") == NULL) {
            mongo_translate(job, &error);
        }
        break;
    case JOB_DROP_DB:
    case JOB_PING:
        break;
    default:
        ops_run(job, client, coll);
        break;
    }
out:
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
    mongoc_database_destroy(db);
    mongoc_client_pool_push(m->clients, client);
}

/* ---- loop thread ---- */

static void
destroy(struct wa_mongo *m)
{
    wa_timer_free(m->ping_timer);
    mongoc_client_pool_destroy(m->clients);
    mongoc_uri_destroy(m->uri);
    free(m->database);
    free(m);
}

void
mongo_retain(struct wa_mongo *m)
{
    m->refs++;
}

void
mongo_release(struct wa_mongo *m)
{
    WA_ASSERT(m->refs > 0);
    if (--m->refs == 0) {
        destroy(m);
    }
}

void
mongo_job_free(struct job *job)
{
    ops_job_cleanup(job);
    bson_destroy(job->a);
    bson_destroy(job->b);
    json_decref(job->result);
    free(job);
}

/* Calls the job's callback once with err (results only when err is WA_OK). */
static void
notify(struct job *job, enum wa_err err)
{
    bool ok = err == WA_OK;

    switch (job->kind) {
    case JOB_INSERT:
    case JOB_INDEX:
    case JOB_DROP_COLL:
    case JOB_DROP_DB:
        job->cb.done(job->arg, err);
        break;
    case JOB_FIND:
        job->cb.docs(job->arg, err, ok ? job->result : NULL);
        break;
    case JOB_FIND_ONE:
        job->cb.doc(job->arg, err, ok ? job->result : NULL);
        break;
    case JOB_UPDATE:
        job->cb.update(job->arg, err, ok ? job->n1 : 0, ok ? job->n2 : 0, ok && job->upserted);
        break;
    case JOB_DELETE:
    case JOB_COUNT:
        job->cb.count(job->arg, err, ok ? job->n1 : 0);
        break;
    case JOB_PING:
        break;
    default:
        ops_notify(job, err);
        break;
    }
}

static void
on_job_done(void *arg)
{
    struct job *job = arg;
    struct wa_mongo *m = job->m;

    wa_list_remove(&job->link);
    if (job->kind == JOB_PING) {
        m->ping_inflight = false;
        if (!job->cancelled) {
            if (job->err == WA_OK && !m->ready) {
                wa_log_info(NULL, "mongo ready");
            } else if (job->err != WA_OK && m->ready) {
                wa_log_warn(NULL, "mongo not ready: %s: %s", wa_err_name(job->err), job->message);
            }
            m->ready = job->err == WA_OK;
        }
    } else if (job->kind == JOB_PAGE || job->kind == JOB_CLOSE) {
        ops_cursor_done(job); /* calls back unless cancelled */
    } else if (!job->cancelled) {
        if (job->err == WA_EIO) {
            wa_log_warn(NULL, "mongo %s: %s", job->coll, job->message);
        }
        notify(job, job->err);
    }
    mongo_job_free(job);
    mongo_release(m);
}

enum wa_err
mongo_job_new(struct wa_mongo *m, enum kind kind, const char *coll, void *arg, struct job **out)
{
    struct job *job;

    if (m->closing) {
        return WA_ECLOSED;
    }
    if (coll != NULL && (coll[0] == '\0' || strlen(coll) > MAX_NAME)) {
        return WA_EINVAL;
    }
    if ((job = calloc(1, sizeof(*job))) == NULL) {
        return WA_ENOMEM;
    }
    job->m = m;
    job->kind = kind;
    job->arg = arg;
    if (coll != NULL) {
        memcpy(job->coll, coll, strlen(coll) + 1);
    }
    *out = job;
    return WA_OK;
}

enum wa_err
mongo_job_submit(struct wa_mongo *m, struct job *job)
{
    enum wa_err err = wa_pool_submit(m->pool, run_job, on_job_done, job);

    if (err != WA_OK) {
        mongo_job_free(job);
        return err;
    }
    m->refs++;
    wa_list_push_back(&m->jobs, &job->link);
    return WA_OK;
}

static void
on_ping_timer(struct wa_timer *t, void *arg)
{
    struct wa_mongo *m = arg;
    struct job *job = NULL;

    (void)t;
    if (m->ping_inflight || mongo_job_new(m, JOB_PING, NULL, NULL, &job) != WA_OK) {
        return;
    }
    if (mongo_job_submit(m, job) == WA_OK) {
        m->ping_inflight = true;
    }
}

static void
set_default(mongoc_uri_t *uri, const char *option, int32_t value)
{
    if (!mongoc_uri_has_option(uri, option)) {
        mongoc_uri_set_option_as_int32(uri, option, value);
    }
}

enum wa_err
wa_mongo_new(struct wa_loop *loop, struct wa_pool *pool, const struct wa_mongo_config *config,
             struct wa_mongo **out, struct wa_error *error)
{
    struct wa_mongo *m = NULL;
    bson_error_t berr;
    const char *db;
    uint32_t timeout;
    enum wa_err err;

    if (loop == NULL || pool == NULL || config == NULL || config->uri == NULL || out == NULL) {
        return wa_error_set(error, WA_EINVAL, "wa_mongo_new: missing argument");
    }
    wa_mongo_global_init();
    if ((m = calloc(1, sizeof(*m))) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "wa_mongo_new: out of memory");
    }
    m->loop = loop;
    m->pool = pool;
    m->refs = 1;
    wa_list_init(&m->jobs);
    m->ping_interval_ms = config->ping_interval_ms ? config->ping_interval_ms : DEFAULT_PING_MS;
    timeout = config->timeout_ms ? config->timeout_ms : DEFAULT_TIMEOUT_MS;
    if ((m->uri = mongoc_uri_new_with_error(config->uri, &berr)) == NULL) {
        /* libmongoc's message may quote the URI, which may hold a password: not echoed */
        err = wa_error_set(error, WA_ECONFIG, "mongo uri is not valid");
        goto out;
    }
    set_default(m->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, (int32_t)timeout);
    set_default(m->uri, MONGOC_URI_CONNECTTIMEOUTMS, (int32_t)timeout);
    set_default(m->uri, MONGOC_URI_SOCKETTIMEOUTMS, (int32_t)(timeout * 5));
    if (config->app_name != NULL && !mongoc_uri_set_appname(m->uri, config->app_name)) {
        err = wa_error_set(error, WA_ECONFIG, "mongo app_name is not valid");
        goto out;
    }
    db = config->database != NULL ? config->database : mongoc_uri_get_database(m->uri);
    if ((m->database = strdup(db != NULL ? db : "wabridge")) == NULL) {
        err = wa_error_set(error, WA_ENOMEM, "wa_mongo_new: out of memory");
        goto out;
    }
    if ((m->clients = mongoc_client_pool_new(m->uri)) == NULL) {
        err = wa_error_set(error, WA_ECONFIG, "mongo client pool cannot be created");
        goto out;
    }
    mongoc_client_pool_set_error_api(m->clients, MONGOC_ERROR_API_VERSION_2);
    if ((m->ping_timer = wa_timer_new(loop, on_ping_timer, m)) == NULL) {
        err = wa_error_set(error, WA_ENOMEM, "wa_mongo_new: out of memory");
        goto out;
    }
    wa_timer_start(m->ping_timer, 0, m->ping_interval_ms);
    *out = m;
    return WA_OK;
out:
    if (m->clients != NULL) {
        mongoc_client_pool_destroy(m->clients);
    }
    mongoc_uri_destroy(m->uri);
    free(m->database);
    free(m);
    return err;
}

void
wa_mongo_close(struct wa_mongo *m)
{
    struct wa_list *it, *tmp;

    if (m == NULL || m->closing) {
        return;
    }
    m->closing = true;
    m->ready = false;
    wa_timer_stop(m->ping_timer);
    /* Callbacks cannot add jobs (closing) and jobs leave the list only in on_job_done. */
    WA_LIST_FOREACH_SAFE(it, tmp, &m->jobs)
    {
        struct job *job = WA_LIST_ENTRY(it, struct job, link);

        if (!job->cancelled) {
            job->cancelled = true;
            notify(job, WA_ECLOSED);
        }
    }
}

void
wa_mongo_free(struct wa_mongo *m)
{
    if (m == NULL || m->freed) {
        return;
    }
    m->freed = true;
    wa_mongo_close(m);
    mongo_release(m); /* the client's own reference */
}

bool
wa_mongo_ready(const struct wa_mongo *m)
{
    return m != NULL && m->ready;
}

/* ---- operations: convert on the loop thread, then submit ---- */

static enum wa_err
submit_with(struct wa_mongo *m, struct job *job, const json_t *a, const json_t *b)
{
    enum wa_err err;

    if ((err = to_bson(a, &job->a)) != WA_OK || (err = to_bson(b, &job->b)) != WA_OK) {
        mongo_job_free(job);
        return err;
    }
    return mongo_job_submit(m, job);
}

enum wa_err
wa_mongo_insert_one(struct wa_mongo *m, const char *coll, const json_t *doc, wa_mongo_done_fn cb,
                    void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || doc == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_INSERT, coll, arg, &job)) != WA_OK) {
        return err;
    }
    job->cb.done = cb;
    return submit_with(m, job, doc, NULL);
}

enum wa_err
wa_mongo_find(struct wa_mongo *m, const char *coll, const json_t *filter, const json_t *opts,
              wa_mongo_docs_fn cb, void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_FIND, coll, arg, &job)) != WA_OK) {
        return err;
    }
    job->cb.docs = cb;
    return submit_with(m, job, filter, opts);
}

enum wa_err
wa_mongo_find_one(struct wa_mongo *m, const char *coll, const json_t *filter, const json_t *opts,
                  wa_mongo_doc_fn cb, void *arg)
{
    struct job *job = NULL;
    bson_t *given = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_FIND_ONE, coll, arg, &job)) != WA_OK) {
        return err;
    }
    job->cb.doc = cb;
    if ((err = to_bson(filter, &job->a)) != WA_OK || (err = to_bson(opts, &given)) != WA_OK) {
        mongo_job_free(job);
        return err;
    }
    /* the caller's options with limit forced to 1 */
    if ((job->b = bson_new()) == NULL) {
        bson_destroy(given);
        mongo_job_free(job);
        return WA_ENOMEM;
    }
    bson_copy_to_excluding_noinit(given, job->b, "limit", NULL);
    bson_destroy(given);
    BSON_APPEND_INT64(job->b, "limit", 1);
    return mongo_job_submit(m, job);
}

enum wa_err
wa_mongo_update_one(struct wa_mongo *m, const char *coll, const json_t *filter,
                    const json_t *update, bool upsert, wa_mongo_update_fn cb, void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || filter == NULL || update == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_UPDATE, coll, arg, &job)) != WA_OK) {
        return err;
    }
    job->cb.update = cb;
    job->flag = upsert;
    return submit_with(m, job, filter, update);
}

enum wa_err
wa_mongo_delete_many(struct wa_mongo *m, const char *coll, const json_t *filter,
                     wa_mongo_count_fn cb, void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || filter == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_DELETE, coll, arg, &job)) != WA_OK) {
        return err;
    }
    job->cb.count = cb;
    return submit_with(m, job, filter, NULL);
}

enum wa_err
wa_mongo_count(struct wa_mongo *m, const char *coll, const json_t *filter, wa_mongo_count_fn cb,
               void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_COUNT, coll, arg, &job)) != WA_OK) {
        return err;
    }
    job->cb.count = cb;
    return submit_with(m, job, filter, NULL);
}

enum wa_err
wa_mongo_create_index(struct wa_mongo *m, const char *coll, const json_t *keys, bool unique,
                      uint32_t ttl_seconds, wa_mongo_done_fn cb, void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || keys == NULL || json_object_size(keys) == 0 || cb == NULL ||
        ttl_seconds > INT32_MAX) {
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_INDEX, coll, arg, &job)) != WA_OK) {
        return err;
    }
    job->cb.done = cb;
    job->flag = unique;
    job->ttl_seconds = ttl_seconds;
    return submit_with(m, job, keys, NULL);
}

enum wa_err
wa_mongo_drop_collection(struct wa_mongo *m, const char *coll, wa_mongo_done_fn cb, void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (m == NULL || coll == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_DROP_COLL, coll, arg, &job)) != WA_OK) {
        return err;
    }
    job->cb.done = cb;
    return submit_with(m, job, NULL, NULL);
}

enum wa_err
wa_mongo_drop_database(struct wa_mongo *m, wa_mongo_done_fn cb, void *arg)
{
    struct job *job = NULL;
    enum wa_err err;

    if (m == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = mongo_job_new(m, JOB_DROP_DB, NULL, arg, &job)) != WA_OK) {
        return err;
    }
    job->cb.done = cb;
    return submit_with(m, job, NULL, NULL);
}
