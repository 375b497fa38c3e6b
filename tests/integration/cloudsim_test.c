/*
 * cloudsim_test.c: wa-cloudsim through its binary, as wa-notify and wa-ingest see it.
 *
 * Each test starts $WA_BIN_DIR/wa-cloudsim on a free port with its own WA_SIM_* settings and a
 * webhook receiver (libs/httpd on a loop thread inside this process) that records every POST
 * with its X-Hub-Signature-256 and verifies that signature over the exact bytes received.
 * Requests to the simulator use blocking libcurl from the test thread. Waiting for webhooks
 * polls the receiver with a deadline; no sleep is an assertion.
 */
#include <curl/curl.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wa/buf.h"
#include "wa/clock.h"
#include "wa/crypto.h"
#include "wa/httpd.h"
#include "wa/json.h"
#include "wa/loop.h"
#include "wa_test.h"
#include "wa_test_proc.h"

#define SECRET        "it-secret"
#define TOKEN         "it-token"
#define NUMBER        "100000000000001"
#define CS_TEST_WAMID 128
#define MAX_HOOKS     256

/* ---- webhook receiver (loop thread) ---- */

struct hook {
    char *body;
    size_t len;
    bool signature_ok;
    bool ascii;
};

static struct {
    pthread_mutex_t mu;
    struct hook hooks[MAX_HOOKS];
    size_t n;
    int fail_next; /* answer 500 to this many POSTs */
    struct wa_loop *loop;
    struct wa_httpd *httpd;
    pthread_t thread;
    int port;
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void
on_webhook(struct wa_http_req *req, void *arg)
{
    const char *secrets[] = {SECRET};
    size_t len;
    const char *body = wa_http_req_body(req, &len);
    int status = 200;

    (void)arg;
    pthread_mutex_lock(&rx.mu);
    if (rx.n < MAX_HOOKS) {
        struct hook *h = &rx.hooks[rx.n++];

        h->body = malloc(len + 1);
        memcpy(h->body, body, len + 1);
        h->len = len;
        h->signature_ok = wa_hub_signature_verify(wa_http_req_header(req, "X-Hub-Signature-256"),
                                                  body, len, secrets, 1, NULL) == WA_OK;
        h->ascii = true;
        for (size_t i = 0; i < len; i++) {
            h->ascii = h->ascii && (unsigned char)body[i] < 0x80;
        }
    }
    if (rx.fail_next > 0) {
        rx.fail_next--;
        status = 500;
    }
    pthread_mutex_unlock(&rx.mu);
    wa_http_reply(req, status, "text/plain", "ok", 2);
}

static void *
rx_main(void *arg)
{
    (void)arg;
    wa_loop_run(rx.loop);
    return NULL;
}

static void
rx_clear(int fail_next)
{
    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < rx.n; i++) {
        free(rx.hooks[i].body);
    }
    rx.n = 0;
    rx.fail_next = fail_next;
    pthread_mutex_unlock(&rx.mu);
}

/* ---- simulator process ---- */

struct sim {
    pid_t pid;
    int port;
    char base[64];
};

/* The simulator of the running test, killed by the teardown if the test failed midway. */
static pid_t live_pid;

struct resp {
    long status; /* 0: no complete answer */
    struct wa_buf body;
    json_t *json;
};

/* Body sink of the one multipart request that wa_test_http() does not cover. */
static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;

    return wa_buf_append(&r->body, p, size * n) == WA_OK ? size * n : 0;
}

static void
resp_free(struct resp *r)
{
    wa_buf_cleanup(&r->body);
    json_decref(r->json);
    r->json = NULL;
}

/* One request; auth NULL: none. body NULL: GET (or method). */
static void
http(struct resp *r, const char *method, const char *url, const char *auth, const char *body)
{
    char hdr[128];
    const char *headers[] = {"Content-Type: application/json", auth != NULL ? hdr : NULL, NULL};
    struct wa_test_http_req req = {
        .method = method, .url = url, .headers = headers, .body = body, .timeout_ms = 10000};

    memset(r, 0, sizeof(*r));
    wa_buf_init(&r->body, 0);
    if (auth != NULL) {
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", auth);
    }
    r->status = wa_test_http(&req, &r->body);
    if (r->body.len > 0) {
        (void)wa_json_parse(r->body.data, r->body.len, 0, &r->json, NULL);
    }
}

static void
sim_start(struct sim *s, const char *const *extra)
{
    char bin[512], listen[64], hook[96];
    const char *argv[] = {bin, NULL};
    const char *env[48];
    size_t n = 0;

    s->port = wa_test_free_port();
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
    wa_test_bin_path("wa-cloudsim", bin, sizeof(bin));
    snprintf(listen, sizeof(listen), "WA_LISTEN=127.0.0.1:%d", s->port);
    snprintf(hook, sizeof(hook), "WA_WEBHOOK_URL=http://127.0.0.1:%d/webhook", rx.port);
    env[n++] = listen;
    env[n++] = hook;
    env[n++] = "WA_ACCESS_TOKEN=" TOKEN;
    env[n++] = "WA_APP_SECRET=" SECRET;
    env[n++] = "WA_LOG_LEVEL=warn";
    env[n++] = "WA_SIM_STATUS_DELAY=10ms";
    env[n++] = "WA_SIM_DELIVERED_DELAY=30ms";
    env[n++] = "WA_SIM_READ_DELAY=60ms";
    env[n++] = "WA_SIM_WEBHOOK_FLUSH=5ms";
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 46; i++) {
        env[n++] = extra[i];
    }
    env[n] = NULL;
    rx_clear(0);
    s->pid = wa_test_spawn(argv, env, NULL, 0);
    live_pid = s->pid;
    assert_true(wa_test_poll_status(s->port, "/healthz", 200, 10000, NULL));
}

static int
kill_live(void **state)
{
    (void)state;
    wa_test_stop(live_pid, SIGKILL, WA_TEST_NO_TIMEOUT);
    live_pid = 0;
    return 0;
}

static void
sim_stop(struct sim *s)
{
    live_pid = 0;
    assert_int_equal(wa_test_stop(s->pid, SIGTERM, WA_TEST_NO_TIMEOUT), 0);
}

static void
send_msg(struct sim *s, struct resp *r, const char *body)
{
    char url[160];

    snprintf(url, sizeof(url), "%s/v21.0/" NUMBER "/messages", s->base);
    http(r, "POST", url, TOKEN, body);
}

static void
sim_post(struct sim *s, struct resp *r, const char *path, const char *body)
{
    char url[160];

    snprintf(url, sizeof(url), "%s%s", s->base, path);
    http(r, body != NULL ? "POST" : NULL, url, NULL, body);
}

static int64_t
err_code(const struct resp *r)
{
    return json_integer_value(wa_json_path(r->json, "error.code"));
}

#define TEXT_TO(to, text)                              \
    "{\"messaging_product\":\"whatsapp\",\"to\":\"" to \
    "\",\"type\":\"text\",\"text\":{\"body\":\"" text "\"}}"
