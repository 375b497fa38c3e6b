/*
 * chaos_ingest.c: wa-ingest and its spool disturbed. Scenarios (each prints its invariant and
 * result as "chaos <name>: ..."):
 *
 *   ingest-kill9        SIGKILL again and again under load, with the spool in use (an
 *                       acknowledgement timeout of 50 ms sends every request Kafka is slow for to
 *                       the spool). Invariant: every webhook answered 200 is on Kafka once the
 *                       last daemon has replayed its spool, and the spool ends empty.
 *   ingest-disk-full    Kafka down (the daemon points at an unreachable broker) and the spool on
 *                       a 1 MiB tmpfs that a filler file leaves 192 KiB of; webhooks until writes
 *                       fail, a duplicate pair sent while its first copy fails, then the filler
 *                       removed. Invariant: every 200 is a record in a spool file; the spool is
 *                       not ready while full and ready again without a restart once space
 *                       returns (recovery time printed); the duplicate's redelivery is taken;
 *                       after Kafka returns (a restart on the real broker) every 200 is on Kafka.
 *                       Needs mount(2) (root); printed as skipped otherwise.
 *   ingest-spool-damage spool files with a flipped byte, a truncated tail and a zeroed 4 KiB
 *                       block. Invariant: every record that can still be read (before and after
 *                       the damage) is published, the damage is counted, the daemon lives.
 *   ingest-redis-pause  webhooks (new ones and redeliveries) while the daemon's private Redis is
 *                       paused with CLIENT PAUSE for 2 s mid-request. Invariant: every request is
 *                       answered, every 200 is on Kafka.
 *
 * Duration of ingest-kill9 and ingest-redis-pause: WA_CHAOS_SECONDS (default 6: the smoke run
 * of make test; make chaos runs longer); the others are bounded by their data. Loopback only; each
 * scenario has its own topic prefix, port and spool directory; the shared Kafka is never
 * stopped (an outage is an unreachable broker address) and Redis is paused only when private.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chaos_webhook.h"
#include "wa/clock.h"
#include "wa/contract.h"
#include "wa/crypto.h"
#include "wa/id.h"
#include "wa/kafka.h"
#include "wa/spool_frame.h"
#include "wa_test.h"
#include "wa_test_proc.h"

#define SECRET   "chaos-secret"
#define PARALLEL 16
#define MAX_SENT 200000

static struct {
    char prefix[64], spool[160], topic[256], group[96];
    char brokers[256], redis[256];
    const char *extra[4]; /* more settings of the daemon, NULL-ended */
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
    char listen[64], kafka[300], redis[300], prefix[96], spool[200], bin[512], log[256];
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
                         C.extra[0],
                         C.extra[1],
                         C.extra[2],
                         NULL};

    snprintf(listen, sizeof(listen), "WA_LISTEN=127.0.0.1:%d", C.port);
    snprintf(kafka, sizeof(kafka), "WA_KAFKA_BROKERS=%s",
             C.brokers[0] ? C.brokers : wa_test_env("WA_KAFKA_BROKERS"));
    snprintf(redis, sizeof(redis), "WA_REDIS_URL=%s",
             C.redis[0] ? C.redis : wa_test_env("WA_REDIS_URL"));
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
    int slot; /* post_batch: index of the webhook in the batch */
};

/* Adds webhook number n (message "wamid.chaos-<n>") to multi. */
static void
post_prepare(CURLM *multi, struct post *p, int n)
{
    int len;

    p->n = n;
    len = snprintf(p->body, sizeof(p->body),
                   "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"w\",\"changes\":"
                   "[{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"p1\"},"
                   "\"messages\":[{\"from\":\"%d\",\"id\":\"wamid.chaos-%07d\",\"timestamp\":"
                   "\"1\",\"type\":\"text\",\"text\":{\"body\":\"n%d\"}}]}}]}]}",
                   p->n % 50, p->n, p->n);
    chaos_webhook_post(multi, p->easy, &p->headers, C.port, SECRET, p->body, (size_t)len, 5000L, p);
}

