/*
 * wa-infra: what deploy/local's scripts ask of the local Kafka and FerretDB, done with the
 * project's libraries (librdkafka's Admin API through libs/kafka, libmongoc through
 * libs/mongo) and the topic list of libs/contract, so no script encodes a protocol or repeats
 * a topic name. Blocking, one request each, exit status 0 on success, 1 on failure (reason on
 * stderr), 2 on a usage error.
 *
 *   wa-infra kafka-ping BROKERS [TIMEOUT_MS]          a broker answers a metadata request
 *   wa-infra kafka-topics BROKERS PREFIX PARTITIONS [TIMEOUT_MS]
 *                                                     creates the contract's topics (existing
 *                                                     ones are kept) and waits for their leaders
 *   wa-infra kafka-list BROKERS [TIMEOUT_MS]          prints "name partitions" per topic
 *   wa-infra kafka-delete BROKERS TOPIC...            deletes the named topics (absent ones
 *                                                     are no error; waits up to 30 s)
 *   wa-infra mongo-ping URI [TIMEOUT_MS]              the server answers {ping: 1}
 *   wa-infra contract-topics                          prints the contract's topics, one a line
 *
 * The Kafka commands take the daemons' TLS and SASL settings from the environment
 * (WA_KAFKA_SECURITY_PROTOCOL & co, *_FILE included; docs/configuration.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/contract.h"
#include "wa/config.h"
#include "wa/kafka.h"
#include "wa/log.h"
#include "wa/mongo.h"

#define DEFAULT_TIMEOUT_MS 2000
#define DELETE_TIMEOUT_MS  30000

static const char *const topics[] = {WA_CONTRACT_TOPICS};

struct infra_cfg {
    struct wa_kafka_security_cfg ks;
};
static const struct wa_cfg_spec spec[] = {WA_CFG_KAFKA_SECURITY(struct infra_cfg, ks)};
static struct infra_cfg cfg;
static struct wa_kafka_security security;

static int
usage(void)
{
    fprintf(stderr, "usage: wa-infra kafka-ping BROKERS [TIMEOUT_MS]\n"
                    "       wa-infra kafka-topics BROKERS PREFIX PARTITIONS [TIMEOUT_MS]\n"
                    "       wa-infra kafka-list BROKERS [TIMEOUT_MS]\n"
                    "       wa-infra kafka-delete BROKERS TOPIC...\n"
                    "       wa-infra mongo-ping URI [TIMEOUT_MS]\n"
                    "       wa-infra contract-topics\n");
    return 2;
}

/* Parses argument s as an integer in [1, max] into *out. */
static bool
parse_pos(const char *s, int64_t max, int *out)
{
    int64_t v;

    if (wa_parse_int(s, &v) != WA_OK || v < 1 || v > max) {
        fprintf(stderr, "wa-infra: '%s' is not a number from 1 to %lld\n", s, (long long)max);
        return false;
    }
    *out = (int)v;
    return true;
}

static int
fail(const struct wa_error *error)
{
    fprintf(stderr, "wa-infra: %s\n", error->message);
    return 1;
}

static void
print_topic(void *arg, const char *name, int partitions)
{
    (void)arg;
    printf("%s %d\n", name, partitions);
}

static int
kafka_topics(const char *brokers, const char *prefix, int partitions, int timeout_ms)
{
    struct wa_kafka_config kc = {.brokers = brokers, .client_id = "wa-infra", .security = security};
    char names[WA_ARRAY_LEN(topics)][256];
    const char *list[WA_ARRAY_LEN(topics)];
    struct wa_error error = {0};

    for (size_t i = 0; i < WA_ARRAY_LEN(topics); i++) {
        int n = snprintf(names[i], sizeof(names[i]), "%s%s", prefix, topics[i]);

        if (n < 0 || (size_t)n >= sizeof(names[i])) {
            fprintf(stderr, "wa-infra: topic prefix '%s' is too long\n", prefix);
            return 1;
        }
        list[i] = names[i];
    }
    if (wa_kafka_topics_ensure(&kc, list, WA_ARRAY_LEN(list), partitions, timeout_ms, &error) !=
        WA_OK) {
        return fail(&error);
    }
    printf("%zu topics present (%s*, %d partitions each)\n", WA_ARRAY_LEN(list), prefix,
           partitions);
    return 0;
}

