/*
 * kv.c: the asynchronous Redis client: hiredis async context, our own event adapter on the
 * wa_loop, per-command timeouts, reconnect with back-off and a readiness ping.
 *
 * Threading: everything runs on the loop thread, except the lookup of a host name, which runs
 * on resolve.c's thread (hiredis would block the loop in getaddrinfo at every reconnect): hiredis
 * is only ever given numeric addresses.
 *
 * Reading order: the adapter (hiredis -> wa_io), the connection (connect, on_connect,
 * on_cleanup, reconnect), operations (op_new, on_reply, on_op_timeout, op_complete), the ping,
 * the public API.
 *
 * Ownership and lifetimes, the invariants that keep this safe:
 * - An op is one request made of hiredis commands (two for EVALSHA falling back to EVAL).
 *   hiredis holds a reference to it (op->refs) per command in flight and calls on_reply exactly
 *   once per command: with the reply, or with NULL when the context is torn down. An op is
 *   freed when it is done (its callback has run) and no hiredis reference is left, so a reply
 *   arriving after a timeout finds the op still allocated and is dropped.
 * - Every op alive is on kv->ops. Closing (wa_kv_close, wa_kv_free) completes the pending ones
 *   with WA_ECLOSED and then orphans every op (op->kv = NULL), so a later on_reply never
 *   touches the freed client.
 * - The hooks hiredis calls with the client as data (adapter, on_connect) are detached from a
 *   context before the client lets go of it: in on_cleanup (the last hook hiredis calls on a
 *   context it tears down itself) and when closing.
 * - Callbacks may call wa_kv_free(). Every entry from the loop (I/O, timers) is bracketed by
 *   enter()/leave(); wa_kv_free() at depth > 0 only closes, and the outermost leave() frees.
 */
#include "wa/kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "wa/crypto.h"
#include "wa/list.h"
#include "wa/log.h"

#include "resolve.h"

#define DEFAULT_TIMEOUT_MS     1000u
#define DEFAULT_PING_MS        1000u
#define DEFAULT_MAX_PENDING    10000u
#define BACKOFF_MIN_MS         100u
#define BACKOFF_MAX_MS         2000u
#define PING_FAILURES_TO_RESET 3u /* consecutive ping timeouts before the connection is reset */
#define MAX_SCRIPT_ARGS        1024

enum op_kind {
    OP_REPLY, /* wa_kv_command_argv */
    OP_EVAL,  /* wa_kv_eval: like OP_REPLY, with the NOSCRIPT fallback */
    OP_DONE,  /* wa_kv_set_px */
    OP_CLAIM, /* wa_kv_claim */
    OP_GET,   /* wa_kv_get */
    OP_INT,   /* wa_kv_del */
    OP_PING,  /* internal: readiness */
    OP_SETUP, /* internal: AUTH, SELECT */
};

enum state { ST_IDLE, ST_CONNECTING, ST_CONNECTED };

struct op {
    struct wa_kv *kv;    /* NULL once orphaned by wa_kv_free */
    struct wa_list link; /* on kv->ops while kv is set */
    struct wa_timer *timer;
    enum op_kind kind;
    bool done;  /* the callback has run (or the op is internal and finished) */
    bool in_cb; /* op_complete is running: not to be freed yet */
    bool eval_retried;
    int refs; /* hiredis commands in flight for this op */
    union {
        wa_kv_reply_fn reply;
        wa_kv_done_fn done;
        wa_kv_claim_fn claim;
        wa_kv_get_fn get;
        wa_kv_int_fn integer;
    } cb;
    void *arg;
    /* OP_EVAL, for the NOSCRIPT fallback: the script (borrowed) and the command in RESP,
     * "EVALSHA sha" followed by the tail (numkeys, keys, args) from eval_tail on (owned) */
    const char *eval_script;
    int eval_total;
    char *eval_cmd;
    size_t eval_cmd_len, eval_tail;
};

#define SCRIPT_CACHE 8

struct wa_kv {
    struct wa_loop *loop;
    struct wa_kv_url url;
    uint32_t command_timeout_ms, connect_timeout_ms, ping_interval_ms, max_pending;

    redisAsyncContext *ac; /* NULL while there is no connection */
    enum state state;
    struct wa_io *io;
    unsigned io_events;
    struct wa_timer *reconnect_timer, *connect_timer, *ping_timer;
    uint32_t backoff_ms;
    struct kv_resolver *resolver; /* NULL when the URL's host is an address */
    struct wa_io *resolve_io;
    bool resolving;

    bool ready;
    bool ping_outstanding;
    unsigned ping_failures;

    struct wa_list ops; /* every op alive */
    size_t nops;

    unsigned depth;
    bool closing;
    bool close_held; /* wa_kv_close: one enter() held until wa_kv_free */
    struct wa_log_limit warn_limit;

