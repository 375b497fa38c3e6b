/*
 * gateway_test.c: wa-gateway through its binary on a free port with a unique topic prefix and
 * MongoDB database, on the suite's Kafka, Redis and FerretDB. The test reads what the gateway
 * publishes (outbound.request) with its own consumer, and MongoDB and Redis directly.
 * Covered: the first admin key from `wa-gateway keys create`; keys made, listed and revoked
 * through the admin API (revocation seen within the cache TTL); 401 without or with a wrong
 * key, 400 for a key in the query string, 403 without the scope; POST /v1/messages accepted
 * (202) and published, 422 naming every invalid field, 415, 400 for deep JSON, 413; the same
 * Idempotency-Key replayed without a second message, also for 50 concurrent copies, 422 with
 * another body; 429 with Retry-After and RateLimit headers past a key's limit; the raw keys in
 * no log line, no MongoDB document and no Redis key or value.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "wa/buf.h"
#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract.h"
#include "wa/json.h"
#include "wa/jwt.h"
#include "wa/kafka.h"
#include "wa/kv.h"
#include "wa/optout.h"
#include "wa/mongo.h"
#include "wa_test.h"
#include "wa_test_proc.h"

#define WAIT_MS 60000
#define MAX_REQ 256
#define LOG     "/tmp/wa-gateway-test.log"

static struct {
    char prefix[48];
    char mongo_env[320];
    struct wa_loop *loop;
    struct wa_pool *pool;
    struct wa_kafka_consumer *consumer;
    struct wa_kv *kv;
    struct wa_mongo *mongo;
    json_t *requests[MAX_REQ]; /* outbound.request data published */
    size_t nreq;
    int port, users, analytics, sim, dead, notify;
    pid_t pid, p_users, p_analytics, p_sim, p_notify;
    char admin[128]; /* raw keys: checked to appear nowhere at the end */
    char sender[128];
    char limited[128];
    char revoked[128];
    char *rsa_priv, *rsa_pub, *ec_priv, *ec_pub; /* the JWT issuer's keys */
    char jwks_path[128];
} T;

/* ---- HTTP with response headers ---- */

struct answer {
    long status;
    struct wa_buf body;
    char headers[4096];
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct answer *a = arg;

    return wa_buf_append(&a->body, p, size * n) == WA_OK ? size * n : 0;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    struct answer *a = arg;
    size_t have = strlen(a->headers), len = size * n;

    if (have + len < sizeof(a->headers)) {
        memcpy(a->headers + have, p, len);
        a->headers[have + len] = '\0';
    }
    return len;
}

/* The value of response header name (first one), copied into out; false when absent. */
static bool
header(const struct answer *a, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);

    for (const char *l = a->headers; l != NULL && *l != '\0';) {
        const char *e = strstr(l, "\r\n");

        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1;

            while (*v == ' ') {
                v++;
            }
            snprintf(out, size, "%.*s", (int)((e != NULL ? e : v + strlen(v)) - v), v);
            return true;
        }
        l = e != NULL ? e + 2 : NULL;
    }
    return false;
}

static CURL *
easy(const char *method, const char *path, const char *key, const char *body, struct curl_slist *h,
     struct answer *a)
{
    CURL *c = curl_easy_init();
    char url[512];

    assert_non_null(c);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", T.port, path);
    memset(a->headers, 0, sizeof(a->headers));
    wa_buf_init(&a->body, 1 << 20);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    (void)key;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    return c;
}

static struct curl_slist *
headers(const char *key, const char *content_type, const char *idem)
{
    struct curl_slist *h = NULL;
    char line[9000]; /* a JWT is long */

    if (key != NULL) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", key);
        h = curl_slist_append(h, line);
    }
    snprintf(line, sizeof(line), "Content-Type: %s",
             content_type != NULL ? content_type : "application/json");
    h = curl_slist_append(h, line);
    if (idem != NULL) {
        snprintf(line, sizeof(line), "Idempotency-Key: %s", idem);
        h = curl_slist_append(h, line);
    }
    return h;
}

/* One request; *out (may be NULL) gets the parsed body. Returns the status. */
static long
call_full(const char *method, const char *path, const char *key, const char *body,
          const char *content_type, const char *idem, struct answer *a, json_t **out)
{
    struct curl_slist *h = headers(key, content_type, idem);
    CURL *c = easy(method, path, key, body, h, a);

    a->status = curl_easy_perform(c) == CURLE_OK ? 0 : -1;
    if (a->status == 0) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    if (out != NULL) {
        *out = a->body.len > 0 ? json_loadb(a->body.data, a->body.len, 0, NULL) : NULL;
    }
    return a->status;
}

static long
call(const char *method, const char *path, const char *key, const char *body, json_t **out)
{
    struct answer a;
    long s = call_full(method, path, key, body, NULL, NULL, &a, out);

    wa_buf_cleanup(&a.body);
    return s;
}

/* ---- Kafka: what the gateway published ---- */

static void
on_request(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct wa_cloudevent_doc *doc = NULL;

    (void)arg;
    if (T.nreq < MAX_REQ && wa_cloudevent_decode(msg->value, msg->len, &doc, NULL) == WA_OK) {
        T.requests[T.nreq++] = json_incref(doc->ev.data);
    }
    wa_cloudevent_doc_free(doc);
    wa_kafka_consumer_done(c, msg);
}

struct want {
    const char *id;
    size_t count;
};

static bool
count_reached(void *arg)
{
    struct want *w = arg;
    size_t n = 0;

    for (size_t i = 0; i < T.nreq; i++) {
        n += strcmp(wa_json_str(T.requests[i], "request_id"), w->id) == 0;
    }
    return n >= w->count;
}

/* How many outbound.request with request_id id arrived, after waiting for one and then
 * settle_ms more for any copy. */
static size_t
published(const char *id, uint64_t settle_ms)
{
    struct want w = {id, 1};
    size_t n = 0;

    if (!wa_test_run_until(T.loop, count_reached, &w, WAIT_MS)) {
        return 0;
    }
    wa_test_run_for(T.loop, settle_ms);
    for (size_t i = 0; i < T.nreq; i++) {
        n += strcmp(wa_json_str(T.requests[i], "request_id"), id) == 0;
    }
    return n;
}

static const json_t *
request_data(const char *id)
{
    for (size_t i = 0; i < T.nreq; i++) {
        if (strcmp(wa_json_str(T.requests[i], "request_id"), id) == 0) {
            return T.requests[i];
        }
    }
    return NULL;
}

/* ---- setup ---- */

struct kv_done {
    bool done;
    enum wa_err err;
};

static void
on_set(void *arg, enum wa_err err)
{
    struct kv_done *d = arg;

    d->err = err;
    d->done = true;
}

