/*
 * notify_test.c: wa-notify end to end, as subprocesses ($WA_BIN_DIR/wa-notify and wa-cloudsim
 * on free ports) against the real Kafka and Redis (WA_KAFKA_BROKERS, WA_REDIS_URL), each test
 * with its own WA_TOPIC_PREFIX. Requests are produced as CloudEvents with libs/kafka; the
 * checks read outbound.result / outbound.dlq and the simulator's GET /_sim/messages.
 *
 * The kill -9 test reports how many requests were sent twice (only requests in flight at the
 * kill may be) on stderr as "notify-kill9: ..." lines.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract.h"
#include "wa/contract_outbound.h"
#include "wa/json.h"
#include "wa/kafka.h"
#include "wa/kv.h"
#include "wa/optout.h"
#include "wa_test.h"
#include "wa_test_proc.h"

#define NUMBER   "100000000000001"
#define WAIT_MS  60000
#define MAX_SEEN 4096

struct seen {
    char request_id[64];
    char status[16];
    char reason[32];
    char wamid[128];
    long long code;
    long long attempts;
    bool fallback;
    size_t log_len;
    int count;
    uint64_t first_ms; /* wall clock of the first result */
};

struct fx {
    struct wa_loop *loop;
    struct wa_kafka_config kcfg;
    struct wa_kafka_producer *producer;
    struct wa_kafka_consumer *results;
    struct wa_kv *kv;
    char prefix[64];
    char topic_req[128], topic_res[128], topic_dlq[128];
    char group[128];
    int sim_port, nt_port;
    pid_t sim, nt;
    char sim_url[64], nt_url[64];
    pid_t nt2; /* a second instance, when a test starts one (stopped by teardown) */
    char nt2_url[64];
    char token_file[128];
    struct seen res[MAX_SEEN];
    size_t nres;
    struct seen dlq[MAX_SEEN];
    size_t ndlq;
    int acked;
};

static struct fx *F;

/* wa-notify settings a setup may change before start_notify (teardown restores them) */
static const char *nt_park_after = "30s", *nt_max_in_flight = "5000";

/* ---- processes ---- */

/* Starts WA_BIN_DIR/bin with env ("NAME", "value" pairs, NULL-ended) added; output in
 * /tmp/<bin>-<test pid>-<n>.log. */
static pid_t
spawn(const char *bin, const char *const *env)
{
    static int seq;
    char path[512], log[256], pairs[24][512];
    const char *argv[] = {path, NULL};
    const char *envp[25];
    size_t n = 0;

    wa_test_bin_path(bin, path, sizeof(path));
    snprintf(log, sizeof(log), "/tmp/%s-%d-%d.log", bin, (int)getpid(), ++seq);
    for (size_t i = 0; env[i] != NULL && n < 24; i += 2, n++) {
        snprintf(pairs[n], sizeof(pairs[n]), "%s=%s", env[i], env[i + 1]);
        envp[n] = pairs[n];
    }
    envp[n] = NULL;
    return wa_test_spawn(argv, envp, log, 0);
}

/* ---- HTTP (blocking libcurl easy: test side only) ---- */

static long
http(const char *method, const char *url, const char *body, struct wa_buf *out)
{
    static const char *const json[] = {"Content-Type: application/json", NULL};
    struct wa_test_http_req req = {
        .method = method, .url = url, .headers = json, .body = body, .timeout_ms = 5000};

    return wa_test_http(&req, out);
}

static void
sim_post(const char *path, const char *body)
{
    char url[256];

    snprintf(url, sizeof(url), "%s%s", F->sim_url, path);
    assert_int_equal(http("POST", url, body, NULL), 200);
}

/* Returns the simulator's accepted sends (new reference). */
static json_t *
sim_messages(void)
{
    char url[256];
    struct wa_buf b;
    json_t *root = NULL;

    snprintf(url, sizeof(url), "%s/_sim/messages?limit=100000", F->sim_url);
    wa_buf_init(&b, 0);
    assert_int_equal(http("GET", url, NULL, &b), 200);
    assert_int_equal(wa_json_parse(b.data, b.len, 0, &root, NULL), WA_OK);
    wa_buf_cleanup(&b);
    return root;
}

/* Number of simulator sends whose biz_opaque_callback_data is request_id. */
static int
sim_count(json_t *msgs, const char *request_id, json_t **last)
{
    json_t *data = json_object_get(msgs, "data"), *m;
    size_t i;
    int n = 0;

    json_array_foreach(data, i, m)
    {
        const char *biz = wa_json_str(m, "biz_opaque_callback_data");

        if (biz != NULL && strcmp(biz, request_id) == 0) {
            n++;
            if (last != NULL) {
                *last = m;
            }
        }
    }
    return n;
}

/* ---- Kafka ---- */

static void
on_ack(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    (void)partition;
    (void)offset;
    (void)arg;
    assert_int_equal(err, WA_OK);
    F->acked++;
}

