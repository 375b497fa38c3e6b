/*
 * wa-ingest-loadgen: load generator for wa-ingest's POST /webhook (make bench).
 *
 * Sends realistic Meta webhooks (one inbound text message with contact profile and metadata,
 * or a delivered status, alternating) with a unique wamid each, signed with
 * X-Hub-Signature-256, over keep-alive HTTP/1.1 connections driven by one epoll thread.
 * Built to stay out of the way of the server it measures (they share the machine): the two
 * request templates are formatted once and only their fixed-width counters are patched per
 * request, and the HMAC key is set up once (libs/crypto's struct wa_hmac).
 *
 * Two modes:
 *   -r RATE  open loop: requests are scheduled at RATE per second whatever the server does;
 *            latency is measured from the scheduled send time, so queueing in front of a slow
 *            server counts (no coordinated omission). A request waits for an idle connection.
 *   -r 0     saturation: every connection sends its next request as soon as the previous
 *            answer arrived (closed loop); reports the throughput reached.
 * Prints one line: mode, offered rate, sent, 200s, other statuses, errors, requests/s,
 * latency p50/p99/p99.9/max in ms. Exit status 1 when any answer was not 200 or a connection
 * failed (requests still unanswered at the end of an overloaded open-loop run are not errors:
 * the throughput figure shows them).
 *
 * For end-to-end benchmarks (bench.d/40-router.sh): -t TEXT sends only inbound text messages
 * with that body (each from a new customer: wa_id <prefix><7-digit counter>, -p sets the 4-digit
 * prefix, default 1555), and -l FILE writes one line per measured request, "<wa_id>
 * <scheduled send time, wall clock µs>", so a later stage's own timestamps can be subtracted.
 *
 * Usage: wa-ingest-loadgen [-c conns] [-d seconds] [-r rate] [-s secret] [-w warmup_s]
 *                          [-t text -p prefix -l file] host:port
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wa/crypto.h"

#define MAX_CONNS 512

struct conn {
    int fd;
    bool busy;
    uint64_t sched_us; /* scheduled (open loop) or sent (closed loop) time of the request */
    char out[4096];
    size_t outlen, outoff;
    char in[8192];
    size_t inlen;
};

struct stats {
    uint64_t *lat; /* microseconds */
    size_t nlat, caplat;
    uint64_t sent, ok, other, errors;
};

static struct sockaddr_in target;
static const char *secret = "sandbox-secret";
static char host_header[96];
static uint64_t seq;
static char run_id[16];
static const char *only_text; /* -t: inbound text messages only, with this body */
static const char *wa_prefix = "1555";
static FILE *send_log;          /* -l */
static int64_t wall_minus_mono; /* µs: wall clock = monotonic + this */

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One request template: the whole HTTP request with its body; per request, the counter
 * fields (fixed width) in the body are overwritten and the signature is recomputed. */
struct tmpl {
    char text[4096];
    size_t len;
    size_t body_off, body_len;
    size_t sig_off; /* the 64 hex digits after "sha256=" */
    size_t fields[4];
    size_t widths[4];
    size_t nfields;
};

static struct tmpl tmpls[2];
static struct wa_hmac *mac_ctx;

/* Marks every run of '#' (the placeholders) in t's body as a counter field. */
static void
tmpl_fields(struct tmpl *t)
{
    char *body = t->text + t->body_off;

    for (size_t i = 0; i < t->body_len && t->nfields < 4; i++) {
        if (body[i] == '#') {
            size_t w = 0;

            while (i + w < t->body_len && body[i + w] == '#') {
                w++;
            }
            t->fields[t->nfields] = t->body_off + i;
            t->widths[t->nfields++] = w;
            i += w;
        }
    }
}

static void
tmpl_make(struct tmpl *t, const char *body)
{
    size_t blen = strlen(body);
    char *p;

    t->len = (size_t)snprintf(t->text, sizeof(t->text),
                              "POST /webhook HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                              "application/json\r\nX-Hub-Signature-256: sha256=%064d\r\n"
                              "Content-Length: %zu\r\n\r\n%s",
                              host_header, 0, blen, body);
    p = strstr(t->text, "sha256=");
    t->sig_off = (size_t)(p - t->text) + 7;
    t->body_len = blen;
    t->body_off = t->len - blen;
    tmpl_fields(t);
}