static bool
kv_ready(void *arg)
{
    (void)arg;
    return wa_kv_ready(T.kv);
}

static bool
flag(void *arg)
{
    return *(bool *)arg;
}

static void
on_dropped(void *arg, enum wa_err err)
{
    (void)err;
    *(bool *)arg = true;
}

static const char *
pepper_env(void)
{
    return "WA_GATEWAY_KEY_PEPPER=gateway-test-pepper";
}

/* `wa-gateway keys create` with the test's environment; the key printed, into out. */
static void
keys_create(const char *name, const char *scopes, char *out, size_t size)
{
    char bin[512], file[128];
    const char *argv[] = {bin, "keys", "create", "--name", name, "--scopes", scopes, NULL};
    char prefix_env[96];
    const char *env[] = {T.mongo_env, pepper_env(), prefix_env, NULL};
    char *text;
    size_t len;
    pid_t p;

    snprintf(prefix_env, sizeof(prefix_env), "WA_TOPIC_PREFIX=%s", T.prefix);
    snprintf(file, sizeof(file), "/tmp/wa-gateway-test-key-%d.out", (int)getpid());
    wa_test_bin_path("wa-gateway", bin, sizeof(bin));
    p = wa_test_spawn(argv, env, file, WA_TEST_SPAWN_STDOUT_ONLY);
    assert_int_equal(wa_test_wait_exit(p, 60000), 0);
    text = wa_test_read_file(file, &len);
    assert_non_null(text);
    unlink(file);
    assert_true(len > 4 && strncmp(text, "wab_", 4) == 0);
    snprintf(out, size, "%.*s", (int)strcspn(text, "\n"), text);
    free(text);
}

static void
write_jwks(bool with_ec)
{
    FILE *f = fopen(T.jwks_path, "w");

    assert_non_null(f);
    fprintf(f, "{\"keys\":[%s%s%s]}", T.rsa_pub, with_ec ? "," : "", with_ec ? T.ec_pub : "");
    assert_int_equal(fclose(f), 0);
}

static int
setup(void **state)
{
    struct wa_kafka_config kc = {0};
    struct wa_kv_config kvc = {0};
    struct wa_mongo_config mc = {0};
    char db[64], uri[256], topic[128];
    const char *tp[1] = {topic};
    const char *base = wa_test_env("WA_MONGO_URI"), *slash = strrchr(base, '/');
    char users_url[96], analytics_url[96], graph_url[96], targets[256], sim_env[96];
    char jwks_env[160];
    const char *env[] = {T.mongo_env,
                         pepper_env(),
                         "WA_GATEWAY_KEY_CACHE_TTL=1s",
                         "WA_GATEWAY_MAX_BODY=8KiB",
                         "WA_LOG_LEVEL=debug",
                         users_url,
                         analytics_url,
                         graph_url,
                         targets,
                         jwks_env,
                         "WA_GATEWAY_JWT_ISSUER=https://id.test",
                         "WA_GATEWAY_JWKS_REFRESH=1s",
                         NULL};
    char card[512];
    const char *an_env[] = {T.mongo_env, card, "WA_LOG_LEVEL=warn", NULL};
    const char *us_env[] = {T.mongo_env, "WA_LOG_LEVEL=warn", NULL};
    const char *cs_env[] = {sim_env, "WA_LOG_LEVEL=warn", NULL};
    char nt_graph[96];
    const char *nt_env[] = {nt_graph, "WA_LOG_LEVEL=warn", NULL};
    struct wa_buf b;

    (void)state;
    memset(&T, 0, sizeof(T));
    wa_test_unique_prefix(T.prefix, sizeof(T.prefix));
    snprintf(db, sizeof(db), "gateway_test_%d", (int)getpid());
    snprintf(uri, sizeof(uri), "%.*s/%s", (int)(slash - base), base, db);
    snprintf(T.mongo_env, sizeof(T.mongo_env), "WA_MONGO_URI=%s", uri);
    assert_int_equal(wa_loop_new(&T.loop), WA_OK);
    kc.brokers = wa_test_env("WA_KAFKA_BROKERS");
    kc.topic_prefix = T.prefix;
    /* every topic first: a consumer subscribed to a missing topic sees it only minutes later */
    {
        static const char *const names[] = {WA_CONTRACT_TOPICS};
        char full[sizeof(names) / sizeof(names[0])][128];
        const char *all[sizeof(names) / sizeof(names[0])];

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            wa_kafka_topic(&kc, names[i], full[i], sizeof(full[i]));
            all[i] = full[i];
        }
        assert_int_equal(
            wa_kafka_topics_ensure(&kc, all, sizeof(names) / sizeof(names[0]), 2, 30000, NULL),
            WA_OK);
    }
    wa_kafka_topic(&kc, WA_TOPIC_OUTBOUND_REQUEST, topic, sizeof(topic));
    assert_int_equal(wa_kafka_consumer_new(T.loop, &kc, "gateway-test", tp, 1, on_request, NULL,
                                           &T.consumer, NULL),
                     WA_OK);
    kvc.url = wa_test_env("WA_REDIS_URL");
    assert_int_equal(wa_kv_new(T.loop, &kvc, &T.kv, NULL), WA_OK);
    assert_true(wa_test_run_until(T.loop, kv_ready, NULL, 10000));
    assert_int_equal(wa_pool_new(T.loop, 2, &T.pool), WA_OK);
    mc.uri = uri;
    assert_int_equal(wa_mongo_new(T.loop, T.pool, &mc, &T.mongo, NULL), WA_OK);

    keys_create("admin", "admin", T.admin, sizeof(T.admin));
    /* the JWT issuer's key set holds the RSA key only; the EC key joins it later */
    assert_int_equal(wa_jwk_generate("RSA", "rsa-1", &T.rsa_priv, &T.rsa_pub, NULL), WA_OK);
    assert_int_equal(wa_jwk_generate("EC", "ec-2", &T.ec_priv, &T.ec_pub, NULL), WA_OK);
    snprintf(T.jwks_path, sizeof(T.jwks_path), "/tmp/wa-gateway-test-jwks-%d.json", (int)getpid());
    write_jwks(false);
    snprintf(jwks_env, sizeof(jwks_env), "WA_GATEWAY_JWKS=%s", T.jwks_path);
    T.port = wa_test_free_port();
    T.users = wa_test_free_port();
    T.analytics = wa_test_free_port();
    T.sim = wa_test_free_port();
    T.dead = wa_test_free_port(); /* nothing listens there: a node that is not ready */
    snprintf(card, sizeof(card), "WA_ANALYTICS_RATECARD=%s/analytics/ratecard.json",
             wa_test_env("WA_TEST_DATA"));
    snprintf(sim_env, sizeof(sim_env), "WA_WEBHOOK_URL=");
    snprintf(users_url, sizeof(users_url), "WA_GATEWAY_USERS_URL=http://127.0.0.1:%d", T.users);
    snprintf(analytics_url, sizeof(analytics_url), "WA_GATEWAY_ANALYTICS_URL=http://127.0.0.1:%d",
             T.analytics);
    snprintf(graph_url, sizeof(graph_url), "WA_GRAPH_URL=http://127.0.0.1:%d/v21.0", T.sim);
    snprintf(targets, sizeof(targets),
             "WA_GATEWAY_HEALTH_TARGETS=wa-users=http://127.0.0.1:%d,"
             "wa-analytics=http://127.0.0.1:%d,wa-ingest=http://127.0.0.1:%d",
             T.users, T.analytics, T.dead);
    T.p_users = wa_test_spawn_daemon("wa-users", T.users, T.prefix, us_env,
                                     "/tmp/wa-gateway-test-users.log");
    T.p_analytics = wa_test_spawn_daemon("wa-analytics", T.analytics, T.prefix, an_env,
                                         "/tmp/wa-gateway-test-analytics.log");
    T.p_sim = wa_test_spawn_daemon("wa-cloudsim", T.sim, T.prefix, cs_env,
                                   "/tmp/wa-gateway-test-cloudsim.log");
    T.notify = wa_test_free_port();
    snprintf(nt_graph, sizeof(nt_graph), "WA_GRAPH_URL=http://127.0.0.1:%d/v21.0", T.sim);
    T.p_notify = wa_test_spawn_daemon("wa-notify", T.notify, T.prefix, nt_env,
                                      "/tmp/wa-gateway-test-notify.log");
    T.pid = wa_test_spawn_daemon("wa-gateway", T.port, T.prefix, env, LOG);
    wa_buf_init(&b, 1 << 20);
    assert_true(wa_test_poll_status(T.port, "/readyz", 200, 60000, &b));
    assert_true(wa_test_poll_status(T.users, "/readyz", 200, 60000, &b));
    assert_true(wa_test_poll_status(T.analytics, "/readyz", 200, 60000, &b));
    assert_true(wa_test_poll_status(T.sim, "/readyz", 200, 60000, &b));
    assert_true(wa_test_poll_status(T.notify, "/readyz", 200, 60000, &b));
    wa_buf_cleanup(&b);
    return 0;
}

