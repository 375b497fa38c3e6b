/*
 * admin.c: creating, listing and deleting topics at startup, in tests and in deploy/local's
 * wa-infra (blocking by design).
 *
 * Uses a short-lived producer handle: CreateTopics through the admin API (a topic that already
 * exists is success), then metadata requests until every topic has partitions with leaders,
 * so a consumer subscribing right after sees them. Never call this on a running loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_int.h"
#include "wa/clock.h"
#include "wa/log.h"

#define METADATA_STEP_MS 500

/* The last authentication or TLS failure of an admin handle (its error_cb's opaque), so a call
 * that timed out can say why instead of only "timed out". */
struct admin_state {
    int err;
    char reason[256];
};

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct admin_state *st = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL) {
        st->err = err;
        snprintf(st->reason, sizeof(st->reason), "%s", reason);
    }
}

/* Turns a failed admin call into WA_EAUTH naming the broker's reason when a handshake failed. */
static enum wa_err
admin_fail(rd_kafka_t *rk, struct admin_state *st, enum wa_err err, const char *what,
           struct wa_error *error)
{
    rd_kafka_poll(rk, 0); /* serves the error events queued meanwhile */
    if (st->err != 0) {
        return wa_error_set(error, WA_EAUTH, "%s: %s", what, st->reason);
    }
    return err;
}

/* The first topic of an admin result that failed with anything but done (what the call wanted
 * anyway: "already exists" for a create, "unknown topic" for a delete), as an error. */
static enum wa_err
results_check(const rd_kafka_topic_result_t **results, size_t n, rd_kafka_resp_err_t done,
              struct wa_error *error)
{
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t rerr = rd_kafka_topic_result_error(results[i]);

        if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR && rerr != done) {
            const char *msg = rd_kafka_topic_result_error_string(results[i]);

            return wa_error_set(error, kafka_err(rerr), "topic %s: %s",
                                rd_kafka_topic_result_name(results[i]),
                                msg != NULL ? msg : rd_kafka_err2str(rerr));
        }
    }
    return WA_OK;
}

/* Waits for the result event of an admin request sent to queue ("what": "creating topics");
 * the request has its own timeout, so wait a little longer. *ev is the caller's on WA_OK. */
static enum wa_err
admin_wait(rd_kafka_queue_t *queue, int timeout_ms, const char *what, rd_kafka_event_t **ev,
           struct wa_error *error)
{
    if ((*ev = rd_kafka_queue_poll(queue, timeout_ms + 1000)) == NULL) {
        return wa_error_set(error, WA_ETIMEDOUT, "%s timed out", what);
    }
    if (rd_kafka_event_error(*ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return wa_error_set(error, kafka_err(rd_kafka_event_error(*ev)), "%s: %s", what,
                            rd_kafka_event_error_string(*ev));
    }
    return WA_OK;
}

/* Names, a count and a timeout given, and no name empty. */
static enum wa_err
names_check(const char *const *names, size_t n, int timeout_ms, const char *what,
            struct wa_error *error)
{
    if (names == NULL || n == 0 || timeout_ms <= 0) {
        return wa_error_set(error, WA_EINVAL, "%s needs names and a timeout", what);
    }
    for (size_t i = 0; i < n; i++) {
        if (names[i] == NULL || *names[i] == '\0') {
            return wa_error_set(error, WA_EINVAL, "topic name %zu is empty", i);
        }
    }
    return WA_OK;
}

static enum wa_err
create(rd_kafka_t *rk, const char *const *names, size_t n, int partitions, int timeout_ms,
       struct wa_error *error)
{
    rd_kafka_NewTopic_t **topics = NULL;
    rd_kafka_AdminOptions_t *options = NULL;
    rd_kafka_queue_t *queue = NULL;
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_CreateTopics_result_t *result;
    const rd_kafka_topic_result_t **results;
    size_t nresults = 0;
    char errstr[256];
    enum wa_err err = WA_OK;

