/*
 * router_test.c: wa-router as a binary against the real Kafka and Redis (WA_KAFKA_BROKERS,
 * WA_REDIS_URL), on a unique topic and key prefix.
 *
 * The test produces inbound.message events (the shape wa-ingest produces), and reads what the
 * router publishes (outbound.request, handoff, contact.command, router.crm.dlq); a local HTTP
 * receiver plays the CRM (failing on demand). Covered: the price auto-reply with variables and
 * the 24 h window key, idempotency per message id, per-conversation order, opt-out (Latin and
 * Arabic), hand-off with a tag, CRM forwarding with signature, retries after 500, the leaky
 * bucket, a dead letter for a rejected record, reminders on a compressed clock (fired,
 * cancelled by an inbound message, cancelled by a business reply, not cancelled by the
 * router's own reply), shadow replay over webhook.raw, a rules file with errors, SIGHUP
 * reload (good and bad), and SIGTERM with hundreds of messages in flight (exit 0, none lost). The full chain with wa-ingest, wa-notify and wa-cloudsim is in
 * router_e2e_test.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wa/buf.h"
#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract.h"
#include "wa/crypto.h"
#include "wa/httpd.h"
#include "wa/id.h"
#include "wa/json.h"
#include "wa/kafka.h"
#include "wa/kv.h"
#include "wa_test.h"
#include "wa_test_proc.h"

#define PNID        "100000000000001"
#define CRM_SECRET  "crm-test-secret"
#define MAX_EVENTS  4096
#define MAX_CRM     64
#define DELAY_SCALE "172800" /* 48 h of rules time = 1 s of test time */

struct event {
    char topic[32]; /* after the prefix */
    json_t *data;
};

struct crm_hit {
    uint64_t at_ms;
    char delivery[128];
    int attempt;
    bool signed_ok;
    char *body;
};

static struct {
    char prefix[48];
    char dir[128];
    char rules[192];
    char log[192];
    struct wa_loop *loop;
    struct wa_kafka_producer *producer;
    struct wa_kafka_consumer *consumer;
    struct wa_kv *kv;
    struct wa_httpd *crm;
    int crm_port;
    int crm_fail;
    struct event events[MAX_EVENTS];
    size_t nevents;
    struct crm_hit hits[MAX_CRM];
    size_t nhits;
    pid_t router;
    int router_port;
} T;

/* ---- processes ---- */

static pid_t
spawn_router(const char *rules, const char *log, const char *const *extra_argv)
{
    char bin[512], e[8][256];
    const char *argv[8] = {bin};
    const char *envp[10];
    size_t i;

    wa_test_bin_path("wa-router", bin, sizeof(bin));
    for (i = 0; extra_argv != NULL && extra_argv[i] != NULL && i < 6; i++) {
        argv[i + 1] = extra_argv[i];
    }
    argv[i + 1] = NULL;
    T.router_port = wa_test_free_port();
    snprintf(e[0], sizeof(e[0]), "WA_KAFKA_BROKERS=%s", wa_test_env("WA_KAFKA_BROKERS"));
    snprintf(e[1], sizeof(e[1]), "WA_REDIS_URL=%s", wa_test_env("WA_REDIS_URL"));
    snprintf(e[2], sizeof(e[2]), "WA_TOPIC_PREFIX=%s", T.prefix);
    snprintf(e[3], sizeof(e[3]), "WA_LISTEN=127.0.0.1:%d", T.router_port);
    snprintf(e[4], sizeof(e[4]), "WA_ROUTER_RULES=%s", rules);
    snprintf(e[5], sizeof(e[5]), "WA_ROUTER_DELAY_SCALE=%s", DELAY_SCALE);
    snprintf(e[6], sizeof(e[6]), "WA_TEST_CRM_SECRET=%s", CRM_SECRET);
    snprintf(e[7], sizeof(e[7]), "WA_ROUTER_TICK=50ms");
    for (i = 0; i < 8; i++) {
        envp[i] = e[i];
    }
    envp[8] = "WA_ROUTER_RETRY=200ms";
    envp[9] = NULL;
    return wa_test_spawn(argv, envp, log, 0);
}

static bool
log_has(const char *path, const char *needle)
{
    size_t len;
    char *text = wa_test_read_file(path, &len);
    bool found = text != NULL && strstr(text, needle) != NULL;

    free(text);
    return found;
}

struct log_wait {
    const char *path, *needle;
};

