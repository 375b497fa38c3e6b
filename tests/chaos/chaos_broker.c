/*
 * chaos_broker.c: the Kafka broker killed with SIGKILL under load on every daemon of the
 * auto-reply chain, and started again on its data after an outage.
 *
 *   broker-kill9: a steady stream of signed webhooks (WA_CHAOS_RATE per second, default 20,
 *     each a new customer writing a text) into wa-ingest -> inbound.message -> wa-router (one
 *     rule: reply to every text, quoting its wamid) -> outbound.request -> wa-notify ->
 *     wa-cloudsim. The scenario's own broker (chaos_infra.h: never the suite's shared one) is
 *     killed with SIGKILL, left down for each outage of WA_CHAOS_BROKER_OUTAGES (seconds,
 *     comma-separated; default "5", the smoke run of make test; make chaos: "5,30,120") and
 *     started again while the webhooks keep coming. Invariant: every webhook answered 200
 *     reaches its outcome, its auto-reply accepted at the simulator exactly once (none lost,
 *     no duplicate send). Printed per outage: the broker's restart time and the recovery time
 *     (broker answering again -> the reply to every webhook answered before that at the
 *     simulator).
 *
 * Redis is the suite's (the scenario disturbs only Kafka); ports, topic prefix, spool
 * directory and broker data are private to the run. The load runs on its own thread (libcurl
 * multi, fresh connection per webhook); children are spawned by the main thread only (they die
 * with the thread that spawned them).
 */
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chaos_infra.h"
#include "chaos_webhook.h"
#include "wa/buf.h"
#include "wa/clock.h"
#include "wa/contract.h"
#include "wa/crypto.h"
#include "wa/json.h"
#include "wa/kafka.h"
#include "wa_test.h"
#include "wa_test_proc.h"

#define SECRET      "e2e-secret" /* wa_test_spawn_daemon's WA_APP_SECRET */
#define NUMBER      "100000000000001"
#define PARALLEL    16
#define MAX_HOOKS   200000
#define MAX_OUTAGES 8

enum { PENDING = 0, ANSWERED = 1, REFUSED = 2 }; /* per webhook: its answer */

static struct {
    struct chaos_kafka kafka;
    char prefix[64], run[16], dir[160], rules[200], spool[200], sim_url[64];
    char env_brokers[96], env_rules[256], env_spool[256], env_graph[128];
    int port_sim, port_ingest, port_router, port_notify;
    pid_t sim, ingest, router, notify;
    bool passed; /* the scenario ended well: its directory (logs) is removed */
    /* the load thread writes, the main thread reads */
    pthread_t loader;
    bool loading; /* the loader thread runs (joined when false) */
    atomic_bool stop;
    atomic_int next; /* webhooks started */
    atomic_uchar *status;
    int rate;
    /* the main thread's view of the simulator */
    unsigned short *sends; /* per webhook: replies accepted at the simulator */
} C;

/* ---- the load ---- */

struct post {
    CURL *easy;
    struct curl_slist *headers;
    char body[1024];
    int n;
};

static void
post_start(CURLM *multi, struct post *p, int n)
{
    int len;

    p->n = n;
    len = snprintf(p->body, sizeof(p->body),
                   "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":"
                   "\"200000000000001\",\"changes\":[{\"value\":{\"messaging_product\":"
                   "\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550000001\","
                   "\"phone_number_id\":\"" NUMBER "\"},\"contacts\":[{\"profile\":{\"name\":"
                   "\"Chaos %d\"},\"wa_id\":\"1777%07d\"}],\"messages\":[{\"from\":\"1777%07d\","
                   "\"id\":\"wamid.%s-%07d\",\"timestamp\":\"%lld\",\"text\":{\"body\":\"hello "
                   "%d\"},\"type\":\"text\"}]},\"field\":\"messages\"}]}]}",
                   n, n, n, C.run, n, (long long)time(NULL), n);
    chaos_webhook_post(multi, p->easy, &p->headers, C.port_ingest, SECRET, p->body, (size_t)len,
                       10000L, p);
}

/* Open loop at C.rate per second (a webhook waits only when PARALLEL are unanswered), until
 * C.stop; then waits for the answers still due. */
