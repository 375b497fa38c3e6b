/*
 * chaos_notify.c: wa-notify stopped under load, against wa-cloudsim.
 *
 *   notify-kill9: requests keep arriving while the simulator answers slowly (300 ms per send)
 *     and wa-notify gets SIGKILL once it has sends in flight (at least 1.5 s, at most 20 s
 *     after its start) and is started again. Invariant: every request
 *     reaches the simulator and gets its result (none lost); a duplicate send only where a
 *     killed instance had the send in flight (printed beside the Cloud API calls in flight at
 *     the kills, read from wa_notify_http_in_flight just before each).
 *   notify-rolling: two instances share the consumer group while the simulator takes 8 s per
 *     send; each is replaced in turn as a Deployment's rolling update does it (the new instance
 *     started and ready, then SIGTERM to the old one). Invariant: zero duplicate sends (a drain
 *     finishes every call it started), none lost, every old instance exits 0.
 *
 *   notify-redis-stop: requests keep arriving while the simulator takes 500 ms per send; the
 *     scenario's own Redis (chaos_infra.h; AOF with an fsync per write, as production runs it)
 *     is stopped mid-send for WA_CHAOS_REDIS_DOWN seconds (default 5, the smoke run; make chaos:
 *     20) and started again on its data. Invariant: none lost, no duplicate send, the daemon
 *     recovers by itself (no restart) and exits 0 at SIGTERM.
 *   notify-scale: requests keep arriving while the simulator takes 1 s per send; the group
 *     scales 1 -> 3 -> 1 instances (two started, later both stopped with SIGTERM, as a scale-in
 *     does). Invariant: zero duplicate sends, none lost, every stopped instance exits 0.
 *
 * Duration of notify-kill9: WA_CHAOS_SECONDS (default 6, the smoke run of make test); each of
 * notify-scale's three phases lasts a third of it, at least 4 s.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wa/buf.h"
#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract.h"
#include "wa/contract_outbound.h"
#include "wa/json.h"
#include "wa/kafka.h"
#include "chaos_infra.h"
#include "wa_test.h"
#include "wa_test_proc.h"

#define NUMBER   "100000000000001"
#define MAX_REQS 100000
/* per kill, duplicates allowed beyond the Cloud API calls in flight when the gauge was read:
 * a call started between the read and the kill, or answered with its record not yet written */
#define DUP_SLACK 25

static struct {
    struct wa_loop *loop;
    struct wa_kafka_config kcfg;
    struct wa_kafka_producer *producer;
    struct wa_kafka_consumer *results;
    char prefix[64], topic_req[256], topic_res[256], group[96], sim_url[64], run[16];
    pid_t sim;
    int sim_port;
    struct chaos_redis redis; /* a scenario's own Redis (zeroed: none) */
    char redis_env[96];       /* "WA_REDIS_URL=<redis.url>", or empty: the suite's Redis */
    char sim_log[160];
    unsigned char *accepted; /* per request number: an accepted result arrived */
    size_t naccepted, nrequests;
} C;

/* ---- plumbing ---- */

static void
on_ack(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    (void)partition;
    (void)offset;
    (void)arg;
    assert_int_equal(err, WA_OK);
}

static void
request(size_t n)
{
    struct wa_cloudevent ev;
    char data[1024], key[96];
    json_t *d = NULL;

    snprintf(data, sizeof(data),
             "{\"request_id\":\"%s-%zu\",\"phone_number_id\":\"" NUMBER "\",\"to\":\"1888%07zu\","
             "\"type\":\"template\",\"template\":{\"name\":\"hello_world\",\"language\":{\"code\":"
             "\"en_US\"}},\"category\":\"utility\"}",
             C.run, n, n);
    snprintf(key, sizeof(key), NUMBER ":1888%07zu", n);
    assert_int_equal(wa_json_parse(data, strlen(data), 0, &d, NULL), WA_OK);
    wa_cloudevent_init(&ev, "chaos-notify", WA_CE_TYPE_OUTBOUND_REQUEST);
    ev.subject = key;
    ev.data = d;
    assert_int_equal(wa_kafka_produce_event(C.producer, C.topic_req, &ev, on_ack, NULL), WA_OK);
    json_decref(d);
    C.nrequests++;
}

