/*
 * wa-router: decides what happens to each inbound message: automatic replies, CRM forwarding,
 * hand-off to people, tags and opt-outs, reminders; keeps the 24 h customer-service windows.
 *
 * Composition root only (docs/style.md). Flow of one inbound.message event, one file per stage
 * (README.md has the files in reading order, the rules format, config, topics and keys):
 *   consume -> window (state) -> match (evaluate) -> act (reply, forward, handoff, tag, remind)
 *   -> window (done) -> offset committed
 * Background pumps: act_crm.c (CRM deliveries), reminders.c (due reminders), window.c
 * (window-expiring / window-closed events). `wa-router --replay` (replay.c) is a separate
 * offline mode that acts on nothing.
 *
 * Threads: the loop thread only (Kafka, Redis and HTTP clients are driven by the loop).
 * Stages started in order (start) and stopped in reverse (stop):
 *   1. shared clients  Kafka producer (idempotent, acks=all) and Redis, from the scaffolding
 *   2. health          metrics series
 *   3. rules           WA_ROUTER_RULES, validated (start fails on any error); SIGHUP reloads
 *   4. window          window-event pump
 *   5. crm             CRM delivery pump (HTTP client)
 *   6. reminders       reminder pump
 *   7. consume         the consumer of inbound.message and outbound.result
 *
 * struct rt is static: callbacks of the shared clients may still run while the scaffolding
 * frees those clients after the stop hook (with WA_ECLOSED), and they reach it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa/kafka.h"
#include "wa/log.h"

static struct rt router;

static void
log_errors(const char *what, const struct wa_buf *errors)
{
    const char *p = errors->data, *nl;

    while (p != NULL && *p != '\0' && (nl = strchr(p, '\n')) != NULL) {
        wa_log_error(NULL, "%s: %.*s", what, (int)(nl - p), p);
        p = nl + 1;
    }
}

static enum wa_err
load_rules(struct rt *rt, struct rt_ruleset **out, struct wa_error *error)
{
    struct wa_buf errors;
    enum wa_err err;

    if (rt->cfg->rules_path == NULL || rt->cfg->rules_path[0] == '\0') {
        wa_log_warn(NULL, "WA_ROUTER_RULES is not set: no rules, the router only keeps windows");
        return rt_rules_parse("{\"rules\":[]}", 12, "(none)", out, NULL, error);
    }
    wa_buf_init(&errors, 64 * 1024);
    if ((err = rt_rules_load(rt->cfg->rules_path, out, &errors, error)) != WA_OK) {
        log_errors(rt->cfg->rules_path, &errors);
    }
    wa_buf_cleanup(&errors);
    return err;
}

static enum wa_err
start(struct wa_service *svc, const void *config, void **state, struct wa_error *error)
{
    struct rt *rt = &router;
    struct wa_kafka_config kc;
    enum wa_err err;

    memset(rt, 0, sizeof(*rt));
    *state = rt;
    rt->svc = svc;
    rt->cfg = config;
    rt->loop = wa_service_loop(svc);
    snprintf(rt->prefix, sizeof(rt->prefix), "%s", rt->cfg->common.topic_prefix);
    wa_service_kafka_config(svc, &kc);
    if (wa_kafka_topic(&kc, WA_TOPIC_OUTBOUND_REQUEST, rt->topic_outbound,
                       sizeof(rt->topic_outbound)) != WA_OK ||
        wa_kafka_topic(&kc, WA_TOPIC_HANDOFF, rt->topic_handoff, sizeof(rt->topic_handoff)) !=
            WA_OK ||
        wa_kafka_topic(&kc, WA_TOPIC_CONTACT_COMMAND, rt->topic_command,
                       sizeof(rt->topic_command)) != WA_OK ||
        wa_kafka_topic(&kc, WA_TOPIC_ROUTER_WINDOW, rt->topic_window, sizeof(rt->topic_window)) !=
            WA_OK ||
        wa_kafka_topic(&kc, WA_TOPIC_ROUTER_CRM_DLQ, rt->topic_crm_dlq,
                       sizeof(rt->topic_crm_dlq)) != WA_OK) {
        return wa_error_set(error, WA_ECONFIG, "WA_TOPIC_PREFIX too long");
    }
    if ((err = wa_service_kafka_producer(svc, &rt->producer, error)) != WA_OK ||
        (err = wa_service_kv(svc, &rt->kv, error)) != WA_OK ||
        (err = rt_health_start(rt, error)) != WA_OK ||
        (err = load_rules(rt, &rt->rules, error)) != WA_OK) {
        return err;
    }
    rt_health_rules(rt, rt->rules);
    wa_log_info(NULL, "rules: %zu from %s", rt->rules->nrules, rt->cfg->rules_path);
    if ((err = rt_window_start(rt, error)) != WA_OK || (err = rt_crm_start(rt, error)) != WA_OK ||
        (err = rt_reminders_start(rt, error)) != WA_OK ||
        (err = rt_consume_start(rt, error)) != WA_OK) {
        return err;
    }
    return WA_OK;
}

/* SIGHUP: the new file replaces the rules only when all of it is valid; messages in flight
 * finish with the rules they started with. */
static void
reload(struct wa_service *svc, void *state)
{
    struct rt *rt = state;
    struct rt_ruleset *rs = NULL;
    struct wa_error error = {0};

    (void)svc;
    if (load_rules(rt, &rs, &error) != WA_OK) {
        wa_counter_inc(rt->m.reload_failures);
        wa_log_error(NULL, "reload rejected, keeping the current rules: %s", error.message);
        return;
    }
    rt_health_rules(rt, rs);
    rt_rules_unref(rt->rules);
    rt->rules = rs;
    wa_counter_inc(rt->m.reloads);
    wa_log_info(NULL, "rules reloaded: %zu from %s", rs->nrules, rt->cfg->rules_path);
}

static void
drain(struct wa_service *svc, void *state)
{
    struct rt *rt = state;

    rt->draining = true;
    if (rt->consumer != NULL) {
        wa_kafka_consumer_pause(rt->consumer);
    }
    if (rt->inflight == 0) {
        wa_service_drained(svc);
    }
}

static void
stop(struct wa_service *svc, void *state)
{
    struct rt *rt = state;

    (void)svc;
    if (rt == NULL) {
        return;
    }
    rt_consume_stop(rt);
    rt_reminders_stop(rt);
    rt_crm_stop(rt);
    rt_window_stop(rt);
    rt_rules_unref(rt->rules);
    rt->rules = NULL;
}

int
main(int argc, char **argv)
{
    struct wa_service_def def = {
        .name = "wa-router",
        .summary = "decides where each inbound message goes: auto-replies, CRM, hand-off, "
                   "reminders (also: --replay CANDIDATE.json).",
        .spec = rt_config_spec,
        .nspec = rt_config_nspec,
        .cfg_size = sizeof(struct rt_config),
        .common_offset = offsetof(struct rt_config, common),
        .start = start,
        .drain = drain,
        .stop = stop,
        .reload = reload,
    };

    if (argc > 1 && strcmp(argv[1], "--replay") == 0) {
        return rt_replay_main(argc, argv);
    }
    return wa_service_main(argc, argv, &def);
}
