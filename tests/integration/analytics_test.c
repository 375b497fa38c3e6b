/*
 * analytics_test.c: wa-analytics through its binary on real Kafka and MongoDB (FerretDB in
 * make test), each test with its own topic prefix and database:
 *   - events produced straight to the topics, statuses out of order and twice: the same
 *     timelines and totals as in order; a 131026 failure in the timeline and in failures by
 *     code; problem+json errors; the KPI gauges in /metrics;
 *   - kill -9 while a backlog is consumed, restart: the totals are exact (no event lost or
 *     counted twice);
 *   - the whole chain: template sends through wa-notify to wa-cloudsim, whose status webhooks
 *     (duplicated and reordered by its chaos settings) reach wa-analytics through wa-ingest:
 *     N sent, delivered and read in the summary; an undeliverable user's 131026.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wa/buf.h"
#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract.h"
#include "wa/contract_outbound.h"
#include "wa/json.h"
#include "wa/kafka.h"
#include "wa/mongo.h"
#include "wa/pool.h"
#include "wa_test.h"
#include "wa_test_proc.h"

#include "analytics.h"

#define WAIT_MS 60000
/* After a kill -9 the dead member keeps its partitions until the group's session timeout
 * (45 s) expires: the restarted daemon gets them only then. */
#define RESTART_WAIT_MS 240000

struct fx {
    struct wa_loop *loop;
    struct wa_kafka_config kcfg;
    struct wa_kafka_producer *producer;
    char prefix[64];
    char mongo_uri[256];
    int port;
    pid_t an;
    int acked, sent;
};

static struct fx *F;

static pid_t
spawn(const char *bin, const char *arg, const char *const *env, const char *tag)
{
    char path[512], log[256], pairs[20][512];
    const char *argv[] = {path, arg, NULL};
    const char *envp[21];
    size_t n = 0;

    wa_test_bin_path(bin, path, sizeof(path));
    snprintf(log, sizeof(log), "/tmp/analytics-test-%d-%s.log", (int)getpid(), tag);
    for (size_t i = 0; env[i] != NULL && n < 20; i += 2, n++) {
        snprintf(pairs[n], sizeof(pairs[n]), "%s=%s", env[i], env[i + 1]);
        envp[n] = pairs[n];
    }
    envp[n] = NULL;
    return wa_test_spawn(argv, envp, log, WA_TEST_SPAWN_APPEND);
}

static pid_t
spawn_analytics_args(const char *arg)
{
    char listen[64], card[512];
    const char *env[] = {"WA_LISTEN",
                         listen,
                         "WA_ANALYTICS_RATECARD",
                         card,
                         "WA_KAFKA_BROKERS",
                         wa_test_env("WA_KAFKA_BROKERS"),
                         "WA_MONGO_URI",
                         F->mongo_uri,
                         "WA_TOPIC_PREFIX",
                         F->prefix,
                         "WA_ANALYTICS_BATCH",
                         "50",
                         "WA_ANALYTICS_KPI_INTERVAL",
                         "1s",
                         "WA_LOG_LEVEL",
                         "warn",
                         NULL};
    pid_t pid;

    snprintf(listen, sizeof(listen), "127.0.0.1:%d", F->port);
    snprintf(card, sizeof(card), "%s/analytics/ratecard.json", wa_test_env("WA_TEST_DATA"));
    pid = spawn("wa-analytics", arg, env, "analytics");
    if (arg == NULL) {
        assert_true(wa_test_poll_status(F->port, "/readyz", 200, WAIT_MS, NULL));
    }
    return pid;
}

static pid_t
spawn_analytics(void)
{
    return spawn_analytics_args(NULL);
}

