/*
 * router_e2e_test.c: the whole auto-reply chain as operators run it, every process a real
 * binary on free ports with a unique topic prefix: a simulated customer writes "price" at
 * wa-cloudsim -> signed webhook -> wa-ingest -> inbound.message -> wa-router (the shipped
 * rules, deploy/local/router-rules.json) -> outbound.request -> wa-notify -> Cloud API send at
 * wa-cloudsim, where the price list must appear, addressed to the customer, quoting the
 * customer's message.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wa/buf.h"
#include "wa/clock.h"
#include "wa_test.h"
#include "wa_test_proc.h"

/* One request with a JSON content type; returns the status (0 if no answer), body into out. */
static long
http(const char *method, int port, const char *path, const char *body, struct wa_buf *out)
{
    static const char *const json[] = {"Content-Type: application/json", NULL};
    struct wa_test_http_req req = {.method = method,
                                   .port = port,
                                   .path = path,
                                   .headers = json,
                                   .body = body,
                                   .timeout_ms = 5000};

    return wa_test_http(&req, out);
}

static void
chain__customer_writes_price__price_list_sent_at_simulator(void **state)
{
    int sim = wa_test_free_port(), ingest = wa_test_free_port(), notify = wa_test_free_port(),
        router = wa_test_free_port();
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
    p_sim = wa_test_spawn_daemon("wa-cloudsim", sim, prefix, sim_env,
                                 "/tmp/wa-router-e2e-cloudsim.log");
    p_ingest = wa_test_spawn_daemon("wa-ingest", ingest, prefix, ingest_env,
                                    "/tmp/wa-router-e2e-ingest.log");
    p_notify = wa_test_spawn_daemon("wa-notify", notify, prefix, notify_env,
                                    "/tmp/wa-router-e2e-notify.log");
    p_router = wa_test_spawn_daemon("wa-router", router, prefix, router_env,
                                    "/tmp/wa-router-e2e-router.log");
    assert_true(wa_test_poll_status(sim, "/readyz", 200, 30000, &b));
    assert_true(wa_test_poll_status(ingest, "/readyz", 200, 30000, &b));
    assert_true(wa_test_poll_status(notify, "/readyz", 200, 30000, &b));
    assert_true(wa_test_poll_status(router, "/readyz", 200, 30000, &b));

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
    assert_int_equal(wa_test_stop(p_router, SIGTERM, 10000), 0);
    assert_int_equal(wa_test_stop(p_notify, SIGTERM, 10000), 0);
    assert_int_equal(wa_test_stop(p_ingest, SIGTERM, 10000), 0);
    assert_int_equal(wa_test_stop(p_sim, SIGTERM, 10000), 0);
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
