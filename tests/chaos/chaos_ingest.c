/*
 * chaos_ingest.c: wa-ingest killed with SIGKILL again and again under load, with the spool in
 * use (an acknowledgement timeout of 50 ms sends every request Kafka is slow for to the spool).
 *
 * Invariant: every webhook answered 200 is on Kafka once the last daemon has replayed its
 * spool, and the spool ends empty. Printed: answered, lost (must be 0), duplicated (allowed:
 * consumers are idempotent), kills, recovery time (last kill to spool empty).
 *
 * Duration: WA_CHAOS_SECONDS (default 6: the smoke run of make test; make chaos runs longer).
 * Loopback only; the daemon's port and spool directory are private to the run.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wa/clock.h"
#include "wa/contract.h"
#include "wa/crypto.h"
#include "wa/kafka.h"
#include "wa_test.h"
#include "wa_test_proc.h"

#define SECRET   "chaos-secret"
#define PARALLEL 16
#define MAX_SENT 200000

static struct {
    char prefix[64], spool[160], topic[256], group[96];
    int port;
    pid_t pid;
    unsigned char *answered; /* per webhook number: 1 once answered 200 */
    unsigned *seen;          /* per webhook number: copies on Kafka */
    int next;                /* webhooks started */
    size_t got;              /* answered webhooks seen on Kafka at least once */
    size_t want;
    size_t failed;       /* not answered 200 (the daemon died with it): Meta would retry */
    atomic_int pid_live; /* the daemon the killer may kill; 0 while it is being restarted */
    atomic_bool killed;  /* the killer killed it: the main thread reaps and restarts */
    atomic_bool stop;
    uint64_t kill_ms;
} C;

/* The killer: SIGKILL at its own moments, so requests are caught mid-flight. (Children are
 * spawned by the main thread only: they die with the thread that spawned them.) */
static void *
killer(void *arg)
{
    (void)arg;
    while (!atomic_load(&C.stop)) {
        usleep((useconds_t)(C.kill_ms * 1000));
        int pid = atomic_exchange(&C.pid_live, 0);

        if (pid > 0 && !atomic_load(&C.stop)) {
            kill(pid, SIGKILL);
            atomic_store(&C.killed, true);
        } else if (pid > 0) {
            atomic_store(&C.pid_live, pid);
        }
    }
    return NULL;
}

static void
daemon_start(void)
{
    char listen[64], kafka[256], redis[256], prefix[96], spool[200], bin[512], log[256];
    const char *argv[] = {bin, NULL};
    const char *env[] = {listen,
                         kafka,
                         redis,
                         prefix,
                         spool,
                         "WA_APP_SECRET=" SECRET,
                         "WA_VERIFY_TOKEN=chaos-verify",
                         "WA_INGEST_ACK_TIMEOUT=50ms",
                         "WA_SPOOL_REPLAY_INTERVAL=100ms",
                         "WA_LOG_LEVEL=warn",
                         NULL};

    snprintf(listen, sizeof(listen), "WA_LISTEN=127.0.0.1:%d", C.port);
    snprintf(kafka, sizeof(kafka), "WA_KAFKA_BROKERS=%s", wa_test_env("WA_KAFKA_BROKERS"));
    snprintf(redis, sizeof(redis), "WA_REDIS_URL=%s", wa_test_env("WA_REDIS_URL"));
    snprintf(prefix, sizeof(prefix), "WA_TOPIC_PREFIX=%s", C.prefix);
    snprintf(spool, sizeof(spool), "WA_SPOOL_DIR=%s", C.spool);
    snprintf(log, sizeof(log), "%s.log", C.spool);
    wa_test_bin_path("wa-ingest", bin, sizeof(bin));
    C.pid = wa_test_spawn(argv, env, log, WA_TEST_SPAWN_APPEND | WA_TEST_SPAWN_STDOUT_ONLY);
    if (!wa_test_poll_status(C.port, "/healthz", 200, 15000, NULL)) {
        fail_msg("wa-ingest did not start (see %s)", log);
    }
    atomic_store(&C.pid_live, (int)C.pid);
}

static size_t
spool_files(void)
{
    return wa_test_count_files(C.spool, "spool-");
}

/* ---- load ---- */

