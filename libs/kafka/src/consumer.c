/*
 * consumer.c: group consumer that commits only what the application has finished.
 *
 * Flow: librdkafka's threads fetch into the consumer queue (the main queue is forwarded to it
 * by rd_kafka_poll_set_consumer, so rebalances, errors, statistics and commit results arrive
 * there too) -> the queue's io event wakes the loop -> drain() calls rd_kafka_consumer_poll()
 * on the loop thread -> each message is appended to its partition's in-flight list and handed
 * to on_message -> the application calls wa_kafka_consumer_done(), possibly much later.
 *
 * Commit-after-done: each assigned partition keeps its delivered messages in offset order.
 * done() marks one; then every done message at the head is popped and the partition's
 * committable offset becomes (popped offset + 1). So the committed offset never passes a
 * message that is not done, whatever order done() is called in. A timer commits changed
 * offsets asynchronously; revocation and close commit synchronously.
 *
 * Ownership: struct kmsg (wrapping struct wa_kafka_msg) is created in drain(); the librdkafka
 * message inside is released at done(); the small tracking node lives on until it reaches the
 * head of its partition list. On revoke, the partition's not-done messages are detached
 * (part = NULL): done() then only frees them. Every not-done message is also on the live list,
 * so wa_kafka_consumer_free() can release them before rd_kafka_destroy().
 *
 * Back-pressure: pausing is the OR of the application's wish and in_flight >= max_in_flight
 * (resumed below half of it); it applies to the whole assignment, including partitions
 * assigned while paused.
 */
#include <stdlib.h>
#include <string.h>

#include "kafka_int.h"
#include "wa/list.h"
#include "wa/log.h"

#define DRAIN_BUDGET   256 /* messages per wake-up */
#define SAFETY_POLL_MS 100

struct part;

struct kmsg {
    struct wa_kafka_msg pub; /* first: done() casts back */
    rd_kafka_message_t *rkm; /* NULL once done */
    struct part *part;       /* NULL once detached by a revoke */
    struct wa_list plink;    /* on part->msgs, offset order */
    struct wa_list live;     /* on the consumer's live list while not done */
    bool done;
};

struct part {
    struct wa_list link; /* on the consumer's parts */
    char *topic;
    int32_t partition;
    struct wa_list msgs; /* struct kmsg delivered, in offset order, until the done prefix pops */
    int64_t commit;      /* offset to commit (next to read); -1: nothing done yet */
    int64_t committed;   /* last offset sent in a commit; -1: none */
};

struct wa_kafka_consumer {
    struct wa_loop *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    struct kafka_wakeup wake;
    struct wa_timer *commit_timer;
    wa_kafka_message_fn on_message;
    void *arg;
    struct wa_list parts; /* struct part */
    struct wa_list live;  /* struct kmsg delivered, not done */
    size_t in_flight;
    size_t max_in_flight;
    struct wa_metrics *metrics; /* borrowed, may be NULL */
    size_t assigned;            /* partitions currently assigned */
    bool user_paused;
    bool auto_paused;
    bool paused; /* what librdkafka was last told */
    bool ready;
    bool closed;
};

/* ---- partition tracking ---- */

static struct part *
part_find(struct wa_kafka_consumer *c, const char *topic, int32_t partition, bool create)
{
    struct part *pt;

    for (struct wa_list *it = c->parts.next; it != &c->parts; it = it->next) {
        pt = WA_LIST_ENTRY(it, struct part, link);
        if (pt->partition == partition && strcmp(pt->topic, topic) == 0) {
            return pt;
        }
    }
    if (!create || (pt = calloc(1, sizeof(*pt))) == NULL) {
        return NULL;
    }
    if ((pt->topic = strdup(topic)) == NULL) {
        free(pt);
        return NULL;
    }
    pt->partition = partition;
    pt->commit = pt->committed = -1;
    wa_list_init(&pt->msgs);
    wa_list_push_front(&c->parts, &pt->link);
    return pt;
}

/* Forgets a partition: done nodes are freed, not-done ones detached (done() frees those). */
static void
part_drop(struct part *pt)
{
    struct wa_list *it;

    wa_list_remove(&pt->link);
    while ((it = wa_list_first(&pt->msgs)) != NULL) {
        struct kmsg *m = WA_LIST_ENTRY(it, struct kmsg, plink);

        wa_list_remove(it);
        m->part = NULL;
        if (m->done) {
            free(m);
        }
    }
    free(pt->topic);
    free(pt);
}

