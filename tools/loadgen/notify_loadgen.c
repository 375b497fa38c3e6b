/*
 * notify_loadgen.c: wa-notify-loadgen, the load generator of wa-notify's benchmark
 * (deploy/local/bench.d/30-notify.sh). Produces outbound.request CloudEvents (template
 * messages to distinct recipients, so no window or pair limit applies) either as fast as
 * possible or at a fixed offered rate, waits until wa-cloudsim accepted them all, then reads
 * GET /_sim/messages and prints: sends/s (first to last accepted send), the send rate over the
 * first --window seconds (pacing accuracy), and request-to-send latency p50/p99/max (the
 * request_id carries the produce time; the simulator records each send's time, ms resolution).
 *
 * Usage: wa-notify-loadgen --brokers B --prefix P --sim URL --n N [--rate R] [--window S]
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/clock.h"
#include "wa/cloudevent.h"
#include "wa/contract_outbound.h"
#include "wa/json.h"
#include "wa/kafka.h"
#include "wa/log.h"
#include "wa/loop.h"

struct gen {
    struct wa_loop *loop;
    struct wa_kafka_producer *p;
    char topic[256];
    long n, sent, acked, rate;
    uint64_t t0;
    struct wa_timer *timer;
    char run[32];
};

static size_t
on_body(char *ptr, size_t size, size_t n, void *arg)
{
    return wa_buf_append(arg, ptr, size * n) == WA_OK ? size * n : 0;
}

static json_t *
get_json(const char *url)
{
    CURL *c = curl_easy_init();
    struct wa_buf b;
    json_t *root = NULL;

    wa_buf_init(&b, 0);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (curl_easy_perform(c) == CURLE_OK) {
        (void)wa_json_parse(b.data, b.len, 0, &root, NULL);
    }
    curl_easy_cleanup(c);
    wa_buf_cleanup(&b);
    return root;
}

static void
on_ack(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct gen *g = arg;

    (void)partition;
    (void)offset;
    if (err != WA_OK) {
        fprintf(stderr, "produce failed: %s\n", wa_err_name(err));
    }
    g->acked++;
}

static void
produce_one(struct gen *g)
{
    char id[64], to[32], key[64];
    json_t *d;
    struct wa_cloudevent ev;

    snprintf(id, sizeof(id), "lg%s-%ld-%llu", g->run, g->sent,
             (unsigned long long)wa_clock_wall_ms());
    snprintf(to, sizeof(to), "1888%07ld", g->sent);
    snprintf(key, sizeof(key), "100000000000001:%s", to);
    d = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:{s:s}}}", "request_id", id, "phone_number_id",
                  "100000000000001", "to", to, "type", "template", "template", "name",
                  "hello_world", "language", "code", "en_US");
    wa_cloudevent_init(&ev, "wa-notify-loadgen", WA_CE_TYPE_OUTBOUND_REQUEST);
    ev.subject = key;
    ev.data = d;
    while (wa_kafka_produce_event(g->p, g->topic, &ev, on_ack, g) == WA_EAGAIN) {
        (void)wa_kafka_producer_flush(g->p, 10);
    }
    json_decref(d);
    g->sent++;
}

static void
on_tick(struct wa_timer *t, void *arg)
{
    struct gen *g = arg;
    long due = g->rate > 0 ? (long)((wa_clock_mono_ms() - g->t0) * (uint64_t)g->rate / 1000) : g->n;

    (void)t;
    while (g->sent < due && g->sent < g->n) {
        produce_one(g);
    }
    if (g->sent >= g->n) {
        wa_timer_stop(g->timer);
        wa_loop_stop(g->loop);
    }
}

static bool
ready_tick(struct gen *g, uint64_t ms)
{
    uint64_t end = wa_clock_mono_ms() + ms;

    (void)g;
    while (wa_clock_mono_ms() < end) {
        struct timespec ts = {0, 10000000};

        nanosleep(&ts, NULL);
    }
    return true;
}

/* Accepted sends at the simulator so far (its history total). */
static long
sim_total(const char *sim)
{
    char url[512];
    json_t *all;
    long total;

    snprintf(url, sizeof(url), "%s/_sim/messages?limit=1", sim);
    all = get_json(url);
    total = (long)json_integer_value(json_object_get(all, "total"));
    json_decref(all);
    return total;
}

