/*
 * rebuild.c: `wa-analytics rebuild`: recomputes every stored row and engagement document
 * (rows.c) from the message and inbound documents, for a migration, a changed rate card, or
 * documents written by other means (the benchmark's seeder). Run it while no wa-analytics
 * consumes into the database: it deletes the journals (their batches' events were not
 * committed, so they come again), the rows and the engagement documents, reads every message
 * and inbound document in one pass of a cursor each, adds each to its row and to its contact's
 * engagement document in memory, then writes the engagement documents (adding their figures to
 * the rows) and the rows in bulk. Exits 0 on success.
 *
 * Threading: its own loop on the main thread; MongoDB calls on a private pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "wa/clock.h"
#include "wa/log.h"
#include "wa/loop.h"
#include "wa/mongo.h"
#include "wa/pool.h"

#define ROWS_PER_BULK 1000

struct rebuild {
    struct wa_loop *loop;
    struct wa_mongo *mongo;
    struct an_ratecard ratecard;
    struct wa_mongo_cursor *cursor;
    struct an_rows rows;
    json_t *contacts; /* contact -> its engagement document */
    void *iter;       /* the next engagement document to write */
    int pass;         /* 0: messages, 1: inbound */
    size_t messages, inbound, written;
    enum wa_err err;
    uint64_t t0;
};

static void on_page(void *arg, enum wa_err err, const bson_t *docs, size_t n, bool more);

static void
finish(struct rebuild *r, enum wa_err err)
{
    r->err = err;
    wa_loop_stop(r->loop);
}

/* The stored form of a row: its dimensions, its figures as nested fields, j = 0. */
static bson_t *
row_bson(const struct an_row *row)
{
    json_t *doc = json_deep_copy(row->dims),
           *u = json_pack("{s:o}", "$inc", an_totals_inc(&row->t));
    char *text = NULL;
    bson_t *b = NULL;

    if (doc != NULL && u != NULL && an_update_apply(doc, u, true) == WA_OK &&
        json_object_set_new(doc, "_id", json_string(row->id)) == 0 &&
        json_object_set_new(doc, "j", json_integer(0)) == 0 &&
        (text = json_dumps(doc, JSON_COMPACT)) != NULL) {
        b = bson_new_from_json((const uint8_t *)text, -1, NULL);
    }
    free(text);
    json_decref(u);
    json_decref(doc);
    return b;
}

static void
on_written(void *arg, enum wa_err err, const struct wa_mongo_result *res)
{
    struct rebuild *r = arg;
    struct wa_mongo_bulk *bulk;
    size_t end = r->written + ROWS_PER_BULK < r->rows.n ? r->written + ROWS_PER_BULK : r->rows.n;

    (void)res;
    if (err != WA_OK) {
        wa_log_error(NULL, "rebuild: rows not written: %s", wa_err_name(err));
        finish(r, err);
        return;
    }
    if (r->written == r->rows.n) {
        wa_log_info(NULL,
                    "rebuild: %zu rows and %zu engagement documents from %zu message and %zu "
                    "inbound documents in %.1f s",
                    r->rows.n, json_object_size(r->contacts), r->messages, r->inbound,
                    (double)(wa_clock_mono_ms() - r->t0) / 1e3);
        finish(r, WA_OK);
        return;
    }
    if ((bulk = wa_mongo_bulk_new(false)) == NULL) {
        finish(r, WA_ENOMEM);
        return;
    }
    for (; r->written < end; r->written++) {
        bson_t *b = row_bson(&r->rows.v[r->written]);

        err = b != NULL ? wa_mongo_bulk_insert(bulk, b) : WA_ENOMEM;
        bson_destroy(b);
        if (err != WA_OK) {
            wa_mongo_bulk_free(bulk);
            finish(r, err);
            return;
        }
    }
    if ((err = wa_mongo_bulk_execute(r->mongo, AN_COLL_BUCKETS, bulk, on_written, r)) != WA_OK) {
        finish(r, err);
    }
}

