/* chaos_infra.c: a scenario's own Kafka broker and Redis server, durations (chaos_infra.h). */
#include "chaos_infra.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wa/clock.h"
#include "wa/kafka.h"
#include "wa_test.h"
#include "wa_test_proc.h"

#ifndef CHAOS_SOURCE_DIR
#error "CHAOS_SOURCE_DIR (the repository root) must be defined by CMake"
#endif

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void
chaos_rmtree(const char *dir)
{
    if (dir[0] != '\0') {
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

long
chaos_seconds(const char *var, long dflt)
{
    long v = strtol(wa_test_env_or(var, ""), NULL, 10);

    return v > 0 ? v : dflt;
}

size_t
chaos_seconds_list(const char *var, const char *dflt, long *out, size_t max)
{
    const char *p = wa_test_env_or(var, dflt);
    size_t n = 0;

    while (*p != '\0' && n < max) {
        char *end;
        long v = strtol(p, &end, 10);

        if (end == p) {
            break;
        }
        if (v > 0) {
            out[n++] = v;
        }
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

/* True when the child pid has ended (then reaped). */
static bool
exited(pid_t pid)
{
    int status;

    return waitpid(pid, &status, WNOHANG) == pid;
}

/* A connected socket to 127.0.0.1:port (1 s receive timeout), or -1. */
static int
connect_loopback(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 1};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0) {
        return -1;
    }
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* True when the broker answers a metadata request (asked only once its port accepts, so a
 * broker still starting does not fill the log with the client's connection errors). */
static bool
kafka_answers(const struct chaos_kafka *k)
{
    struct wa_kafka_config cfg = {.brokers = k->brokers};
    int fd = connect_loopback(k->port);

    if (fd < 0) {
        return false;
    }
    close(fd);
    return wa_kafka_topics_list(&cfg, 2000, NULL, NULL, NULL) == WA_OK;
}

/* ---- Kafka ---- */

void
chaos_kafka_init(struct chaos_kafka *k, const char *name)
{
    memset(k, 0, sizeof(*k));
    k->port = wa_test_free_port();
    do {
        k->controller_port = wa_test_free_port();
    } while (k->controller_port == k->port);
    snprintf(k->dir, sizeof(k->dir), "/tmp/wa-chaos-%s-%d-kafka", name, (int)getpid());
    snprintf(k->brokers, sizeof(k->brokers), "127.0.0.1:%d", k->port);
    snprintf(k->log, sizeof(k->log), "%s.log", k->dir);
    chaos_rmtree(k->dir);
    mkdir(k->dir, 0755);
}

uint64_t
chaos_kafka_start(struct chaos_kafka *k)
{
    char script[512], e[5][256];
    const char *argv[] = {"bash", script, "run", NULL};
    const char *env[6];
    uint64_t t0 = wa_clock_mono_ms();

    assert_int_equal(k->pid, 0);
    snprintf(script, sizeof(script), "%s/deploy/local/kafka.sh", CHAOS_SOURCE_DIR);
    snprintf(e[0], sizeof(e[0]), "KAFKA_PORT=%d", k->port);
    snprintf(e[1], sizeof(e[1]), "KAFKA_CONTROLLER_PORT=%d", k->controller_port);
    snprintf(e[2], sizeof(e[2]), "WA_INFRA_DIR=%s", k->dir);
    snprintf(e[3], sizeof(e[3]), "WA_INFRA_PROFILE=default");
    /* a small heap: the scenario moves a few thousand small records */
    snprintf(e[4], sizeof(e[4]), "KAFKA_HEAP_OPTS=%s",
             wa_test_env_or("WA_CHAOS_KAFKA_HEAP", "-Xmx512m -Xms512m"));
    for (int i = 0; i < 5; i++) {
        env[i] = e[i];
    }
    env[5] = NULL;
    k->pid = wa_test_spawn(argv, env, k->log, WA_TEST_SPAWN_APPEND);
    while (!kafka_answers(k)) {
        if (wa_clock_mono_ms() - t0 > 180000) {
            fail_msg("the chaos broker did not answer within 180 s (see %s and %s/logs)", k->log,
                     k->dir);
        }
        if (exited(k->pid)) {
            k->pid = 0;
            fail_msg("the chaos broker exited during startup (see %s)", k->log);
        }
        usleep(200000);
    }
    return wa_clock_mono_ms() - t0;
}

void
chaos_kafka_stop(struct chaos_kafka *k, int sig)
{
    if (k->pid > 0) {
        wa_test_stop(k->pid, sig, 30000);
        k->pid = 0;
    }
}

void
chaos_kafka_cleanup(struct chaos_kafka *k)
{
    chaos_kafka_stop(k, SIGTERM);
    if (k->dir[0] != '\0') {
        chaos_rmtree(k->dir);
        unlink(k->log);
    }
}

/* ---- Redis ---- */

void
chaos_redis_init(struct chaos_redis *r, const char *name)
{
    memset(r, 0, sizeof(*r));
    r->port = wa_test_free_port();
    snprintf(r->dir, sizeof(r->dir), "/tmp/wa-chaos-%s-%d-redis", name, (int)getpid());
    snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d/0", r->port);
    snprintf(r->log, sizeof(r->log), "%s.log", r->dir);
    chaos_rmtree(r->dir);
    mkdir(r->dir, 0755);
}

/* One PING on a fresh connection: true when the answer is +PONG (not -LOADING). */
static bool
redis_pong(int port)
{
    char buf[64] = {0};
    int fd = connect_loopback(port);
    bool ok = false;

    if (fd >= 0 && write(fd, "PING\r\n", 6) == 6 && read(fd, buf, sizeof(buf) - 1) > 0) {
        ok = strncmp(buf, "+PONG", 5) == 0;
    }
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

uint64_t
chaos_redis_start(struct chaos_redis *r)
{
    char port[16];
    /* WA_CHAOS_REDIS_AOF=no: no persistence, as deploy/local/redis.sh runs it (what a restart
     * then forgets shows what production's AOF is for) */
    const char *aof = strcmp(wa_test_env_or("WA_CHAOS_REDIS_AOF", "yes"), "no") == 0 ? "no" : "yes";
    const char *argv[] = {
        "redis-server", "--bind",      "127.0.0.1", "--port",           port,  "--dir",
        r->dir,         "--save",      "",          "--appendonly",     aof,   "--appendfsync",
        "always",       "--daemonize", "no",        "--protected-mode", "yes", NULL};
    uint64_t t0 = wa_clock_mono_ms();

    assert_int_equal(r->pid, 0);
    snprintf(port, sizeof(port), "%d", r->port);
    r->pid = wa_test_spawn(argv, NULL, r->log, WA_TEST_SPAWN_APPEND);
    while (!redis_pong(r->port)) {
        if (wa_clock_mono_ms() - t0 > 30000) {
            fail_msg("the chaos Redis did not answer within 30 s (see %s)", r->log);
        }
        if (exited(r->pid)) {
            r->pid = 0;
            fail_msg("the chaos Redis exited during startup (see %s)", r->log);
        }
        usleep(50000);
    }
    return wa_clock_mono_ms() - t0;
}

void
chaos_redis_stop(struct chaos_redis *r, int sig)
{
    if (r->pid > 0) {
        wa_test_stop(r->pid, sig, 30000);
        r->pid = 0;
    }
}

void
chaos_redis_cleanup(struct chaos_redis *r)
{
    chaos_redis_stop(r, SIGTERM);
    if (r->dir[0] != '\0') {
        chaos_rmtree(r->dir);
        unlink(r->log);
    }
}