/* Pops the done prefix; returns true when the committable offset moved. */
static bool
part_advance(struct part *pt)
{
    bool moved = false;
    struct wa_list *it;

    while ((it = wa_list_first(&pt->msgs)) != NULL && WA_LIST_ENTRY(it, struct kmsg, plink)->done) {
        struct kmsg *m = WA_LIST_ENTRY(it, struct kmsg, plink);

        pt->commit = m->pub.offset + 1;
        wa_list_remove(it);
        free(m);
        moved = true;
    }
    return moved;
}

/* ---- pausing ---- */

static void
apply_pause(struct wa_kafka_consumer *c, rd_kafka_topic_partition_list_t *only)
{
    rd_kafka_topic_partition_list_t *parts = only;
    bool want = c->user_paused || c->auto_paused;

    if (c->closed || (only == NULL && want == c->paused)) {
        return;
    }
    if (parts == NULL && rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    if (want) {
        rd_kafka_pause_partitions(c->rk, parts);
    } else if (only == NULL) {
        rd_kafka_resume_partitions(c->rk, parts);
    }
    if (only == NULL) {
        wa_log_info(NULL, "kafka consumer: %s fetching (%zu in flight)",
                    want ? "paused" : "resumed", c->in_flight);
        c->paused = want;
        rd_kafka_topic_partition_list_destroy(parts);
    }
}

static void
check_in_flight(struct wa_kafka_consumer *c)
{
    if (!c->auto_paused && c->in_flight >= c->max_in_flight) {
        c->auto_paused = true;
        apply_pause(c, NULL);
    } else if (c->auto_paused && c->in_flight <= c->max_in_flight / 2) {
        c->auto_paused = false;
        apply_pause(c, NULL);
    }
}

/* ---- committing ---- */

/* Builds the list of partitions whose committable offset moved; NULL when none did. */
static rd_kafka_topic_partition_list_t *
commit_list(struct wa_kafka_consumer *c, const rd_kafka_topic_partition_list_t *only)
{
    rd_kafka_topic_partition_list_t *list = NULL;

    for (struct wa_list *it = c->parts.next; it != &c->parts; it = it->next) {
        struct part *pt = WA_LIST_ENTRY(it, struct part, link);

        if (pt->commit < 0 || pt->commit == pt->committed) {
            continue;
        }
        if (only != NULL &&
            rd_kafka_topic_partition_list_find(only, pt->topic, pt->partition) == NULL) {
            continue;
        }
        if (list == NULL && (list = rd_kafka_topic_partition_list_new(4)) == NULL) {
            return NULL;
        }
        rd_kafka_topic_partition_list_add(list, pt->topic, pt->partition)->offset = pt->commit;
        pt->committed = pt->commit;
    }
    return list;
}

static enum wa_err
commit(struct wa_kafka_consumer *c, const rd_kafka_topic_partition_list_t *only, bool sync,
       struct wa_error *error)
{
    rd_kafka_topic_partition_list_t *list = commit_list(c, only);
    rd_kafka_resp_err_t rerr;

    if (list == NULL) {
        return WA_OK;
    }
    rerr = rd_kafka_commit(c->rk, list, sync ? 0 : 1);
    rd_kafka_topic_partition_list_destroy(list);
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR && rerr != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        wa_log_warn(NULL, "kafka consumer: commit failed: %s", rd_kafka_err2str(rerr));
        return wa_error_set(error, kafka_err(rerr), "kafka commit failed: %s",
                            rd_kafka_err2str(rerr));
    }
    return WA_OK;
}

/* ---- callbacks, in the order they fire ---- */

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct wa_kafka_consumer *c = opaque;

    c->ready = kafka_on_error(rk, err, reason, c->ready, "consumer");
}

static int
on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct wa_kafka_consumer *c = opaque;
    bool up = kafka_stats_broker_up(json, len);

    (void)rk;
    if (up != c->ready) {
        wa_log_info(NULL, "kafka consumer: %s", up ? "a broker is up" : "no broker is up");
    }
    c->ready = up;
    kafka_stats_consumer_lag(json, len, c->metrics);
    return 0;
}

