/*
 * chaos_router.c: wa-router killed with SIGKILL in a loop under load.
 *
 *   router-kill9: inbound.message events keep arriving (each a new customer writing a text)
 *     while wa-router gets SIGKILL once it is consuming (at least 1.5 s after its start, at
 *     most 20 s: a restarted instance gets partitions only when the group has rebalanced) and
 *     is started again at once. One rule acts on
 *     every text: reply (outbound.request), forward to a CRM (a receiver in this test, on the
 *     test's loop: 400 for every tenth customer, so those are dead-lettered; 500 to the first
 *     attempt of another tenth, so those are retried) and a reminder 2 s later (a tag on
 *     contact.command). Invariant: every inbound message gets its reply, every CRM record is
 *     delivered or dead-lettered, no reminder lost. Printed: lost of each kind, records
 *     published more than once (absorbed downstream by their deterministic ids), kills,
 *     recovery time (last restart -> every outcome seen).
 *
 * Duration: WA_CHAOS_SECONDS (default 6: the smoke run of make test). Kafka and Redis are the
 * suite's (the scenario kills only the router), on a unique topic and key prefix.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chaos_infra.h"
#include "wa/buf.h"
#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract.h"
#include "wa/httpd.h"
#include "wa/json.h"
#include "wa/kafka.h"
#include "wa_test.h"
#include "wa_test_proc.h"

#define PNID     "100000000000001"
#define MAX_MSGS 100000
#define KILL_MS  1500  /* the shortest life of an instance */
#define KILL_MAX 20000 /* the longest */

/* per inbound message */
struct outcome {
    unsigned short replies;   /* outbound.request records of its reply */
    unsigned short delivered; /* CRM requests with its record answered 200 */
    unsigned short dead;      /* router.crm.dlq records of it */
    unsigned short reminders; /* contact.command records of its reminder's tag */
};

static struct {
    struct wa_loop *loop;
    struct wa_kafka_config kcfg;
    struct wa_kafka_producer *producer;
    struct wa_kafka_consumer *consumer;
    struct wa_httpd *crm;
    char prefix[64], run[16], dir[160], rules[200], log[200], topic_in[256];
    char env_rules[256];
    int port;
    pid_t router;
    bool passed; /* the scenario ended well: its directory (logs) is removed */
    size_t nmsgs;
    struct outcome *out;
    size_t crm_requests, crm_400, crm_500;
} C;

/* ---- numbers in ids ---- */

/* The message number of "...wamid.<run>-<n>...", or -1. */
static long
number_in(const char *s)
{
    char want[40];
    const char *p;
    int l = snprintf(want, sizeof(want), "wamid.%s-", C.run);

    if (s == NULL || (p = strstr(s, want)) == NULL) {
        return -1;
    }
    return strtol(p + l, NULL, 10);
}

/* The message number of contact "1666<n>", or -1. */
static long
number_of_contact(const char *contact)
{
    if (contact == NULL || strncmp(contact, "1666", 4) != 0) {
        return -1;
    }
    return strtol(contact + 4, NULL, 10);
}

static bool
valid(long n)
{
    return n >= 0 && (size_t)n < C.nmsgs;
}

/* ---- the CRM ---- */

static void
on_crm(struct wa_http_req *req, void *arg)
{
    size_t len;
    const char *body = wa_http_req_body(req, &len);
    const char *attempt = wa_http_req_header(req, "X-Wabridge-Attempt");
    json_t *rec = NULL;
    long n = -1;

    (void)arg;
    C.crm_requests++;
    if (wa_json_parse(body, len, 0, &rec, NULL) == WA_OK) {
        n = number_in(wa_json_str(rec, "wamid"));
    }
    json_decref(rec);
    if (!valid(n)) {
        wa_http_reply_json(req, 400, "{\"error\":\"unknown record\"}");
        return;
    }
    if (n % 10 == 7) {
        C.crm_400++;
        wa_http_reply_json(req, 400, "{\"error\":\"unknown customer\"}");
        return;
    }
    if (n % 10 == 3 && (attempt == NULL || strcmp(attempt, "1") == 0)) {
        C.crm_500++;
        wa_http_reply_json(req, 500, "{\"error\":\"try later\"}");
        return;
    }
    C.out[n].delivered++;
    wa_http_reply_json(req, 200, "{\"ok\":true}");
}

