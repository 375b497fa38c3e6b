/*
 * wa/kv.h: an asynchronous Redis client on the wa_loop (hiredis underneath, never exposed).
 *
 * One connection per struct wa_kv, driven by the loop thread only: every function here must be
 * called on the loop thread, and every callback runs there. The client reconnects by itself
 * with back-off (100 ms doubling to 2 s) and pings Redis every second; wa_kv_ready() is true
 * only while the last ping was answered. Commands issued while there is no established
 * connection (down, or a connection attempt in progress) fail at once with WA_EUNAVAIL: nothing
 * is queued for later. Commands already sent when the connection drops get WA_EUNAVAIL.
 *
 * Async contract (docs/style.md): a function taking a callback either returns WA_OK and calls
 * the callback exactly once, later, on the loop thread, or returns an error and never calls it.
 * Every command has a timeout (wa_kv_config.command_timeout_ms); on expiry the callback gets
 * WA_ETIMEDOUT and the late reply, if any, is dropped. wa_kv_close() and wa_kv_free() call the
 * callbacks of all commands still pending with WA_ECLOSED before they return.
 *
 * Errors seen by callbacks: WA_OK (a reply arrived), WA_EIO (Redis answered with an error reply;
 * the reply is still passed so its text can be read), WA_ETIMEDOUT, WA_EUNAVAIL (the connection
 * dropped before the reply), WA_ECLOSED (wa_kv_close, wa_kv_free), WA_EPARSE (a convenience got
 * a reply of an unexpected type).
 */
#ifndef WA_KV_H
#define WA_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/err.h"
#include "wa/loop.h"

struct wa_kv;
struct wa_kv_reply; /* opaque; read through the accessors below */

struct wa_kv_config {
    /* "redis://host:port/db" or "redis://:password@host:port/db"; port defaults to 6379 and
     * db to 0. Borrowed during wa_kv_new (copied). */
    const char *url;
    uint32_t command_timeout_ms; /* 0 = default 1000 */
    uint32_t connect_timeout_ms; /* 0 = default 1000 */
    uint32_t ping_interval_ms;   /* 0 = default 1000 */
    uint32_t max_pending;        /* commands in flight (incl. timed out); 0 = default 10000 */
};

/* Parsed form of a redis:// URL (exposed for configuration checks and tests). */
struct wa_kv_url {
    char host[256];
    int port;
    int db;
    char username[128]; /* empty when none (Redis 6 ACL user; AUTH user password) */
    char password[256]; /* empty when none */
};

/*
 * Parses url into out (caller's storage). Returns WA_OK, or WA_ECONFIG with detail in error
 * (never echoing the password).
 */
enum wa_err wa_kv_url_parse(const char *url, struct wa_kv_url *out, struct wa_error *error);

/*
 * Returns a new client in *out; free with wa_kv_free(). loop is borrowed and must outlive the
 * client. The first connection attempt starts at once; it does not have to succeed for this
 * call to return WA_OK (watch wa_kv_ready()). Fails with WA_ECONFIG for a bad URL.
 */
enum wa_err wa_kv_new(struct wa_loop *loop, const struct wa_kv_config *config, struct wa_kv **out,
                      struct wa_error *error);

/*
 * Closes the connection without freeing the client: callbacks of pending commands run with
 * WA_ECLOSED before this returns; afterwards no callback runs and every command fails with
 * WA_ECLOSED. The handle stays valid until wa_kv_free(). Idempotent; accepts NULL.
 */
void wa_kv_close(struct wa_kv *kv);

/*
 * Closes the connection (when not closed yet) and frees the client. Callbacks of pending
 * commands run with WA_ECLOSED before this returns. May be called from inside any wa_kv
 * callback. Accepts NULL.
 */
void wa_kv_free(struct wa_kv *kv);

/* True while connected and the last periodic PING was answered within the command timeout. */
bool wa_kv_ready(const struct wa_kv *kv);

/* ---- replies ---- */

enum wa_kv_reply_type {
    WA_KV_REPLY_NIL,
    WA_KV_REPLY_INT,
    WA_KV_REPLY_STRING,
    WA_KV_REPLY_STATUS, /* simple string such as "OK" or "PONG" */
    WA_KV_REPLY_ERROR,  /* error string such as "ERR unknown command" */
    WA_KV_REPLY_ARRAY,
};

/*
 * Replies are borrowed: valid only during the callback that received them. The accessors
 * accept reply == NULL (as NIL).
 */
enum wa_kv_reply_type wa_kv_reply_type(const struct wa_kv_reply *reply);
/* The integer of an INT reply; 0 for other types. */
long long wa_kv_reply_int(const struct wa_kv_reply *reply);
/* The bytes of a STRING, STATUS or ERROR reply (NUL-terminated, *len set if len != NULL);
 * NULL for other types. Borrowed like the reply. */
