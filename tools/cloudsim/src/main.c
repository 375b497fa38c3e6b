/*
 * wa-cloudsim: plays Meta's WhatsApp Cloud API for `make run`, tests and benchmarks.
 *
 * Composition root only. Flow (see cloudsim.h for the files in reading order):
 *   client -> graph.c (auth, validation, policies, templates) -> 200 + wamid | Graph error
 *          -> webhooks.c schedules sent/delivered/read (or failed) -> signed POST to
 *             WA_WEBHOOK_URL, retried with growing delays
 *   tests  -> control.c /_sim/ (inbound users, history, stats, faults, reset) and media.c.
 *
 * Threads: the loop thread serves everything (no Kafka, Redis or MongoDB). Stages (the table at
 * the end; libs/service starts them in order and stops them in reverse, after the HTTP server
 * is gone): state (config views, templates) -> faults -> media -> webhooks (httpc client) ->
 * routes.
 */
#include <stddef.h>
#include <stdlib.h>

#include "cloudsim.h"
#include "wa/log.h"

static const struct wa_cfg_spec spec[] = {
    WA_CFG_COMMON(struct cs_config, common, "127.0.0.1:8090"),
    {"WA_ACCESS_TOKEN", WA_CFG_STRING, "sandbox-token", 0, 0, WA_CFG_SECRET,
     offsetof(struct cs_config, access_tokens),
     "accepted bearer tokens, comma-separated; <phone_number_id>=<token> for one number"},
    {"WA_SANDBOX_PHONE_NUMBER_ID", WA_CFG_STRING, "100000000000001", 0, 0, 0,
     offsetof(struct cs_config, phone_number_ids),
     "business phone number ids, comma-separated (the first is the sandbox number)"},
    {"WA_SANDBOX_DISPLAY_NUMBER", WA_CFG_STRING, "+15550000001", 0, 0, 0,
     offsetof(struct cs_config, display_number), "display number of the first business number"},
    {"WA_SANDBOX_WABA_ID", WA_CFG_STRING, "200000000000001", 0, 0, 0,
     offsetof(struct cs_config, waba_id), "WhatsApp Business Account id (entry[].id)"},
    {"WA_APP_SECRET", WA_CFG_STRING, "sandbox-secret", 0, 0, WA_CFG_SECRET,
     offsetof(struct cs_config, app_secret), "key of X-Hub-Signature-256 on webhooks"},
    {"WA_WEBHOOK_URL", WA_CFG_STRING, "http://127.0.0.1:8081/webhook", 0, 0, 0,
     offsetof(struct cs_config, webhook_url), "where webhooks go; empty disables delivery"},
    {"WA_SIM_PUBLIC_URL", WA_CFG_STRING, "", 0, 0, 0, offsetof(struct cs_config, public_url),
     "base of media download URLs; empty: http://<WA_LISTEN>"},
    {"WA_SIM_TEMPLATES", WA_CFG_STRING, "", 0, 0, 0, offsetof(struct cs_config, templates),
     "template registry JSON file; empty: the built-in registry"},
    {"WA_SIM_LIMITS", WA_CFG_BOOL, "on", 0, 0, 0, offsetof(struct cs_config, limits),
     "master switch of throughput, pair-rate and 24 h window policies"},
    {"WA_SIM_MPS", WA_CFG_INT, "80", 0, 1000000, 0, offsetof(struct cs_config, mps),
     "messages per second per business number (130429); 0 disables"},
    {"WA_SIM_PAIR_BURST", WA_CFG_INT, "45", 0, 1000000, 0, offsetof(struct cs_config, pair_burst),
     "messages to one user in a burst (131056); 0 disables"},
    {"WA_SIM_PAIR_INTERVAL", WA_CFG_MS, "6s", 1, 3600000, 0,
     offsetof(struct cs_config, pair_interval_ms), "one message per interval per user, sustained"},
    {"WA_SIM_WINDOW_ENFORCE", WA_CFG_BOOL, "on", 0, 0, 0,
     offsetof(struct cs_config, window_enforce),
     "free-form outside the 24 h window fails (131047)"},
    {"WA_SIM_WINDOW_SYNC", WA_CFG_BOOL, "off", 0, 0, 0, offsetof(struct cs_config, window_sync),
     "answer 131047 synchronously (400) instead of 200 + failed status"},
    {"WA_SIM_WINDOW", WA_CFG_MS, "24h", 1, 31536000000, 0, offsetof(struct cs_config, window_ms),
     "length of the customer service window"},
    {"WA_SIM_THROTTLE_STATUS", WA_CFG_INT, "400", 400, 429, 0,
     offsetof(struct cs_config, throttle_status), "HTTP status of 130429 and 131056 (400 or 429)"},
    {"WA_SIM_UNDELIVERABLE", WA_CFG_STRING, "", 0, 0, 0, offsetof(struct cs_config, undeliverable),
     "wa_ids whose messages fail with 131026"},
    {"WA_SIM_MARKETING_STOPPED", WA_CFG_STRING, "", 0, 0, 0,
     offsetof(struct cs_config, marketing_stopped),
     "wa_ids who stopped marketing: marketing templates fail with 131050"},
    {"WA_SIM_STATUS_DELAY", WA_CFG_MS, "100ms", 0, 3600000, 0,
     offsetof(struct cs_config, sent_delay_ms), "send -> sent (or failed) status"},
    {"WA_SIM_DELIVERED_DELAY", WA_CFG_MS, "300ms", 0, 3600000, 0,
     offsetof(struct cs_config, delivered_delay_ms), "send -> delivered status"},
    {"WA_SIM_READ_DELAY", WA_CFG_MS, "1s", 0, 3600000, 0, offsetof(struct cs_config, read_delay_ms),
     "send -> read status"},
    {"WA_SIM_DELIVERED_PCT", WA_CFG_INT, "100", 0, 100, 0,
     offsetof(struct cs_config, delivered_pct), "percent of messages reported delivered"},
    {"WA_SIM_READ_PCT", WA_CFG_INT, "100", 0, 100, 0, offsetof(struct cs_config, read_pct),
     "percent of messages reported read"},
    {"WA_SIM_WEBHOOK_DUPLICATE_PCT", WA_CFG_INT, "0", 0, 100, 0,
     offsetof(struct cs_config, duplicate_pct), "percent of webhook bodies delivered twice"},
    {"WA_SIM_WEBHOOK_REORDER_PCT", WA_CFG_INT, "0", 0, 100, 0,
     offsetof(struct cs_config, reorder_pct), "percent of messages whose read precedes delivered"},
    {"WA_SIM_WEBHOOK_BATCH", WA_CFG_INT, "100", 1, 1000, 0, offsetof(struct cs_config, batch_max),
     "statuses per webhook POST at most"},
    {"WA_SIM_WEBHOOK_FLUSH", WA_CFG_MS, "20ms", 1, 10000, 0, offsetof(struct cs_config, flush_ms),
     "how often due updates are batched and sent"},
    {"WA_SIM_WEBHOOK_RETRY_BASE", WA_CFG_MS, "1s", 1, 3600000, 0,
     offsetof(struct cs_config, retry_base_ms), "first retry delay; doubles per attempt"},
    {"WA_SIM_WEBHOOK_RETRY_MAX_AGE", WA_CFG_MS, "7d", 1, 2592000000, 0,
     offsetof(struct cs_config, retry_max_age_ms),
     "give a webhook up this long after its first try"},
    {"WA_SIM_WEBHOOK_CONCURRENCY", WA_CFG_INT, "16", 1, 256, 0,
     offsetof(struct cs_config, webhook_concurrency), "webhook POSTs in flight at most"},
    {"WA_SIM_WEBHOOK_TIMEOUT", WA_CFG_MS, "10s", 100, 600000, 0,
     offsetof(struct cs_config, webhook_timeout_ms), "a webhook POST slower than this failed"},
    {"WA_SIM_WEBHOOK_QUEUE_MAX", WA_CFG_INT, "100000", 1, 100000000, 0,
     offsetof(struct cs_config, webhook_queue_max), "webhook bodies queued at most (then dropped)"},
    {"WA_SIM_HISTORY", WA_CFG_INT, "100000", 1, 10000000, 0, offsetof(struct cs_config, history),
     "accepted messages kept for GET /_sim/messages"},
    {"WA_SIM_MEDIA_URL_TTL", WA_CFG_MS, "5m", 1, 86400000, 0,
     offsetof(struct cs_config, media_url_ttl_ms), "validity of media download URLs"},
    {"WA_SIM_MEDIA_MAX_TOTAL", WA_CFG_SIZE, "256MiB", 1, 68719476736, 0,
     offsetof(struct cs_config, media_max_total), "bytes of media kept in memory at most"},
};