#define TEMPLATE_TO(to, name, lang)                                                             \
    "{\"messaging_product\":\"whatsapp\",\"to\":\"" to "\",\"type\":\"template\",\"template\":" \
    "{\"name\":\"" name "\",\"language\":{\"code\":\"" lang "\"}}}"

/* Collects the statuses of wamid seen so far (in arrival order) into out; returns the count. */
static size_t
statuses_of(const char *wamid, const char **names, json_t **objs, size_t max)
{
    size_t n = 0;

    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < rx.n; i++) {
        json_t *root = NULL, *sts;
        size_t k;
        json_t *st;

        assert_true(rx.hooks[i].signature_ok);
        assert_true(rx.hooks[i].ascii);
        assert_int_equal(wa_json_parse(rx.hooks[i].body, rx.hooks[i].len, 0, &root, NULL), WA_OK);
        sts = wa_json_path(root, "entry.0.changes.0.value.statuses");
        json_array_foreach(sts, k, st)
        {
            if (n < max && strcmp(wa_json_str(st, "id"), wamid) == 0) {
                static char names_store[16][16];

                snprintf(names_store[n % 16], 16, "%s", wa_json_str(st, "status"));
                names[n] = names_store[n % 16];
                if (objs != NULL) {
                    objs[n] = json_incref(st);
                }
                n++;
            }
        }
        json_decref(root);
    }
    pthread_mutex_unlock(&rx.mu);
    return n;
}

static size_t
wait_statuses(const char *wamid, size_t want, const char **names, json_t **objs)
{
    uint64_t deadline = wa_clock_mono_ms() + 5000;
    size_t n;

    for (;;) {
        n = statuses_of(wamid, names, NULL, 16);
        if (n >= want || wa_clock_mono_ms() > deadline) {
            break;
        }
        usleep(10000);
    }
    if (objs != NULL) {
        n = statuses_of(wamid, names, objs, 16);
    }
    return n;
}

static void
open_window(struct sim *s, const char *from)
{
    struct resp r;
    char body[256];

    snprintf(body, sizeof(body),
             "{\"from\":\"%s\",\"name\":\"Ana\",\"type\":\"text\",\"text\":{\"body\":\"hi\"}}",
             from);
    sim_post(s, &r, "/_sim/inbound", body);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

/* ---- tests ---- */

static void
graph__auth_number_validation__answer_like_meta(void **state)
{
    struct sim s;
    struct resp r;
    char url[160];

    (void)state;
    sim_start(&s, NULL);
    snprintf(url, sizeof(url), "%s/v21.0/" NUMBER "/messages", s.base);
    http(&r, "POST", url, "wrong", TEXT_TO("16505551234", "x"));
    assert_int_equal(r.status, 401);
    assert_int_equal(err_code(&r), 190);
    resp_free(&r);
    http(&r, "POST", url, NULL, TEXT_TO("16505551234", "x"));
    assert_int_equal(r.status, 401);
    resp_free(&r);
    snprintf(url, sizeof(url), "%s/v21.0/999/messages", s.base);
    http(&r, "POST", url, TOKEN, TEXT_TO("16505551234", "x"));
    assert_int_equal(r.status, 400);
    assert_int_equal(err_code(&r), 100);
    assert_int_equal(json_integer_value(wa_json_path(r.json, "error.error_subcode")), 33);
    assert_string_equal(wa_json_path_str(r.json, "error.type"), "GraphMethodException");
    resp_free(&r);
    send_msg(&s, &r,
             "{\"messaging_product\":\"whatsapp\",\"to\":\"16505551234\",\"type\":\"text\"}");
    assert_int_equal(r.status, 400);
    assert_int_equal(err_code(&r), 131008);
    resp_free(&r);
    send_msg(&s, &r,
             "{\"messaging_product\":\"whatsapp\",\"to\":\"16505551234\",\"type\":\"poll\"}");
    assert_int_equal(err_code(&r), 131051);
    resp_free(&r);
    send_msg(&s, &r, "not json");
    assert_int_equal(err_code(&r), 100);
    resp_free(&r);
    /* Success body exactly as the reference; wamids unique. */
    send_msg(&s, &r, TEMPLATE_TO("+1 650-555-1234", "hello_world", "en_US"));
    assert_int_equal(r.status, 200);
    assert_string_equal(wa_json_path_str(r.json, "messaging_product"), "whatsapp");
    assert_string_equal(wa_json_path_str(r.json, "contacts.0.input"), "+1 650-555-1234");
    assert_string_equal(wa_json_path_str(r.json, "contacts.0.wa_id"), "16505551234");
    assert_true(strncmp(wa_json_path_str(r.json, "messages.0.id"), "wamid.", 6) == 0);
    assert_int_equal(json_object_size(r.json), 3);
    {
        struct resp r2;
        send_msg(&s, &r2, TEMPLATE_TO("+1 650-555-1234", "hello_world", "en_US"));
        assert_string_not_equal(wa_json_path_str(r.json, "messages.0.id"),
                                wa_json_path_str(r2.json, "messages.0.id"));
        resp_free(&r2);
    }
    resp_free(&r);
    /* Mark as read: only a message the number received. */
    send_msg(&s, &r,
             "{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":"
             "\"wamid.X\"}");
    assert_int_equal(r.status, 400);
    assert_int_equal(err_code(&r), 100);
    resp_free(&r);
    sim_stop(&s);
}

static void
graph__each_type__valid_accepted_and_invalid_rejected(void **state)
{
    static const struct {
        const char *body;
        int64_t code;
    } cases[] = {
        {"{\"type\":\"image\",\"image\":{\"link\":\"https://x.example/a.png\"}}", 0},
        {"{\"type\":\"video\",\"video\":{\"link\":\"https://x.example/a.mp4\"}}", 0},
        {"{\"type\":\"audio\",\"audio\":{\"link\":\"https://x.example/a.ogg\"}}", 0},
        {"{\"type\":\"document\",\"document\":{\"link\":\"https://x/a.pdf\",\"filename\":\"a\"}}",
         0},
        {"{\"type\":\"sticker\",\"sticker\":{\"link\":\"https://x.example/a.webp\"}}", 0},
        {"{\"type\":\"location\",\"location\":{\"latitude\":1,\"longitude\":2}}", 0},
        {"{\"type\":\"contacts\",\"contacts\":[{\"name\":{\"formatted_name\":\"A B\","
         "\"first_name\":\"A\"}}]}",
         0},
        {"{\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"body\":{\"text\":"
         "\"B\"},\"action\":{\"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":\"a\","
         "\"title\":\"A\"}}]}}}",
         0},
        {"{\"type\":\"reaction\",\"reaction\":{\"message_id\":\"wamid.X\",\"emoji\":\"x\"}}",
         131009},
        {"{\"type\":\"image\",\"image\":{}}", 131008},
        {"{\"type\":\"audio\",\"audio\":{\"id\":\"1\",\"caption\":\"c\"}}", 100},
        {"{\"type\":\"location\",\"location\":{\"latitude\":100,\"longitude\":2}}", 131009},
    };
    struct sim s;

    (void)state;
    sim_start(&s, (const char *[]){"WA_SIM_LIMITS=off", NULL});
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        char body[1024];
        struct resp r;

        /* Splice the envelope in front of the case's fields. */
        snprintf(body, sizeof(body),
                 "{\"messaging_product\":\"whatsapp\",\"to\":\"16505551234\",%s",
                 cases[i].body + 1);
        send_msg(&s, &r, body);
        if (cases[i].code == 0) {
            assert_int_equal(r.status, 200);
        } else {
            assert_int_equal(r.status, 400);
            assert_int_equal(err_code(&r), cases[i].code);
            assert_non_null(wa_json_path_str(r.json, "error.error_data.details"));
        }
        resp_free(&r);
    }
    sim_stop(&s);
}

