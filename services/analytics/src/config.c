/*
 * config.c: wa-analytics' configuration table (README.md, "Configuration").
 */
#include <stddef.h>

#include "analytics.h"

/* clang-format off */
const struct wa_cfg_spec an_config_spec[] = {
    WA_CFG_COMMON(struct an_config, common, "127.0.0.1:8084"),
    {"WA_ANALYTICS_GROUP", WA_CFG_STRING, "wa-analytics", 0, 0, 0, offsetof(struct an_config, group),
     "Kafka consumer group"},
    {"WA_ANALYTICS_BATCH", WA_CFG_INT, "500", 1, 10000, 0, offsetof(struct an_config, batch),
     "events written to MongoDB together (offsets committed after the write)"},
    {"WA_ANALYTICS_FLUSH", WA_CFG_MS, "200ms", 1, 60000, 0, offsetof(struct an_config, flush_ms),
     "longest wait before a partial batch is written"},
    {"WA_ANALYTICS_RATECARD", WA_CFG_STRING, "", 0, 0, 0, offsetof(struct an_config, ratecard),
     "rate card file (JSON; empty: no cost figures)"},
    {"WA_ANALYTICS_TZ_DIR", WA_CFG_STRING, "/usr/share/zoneinfo", 0, 0, 0,
     offsetof(struct an_config, tz_dir), "IANA time zone files (tzdata)"},
    {"WA_ANALYTICS_MAX_SCAN", WA_CFG_INT, "200000", 1000, 10000000, 0,
     offsetof(struct an_config, max_scan), "most rows one query reads (422 above)"},
    {"WA_ANALYTICS_KPI_INTERVAL", WA_CFG_MS, "60s", 1000, 3600000, 0,
     offsetof(struct an_config, kpi_interval_ms), "how often the KPI gauges are recomputed"},
    {"WA_ANALYTICS_KPI_PERIOD", WA_CFG_MS, "24h", 60000, 2678400000, 0,
     offsetof(struct an_config, kpi_period_ms), "the period before now the KPI gauges cover"},
};
/* clang-format on */
const size_t an_config_nspec = sizeof(an_config_spec) / sizeof(an_config_spec[0]);