static void *
loader(void *arg)
{
    CURLM *multi = curl_multi_init();
    struct post posts[PARALLEL];
    struct post *idle[PARALLEL];
    size_t nidle = PARALLEL;
    uint64_t interval_us = 1000000 / (uint64_t)C.rate, due = wa_clock_mono_us();
    int running = 0;

    (void)arg;
    for (int i = 0; i < PARALLEL; i++) {
        posts[i].easy = curl_easy_init();
        posts[i].headers = NULL;
        idle[i] = &posts[i];
    }
    while (!atomic_load(&C.stop) || nidle < PARALLEL) {
        CURLMsg *m;
        int left;

        while (!atomic_load(&C.stop) && nidle > 0 && wa_clock_mono_us() >= due &&
               atomic_load(&C.next) < MAX_HOOKS) {
            post_start(multi, idle[--nidle], atomic_fetch_add(&C.next, 1));
            due += interval_us;
        }
        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            struct post *p = NULL;
            long status = 0;

            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&p);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            atomic_store(&C.status[p->n],
                         m->data.result == CURLE_OK && status == 200 ? ANSWERED : REFUSED);
            curl_multi_remove_handle(multi, p->easy);
            idle[nidle++] = p;
        }
        curl_multi_poll(multi, NULL, 0, 5, NULL);
    }
    for (int i = 0; i < PARALLEL; i++) {
        curl_easy_cleanup(posts[i].easy);
        curl_slist_free_all(posts[i].headers);
    }
    curl_multi_cleanup(multi);
    return NULL;
}

/* ---- outcomes at the simulator ---- */

/* The webhook number of a reply's request id "rt:wamid.<run>-<n>:<rule>:<i>", or -1. */
static long
number_of(const char *request_id)
{
    char want[48];
    size_t l = (size_t)snprintf(want, sizeof(want), "rt:wamid.%s-", C.run);

    if (request_id == NULL || strncmp(request_id, want, l) != 0) {
        return -1;
    }
    return strtol(request_id + l, NULL, 10);
}

/* Reads every send from the simulator into C.sends. */
static void
sim_sends(void)
{
    char url[128];
    struct wa_test_http_req req = {.url = url, .timeout_ms = 20000};
    struct wa_buf b;
    json_t *root = NULL, *m;
    size_t i;

    memset(C.sends, 0, MAX_HOOKS * sizeof(*C.sends));
    snprintf(url, sizeof(url), "%s/_sim/messages?limit=100000", C.sim_url);
    wa_buf_init(&b, 0);
    if (wa_test_http(&req, &b) == 200 && wa_json_parse(b.data, b.len, 0, &root, NULL) == WA_OK) {
        json_array_foreach(json_object_get(root, "data"), i, m)
        {
            long n = number_of(wa_json_str(m, "biz_opaque_callback_data"));

            if (n >= 0 && n < MAX_HOOKS) {
                C.sends[n]++;
            }
        }
    }
    json_decref(root);
    wa_buf_cleanup(&b);
}

struct tally {
    size_t started, answered, refused, pending, replied, lost, dups;
};

/* Webhooks [0, upto) against the simulator's sends (read again first). */
static void
tally(int upto, struct tally *t)
{
    memset(t, 0, sizeof(*t));
    sim_sends();
    for (int n = 0; n < upto; n++) {
        int st = atomic_load(&C.status[n]);

        t->started++;
        t->answered += st == ANSWERED;
        t->refused += st == REFUSED;
        t->pending += st == PENDING;
        t->replied += C.sends[n] > 0;
        t->lost += st == ANSWERED && C.sends[n] == 0; /* so far: final once nothing is due */
        t->dups += C.sends[n] > 1 ? C.sends[n] - 1u : 0u;
    }
}

/* Waits (up to timeout_ms) until every webhook below upto is answered and every one answered
 * 200 has its reply; returns the last tally. */
static void
await_outcomes(int upto, uint64_t timeout_ms, struct tally *t)
{
    uint64_t end = wa_clock_mono_ms() + timeout_ms;

    for (;;) {
        tally(upto, t);
        if ((t->pending == 0 && t->lost == 0) || wa_clock_mono_ms() >= end) {
            return;
        }
        usleep(500000);
    }
}

/* ---- the chain ---- */

static pid_t
start_daemon(const char *name, int port, const char *const *extra)
{
    char log[256];
    pid_t pid;

    snprintf(log, sizeof(log), "%s/%s.log", C.dir, name);
    pid = wa_test_spawn_daemon(name, port, C.prefix, extra, log);
    if (!wa_test_poll_status(port, "/readyz", 200, 60000, NULL)) {
        fail_msg("%s did not start (see %s)", name, log);
    }
    return pid;
}