static void
on_result(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct wa_cloudevent_doc *doc = NULL;
    bool dlq = strcmp(msg->topic, F->topic_dlq) == 0;
    struct seen *tab = dlq ? F->dlq : F->res;
    size_t *n = dlq ? &F->ndlq : &F->nres;

    (void)arg;
    if (wa_cloudevent_decode(msg->value, msg->len, &doc, NULL) == WA_OK) {
        const json_t *d = doc->ev.data;
        const char *id = wa_json_str(d, "request_id");
        struct seen *s = NULL;

        if (id == NULL) {
            id = ""; /* raw dead letters */
        }
        for (size_t i = 0; i < *n; i++) {
            if (strcmp(tab[i].request_id, id) == 0) {
                s = &tab[i];
            }
        }
        if (s == NULL && *n < MAX_SEEN) {
            s = &tab[(*n)++];
            memset(s, 0, sizeof(*s));
            snprintf(s->request_id, sizeof(s->request_id), "%s", id != NULL ? id : "");
            s->first_ms = wa_clock_wall_ms();
        }
        if (s != NULL) {
            const char *st = wa_json_str(d, "status"), *re = wa_json_str(d, "reason");
            const char *wamid = wa_json_str(d, "wamid");

            s->count++;
            snprintf(s->status, sizeof(s->status), "%s", st != NULL ? st : "");
            snprintf(s->reason, sizeof(s->reason), "%s", re != NULL ? re : "");
            snprintf(s->wamid, sizeof(s->wamid), "%s", wamid != NULL ? wamid : "");
            s->attempts = json_integer_value(json_object_get(d, "attempts"));
            s->code = json_integer_value(wa_json_path(d, "error.code"));
            s->fallback = json_is_true(json_object_get(d, "fallback"));
            s->log_len = json_array_size(json_object_get(d, "attempts_log"));
        }
    }
    wa_cloudevent_doc_free(doc);
    wa_kafka_consumer_done(c, msg);
}

static struct seen *
find(struct seen *tab, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tab[i].request_id, id) == 0) {
            return &tab[i];
        }
    }
    return NULL;
}

struct want {
    const char *id;
    bool dlq;
};

static bool
has(void *arg)
{
    const struct want *w = arg;

    return w->dlq ? find(F->dlq, F->ndlq, w->id) != NULL : find(F->res, F->nres, w->id) != NULL;
}

static struct seen *
wait_result(const char *id)
{
    struct want w = {id, false};

    assert_true(wa_test_run_until(F->loop, has, &w, WAIT_MS));
    return find(F->res, F->nres, id);
}

static struct seen *
wait_dlq(const char *id)
{
    struct want w = {id, true};

    assert_true(wa_test_run_until(F->loop, has, &w, WAIT_MS));
    return find(F->dlq, F->ndlq, id);
}

/* Produces one outbound.request whose data is the JSON text data (request_id inside). */
static void
produce_json(const char *key, const char *data)
{
    struct wa_cloudevent ev;
    json_t *d = NULL;

    assert_int_equal(wa_json_parse(data, strlen(data), 0, &d, NULL), WA_OK);
    wa_cloudevent_init(&ev, "notify-test", WA_CE_TYPE_OUTBOUND_REQUEST);
    ev.subject = key;
    ev.data = d;
    assert_int_equal(wa_kafka_produce_event(F->producer, F->topic_req, &ev, on_ack, NULL), WA_OK);
    json_decref(d);
}

/* A request: type and its body object text, plus extra top-level fields (may be ""). */
static void
request(const char *id, const char *to, const char *type, const char *body, const char *extra)
{
    char data[16384], key[128];

    snprintf(data, sizeof(data),
             "{\"request_id\":\"%s\",\"phone_number_id\":\"" NUMBER "\",\"to\":\"%s\","
             "\"type\":\"%s\",\"%s\":%s,\"metadata\":{\"k\":\"%s\"}%s%s}",
             id, to, type, type, body, id, extra[0] != '\0' ? "," : "", extra);
    snprintf(key, sizeof(key), NUMBER ":%s", to);
    produce_json(key, data);
}

static void
kv_done(void *arg, enum wa_err err)
{
    *(int *)arg = err == WA_OK ? 1 : -1;
}

static bool
flag_set(void *arg)
{
    return *(int *)arg != 0;
}

static void
kv_set(const char *suffix, const char *value)
{
    char key[256];
    int done = 0;

    snprintf(key, sizeof(key), "%s%s", F->prefix, suffix);
    assert_int_equal(wa_kv_set_px(F->kv, key, value, 600000, kv_done, &done), WA_OK);
    assert_true(wa_test_run_until(F->loop, flag_set, &done, 5000));
    assert_int_equal(done, 1);
}

/* Marks wa_id opted out of marketing as wa-users does: <p>optout:<hash> (wa/optout.h), under
 * the sandbox key the daemons run with here. */
static void
optout_set(const char *wa_id)
{
    struct wa_optout *o = NULL;
    char key[256];

    assert_int_equal(wa_optout_new(WA_OPTOUT_SANDBOX_KEY, &o), WA_OK);
    assert_int_equal(wa_optout_key(o, "", wa_id, key, sizeof(key)), WA_OK);
    wa_optout_free(o);
    kv_set(key, "1");
}

/* Opens the 24 h window of a contact the way wa-router does. */
static void
open_window(const char *wa_id)
{
    char k[128], v[32];

    snprintf(k, sizeof(k), "win:" NUMBER ":%s", wa_id);
    snprintf(v, sizeof(v), "%llu", (unsigned long long)wa_clock_wall_ms());
    kv_set(k, v);
}

static bool
kv_ready(void *arg)
{
    return wa_kv_ready(arg);
}

static bool
ready(void *arg)
{
    char url[128];

    (void)arg;
    snprintf(url, sizeof(url), "%s/readyz", F->nt_url);
    return http("GET", url, NULL, NULL) == 200;
}

