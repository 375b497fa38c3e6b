/*
 * wa-users: contacts, the consent ledger and the marketing opt-out suppression keys, in
 * MongoDB and Redis.
 *
 * Composition root only (docs/style.md). Flow of one consent-changing event, one file per
 * stage (README.md has the files in reading order, configuration, topics, keys, collections):
 *   consume (contact.command STOP/START, inbound.status 131050, account.event user_preferences)
 *   -> decide the ledger entries (consent.c, pure)
 *   -> apply each (ledger.c): ledger append, derived state on the contact, suppressions and
 *      optout keys (suppress.c), contact.event -> offset committed
 * and of a profile event (inbound.message, outbound.result accepted):
 *   consume -> decide (contact.c, pure) -> one atomic contact update (profile.c) -> offset
 * At start the optout keys are rebuilt from MongoDB (suppress.c) before the consumer starts, and
 * the indexes are created (migrate.c). `wa-users migrate` only creates them and exits 0.
 *
 * Threads: the loop thread; MongoDB calls run on the scaffolding's worker pool.
 * Stages (the table at the end), started in order and stopped in reverse; at SIGTERM the events
 * in flight are applied, and the scaffolding silences the shared clients before any stop
 * (docs/internals/service.md):
 *   1. clients         topic names; Kafka producer, Redis, MongoDB, from the scaffolding
 *   2. cache           the Redis read-through cache of contacts (cache.c)
 *   3. health          metrics series and the readiness probes
 *   4. rest            the contacts API (rest.c) on the scaffolding's listener
 *   5. suppress        rebuild of the optout keys from MongoDB, then the consumer (the
 *                      scaffolding's) of contact.command, inbound.status, account.event,
 *                      inbound.message and outbound.result; index creation (migrate.c)
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "users.h"
#include "wa/contract_router.h"
#include "wa/kafka.h"
#include "wa/log.h"

static void
on_migrated(void *arg, enum wa_err err)
{
    (void)arg;
    if (err != WA_OK && err != WA_ECLOSED) {
        wa_log_warn(NULL, "indexes not created (%s); `wa-users migrate` creates them",
                    wa_err_name(err));
    }
}

static enum wa_err
clients_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct us *us = state;
    struct wa_kafka_config kc;
    enum wa_err err;

    us->svc = svc;
    us->cfg = wa_service_config(svc);
    us->loop = wa_service_loop(svc);
    snprintf(us->prefix, sizeof(us->prefix), "%s", us->cfg->common.topic_prefix);
    wa_service_kafka_config(svc, &kc);
    if (wa_kafka_topic(&kc, WA_TOPIC_CONTACT_COMMAND, us->topic_command,
                       sizeof(us->topic_command)) != WA_OK ||
        wa_kafka_topic(&kc, WA_TOPIC_INBOUND_STATUS, us->topic_status, sizeof(us->topic_status)) !=
            WA_OK ||
        wa_kafka_topic(&kc, WA_TOPIC_ACCOUNT_EVENT, us->topic_account, sizeof(us->topic_account)) !=
            WA_OK ||
        wa_kafka_topic(&kc, WA_TOPIC_CONTACT_EVENT, us->topic_event, sizeof(us->topic_event)) !=
            WA_OK ||
        wa_kafka_topic(&kc, WA_TOPIC_INBOUND_MESSAGE, us->topic_inbound,
                       sizeof(us->topic_inbound)) != WA_OK ||
        wa_kafka_topic(&kc, WA_TOPIC_OUTBOUND_RESULT, us->topic_result, sizeof(us->topic_result)) !=
            WA_OK) {
        return wa_error_set(error, WA_ECONFIG, "WA_TOPIC_PREFIX too long");
    }
    if (wa_optout_new(us->cfg->optout_key, &us->optout) != WA_OK) {
        return wa_error_set(error, WA_ENOMEM, "WA_OPTOUT_KEY: the opt-out keys' HMAC");
    }
    if ((err = wa_service_kafka_producer(svc, &us->producer, error)) != WA_OK ||
        (err = wa_service_kv(svc, &us->kv, error)) != WA_OK) {
        return err;
    }
    return wa_service_mongo(svc, &us->mongo, error);
}

static void
clients_stop(struct wa_service *svc, void *state)
{
    struct us *us = state;

    (void)svc;
    wa_optout_free(us->optout);
    us->optout = NULL;
}

static enum wa_err
cache_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return us_cache_start(state, error);
}

static void
cache_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    us_cache_stop(state);
}

static enum wa_err
health_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return us_health_start(state, error);
}

static enum wa_err
rest_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return us_rest_start(state, error);
}

static enum wa_err
suppress_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct us *us = state;
    enum wa_err err;

    (void)svc;
    if ((err = us_suppress_rebuild_start(us, error)) != WA_OK) {
        return err;
    }
    if (us_migrate_start(us->mongo, on_migrated, NULL) != WA_OK) {
        wa_log_warn(NULL, "indexes not created; `wa-users migrate` creates them");
    }
    return WA_OK;
}

static bool
suppress_busy(void *state)
{
    return us_consume_busy(state);
}

static void
suppress_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    us_consume_stop(state);
    us_suppress_stop(state);
}

static const struct wa_service_stage stages[] = {
    {"clients", clients_start, NULL, NULL, clients_stop},
    {"cache", cache_start, NULL, NULL, cache_stop},
    {"health", health_start, NULL, NULL, NULL},
    {"rest", rest_start, NULL, NULL, NULL},
    {"suppress", suppress_start, NULL, suppress_busy, suppress_stop},
};

int
main(int argc, char **argv)
{
    struct wa_service_def def = {
        .name = "wa-users",
        .summary = "contacts, the consent ledger and the marketing opt-out keys, in MongoDB and "
                   "Redis.",
        .spec = us_config_spec,
        .nspec = us_config_nspec,
        .cfg_size = sizeof(struct us_config),
        .common_offset = offsetof(struct us_config, common),
        .state_size = sizeof(struct us),
        .stages = stages,
        .nstages = WA_ARRAY_LEN(stages),
    };

    if (argc == 2 && strcmp(argv[1], "migrate") == 0) {
        return us_migrate_main();
    }
    return wa_service_main(argc, argv, &def);
}