static int
setup(void **state)
{
    const char *mongo = wa_test_env("WA_MONGO_URI");
    const char *slash;

    (void)state;
    F = calloc(1, sizeof(*F));
    assert_non_null(F);
    assert_int_equal(wa_loop_new(&F->loop), WA_OK);
    wa_test_unique_prefix(F->prefix, sizeof(F->prefix));
    /* the same server, a database of this run's own */
    slash = strchr(mongo + strlen("mongodb://"), '/');
    snprintf(F->mongo_uri, sizeof(F->mongo_uri), "%.*s/an_%.*s",
             (int)(slash != NULL ? slash - mongo : (long)strlen(mongo)), mongo,
             (int)strlen(F->prefix) - 1, F->prefix);
    F->kcfg.brokers = wa_test_env("WA_KAFKA_BROKERS");
    F->kcfg.topic_prefix = F->prefix;
    F->kcfg.linger_us = 0;
    assert_int_equal(wa_kafka_producer_new(F->loop, &F->kcfg, &F->producer, NULL), WA_OK);
    {
        static const char *const names[] = {WA_TOPIC_OUTBOUND_REQUEST, WA_TOPIC_OUTBOUND_RESULT,
                                            WA_TOPIC_INBOUND_STATUS, WA_TOPIC_INBOUND_MESSAGE,
                                            WA_TOPIC_CONTACT_EVENT};
        char full[5][128];
        const char *list[5];

        for (size_t i = 0; i < 5; i++) {
            snprintf(full[i], sizeof(full[i]), "%s%s", F->prefix, names[i]);
            list[i] = full[i];
        }
        assert_int_equal(wa_kafka_topics_ensure(&F->kcfg, list, 5, 3, 30000, NULL), WA_OK);
    }
    F->port = wa_test_free_port();
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    if (F->an > 0) {
        (void)wa_test_stop(F->an, SIGTERM, 15000);
    }
    wa_kafka_producer_free(F->producer);
    wa_loop_free(F->loop);
    (void)wa_kafka_wait_destroyed(10000);
    free(F);
    return 0;
}

/* ---- producing ---- */

static void
on_ack(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    (void)partition;
    (void)offset;
    (void)arg;
    assert_int_equal(err, WA_OK);
    F->acked++;
}

static bool
all_acked(void *arg)
{
    (void)arg;
    return F->acked == F->sent;
}

static void
produce(const char *topic, const char *type, const char *key, json_t *data)
{
    struct wa_cloudevent ev;
    char full[128];

    snprintf(full, sizeof(full), "%s%s", F->prefix, topic);
    wa_cloudevent_init(&ev, "analytics-test", type);
    ev.subject = key;
    ev.data = data;
    assert_int_equal(wa_kafka_produce_event(F->producer, full, &ev, on_ack, NULL), WA_OK);
    F->sent++;
    json_decref(data);
}

static void
flush_produced(void)
{
    assert_true(wa_test_run_until(F->loop, all_acked, NULL, WAIT_MS));
}

static void
request(const char *rid, const char *to)
{
    produce(WA_TOPIC_OUTBOUND_REQUEST, WA_CE_TYPE_OUTBOUND_REQUEST, to,
            json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:{s:s}}, s:s}", "request_id", rid,
                      "phone_number_id", "100000000000001", "to", to, "type", "template",
                      "template", "name", "spring_sale", "language", "code", "en", "category",
                      "marketing"));
}

static void
result(const char *rid, const char *wamid)
{
    produce(WA_TOPIC_OUTBOUND_RESULT, WA_CE_TYPE_OUTBOUND_RESULT, rid,
            json_pack("{s:s, s:s, s:s, s:s, s:i, s:n, s:n}", "request_id", rid, "status",
                      "accepted", "wamid", wamid, "phone_number_id", "100000000000001", "attempts",
                      1, "reason", "error"));
}

static void
status(const char *rid, const char *wamid, const char *to, const char *st, int64_t ts, int64_t code)
{
    json_t *so = json_pack("{s:s, s:s, s:s, s:s}", "id", wamid, "status", st, "timestamp", "0",
                           "recipient_id", to);

    if (code != 0) {
        json_object_set_new(so, "errors",
                            json_pack("[{s:I, s:s, s:{s:s}}]", "code", (json_int_t)code, "title",
                                      "Message Undeliverable", "error_data", "details",
                                      "simulated"));
    }
    if (strcmp(st, "sent") == 0) {
        json_object_set_new(so, "pricing",
                            json_pack("{s:b, s:s, s:s, s:s}", "billable", 1, "pricing_model", "PMP",
                                      "category", "marketing", "type", "regular"));
    }
    produce(WA_TOPIC_INBOUND_STATUS, WA_CE_TYPE_INBOUND_STATUS, to,
            json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:o}", "wamid", wamid, "status", st,
                      "timestamp", (json_int_t)ts, "phone_number_id", "100000000000001",
                      "display_phone_number", "15550000001", "waba_id", "200000000000001",
                      "contact", to, "biz_opaque_callback_data", rid, "status_object", so));
}