static int
cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    const char *brokers = NULL, *prefix = "wa.", *sim = NULL;
    struct gen g = {0};
    struct wa_kafka_config kcfg = {0};
    long window = 10, total = 0, base_total = 0;
    char url[512];
    json_t *msgs = NULL, *m;
    long long *lat, tmin = -1, tmax = -1;
    size_t i, nl = 0;

    for (int i2 = 1; i2 + 1 < argc; i2 += 2) {
        if (strcmp(argv[i2], "--brokers") == 0) {
            brokers = argv[i2 + 1];
        } else if (strcmp(argv[i2], "--prefix") == 0) {
            prefix = argv[i2 + 1];
        } else if (strcmp(argv[i2], "--sim") == 0) {
            sim = argv[i2 + 1];
        } else if (strcmp(argv[i2], "--n") == 0) {
            g.n = strtol(argv[i2 + 1], NULL, 10);
        } else if (strcmp(argv[i2], "--rate") == 0) {
            g.rate = strtol(argv[i2 + 1], NULL, 10);
        } else if (strcmp(argv[i2], "--window") == 0) {
            window = strtol(argv[i2 + 1], NULL, 10);
        }
    }
    if (brokers == NULL || sim == NULL || g.n <= 0) {
        fprintf(stderr,
                "usage: %s --brokers B --prefix P --sim URL --n N [--rate R] "
                "[--window S]\n",
                argv[0]);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    wa_log_init("wa-notify-loadgen", WA_LOG_WARN);
    snprintf(g.run, sizeof(g.run), "%llu", (unsigned long long)(wa_clock_wall_ms() % 1000000));
    kcfg.brokers = brokers;
    kcfg.linger_us = 1000;
    snprintf(g.topic, sizeof(g.topic), "%soutbound.request", prefix);
    if (wa_loop_new(&g.loop) != WA_OK ||
        wa_kafka_producer_new(g.loop, &kcfg, &g.p, NULL) != WA_OK ||
        (g.timer = wa_timer_new(g.loop, on_tick, &g)) == NULL) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    /* Warm-up: one request through the whole path (producer connected, consumer group joined,
     * connections open) before the measured run starts; it does not count. */
    {
        long n = g.n, base;
        char run[32];

        memcpy(run, g.run, sizeof(run));
        snprintf(g.run, sizeof(g.run), "w%.20s", run);
        g.n = g.sent + 1;
        base = sim_total(sim);
        produce_one(&g);
        (void)wa_kafka_producer_flush(g.p, 30000);
        for (int tries = 0; tries < 600 && sim_total(sim) <= base; tries++) {
            ready_tick(&g, 100);
        }
        memcpy(g.run, run, sizeof(run));
        g.n = n;
        g.sent = 0;
        base_total = sim_total(sim);
    }
    g.t0 = wa_clock_mono_ms();
    wa_timer_start(g.timer, 1, 2);
    (void)wa_loop_run(g.loop);
    (void)wa_kafka_producer_flush(g.p, 30000);
    /* wait until the simulator accepted every request of this run */
    for (int tries = 0; tries < 1200 && (total = sim_total(sim) - base_total) < g.n; tries++) {
        ready_tick(&g, 100);
    }
    snprintf(url, sizeof(url), "%s/_sim/messages?limit=100000", sim);
    msgs = get_json(url);
    lat = calloc((size_t)g.n + 1, sizeof(*lat));
    json_array_foreach(json_object_get(msgs, "data"), i, m)
    {
        const char *biz = wa_json_str(m, "biz_opaque_callback_data");
        char pfx[48];
        int64_t t = 0;
        const char *dash;

        snprintf(pfx, sizeof(pfx), "lg%s-", g.run);
        if (biz == NULL || strncmp(biz, pfx, strlen(pfx)) != 0 ||
            wa_contract_time_parse(wa_json_str(m, "time"), &t) != WA_OK || nl >= (size_t)g.n) {
            continue;
        }
        dash = strrchr(biz, '-');
        lat[nl++] = (long long)t - strtoll(dash + 1, NULL, 10);
        tmin = tmin < 0 || t < tmin ? t : tmin;
        tmax = t > tmax ? t : tmax;
    }
    {
        long in_window = 0;

        json_array_foreach(json_object_get(msgs, "data"), i, m)
        {
            const char *biz = wa_json_str(m, "biz_opaque_callback_data");
            char pfx[48];
            int64_t t = 0;

            snprintf(pfx, sizeof(pfx), "lg%s-", g.run);
            if (biz != NULL && strncmp(biz, pfx, strlen(pfx)) == 0 &&
                wa_contract_time_parse(wa_json_str(m, "time"), &t) == WA_OK && t >= tmin &&
                t < tmin + window * 1000) {
                in_window++;
            }
        }
        qsort(lat, nl, sizeof(*lat), cmp);
        printf("requests %ld sent %zu span_ms %lld sends_per_s %.0f rate_first_%lds %.2f "
               "latency_ms p50 %lld p99 %lld max %lld\n",
               g.n, nl, tmax - tmin,
               tmax > tmin ? (double)(nl - 1) * 1000.0 / (double)(tmax - tmin) : 0.0, window,
               (double)in_window / (double)window, nl > 0 ? lat[nl / 2] : -1,
               nl > 0 ? lat[(nl * 99) / 100] : -1, nl > 0 ? lat[nl - 1] : -1);
    }
    free(lat);
    json_decref(msgs);
    wa_timer_free(g.timer);
    wa_kafka_producer_free(g.p);
    wa_loop_free(g.loop);
    curl_global_cleanup();
    return nl >= (size_t)g.n ? 0 : 1;
}