/* ---- Kafka ---- */

static void
on_event(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    struct wa_cloudevent_doc *doc = NULL;
    const char *topic = msg->topic + strlen(C.prefix);

    (void)arg;
    if (wa_cloudevent_decode(msg->value, msg->len, &doc, NULL) == WA_OK) {
        const json_t *d = doc->ev.data;
        long n;

        if (strcmp(topic, WA_TOPIC_OUTBOUND_REQUEST) == 0) {
            n = number_in(wa_json_str(d, "request_id"));
            if (valid(n)) {
                C.out[n].replies++;
            }
        } else if (strcmp(topic, WA_TOPIC_ROUTER_CRM_DLQ) == 0) {
            n = number_in(wa_json_path_str(d, "record.wamid"));
            if (valid(n)) {
                C.out[n].dead++;
            }
        } else if (strcmp(topic, WA_TOPIC_CONTACT_COMMAND) == 0) {
            const char *tag = wa_json_path_str(d, "tags.0");

            n = number_of_contact(wa_json_str(d, "contact"));
            if (valid(n) && tag != NULL && strcmp(tag, "reminded") == 0) {
                C.out[n].reminders++;
            }
        }
        wa_cloudevent_doc_free(doc);
    }
    wa_kafka_consumer_done(c, msg);
}

static void
inbound(size_t n)
{
    struct wa_cloudevent ev;
    char wamid[64], from[32], conv[64], text[32], ts[24];
    int64_t now = (int64_t)(wa_clock_wall_ms() / 1000);
    json_t *data;

    snprintf(wamid, sizeof(wamid), "wamid.%s-%07zu", C.run, n);
    snprintf(from, sizeof(from), "1666%07zu", n);
    snprintf(conv, sizeof(conv), PNID ":%s", from);
    snprintf(text, sizeof(text), "hello %zu", n);
    snprintf(ts, sizeof(ts), "%lld", (long long)now);
    data = json_pack(
        "{s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:n,s:{s:{s:s},s:s},s:{s:s,s:s,s:s,s:s,s:{s:s}}}",
        "wamid", wamid, "type", "text", "timestamp", (json_int_t)now, "phone_number_id", PNID,
        "display_phone_number", "15550000001", "waba_id", "200000000000001", "contact", from,
        "from", from, "from_user_id", "profile", "profile", "name", "Chaos Customer", "wa_id", from,
        "message", "from", from, "id", wamid, "timestamp", ts, "type", "text", "text", "body",
        text);
    assert_non_null(data);
    wa_cloudevent_init(&ev, "chaos-router", WA_CE_TYPE_INBOUND_MESSAGE);
    ev.subject = conv;
    ev.phonenumberid = PNID;
    ev.data = data;
    assert_int_equal(wa_kafka_produce_event(C.producer, C.topic_in, &ev, NULL, NULL), WA_OK);
    json_decref(data);
    C.nmsgs++;
}

/* ---- the router ---- */

static pid_t
router_start(void)
{
    /* a lease well above a delivery's or firing's time, so only a kill repeats a job */
    const char *extra[] = {C.env_rules,           "WA_ROUTER_RETRY=200ms", "WA_ROUTER_TICK=50ms",
                           "WA_ROUTER_LEASE=10s", "WA_LOG_LEVEL=warn",     NULL};

    /* not waited for: the loop must keep serving the CRM receiver */
    return wa_test_spawn_daemon("wa-router", C.port, C.prefix, extra, C.log);
}

/* Inbound messages the router on C.port has consumed (its wa_router_messages_total), 0 when
 * unreadable. */
static size_t
consumed(void)
{
    double v = wa_test_metric(C.port, "wa_router_messages_total{outcome=\"consumed\"}");

    return v > 0 ? (size_t)v : 0;
}