static void
start_notify(const char *mps)
{
    char listen[64];
    const char *env[] = {"WA_LISTEN",
                         listen,
                         "WA_TOPIC_PREFIX",
                         F->prefix,
                         "WA_GRAPH_URL",
                         NULL,
                         "WA_ACCESS_TOKEN_FILE",
                         F->token_file,
                         "WA_NOTIFY_MPS",
                         mps,
                         "WA_NOTIFY_BACKOFF_BASE",
                         "100ms",
                         "WA_NOTIFY_BACKOFF_MAX",
                         "1s",
                         "WA_NOTIFY_HTTP_TIMEOUT",
                         "2s",
                         "WA_NOTIFY_CLAIM",
                         "3s",
                         "WA_NOTIFY_BREAKER_COOLDOWN",
                         "200ms",
                         "WA_NOTIFY_RATES",
                         NUMBER "="
                                "0",
                         "WA_LOG_LEVEL",
                         "info",
                         "WA_SANDBOX", /* the token file holds wa-cloudsim's public default */
                         "1",
                         "WA_NOTIFY_PARK_AFTER",
                         nt_park_after,
                         "WA_NOTIFY_PARK_TICK",
                         "100ms",
                         "WA_NOTIFY_PARK_LEASE",
                         "10s",
                         "WA_NOTIFY_MAX_IN_FLIGHT",
                         nt_max_in_flight,
                         NULL};
    char graph[96], rates[64];

    snprintf(listen, sizeof(listen), "127.0.0.1:%d", F->nt_port);
    snprintf(graph, sizeof(graph), "%s/v21.0", F->sim_url);
    snprintf(rates, sizeof(rates), NUMBER "=%s", mps);
    env[5] = graph;
    env[21] = rates;
    F->nt = spawn("wa-notify", env);
    assert_true(wa_test_run_until(F->loop, ready, NULL, WAIT_MS));
}

static int
setup_with(const char *sim_limits, const char *mps)
{
    const char *topics[3];
    struct wa_kv_config kvc = {.url = wa_test_env("WA_REDIS_URL")};
    char listen[64];
    const char *sim_env[] = {"WA_LISTEN",
                             listen,
                             "WA_SIM_LIMITS",
                             sim_limits,
                             "WA_WEBHOOK_URL",
                             "",
                             "WA_SIM_WEBHOOK_FLUSH",
                             "1s",
                             "WA_LOG_LEVEL",
                             "warn",
                             NULL};
    FILE *f;

    F = calloc(1, sizeof(*F));
    assert_non_null(F);
    assert_int_equal(wa_loop_new(&F->loop), WA_OK);
    wa_test_unique_prefix(F->prefix, sizeof(F->prefix));
    F->kcfg.brokers = wa_test_env("WA_KAFKA_BROKERS");
    F->kcfg.topic_prefix = F->prefix;
    F->kcfg.linger_us = 1000;
    snprintf(F->topic_req, sizeof(F->topic_req), "%soutbound.request", F->prefix);
    snprintf(F->topic_res, sizeof(F->topic_res), "%soutbound.result", F->prefix);
    snprintf(F->topic_dlq, sizeof(F->topic_dlq), "%soutbound.dlq", F->prefix);
    snprintf(F->group, sizeof(F->group), "%stest", F->prefix);
    snprintf(F->token_file, sizeof(F->token_file), "/tmp/%stoken", F->prefix);
    f = fopen(F->token_file, "w");
    assert_non_null(f);
    fputs("sandbox-token\n", f);
    fclose(f);
    topics[0] = F->topic_req;
    topics[1] = F->topic_res;
    topics[2] = F->topic_dlq;
    assert_int_equal(wa_kafka_topics_ensure(&F->kcfg, topics, 3, 4, 30000, NULL), WA_OK);
    assert_int_equal(wa_kafka_producer_new(F->loop, &F->kcfg, &F->producer, NULL), WA_OK);
    assert_int_equal(wa_kafka_consumer_new(F->loop, &F->kcfg, F->group, topics + 1, 2, on_result,
                                           NULL, &F->results, NULL),
                     WA_OK);
    assert_int_equal(wa_kv_new(F->loop, &kvc, &F->kv, NULL), WA_OK);
    assert_true(wa_test_run_until(F->loop, kv_ready, F->kv, 10000));
    F->sim_port = wa_test_free_port();
    F->nt_port = wa_test_free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", F->sim_port);
    snprintf(F->sim_url, sizeof(F->sim_url), "http://127.0.0.1:%d", F->sim_port);
    snprintf(F->nt_url, sizeof(F->nt_url), "http://127.0.0.1:%d", F->nt_port);
    F->sim = spawn("wa-cloudsim", sim_env);
    start_notify(mps);
    return 0;
}

static int
setup(void **state)
{
    (void)state;
    return setup_with("on", "80");
}

static int
teardown(void **state)
{
    (void)state;
    wa_test_stop(F->nt, SIGTERM, WA_TEST_NO_TIMEOUT);
    wa_test_stop(F->nt2, SIGTERM, WA_TEST_NO_TIMEOUT);
    wa_test_stop(F->sim, SIGTERM, WA_TEST_NO_TIMEOUT);
    wa_kafka_consumer_free(F->results);
    wa_kafka_producer_free(F->producer);
    wa_kv_free(F->kv);
    wa_loop_free(F->loop);
    unlink(F->token_file);
    free(F);
    F = NULL;
    nt_park_after = "30s";
    nt_max_in_flight = "5000";
    assert_true(wa_kafka_wait_destroyed(10000));
    return 0;
}

/* ---- tests ---- */

