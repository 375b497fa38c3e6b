/*
 * loop.c: epoll event loop with a timer heap, signalfd and an eventfd post queue.
 *
 * Threading: all state is owned by the loop thread except the post queue (mutex) and the stop
 * flag (atomic). Freed io handles are parked on a list and released after the current batch of
 * epoll events, so an event for a handle freed earlier in the same batch is skipped safely.
 */
#include "wa/loop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "wa/clock.h"
#include "wa/list.h"

#define MAX_EVENTS  128
#define MAX_SIGNALS 32

struct wa_io {
    struct wa_loop *loop;
    int fd;
    unsigned events;
    bool dead;
    wa_io_fn fn;
    void *arg;
    struct wa_list dead_link; /* on the loop's dead list once freed during a dispatch */
};

struct wa_timer {
    struct wa_loop *loop;
    uint64_t deadline;
    uint64_t repeat;
    uint64_t seq;      /* ties broken by arming order, so equal deadlines fire FIFO */
    size_t heap_index; /* SIZE_MAX when not armed */
    wa_timer_fn fn;
    void *arg;
};

struct post {
    wa_post_fn fn;
    void *arg;
    struct wa_list link; /* on the loop's posts */
};

struct wa_loop {
    int epfd;
    int eventfd;
    int sigfd;
    uint64_t now;
    atomic_bool stopping;
    struct wa_timer **heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;
    struct wa_list dead; /* struct wa_io freed, reaped after the dispatch */
    pthread_mutex_t post_lock;
    struct wa_list posts; /* struct post, FIFO, under post_lock */
    struct wa_io *event_io, *signal_io;
    sigset_t sigmask;
    struct {
        wa_signal_fn fn;
        void *arg;
    } signals[MAX_SIGNALS];
};

/* ---- timers: binary min-heap ordered by (deadline, seq) ---- */

