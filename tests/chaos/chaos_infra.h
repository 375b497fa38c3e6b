/*
 * chaos_infra.h: infrastructure that one chaos scenario owns, never the suite's shared servers
 * (other tests run against those at the same time): a Kafka broker (deploy/local/kafka.sh run:
 * one KRaft node on free loopback ports with its own data directory) and a Redis server (AOF
 * with an fsync per write, as production should run it), each a child of the test process, so
 * the scenario can kill it with SIGKILL or stop it and start it again on the same data, and a
 * test that dies takes it along (PR_SET_PDEATHSIG). Also the scenarios' duration settings.
 *
 * Everything blocks the test thread; a failure of the machinery fails the running test.
 */
#ifndef CHAOS_INFRA_H
#define CHAOS_INFRA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A private broker; the fields are read-only for the caller. */
struct chaos_kafka {
    int port, controller_port;
    char dir[160];    /* WA_INFRA_DIR of the broker: data, configuration, logs */
    char brokers[48]; /* "127.0.0.1:<port>", for WA_KAFKA_BROKERS */
    char log[200];    /* the JVM's stdout and stderr */
    pid_t pid;        /* 0 while it is not running */
};

/* Picks free ports and the directory /tmp/wa-chaos-<name>-<pid>-kafka (emptied). */
void chaos_kafka_init(struct chaos_kafka *k, const char *name);
/* Starts the broker (data kept from an earlier run) and waits until it answers a metadata
 * request; fails the test after 180 s. Returns the milliseconds it took. */
uint64_t chaos_kafka_start(struct chaos_kafka *k);
/* Sends sig (SIGKILL: a crash) and reaps the broker. */
void chaos_kafka_stop(struct chaos_kafka *k, int sig);
/* Stops a running broker (SIGTERM) and removes the directory. Safe on a zeroed struct. */
void chaos_kafka_cleanup(struct chaos_kafka *k);

/* A private Redis; the fields are read-only for the caller. */
struct chaos_redis {
    int port;
    char dir[160];
    char url[48]; /* "redis://127.0.0.1:<port>/0", for WA_REDIS_URL */
    char log[200];
    pid_t pid;
};

void chaos_redis_init(struct chaos_redis *r, const char *name);
/* Starts redis-server on the same data (appendonly, appendfsync always; no persistence with
 * WA_CHAOS_REDIS_AOF=no) and waits for PONG. */
uint64_t chaos_redis_start(struct chaos_redis *r);
void chaos_redis_stop(struct chaos_redis *r, int sig);
void chaos_redis_cleanup(struct chaos_redis *r);

/* The integer value of variable var in seconds, dflt when unset or not a positive number. */
long chaos_seconds(const char *var, long dflt);
/* Parses var (or dflt when unset) as a comma-separated list of positive seconds ("5,30,120")
 * into out; returns how many (at most max). */
size_t chaos_seconds_list(const char *var, const char *dflt, long *out, size_t max);

/* Removes a directory tree (best effort). */
void chaos_rmtree(const char *dir);

#endif
