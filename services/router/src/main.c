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
 * Stages (the table at the end), started in order and stopped in reverse; SIGTERM drains them
 * and the scaffolding silences the shared clients before any stop (docs/internals/service.md):
 *   1. topics          topic names from libs/contract; the shared producer and Redis
 *   2. health          metrics series
 *   3. rules           WA_ROUTER_RULES, validated (start fails on any error); SIGHUP reloads
 *   4. window          window-event pump
 *   5. crm             CRM delivery pump (HTTP client)
 *   6. reminders       reminder pump
 *   7. consume         the consumer of inbound.message and outbound.result; at SIGTERM the
 *                      messages in flight finish (a failing one goes back to Kafka)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa/kafka.h"
#include "wa/log.h"

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
topics_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct rt *rt = state;
    struct wa_kafka_config kc;
    enum wa_err err;

    rt->svc = svc;
    rt->cfg = wa_service_config(svc);
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
        (err = wa_service_kv(svc, &rt->kv, error)) != WA_OK) {
        return err;
    }
    return WA_OK;
}

static enum wa_err
health_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return rt_health_start(state, error);
}

static enum wa_err
rules_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    struct rt *rt = state;
    enum wa_err err;

    (void)svc;
    if ((err = load_rules(rt, &rt->rules, error)) != WA_OK) {
        return err;
    }
    rt_health_rules(rt, rt->rules);
    wa_log_info(NULL, "rules: %zu from %s", rt->rules->nrules, rt->cfg->rules_path);
    return WA_OK;
}

static void
rules_stop(struct wa_service *svc, void *state)
{
    struct rt *rt = state;

    (void)svc;
    rt_rules_unref(rt->rules);
    rt->rules = NULL;
}

static enum wa_err
window_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return rt_window_start(state, error);
}

static void
window_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    rt_window_stop(state);
}

static enum wa_err
crm_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return rt_crm_start(state, error);
}

static void
crm_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    rt_crm_stop(state);
}

static enum wa_err
reminders_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return rt_reminders_start(state, error);
}

static void
reminders_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    rt_reminders_stop(state);
}

static enum wa_err
consume_start(struct wa_service *svc, void *state, struct wa_error *error)
{
    (void)svc;
    return rt_consume_start(state, error);
}

/* SIGTERM: the pumps (window, crm, reminders) see rt->draining and take no new work. */
static void
consume_drain(struct wa_service *svc, void *state)
{
    (void)svc;
    rt_consume_drain(state);
}

static bool
consume_busy(void *state)
{
    return rt_consume_busy(state);
}

static void
consume_stop(struct wa_service *svc, void *state)
{
    (void)svc;
    rt_consume_stop(state);
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

static const struct wa_service_stage stages[] = {
    {"topics", topics_start, NULL, NULL, NULL},
    {"health", health_start, NULL, NULL, NULL},
    {"rules", rules_start, NULL, NULL, rules_stop},
    {"window", window_start, NULL, NULL, window_stop},
    {"crm", crm_start, NULL, NULL, crm_stop},
    {"reminders", reminders_start, NULL, NULL, reminders_stop},
    {"consume", consume_start, consume_drain, consume_busy, consume_stop},
};

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
        .state_size = sizeof(struct rt),
        .stages = stages,
        .nstages = WA_ARRAY_LEN(stages),
        .reload = reload,
    };

    if (argc > 1 && strcmp(argv[1], "--replay") == 0) {
        return rt_replay_main(argc, argv);
    }
    return wa_service_main(argc, argv, &def);
}
