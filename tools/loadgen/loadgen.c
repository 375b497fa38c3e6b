/*
 * wa-loadgen: a tiny closed-loop HTTP/1.1 load generator for the benchmarks.
 *
 * N keep-alive connections on one epoll thread; each sends one POST, reads the whole response
 * (Content-Length framing), counts its status and sends the next, for D seconds. Recipients
 * vary per request ("to": base + counter) so per-user limits do not dominate.
 * With -g COUNT it sends GETs instead: "{n}" in the path is replaced by the request counter
 * modulo COUNT, zero-padded to the width of COUNT - 1 (-p '/v1/contacts/+1555200{n}' -g 10000
 * reads +15552000000 .. +15552009999 in turn; -g 1 reads one resource again and again).
 * Usage: wa-loadgen [-c conns] [-d seconds] [-p path] [-t token] [-g count] host:port
 * Prints: requests, seconds, requests/s, and counts per HTTP status.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lg_http.h"

#define MAX_CONNS 1024

struct conn {
    int fd;
    char in[16384];
    size_t inlen;
};

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long counter;
static unsigned long get_count; /* -g: GETs over this many paths; 0: POST */

/* GET path with "{n}" replaced (see the header); the rest of the path as is. */
static int
send_get(struct conn *c, const char *host, const char *path, const char *token)
{
    char req[1024], num[32];
    const char *mark = strstr(path, "{n}");
    int width = snprintf(num, sizeof(num), "%lu", get_count - 1), rlen;

    snprintf(num, sizeof(num), "%0*lu", width, counter++ % get_count);
    rlen = snprintf(req, sizeof(req),
                    "GET %.*s%s%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n",
                    mark != NULL ? (int)(mark - path) : (int)strlen(path), path,
                    mark != NULL ? num : "", mark != NULL ? mark + 3 : "", host, token);
    return rlen > 0 && rlen < (int)sizeof(req) && write(c->fd, req, (size_t)rlen) == rlen ? 0 : -1;
}

static int
send_req(struct conn *c, const char *host, const char *path, const char *token)
{
    char body[256], req[1024];
    int blen, rlen;

    if (get_count > 0) {
        return send_get(c, host, path, token);
    }
    blen = snprintf(body, sizeof(body),
                    "{\"messaging_product\":\"whatsapp\",\"to\":\"+1650%07lu\",\"type\":\"text\","
                    "\"text\":{\"body\":\"load test message\"}}",
                    counter++ % 10000000ul);
    rlen = snprintf(req, sizeof(req),
                    "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                    "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                    path, host, token, blen, body);
    return write(c->fd, req, (size_t)rlen) == rlen ? 0 : -1;
}

/* Returns the status when a whole response is buffered (and consumes it), else 0. */
static int
take_response(struct conn *c)
{
    return lg_take_response(c->in, &c->inlen, sizeof(c->in));
}

int
main(int argc, char **argv)
{
    int conns = 64, opt, ep;
    double dur = 10, start, end;
    const char *path = "/v21.0/100000000000001/messages", *token = "sandbox-token", *target;
    static struct conn cs[MAX_CONNS];
    unsigned long statuses[600] = {0}, total = 0;
    char host[128];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char *colon;

    while ((opt = getopt(argc, argv, "c:d:p:t:g:")) != -1) {
        switch (opt) {
        case 'c':
            conns = (int)strtol(optarg, NULL, 10);
            break;
        case 'd':
            dur = strtod(optarg, NULL);
            break;
        case 'p':
            path = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 'g':
            get_count = strtoul(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr,
                    "usage: %s [-c conns] [-d seconds] [-p path] [-t token] [-g count] "
                    "host:port\n",
                    argv[0]);
            return 2;
        }
    }
    if (optind >= argc || conns < 1 || conns > MAX_CONNS) {
        fprintf(stderr, "usage: %s [-c conns] [-d seconds] [-p path] [-t token] host:port\n",
                argv[0]);
        return 2;
    }
    target = argv[optind];
    snprintf(host, sizeof(host), "%s", target);
    colon = strrchr(host, ':');
    if (colon == NULL) {
        return 2;
    }
    *colon = '\0';
    sa.sin_port = htons((unsigned short)strtol(colon + 1, NULL, 10));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "host must be an IPv4 address\n");
        return 2;
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
        send_req(&cs[i], target, path, token);
    }
    start = now_s();
    end = start + dur;
    while (now_s() < end) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 100);

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
                statuses[st < 600 ? st : 599]++;
                total++;
                send_req(c, target, path, token);
            }
        }
    }
    end = now_s();
    printf("requests %lu in %.2f s: %.0f requests/s with %d connections\n", total, end - start,
           (double)total / (end - start), conns);
    for (int i = 0; i < 600; i++) {
        if (statuses[i] != 0) {
            printf("  HTTP %d: %lu\n", i, statuses[i]);
        }
    }
    return 0;
}
