/*
 * test_loop.c: unit tests of wa/loop.h: timer order and lifetimes, posts from other threads,
 * descriptor events and signals.
 */
#include "wa_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "wa/loop.h"

static struct wa_loop *
loop_new(void)
{
    struct wa_loop *loop = NULL;

    assert_int_equal(wa_loop_new(&loop), WA_OK);
    assert_non_null(loop);
    return loop;
}

struct order {
    int fired[8];
    int n;
};

struct order_timer {
    struct order *order;
    int id;
};

static void
on_order_timer(struct wa_timer *t, void *arg)
{
    struct order_timer *ot = arg;

    (void)t;
    ot->order->fired[ot->order->n++] = ot->id;
}

static bool
order_done(void *arg)
{
    return ((struct order *)arg)->n == 4;
}

static void
timers__different_deadlines__fire_in_deadline_order(void **state)
{
    struct wa_loop *loop = loop_new();
    struct order order = {{0}, 0};
    struct order_timer ot[4] = {{&order, 30}, {&order, 10}, {&order, 20}, {&order, 0}};
    struct wa_timer *t[4];
    int i;

    (void)state;
    for (i = 0; i < 4; i++) {
        t[i] = wa_timer_new(loop, on_order_timer, &ot[i]);
        assert_non_null(t[i]);
        wa_timer_start(t[i], (uint64_t)ot[i].id, 0);
        assert_true(wa_timer_active(t[i]));
    }
    assert_true(wa_test_run_until(loop, order_done, &order, 5000));
    assert_int_equal(order.fired[0], 0);
    assert_int_equal(order.fired[1], 10);
    assert_int_equal(order.fired[2], 20);
    assert_int_equal(order.fired[3], 30);
    for (i = 0; i < 4; i++) {
        assert_false(wa_timer_active(t[i])); /* one-shot timers disarm after firing */
        wa_timer_free(t[i]);
    }
    wa_loop_free(loop);
}

static void
timers__same_deadline__fire_in_arming_order(void **state)
{
    struct wa_loop *loop = loop_new();
    struct order order = {{0}, 0};
    struct order_timer ot[4] = {{&order, 1}, {&order, 2}, {&order, 3}, {&order, 4}};
    struct wa_timer *t[4];
    int i;

    (void)state;
    for (i = 0; i < 4; i++) {
        t[i] = wa_timer_new(loop, on_order_timer, &ot[i]);
        wa_timer_start(t[i], 5, 0);
    }
    assert_true(wa_test_run_until(loop, order_done, &order, 5000));
    for (i = 0; i < 4; i++) {
        assert_int_equal(order.fired[i], i + 1);
        wa_timer_free(t[i]);
    }
    wa_loop_free(loop);
}

struct self_free {
    struct wa_timer *timer;
    int fired;
};

static void
on_self_free(struct wa_timer *t, void *arg)
{
    struct self_free *sf = arg;

    sf->fired++;
    wa_timer_free(t); /* ASan reports any later use of t */
    sf->timer = NULL;
}

static bool
self_free_done(void *arg)
{
    return ((struct self_free *)arg)->fired > 0;
}

static void
timer__freed_in_own_callback__never_fires_again(void **state)
{
    struct wa_loop *loop = loop_new();
    struct self_free sf = {NULL, 0};

    (void)state;
    sf.timer = wa_timer_new(loop, on_self_free, &sf);
    wa_timer_start(sf.timer, 1, 1); /* repeating: the loop must not re-arm a freed timer */
    assert_true(wa_test_run_until(loop, self_free_done, &sf, 5000));
    wa_test_run_for(loop, 20);
    assert_int_equal(sf.fired, 1);
    assert_null(sf.timer);
    wa_loop_free(loop);
}

struct repeat {
    int fired;
};

static void
on_repeat(struct wa_timer *t, void *arg)
{
    struct repeat *r = arg;

    if (++r->fired == 5) {
        wa_timer_stop(t);
    }
}

static bool
repeat_done(void *arg)
{
    return ((struct repeat *)arg)->fired >= 5;
}