static void
every_type__window_open__each_accepted_once_with_request_id(void **state)
{
    static const char *const cases[][2] = {
        {"text", "{\"body\":\"hello\"}"},
        {"image", "{\"link\":\"https://example.com/a.jpg\",\"caption\":\"c\"}"},
        {"video", "{\"link\":\"https://example.com/a.mp4\"}"},
        {"audio", "{\"link\":\"https://example.com/a.ogg\"}"},
        {"document", "{\"link\":\"https://example.com/a.pdf\",\"filename\":\"a.pdf\"}"},
        {"sticker", "{\"link\":\"https://example.com/a.webp\"}"},
        {"location", "{\"latitude\":\"37.4\",\"longitude\":\"-122.1\",\"name\":\"x\"}"},
        {"contacts", "[{\"name\":{\"formatted_name\":\"Ana Lima\",\"first_name\":\"Ana\"},"
                     "\"phones\":[{\"phone\":\"+5511999990000\",\"type\":\"CELL\"}]}]"},
        {"interactive", "{\"type\":\"button\",\"body\":{\"text\":\"Confirm?\"},\"action\":"
                        "{\"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":\"y\",\"title\":"
                        "\"Yes\"}}]}}"},
        {"reaction", "{\"message_id\":\"wamid.X\",\"emoji\":\"\\ud83d\\udc4d\"}"},
        {"template", "{\"name\":\"hello_world\",\"language\":{\"code\":\"en_US\"}}"},
    };
    json_t *msgs;

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        char id[64], to[32];

        snprintf(id, sizeof(id), "type-%s", cases[i][0]);
        snprintf(to, sizeof(to), "1650555%04zu", 100 + i);
        open_window(to);
        request(id, to, cases[i][0], cases[i][1], "");
    }
    msgs = NULL;
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        char id[64];
        struct seen *s;

        snprintf(id, sizeof(id), "type-%s", cases[i][0]);
        s = wait_result(id);
        if (strcmp(s->status, "accepted") != 0) {
            fail_msg("%s: %s %s %lld", id, s->status, s->reason, s->code);
        }
        assert_true(s->wamid[0] != '\0');
        assert_int_equal(s->attempts, 1);
    }
    msgs = sim_messages();
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        char id[64];

        snprintf(id, sizeof(id), "type-%s", cases[i][0]);
        assert_int_equal(sim_count(msgs, id, NULL), 1);
    }
    json_decref(msgs);
}

static bool
two_dlq_raw(void *arg)
{
    struct seen *s = find(F->dlq, F->ndlq, "");

    (void)arg;
    return s != NULL && s->count >= 2;
}

static void
invalid_and_malformed__dlq__consumer_continues(void **state)
{
    char big[5000];
    struct seen *s;

    (void)state;
    memset(big, 'a', 4200);
    big[0] = '{';
    memcpy(big + 1, "\"body\":\"", 8);
    memcpy(big + 4190, "\"}", 3);
    open_window("16505550201");
    produce_json(NUMBER ":x", "{\"no_request_id\":true}");
    assert_int_equal(
        wa_kafka_produce(F->producer, F->topic_req, "k", 1, "not json", 8, NULL, 0, on_ack, NULL),
        WA_OK);
    request("inv-long", "16505550201", "text", big, "");
    request("inv-to", "12ab", "text", "{\"body\":\"x\"}", "");
    request("inv-after", "16505550201", "text", "{\"body\":\"still consuming\"}", "");
    s = wait_result("inv-long");
    assert_string_equal(s->status, "failed");
    assert_string_equal(s->reason, "invalid");
    assert_int_equal(s->code, 100);
    s = wait_dlq("inv-long");
    assert_string_equal(s->reason, "invalid");
    s = wait_result("inv-to");
    assert_string_equal(s->reason, "invalid");
    s = wait_result("inv-after");
    assert_string_equal(s->status, "accepted");
    /* the two unreadable events reached the DLQ raw (request_id empty) */
    assert_true(wa_test_run_until(F->loop, two_dlq_raw, NULL, WAIT_MS));
}

static void
error_classes__retryable_retried_permanent_dlq_token_stops(void **state)
{
    struct seen *s;
    char url[128];
    json_t *msgs, *m = NULL;

    (void)state;
    open_window("16505550301");
    open_window("16505550302");
    open_window("16505550303");
    open_window("16505550304");
    /* retryable Meta error twice, then accepted on the 3rd attempt */
    sim_post("/_sim/faults", "{\"code\":131000,\"count\":2}");
    request("err-retry", "16505550301", "text", "{\"body\":\"r\"}", "");
    s = wait_result("err-retry");
    assert_string_equal(s->status, "accepted");
    assert_int_equal(s->attempts, 3);
    /* 5xx without a body twice */
    sim_post("/_sim/faults", "{\"mode\":\"5xx\",\"count\":2}");
    request("err-5xx", "16505550302", "text", "{\"body\":\"r\"}", "");
    s = wait_result("err-5xx");
    assert_string_equal(s->status, "accepted");
    assert_int_equal(s->attempts, 3);
    /* permanent: one attempt, failed, dead letter with the attempt */
    sim_post("/_sim/faults", "{\"code\":131026,\"count\":1}");
    request("err-perm", "16505550303", "text", "{\"body\":\"p\"}", "");
    s = wait_result("err-perm");
    assert_string_equal(s->status, "failed");
    assert_string_equal(s->reason, "rejected");
    assert_int_equal(s->code, 131026);
    s = wait_dlq("err-perm");
    assert_int_equal(s->log_len, 1);
    /* 130429 (throughput) retried */
    sim_post("/_sim/faults", "{\"code\":130429,\"count\":2}");
    request("err-429", "16505550304", "text", "{\"body\":\"t\"}", "");
    s = wait_result("err-429");
    assert_string_equal(s->status, "accepted");
    assert_int_equal(s->attempts, 3);
    /* token: the number stops (readyz 503) until SIGHUP brings a token back */
    sim_post("/_sim/faults", "{\"code\":190,\"count\":1}");
    request("err-token", "16505550301", "text", "{\"body\":\"k\"}", "");
    snprintf(url, sizeof(url), "%s/readyz", F->nt_url);
    for (int i = 0; i < 200 && http("GET", url, NULL, NULL) == 200; i++) {
        wa_test_run_for(F->loop, 50);
    }
    assert_int_equal(http("GET", url, NULL, NULL), 503);
    wa_test_run_for(F->loop, 300);
    assert_null(find(F->res, F->nres, "err-token"));
    kill(F->nt, SIGHUP);
    s = wait_result("err-token");
    assert_string_equal(s->status, "accepted");
    assert_true(wa_test_run_until(F->loop, ready, NULL, 10000));
    msgs = sim_messages();
    assert_int_equal(sim_count(msgs, "err-retry", &m), 1);
    assert_int_equal(sim_count(msgs, "err-perm", NULL), 0);
    json_decref(msgs);
}