/* An inbound message from contact at ts (seconds). */
static void
inbound(const char *wamid, const char *contact, int64_t ts)
{
    char key[64];

    snprintf(key, sizeof(key), "100000000000001:%s", contact);
    produce(WA_TOPIC_INBOUND_MESSAGE, WA_CE_TYPE_INBOUND_MESSAGE, key,
            json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:{s:s, s:s, s:{s:s}}}", "wamid", wamid,
                      "type", "text", "contact", contact, "timestamp", (json_int_t)ts,
                      "phone_number_id", "100000000000001", "from", contact, "message", "from",
                      contact, "type", "text", "text", "body", "thanks"));
}

/* ---- reading ---- */

static json_t *
get_json(const char *path, long want)
{
    struct wa_buf b;
    json_t *v = NULL;
    struct wa_test_http_req req = {.port = F->port, .path = path, .timeout_ms = 10000};
    long got;

    wa_buf_init(&b, 1 << 24);
    got = wa_test_http(&req, &b);
    if (got != want) {
        fail_msg("GET %s: %ld, want %ld: %s", path, got, want, b.data != NULL ? b.data : "");
    }
    assert_int_equal(wa_json_parse(b.data, b.len, 0, &v, NULL), WA_OK);
    wa_buf_cleanup(&b);
    return v;
}

static int64_t
total(const json_t *summary, const char *state)
{
    return json_integer_value(json_object_get(json_object_get(summary, "totals"), state));
}

/* The summary of the period ending a day from now, for query ("" or "?k=v&..."). The default
 * period ends at the query's time, and the tests' events run up to a minute ahead of the clock:
 * an event past the next half-hour boundary would stay outside it until the clock gets there. */
static json_t *
get_summary(const char *query)
{
    char to[WA_RFC3339_LEN], path[320];

    wa_clock_rfc3339(wa_clock_wall_ms() / 1000 * 1000 + 86400000ULL, to);
    snprintf(path, sizeof(path), "/v1/analytics/summary?to=%s%s%s", to, query[0] != '\0' ? "&" : "",
             query[0] == '?' ? query + 1 : query);
    return get_json(path, 200);
}

/* Polls the summary until totals[state] == want. */
static json_t *
wait_total_for(const char *query, const char *state, int64_t want, uint64_t wait_ms)
{
    uint64_t deadline = wa_clock_mono_ms() + wait_ms;
    json_t *s = NULL;

    while (wa_clock_mono_ms() < deadline) {
        json_decref(s);
        s = get_summary(query);
        if (total(s, state) == want) {
            return s;
        }
        usleep(200000);
    }
    fail_msg("summary %s = %lld, want %lld", state, (long long)total(s, state), (long long)want);
    return NULL;
}

/* Polls the summary until the integer at path == want. */
static json_t *
wait_path(const char *query, const char *path_in_summary, int64_t want)
{
    uint64_t deadline = wa_clock_mono_ms() + RESTART_WAIT_MS;
    json_t *s = NULL;

    while (wa_clock_mono_ms() < deadline) {
        json_decref(s);
        s = get_summary(query);
        if (json_integer_value(wa_json_path(s, path_in_summary)) == want) {
            return s;
        }
        usleep(200000);
    }
    fail_msg("summary %s = %lld, want %lld", path_in_summary,
             (long long)json_integer_value(wa_json_path(s, path_in_summary)), (long long)want);
    return NULL;
}

static json_t *
wait_total(const char *query, const char *state, int64_t want)
{
    return wait_total_for(query, state, want, WAIT_MS);
}

