/*
 * ingest_test.c: wa-ingest end to end. The daemon ($WA_BIN_DIR/wa-ingest) runs as a subprocess
 * on a free port against the real Kafka and Redis of the environment, with a unique topic
 * prefix; signed bodies are posted with libcurl and the four topics are consumed with
 * libs/kafka to check what was published.
 *
 * "Kafka stopped" is simulated without touching the shared broker: a daemon pointed at an
 * unreachable address (127.0.0.1:1) must spool and answer 200; a second daemon on the same
 * spool directory with the real broker must drain the spool into Kafka, in order per key.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wa_test.h"
#include "wa_test_proc.h"
#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract.h"
#include "wa/crypto.h"
#include "wa/id.h"
#include "wa/kafka.h"
#include "wa/spool_frame.h"

#define SECRET   "it-secret"
#define PREVIOUS "it-previous"
#define TOKEN    "it-verify"

struct seen {
    char *topic;
    char *key;
    char *value;
    char *traceparent;
};

struct fixture {
    struct wa_loop *loop;
    struct wa_kafka_config kcfg;
    struct wa_kafka_consumer *consumer;
    char prefix[48];
    char group[64];
    char topics[4][128];
    char spool[128];
    struct seen *seen;
    size_t nseen, capseen;
    pid_t pid;
    int port;
};

static struct fixture *F;

/* ---- the daemon ---- */

/* Body sink of the concurrent (curl multi) requests below. */
static size_t
sink(char *p, size_t size, size_t n, void *arg)
{
    struct wa_buf *b = arg;

    if (b != NULL) {
        wa_buf_append(b, p, size * n);
    }
    return size * n;
}

/* Returns the HTTP status of a request to the daemon (0 when it could not connect). */
static long
http(const char *method, const char *path, const char *ctype, const char *body, size_t len,
     const char *signature, struct wa_buf *out)
{
    char ctype_line[256], sig_line[256];
    const char *headers[4];
    size_t n = 0;
    struct wa_test_http_req req = {.method = method,
                                   .port = F->port,
                                   .path = path,
                                   .headers = headers,
                                   .body = body,
                                   .len = len,
                                   .timeout_ms = 20000};

    if (ctype != NULL) {
        snprintf(ctype_line, sizeof(ctype_line), "Content-Type: %s", ctype);
        headers[n++] = ctype_line;
    }
    if (signature != NULL) {
        snprintf(sig_line, sizeof(sig_line), "X-Hub-Signature-256: %s", signature);
        headers[n++] = sig_line;
    }
    if (len <= (1u << 20)) {
        /* Small bodies go in one shot. Large ones keep curl's "Expect: 100-continue", as real
         * clients do, so a 413 arrives before the body instead of racing a reset. */
        headers[n++] = "Expect:";
    }
    headers[n] = NULL;
    return wa_test_http(&req, out);
}

static long
post_signed(const char *body, size_t len, const char *secret)
{
    char sig[WA_HUB_SIGNATURE_LEN];

    wa_hub_signature_make(secret, body, len, sig);
    return http("POST", "/webhook", "application/json", body, len, sig, NULL);
}

static const char *const *daemon_extra; /* one more setting for the next daemon_start */

static void
daemon_start(const char *brokers, const char *redis_url)
{
    char listen[64], kafka[256], redis[256], prefix[96], spool[160], bin[512], log[256];
    const char *argv[] = {bin, NULL};
    const char *env[] = {listen,
                         kafka,
                         redis,
                         prefix,
                         "WA_APP_SECRET=" SECRET,
                         "WA_APP_SECRET_PREVIOUS=" PREVIOUS,
                         "WA_VERIFY_TOKEN=" TOKEN,
                         spool,
                         "WA_INGEST_ACK_TIMEOUT=1s",
                         "WA_SPOOL_REPLAY_INTERVAL=200ms",
                         "WA_LOG_LEVEL=info",
                         daemon_extra != NULL ? daemon_extra[0] : NULL,
                         NULL};

    F->port = wa_test_free_port();
    snprintf(listen, sizeof(listen), "WA_LISTEN=127.0.0.1:%d", F->port);
    snprintf(kafka, sizeof(kafka), "WA_KAFKA_BROKERS=%s", brokers);
    snprintf(redis, sizeof(redis), "WA_REDIS_URL=%s", redis_url);
    snprintf(prefix, sizeof(prefix), "WA_TOPIC_PREFIX=%s", F->prefix);
    snprintf(spool, sizeof(spool), "WA_SPOOL_DIR=%s", F->spool);
    snprintf(log, sizeof(log), "%s.log", F->spool);
    wa_test_bin_path("wa-ingest", bin, sizeof(bin));
    /* stdout appended to the spool's log (a test may start several daemons); stderr (ASan
     * reports) stays with the test */
    F->pid = wa_test_spawn(argv, env, log, WA_TEST_SPAWN_APPEND | WA_TEST_SPAWN_STDOUT_ONLY);
    if (!wa_test_poll_status(F->port, "/healthz", 200, 10000, NULL)) {
        fail_msg("wa-ingest did not start (see %s.log)", F->spool);
    }
}

/* SIGTERM, and the exit status must be 0 (ASan reports make it non-zero). */
static void
daemon_stop(void)
{
    int rc;

    if (F->pid <= 0) {
        return;
    }
    rc = wa_test_stop(F->pid, SIGTERM, WA_TEST_NO_TIMEOUT);
    F->pid = 0;
    assert_int_equal(rc, 0);
}

/* ---- what was published ---- */

static void
on_message(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct seen *s;
    size_t tplen = 0;
    const void *tp = wa_kafka_msg_header(msg, "traceparent", &tplen);

    (void)arg;
    if (F->nseen == F->capseen) {
        F->capseen = F->capseen ? F->capseen * 2 : 256;
        F->seen = realloc(F->seen, F->capseen * sizeof(*F->seen));
        assert_non_null(F->seen);
    }
    s = &F->seen[F->nseen++];
    s->topic = strdup(msg->topic);
    s->key = strndup(msg->key != NULL ? msg->key : "", msg->keylen);
    s->value = strndup(msg->value != NULL ? msg->value : "", msg->len);
    s->traceparent = tp != NULL ? strndup(tp, tplen) : NULL;
    wa_kafka_consumer_done(c, msg);
}

/* Number of events on topic (index) whose value contains needle (NULL: all). */
static size_t
count(int topic, const char *needle)
{
    size_t n = 0;

    for (size_t i = 0; i < F->nseen; i++) {
        if (strcmp(F->seen[i].topic, F->topics[topic]) == 0 &&
            (needle == NULL || strstr(F->seen[i].value, needle) != NULL)) {
            n++;
        }
    }
    return n;
}

struct want {
    int topic;
    const char *needle;
    size_t n;
};

static bool
have(void *arg)
{
    const struct want *w = arg;

    return count(w->topic, w->needle) >= w->n;
}