static bool
fault_injected(void *arg)
{
    char url[128];
    struct wa_buf b;
    json_t *root = NULL;
    bool done;

    (void)arg;
    snprintf(url, sizeof(url), "%s/_sim/faults", F->sim_url);
    wa_buf_init(&b, 0);
    done = http("GET", url, NULL, &b) == 200 &&
           wa_json_parse(b.data, b.len, 0, &root, NULL) == WA_OK &&
           json_integer_value(json_object_get(root, "injected")) >= 1;
    json_decref(root);
    wa_buf_cleanup(&b);
    return done;
}

static int64_t
sim_time(json_t *msgs, const char *id)
{
    json_t *m = NULL;
    int64_t ms = 0;

    assert_int_equal(sim_count(msgs, id, &m), 1);
    assert_int_equal(wa_contract_time_parse(wa_json_str(m, "time"), &ms), WA_OK);
    return ms;
}

static void
pair_rate__131056__backs_off_that_recipient_only(void **state)
{
    struct seen *a;
    json_t *msgs;
    int64_t t0 = (int64_t)wa_clock_wall_ms(), ta1, ta2, tb;

    (void)state;
    open_window("16505550401");
    open_window("16505550402");
    sim_post("/_sim/faults", "{\"code\":131056,\"count\":1}");
    request("pair-a1", "16505550401", "text", "{\"body\":\"1\"}", "");
    /* a1 must meet the fault first: wait until the simulator injected it */
    assert_true(wa_test_run_until(F->loop, fault_injected, NULL, WAIT_MS));
    request("pair-a2", "16505550401", "text", "{\"body\":\"2\"}", "");
    request("pair-b", "16505550402", "text", "{\"body\":\"b\"}", "");
    assert_string_equal(wait_result("pair-b")->status, "accepted");
    a = wait_result("pair-a1");
    assert_string_equal(a->status, "accepted");
    assert_int_equal(a->attempts, 2);
    assert_string_equal(wait_result("pair-a2")->status, "accepted");
    msgs = sim_messages();
    ta1 = sim_time(msgs, "pair-a1");
    ta2 = sim_time(msgs, "pair-a2");
    tb = sim_time(msgs, "pair-b");
    /* A waited 4^0 = 1 s; B, another recipient, was not held by A's back-off */
    assert_true(ta1 - t0 >= 1000);
    assert_true(tb < ta1);
    /* per-recipient order: a2 went out only after a1 was answered */
    assert_true(ta2 >= ta1);
    json_decref(msgs);
}

static void
policy__window_optout_expiry__refused_or_fallback(void **state)
{
    struct seen *s;
    char extra[256];
    uint64_t later;
    json_t *msgs, *m = NULL;

    (void)state;
    request("pol-window", "16505550501", "text", "{\"body\":\"late\"}", "");
    request("pol-fallback", "16505550502", "text", "{\"body\":\"late\"}",
            "\"fallback_template\":{\"name\":\"hello_world\",\"language\":{\"code\":\"en_US\"}}");
    optout_set("16505550503");
    request("pol-optout", "16505550503", "template",
            "{\"name\":\"hello_world\",\"language\":{\"code\":\"en_US\"}}",
            "\"category\":\"marketing\"");
    request("pol-utility", "16505550503", "template",
            "{\"name\":\"hello_world\",\"language\":{\"code\":\"en_US\"}}",
            "\"category\":\"utility\"");
    request("pol-expired", "16505550504", "template",
            "{\"name\":\"hello_world\",\"language\":{\"code\":\"en_US\"}}",
            "\"expires_at\":\"2020-01-01T00:00:00Z\"");
    later = wa_clock_wall_ms() + 1500;
    snprintf(extra, sizeof(extra), "\"not_before\":%llu", (unsigned long long)later);
    request("pol-later", "16505550505", "template",
            "{\"name\":\"hello_world\",\"language\":{\"code\":\"en_US\"}}", extra);
    s = wait_result("pol-window");
    assert_string_equal(s->reason, "window");
    assert_int_equal(s->code, 131047);
    s = wait_result("pol-fallback");
    assert_string_equal(s->status, "accepted");
    assert_true(s->fallback);
    s = wait_result("pol-optout");
    assert_string_equal(s->reason, "opted_out");
    s = wait_result("pol-utility");
    assert_string_equal(s->status, "accepted");
    s = wait_result("pol-expired");
    assert_string_equal(s->reason, "expired");
    s = wait_result("pol-later");
    assert_string_equal(s->status, "accepted");
    assert_true(s->first_ms >= later); /* held until not_before, however loaded the machine */
    msgs = sim_messages();
    assert_int_equal(sim_count(msgs, "pol-window", NULL), 0);
    assert_int_equal(sim_count(msgs, "pol-optout", NULL), 0);
    assert_int_equal(sim_count(msgs, "pol-fallback", &m), 1);
    assert_string_equal(wa_json_str(m, "type"), "template");
    json_decref(msgs);
}