static bool
cond_log(void *arg)
{
    struct log_wait *lw = arg;
    return log_has(lw->path, lw->needle);
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- the CRM receiver ---- */

/* What a receiver checks: the signature covers "<timestamp>.<delivery>.<body>", and the
 * timestamp is recent (a replayed old delivery is refused). */
static bool
crm_signature_ok(struct wa_http_req *req, const char *sig, const char *body, size_t len,
                 const char *const *secrets)
{
    const char *ts = wa_http_req_header(req, "X-Wabridge-Timestamp");
    const char *delivery = wa_http_req_header(req, "X-Wabridge-Delivery");
    long long now = (long long)(wa_clock_wall_ms() / 1000), t;
    struct wa_buf signed_text;
    bool ok;

    if (ts == NULL || delivery == NULL) {
        return false;
    }
    t = strtoll(ts, NULL, 10);
    if (t < now - 300 || t > now + 300) {
        return false;
    }
    wa_buf_init(&signed_text, 0);
    wa_buf_printf(&signed_text, "%s.%s.", ts, delivery);
    wa_buf_append(&signed_text, body, len);
    ok = wa_hub_signature_verify(sig, signed_text.data, signed_text.len, secrets, 1, NULL) ==
             WA_OK &&
         wa_hub_signature_verify(sig, body, len, secrets, 1, NULL) != WA_OK;
    wa_buf_cleanup(&signed_text);
    return ok;
}

static void
on_crm(struct wa_http_req *req, void *arg)
{
    size_t len;
    const char *body = wa_http_req_body(req, &len);
    const char *sig = wa_http_req_header(req, "X-Wabridge-Signature-256");
    const char *secrets[1] = {CRM_SECRET};
    struct crm_hit *h;

    (void)arg;
    if (strcmp(wa_http_req_path(req), "/reject") == 0) {
        wa_http_reply_json(req, 400, "{\"error\":\"unknown customer\"}");
        return;
    }
    if (T.nhits < MAX_CRM) {
        h = &T.hits[T.nhits++];
        h->at_ms = wa_clock_mono_ms();
        snprintf(h->delivery, sizeof(h->delivery), "%s",
                 wa_http_req_header(req, "X-Wabridge-Delivery") != NULL
                     ? wa_http_req_header(req, "X-Wabridge-Delivery")
                     : "");
        h->attempt = wa_http_req_header(req, "X-Wabridge-Attempt") != NULL
                         ? (int)strtol(wa_http_req_header(req, "X-Wabridge-Attempt"), NULL, 10)
                         : 0;
        h->signed_ok = crm_signature_ok(req, sig, body, len, secrets);
        h->body = strndup(body, len);
    }
    if (T.crm_fail > 0) {
        T.crm_fail--;
        wa_http_reply_json(req, 500, "{\"error\":\"try later\"}");
        return;
    }
    wa_http_reply_json(req, 200, "{\"ok\":true}");
}

/* ---- Kafka ---- */

static void
on_event(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct wa_cloudevent_doc *doc = NULL;

    (void)arg;
    if (T.nevents < MAX_EVENTS && wa_cloudevent_decode(msg->value, msg->len, &doc, NULL) == WA_OK) {
        struct event *e = &T.events[T.nevents++];
        snprintf(e->topic, sizeof(e->topic), "%s", msg->topic + strlen(T.prefix));
        e->data = json_incref(doc->ev.data);
    }
    wa_cloudevent_doc_free(doc);
    wa_kafka_consumer_done(c, msg);
}

static void
produce(const char *topic, const char *type, const char *subject, json_t *data)
{
    struct wa_kafka_config kc = {.brokers = wa_test_env("WA_KAFKA_BROKERS"),
                                 .topic_prefix = T.prefix};
    struct wa_cloudevent ev;
    char full[128];

    wa_kafka_topic(&kc, topic, full, sizeof(full));
    wa_cloudevent_init(&ev, "router-test", type);
    ev.subject = subject;
    ev.phonenumberid = PNID;
    ev.data = data;
    assert_int_equal(wa_kafka_produce_event(T.producer, full, &ev, NULL, NULL), WA_OK);
    json_decref(data);
}

static json_t *
inbound_data(const char *wamid, const char *from, const char *type, json_t *body, int64_t ts_s)
{
    char ts[24];

    snprintf(ts, sizeof(ts), "%lld", (long long)ts_s);
    return json_pack(
        "{s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:n,s:{s:{s:s},s:s},s:{s:s,s:s,s:s,s:s,s:o}}", "wamid",
        wamid, "type", type, "timestamp", (json_int_t)ts_s, "phone_number_id", PNID,
        "display_phone_number", "15550000001", "waba_id", "200000000000001", "contact", from,
        "from", from, "from_user_id", "profile", "profile", "name", "Ada Lovelace", "wa_id", from,
        "message", "from", from, "id", wamid, "timestamp", ts, "type", type, type, body);
}

static void
send_text(const char *wamid, const char *from, const char *text)
{
    char conv[128];

    snprintf(conv, sizeof(conv), PNID ":%s", from);
    produce(WA_TOPIC_INBOUND_MESSAGE, WA_CE_TYPE_INBOUND_MESSAGE, conv,
            inbound_data(wamid, from, "text", json_pack("{s:s}", "body", text),
                         (int64_t)(wa_clock_wall_ms() / 1000)));
}

/* Events on topic (after the prefix) about contact, whose data field key equals value
 * (key NULL: any). Returns how many; *first receives the first one. */
static size_t
count_events(const char *topic, const char *contact, const char *key, const char *value,
             const json_t **first)
{
    size_t n = 0;

    for (size_t i = 0; i < T.nevents; i++) {
        const json_t *d = T.events[i].data;
        const char *who =
            wa_json_str(d, "to") != NULL ? wa_json_str(d, "to") : wa_json_str(d, "contact");
        const char *v = key != NULL ? wa_json_path_str(d, key) : NULL;

        if (strcmp(T.events[i].topic, topic) != 0 || who == NULL || strcmp(who, contact) != 0) {
            continue;
        }
        if (key != NULL && (v == NULL || strcmp(v, value) != 0)) {
            continue;
        }
        if (n++ == 0 && first != NULL) {
            *first = d;
        }
    }
    return n;
}

struct want {
    const char *topic, *contact, *key, *value;
    size_t n;
};

static bool
cond_events(void *arg)
{
    struct want *w = arg;
    return count_events(w->topic, w->contact, w->key, w->value, NULL) >= w->n;
}

static const json_t *
await_event(const char *topic, const char *contact, const char *key, const char *value, size_t n,
            uint64_t timeout_ms)
{
    struct want w = {topic, contact, key, value, n};
    const json_t *first = NULL;

    if (!wa_test_run_until(T.loop, cond_events, &w, timeout_ms)) {
        fail_msg("no %zu %s event(s) for %s with %s=%s within %llu ms (router log %s)", n, topic,
                 contact, key != NULL ? key : "-", value != NULL ? value : "-",
                 (unsigned long long)timeout_ms, T.log);
    }
    count_events(topic, contact, key, value, &first);
    return first;
}

/* ---- rules ---- */

static void
write_rules(const char *price_text)
{
    char text[8192];

    snprintf(
        text, sizeof(text),
        "{\"version\":1,\"destinations\":{"
        "\"crm\":{\"url\":\"http://127.0.0.1:%d/crm\",\"allow_http\":true,"
        "\"secret_env\":\"WA_TEST_CRM_SECRET\","
        "\"rate_per_s\":5,\"burst\":1,\"max_attempts\":4,\"backoff_initial\":\"100ms\","
        "\"backoff_max\":\"400ms\"},"
        "\"reject\":{\"url\":\"http://127.0.0.1:%d/reject\",\"allow_http\":true,"
        "\"unsigned\":true,\"max_attempts\":3},"
        "\"greet\":{\"url\":\"http://127.0.0.1:%d/greet\",\"allow_http\":true,"
        "\"unsigned\":true}},"
        "\"rules\":["
        "{\"name\":\"greet-tag\",\"match\":{\"keywords\":{\"exact\":[\"hello there\"]},"
        " \"tags_none\":[\"greeted\"]},\"then\":\"continue\","
        " \"actions\":[{\"tag\":[\"greeted\"]},{\"forward\":\"greet\"}]},"
        "{\"name\":\"greet-reply\",\"match\":{\"keywords\":{\"exact\":[\"hello there\"]},"
        " \"tags_none\":[\"greeted\"]},\"actions\":[{\"reply\":{\"text\":\"welcome\"}}]},"
        "{\"name\":\"opt-out\",\"match\":{\"keywords\":{\"exact\":[\"stop\",\"إلغاء\"]}},"
        " \"actions\":[{\"opt_out\":true},{\"reply\":{\"text\":\"unsubscribed\"}}]},"
        "{\"name\":\"price\",\"match\":{\"type\":\"text\",\"keywords\":{\"contains\":[\"price\"]}},"
        " \"actions\":[{\"reply\":{\"text\":\"Hi {{first_name}}, %s\",\"quote\":true}}]},"
        "{\"name\":\"agent\",\"match\":{\"keywords\":{\"exact\":[\"agent\"]}},"
        " \"actions\":[{\"handoff\":{\"queue\":\"support\",\"priority\":\"high\"}},"
        "  {\"tag\":[\"wants-agent\"]}]},"
        "{\"name\":\"crm\",\"match\":{\"keywords\":{\"prefix\":[\"crm\"]}},"
        " \"actions\":[{\"forward\":\"crm\"}]},"
        "{\"name\":\"reject\",\"match\":{\"keywords\":{\"prefix\":[\"reject\"]}},"
        " \"actions\":[{\"forward\":\"reject\"}]},"
        "{\"name\":\"silent\",\"match\":{\"keywords\":{\"exact\":[\"remind me\"]}},"
        " \"actions\":[{\"remind\":{\"id\":\"silent48\",\"after\":\"48h\",\"cancel_on\":"
        "\"inbound\","
        "  \"actions\":[{\"tag\":[\"silent-48h\"]}]}}]},"
        "{\"name\":\"escalate\",\"match\":{\"keywords\":{\"exact\":[\"escalate me\"]}},"
        " \"actions\":[{\"remind\":{\"id\":\"noreply\",\"after\":\"48h\","
        "  \"cancel_on\":\"business_reply\",\"actions\":[{\"handoff\":{\"queue\":\"escalations\","
        "  \"priority\":\"high\"}}]}},"
        "  {\"remind\":{\"id\":\"marker\",\"after\":\"96h\",\"cancel_on\":\"never\","
        "  \"actions\":[{\"tag\":[\"marker\"]}]}}]}"
        "]}",
        T.crm_port, T.crm_port, T.crm_port, price_text);
    write_file(T.rules, text);
}

/* ---- setup ---- */

static int
setup(void **state)
{
    struct wa_kafka_config kc = {0};
    struct wa_kv_config kvc = {0};
    struct wa_httpd_config hc = {.listen = "127.0.0.1:0", .service = "crm-test"};
    char topics[6][128];
    const char *tp[6] = {topics[0], topics[1], topics[2], topics[3], topics[4], topics[5]};
    const char *names[6] = {WA_TOPIC_OUTBOUND_REQUEST, WA_TOPIC_HANDOFF,
                            WA_TOPIC_CONTACT_COMMAND,  WA_TOPIC_ROUTER_CRM_DLQ,
                            WA_TOPIC_INBOUND_MESSAGE,  WA_TOPIC_WEBHOOK_RAW};
    struct log_wait lw;

    (void)state;
    memset(&T, 0, sizeof(T));
    wa_test_unique_prefix(T.prefix, sizeof(T.prefix));
    snprintf(T.dir, sizeof(T.dir), "/tmp/wa-router-test-%d", (int)getpid());
    mkdir(T.dir, 0755);
    snprintf(T.rules, sizeof(T.rules), "%s/rules.json", T.dir);
    snprintf(T.log, sizeof(T.log), "%s/router.log", T.dir);
    assert_int_equal(wa_loop_new(&T.loop), WA_OK);
    kc.brokers = wa_test_env("WA_KAFKA_BROKERS");
    kc.topic_prefix = T.prefix;
    kc.linger_us = 1000;
    for (int i = 0; i < 6; i++) {
        wa_kafka_topic(&kc, names[i], topics[i], sizeof(topics[i]));
    }
    assert_int_equal(wa_kafka_topics_ensure(&kc, tp, 6, 4, 20000, NULL), WA_OK);
    assert_int_equal(wa_kafka_producer_new(T.loop, &kc, &T.producer, NULL), WA_OK);
    assert_int_equal(
        wa_kafka_consumer_new(T.loop, &kc, "router-test", tp, 4, on_event, NULL, &T.consumer, NULL),
        WA_OK);
    kvc.url = wa_test_env("WA_REDIS_URL");
    assert_int_equal(wa_kv_new(T.loop, &kvc, &T.kv, NULL), WA_OK);
    assert_int_equal(wa_httpd_new(T.loop, &hc, &T.crm, NULL), WA_OK);
    assert_int_equal(wa_httpd_route(T.crm, "POST", "/*", 0, on_crm, NULL), WA_OK);
    assert_int_equal(wa_httpd_start(T.crm, NULL), WA_OK);
    T.crm_port = wa_httpd_port(T.crm);
    write_rules("price list v1");
    T.router = spawn_router(T.rules, T.log, NULL);
    lw.path = T.log;
    lw.needle = "ready on";
    assert_true(wa_test_run_until(T.loop, cond_log, &lw, 30000));
    /* both sides' consumers joined once a probe message made the round trip */
    send_text("wamid.probe", "19990000000", "price probe");
    await_event(WA_TOPIC_OUTBOUND_REQUEST, "19990000000", NULL, NULL, 1, 60000);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    if (T.router > 0) {
        assert_int_equal(wa_test_stop(T.router, SIGTERM, 10000), 0);
    }
    for (size_t i = 0; i < T.nevents; i++) {
        json_decref(T.events[i].data);
    }
    for (size_t i = 0; i < T.nhits; i++) {
        free(T.hits[i].body);
    }
    wa_kafka_consumer_free(T.consumer);
    wa_kafka_producer_free(T.producer);
    wa_kv_free(T.kv);
    wa_httpd_free(T.crm);
    wa_loop_free(T.loop);
    wa_kafka_wait_destroyed(5000);
    return 0;
}

/* ---- tests ---- */

struct kv_get {
    bool done;
    char value[64];
    long long pttl;
};

static void
on_get(void *arg, enum wa_err err, const char *value, size_t len)
{
    struct kv_get *g = arg;

    (void)len;
    if (err == WA_OK) {
        snprintf(g->value, sizeof(g->value), "%s", value);
    }
    g->done = true;
}

static void
on_pttl(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct kv_get *g = arg;

    g->pttl = err == WA_OK ? wa_kv_reply_int(reply) : -3;
    g->done = true;
}

static bool
cond_done(void *arg)
{
    return ((struct kv_get *)arg)->done;
}

static void
price__inbound_text__reply_with_name_quote_and_window(void **state)
{
    int64_t ts = (int64_t)(wa_clock_wall_ms() / 1000) - 5;
    const json_t *req;
    struct kv_get g = {0};
    char key[128];
    const char *argv[2] = {"PTTL", key};

    (void)state;
    produce(WA_TOPIC_INBOUND_MESSAGE, WA_CE_TYPE_INBOUND_MESSAGE, PNID ":16505550101",
            inbound_data("wamid.P1", "16505550101", "text",
                         json_pack("{s:s}", "body", "What is the PRÎCE?"), ts));
    req = await_event(WA_TOPIC_OUTBOUND_REQUEST, "16505550101", NULL, NULL, 1, 10000);
    assert_string_equal(wa_json_str(req, "type"), "text");
    assert_string_equal(wa_json_path_str(req, "text.body"), "Hi Ada, price list v1");
    assert_string_equal(wa_json_path_str(req, "context.message_id"), "wamid.P1");
    assert_string_equal(wa_json_str(req, "phone_number_id"), PNID);
    assert_string_equal(wa_json_path_str(req, "metadata.rule"), "price");
    assert_string_equal(wa_json_str(req, "request_id"), "rt:wamid.P1:price:0");
    /* the 24 h window: last inbound time (the message's own), expiring 24 h after it */
    snprintf(key, sizeof(key), "%swin:" PNID ":16505550101", T.prefix);
    assert_int_equal(wa_kv_get(T.kv, key, on_get, &g), WA_OK);
    assert_true(wa_test_run_until(T.loop, cond_done, &g, 5000));
    assert_int_equal(strtoll(g.value, NULL, 10), ts * 1000);
    g.done = false;
    assert_int_equal(wa_kv_command_argv(T.kv, 2, argv, NULL, on_pttl, &g), WA_OK);
    assert_true(wa_test_run_until(T.loop, cond_done, &g, 5000));
    assert_true(g.pttl > 86400000LL - 5000 - 60000 && g.pttl <= 86400000LL - 5000 + 1000);
}

static void
idempotency__same_wamid_twice__one_reply_and_order_kept(void **state)
{
    const char *c = "16505550102";
    char wamid[32];
    size_t n = 0;

    (void)state;
    send_text("wamid.D1", c, "price");
    send_text("wamid.D1", c, "price"); /* Kafka or Meta redelivery: a new event, same wamid */
    for (int i = 2; i <= 6; i++) {
        snprintf(wamid, sizeof(wamid), "wamid.D%d", i);
        send_text(wamid, c, "price please");
    }
    await_event(WA_TOPIC_OUTBOUND_REQUEST, c, NULL, NULL, 6, 15000);
    /* the duplicate came before D2..D6 in the conversation, so it would be here by now */
    for (size_t i = 0; i < T.nevents; i++) {
        const char *to = wa_json_str(T.events[i].data, "to");
        if (strcmp(T.events[i].topic, WA_TOPIC_OUTBOUND_REQUEST) != 0 || to == NULL ||
            strcmp(to, c) != 0) {
            continue;
        }
        n++;
        snprintf(wamid, sizeof(wamid), "wamid.D%zu", n);
        assert_string_equal(wa_json_path_str(T.events[i].data, "metadata.wamid"), wamid);
    }
    assert_int_equal(n, 6);
}

static void
opt_out__stop_and_arabic__command_and_confirmation(void **state)
{
    const json_t *cmd;

    (void)state;
    send_text("wamid.S1", "16505550103", "STOP!");
    send_text("wamid.S2", "16505550104", "إِلْغَاء");
    cmd = await_event(WA_TOPIC_CONTACT_COMMAND, "16505550103", "command", "opt_out", 1, 10000);
    assert_string_equal(wa_json_str(cmd, "reason"), "opt-out");
    assert_string_equal(wa_json_str(cmd, "wamid"), "wamid.S1");
    await_event(WA_TOPIC_OUTBOUND_REQUEST, "16505550103", "text.body", "unsubscribed", 1, 10000);
    await_event(WA_TOPIC_CONTACT_COMMAND, "16505550104", "command", "opt_out", 1, 10000);
}

static void
handoff__agent__queue_priority_and_tag(void **state)
{
    const json_t *h, *tag;

    (void)state;
    send_text("wamid.H1", "16505550105", "Agent");
    h = await_event(WA_TOPIC_HANDOFF, "16505550105", NULL, NULL, 1, 10000);
    assert_string_equal(wa_json_str(h, "queue"), "support");
    assert_string_equal(wa_json_str(h, "priority"), "high");
    assert_string_equal(wa_json_str(h, "text"), "Agent");
    assert_string_equal(wa_json_str(h, "profile_name"), "Ada Lovelace");
    tag = await_event(WA_TOPIC_CONTACT_COMMAND, "16505550105", "command", "tag", 1, 10000);
    assert_string_equal(json_string_value(json_array_get(json_object_get(tag, "tags"), 0)),
                        "wants-agent");
}

static bool
cond_hits(void *arg)
{
    return T.nhits >= *(size_t *)arg;
}

static void
crm__500_twice__retried_with_same_delivery_and_signed(void **state)
{
    size_t want = 3;

    (void)state;
    T.nhits = 0;
    T.crm_fail = 2;
    send_text("wamid.C1", "16505550106", "crm: please call me");
    assert_true(wa_test_run_until(T.loop, cond_hits, &want, 15000));
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(T.hits[i].delivery, "wamid.C1:crm:0");
        assert_int_equal(T.hits[i].attempt, (int)i + 1);
        assert_true(T.hits[i].signed_ok);
        assert_non_null(strstr(T.hits[i].body, "\"wamid\":\"wamid.C1\""));
        assert_non_null(strstr(T.hits[i].body, "\"type\":\"wa.router.forward.v1\""));
    }
    /* back-off: at least about backoff_initial between attempts (jitter is +-20 %) */
    assert_true(T.hits[1].at_ms - T.hits[0].at_ms >= 70);
    for (size_t i = 0; i < T.nhits; i++) {
        free(T.hits[i].body);
    }
    T.nhits = 0;
}