static void
templates_init(void)
{
    char body[2048];

    if (wa_hmac_new(secret, strlen(secret), &mac_ctx) != WA_OK) {
        fprintf(stderr, "cannot set up HMAC-SHA256\n");
        exit(1);
    }
    /* Counters: profile name (3), wa_id (7), wamid (12), order number (12) / wamid (12),
     * recipient (7), callback data (12). */
    snprintf(body, sizeof(body),
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"200000000000001\","
             "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550000001\",\"phone_number_id\":\"100000000000001\"},"
             "\"contacts\":[{\"profile\":{\"name\":\"Load Tester ###\"},\"wa_id\":\"%s#######\"}],"
             "\"messages\":[{\"from\":\"%s#######\",\"id\":\"wamid.HBgL%s############\","
             "\"timestamp\":\"%lld\",\"text\":{\"body\":\"%s\"},\"type\":"
             "\"text\"}]},\"field\":\"messages\"}]}]}",
             wa_prefix, wa_prefix, run_id,
             (long long)time(NULL), /* now: the reply window is open */
             only_text != NULL ? only_text
                               : "Hello, I would like to know the status of my order number "
                                 "############, caf\\u00e9 \\ud83d\\ude00");
    tmpl_make(&tmpls[0], body);
    snprintf(body, sizeof(body),
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"200000000000001\","
             "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550000001\",\"phone_number_id\":\"100000000000001\"},"
             "\"statuses\":[{\"id\":\"wamid.HBgL%s############\",\"status\":\"delivered\","
             "\"timestamp\":\"1750030073\",\"recipient_id\":\"1555#######\","
             "\"biz_opaque_callback_data\":\"req-############\",\"pricing\":{\"billable\":true,"
             "\"pricing_model\":\"PMP\",\"type\":\"regular\",\"category\":\"utility\"}}]},"
             "\"field\":\"messages\"}]}]}",
             run_id);
    tmpl_make(&tmpls[1], body);
}