/* The request number of "<run>-<n>", or -1. */
static long
number_of(const char *request_id)
{
    size_t l = strlen(C.run);

    if (request_id == NULL || strncmp(request_id, C.run, l) != 0 || request_id[l] != '-') {
        return -1;
    }
    return strtol(request_id + l + 1, NULL, 10);
}

static void
on_result(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct wa_cloudevent_doc *doc = NULL;

    (void)arg;
    if (wa_cloudevent_decode(msg->value, msg->len, &doc, NULL) == WA_OK) {
        long n = number_of(wa_json_str(doc->ev.data, "request_id"));
        const char *st = wa_json_str(doc->ev.data, "status");

        if (n >= 0 && n < MAX_REQS && st != NULL && strcmp(st, "accepted") == 0 && !C.accepted[n]) {
            C.accepted[n] = 1;
            C.naccepted++;
        }
        wa_cloudevent_doc_free(doc);
    }
    wa_kafka_consumer_done(c, msg);
}

static pid_t
notify_start(int port, const char *log)
{
    char graph[96];
    const char *extra[] = {graph,
                           "WA_NOTIFY_MPS=1000",
                           "WA_NOTIFY_CLAIM=15s",
                           "WA_NOTIFY_BACKOFF_BASE=100ms",
                           "WA_NOTIFY_BACKOFF_MAX=1s",
                           "WA_LOG_LEVEL=warn",
                           C.redis_env[0] != '\0' ? C.redis_env : NULL,
                           NULL};

    snprintf(graph, sizeof(graph), "WA_GRAPH_URL=%s/v21.0", C.sim_url);
    {
        pid_t pid = wa_test_spawn_daemon("wa-notify", port, C.prefix, extra, log);

        if (!wa_test_poll_status(port, "/readyz", 200, 30000, NULL)) {
            fail_msg("wa-notify did not become ready (see %s)", log);
        }
        return pid;
    }
}

/* Sends at the simulator per request number: distinct requests seen and extra copies. */
static void
sim_sends(size_t *distinct, size_t *dups)
{
    char url[128];
    struct wa_test_http_req req = {.url = url, .timeout_ms = 10000};
    struct wa_buf b;
    json_t *root = NULL, *m;
    unsigned char *seen = calloc(MAX_REQS, 1);
    size_t i;

    assert_non_null(seen);
    *distinct = *dups = 0;
    snprintf(url, sizeof(url), "%s/_sim/messages?limit=100000", C.sim_url);
    wa_buf_init(&b, 0);
    assert_int_equal(wa_test_http(&req, &b), 200);
    assert_int_equal(wa_json_parse(b.data, b.len, 0, &root, NULL), WA_OK);
    json_array_foreach(json_object_get(root, "data"), i, m)
    {
        long n = number_of(wa_json_str(m, "biz_opaque_callback_data"));

        if (n >= 0 && n < MAX_REQS) {
            *distinct += seen[n] == 0;
            *dups += seen[n] != 0;
            seen[n] = 1;
        }
    }
    json_decref(root);
    wa_buf_cleanup(&b);
    free(seen);
}

/* Every send takes ms at the simulator from now on. */
static void
sim_latency(int ms)
{
    char url[128], faults[128];
    struct wa_test_http_req req = {
        .method = "POST", .url = url, .body = faults, .timeout_ms = 5000};
    static const char *const json_hdr[] = {"Content-Type: application/json", NULL};

    req.headers = json_hdr;
    snprintf(url, sizeof(url), "%s/_sim/faults", C.sim_url);
    snprintf(faults, sizeof(faults),
             "{\"latency_ms\":%d,\"latency_count\":100000,\"scope\":\"messages\"}", ms);
    assert_int_equal(wa_test_http(&req, NULL), 200);
}

