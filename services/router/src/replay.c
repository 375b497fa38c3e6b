/*
 * replay.c: `wa-router --replay CANDIDATE.json [--limit N] [--idle-ms MS]`: shadow evaluation.
 *
 * Reads the archived webhooks (<p>webhook.raw, from the beginning, under a throwaway consumer
 * group), splits every body with the same splitter wa-ingest uses, builds each message's
 * inbound.message data with the contract encoder, and evaluates it against the current rules
 * (WA_ROUTER_RULES; none when unset) and the candidate file. Prints one JSON line per message
 * whose decision would change ({"wamid", "conversation", "type", "text", "current",
 * "candidate"}, each decision a list of {"rule", "actions"}), then a summary line, and exits 0
 * (2 for a usage or rules error, 1 when Kafka fails). It acts on nothing: no Redis, no
 * producer. Facts that live in Redis are not replayed: every message is evaluated as "not the
 * first of its conversation, no tags, language unknown", at the message's own timestamp (so
 * business hours are judged as they were). Stops once no record arrived for --idle-ms
 * (default 5000) or after --limit messages. Bodies split into parts are reassembled.
 * Logs go to stderr so stdout holds only the report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/id.h"
#include "wa/kafka.h"
#include "wa/log.h"
#include "wa/whatsapp_webhook.h"

#define ASSEMBLIES_MAX 8

struct assembly {
    char raw_id[64];
    int64_t next_part;
    int64_t parts;
    struct wa_buf body;
};

struct replay {
    struct wa_loop *loop;
    struct wa_kafka_consumer *consumer;
    struct rt_ruleset *current, *candidate;
    struct wa_timer *timer;
    uint64_t last_ms;
    int64_t idle_ms;
    int64_t limit;
    int64_t raw, messages, changed, unparsed;
    struct assembly asm_[ASSEMBLIES_MAX];
};

static json_t *
decision_json(const struct rt_ruleset *rs, const struct rt_decision *d)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < d->n; i++) {
        const struct rt_rule *r = &rs->rules[d->rule[i]];
        json_t *acts = json_array();
        for (size_t k = 0; acts != NULL && k < r->nactions; k++) {
            json_array_append_new(acts, json_string(rt_action_name(r->actions[k].kind)));
        }
        json_array_append_new(arr, json_pack("{s:s,s:o}", "rule", r->name, "actions", acts));
    }
    return arr;
}

static void
evaluate(struct replay *rp, const json_t *data)
{
    struct wa_contract_inbound_message in;
    struct rt_msg msg = {0};
    struct rt_decision a, b;
    char norm[RT_NORM_MAX], conv[WA_CONTRACT_KEY_MAX];
    json_t *ja, *jb, *line;
    char *text;

    if (wa_contract_inbound_message_decode(data, &in, NULL) != WA_OK) {
        rp->unparsed++;
        return;
    }
    rp->messages++;
    rt_msg_from_inbound(&in, &msg);
    if (msg.text != NULL) {
        size_t n = strlen(msg.text);
        rt_text_normalize(msg.text, n > RT_TEXT_MAX ? RT_TEXT_MAX : n, norm, sizeof(norm));
        msg.norm = norm;
    }
    msg.ts_ms = in.timestamp > 0 ? in.timestamp * 1000 : (int64_t)wa_clock_wall_ms();
    msg.now_ms = msg.ts_ms;
    rt_rules_evaluate(rp->current, &msg, &a);
    rt_rules_evaluate(rp->candidate, &msg, &b);
    ja = decision_json(rp->current, &a);
    jb = decision_json(rp->candidate, &b);
    if (!json_equal(ja, jb)) {
        rp->changed++;
        wa_contract_conversation_key(in.phone_number_id, in.contact, conv, sizeof(conv));
        line = json_pack("{s:s,s:s,s:s,s:s?,s:O,s:O}", "wamid", in.wamid, "conversation", conv,
                         "type", in.type, "text", msg.text, "current", ja, "candidate", jb);
        if (line != NULL && (text = wa_json_dump(line)) != NULL) {
            printf("%s\n", text);
            free(text);
        }
        json_decref(line);
    }
    json_decref(ja);
    json_decref(jb);
}

static void
replay_body(struct replay *rp, const char *body, size_t len)
{
    struct wa_webhook_batch batch;
    json_t *data;

    wa_webhook_batch_init(&batch);
    if (wa_webhook_split(body, len, &batch, NULL) != WA_OK) {
        rp->unparsed++;
        return;
    }
    for (size_t i = 0; i < batch.count; i++) {
        if (batch.events[i].kind != WA_WEBHOOK_MESSAGE ||
            wa_contract_event_data(&batch.events[i], &data) != WA_OK) {
            continue;
        }
        evaluate(rp, data);
        json_decref(data);
    }
    wa_webhook_batch_cleanup(&batch);
}

static struct assembly *
assembly_for(struct replay *rp, const char *raw_id, bool create)
{
    struct assembly *free_slot = NULL;

    for (size_t i = 0; i < ASSEMBLIES_MAX; i++) {
        if (rp->asm_[i].raw_id[0] != '\0' && strcmp(rp->asm_[i].raw_id, raw_id) == 0) {
            return &rp->asm_[i];
        }
        if (rp->asm_[i].raw_id[0] == '\0' && free_slot == NULL) {
            free_slot = &rp->asm_[i];
        }
    }
    if (!create) {
        return NULL;
    }
    if (free_slot == NULL) {
        free_slot = &rp->asm_[0]; /* evict: that body is reported as unparsed */
        wa_buf_cleanup(&free_slot->body);
        rp->unparsed++;
    }
    snprintf(free_slot->raw_id, sizeof(free_slot->raw_id), "%s", raw_id);
    wa_buf_init(&free_slot->body, WA_CONTRACT_RAW_PART_MAX * WA_CONTRACT_RAW_PARTS_MAX);
    free_slot->next_part = 0;
    return free_slot;
}