static void
write_rules(int crm_port)
{
    FILE *f = fopen(C.rules, "w");

    assert_non_null(f);
    fprintf(f,
            "{\"version\":1,\"destinations\":{\"crm\":{\"url\":\"http://127.0.0.1:%d/crm\","
            "\"allow_http\":true,\"unsigned\":true,\"rate_per_s\":1000,\"burst\":100,"
            "\"batch_max\":1,\"timeout\":\"2s\",\"max_attempts\":5,\"backoff_initial\":"
            "\"100ms\",\"backoff_max\":\"400ms\"}},"
            "\"rules\":[{\"name\":\"all\",\"match\":{\"type\":\"text\"},\"actions\":["
            "{\"reply\":{\"text\":\"got {{wamid}}\"}},{\"forward\":\"crm\"},"
            "{\"remind\":{\"id\":\"later\",\"after\":\"2s\",\"cancel_on\":\"never\","
            "\"actions\":[{\"tag\":[\"reminded\"]}]}}]}]}\n",
            crm_port);
    assert_int_equal(fclose(f), 0);
}

struct tally {
    size_t no_reply, crm_open, no_reminder, reply_copies, crm_copies, reminder_copies, dead;
};

static void
tally(struct tally *t)
{
    memset(t, 0, sizeof(*t));
    for (size_t n = 0; n < C.nmsgs; n++) {
        const struct outcome *o = &C.out[n];

        t->no_reply += o->replies == 0;
        t->crm_open += o->delivered == 0 && o->dead == 0;
        t->no_reminder += o->reminders == 0;
        t->reply_copies += o->replies > 1 ? o->replies - 1u : 0u;
        t->crm_copies += o->delivered + o->dead > 1 ? o->delivered + o->dead - 1u : 0u;
        t->reminder_copies += o->reminders > 1 ? o->reminders - 1u : 0u;
        t->dead += o->dead > 0;
    }
}

static bool
all_done(void *arg)
{
    struct tally t;

    (void)arg;
    tally(&t);
    return t.no_reply == 0 && t.crm_open == 0 && t.no_reminder == 0;
}

static int
setup(void **state)
{
    struct wa_httpd_config hc = {.listen = "127.0.0.1:0", .service = "chaos-crm"};
    static const char *const names[] = {WA_TOPIC_INBOUND_MESSAGE, WA_TOPIC_OUTBOUND_REQUEST,
                                        WA_TOPIC_CONTACT_COMMAND, WA_TOPIC_ROUTER_CRM_DLQ,
                                        WA_TOPIC_OUTBOUND_RESULT, WA_TOPIC_HANDOFF,
                                        WA_TOPIC_ROUTER_WINDOW};
    enum { NT = sizeof(names) / sizeof(names[0]) };
    char topics[NT][256], group[96];
    const char *tp[NT];

    (void)state;
    memset(&C, 0, sizeof(C));
    C.out = calloc(MAX_MSGS, sizeof(*C.out));
    assert_non_null(C.out);
    wa_test_unique_prefix(C.prefix, sizeof(C.prefix));
    snprintf(C.run, sizeof(C.run), "rk%04d", (int)(getpid() % 10000));
    snprintf(C.dir, sizeof(C.dir), "/tmp/wa-chaos-router-%d", (int)getpid());
    chaos_rmtree(C.dir);
    assert_int_equal(mkdir(C.dir, 0755), 0);
    snprintf(C.rules, sizeof(C.rules), "%s/rules.json", C.dir);
    snprintf(C.log, sizeof(C.log), "%s/router.log", C.dir);
    snprintf(C.env_rules, sizeof(C.env_rules), "WA_ROUTER_RULES=%s", C.rules);
    assert_int_equal(wa_loop_new(&C.loop), WA_OK);
    C.kcfg.brokers = wa_test_env("WA_KAFKA_BROKERS");
    C.kcfg.topic_prefix = C.prefix;
    C.kcfg.linger_us = 1000;
    for (int i = 0; i < NT; i++) {
        assert_int_equal(wa_kafka_topic(&C.kcfg, names[i], topics[i], sizeof(topics[i])), WA_OK);
        tp[i] = topics[i];
    }
    snprintf(C.topic_in, sizeof(C.topic_in), "%s", topics[0]);
    assert_int_equal(wa_kafka_topics_ensure(&C.kcfg, tp, NT, 4, 30000, NULL), WA_OK);
    assert_int_equal(wa_kafka_producer_new(C.loop, &C.kcfg, &C.producer, NULL), WA_OK);
    snprintf(group, sizeof(group), "%schaos", C.prefix);
    assert_int_equal(
        wa_kafka_consumer_new(C.loop, &C.kcfg, group, tp + 1, 3, on_event, NULL, &C.consumer, NULL),
        WA_OK);
    assert_int_equal(wa_httpd_new(C.loop, &hc, &C.crm, NULL), WA_OK);
    assert_int_equal(wa_httpd_route(C.crm, "POST", "/*", 0, on_crm, NULL), WA_OK);
    assert_int_equal(wa_httpd_start(C.crm, NULL), WA_OK);
    write_rules(wa_httpd_port(C.crm));
    C.port = wa_test_free_port();
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    wa_test_stop(C.router, SIGTERM, 20000);
    wa_kafka_consumer_free(C.consumer);
    (void)wa_kafka_producer_flush(C.producer, 5000);
    wa_kafka_producer_free(C.producer);
    wa_httpd_free(C.crm);
    wa_loop_free(C.loop);
    wa_kafka_wait_destroyed(5000);
    if (C.passed && getenv("WA_CHAOS_KEEP_LOGS") == NULL) {
        chaos_rmtree(C.dir);
    } else {
        printf("logs kept in %s\n", C.dir);
    }
    free(C.out);
    return 0;
}