static void
write_rules(void)
{
    FILE *f = fopen(C.rules, "w");

    assert_non_null(f);
    fputs("{\"version\":1,\"rules\":[{\"name\":\"echo\",\"match\":{\"type\":\"text\"},"
          "\"actions\":[{\"reply\":{\"text\":\"got {{wamid}}\"}}]}]}\n",
          f);
    assert_int_equal(fclose(f), 0);
}

static int
setup(void **state)
{
    struct wa_kafka_config kcfg = {0};
    static const char *const names[] = {WA_CONTRACT_TOPICS};
    enum { NT = sizeof(names) / sizeof(names[0]) };
    char topics[NT][256];
    const char *tp[NT];
    const char *sim_env[] = {"WA_SIM_LIMITS=off", "WA_WEBHOOK_URL=", "WA_LOG_LEVEL=warn", NULL};
    const char *ingest_env[] = {C.env_brokers,
                                C.env_spool,
                                "WA_INGEST_ACK_TIMEOUT=1s",
                                "WA_SPOOL_REPLAY_INTERVAL=200ms",
                                "WA_LOG_LEVEL=warn",
                                NULL};
    const char *router_env[] = {C.env_brokers, C.env_rules, "WA_ROUTER_RETRY=500ms",
                                "WA_LOG_LEVEL=warn", NULL};
    const char *notify_env[] = {C.env_brokers,
                                C.env_graph,
                                "WA_NOTIFY_MPS=1000",
                                "WA_NOTIFY_BACKOFF_BASE=200ms",
                                "WA_NOTIFY_BACKOFF_MAX=2s",
                                "WA_LOG_LEVEL=warn",
                                NULL};

    (void)state;
    memset(&C, 0, sizeof(C));
    C.status = calloc(MAX_HOOKS, sizeof(*C.status));
    C.sends = calloc(MAX_HOOKS, sizeof(*C.sends));
    assert_non_null(C.status);
    assert_non_null(C.sends);
    C.rate = (int)chaos_seconds("WA_CHAOS_RATE", 20);
    wa_test_unique_prefix(C.prefix, sizeof(C.prefix));
    snprintf(C.run, sizeof(C.run), "bk%04d", (int)(getpid() % 10000));
    snprintf(C.dir, sizeof(C.dir), "/tmp/wa-chaos-broker-%d", (int)getpid());
    chaos_rmtree(C.dir);
    assert_int_equal(mkdir(C.dir, 0755), 0);
    snprintf(C.rules, sizeof(C.rules), "%s/rules.json", C.dir);
    snprintf(C.spool, sizeof(C.spool), "%s/spool", C.dir);
    write_rules();

    chaos_kafka_init(&C.kafka, "broker");
    (void)chaos_kafka_start(&C.kafka);
    kcfg.brokers = C.kafka.brokers;
    kcfg.topic_prefix = C.prefix;
    for (int i = 0; i < NT; i++) {
        assert_int_equal(wa_kafka_topic(&kcfg, names[i], topics[i], sizeof(topics[i])), WA_OK);
        tp[i] = topics[i];
    }
    assert_int_equal(wa_kafka_topics_ensure(&kcfg, tp, NT, 4, 60000, NULL), WA_OK);

    C.port_sim = wa_test_free_port();
    C.port_ingest = wa_test_free_port();
    C.port_router = wa_test_free_port();
    C.port_notify = wa_test_free_port();
    snprintf(C.sim_url, sizeof(C.sim_url), "http://127.0.0.1:%d", C.port_sim);
    snprintf(C.env_brokers, sizeof(C.env_brokers), "WA_KAFKA_BROKERS=%s", C.kafka.brokers);
    snprintf(C.env_rules, sizeof(C.env_rules), "WA_ROUTER_RULES=%s", C.rules);
    snprintf(C.env_spool, sizeof(C.env_spool), "WA_SPOOL_DIR=%s", C.spool);
    snprintf(C.env_graph, sizeof(C.env_graph), "WA_GRAPH_URL=%s/v21.0", C.sim_url);
    C.sim = start_daemon("wa-cloudsim", C.port_sim, sim_env);
    C.notify = start_daemon("wa-notify", C.port_notify, notify_env);
    C.router = start_daemon("wa-router", C.port_router, router_env);
    C.ingest = start_daemon("wa-ingest", C.port_ingest, ingest_env);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    atomic_store(&C.stop, true);
    if (C.loading) {
        pthread_join(C.loader, NULL);
    }
    wa_test_stop(C.ingest, SIGTERM, 30000);
    wa_test_stop(C.router, SIGTERM, 30000);
    wa_test_stop(C.notify, SIGTERM, 30000);
    wa_test_stop(C.sim, SIGTERM, 10000);
    chaos_kafka_cleanup(&C.kafka);
    if (C.passed && getenv("WA_CHAOS_KEEP_LOGS") == NULL) {
        chaos_rmtree(C.dir);
    } else {
        printf("logs kept in %s\n", C.dir);
    }
    free(C.status);
    free(C.sends);
    return 0;
}