    /* SHA-1 of the scripts wa_kv_eval ran, so a script called per request is hashed once: a
     * hit needs the same pointer and the same text (callers pass static strings; the copy
     * makes a reused buffer with other text a miss). Round-robin replacement. */
    struct script_sha {
        const char *ptr;
        char *text;
        char sha[WA_KV_SHA1_HEX_LEN];
    } scripts[SCRIPT_CACHE];
    unsigned next_script;
};

static void connect_now(struct wa_kv *kv);
static void ping_result(struct wa_kv *kv, enum wa_err err, const redisReply *reply);

/* ---- re-entrancy guard ---- */

static void
enter(struct wa_kv *kv)
{
    kv->depth++;
}

static void
destroy(struct wa_kv *kv)
{
    wa_log_info(NULL, "redis client closed");
    for (size_t i = 0; i < SCRIPT_CACHE; i++) {
        free(kv->scripts[i].text);
    }
    free(kv);
}

/* The hex SHA-1 of script, from the cache when it ran before (see struct wa_kv). */
static void
script_sha1(struct wa_kv *kv, const char *script, char out[WA_KV_SHA1_HEX_LEN])
{
    struct script_sha *e;
    size_t i;

    for (i = 0; i < SCRIPT_CACHE; i++) {
        e = &kv->scripts[i];
        if (e->ptr == script && strcmp(e->text, script) == 0) {
            memcpy(out, e->sha, WA_KV_SHA1_HEX_LEN);
            return;
        }
    }
    wa_kv_script_sha1(script, out);
    e = &kv->scripts[kv->next_script++ % SCRIPT_CACHE];
    free(e->text);
    if ((e->text = strdup(script)) == NULL) {
        e->ptr = NULL;
        return;
    }
    e->ptr = script;
    memcpy(e->sha, out, WA_KV_SHA1_HEX_LEN);
}

/* Returns false when the client was freed (wa_kv_free ran inside the bracket). */
static bool
leave(struct wa_kv *kv)
{
    WA_ASSERT(kv->depth > 0);
    kv->depth--;
    if (kv->closing && kv->depth == 0) {
        destroy(kv);
        return false;
    }
    return true;
}

static void
warn_limited(struct wa_kv *kv, const char *what, const char *detail)
{
    uint64_t skipped = 0;

    if (wa_log_limit_pass(&kv->warn_limit, &skipped)) {
        wa_log_warn(NULL, "redis %s:%d: %s: %s (%llu similar suppressed)", kv->url.host,
                    kv->url.port, what, detail != NULL ? detail : "-", (unsigned long long)skipped);
    }
}

/* The next connection attempt, after the back-off (100 ms doubling to 2 s). */
static void
retry_later(struct wa_kv *kv)
{
    wa_timer_start(kv->reconnect_timer, kv->backoff_ms, 0);
    kv->backoff_ms = kv->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : kv->backoff_ms * 2;
}

/* ---- the event adapter: hiredis asks for read/write interest, we keep one wa_io ---- */

static void
io_update(struct wa_kv *kv, unsigned events)
{
    kv->io_events = events;
    if (kv->io != NULL && wa_io_set(kv->io, events) != WA_OK) {
        /* epoll_ctl MOD fails only for a descriptor that is gone; hiredis sees the error on
         * its next read and tears the context down. */
        warn_limited(kv, "epoll_ctl failed", NULL);
    }
}

static void
ev_add_read(void *data)
{
    struct wa_kv *kv = data;

    io_update(kv, kv->io_events | WA_IO_READ);
}

static void
ev_del_read(void *data)
{
    struct wa_kv *kv = data;

    io_update(kv, kv->io_events & ~WA_IO_READ);
}

static void
ev_add_write(void *data)
{
    struct wa_kv *kv = data;

    io_update(kv, kv->io_events | WA_IO_WRITE);
}

static void
ev_del_write(void *data)
{
    struct wa_kv *kv = data;

    io_update(kv, kv->io_events & ~WA_IO_WRITE);
}

static void
detach(redisAsyncContext *ac)
{
    ac->ev.addRead = NULL;
    ac->ev.delRead = NULL;
    ac->ev.addWrite = NULL;
    ac->ev.delWrite = NULL;
    ac->ev.cleanup = NULL;
    ac->ev.data = NULL;
    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    ac->data = NULL;
}

/*
 * hiredis tears a context down (error, failed connect, our redisAsyncFree) and calls this
 * last before freeing it. From here on the context is not ours.
 */
static void
ev_cleanup(void *data)
{
    struct wa_kv *kv = data;
    bool was_connected = kv->state == ST_CONNECTED;

    if (kv->ac != NULL) {
        if (was_connected) {
            warn_limited(kv, "connection lost",
                         kv->ac->errstr != NULL && kv->ac->err != 0 ? kv->ac->errstr : "closed");
        }
        detach(kv->ac);
    }
    kv->ac = NULL;
    wa_io_free(kv->io);
    kv->io = NULL;
    kv->io_events = 0;
    kv->state = ST_IDLE;
    kv->ready = false;
    wa_timer_stop(kv->connect_timer);
    if (!kv->closing) {
        retry_later(kv);
    }
}

