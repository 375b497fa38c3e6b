/*
 * wa-gateway-loadgen: POST /v1/messages against wa-gateway for make bench (bench.d/50-gateway.sh).
 *
 * N keep-alive connections on one epoll thread. Each request is a text message to a varying
 * recipient with the API key as Bearer and, with -i, a unique Idempotency-Key, so every request
 * goes the whole way: key check, rate limit, idempotency claim, Kafka acks=all, record.
 *   closed loop (no -r): each connection sends its next request when the answer arrives
 *   open loop (-r rate): requests are due at start + i / rate; a due request waits for an idle
 *   connection, and its latency counts from when it was due (no coordinated omission).
 * Usage: wa-gateway-loadgen -k KEY [-c conns] [-d seconds] [-r rate] [-i] host:port
 * Prints: requests, accepted (202) per second, counts per status, latency p50/p99/p99.9.
 */
#include <arpa/inet.h>
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

#include "lg_http.h"

#define MAX_CONNS 1024
#define MAX_LAT   (1u << 22) /* latencies kept (µs) */

struct conn {
    int fd;
    bool busy;
    uint64_t due_us; /* when the request in flight was due (or sent, closed loop) */
    char in[16384];
    size_t inlen;
};

static uint64_t *lat;
static size_t nlat;
static unsigned long counter;

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int
send_req(struct conn *c, const char *host, const char *key, bool idem, uint64_t due)
{
    char body[256], extra[96] = "", req[1024];
    int blen, rlen;
    unsigned long n = counter++;

    blen = snprintf(body, sizeof(body),
                    "{\"to\":\"+1650%07lu\",\"type\":\"text\",\"text\":{\"body\":\"load test\"}}",
                    n % 10000000ul);
    if (idem) {
        snprintf(extra, sizeof(extra), "Idempotency-Key: bench-%d-%lu\r\n", (int)getpid(), n);
    }
    rlen = snprintf(req, sizeof(req),
                    "POST /v1/messages HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n%s"
                    "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                    host, key, extra, blen, body);
    c->busy = true;
    c->due_us = due;
    return write(c->fd, req, (size_t)rlen) == rlen ? 0 : -1;
}

/* Returns the status when a whole response is buffered (and consumes it), else 0. */
static int
take_response(struct conn *c)
{
    return lg_take_response(c->in, &c->inlen, sizeof(c->in));
}

static int
cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static double
pct(double p)
{
    size_t i = (size_t)(p / 100.0 * (double)(nlat - 1) + 0.5);

    return nlat == 0 ? 0 : (double)lat[i < nlat ? i : nlat - 1] / 1000.0;
}

static int
usage(const char *argv0)
{
    fprintf(stderr, "usage: %s -k KEY [-c conns] [-d seconds] [-r rate] [-i] host:port\n", argv0);
    return 2;
}

int
main(int argc, char **argv)
{
    int conns = 64, opt, ep;
    double dur = 10, rate = 0;
    const char *key = NULL, *target;
    bool idem = false;
    static struct conn cs[MAX_CONNS];
    unsigned long statuses[600] = {0}, total = 0, sent = 0;
    char host[128];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char *colon;
    uint64_t start, end, t;

    while ((opt = getopt(argc, argv, "c:d:r:k:i")) != -1) {
        switch (opt) {
        case 'c':
            conns = (int)strtol(optarg, NULL, 10);
            break;
        case 'd':
            dur = strtod(optarg, NULL);
            break;
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        case 'k':
            key = optarg;
            break;
        case 'i':
            idem = true;
            break;
        default:
            return usage(argv[0]);
        }
    }
    if (optind >= argc || key == NULL || conns < 1 || conns > MAX_CONNS || dur <= 0 || rate < 0) {
        return usage(argv[0]);
    }
    target = argv[optind];
    snprintf(host, sizeof(host), "%s", target);
    if ((colon = strrchr(host, ':')) == NULL) {
        return usage(argv[0]);
    }
    *colon = '\0';
    sa.sin_port = htons((unsigned short)strtol(colon + 1, NULL, 10));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "host must be an IPv4 address\n");
        return 2;
    }
    if ((lat = malloc(MAX_LAT * sizeof(*lat))) == NULL) {
        return 1;
    }
    ep = epoll_create1(0);
    for (int i = 0; i < conns; i++) {
        int one = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};

        cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(cs[i].fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            perror("connect");
            return 1;
        }
        setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    start = now_us();
    end = start + (uint64_t)(dur * 1e6);
    for (int i = 0; rate == 0 && i < conns; i++) {
        send_req(&cs[i], target, key, idem, now_us());
    }
    while ((t = now_us()) < end) {
        struct epoll_event evs[256];
        int n;

        /* open loop: every request due by now goes out on an idle connection */
        while (rate > 0) {
            uint64_t due = start + (uint64_t)((double)sent * 1e6 / rate);
            int idle = -1;

            if (due > t) {
                break;
            }
            for (int i = 0; i < conns && idle < 0; i++) {
                idle = cs[i].busy ? -1 : i;
            }
            if (idle < 0) {
                break; /* it waits; its latency still counts from due */
            }
            send_req(&cs[idle], target, key, idem, due);
            sent++;
        }
        n = epoll_wait(ep, evs, 256, rate > 0 ? 1 : 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen);
            int st;

            if (r <= 0) {
                fprintf(stderr, "connection closed by server\n");
                return 1;
            }
            c->inlen += (size_t)r;
            while ((st = take_response(c)) > 0) {
                uint64_t now = now_us();

                statuses[st < 600 ? st : 599]++;
                total++;
                if (nlat < MAX_LAT) {
                    lat[nlat++] = now - c->due_us;
                }
                c->busy = false;
                if (rate == 0 && now < end) {
                    send_req(c, target, key, idem, now);
                }
            }
        }
    }
    t = now_us();
    qsort(lat, nlat, sizeof(*lat), cmp);
    printf("requests %lu in %.2f s (%s, %d connections%s): %.0f accepted/s; latency ms p50 %.2f "
           "p99 %.2f p99.9 %.2f\n",
           total, (double)(t - start) / 1e6, rate > 0 ? "open loop" : "closed loop", conns,
           idem ? ", Idempotency-Key each" : "",
           (double)statuses[202] / ((double)(t - start) / 1e6), pct(50), pct(99), pct(99.9));
    for (int i = 0; i < 600; i++) {
        if (statuses[i] != 0) {
            printf("  HTTP %d: %lu\n", i, statuses[i]);
        }
    }
    free(lat);
    return statuses[202] > 0 ? 0 : 1;
}