static void
crm__burst_of_records__leaky_bucket_spaces_requests(void **state)
{
    size_t want = 6;
    char wamid[32], from[32];
    uint64_t span;

    (void)state;
    T.nhits = 0;
    T.crm_fail = 0;
    for (int i = 0; i < 6; i++) {
        snprintf(wamid, sizeof(wamid), "wamid.R%d", i);
        snprintf(from, sizeof(from), "165055502%02d", i);
        send_text(wamid, from, "crm update");
    }
    assert_true(wa_test_run_until(T.loop, cond_hits, &want, 20000));
    /* 5 requests/s with a burst of 1: six requests need at least five intervals of 200 ms */
    span = T.hits[5].at_ms - T.hits[0].at_ms;
    assert_true(span >= 5 * 200 - 100);
    for (size_t i = 1; i < 6; i++) {
        assert_true(T.hits[i].at_ms - T.hits[i - 1].at_ms >= 150);
    }
    for (size_t i = 0; i < T.nhits; i++) {
        free(T.hits[i].body);
    }
    T.nhits = 0;
}

static void
crm__rejected_with_400__dead_lettered(void **state)
{
    const json_t *dlq = NULL;

    (void)state;
    send_text("wamid.X1", "16505550107", "reject me");
    /* dead letters carry the record, not a top-level contact */
    for (uint64_t end = wa_clock_mono_ms() + 10000; dlq == NULL && wa_clock_mono_ms() < end;) {
        wa_test_run_for(T.loop, 50);
        for (size_t i = 0; i < T.nevents; i++) {
            if (strcmp(T.events[i].topic, WA_TOPIC_ROUTER_CRM_DLQ) == 0) {
                dlq = T.events[i].data;
            }
        }
    }
    assert_non_null(dlq);
    assert_string_equal(wa_json_str(dlq, "reason"), "rejected");
    assert_string_equal(wa_json_str(dlq, "destination"), "reject");
    assert_int_equal(json_integer_value(json_object_get(dlq, "last_status")), 400);
    assert_string_equal(wa_json_path_str(dlq, "record.wamid"), "wamid.X1");
}