/* Engagement documents in bulks of ROWS_PER_BULK, each added to the rows; then the rows. */
static void
on_contacts_written(void *arg, enum wa_err err, const struct wa_mongo_result *res)
{
    struct rebuild *r = arg;
    struct wa_mongo_bulk *bulk;
    size_t n = 0;

    if (err != WA_OK) {
        wa_log_error(NULL, "rebuild: engagement documents not written: %s", wa_err_name(err));
        finish(r, err);
        return;
    }
    if (r->iter == NULL) {
        on_written(r, WA_OK, res); /* the first bulk of rows */
        return;
    }
    if ((bulk = wa_mongo_bulk_new(false)) == NULL) {
        finish(r, WA_ENOMEM);
        return;
    }
    for (; r->iter != NULL && n < ROWS_PER_BULK; n++) {
        json_t *doc = json_object_iter_value(r->iter);
        char *text = NULL;
        bson_t *b = NULL;

        err = an_rows_add_contact(&r->rows, doc, 1);
        if (err == WA_OK &&
            json_object_set_new(doc, "_id", json_string(json_object_iter_key(r->iter))) == 0 &&
            (text = json_dumps(doc, JSON_COMPACT)) != NULL &&
            (b = bson_new_from_json((const uint8_t *)text, -1, NULL)) != NULL) {
            err = wa_mongo_bulk_insert(bulk, b);
        } else if (err == WA_OK) {
            err = WA_ENOMEM;
        }
        bson_destroy(b);
        free(text);
        if (err != WA_OK) {
            wa_mongo_bulk_free(bulk);
            finish(r, err);
            return;
        }
        r->iter = json_object_iter_next(r->contacts, r->iter);
    }
    if ((err = wa_mongo_bulk_execute(r->mongo, AN_COLL_ENGAGE, bulk, on_contacts_written, r)) !=
        WA_OK) {
        finish(r, err);
    }
}

/* The entry of a message or inbound document in its contact's engagement document. */
static enum wa_err
add_entry(struct rebuild *r, const json_t *doc)
{
    const char *contact = json_string_value(json_object_get(doc, "contact"));
    json_t *entry = r->pass == 0 ? an_engage_out(doc) : an_engage_in(doc), *e, *list;

    if (contact == NULL || entry == NULL) {
        json_decref(entry);
        return WA_OK;
    }
    if ((e = json_object_get(r->contacts, contact)) == NULL) {
        if ((e = json_pack("{s:[], s:[]}", "o", "i")) == NULL ||
            json_object_set_new(r->contacts, contact, e) != 0) {
            json_decref(entry);
            return WA_ENOMEM;
        }
    }
    list = json_object_get(e, r->pass == 0 ? "o" : "i");
    return json_array_append_new(list, entry) == 0 ? WA_OK : WA_ENOMEM;
}

static enum wa_err
start_pass(struct rebuild *r, const char *coll)
{
    struct wa_mongo_find_opts opts = {.page_size = 5000};
    enum wa_err err;

    wa_mongo_cursor_free(r->cursor);
    r->cursor = NULL;
    if ((err = wa_mongo_cursor_find(r->mongo, coll, NULL, &opts, &r->cursor)) != WA_OK) {
        return err;
    }
    return wa_mongo_cursor_next(r->cursor, on_page, r);
}