/* ---- the scenario ---- */

static void
chaos__router_killed_in_a_loop__replies_crm_reminders_complete(void **state)
{
    long secs = chaos_seconds("WA_CHAOS_SECONDS", 6);
    uint64_t end, started, t_last;
    struct tally t;
    int kills = 0, busy = 0, rc;
    bool pass;

    (void)state;
    C.router = router_start();
    if (!wa_test_poll_status(C.port, "/readyz", 200, 60000, NULL)) {
        fail_msg("wa-router did not become ready (see %s)", C.log);
    }
    /* the consumer groups settle before the chaos: one message makes the round trip */
    inbound(0);
    if (!wa_test_run_until(C.loop, all_done, NULL, 60000)) {
        fail_msg("no reply, CRM outcome and reminder for the first message within 60 s (see %s)",
                 C.log);
    }
    end = wa_clock_mono_ms() + (uint64_t)secs * 1000;
    started = wa_clock_mono_ms();
    while (wa_clock_mono_ms() < end || kills == 0) {
        for (int i = 0; i < 5 && C.nmsgs < MAX_MSGS; i++) {
            inbound(C.nmsgs);
        }
        wa_test_run_for(C.loop, 100);
        if (wa_clock_mono_ms() - started >= KILL_MS) {
            size_t n = consumed();

            if (n > 0 || wa_clock_mono_ms() - started >= KILL_MAX) {
                wa_test_stop(C.router, SIGKILL, 5000);
                kills++;
                busy += n > 0;
                C.router = router_start();
                started = wa_clock_mono_ms();
            }
        }
    }
    t_last = wa_clock_mono_ms();
    (void)wa_test_run_until(C.loop, all_done, NULL, 240000);
    t_last = wa_clock_mono_ms() - t_last;
    wa_test_run_for(C.loop, 1000);
    tally(&t);
    pass = t.no_reply == 0 && t.crm_open == 0 && t.no_reminder == 0;
    printf("chaos router-kill9: invariant: with wa-router killed (SIGKILL) again and again, every "
           "inbound message gets its reply, every CRM record is delivered or dead-lettered, no "
           "reminder is lost\n"
           "chaos router-kill9: result: messages=%zu replies_lost=%zu crm_unresolved=%zu "
           "reminders_lost=%zu dead_lettered=%zu crm_requests=%zu (400: %zu, 500: %zu) "
           "republished: replies=%zu crm=%zu reminders=%zu kills=%d (consuming %d) recovery=%.1fs "
           "-> %s\n",
           C.nmsgs, t.no_reply, t.crm_open, t.no_reminder, t.dead, C.crm_requests, C.crm_400,
           C.crm_500, t.reply_copies, t.crm_copies, t.reminder_copies, kills, busy,
           (double)t_last / 1000.0, pass ? "PASS" : "FAIL");
    fflush(stdout);
    rc = wa_test_stop(C.router, SIGTERM, 20000);
    C.router = 0;
    assert_int_equal(rc, 0);
    assert_int_equal(t.no_reply, 0);
    assert_int_equal(t.crm_open, 0);
    assert_int_equal(t.no_reminder, 0);
    assert_true(kills > 0);
    C.passed = true;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            chaos__router_killed_in_a_loop__replies_crm_reminders_complete, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
