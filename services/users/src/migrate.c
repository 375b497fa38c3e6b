/*
 * migrate.c: wa-users' collections and indexes, created idempotently (creating an existing
 * identical index succeeds). `wa-users migrate` runs it once and exits 0 (Kubernetes runs it as
 * a Job before the daemons); the daemon runs it too at start, so `make run` needs no step.
 *   contacts:       bsuid, tags, updated_at, consent.marketing.status (the list filters and the
 *                   suppression rebuild)
 *   consent_ledger: (contact, category, at_ms) (a contact's ledger, newest first)
 * The contact's phone is its _id ("+<digits>"), unique by construction.
 *
 * Threading: loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "wa/log.h"
#include "wa/mongo.h"

static const struct {
    const char *coll;
    const char *keys; /* JSON */
} indexes[] = {
    {US_COLL_CONTACTS, "{\"bsuid\":1}"},
    {US_COLL_CONTACTS, "{\"tags\":1}"},
    {US_COLL_CONTACTS, "{\"updated_at\":1}"},
    {US_COLL_CONTACTS, "{\"consent.marketing.status\":1}"},
    {US_COLL_CONSENT, "{\"contact\":1,\"category\":1,\"at_ms\":-1}"},
};
#define NINDEXES (sizeof(indexes) / sizeof(indexes[0]))

struct mig {
    size_t pending;
    enum wa_err err;
    us_done_fn cb;
    void *arg;
};

static void
on_index(void *arg, enum wa_err err)
{
    struct mig *m = arg;

    if (err != WA_OK && m->err == WA_OK) {
        m->err = err;
    }
    if (--m->pending == 0) {
        m->cb(m->arg, m->err);
        free(m);
    }
}

enum wa_err
us_migrate_start(struct wa_mongo *mongo, us_done_fn cb, void *arg)
{
    struct mig *m = calloc(1, sizeof(*m));

    if (m == NULL) {
        return WA_ENOMEM;
    }
    m->cb = cb;
    m->arg = arg;
    m->pending = 1;
    for (size_t i = 0; i < NINDEXES; i++) {
        json_t *keys = json_loads(indexes[i].keys, 0, NULL);

        if (keys != NULL &&
            wa_mongo_create_index(mongo, indexes[i].coll, keys, false, 0, on_index, m) == WA_OK) {
            m->pending++;
        } else if (m->err == WA_OK) {
            m->err = keys != NULL ? WA_EUNAVAIL : WA_ENOMEM;
        }
        json_decref(keys);
    }
    on_index(m, WA_OK);
    return WA_OK;
}

struct run {
    struct wa_loop *loop;
    int rc;
};

static void
on_migrated(void *arg, enum wa_err err)
{
    struct run *r = arg;

    if (err != WA_OK) {
        wa_log_error(NULL, "migrate: %s", wa_err_name(err));
    }
    r->rc = err == WA_OK ? 0 : 1;
    wa_loop_stop(r->loop);
}

static void
on_deadline(struct wa_timer *t, void *arg)
{
    struct run *r = arg;

    (void)t;
    wa_log_error(NULL, "migrate: no answer from MongoDB within 60 s");
    wa_loop_stop(r->loop);
}

int
us_migrate_main(void)
{
    struct us_config cfg;
    struct wa_error error = {0};
    struct wa_mongo_config mc = {0};
    struct wa_pool *pool = NULL;
    struct wa_mongo *mongo = NULL;
    struct wa_timer *deadline = NULL;
    struct run r = {NULL, 1};

    memset(&cfg, 0, sizeof(cfg));
    wa_log_init("wa-users-migrate", WA_LOG_INFO);
    if (wa_cfg_load(us_config_spec, us_config_nspec, &cfg, wa_cfg_getenv, NULL, &error) != WA_OK) {
        fprintf(stderr, "wa-users migrate: configuration error: %s\n", error.message);
        wa_cfg_cleanup(us_config_spec, us_config_nspec, &cfg);
        return 2;
    }
    wa_mongo_global_init();
    mc.uri = cfg.common.mongo_uri;
    mc.app_name = "wa-users-migrate";
    if (wa_loop_new(&r.loop) != WA_OK || wa_pool_new(r.loop, 1, &pool) != WA_OK ||
        wa_mongo_new(r.loop, pool, &mc, &mongo, &error) != WA_OK ||
        (deadline = wa_timer_new(r.loop, on_deadline, &r)) == NULL ||
        us_migrate_start(mongo, on_migrated, &r) != WA_OK) {
        wa_log_error(NULL, "migrate: %s", error.message[0] != '\0' ? error.message : "setup");
    } else {
        wa_timer_start(deadline, 60000, 0);
        (void)wa_loop_run(r.loop);
    }
    if (r.rc == 0) {
        wa_log_info(NULL, "migrate: collections and indexes of wa-users are in place");
    }
    wa_timer_free(deadline);
    wa_mongo_free(mongo);
    wa_pool_free(pool);
    wa_loop_free(r.loop);
    wa_mongo_global_cleanup();
    wa_cfg_cleanup(us_config_spec, us_config_nspec, &cfg);
    return r.rc;
}