static void
on_io(struct wa_io *io, int fd, unsigned events, void *arg)
{
    struct wa_kv *kv = arg;
    redisAsyncContext *ac = kv->ac;

    (void)io;
    (void)fd;
    if (ac == NULL) {
        return;
    }
    enter(kv);
    if (events & (WA_IO_READ | WA_IO_ERROR)) {
        redisAsyncHandleRead(ac);
    }
    /* The read may have torn the context down (kv->ac changes) or closed the client. */
    if ((events & WA_IO_WRITE) && kv->ac == ac && !kv->closing) {
        redisAsyncHandleWrite(ac);
    }
    leave(kv);
}

/* ---- the connection ---- */

static void
on_connect(const redisAsyncContext *ac, int status)
{
    struct wa_kv *kv = ac->data;

    if (kv == NULL) {
        return;
    }
    if (status != REDIS_OK) {
        warn_limited(kv, "connect failed", ac->errstr);
        return; /* hiredis tears the context down next: ev_cleanup schedules the retry */
    }
    kv->state = ST_CONNECTED;
    wa_timer_stop(kv->connect_timer);
    wa_log_info(NULL, "redis %s:%d connected", kv->url.host, kv->url.port);
}

/* Drops the connection (hiredis runs pending replies with NULL, then ev_cleanup). */
static void
drop(struct wa_kv *kv)
{
    if (kv->ac != NULL) {
        redisAsyncFree(kv->ac);
    }
}

static void
on_connect_timeout(struct wa_timer *t, void *arg)
{
    struct wa_kv *kv = arg;

    (void)t;
    if (kv->state != ST_CONNECTING) {
        return;
    }
    warn_limited(kv, "connect timed out", NULL);
    enter(kv);
    drop(kv);
    leave(kv);
}

static void
on_reconnect(struct wa_timer *t, void *arg)
{
    struct wa_kv *kv = arg;

    (void)t;
    if (kv->ac == NULL && !kv->closing) {
        connect_now(kv);
    }
}

/* ---- operations ---- */

static struct op *
op_new(struct wa_kv *kv, enum op_kind kind, void *arg)
{
    struct op *op = calloc(1, sizeof(*op));

    if (op == NULL) {
        return NULL;
    }
    op->kv = kv;
    op->kind = kind;
    op->arg = arg;
    wa_list_push_back(&kv->ops, &op->link);
    kv->nops++;
    return op;
}

static void
op_unlink(struct op *op)
{
    struct wa_kv *kv = op->kv;

    if (kv == NULL) {
        return;
    }
    wa_list_remove(&op->link);
    kv->nops--;
    op->kv = NULL;
}

static void
op_free(struct op *op)
{
    op_unlink(op);
    wa_timer_free(op->timer);
    free(op->eval_cmd);
    free(op);
}

/* Frees op once nothing refers to it any more. */
static void
op_release(struct op *op)
{
    if (op->done && op->refs == 0 && !op->in_cb) {
        op_free(op);
    }
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);
static void on_op_timeout(struct wa_timer *t, void *arg);

/* Queues one command for op. Returns WA_OK (hiredis will call on_reply once) or an error. */
static enum wa_err
op_send(struct wa_kv *kv, struct op *op, int argc, const char **argv, const size_t *argvlen)
{
    if (kv->ac == NULL) {
        return WA_EUNAVAIL;
    }
    /* fails when the context is being torn down (DISCONNECTING / FREEING) */
    if (redisAsyncCommandArgv(kv->ac, on_reply, op, argc, argv, argvlen) != REDIS_OK) {
        return WA_EUNAVAIL;
    }
    op->refs++;
    return WA_OK;
}

/* ---- RESP written directly: hiredis's formatter costs thousands of instructions a command
 * (a format string per argument), a hot cost for wa-ingest's claims ---- */