static int
teardown(void **state)
{
    bool dropped = false;

    (void)state;
    assert_int_equal(wa_test_stop(T.pid, SIGTERM, 10000), 0);
    assert_int_equal(wa_test_stop(T.p_users, SIGTERM, 10000), 0);
    assert_int_equal(wa_test_stop(T.p_analytics, SIGTERM, 10000), 0);
    assert_int_equal(wa_test_stop(T.p_notify, SIGTERM, 20000), 0);
    assert_int_equal(wa_test_stop(T.p_sim, SIGTERM, 10000), 0);
    if (wa_mongo_drop_database(T.mongo, on_dropped, &dropped) == WA_OK) {
        (void)wa_test_run_until(T.loop, flag, &dropped, 10000);
    }
    for (size_t i = 0; i < T.nreq; i++) {
        json_decref(T.requests[i]);
    }
    unlink(T.jwks_path);
    free(T.rsa_priv);
    free(T.rsa_pub);
    free(T.ec_priv);
    free(T.ec_pub);
    wa_kafka_consumer_close(T.consumer, NULL);
    wa_kafka_consumer_free(T.consumer);
    wa_kv_free(T.kv);
    wa_mongo_free(T.mongo);
    wa_pool_free(T.pool);
    wa_loop_free(T.loop);
    wa_kafka_wait_destroyed(5000);
    return 0;
}

/* A key made through the admin API; its id into id (may be NULL). */
static void
admin_create(const char *body, char *key, size_t size, char *id, size_t idsize)
{
    json_t *v = NULL;

    assert_int_equal(call("POST", "/v1/admin/keys", T.admin, body, &v), 201);
    assert_non_null(wa_json_str(v, "key"));
    assert_null(json_object_get(v, "key_hash"));
    snprintf(key, size, "%s", wa_json_str(v, "key"));
    if (id != NULL) {
        snprintf(id, idsize, "%s", wa_json_str(v, "id"));
    }
    json_decref(v);
}

/* True when the problem names pointer (a body field, "/x") or a parameter ("phone"). */
static bool
names_field(const json_t *problem, const char *pointer)
{
    size_t i;
    json_t *e;
    const char *member = pointer[0] == '/' ? "pointer" : "parameter";

    json_array_foreach(json_object_get(problem, "errors"), i, e)
    {
        const char *v = wa_json_str(e, member);

        if (v != NULL && strcmp(v, pointer) == 0) {
            return true;
        }
    }
    return false;
}

#define TEXT_BODY "{\"to\":\"+16505550101\",\"type\":\"text\",\"text\":{\"body\":\"hello\"}}"

/* ---- tests ---- */