static void
on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
             void *opaque)
{
    struct wa_kafka_consumer *c = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        wa_log_info(NULL, "kafka consumer: %d partition(s) assigned (%s)", parts->cnt,
                    cooperative ? "incremental" : "eager");
        if (cooperative) {
            error = rd_kafka_incremental_assign(rk, parts);
        } else {
            rd_kafka_assign(rk, parts);
        }
        c->assigned = cooperative ? c->assigned + (size_t)parts->cnt : (size_t)parts->cnt;
        if (c->paused) {
            apply_pause(c, parts);
        }
    } else {
        bool lost = rd_kafka_assignment_lost(rk);

        wa_log_info(NULL, "kafka consumer: %d partition(s) %s", parts->cnt,
                    lost ? "lost" : "revoked");
        if (!lost) {
            commit(c, cooperative ? parts : NULL, true, NULL); /* eager: everything goes */
        }
        for (int i = 0; i < parts->cnt; i++) {
            struct part *pt = part_find(c, parts->elems[i].topic, parts->elems[i].partition, false);

            if (pt != NULL) {
                part_drop(pt);
            }
        }
        if (cooperative) {
            error = rd_kafka_incremental_unassign(rk, parts);
            c->assigned -= c->assigned >= (size_t)parts->cnt ? (size_t)parts->cnt : c->assigned;
        } else {
            rd_kafka_assign(rk, NULL);
            c->assigned = 0;
        }
    }
    if (error != NULL) {
        wa_log_error(NULL, "kafka consumer: rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

static void
on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets,
          void *opaque)
{
    struct wa_kafka_consumer *c = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        return;
    }
    wa_log_warn(NULL, "kafka consumer: asynchronous commit failed: %s", rd_kafka_err2str(err));
    for (int i = 0; offsets != NULL && i < offsets->cnt; i++) {
        struct part *pt = part_find(c, offsets->elems[i].topic, offsets->elems[i].partition, false);

        if (pt != NULL && pt->committed == offsets->elems[i].offset) {
            pt->committed = -1; /* retried by the next tick */
        }
    }
}

static void
deliver(struct wa_kafka_consumer *c, rd_kafka_message_t *rkm)
{
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    rd_kafka_timestamp_type_t tstype;
    struct kmsg *m;
    struct part *pt;

    if ((pt = part_find(c, topic, rkm->partition, true)) == NULL ||
        (m = calloc(1, sizeof(*m))) == NULL) {
        /* not tracked means never committed: the message comes again after a restart */
        wa_log_error(NULL, "kafka consumer: out of memory, dropping %s[%d]@%lld", topic,
                     (int)rkm->partition, (long long)rkm->offset);
        rd_kafka_message_destroy(rkm);
        return;
    }
    m->rkm = rkm;
    m->part = pt;
    m->pub.topic = topic;
    m->pub.partition = rkm->partition;
    m->pub.offset = rkm->offset;
    m->pub.key = rkm->key;
    m->pub.keylen = rkm->key_len;
    m->pub.value = rkm->payload;
    m->pub.len = rkm->len;
    m->pub.timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype);
    wa_list_push_back(&pt->msgs, &m->plink);
    wa_list_push_back(&c->live, &m->live);
    c->in_flight++;
    c->ready = true;
    check_in_flight(c);
    c->on_message(c, &m->pub, c->arg); /* m may be done (and freed) when this returns */
}

static bool
drain(void *arg)
{
    struct wa_kafka_consumer *c = arg;
    rd_kafka_message_t *rkm;

    for (int i = 0; i < DRAIN_BUDGET && !c->closed; i++) {
        if ((rkm = rd_kafka_consumer_poll(c->rk, 0)) == NULL) {
            return false;
        }
        if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            wa_log_warn(NULL, "kafka consumer: %s", rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            continue;
        }
        deliver(c, rkm);
    }
    return !c->closed;
}

static void
on_commit_tick(struct wa_timer *t, void *arg)
{
    (void)t;
    commit(arg, NULL, false, NULL);
}

/* ---- public ---- */