/* Waits until at least n matching events arrived, then a little more so extra copies (which
 * would be a failure) have time to show up too. Returns the count. */
static size_t
await(int topic, const char *needle, size_t n)
{
    struct want w = {topic, needle, n};

    wa_test_run_until(F->loop, have, &w, 30000);
    wa_test_run_for(F->loop, 300);
    return count(topic, needle);
}

enum { T_MESSAGE, T_STATUS, T_ACCOUNT, T_RAW };

static size_t spool_files(void);

/* ---- setup ---- */

static int
setup(void **state)
{
    static const char *const names[4] = {WA_TOPIC_INBOUND_MESSAGE, WA_TOPIC_INBOUND_STATUS,
                                         WA_TOPIC_ACCOUNT_EVENT, WA_TOPIC_WEBHOOK_RAW};
    const char *topics[4];

    (void)state;
    F = calloc(1, sizeof(*F));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    assert_int_equal(wa_loop_new(&F->loop), WA_OK);
    wa_test_unique_prefix(F->prefix, sizeof(F->prefix));
    snprintf(F->group, sizeof(F->group), "%sit", F->prefix);
    snprintf(F->spool, sizeof(F->spool), "/tmp/wa-ingest-it-%s", F->prefix);
    F->spool[strlen(F->spool) - 1] = '\0'; /* the prefix ends with '.' */
    F->kcfg.brokers = wa_test_env("WA_KAFKA_BROKERS");
    F->kcfg.topic_prefix = F->prefix;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(wa_kafka_topic(&F->kcfg, names[i], F->topics[i], sizeof(F->topics[i])),
                         WA_OK);
        topics[i] = F->topics[i];
    }
    assert_int_equal(wa_kafka_topics_ensure(&F->kcfg, topics, 4, 4, 30000, NULL), WA_OK);
    assert_int_equal(wa_kafka_consumer_new(F->loop, &F->kcfg, F->group, topics, 4, on_message, NULL,
                                           &F->consumer, NULL),
                     WA_OK);
    daemon_start(F->kcfg.brokers, wa_test_env("WA_REDIS_URL"));
    return 0;
}

static int
teardown(void **state)
{
    char log[256];

    (void)state;
    daemon_stop();
    snprintf(log, sizeof(log), "%s.log", F->spool);
    if (spool_files() == 0) { /* kept for a post-mortem otherwise */
        rmdir(F->spool);
        unlink(log);
    }
    wa_kafka_consumer_free(F->consumer);
    wa_loop_free(F->loop);
    for (size_t i = 0; i < F->nseen; i++) {
        free(F->seen[i].topic);
        free(F->seen[i].key);
        free(F->seen[i].value);
        free(F->seen[i].traceparent);
    }
    free(F->seen);
    free(F);
    wa_kafka_wait_destroyed(5000);
    curl_global_cleanup();
    return 0;
}

/* Reads a fixture and makes its wamids unique to tag ("wamid.X" -> "wamid.<tag>-X"). */
static char *
fixture_body(const char *kind, const char *name, const char *tag, size_t *len)
{
    char path[512], repl[128];
    struct wa_buf b;
    char *raw, *p, *q;
    size_t rlen;

    snprintf(path, sizeof(path), "%s/webhook/%s/%s/input", wa_test_env("WA_TEST_DATA"), kind, name);
    raw = wa_test_read_file(path, &rlen);
    assert_non_null(raw);
    wa_buf_init(&b, 0);
    snprintf(repl, sizeof(repl), "wamid.%s-", tag);
    for (p = raw; (q = strstr(p, "wamid.")) != NULL; p = q + 6) {
        wa_buf_append(&b, p, (size_t)(q - p));
        wa_buf_append_str(&b, repl);
    }
    wa_buf_append(&b, p, rlen - (size_t)(p - raw));
    free(raw);
    *len = b.len;
    return wa_buf_steal(&b);
}

/* ---- tests ---- */

static void
handshake__right_token__echoes_challenge_else_403(void **state)
{
    struct wa_buf out;

    (void)state;
    wa_buf_init(&out, 0);
    assert_int_equal(http("GET",
                          "/webhook?hub.mode=subscribe&hub.verify_token=" TOKEN
                          "&hub.challenge=1158201444",
                          NULL, NULL, 0, NULL, &out),
                     200);
    assert_string_equal(out.data, "1158201444");
    assert_int_equal(http("GET",
                          "/webhook?hub.mode=subscribe&hub.verify_token=wrong"
                          "&hub.challenge=1",
                          NULL, NULL, 0, NULL, NULL),
                     403);
    assert_int_equal(
        http("GET", "/webhook?hub.mode=unsubscribe&hub.verify_token=" TOKEN "&hub.challenge=1",
             NULL, NULL, 0, NULL, NULL),
        403);
    assert_int_equal(http("GET", "/webhook", NULL, NULL, 0, NULL, NULL), 403);
    wa_buf_cleanup(&out);
}

static void
signature__missing_or_wrong__401_and_nothing_published(void **state)
{
    size_t len;
    char *body = fixture_body("valid", "message_text", "sigbad", &len);
    char sig[WA_HUB_SIGNATURE_LEN];
    struct wa_buf out;

    (void)state;
    wa_buf_init(&out, 0);
    assert_int_equal(http("POST", "/webhook", "application/json", body, len, NULL, &out), 401);
    assert_non_null(strstr(out.data, "\"error\""));
    assert_int_equal(post_signed(body, len, "not-the-secret"), 401);
    wa_hub_signature_make(SECRET, body, len - 1, sig); /* signature of other bytes */
    assert_int_equal(http("POST", "/webhook", "application/json", body, len, sig, NULL), 401);
    assert_int_equal(await(T_RAW, "sigbad", 1), 0);
    wa_buf_cleanup(&out);
    free(body);
}

static void
signature__previous_secret_while_rotating__accepted(void **state)
{
    size_t len;
    char *body = fixture_body("valid", "message_text", "rotated", &len);

    (void)state;
    assert_int_equal(post_signed(body, len, PREVIOUS), 200);
    assert_int_equal(await(T_MESSAGE, "wamid.rotated-", 1), 1);
    free(body);
}

/* Every valid fixture: the number of messages and statuses published matches the golden file
 * (whose topics and keys tests/unit/contract/golden_test.c pins). All are posted first, then
 * counted per fixture, each fixture's wamids made unique by a tag. */
struct fx_want {
    char tag[300];
    size_t n[2];
};