static void
auth__missing_wrong_query_scope__401_401_400_403(void **state)
{
    struct answer a;
    char www[256];
    json_t *v = NULL;

    (void)state;
    admin_create("{\"name\":\"sender\",\"scopes\":[\"messages:send\"],"
                 "\"rate_per_min\":100000}",
                 T.sender, sizeof(T.sender), NULL, 0);
    assert_int_equal(call_full("POST", "/v1/messages", NULL, TEXT_BODY, NULL, NULL, &a, NULL), 401);
    assert_true(header(&a, "WWW-Authenticate", www, sizeof(www)));
    assert_non_null(strstr(www, "Bearer"));
    wa_buf_cleanup(&a.body);
    assert_int_equal(call_full("POST", "/v1/messages",
                               "wab_0123456789abcdef_"
                               "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                               TEXT_BODY, NULL, NULL, &a, &v),
                     401);
    assert_true(header(&a, "WWW-Authenticate", www, sizeof(www)));
    assert_non_null(strstr(www, "invalid_token"));
    assert_string_equal(wa_json_str(v, "title"), "Unauthorized");
    json_decref(v);
    wa_buf_cleanup(&a.body);
    assert_int_equal(call("POST", "/v1/messages", "not-a-key", TEXT_BODY, NULL), 401);
    {
        char path[256];

        snprintf(path, sizeof(path), "/v1/messages?api_key=%s", T.sender);
        assert_int_equal(call("POST", path, NULL, TEXT_BODY, NULL), 400);
    }
    assert_int_equal(call("GET", "/v1/admin/keys", T.sender, NULL, NULL), 403);
    assert_int_equal(call("GET", "/v1/admin/keys", T.admin, NULL, &v), 200);
    assert_int_equal(json_array_size(json_object_get(v, "data")), 2);
    assert_null(wa_json_path(v, "data.0.key_hash"));
    json_decref(v);
    assert_int_equal(
        call("POST", "/v1/admin/keys", T.admin, "{\"name\":\"\",\"scopes\":[\"x\"]}", &v), 422);
    assert_true(names_field(v, "/name"));
    assert_true(names_field(v, "/scopes"));
    json_decref(v);
}

static void
messages__accepted_published_invalid_named(void **state)
{
    json_t *v = NULL;
    const json_t *d;
    char id[64], deep[256] = "";

    (void)state;
    assert_int_equal(call("POST", "/v1/messages", T.sender, TEXT_BODY, &v), 202);
    assert_string_equal(wa_json_str(v, "status"), "queued");
    snprintf(id, sizeof(id), "%s", wa_json_str(v, "request_id"));
    json_decref(v);
    assert_int_equal(published(id, 0), 1);
    d = request_data(id);
    assert_string_equal(wa_json_str(d, "to"), "16505550101");
    assert_string_equal(wa_json_str(d, "phone_number_id"), "100000000000001");
    assert_string_equal(wa_json_path_str(d, "text.body"), "hello");

    assert_int_equal(call("POST", "/v1/messages", T.sender,
                          "{\"to\":\"12x\",\"type\":\"fax\",\"category\":\"spam\",\"extra\":1}",
                          &v),
                     422);
    assert_true(names_field(v, "/to"));
    assert_true(names_field(v, "/type"));
    assert_true(names_field(v, "/category"));
    assert_true(names_field(v, "/extra"));
    json_decref(v);
    assert_int_equal(call("POST", "/v1/messages", T.sender,
                          "{\"to\":\"16505550101\",\"type\":\"text\",\"text\":{}}", &v),
                     422);
    assert_true(names_field(v, "/text"));
    json_decref(v);
    {
        struct answer a;

        assert_int_equal(
            call_full("POST", "/v1/messages", T.sender, TEXT_BODY, "text/plain", NULL, &a, NULL),
            415);
        wa_buf_cleanup(&a.body);
    }
    memset(deep, '[', 40);
    assert_int_equal(call("POST", "/v1/messages", T.sender, deep, NULL), 400);
    {
        char *big = malloc(16384);

        assert_non_null(big);
        memset(big, ' ', 16383);
        big[16383] = '\0';
        big[0] = '{';
        big[16382] = '}';
        struct answer a;
        char ct[64];

        assert_int_equal(call_full("POST", "/v1/messages", T.sender, big, NULL, NULL, &a, NULL),
                         413);
        assert_true(header(&a, "Content-Type", ct, sizeof(ct)));
        assert_string_equal(ct, "application/problem+json");
        wa_buf_cleanup(&a.body);
        free(big);
    }
    assert_int_equal(call("GET", "/v1/nowhere", T.sender, NULL, NULL), 404);
    assert_int_equal(call("PUT", "/v1/messages", T.sender, TEXT_BODY, NULL), 405);
}

static void
idempotency__replay_other_body_50_concurrent__one_message(void **state)
{
    struct answer a;
    json_t *v = NULL, *w = NULL;
    char id[64], replayed[16];
    CURLM *m = curl_multi_init();
    CURL *easies[50];
    struct answer answers[50];
    struct curl_slist *h = headers(T.sender, NULL, "concurrent-key-1");
    int running = 0, accepted = 0, conflicts = 0;

    (void)state;
    assert_int_equal(
        call_full("POST", "/v1/messages", T.sender, TEXT_BODY, NULL, "order-1", &a, &v), 202);
    wa_buf_cleanup(&a.body);
    assert_int_equal(call_full("POST", "/v1/messages", T.sender,
                               "{ \"type\":\"text\", \"text\":{\"body\":\"hello\"}, "
                               "\"to\":\"+16505550101\" }",
                               NULL, "order-1", &a, &w),
                     202);
    assert_true(header(&a, "Idempotent-Replayed", replayed, sizeof(replayed)));
    wa_buf_cleanup(&a.body);
    assert_true(json_equal(v, w));
    snprintf(id, sizeof(id), "%s", wa_json_str(v, "request_id"));
    json_decref(v);
    json_decref(w);
    assert_int_equal(
        call_full("POST", "/v1/messages", T.sender,
                  "{\"to\":\"+16505550101\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}", NULL,
                  "order-1", &a, NULL),
        422);
    wa_buf_cleanup(&a.body);
    assert_int_equal(published(id, 1000), 1);

    for (int i = 0; i < 50; i++) {
        easies[i] = easy("POST", "/v1/messages", T.sender, TEXT_BODY, h, &answers[i]);
        curl_multi_add_handle(m, easies[i]);
    }
    do {
        curl_multi_perform(m, &running);
        if (running > 0) {
            curl_multi_poll(m, NULL, 0, 100, NULL);
        }
    } while (running > 0);
    for (int i = 0; i < 50; i++) {
        long s = 0;

        curl_easy_getinfo(easies[i], CURLINFO_RESPONSE_CODE, &s);
        accepted += s == 202;
        conflicts += s == 409;
        if (s == 202) {
            v = json_loadb(answers[i].body.data, answers[i].body.len, 0, NULL);
            snprintf(id, sizeof(id), "%s", wa_json_str(v, "request_id"));
            json_decref(v);
        }
        curl_multi_remove_handle(m, easies[i]);
        curl_easy_cleanup(easies[i]);
        wa_buf_cleanup(&answers[i].body);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    assert_true(accepted >= 1);
    assert_int_equal(accepted + conflicts, 50);
    assert_int_equal(published(id, 2000), 1);
    /* afterwards every copy is a replay */
    assert_int_equal(
        call_full("POST", "/v1/messages", T.sender, TEXT_BODY, NULL, "concurrent-key-1", &a, NULL),
        202);
    wa_buf_cleanup(&a.body);
}

static void
rate_limit__past_the_burst__429_retry_after_headers(void **state)
{
    struct answer a;
    char v[128];
    int s;

    (void)state;
    admin_create("{\"name\":\"slow\",\"scopes\":[\"messages:send\"],\"rate_per_min\":60,"
                 "\"burst\":3}",
                 T.limited, sizeof(T.limited), NULL, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            call_full("POST", "/v1/messages", T.limited, TEXT_BODY, NULL, NULL, &a, NULL), 202);
        assert_true(header(&a, "RateLimit-Policy", v, sizeof(v)));
        assert_string_equal(v, "\"key\";q=60;w=60");
        assert_true(header(&a, "RateLimit", v, sizeof(v)));
        wa_buf_cleanup(&a.body);
    }
    s = (int)call_full("POST", "/v1/messages", T.limited, TEXT_BODY, NULL, NULL, &a, NULL);
    assert_int_equal(s, 429);
    assert_true(header(&a, "Retry-After", v, sizeof(v)));
    assert_true(strtol(v, NULL, 10) >= 1);
    assert_true(header(&a, "RateLimit", v, sizeof(v)));
    assert_non_null(strstr(v, "r=0"));
    wa_buf_cleanup(&a.body);
}

static void
revoke__key_refused_within_the_cache_ttl(void **state)
{
    char id[32], path[64];
    uint64_t deadline;
    long s = 0;

    (void)state;
    admin_create("{\"name\":\"temp\",\"scopes\":[\"messages:send\"]}", T.revoked, sizeof(T.revoked),
                 id, sizeof(id));
    assert_int_equal(call("POST", "/v1/messages", T.revoked, TEXT_BODY, NULL), 202);
    snprintf(path, sizeof(path), "/v1/admin/keys/%s", id);
    assert_int_equal(call("DELETE", path, T.admin, NULL, NULL), 204);
    assert_int_equal(call("DELETE", "/v1/admin/keys/ffffffffffffffff", T.admin, NULL, NULL), 404);
    deadline = wa_clock_mono_ms() + 5000;
    while (wa_clock_mono_ms() < deadline &&
           (s = call("POST", "/v1/messages", T.revoked, TEXT_BODY, NULL)) != 401) {
        usleep(100000);
    }
    assert_int_equal(s, 401);
}

static void
fan_out__contacts_messages_analytics_cloud_api__scopes_enforced(void **state)
{
    char reader[128], path[96];
    json_t *v = NULL;
    uint64_t deadline;
    long s = 0;

    (void)state;
    admin_create("{\"name\":\"backoffice\",\"scopes\":[\"contacts:read\",\"contacts:write\","
                 "\"messages:read\",\"analytics:read\"]}",
                 reader, sizeof(reader), NULL, 0);
    /* wa-users behind the gateway, path parameters and query strings passed on */
    assert_int_equal(call("PUT", "/v1/contacts/%2B15551230077", reader,
                          "{\"name\":\"Ada\",\"tags\":[\"vip\"]}", NULL),
                     201);
    assert_int_equal(call("GET", "/v1/contacts/+15551230077", reader, NULL, &v), 200);
    assert_string_equal(wa_json_str(v, "name"), "Ada");
    json_decref(v);
    assert_int_equal(call("GET", "/v1/contacts?tag=vip&limit=5", reader, NULL, &v), 200);
    assert_int_equal(json_array_size(json_object_get(v, "data")), 1);
    json_decref(v);
    assert_int_equal(call("PATCH", "/v1/contacts/+15551230077", reader, "{\"priority\":\"x\"}", &v),
                     422); /* wa-users' own problem answer, passed on */
    assert_true(names_field(v, "/priority"));
    json_decref(v);
    assert_int_equal(call("GET", "/v1/contacts/+15551230077", T.sender, NULL, NULL), 403);
    assert_int_equal(call("GET", "/v1/analytics/summary", T.sender, NULL, NULL), 403);
    /* wa-analytics: a message sent through the gateway gets its timeline */
    assert_int_equal(call("POST", "/v1/messages", T.sender, TEXT_BODY, &v), 202);
    snprintf(path, sizeof(path), "/v1/messages/%s", wa_json_str(v, "request_id"));
    json_decref(v);
    deadline = wa_clock_mono_ms() + WAIT_MS;
    while (wa_clock_mono_ms() < deadline && (s = call("GET", path, reader, NULL, NULL)) != 200) {
        usleep(200000);
    }
    assert_int_equal(s, 200);
    assert_int_equal(call("GET", "/v1/analytics/summary", reader, NULL, &v), 200);
    json_decref(v);
    /* the Cloud API (wa-cloudsim): templates and the business profile */
    assert_int_equal(call("GET", "/v1/templates", reader, NULL, &v), 200);
    assert_true(json_array_size(json_object_get(v, "data")) > 0);
    assert_non_null(wa_json_path_str(v, "data.0.name"));
    json_decref(v);
    assert_int_equal(call("POST", "/v1/business-profile", reader, "{\"about\":\"x\"}", NULL), 403);
    assert_int_equal(call("POST", "/v1/business-profile", T.admin,
                          "{\"about\":\"Open 9 to 5\",\"websites\":[\"https://example.com\"]}",
                          NULL),
                     200);
    assert_int_equal(
        call("POST", "/v1/business-profile", T.admin, "{\"vertical\":\"NOT_A_VERTICAL\"}", &v),
        422); /* Meta's rules checked here: named, not a 502 */
    assert_true(names_field(v, "/vertical"));
    json_decref(v);
    assert_int_equal(call("GET", "/v1/business-profile", reader, NULL, &v), 200);
    assert_string_equal(wa_json_path_str(v, "data.0.about"), "Open 9 to 5");
    json_decref(v);
}

static void
public__links_qr_health_openapi(void **state)
{
    struct answer a;
    json_t *v = NULL;
    char ct[64], policy[64];

    (void)state;
    assert_int_equal(
        call("GET", "/v1/links/click-to-chat?phone=%2B1%20650%20555%200101&text=Hi%20there%21",
             NULL, NULL, &v),
        200);
    assert_string_equal(wa_json_str(v, "url"), "https://wa.me/16505550101?text=Hi%20there%21");
    json_decref(v);
    assert_int_equal(call("GET", "/v1/links/click-to-chat?phone=abc", NULL, NULL, &v), 422);
    assert_true(names_field(v, "phone"));
    json_decref(v);
    assert_int_equal(call_full("GET", "/v1/links/click-to-chat.png?phone=16505550101", NULL, NULL,
                               NULL, NULL, &a, NULL),
                     200);
    assert_true(header(&a, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "image/png");
    assert_true(a.body.len > 100 && memcmp(a.body.data, "\x89PNG\r\n\x1a\n", 8) == 0);
    assert_true(header(&a, "RateLimit-Policy", policy, sizeof(policy)));
    assert_non_null(strstr(policy, "\"ip\""));
    wa_buf_cleanup(&a.body);
    /* health: wa-ingest's address answers nothing, so 503 with its error; the others connected */
    assert_int_equal(call("GET", "/v1/health", NULL, NULL, &v), 503);
    {
        char node[64];
        const char *k;
        json_t *e, *ingest = NULL, *users = NULL, *gateway = NULL;

        snprintf(node, sizeof(node), "wa-ingest:127.0.0.1:%d", T.dead);
        ingest = json_object_get(json_object_get(v, "health"), node);
        snprintf(node, sizeof(node), "wa-users:127.0.0.1:%d", T.users);
        users = json_object_get(json_object_get(v, "health"), node);
        json_object_foreach(json_object_get(v, "health"), k, e)
        {
            if (strncmp(k, "wa-gateway:", 11) == 0) {
                gateway = e;
            }
        }
        assert_non_null(ingest);
        assert_string_equal(wa_json_str(ingest, "gateway_status"), "disconnected");
        assert_string_equal(wa_json_str(ingest, "role"), "ingest");
        assert_int_equal(json_integer_value(wa_json_path(ingest, "errors.0.code")), 1011);
        assert_string_equal(wa_json_path_str(ingest, "errors.0.title"), "Service not ready");
        assert_non_null(users);
        assert_string_equal(wa_json_str(users, "gateway_status"), "connected");
        assert_non_null(gateway);
        assert_string_equal(wa_json_str(gateway, "gateway_status"), "connected");
    }
    json_decref(v);
    assert_int_equal(call("GET", "/v1/openapi.json", NULL, NULL, &v), 200);
    assert_string_equal(wa_json_str(v, "openapi"), "3.1.0");
    assert_non_null(wa_json_path(v, "paths./v1/messages.post"));
    json_decref(v);
}

/* ---- JWT bearer tokens ---- */

static char *
token(const char *jwk, const char *alg, const char *kid, const char *iss, const char *aud,
      int64_t exp_delta, const char *scope)
{
    int64_t now = (int64_t)(wa_clock_wall_ms() / 1000);
    json_t *c =
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", iss, "sub", "crm-service", "aud", aud,
                  "exp", (json_int_t)(now + exp_delta), "iat", (json_int_t)now, "scope", scope);
    char *t = NULL;

    assert_int_equal(wa_jwt_sign(jwk, alg, kid, c, &t, NULL), WA_OK);
    json_decref(c);
    return t;
}

static void
b64(const char *in, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(in), o = 0;
    const unsigned char *u = (const unsigned char *)in;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)u[i] << 16 | (i + 1 < n ? (unsigned)u[i + 1] << 8 : 0) |
                     (i + 2 < n ? u[i + 2] : 0);

        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        if (i + 1 < n) {
            out[o++] = t[(v >> 6) & 63];
        }
        if (i + 2 < n) {
            out[o++] = t[v & 63];
        }
    }
    out[o] = '\0';
}