/* Produces per requests every 100 ms for ms milliseconds, serving the loop meanwhile. */
static void
load_for(uint64_t ms, int per)
{
    uint64_t end = wa_clock_mono_ms() + ms;

    while (wa_clock_mono_ms() < end) {
        for (int i = 0; i < per && C.nrequests < MAX_REQS; i++) {
            request(C.nrequests);
        }
        wa_test_run_for(C.loop, 100);
    }
}

/* True when every request numbered below *(size_t *)arg has its accepted result. */
static bool
accepted_below(void *arg)
{
    size_t upto = *(size_t *)arg;

    for (size_t n = 0; n < upto; n++) {
        if (!C.accepted[n]) {
            return false;
        }
    }
    return true;
}

/* Non-blocking: true when pid has ended, its status (as wa_test_wait_exit) in *rc. */
static bool
reaped(pid_t pid, int *rc)
{
    int st;

    if (waitpid(pid, &st, WNOHANG) != pid) {
        return false;
    }
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
}

/* The value of wa_notify_http_in_flight at the daemon on port, 0 when unreadable. */
static size_t
http_in_flight(int port)
{
    double v = wa_test_metric(port, "wa_notify_http_in_flight");

    return v > 0 ? (size_t)v : 0;
}

static int
setup(void **state)
{
    const char *topics[3];
    const char *sim_env[] = {"WA_SIM_LIMITS=off", "WA_WEBHOOK_URL=", "WA_LOG_LEVEL=warn", NULL};

    (void)state;
    memset(&C, 0, sizeof(C));
    C.accepted = calloc(MAX_REQS, 1);
    assert_non_null(C.accepted);
    assert_int_equal(wa_loop_new(&C.loop), WA_OK);
    wa_test_unique_prefix(C.prefix, sizeof(C.prefix));
    snprintf(C.run, sizeof(C.run), "cx%04d", (int)(getpid() % 10000));
    C.kcfg.brokers = wa_test_env("WA_KAFKA_BROKERS");
    C.kcfg.topic_prefix = C.prefix;
    C.kcfg.linger_us = 1000;
    assert_int_equal(
        wa_kafka_topic(&C.kcfg, WA_TOPIC_OUTBOUND_REQUEST, C.topic_req, sizeof(C.topic_req)),
        WA_OK);
    assert_int_equal(
        wa_kafka_topic(&C.kcfg, WA_TOPIC_OUTBOUND_RESULT, C.topic_res, sizeof(C.topic_res)), WA_OK);
    snprintf(C.group, sizeof(C.group), "%schaos", C.prefix);
    topics[0] = C.topic_req;
    topics[1] = C.topic_res;
    {
        char dlq[256];

        assert_int_equal(wa_kafka_topic(&C.kcfg, WA_TOPIC_OUTBOUND_DLQ, dlq, sizeof(dlq)), WA_OK);
        topics[2] = dlq;
        assert_int_equal(wa_kafka_topics_ensure(&C.kcfg, topics, 3, 4, 30000, NULL), WA_OK);
    }
    assert_int_equal(wa_kafka_producer_new(C.loop, &C.kcfg, &C.producer, NULL), WA_OK);
    assert_int_equal(wa_kafka_consumer_new(C.loop, &C.kcfg, C.group, topics + 1, 1, on_result, NULL,
                                           &C.results, NULL),
                     WA_OK);
    C.sim_port = wa_test_free_port();
    snprintf(C.sim_url, sizeof(C.sim_url), "http://127.0.0.1:%d", C.sim_port);
    snprintf(C.sim_log, sizeof(C.sim_log), "/tmp/wa-chaos-notify-%s-sim.log", C.run);
    C.sim = wa_test_spawn_daemon("wa-cloudsim", C.sim_port, C.prefix, sim_env, C.sim_log);
    assert_true(wa_test_poll_status(C.sim_port, "/readyz", 200, 30000, NULL));
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    wa_test_stop(C.sim, SIGTERM, 10000);
    unlink(C.sim_log);
    chaos_redis_cleanup(&C.redis);
    wa_kafka_consumer_free(C.results);
    (void)wa_kafka_producer_flush(C.producer, 5000);
    wa_kafka_producer_free(C.producer);
    wa_loop_free(C.loop);
    free(C.accepted);
    return 0;
}