static void
reminders__compressed_clock__fire_and_cancel(void **state)
{
    const json_t *h;
    json_t *result;

    (void)state;
    /* fires: 48 h of silence = 1 s here */
    send_text("wamid.M1", "16505550301", "remind me");
    /* cancelled by a later inbound message */
    send_text("wamid.M2", "16505550302", "remind me");
    send_text("wamid.M3", "16505550302", "thanks");
    /* cancelled by a business reply; the marker (never cancelled, 2 s) shows time passed */
    send_text("wamid.M4", "16505550303", "escalate me");
    /* not cancelled: the only reply seen is the router's own */
    send_text("wamid.M5", "16505550304", "escalate me");
    wa_test_run_for(T.loop, 300);
    result = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i}", "request_id", "crm-agent-reply-1",
                       "phone_number_id", PNID, "to", "+16505550303", "status", "accepted", "wamid",
                       "wamid.OUT1", "attempts", 1);
    produce(WA_TOPIC_OUTBOUND_RESULT, "wa.outbound.result.v1", PNID ":16505550303", result);
    result = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i}", "request_id", "rt:wamid.M5:price:0",
                       "phone_number_id", PNID, "to", "16505550304", "status", "accepted", "wamid",
                       "wamid.OUT2", "attempts", 1);
    produce(WA_TOPIC_OUTBOUND_RESULT, "wa.outbound.result.v1", PNID ":16505550304", result);

    await_event(WA_TOPIC_CONTACT_COMMAND, "16505550301", "tags.0", "silent-48h", 1, 10000);
    h = await_event(WA_TOPIC_HANDOFF, "16505550304", NULL, NULL, 1, 10000);
    assert_string_equal(wa_json_str(h, "queue"), "escalations");
    assert_string_equal(wa_json_str(h, "reason"), "escalate");
    /* both markers (2 s) after the 1 s reminders had their chance */
    await_event(WA_TOPIC_CONTACT_COMMAND, "16505550303", "tags.0", "marker", 1, 10000);
    await_event(WA_TOPIC_CONTACT_COMMAND, "16505550304", "tags.0", "marker", 1, 10000);
    assert_int_equal(count_events(WA_TOPIC_HANDOFF, "16505550303", NULL, NULL, NULL), 0);
    /* the cancelled silence reminder was due at 1 s: the 2 s markers prove time passed */
    assert_int_equal(
        count_events(WA_TOPIC_CONTACT_COMMAND, "16505550302", "tags.0", "silent-48h", NULL), 0);
}

