/*
 * fuzz_analytics_query.c: libFuzzer driver for wa-analytics' query parameters (an_query_parse)
 * and its event translation (an_consume_translate, the parser of every consumed event). The
 * input's first line is a query string ("from=...&to=...&granularity=..."), the rest an event
 * given to each topic. Invariants beyond "no crash, no sanitizer report": an accepted query has
 * from < to, a span of at most 400 days, a known granularity and filters of 1 to 128 bytes; a
 * rejected one names a parameter. Every translated operation is either an update of a
 * collection the daemon owns with an _id filter, or an erasure.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "wa/contract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARAMS 16

struct params {
    char *names[MAX_PARAMS], *values[MAX_PARAMS];
    size_t n;
};

static const char *
param(void *arg, const char *name)
{
    const struct params *p = arg;

    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->names[i], name) == 0) {
            return p->values[i];
        }
    }
    return NULL;
}

static void
check_query(char *line)
{
    struct params p = {.n = 0};
    struct an_tz utc;
    struct an_query q;
    struct wa_error error = {0};
    char *save = NULL;

    memset(&utc, 0, sizeof(utc));
    for (char *kv = strtok_r(line, "&", &save); kv != NULL && p.n < MAX_PARAMS;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');

        if (eq == NULL) {
            continue;
        }
        *eq = '\0';
        p.names[p.n] = kv;
        p.values[p.n++] = eq + 1;
    }
    if (an_query_parse(param, &p, 1796342400000LL, &utc, &q, &error) != WA_OK) {
        if (error.message[0] == '\0') {
            abort();
        }
        return;
    }
    if (q.from_ms >= q.to_ms || q.to_ms - q.from_ms > 400LL * 86400000LL ||
        (unsigned)q.granularity > AN_MONTH ||
        (q.template_name != NULL &&
         (q.template_name[0] == '\0' || strlen(q.template_name) > 128))) {
        abort();
    }
}

static void
check_events(const char *event, size_t len)
{
    static const char *const topics[] = {WA_TOPIC_OUTBOUND_REQUEST, WA_TOPIC_OUTBOUND_RESULT,
                                         WA_TOPIC_INBOUND_STATUS, WA_TOPIC_INBOUND_MESSAGE,
                                         WA_TOPIC_CONTACT_EVENT};

    for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
        json_t *ops = json_array(), *op;
        struct wa_error error = {0};
        size_t i;

        if (ops == NULL) {
            return;
        }
        (void)an_consume_translate(topics[t], event, len, 1, NULL, ops, &error);
        json_array_foreach(ops, i, op)
        {
            const char *coll = json_string_value(json_object_get(op, "coll"));

            if (json_object_get(op, "erase") != NULL) {
                continue;
            }
            if (coll == NULL ||
                (strcmp(coll, AN_COLL_MESSAGES) != 0 && strcmp(coll, AN_COLL_INBOUND) != 0) ||
                !json_is_string(json_object_get(json_object_get(op, "filter"), "_id")) ||
                !json_is_object(json_object_get(op, "update"))) {
                abort();
            }
        }
        json_decref(ops);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t qlen = nl != NULL ? (size_t)(nl - data) : size;
    char *line = malloc(qlen + 1);

    if (line == NULL) {
        return 0;
    }
    memcpy(line, data, qlen);
    line[qlen] = '\0';
    check_query(line);
    free(line);
    if (nl != NULL) {
        check_events((const char *)nl + 1, size - qlen - 1);
    }
    return 0;
}
