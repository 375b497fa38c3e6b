/*
 * wactl.h: the operator CLI's shared state and the commands (docs/wactl.md).
 *
 * main.c parses the command line into struct wx and calls one command; every command returns
 * an exit status from the list below, prints results on stdout and reasons on stderr. Kafka is
 * read through read.c (a throw-away consumer group per run, a wa_loop run until the command is
 * satisfied, idle or out of time) and written through wx_produce (one blocking round trip).
 *
 * Threading: one thread; the loop runs only inside wx_read and wx_produce and the HTTP calls.
 */
#ifndef WACTL_H
#define WACTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "wa/cloudevent.h"
#include "wa/kafka.h"

/* Exit statuses, for scripts. */
enum {
    WX_OK = 0,      /* done; health: everything ready; send --wait: accepted */
    WX_NO = 1,      /* the answer is no: not ready, failed, nothing found, declined */
    WX_USAGE = 2,   /* bad command line or configuration */
    WX_UNAVAIL = 3, /* Kafka or a daemon could not be reached, or the time ran out */
};

#define WX_MAX_URLS 16

struct wx {
    const char *brokers;               /* --brokers, WA_KAFKA_BROKERS, default 127.0.0.1:9092 */
    const char *prefix;                /* --prefix, WA_TOPIC_PREFIX, default "wa." */
    struct wa_kafka_security security; /* WA_KAFKA_SECURITY_PROTOCOL & co (environment) */
    const char *urls[WX_MAX_URLS];     /* health --url */
    size_t nurls;
    const char *gateway; /* health --gateway */
    int64_t timeout_ms;  /* --timeout: the whole command; default per command */
    int64_t idle_ms;     /* --idle: reading stops after this long without a record; 2 s */
    int64_t count;       /* --count: stop after this many records (tail); 0 = no limit */
    bool from_beginning; /* tail --from-beginning */
    bool json;           /* --json: whole events, one per line */
    bool dry_run, yes, all, wait, verbose;
    /* filters (tail, dlq) */
    const char *conversation, *type, *trace, *request_id;
    /* send */
    const char *to, *text, *phone_number_id, *template_name, *lang, *data_file, *category;
    /* dlq */
    const char *topic; /* --topic (after the prefix); dlq default outbound.dlq */
    int partitions;    /* topics ensure --partitions */
    char **args;       /* positional arguments after the command */
    int nargs;
};

/* A record read by wx_read. Borrowed during the callback. ev is NULL when the value is not a
 * CloudEvent (raw printed instead). */
struct wx_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    const char *key;
    size_t keylen;
    const char *value;
    size_t len;
    const struct wa_cloudevent *ev;
    const char *trace_id; /* from ev's traceparent, "" when none */
};

/* Returns false to stop reading. */
typedef bool (*wx_record_fn)(const struct wx_record *r, void *arg);

/*
 * Reads topics (names after the prefix), from the beginning or from now, calling fn for each
 * record, until fn returns false, x->count records were seen, nothing arrived for idle_ms
 * after the partitions were assigned (idle_ms <= 0: never), or timeout_ms passed (<= 0:
 * never). WX_OK, WX_UNAVAIL (no broker, or the time ran out before an assignment), WX_USAGE.
 */
int wx_read(struct wx *x, const char *const *topics, size_t n, bool from_beginning, int64_t idle_ms,
            int64_t timeout_ms, wx_record_fn fn, void *arg);

/* Produces one CloudEvent (data from ev->data) to topic (after the prefix) with key and waits
 * for the acknowledgement. WX_OK or WX_UNAVAIL (reason on stderr). */
int wx_produce(struct wx *x, const char *topic, const char *key, const struct wa_cloudevent *ev);

/* Prints one record: a line "time topic[partition]@offset type subject id trace" and a short
 * summary of the data, or with --json the whole event. */
void wx_print_record(const struct wx *x, const struct wx_record *r, FILE *out);

/* True when r passes the --conversation, --type, --trace and --request-id filters. */
bool wx_match(const struct wx *x, const struct wx_record *r);

int wx_cmd_health(struct wx *x);
int wx_cmd_send(struct wx *x);
int wx_cmd_tail(struct wx *x);
int wx_cmd_trace(struct wx *x);
int wx_cmd_dlq(struct wx *x);
int wx_cmd_spool(struct wx *x);
int wx_cmd_topics(struct wx *x);

#endif