static void
post_next(CURLM *multi, struct post *p)
{
    post_prepare(multi, p, C.next++);
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

/* ---- a scenario's frame ---- */

static struct wa_kafka_config kcfg;

/* A fresh prefix, its topics, a port and spool directory (mode: "kill9" ...), and no webhook
 * answered yet. */
static void
scenario_begin(const char *mode)
{
    static const char *const names[] = {WA_TOPIC_INBOUND_MESSAGE, WA_TOPIC_INBOUND_STATUS,
                                        WA_TOPIC_ACCOUNT_EVENT, WA_TOPIC_WEBHOOK_RAW};
    char t[4][256];
    const char *all[4];

    memset(&C, 0, sizeof(C));
    C.answered = calloc(MAX_SENT, 1);
    C.seen = calloc(MAX_SENT, sizeof(*C.seen));
    assert_non_null(C.answered);
    assert_non_null(C.seen);
    wa_test_unique_prefix(C.prefix, sizeof(C.prefix));
    snprintf(C.spool, sizeof(C.spool), "/tmp/wa-chaos-ingest-%s-%.30s", mode, C.prefix);
    snprintf(C.group, sizeof(C.group), "%schaos", C.prefix);
    memset(&kcfg, 0, sizeof(kcfg));
    kcfg.brokers = wa_test_env("WA_KAFKA_BROKERS");
    kcfg.topic_prefix = C.prefix;
    assert_int_equal(wa_kafka_topic(&kcfg, WA_TOPIC_INBOUND_MESSAGE, C.topic, sizeof(C.topic)),
                     WA_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(wa_kafka_topic(&kcfg, names[i], t[i], sizeof(t[i])), WA_OK);
        all[i] = t[i];
    }
    assert_int_equal(wa_kafka_topics_ensure(&kcfg, all, 4, 4, 30000, NULL), WA_OK);
    C.port = wa_test_free_port();
}

/* Reads inbound.message until every webhook answered 200 was seen (or 60 s), then a little
 * more for copies; *lost and *dups over the webhooks numbered below C.next. */
static void
kafka_check(size_t *lost, size_t *dups)
{
    struct wa_kafka_consumer *consumer = NULL;
    struct wa_loop *loop = NULL;
    const char *topics[1] = {C.topic};

    assert_int_equal(wa_loop_new(&loop), WA_OK);
    assert_int_equal(
        wa_kafka_consumer_new(loop, &kcfg, C.group, topics, 1, on_message, NULL, &consumer, NULL),
        WA_OK);
    (void)wa_test_run_until(loop, all_seen, NULL, 60000);
    wa_test_run_for(loop, 500);
    *lost = *dups = 0;
    for (int n = 0; n < C.next; n++) {
        *lost += C.answered[n] && C.seen[n] == 0;
        *dups += C.seen[n] > 1 ? C.seen[n] - 1 : 0;
    }
    wa_kafka_consumer_free(consumer);
    wa_loop_free(loop);
}

static void
scenario_end(void)
{
    char log[256];

    snprintf(log, sizeof(log), "%s.log", C.spool);
    unlink(log);
    rmdir(C.spool);
    free(C.answered);
    free(C.seen);
    C.answered = NULL;
    C.seen = NULL;
}

static void
chaos__ingest_killed_under_load__every_200_on_kafka(void **state)
{
    const char *secs = wa_test_env_or("WA_CHAOS_SECONDS", "6");
    size_t lost = 0, dups = 0;
    uint64_t t_last;
    int kills;

    (void)state;
    scenario_begin("kill9");
    daemon_start();

    kills = load_with_kills(strtol(secs, NULL, 10) > 0 ? (int)strtol(secs, NULL, 10) : 6, 1500);
    t_last = wa_clock_mono_ms();
    /* the last daemon replays what every earlier one spooled */
    while (!spool_empty(NULL) && wa_clock_mono_ms() - t_last < 120000) {
        usleep(50000);
    }
    assert_true(spool_empty(NULL));
    kafka_check(&lost, &dups);
    printf("chaos ingest-kill9: invariant: every webhook answered 200 is on Kafka, the spool ends "
           "empty\nchaos ingest-kill9: result: sent=%d answered=%zu unanswered=%zu lost=%zu "
           "duplicated=%zu "
           "kills=%d recovery=%.1fs spool_files=%zu -> %s\n",
           C.next, C.want, C.failed, lost, dups, kills,
           (double)(wa_clock_mono_ms() - t_last) / 1000.0, spool_files(),
           lost == 0 ? "PASS" : "FAIL");
    fflush(stdout);
    assert_int_equal(wa_test_stop(C.pid, SIGTERM, 20000), 0);
    assert_int_equal(lost, 0);
    assert_true(C.want > 0);
    assert_true(kills > 0);
    scenario_end();
}

/* ---- webhooks posted in a batch ---- */

/* Posts webhooks nums[0..n) (numbers may repeat: redeliveries), parallel at a time, each on a
 * fresh connection; status[i] gets each answer (0: none). progress(done) is called as answers
 * come (may be NULL). Marks C.answered for every 200. */
static void
post_batch(const int *nums, int n, int parallel, long *status, void (*progress)(int done))
{
    CURLM *multi = curl_multi_init();
    struct post posts[PARALLEL];
    int next = 0, done = 0, running = 0;

    WA_ASSERT(parallel <= PARALLEL);
    for (int i = 0; i < parallel; i++) {
        posts[i].easy = curl_easy_init();
        posts[i].headers = NULL;
        posts[i].slot = -1;
        if (next < n) {
            posts[i].slot = next;
            post_prepare(multi, &posts[i], nums[next++]);
        }
    }
    while (done < n) {
        CURLMsg *m;
        int left;

        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            struct post *p = NULL;
            long code = 0;

            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&p);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            status[p->slot] = m->data.result == CURLE_OK ? code : 0;
            if (status[p->slot] == 200) {
                C.answered[p->n] = 1;
            }
            curl_multi_remove_handle(multi, p->easy);
            done++;
            if (progress != NULL) {
                progress(done);
            }
            if (next < n) {
                p->slot = next;
                post_prepare(multi, p, nums[next++]);
            }
        }
        curl_multi_poll(multi, NULL, 0, 5, NULL);
    }
    for (int i = 0; i < parallel; i++) {
        curl_easy_cleanup(posts[i].easy);
        curl_slist_free_all(posts[i].headers);
    }
    curl_multi_cleanup(multi);
    for (int i = 0; i < n; i++) {
        if (nums[i] >= C.next) {
            C.next = nums[i] + 1;
        }
    }
}