static void
fixtures__every_type_and_status__published_as_expected(void **state)
{
    char base[512], path[1024];
    struct fx_want *wants = calloc(128, sizeof(*wants));
    size_t cases = 0, total[2] = {0, 0};
    struct dirent *de;
    DIR *d;

    (void)state;
    snprintf(base, sizeof(base), "%s/webhook/valid", wa_test_env("WA_TEST_DATA"));
    d = opendir(base);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL && cases < 128) {
        struct fx_want *w = &wants[cases];
        size_t len, elen, nev;
        char *body, *etext;
        json_t *expected, *events;

        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(w->tag, sizeof(w->tag), "fx%s", de->d_name);
        body = fixture_body("valid", de->d_name, w->tag, &len);
        snprintf(path, sizeof(path), "%s/%s/expected", base, de->d_name);
        etext = wa_test_read_file(path, &elen);
        expected = json_loadb(etext, elen, 0, NULL);
        assert_non_null(expected);
        events = json_object_get(expected, "events");
        nev = json_array_size(events);
        for (size_t i = 0; i < nev; i++) {
            const char *topic = wa_json_str(json_array_get(events, i), "topic");
            const json_t *dedup = json_object_get(json_array_get(events, i), "dedup");
            bool repeated = false;

            /* A wamid twice in one body is published once. */
            for (size_t k = 0; k < i && json_is_string(dedup); k++) {
                repeated |= json_equal(dedup, json_object_get(json_array_get(events, k), "dedup"));
            }
            if (!repeated && strcmp(topic, WA_TOPIC_INBOUND_MESSAGE) == 0) {
                w->n[T_MESSAGE]++;
            } else if (!repeated && strcmp(topic, WA_TOPIC_INBOUND_STATUS) == 0) {
                w->n[T_STATUS]++;
            }
        }
        total[0] += w->n[0];
        total[1] += w->n[1];
        if (post_signed(body, len, SECRET) != 200) {
            fail_msg("%s: not accepted", de->d_name);
        }
        snprintf(w->tag, sizeof(w->tag), "wamid.fx%s-", de->d_name);
        json_decref(expected);
        free(etext);
        free(body);
        cases++;
    }
    closedir(d);
    assert_true(cases >= 50);
    assert_int_equal(await(T_MESSAGE, "wamid.fx", total[0]), total[0]);
    assert_int_equal(await(T_STATUS, "wamid.fx", total[1]), total[1]);
    for (size_t i = 0; i < cases; i++) {
        if (count(T_MESSAGE, wants[i].tag) != wants[i].n[0] ||
            count(T_STATUS, wants[i].tag) != wants[i].n[1]) {
            fail_msg("%s: %zu/%zu messages, %zu/%zu statuses", wants[i].tag,
                     count(T_MESSAGE, wants[i].tag), wants[i].n[0], count(T_STATUS, wants[i].tag),
                     wants[i].n[1]);
        }
    }
    free(wants);
}

static void
events__shape_keys_and_trace__follow_the_contract(void **state)
{
    size_t len;
    char *body = fixture_body("valid", "message_arabic_emoji_escaped", "shape", &len);
    struct wa_cloudevent_doc *doc = NULL;
    struct wa_contract_inbound_message m;
    const struct seen *s = NULL;

    (void)state;
    assert_int_equal(post_signed(body, len, SECRET), 200);
    assert_int_equal(await(T_MESSAGE, "wamid.shape-", 1), 1);
    assert_int_equal(await(T_RAW, "wamid.shape-", 1), 1);
    for (size_t i = 0; i < F->nseen; i++) {
        if (strcmp(F->seen[i].topic, F->topics[T_MESSAGE]) == 0 &&
            strstr(F->seen[i].value, "wamid.shape-") != NULL) {
            s = &F->seen[i];
        }
    }
    assert_non_null(s);
    assert_string_equal(s->key, "106540352242922:16505551234");
    assert_int_equal(wa_cloudevent_decode(s->value, strlen(s->value), &doc, NULL), WA_OK);
    assert_string_equal(doc->ev.type, WA_CE_TYPE_INBOUND_MESSAGE);
    assert_string_equal(doc->ev.subject, "106540352242922:16505551234");
    assert_string_equal(doc->ev.phonenumberid, "106540352242922");
    assert_true(wa_traceparent_valid(doc->ev.traceparent));
    assert_non_null(s->traceparent);
    assert_string_equal(s->traceparent, doc->ev.traceparent);
    assert_int_equal(wa_contract_inbound_message_decode(doc->ev.data, &m, NULL), WA_OK);
    /* Meta's \u escapes arrive as the characters themselves, byte for byte. */
    assert_string_equal(m.text,
                        "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xf0\x9f\x98\x80 caf\xc3\xa9");
    assert_string_equal(m.profile_name, "\xd8\xb9\xd9\x84\xd9\x8a");
    wa_cloudevent_doc_free(doc);
    free(body);
}

/* The record of topic holding needle (the last one), or NULL. */
static const struct seen *
seen_with(int topic, const char *needle)
{
    const struct seen *s = NULL;

    for (size_t i = 0; i < F->nseen; i++) {
        if (strcmp(F->seen[i].topic, F->topics[topic]) == 0 &&
            strstr(F->seen[i].value, needle) != NULL) {
            s = &F->seen[i];
        }
    }
    return s;
}

static void
fidelity__numbers_repairs_groups_and_user_items__on_kafka(void **state)
{
    static const char *const cases[][2] = {
        {"message_location_verbatim", "num"},
        {"batch_nul_in_one_message", "nul"},
        {"status_group_participants", "grp"},
        {"account_user_preferences_two_users", "pref"},
    };
    const struct seen *s;

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        size_t len;
        char *body = fixture_body("valid", cases[i][0], cases[i][1], &len);

        assert_int_equal(post_signed(body, len, SECRET), 200);
        free(body);
    }
    /* Meta's latitude reaches Kafka as written. */
    assert_int_equal(await(T_MESSAGE, "wamid.num-", 1), 1);
    s = seen_with(T_MESSAGE, "wamid.num-");
    assert_non_null(strstr(s->value, "\"latitude\":37.483307,\"longitude\":-122.148981,"));
    /* A NUL in one message: all three are events, the bad one repaired and flagged. */
    assert_int_equal(await(T_MESSAGE, "wamid.nul-", 3), 3);
    s = seen_with(T_MESSAGE, "wamid.nul-BAD_NUL");
    assert_non_null(s);
    assert_non_null(strstr(s->value, "\"repaired\":true"));
    assert_null(strstr(seen_with(T_MESSAGE, "wamid.nul-GOOD_2")->value, "\"repaired\""));
    /* A group's read statuses: one per participant, the repeated one deduplicated. */
    assert_int_equal(await(T_STATUS, "wamid.grp-", 2), 2);
    assert_non_null(seen_with(T_STATUS, "\"recipient_participant_id\":\"16505550001\""));
    assert_non_null(seen_with(T_STATUS, "\"recipient_participant_id\":\"16505550002\""));
    /* user_preferences: one account.event per user, keyed by the conversation. */
    assert_true(await(T_ACCOUNT, "\"value\":\"resume\"", 1) >= 1);
    s = seen_with(T_ACCOUNT, "\"value\":\"resume\"");
    assert_string_equal(s->key, "106540352242922:16505559999");
    assert_non_null(strstr(s->value, "\"contact\":\"16505559999\""));
    assert_null(strstr(s->value, "16505551234"));
}

