/*
 * router_e2e_test.c: the whole auto-reply chain as operators run it, every process a real
 * binary on free ports with a unique topic prefix: a simulated customer writes "price" at
 * wa-cloudsim -> signed webhook -> wa-ingest -> inbound.message -> wa-router (the shipped
 * rules, deploy/local/router-rules.json) -> outbound.request -> wa-notify -> Cloud API send at
 * wa-cloudsim, where the price list must appear, addressed to the customer, quoting the
 * customer's message.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wa/buf.h"
#include "wa/clock.h"
#include "wa_test.h"

static int
free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    assert_true(fd >= 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Starts WA_BIN_DIR/name with the common environment plus extra ("NAME=value", NULL-ended). */
static pid_t
spawn(const char *name, int port, const char *prefix, const char *const *extra, const char *log)
{
    static char env[16][320];
    char bin[512];
    const char *argv[2] = {bin, NULL};
    pid_t pid;
    size_t n = 0;

    snprintf(bin, sizeof(bin), "%s/%s", wa_test_env("WA_BIN_DIR"), name);
    snprintf(env[n++], sizeof(env[0]), "WA_LISTEN=127.0.0.1:%d", port);
    snprintf(env[n++], sizeof(env[0]), "WA_KAFKA_BROKERS=%s", wa_test_env("WA_KAFKA_BROKERS"));
    snprintf(env[n++], sizeof(env[0]), "WA_REDIS_URL=%s", wa_test_env("WA_REDIS_URL"));
    snprintf(env[n++], sizeof(env[0]), "WA_MONGO_URI=%s",
             wa_test_env_or("WA_MONGO_URI", "mongodb://127.0.0.1:17017/wabridge"));
    snprintf(env[n++], sizeof(env[0]), "WA_TOPIC_PREFIX=%s", prefix);
    snprintf(env[n++], sizeof(env[0]), "WA_APP_SECRET=e2e-secret");
    snprintf(env[n++], sizeof(env[0]), "WA_ACCESS_TOKEN=e2e-token");
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 16; i++) {
        snprintf(env[n++], sizeof(env[0]), "%s", extra[i]);
    }
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        for (size_t i = 0; i < n; i++) {
            putenv(env[i]);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static int
stop(pid_t pid)
{
    uint64_t deadline = wa_clock_mono_ms() + 10000;
    int status;

    kill(pid, SIGTERM);
    while (wa_clock_mono_ms() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    wa_buf_append(arg, p, size * n);
    return size * n;
}

static long
http(const char *method, int port, const char *path, const char *body, struct wa_buf *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char url[256];
    long status = 0;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    wa_buf_reset(out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static bool
wait_ready(int port, uint64_t timeout_ms, struct wa_buf *b)
{
    uint64_t deadline = wa_clock_mono_ms() + timeout_ms;

    while (wa_clock_mono_ms() < deadline) {
        if (http("GET", port, "/readyz", NULL, b) == 200) {
            return true;
        }
        usleep(100000);
    }
    return false;
}

static void
chain__customer_writes_price__price_list_sent_at_simulator(void **state)
{
    int sim = free_port(), ingest = free_port(), notify = free_port(), router = free_port();
    char prefix[48], graph[128], webhook[128], rules[512], spool[128];
    const char *sim_env[] = {webhook, NULL};
    const char *ingest_env[] = {spool, NULL};
    const char *notify_env[] = {graph, NULL};
    const char *router_env[] = {rules, NULL};
    pid_t p_sim, p_ingest, p_notify, p_router;
    struct wa_buf b;
    bool found = false;
    uint64_t deadline;

    (void)state;
    wa_buf_init(&b, 1 << 22);
    wa_test_unique_prefix(prefix, sizeof(prefix));
    snprintf(webhook, sizeof(webhook), "WA_WEBHOOK_URL=http://127.0.0.1:%d/webhook", ingest);
    snprintf(graph, sizeof(graph), "WA_GRAPH_URL=http://127.0.0.1:%d/v21.0", sim);
    snprintf(rules, sizeof(rules), "WA_ROUTER_RULES=%s", RT_DEFAULT_RULES);
    snprintf(spool, sizeof(spool), "WA_SPOOL_DIR=/tmp/wa-router-e2e-spool-%d", (int)getpid());
    p_sim = spawn("wa-cloudsim", sim, prefix, sim_env, "/tmp/wa-router-e2e-cloudsim.log");
    p_ingest = spawn("wa-ingest", ingest, prefix, ingest_env, "/tmp/wa-router-e2e-ingest.log");
    p_notify = spawn("wa-notify", notify, prefix, notify_env, "/tmp/wa-router-e2e-notify.log");
    p_router = spawn("wa-router", router, prefix, router_env, "/tmp/wa-router-e2e-router.log");
    assert_true(wait_ready(sim, 30000, &b));
    assert_true(wait_ready(ingest, 30000, &b));
    assert_true(wait_ready(notify, 30000, &b));
    assert_true(wait_ready(router, 30000, &b));

    assert_int_equal(http("POST", sim, "/_sim/inbound",
                          "{\"from\":\"16505557001\",\"name\":\"Grace Hopper\",\"type\":\"text\","
                          "\"text\":{\"body\":\"Price?\"}}",
                          &b) /
                         100,
                     2);
    /* consumers join their groups first: allow a generous first delivery */
    deadline = wa_clock_mono_ms() + 60000;
    while (!found && wa_clock_mono_ms() < deadline) {
        if (http("GET", sim, "/_sim/messages?to=16505557001", NULL, &b) == 200 &&
            strstr(b.data, "here is our price list") != NULL) {
            found = true;
        } else {
            usleep(100000);
        }
    }
    if (!found) {
        fail_msg("no price list at the simulator within 60 s; last /_sim/messages: %s (logs "
                 "/tmp/wa-router-e2e-*.log)",
                 b.data != NULL ? b.data : "");
    }
    assert_non_null(strstr(b.data, "Hi Grace"));
    assert_int_equal(stop(p_router), 0);
    assert_int_equal(stop(p_notify), 0);
    assert_int_equal(stop(p_ingest), 0);
    assert_int_equal(stop(p_sim), 0);
    wa_buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chain__customer_writes_price__price_list_sent_at_simulator),
    };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