static void
optout__registry_category_fallback_and_hold__marketing_refused_utility_sent(void **state)
{
    struct seen *s;
    char extra[256];
    json_t *msgs, *m = NULL;
    static const char *const refused[] = {"cat-mislabelled", "cat-unlabelled", "cat-fallback",
                                          "cat-held"};

    (void)state;
    optout_set("16505550601");
    /* spring_sale and new_collection are MARKETING in the simulator's registry */
    request("cat-mislabelled", "16505550601", "template",
            "{\"name\":\"spring_sale\",\"language\":{\"code\":\"en\"}}",
            "\"category\":\"utility\"");
    request("cat-unlabelled", "16505550601", "template",
            "{\"name\":\"new_collection\",\"language\":{\"code\":\"en\"}}", "");
    request("cat-fallback", "16505550601", "text", "{\"body\":\"late\"}",
            "\"fallback_template\":{\"name\":\"new_collection\",\"language\":{\"code\":"
            "\"en\"}}");
    request("cat-fallback-utility", "16505550601", "text", "{\"body\":\"late\"}",
            "\"fallback_template\":{\"name\":\"hello_world\",\"language\":{\"code\":"
            "\"en_US\"}}");
    request("cat-utility", "16505550601", "template",
            "{\"name\":\"hello_world\",\"language\":{\"code\":\"en_US\"}}", "");
    /* held until not_before; the contact opts out meanwhile: refused at send time */
    snprintf(extra, sizeof(extra), "\"not_before\":%llu",
             (unsigned long long)wa_clock_wall_ms() + 2500);
    request("cat-held", "16505550602", "template",
            "{\"name\":\"new_collection\",\"language\":{\"code\":\"en\"}}", extra);
    wa_test_run_for(F->loop, 1000);
    assert_null(find(F->res, F->nres, "cat-held"));
    optout_set("16505550602");
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        s = wait_result(refused[i]);
        assert_string_equal(s->reason, "opted_out");
    }
    s = wait_result("cat-fallback-utility");
    assert_string_equal(s->status, "accepted");
    assert_string_equal(wait_result("cat-utility")->status, "accepted");
    msgs = sim_messages();
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(sim_count(msgs, refused[i], NULL), 0);
    }
    /* the utility fallback went out instead of the text (the window is closed) */
    assert_int_equal(sim_count(msgs, "cat-fallback-utility", &m), 1);
    assert_string_equal(wa_json_str(m, "type"), "template");
    json_decref(msgs);
}

static bool
two_results(void *arg)
{
    struct seen *s = find(F->res, F->nres, arg);

    return s != NULL && s->count >= 2;
}

static void
redelivered__same_request_id__sent_once(void **state)
{
    struct seen *s;
    json_t *msgs;

    (void)state;
    open_window("16505550601");
    request("dup-1", "16505550601", "text", "{\"body\":\"once\"}", "");
    s = wait_result("dup-1");
    assert_string_equal(s->status, "accepted");
    request("dup-1", "16505550601", "text", "{\"body\":\"once\"}", "");
    assert_true(wa_test_run_until(F->loop, two_results, "dup-1", WAIT_MS));
    s = find(F->res, F->nres, "dup-1");
    assert_string_equal(s->status, "accepted");
    msgs = sim_messages();
    assert_int_equal(sim_count(msgs, "dup-1", NULL), 1);
    json_decref(msgs);
}

/* ---- kill -9 during a 2,000-request run ---- */

#define KILL_N 2000

static bool
sim_has_some(void *arg)
{
    json_t *msgs = sim_messages();
    size_t n = json_array_size(json_object_get(msgs, "data"));

    json_decref(msgs);
    return n >= *(size_t *)arg;
}

static bool
all_results(void *arg)
{
    size_t accepted = 0;

    (void)arg;
    for (size_t i = 0; i < F->nres; i++) {
        accepted += strcmp(F->res[i].status, "accepted") == 0;
    }
    return accepted >= KILL_N;
}

static void
kill9__mid_run__none_lost_duplicates_only_in_flight(void **state)
{
    size_t some = 400, distinct = 0, dups = 0, total;
    json_t *msgs, *m;
    size_t i;
    unsigned char *seen = calloc(KILL_N, 1);

    (void)state;
    assert_non_null(seen);
    for (int k = 0; k < KILL_N; k++) {
        char id[32], to[32];

        snprintf(id, sizeof(id), "k9-%d", k);
        snprintf(to, sizeof(to), "1777%07d", k);
        request(id, to, "template", "{\"name\":\"hello_world\",\"language\":{\"code\":\"en_US\"}}",
                "");
    }
    assert_true(wa_test_run_until(F->loop, sim_has_some, &some, WAIT_MS));
    wa_test_stop(F->nt, SIGKILL, WA_TEST_NO_TIMEOUT);
    fprintf(stderr, "notify-kill9: killed after >= %zu sends\n", some);
    start_notify("1000");
    assert_true(wa_test_run_until(F->loop, all_results, NULL, 120000));
    msgs = sim_messages();
    total = json_array_size(json_object_get(msgs, "data"));
    json_array_foreach(json_object_get(msgs, "data"), i, m)
    {
        const char *biz = wa_json_str(m, "biz_opaque_callback_data");
        long k;

        if (biz == NULL || strncmp(biz, "k9-", 3) != 0) {
            continue;
        }
        k = strtol(biz + 3, NULL, 10);
        assert_true(k >= 0 && k < KILL_N);
        if (seen[k]++ == 0) {
            distinct++;
        } else {
            dups++;
        }
    }
    fprintf(stderr,
            "notify-kill9: requests %d, reached the simulator %zu, sends %zu, "
            "duplicates %zu\n",
            KILL_N, distinct, total, dups);
    assert_int_equal(distinct, KILL_N);
    assert_true(dups <= 256); /* at most WA_NOTIFY_MAX_HTTP sends were in flight */
    json_decref(msgs);
    free(seen);
}