static void
replay__candidate_rules__prints_changed_decisions_only(void **state)
{
    struct wa_contract_raw_meta meta = {0};
    json_t *parts[2];
    size_t n = 0;
    char body[2048], cand[256], out[256], now[WA_RFC3339_LEN];
    const char *argv[] = {"--replay", cand, "--idle-ms", "3000", NULL};
    pid_t pid;
    char *text;
    size_t len;

    (void)state;
    snprintf(body, sizeof(body),
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"200000000000001\","
             "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
             "\"metadata\":{\"display_phone_number\":\"15550000001\",\"phone_number_id\":\"" PNID
             "\"},\"contacts\":[{\"profile\":{\"name\":\"Bo\"},\"wa_id\":\"16505550401\"}],"
             "\"messages\":[{\"from\":\"16505550401\",\"id\":\"wamid.RP1\",\"timestamp\":\"%lld\","
             "\"type\":\"text\",\"text\":{\"body\":\"price?\"}},"
             "{\"from\":\"16505550401\",\"id\":\"wamid.RP2\",\"timestamp\":\"%lld\","
             "\"type\":\"text\",\"text\":{\"body\":\"agent\"}}]}}]}]}",
             (long long)(wa_clock_wall_ms() / 1000), (long long)(wa_clock_wall_ms() / 1000));
    wa_clock_rfc3339(wa_clock_wall_ms(), now);
    meta.raw_id = "raw-1";
    meta.received_at = now;
    meta.parsed = true;
    assert_int_equal(wa_contract_raw_data(&meta, body, strlen(body), parts, 2, &n), WA_OK);
    produce(WA_TOPIC_WEBHOOK_RAW, WA_CE_TYPE_WEBHOOK_RAW, PNID, parts[0]);
    wa_test_run_for(T.loop, 200);
    /* the candidate drops the price rule; "agent" decides the same */
    snprintf(cand, sizeof(cand), "%s/candidate.json", T.dir);
    write_file(cand, "{\"rules\":[{\"name\":\"agent\",\"match\":{\"keywords\":{\"exact\":"
                     "[\"agent\"]}},\"actions\":[{\"handoff\":{\"queue\":\"support\","
                     "\"priority\":\"high\"}},{\"tag\":[\"wants-agent\"]}]}]}");
    snprintf(out, sizeof(out), "%s/replay.out", T.dir);
    pid = spawn_router(T.rules, out, argv);
    assert_int_equal(wa_test_wait_exit(pid, 60000), 0);
    text = wa_test_read_file(out, &len);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"wamid\":\"wamid.RP1\""));
    assert_non_null(strstr(text, "\"current\":[{\"rule\":\"price\",\"actions\":[\"reply\"]}]"));
    assert_non_null(strstr(text, "\"candidate\":[]"));
    assert_null(strstr(text, "wamid.RP2"));
    assert_non_null(strstr(text, "\"messages\":2,\"changed\":1"));
    free(text);
}