static void
templates__registry__codes_and_pacing(void **state)
{
    struct sim s;
    struct resp r;

    (void)state;
    sim_start(&s, NULL);
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "no_such_template", "en_US"));
    assert_int_equal(r.status, 404);
    assert_int_equal(err_code(&r), 132001);
    resp_free(&r);
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "hello_world", "pt_BR"));
    assert_int_equal(err_code(&r), 132001);
    resp_free(&r);
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "pending_review", "en_US"));
    assert_int_equal(err_code(&r), 132001);
    resp_free(&r);
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "paused_promo", "en"));
    assert_int_equal(err_code(&r), 132015);
    resp_free(&r);
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "disabled_promo", "en"));
    assert_int_equal(err_code(&r), 132016);
    resp_free(&r);
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "order_update", "en_US")); /* needs 2 params */
    assert_int_equal(err_code(&r), 132000);
    resp_free(&r);
    send_msg(&s, &r,
             "{\"messaging_product\":\"whatsapp\",\"to\":\"16505551234\",\"type\":\"template\","
             "\"template\":{\"name\":\"order_update\",\"language\":{\"code\":\"en_US\"},"
             "\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":"
             "\"Ana\"},{\"type\":\"text\",\"text\":\"A-42\"}]}]}}");
    assert_int_equal(r.status, 200);
    assert_null(wa_json_path(r.json, "messages.0.message_status"));
    resp_free(&r);
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "new_collection", "en"));
    assert_string_equal(wa_json_path_str(r.json, "messages.0.message_status"),
                        "held_for_quality_assessment");
    resp_free(&r);
    /* A template added at run time. */
    sim_post(&s, &r, "/_sim/templates",
             "{\"name\":\"late_one\",\"language\":\"en\",\"status\":\"PAUSED\"}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "late_one", "en"));
    assert_int_equal(err_code(&r), 132015);
    resp_free(&r);
    sim_stop(&s);
}

static void
statuses__accepted_send__sent_delivered_read_signed_with_callback_data(void **state)
{
    struct sim s;
    struct resp r;
    const char *names[16];
    json_t *objs[16];
    char wamid[128];
    size_t n;

    (void)state;
    sim_start(&s, NULL);
    send_msg(&s, &r,
             "{\"messaging_product\":\"whatsapp\",\"to\":\"+16505550001\",\"type\":\"template\","
             "\"biz_opaque_callback_data\":\"req-42\",\"template\":{\"name\":\"hello_world\","
             "\"language\":{\"code\":\"en_US\"}}}");
    assert_int_equal(r.status, 200);
    snprintf(wamid, sizeof(wamid), "%s", wa_json_path_str(r.json, "messages.0.id"));
    resp_free(&r);
    n = wait_statuses(wamid, 3, names, objs);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "sent");
    assert_string_equal(names[1], "delivered");
    assert_string_equal(names[2], "read");
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(wa_json_str(objs[i], "biz_opaque_callback_data"), "req-42");
        assert_string_equal(wa_json_str(objs[i], "recipient_id"), "16505550001");
        assert_true(json_is_string(json_object_get(objs[i], "timestamp")));
        json_decref(objs[i]);
    }
    pthread_mutex_lock(&rx.mu);
    {
        json_t *root = NULL;

        assert_int_equal(wa_json_parse(rx.hooks[0].body, rx.hooks[0].len, 0, &root, NULL), WA_OK);
        assert_string_equal(wa_json_str(root, "object"), "whatsapp_business_account");
        assert_string_equal(wa_json_path_str(root, "entry.0.id"), "200000000000001");
        assert_string_equal(wa_json_path_str(root, "entry.0.changes.0.field"), "messages");
        assert_string_equal(
            wa_json_path_str(root, "entry.0.changes.0.value.metadata.phone_number_id"), NUMBER);
        assert_string_equal(
            wa_json_path_str(root, "entry.0.changes.0.value.metadata.display_phone_number"),
            "15550000001");
        json_decref(root);
    }
    pthread_mutex_unlock(&rx.mu);
    sim_post(&s, &r, "/_sim/messages", NULL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "total")), 1);
    assert_string_equal(wa_json_path_str(r.json, "data.0.status"), "read");
    assert_string_equal(wa_json_path_str(r.json, "data.0.biz_opaque_callback_data"), "req-42");
    assert_string_equal(wa_json_path_str(r.json, "data.0.body.template.name"), "hello_world");
    resp_free(&r);
    sim_stop(&s);
}

static void
window__closed__async_failed_then_open_after_inbound(void **state)
{
    struct sim s;
    struct resp r;
    const char *names[16];
    json_t *objs[16];
    char wamid[128];

    (void)state;
    sim_start(&s, NULL);
    send_msg(&s, &r, TEXT_TO("16505550002", "free form"));
    assert_int_equal(r.status, 200);
    snprintf(wamid, sizeof(wamid), "%s", wa_json_path_str(r.json, "messages.0.id"));
    resp_free(&r);
    assert_int_equal(wait_statuses(wamid, 1, names, objs), 1);
    assert_string_equal(names[0], "failed");
    assert_int_equal(json_integer_value(wa_json_path(objs[0], "errors.0.code")), 131047);
    assert_string_equal(wa_json_path_str(objs[0], "errors.0.title"), "Re-engagement message");
    json_decref(objs[0]);
    /* The user writes: the window opens, free-form goes through. */
    open_window(&s, "16505550002");
    send_msg(&s, &r, TEXT_TO("16505550002", "now ok"));
    snprintf(wamid, sizeof(wamid), "%s", wa_json_path_str(r.json, "messages.0.id"));
    resp_free(&r);
    assert_int_equal(wait_statuses(wamid, 3, names, NULL), 3);
    assert_string_equal(names[0], "sent");
    sim_stop(&s);
    /* The synchronous switch. */
    sim_start(&s, (const char *[]){"WA_SIM_WINDOW_SYNC=on", NULL});
    send_msg(&s, &r, TEXT_TO("16505550002", "free form"));
    assert_int_equal(r.status, 400);
    assert_int_equal(err_code(&r), 131047);
    resp_free(&r);
    sim_stop(&s);
}

