/*
 * wa/kafka.h: Kafka producer, consumer and topic admin driven from the wabridge event loop.
 *
 * Threading: every function here must be called on the loop thread, and every callback runs on
 * the loop thread. librdkafka's own threads only write a byte into a pipe watched by the loop
 * (rd_kafka_queue_io_event_enable); delivery reports, consumed messages, rebalances and errors
 * are all served from the loop. The only blocking calls are the ones documented as "blocks":
 * wa_kafka_producer_flush(), wa_kafka_consumer_close() and wa_kafka_topics_ensure(), meant for
 * startup, shutdown and tests.
 *
 * Topic names: every function takes full topic names; wa_kafka_topic() builds one from the
 * configured prefix (architecture.md: "wa." + "inbound.message").
 *
 * Guarantees: the producer is idempotent with acks=all, so WA_OK in a delivery callback means
 * every in-sync replica has the message. The consumer commits an offset only once every message
 * at or below it was handed back with wa_kafka_consumer_done(): at-least-once, duplicates
 * possible after a crash or a rebalance, never a loss. No librdkafka type appears here.
 */
#ifndef WA_KAFKA_H
#define WA_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/config.h"
#include "wa/err.h"
#include "wa/loop.h"
#include "wa/metrics.h"

struct wa_cloudevent;
struct wa_kafka_producer;
struct wa_kafka_consumer;

/* One extra librdkafka property, e.g. {"socket.timeout.ms", "2000"}. Borrowed. */
struct wa_kafka_property {
    const char *name;
    const char *value;
};

/*
 * Transport security of every connection to the brokers (docs/configuration.md, WA_KAFKA_*).
 * All zero: PLAINTEXT. Strings borrowed like struct wa_kafka_config's; the two passwords are
 * secrets and never appear in a log line or an error message.
 */
struct wa_kafka_security {
    const char *protocol;       /* "PLAINTEXT" (NULL or ""), "SSL", "SASL_PLAINTEXT", "SASL_SSL" */
    const char *sasl_mechanism; /* SASL_*: "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512" */
    const char *sasl_username;  /* SASL_*: required */
    const char *sasl_password;  /* SASL_*: required; secret */
    const char *ca_path;        /* SSL, SASL_SSL: PEM CA bundle; NULL or "": the system's CAs */
    const char *cert_path;      /* SSL, SASL_SSL: client certificate (PEM), only with key_path */
    const char *key_path;       /* client private key (PEM), only with cert_path */
    const char *key_password;   /* the key's password when it is encrypted; secret */
    bool no_hostname_check;     /* SSL, SASL_SSL: skip matching the broker's certificate to its
                                   host name (the chain is still verified); false: checked */
};

/*
 * Checks s for a combination the clients would refuse or that would leak the password: an
 * unknown protocol or mechanism, SASL without mechanism, user name or password, a SASL or TLS
 * setting with a protocol that does not use it, PLAIN over SASL_PLAINTEXT (the password in
 * clear text), a certificate without its key (or the reverse), a file that cannot be read.
 * WA_OK or WA_ECONFIG with a message naming the WA_KAFKA_* variable. wa_kafka_producer_new(),
 * wa_kafka_consumer_new() and the admin calls run it too; daemons call it at start.
 */
enum wa_err wa_kafka_security_check(const struct wa_kafka_security *s, struct wa_error *error);

/*
 * The WA_KAFKA_* variables of struct wa_kafka_security, as loaded by wa/config.h (strings owned
 * by the configuration; "" = unset). WA_CFG_KAFKA_SECURITY(T, m) gives the spec rows for member
 * m (a struct wa_kafka_security_cfg) of struct T: the daemons' common configuration
 * (WA_CFG_COMMON) and the command-line tools load the same names, *_FILE included.
 */