static enum wa_err
state_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct cs_sim *sim = state;
    enum wa_err err;

    if ((err = cs_sim_init(sim, wa_service_config(svc), wa_service_loop(svc), error)) != WA_OK) {
        return err;
    }
    sim->svc = svc;
    return WA_OK;
}

static void
state_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    cs_sim_cleanup(state);
}

static enum wa_err
faults_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct cs_sim *sim = state;
    enum wa_err err;

    (void)svc;
    if ((err = cs_faults_new(sim, &sim->faults)) != WA_OK) {
        return wa_error_set(error, err, "fault injection");
    }
    return WA_OK;
}

static void
faults_stop(struct wa_service *svc, void *state)
{
    struct cs_sim *sim = state;

    (void)svc;
    cs_faults_free(sim->faults);
    sim->faults = NULL;
}

static enum wa_err
media_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct cs_sim *sim = state;
    enum wa_err err;

    (void)svc;
    if ((err = cs_media_new(sim, &sim->media)) != WA_OK) {
        return wa_error_set(error, err, "media store");
    }
    return WA_OK;
}

static void
media_stop(struct wa_service *svc, void *state)
{
    struct cs_sim *sim = state;

    (void)svc;
    cs_media_free(sim->media);
    sim->media = NULL;
}

static enum wa_err
webhooks_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct cs_sim *sim = state;

    (void)svc;
    return cs_webhooks_new(sim, &sim->webhooks, error);
}

