/*
 * kafka_tls_test.c: libs/kafka over the local broker's SASL_SSL listener (deploy/local/kafka.sh,
 * test profile; its client settings come as WA_TEST_KAFKA_* from the infrastructure's env file).
 *
 * For each mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), and once with a client certificate
 * whose key is encrypted: topics created through the admin call, records produced and consumed,
 * all over TLS with the broker's certificate checked against the generated CA and its host name.
 * A wrong password and a CA that did not sign the broker fail with WA_EAUTH and a message saying
 * why, without the password. Skipped (and says so) when the infrastructure has no such listener
 * (a broker started before it existed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/kafka.h"
#include "wa_test.h"

#define WAIT_MS  30000
#define MESSAGES 5

struct env {
    struct wa_loop *loop;
    struct wa_kafka_config cfg;
    char prefix[64];
    char topic[128];
    char group[128];
};

struct box {
    int delivered, failed, seen;
    enum wa_err last;
};

static const char *
tls_env(const char *name)
{
    return getenv(name);
}

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));

    if (tls_env("WA_TEST_KAFKA_SASL_SSL_BROKERS") == NULL) {
        fprintf(stderr, "kafka_tls: WA_TEST_KAFKA_SASL_SSL_BROKERS is not set (no SASL_SSL "
                        "listener in this infrastructure): skipped\n");
    }
    assert_non_null(e);
    assert_int_equal(wa_loop_new(&e->loop), WA_OK);
    wa_test_unique_prefix(e->prefix, sizeof(e->prefix));
    e->cfg.brokers = tls_env("WA_TEST_KAFKA_SASL_SSL_BROKERS");
    e->cfg.client_id = "wa-kafka-tls-test";
    e->cfg.topic_prefix = e->prefix;
    e->cfg.security = (struct wa_kafka_security){
        .protocol = "SASL_SSL",
        .sasl_username = tls_env("WA_TEST_KAFKA_SASL_USERNAME"),
        .sasl_password = tls_env("WA_TEST_KAFKA_SASL_PASSWORD"),
        .ca_path = tls_env("WA_TEST_KAFKA_CA_PATH"),
    };
    *state = e;
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;

    wa_loop_free(e->loop);
    free(e);
    assert_true(wa_kafka_wait_destroyed(10000));
    return 0;
}

static void
skip_without_listener(const struct env *e)
{
    if (e->cfg.brokers == NULL) {
        skip();
    }
}

static void
on_delivery(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct box *b = arg;

    (void)partition;
    (void)offset;
    b->last = err;
    if (err == WA_OK) {
        b->delivered++;
    } else {
        b->failed++;
    }
}

static void
on_message(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    ((struct box *)arg)->seen++;
    wa_kafka_consumer_done(c, msg);
}

static bool
all_delivered(void *arg)
{
    const struct box *b = arg;

    return b->delivered + b->failed >= MESSAGES;
}

static bool
all_seen(void *arg)
{
    return ((const struct box *)arg)->seen >= MESSAGES;
}

/* Creates a fresh topic, produces MESSAGES records and consumes them back, all with e->cfg. */
static void
round_trip(struct env *e, const char *name)
{
    struct wa_kafka_producer *p = NULL;
    struct wa_kafka_consumer *c = NULL;
    struct wa_error error = {0};
    struct box b = {0};
    const char *topics[1];

    assert_int_equal(wa_kafka_topic(&e->cfg, name, e->topic, sizeof(e->topic)), WA_OK);
    snprintf(e->group, sizeof(e->group), "%sgroup.%s", e->prefix, name);
    topics[0] = e->topic;
    if (wa_kafka_topics_ensure(&e->cfg, topics, 1, 1, 20000, &error) != WA_OK) {
        fail_msg("topics_ensure over SASL_SSL (%s): %s", e->cfg.security.sasl_mechanism,
                 error.message);
    }
    if (wa_kafka_producer_new(e->loop, &e->cfg, &p, &error) != WA_OK) {
        fail_msg("producer_new: %s", error.message);
    }
    for (int i = 0; i < MESSAGES; i++) {
        char value[32];
        int n = snprintf(value, sizeof(value), "tls %d", i);

        assert_int_equal(
            wa_kafka_produce(p, e->topic, "k", 1, value, (size_t)n, NULL, 0, on_delivery, &b),
            WA_OK);
    }
    assert_true(wa_test_run_until(e->loop, all_delivered, &b, WAIT_MS));
    assert_int_equal(b.failed, 0);
    assert_true(wa_kafka_producer_ready(p));
    if (wa_kafka_consumer_new(e->loop, &e->cfg, e->group, topics, 1, on_message, &b, &c, &error) !=
        WA_OK) {
        fail_msg("consumer_new: %s", error.message);
    }
    assert_true(wa_test_run_until(e->loop, all_seen, &b, WAIT_MS));
    assert_int_equal(b.seen, MESSAGES);
    assert_true(wa_kafka_consumer_ready(c));
    assert_int_equal(wa_kafka_consumer_close(c, NULL), WA_OK);
    wa_kafka_consumer_free(c);
    wa_kafka_producer_free(p);
}