static void
timer__repeat__fires_until_stopped(void **state)
{
    struct wa_loop *loop = loop_new();
    struct repeat r = {0};
    struct wa_timer *t = wa_timer_new(loop, on_repeat, &r);

    (void)state;
    wa_timer_start(t, 1, 2);
    assert_true(wa_test_run_until(loop, repeat_done, &r, 5000));
    assert_false(wa_timer_active(t));
    wa_test_run_for(loop, 20);
    assert_int_equal(r.fired, 5);
    wa_timer_free(t);
    wa_loop_free(loop);
}

static void
timer__stopped_before_deadline__never_fires(void **state)
{
    struct wa_loop *loop = loop_new();
    struct repeat r = {0};
    struct wa_timer *t = wa_timer_new(loop, on_repeat, &r);

    (void)state;
    wa_timer_start(t, 5, 0);
    wa_timer_stop(t);
    wa_test_run_for(loop, 30);
    assert_int_equal(r.fired, 0);
    wa_timer_free(t);
    wa_timer_free(NULL);
    wa_loop_free(loop);
}

struct post_check {
    struct wa_loop *loop;
    pthread_t loop_thread;
    atomic_int ran;
    atomic_bool on_loop_thread;
    enum wa_err post_err;
    int order[3];
    int norder;
};

static void
on_post(void *arg)
{
    struct post_check *pc = arg;

    atomic_store(&pc->on_loop_thread, pthread_equal(pthread_self(), pc->loop_thread) != 0);
    atomic_fetch_add(&pc->ran, 1);
}

static void *
poster(void *arg)
{
    struct post_check *pc = arg;

    /* no cmocka asserts off the main thread: the result is checked after the join */
    pc->post_err = wa_loop_post(pc->loop, on_post, pc);
    return NULL;
}

static bool
post_ran(void *arg)
{
    return atomic_load(&((struct post_check *)arg)->ran) > 0;
}

static void
post__from_other_thread__runs_on_loop_thread(void **state)
{
    struct post_check pc;
    pthread_t t;

    (void)state;
    memset(&pc, 0, sizeof(pc));
    pc.loop = loop_new();
    pc.loop_thread = pthread_self();
    assert_int_equal(pthread_create(&t, NULL, poster, &pc), 0);
    assert_true(wa_test_run_until(pc.loop, post_ran, &pc, 5000));
    pthread_join(t, NULL);
    assert_int_equal(pc.post_err, WA_OK);
    assert_int_equal(atomic_load(&pc.ran), 1);
    assert_true(atomic_load(&pc.on_loop_thread));
    wa_loop_free(pc.loop);
}

struct seq {
    struct post_check *pc;
    int id;
};

static void
on_seq_post(void *arg)
{
    struct seq *s = arg;

    s->pc->order[s->pc->norder++] = s->id;
}

static void
post__several__run_in_order_and_freed_loop_runs_leftovers(void **state)
{
    struct post_check pc;
    struct seq s[3];
    int i;

    (void)state;
    memset(&pc, 0, sizeof(pc));
    pc.loop = loop_new();
    for (i = 0; i < 3; i++) {
        s[i].pc = &pc;
        s[i].id = i;
        assert_int_equal(wa_loop_post(pc.loop, on_seq_post, &s[i]), WA_OK);
    }
    wa_loop_free(pc.loop); /* never ran: the posts still run so their owners can clean up */
    assert_int_equal(pc.norder, 3);
    for (i = 0; i < 3; i++) {
        assert_int_equal(pc.order[i], i);
    }
}

struct pipe_check {
    int fd;
    unsigned events;
    char byte;
    int calls;
};

static void
on_pipe_readable(struct wa_io *io, int fd, unsigned events, void *arg)
{
    struct pipe_check *p = arg;

    (void)io;
    p->calls++;
    p->fd = fd;
    p->events = events;
    if (events & WA_IO_READ) {
        assert_int_equal(read(fd, &p->byte, 1), 1);
    }
}

static bool
pipe_read(void *arg)
{
    return ((struct pipe_check *)arg)->calls > 0;
}

