/*
 * config.c: wa-router's configuration table (docs/configuration.md, README.md). Read once at
 * start by the scaffolding; immutable afterwards (the rules file is what SIGHUP reloads).
 */
#include <stddef.h>

#include "router.h"

const struct wa_cfg_spec rt_config_spec[] = {
    WA_CFG_COMMON(struct rt_config, common, "127.0.0.1:8082"),
    {"WA_ROUTER_RULES", WA_CFG_STRING, "", 0, 0, 0, offsetof(struct rt_config, rules_path),
     "path of the rules file (JSON); SIGHUP reloads it; empty: no rules (windows only)"},
    {"WA_ROUTER_GROUP", WA_CFG_STRING, "wa-router", 0, 0, 0, offsetof(struct rt_config, group),
     "Kafka consumer group"},
    {"WA_ROUTER_WINDOW", WA_CFG_MS, "24h", 1000, 2592000000LL, 0,
     offsetof(struct rt_config, window_ms),
     "customer-service window opened by each inbound message"},
    {"WA_ROUTER_WINDOW_WARN", WA_CFG_MS, "1h", 0, 0, 0, offsetof(struct rt_config, window_warn_ms),
     "window-expiring events are emitted this long before a window closes"},
    {"WA_ROUTER_WINDOW_EVENTS", WA_CFG_BOOL, "true", 0, 0, 0,
     offsetof(struct rt_config, window_events),
     "emit window-expiring / window-closed events on <prefix>router.window"},
    {"WA_ROUTER_SEEN_TTL", WA_CFG_MS, "7d", 1000, 7776000000LL, 0,
     offsetof(struct rt_config, seen_ttl_ms),
     "how long an inbound message id is remembered (idempotency)"},
    {"WA_ROUTER_DELAY_SCALE", WA_CFG_INT, "1", 1, 100000000, 0,
     offsetof(struct rt_config, delay_scale),
     "reminder delays are divided by this (tests compress the clock; 1 in production)"},
    {"WA_ROUTER_TICK", WA_CFG_MS, "100ms", 10, 60000, 0, offsetof(struct rt_config, tick_ms),
     "period of the reminder, CRM and window pumps"},
    {"WA_ROUTER_RETRY", WA_CFG_MS, "1s", 10, 600000, 0, offsetof(struct rt_config, retry_ms),
     "delay before a message whose actions failed is processed again"},
    {"WA_ROUTER_LEASE", WA_CFG_MS, "60s", 1000, 3600000, 0, offsetof(struct rt_config, lease_ms),
     "a claimed reminder or CRM delivery reappears after this if its instance died"},
    {"WA_ROUTER_CRM_CA_FILE", WA_CFG_STRING, NULL, 0, 0, 0, offsetof(struct rt_config, crm_ca_file),
     "CA bundle for CRM endpoints (default: system)"},
};
const size_t rt_config_nspec = sizeof(rt_config_spec) / sizeof(rt_config_spec[0]);