static bool
timer_before(const struct wa_timer *a, const struct wa_timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void
heap_swap(struct wa_loop *l, size_t i, size_t j)
{
    struct wa_timer *t = l->heap[i];

    l->heap[i] = l->heap[j];
    l->heap[j] = t;
    l->heap[i]->heap_index = i;
    l->heap[j]->heap_index = j;
}

static void
heap_up(struct wa_loop *l, size_t i)
{
    while (i > 0 && timer_before(l->heap[i], l->heap[(i - 1) / 2])) {
        heap_swap(l, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void
heap_down(struct wa_loop *l, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1, m = i;
        if (c < l->heap_len && timer_before(l->heap[c], l->heap[m])) {
            m = c;
        }
        if (c + 1 < l->heap_len && timer_before(l->heap[c + 1], l->heap[m])) {
            m = c + 1;
        }
        if (m == i) {
            return;
        }
        heap_swap(l, i, m);
        i = m;
    }
}

static void
heap_remove(struct wa_loop *l, struct wa_timer *t)
{
    size_t i = t->heap_index;

    if (i == SIZE_MAX) {
        return;
    }
    l->heap_len--;
    if (i != l->heap_len) {
        l->heap[i] = l->heap[l->heap_len];
        l->heap[i]->heap_index = i;
        heap_up(l, i);
        heap_down(l, l->heap[i]->heap_index);
    }
    t->heap_index = SIZE_MAX;
}

static bool
heap_push(struct wa_loop *l, struct wa_timer *t)
{
    if (l->heap_len == l->heap_cap) {
        size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
        struct wa_timer **h = realloc(l->heap, cap * sizeof(*h));
        if (h == NULL) {
            return false;
        }
        l->heap = h;
        l->heap_cap = cap;
    }
    t->heap_index = l->heap_len;
    l->heap[l->heap_len++] = t;
    heap_up(l, t->heap_index);
    return true;
}

struct wa_timer *
wa_timer_new(struct wa_loop *loop, wa_timer_fn fn, void *arg)
{
    struct wa_timer *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        return NULL;
    }
    t->loop = loop;
    t->fn = fn;
    t->arg = arg;
    t->heap_index = SIZE_MAX;
    return t;
}

void
wa_timer_start(struct wa_timer *t, uint64_t after_ms, uint64_t repeat_ms)
{
    struct wa_loop *l = t->loop;

    heap_remove(l, t);
    t->deadline = wa_clock_mono_ms() + after_ms;
    t->repeat = repeat_ms;
    t->seq = ++l->timer_seq;
    /* A failed push can only be out of memory; that is a broken invariant for a daemon. */
    WA_ASSERT(heap_push(l, t));
}

void
wa_timer_stop(struct wa_timer *t)
{
    heap_remove(t->loop, t);
}

bool
wa_timer_active(const struct wa_timer *t)
{
    return t->heap_index != SIZE_MAX;
}

void
wa_timer_free(struct wa_timer *t)
{
    if (t == NULL) {
        return;
    }
    heap_remove(t->loop, t);
    free(t);
}

static void
run_timers(struct wa_loop *l)
{
    uint64_t now = wa_clock_mono_ms();
    /* Bound the work per iteration so a timer re-armed with 0 ms cannot starve I/O. */
    size_t budget = l->heap_len + 1;

    while (l->heap_len > 0 && l->heap[0]->deadline <= now && budget-- > 0) {
        struct wa_timer *t = l->heap[0];
        heap_remove(l, t);
        if (t->repeat > 0) {
            t->deadline = now + t->repeat;
            t->seq = ++l->timer_seq;
            WA_ASSERT(heap_push(l, t));
        }
        /* The callback may stop, re-arm or free t: nothing touches t after this call. */
        t->fn(t, t->arg);
    }
}

static int
next_timeout(const struct wa_loop *l)
{
    uint64_t now;

    if (l->heap_len == 0) {
        return -1;
    }
    now = wa_clock_mono_ms();
    if (l->heap[0]->deadline <= now) {
        return 0;
    }
    return (int)(l->heap[0]->deadline - now > 60000 ? 60000 : l->heap[0]->deadline - now);
}

/* ---- io ---- */

static uint32_t
to_epoll(unsigned events)
{
    return (events & WA_IO_READ ? EPOLLIN : 0u) | (events & WA_IO_WRITE ? EPOLLOUT : 0u);
}

enum wa_err
wa_io_new(struct wa_loop *loop, int fd, unsigned events, wa_io_fn fn, void *arg, struct wa_io **out)
{
    struct wa_io *io = calloc(1, sizeof(*io));
    struct epoll_event ev = {0};

    if (io == NULL) {
        return WA_ENOMEM;
    }
    io->loop = loop;
    io->fd = fd;
    io->events = events;
    io->fn = fn;
    io->arg = arg;
    ev.events = to_epoll(events);
    ev.data.ptr = io;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(io);
        return WA_EIO;
    }
    *out = io;
    return WA_OK;
}

enum wa_err
wa_io_set(struct wa_io *io, unsigned events)
{
    struct epoll_event ev = {0};

    if (io->events == events) {
        return WA_OK;
    }
    ev.events = to_epoll(events);
    ev.data.ptr = io;
    if (epoll_ctl(io->loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) != 0) {
        return WA_EIO;
    }
    io->events = events;
    return WA_OK;
}

void
wa_io_free(struct wa_io *io)
{
    if (io == NULL || io->dead) {
        return;
    }
    /* The fd may already be closed by its owner; a failure here is harmless. */
    epoll_ctl(io->loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->dead = true;
    wa_list_push_back(&io->loop->dead, &io->dead_link);
}

static void
reap_dead(struct wa_loop *l)
{
    struct wa_list *it;

    while ((it = wa_list_first(&l->dead)) != NULL) {
        wa_list_remove(it);
        free(WA_LIST_ENTRY(it, struct wa_io, dead_link));
    }
}

/* ---- posts ---- */

enum wa_err
wa_loop_post(struct wa_loop *loop, wa_post_fn fn, void *arg)
{
    struct post *p = malloc(sizeof(*p));
    uint64_t one = 1;
    bool was_empty;

    if (p == NULL) {
        return WA_ENOMEM;
    }
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&loop->post_lock);
    was_empty = wa_list_empty(&loop->posts);
    wa_list_push_back(&loop->posts, &p->link);
    pthread_mutex_unlock(&loop->post_lock);
    if (was_empty) {
        /* eventfd writes cannot fail short of counter overflow; the reader drains it */
        ssize_t w = write(loop->eventfd, &one, sizeof(one));
        (void)w;
    }
    return WA_OK;
}

static void
run_posts(struct wa_loop *l)
{
    struct wa_list batch, *it;

    pthread_mutex_lock(&l->post_lock);
    wa_list_take_all(&l->posts, &batch);
    pthread_mutex_unlock(&l->post_lock);
    while ((it = wa_list_first(&batch)) != NULL) {
        struct post *p = WA_LIST_ENTRY(it, struct post, link);

        wa_list_remove(it);
        p->fn(p->arg);
        free(p);
    }
}

static void
on_eventfd(struct wa_io *io, int fd, unsigned events, void *arg)
{
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof(v));

    (void)io;
    (void)events;
    (void)r;
    run_posts(arg);
}