static void
io__pipe_written__read_event_delivered(void **state)
{
    struct wa_loop *loop = loop_new();
    struct pipe_check p = {-1, 0, 0, 0};
    struct wa_io *io = NULL;
    int fds[2];

    (void)state;
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(wa_io_new(loop, fds[0], WA_IO_READ, on_pipe_readable, &p, &io), WA_OK);
    wa_test_run_for(loop, 10);
    assert_int_equal(p.calls, 0); /* nothing written yet */
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_true(wa_test_run_until(loop, pipe_read, &p, 5000));
    assert_int_equal(p.fd, fds[0]);
    assert_true(p.events & WA_IO_READ);
    assert_int_equal(p.byte, 'x');
    wa_io_free(io);
    wa_io_free(NULL);
    close(fds[0]);
    close(fds[1]);
    wa_loop_free(loop);
}

static void
on_hangup(struct wa_io *io, int fd, unsigned events, void *arg)
{
    struct pipe_check *p = arg;

    (void)fd;
    p->calls++;
    p->events = events;
    wa_io_free(io); /* freeing inside the callback is allowed */
}

static void
io__writer_closed__reported_and_freed_in_callback(void **state)
{
    struct wa_loop *loop = loop_new();
    struct pipe_check p = {-1, 0, 0, 0};
    struct wa_io *io = NULL;
    int fds[2];

    (void)state;
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(wa_io_new(loop, fds[0], WA_IO_READ, on_hangup, &p, &io), WA_OK);
    close(fds[1]);
    assert_true(wa_test_run_until(loop, pipe_read, &p, 5000));
    assert_true(p.events & (WA_IO_ERROR | WA_IO_READ));
    wa_test_run_for(loop, 10);
    assert_int_equal(p.calls, 1);
    close(fds[0]);
    wa_loop_free(loop);
}

struct sig_check {
    int signo;
    int calls;
    bool on_loop_thread;
    pthread_t loop_thread;
};

static void
on_signal(int signo, void *arg)
{
    struct sig_check *sc = arg;

    sc->signo = signo;
    sc->calls++;
    sc->on_loop_thread = pthread_equal(pthread_self(), sc->loop_thread) != 0;
}

static bool
signal_seen(void *arg)
{
    return ((struct sig_check *)arg)->calls > 0;
}

static void
signal__raise_sigusr1__handler_runs_on_loop(void **state)
{
    struct wa_loop *loop = loop_new();
    struct sig_check sc = {0, 0, false, pthread_self()};

    (void)state;
    assert_int_equal(wa_loop_signal(loop, SIGUSR1, on_signal, &sc), WA_OK);
    /* SIGUSR1 is blocked by wa_loop_new, so raise() leaves it pending for the signalfd
     * instead of killing the process */
    assert_int_equal(raise(SIGUSR1), 0);
    assert_true(wa_test_run_until(loop, signal_seen, &sc, 5000));
    assert_int_equal(sc.signo, SIGUSR1);
    assert_int_equal(sc.calls, 1);
    assert_true(sc.on_loop_thread);
    wa_loop_free(loop);
}

static void
on_stop_timer(struct wa_timer *t, void *arg)
{
    (void)t;
    wa_loop_stop(arg);
}

static void
run__stop_from_callback__returns_ok(void **state)
{
    struct wa_loop *loop = loop_new();
    struct wa_timer *t = wa_timer_new(loop, on_stop_timer, loop);
    uint64_t before;

    (void)state;
    before = wa_loop_now(loop);
    wa_timer_start(t, 5, 0);
    assert_int_equal(wa_loop_run(loop), WA_OK);
    assert_true(wa_loop_now(loop) >= before + 5);
    wa_timer_free(t);
    wa_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers__different_deadlines__fire_in_deadline_order),
        cmocka_unit_test(timers__same_deadline__fire_in_arming_order),
        cmocka_unit_test(timer__freed_in_own_callback__never_fires_again),
        cmocka_unit_test(timer__repeat__fires_until_stopped),
        cmocka_unit_test(timer__stopped_before_deadline__never_fires),
        cmocka_unit_test(post__from_other_thread__runs_on_loop_thread),
        cmocka_unit_test(post__several__run_in_order_and_freed_loop_runs_leftovers),
        cmocka_unit_test(io__pipe_written__read_event_delivered),
        cmocka_unit_test(io__writer_closed__reported_and_freed_in_callback),
        cmocka_unit_test(signal__raise_sigusr1__handler_runs_on_loop),
        cmocka_unit_test(run__stop_from_callback__returns_ok),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