static json_t *
wait_message(const char *id, const char *state)
{
    uint64_t deadline = wa_clock_mono_ms() + WAIT_MS;
    char path[256];
    struct wa_buf b;
    json_t *v = NULL;

    snprintf(path, sizeof(path), "/v1/messages/%s", id);
    wa_buf_init(&b, 1 << 20);
    while (wa_clock_mono_ms() < deadline) {
        struct wa_test_http_req req = {.port = F->port, .path = path};

        if (wa_test_http(&req, &b) == 200) {
            json_decref(v);
            assert_int_equal(wa_json_parse(b.data, b.len, 0, &v, NULL), WA_OK);
            if (strcmp(json_string_value(json_object_get(v, "state")), state) == 0) {
                wa_buf_cleanup(&b);
                return v;
            }
        }
        usleep(200000);
    }
    fail_msg("message %s never reached %s: %s", id, state, b.data != NULL ? b.data : "");
    return NULL;
}

static const char *
state_at(const json_t *view, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(view, "states"), i), "state"));
}

/* The dashboard in headless Chromium shows the API's numbers without a console error
 * (tests/browser/dashboard.cjs; WA_NODE_PATH from deploy/local/browser.sh, set by make test). */
static void
dashboard_in_browser(void)
{
    char base[64], node_path[1024];
    const char *argv[] = {"node", AN_BROWSER_SCRIPT, base, AN_TEST_OUTPUT, NULL};
    const char *env[] = {node_path, NULL};
    char log[256];
    pid_t pid;
    int rc;

    snprintf(base, sizeof(base), "http://127.0.0.1:%d", F->port);
    snprintf(node_path, sizeof(node_path), "NODE_PATH=%s", wa_test_env("WA_NODE_PATH"));
    snprintf(log, sizeof(log), "/tmp/analytics-test-%d-browser.log", (int)getpid());
    pid = wa_test_spawn(argv, env, log, 0);
    rc = wa_test_wait_exit(pid, 120000);
    if (rc != 0) {
        size_t len;
        char *out = wa_test_read_file(log, &len), text[4096];

        snprintf(text, sizeof(text), "%s", out != NULL ? out : "");
        free(out);
        fail_msg("dashboard test exited %d: %s", rc, text);
    }
}

/* The rows the consumer keeps equal the rows `wa-analytics rebuild` computes from the message
 * documents: the same summary and half-hour series before and after a rebuild. Restarts the
 * daemon. */
static void
rebuild__changes_no_figure(void)
{
    char query[256], path[320], from[WA_RFC3339_LEN], to[WA_RFC3339_LEN];
    uint64_t now = wa_clock_wall_ms() / 1000 * 1000;
    const char *const reports[] = {"summary", "series"};
    json_t *before[2], *after[2];
    pid_t pid;

    wa_clock_rfc3339(now - 86400000ULL, from);
    wa_clock_rfc3339(now + 86400000ULL, to);
    snprintf(query, sizeof(query), "?from=%s&to=%s&granularity=half_hour", from, to);
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/v1/analytics/%s%s", reports[i], query);
        before[i] = get_json(path, 200);
    }
    assert_int_equal(wa_test_stop(F->an, SIGTERM, 15000), 0);
    pid = spawn_analytics_args("rebuild");
    assert_int_equal(wa_test_wait_exit(pid, 120000), 0);
    F->an = spawn_analytics();
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/v1/analytics/%s%s", reports[i], query);
        after[i] = get_json(path, 200);
        if (!json_equal(before[i], after[i])) {
            char *a = wa_json_dump(before[i]), *b = wa_json_dump(after[i]);

            fail_msg("%s changed by a rebuild:\n%s\n%s", reports[i], a, b);
        }
        json_decref(before[i]);
        json_decref(after[i]);
    }
}

/* ---- tests ---- */