/* The /readyz body's check "spool" is "up" (or "down"). */
static bool
spool_check_is(const char *want)
{
    struct wa_test_http_req req = {.port = C.port, .path = "/readyz", .timeout_ms = 2000};
    char needle[32];
    struct wa_buf b;
    bool is;

    wa_buf_init(&b, 0);
    (void)wa_test_http(&req, &b);
    snprintf(needle, sizeof(needle), "\"spool\":\"%s\"", want);
    is = b.data != NULL && strstr(b.data, needle) != NULL;
    wa_buf_cleanup(&b);
    return is;
}

/* A metric line's value ("name{labels}" exactly), -1 when absent. */
static double
metric(const char *series)
{
    return wa_test_metric(C.port, series);
}

/* Marks in on_disk[n] every webhook n whose inbound.message record is in a spool file. */
static void
spool_scan(unsigned char *on_disk)
{
    DIR *d = opendir(C.spool);
    struct dirent *de;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        char path[512];
        size_t len = 0, off = 0, flen;
        unsigned char *data;
        const char *f[WA_SPOOL_FIELDS];
        size_t l[WA_SPOOL_FIELDS];

        if (strncmp(de->d_name, "spool-", 6) != 0 ||
            strcmp(de->d_name + strlen(de->d_name) - 4, ".log") != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", C.spool, de->d_name);
        data = (unsigned char *)wa_test_read_file(path, &len);
        while (data != NULL && off < len) {
            const char *w;

            if (!wa_spool_frame_at(data, len, off, f, l, &flen)) {
                off = wa_spool_frame_resync(data, len, off);
                continue;
            }
            if (l[0] == strlen(C.topic) && memcmp(f[0], C.topic, l[0]) == 0 &&
                (w = memmem(f[6], l[6], "wamid.chaos-", 12)) != NULL) {
                long n = strtol(w + 12, NULL, 10);

                if (n >= 0 && n < MAX_SENT) {
                    on_disk[n] = 1;
                }
            }
            off += flen;
        }
        free(data);
    }
    closedir(d);
}

/* ---- disk full ---- */