static size_t
resp_digits(size_t v)
{
    size_t d = 1;

    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* Writes v in decimal at o; returns the digits written. */
static size_t
resp_uint(char *o, size_t v)
{
    size_t d = resp_digits(v);

    for (size_t k = d; k > 0; k--) {
        o[k - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    return d;
}

static size_t
resp_array_len(size_t n)
{
    return 1 + resp_digits(n) + 2;
}

static size_t
resp_bulk_len(size_t n)
{
    return 1 + resp_digits(n) + 2 + n + 2;
}

static char *
resp_array(char *o, size_t n)
{
    *o++ = '*';
    o += resp_uint(o, n);
    *o++ = '\r';
    *o++ = '\n';
    return o;
}

static char *
resp_bulk(char *o, const char *s, size_t n)
{
    *o++ = '$';
    o += resp_uint(o, n);
    *o++ = '\r';
    *o++ = '\n';
    memcpy(o, s, n);
    o += n;
    *o++ = '\r';
    *o++ = '\n';
    return o;
}

/* op_send for a command already in RESP (cmd, len bytes; hiredis copies it). */
static enum wa_err
op_send_resp(struct wa_kv *kv, struct op *op, const char *cmd, size_t len)
{
    if (kv->ac == NULL) {
        return WA_EUNAVAIL;
    }
    if (redisAsyncFormattedCommand(kv->ac, on_reply, op, cmd, len) != REDIS_OK) {
        return WA_EUNAVAIL;
    }
    op->refs++;
    return WA_OK;
}

/* Creates, sends and arms an op; on error nothing is left behind and no callback will run.
 * The command is argv (argc words) or, when argv is NULL, resp (resp_len bytes of RESP). */
static enum wa_err
op_start_cmd(struct wa_kv *kv, enum op_kind kind, void *arg, int argc, const char **argv,
             const size_t *argvlen, const char *resp, size_t resp_len, struct op **out)
{
    struct op *op;
    enum wa_err err;

    if (kv->closing) {
        return WA_ECLOSED;
    }
    /* User commands need a connection that is up (AUTH and SELECT are queued ahead of them);
     * the client's own setup and ping go out while connecting. */
    if (kv->ac == NULL || (kv->state != ST_CONNECTED && kind != OP_PING && kind != OP_SETUP)) {
        return WA_EUNAVAIL;
    }
    if (kv->nops >= kv->max_pending) {
        return WA_ELIMIT;
    }
    if ((op = op_new(kv, kind, arg)) == NULL) {
        return WA_ENOMEM;
    }
    if ((op->timer = wa_timer_new(kv->loop, on_op_timeout, op)) == NULL) {
        err = WA_ENOMEM;
        goto out;
    }
    err =
        argv != NULL ? op_send(kv, op, argc, argv, argvlen) : op_send_resp(kv, op, resp, resp_len);
    if (err != WA_OK) {
        goto out;
    }
    wa_timer_start(op->timer, kv->command_timeout_ms, 0);
    if (out != NULL) {
        *out = op;
    }
    return WA_OK;
out:
    op_free(op);
    return err;
}

static enum wa_err
op_start(struct wa_kv *kv, enum op_kind kind, void *arg, int argc, const char **argv,
         const size_t *argvlen, struct op **out)
{
    return op_start_cmd(kv, kind, arg, argc, argv, argvlen, NULL, 0, out);
}

/* The NOSCRIPT fallback: "EVAL script" and the tail of the EVALSHA command. */
static enum wa_err
eval_send_script(struct op *op)
{
    size_t slen = strlen(op->eval_script), tail = op->eval_cmd_len - op->eval_tail;
    size_t size =
        resp_array_len((size_t)op->eval_total) + resp_bulk_len(4) + resp_bulk_len(slen) + tail;
    char *cmd = malloc(size), *o;
    enum wa_err err;

    if (cmd == NULL) {
        return WA_ENOMEM;
    }
    o = resp_array(cmd, (size_t)op->eval_total);
    o = resp_bulk(o, "EVAL", 4);
    o = resp_bulk(o, op->eval_script, slen);
    memcpy(o, op->eval_cmd + op->eval_tail, tail);
    err = op_send_resp(op->kv, op, cmd, size);
    free(cmd);
    return err;
}

static bool
is_status(const redisReply *r, const char *text)
{
    return r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, text) == 0;
}

/* Runs op's callback once. The callbacks may call any wa_kv function, including wa_kv_free. */
static void
op_complete(struct op *op, enum wa_err err, const redisReply *r)
{
    struct wa_kv *kv = op->kv;
    const struct wa_kv_reply *reply = (const struct wa_kv_reply *)r;

    op->done = true;
    wa_timer_free(op->timer);
    op->timer = NULL;
    op->in_cb = true;
    switch (op->kind) {
    case OP_REPLY:
    case OP_EVAL:
        op->cb.reply(op->arg, err, err == WA_OK || err == WA_EIO ? reply : NULL);
        break;
    case OP_DONE:
        if (err == WA_OK && !is_status(r, "OK")) {
            err = WA_EPARSE;
        }
        op->cb.done(op->arg, err);
        break;
    case OP_CLAIM:
        if (err == WA_OK && is_status(r, "OK")) {
            op->cb.claim(op->arg, WA_OK, true);
        } else if (err == WA_OK && r->type == REDIS_REPLY_NIL) {
            op->cb.claim(op->arg, WA_OK, false);
        } else {
            op->cb.claim(op->arg, err == WA_OK ? WA_EPARSE : err, false);
        }
        break;
    case OP_GET:
        if (err == WA_OK && r->type == REDIS_REPLY_STRING) {
            op->cb.get(op->arg, WA_OK, r->str, r->len);
        } else if (err == WA_OK && r->type == REDIS_REPLY_NIL) {
            op->cb.get(op->arg, WA_ENOTFOUND, NULL, 0);
        } else {
            op->cb.get(op->arg, err == WA_OK ? WA_EPARSE : err, NULL, 0);
        }
        break;
    case OP_INT:
        if (err == WA_OK && r->type == REDIS_REPLY_INTEGER) {
            op->cb.integer(op->arg, WA_OK, r->integer);
        } else {
            op->cb.integer(op->arg, err == WA_OK ? WA_EPARSE : err, 0);
        }
        break;
    case OP_PING:
        if (kv != NULL) {
            ping_result(kv, err, r);
        }
        break;
    case OP_SETUP:
        if (kv != NULL && err == WA_EIO) {
            /* AUTH or SELECT refused: the connection is unusable; retry with back-off */
            warn_limited(kv, "connection setup refused", r != NULL ? r->str : NULL);
            drop(kv);
        }
        break;
    }
    op->in_cb = false;
    op_release(op);
}

static void
on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct op *op = privdata;
    redisReply *reply = r;

    (void)ac;
    op->refs--;
    if (op->done || op->kv == NULL) {
        op_release(op); /* a late reply after a timeout, or an orphan of wa_kv_free */
        return;
    }
    if (reply == NULL) {
        op_complete(op, WA_EUNAVAIL, NULL);
        return;
    }
    if (op->kind == OP_EVAL && !op->eval_retried && reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        op->eval_retried = true;
        if (eval_send_script(op) == WA_OK) {
            return;
        }
        op_complete(op, WA_EUNAVAIL, NULL);
        return;
    }
    op_complete(op, reply->type == REDIS_REPLY_ERROR ? WA_EIO : WA_OK, reply);
}

static void
on_op_timeout(struct wa_timer *t, void *arg)
{
    struct op *op = arg;
    struct wa_kv *kv = op->kv;

    (void)t;
    enter(kv);
    op_complete(op, WA_ETIMEDOUT, NULL); /* frees t; the op stays until hiredis lets go */
    leave(kv);
}

/* ---- readiness ---- */

static void
send_ping(struct wa_kv *kv)
{
    const char *argv[] = {"PING"};

    if (op_start(kv, OP_PING, NULL, 1, argv, NULL, NULL) == WA_OK) {
        kv->ping_outstanding = true;
    }
}

static void
ping_result(struct wa_kv *kv, enum wa_err err, const redisReply *reply)
{
    kv->ping_outstanding = false;
    if (err == WA_OK && is_status(reply, "PONG")) {
        if (!kv->ready) {
            wa_log_info(NULL, "redis %s:%d ready", kv->url.host, kv->url.port);
        }
        kv->ready = true;
        kv->ping_failures = 0;
        kv->backoff_ms = BACKOFF_MIN_MS;
        return;
    }
    if (kv->ready) {
        warn_limited(kv, "not ready", wa_err_name(err));
    }
    kv->ready = false;
    if (err == WA_ETIMEDOUT && ++kv->ping_failures >= PING_FAILURES_TO_RESET) {
        /* Redis stopped answering but the socket stays up (host gone, or hung): start over,
         * which also releases the commands that timed out waiting on this connection. */
        warn_limited(kv, "resetting unresponsive connection", NULL);
        kv->ping_failures = 0;
        drop(kv);
    }
}

static void
on_ping_timer(struct wa_timer *t, void *arg)
{
    struct wa_kv *kv = arg;

    (void)t;
    if (kv->state == ST_CONNECTED && !kv->ping_outstanding) {
        send_ping(kv);
    }
}

/* Opens a connection and queues AUTH, SELECT and a first PING ahead of any user command. */
static void connect_addr(struct wa_kv *kv, const char *addr);

/* A host name: looked up on the resolver's thread, connected in on_resolved. */
static void
connect_now(struct wa_kv *kv)
{
    if (kv->resolver == NULL) {
        connect_addr(kv, kv->url.host);
    } else if (!kv->resolving) {
        kv->resolving = true;
        kv_resolver_ask(kv->resolver, kv->url.host);
    }
}

static void
on_resolved(struct wa_io *io, int fd, unsigned events, void *arg)
{
    struct wa_kv *kv = arg;
    char addr[64], error[128];

    (void)io;
    (void)fd;
    (void)events;
    if (!kv_resolver_answer(kv->resolver, addr, sizeof(addr), error, sizeof(error))) {
        return;
    }
    kv->resolving = false;
    if (kv->closing || kv->ac != NULL) {
        return;
    }
    if (addr[0] == '\0') {
        warn_limited(kv, "cannot resolve the host name", error);
        retry_later(kv);
        return;
    }
    connect_addr(kv, addr);
}

/* Opens a connection to addr (numeric) and queues AUTH, SELECT and a first PING ahead of any
 * user command. */
static void
connect_addr(struct wa_kv *kv, const char *addr)
{
    redisAsyncContext *ac = redisAsyncConnect(addr, kv->url.port);
    char db[16];
    const char *argv[3];
    if (ac == NULL || ac->err != 0) {
        warn_limited(kv, "connect failed", ac != NULL ? ac->errstr : "out of memory");
        if (ac != NULL) {
            redisAsyncFree(ac); /* nothing attached yet */
        }
        retry_later(kv);
        return;
    }
    ac->data = kv;
    ac->ev.data = kv;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    kv->ac = ac;
    kv->state = ST_CONNECTING;
    kv->ping_outstanding = false;
    kv->ping_failures = 0;
    /* Writability tells that the non-blocking connect finished (hiredis waits for an event). */
    kv->io_events = WA_IO_WRITE;
    if (wa_io_new(kv->loop, ac->c.fd, kv->io_events, on_io, kv, &kv->io) != WA_OK) {
        kv->io = NULL;
        warn_limited(kv, "cannot watch the socket", NULL);
        enter(kv);
        drop(kv); /* ev_cleanup schedules the retry */
        leave(kv);
        return;
    }
    wa_timer_start(kv->connect_timer, kv->connect_timeout_ms, 0);
    if (kv->url.password[0] != '\0') {
        int argc = 0;
        argv[argc++] = "AUTH";
        if (kv->url.username[0] != '\0') {
            argv[argc++] = kv->url.username;
        }
        argv[argc++] = kv->url.password;
        op_start(kv, OP_SETUP, NULL, argc, argv, NULL, NULL);
    }
    if (kv->url.db != 0) {
        snprintf(db, sizeof(db), "%d", kv->url.db);
        argv[0] = "SELECT";
        argv[1] = db;
        op_start(kv, OP_SETUP, NULL, 2, argv, NULL, NULL);
    }
    send_ping(kv);
}

/* ---- public API ---- */

enum wa_err
wa_kv_new(struct wa_loop *loop, const struct wa_kv_config *config, struct wa_kv **out,
          struct wa_error *error)
{
    struct wa_kv *kv = NULL;
    enum wa_err err;

    if (loop == NULL || config == NULL || out == NULL) {
        return wa_error_set(error, WA_EINVAL, "wa_kv_new: missing argument");
    }
    if ((kv = calloc(1, sizeof(*kv))) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "wa_kv_new: out of memory");
    }
    wa_list_init(&kv->ops);
    if ((err = wa_kv_url_parse(config->url, &kv->url, error)) != WA_OK) {
        goto out;
    }
    kv->loop = loop;
    kv->command_timeout_ms =
        config->command_timeout_ms ? config->command_timeout_ms : DEFAULT_TIMEOUT_MS;
    kv->connect_timeout_ms =
        config->connect_timeout_ms ? config->connect_timeout_ms : DEFAULT_TIMEOUT_MS;
    kv->ping_interval_ms = config->ping_interval_ms ? config->ping_interval_ms : DEFAULT_PING_MS;
    kv->max_pending = config->max_pending ? config->max_pending : DEFAULT_MAX_PENDING;
    kv->backoff_ms = BACKOFF_MIN_MS;
    kv->warn_limit.interval_ms = 1000;
    kv->reconnect_timer = wa_timer_new(loop, on_reconnect, kv);
    kv->connect_timer = wa_timer_new(loop, on_connect_timeout, kv);
    kv->ping_timer = wa_timer_new(loop, on_ping_timer, kv);
    if (kv->reconnect_timer == NULL || kv->connect_timer == NULL || kv->ping_timer == NULL) {
        err = wa_error_set(error, WA_ENOMEM, "wa_kv_new: out of memory");
        goto out;
    }
    if (!kv_host_is_numeric(kv->url.host)) {
        if (kv_resolver_new(&kv->resolver) != 0) {
            err = wa_error_set(error, WA_ENOMEM, "wa_kv_new: cannot start the resolver thread");
            goto out;
        }
        if (wa_io_new(loop, kv_resolver_fd(kv->resolver), WA_IO_READ, on_resolved, kv,
                      &kv->resolve_io) != WA_OK) {
            err = wa_error_set(error, WA_ENOMEM, "wa_kv_new: cannot watch the resolver");
            goto out;
        }
    }
    wa_timer_start(kv->ping_timer, kv->ping_interval_ms, kv->ping_interval_ms);
    connect_now(kv);
    *out = kv;
    return WA_OK;
out:
    wa_io_free(kv->resolve_io);
    kv_resolver_release(kv->resolver);
    wa_timer_free(kv->reconnect_timer);
    wa_timer_free(kv->connect_timer);
    wa_timer_free(kv->ping_timer);
    free(kv);
    return err;
}