static void
events__out_of_order_and_twice__same_timeline_and_totals(void **state)
{
    int64_t now = (int64_t)(wa_clock_wall_ms() / 1000);
    json_t *v, *s, *fail;
    struct wa_buf b;

    (void)state;
    F->an = spawn_analytics();
    /* r1 in order */
    request("r1", "+919800000001");
    result("r1", "wamid.R1");
    status("r1", "wamid.R1", "919800000001", "sent", now, 0);
    status("r1", "wamid.R1", "919800000001", "delivered", now + 1, 0);
    status("r1", "wamid.R1", "919800000001", "read", now + 5, 0);
    /* r2: read first, every status twice, the request last */
    status("r2", "wamid.R2", "919800000002", "read", now + 5, 0);
    status("r2", "wamid.R2", "919800000002", "delivered", now + 1, 0);
    status("r2", "wamid.R2", "919800000002", "read", now + 5, 0);
    status("r2", "wamid.R2", "919800000002", "sent", now, 0);
    status("r2", "wamid.R2", "919800000002", "delivered", now + 1, 0);
    status("r2", "wamid.R2", "919800000002", "sent", now, 0);
    result("r2", "wamid.R2");
    result("r2", "wamid.R2");
    request("r2", "+919800000002");
    /* r3: sent, then failed later with 131026 */
    request("r3", "+919800000003");
    result("r3", "wamid.R3");
    status("r3", "wamid.R3", "919800000003", "sent", now, 0);
    status("r3", "wamid.R3", "919800000003", "failed", now + 2, 131026);
    /* r1's contact answers a minute later (twice: redelivered): one of three templates replied */
    inbound("wamid.IN1", "919800000001", now + 60);
    inbound("wamid.IN1", "919800000001", now + 60);
    flush_produced();

    s = wait_total("", "read", 2);
    json_decref(s);
    s = wait_total("", "failed", 1);
    assert_int_equal(total(s, "requested"), 3);
    assert_int_equal(total(s, "accepted"), 3);
    assert_int_equal(total(s, "sent"), 3);
    assert_int_equal(total(s, "delivered"), 2);
    fail = json_array_get(json_object_get(s, "failures_by_code"), 0);
    assert_int_equal(json_integer_value(json_object_get(fail, "code")), 131026);
    assert_int_equal(json_integer_value(json_object_get(fail, "count")), 1);
    assert_int_equal(json_integer_value(wa_json_path(s, "rates.delivery.denominator")), 3);
    /* three marketing messages to +91 priced "regular" at the card's rate since 2026-12-04 */
    assert_int_equal(json_integer_value(wa_json_path(s, "cost.total_micros")), 3 * 11800);
    assert_string_equal(wa_json_path_str(s, "cost.currency"), "USD");
    json_decref(s);
    s = wait_path("", "reply_rate.numerator", 1);
    assert_int_equal(json_integer_value(wa_json_path(s, "reply_rate.denominator")), 3);
    assert_int_equal(json_integer_value(wa_json_path(s, "inbound.messages")), 1);
    json_decref(s);

    /* r2's timeline equals r1's shape: every state, each with its first time */
    v = wait_message("r2", "read");
    if (json_array_size(json_object_get(v, "states")) != 5) {
        char *d = wa_json_dump(v);
        fail_msg("r2: %s", d);
    }
    assert_string_equal(state_at(v, 0), "requested");
    assert_string_equal(state_at(v, 4), "read");
    assert_int_equal(json_integer_value(
                         json_object_get(json_array_get(json_object_get(v, "states"), 3), "at_ms")),
                     (now + 1) * 1000);
    assert_string_equal(json_string_value(json_object_get(v, "wamid")), "wamid.R2");
    json_decref(v);
    v = wait_message("wamid.R3", "failed"); /* by wamid */
    assert_int_equal(json_integer_value(wa_json_path(v, "error.code")), 131026);
    assert_string_equal(json_string_value(json_object_get(v, "request_id")), "r3");
    json_decref(v);

    /* errors are problem+json naming the parameter */
    wa_buf_init(&b, 1 << 16);
    {
        struct wa_test_http_req req = {.port = F->port,
                                       .path = "/v1/analytics/summary?from=yesterday"};
        json_t *p;

        assert_int_equal(wa_test_http(&req, &b), 400);
        assert_int_equal(wa_json_parse(b.data, b.len, 0, &p, NULL), WA_OK);
        assert_int_equal(json_integer_value(json_object_get(p, "status")), 400);
        assert_non_null(strstr(json_string_value(json_object_get(p, "detail")), "from"));
        json_decref(p);
        req.path = "/v1/analytics/series?granularity=week";
        assert_int_equal(wa_test_http(&req, &b), 400);
        req.path = "/v1/analytics/kpis?tz=Mars/Olympus";
        assert_int_equal(wa_test_http(&req, &b), 400);
        req.path = "/v1/messages/nope";
        assert_int_equal(wa_test_http(&req, &b), 404);
        assert_non_null(strstr(b.data, "\"status\":404"));
    }
    /* series: one day holding the three messages; KPIs; the gauges */
    v = get_json("/v1/analytics/series?granularity=day&tz=Asia/Kolkata", 200);
    {
        json_t *series = json_object_get(v, "series");
        int64_t sum = 0;

        for (size_t i = 0; i < json_array_size(series); i++) {
            sum += total(json_array_get(series, i), "sent");
        }
        assert_int_equal(sum, 3);
    }
    json_decref(v);
    v = get_json("/v1/analytics/kpis", 200);
    assert_int_equal(json_array_size(json_object_get(v, "kpis")), 3);
    /* 2 of 3 sent were delivered: the delivery check fails */
    assert_false(
        json_is_true(json_object_get(json_array_get(json_object_get(v, "kpis"), 0), "pass")));
    json_decref(v);
    {
        uint64_t deadline = wa_clock_mono_ms() + WAIT_MS;
        bool seen = false;
        struct wa_test_http_req req = {.port = F->port, .path = "/metrics"};

        while (!seen && wa_clock_mono_ms() < deadline) {
            seen = wa_test_http(&req, &b) == 200 &&
                   strstr(b.data, "wa_analytics_kpi_messages 3") != NULL;
            if (!seen) {
                usleep(200000);
            }
        }
        assert_true(seen);
        assert_non_null(strstr(b.data, "wa_analytics_kpi_value{kpi=\"delivery_rate\"} 0.666"));
        assert_non_null(strstr(b.data, "wa_analytics_kpi_pass{kpi=\"delivery_rate\"} 0"));
    }
    wa_buf_cleanup(&b);
    /* wa-users erases r1's contact: the timeline keeps its states under a pseudonym */
    produce(WA_TOPIC_CONTACT_EVENT, "wa.contact.event.v1", "100000000000001:919800000001",
            json_pack("{s:s, s:s, s:s, s:s}", "event_id", "e1", "kind", "erased", "contact",
                      "+919800000001", "identity", "919800000001"));
    flush_produced();
    {
        uint64_t deadline = wa_clock_mono_ms() + WAIT_MS;
        const char *c = NULL;

        for (v = NULL; wa_clock_mono_ms() < deadline; usleep(200000)) {
            json_decref(v);
            v = get_json("/v1/messages/r1", 200);
            c = json_string_value(json_object_get(v, "contact"));
            if (c != NULL && strncmp(c, "erased:", 7) == 0) {
                break;
            }
        }
        assert_non_null(c);
        assert_int_equal(strncmp(c, "erased:", 7), 0);
        assert_string_equal(json_string_value(json_object_get(v, "state")), "read");
        json_decref(v);
        s = get_summary("");
        assert_int_equal(total(s, "read"), 2);
        assert_int_equal(json_integer_value(wa_json_path(s, "reply_rate.numerator")), 1);
        json_decref(s);
    }
    /* every event consumed (each latency needs both its states) before the rows are compared */
    json_decref(wait_path("", "latency_ms.accepted_to_sent.count", 3));
    json_decref(wait_path("", "latency_ms.delivered_to_read.count", 2));
    rebuild__changes_no_figure();
    dashboard_in_browser();
    assert_int_equal(wa_test_stop(F->an, SIGTERM, 15000), 0);
    F->an = 0;
}