static void
inbound__simulated_user__signed_ascii_webhook(void **state)
{
    struct sim s;
    struct resp r;
    uint64_t deadline;
    json_t *root = NULL;

    (void)state;
    sim_start(&s, NULL);
    sim_post(&s, &r, "/_sim/inbound",
             "{\"from\":\"5511999990000\",\"name\":\"Jo\\u00e3o\",\"type\":\"text\","
             "\"text\":{\"body\":\"caf\\u00e9 \\ud83d\\ude00\"}}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    deadline = wa_clock_mono_ms() + 5000;
    while (wa_clock_mono_ms() < deadline) {
        pthread_mutex_lock(&rx.mu);
        if (rx.n > 0) {
            pthread_mutex_unlock(&rx.mu);
            break;
        }
        pthread_mutex_unlock(&rx.mu);
        usleep(10000);
    }
    pthread_mutex_lock(&rx.mu);
    assert_true(rx.n >= 1);
    assert_true(rx.hooks[0].signature_ok);
    assert_true(rx.hooks[0].ascii);
    assert_non_null(strstr(rx.hooks[0].body, "caf\\u00e9 \\ud83d\\ude00"));
    assert_int_equal(wa_json_parse(rx.hooks[0].body, rx.hooks[0].len, 0, &root, NULL), WA_OK);
    pthread_mutex_unlock(&rx.mu);
    assert_string_equal(wa_json_path_str(root, "entry.0.changes.0.value.messages.0.from"),
                        "5511999990000");
    assert_string_equal(wa_json_path_str(root, "entry.0.changes.0.value.messages.0.type"), "text");
    assert_string_equal(wa_json_path_str(root, "entry.0.changes.0.value.messages.0.text.body"),
                        "caf\xc3\xa9 \xf0\x9f\x98\x80");
    assert_string_equal(wa_json_path_str(root, "entry.0.changes.0.value.contacts.0.profile.name"),
                        "Jo\xc3\xa3o");
    assert_string_equal(wa_json_path_str(root, "entry.0.changes.0.value.contacts.0.wa_id"),
                        "5511999990000");
    json_decref(root);
    /* It opened the window. */
    sim_post(&s, &r, "/_sim/users", "{\"wa_id\":\"5511999990000\"}");
    assert_true(json_is_true(json_object_get(r.json, "window_open")));
    resp_free(&r);
    sim_stop(&s);
}

static void
limits__throughput_and_pair__130429_and_131056(void **state)
{
    struct sim s;
    struct resp r;
    int ok = 0, throttled = 0;

    (void)state;
    sim_start(&s, (const char *[]){"WA_SIM_MPS=5", "WA_SIM_PAIR_BURST=0", NULL});
    for (int i = 0; i < 30; i++) {
        char body[256];

        snprintf(body, sizeof(body), TEMPLATE_TO("1650555%04d", "hello_world", "en_US"), i);
        send_msg(&s, &r, body);
        if (r.status == 200) {
            ok++;
        } else {
            assert_int_equal(err_code(&r), 130429);
            assert_int_equal(r.status, 400);
            throttled++;
        }
        resp_free(&r);
    }
    /* 5 in the bucket plus what refills during the loop (5/s): far fewer than 30. */
    assert_true(ok >= 5 && ok < 20);
    assert_true(throttled > 10);
    sim_stop(&s);
    sim_start(&s, (const char *[]){"WA_SIM_PAIR_BURST=3", "WA_SIM_PAIR_INTERVAL=1h",
                                   "WA_SIM_THROTTLE_STATUS=429", NULL});
    for (int i = 0; i < 3; i++) {
        send_msg(&s, &r, TEMPLATE_TO("16505559999", "hello_world", "en_US"));
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    send_msg(&s, &r, TEMPLATE_TO("16505559999", "hello_world", "en_US"));
    assert_int_equal(r.status, 429);
    assert_int_equal(err_code(&r), 131056);
    resp_free(&r);
    send_msg(&s, &r, TEMPLATE_TO("16505558888", "hello_world", "en_US")); /* another user */
    assert_int_equal(r.status, 200);
    resp_free(&r);
    sim_stop(&s);
}

static void
users__undeliverable_and_stopped_marketing__failed_statuses(void **state)
{
    struct sim s;
    struct resp r;
    const char *names[16];
    json_t *objs[16];
    char wamid[128];

    (void)state;
    sim_start(&s, (const char *[]){"WA_SIM_UNDELIVERABLE=+16505550404", NULL});
    send_msg(&s, &r, TEMPLATE_TO("16505550404", "hello_world", "en_US"));
    assert_int_equal(r.status, 200);
    snprintf(wamid, sizeof(wamid), "%s", wa_json_path_str(r.json, "messages.0.id"));
    resp_free(&r);
    assert_int_equal(wait_statuses(wamid, 1, names, objs), 1);
    assert_string_equal(names[0], "failed");
    assert_int_equal(json_integer_value(wa_json_path(objs[0], "errors.0.code")), 131026);
    json_decref(objs[0]);
    sim_post(&s, &r, "/_sim/users", "{\"wa_id\":\"16505550505\",\"marketing\":\"stop\"}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    send_msg(&s, &r,
             "{\"messaging_product\":\"whatsapp\",\"to\":\"16505550505\",\"type\":\"template\","
             "\"template\":{\"name\":\"spring_sale\",\"language\":{\"code\":\"en\"},"
             "\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":"
             "\"20%\"}]},{\"type\":\"button\",\"sub_type\":\"quick_reply\",\"index\":0,"
             "\"parameters\":[{\"type\":\"payload\",\"payload\":\"stop\"}]}]}}");
    assert_int_equal(r.status, 200);
    snprintf(wamid, sizeof(wamid), "%s", wa_json_path_str(r.json, "messages.0.id"));
    resp_free(&r);
    assert_int_equal(wait_statuses(wamid, 1, names, objs), 1);
    assert_int_equal(json_integer_value(wa_json_path(objs[0], "errors.0.code")), 131050);
    json_decref(objs[0]);
    /* A utility template still reaches the same user. */
    send_msg(&s, &r, TEMPLATE_TO("16505550505", "hello_world", "en_US"));
    snprintf(wamid, sizeof(wamid), "%s", wa_json_path_str(r.json, "messages.0.id"));
    resp_free(&r);
    assert_true(wait_statuses(wamid, 1, names, NULL) >= 1);
    assert_string_equal(names[0], "sent");
    sim_stop(&s);
}

static void
webhooks__receiver_500__retried_same_bytes_until_200(void **state)
{
    struct sim s;
    struct resp r;
    uint64_t deadline;
    size_t n = 0;

    (void)state;
    sim_start(&s, (const char *[]){"WA_SIM_WEBHOOK_RETRY_BASE=50ms", NULL});
    rx_clear(2);
    open_window(&s, "16505550777");
    deadline = wa_clock_mono_ms() + 5000;
    while (wa_clock_mono_ms() < deadline && n < 3) {
        pthread_mutex_lock(&rx.mu);
        n = rx.n;
        pthread_mutex_unlock(&rx.mu);
        usleep(10000);
    }
    assert_true(n >= 3);
    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < 3; i++) {
        assert_true(rx.hooks[i].signature_ok);
        assert_int_equal(rx.hooks[i].len, rx.hooks[0].len);
        assert_memory_equal(rx.hooks[i].body, rx.hooks[0].body, rx.hooks[0].len);
    }
    pthread_mutex_unlock(&rx.mu);
    sim_post(&s, &r, "/_sim/stats", NULL);
    assert_true(json_integer_value(wa_json_path(r.json, "webhooks.failures")) >= 2);
    assert_true(json_integer_value(wa_json_path(r.json, "webhooks.delivered")) >= 1);
    resp_free(&r);
    sim_stop(&s);
    /* Giving up after the (compressed) maximum age. */
    sim_start(&s, (const char *[]){"WA_SIM_WEBHOOK_RETRY_BASE=20ms",
                                   "WA_SIM_WEBHOOK_RETRY_MAX_AGE=100ms", NULL});
    rx_clear(1000);
    open_window(&s, "16505550778");
    deadline = wa_clock_mono_ms() + 5000;
    for (;;) {
        sim_post(&s, &r, "/_sim/stats", NULL);
        if (json_integer_value(wa_json_path(r.json, "webhooks.dropped")) == 1 ||
            wa_clock_mono_ms() > deadline) {
            break;
        }
        resp_free(&r);
        usleep(20000);
    }
    assert_int_equal(json_integer_value(wa_json_path(r.json, "webhooks.dropped")), 1);
    assert_true(json_integer_value(wa_json_path(r.json, "webhooks.attempts")) >= 2);
    resp_free(&r);
    rx_clear(0);
    sim_stop(&s);
}

static void
faults__next_n_errors_latency_5xx_drop(void **state)
{
    struct sim s;
    struct resp r;
    uint64_t t0;

    (void)state;
    sim_start(&s, NULL);
    sim_post(&s, &r, "/_sim/faults", "{\"code\":131000,\"count\":2}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    for (int i = 0; i < 2; i++) {
        send_msg(&s, &r, TEMPLATE_TO("16505551234", "hello_world", "en_US"));
        assert_int_equal(r.status, 500);
        assert_int_equal(err_code(&r), 131000);
        resp_free(&r);
    }
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "hello_world", "en_US"));
    assert_int_equal(r.status, 200);
    resp_free(&r);
    sim_post(&s, &r, "/_sim/faults", "{\"latency_ms\":300,\"latency_count\":1}");
    resp_free(&r);
    t0 = wa_clock_mono_ms();
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "hello_world", "en_US"));
    assert_int_equal(r.status, 200);
    assert_true(wa_clock_mono_ms() - t0 >= 300);
    resp_free(&r);
    sim_post(&s, &r, "/_sim/faults", "{\"mode\":\"5xx\",\"http_status\":502,\"count\":1}");
    resp_free(&r);
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "hello_world", "en_US"));
    assert_int_equal(r.status, 502);
    assert_null(r.json);
    resp_free(&r);
    sim_post(&s, &r, "/_sim/faults", "{\"mode\":\"drop\",\"count\":1}");
    resp_free(&r);
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "hello_world", "en_US"));
    assert_int_equal(r.status, 0); /* dropped: no answer */
    resp_free(&r);
    send_msg(&s, &r, TEMPLATE_TO("16505551234", "hello_world", "en_US"));
    assert_int_equal(r.status, 200);
    resp_free(&r);
    sim_stop(&s);
}