/* Closes: pending callbacks get WA_ECLOSED. Frees the client unless an enter() is outstanding
 * (a callback on the stack, or wa_kv_close's hold): then the matching leave() frees it. */
static void
close_client(struct wa_kv *kv)
{
    redisAsyncContext *ac;
    struct wa_list *it, *tmp;

    kv->closing = true;
    enter(kv);
    wa_timer_free(kv->reconnect_timer);
    wa_timer_free(kv->connect_timer);
    wa_timer_free(kv->ping_timer);
    kv->reconnect_timer = kv->connect_timer = kv->ping_timer = NULL;
    ac = kv->ac;
    if (ac != NULL) {
        detach(ac);
    }
    kv->ac = NULL;
    wa_io_free(kv->io);
    kv->io = NULL;
    wa_io_free(kv->resolve_io); /* before the release, which may close the fd */
    kv->resolve_io = NULL;
    kv_resolver_release(kv->resolver);
    kv->resolver = NULL;
    kv->state = ST_IDLE;
    kv->ready = false;
    /* Callbacks cannot add ops (closing) nor free any; only the op in hand changes. */
    WA_LIST_FOREACH_SAFE(it, tmp, &kv->ops)
    {
        struct op *op = WA_LIST_ENTRY(it, struct op, link);

        if (!op->done) {
            op_complete(op, WA_ECLOSED, NULL); /* refs > 0: stays allocated */
        }
    }
    /* Orphan every op; hiredis still holds them and frees them through on_reply. */
    while ((it = wa_list_first(&kv->ops)) != NULL) {
        op_unlink(WA_LIST_ENTRY(it, struct op, link));
    }
    if (ac != NULL) {
        redisAsyncFree(ac); /* deferred by hiredis when called from inside its callback */
    }
    leave(kv);
}

