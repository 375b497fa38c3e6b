/*
 * wa-analytics: message timelines, delivery and engagement KPIs, and cost, from the event
 * stream (docs/architecture.md; design: README.md).
 *
 * Composition root only (docs/style.md). Flow of one event, one file per stage:
 *   consume (translate -> batch -> one MongoDB write -> commit)   -> messages, inbound
 *   api / dashboard (scan -> report -> JSON or HTML)               <- messages, inbound
 * Threads: the loop thread; MongoDB calls run on the worker pool (libs/mongo).
 *
 * Stages (the table at the end), started in order and stopped in reverse; at SIGTERM the batch
 * being filled is written and queries finish, and the scaffolding silences the shared clients
 * before any stop (docs/internals/service.md):
 *   1. clients     the rate card, MongoDB (shared, with its probe), the collections' indexes
 *   2. health      metrics series and the KPI gauges' timer
 *   3. api         REST routes and GET /dashboard
 *   4. consume     the consumer group over the five topics (the scaffolding's); events flow
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "wa/log.h"
#include "wa/mongo.h"

static void
on_migrated(void *arg, enum wa_err err)
{
    (void)arg;
    if (err != WA_OK) {
        wa_log_warn(NULL, "analytics collections and indexes not created: %s", wa_err_name(err));
    }
}

/* Collections and indexes, idempotently (libs/mongo migrate). */
static void
ensure_indexes(struct an *an)
{
    static const struct wa_mongo_index idx[] = {
        {AN_COLL_MESSAGES, "wamid:1", false, 0},   {AN_COLL_MESSAGES, "at:1", false, 0},
        {AN_COLL_MESSAGES, "contact:1", false, 0}, {AN_COLL_INBOUND, "at:1", false, 0},
        {AN_COLL_INBOUND, "contact:1", false, 0},  {AN_COLL_BUCKETS, "b:1", false, 0},
    };

    if (wa_mongo_migrate(an->mongo, NULL, idx, sizeof(idx) / sizeof(idx[0]), on_migrated, NULL) !=
        WA_OK) {
        wa_log_warn(NULL, "analytics collections and indexes not created");
    }
}

static enum wa_err
clients_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    const struct an_config *cfg = wa_service_config(svc);
    struct an *an = state;
    enum wa_err err;

    an->cfg = cfg;
    an->svc = svc;
    an->loop = wa_service_loop(svc);
    an->metrics = wa_service_metrics(svc);
    wa_list_init(&an->jobs);
    snprintf(an->topic_prefix, sizeof(an->topic_prefix), "%s", cfg->common.topic_prefix);
    if ((err = an_ratecard_load(cfg->ratecard, &an->ratecard, error)) != WA_OK ||
        (err = wa_service_mongo(svc, &an->mongo, error)) != WA_OK) {
        return err;
    }
    ensure_indexes(an);
    return WA_OK;
}

static void
clients_stop(struct wa_service *svc, void *state)
{
    struct an *an = state;

    (void)svc;
    for (size_t i = 0; i < an->nzones; i++) {
        an_tz_free(&an->zones[i]);
    }
    an_ratecard_free(&an->ratecard);
}

static enum wa_err
health_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return an_health_start(state, error);
}

static void
health_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    an_health_stop(state);
}

static enum wa_err
api_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    enum wa_err err;

    (void)svc;
    if ((err = an_api_start(state, error)) != WA_OK) {
        return err;
    }
    return an_dashboard_start(state, error);
}

static void
api_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    an_api_stop(state);
}

static enum wa_err
consume_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return an_consume_start(state, error);
}

/* SIGTERM: write the batch being filled (the scaffolding paused the consumer). */
static void
consume_drain(struct wa_service *svc, void *state)
{
    (void)svc;
    an_consume_drain(state);
}

static bool
consume_busy(void *state)
{
    return an_busy(state);
}

static void
consume_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    an_consume_stop(state);
}

static const struct wa_service_stage stages[] = {
    {"clients", clients_start, NULL, NULL, clients_stop},
    {"health", health_start, NULL, NULL, health_stop},
    {"api", api_start, NULL, NULL, api_stop},
    {"consume", consume_start, consume_drain, consume_busy, consume_stop},
};

int
main(int argc, char **argv)
{
    static const struct wa_service_def def = {
        .name = "wa-analytics",
        .summary = "message timelines, delivery and engagement KPIs, and cost.",
        .spec = an_config_spec,
        .cfg_size = sizeof(struct an_config),
        .common_offset = offsetof(struct an_config, common),
        .uses = WA_SERVICE_USES_KAFKA | WA_SERVICE_USES_MONGO,
        .state_size = sizeof(struct an),
        .stages = stages,
        .nstages = WA_ARRAY_LEN(stages),
    };
    struct wa_service_def d = def;

    d.nspec = an_config_nspec;
    if (argc == 2 && strcmp(argv[1], "rebuild") == 0) {
        return an_rebuild_main();
    }
    return wa_service_main(argc, argv, &d);
}
