/*
 * config.c: wa-gateway's configuration table (docs/configuration.md, README.md). Read once at
 * start by the scaffolding (and by `wa-gateway keys`); immutable afterwards.
 */
#include <stddef.h>

#include "gateway.h"

const struct wa_cfg_spec gw_config_spec[] = {
    WA_CFG_COMMON(struct gw_config, common, "127.0.0.1:8080"),
    {"WA_GATEWAY_KEY_PEPPER", WA_CFG_STRING, "sandbox-pepper", 0, 0, WA_CFG_SECRET | WA_CFG_SANDBOX,
     offsetof(struct gw_config, pepper),
     "HMAC key of stored API key hashes (changing it invalidates every key)"},
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
    {"WA_SANDBOX_WABA_ID", WA_CFG_STRING, "200000000000001", 0, 0, 0,
     offsetof(struct gw_config, waba_id), "WABA id whose templates GET /v1/templates lists"},
    {"WA_GATEWAY_USERS_URL", WA_CFG_STRING, "http://127.0.0.1:8085", 0, 0, 0,
     offsetof(struct gw_config, users_url), "base URL of wa-users (/v1/contacts...)"},
    {"WA_GATEWAY_ANALYTICS_URL", WA_CFG_STRING, "http://127.0.0.1:8084", 0, 0, 0,
     offsetof(struct gw_config, analytics_url),
     "base URL of wa-analytics (/v1/messages/{id}, /v1/analytics/...)"},
    {"WA_GRAPH_URL", WA_CFG_STRING, "https://graph.facebook.com/v21.0", 0, 0, WA_CFG_HTTPS,
     offsetof(struct gw_config, graph_url), "Cloud API base URL including the version"},
    {"WA_ACCESS_TOKEN", WA_CFG_STRING, "sandbox-token", 0, 0, WA_CFG_SECRET | WA_CFG_SANDBOX,
     offsetof(struct gw_config, access_token),
     "Cloud API bearer token (templates, business profile)"},
    {"WA_GATEWAY_UPSTREAM_TIMEOUT", WA_CFG_MS, "10s", 100, 120000, 0,
     offsetof(struct gw_config, upstream_timeout_ms),
     "how long a call to wa-users, wa-analytics or the Cloud API may take (504 after)"},
    {"WA_GATEWAY_HEALTH_TARGETS", WA_CFG_STRING,
     "wa-ingest=http://127.0.0.1:8081,wa-router=http://127.0.0.1:8082,"
     "wa-notify=http://127.0.0.1:8083,wa-analytics=http://127.0.0.1:8084,"
     "wa-users=http://127.0.0.1:8085",
     0, 0, 0, offsetof(struct gw_config, health_targets),
     "daemons GET /v1/health asks for /readyz: comma-separated name=base URL"},
};
const size_t gw_config_nspec = sizeof(gw_config_spec) / sizeof(gw_config_spec[0]);
