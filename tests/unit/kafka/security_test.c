/*
 * security_test.c: wa_kafka_security_check() and the clients refusing what it refuses, with no
 * broker: every invalid combination of protocol, SASL and TLS settings is WA_ECONFIG naming the
 * WA_KAFKA_* variable, and no message ever holds a password. The handshakes themselves are in
 * tests/integration/kafka_tls_test.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wa/kafka.h"
#include "wa_test.h"

#define PASSWORD "hunter2-not-in-logs"
#define CA       "/etc/ssl/certs/ca-certificates.crt"

struct bad_case {
    struct wa_kafka_security s;
    const char *names; /* expected in the message */
};

static void
check__valid_combinations__accepted(void **state)
{
    const struct wa_kafka_security ok[] = {
        {0},
        {.protocol = "PLAINTEXT"},
        {.protocol = "ssl"},
        {.protocol = "SSL", .no_hostname_check = true},
        {.protocol = "SASL_SSL",
         .sasl_mechanism = "scram-sha-512",
         .sasl_username = "u",
         .sasl_password = PASSWORD},
        {.protocol = "SASL_SSL",
         .sasl_mechanism = "PLAIN",
         .sasl_username = "u",
         .sasl_password = PASSWORD},
        {.protocol = "SASL_PLAINTEXT",
         .sasl_mechanism = "SCRAM-SHA-256",
         .sasl_username = "u",
         .sasl_password = PASSWORD},
    };
    struct wa_error error = {0};

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(ok); i++) {
        if (wa_kafka_security_check(&ok[i], &error) != WA_OK) {
            fail_msg("case %zu refused: %s", i, error.message);
        }
    }
    assert_int_equal(wa_kafka_security_check(NULL, NULL), WA_OK);
}

static void
check__invalid_combinations__refused_naming_the_variable(void **state)
{
    const struct bad_case bad[] = {
        {{.protocol = "TLS"}, "WA_KAFKA_SECURITY_PROTOCOL=TLS"},
        {{.protocol = "SASL_SSL", .sasl_username = "u", .sasl_password = PASSWORD},
         "WA_KAFKA_SASL_MECHANISM"},
        {{.protocol = "SASL_SSL",
          .sasl_mechanism = "GSSAPI",
          .sasl_username = "u",
          .sasl_password = PASSWORD},
         "WA_KAFKA_SASL_MECHANISM=GSSAPI"},
        {{.protocol = "SASL_SSL", .sasl_mechanism = "PLAIN", .sasl_username = "u"},
         "WA_KAFKA_SASL_PASSWORD"},
        {{.protocol = "SASL_SSL", .sasl_mechanism = "PLAIN", .sasl_password = PASSWORD},
         "WA_KAFKA_SASL_USERNAME"},
        {{.protocol = "SASL_PLAINTEXT",
          .sasl_mechanism = "PLAIN",
          .sasl_username = "u",
          .sasl_password = PASSWORD},
         "clear text"},
        {{.protocol = "SSL", .sasl_username = "u", .sasl_password = PASSWORD}, "WA_KAFKA_SASL_"},
        {{.sasl_mechanism = "PLAIN"}, "WA_KAFKA_SASL_"},
        {{.ca_path = CA}, "WA_KAFKA_SSL_"},
        {{.protocol = "SASL_PLAINTEXT",
          .sasl_mechanism = "SCRAM-SHA-256",
          .sasl_username = "u",
          .sasl_password = PASSWORD,
          .ca_path = CA},
         "WA_KAFKA_SSL_"},
        {{.no_hostname_check = true}, "WA_KAFKA_SSL_"},
        {{.protocol = "SSL", .cert_path = CA}, "WA_KAFKA_SSL_KEY_PATH"},
        {{.protocol = "SSL", .key_path = CA}, "WA_KAFKA_SSL_CERT_PATH"},
        {{.protocol = "SSL", .key_password = PASSWORD}, "WA_KAFKA_SSL_KEY_PASSWORD"},
        {{.protocol = "SSL", .ca_path = "/nonexistent/ca.pem"},
         "WA_KAFKA_SSL_CA_PATH=/nonexistent/ca.pem"},
        {{.protocol = "SSL", .cert_path = "/nonexistent/c.pem", .key_path = "/nonexistent/k.pem"},
         "WA_KAFKA_SSL_CERT_PATH=/nonexistent/c.pem"},
    };
    struct wa_error error;

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(bad); i++) {
        memset(&error, 0, sizeof(error));
        assert_int_equal(wa_kafka_security_check(&bad[i].s, &error), WA_ECONFIG);
        if (strstr(error.message, bad[i].names) == NULL) {
            fail_msg("case %zu: \"%s\" does not name %s", i, error.message, bad[i].names);
        }
        assert_null(strstr(error.message, PASSWORD));
    }
}