struct wa_kafka_security_cfg {
    char *protocol;
    char *sasl_mechanism;
    char *sasl_username;
    char *sasl_password;
    char *ca_path;
    char *cert_path;
    char *key_path;
    char *key_password;
    bool verify_hostname;
};
/* clang-format off */
#define WA_CFG_KAFKA_SECURITY(T, m)                                                                \
    {"WA_KAFKA_SECURITY_PROTOCOL", WA_CFG_STRING, "PLAINTEXT", 0, 0, 0,                            \
     offsetof(T, m.protocol),                                                       \
     "Kafka transport: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"},                               \
    {"WA_KAFKA_SASL_MECHANISM", WA_CFG_STRING, "", 0, 0, 0, offsetof(T, m.sasl_mechanism),  \
     "SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},                                             \
    {"WA_KAFKA_SASL_USERNAME", WA_CFG_STRING, "", 0, 0, 0, offsetof(T, m.sasl_username),    \
     "SASL_*: user name"},                                                                         \
    {"WA_KAFKA_SASL_PASSWORD", WA_CFG_STRING, "", 0, 0, WA_CFG_SECRET,                             \
     offsetof(T, m.sasl_password), "SASL_*: password"},                                      \
    {"WA_KAFKA_SSL_CA_PATH", WA_CFG_STRING, "", 0, 0, 0, offsetof(T, m.ca_path),        \
     "SSL, SASL_SSL: PEM file of the CAs that sign the brokers (empty: the system's)"},            \
    {"WA_KAFKA_SSL_CERT_PATH", WA_CFG_STRING, "", 0, 0, 0, offsetof(T, m.cert_path),    \
     "SSL, SASL_SSL: client certificate (PEM) for mutual TLS, with WA_KAFKA_SSL_KEY_PATH"},        \
    {"WA_KAFKA_SSL_KEY_PATH", WA_CFG_STRING, "", 0, 0, 0, offsetof(T, m.key_path),      \
     "SSL, SASL_SSL: the client certificate's private key (PEM)"},                                 \
    {"WA_KAFKA_SSL_KEY_PASSWORD", WA_CFG_STRING, "", 0, 0, WA_CFG_SECRET,                          \
     offsetof(T, m.key_password), "password of an encrypted WA_KAFKA_SSL_KEY_PATH"},     \
    {"WA_KAFKA_SSL_VERIFY_HOSTNAME", WA_CFG_BOOL, "true", 0, 0, 0,                                 \
     offsetof(T, m.verify_hostname),                                                     \
     "SSL, SASL_SSL: match the broker certificate to its host name (the chain is always checked)"}
/* clang-format on */

/* Fills out from c (strings borrowed from c). */
void wa_kafka_security_from_cfg(const struct wa_kafka_security_cfg *c,
                                struct wa_kafka_security *out);

/*
 * Connection and tuning settings shared by producer, consumer and admin. Every pointer is
 * borrowed for the duration of the call that takes the struct (the library copies what it
 * keeps). A numeric field left 0 selects the default given beside it.
 */
struct wa_kafka_config {
    const char *brokers;               /* required: "host:port[,host:port...]" */
    const char *client_id;             /* default "wabridge" */
    const char *topic_prefix;          /* default "" (services pass WA_TOPIC_PREFIX, "wa.") */
    struct wa_kafka_security security; /* zero: PLAINTEXT */
    int message_timeout_ms;  /* producer: give up on a message after this; default 30000 */
    int linger_us;           /* producer: batching delay in µs; 0 = send at once; < 0: 5 ms */
    const char *compression; /* producer compression.type; NULL or "": none */
    int queue_max_messages;  /* producer: local queue bound; default 100000 */
    int queue_max_kbytes;    /* producer: local queue bound; default 65536 (64 MiB) */
    int max_in_flight;       /* consumer: pause fetching above this many not-done messages;
                                 default 1000 */
    int commit_interval_ms;  /* consumer: asynchronous commit period; default 200 */
    int probe_interval_ms;   /* readiness probe (librdkafka statistics) period; default 1000 */
    const struct wa_kafka_property *props; /* applied last, override everything above */
    size_t nprops;
    /* Optional registry (borrowed: must outlive the client) for wa_kafka_produced_total{topic,
       outcome} (producer deliveries) and wa_kafka_consumer_lag{topic} (consumer, from the
       statistics every probe_interval_ms: records behind the end of the assigned partitions). */
    struct wa_metrics *metrics;
};

/* A message header. name and value are borrowed for the duration of the call. */
struct wa_kafka_header {
    const char *name;
    const void *value;
    size_t len;
};

/*
 * Writes prefix + name (e.g. "wa.inbound.message") into buf. Returns WA_ETOOBIG when it does
 * not fit (buf then holds an empty string), WA_EINVAL for an empty name.
 */
enum wa_err wa_kafka_topic(const struct wa_kafka_config *cfg, const char *name, char *buf,
                           size_t size);

/* ---- producer ---- */

/*
 * Delivery report for one message, on the loop thread, exactly once. err is WA_OK when every
 * in-sync replica acknowledged it (partition and offset are then set), else: WA_ETIMEDOUT
 * (message.timeout.ms passed), WA_ETOOBIG, WA_ENOTFOUND (unknown topic), WA_EAUTH,
 * WA_ECLOSED (producer freed before delivery), WA_EUNAVAIL / WA_EIO (other failures);
 * partition and offset are -1 on failure.
 */
typedef void (*wa_kafka_delivery_fn)(enum wa_err err, int32_t partition, int64_t offset, void *arg);

/*
 * Returns a new producer in *out (idempotent, acks=all, lz4 when built in); free with
 * wa_kafka_producer_free(). Does not wait for brokers: see wa_kafka_producer_ready().
 * Errors: WA_ECONFIG for a rejected property (the message names it), WA_EIO, WA_ENOMEM.
 */
enum wa_err wa_kafka_producer_new(struct wa_loop *loop, const struct wa_kafka_config *cfg,
                                  struct wa_kafka_producer **out, struct wa_error *error);

/*
 * Queues one message. Copies topic, key, value and headers. Returns WA_OK and later calls
 * cb(arg) once on the loop thread, or returns an error and never calls back: WA_EAGAIN when
 * the local queue is full (back off), WA_ETOOBIG, WA_EUNAVAIL after a fatal producer error,
 * WA_ECLOSED after wa_kafka_producer_close(), WA_EINVAL. key may be NULL (keylen 0); cb may
 * be NULL when nobody cares.
 */
enum wa_err wa_kafka_produce(struct wa_kafka_producer *p, const char *topic, const void *key,
                             size_t keylen, const void *value, size_t len,
                             const struct wa_kafka_header *headers, size_t nheaders,
                             wa_kafka_delivery_fn cb, void *arg);

/*
 * Encodes ev (wa/cloudevent.h, structured mode) and produces it with ev->subject as key and
 * the headers "ce_specversion", "ce_id", "ce_type", "ce_source" and "traceparent" (when set)
 * beside the structured body. Same callback contract as wa_kafka_produce(); WA_EINVAL when ev
 * lacks a required attribute.
 */
enum wa_err wa_kafka_produce_event(struct wa_kafka_producer *p, const char *topic,
                                   const struct wa_cloudevent *ev, wa_kafka_delivery_fn cb,
                                   void *arg);

/*
 * Blocks up to timeout_ms while queued messages are delivered; their callbacks run inside this
 * call. For graceful shutdown only: it stalls the loop. WA_OK when nothing is outstanding,
 * WA_ETIMEDOUT otherwise.
 */
enum wa_err wa_kafka_producer_flush(struct wa_kafka_producer *p, int timeout_ms);

/* True when at least one broker connection is up (recent statistics or a delivery). */
bool wa_kafka_producer_ready(const struct wa_kafka_producer *p);

/* Messages produced whose delivery callback has not run yet. */
size_t wa_kafka_producer_outq(const struct wa_kafka_producer *p);

/*
 * Closes the producer without freeing it: messages still outstanding are purged and their
 * callbacks run with WA_ECLOSED inside this call (call wa_kafka_producer_flush() first to
 * deliver them); afterwards no callback runs and wa_kafka_produce() returns WA_ECLOSED. The
 * handle stays valid until wa_kafka_producer_free(). Idempotent; accepts NULL. Not from inside
 * a callback.
 */
void wa_kafka_producer_close(struct wa_kafka_producer *p);

/*
 * Frees the producer, closing it first (see wa_kafka_producer_close). May block briefly while
 * librdkafka's threads stop. Accepts NULL. Not from inside a callback.
 */
void wa_kafka_producer_free(struct wa_kafka_producer *p);

/* ---- consumer ---- */

/*
 * A consumed message. Owned by the library and valid (with everything it points to) from the
 * wa_kafka_message_fn call until the application passes it to wa_kafka_consumer_done(); the
 * application must call that exactly once per message, from the callback or later.
 */
struct wa_kafka_msg {
    const char *topic; /* borrowed from the message */
    int32_t partition;
    int64_t offset;
    const void *key; /* NULL when the message has no key */
    size_t keylen;
    const void *value; /* NULL for a tombstone */
    size_t len;
    int64_t timestamp_ms; /* producer or log-append time, -1 when unknown */
};

/*
 * Returns the value of the last header called name (borrowed like msg) and its length in *len,
 * or NULL when there is no such header.
 */
const void *wa_kafka_msg_header(const struct wa_kafka_msg *msg, const char *name, size_t *len);

/* A message arrived, on the loop thread. See struct wa_kafka_msg for its lifetime. */
typedef void (*wa_kafka_message_fn)(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg,
                                    void *arg);

/*
 * Returns a new consumer in *out, subscribed as member of group_id to topics (full names,
 * copied); free with wa_kafka_consumer_free(). Offsets are committed only through
 * wa_kafka_consumer_done(); a group without committed offsets starts at the earliest message.
 * Uses the cooperative-sticky assignor; read_committed isolation.
 */
enum wa_err wa_kafka_consumer_new(struct wa_loop *loop, const struct wa_kafka_config *cfg,
                                  const char *group_id, const char *const *topics, size_t n,
                                  wa_kafka_message_fn on_message, void *arg,
                                  struct wa_kafka_consumer **out, struct wa_error *error);

/*
 * Hands msg back: its side effects are complete. Takes ownership of msg (invalid afterwards).
 * Its offset becomes committable once every earlier message of its partition is done too;
 * committing happens on a timer, on revoke and on close. Messages of a partition revoked
 * meanwhile are just freed (their new owner gets them again: at-least-once).
 */
void wa_kafka_consumer_done(struct wa_kafka_consumer *c, struct wa_kafka_msg *msg);

/* Stops fetching from every assigned partition (and ones assigned later) for good: intake
 * stops at drain, while the messages in flight finish and their offsets are committed. */
void wa_kafka_consumer_pause(struct wa_kafka_consumer *c);
/* True while fetching is paused, by the application or by max_in_flight. */
bool wa_kafka_consumer_paused(const struct wa_kafka_consumer *c);

/* Messages delivered and not yet done. */
size_t wa_kafka_consumer_in_flight(const struct wa_kafka_consumer *c);

/* Partitions assigned to this member now (0 before the group's first assignment). */
size_t wa_kafka_consumer_assigned(const struct wa_kafka_consumer *c);

/* True when at least one broker connection is up (recent statistics or a message). */
bool wa_kafka_consumer_ready(const struct wa_kafka_consumer *c);

/*
 * Commits every done offset, revokes the assignment and leaves the group. Blocks (for the
 * group coordinator's answers): for shutdown only. No message is delivered afterwards;
 * wa_kafka_consumer_done() may still be called for messages in flight (nothing more is
 * committed). Returns WA_OK, or WA_EUNAVAIL / WA_ETIMEDOUT when the final commit failed.
 * Calling it twice is harmless.
 */
enum wa_err wa_kafka_consumer_close(struct wa_kafka_consumer *c, struct wa_error *error);

/*
 * Closes (when not yet closed) and frees. Messages not yet done are freed too: their handles
 * become invalid. Accepts NULL. Not from inside a callback.
 */
void wa_kafka_consumer_free(struct wa_kafka_consumer *c);

/* ---- admin ---- */

/*
 * Creates the topics that do not exist yet (names are full topic names) with partitions
 * partitions and the broker's default replication factor, then waits until their metadata is
 * visible. Blocks up to about timeout_ms: for startup and tests only, never on a running loop.
 * WA_OK when all exist; WA_ETIMEDOUT, WA_EUNAVAIL or WA_EINVAL with the topic in the message.
 */
enum wa_err wa_kafka_topics_ensure(const struct wa_kafka_config *cfg, const char *const *names,
                                   size_t n, int partitions, int timeout_ms,
                                   struct wa_error *error);
/*
 * Asks the brokers for every topic (one metadata request; blocks up to about timeout_ms: for
 * scripts, startup and tests only) and calls fn(arg, name, partitions) for each, name borrowed
 * during the call. fn may be NULL: then it is a readiness probe. WA_OK when a broker answered;
 * WA_ETIMEDOUT, WA_EUNAVAIL or WA_ECONFIG otherwise.
 */
typedef void (*wa_kafka_topic_fn)(void *arg, const char *name, int partitions);
enum wa_err wa_kafka_topics_list(const struct wa_kafka_config *cfg, int timeout_ms,
                                 wa_kafka_topic_fn fn, void *arg, struct wa_error *error);

/*
 * Deletes the topics (full names) and their data; a topic that does not exist is no error.
 * Blocks up to about timeout_ms: for scripts and tests only, never on a running loop. WA_OK
 * when the broker accepted every deletion (it completes them in the background); WA_ETIMEDOUT,
 * WA_EUNAVAIL, WA_EAUTH or WA_EINVAL otherwise, with the topic in the message.
 */
enum wa_err wa_kafka_topics_delete(const struct wa_kafka_config *cfg, const char *const *names,
                                   size_t n, int timeout_ms, struct wa_error *error);

/*
 * Waits up to timeout_ms for librdkafka's background threads to end after every handle was
 * freed (for leak-checked tests and orderly exit). Returns true when they did.
 */
bool wa_kafka_wait_destroyed(int timeout_ms);

#endif