static long
with_token(const char *t, char *www, size_t size)
{
    struct answer a;
    long s = call_full("POST", "/v1/messages", t, TEXT_BODY, NULL, NULL, &a, NULL);

    if (www != NULL && !header(&a, "WWW-Authenticate", www, size)) {
        www[0] = '\0';
    }
    wa_buf_cleanup(&a.body);
    return s;
}

static void
jwt__valid_accepted_adversarial_all_401_unknown_kid_refetched(void **state)
{
    const char *iss = "https://id.test";
    char *good = token(T.rsa_priv, "RS256", "rsa-1", iss, "wabridge", 300, "openid messages:send");
    char *noscope = token(T.rsa_priv, "RS256", "rsa-1", iss, "wabridge", 300, "openid");
    char *expired = token(T.rsa_priv, "RS256", "rsa-1", iss, "wabridge", -600, "messages:send");
    char *aud = token(T.rsa_priv, "RS256", "rsa-1", iss, "someone-else", 300, "messages:send");
    char *other_iss =
        token(T.rsa_priv, "RS256", "rsa-1", "https://evil.test", "wabridge", 300, "messages:send");
    char *new_kid = token(T.ec_priv, "ES256", "ec-2", iss, "wabridge", 300, "messages:send");
    char hdr[128], body[512], none[768], k[4096], oct[4200], www[256];
    const char *h = "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"rsa-1\"}";
    char *payload = NULL, *hs = NULL;
    json_t *pc;
    uint64_t deadline;
    long s = 0;

    (void)state;
    assert_int_equal(with_token(good, NULL, 0), 202);
    assert_int_equal(with_token(noscope, NULL, 0), 403);
    /* alg none: the payload of a good token, no signature */
    pc = json_pack("{s:s, s:s, s:s, s:I, s:s}", "iss", iss, "sub", "x", "aud", "wabridge", "exp",
                   (json_int_t)(wa_clock_wall_ms() / 1000 + 300), "scope", "messages:send");
    payload = wa_json_dump(pc);
    json_decref(pc);
    b64(h, hdr);
    b64(payload, body);
    snprintf(none, sizeof(none), "%s.%s.", hdr, body);
    assert_int_equal(with_token(none, www, sizeof(www)), 401);
    assert_non_null(strstr(www, "error=\"invalid_token\""));
    /* HS256 keyed with the issuer's public key (the key-confusion attack) */
    b64(T.rsa_pub, k);
    snprintf(oct, sizeof(oct), "{\"kty\":\"oct\",\"k\":\"%s\"}", k);
    hs = token(oct, "HS256", "rsa-1", iss, "wabridge", 300, "messages:send");
    assert_int_equal(with_token(hs, www, sizeof(www)), 401);
    assert_non_null(strstr(www, "invalid_token"));
    assert_int_equal(with_token(expired, NULL, 0), 401);
    assert_int_equal(with_token(aud, NULL, 0), 401);
    assert_int_equal(with_token(other_iss, NULL, 0), 401);
    assert_int_equal(with_token("a.b.c", NULL, 0), 401);
    /* an unknown kid: 401 until the issuer publishes it; then one refetch finds it */
    assert_int_equal(with_token(new_kid, NULL, 0), 401);
    write_jwks(true);
    deadline = wa_clock_mono_ms() + 10000;
    while (wa_clock_mono_ms() < deadline && (s = with_token(new_kid, NULL, 0)) != 202) {
        usleep(300000);
    }
    assert_int_equal(s, 202);
    free(good);
    free(noscope);
    free(expired);
    free(aud);
    free(other_iss);
    free(new_kid);
    free(hs);
    free(payload);
}