static void
kill9__while_consuming__exact_totals_after_restart(void **state)
{
    int64_t now = (int64_t)(wa_clock_wall_ms() / 1000);
    enum { N = 400 };
    char rid[32], wamid[32], to[32];
    json_t *s;

    (void)state;
    /* the backlog is there before the daemon starts, so the kill finds batches in flight */
    for (int i = 0; i < N; i++) {
        snprintf(rid, sizeof(rid), "k%d", i);
        snprintf(wamid, sizeof(wamid), "wamid.K%d", i);
        snprintf(to, sizeof(to), "55119%07d", i);
        request(rid, to);
        result(rid, wamid);
        status(rid, wamid, to, "sent", now, 0);
        status(rid, wamid, to, "delivered", now + 1, 0);
        status(rid, wamid, to, "read", now + 2, 0);
    }
    flush_produced();
    F->an = spawn_analytics();
    {
        uint64_t deadline = wa_clock_mono_ms() + WAIT_MS;

        do { /* some written, not all */
            s = get_summary("");
            if (total(s, "requested") > 0) {
                json_decref(s);
                break;
            }
            json_decref(s);
            usleep(20000);
        } while (wa_clock_mono_ms() < deadline);
    }
    assert_int_equal(wa_test_stop(F->an, SIGKILL, 15000), 128 + SIGKILL);
    F->an = spawn_analytics();
    /* the topics' partitions are consumed in no particular order: wait for each figure */
    json_decref(wait_total_for("", "read", N, RESTART_WAIT_MS));
    s = wait_total_for("", "requested", N, RESTART_WAIT_MS);
    assert_int_equal(total(s, "accepted"), N);
    assert_int_equal(total(s, "sent"), N);
    assert_int_equal(total(s, "delivered"), N);
    assert_int_equal(total(s, "failed"), 0);
    json_decref(s);
    /* every event consumed (each latency needs both its states) before the rows are compared */
    json_decref(wait_path("", "latency_ms.accepted_to_sent.count", N));
    json_decref(wait_path("", "latency_ms.sent_to_delivered.count", N));
    json_decref(wait_path("", "latency_ms.delivered_to_read.count", N));
    rebuild__changes_no_figure();
    assert_int_equal(wa_test_stop(F->an, SIGTERM, 15000), 0);
    F->an = 0;
}