int
main(int argc, char **argv)
{
    struct wa_error error = {0};
    int timeout_ms = DEFAULT_TIMEOUT_MS, partitions = 0, rc;
    const char *cmd = argc > 1 ? argv[1] : "";

    /* library log lines (librdkafka's, libmongoc's) go to stderr, errors only: a probe of a
     * server still starting is expected to fail, its reason is printed on failure */
    wa_log_init("wa-infra", WA_LOG_ERROR);
    wa_log_set_fd(2);
    if (strcmp(cmd, "contract-topics") == 0 && argc == 2) {
        for (size_t i = 0; i < WA_ARRAY_LEN(topics); i++) {
            printf("%s\n", topics[i]);
        }
        return 0;
    }
    if (strncmp(cmd, "kafka-", 6) == 0) {
        if (wa_cfg_load(spec, WA_ARRAY_LEN(spec), &cfg, wa_cfg_getenv, NULL, &error) != WA_OK) {
            fprintf(stderr, "wa-infra: configuration error: %s\n", error.message);
            wa_cfg_cleanup(spec, WA_ARRAY_LEN(spec), &cfg);
            return 2;
        }
        wa_kafka_security_from_cfg(&cfg.ks, &security);
    }
    if ((strcmp(cmd, "kafka-ping") == 0 || strcmp(cmd, "kafka-list") == 0) &&
        (argc == 3 || argc == 4)) {
        struct wa_kafka_config kc = {
            .brokers = argv[2], .client_id = "wa-infra", .security = security};
        bool list = strcmp(cmd, "kafka-list") == 0;

        if (argc == 4 && !parse_pos(argv[3], 600000, &timeout_ms)) {
            return 2;
        }
        rc = wa_kafka_topics_list(&kc, timeout_ms, list ? print_topic : NULL, NULL, &error) == WA_OK
                 ? 0
                 : fail(&error);
        wa_kafka_wait_destroyed(timeout_ms);
        return rc;
    }
    if (strcmp(cmd, "kafka-topics") == 0 && (argc == 5 || argc == 6)) {
        if (!parse_pos(argv[4], 10000, &partitions) ||
            (argc == 6 && !parse_pos(argv[5], 600000, &timeout_ms))) {
            return 2;
        }
        rc = kafka_topics(argv[2], argv[3], partitions, timeout_ms);
        wa_kafka_wait_destroyed(timeout_ms);
        return rc;
    }
    if (strcmp(cmd, "kafka-delete") == 0 && argc >= 4) {
        struct wa_kafka_config kc = {
            .brokers = argv[2], .client_id = "wa-infra", .security = security};
        size_t n = (size_t)argc - 3;

        rc = wa_kafka_topics_delete(&kc, (const char *const *)&argv[3], n, DELETE_TIMEOUT_MS,
                                    &error) == WA_OK
                 ? 0
                 : fail(&error);
        if (rc == 0) {
            printf("%zu topic(s) deleted\n", n);
        }
        wa_kafka_wait_destroyed(DELETE_TIMEOUT_MS);
        return rc;
    }
    if (strcmp(cmd, "mongo-ping") == 0 && (argc == 3 || argc == 4)) {
        if (argc == 4 && !parse_pos(argv[3], 600000, &timeout_ms)) {
            return 2;
        }
        rc = wa_mongo_ping_sync(argv[2], (uint32_t)timeout_ms, &error) == WA_OK ? 0 : fail(&error);
        wa_mongo_global_cleanup();
        return rc;
    }
    return usage();
}