/* ---- scenarios ---- */

static void
chaos__notify_killed_under_load__none_lost(void **state)
{
    const char *secs = wa_test_env_or("WA_CHAOS_SECONDS", "6");
    long s = strtol(secs, NULL, 10);
    uint64_t end = wa_clock_mono_ms() + (uint64_t)(s > 0 ? s : 6) * 1000;
    uint64_t started, t_last;
    int port = wa_test_free_port(), kills = 0, mid_send = 0;
    char log[160];
    size_t distinct, dups, at_kills = 0;
    pid_t nt;

    (void)state;
    snprintf(log, sizeof(log), "/tmp/wa-chaos-notify-%s-kill.log", C.run);
    sim_latency(300);
    nt = notify_start(port, log);
    started = wa_clock_mono_ms();
    while (wa_clock_mono_ms() < end || kills == 0) { /* at least one kill, however slow */
        for (int i = 0; i < 40 && C.nrequests < MAX_REQS; i++) {
            request(C.nrequests);
        }
        wa_test_run_for(C.loop, 100);
        /* at least 1.5 s after a start, once sends are in flight: a restarted instance gets
         * partitions only when the group has rebalanced, and a kill before would catch none */
        if (wa_clock_mono_ms() - started >= 1500) {
            size_t in_flight = http_in_flight(port);

            if (in_flight > 0 || wa_clock_mono_ms() - started >= 20000) {
                wa_test_stop(nt, SIGKILL, 5000);
                at_kills += in_flight;
                mid_send += in_flight > 0;
                kills++;
                nt = notify_start(port, log);
                started = wa_clock_mono_ms();
            }
        }
    }
    t_last = wa_clock_mono_ms();
    while (C.naccepted < C.nrequests && wa_clock_mono_ms() - t_last < 180000) {
        wa_test_run_for(C.loop, 200);
    }
    sim_sends(&distinct, &dups);
    printf("chaos notify-kill9: invariant: with a slow Cloud API (300 ms), every request reaches "
           "it and gets its result; duplicates only for sends in flight at a kill\n"
           "chaos notify-kill9: result: requests=%zu accepted=%zu sent=%zu duplicated=%zu "
           "in_flight_at_kills=%zu kills=%d (mid-send %d) recovery=%.1fs -> %s\n",
           C.nrequests, C.naccepted, distinct, dups, at_kills, kills, mid_send,
           (double)(wa_clock_mono_ms() - t_last) / 1000.0,
           C.naccepted == C.nrequests && distinct == C.nrequests &&
                   dups <= at_kills + DUP_SLACK * (size_t)kills
               ? "PASS"
               : "FAIL");
    fflush(stdout);
    assert_int_equal(wa_test_stop(nt, SIGTERM, 20000), 0);
    assert_int_equal(C.naccepted, C.nrequests);
    assert_int_equal(distinct, C.nrequests);
    assert_true(dups <= at_kills + DUP_SLACK * (size_t)kills);
    assert_true(kills > 0);
    unlink(log);
}

