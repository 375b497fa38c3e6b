/* test_pool.c: unit tests of wa/pool.h: work off the loop thread, done on it, draining. */
#include "wa_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "wa/pool.h"

#define JOBS 64

struct shared {
    pthread_t loop_thread;
    atomic_int work_runs;
    atomic_int work_on_loop;
    int done_runs;
    int done_off_loop;
    int done_before_work; /* done observed without its work having finished */
};

struct job {
    struct shared *sh;
    atomic_bool worked;
};

static void
work(void *arg)
{
    struct job *j = arg;

    if (pthread_equal(pthread_self(), j->sh->loop_thread)) {
        atomic_fetch_add(&j->sh->work_on_loop, 1);
    }
    atomic_store(&j->worked, true);
    atomic_fetch_add(&j->sh->work_runs, 1);
}

static void
done(void *arg)
{
    struct job *j = arg;

    if (!pthread_equal(pthread_self(), j->sh->loop_thread)) {
        j->sh->done_off_loop++;
    }
    if (!atomic_load(&j->worked)) {
        j->sh->done_before_work++;
    }
    j->sh->done_runs++;
}

static bool
all_done(void *arg)
{
    return ((struct shared *)arg)->done_runs == JOBS;
}

static void
init_jobs(struct shared *sh, struct job *jobs)
{
    int i;

    memset(sh, 0, sizeof(*sh));
    sh->loop_thread = pthread_self();
    for (i = 0; i < JOBS; i++) {
        jobs[i].sh = sh;
        atomic_init(&jobs[i].worked, false);
    }
}

static void
submit__work_off_loop_done_on_loop(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_pool *pool = NULL;
    static struct job jobs[JOBS];
    struct shared sh;
    int i;

    (void)state;
    init_jobs(&sh, jobs);
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    assert_int_equal(wa_pool_new(loop, 2, &pool), WA_OK);
    for (i = 0; i < JOBS; i++) {
        assert_int_equal(wa_pool_submit(pool, work, done, &jobs[i]), WA_OK);
    }
    assert_true(wa_test_run_until(loop, all_done, &sh, 10000));
    assert_int_equal(atomic_load(&sh.work_runs), JOBS);
    assert_int_equal(atomic_load(&sh.work_on_loop), 0);
    assert_int_equal(sh.done_off_loop, 0);
    assert_int_equal(sh.done_before_work, 0);
    assert_int_equal(wa_pool_pending(pool), 0);
    wa_pool_free(pool);
    wa_loop_free(loop);
}

static void
free__queued_work__drained_and_done_still_posted(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_pool *pool = NULL;
    static struct job jobs[JOBS];
    struct shared sh;
    int i;

    (void)state;
    init_jobs(&sh, jobs);
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    assert_int_equal(wa_pool_new(loop, 1, &pool), WA_OK);
    for (i = 0; i < JOBS; i++) {
        assert_int_equal(wa_pool_submit(pool, work, done, &jobs[i]), WA_OK);
    }
    wa_pool_free(pool); /* without ever running the loop */
    assert_int_equal(atomic_load(&sh.work_runs), JOBS);
    assert_int_equal(sh.done_runs, 0); /* done waits for the loop thread */
    assert_true(wa_test_run_until(loop, all_done, &sh, 10000));
    assert_int_equal(sh.done_off_loop, 0);
    wa_loop_free(loop);
}

static void
submit__null_done__work_still_runs(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_pool *pool = NULL;
    static struct job jobs[JOBS];
    struct shared sh;

    (void)state;
    init_jobs(&sh, jobs);
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    assert_int_equal(wa_pool_new(loop, 2, &pool), WA_OK);
    assert_int_equal(wa_pool_submit(pool, work, NULL, &jobs[0]), WA_OK);
    wa_pool_free(pool);
    assert_int_equal(atomic_load(&sh.work_runs), 1);
    wa_test_run_for(loop, 5);
    assert_int_equal(sh.done_runs, 0);
    wa_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(submit__work_off_loop_done_on_loop),
        cmocka_unit_test(free__queued_work__drained_and_done_still_posted),
        cmocka_unit_test(submit__null_done__work_still_runs),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