const void *
wa_kafka_msg_header(const struct wa_kafka_msg *msg, const char *name, size_t *len)
{
    const struct kmsg *m = (const struct kmsg *)msg;
    rd_kafka_headers_t *hdrs;
    const void *value;
    size_t size;

    if (m->rkm == NULL || rd_kafka_message_headers(m->rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return NULL;
    }
    if (len != NULL) {
        *len = size;
    }
    return value;
}

void
wa_kafka_consumer_done(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg)
{
    struct kmsg *m = (struct kmsg *)msg;

    WA_ASSERT(!m->done);
    m->done = true;
    wa_list_remove(&m->live);
    rd_kafka_message_destroy(m->rkm);
    m->rkm = NULL;
    c->in_flight--;
    if (m->part == NULL) {
        free(m); /* detached by a revoke: nothing to commit */
    } else {
        part_advance(m->part); /* may free m */
    }
    check_in_flight(c);
}

static enum wa_err
consumer_conf(const struct wa_kafka_config *cfg, const char *group_id, struct wa_kafka_consumer *c,
              rd_kafka_conf_t **out, struct wa_error *error)
{
    rd_kafka_conf_t *conf = NULL;
    enum wa_err err;

    if ((err = kafka_conf_new(cfg, &conf, error)) != WA_OK) {
        return err;
    }
    if ((err = kafka_conf_set(conf, "group.id", group_id, error)) != WA_OK ||
        (err = kafka_conf_set(conf, "enable.auto.commit", "false", error)) != WA_OK ||
        (err = kafka_conf_set(conf, "enable.auto.offset.store", "false", error)) != WA_OK ||
        (err = kafka_conf_set(conf, "auto.offset.reset", "earliest", error)) != WA_OK ||
        (err = kafka_conf_set(conf, "partition.assignment.strategy", "cooperative-sticky",
                              error)) != WA_OK ||
        (err = kafka_conf_set(conf, "isolation.level", "read_committed", error)) != WA_OK ||
        /* a member killed with SIGKILL leaves its partitions idle until the session times out:
         * 10 s, not librdkafka's 45 s (the broker's minimum is 6 s) */
        (err = kafka_conf_set(conf, "session.timeout.ms", "10000", error)) != WA_OK ||
        (err = kafka_conf_set(conf, "heartbeat.interval.ms", "1000", error)) != WA_OK ||
        (err = kafka_conf_props(conf, cfg, error)) != WA_OK) {
        rd_kafka_conf_destroy(conf);
        return err;
    }
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    rd_kafka_conf_set_opaque(conf, c);
    *out = conf;
    return WA_OK;
}

enum wa_err
wa_kafka_consumer_new(struct wa_loop *loop, const struct wa_kafka_config *cfg, const char *group_id,
                      const char *const *topics, size_t n, wa_kafka_message_fn on_message,
                      void *arg, struct wa_kafka_consumer **out, struct wa_error *error)
{
    struct wa_kafka_consumer *c = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_resp_err_t rerr;
    char errstr[512];
    uint64_t commit_ms;
    enum wa_err err;

    *out = NULL;
    if (group_id == NULL || *group_id == '\0' || topics == NULL || n == 0 || on_message == NULL) {
        return wa_error_set(error, WA_EINVAL,
                            "kafka consumer needs a group, topics and a "
                            "message callback");
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    wa_list_init(&c->parts);
    wa_list_init(&c->live);
    c->loop = loop;
    c->metrics = cfg != NULL ? cfg->metrics : NULL;
    c->on_message = on_message;
    c->arg = arg;
    c->max_in_flight = cfg != NULL && cfg->max_in_flight > 0 ? (size_t)cfg->max_in_flight : 1000;
    c->wake.fds[0] = c->wake.fds[1] = -1;
    commit_ms =
        cfg != NULL && cfg->commit_interval_ms > 0 ? (uint64_t)cfg->commit_interval_ms : 200;
    if ((err = consumer_conf(cfg, group_id, c, &conf, error)) != WA_OK) {
        goto out;
    }
    if ((c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr))) == NULL) {
        err = wa_error_set(error, WA_ECONFIG, "kafka consumer: %s", errstr);
        goto out;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(c->rk);
    c->queue = rd_kafka_queue_get_consumer(c->rk);
    if (c->queue == NULL) {
        err = wa_error_set(error, WA_EINTERNAL, "kafka consumer has no consumer queue");
        goto out;
    }
    if ((subs = rd_kafka_topic_partition_list_new((int)n)) == NULL) {
        err = wa_error_set(error, WA_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (topics[i] == NULL || *topics[i] == '\0') {
            err = wa_error_set(error, WA_EINVAL, "kafka consumer: topic %zu is empty", i);
            goto out;
        }
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    }
    if ((rerr = rd_kafka_subscribe(c->rk, subs)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        err = wa_error_set(error, kafka_err(rerr), "kafka subscribe: %s", rd_kafka_err2str(rerr));
        goto out;
    }
    if ((c->commit_timer = wa_timer_new(loop, on_commit_tick, c)) == NULL) {
        err = wa_error_set(error, WA_ENOMEM, "out of memory");
        goto out;
    }
    wa_timer_start(c->commit_timer, commit_ms, commit_ms);
    if ((err = kafka_wakeup_start(&c->wake, loop, c->queue, SAFETY_POLL_MS, drain, c, error)) !=
        WA_OK) {
        goto out;
    }
    wa_log_info(NULL, "kafka consumer %s started (group %s, %zu topic(s))", rd_kafka_name(c->rk),
                group_id, n);
    *out = c;
    c = NULL;
out:
    if (subs != NULL) {
        rd_kafka_topic_partition_list_destroy(subs);
    }
    if (conf != NULL) {
        rd_kafka_conf_destroy(conf);
    }
    wa_kafka_consumer_free(c);
    return err;
}

void
wa_kafka_consumer_pause(struct wa_kafka_consumer *c)
{
    c->user_paused = true;
    apply_pause(c, NULL);
}

bool
wa_kafka_consumer_paused(const struct wa_kafka_consumer *c)
{
    return c->paused;
}

size_t
wa_kafka_consumer_in_flight(const struct wa_kafka_consumer *c)
{
    return c->in_flight;
}

size_t
wa_kafka_consumer_assigned(const struct wa_kafka_consumer *c)
{
    return c != NULL ? c->assigned : 0;
}

bool
wa_kafka_consumer_ready(const struct wa_kafka_consumer *c)
{
    return c->ready && !c->closed;
}

enum wa_err
wa_kafka_consumer_close(struct wa_kafka_consumer *c, struct wa_error *error)
{
    enum wa_err err;
    rd_kafka_resp_err_t rerr;
    struct wa_list *it;

    if (c->closed || c->rk == NULL) {
        c->closed = true;
        return WA_OK;
    }
    wa_timer_free(c->commit_timer);
    c->commit_timer = NULL;
    err = commit(c, NULL, true, error);
    /* runs on_rebalance (revoke) inside, on this thread; no message is delivered after this */
    c->closed = true;
    if ((rerr = rd_kafka_consumer_close(c->rk)) != RD_KAFKA_RESP_ERR_NO_ERROR && err == WA_OK) {
        err = wa_error_set(error, kafka_err(rerr), "kafka consumer close: %s",
                           rd_kafka_err2str(rerr));
    }
    kafka_wakeup_stop(&c->wake);
    while ((it = wa_list_first(&c->parts)) != NULL) {
        part_drop(WA_LIST_ENTRY(it, struct part, link));
    }
    wa_log_info(NULL, "kafka consumer %s closed", rd_kafka_name(c->rk));
    return err;
}

void
wa_kafka_consumer_free(struct wa_kafka_consumer *c)
{
    struct wa_list *it;

    if (c == NULL) {
        return;
    }
    if (c->rk != NULL && !c->closed) {
        wa_kafka_consumer_close(c, NULL);
    }
    kafka_wakeup_stop(&c->wake);
    wa_timer_free(c->commit_timer);
    while ((it = wa_list_first(&c->parts)) != NULL) {
        part_drop(WA_LIST_ENTRY(it, struct part, link));
    }
    while ((it = wa_list_first(&c->live)) != NULL) { /* the application never handed these back */
        struct kmsg *m = WA_LIST_ENTRY(it, struct kmsg, live);

        wa_list_remove(it);
        rd_kafka_message_destroy(m->rkm);
        free(m);
    }
    if (c->queue != NULL) {
        rd_kafka_queue_destroy(c->queue);
    }
    if (c->rk != NULL) {
        rd_kafka_destroy(c->rk);
    }
    free(c);
}