static void
chaos__notify_rolling_restart_slow_api__no_duplicate(void **state)
{
    enum { N = 40 };
    int port[4] = {wa_test_free_port(), wa_test_free_port(), wa_test_free_port(),
                   wa_test_free_port()};
    pid_t nt[4];
    char log[4][160];
    size_t distinct, dups;
    uint64_t t0 = wa_clock_mono_ms();
    int rc[2];

    (void)state;
    sim_latency(8000);
    for (int i = 0; i < 4; i++) {
        snprintf(log[i], sizeof(log[i]), "/tmp/wa-chaos-notify-%s-roll%d.log", C.run, i);
    }
    for (int i = 0; i < 2; i++) {
        nt[i] = notify_start(port[i], log[i]);
    }
    wa_test_run_for(C.loop, 3000); /* the group settles: both instances own partitions */
    for (size_t i = 0; i < N; i++) {
        request(i);
    }
    wa_test_run_for(C.loop, 3000); /* both instances have sends in flight at the simulator */
    for (int i = 0; i < 2; i++) {  /* surge one, then stop one, as a rolling update does */
        nt[2 + i] = notify_start(port[2 + i], log[2 + i]);
        wa_test_run_for(C.loop, 2000);
        rc[i] = wa_test_stop(nt[i], SIGTERM, 30000);
    }
    while (C.naccepted < N && wa_clock_mono_ms() - t0 < 120000) {
        wa_test_run_for(C.loop, 200);
    }
    sim_sends(&distinct, &dups);
    printf("chaos notify-rolling: invariant: a rolling SIGTERM restart with an 8 s Cloud API "
           "sends nothing twice and loses nothing\n"
           "chaos notify-rolling: result: requests=%d accepted=%zu sent=%zu duplicated=%zu "
           "exit=%d,%d took=%.1fs -> %s\n",
           N, C.naccepted, distinct, dups, rc[0], rc[1], (double)(wa_clock_mono_ms() - t0) / 1000.0,
           dups == 0 && distinct == N && C.naccepted == N && rc[0] == 0 && rc[1] == 0 ? "PASS"
                                                                                      : "FAIL");
    fflush(stdout);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(wa_test_stop(nt[2 + i], SIGTERM, 30000), 0);
        assert_int_equal(rc[i], 0);
    }
    for (int i = 0; i < 4; i++) {
        unlink(log[i]);
    }
    assert_int_equal(dups, 0);
    assert_int_equal(distinct, N);
    assert_int_equal(C.naccepted, N);
}

static void
chaos__notify_redis_stopped_mid_send__none_lost_no_duplicate(void **state)
{
    long down = chaos_seconds("WA_CHAOS_REDIS_DOWN", 5);
    int port = wa_test_free_port(), rc, dummy;
    char log[160];
    size_t distinct, dups, upto;
    uint64_t t_stop, t_back, t_done;
    bool survived;
    pid_t nt;

    (void)state;
    chaos_redis_init(&C.redis, "notify");
    (void)chaos_redis_start(&C.redis);
    snprintf(C.redis_env, sizeof(C.redis_env), "WA_REDIS_URL=%s", C.redis.url);
    snprintf(log, sizeof(log), "/tmp/wa-chaos-notify-%s-redis.log", C.run);
    sim_latency(500);
    nt = notify_start(port, log);
    load_for(3000, 20); /* about 100 sends in flight at the simulator when Redis stops */
    chaos_redis_stop(&C.redis, SIGTERM);
    t_stop = wa_clock_mono_ms();
    load_for((uint64_t)down * 1000, 20);
    (void)chaos_redis_start(&C.redis);
    t_back = wa_clock_mono_ms();
    upto = C.nrequests;
    load_for(3000, 20);
    (void)wa_test_run_until(C.loop, accepted_below, &upto, 180000);
    t_done = wa_clock_mono_ms();
    upto = C.nrequests;
    (void)wa_test_run_until(C.loop, accepted_below, &upto, 180000);
    wa_test_run_for(C.loop, 2000); /* a late duplicate would show up meanwhile */
    sim_sends(&distinct, &dups);
    survived = !reaped(nt, &dummy);
    rc = survived ? wa_test_stop(nt, SIGTERM, 30000) : dummy;
    printf("chaos notify-redis-stop: invariant: Redis stopped mid-send for %lds and started "
           "again: none lost, no duplicate send, wa-notify recovers without a restart\n"
           "chaos notify-redis-stop: result: requests=%zu accepted=%zu sent=%zu duplicated=%zu "
           "down=%.1fs recovery=%.1fs survived=%s exit=%d -> %s\n",
           down, C.nrequests, C.naccepted, distinct, dups, (double)(t_back - t_stop) / 1000.0,
           (double)(t_done - t_back) / 1000.0, survived ? "yes" : "no", rc,
           C.naccepted == C.nrequests && distinct == C.nrequests && dups == 0 && survived && rc == 0
               ? "PASS"
               : "FAIL");
    fflush(stdout);
    C.redis_env[0] = '\0';
    assert_true(survived);
    assert_int_equal(rc, 0);
    assert_int_equal(C.naccepted, C.nrequests);
    assert_int_equal(distinct, C.nrequests);
    assert_int_equal(dups, 0);
    unlink(log);
}

