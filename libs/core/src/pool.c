/* pool.c: worker threads with a FIFO job queue; completions are posted to the loop. */
#include "wa/pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "wa/list.h"

struct job {
    wa_work_fn work, done;
    void *arg;
    struct wa_list link; /* on the pool's queue */
};

struct wa_pool {
    struct wa_loop *loop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct wa_list queue; /* struct job, FIFO, under lock */
    size_t pending;
    bool closing;
    unsigned nthreads;
    pthread_t *threads;
};

static void
finish(void *arg)
{
    struct job *j = arg;

    j->done(j->arg);
    free(j);
}

static void *
worker(void *arg)
{
    struct wa_pool *p = arg;

    for (;;) {
        struct wa_list *first;
        struct job *j;

        pthread_mutex_lock(&p->lock);
        while (wa_list_empty(&p->queue) && !p->closing) {
            pthread_cond_wait(&p->cond, &p->lock);
        }
        if ((first = wa_list_first(&p->queue)) == NULL) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        wa_list_remove(first);
        j = WA_LIST_ENTRY(first, struct job, link);
        pthread_mutex_unlock(&p->lock);

        j->work(j->arg);
        if (j->done == NULL || wa_loop_post(p->loop, finish, j) != WA_OK) {
            free(j);
        }
        pthread_mutex_lock(&p->lock);
        p->pending--;
        pthread_mutex_unlock(&p->lock);
    }
}

enum wa_err
wa_pool_new(struct wa_loop *loop, unsigned threads, struct wa_pool **out)
{
    struct wa_pool *p = calloc(1, sizeof(*p));
    unsigned i;

    if (p == NULL || threads == 0) {
        free(p);
        return p == NULL ? WA_ENOMEM : WA_EINVAL;
    }
    p->loop = loop;
    wa_list_init(&p->queue);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->threads = calloc(threads, sizeof(*p->threads));
    if (p->threads == NULL) {
        wa_pool_free(p);
        return WA_ENOMEM;
    }
    for (i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            wa_pool_free(p);
            return WA_EINTERNAL;
        }
        p->nthreads++;
    }
    *out = p;
    return WA_OK;
}

enum wa_err
wa_pool_submit(struct wa_pool *pool, wa_work_fn work, wa_work_fn done, void *arg)
{
    struct job *j = malloc(sizeof(*j));

    if (j == NULL) {
        return WA_ENOMEM;
    }
    j->work = work;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&pool->lock);
    if (pool->closing) {
        pthread_mutex_unlock(&pool->lock);
        free(j);
        return WA_ECLOSED;
    }
    wa_list_push_back(&pool->queue, &j->link);
    pool->pending++;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    return WA_OK;
}

size_t
wa_pool_pending(struct wa_pool *pool)
{
    size_t n;

    pthread_mutex_lock(&pool->lock);
    n = pool->pending;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

void
wa_pool_close(struct wa_pool *pool)
{
    if (pool == NULL) {
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->closing = true;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
}

void
wa_pool_free(struct wa_pool *pool)
{
    unsigned i;

    if (pool == NULL) {
        return;
    }
    wa_pool_close(pool);
    for (i = 0; i < pool->nthreads; i++) {
        pthread_join(pool->threads[i], NULL);
    }
    free(pool->threads);
    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}