static void
on_message(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg, void *arg)
{
    (void)arg;
    wa_kafka_consumer_done(c, msg);
}

/* Every client runs the check: the producer, the consumer and the admin calls refuse at once. */
static void
clients__invalid_security__refused_before_connecting(void **state)
{
    struct wa_kafka_config cfg = {.brokers = "127.0.0.1:1"};
    struct wa_kafka_producer *p = NULL;
    struct wa_kafka_consumer *c = NULL;
    const char *topics[] = {"t"};
    struct wa_error error = {0};
    struct wa_loop *loop = NULL;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    cfg.security = (struct wa_kafka_security){.protocol = "SASL_PLAINTEXT",
                                              .sasl_mechanism = "PLAIN",
                                              .sasl_username = "u",
                                              .sasl_password = PASSWORD};
    assert_int_equal(wa_kafka_producer_new(loop, &cfg, &p, &error), WA_ECONFIG);
    assert_null(p);
    assert_null(strstr(error.message, PASSWORD));
    assert_int_equal(
        wa_kafka_consumer_new(loop, &cfg, "g", topics, 1, on_message, NULL, &c, &error),
        WA_ECONFIG);
    assert_null(c);
    assert_int_equal(wa_kafka_topics_list(&cfg, 1000, NULL, NULL, &error), WA_ECONFIG);
    assert_non_null(strstr(error.message, "clear text"));
    wa_loop_free(loop);
    assert_true(wa_kafka_wait_destroyed(5000));
}

/* librdkafka as built takes every supported combination (TLS and SCRAM compiled in). */
static void
clients__sasl_ssl_scram__accepted_by_librdkafka(void **state)
{
    struct wa_kafka_config cfg = {.brokers = "127.0.0.1:1"};
    struct wa_kafka_producer *p = NULL;
    struct wa_error error = {0};
    struct wa_loop *loop = NULL;
    const char *mechs[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};

    (void)state;
    if (access(CA, R_OK) != 0) {
        skip();
    }
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    for (size_t i = 0; i < WA_ARRAY_LEN(mechs); i++) {
        cfg.security = (struct wa_kafka_security){.protocol = "SASL_SSL",
                                                  .sasl_mechanism = mechs[i],
                                                  .sasl_username = "u",
                                                  .sasl_password = PASSWORD,
                                                  .ca_path = CA};
        if (wa_kafka_producer_new(loop, &cfg, &p, &error) != WA_OK) {
            fail_msg("%s: %s", mechs[i], error.message);
        }
        wa_kafka_producer_free(p);
        p = NULL;
    }
    wa_loop_free(loop);
    assert_true(wa_kafka_wait_destroyed(5000));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check__valid_combinations__accepted),
        cmocka_unit_test(check__invalid_combinations__refused_naming_the_variable),
        cmocka_unit_test(clients__invalid_security__refused_before_connecting),
        cmocka_unit_test(clients__sasl_ssl_scram__accepted_by_librdkafka),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
