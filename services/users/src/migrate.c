/*
 * migrate.c: wa-users' collections and indexes, created idempotently by libs/mongo's migrate
 * (existing collections and indexes are left as they are). `wa-users migrate` runs it once and
 * exits 0 (Kubernetes runs it as a Job before the daemons); the daemon runs it too at start,
 * so `make run` needs no step.
 *   contacts:       bsuid, tags, updated_at, consent.marketing.status (the list filters and the
 *                   suppression rebuild)
 *   consent_ledger: (contact, category, at_ms) (a contact's ledger, newest first)
 *   suppressions:   _id only (the opt-out hash of an identity; suppress.c)
 * The contact's phone is its _id ("+<digits>"), unique by construction.
 *
 * Threading: loop thread (us_migrate_start); us_migrate_main runs its own loop.
 */
#include <stdio.h>
#include <string.h>

#include "users.h"
#include "wa/log.h"
#include "wa/mongo.h"

#define MIGRATE_TIMEOUT_MS 60000

static const char *const collections[] = {US_COLL_CONTACTS, US_COLL_CONSENT, US_COLL_SUPPRESSIONS,
                                          NULL};

/* `wa-users migrate` needs MongoDB only: the common variables, not the daemon's secrets. */
static const struct wa_cfg_spec migrate_spec[] = {
    WA_CFG_COMMON(struct us_config, common, "127.0.0.1:8085"),
};
#define NMIGRATE_SPEC (sizeof(migrate_spec) / sizeof(migrate_spec[0]))

static const struct wa_mongo_index indexes[] = {
    {US_COLL_CONTACTS, "bsuid:1", false, 0},
    {US_COLL_CONTACTS, "tags:1", false, 0},
    {US_COLL_CONTACTS, "updated_at:1", false, 0},
    {US_COLL_CONTACTS, "consent.marketing.status:1", false, 0},
    {US_COLL_CONSENT, "contact:1,category:1,at_ms:-1", false, 0},
};
#define NINDEXES (sizeof(indexes) / sizeof(indexes[0]))

enum wa_err
us_migrate_start(struct wa_mongo *mongo, us_done_fn cb, void *arg)
{
    return wa_mongo_migrate(mongo, collections, indexes, NINDEXES, cb, arg);
}

int
us_migrate_main(void)
{
    struct us_config cfg;
    struct wa_error error = {0};
    struct wa_mongo_config mc = {0};
    enum wa_err err;

    memset(&cfg, 0, sizeof(cfg));
    wa_log_init("wa-users-migrate", WA_LOG_INFO);
    if (wa_cfg_load(migrate_spec, NMIGRATE_SPEC, &cfg, wa_cfg_getenv, NULL, &error) != WA_OK) {
        fprintf(stderr, "wa-users migrate: configuration error: %s\n", error.message);
        wa_cfg_cleanup(migrate_spec, NMIGRATE_SPEC, &cfg);
        return 2;
    }
    wa_mongo_global_init();
    mc.uri = cfg.common.mongo_uri;
    mc.app_name = "wa-users-migrate";
    err = wa_mongo_migrate_sync(&mc, collections, indexes, NINDEXES, MIGRATE_TIMEOUT_MS, &error);
    if (err == WA_OK) {
        wa_log_info(NULL, "migrate: collections and indexes of wa-users are in place");
    } else {
        wa_log_error(NULL, "migrate: %s", error.message);
    }
    wa_mongo_global_cleanup();
    wa_cfg_cleanup(migrate_spec, NMIGRATE_SPEC, &cfg);
    return err == WA_OK ? 0 : 1;
}
