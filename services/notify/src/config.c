/*
 * config.c: wa-notify's configuration table (README.md, "Configuration") and the lookup of
 * per-number values in "phone_number_id=value" lists. Immutable after start; the access token
 * is re-read from WA_ACCESS_TOKEN_FILE on SIGHUP (health.c).
 */
#include <stdio.h>
#include <string.h>

#include "notify.h"

const struct wa_cfg_spec nt_config_spec[] = {
    /* drain lets every in-flight Cloud API call finish: longer than WA_NOTIFY_HTTP_TIMEOUT */
    WA_CFG_COMMON_DRAIN(struct nt_config, common, "127.0.0.1:8083", "12s"),
    {"WA_GRAPH_URL", WA_CFG_STRING, "https://graph.facebook.com/v21.0", 0, 0, WA_CFG_HTTPS,
     offsetof(struct nt_config, graph_url), "Cloud API base URL including the version"},
    {"WA_ACCESS_TOKEN", WA_CFG_STRING, "sandbox-token", 0, 0, WA_CFG_SECRET | WA_CFG_SANDBOX,
     offsetof(struct nt_config, access_token),
     "bearer token; or items phone_number_id=token (comma-separated) beside a default"},
    {"WA_NOTIFY_GROUP", WA_CFG_STRING, "wa-notify", 0, 0, 0, offsetof(struct nt_config, group),
     "Kafka consumer group of outbound.request"},
    {"WA_NOTIFY_MPS", WA_CFG_INT, "80", 1, 100000, 0, offsetof(struct nt_config, mps),
     "messages per second per sending number, shared by every instance"},
    {"WA_NOTIFY_RATES", WA_CFG_STRING, "", 0, 0, 0, offsetof(struct nt_config, rates),
     "per-number rates: phone_number_id=mps,... (others use WA_NOTIFY_MPS)"},
    {"WA_NOTIFY_BURST", WA_CFG_MS, "50ms", 1, 10000, 0, offsetof(struct nt_config, burst_ms),
     "token bucket depth, as time at the configured rate"},
    {"WA_NOTIFY_MAX_ATTEMPTS", WA_CFG_INT, "8", 1, 100, 0, offsetof(struct nt_config, max_attempts),
     "sends of one request before it fails"},
    {"WA_NOTIFY_MAX_AGE", WA_CFG_MS, "10m", 1000, 86400000, 0,
     offsetof(struct nt_config, max_age_ms), "retrying stops this long after the first attempt"},
    {"WA_NOTIFY_BACKOFF_BASE", WA_CFG_MS, "500ms", 1, 600000, 0,
     offsetof(struct nt_config, backoff_base_ms), "first retry delay (doubles, with jitter)"},
    {"WA_NOTIFY_BACKOFF_MAX", WA_CFG_MS, "60s", 1, 3600000, 0,
     offsetof(struct nt_config, backoff_max_ms), "longest retry delay"},
    {"WA_NOTIFY_PAIR_BACKOFF_MAX", WA_CFG_MS, "256s", 1, 3600000, 0,
     offsetof(struct nt_config, pair_backoff_max_ms), "cap of the 4^X s pair-rate back-off"},
    {"WA_NOTIFY_HTTP_TIMEOUT", WA_CFG_MS, "10s", 100, 120000, 0,
     offsetof(struct nt_config, http_timeout_ms), "whole Cloud API request timeout"},
    {"WA_NOTIFY_CLAIM", WA_CFG_MS, "15s", 1000, 600000, 0, offsetof(struct nt_config, claim_ms),
     "how long a send claim holds off other instances (> the HTTP timeout)"},
    {"WA_NOTIFY_RECORD_TTL", WA_CFG_MS, "7d", 60000, 2592000000, 0,
     offsetof(struct nt_config, record_ttl_ms), "lifetime of a request's idempotency record"},
    {"WA_NOTIFY_MAX_IN_FLIGHT", WA_CFG_INT, "5000", 1, 1000000, 0,
     offsetof(struct nt_config, max_in_flight), "consumed requests not yet finished"},
    {"WA_NOTIFY_MAX_HTTP", WA_CFG_INT, "256", 1, 10000, 0, offsetof(struct nt_config, max_http),
     "Cloud API requests in flight"},
    {"WA_NOTIFY_BREAKER_THRESHOLD", WA_CFG_INT, "10", 1, 10000, 0,
     offsetof(struct nt_config, breaker_threshold), "consecutive 5xx/timeouts that open it"},
    {"WA_NOTIFY_BREAKER_COOLDOWN", WA_CFG_MS, "2s", 10, 600000, 0,
     offsetof(struct nt_config, breaker_cooldown_ms), "open time before a probe request"},
    {"WA_NOTIFY_WABA_ID", WA_CFG_STRING, "200000000000001", 0, 0, 0,
     offsetof(struct nt_config, waba_id),
     "WhatsApp Business Account of the template registry; or items phone_number_id=waba "
     "beside a default; empty: the caller's category only"},
    {"WA_NOTIFY_TEMPLATE_TTL", WA_CFG_MS, "10m", 1000, 86400000, 0,
     offsetof(struct nt_config, template_ttl_ms),
     "how long a template's registry category is cached"},
    {"WA_NOTIFY_PARK_AFTER", WA_CFG_MS, "30s", 100, 3600000, 0,
     offsetof(struct nt_config, park_after_ms),
     "a request whose not_before is further ahead is parked in Redis, not held in memory"},
    {"WA_NOTIFY_PARK_TICK", WA_CFG_MS, "1s", 10, 60000, 0, offsetof(struct nt_config, park_tick_ms),
     "how often each instance looks for parked requests that are due"},
    {"WA_NOTIFY_PARK_LEASE", WA_CFG_MS, "60s", 1000, 3600000, 0,
     offsetof(struct nt_config, park_lease_ms),
     "a due parked request being republished is claimed this long (then due again)"},
    WA_OPTOUT_CFG(struct nt_config, optout_key),
};

const size_t nt_config_nspec = sizeof(nt_config_spec) / sizeof(nt_config_spec[0]);

enum wa_err
nt_config_lookup(const char *spec, const char *phone_number_id, char *out, size_t size)
{
    const char *p = spec, *dflt = NULL;
    size_t dlen = 0, idlen = strlen(phone_number_id);

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);

        if (eq == NULL) {
            dflt = p;
            dlen = len;
        } else if ((size_t)(eq - p) == idlen && memcmp(p, phone_number_id, idlen) == 0) {
            size_t vlen = len - idlen - 1;

            if (vlen + 1 > size) {
                return WA_ETOOBIG;
            }
            memcpy(out, eq + 1, vlen);
            out[vlen] = '\0';
            return WA_OK;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    if (dflt == NULL || dlen == 0) {
        return WA_ENOTFOUND;
    }
    if (dlen + 1 > size) {
        return WA_ETOOBIG;
    }
    memcpy(out, dflt, dlen);
    out[dlen] = '\0';
    return WA_OK;
}
