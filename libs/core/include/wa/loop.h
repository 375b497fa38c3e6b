/*
 * wa/loop.h: the event loop (one per daemon, on its main thread).
 *
 * epoll for file descriptors, a binary heap of millisecond timers, signalfd for signals and an
 * eventfd through which any thread may post a function to run on the loop thread.
 * Everything here except wa_loop_post() and wa_loop_stop() must be called on the loop thread.
 *
 * Lifetimes: wa_io and wa_timer handles are owned by their creator and freed with
 * wa_io_free() / wa_timer_free(); both may be called from inside the handle's own callback.
 * Callbacks never run after the handle is freed.
 */
#ifndef WA_LOOP_H
#define WA_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "wa/err.h"

struct wa_loop;
struct wa_io;
struct wa_timer;

#define WA_IO_READ  0x1u
#define WA_IO_WRITE 0x2u
#define WA_IO_ERROR 0x4u /* reported only: hang-up or error on the descriptor */

typedef void (*wa_io_fn)(struct wa_io *io, int fd, unsigned events, void *arg);
typedef void (*wa_timer_fn)(struct wa_timer *timer, void *arg);
typedef void (*wa_post_fn)(void *arg);
typedef void (*wa_signal_fn)(int signo, void *arg);

/*
 * Returns a new loop in *out; free with wa_loop_free(). Blocks SIGINT, SIGTERM, SIGHUP, SIGUSR1
 * and SIGUSR2 in the calling thread (threads created later inherit the mask, so these signals
 * arrive only through wa_loop_signal) and ignores SIGPIPE. Create the loop before any thread.
 */
enum wa_err wa_loop_new(struct wa_loop **out);
/* Runs the posts still queued (so their owners can release what they carry), then frees. */
void wa_loop_free(struct wa_loop *loop);
/* Runs until wa_loop_stop(). Returns WA_OK, or WA_EIO if epoll fails. */
enum wa_err wa_loop_run(struct wa_loop *loop);
/* Makes wa_loop_run return after the current iteration. Thread-safe. */
void wa_loop_stop(struct wa_loop *loop);
/* Monotonic milliseconds cached at the start of the current iteration. */
uint64_t wa_loop_now(const struct wa_loop *loop);

/* Watches fd for events (WA_IO_READ | WA_IO_WRITE). Returns a new handle in *out. */
enum wa_err wa_io_new(struct wa_loop *loop, int fd, unsigned events, wa_io_fn fn, void *arg,
                      struct wa_io **out);
enum wa_err wa_io_set(struct wa_io *io, unsigned events);
/* Stops watching (does not close fd). Accepts NULL. */
void wa_io_free(struct wa_io *io);

/* Returns a new stopped timer, or NULL when out of memory. */
struct wa_timer *wa_timer_new(struct wa_loop *loop, wa_timer_fn fn, void *arg);
/* (Re)arms: first fire after after_ms, then every repeat_ms (0 = once). */
void wa_timer_start(struct wa_timer *t, uint64_t after_ms, uint64_t repeat_ms);
void wa_timer_stop(struct wa_timer *t);
bool wa_timer_active(const struct wa_timer *t);
/* Stops and frees. Accepts NULL. */
void wa_timer_free(struct wa_timer *t);

/*
 * Runs fn(arg) on the loop thread, soon. Thread-safe. Returns WA_ENOMEM on allocation failure
 * (fn is then never called). Posts are run in the order they were made.
 */
enum wa_err wa_loop_post(struct wa_loop *loop, wa_post_fn fn, void *arg);

/* Calls fn on the loop thread whenever signo arrives. One handler per signal. */
enum wa_err wa_loop_signal(struct wa_loop *loop, int signo, wa_signal_fn fn, void *arg);

#endif