static void
sasl_ssl__each_mechanism__produces_and_consumes(void **state)
{
    static const char *const mechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
    static const char *const names[] = {"tls.plain", "tls.scram256", "tls.scram512"};
    struct env *e = *state;

    skip_without_listener(e);
    for (size_t i = 0; i < WA_ARRAY_LEN(mechanisms); i++) {
        e->cfg.security.sasl_mechanism = mechanisms[i];
        round_trip(e, names[i]);
    }
}

/* Mutual TLS on top of SASL: the broker checks the client certificate, the key is encrypted. */
static void
sasl_ssl__client_certificate_with_encrypted_key__produces_and_consumes(void **state)
{
    struct env *e = *state;

    skip_without_listener(e);
    e->cfg.security.sasl_mechanism = "SCRAM-SHA-512";
    e->cfg.security.cert_path = tls_env("WA_TEST_KAFKA_CLIENT_CERT_PATH");
    e->cfg.security.key_path = tls_env("WA_TEST_KAFKA_CLIENT_KEY_PATH");
    e->cfg.security.key_password = tls_env("WA_TEST_KAFKA_CLIENT_KEY_PASSWORD");
    round_trip(e, "tls.mtls");
}

static void
sasl_ssl__wrong_password__fails_with_eauth_saying_why(void **state)
{
    static const char *const mechanisms[] = {"PLAIN", "SCRAM-SHA-512"};
    struct env *e = *state;
    struct wa_error error;

    skip_without_listener(e);
    e->cfg.security.sasl_password = "wrong-password-x";
    for (size_t i = 0; i < WA_ARRAY_LEN(mechanisms); i++) {
        memset(&error, 0, sizeof(error));
        e->cfg.security.sasl_mechanism = mechanisms[i];
        assert_int_equal(wa_kafka_topics_list(&e->cfg, 5000, NULL, NULL, &error), WA_EAUTH);
        fprintf(stderr, "kafka_tls: %s, wrong password: %s\n", mechanisms[i], error.message);
        assert_non_null(strstr(error.message, "SASL authentication error"));
        assert_null(strstr(error.message, "wrong-password-x"));
    }
}

/* A CA that did not sign the broker (the system's bundle): the TLS handshake fails, clearly. */
static void
sasl_ssl__untrusted_broker_certificate__fails_with_eauth_saying_why(void **state)
{
    struct env *e = *state;
    struct wa_error error = {0};

    skip_without_listener(e);
    e->cfg.security.sasl_mechanism = "SCRAM-SHA-512";
    e->cfg.security.ca_path = "/etc/ssl/certs/ca-certificates.crt";
    assert_int_equal(wa_kafka_topics_list(&e->cfg, 5000, NULL, NULL, &error), WA_EAUTH);
    fprintf(stderr, "kafka_tls: untrusted broker: %s\n", error.message);
    assert_non_null(strstr(error.message, "certificate verify failed"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sasl_ssl__each_mechanism__produces_and_consumes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            sasl_ssl__client_certificate_with_encrypted_key__produces_and_consumes, setup,
            teardown),
        cmocka_unit_test_setup_teardown(sasl_ssl__wrong_password__fails_with_eauth_saying_why,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            sasl_ssl__untrusted_broker_certificate__fails_with_eauth_saying_why, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