static void
chaos__spool_disk_full_kafka_down__no_200_without_a_record_then_recovery(void **state)
{
    enum { FILL = 600, AFTER = 100, DUP = 5000, TMPFS = 1024 * 1024, LEFT = 192 * 1024 };
    static int nums[FILL + AFTER];
    static long status[FILL + AFTER];
    static unsigned char on_disk[MAX_SENT];
    char filler[256];
    int ok_full = 0, refused = 0, ok_after = 0, missing = 0, fd;
    bool down_while_full, dup_ok;
    long pair_status[2], redo_status[1];
    size_t lost = 0, dups = 0;
    double recovery, write_failures;
    uint64_t t0;

    (void)state;
    scenario_begin("full");
    mkdir(C.spool, 0700);
    if (mount("tmpfs", C.spool, "tmpfs", 0, "size=1m,mode=0700") != 0) {
        printf("chaos ingest-disk-full: skipped: mount(2) of a tmpfs not permitted here (%s)\n",
               strerror(errno));
        fflush(stdout);
        skip();
    }
    snprintf(filler, sizeof(filler), "%s/filler", C.spool);
    fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    for (size_t n = 0; n < TMPFS - LEFT; n += 4096) {
        static const char page[4096];

        assert_int_equal(write(fd, page, sizeof(page)), (ssize_t)sizeof(page));
    }
    close(fd);
    snprintf(C.brokers, sizeof(C.brokers), "127.0.0.1:1"); /* Kafka down */
    C.extra[0] = "WA_SPOOL_FILE_MAX=64KiB";
    daemon_start();

    /* until the spool is full: no 200 without its record on disk */
    for (int i = 0; i < FILL; i++) {
        nums[i] = i;
    }
    post_batch(nums, FILL, PARALLEL, status, NULL);
    for (int i = 0; i < FILL; i++) {
        ok_full += status[i] == 200;
        refused += status[i] == 503;
    }
    down_while_full = spool_check_is("down") &&
                      !wa_test_poll_status(C.port, "/readyz", 200, 300, NULL); /* not durable */
    /* a redelivery arriving while the first copy fails: neither is answered 200 without its
     * own record durable */
    {
        int pair[2] = {DUP, DUP};

        post_batch(pair, 2, 2, pair_status, NULL);
    }

    /* space returns: ready again without a request or a restart */
    t0 = wa_clock_mono_ms();
    assert_int_equal(unlink(filler), 0);
    while (!spool_check_is("up") && wa_clock_mono_ms() - t0 < 10000) {
        usleep(20000);
    }
    recovery = (double)(wa_clock_mono_ms() - t0) / 1000.0;
    assert_true(spool_check_is("up"));
    /* Kafka still away: ready on the spool alone (10 s after start at the earliest) */
    assert_true(wa_test_poll_status(C.port, "/readyz", 200, 15000, NULL));
    for (int i = 0; i < AFTER; i++) {
        nums[i] = FILL + i;
    }
    post_batch(nums, AFTER, PARALLEL, status, NULL);
    for (int i = 0; i < AFTER; i++) {
        ok_after += status[i] == 200;
    }
    {
        int redelivery = DUP; /* Meta's retry of the failed pair */

        post_batch(&redelivery, 1, 1, redo_status, NULL);
        dup_ok = redo_status[0] == 200;
    }
    spool_scan(on_disk);
    for (int n = 0; n < C.next; n++) {
        missing += C.answered[n] && !on_disk[n];
    }
    write_failures = metric("wa_ingest_spool_write_failures_total");
    assert_int_equal(wa_test_stop(C.pid, SIGTERM, 20000), 0);

    /* Kafka returns: every 200 reaches it */
    snprintf(C.brokers, sizeof(C.brokers), "%s", wa_test_env("WA_KAFKA_BROKERS"));
    daemon_start();
    t0 = wa_clock_mono_ms();
    while (!spool_empty(NULL) && wa_clock_mono_ms() - t0 < 60000) {
        usleep(50000);
    }
    C.want = 0;
    for (int n = 0; n < C.next; n++) {
        C.want += C.answered[n];
    }
    kafka_check(&lost, &dups);
    printf("chaos ingest-disk-full: invariant: no 200 without its record in a spool file; not "
           "ready while full (Kafka away), ready again when space returns; after Kafka returns "
           "every 200 is "
           "on Kafka\n"
           "chaos ingest-disk-full: result: full: answered=%d refused_503=%d not_on_disk=%d "
           "spool_ready_while_full=%s write_failures=%.0f; recovery=%.2fs answered_after=%d/%d; "
           "duplicate pair while failing=%ld,%ld redelivery=%ld; lost=%zu duplicated=%zu -> %s\n",
           ok_full, refused, missing, down_while_full ? "no" : "yes", write_failures, recovery,
           ok_after, AFTER, pair_status[0], pair_status[1], redo_status[0], lost, dups,
           missing == 0 && lost == 0 && down_while_full && ok_after == AFTER && dup_ok ? "PASS"
                                                                                       : "FAIL");
    fflush(stdout);
    assert_int_equal(wa_test_stop(C.pid, SIGTERM, 20000), 0);
    C.pid = 0;
    assert_true(ok_full > 0);
    assert_true(refused > 0);
    assert_int_equal(missing, 0);
    assert_true(down_while_full);
    assert_int_equal(ok_after, AFTER);
    assert_true(dup_ok);
    assert_int_equal(lost, 0);
    assert_true(spool_empty(NULL));
}