static void
duplicates__sequential_redelivery__published_once(void **state)
{
    size_t len;
    char *body = fixture_body("valid", "batch_mixed", "seqdup", &len);

    (void)state;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(post_signed(body, len, SECRET), 200);
    }
    assert_int_equal(await(T_MESSAGE, "wamid.seqdup-", 4), 4);
    assert_int_equal(await(T_STATUS, "wamid.seqdup-", 2), 2);
    /* Every delivery is archived; account events are not deduplicated. */
    assert_int_equal(await(T_RAW, "wamid.seqdup-", 3), 3);
    free(body);
}

/* Copies that arrive while the first is in flight are each made durable before their 200 (none is
 * answered on another copy's behalf); copies after that are dropped. */
static void
duplicates__concurrent_redelivery__each_200_durable_later_copies_dropped(void **state)
{
    enum { N = 8 };
    size_t len;
    char *body = fixture_body("valid", "message_text", "condup", &len);
    char sig[WA_HUB_SIGNATURE_LEN], line[128];
    CURLM *multi = curl_multi_init();
    CURL *easy[N];
    struct curl_slist *h = NULL;
    int running = 1;

    (void)state;
    wa_hub_signature_make(SECRET, body, len, sig);
    snprintf(line, sizeof(line), "X-Hub-Signature-256: %s", sig);
    h = curl_slist_append(h, line);
    h = curl_slist_append(h, "Content-Type: application/json");
    snprintf(line, sizeof(line), "http://127.0.0.1:%d/webhook", F->port);
    for (int i = 0; i < N; i++) {
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_URL, line);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 20000L);
        curl_multi_add_handle(multi, easy[i]);
    }
    while (running > 0) {
        curl_multi_perform(multi, &running);
        curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    for (int i = 0; i < N; i++) {
        long status = 0;

        curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &status);
        assert_int_equal(status, 200);
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    curl_multi_cleanup(multi);
    curl_slist_free_all(h);
    {
        size_t published = await(T_MESSAGE, "wamid.condup-", 1);

        assert_in_range(published, 1, N);
        assert_int_equal(await(T_RAW, "wamid.condup-", N), N);
        /* every copy is durable now: one more redelivery is dropped */
        assert_int_equal(post_signed(body, len, SECRET), 200);
        assert_int_equal(await(T_RAW, "wamid.condup-", N + 1), N + 1);
        assert_int_equal(count(T_MESSAGE, "wamid.condup-"), published);
    }
    free(body);
}

static void
batch__thousand_updates_in_one_post__all_published(void **state)
{
    struct wa_buf b;

    (void)state;
    wa_buf_init(&b, 0);
    wa_buf_append_str(&b, "{\"object\":\"whatsapp_business_account\",\"entry\":[");
    for (int e = 0; e < 10; e++) {
        wa_buf_printf(&b, "%s{\"id\":\"200000000000001\",\"changes\":[", e ? "," : "");
        for (int c = 0; c < 2; c++) {
            wa_buf_printf(&b,
                          "%s{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
                          "\"metadata\":{\"display_phone_number\":\"15550000001\","
                          "\"phone_number_id\":\"100000000000001\"},\"messages\":[",
                          c ? "," : "");
            for (int i = 0; i < 30; i++) {
                wa_buf_printf(&b,
                              "%s{\"from\":\"1555%07d\",\"id\":\"wamid.big-%d-%d-%d\","
                              "\"timestamp\":\"1700000000\",\"type\":\"text\",\"text\":{\"body\":"
                              "\"hello %d\"}}",
                              i ? "," : "", i, e, c, i, i);
            }
            wa_buf_append_str(&b, "],\"statuses\":[");
            for (int i = 0; i < 20; i++) {
                wa_buf_printf(&b,
                              "%s{\"id\":\"wamid.big-out-%d-%d-%d\",\"status\":\"read\","
                              "\"timestamp\":\"1700000001\",\"recipient_id\":\"1555%07d\"}",
                              i ? "," : "", e, c, i, i);
            }
            wa_buf_append_str(&b, "]}}");
        }
        wa_buf_append_str(&b, "]}");
    }
    wa_buf_append_str(&b, "]}");
    assert_int_equal(post_signed(b.data, b.len, SECRET), 200);
    assert_int_equal(await(T_MESSAGE, "wamid.big-", 600), 600);
    assert_int_equal(await(T_STATUS, "wamid.big-out-", 400), 400);
    wa_buf_cleanup(&b);
}

static void
limits__oversize_content_type__413_415(void **state)
{
    size_t len = 3u * 1024u * 1024u + 1u;
    char *big = malloc(len);

    (void)state;
    memset(big, ' ', len);
    big[0] = '{';
    big[len - 1] = '}';
    assert_int_equal(post_signed(big, len, SECRET), 413);
    assert_int_equal(http("POST", "/webhook", "text/plain", "{}", 2, NULL, NULL), 415);
    free(big);
}

static void
unparsable__signed_truncated_or_not_json__archived_and_200(void **state)
{
    static const char *const cases[] = {"truncated", "not_json", "top_level_array"};

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        size_t len;
        char *body = fixture_body("invalid", cases[i], "unparsed", &len);
        char *tagged = malloc(len + 64);
        int n = snprintf(tagged, len + 64, "%.*s unparsed-%zu", (int)len, body, i);

        assert_int_equal(post_signed(tagged, (size_t)n, SECRET), 200);
        snprintf(tagged, len + 64, "unparsed-%zu", i);
        assert_int_equal(await(T_RAW, tagged, 1), 1);
        free(tagged);
        free(body);
    }
    assert_true(count(T_RAW, "\"parsed\":false") >= 3);
}

static size_t
spool_files(void)
{
    return wa_test_count_files(F->spool, "spool-");
}

static bool
spool_empty(void *arg)
{
    (void)arg;
    return spool_files() == 0;
}

/* The first spool file's name (in F->spool), or false when there is none. */
static bool
first_spool_file(const char *prefix, char *out, size_t size)
{
    DIR *d = opendir(F->spool);
    struct dirent *de;
    bool found = false;

    if (d == NULL) {
        return false;
    }
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 &&
            (!found || strcmp(de->d_name, out + strlen(F->spool) + 1) < 0)) {
            snprintf(out, size, "%s/%s", F->spool, de->d_name);
            found = true;
        }
    }
    closedir(d);
    return found;
}

static uint32_t
le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A flipped byte in a frame in the middle of a spool file costs that record only: every later
 * record is replayed, and the file is kept as quarantine-* instead of being deleted. Restarts the
 * daemon (and leaves it running on the real broker). */
