/*
 * config.c: wa-users' configuration table (docs/configuration.md, README.md). Read once at
 * start by the scaffolding; immutable afterwards.
 */
#include <stddef.h>

#include "users.h"

const struct wa_cfg_spec us_config_spec[] = {
    WA_CFG_COMMON(struct us_config, common, "127.0.0.1:8085"),
    {"WA_USERS_GROUP", WA_CFG_STRING, "wa-users", 0, 0, 0, offsetof(struct us_config, group),
     "Kafka consumer group"},
    {"WA_USERS_RETRY", WA_CFG_MS, "1s", 10, 600000, 0, offsetof(struct us_config, retry_ms),
     "delay before an event whose side effects failed is applied again"},
    {"WA_USERS_MAX_IN_FLIGHT", WA_CFG_INT, "1000", 1, 100000, 0,
     offsetof(struct us_config, max_in_flight),
     "events fetched and queued before the consumer pauses (applied one at a time)"},
    {"WA_USERS_CACHE_TTL", WA_CFG_MS, "60s", 0, 86400000, 0,
     offsetof(struct us_config, cache_ttl_ms),
     "lifetime of a contact in the Redis read cache of GET /v1/contacts/{id} (0: no cache)"},
    {"WA_USERS_CACHE_SECRET", WA_CFG_STRING, "", 0, 0, WA_CFG_SECRET,
     offsetof(struct us_config, cache_secret),
     "key of the HMAC that names the cache's Redis keys (unset: a fixed label)"},
    WA_OPTOUT_CFG(struct us_config, optout_key),
};
const size_t us_config_nspec = sizeof(us_config_spec) / sizeof(us_config_spec[0]);