/* ---- a journal left by a crash ---- */

struct mongo_op {
    bool done;
    enum wa_err err;
    int64_t count;
};

static void
on_mongo_done(void *arg, enum wa_err err)
{
    ((struct mongo_op *)arg)->err = err;
    ((struct mongo_op *)arg)->done = true;
}

static void
on_mongo_count(void *arg, enum wa_err err, int64_t count)
{
    ((struct mongo_op *)arg)->count = count;
    on_mongo_done(arg, err);
}

static bool
mongo_done(void *arg)
{
    return ((struct mongo_op *)arg)->done;
}

/* The journal the consumer would store for the request of message id (rows.c, consume.c):
 * the message's update and its contact's engagement document, and the rows they add. */
static json_t *
journal_of_request(const char *id, const char *contact, int64_t at_ms, json_int_t jid)
{
    struct an_event ev = {.id = id,
                          .request_id = id,
                          .state = AN_REQUESTED,
                          .at_ms = at_ms,
                          .phone_number_id = "100000000000001",
                          .contact = contact,
                          .country = "91",
                          .type = "template",
                          .template_name = "journal_t",
                          .category = "marketing",
                          .pricing_billable = -1};
    struct an_rows rows;
    json_t *update, *doc = json_pack("{s:s}", "_id", id), *engage, *list = json_array(), *body;
    char *text;

    assert_int_equal(an_timeline_update(&ev, &update), WA_OK);
    assert_int_equal(an_update_apply(doc, update, true), WA_OK);
    engage = json_pack("{s:[o], s:[]}", "o", an_engage_out(doc), "i");
    an_rows_init(&rows);
    assert_int_equal(an_rows_add_message(&rows, doc, NULL, 1), WA_OK);
    assert_int_equal(an_rows_add_contact(&rows, engage, 1), WA_OK);
    for (size_t i = 0; i < rows.n; i++) {
        json_array_append_new(list, json_pack("{s:s, s:O, s:o}", "_id", rows.v[i].id, "dims",
                                              rows.v[i].dims, "inc", an_totals_inc(&rows.v[i].t)));
    }
    body =
        json_pack("{s:[{s:s, s:{s:s}, s:o}, {s:s, s:{s:s}, s:{s:o}}], s:o}", "ops", "coll",
                  AN_COLL_MESSAGES, "filter", "_id", id, "update", update, "coll", AN_COLL_ENGAGE,
                  "filter", "_id", contact, "update", "$set", engage, "rows", list);
    assert_non_null(body);
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_decref(doc);
    an_rows_clear(&rows);
    body = json_pack("{s:I, s:s}", "_id", jid, "batch", text);
    free(text);
    return body;
}