static void
rules__file_with_errors__start_fails_naming_rule_and_field(void **state)
{
    char bad[256], log[256];
    pid_t pid;

    (void)state;
    snprintf(bad, sizeof(bad), "%s/bad.json", T.dir);
    snprintf(log, sizeof(log), "%s/bad.log", T.dir);
    write_file(bad, "{\"rules\":[{\"name\":\"ok\",\"actions\":[{\"tag\":\"x\"}]},"
                    "{\"name\":\"price\",\"match\":{\"keywords\":{\"exact\":[42]}},"
                    "\"actions\":[{\"reply\":{\"txt\":\"hi\"}}]}]}");
    pid = spawn_router(bad, log, NULL);
    assert_int_equal(wa_test_wait_exit(pid, 30000), 1);
    assert_true(log_has(log, "rule 1 \\\"price\\\": match.keywords.exact[0]: must be a "
                             "non-empty string"));
    assert_true(log_has(log, "rule 1 \\\"price\\\": actions[0].reply.txt: unknown key"));
}

static void
on_cmd(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    (void)reply;
    *(int *)arg = err == WA_OK ? 1 : -1;
}

static bool
cond_flag(void *arg)
{
    return *(int *)arg != 0;
}

/* One Redis command of the test (argc words), answered OK. */
static void
kv_command(int argc, const char **argv)
{
    int done = 0;

    assert_int_equal(wa_kv_command_argv(T.kv, argc, argv, NULL, on_cmd, &done), WA_OK);
    assert_true(wa_test_run_until(T.loop, cond_flag, &done, 5000));
    assert_int_equal(done, 1);
}