static void
on_raw(struct replay *rp, const json_t *data)
{
    struct wa_contract_raw raw;
    struct assembly *as;
    struct wa_buf one;

    if (wa_contract_raw_decode(data, &raw, NULL) != WA_OK || raw.raw_id == NULL) {
        rp->unparsed++;
        return;
    }
    rp->raw++;
    if (raw.parts <= 1) {
        wa_buf_init(&one, WA_CONTRACT_RAW_PART_MAX * 2);
        if (wa_contract_raw_append_body(&raw, &one, NULL) == WA_OK) {
            replay_body(rp, one.data != NULL ? one.data : "", one.len);
        } else {
            rp->unparsed++;
        }
        wa_buf_cleanup(&one);
        return;
    }
    as = assembly_for(rp, raw.raw_id, raw.part == 0);
    if (as == NULL || raw.part != as->next_part ||
        wa_contract_raw_append_body(&raw, &as->body, NULL) != WA_OK) {
        rp->unparsed++;
        return;
    }
    as->next_part++;
    if (as->next_part == raw.parts) {
        replay_body(rp, as->body.data != NULL ? as->body.data : "", as->body.len);
        wa_buf_cleanup(&as->body);
        as->raw_id[0] = '\0';
    }
}

static void
on_message(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct replay *rp = arg;
    struct wa_cloudevent_doc *doc = NULL;

    rp->last_ms = wa_clock_mono_ms();
    if (msg->value != NULL && wa_cloudevent_decode(msg->value, msg->len, &doc, NULL) == WA_OK) {
        on_raw(rp, doc->ev.data);
    } else {
        rp->unparsed++;
    }
    wa_cloudevent_doc_free(doc);
    wa_kafka_consumer_done(c, msg);
    if (rp->limit > 0 && rp->messages >= rp->limit) {
        wa_loop_stop(rp->loop);
    }
}

static void
on_tick(struct wa_timer *t, void *arg)
{
    struct replay *rp = arg;

    (void)t;
    if (wa_clock_mono_ms() >= rp->last_ms + (uint64_t)rp->idle_ms) {
        wa_loop_stop(rp->loop);
    }
}

static const char *
lookup(const char *name, void *arg)
{
    const char *v = getenv(name);

    (void)arg;
    if (v == NULL && strcmp(name, "WA_ROUTER_RULES") == 0) {
        return ""; /* optional here: compare against no rules */
    }
    return v;
}