/* Whatever happened: the daemon stopped, the tmpfs unmounted, the directory removed. */
static int
disk_full_teardown(void **state)
{
    (void)state;
    if (C.pid > 0) {
        wa_test_stop(C.pid, SIGKILL, 5000);
        C.pid = 0;
    }
    umount2(C.spool, MNT_DETACH);
    scenario_end();
    return 0;
}

/* ---- damaged spool files ---- */

/* Writes a spool file of the inbound.message records of webhooks first..first+n-1 into b. */
static void
spool_frames(int first, int n, struct wa_buf *b)
{
    char id[WA_ULID_LEN], key[32], value[256];

    for (int i = first; i < first + n; i++) {
        const char *f[WA_SPOOL_FIELDS] = {
            C.topic, key,
            id,      WA_CE_TYPE_INBOUND_MESSAGE,
            "chaos", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            value};
        size_t l[WA_SPOOL_FIELDS];

        wa_ulid_new(id);
        snprintf(key, sizeof(key), "p1:%d", i % 50);
        snprintf(value, sizeof(value),
                 "{\"id\":\"%s\",\"data\":{\"wamid\":\"wamid.chaos-%07d\",\"text\":\"n%d\"}}", id,
                 i, i);
        for (int k = 0; k < WA_SPOOL_FIELDS; k++) {
            l[k] = strlen(f[k]);
        }
        assert_int_equal(wa_spool_frame_append(b, f, l), WA_OK);
    }
}

static void
spool_file_put(const struct wa_buf *b)
{
    char id[WA_ULID_LEN], path[512];
    FILE *f;

    wa_ulid_new(id);
    snprintf(path, sizeof(path), "%s/spool-%s.log", C.spool, id);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b->data, 1, b->len, f), b->len);
    assert_int_equal(fclose(f), 0);
}

/* What can still be read in a damaged file (as any reader of wa/spool_frame.h sees it): marks
 * C.answered for the readable records; returns the damaged regions with frames after them. */
static int
readable(const struct wa_buf *b)
{
    const unsigned char *p = (const unsigned char *)b->data;
    const char *f[WA_SPOOL_FIELDS];
    size_t l[WA_SPOOL_FIELDS], off = 0, flen;
    int regions = 0;

    while (off < b->len) {
        const char *w;

        if (!wa_spool_frame_at(p, b->len, off, f, l, &flen)) {
            off = wa_spool_frame_resync(p, b->len, off);
            regions += off < b->len;
            continue;
        }
        if ((w = memmem(f[6], l[6], "wamid.chaos-", 12)) != NULL) {
            C.answered[strtol(w + 12, NULL, 10)] = 1;
            C.want++;
        }
        off += flen;
    }
    return regions;
}

