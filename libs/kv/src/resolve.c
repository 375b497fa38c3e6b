/*
 * resolve.c: host names resolved off the loop thread.
 *
 * hiredis 0.14's redisAsyncConnect() calls a blocking getaddrinfo() for a host name, on the
 * loop thread, at every (re)connect: with Redis addressed by a service name (Kubernetes,
 * docker-compose) a slow or unreachable DNS server would stall every webhook and send of the
 * daemon for seconds. kv.c therefore hands hiredis numeric addresses only, and a name is
 * resolved here, on a small thread of its own.
 *
 * Shape: one detached thread per client, one request at a time. The loop thread writes the
 * host and signals; the thread runs getaddrinfo(), stores the first address as text and writes
 * to an eventfd the loop watches. The state is shared and reference counted (the loop side and
 * the thread), so kv_resolver_release() never waits: a thread stuck in getaddrinfo() finishes
 * on its own time, finds itself alone and frees the state (the eventfd included), touching
 * neither the client nor the loop.
 */
#include "resolve.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

enum job { JOB_IDLE, JOB_ASKED, JOB_DONE };

struct kv_resolver {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs; /* the loop side and the thread */
    bool stop;
    enum job job;
    char host[256];
    char addr[INET6_ADDRSTRLEN];
    char error[128];
    int efd;
};

static void
unref(struct kv_resolver *r)
{
    bool last;

    pthread_mutex_lock(&r->mu);
    last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) {
        close(r->efd);
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
    }
}

/* getaddrinfo() for host; the first IPv4 address (else the first IPv6 one) as text in addr,
 * or a reason in error. IPv4 first: "localhost" often lists ::1 first while Redis listens on
 * 127.0.0.1 only, and hiredis is given one address. */
static void
lookup(const char *host, char *addr, size_t addrlen, char *error, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    const void *src = NULL;

    addr[0] = '\0';
    error[0] = '\0';
    if (rc != 0) {
        snprintf(error, errlen, "%s", gai_strerror(rc));
        return;
    }
    for (int family = AF_INET; src == NULL; family = AF_INET6) {
        for (const struct addrinfo *ai = res; ai != NULL && src == NULL; ai = ai->ai_next) {
            if (ai->ai_family != family) {
                continue;
            }
            src = family == AF_INET
                      ? (const void *)&((const struct sockaddr_in *)(const void *)ai->ai_addr)
                            ->sin_addr
                      : (const void *)&((const struct sockaddr_in6 *)(const void *)ai->ai_addr)
                            ->sin6_addr;
            if (inet_ntop(family, src, addr, (socklen_t)addrlen) == NULL) {
                src = NULL;
            }
        }
        if (family == AF_INET6) {
            break;
        }
    }
    if (src == NULL) {
        snprintf(error, errlen, "no IPv4 or IPv6 address");
    }
    freeaddrinfo(res);
}

static void *
run(void *arg)
{
    struct kv_resolver *r = arg;
    char host[sizeof(r->host)], addr[sizeof(r->addr)], error[sizeof(r->error)];

    for (;;) {
        uint64_t one = 1;

        pthread_mutex_lock(&r->mu);
        while (!r->stop && r->job != JOB_ASKED) {
            pthread_cond_wait(&r->cv, &r->mu);
        }
        if (r->stop) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        memcpy(host, r->host, sizeof(host));
        pthread_mutex_unlock(&r->mu);

        lookup(host, addr, sizeof(addr), error, sizeof(error));

        pthread_mutex_lock(&r->mu);
        memcpy(r->addr, addr, sizeof(addr));
        memcpy(r->error, error, sizeof(error));
        r->job = JOB_DONE;
        if (!r->stop && write(r->efd, &one, sizeof(one)) < 0) {
            /* an eventfd write fails only on counter overflow: the loop is woken anyway */
        }
        pthread_mutex_unlock(&r->mu);
    }
    unref(r);
    return NULL;
}

int
kv_resolver_new(struct kv_resolver **out)
{
    struct kv_resolver *r = calloc(1, sizeof(*r));
    pthread_attr_t attr;
    pthread_t tid;
    int rc;

    *out = NULL;
    if (r == NULL) {
        return -1;
    }
    if ((r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        free(r);
        return -1;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->refs = 2;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024); /* getaddrinfo and NSS modules need some */
    rc = pthread_create(&tid, &attr, run, r);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        r->refs = 1;
        unref(r);
        return -1;
    }
    *out = r;
    return 0;
}

int
kv_resolver_fd(const struct kv_resolver *r)
{
    return r->efd;
}

void
kv_resolver_ask(struct kv_resolver *r, const char *host)
{
    pthread_mutex_lock(&r->mu);
    snprintf(r->host, sizeof(r->host), "%s", host);
    r->job = JOB_ASKED;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

bool
kv_resolver_answer(struct kv_resolver *r, char *addr, size_t addrlen, char *error, size_t errlen)
{
    uint64_t n;
    bool done;

    if (read(r->efd, &n, sizeof(n)) < 0) {
        /* EAGAIN: nothing new; the job state below decides */
    }
    pthread_mutex_lock(&r->mu);
    done = r->job == JOB_DONE;
    if (done) {
        snprintf(addr, addrlen, "%s", r->addr);
        snprintf(error, errlen, "%s", r->error);
        r->job = JOB_IDLE;
    }
    pthread_mutex_unlock(&r->mu);
    return done;
}

void
kv_resolver_release(struct kv_resolver *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    unref(r);
}

bool
kv_host_is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}