void
wa_kv_close(struct wa_kv *kv)
{
    if (kv == NULL || kv->closing) {
        return;
    }
    enter(kv); /* the hold wa_kv_free() drops */
    kv->close_held = true;
    close_client(kv);
}

void
wa_kv_free(struct wa_kv *kv)
{
    if (kv == NULL) {
        return;
    }
    if (kv->close_held) { /* closed by wa_kv_close: drop its hold */
        kv->close_held = false;
        leave(kv);
        return;
    }
    if (!kv->closing) {
        close_client(kv);
    }
}

bool
wa_kv_ready(const struct wa_kv *kv)
{
    return kv != NULL && kv->ready && kv->state == ST_CONNECTED;
}

enum wa_err
wa_kv_command_argv(struct wa_kv *kv, int argc, const char **argv, const size_t *argvlen,
                   wa_kv_reply_fn cb, void *arg)
{
    struct op *op = NULL;
    enum wa_err err;

    if (kv == NULL || argc < 1 || argv == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = op_start(kv, OP_REPLY, arg, argc, argv, argvlen, &op)) == WA_OK) {
        op->cb.reply = cb;
    }
    return err;
}

enum wa_err
wa_kv_claim(struct wa_kv *kv, const char *key, const char *value, uint64_t ttl_ms,
            wa_kv_claim_fn cb, void *arg)
{
    char ttl[24];
    const char *argv[] = {"SET", key, value, "NX", "PX", ttl};
    struct op *op = NULL;
    enum wa_err err;

    if (kv == NULL || key == NULL || value == NULL || ttl_ms == 0 || cb == NULL) {
        return WA_EINVAL;
    }
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)ttl_ms);
    if ((err = op_start(kv, OP_CLAIM, arg, 6, argv, NULL, &op)) == WA_OK) {
        op->cb.claim = cb;
    }
    return err;
}