const char *wa_kv_reply_str(const struct wa_kv_reply *reply, size_t *len);
/* Number of elements of an ARRAY reply; 0 for other types. */
size_t wa_kv_reply_len(const struct wa_kv_reply *reply);
/* Element i of an ARRAY reply (borrowed like the reply), or NULL when out of range. */
const struct wa_kv_reply *wa_kv_reply_at(const struct wa_kv_reply *reply, size_t i);

/* ---- commands ---- */

/* reply is borrowed during the call; NULL unless err is WA_OK or WA_EIO. */
typedef void (*wa_kv_reply_fn)(void *arg, enum wa_err err, const struct wa_kv_reply *reply);
/* For commands without a useful result (SET). */
typedef void (*wa_kv_done_fn)(void *arg, enum wa_err err);
/* claimed is true when this caller set the key (it did not exist). */
typedef void (*wa_kv_claim_fn)(void *arg, enum wa_err err, bool claimed);
/* value (borrowed during the call, NUL-terminated) is NULL and err WA_ENOTFOUND for a
 * missing key. */
typedef void (*wa_kv_get_fn)(void *arg, enum wa_err err, const char *value, size_t len);
/* For commands answering an integer (DEL: number of keys removed). */
typedef void (*wa_kv_int_fn)(void *arg, enum wa_err err, long long value);

/*
 * Sends one command. argv and argvlen (argvlen may be NULL for NUL-terminated arguments) are
 * copied before this returns. Returns WA_OK, WA_EUNAVAIL (not connected), WA_ELIMIT
 * (max_pending reached), WA_ECLOSED, WA_EINVAL or WA_ENOMEM.
 */
enum wa_err wa_kv_command_argv(struct wa_kv *kv, int argc, const char **argv, const size_t *argvlen,
                               wa_kv_reply_fn cb, void *arg);

/*
 * SET key value NX PX ttl_ms: an atomic claim for deduplication and idempotency. cb gets
 * claimed == true for the one caller that created the key. ttl_ms must be > 0 (WA_EINVAL).
 * key and value are copied.
 */
enum wa_err wa_kv_claim(struct wa_kv *kv, const char *key, const char *value, uint64_t ttl_ms,
                        wa_kv_claim_fn cb, void *arg);

/* GET key. key is copied. */
enum wa_err wa_kv_get(struct wa_kv *kv, const char *key, wa_kv_get_fn cb, void *arg);

/* SET key value PX ttl_ms (ttl_ms == 0: no expiry). key and value are copied. */
enum wa_err wa_kv_set_px(struct wa_kv *kv, const char *key, const char *value, uint64_t ttl_ms,
                         wa_kv_done_fn cb, void *arg);

/* DEL key; cb gets the number of keys removed (0 or 1). key is copied. */
enum wa_err wa_kv_del(struct wa_kv *kv, const char *key, wa_kv_int_fn cb, void *arg);

/*
 * Runs a Lua script: EVALSHA first, EVAL when Redis answers NOSCRIPT (which also loads it, so
 * later calls use the cached script). keys and args are copied; script is borrowed until cb
 * has run (every caller's is a static string). The timeout covers both attempts.
 */
enum wa_err wa_kv_eval(struct wa_kv *kv, const char *script, int nkeys, const char **keys,
                       int nargs, const char **args, wa_kv_reply_fn cb, void *arg);

/*
 * A token bucket in Redis at key, shared by every client that uses the same key (bucket.c):
 * refilled at rate_per_s (Redis's clock), holding at most burst tokens (a new bucket starts
 * full). Takes up to want tokens at once. cb gets the number granted (0..want) and, when none
 * was, wait_ms: when one token will exist (at least 1). err is the command's, or WA_EPARSE for
 * an unexpected reply (granted 0). Returns WA_EINVAL (rate <= 0, burst or want 0) or the
 * errors of wa_kv_eval, and then never calls cb.
 */
typedef void (*wa_kv_bucket_fn)(void *arg, enum wa_err err, uint64_t granted, uint64_t wait_ms);
enum wa_err wa_kv_bucket_take(struct wa_kv *kv, const char *key, double rate_per_s, uint64_t burst,
                              uint64_t want, wa_kv_bucket_fn cb, void *arg);
/*
 * Pauses the bucket at key for every client: no token is granted for pause_ms (Redis's clock;
 * a longer pause already set is kept) and the tokens left are dropped; takes during the pause
 * answer 0 with wait_ms = the time left. cb (may be NULL) gets the command's error. Returns
 * WA_EINVAL (pause_ms 0) or the errors of wa_kv_eval, and then never calls cb.
 */
enum wa_err wa_kv_bucket_pause(struct wa_kv *kv, const char *key, uint64_t pause_ms,
                               wa_kv_done_fn cb, void *arg);

#define WA_KV_SHA1_HEX_LEN 41
/* Writes the lowercase hex SHA-1 of script (as Redis names scripts) into out. */
void wa_kv_script_sha1(const char *script, char out[WA_KV_SHA1_HEX_LEN]);

#endif