/* kill -9 after the router applied a message's own tag but before the offset commit: the
 * redelivered message must get the first decision (the reply), not one made against the tag
 * it wrote itself. Deterministic: the CRM queue of destination "greet" is made a string, so
 * the forward beside the tag keeps failing (the message retries in process, its tag applied,
 * its reply rule not reached yet); the router is killed there, the queue repaired, and a new
 * router gets the message again. */
static void
crash__killed_after_own_tag_before_commit__redelivery_keeps_decision(void **state)
{
    const char *from = "16505550701";
    char key[128];
    const char *set[3] = {"SET", key, "not-a-hash"}, *del[2] = {"DEL", key};
    struct log_wait lw = {T.log, "message wamid.CRASH1: actions failed"};

    (void)state;
    snprintf(key, sizeof(key), "%srt:crmd:greet", T.prefix);
    kv_command(3, set);
    send_text("wamid.CRASH1", from, "hello there");
    await_event(WA_TOPIC_CONTACT_COMMAND, from, "command", "tag", 1, 30000);
    assert_true(wa_test_run_until(T.loop, cond_log, &lw, 30000)); /* retrying, tag applied */
    assert_int_equal(count_events(WA_TOPIC_OUTBOUND_REQUEST, from, NULL, NULL, NULL), 0);
    assert_int_equal(wa_test_stop(T.router, SIGKILL, 10000), 128 + SIGKILL);
    T.router = 0;
    kv_command(2, del);
    snprintf(T.log, sizeof(T.log), "%s/router-crash.log", T.dir);
    T.router = spawn_router(T.rules, T.log, NULL);
    await_event(WA_TOPIC_OUTBOUND_REQUEST, from, "text.body", "welcome", 1, 60000);
}

