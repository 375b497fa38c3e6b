/*
 * wa-users: contacts, opt-in/opt-out and preferences in MongoDB with a Redis cache.
 *
 * Composition root only (docs/style.md): configuration table, then the stages started in order
 * and stopped in reverse. Threads: the loop thread (HTTP, Kafka callbacks, Redis) and the
 * scaffolding's worker pool for blocking MongoDB calls. Flow and files in reading order: README.md.
 */
#include <stddef.h>
#include <stdlib.h>

#include "wa/service.h"

struct us_config {
    struct wa_common_config common;
};

static const struct wa_cfg_spec spec[] = {
    WA_CFG_COMMON(struct us_config, common, "127.0.0.1:8085"),
};

/* Dependencies are owned by the scaffolding (freed after stop); this struct only borrows them. */
struct us_state {
    struct wa_kafka_producer *producer;
    struct wa_kv *kv;
    struct wa_mongo *mongo;
};

static enum wa_err
start(struct wa_service *svc, const void *cfg, void **state, struct wa_error *error)
{
    struct us_state *st = calloc(1, sizeof(*st));
    enum wa_err err = WA_OK;

    (void)cfg;
    if (st == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    *state = st;
    if ((err = wa_service_kafka_producer(svc, &st->producer, error)) != WA_OK) {
        goto fail;
    }
    if ((err = wa_service_kv(svc, &st->kv, error)) != WA_OK) {
        goto fail;
    }
    if ((err = wa_service_mongo(svc, &st->mongo, error)) != WA_OK) {
        goto fail;
    }
    return WA_OK;
fail:
    return err;
}

static void
stop(struct wa_service *svc, void *state)
{
    (void)svc;
    free(state);
}

static const struct wa_service_def def = {
    .name = "wa-users",
    .summary = "contacts, opt-in/opt-out and preferences in MongoDB with a Redis cache.",
    .spec = spec,
    .nspec = sizeof(spec) / sizeof(spec[0]),
    .cfg_size = sizeof(struct us_config),
    .common_offset = offsetof(struct us_config, common),
    .start = start,
    .stop = stop,
};

int
main(int argc, char **argv)
{
    return wa_service_main(argc, argv, &def);
}