static void
on_page(void *arg, enum wa_err err, const bson_t *docs, size_t n, bool more)
{
    struct rebuild *r = arg;
    struct wa_mongo_result none = {0};

    if (err != WA_OK) {
        wa_log_error(NULL, "rebuild: documents not read: %s", wa_err_name(err));
        finish(r, err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *doc = an_bson_json(&docs[i]);

        err = doc == NULL    ? WA_ENOMEM
              : r->pass == 0 ? an_rows_add_message(&r->rows, doc, &r->ratecard, 1)
                             : WA_OK;
        if (err == WA_OK) {
            err = add_entry(r, doc);
        }
        json_decref(doc);
        if (err != WA_OK) {
            finish(r, err);
            return;
        }
    }
    *(r->pass == 0 ? &r->messages : &r->inbound) += n;
    if (more) {
        err = wa_mongo_cursor_next(r->cursor, on_page, r);
    } else if (r->pass == 0) {
        r->pass = 1;
        err = start_pass(r, AN_COLL_INBOUND);
    } else {
        r->iter = json_object_iter(r->contacts);
        on_contacts_written(r, WA_OK, &none);
        return;
    }
    if (err != WA_OK) {
        finish(r, err);
    }
}

static void
on_engagement_deleted(void *arg, enum wa_err err, int64_t count)
{
    struct rebuild *r = arg;

    (void)count;
    if (err == WA_OK) {
        err = start_pass(r, AN_COLL_MESSAGES);
    }
    if (err != WA_OK) {
        wa_log_error(NULL, "rebuild: %s", wa_err_name(err));
        finish(r, err);
    }
}

static void
on_rows_deleted(void *arg, enum wa_err err, int64_t count)
{
    struct rebuild *r = arg;
    json_t *all = json_object();

    (void)count;
    if (err == WA_OK) {
        err = all != NULL
                  ? wa_mongo_delete_many(r->mongo, AN_COLL_ENGAGE, all, on_engagement_deleted, r)
                  : WA_ENOMEM;
    }
    json_decref(all);
    if (err != WA_OK) {
        wa_log_error(NULL, "rebuild: %s", wa_err_name(err));
        finish(r, err);
    }
}

static void
on_journals_deleted(void *arg, enum wa_err err, int64_t count)
{
    struct rebuild *r = arg;
    json_t *all = json_object();

    if (count > 0) {
        wa_log_info(NULL,
                    "rebuild: %lld journals of unfinished batches dropped (their events "
                    "were not committed)",
                    (long long)count);
    }
    if (err == WA_OK) {
        err = all != NULL ? wa_mongo_delete_many(r->mongo, AN_COLL_BUCKETS, all, on_rows_deleted, r)
                          : WA_ENOMEM;
    }
    json_decref(all);
    if (err != WA_OK) {
        wa_log_error(NULL, "rebuild: %s", wa_err_name(err));
        finish(r, err);
    }
}

int
an_rebuild_main(void)
{
    struct an_config cfg;
    struct wa_error error = {0};
    struct wa_mongo_config mc = {0};
    struct rebuild r = {.err = WA_OK};
    struct wa_pool *pool = NULL;
    json_t *all = NULL;
    bool mongo_init = false;
    int rc = 1;

    memset(&cfg, 0, sizeof(cfg));
    wa_log_init("wa-analytics-rebuild", WA_LOG_INFO);
    an_rows_init(&r.rows);
    if ((r.contacts = json_object()) == NULL) {
        goto out;
    }
    if (wa_cfg_load(an_config_spec, an_config_nspec, &cfg, wa_cfg_getenv, NULL, &error) != WA_OK ||
        an_ratecard_load(cfg.ratecard, &r.ratecard, &error) != WA_OK) {
        fprintf(stderr, "wa-analytics rebuild: configuration error: %s\n", error.message);
        rc = 2;
        goto out;
    }
    wa_mongo_global_init();
    mongo_init = true;
    mc.uri = cfg.common.mongo_uri;
    mc.app_name = "wa-analytics-rebuild";
    mc.timeout_ms = 20000;
    if (wa_loop_new(&r.loop) != WA_OK || wa_pool_new(r.loop, 2, &pool) != WA_OK ||
        wa_mongo_new(r.loop, pool, &mc, &r.mongo, &error) != WA_OK ||
        (all = json_object()) == NULL) {
        wa_log_error(NULL, "rebuild: %s", error.message);
        goto out;
    }
    r.t0 = wa_clock_mono_ms();
    if (wa_mongo_delete_many(r.mongo, AN_COLL_JOURNAL, all, on_journals_deleted, &r) != WA_OK ||
        wa_loop_run(r.loop) != WA_OK) {
        goto out;
    }
    rc = r.err == WA_OK ? 0 : 1;
out:
    json_decref(all);
    wa_mongo_cursor_free(r.cursor);
    wa_mongo_free(r.mongo);
    wa_pool_free(pool);
    wa_loop_free(r.loop);
    if (mongo_init) {
        wa_mongo_global_cleanup();
    }
    an_rows_clear(&r.rows);
    json_decref(r.contacts);
    an_ratecard_free(&r.ratecard);
    wa_cfg_cleanup(an_config_spec, an_config_nspec, &cfg);
    return rc;
}