static void
webhooks_stop(struct wa_service *svc, void *state)
{
    struct cs_sim *sim = state;

    (void)svc;
    cs_webhooks_free(sim->webhooks);
    sim->webhooks = NULL;
}

static enum wa_err
routes_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    const struct cs_config *cfg = wa_service_config(svc);
    struct wa_httpd *h = wa_service_httpd(svc);
    struct cs_sim *sim = state;
    enum wa_err err;

    if ((err = cs_graph_routes(sim, h, error)) != WA_OK ||
        (err = cs_control_routes(sim, h, error)) != WA_OK) {
        return err;
    }
    wa_log_info(NULL,
                "simulating phone_number_id %s (%zu number(s)), webhooks to %s, limits %s, "
                "%zu template(s)",
                sim->numbers[0].id, sim->nnumbers,
                cfg->webhook_url[0] != '\0' ? cfg->webhook_url : "(disabled)",
                cfg->limits ? "on" : "off", sim->templates.by_key.count);
    return WA_OK;
}

static const struct wa_service_stage stages[] = {
    {"state", state_start, NULL, NULL, state_stop},
    {"faults", faults_start, NULL, NULL, faults_stop},
    {"media", media_start, NULL, NULL, media_stop},
    {"webhooks", webhooks_start, NULL, NULL, webhooks_stop},
    {"routes", routes_start, NULL, NULL, NULL},
};

static const struct wa_service_def def = {
    .name = "wa-cloudsim",
    .summary = "WhatsApp Cloud API simulator: Graph API sends, webhooks back, /_sim/ control.",
    .spec = spec,
    .nspec = sizeof(spec) / sizeof(spec[0]),
    .cfg_size = sizeof(struct cs_config),
    .common_offset = offsetof(struct cs_config, common),
    .state_size = sizeof(struct cs_sim),
    .stages = stages,
    .nstages = WA_ARRAY_LEN(stages),
};

int
main(int argc, char **argv)
{
    return wa_service_main(argc, argv, &def);
}
