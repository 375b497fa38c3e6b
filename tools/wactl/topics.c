/*
 * topics.c: `wactl topics ensure`: libs/contract's topics, created when missing (existing ones
 * are kept whatever their partition count), then listed with their partitions.
 */
#include <stdio.h>
#include <string.h>

#include "wa/contract.h"
#include "wactl.h"

static const char *const contract_topics[] = {WA_CONTRACT_TOPICS};

struct listing {
    const char *const *names;
    size_t n;
};

static void
print_topic(void *arg, const char *name, int partitions)
{
    const struct listing *l = arg;

    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->names[i], name) == 0) {
            printf("%s %d\n", name, partitions);
        }
    }
}

int
wx_cmd_topics(struct wx *x)
{
    struct wa_kafka_config kc = {.brokers = x->brokers,
                                 .client_id = "wactl",
                                 .topic_prefix = x->prefix,
                                 .security = x->security};
    char full[WA_ARRAY_LEN(contract_topics)][256];
    const char *names[WA_ARRAY_LEN(contract_topics)];
    int timeout = x->timeout_ms > 0 ? (int)x->timeout_ms : 15000;
    struct listing l = {names, WA_ARRAY_LEN(contract_topics)};
    struct wa_error error = {0};
    enum wa_err err;

    if (x->nargs != 1 || strcmp(x->args[0], "ensure") != 0) {
        fprintf(stderr, "usage: wactl topics ensure [--partitions N] (wactl topics --help)\n");
        return WX_USAGE;
    }
    for (size_t i = 0; i < WA_ARRAY_LEN(contract_topics); i++) {
        if (wa_kafka_topic(&kc, contract_topics[i], full[i], sizeof(full[i])) != WA_OK) {
            return WX_USAGE;
        }
        names[i] = full[i];
    }
    err = wa_kafka_topics_ensure(&kc, names, WA_ARRAY_LEN(names),
                                 x->partitions > 0 ? x->partitions : 1, timeout, &error);
    if (err == WA_OK) {
        err = wa_kafka_topics_list(&kc, timeout, print_topic, &l, &error);
    }
    if (err != WA_OK) {
        fprintf(stderr, "wactl topics: %s\n", error.message);
        return err == WA_EINVAL ? WX_USAGE : WX_UNAVAIL;
    }
    return WX_OK;
}