struct post {
    CURL *easy;
    struct curl_slist *headers;
    char body[768];
    int n;
};

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static void
post_next(CURLM *multi, struct post *p)
{
    char sig[WA_HUB_SIGNATURE_LEN], line[128], url[96];
    int len;

    p->n = C.next++;
    len = snprintf(p->body, sizeof(p->body),
                   "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"w\",\"changes\":"
                   "[{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"p1\"},"
                   "\"messages\":[{\"from\":\"%d\",\"id\":\"wamid.chaos-%07d\",\"timestamp\":"
                   "\"1\",\"type\":\"text\",\"text\":{\"body\":\"n%d\"}}]}}]}]}",
                   p->n % 50, p->n, p->n);
    wa_hub_signature_make(SECRET, p->body, (size_t)len, sig);
    curl_slist_free_all(p->headers);
    snprintf(line, sizeof(line), "X-Hub-Signature-256: %s", sig);
    p->headers = curl_slist_append(NULL, line);
    p->headers = curl_slist_append(p->headers, "Content-Type: application/json");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/webhook", C.port);
    curl_easy_reset(p->easy);
    curl_easy_setopt(p->easy, CURLOPT_URL, url);
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, p->body);
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
    curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(p->easy, CURLOPT_PRIVATE, p);
    /* a fresh connection each time: libcurl would silently resend a request whose reused
     * connection died, hiding the requests a kill caught mid-flight */
    curl_easy_setopt(p->easy, CURLOPT_FORBID_REUSE, 1L);
    curl_multi_add_handle(multi, p->easy);
}

/* Posts for seconds while the killer thread kills the daemon with SIGKILL every kill_ms; each
 * killed daemon is started again on the same port and spool. */
static int
load_with_kills(int seconds, uint64_t kill_ms)
{
    CURLM *multi = curl_multi_init();
    struct post posts[PARALLEL];
    uint64_t end = wa_clock_mono_ms() + (uint64_t)seconds * 1000;
    int running = 0, kills = 0;
    pthread_t th;

    C.kill_ms = kill_ms;
    atomic_store(&C.stop, false);
    assert_int_equal(pthread_create(&th, NULL, killer, NULL), 0);
    for (int i = 0; i < PARALLEL; i++) {
        posts[i].easy = curl_easy_init();
        posts[i].headers = NULL;
        post_next(multi, &posts[i]);
    }
    do {
        CURLMsg *m;
        int left;

        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            struct post *p = NULL;
            long status = 0;

            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&p);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (m->data.result == CURLE_OK && status == 200) {
                C.answered[p->n] = 1;
                C.want++;
            } else {
                C.failed++;
            }
            curl_multi_remove_handle(multi, p->easy);
            if (wa_clock_mono_ms() < end && C.next < MAX_SENT) {
                post_next(multi, p);
            }
        }
        if (atomic_exchange(&C.killed, false)) {
            (void)wa_test_wait_exit(C.pid, 5000);
            kills++;
            if (wa_clock_mono_ms() >= end) {
                atomic_store(&C.stop, true);
            }
            daemon_start();
        }
        if (wa_clock_mono_ms() >= end) {
            atomic_store(&C.stop, true);
        }
        curl_multi_poll(multi, NULL, 0, 5, NULL);
    } while (running > 0 || wa_clock_mono_ms() < end);
    atomic_store(&C.stop, true);
    pthread_join(th, NULL);
    if (atomic_exchange(&C.killed, false)) { /* killed after the last request */
        (void)wa_test_wait_exit(C.pid, 5000);
        kills++;
        daemon_start();
    }
    for (int i = 0; i < PARALLEL; i++) {
        curl_easy_cleanup(posts[i].easy);
        curl_slist_free_all(posts[i].headers);
    }
    curl_multi_cleanup(multi);
    return kills;
}

/* ---- what reached Kafka ---- */

static void
on_message(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    const char *v = msg->value != NULL ? memmem(msg->value, msg->len, "wamid.chaos-", 12) : NULL;

    (void)arg;
    if (v != NULL && (size_t)(v - (const char *)msg->value) + 19 <= msg->len) {
        int n = (int)strtol(v + 12, NULL, 10);

        if (n >= 0 && n < MAX_SENT && C.seen[n]++ == 0 && C.answered[n]) {
            C.got++;
        }
    }
    wa_kafka_consumer_done(c, msg);
}

