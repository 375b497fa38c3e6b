/* wa_test_proc.c: subprocesses and blocking HTTP for integration tests (wa_test_proc.h). */
#include "wa_test_proc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wa/clock.h"
#include "wa_test.h"

int
wa_test_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

void
wa_test_bin_path(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", wa_test_env("WA_BIN_DIR"), name);
}

extern char **environ;

static bool
same_name(const char *a, const char *b)
{
    size_t n = strcspn(a, "=");

    return n == strcspn(b, "=") && strncmp(a, b, n) == 0;
}

/* The child's environment as putenv(3) of each entry of env over the caller's would leave it: a
 * later entry replaces an earlier one of the same name, and a bare NAME removes it. Built
 * before fork: the child of a threaded process may only call async-signal-safe functions until
 * exec (a putenv there reallocates environ and can wait forever on a lock another thread held at
 * fork time). Pointers are borrowed; free only the array. */
static char **
child_environ(const char *const *env)
{
    size_t n = 0, k = 0, m = 0;
    char **out;

    while (environ != NULL && environ[n] != NULL) {
        n++;
    }
    while (env != NULL && env[m] != NULL) {
        m++;
    }
    out = calloc(n + m + 1, sizeof(*out));
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;

        for (size_t j = 0; j < m && !replaced; j++) {
            replaced = same_name(env[j], environ[i]);
        }
        if (!replaced) {
            out[k++] = environ[i];
        }
    }
    for (size_t j = 0; j < m; j++) {
        bool later = strchr(env[j], '=') == NULL; /* a bare name only removes */

        for (size_t l = j + 1; l < m && !later; l++) {
            later = same_name(env[l], env[j]);
        }
        if (!later) {
            out[k++] = (char *)env[j];
        }
    }
    out[k] = NULL;
    return out;
}

pid_t
wa_test_spawn(const char *const *argv, const char *const *env, const char *logfile, int flags)
{
    pid_t parent = getpid();
    char **envp = child_environ(env);
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        sigset_t all;

        /* a test that fails (or is killed) takes its children with it: nothing is left behind */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
            _exit(127);
        }

        /* a wa_loop in the test blocks signals it reads by signalfd; the child must see them */
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        if (logfile != NULL) {
            int mode = (flags & WA_TEST_SPAWN_APPEND) != 0 ? O_APPEND : O_TRUNC;
            int fd = open(logfile, O_WRONLY | O_CREAT | mode, 0644);

            if (fd >= 0) {
                dup2(fd, 1);
                if ((flags & WA_TEST_SPAWN_STDOUT_ONLY) == 0) {
                    dup2(fd, 2);
                }
                close(fd);
            }
        }
        execvpe(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    free(envp);
    return pid;
}

static int
exit_status(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

pid_t
wa_test_spawn_daemon(const char *name, int port, const char *prefix, const char *const *extra,
                     const char *log)
{
    char env[28][320];
    const char *envp[29];
    char bin[512];
    const char *argv[2] = {bin, NULL};
    size_t n = 0;

    wa_test_bin_path(name, bin, sizeof(bin));
    snprintf(env[n++], sizeof(env[0]), "WA_LISTEN=127.0.0.1:%d", port);
    snprintf(env[n++], sizeof(env[0]), "WA_KAFKA_BROKERS=%s", wa_test_env("WA_KAFKA_BROKERS"));
    snprintf(env[n++], sizeof(env[0]), "WA_REDIS_URL=%s", wa_test_env("WA_REDIS_URL"));
    snprintf(env[n++], sizeof(env[0]), "WA_MONGO_URI=%s",
             wa_test_env_or("WA_MONGO_URI", "mongodb://127.0.0.1:17017/wabridge"));
    snprintf(env[n++], sizeof(env[0]), "WA_TOPIC_PREFIX=%s", prefix);
    snprintf(env[n++], sizeof(env[0]), "WA_APP_SECRET=e2e-secret");
    snprintf(env[n++], sizeof(env[0]), "WA_ACCESS_TOKEN=e2e-token");
    snprintf(env[n++], sizeof(env[0]), "WA_VERIFY_TOKEN=e2e-verify");
    /* the suite plays Meta with wa-cloudsim over plain http:// (WA_CFG_HTTPS) */
    snprintf(env[n++], sizeof(env[0]), "WA_SANDBOX=1");
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 27; i++) {
        snprintf(env[n++], sizeof(env[0]), "%s", extra[i]);
    }
    for (size_t i = 0; i < n; i++) {
        envp[i] = env[i];
    }
    envp[n] = NULL;
    /* the child copies what it needs before exec; env lives on this frame until fork returns */
    return wa_test_spawn(argv, envp, log, 0);
}

int
wa_test_wait_exit(pid_t pid, uint64_t timeout_ms)
{
    uint64_t deadline;
    int status;

    if (timeout_ms == WA_TEST_NO_TIMEOUT) {
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return exit_status(status);
    }
    deadline = wa_clock_mono_ms() + timeout_ms;
    while (wa_clock_mono_ms() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            return exit_status(status);
        }
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

int
wa_test_stop(pid_t pid, int sig, uint64_t timeout_ms)
{
    if (pid <= 0) {
        return -1; /* kill(0, sig) would signal the whole process group */
    }
    kill(pid, sig);
    return wa_test_wait_exit(pid, timeout_ms);
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct wa_buf *b = arg;

    if (b == NULL) {
        return size * n; /* discarded */
    }
    return wa_buf_append(b, p, size * n) == WA_OK ? size * n : 0;
}

long
wa_test_http(const struct wa_test_http_req *req, struct wa_buf *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[512];
    long status = 0;

    assert_non_null(c);
    if (req->url != NULL) {
        snprintf(url, sizeof(url), "%s", req->url);
    } else {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", req->port, req->path);
    }
    if (out != NULL) {
        wa_buf_reset(out);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (req->method != NULL) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    }
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (req->body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->len > 0 ? req->len : strlen(req->body)));
    }
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        h = curl_slist_append(h, req->headers[i]);
        assert_non_null(h);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

bool
wa_test_poll_status(int port, const char *path, long want, uint64_t timeout_ms, struct wa_buf *last)
{
    struct wa_test_http_req req = {.port = port, .path = path, .timeout_ms = 2000};
    uint64_t deadline = wa_clock_mono_ms() + timeout_ms;

    while (wa_clock_mono_ms() < deadline) {
        if (wa_test_http(&req, last) == want) {
            return true;
        }
        usleep(50000);
    }
    return false;
}

double
wa_test_metric(int port, const char *series)
{
    struct wa_test_http_req req = {.port = port, .path = "/metrics", .timeout_ms = 2000};
    struct wa_buf b;
    const char *p;
    double v = -1;
    size_t n = strlen(series);

    wa_buf_init(&b, 0);
    if (wa_test_http(&req, &b) == 200 && wa_buf_append(&b, "", 1) == WA_OK) {
        for (p = b.data; (p = strstr(p, series)) != NULL; p += n) {
            if ((p == b.data || p[-1] == '\n') && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
        }
    }
    wa_buf_cleanup(&b);
    return v;
}