static void
faults__late__accepted_then_failed_status_with_any_code(void **state)
{
    static const struct {
        const char *setting;
        int64_t code;
        const char *before[2];
        int n;
    } cases[] = {
        {"{\"mode\":\"late\",\"code\":131049,\"count\":1}", 131049, {"sent"}, 2},
        {"{\"mode\":\"late\",\"code\":130472,\"count\":1,\"after\":\"delivered\"}",
         130472,
         {"sent", "delivered"},
         3},
        {"{\"mode\":\"late\",\"code\":131042,\"count\":1,\"after\":\"accepted\"}",
         131042,
         {NULL},
         1},
    };
    struct sim s;
    struct resp r;
    const char *names[16];
    json_t *objs[16];
    char wamid[128];

    (void)state;
    sim_start(&s, NULL);
    sim_post(&s, &r, "/_sim/faults", "{\"mode\":\"late\"}");
    assert_int_equal(r.status, 400); /* a late failure needs its code */
    resp_free(&r);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        sim_post(&s, &r, "/_sim/faults", cases[c].setting);
        assert_int_equal(r.status, 200);
        resp_free(&r);
        send_msg(&s, &r, TEMPLATE_TO("16505551235", "hello_world", "en_US"));
        assert_int_equal(r.status, 200); /* accepted now */
        snprintf(wamid, sizeof(wamid), "%s", wa_json_path_str(r.json, "messages.0.id"));
        resp_free(&r);
        assert_int_equal(wait_statuses(wamid, (size_t)cases[c].n, names, objs), cases[c].n);
        for (int i = 0; i < cases[c].n - 1; i++) {
            assert_string_equal(names[i], cases[c].before[i]);
        }
        assert_string_equal(names[cases[c].n - 1], "failed");
        assert_int_equal(json_integer_value(wa_json_path(objs[cases[c].n - 1], "errors.0.code")),
                         cases[c].code);
        for (int i = 0; i < cases[c].n; i++) {
            json_decref(objs[i]);
        }
    }
    /* count 1 was used up: the next send is delivered as usual */
    send_msg(&s, &r, TEMPLATE_TO("16505551235", "hello_world", "en_US"));
    snprintf(wamid, sizeof(wamid), "%s", wa_json_path_str(r.json, "messages.0.id"));
    resp_free(&r);
    assert_true(wait_statuses(wamid, 1, names, NULL) >= 1);
    assert_string_equal(names[0], "sent");
    sim_stop(&s);
}