static enum wa_err
load(const char *path, struct rt_ruleset **out)
{
    struct wa_buf errors;
    struct wa_error error = {0};
    enum wa_err err;

    if (path == NULL || path[0] == '\0') {
        return rt_rules_parse("{\"rules\":[]}", 12, "(none)", out, NULL, NULL);
    }
    wa_buf_init(&errors, 64 * 1024);
    if ((err = rt_rules_load(path, out, &errors, &error)) != WA_OK) {
        fprintf(stderr, "wa-router --replay: %s\n%s", error.message,
                errors.data != NULL ? errors.data : "");
    }
    wa_buf_cleanup(&errors);
    return err;
}

int
rt_replay_main(int argc, char **argv)
{
    struct rt_config cfg = {0};
    struct replay rp = {0};
    struct wa_kafka_config kc = {0};
    struct wa_error error = {0};
    char topic[192], group[64], ulid[WA_ULID_LEN];
    const char *topics[1] = {topic}, *candidate = NULL;
    int rc = 2;

    rp.idle_ms = 5000;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            rp.limit = strtoll(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--idle-ms") == 0 && i + 1 < argc) {
            rp.idle_ms = strtoll(argv[++i], NULL, 10);
        } else if (argv[i][0] != '-' && candidate == NULL) {
            candidate = argv[i];
        } else {
            candidate = NULL;
            break;
        }
    }
    if (candidate == NULL || rp.idle_ms <= 0 || rp.limit < 0) {
        fprintf(stderr, "usage: wa-router --replay CANDIDATE.json [--limit N] [--idle-ms MS]\n"
                        "  compares WA_ROUTER_RULES (current) with CANDIDATE.json over the "
                        "archived <prefix>webhook.raw traffic; acts on nothing\n");
        return 2;
    }
    wa_log_set_fd(2);
    wa_log_init("wa-router-replay", WA_LOG_WARN);
    if (wa_cfg_load(rt_config_spec, rt_config_nspec, &cfg, lookup, NULL, &error) != WA_OK) {
        fprintf(stderr, "wa-router --replay: configuration error: %s\n", error.message);
        goto out;
    }
    if (load(cfg.rules_path, &rp.current) != WA_OK || load(candidate, &rp.candidate) != WA_OK) {
        goto out;
    }
    rc = 1;
    if (wa_loop_new(&rp.loop) != WA_OK) {
        goto out;
    }
    kc.brokers = cfg.common.kafka_brokers;
    kc.topic_prefix = cfg.common.topic_prefix;
    kc.client_id = "wa-router-replay";
    wa_kafka_security_from_cfg(&cfg.common.kafka_security, &kc.security);
    wa_ulid_new(ulid);
    snprintf(group, sizeof(group), "wa-router-replay-%s", ulid);
    if (wa_kafka_topic(&kc, WA_TOPIC_WEBHOOK_RAW, topic, sizeof(topic)) != WA_OK ||
        wa_kafka_consumer_new(rp.loop, &kc, group, topics, 1, on_message, &rp, &rp.consumer,
                              &error) != WA_OK) {
        fprintf(stderr, "wa-router --replay: kafka: %s\n", error.message);
        goto out;
    }
    rp.timer = wa_timer_new(rp.loop, on_tick, &rp);
    if (rp.timer == NULL) {
        goto out;
    }
    /* the first records take a group join: allow at least 10 s before calling it idle */
    rp.last_ms = wa_clock_mono_ms() + (rp.idle_ms < 10000 ? (uint64_t)(10000 - rp.idle_ms) : 0);
    wa_timer_start(rp.timer, 100, 100);
    if (wa_loop_run(rp.loop) != WA_OK) {
        goto out;
    }
    printf("{\"summary\":{\"raw_events\":%lld,\"messages\":%lld,\"changed\":%lld,"
           "\"unparsed\":%lld}}\n",
           (long long)rp.raw, (long long)rp.messages, (long long)rp.changed,
           (long long)rp.unparsed);
    fflush(stdout);
    rc = 0;
out:
    wa_timer_free(rp.timer);
    wa_kafka_consumer_free(rp.consumer);
    for (size_t i = 0; i < ASSEMBLIES_MAX; i++) {
        wa_buf_cleanup(&rp.asm_[i].body);
    }
    wa_loop_free(rp.loop);
    rt_rules_unref(rp.current);
    rt_rules_unref(rp.candidate);
    wa_cfg_cleanup(rt_config_spec, rt_config_nspec, &cfg);
    wa_kafka_wait_destroyed(5000);
    return rc;
}