    if ((topics = calloc(n, sizeof(*topics))) == NULL || (queue = rd_kafka_queue_new(rk)) == NULL ||
        (options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS)) == NULL) {
        err = wa_error_set(error, WA_ENOMEM, "out of memory");
        goto out;
    }
    rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, errstr, sizeof(errstr));
    for (size_t i = 0; i < n; i++) {
        topics[i] = rd_kafka_NewTopic_new(names[i], partitions, -1, errstr, sizeof(errstr));
        if (topics[i] == NULL) {
            err = wa_error_set(error, WA_EINVAL, "topic %s: %s", names[i], errstr);
            goto out;
        }
    }
    rd_kafka_CreateTopics(rk, topics, n, options, queue);
    if ((err = admin_wait(queue, timeout_ms, "creating topics", &ev, error)) != WA_OK) {
        goto out;
    }
    result = rd_kafka_event_CreateTopics_result(ev);
    results = rd_kafka_CreateTopics_result_topics(result, &nresults);
    err = results_check(results, nresults, RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, error);
out:
    if (ev != NULL) {
        rd_kafka_event_destroy(ev);
    }
    if (topics != NULL) {
        rd_kafka_NewTopic_destroy_array(topics, n);
        free(topics);
    }
    if (options != NULL) {
        rd_kafka_AdminOptions_destroy(options);
    }
    if (queue != NULL) {
        rd_kafka_queue_destroy(queue);
    }
    return err;
}

/* True when every name has partitions, each with a leader, in one metadata answer. */
static bool
visible(rd_kafka_t *rk, const char *const *names, size_t n, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    size_t found = 0;

    if (rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        for (int t = 0; t < md->topic_cnt; t++) {
            const struct rd_kafka_metadata_topic *mt = &md->topics[t];
            bool led = mt->err == RD_KAFKA_RESP_ERR_NO_ERROR && mt->partition_cnt > 0;

            if (strcmp(mt->topic, names[i]) != 0) {
                continue;
            }
            for (int p = 0; led && p < mt->partition_cnt; p++) {
                led = mt->partitions[p].leader >= 0;
            }
            found += led ? 1 : 0;
            break;
        }
    }
    rd_kafka_metadata_destroy(md);
    return found == n;
}

/* A short-lived handle for the admin calls, without statistics. */
static enum wa_err
admin_new(const struct wa_kafka_config *cfg, struct admin_state *st, rd_kafka_t **out,
          struct wa_error *error)
{
    rd_kafka_conf_t *conf = NULL;
    char errstr[512];
    enum wa_err err;

    *out = NULL;
    if ((err = kafka_conf_new(cfg, &conf, error)) != WA_OK ||
        (err = kafka_conf_set(conf, "statistics.interval.ms", "0", error)) != WA_OK ||
        (err = kafka_conf_props(conf, cfg, error)) != WA_OK) {
        if (conf != NULL) {
            rd_kafka_conf_destroy(conf);
        }
        return err;
    }
    memset(st, 0, sizeof(*st));
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, st);
    if ((*out = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) == NULL) {
        rd_kafka_conf_destroy(conf);
        return wa_error_set(error, WA_ECONFIG, "kafka admin: %s", errstr);
    }
    return WA_OK; /* rd_kafka_new took conf */
}

enum wa_err
wa_kafka_topics_list(const struct wa_kafka_config *cfg, int timeout_ms, wa_kafka_topic_fn fn,
                     void *arg, struct wa_error *error)
{
    const struct rd_kafka_metadata *md = NULL;
    struct admin_state st;
    rd_kafka_resp_err_t rerr;
    rd_kafka_t *rk = NULL;
    enum wa_err err;

    if (timeout_ms <= 0) {
        return wa_error_set(error, WA_EINVAL, "topics_list needs a timeout");
    }
    if ((err = admin_new(cfg, &st, &rk, error)) != WA_OK) {
        return err;
    }
    rerr = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        err = wa_error_set(error, kafka_err(rerr), "kafka metadata from %s: %s", cfg->brokers,
                           rd_kafka_err2str(rerr));
        err = admin_fail(rk, &st, err, "kafka metadata", error);
    } else {
        for (int t = 0; fn != NULL && t < md->topic_cnt; t++) {
            fn(arg, md->topics[t].topic, md->topics[t].partition_cnt);
        }
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    return err;
}