void
wa_loop_stop(struct wa_loop *loop)
{
    uint64_t one = 1;
    ssize_t w;

    atomic_store(&loop->stopping, true);
    w = write(loop->eventfd, &one, sizeof(one));
    (void)w;
}

/* ---- signals ---- */

static void
on_signalfd(struct wa_io *io, int fd, unsigned events, void *arg)
{
    struct wa_loop *l = arg;
    struct signalfd_siginfo si;

    (void)io;
    (void)events;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo < MAX_SIGNALS && l->signals[si.ssi_signo].fn != NULL) {
            l->signals[si.ssi_signo].fn((int)si.ssi_signo, l->signals[si.ssi_signo].arg);
        }
    }
}

enum wa_err
wa_loop_signal(struct wa_loop *loop, int signo, wa_signal_fn fn, void *arg)
{
    if (signo <= 0 || signo >= MAX_SIGNALS || !sigismember(&loop->sigmask, signo)) {
        return WA_EINVAL;
    }
    loop->signals[signo].fn = fn;
    loop->signals[signo].arg = arg;
    return WA_OK;
}

/* ---- lifecycle ---- */

enum wa_err
wa_loop_new(struct wa_loop **out)
{
    struct wa_loop *l = calloc(1, sizeof(*l));
    enum wa_err err = WA_EIO;

    if (l == NULL) {
        return WA_ENOMEM;
    }
    l->epfd = l->eventfd = l->sigfd = -1;
    wa_list_init(&l->posts);
    wa_list_init(&l->dead);
    pthread_mutex_init(&l->post_lock, NULL);
    sigemptyset(&l->sigmask);
    sigaddset(&l->sigmask, SIGINT);
    sigaddset(&l->sigmask, SIGTERM);
    sigaddset(&l->sigmask, SIGHUP);
    sigaddset(&l->sigmask, SIGUSR1);
    sigaddset(&l->sigmask, SIGUSR2);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_sigmask(SIG_BLOCK, &l->sigmask, NULL) != 0) {
        goto fail;
    }
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->sigfd = signalfd(-1, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (l->epfd < 0 || l->eventfd < 0 || l->sigfd < 0) {
        goto fail;
    }
    if ((err = wa_io_new(l, l->eventfd, WA_IO_READ, on_eventfd, l, &l->event_io)) != WA_OK ||
        (err = wa_io_new(l, l->sigfd, WA_IO_READ, on_signalfd, l, &l->signal_io)) != WA_OK) {
        goto fail;
    }
    l->now = wa_clock_mono_ms();
    *out = l;
    return WA_OK;
fail:
    wa_loop_free(l);
    return err;
}

void
wa_loop_free(struct wa_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    run_posts(loop);
    wa_io_free(loop->event_io);
    wa_io_free(loop->signal_io);
    reap_dead(loop);
    free(loop->heap);
    if (loop->epfd >= 0) {
        close(loop->epfd);
    }
    if (loop->eventfd >= 0) {
        close(loop->eventfd);
    }
    if (loop->sigfd >= 0) {
        close(loop->sigfd);
    }
    pthread_mutex_destroy(&loop->post_lock);
    free(loop);
}

uint64_t
wa_loop_now(const struct wa_loop *loop)
{
    return loop->now;
}

enum wa_err
wa_loop_run(struct wa_loop *loop)
{
    struct epoll_event events[MAX_EVENTS];
    int n, i;

    while (!atomic_load(&loop->stopping)) {
        n = epoll_wait(loop->epfd, events, MAX_EVENTS, next_timeout(loop));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return WA_EIO;
        }
        loop->now = wa_clock_mono_ms();
        for (i = 0; i < n; i++) {
            struct wa_io *io = events[i].data.ptr;
            unsigned ev = 0;

            if (io->dead) {
                continue;
            }
            if (events[i].events & EPOLLIN) {
                ev |= WA_IO_READ;
            }
            if (events[i].events & EPOLLOUT) {
                ev |= WA_IO_WRITE;
            }
            if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                ev |= WA_IO_ERROR | (io->events & WA_IO_READ);
            }
            io->fn(io, io->fd, ev, io->arg);
        }
        reap_dead(loop);
        run_timers(loop);
        reap_dead(loop);
    }
    /* A later wa_loop_run (e.g. a drain phase during shutdown) starts afresh. */
    atomic_store(&loop->stopping, false);
    return WA_OK;
}