static void
chaos__notify_scaled_1_3_1_under_load__no_duplicate(void **state)
{
    long phase = chaos_seconds("WA_CHAOS_SECONDS", 12) / 3;
    int port[3] = {wa_test_free_port(), wa_test_free_port(), wa_test_free_port()};
    int rc[3] = {-1, -1, -1};
    bool done[3] = {false, false, false};
    char log[3][160];
    size_t distinct, dups;
    uint64_t t_in, t_last;
    pid_t nt[3];

    (void)state;
    phase = phase < 4 ? 4 : phase;
    for (int i = 0; i < 3; i++) {
        snprintf(log[i], sizeof(log[i]), "/tmp/wa-chaos-notify-%s-scale%d.log", C.run, i);
    }
    sim_latency(1000);
    nt[0] = notify_start(port[0], log[0]);
    load_for((uint64_t)phase * 1000, 10);
    nt[1] = notify_start(port[1], log[1]); /* scale out: 1 -> 3 */
    nt[2] = notify_start(port[2], log[2]);
    load_for((uint64_t)phase * 1000, 10);
    kill(nt[1], SIGTERM); /* scale in: 3 -> 1, both at once */
    kill(nt[2], SIGTERM);
    t_in = wa_clock_mono_ms();
    while ((!done[1] || !done[2]) && wa_clock_mono_ms() - t_in < 60000) {
        load_for(100, 10);
        for (int i = 1; i < 3; i++) {
            done[i] = done[i] || reaped(nt[i], &rc[i]);
        }
    }
    for (int i = 1; i < 3; i++) {
        if (!done[i]) {
            rc[i] = wa_test_stop(nt[i], SIGKILL, 5000);
        }
    }
    load_for((uint64_t)phase * 1000, 10);
    t_last = wa_clock_mono_ms();
    while (C.naccepted < C.nrequests && wa_clock_mono_ms() - t_last < 180000) {
        wa_test_run_for(C.loop, 200);
    }
    wa_test_run_for(C.loop, 2000);
    sim_sends(&distinct, &dups);
    rc[0] = wa_test_stop(nt[0], SIGTERM, 30000);
    printf("chaos notify-scale: invariant: instances scaled 1 -> 3 -> 1 under load (Cloud API "
           "1 s per send) send nothing twice and lose nothing\n"
           "chaos notify-scale: result: requests=%zu accepted=%zu sent=%zu duplicated=%zu "
           "exit=%d,%d,%d phase=%lds drained=%.1fs -> %s\n",
           C.nrequests, C.naccepted, distinct, dups, rc[0], rc[1], rc[2], phase,
           (double)(wa_clock_mono_ms() - t_last) / 1000.0,
           dups == 0 && distinct == C.nrequests && C.naccepted == C.nrequests && rc[0] == 0 &&
                   rc[1] == 0 && rc[2] == 0
               ? "PASS"
               : "FAIL");
    fflush(stdout);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rc[i], 0);
        unlink(log[i]);
    }
    assert_int_equal(dups, 0);
    assert_int_equal(distinct, C.nrequests);
    assert_int_equal(C.naccepted, C.nrequests);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(chaos__notify_killed_under_load__none_lost, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(chaos__notify_rolling_restart_slow_api__no_duplicate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            chaos__notify_redis_stopped_mid_send__none_lost_no_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(chaos__notify_scaled_1_3_1_under_load__no_duplicate, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