static void
reload__sighup__new_rules_used_and_bad_file_rejected(void **state)
{
    struct log_wait lw = {T.log, "rules reloaded"};

    (void)state;
    write_rules("price list v2");
    kill(T.router, SIGHUP);
    assert_true(wa_test_run_until(T.loop, cond_log, &lw, 10000));
    send_text("wamid.L1", "16505550501", "price");
    await_event(WA_TOPIC_OUTBOUND_REQUEST, "16505550501", "text.body", "Hi Ada, price list v2", 1,
                10000);
    write_file(T.rules, "{\"rules\":[{\"name\":\"broken\"}]}");
    kill(T.router, SIGHUP);
    lw.needle = "reload rejected";
    assert_true(wa_test_run_until(T.loop, cond_log, &lw, 10000));
    assert_true(log_has(T.log, "rule 0 \\\"broken\\\": actions: 1 to 16 actions required"));
    send_text("wamid.L2", "16505550502", "price");
    await_event(WA_TOPIC_OUTBOUND_REQUEST, "16505550502", "text.body", "Hi Ada, price list v2", 1,
                10000);
}

#define LOAD_N 400

struct replied {
    size_t want;
};

/* Contacts 1650556<i> (i < LOAD_N) with at least one reply. */
static size_t
load_replied(void)
{
    size_t n = 0;
    char from[32];

    for (size_t i = 0; i < LOAD_N; i++) {
        snprintf(from, sizeof(from), "1650556%04zu", i);
        n += count_events(WA_TOPIC_OUTBOUND_REQUEST, from, NULL, NULL, NULL) > 0;
    }
    return n;
}

static bool
cond_replied(void *arg)
{
    return load_replied() >= ((struct replied *)arg)->want;
}

/* SIGTERM with messages in flight: they finish (the drain ends before WA_SHUTDOWN_TIMEOUT) and
 * the router exits 0 (ASan-clean); what it had not finished is processed by the next instance
 * of the group: every message is answered. */
static void
sigterm__under_load__in_flight_finished_exit_0_rest_after_restart(void **state)
{
    struct replied r = {10};
    char from[32], wamid[64];

    (void)state;
    write_rules("price list v3"); /* the file the restart reads (the last test broke it) */
    for (size_t i = 0; i < LOAD_N; i++) {
        snprintf(from, sizeof(from), "1650556%04zu", i);
        snprintf(wamid, sizeof(wamid), "wamid.LOAD%zu", i);
        send_text(wamid, from, "price");
    }
    assert_true(wa_test_run_until(T.loop, cond_replied, &r, 30000));
    assert_int_equal(wa_test_stop(T.router, SIGTERM, 15000), 0);
    T.router = 0;
    assert_true(log_has(T.log, "drained: no work in flight"));
    assert_false(log_has(T.log, "shutdown timeout reached"));
    print_message("replied before SIGTERM returned: %zu of %d\n", load_replied(), LOAD_N);
    snprintf(T.log, sizeof(T.log), "%s/router-2.log", T.dir);
    T.router = spawn_router(T.rules, T.log, NULL);
    r.want = LOAD_N;
    if (!wa_test_run_until(T.loop, cond_replied, &r, 60000)) {
        fail_msg("%zu of %d messages answered after the restart (log %s)", load_replied(), LOAD_N,
                 T.log);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(price__inbound_text__reply_with_name_quote_and_window),
        cmocka_unit_test(idempotency__same_wamid_twice__one_reply_and_order_kept),
        cmocka_unit_test(opt_out__stop_and_arabic__command_and_confirmation),
        cmocka_unit_test(handoff__agent__queue_priority_and_tag),
        cmocka_unit_test(crm__500_twice__retried_with_same_delivery_and_signed),
        cmocka_unit_test(crm__burst_of_records__leaky_bucket_spaces_requests),
        cmocka_unit_test(crm__rejected_with_400__dead_lettered),
        cmocka_unit_test(reminders__compressed_clock__fire_and_cancel),
        cmocka_unit_test(replay__candidate_rules__prints_changed_decisions_only),
        cmocka_unit_test(rules__file_with_errors__start_fails_naming_rule_and_field),
        cmocka_unit_test(crash__killed_after_own_tag_before_commit__redelivery_keeps_decision),
        cmocka_unit_test(reload__sighup__new_rules_used_and_bad_file_rejected),
        cmocka_unit_test(sigterm__under_load__in_flight_finished_exit_0_rest_after_restart),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