/* Writes v into the w characters at p, zero-padded (the low digits when v is wider). */
static void
put_digits(char *p, size_t w, uint64_t v)
{
    while (w > 0) {
        p[--w] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Builds the next request (headers + signed body) into c->out. */
static void
build(struct conn *c)
{
    uint64_t n = seq++;
    const struct tmpl *t = &tmpls[only_text != NULL ? 0 : n % 2];
    char sig[WA_HUB_SIGNATURE_LEN];
    char *out = c->out;

    memcpy(out, t->text, t->len);
    for (size_t i = 0; i < t->nfields; i++) {
        /* every field is a counter of this request: n itself, or n modulo its width */
        put_digits(out + t->fields[i], t->widths[i], n);
    }
    wa_hmac_hub_signature(mac_ctx, out + t->body_off, t->body_len, sig);
    /* the template holds "sha256=" already: only the 64 digits change */
    memcpy(out + t->sig_off, sig + 7, 64);
    c->outlen = t->len;
    c->outoff = 0;
    c->inlen = 0;
}

static int
dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0) {
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&target, sizeof(target)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void
record(struct stats *st, uint64_t lat)
{
    if (st->nlat == st->caplat) {
        st->caplat = st->caplat ? st->caplat * 2 : 65536;
        st->lat = realloc(st->lat, st->caplat * sizeof(*st->lat));
        if (st->lat == NULL) {
            abort();
        }
    }
    st->lat[st->nlat++] = lat;
}

/* Returns 1 when a whole response is in c->in (status in *status), 0 when more is needed,
 * -1 when it is malformed. */
static int
parse(struct conn *c, int *status, bool *close_after)
{
    char *end, *cl;
    size_t hdr, clen = 0;

    c->in[c->inlen < sizeof(c->in) ? c->inlen : sizeof(c->in) - 1] = '\0';
    end = strstr(c->in, "\r\n\r\n");
    if (end == NULL) {
        return c->inlen >= sizeof(c->in) - 1 ? -1 : 0;
    }
    hdr = (size_t)(end - c->in) + 4;
    if (sscanf(c->in, "HTTP/1.%*d %d", status) != 1) {
        return -1;
    }
    cl = strcasestr(c->in, "\r\nContent-Length:");
    if (cl != NULL && cl < end) {
        clen = (size_t)strtoul(cl + 17, NULL, 10);
    }
    *close_after = strcasestr(c->in, "\r\nConnection: close") != NULL;
    return c->inlen >= hdr + clen ? 1 : 0;
}

static int
compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static double
pct(const struct stats *st, double p)
{
    size_t i;

    if (st->nlat == 0) {
        return 0;
    }
    i = (size_t)(p / 100.0 * (double)(st->nlat - 1) + 0.5);
    return (double)st->lat[i] / 1000.0;
}

int
main(int argc, char **argv)
{
    int conns = 64, seconds = 10, warmup = 1, opt, ep;
    double rate = 0;
    struct conn *cs;
    struct stats st = {0};
    struct epoll_event evs[MAX_CONNS];
    uint64_t start, end, warm_end, next_sched, interval_ns = 0, backlog = 0;
    char host[64];
    int port;

    while ((opt = getopt(argc, argv, "c:d:r:s:w:t:p:l:")) != -1) {
        switch (opt) {
        case 'c':
            conns = (int)strtol(optarg, NULL, 10);
            break;
        case 'd':
            seconds = (int)strtol(optarg, NULL, 10);
            break;
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        case 's':
            secret = optarg;
            break;
        case 'w':
            warmup = (int)strtol(optarg, NULL, 10);
            break;
        case 't':
            only_text = optarg;
            break;
        case 'p':
            wa_prefix = optarg;
            break;
        case 'l':
            if ((send_log = fopen(optarg, "w")) == NULL) {
                fprintf(stderr, "%s: cannot write %s\n", argv[0], optarg);
                return 2;
            }
            break;
        default:
            fprintf(stderr,
                    "usage: %s [-c conns] [-d s] [-r rate|0] [-s secret] [-w warmup_s] "
                    "[-t text -p prefix -l file] host:port\n",
                    argv[0]);
            return 2;
        }
    }
    if (only_text != NULL && (strlen(wa_prefix) != 4 || strspn(wa_prefix, "0123456789") != 4 ||
                              strpbrk(only_text, "\"\\") != NULL || strlen(only_text) > 512)) {
        fprintf(stderr, "%s: -p takes 4 digits; -t text without quotes or backslashes\n", argv[0]);
        return 2;
    }
    if (optind >= argc || sscanf(argv[optind], "%63[^:]:%d", host, &port) != 2 || conns < 1 ||
        conns > MAX_CONNS || seconds < 1) {
        fprintf(stderr, "%s: need host:port (and 1..%d connections)\n", argv[0], MAX_CONNS);
        return 2;
    }
    snprintf(host_header, sizeof(host_header), "%s:%d", host, port);
    snprintf(run_id, sizeof(run_id), "%08lx", (unsigned long)(now_us() & 0xffffffffu));
    {
        struct timespec w;

        clock_gettime(CLOCK_REALTIME, &w);
        wall_minus_mono = ((int64_t)w.tv_sec * 1000000 + w.tv_nsec / 1000) - (int64_t)now_us();
    }
    templates_init();
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &target.sin_addr);
    ep = epoll_create1(EPOLL_CLOEXEC);
    cs = calloc((size_t)conns, sizeof(*cs));
    for (int i = 0; i < conns; i++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = (uint32_t)i};

        cs[i].fd = dial();
        if (cs[i].fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0) {
            fprintf(stderr, "cannot connect to %s\n", argv[optind]);
            return 1;
        }
    }
    if (rate > 0) {
        interval_ns = (uint64_t)(1e9 / rate);
    }
    start = now_us();
    warm_end = start + (uint64_t)warmup * 1000000u;
    end = warm_end + (uint64_t)seconds * 1000000u;
    next_sched = start;
    for (;;) {
        uint64_t t = now_us();
        int n;

        if (t >= end) {
            break;
        }
        /* Open loop: requests due by now join the backlog; idle connections take them. */
        if (rate > 0) {
            while (next_sched <= t) {
                backlog++;
                next_sched += interval_ns / 1000u;
            }
        }
        for (int i = 0; i < conns; i++) {
            struct conn *c = &cs[i];

            if (c->busy || c->fd < 0 || (rate > 0 && backlog == 0)) {
                continue;
            }
            build(c);
            c->busy = true;
            if (rate > 0) {
                /* The oldest due request: its scheduled time. */
                c->sched_us = next_sched - backlog * (interval_ns / 1000u);
                backlog--;
            } else {
                c->sched_us = t;
            }
            st.sent += c->sched_us >= warm_end;
            if (send_log != NULL && c->sched_us >= warm_end) {
                fprintf(send_log, "%s%07llu %lld\n", wa_prefix,
                        (unsigned long long)((seq - 1) % 10000000u),
                        (long long)((int64_t)c->sched_us + wall_minus_mono));
            }
            {
                ssize_t w = write(c->fd, c->out, c->outlen);

                if (w > 0) {
                    c->outoff = (size_t)w;
                } else if (w < 0 && errno != EAGAIN) {
                    st.errors++;
                    c->busy = false;
                }
            }
        }
        /* Wake for the next scheduled request to the microsecond: a millisecond-granular
         * timeout would send up to 1 ms late and count that as the server's latency. */
        {
            uint64_t wait_us = 1000u; /* at most 1 ms asleep: answers are read promptly anyway */
            struct timespec ts;

            if (rate > 0 && backlog == 0) {
                uint64_t now = now_us();

                wait_us = next_sched > now ? next_sched - now : 0;
                if (wait_us > 1000u) {
                    wait_us = 1000u;
                }
            }
            ts.tv_sec = 0;
            ts.tv_nsec = (long)(wait_us * 1000u);
            n = epoll_pwait2(ep, evs, MAX_CONNS, &ts, NULL);
        }
        for (int k = 0; k < n; k++) {
            struct conn *c = &cs[evs[k].data.u32];
            int status = 0, rc;
            bool close_after = false;

            if (c->busy && c->outoff < c->outlen) {
                ssize_t w = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);

                if (w > 0) {
                    c->outoff += (size_t)w;
                }
            }
            for (;;) {
                ssize_t r = read(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen);

                if (r <= 0) {
                    if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                        close_after = true;
                        if (c->busy) {
                            st.errors++;
                            c->busy = false;
                        }
                        goto reconnect;
                    }
                    break;
                }
                c->inlen += (size_t)r;
            }
            if (!c->busy) {
                continue;
            }
            rc = parse(c, &status, &close_after);
            if (rc == 0) {
                continue;
            }
            if (rc < 0) {
                st.errors++;
            } else {
                uint64_t done = now_us();

                if (c->sched_us >= warm_end) {
                    record(&st, done - c->sched_us);
                    if (status == 200) {
                        st.ok++;
                    } else {
                        st.other++;
                    }
                }
            }
            c->busy = false;
            c->inlen = 0;
            if (!close_after && rc > 0) {
                continue;
            }
        reconnect:
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = dial();
            if (c->fd >= 0) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                                         .data.u32 = evs[k].data.u32};

                epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            }
        }
    }
    qsort(st.lat, st.nlat, sizeof(*st.lat), compare_u64);
    {
        double secs = (double)seconds;
        double answered = (double)(st.ok + st.other);

        printf("wa-ingest bench: mode=%s offered=%.0f/s conns=%d sent=%llu ok=%llu other=%llu "
               "errors=%llu throughput=%.0f req/s p50=%.2fms p99=%.2fms p99.9=%.2fms max=%.2fms\n",
               rate > 0 ? "open" : "saturation", rate, conns, (unsigned long long)st.sent,
               (unsigned long long)st.ok, (unsigned long long)st.other,
               (unsigned long long)st.errors, answered / secs, pct(&st, 50), pct(&st, 99),
               pct(&st, 99.9), st.nlat ? (double)st.lat[st.nlat - 1] / 1000.0 : 0.0);
        free(st.lat);
        free(cs);
        wa_hmac_free(mac_ctx);
        if (send_log != NULL) {
            fclose(send_log);
        }
        close(ep);
        return st.ok > 0 && st.other == 0 && st.errors == 0 ? 0 : 1;
    }
}