static void
chaos__spool_damaged_files__every_readable_record_published(void **state)
{
    enum { N = 200 };
    struct wa_buf flipped, torn, zeroed;
    int regions = 0, unreadable;
    size_t lost = 0, dups = 0, published_unreadable = 0, quarantined;
    double counted;
    bool alive;

    (void)state;
    scenario_begin("damage");
    assert_int_equal(mkdir(C.spool, 0700), 0);
    wa_buf_init(&flipped, 0);
    wa_buf_init(&torn, 0);
    wa_buf_init(&zeroed, 0);
    spool_frames(0, N, &flipped);
    spool_frames(N, N, &torn);
    spool_frames(2 * N, N, &zeroed);
    {
        char *w = memmem(flipped.data, flipped.len, "wamid.chaos-0000050", 19);

        assert_non_null(w);
        w[19] ^= 0x01; /* one bit of the closing quote of record 50 */
    }
    torn.len -= 37; /* the last record cut short, as a crash mid-write leaves it */
    memset(zeroed.data + ((zeroed.len / 2) & ~(size_t)4095), 0, 4096);
    regions += readable(&flipped);
    regions += readable(&torn);
    regions += readable(&zeroed);
    unreadable = 3 * N - (int)C.want;
    spool_file_put(&flipped);
    spool_file_put(&torn);
    spool_file_put(&zeroed);
    C.next = 3 * N;

    daemon_start();
    {
        uint64_t t0 = wa_clock_mono_ms();

        while (!spool_empty(NULL) && wa_clock_mono_ms() - t0 < 60000) {
            usleep(50000);
        }
    }
    kafka_check(&lost, &dups);
    for (int n = 0; n < 3 * N; n++) {
        published_unreadable += !C.answered[n] && C.seen[n] > 0;
    }
    counted = metric("wa_ingest_spool_damaged_total{kind=\"corrupt\"}");
    alive = wa_test_poll_status(C.port, "/healthz", 200, 2000, NULL);
    quarantined = wa_test_count_files(C.spool, "quarantine-spool-");
    printf("chaos ingest-spool-damage: invariant: every record readable before and after a flipped "
           "byte, a truncated tail and a zeroed 4 KiB block is published, the damage is counted, "
           "the daemon lives\n"
           "chaos ingest-spool-damage: result: records=%d readable=%zu unreadable=%d lost=%zu "
           "duplicated=%zu damaged_regions=%d counted=%.0f quarantined_files=%zu alive=%s "
           "spool_files=%zu -> %s\n",
           3 * N, C.want, unreadable, lost, dups, regions, counted, quarantined,
           alive ? "yes" : "no", spool_files(),
           lost == 0 && counted == regions && alive && published_unreadable == 0 ? "PASS" : "FAIL");
    fflush(stdout);
    assert_int_equal(wa_test_stop(C.pid, SIGTERM, 20000), 0);
    assert_int_equal(lost, 0);
    assert_int_equal(published_unreadable, 0);
    assert_int_equal(regions, 2); /* the flipped byte and the zeroed block; a torn tail is none */
    assert_true(counted == regions);
    assert_true(alive);
    assert_int_equal(quarantined, 2);
    assert_true(spool_empty(NULL));
    {
        DIR *d = opendir(C.spool);
        struct dirent *de;

        while (d != NULL && (de = readdir(d)) != NULL) {
            char path[512];

            if (de->d_name[0] != '.') {
                snprintf(path, sizeof(path), "%s/%s", C.spool, de->d_name);
                unlink(path);
            }
        }
        if (d != NULL) {
            closedir(d);
        }
    }
    wa_buf_cleanup(&flipped);
    wa_buf_cleanup(&torn);
    wa_buf_cleanup(&zeroed);
    scenario_end();
}

/* ---- Redis paused ---- */

static int redis_port;
static atomic_int pauses;

/* CLIENT PAUSE ms ALL on the private Redis (a plain RESP exchange). */
static bool
redis_pause(int ms)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)redis_port)};
    char cmd[128], reply[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0), n, len;
    bool ok;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    n = snprintf(cmd, sizeof(cmd), "%d", ms);
    len = snprintf(cmd, sizeof(cmd),
                   "*4\r\n$6\r\nCLIENT\r\n$5\r\nPAUSE\r\n$%d\r\n%d\r\n$3\r\nALL\r\n", n, ms);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
         write(fd, cmd, (size_t)len) == len && read(fd, reply, sizeof(reply)) >= 3 &&
         memcmp(reply, "+OK", 3) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* Pauses Redis for 2 s every 3 s (the first after 1 s) until stopped. */
static void *
pauser(void *arg)
{
    (void)arg;
    usleep(1000000);
    while (!atomic_load(&C.stop)) {
        if (redis_pause(2000)) {
            atomic_fetch_add(&pauses, 1);
        }
        for (int i = 0; i < 30 && !atomic_load(&C.stop); i++) {
            usleep(100000);
        }
    }
    return NULL;
}