static bool
all_seen(void *arg)
{
    (void)arg;
    return C.got >= C.want;
}

static bool
spool_empty(void *arg)
{
    (void)arg;
    return spool_files() == 0;
}

static void
chaos__ingest_killed_under_load__every_200_on_kafka(void **state)
{
    const char *secs = wa_test_env_or("WA_CHAOS_SECONDS", "6");
    struct wa_kafka_config kcfg = {0};
    struct wa_kafka_consumer *consumer = NULL;
    struct wa_loop *loop = NULL;
    const char *topics[1] = {C.topic};
    size_t lost = 0, dups = 0;
    uint64_t t_last;
    int kills;

    (void)state;
    C.answered = calloc(MAX_SENT, 1);
    C.seen = calloc(MAX_SENT, sizeof(*C.seen));
    assert_non_null(C.answered);
    assert_non_null(C.seen);
    wa_test_unique_prefix(C.prefix, sizeof(C.prefix));
    snprintf(C.spool, sizeof(C.spool), "/tmp/wa-chaos-ingest-%.30s", C.prefix);
    snprintf(C.group, sizeof(C.group), "%schaos", C.prefix);
    kcfg.brokers = wa_test_env("WA_KAFKA_BROKERS");
    kcfg.topic_prefix = C.prefix;
    assert_int_equal(wa_kafka_topic(&kcfg, WA_TOPIC_INBOUND_MESSAGE, C.topic, sizeof(C.topic)),
                     WA_OK);
    {
        static const char *const names[] = {WA_TOPIC_INBOUND_MESSAGE, WA_TOPIC_INBOUND_STATUS,
                                            WA_TOPIC_ACCOUNT_EVENT, WA_TOPIC_WEBHOOK_RAW};
        char t[4][256];
        const char *all[4];

        for (int i = 0; i < 4; i++) {
            assert_int_equal(wa_kafka_topic(&kcfg, names[i], t[i], sizeof(t[i])), WA_OK);
            all[i] = t[i];
        }
        assert_int_equal(wa_kafka_topics_ensure(&kcfg, all, 4, 4, 30000, NULL), WA_OK);
    }
    C.port = wa_test_free_port();
    daemon_start();

    kills = load_with_kills(strtol(secs, NULL, 10) > 0 ? (int)strtol(secs, NULL, 10) : 6, 1500);
    t_last = wa_clock_mono_ms();
    /* the last daemon replays what every earlier one spooled */
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    while (!spool_empty(NULL) && wa_clock_mono_ms() - t_last < 120000) {
        usleep(50000);
    }
    assert_true(spool_empty(NULL));
    assert_int_equal(
        wa_kafka_consumer_new(loop, &kcfg, C.group, topics, 1, on_message, NULL, &consumer, NULL),
        WA_OK);
    (void)wa_test_run_until(loop, all_seen, NULL, 60000);
    wa_test_run_for(loop, 500);
    for (int n = 0; n < C.next; n++) {
        lost += C.answered[n] && C.seen[n] == 0;
        dups += C.seen[n] > 1 ? C.seen[n] - 1 : 0;
    }
    printf("chaos ingest-kill9: invariant: every webhook answered 200 is on Kafka, the spool ends "
           "empty\nchaos ingest-kill9: result: sent=%d answered=%zu unanswered=%zu lost=%zu "
           "duplicated=%zu "
           "kills=%d recovery=%.1fs spool_files=%zu -> %s\n",
           C.next, C.want, C.failed, lost, dups, kills,
           (double)(wa_clock_mono_ms() - t_last) / 1000.0, spool_files(),
           lost == 0 ? "PASS" : "FAIL");
    fflush(stdout);
    wa_kafka_consumer_free(consumer);
    wa_loop_free(loop);
    assert_int_equal(wa_test_stop(C.pid, SIGTERM, 20000), 0);
    assert_int_equal(lost, 0);
    assert_true(C.want > 0);
    assert_true(kills > 0);
    {
        char log[256];

        snprintf(log, sizeof(log), "%s.log", C.spool);
        unlink(log);
        rmdir(C.spool);
    }
    free(C.answered);
    free(C.seen);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chaos__ingest_killed_under_load__every_200_on_kafka),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