/* ---- parking: thousands of future-dated requests beside immediate ones ---- */

#define PARK_N   3000
#define PARK_NOW 100

/* The value of an unlabelled series in the /metrics of the wa-notify at base, or -1. */
static double
metric_at(const char *base, const char *name)
{
    char url[128];
    struct wa_buf b;
    double v = -1;
    size_t n = strlen(name);

    snprintf(url, sizeof(url), "%s/metrics", base);
    wa_buf_init(&b, 0);
    if (http("GET", url, NULL, &b) == 200 && wa_buf_append(&b, "", 1) == WA_OK) {
        for (const char *p = b.data; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
            p += *p == '\n';
            if (strncmp(p, name, n) == 0 && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
        }
    }
    wa_buf_cleanup(&b);
    return v;
}

static double
metric(const char *name)
{
    return metric_at(F->nt_url, name);
}

struct metric_at_least {
    const char *name;
    double min;
};

static bool
metric_reached(void *arg)
{
    const struct metric_at_least *m = arg;

    return metric(m->name) >= m->min;
}

/* Parked requests republished by both instances. */
static double
released_by_both(void)
{
    return metric_at(F->nt_url, "wa_notify_released_total") +
           metric_at(F->nt2_url, "wa_notify_released_total");
}

static bool
all_released(void *arg)
{
    (void)arg;
    return released_by_both() >= PARK_N;
}

static void
on_zcard(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    *(long long *)arg = err == WA_OK ? wa_kv_reply_int(reply) : -2;
}

static bool
llong_set(void *arg)
{
    return *(long long *)arg != -1;
}

/* Entries in the parking store. */
static long long
parked_in_redis(void)
{
    char key[128];
    const char *argv[2] = {"ZCARD", key};
    long long n = -1;

    snprintf(key, sizeof(key), "%snt:park", F->prefix);
    assert_int_equal(wa_kv_command_argv(F->kv, 2, argv, NULL, on_zcard, &n), WA_OK);
    assert_true(wa_test_run_until(F->loop, llong_set, &n, 5000));
    return n;
}

static bool
parked_all_accepted(void *arg)
{
    size_t accepted = 0;

    (void)arg;
    for (size_t i = 0; i < F->nres; i++) {
        accepted += strncmp(F->res[i].request_id, "pk-", 3) == 0 &&
                    strcmp(F->res[i].status, "accepted") == 0;
    }
    return accepted >= PARK_N;
}

static void
park_request(const char *id, const char *to, uint64_t not_before)
{
    char extra[64];

    snprintf(extra, sizeof(extra), "\"not_before\":%llu", (unsigned long long)not_before);
    request(id, to, "template", "{\"name\":\"hello_world\",\"language\":{\"code\":\"en_US\"}}",
            extra);
}

/* 3,000 requests due in 40 s (beyond WA_NOTIFY_PARK_AFTER=1s) ahead of 100 immediate ones, with
 * WA_NOTIFY_MAX_IN_FLIGHT=200: held in memory they would stall the consumer; parked, the
 * immediate ones go out at once. A duplicate of a parked request parks nothing more; kill -9
 * while they are parked; two new instances share the release (each entry republished by one)
 * and send each exactly once, not before not_before.
 * One 31 days ahead is refused as invalid. */
static void
park__thousands_future_dated__immediate_not_stalled_kill9_none_lost_none_twice(void **state)
{
    uint64_t due = wa_clock_wall_ms() + 40000;
    char id[32], to[32];
    struct metric_at_least parked = {"wa_notify_parked_total", PARK_N};
    size_t dups = 0;
    json_t *msgs;
    struct seen *s;

    (void)state;
    for (int k = 0; k < PARK_N; k++) {
        snprintf(id, sizeof(id), "pk-%d", k);
        snprintf(to, sizeof(to), "1888%07d", k);
        park_request(id, to, due);
    }
    park_request("pk-far", "18890000000", wa_clock_wall_ms() + 31ull * 24 * 3600 * 1000);
    for (int k = 0; k < PARK_NOW; k++) {
        snprintf(id, sizeof(id), "pn-%d", k);
        snprintf(to, sizeof(to), "1887%07d", k);
        request(id, to, "template", "{\"name\":\"hello_world\",\"language\":{\"code\":\"en_US\"}}",
                "");
    }
    /* redelivered copies of parked requests */
    for (int k = 0; k < 10; k++) {
        snprintf(id, sizeof(id), "pk-%d", k);
        snprintf(to, sizeof(to), "1888%07d", k);
        park_request(id, to, due);
    }
    for (int k = 0; k < PARK_NOW; k++) {
        snprintf(id, sizeof(id), "pn-%d", k);
        s = wait_result(id);
        assert_string_equal(s->status, "accepted");
        assert_true(s->first_ms < due); /* not stalled behind the parked ones */
    }
    s = wait_result("pk-far");
    assert_string_equal(s->reason, "invalid");
    wait_dlq("pk-far");
    assert_true(wa_test_run_until(F->loop, metric_reached, &parked, WAIT_MS));
    wa_test_run_for(F->loop, 1000);        /* the duplicates are consumed by now */
    assert_true(wa_clock_wall_ms() < due); /* else the machine is too slow for this test */
    assert_int_equal(metric("wa_notify_parked_total"), PARK_N);
    assert_int_equal(parked_in_redis(), PARK_N);
    assert_null(find(F->res, F->nres, "pk-0"));
    print_message("notify-park: %d parked, %d immediate sent while they waited\n", PARK_N,
                  PARK_NOW);

    wa_test_stop(F->nt, SIGKILL, WA_TEST_NO_TIMEOUT);
    /* two instances now: every one scans, the Redis claim lets one move each entry */
    start_notify("1000");
    F->nt2 = F->nt;
    snprintf(F->nt2_url, sizeof(F->nt2_url), "%s", F->nt_url);
    F->nt_port = wa_test_free_port();
    snprintf(F->nt_url, sizeof(F->nt_url), "http://127.0.0.1:%d", F->nt_port);
    start_notify("1000");
    assert_true(wa_test_run_until(F->loop, parked_all_accepted, NULL, 120000));
    assert_true(wa_test_run_until(F->loop, all_released, NULL, WAIT_MS));
    print_message("notify-park: released by the two instances: %.0f + %.0f\n",
                  metric_at(F->nt2_url, "wa_notify_released_total"),
                  metric("wa_notify_released_total"));
    assert_int_equal(released_by_both(), PARK_N); /* no entry republished twice */
    assert_int_equal(parked_in_redis(), 0);
    msgs = sim_messages();
    for (int k = 0; k < PARK_N; k++) {
        json_t *m = NULL;
        int64_t at = 0;
        int n;

        snprintf(id, sizeof(id), "pk-%d", k);
        n = sim_count(msgs, id, &m);
        assert_true(n >= 1);
        dups += (size_t)(n - 1);
        assert_int_equal(wa_contract_time_parse(wa_json_str(m, "time"), &at), WA_OK);
        assert_true((uint64_t)at >= due); /* never before not_before */
    }
    assert_int_equal(sim_count(msgs, "pk-far", NULL), 0);
    print_message("notify-park: after kill -9, %d parked sent, %zu twice\n", PARK_N, dups);
    assert_int_equal(dups, 0);
    json_decref(msgs);
}

/* Position of request_id among the simulator's accepted sends (in acceptance order), or -1. */
static int
sim_position(json_t *msgs, const char *request_id)
{
    json_t *data = json_object_get(msgs, "data"), *m;
    size_t i;

    json_array_foreach(data, i, m)
    {
        const char *biz = wa_json_str(m, "biz_opaque_callback_data");

        if (biz != NULL && strcmp(biz, request_id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* A backlog of 20 requests at 5 messages/s, then one with a higher priority: it goes next, not
 * after the backlog (20th). Distinct recipients, so per-recipient order plays no part. */
static void
priority__higher_request__overtakes_the_number_backlog(void **state)
{
    enum { BACKLOG = 20 };
    char id[32], to[32];
    json_t *msgs;
    int pos;

    (void)state;
    for (int i = 0; i <= BACKLOG; i++) {
        snprintf(to, sizeof(to), "165055506%02d", i);
        open_window(to);
    }
    for (int i = 0; i < BACKLOG; i++) {
        snprintf(id, sizeof(id), "prio-low-%02d", i);
        snprintf(to, sizeof(to), "165055506%02d", i);
        request(id, to, "text", "{\"body\":\"campaign\"}", "");
    }
    /* the backlog is in wa-notify before the urgent one is produced */
    wa_test_run_for(F->loop, 500);
    snprintf(to, sizeof(to), "165055506%02d", BACKLOG);
    request("prio-high", to, "text", "{\"body\":\"your code is 123456\"}", "\"priority\":10");
    assert_string_equal(wait_result("prio-high")->status, "accepted");
    for (int i = 0; i < BACKLOG; i++) {
        snprintf(id, sizeof(id), "prio-low-%02d", i);
        assert_string_equal(wait_result(id)->status, "accepted");
    }
    msgs = sim_messages();
    pos = sim_position(msgs, "prio-high");
    print_message("priority request sent as number %d of %d\n", pos + 1, BACKLOG + 1);
    /* the first tokens and the 500 ms wait let a few low ones out first (2 in a run); in
     * arrival order it went out 16th */
    assert_true(pos >= 0 && pos <= 9);
    json_decref(msgs);
}

static int
setup_park(void **state)
{
    (void)state;
    nt_park_after = "1s";
    nt_max_in_flight = "200";
    return setup_with("off", "1000");
}

static int
setup_slow(void **state)
{
    (void)state;
    return setup_with("on", "5");
}

static int
setup_fast(void **state)
{
    (void)state;
    return setup_with("off", "1000");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_type__window_open__each_accepted_once_with_request_id,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_and_malformed__dlq__consumer_continues, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(error_classes__retryable_retried_permanent_dlq_token_stops,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(pair_rate__131056__backs_off_that_recipient_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(policy__window_optout_expiry__refused_or_fallback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            optout__registry_category_fallback_and_hold__marketing_refused_utility_sent, setup,
            teardown),
        cmocka_unit_test_setup_teardown(redelivered__same_request_id__sent_once, setup, teardown),
        cmocka_unit_test_setup_teardown(priority__higher_request__overtakes_the_number_backlog,
                                        setup_slow, teardown),
        cmocka_unit_test_setup_teardown(kill9__mid_run__none_lost_duplicates_only_in_flight,
                                        setup_fast, teardown),
        cmocka_unit_test_setup_teardown(
            park__thousands_future_dated__immediate_not_stalled_kill9_none_lost_none_twice,
            setup_park, teardown),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