static void
media__upload_get_download__with_limits(void **state)
{
    struct sim s;
    struct resp r;
    char url[256], id[32], media_url[256];
    CURL *c;
    curl_mime *mime;
    curl_mimepart *part;
    struct curl_slist *h = NULL;

    (void)state;
    sim_start(&s, (const char *[]){"WA_SIM_MEDIA_URL_TTL=300ms", NULL});
    for (int round = 0; round < 2; round++) {
        memset(&r, 0, sizeof(r));
        wa_buf_init(&r.body, 0);
        c = curl_easy_init();
        mime = curl_mime_init(c);
        part = curl_mime_addpart(mime);
        curl_mime_name(part, "messaging_product");
        curl_mime_data(part, "whatsapp", CURL_ZERO_TERMINATED);
        part = curl_mime_addpart(mime);
        curl_mime_name(part, "file");
        curl_mime_data(part, "\x89PNG fake image bytes", CURL_ZERO_TERMINATED);
        curl_mime_type(part, round == 0 ? "image/png" : "image/gif");
        curl_mime_filename(part, "a.png");
        snprintf(url, sizeof(url), "%s/v21.0/" NUMBER "/media", s.base);
        h = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        assert_int_equal(wa_json_parse(r.body.data, r.body.len, 0, &r.json, NULL), WA_OK);
        if (round == 0) {
            assert_int_equal(r.status, 200);
            snprintf(id, sizeof(id), "%s", wa_json_str(r.json, "id"));
        } else {
            assert_int_equal(r.status, 400);
            assert_int_equal(err_code(&r), 100);
        }
        resp_free(&r);
        curl_mime_free(mime);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
    }
    snprintf(url, sizeof(url), "%s/v21.0/%s", s.base, id);
    http(&r, NULL, url, TOKEN, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(wa_json_str(r.json, "mime_type"), "image/png");
    assert_string_equal(wa_json_str(r.json, "id"), id);
    assert_non_null(wa_json_str(r.json, "sha256"));
    snprintf(media_url, sizeof(media_url), "%s", wa_json_str(r.json, "url"));
    resp_free(&r);
    http(&r, NULL, media_url, NULL, NULL);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    http(&r, NULL, media_url, TOKEN, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, strlen("\x89PNG fake image bytes"));
    assert_memory_equal(r.body.data, "\x89PNG fake image bytes", r.body.len);
    resp_free(&r);
    /* A send referring to the uploaded id is accepted. */
    {
        char body[256];

        open_window(&s, "16505551234");
        snprintf(body, sizeof(body),
                 "{\"messaging_product\":\"whatsapp\",\"to\":\"16505551234\",\"type\":\"image\","
                 "\"image\":{\"id\":\"%s\"}}",
                 id);
        send_msg(&s, &r, body);
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    /* The url expires. */
    {
        uint64_t deadline = wa_clock_mono_ms() + 5000;

        do {
            usleep(50000);
            http(&r, NULL, media_url, TOKEN, NULL);
            if (r.status == 404) {
                break;
            }
            resp_free(&r);
        } while (wa_clock_mono_ms() < deadline);
        assert_int_equal(r.status, 404);
        resp_free(&r);
    }
    http(&r, "DELETE", url, TOKEN, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    http(&r, NULL, url, TOKEN, NULL);
    assert_int_equal(err_code(&r), 100);
    resp_free(&r);
    sim_stop(&s);
}

static void
reset__after_traffic__forgets_history_and_windows(void **state)
{
    struct sim s;
    struct resp r;

    (void)state;
    sim_start(&s, NULL);
    open_window(&s, "16505553333");
    send_msg(&s, &r, TEXT_TO("16505553333", "x"));
    resp_free(&r);
    sim_post(&s, &r, "/_sim/messages?to=%2B16505553333", NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 1);
    resp_free(&r);
    sim_post(&s, &r, "/_sim/reset", "{}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    sim_post(&s, &r, "/_sim/messages", NULL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "total")), 0);
    resp_free(&r);
    sim_post(&s, &r, "/_sim/users", "{\"wa_id\":\"16505553333\"}");
    assert_false(json_is_true(json_object_get(r.json, "window_open")));
    resp_free(&r);
    sim_post(&s, &r, "/_sim/stats", NULL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "accepted")), 0);
    resp_free(&r);
    sim_stop(&s);
}

/* The body of the first webhook holding needle, parsed (NULL when none within 5 s). */
static json_t *
wait_hook_with(const char *needle)
{
    uint64_t deadline = wa_clock_mono_ms() + 5000;
    json_t *root = NULL;

    while (root == NULL && wa_clock_mono_ms() < deadline) {
        pthread_mutex_lock(&rx.mu);
        for (size_t i = 0; i < rx.n && root == NULL; i++) {
            if (strstr(rx.hooks[i].body, needle) != NULL) {
                assert_int_equal(wa_json_parse(rx.hooks[i].body, rx.hooks[i].len, 0, &root, NULL),
                                 WA_OK);
            }
        }
        pthread_mutex_unlock(&rx.mu);
        if (root == NULL) {
            usleep(10000);
        }
    }
    return root;
}

/* A status of wamid with that status name, borrowed from *root (set to its webhook). */
static const json_t *
status_in(const char *wamid, const char *status, json_t **root)
{
    const json_t *st;
    size_t i;
    char needle[160];

    snprintf(needle, sizeof(needle), "\"id\":\"%s\",\"status\":\"%s\"", wamid, status);
    if ((*root = wait_hook_with(needle)) == NULL) {
        return NULL;
    }
    json_array_foreach(wa_json_path(*root, "entry.0.changes.0.value.statuses"), i, st)
    {
        if (strcmp(wa_json_str(st, "id"), wamid) == 0 &&
            strcmp(wa_json_str(st, "status"), status) == 0) {
            return st;
        }
    }
    return NULL;
}

static void
fidelity__recipients_read_receipts_versions_pricing__as_meta(void **state)
{
    struct sim s;
    struct resp r;
    char url[160], wamid[CS_TEST_WAMID], inbound_id[CS_TEST_WAMID], body[256];
    json_t *root = NULL;
    const json_t *st;

    (void)state;
    sim_start(&s, NULL);
    /* A send to a BSUID: statuses name recipient_user_id, never an empty recipient_id. */
    send_msg(&s, &r,
             "{\"messaging_product\":\"whatsapp\",\"recipient\":\"US.13491208655302741918\","
             "\"type\":\"template\",\"template\":{\"name\":\"hello_world\",\"language\":"
             "{\"code\":\"en_US\"}}}");
    assert_int_equal(r.status, 200);
    snprintf(wamid, sizeof(wamid), "%s", wa_json_path_str(r.json, "messages.0.id"));
    resp_free(&r);
    st = status_in(wamid, "sent", &root);
    assert_non_null(st);
    assert_string_equal(wa_json_str(st, "recipient_user_id"), "US.13491208655302741918");
    assert_null(json_object_get(st, "recipient_id"));
    /* v21: the legacy conversation object on sent, with its expiry. */
    assert_non_null(wa_json_path_str(st, "conversation.expiration_timestamp"));
    assert_string_equal(wa_json_path_str(st, "conversation.origin.type"), "utility");
    assert_string_equal(wa_json_path_str(st, "pricing.type"), "regular");
    json_decref(root);
    /* The recipient is the business number itself: 131021. */
    send_msg(&s, &r, TEXT_TO("+15550000001", "me"));
    assert_int_equal(r.status, 400);
    assert_int_equal(err_code(&r), 131021);
    resp_free(&r);
    /* A user writes: a system message has no contacts block; a text one has. */
    sim_post(&s, &r, "/_sim/inbound",
             "{\"from\":\"16505550042\",\"type\":\"system\",\"system\":{\"body\":\"changed\","
             "\"type\":\"user_changed_number\",\"wa_id\":\"16505550043\"}}");
    assert_int_equal(r.status, 200);
    snprintf(inbound_id, sizeof(inbound_id), "%s", wa_json_str(r.json, "id"));
    resp_free(&r);
    root = wait_hook_with(inbound_id);
    assert_non_null(root);
    assert_null(wa_json_path(root, "entry.0.changes.0.value.contacts"));
    json_decref(root);
    /* Numbers as Meta writes them: a latitude keeps its digits in the webhook. */
    sim_post(&s, &r, "/_sim/inbound",
             "{\"from\":\"16505550045\",\"type\":\"location\",\"location\":{\"latitude\":"
             "37.483307,\"longitude\":-122.148981,\"name\":\"HQ\"}}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    root = wait_hook_with("\"latitude\":37.483307,\"longitude\":-122.148981,");
    assert_non_null(root);
    json_decref(root);
    open_window(&s, "16505550044");
    /* Mark as read: a received message is fine. */
    snprintf(body, sizeof(body),
             "{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":\"%s\"}",
             inbound_id);
    send_msg(&s, &r, body);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "success")));
    resp_free(&r);
    /* ... an id the business sent is not. */
    snprintf(body, sizeof(body),
             "{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":\"%s\"}",
             wamid);
    send_msg(&s, &r, body);
    assert_int_equal(r.status, 400);
    assert_int_equal(err_code(&r), 100);
    resp_free(&r);
    /* A group send: statuses name the group; delivered and read come once per participant. */
    sim_post(&s, &r, "/_sim/users", "{\"wa_id\":\"16505550061\",\"group\":\"GRP1\"}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    sim_post(&s, &r, "/_sim/users", "{\"wa_id\":\"16505550062\",\"group\":\"GRP1\"}");
    resp_free(&r);
    send_msg(&s, &r,
             "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"group\",\"to\":"
             "\"GRP1\",\"type\":\"text\",\"text\":{\"body\":\"hi all\"}}");
    assert_int_equal(r.status, 200);
    snprintf(wamid, sizeof(wamid), "%s", wa_json_path_str(r.json, "messages.0.id"));
    resp_free(&r);
    {
        const char *names[16];
        json_t *objs[16];
        size_t n = wait_statuses(wamid, 5, names, objs); /* sent, 2 delivered, 2 read */

        assert_int_equal(n, 5);
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(wa_json_str(objs[i], "recipient_id"), "GRP1");
            assert_string_equal(wa_json_str(objs[i], "recipient_type"), "group");
            assert_true(strcmp(names[i], "sent") == 0 ||
                        wa_json_str(objs[i], "recipient_participant_id") != NULL);
            json_decref(objs[i]);
        }
    }
    /* v24: no conversation object; a utility template inside the open window is free. */
    snprintf(url, sizeof(url), "%s/v24.0/" NUMBER "/messages", s.base);
    http(&r, "POST", url, TOKEN, TEMPLATE_TO("16505550044", "hello_world", "en_US"));
    assert_int_equal(r.status, 200);
    snprintf(wamid, sizeof(wamid), "%s", wa_json_path_str(r.json, "messages.0.id"));
    resp_free(&r);
    st = status_in(wamid, "sent", &root);
    assert_non_null(st);
    assert_string_equal(wa_json_str(st, "recipient_id"), "16505550044");
    assert_null(json_object_get(st, "conversation"));
    assert_string_equal(wa_json_path_str(st, "pricing.type"), "free_customer_service");
    assert_false(json_is_true(wa_json_path(st, "pricing.billable")));
    assert_string_equal(wa_json_path_str(st, "pricing.category"), "utility");
    json_decref(root);
    sim_stop(&s);
}

