/*
 * config.c: wa-gateway's configuration table (docs/configuration.md, README.md). Read once at
 * start by the scaffolding (and by `wa-gateway keys`); immutable afterwards.
 */
#include <stddef.h>

#include "gateway.h"

const struct wa_cfg_spec gw_config_spec[] = {
    WA_CFG_COMMON(struct gw_config, common, "127.0.0.1:8080"),
    {"WA_GATEWAY_KEY_PEPPER", WA_CFG_STRING, NULL, 0, 0, WA_CFG_SECRET,
     offsetof(struct gw_config, pepper),
     "HMAC key of stored API key hashes (unset: API keys are refused with 503)"},
    {"WA_GATEWAY_KEY_CACHE_TTL", WA_CFG_MS, "5s", 0, 300000, 0,
     offsetof(struct gw_config, key_cache_ms),
     "how long a key record is cached in Redis (bounds how late a revocation is seen)"},
    {"WA_GATEWAY_RATE", WA_CFG_INT, "600", 1, 100000000, 0,
     offsetof(struct gw_config, rate_per_min),
     "requests per minute per key unless the key sets its own"},
    {"WA_GATEWAY_BURST", WA_CFG_INT, "0", 0, 100000000, 0, offsetof(struct gw_config, burst),
     "requests admitted at once per key (0: a tenth of the rate)"},
    {"WA_GATEWAY_IP_RATE", WA_CFG_INT, "300", 1, 100000000, 0,
     offsetof(struct gw_config, ip_rate_per_min),
     "requests per minute per client address on unauthenticated paths"},
    {"WA_GATEWAY_REPLICAS", WA_CFG_INT, "1", 1, 10000, 0, offsetof(struct gw_config, replicas),
     "gateway processes sharing the limits (the local limiter divides by it when Redis is down)"},
    {"WA_GATEWAY_IDEMPOTENCY_TTL", WA_CFG_MS, "24h", 60000, 604800000, 0,
     offsetof(struct gw_config, idempotency_ttl_ms), "how long an Idempotency-Key is remembered"},
    {"WA_GATEWAY_MAX_BODY", WA_CFG_SIZE, "256KiB", 1024, 8388608, 0,
     offsetof(struct gw_config, max_body), "largest request body (413 above)"},
    {"WA_GATEWAY_JSON_DEPTH", WA_CFG_INT, "16", 2, 64, 0, offsetof(struct gw_config, json_depth),
     "deepest JSON nesting accepted in a request body (400 above)"},
    {"WA_SANDBOX_PHONE_NUMBER_ID", WA_CFG_STRING, "100000000000001", 0, 0, 0,
     offsetof(struct gw_config, phone_number_id), "phone_number_id of messages that name none"},
};
const size_t gw_config_nspec = sizeof(gw_config_spec) / sizeof(gw_config_spec[0]);
