/*
 * wa-users: contacts, opt-in/opt-out and preferences in MongoDB with a Redis cache.
 *
 * Composition root only (docs/style.md). Skeleton from the foundation issue: the scaffolding
 * (libs/service) reads the configuration, creates the shared clients named in .uses (Kafka producer, Redis, MongoDB)
 * with their /readyz probes, serves /healthz /readyz /metrics and stops on SIGTERM. The stages
 * of the daemon's own flow arrive with its issue (README.md).
 */
#include <stddef.h>

#include "wa/service.h"

struct us_config {
    struct wa_common_config common;
};

static const struct wa_cfg_spec spec[] = {
    WA_CFG_COMMON(struct us_config, common, "127.0.0.1:8085"),
};

static const struct wa_service_def def = {
    .name = "wa-users",
    .summary = "contacts, opt-in/opt-out and preferences in MongoDB with a Redis cache.",
    .spec = spec,
    .nspec = sizeof(spec) / sizeof(spec[0]),
    .cfg_size = sizeof(struct us_config),
    .common_offset = offsetof(struct us_config, common),
    .uses = WA_SERVICE_USES_KAFKA | WA_SERVICE_USES_REDIS | WA_SERVICE_USES_MONGO,
};

int
main(int argc, char **argv)
{
    return wa_service_main(argc, argv, &def);
}