/* Uploads len bytes of data as mime; returns the HTTP status, *code the Graph code (0 if none). */
static long
upload(struct sim *s, const char *mime, const char *data, size_t len, int64_t *code)
{
    CURL *c = curl_easy_init();
    curl_mime *form = curl_mime_init(c);
    curl_mimepart *part = curl_mime_addpart(form);
    struct curl_slist *h;
    struct resp r;
    char url[160];

    memset(&r, 0, sizeof(r));
    wa_buf_init(&r.body, 0);
    curl_mime_name(part, "messaging_product");
    curl_mime_data(part, "whatsapp", CURL_ZERO_TERMINATED);
    part = curl_mime_addpart(form);
    curl_mime_name(part, "file");
    curl_mime_data(part, data, len);
    curl_mime_type(part, mime);
    curl_mime_filename(part, "f.webp");
    snprintf(url, sizeof(url), "%s/v21.0/" NUMBER "/media", s->base);
    h = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, form);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    (void)wa_json_parse(r.body.data, r.body.len, 0, &r.json, NULL);
    *code = err_code(&r);
    resp_free(&r);
    curl_mime_free(form);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r.status;
}

static void
fidelity__business_endpoints_value_errors_stickers__as_meta(void **state)
{
    struct sim s;
    struct resp r;
    char url[192], wamid[CS_TEST_WAMID];
    size_t big = 200u * 1024u;
    char *webp = calloc(1, big);
    json_t *root;
    int64_t code;

    (void)state;
    assert_non_null(webp);
    sim_start(&s, NULL);
    /* Templates: create (PENDING), reviewed into APPROVED or REJECTED with a webhook each. */
    snprintf(url, sizeof(url), "%s/v21.0/200000000000001/message_templates", s.base);
    http(&r, "POST", url, TOKEN,
         "{\"name\":\"order_ready\",\"language\":\"en_US\",\"category\":\"utility\","
         "\"components\":[{\"type\":\"BODY\",\"text\":\"Hi {{1}}, order {{2}} is ready.\","
         "\"example\":{\"body_text\":[[\"Ana\",\"A-42\"]]}}]}");
    assert_int_equal(r.status, 200);
    assert_string_equal(wa_json_str(r.json, "status"), "PENDING");
    assert_string_equal(wa_json_str(r.json, "category"), "UTILITY");
    assert_non_null(wa_json_str(r.json, "id"));
    resp_free(&r);
    http(&r, "POST", url, TOKEN,
         "{\"name\":\"order_ready\",\"language\":\"en_US\",\"category\":\"UTILITY\","
         "\"components\":[{\"type\":\"BODY\",\"text\":\"again\"}]}");
    assert_int_equal(r.status, 400); /* that name and language exist */
    assert_int_equal(err_code(&r), 100);
    resp_free(&r);
    http(&r, "POST", url, TOKEN,
         "{\"name\":\"Bad Name\",\"language\":\"en_US\",\"category\":\"UTILITY\","
         "\"components\":[{\"type\":\"BODY\",\"text\":\"x\"}]}");
    assert_int_equal(r.status, 400);
    assert_int_equal(err_code(&r), 100);
    resp_free(&r);
    http(&r, "POST", url, TOKEN,
         "{\"name\":\"rejected_offer\",\"language\":\"en\",\"category\":\"MARKETING\","
         "\"components\":[{\"type\":\"BODY\",\"text\":\"Buy now\"}]}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    root = wait_hook_with("\"message_template_name\":\"order_ready\"");
    assert_non_null(root);
    assert_string_equal(wa_json_path_str(root, "entry.0.changes.0.field"),
                        "message_template_status_update");
    assert_string_equal(wa_json_path_str(root, "entry.0.changes.0.value.event"), "APPROVED");
    assert_true(json_is_integer(wa_json_path(root, "entry.0.changes.0.value.message_template_id")));
    json_decref(root);
    root = wait_hook_with("\"message_template_name\":\"rejected_offer\"");
    assert_non_null(root);
    assert_string_equal(wa_json_path_str(root, "entry.0.changes.0.value.event"), "REJECTED");
    json_decref(root);
    snprintf(url, sizeof(url), "%s/v21.0/200000000000001/message_templates?name=order_ready",
             s.base);
    http(&r, NULL, url, TOKEN, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(wa_json_path_str(r.json, "data.0.status"), "APPROVED");
    assert_string_equal(wa_json_path_str(r.json, "data.0.components.0.type"), "BODY");
    snprintf(url, sizeof(url), "%s/v21.0/%s", s.base, wa_json_path_str(r.json, "data.0.id"));
    resp_free(&r);
    http(&r, NULL, url, TOKEN, NULL); /* GET /{template_id} */
    assert_int_equal(r.status, 200);
    assert_string_equal(wa_json_str(r.json, "name"), "order_ready");
    resp_free(&r);
    snprintf(url, sizeof(url), "%s/v21.0/200000000000001/message_templates?name=rejected_offer",
             s.base);
    http(&r, "DELETE", url, TOKEN, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    http(&r, NULL, url, TOKEN, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 0);
    resp_free(&r);
    send_msg(&s, &r,
             "{\"messaging_product\":\"whatsapp\",\"to\":\"16505551236\",\"type\":\"template\","
             "\"template\":{\"name\":\"order_ready\",\"language\":{\"code\":\"en_US\"},"
             "\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":"
             "\"Ana\"},{\"type\":\"text\",\"text\":\"A-42\"}]}]}}");
    assert_int_equal(r.status, 200); /* approved: sendable with its two variables */
    resp_free(&r);
    /* Business profile, phone numbers, subscribed apps. */
    snprintf(url, sizeof(url), "%s/v21.0/" NUMBER "/whatsapp_business_profile", s.base);
    http(&r, "POST", url, TOKEN,
         "{\"messaging_product\":\"whatsapp\",\"about\":\"Open 9-5\",\"websites\":"
         "[\"https://example.com\"],\"vertical\":\"RETAIL\"}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    http(&r, "POST", url, TOKEN, "{\"messaging_product\":\"whatsapp\",\"vertical\":\"CASINO\"}");
    assert_int_equal(r.status, 400);
    assert_int_equal(err_code(&r), 100);
    resp_free(&r);
    http(&r, NULL, url, TOKEN, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(wa_json_path_str(r.json, "data.0.about"), "Open 9-5");
    assert_string_equal(wa_json_path_str(r.json, "data.0.vertical"), "RETAIL");
    resp_free(&r);
    snprintf(url, sizeof(url), "%s/v21.0/200000000000001/phone_numbers", s.base);
    http(&r, NULL, url, TOKEN, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(wa_json_path_str(r.json, "data.0.id"), NUMBER);
    resp_free(&r);
    snprintf(url, sizeof(url), "%s/v21.0/200000000000001/subscribed_apps", s.base);
    http(&r, "POST", url, TOKEN, "{}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    http(&r, NULL, url, TOKEN, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 1);
    resp_free(&r);
    http(&r, "DELETE", url, TOKEN, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    http(&r, NULL, url, TOKEN, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 0);
    resp_free(&r);
    http(&r, "POST", url, TOKEN, "{}"); /* subscribed again: webhooks flow */
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* A late failure at value level: value.errors[] with the code, no failed status. */
    sim_post(&s, &r, "/_sim/faults",
             "{\"mode\":\"late\",\"code\":131000,\"count\":1,\"level\":\"value\"}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    send_msg(&s, &r, TEMPLATE_TO("16505551237", "hello_world", "en_US"));
    assert_int_equal(r.status, 200);
    snprintf(wamid, sizeof(wamid), "%s", wa_json_path_str(r.json, "messages.0.id"));
    resp_free(&r);
    root = wait_hook_with("\"errors\":[{\"code\":131000");
    assert_non_null(root);
    assert_null(wa_json_path(root, "entry.0.changes.0.value.statuses"));
    json_decref(root);
    /* Stickers: a static WebP over 100 KB is refused, an animated one up to 500 KB is not. */
    memcpy(webp, "RIFF\0\0\0\0WEBPVP8 ", 16);
    assert_int_equal(upload(&s, "image/webp", webp, big, &code), 400);
    assert_int_equal(code, 131053);
    memcpy(webp, "RIFF\0\0\0\0WEBPVP8X", 16);
    webp[20] = 0x02; /* the animation flag */
    assert_int_equal(upload(&s, "image/webp", webp, big, &code), 200);
    assert_int_equal(upload(&s, "image/gif", webp, 100, &code), 400);
    assert_int_equal(code, 100); /* a type Meta does not take: invalid parameter */
    free(webp);
    sim_stop(&s);
}

static int
setup(void **state)
{
    struct wa_httpd_config cfg = {.listen = "127.0.0.1:0"};

    (void)state;
    curl_global_init(CURL_GLOBAL_ALL);
    assert_int_equal(wa_loop_new(&rx.loop), WA_OK);
    assert_int_equal(wa_httpd_new(rx.loop, &cfg, &rx.httpd, NULL), WA_OK);
    assert_int_equal(wa_httpd_route(rx.httpd, "POST", "/webhook", 0, on_webhook, NULL), WA_OK);
    assert_int_equal(wa_httpd_start(rx.httpd, NULL), WA_OK);
    rx.port = wa_httpd_port(rx.httpd);
    assert_int_equal(pthread_create(&rx.thread, NULL, rx_main, NULL), 0);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    wa_loop_stop(rx.loop);
    pthread_join(rx.thread, NULL);
    wa_httpd_free(rx.httpd);
    wa_loop_free(rx.loop);
    rx_clear(0);
    curl_global_cleanup();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(graph__auth_number_validation__answer_like_meta, kill_live),
        cmocka_unit_test_teardown(graph__each_type__valid_accepted_and_invalid_rejected, kill_live),
        cmocka_unit_test_teardown(templates__registry__codes_and_pacing, kill_live),
        cmocka_unit_test_teardown(
            statuses__accepted_send__sent_delivered_read_signed_with_callback_data, kill_live),
        cmocka_unit_test_teardown(window__closed__async_failed_then_open_after_inbound, kill_live),
        cmocka_unit_test_teardown(inbound__simulated_user__signed_ascii_webhook, kill_live),
        cmocka_unit_test_teardown(limits__throughput_and_pair__130429_and_131056, kill_live),
        cmocka_unit_test_teardown(users__undeliverable_and_stopped_marketing__failed_statuses,
                                  kill_live),
        cmocka_unit_test_teardown(webhooks__receiver_500__retried_same_bytes_until_200, kill_live),
        cmocka_unit_test_teardown(faults__next_n_errors_latency_5xx_drop, kill_live),
        cmocka_unit_test_teardown(faults__late__accepted_then_failed_status_with_any_code,
                                  kill_live),
        cmocka_unit_test_teardown(media__upload_get_download__with_limits, kill_live),
        cmocka_unit_test_teardown(reset__after_traffic__forgets_history_and_windows, kill_live),
        cmocka_unit_test_teardown(fidelity__recipients_read_receipts_versions_pricing__as_meta,
                                  kill_live),
        cmocka_unit_test_teardown(fidelity__business_endpoints_value_errors_stickers__as_meta,
                                  kill_live),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