static void
spool_damaged_frame__later_records_replayed_file_quarantined(void **state)
{
    enum { N = 10 };
    char body[1024], path[512], qpath[512], lost[32] = "";
    unsigned char *data;
    size_t len = 0, off = 0, nmsg = 0;
    FILE *f;
    int n;

    (void)state;
    daemon_stop();
    daemon_start("127.0.0.1:1", wa_test_env("WA_REDIS_URL"));
    for (int i = 0; i < N; i++) {
        n = snprintf(body, sizeof(body),
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"w\","
                     "\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":{"
                     "\"phone_number_id\":\"p1\"},\"messages\":[{\"from\":\"7\",\"id\":"
                     "\"wamid.dmg-%02d\",\"timestamp\":\"1\",\"type\":\"text\",\"text\":{"
                     "\"body\":\"n%02d\"}}]}}]}]}",
                     i, i);
        assert_int_equal(post_signed(body, (size_t)n, SECRET), 200);
    }
    daemon_stop();
    assert_true(first_spool_file("spool-", path, sizeof(path)));
    data = (unsigned char *)wa_test_read_file(path, &len);
    assert_non_null(data);
    /* the fourth inbound.message frame: flip one byte of its event */
    while (off + 16 <= len && memcmp(data + off, "WASP", 4) == 0) {
        size_t plen = le32(data + off + 4), tlen = le32(data + off + 12);
        const char *topic = (const char *)data + off + 16;

        if (tlen >= 15 && memcmp(topic + tlen - 15, "inbound.message", 15) == 0 && ++nmsg == 4) {
            const char *w = memmem(data + off, 12 + plen, "wamid.dmg-", 10);

            assert_non_null(w);
            snprintf(lost, sizeof(lost), "%.12s", w);
            data[(const unsigned char *)w - data + 12] ^= 0x20; /* the closing quote */
            break;
        }
        off += 12 + plen;
    }
    assert_true(lost[0] != '\0');
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    free(data);

    daemon_start(F->kcfg.brokers, wa_test_env("WA_REDIS_URL"));
    assert_true(wa_test_run_until(F->loop, spool_empty, NULL, 20000));
    assert_int_equal(await(T_MESSAGE, "wamid.dmg-", N - 1), N - 1);
    assert_int_equal(count(T_MESSAGE, lost), 0);
    assert_int_equal(count(T_RAW, lost), 1); /* its raw record was intact */
    assert_true(first_spool_file("quarantine-spool-", qpath, sizeof(qpath)));
    unlink(qpath);
}

/* ---- spool files made by the test (what an earlier run left) ---- */

/* Writes F->spool/spool-<ULID>.log with n inbound.message records whose values hold
 * "wamid.<tag>-<i>-" (i = 0..n-1, 5 digits); record big (-1: none) is made too large for
 * Kafka. offs (may be NULL) gets each record's offset in the file. */
static int spool_bad_topic = -1; /* a record of spool_file_make with a topic name Kafka refuses */

static void
spool_file_make(const char *tag, int n, int big, size_t *offs, char *path, size_t size)
{
    char bad[160];
    char id[WA_ULID_LEN], key[32];
    struct wa_buf b, v;
    FILE *f;

    wa_buf_init(&b, 0);
    wa_buf_init(&v, 0);
    for (int i = 0; i < n; i++) {
        const char *fl[WA_SPOOL_FIELDS];
        size_t l[WA_SPOOL_FIELDS];

        wa_ulid_new(id);
        snprintf(key, sizeof(key), "p1:%d", i % 7);
        v.len = 0;
        wa_buf_printf(&v, "{\"id\":\"%s\",\"data\":{\"wamid\":\"wamid.%s-%05d-\"},\"pad\":\"", id,
                      tag, i);
        for (size_t k = 0; i == big && k < 1200000; k += 64) {
            wa_buf_append(&v, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                          64);
        }
        wa_buf_append(&v, "\"}", 2);
        snprintf(bad, sizeof(bad), "%sno such topic!", F->prefix);
        fl[0] = i == spool_bad_topic ? bad : F->topics[T_MESSAGE];
        fl[1] = key;
        fl[2] = id;
        fl[3] = WA_CE_TYPE_INBOUND_MESSAGE;
        fl[4] = "ingest-test";
        fl[5] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        fl[6] = v.data;
        for (int k = 0; k < 6; k++) {
            l[k] = strlen(fl[k]);
        }
        l[6] = v.len;
        if (offs != NULL) {
            offs[i] = b.len;
        }
        assert_int_equal(wa_spool_frame_append(&b, fl, l), WA_OK);
    }
    mkdir(F->spool, 0700);
    wa_ulid_new(id);
    snprintf(path, size, "%s/spool-%s.log", F->spool, id);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
    assert_int_equal(fclose(f), 0);
    wa_buf_cleanup(&b);
    wa_buf_cleanup(&v);
}

/* Copies per record number of the messages "wamid.<tag>-<i>-" seen since the tally started. */
struct tally {
    const char *tag;
    int n;
    unsigned *copies;
    size_t scanned, distinct, total;
};

static void
tally_start(struct tally *t, const char *tag, int n)
{
    *t = (struct tally){.tag = tag, .n = n, .scanned = F->nseen};
    t->copies = calloc((size_t)n, sizeof(*t->copies));
    assert_non_null(t->copies);
}

static bool
tally_complete(void *arg)
{
    struct tally *t = arg;
    char needle[64];
    size_t nl = (size_t)snprintf(needle, sizeof(needle), "wamid.%s-", t->tag);

    for (; t->scanned < F->nseen; t->scanned++) {
        const struct seen *s = &F->seen[t->scanned];
        const char *p;
        long i;

        if (strcmp(s->topic, F->topics[T_MESSAGE]) != 0 || (p = strstr(s->value, needle)) == NULL) {
            continue;
        }
        i = strtol(p + nl, NULL, 10);
        if (i >= 0 && i < t->n) {
            t->distinct += t->copies[i]++ == 0;
            t->total++;
        }
    }
    return t->distinct >= (size_t)t->n;
}

/* Waits until every record was seen, plus a little for late copies. */
static void
tally_await(struct tally *t)
{
    wa_test_run_until(F->loop, tally_complete, t, 60000);
    wa_test_run_for(F->loop, 500);
    tally_complete(t);
}

static bool
metric_has(const char *line)
{
    struct wa_buf m;
    bool found;

    wa_buf_init(&m, 0);
    assert_int_equal(http("GET", "/metrics", NULL, NULL, 0, NULL, &m), 200);
    found = strstr(m.data, line) != NULL;
    wa_buf_cleanup(&m);
    return found;
}

/* A record Kafka refuses for good (here: larger than the producer's message.max.bytes) is
 * moved to dead-letter-spool-<ULID>.log, counted, and the records around it are replayed; the
 * spool file is removed. */
static void
spool_refused_record__dead_lettered_others_replayed(void **state)
{
    enum { N = 5, BIG = 2 };
    char path[512], dead[512];
    const unsigned char *p;
    const char *f[WA_SPOOL_FIELDS];
    size_t l[WA_SPOOL_FIELDS], len = 0, flen;
    char *data;
    struct tally t;

    (void)state;
    daemon_stop();
    spool_file_make("dl", N, BIG, NULL, path, sizeof(path));
    tally_start(&t, "dl", N);
    daemon_start(F->kcfg.brokers, wa_test_env("WA_REDIS_URL"));
    assert_true(wa_test_run_until(F->loop, spool_empty, NULL, 30000));
    wa_test_run_until(F->loop, tally_complete, &t, 2000);
    wa_test_run_for(F->loop, 500);
    tally_complete(&t);
    for (int i = 0; i < N; i++) {
        assert_int_equal(t.copies[i], i == BIG ? 0 : 1);
    }
    assert_true(first_spool_file("dead-letter-spool-", dead, sizeof(dead)));
    data = wa_test_read_file(dead, &len);
    assert_non_null(data);
    p = (const unsigned char *)data;
    assert_true(wa_spool_frame_at(p, len, 0, f, l, &flen));
    assert_int_equal(flen, len); /* the refused record, and only it */
    assert_non_null(memmem(f[6], l[6], "wamid.dl-00002-", 15));
    assert_true(metric_has("wa_ingest_spool_damaged_total{kind=\"refused\"} 1"));
    free(data);
    unlink(dead);
    free(t.copies);
}

/* A cursor beside a spool file (left by a run that replayed part of it): the replay resumes
 * there, the records before it are not produced again. */
static void
spool_cursor__replay_resumes_after_it(void **state)
{
    enum { N = 1500, AT = 1000 };
    static size_t offs[N];
    char path[512], cpath[600];
    unsigned char c[24];
    struct tally t;
    FILE *f;

    (void)state;
    daemon_stop();
    spool_file_make("cur", N, -1, offs, path, sizeof(path));
    memcpy(c, "WASC", 4);
    for (int i = 0; i < 8; i++) {
        c[4 + i] = (unsigned char)((uint64_t)offs[AT] >> (8 * i));
        c[16 + i] = (unsigned char)(~(uint64_t)offs[AT] >> (8 * i));
    }
    memset(c + 12, 0, 4);
    snprintf(cpath, sizeof(cpath), "%s.cursor", path);
    f = fopen(cpath, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(c, 1, sizeof(c), f), sizeof(c));
    fclose(f);
    tally_start(&t, "cur", N);
    t.distinct = AT; /* wait for the rest */
    daemon_start(F->kcfg.brokers, wa_test_env("WA_REDIS_URL"));
    assert_true(wa_test_run_until(F->loop, spool_empty, NULL, 30000));
    tally_await(&t);
    for (int i = 0; i < N; i++) {
        assert_int_equal(t.copies[i], i < AT ? 0 : 1);
    }
    free(t.copies);
}

/* A record Kafka keeps failing in the middle of a file (an invalid topic name) stops the
 * cursor before it; later passes produce only what was not acknowledged (no record twice), and
 * once WA_SPOOL_DEAD_LETTER_AFTER has passed the record is dead-lettered and the file finishes. */
static void
spool_partial_failure__later_passes_produce_only_unacknowledged_records(void **state)
{
    enum { N = 1500, BAD = 700 };
    const char *extra[] = {"WA_SPOOL_DEAD_LETTER_AFTER=3s", NULL};
    char path[512], dead[512];
    size_t again = 0;
    struct tally t;

    (void)state;
    daemon_stop();
    spool_bad_topic = BAD;
    spool_file_make("pf", N, -1, NULL, path, sizeof(path));
    spool_bad_topic = -1;
    tally_start(&t, "pf", N);
    t.distinct = 1; /* all but the bad one */
    daemon_extra = extra;
    daemon_start(F->kcfg.brokers, wa_test_env("WA_REDIS_URL"));
    daemon_extra = NULL;
    assert_true(wa_test_run_until(F->loop, spool_empty, NULL, 120000));
    tally_await(&t);
    for (int i = 0; i < N; i++) {
        assert_int_equal(t.copies[i], i == BAD ? 0 : 1);
        again += t.copies[i] > 1;
    }
    assert_int_equal(again, 0);
    assert_true(first_spool_file("dead-letter-spool-", dead, sizeof(dead)));
    unlink(dead);
    free(t.copies);
    daemon_stop();
    daemon_start(F->kcfg.brokers, wa_test_env("WA_REDIS_URL"));
}

/* A daemon killed -9 in the middle of a replay: the restarted one resumes at the cursor, so
 * every record the cursor had passed is published once; at most one window is repeated. */
static void
spool_kill9_mid_replay__resumes_at_cursor_at_most_one_window_again(void **state)
{
    enum { N = 20000, WINDOW = 512 };
    static size_t offs[N];
    char path[512], cpath[600];
    uint64_t cursor = 0, end;
    size_t before = 0, again = 0;
    struct tally t;

    (void)state;
    daemon_stop();
    spool_file_make("rk", N, -1, offs, path, sizeof(path));
    snprintf(cpath, sizeof(cpath), "%s.cursor", path);
    tally_start(&t, "rk", N);
    daemon_start(F->kcfg.brokers, wa_test_env("WA_REDIS_URL"));
    /* kill as soon as a cursor shows the replay midway */
    end = wa_clock_mono_ms() + 30000;
    while (cursor == 0 && wa_clock_mono_ms() < end) {
        size_t len = 0;
        unsigned char *c = (unsigned char *)wa_test_read_file(cpath, &len);

        if (c != NULL && len == 24) {
            for (int i = 7; i >= 0; i--) {
                cursor = cursor << 8 | c[4 + i];
            }
        }
        free(c);
        if (cursor == 0) {
            usleep(1000);
        }
    }
    wa_test_stop(F->pid, SIGKILL, WA_TEST_NO_TIMEOUT);
    F->pid = 0;
    assert_true(cursor > 0);
    daemon_start(F->kcfg.brokers, wa_test_env("WA_REDIS_URL"));
    assert_true(wa_test_run_until(F->loop, spool_empty, NULL, 60000));
    tally_await(&t);
    for (int i = 0; i < N; i++) {
        assert_true(t.copies[i] >= 1);
        if (offs[i] < cursor) {
            before++;
            assert_int_equal(t.copies[i], 1);
        }
        again += t.copies[i] - 1;
    }
    print_message("killed at cursor %llu (%zu of %d records behind it): %zu published twice\n",
                  (unsigned long long)cursor, before, N, again);
    assert_true(again <= WINDOW);
    free(t.copies);
}

/* ---- spool mode ends under load ---- */

static struct {
    atomic_bool stop;
    atomic_int next;
    unsigned char answered[100000];
} L;

static void *
load_thread(void *arg)
{
    char body[1024];
    int n;

    (void)arg;
    while (!atomic_load(&L.stop)) {
        int i = atomic_fetch_add(&L.next, 1);

        if (i >= (int)sizeof(L.answered)) {
            break;
        }
        n = snprintf(body, sizeof(body),
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"w\","
                     "\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":{"
                     "\"phone_number_id\":\"p1\"},\"messages\":[{\"from\":\"%d\",\"id\":"
                     "\"wamid.load-%05d-\",\"timestamp\":\"1\",\"type\":\"text\",\"text\":{"
                     "\"body\":\"n\"}}]}}]}]}",
                     i % 7, i);
        L.answered[i] = post_signed(body, (size_t)n, SECRET) == 200;
    }
    return NULL;
}

/* A daemon that starts with a backlog (spool mode) while webhooks keep arriving: spool mode
 * ends once Kafka acknowledges a replay window, new webhooks are published directly, and the
 * spool empties although the load never stops. Every webhook answered 200 is on Kafka. */
static void
spool_mode__ends_under_continuous_load(void **state)
{
    enum { N = 3000, THREADS = 4 };
    char path[512];
    pthread_t th[THREADS];
    struct tally backlog, load;
    bool emptied = false, direct = false;
    int sent;
    uint64_t end;

    (void)state;
    daemon_stop();
    spool_file_make("bl", N, -1, NULL, path, sizeof(path));
    tally_start(&backlog, "bl", N);
    daemon_start(F->kcfg.brokers, wa_test_env("WA_REDIS_URL"));
    atomic_store(&L.stop, false);
    atomic_store(&L.next, 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, load_thread, NULL), 0);
    }
    /* the load goes on until the spool has emptied and webhooks are published directly */
    end = wa_clock_mono_ms() + 60000;
    while (!(emptied && direct) && wa_clock_mono_ms() < end) {
        wa_test_run_for(F->loop, 100);
        emptied = emptied || spool_empty(NULL);
        direct = emptied && atomic_load(&L.next) > 100 &&
                 !metric_has("wa_ingest_requests_total{outcome=\"ok\"} 0\n");
    }
    wa_test_run_for(F->loop, 300); /* and a little more load after that */
    atomic_store(&L.stop, true);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    sent = atomic_load(&L.next);
    print_message("spool emptied under load: %s; %d webhooks sent meanwhile\n",
                  emptied ? "yes" : "no", sent);
    assert_true(emptied);
    assert_true(direct);
    assert_true(wa_test_run_until(F->loop, spool_empty, NULL, 30000));
    tally_await(&backlog);
    assert_int_equal(backlog.distinct, N);
    tally_start(&load, "load", sent);
    load.scanned = 0;
    tally_complete(&load);
    for (int i = 0; i < sent; i++) {
        if (L.answered[i] && load.copies[i] == 0) {
            fail_msg("webhook %d answered 200 is not on Kafka", i);
        }
    }
    free(backlog.copies);
    free(load.copies);
}

