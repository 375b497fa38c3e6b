/*
 * config.c: wa-ingest's configuration table (docs/style.md: one spec table per service).
 * Read once at start by the scaffolding (environment, *_FILE for secrets); immutable after.
 * Documented in services/ingest/README.md.
 */
#include <stddef.h>

#include "ingest.h"

const struct wa_cfg_spec ig_config_spec[] = {
    WA_CFG_COMMON_DEFAULTS(struct ig_config, common, "127.0.0.1:8081", "4s", "8KiB", "0"),
    {"WA_APP_SECRET", WA_CFG_STRING, "sandbox-secret", 0, 0, WA_CFG_SECRET | WA_CFG_SANDBOX,
     offsetof(struct ig_config, app_secret), "app secret: HMAC key of X-Hub-Signature-256"},
    {"WA_APP_SECRET_PREVIOUS", WA_CFG_STRING, NULL, 0, 0, WA_CFG_SECRET,
     offsetof(struct ig_config, app_secret_previous),
     "previous app secret, also accepted while rotating (unset otherwise)"},
    {"WA_VERIFY_TOKEN", WA_CFG_STRING, "sandbox-verify", 0, 0, WA_CFG_SECRET | WA_CFG_SANDBOX,
     offsetof(struct ig_config, verify_token), "token of the GET /webhook handshake"},
    {"WA_INGEST_MAX_BODY", WA_CFG_SIZE, "3MiB", 1024, 8 * 1024 * 1024, 0,
     offsetof(struct ig_config, max_body), "largest webhook body accepted (413 above)"},
    {"WA_DEDUP_TTL", WA_CFG_MS, "7d", 1000, 30LL * 24 * 3600 * 1000, 0,
     offsetof(struct ig_config, dedup_ttl_ms),
     "how long a wamid / (wamid, status) is remembered (Meta redelivers for 7 days)"},
    {"WA_INGEST_ACK_TIMEOUT", WA_CFG_MS, "2s", 50, 60000, 0,
     offsetof(struct ig_config, ack_timeout_ms),
     "wait this long for Kafka acknowledgements before spooling the request"},
    {"WA_SPOOL_DIR", WA_CFG_STRING, "var/spool/ingest", 0, 0, 0,
     offsetof(struct ig_config, spool_dir),
     "directory of the local spool (fsynced; use /var/lib/wabridge/ingest in production)"},
    {"WA_SPOOL_REPLAY_INTERVAL", WA_CFG_MS, "1s", 10, 60000, 0,
     offsetof(struct ig_config, spool_replay_ms), "how often the spool replayer looks for work"},
    {"WA_SPOOL_FILE_MAX", WA_CFG_SIZE, "16MiB", 65536, 1024LL * 1024 * 1024, 0,
     offsetof(struct ig_config, spool_file_max), "spool file size before a new file is started"},
    {"WA_SPOOL_DEAD_LETTER_AFTER", WA_CFG_MS, "1h", 0, 7LL * 24 * 3600 * 1000, 0,
     offsetof(struct ig_config, spool_dead_letter_ms),
     "a spooled record Kafka keeps refusing (unknown topic, unauthorised, unclassified error) "
     "for this long is moved to a dead-letter file (too large or invalid: at once)"},
};

const size_t ig_config_nspec = sizeof(ig_config_spec) / sizeof(ig_config_spec[0]);