enum wa_err
wa_kafka_topics_ensure(const struct wa_kafka_config *cfg, const char *const *names, size_t n,
                       int partitions, int timeout_ms, struct wa_error *error)
{
    struct admin_state st;
    rd_kafka_t *rk = NULL;
    uint64_t deadline;
    enum wa_err err;

    if (partitions <= 0) {
        return wa_error_set(error, WA_EINVAL, "topics_ensure needs partitions");
    }
    if ((err = names_check(names, n, timeout_ms, "topics_ensure", error)) != WA_OK) {
        return err;
    }
    deadline = wa_clock_mono_ms() + (uint64_t)timeout_ms;
    if ((err = admin_new(cfg, &st, &rk, error)) != WA_OK) {
        goto out;
    }
    if ((err = create(rk, names, n, partitions, timeout_ms, error)) != WA_OK) {
        err = admin_fail(rk, &st, err, "creating topics", error);
        goto out;
    }
    while (!visible(rk, names, n, METADATA_STEP_MS)) {
        if (wa_clock_mono_ms() >= deadline) {
            err = wa_error_set(error, WA_ETIMEDOUT, "topics created but not visible in time");
            err = admin_fail(rk, &st, err, "topic metadata", error);
            goto out;
        }
    }
    wa_log_debug(NULL, "kafka admin: %zu topic(s) ready", n);
out:
    if (rk != NULL) {
        rd_kafka_destroy(rk);
    }
    return err;
}

enum wa_err
wa_kafka_topics_delete(const struct wa_kafka_config *cfg, const char *const *names, size_t n,
                       int timeout_ms, struct wa_error *error)
{
    rd_kafka_DeleteTopic_t **topics = NULL;
    rd_kafka_AdminOptions_t *options = NULL;
    rd_kafka_queue_t *queue = NULL;
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_topic_result_t **results;
    struct admin_state st;
    rd_kafka_t *rk = NULL;
    size_t nresults = 0;
    char errstr[256];
    enum wa_err err;

    if ((err = names_check(names, n, timeout_ms, "topics_delete", error)) != WA_OK ||
        (err = admin_new(cfg, &st, &rk, error)) != WA_OK) {
        return err;
    }
    if ((topics = calloc(n, sizeof(*topics))) == NULL || (queue = rd_kafka_queue_new(rk)) == NULL ||
        (options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS)) == NULL) {
        err = wa_error_set(error, WA_ENOMEM, "out of memory");
        goto out;
    }
    rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, errstr, sizeof(errstr));
    for (size_t i = 0; i < n; i++) {
        if ((topics[i] = rd_kafka_DeleteTopic_new(names[i])) == NULL) {
            err = wa_error_set(error, WA_ENOMEM, "out of memory");
            goto out;
        }
    }
    rd_kafka_DeleteTopics(rk, topics, n, options, queue);
    if ((err = admin_wait(queue, timeout_ms, "deleting topics", &ev, error)) != WA_OK) {
        err = admin_fail(rk, &st, err, "deleting topics", error);
        goto out;
    }
    results =
        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &nresults);
    err = results_check(results, nresults, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, error);
out:
    if (ev != NULL) {
        rd_kafka_event_destroy(ev);
    }
    if (topics != NULL) {
        for (size_t i = 0; i < n; i++) {
            if (topics[i] != NULL) {
                rd_kafka_DeleteTopic_destroy(topics[i]);
            }
        }
        free(topics);
    }
    if (options != NULL) {
        rd_kafka_AdminOptions_destroy(options);
    }
    if (queue != NULL) {
        rd_kafka_queue_destroy(queue);
    }
    rd_kafka_destroy(rk);
    return err;
}