/* ---- end to end: gateway -> Kafka -> wa-notify -> the Cloud API; timelines ---- */

static void
kv_set(const char *key, const char *value)
{
    struct kv_done d = {false, WA_OK};
    char full[256];

    snprintf(full, sizeof(full), "%s%s", T.prefix, key);
    assert_int_equal(wa_kv_set_px(T.kv, full, value, 600000, on_set, &d), WA_OK);
    assert_true(wa_test_run_until(T.loop, flag, &d.done, 5000));
    assert_int_equal(d.err, WA_OK);
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

/* The timeline's state of request_id at wa-analytics through the gateway; "" until known. */
static void
timeline_state(const char *key, const char *id, char *out, size_t size)
{
    char path[128];
    json_t *v = NULL;

    snprintf(path, sizeof(path), "/v1/messages/%s", id);
    out[0] = '\0';
    if (call("GET", path, key, NULL, &v) == 200 && wa_json_str(v, "state") != NULL) {
        snprintf(out, size, "%s", wa_json_str(v, "state"));
    }
    json_decref(v);
}

static bool
at_simulator(const char *request_id)
{
    struct wa_test_http_req rq = {.port = T.sim, .path = "/_sim/messages"};
    struct wa_buf b;
    bool found;

    wa_buf_init(&b, 16 << 20);
    found = wa_test_http(&rq, &b) == 200 && b.data != NULL && strstr(b.data, request_id) != NULL;
    wa_buf_cleanup(&b);
    return found;
}

static void
e2e__text_in_window_sent_timeline_readable_marketing_to_opted_out_fails(void **state)
{
    char reader[128], text_id[64], tpl_id[64], st[32] = "", now[32];
    struct wa_test_http_req inbound = {
        .method = "POST",
        .port = T.sim,
        .path = "/_sim/inbound",
        .headers = (const char *const[]){"Content-Type: application/json", NULL},
        .body = "{\"from\":\"16505550999\",\"name\":\"Ada\",\"type\":\"text\","
                "\"text\":{\"body\":\"hi\"}}"};
    json_t *v = NULL;
    uint64_t deadline;

    (void)state;
    admin_create("{\"name\":\"e2e\",\"scopes\":[\"messages:send\",\"messages:read\"]}", reader,
                 sizeof(reader), NULL, 0);
    /* the customer wrote: the simulator's window opens, and the 24 h window key is set as
     * wa-router sets it */
    assert_int_equal(wa_test_http(&inbound, NULL), 200);
    snprintf(now, sizeof(now), "%llu", (unsigned long long)wa_clock_wall_ms());
    kv_set("win:100000000000001:16505550999", now);
    assert_int_equal(
        call("POST", "/v1/messages", reader,
             "{\"to\":\"+16505550999\",\"type\":\"text\",\"text\":{\"body\":\"Your order "
             "shipped\"}}",
             &v),
        202);
    snprintf(text_id, sizeof(text_id), "%s", wa_json_str(v, "request_id"));
    json_decref(v);
    deadline = wa_clock_mono_ms() + WAIT_MS;
    while (wa_clock_mono_ms() < deadline && !at_simulator(text_id)) {
        usleep(200000);
    }
    assert_true(at_simulator(text_id)); /* sent by wa-notify with the request_id attached */
    deadline = wa_clock_mono_ms() + WAIT_MS;
    while (wa_clock_mono_ms() < deadline && (timeline_state(reader, text_id, st, sizeof(st)),
                                             strcmp(st, "requested") == 0 || st[0] == '\0')) {
        usleep(200000);
    }
    assert_true(strcmp(st, "accepted") == 0 || strcmp(st, "sent") == 0 ||
                strcmp(st, "delivered") == 0 || strcmp(st, "read") == 0);

    /* a marketing template to a contact who opted out (the key wa-users keeps) ends failed */
    optout_set("16505550998");
    assert_int_equal(
        call("POST", "/v1/messages", reader,
             "{\"to\":\"+16505550998\",\"type\":\"template\",\"category\":\"marketing\","
             "\"template\":{\"name\":\"new_collection\",\"language\":{\"code\":\"en\"}}}",
             &v),
        202);
    snprintf(tpl_id, sizeof(tpl_id), "%s", wa_json_str(v, "request_id"));
    json_decref(v);
    deadline = wa_clock_mono_ms() + WAIT_MS;
    while (wa_clock_mono_ms() < deadline &&
           (timeline_state(reader, tpl_id, st, sizeof(st)), strcmp(st, "failed") != 0)) {
        usleep(200000);
    }
    assert_string_equal(st, "failed");
    assert_false(at_simulator(tpl_id));
}

/* ---- the limit shared by replicas; the local limiter without Redis ---- */

/* Another wa-gateway on the suite's Kafka and MongoDB; redis NULL: the suite's Redis. */
static pid_t
replica(int port, const char *redis, const char *log)
{
    char redis_env[128];
    const char *env[] = {T.mongo_env, pepper_env(), "WA_GATEWAY_REPLICAS=2",
                         redis != NULL ? redis_env : NULL, NULL};

    snprintf(redis_env, sizeof(redis_env), "WA_REDIS_URL=%s", redis != NULL ? redis : "");
    return wa_test_spawn_daemon("wa-gateway", port, T.prefix, env, log);
}

static long
call_at(int port, const char *key, long *status_5xx)
{
    int saved = T.port;
    long s;

    T.port = port;
    s = call("POST", "/v1/messages", key, TEXT_BODY, NULL);
    T.port = saved;
    if (s >= 500 || s == 0) {
        (*status_5xx)++;
    }
    return s;
}

static void
limit__three_replicas_share_it_and_without_redis_never_5xx(void **state)
{
    int ports[3] = {T.port, wa_test_free_port(), wa_test_free_port()}, dead = wa_test_free_port();
    pid_t pids[2], lonely;
    char key[128], local_key[128], url[64];
    long admitted = 0, sent = 0, bad = 0;
    uint64_t t0, elapsed_ms;
    struct wa_buf b;

    (void)state;
    /* 600/min: one every 100 ms after a burst of 10, however many replicas answer */
    admin_create("{\"name\":\"shared\",\"scopes\":[\"messages:send\"],\"rate_per_min\":600,"
                 "\"burst\":10}",
                 key, sizeof(key), NULL, 0);
    pids[0] = replica(ports[1], NULL, "/tmp/wa-gateway-test-replica-1.log");
    pids[1] = replica(ports[2], NULL, "/tmp/wa-gateway-test-replica-2.log");
    wa_buf_init(&b, 1 << 16);
    assert_true(wa_test_poll_status(ports[1], "/readyz", 200, 60000, &b));
    assert_true(wa_test_poll_status(ports[2], "/readyz", 200, 60000, &b));
    t0 = wa_clock_mono_ms();
    while (wa_clock_mono_ms() - t0 < 3000) {
        admitted += call_at(ports[sent % 3], key, &bad) == 202;
        sent++;
    }
    elapsed_ms = wa_clock_mono_ms() - t0;
    assert_int_equal(bad, 0);
    /* GCRA from a fresh state admits the burst plus one per interval elapsed, across all */
    assert_true(admitted >= 10);
    assert_true(admitted <= 10 + (long)(elapsed_ms / 100) + 2);
    assert_true(sent > admitted); /* the limit was reached */
    assert_int_equal(wa_test_stop(pids[0], SIGTERM, 10000), 0);
    assert_int_equal(wa_test_stop(pids[1], SIGTERM, 10000), 0);

    /* Redis unreachable: the key comes from MongoDB, the local limiter admits this replica's
     * share (rate / 2, burst / 2 = 2), the rest get 429, nobody a 5xx */
    admin_create("{\"name\":\"local\",\"scopes\":[\"messages:send\"],\"rate_per_min\":60,"
                 "\"burst\":4}",
                 local_key, sizeof(local_key), NULL, 0);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", dead);
    lonely = replica(ports[1], url, "/tmp/wa-gateway-test-replica-noredis.log");
    assert_true(wa_test_poll_status(ports[1], "/healthz", 200, 60000, &b));
    wa_buf_cleanup(&b);
    admitted = 0;
    bad = 0;
    for (int i = 0; i < 6; i++) {
        long s = call_at(ports[1], local_key, &bad);

        admitted += s == 202;
        assert_true(s == 202 || s == 429);
    }
    assert_int_equal(bad, 0);
    assert_true(admitted >= 2 && admitted <= 3);
    assert_int_equal(wa_test_stop(lonely, SIGTERM, 10000), 0);
}

/* ---- the raw keys are stored and logged nowhere ---- */

static bool
holds_secret(const char *text)
{
    const char *keys[] = {T.admin, T.sender, T.limited, T.revoked};

    for (size_t i = 0; i < 4; i++) {
        /* the secret part: after wab_<16 hex>_ */
        if (keys[i][0] != '\0' && text != NULL && strstr(text, keys[i] + 21) != NULL) {
            return true;
        }
    }
    return false;
}

struct docs_probe {
    bool done;
    enum wa_err err;
    char *text;
};

static void
on_docs(void *arg, enum wa_err err, json_t *docs)
{
    struct docs_probe *p = arg;

    p->err = err;
    p->text = err == WA_OK ? wa_json_dump(docs) : NULL;
    p->done = true;
}

struct scan {
    bool done;
    enum wa_err err;
    struct wa_buf all; /* every key name and string value seen */
    char cursor[32];
    size_t pending;
};

static void
on_value(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct scan *s = arg;
    size_t n = wa_kv_reply_len(reply);

    (void)err;
    for (size_t i = 0; i < n; i++) {
        const char *v = wa_kv_reply_str(wa_kv_reply_at(reply, i), NULL);

        if (v != NULL) {
            wa_buf_append_str(&s->all, v);
            wa_buf_append_str(&s->all, "\n");
        }
    }
    if (wa_kv_reply_str(reply, NULL) != NULL) {
        wa_buf_append_str(&s->all, wa_kv_reply_str(reply, NULL));
    }
    s->pending--;
}

static void
on_scan(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct scan *s = arg;
    const struct wa_kv_reply *keys = wa_kv_reply_at(reply, 1);

    s->err = err;
    if (err != WA_OK) {
        s->done = true;
        return;
    }
    snprintf(s->cursor, sizeof(s->cursor), "%s", wa_kv_reply_str(wa_kv_reply_at(reply, 0), NULL));
    for (size_t i = 0; i < wa_kv_reply_len(keys); i++) {
        const char *k = wa_kv_reply_str(wa_kv_reply_at(keys, i), NULL);
        const char *argv[] = {"EVAL",
                              "local t = redis.call('TYPE', KEYS[1]).ok "
                              "if t == 'string' then return redis.call('GET', KEYS[1]) end "
                              "if t == 'hash' then return redis.call('HGETALL', KEYS[1]) end "
                              "return ''",
                              "1", k};

        wa_buf_append_str(&s->all, k);
        wa_buf_append_str(&s->all, "\n");
        if (wa_kv_command_argv(T.kv, 4, argv, NULL, on_value, s) == WA_OK) {
            s->pending++;
        }
    }
    s->done = true;
}

static bool
scan_done(void *arg)
{
    struct scan *s = arg;

    return s->done && s->pending == 0;
}

static void
secrets__in_no_log_document_or_redis_key(void **state)
{
    struct docs_probe p = {0};
    struct scan s = {0};
    char pattern[96];
    char *log;
    size_t len;

    (void)state;
    assert_non_null(strstr(T.admin, "wab_"));
    assert_true(holds_secret(T.admin)); /* the check itself works */
    log = wa_test_read_file(LOG, &len);
    assert_non_null(log);
    assert_false(holds_secret(log));
    free(log);
    assert_int_equal(wa_mongo_find(T.mongo, "api_keys", NULL, NULL, on_docs, &p), WA_OK);
    assert_true(wa_test_run_until(T.loop, flag, &p.done, 10000));
    assert_int_equal(p.err, WA_OK);
    assert_non_null(strstr(p.text, "key_hash"));
    assert_false(holds_secret(p.text));
    free(p.text);
    wa_buf_init(&s.all, 16 << 20);
    snprintf(s.cursor, sizeof(s.cursor), "0");
    snprintf(pattern, sizeof(pattern), "%s*", T.prefix);
    do {
        const char *argv[] = {"SCAN", s.cursor, "MATCH", pattern, "COUNT", "1000"};

        s.done = false;
        assert_int_equal(wa_kv_command_argv(T.kv, 6, argv, NULL, on_scan, &s), WA_OK);
        assert_true(wa_test_run_until(T.loop, scan_done, &s, 10000));
        assert_int_equal(s.err, WA_OK);
    } while (strcmp(s.cursor, "0") != 0);
    assert_non_null(strstr(s.all.data, "gw:idem:")); /* the scan saw the gateway's keys */
    assert_false(holds_secret(s.all.data));
    wa_buf_cleanup(&s.all);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auth__missing_wrong_query_scope__401_401_400_403),
        cmocka_unit_test(messages__accepted_published_invalid_named),
        cmocka_unit_test(idempotency__replay_other_body_50_concurrent__one_message),
        cmocka_unit_test(rate_limit__past_the_burst__429_retry_after_headers),
        cmocka_unit_test(revoke__key_refused_within_the_cache_ttl),
        cmocka_unit_test(fan_out__contacts_messages_analytics_cloud_api__scopes_enforced),
        cmocka_unit_test(public__links_qr_health_openapi),
        cmocka_unit_test(jwt__valid_accepted_adversarial_all_401_unknown_kid_refetched),
        cmocka_unit_test(limit__three_replicas_share_it_and_without_redis_never_5xx),
        cmocka_unit_test(e2e__text_in_window_sent_timeline_readable_marketing_to_opted_out_fails),
        cmocka_unit_test(secrets__in_no_log_document_or_redis_key),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, setup, teardown);
}