/* Stores a journal (the daemon stopped; in place of its marker if it was applied), starts the
 * daemon, waits until it is applied (marked done). */
static void
replay(struct wa_mongo *m, const json_t *journal)
{
    struct mongo_op op = {0};
    json_t *f = json_pack("{s:O}", "_id", json_object_get(journal, "_id"));
    json_t *pending = json_pack("{s:{s:b}}", "done", "$ne", 1);
    uint64_t deadline;

    assert_int_equal(wa_mongo_delete_many(m, AN_COLL_JOURNAL, f, on_mongo_count, &op), WA_OK);
    assert_true(wa_test_run_until(F->loop, mongo_done, &op, WAIT_MS));
    op = (struct mongo_op){0};
    assert_int_equal(wa_mongo_insert_one(m, AN_COLL_JOURNAL, journal, on_mongo_done, &op), WA_OK);
    assert_true(wa_test_run_until(F->loop, mongo_done, &op, WAIT_MS));
    assert_int_equal(op.err, WA_OK);
    F->an = spawn_analytics();
    deadline = wa_clock_mono_ms() + WAIT_MS;
    do {
        op = (struct mongo_op){0};
        assert_int_equal(wa_mongo_count(m, AN_COLL_JOURNAL, pending, on_mongo_count, &op), WA_OK);
        assert_true(wa_test_run_until(F->loop, mongo_done, &op, WAIT_MS));
        if (op.err == WA_OK && op.count == 0) {
            break;
        }
        usleep(200000);
    } while (wa_clock_mono_ms() < deadline);
    assert_int_equal(op.count, 0);
    json_decref(f);
    json_decref(pending);
}

/* A crash after the journal was stored: the next start applies it (the message, its contact's
 * engagement document, the rows); a journal whose rows already hold its changes (a crash
 * before it was marked done) changes nothing when applied again. */
static void
journal__left_by_a_crash__applied_once_at_start(void **state)
{
    struct wa_pool *pool = NULL;
    struct wa_mongo *m = NULL;
    struct wa_mongo_config mc = {.uri = F->mongo_uri, .timeout_ms = 20000};
    json_t *journal =
        journal_of_request("jr1", "919811111111", (int64_t)wa_clock_wall_ms() - 60000, 5);
    json_t *s, *v;

    (void)state;
    assert_int_equal(wa_pool_new(F->loop, 1, &pool), WA_OK);
    assert_int_equal(wa_mongo_new(F->loop, pool, &mc, &m, NULL), WA_OK);
    replay(m, journal);
    s = wait_total("?template=journal_t", "requested", 1);
    assert_int_equal(json_integer_value(wa_json_path(s, "reply_rate.denominator")), 0);
    json_decref(s);
    v = wait_message("jr1", "requested");
    json_decref(v);
    assert_int_equal(wa_test_stop(F->an, SIGTERM, 15000), 0);
    replay(m, journal); /* again: its rows already hold it */
    s = get_summary("?template=journal_t");
    assert_int_equal(total(s, "requested"), 1);
    json_decref(s);
    rebuild__changes_no_figure();
    assert_int_equal(wa_test_stop(F->an, SIGTERM, 15000), 0);
    F->an = 0;
    json_decref(journal);
    wa_mongo_free(m);
    wa_pool_free(pool);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(events__out_of_order_and_twice__same_timeline_and_totals,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(kill9__while_consuming__exact_totals_after_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(journal__left_by_a_crash__applied_once_at_start, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