/* ---- the scenario ---- */

static void
chaos__broker_killed_under_load__every_answered_webhook_replied_once(void **state)
{
    long outages[MAX_OUTAGES];
    size_t nout = chaos_seconds_list("WA_CHAOS_BROKER_OUTAGES", "5", outages, MAX_OUTAGES);
    struct tally t;
    bool pass = true;

    (void)state;
    assert_true(nout > 0);
    printf("chaos broker-kill9: invariant: with the broker killed (SIGKILL) and restarted under "
           "load, every webhook answered 200 gets its auto-reply sent exactly once (none lost, "
           "no duplicate send)\n");
    assert_int_equal(pthread_create(&C.loader, NULL, loader, NULL), 0);
    C.loading = true;
    /* warm-up: the consumer groups settle and the chain answers */
    sleep(5);
    await_outcomes(atomic_load(&C.next), 120000, &t);
    if (t.lost > 0 || t.pending > 0) {
        fail_msg("the chain did not answer before any chaos: %zu of %zu webhooks without a reply "
                 "(logs in %s)",
                 t.lost, t.answered, C.dir);
    }
    for (size_t i = 0; i < nout; i++) {
        uint64_t t_kill, t_ready, restart_ms, recovery_ms;
        int upto;

        sleep(3);
        chaos_kafka_stop(&C.kafka, SIGKILL);
        t_kill = wa_clock_mono_ms();
        while (wa_clock_mono_ms() - t_kill < (uint64_t)outages[i] * 1000) {
            usleep(100000);
        }
        restart_ms = chaos_kafka_start(&C.kafka);
        t_ready = wa_clock_mono_ms();
        upto = atomic_load(&C.next);
        await_outcomes(upto, 600000, &t);
        recovery_ms = wa_clock_mono_ms() - t_ready;
        pass = pass && t.lost == 0 && t.dups == 0 && t.pending == 0;
        printf("chaos broker-kill9: result: outage=%lds down=%.1fs webhooks=%zu answered=%zu "
               "unanswered=%zu replied=%zu lost=%zu duplicated=%zu broker_restart=%.1fs "
               "recovery=%.1fs -> %s\n",
               outages[i], (double)(t_ready - t_kill) / 1000.0, t.started, t.answered,
               t.refused + t.pending, t.replied, t.lost, t.dups, (double)restart_ms / 1000.0,
               (double)recovery_ms / 1000.0,
               t.lost == 0 && t.dups == 0 && t.pending == 0 ? "PASS" : "FAIL");
        fflush(stdout);
    }
    atomic_store(&C.stop, true);
    pthread_join(C.loader, NULL);
    C.loading = false;
    await_outcomes(atomic_load(&C.next), 300000, &t);
    /* late copies: a duplicate send would show up a moment after the last reply */
    sleep(3);
    tally(atomic_load(&C.next), &t);
    pass = pass && t.lost == 0 && t.dups == 0;
    printf("chaos broker-kill9: result: total webhooks=%zu answered=%zu unanswered=%zu "
           "replied=%zu lost=%zu duplicated=%zu rate=%d/s -> %s\n",
           t.started, t.answered, t.refused + t.pending, t.replied, t.lost, t.dups, C.rate,
           pass ? "PASS" : "FAIL");
    fflush(stdout);
    assert_int_equal(t.lost, 0);
    assert_int_equal(t.dups, 0);
    assert_true(pass);
    assert_true(t.answered > 0);
    C.passed = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            chaos__broker_killed_under_load__every_answered_webhook_replied_once, setup, teardown),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