static void
chaos__redis_paused_mid_request__every_200_on_kafka(void **state)
{
    enum { BATCH = 40, REDO = 10 };
    const char *secs = wa_test_env_or("WA_CHAOS_SECONDS", "6");
    long seconds = strtol(secs, NULL, 10) > 0 ? strtol(secs, NULL, 10) : 6;
    char portarg[16], url[64];
    const char *argv[] = {
        "/usr/bin/redis-server", "--port", portarg, "--bind", "127.0.0.1", "--save", "",
        "--appendonly",          "no",     NULL};
    int nums[BATCH + REDO], fresh = 0, redelivered = 0, unanswered = 0, other = 0;
    long status[BATCH + REDO];
    size_t lost = 0, dups = 0;
    double dedup_failures;
    pid_t redis;
    pthread_t th;
    uint64_t end, slowest = 0;

    (void)state;
    scenario_begin("redis");
    redis_port = wa_test_free_port();
    snprintf(portarg, sizeof(portarg), "%d", redis_port);
    redis = wa_test_spawn(argv, NULL, "/dev/null", 0);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", redis_port);
    snprintf(C.redis, sizeof(C.redis), "%s", url);
    C.extra[0] = "WA_INGEST_ACK_TIMEOUT=2s"; /* the Kafka path, not the spool */
    daemon_start();
    assert_true(wa_test_poll_status(C.port, "/readyz", 200, 15000, NULL));
    atomic_store(&pauses, 0);
    atomic_store(&C.stop, false);
    assert_int_equal(pthread_create(&th, NULL, pauser, NULL), 0);
    end = wa_clock_mono_ms() + (uint64_t)seconds * 1000;
    while (wa_clock_mono_ms() < end) {
        uint64_t t0 = wa_clock_mono_ms();
        int n = 0;

        for (int i = 0; i < BATCH; i++) {
            nums[n++] = fresh++;
        }
        for (int i = 0; i < REDO && fresh > BATCH; i++) { /* Meta's redeliveries */
            nums[n++] = (int)((unsigned)rand() % (unsigned)(fresh - BATCH));
            redelivered++;
        }
        post_batch(nums, n, 8, status, NULL);
        for (int i = 0; i < n; i++) {
            unanswered += status[i] == 0;
            other += status[i] != 0 && status[i] != 200;
        }
        if (wa_clock_mono_ms() - t0 > slowest) {
            slowest = wa_clock_mono_ms() - t0;
        }
    }
    atomic_store(&C.stop, true);
    pthread_join(th, NULL);
    for (int n = 0; n < C.next; n++) {
        C.want += C.answered[n];
    }
    dedup_failures = metric("wa_ingest_dedup_failures_total");
    kafka_check(&lost, &dups);
    printf("chaos ingest-redis-pause: invariant: with Redis paused (CLIENT PAUSE 2 s) mid-request "
           "every webhook is answered and every 200 is on Kafka\n"
           "chaos ingest-redis-pause: result: pauses=%d webhooks=%d redelivered=%d answered=%zu "
           "unanswered=%d non_200=%d slowest_batch=%.2fs dedup_failures=%.0f lost=%zu "
           "duplicated=%zu -> %s\n",
           atomic_load(&pauses), fresh, redelivered, C.want, unanswered, other,
           (double)slowest / 1000.0, dedup_failures, lost, dups,
           lost == 0 && unanswered == 0 && atomic_load(&pauses) > 0 ? "PASS" : "FAIL");
    fflush(stdout);
    assert_int_equal(wa_test_stop(C.pid, SIGTERM, 20000), 0);
    wa_test_stop(redis, SIGTERM, 5000);
    assert_true(atomic_load(&pauses) > 0);
    assert_int_equal(unanswered, 0);
    assert_int_equal(lost, 0);
    scenario_end();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chaos__ingest_killed_under_load__every_200_on_kafka),
        cmocka_unit_test_teardown(
            chaos__spool_disk_full_kafka_down__no_200_without_a_record_then_recovery,
            disk_full_teardown),
        cmocka_unit_test(chaos__spool_damaged_files__every_readable_record_published),
        cmocka_unit_test(chaos__redis_paused_mid_request__every_200_on_kafka),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