/* Must run last: it restarts the daemon. */
static void
kafka_down__requests_spooled_then_drained_in_order(void **state)
{
    enum { N = 20 };
    char body[1024], needle[64];
    size_t first = F->nseen;
    int n;

    (void)state;
    daemon_stop();
    daemon_start("127.0.0.1:1", wa_test_env("WA_REDIS_URL"));
    /* Kafka away is the spool's job: the pod stays ready (kafka reported down) */
    {
        struct wa_buf ready;

        wa_buf_init(&ready, 0);
        assert_true(wa_test_poll_status(F->port, "/readyz", 200, 20000, &ready)); /* after 10 s */
        assert_non_null(strstr(ready.data, "\"kafka\":\"down\""));
        assert_non_null(strstr(ready.data, "\"durable\":\"up\""));
        wa_buf_cleanup(&ready);
    }
    for (int i = 0; i < N; i++) {
        n = snprintf(body, sizeof(body),
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"w\","
                     "\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":{"
                     "\"phone_number_id\":\"p1\"},\"messages\":[{\"from\":\"%d\",\"id\":"
                     "\"wamid.spool-%02d\",\"timestamp\":\"1\",\"type\":\"text\",\"text\":{"
                     "\"body\":\"n%02d\"}}]}}]}]}",
                     i % 2, i, i);
        assert_int_equal(post_signed(body, (size_t)n, SECRET), 200);
    }
    assert_true(spool_files() >= 1);
    assert_int_equal(await(T_MESSAGE, "wamid.spool-", 0), 0);
    daemon_stop(); /* the spool survives a restart */
    assert_true(spool_files() >= 1);
    daemon_start(F->kcfg.brokers, wa_test_env("WA_REDIS_URL"));
    assert_int_equal(await(T_MESSAGE, "wamid.spool-", N), N);
    assert_true(wa_test_run_until(F->loop, spool_empty, NULL, 20000));
    /* Per key (conversation p1:0 and p1:1) the order of the posts is kept. */
    for (int k = 0; k < 2; k++) {
        int last = -1;

        for (size_t i = first; i < F->nseen; i++) {
            const char *p = strstr(F->seen[i].value, "wamid.spool-");

            if (strcmp(F->seen[i].topic, F->topics[T_MESSAGE]) != 0 || p == NULL) {
                continue;
            }
            n = (int)strtol(p + 12, NULL, 10);
            if (n % 2 == k) {
                assert_true(n > last);
                last = n;
            }
        }
        assert_true(last >= N - 2);
    }
    snprintf(needle, sizeof(needle), "\"parsed\":true");
    assert_true(count(T_RAW, needle) >= N);
}

static void
redis_down__published_anyway_and_counted(void **state)
{
    size_t len;
    char *body = fixture_body("valid", "message_text", "noredis", &len);
    struct wa_buf metrics;

    (void)state;
    daemon_stop();
    daemon_start(F->kcfg.brokers, "redis://127.0.0.1:1/0");
    assert_int_equal(post_signed(body, len, SECRET), 200);
    assert_int_equal(post_signed(body, len, SECRET), 200);
    /* Without dedup both copies go out: consumers' idempotency absorbs them; none is lost. A
     * loaded machine may add one: an ack later than WA_INGEST_ACK_TIMEOUT (the producer of a
     * just started daemon still connecting) spools the request, and spool and producer both
     * deliver it. */
    assert_true(await(T_MESSAGE, "wamid.noredis-", 2) >= 2);
    wa_buf_init(&metrics, 0);
    assert_int_equal(http("GET", "/metrics", NULL, NULL, 0, NULL, &metrics), 200);
    assert_non_null(strstr(metrics.data, "wa_ingest_dedup_failures_total 2"));
    wa_buf_cleanup(&metrics);
    daemon_stop();
    daemon_start(F->kcfg.brokers, wa_test_env("WA_REDIS_URL"));
    free(body);
}

/*
 * "A daemon killed with -9 at any moment loses no message": N distinct webhooks sent in waves,
 * SIGKILL once some have been answered (others in flight, the rest still to come), a restart on the same spool, and what was not
 * answered 200 delivered again, as Meta does. Every message must be published at least once;
 * copies are possible only for webhooks the kill caught between Kafka's ack and the 200 (the
 * ones redelivered), and consumers absorb them by wamid.
 */
enum { K9_N = 300, K9_KILL_AFTER = 20 };

static const char *k9_tag = "k9"; /* "st" for the SIGTERM variant */

static bool
all_k9_seen(void *arg)
{
    (void)arg;
    for (int i = 0; i < K9_N; i++) {
        char needle[32];

        snprintf(needle, sizeof(needle), "wamid.%s-%03d-", k9_tag, i);
        if (count(T_MESSAGE, needle) == 0) {
            return false;
        }
    }
    return true;
}

static void
mid_traffic(int signo)
{
    enum { N = K9_N, KILL_AFTER = K9_KILL_AFTER };
    static char *bodies[N], sig[N][WA_HUB_SIGNATURE_LEN], line[N][128];
    char url[128];
    static size_t lens[N];
    static long status[N];
    static CURL *easy[N];
    static struct curl_slist *h[N];
    CURLM *multi = curl_multi_init();
    int running = 0, done = 0, redelivered = 0, at_kill = 0, added = 0;
    size_t extra = 0;
    bool killed = false;
    pid_t pid = 0;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/webhook", F->port);
    for (int i = 0; i < N; i++) {
        char tag[16];

        snprintf(tag, sizeof(tag), "%s-%03d", k9_tag, i);
        bodies[i] = fixture_body("valid", "message_text", tag, &lens[i]);
        wa_hub_signature_make(SECRET, bodies[i], lens[i], sig[i]);
        snprintf(line[i], sizeof(line[i]), "X-Hub-Signature-256: %s", sig[i]);
        h[i] = curl_slist_append(NULL, line[i]);
        h[i] = curl_slist_append(h[i], "Content-Type: application/json");
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)lens[i]);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, h[i]);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 20000L);
        curl_easy_setopt(easy[i], CURLOPT_PRIVATE, (char *)(intptr_t)i);
        status[i] = 0;
    }
    /* Webhooks join in waves of 10, so the kill finds some in flight and more still to come
     * (all 300 at once could all be answered before the 20th answer is even read). */
    while (running > 0 || added < N) {
        CURLMsg *m;
        int left;

        for (int j = 0; j < 10 && added < N; j++) {
            curl_multi_add_handle(multi, easy[added++]);
        }
        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            char *priv = NULL;

            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status[(intptr_t)priv]);
            done++;
        }
        if (!killed && done >= KILL_AFTER) {
            if (signo == SIGKILL) {
                wa_test_stop(F->pid, SIGKILL, WA_TEST_NO_TIMEOUT);
            } else {
                kill(F->pid, signo); /* the traffic goes on while the daemon drains */
                pid = F->pid;
            }
            F->pid = 0;
            killed = true;
            at_kill = done;
        }
        curl_multi_poll(multi, NULL, 0, added < N ? 1 : 10, NULL);
    }
    assert_true(killed);
    if (signo == SIGTERM) {
        /* Graceful: exit 0 (ASan-clean), and every request the daemon took was answered 200
         * (in-flight work finished); later ones found the listener closed (status 0). */
        assert_int_equal(wa_test_wait_exit(pid, 30000), 0);
        for (int i = 0; i < N; i++) {
            if (status[i] != 200 && status[i] != 0) {
                fail_msg("webhook %d answered %ld during the drain", i, status[i]);
            }
        }
    }
    for (int i = 0; i < N; i++) {
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
        curl_slist_free_all(h[i]);
    }
    curl_multi_cleanup(multi);

    /* Meta redelivers what was not answered 200, to the restarted daemon. */
    daemon_start(wa_test_env("WA_KAFKA_BROKERS"), wa_test_env("WA_REDIS_URL"));
    for (int i = 0; i < N; i++) {
        if (status[i] != 200) {
            assert_int_equal(post_signed(bodies[i], lens[i], SECRET), 200);
            redelivered++;
        }
    }
    assert_true(signo != SIGKILL || redelivered > 0); /* the kill caught webhooks in flight */
    assert_true(redelivered <= N - KILL_AFTER);
    wa_test_run_until(F->loop, all_k9_seen, NULL, 30000);
    wa_test_run_for(F->loop, 500); /* copies, if any, have time to arrive too */
    for (int i = 0; i < N; i++) {
        char needle[32];
        size_t n;

        snprintf(needle, sizeof(needle), "wamid.%s-%03d-", k9_tag, i);
        n = count(T_MESSAGE, needle);
        if (n == 0) {
            fail_msg("webhook %d (answered %ld before the kill) was lost", i, status[i]);
        }
        if (n > 1) {
            assert_int_not_equal(status[i], 200); /* only a redelivered one may repeat */
            extra += n - 1;
        }
        free(bodies[i]);
    }
    assert_true(extra <= (size_t)redelivered);
    print_message("signal %d after %d answers: %d redelivered, %zu published twice\n", signo,
                  at_kill, redelivered, extra);
}

