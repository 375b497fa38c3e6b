/*
 * wa/pool.h: a fixed worker pool for blocking work (libmongoc, fsync, file I/O).
 *
 * work(arg) runs on a worker thread; then done(arg) runs on the loop thread. The loop thread
 * never blocks on the pool. Sized small: the machine has 2 cores, scale out with pods.
 */
#ifndef WA_POOL_H
#define WA_POOL_H

#include <stddef.h>

#include "wa/err.h"
#include "wa/loop.h"

struct wa_pool;

typedef void (*wa_work_fn)(void *arg);

/* Returns a new pool of threads workers in *out; free with wa_pool_free(). */
enum wa_err wa_pool_new(struct wa_loop *loop, unsigned threads, struct wa_pool **out);
/*
 * Queues work. Returns WA_OK and later runs work then done (done may be NULL), or returns
 * WA_ECLOSED / WA_ENOMEM and runs neither.
 */
enum wa_err wa_pool_submit(struct wa_pool *pool, wa_work_fn work, wa_work_fn done, void *arg);
/* Number of jobs queued or running. */
size_t wa_pool_pending(struct wa_pool *pool);
/* Stops taking work: later submits fail with WA_ECLOSED; queued work still runs and its done
 * callbacks still reach the loop (watch wa_pool_pending). Idempotent; accepts NULL. */
void wa_pool_close(struct wa_pool *pool);
/* Closes, finishes queued work, joins the threads, frees. done callbacks still reach the loop
 * as posts. */
void wa_pool_free(struct wa_pool *pool);

#endif