enum wa_err
wa_kv_get(struct wa_kv *kv, const char *key, wa_kv_get_fn cb, void *arg)
{
    const char *argv[] = {"GET", key};
    struct op *op = NULL;
    enum wa_err err;

    if (kv == NULL || key == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = op_start(kv, OP_GET, arg, 2, argv, NULL, &op)) == WA_OK) {
        op->cb.get = cb;
    }
    return err;
}

enum wa_err
wa_kv_set_px(struct wa_kv *kv, const char *key, const char *value, uint64_t ttl_ms,
             wa_kv_done_fn cb, void *arg)
{
    char ttl[24];
    const char *argv[] = {"SET", key, value, "PX", ttl};
    struct op *op = NULL;
    enum wa_err err;

    if (kv == NULL || key == NULL || value == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)ttl_ms);
    if ((err = op_start(kv, OP_DONE, arg, ttl_ms > 0 ? 5 : 3, argv, NULL, &op)) == WA_OK) {
        op->cb.done = cb;
    }
    return err;
}

enum wa_err
wa_kv_del(struct wa_kv *kv, const char *key, wa_kv_int_fn cb, void *arg)
{
    const char *argv[] = {"DEL", key};
    struct op *op = NULL;
    enum wa_err err;

    if (kv == NULL || key == NULL || cb == NULL) {
        return WA_EINVAL;
    }
    if ((err = op_start(kv, OP_INT, arg, 2, argv, NULL, &op)) == WA_OK) {
        op->cb.integer = cb;
    }
    return err;
}

