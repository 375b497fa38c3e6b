/*
 * wa_test_proc.h: helpers for integration tests that drive real binaries (not part of the
 * product): free loopback ports, daemons started from $WA_BIN_DIR with extra environment and a
 * log file, waiting for exit with a deadline, and blocking libcurl requests from the test
 * thread.
 *
 * Everything here runs on the test thread and blocks; failures of the test machinery itself
 * (no socket, fork failed) fail the running test through cmocka.
 */
#ifndef WA_TEST_PROC_H
#define WA_TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wa/buf.h"

/* Waits without a deadline (wa_test_wait_exit, wa_test_stop). */
#define WA_TEST_NO_TIMEOUT UINT64_MAX

/* wa_test_spawn flags */
enum {
    WA_TEST_SPAWN_APPEND = 1 << 0,      /* append to the log file instead of truncating it */
    WA_TEST_SPAWN_STDOUT_ONLY = 1 << 1, /* only stdout goes to the log; stderr is inherited */
};

/* Returns a TCP port on 127.0.0.1 that was free a moment ago (bound, read, closed). */
int wa_test_free_port(void);

/* Writes "$WA_BIN_DIR/name" into out (fails the test when WA_BIN_DIR is unset). */
void wa_test_bin_path(const char *name, char *out, size_t size);

/*
 * Starts argv[0] (a path, or a name looked up in PATH; argv NULL-ended, borrowed) in a child
 * process with all signals unblocked and the extra "NAME=value" settings of env (NULL-ended,
 * borrowed; may be NULL) added to this process's environment. stdout and stderr go to logfile
 * (created, truncated unless flags say otherwise); logfile NULL: both are inherited. Returns
 * the child's pid; the caller reaps it with wa_test_wait_exit() or wa_test_stop(). The child gets
 * SIGKILL when this process ends (PR_SET_PDEATHSIG), so a failed or killed test leaves nothing.
 */
pid_t wa_test_spawn(const char *const *argv, const char *const *env, const char *logfile,
                    int flags);

/*
 * Starts the daemon $WA_BIN_DIR/name with the suite's common environment (WA_LISTEN on port,
 * WA_KAFKA_BROKERS, WA_REDIS_URL and WA_MONGO_URI from this process, WA_TOPIC_PREFIX=prefix,
 * the end-to-end tests' app secret and access token) plus extra ("NAME=value", NULL-ended, at
 * most 18; later settings win), stdout and stderr to log. Returns the child's pid.
 */
pid_t wa_test_spawn_daemon(const char *name, int port, const char *prefix, const char *const *extra,
                           const char *log);
/*
 * Waits at most timeout_ms (WA_TEST_NO_TIMEOUT: no limit) for pid to end. Returns its exit
 * status, 128 + the signal when a signal ended it, or -1 on timeout (then the child is killed
 * with SIGKILL and reaped).
 */
int wa_test_wait_exit(pid_t pid, uint64_t timeout_ms);

/* Sends sig to pid, then wa_test_wait_exit(pid, timeout_ms). pid <= 0: returns -1, no kill. */
int wa_test_stop(pid_t pid, int sig, uint64_t timeout_ms);

/* One blocking HTTP request (all pointers borrowed for the call). */
struct wa_test_http_req {
    const char *method;         /* NULL: GET, or POST when there is a body */
    const char *url;            /* whole URL; NULL: http://127.0.0.1:<port><path> */
    int port;                   /* with path, when url is NULL */
    const char *path;           /* with port, when url is NULL */
    const char *const *headers; /* "Name: value" lines, NULL-ended; NULL: none */
    const char *body;           /* NULL: no body */
    size_t len;                 /* body length; 0: strlen(body) */
    long timeout_ms;            /* whole request; 0: 5000 */
};

/*
 * Performs req. Returns the HTTP status, or 0 when no complete answer arrived (refused,
 * timed out, dropped, body past out's maximum). out (may be NULL: body discarded) is reset
 * first and then holds the response body.
 */
long wa_test_http(const struct wa_test_http_req *req, struct wa_buf *out);

/*
 * GETs http://127.0.0.1:<port><path> every 50 ms (each try limited to 2 s) until it answers
 * want (returns true) or timeout_ms passes (returns false). last (may be NULL) holds the body
 * of the last answer.
 */
bool wa_test_poll_status(int port, const char *path, long want, uint64_t timeout_ms,
                         struct wa_buf *last);

/* The value of one series on http://127.0.0.1:<port>/metrics, named exactly as its line starts
 * ("name" or "name{labels}"); -1 when the series is absent or /metrics did not answer 200. */
double wa_test_metric(int port, const char *series);

#endif