static void
kill9__mid_traffic__every_answered_or_redelivered_webhook_published(void **state)
{
    (void)state;
    k9_tag = "k9";
    mid_traffic(SIGKILL);
}

/* The same traffic, stopped with SIGTERM: the drain answers what is in flight, exit 0. */
static void
sigterm__mid_traffic__in_flight_answered_exit_0_nothing_lost(void **state)
{
    (void)state;
    k9_tag = "st";
    mid_traffic(SIGTERM);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake__right_token__echoes_challenge_else_403),
        cmocka_unit_test(signature__missing_or_wrong__401_and_nothing_published),
        cmocka_unit_test(signature__previous_secret_while_rotating__accepted),
        cmocka_unit_test(events__shape_keys_and_trace__follow_the_contract),
        cmocka_unit_test(fixtures__every_type_and_status__published_as_expected),
        cmocka_unit_test(fidelity__numbers_repairs_groups_and_user_items__on_kafka),
        cmocka_unit_test(duplicates__sequential_redelivery__published_once),
        cmocka_unit_test(duplicates__concurrent_redelivery__each_200_durable_later_copies_dropped),
        cmocka_unit_test(batch__thousand_updates_in_one_post__all_published),
        cmocka_unit_test(limits__oversize_content_type__413_415),
        cmocka_unit_test(unparsable__signed_truncated_or_not_json__archived_and_200),
        cmocka_unit_test(redis_down__published_anyway_and_counted),
        cmocka_unit_test(spool_damaged_frame__later_records_replayed_file_quarantined),
        cmocka_unit_test(spool_refused_record__dead_lettered_others_replayed),
        cmocka_unit_test(spool_cursor__replay_resumes_after_it),
        cmocka_unit_test(spool_partial_failure__later_passes_produce_only_unacknowledged_records),
        cmocka_unit_test(spool_kill9_mid_replay__resumes_at_cursor_at_most_one_window_again),
        cmocka_unit_test(spool_mode__ends_under_continuous_load),
        cmocka_unit_test(kafka_down__requests_spooled_then_drained_in_order),
        cmocka_unit_test(kill9__mid_traffic__every_answered_or_redelivered_webhook_published),
        cmocka_unit_test(sigterm__mid_traffic__in_flight_answered_exit_0_nothing_lost),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