void
wa_kv_script_sha1(const char *script, char out[WA_KV_SHA1_HEX_LEN])
{
    unsigned char sha[WA_SHA1_LEN];

    wa_sha1(script, strlen(script), sha);
    wa_hex_encode(sha, sizeof(sha), out);
}

enum wa_err
wa_kv_eval(struct wa_kv *kv, const char *script, int nkeys, const char **keys, int nargs,
           const char **args, wa_kv_reply_fn cb, void *arg)
{
    char sha[WA_KV_SHA1_HEX_LEN], n[24];
    size_t lens[2 * MAX_SCRIPT_ARGS], size, head, tail, nlen;
    struct op *op = NULL;
    enum wa_err err;
    int total, i;
    char *cmd, *o;

    if (kv == NULL || script == NULL || cb == NULL || nkeys < 0 || nargs < 0 ||
        nkeys > MAX_SCRIPT_ARGS || nargs > MAX_SCRIPT_ARGS || (nkeys > 0 && keys == NULL) ||
        (nargs > 0 && args == NULL)) {
        return WA_EINVAL;
    }
    total = 3 + nkeys + nargs;
    /* One RESP buffer: "EVALSHA sha" then the tail (numkeys, keys, args), which the NOSCRIPT
     * fallback sends again behind "EVAL script". */
    nlen = resp_uint(n, (size_t)nkeys);
    head = resp_array_len((size_t)total) + resp_bulk_len(7) + resp_bulk_len(40);
    tail = resp_bulk_len(nlen);
    for (i = 0; i < nkeys + nargs; i++) {
        const char *s = i < nkeys ? keys[i] : args[i - nkeys];

        if (s == NULL) {
            return WA_EINVAL;
        }
        lens[i] = strlen(s);
        tail += resp_bulk_len(lens[i]);
    }
    size = head + tail;
    if ((cmd = malloc(size)) == NULL) {
        return WA_ENOMEM;
    }
    script_sha1(kv, script, sha);
    o = resp_array(cmd, (size_t)total);
    o = resp_bulk(o, "EVALSHA", 7);
    o = resp_bulk(o, sha, 40);
    o = resp_bulk(o, n, nlen);
    for (i = 0; i < nkeys + nargs; i++) {
        o = resp_bulk(o, i < nkeys ? keys[i] : args[i - nkeys], lens[i]);
    }
    WA_ASSERT((size_t)(o - cmd) == size);
    err = op_start_cmd(kv, OP_EVAL, arg, 0, NULL, NULL, cmd, size, &op);
    if (err != WA_OK) {
        free(cmd);
        return err;
    }
    op->cb.reply = cb;
    op->eval_script = script;
    op->eval_total = total;
    op->eval_cmd = cmd;
    op->eval_cmd_len = size;
    op->eval_tail = head;
    return WA_OK;
}

/* ---- replies: struct wa_kv_reply is never defined; it is a redisReply seen from outside ---- */

static const redisReply *
unwrap(const struct wa_kv_reply *reply)
{
    return (const redisReply *)(const void *)reply;
}

enum wa_kv_reply_type
wa_kv_reply_type(const struct wa_kv_reply *reply)
{
    const redisReply *r = unwrap(reply);

    if (r == NULL) {
        return WA_KV_REPLY_NIL;
    }
    switch (r->type) {
    case REDIS_REPLY_INTEGER:
        return WA_KV_REPLY_INT;
    case REDIS_REPLY_STRING:
        return WA_KV_REPLY_STRING;
    case REDIS_REPLY_STATUS:
        return WA_KV_REPLY_STATUS;
    case REDIS_REPLY_ERROR:
        return WA_KV_REPLY_ERROR;
    case REDIS_REPLY_ARRAY:
        return WA_KV_REPLY_ARRAY;
    default:
        return WA_KV_REPLY_NIL;
    }
}

long long
wa_kv_reply_int(const struct wa_kv_reply *reply)
{
    const redisReply *r = unwrap(reply);

    return r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

const char *
wa_kv_reply_str(const struct wa_kv_reply *reply, size_t *len)
{
    const redisReply *r = unwrap(reply);

    if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS &&
                      r->type != REDIS_REPLY_ERROR)) {
        return NULL;
    }
    if (len != NULL) {
        *len = r->len;
    }
    return r->str;
}

size_t
wa_kv_reply_len(const struct wa_kv_reply *reply)
{
    const redisReply *r = unwrap(reply);

    return r != NULL && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
}

const struct wa_kv_reply *
wa_kv_reply_at(const struct wa_kv_reply *reply, size_t i)
{
    const redisReply *r = unwrap(reply);

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements) {
        return NULL;
    }
    return (const struct wa_kv_reply *)(const void *)r->element[i];
}
