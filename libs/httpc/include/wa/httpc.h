/*
 * wa/httpc.h: asynchronous HTTP client on the wa_loop (libcurl multi-socket API).
 *
 * One client per daemon (per upstream family) keeps a connection cache: requests to the same
 * host reuse kept-alive connections, and HTTP/2 is multiplexed when the server offers it.
 * TLS peer and host verification are always on, TLS 1.2 at least.
 *
 * Threading: every function must be called on the loop thread; callbacks run there too.
 * Async contract: wa_httpc_send() either returns WA_OK and then calls its callback exactly once,
 * later (never from inside wa_httpc_send), or returns an error and never calls back; a
 * cancelled call (wa_httpc_call_cancel, wa_httpc_free) never calls back.
 * libcurl's error codes stay inside this library: results carry enum wa_err and a message.
 */
#ifndef WA_HTTPC_H
#define WA_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#include "wa/err.h"
#include "wa/loop.h"

struct wa_httpc;
struct wa_httpc_call;

struct wa_httpc_config {
    unsigned max_connections;    /* total open connections; default 64 */
    unsigned max_per_host;       /* open connections per host; default 16 */
    unsigned timeout_ms;         /* default whole-request timeout; default 30000 */
    unsigned connect_timeout_ms; /* TCP + TLS handshake; default 5000 */
    size_t max_response;         /* default response body limit; default 8 MiB */
    const char *user_agent;      /* copied; default "wabridge/<version>" */
    const char *ca_file;         /* copied; NULL = the system CA store */
};

struct wa_httpc_header {
    const char *name;
    const char *value;
};

struct wa_httpc_request {
    const char *method; /* NULL = "GET" without a body, "POST" with one; copied */
    const char *url;    /* copied */
    const struct wa_httpc_header *headers; /* copied; nheaders of them */
    size_t nheaders;
    const void *body; /* NULL for none */
    size_t body_len;
    /* false (default): body is copied. true: body is borrowed and must stay valid and unchanged
     * until the callback has run or the call was cancelled (saves a copy of large bodies). */
    bool body_borrowed;
    unsigned timeout_ms; /* 0 = the client's default */
    size_t max_response; /* 0 = the client's default; a larger body fails with WA_ETOOBIG */
};

struct wa_httpc_result {
    /* WA_OK when a whole HTTP response arrived (whatever its status). Otherwise:
     * WA_ETIMEDOUT (timeout), WA_EUNAVAIL (cannot resolve/connect, connection lost),
     * WA_ETOOBIG (response body above the limit), WA_EAUTH (TLS verification failed),
     * WA_EINVAL (bad URL or option), WA_ENOMEM, WA_EIO (anything else). */
    enum wa_err err;
    const char *message; /* never NULL; borrowed: valid during the callback */
    long status;         /* HTTP status; 0 when no response was received */
    const char *body;    /* NUL-terminated, never NULL; borrowed: valid during the callback */
    size_t body_len;
    double total_s;                   /* from send to completion */
    const struct wa_httpc_call *call; /* for wa_httpc_result_header */
};

/* Called once per call on the loop thread. res is borrowed: valid until the callback returns. */
typedef void (*wa_httpc_done_fn)(const struct wa_httpc_result *res, void *arg);

/* Returns a new client in *out; free with wa_httpc_free(). cfg is copied. */
enum wa_err wa_httpc_new(struct wa_loop *loop, const struct wa_httpc_config *cfg,
                         struct wa_httpc **out, struct wa_error *error);
/* Cancels every call in flight (their callbacks never run), closes connections and frees.
 * Accepts NULL. Must not be called from inside one of this client's callbacks. */
void wa_httpc_free(struct wa_httpc *c);

/*
 * Starts a request (copies what rq describes, except a borrowed body). On WA_OK, fn runs
 * exactly once later unless the call is cancelled. If out is not NULL it receives the call
 * handle, borrowed: valid until fn starts running or until wa_httpc_call_cancel(); do not use
 * it after either. On error (WA_EINVAL, WA_ENOMEM, WA_ECLOSED) fn never runs.
 */
enum wa_err wa_httpc_send(struct wa_httpc *c, const struct wa_httpc_request *rq,
                          wa_httpc_done_fn fn, void *arg, struct wa_httpc_call **out,
                          struct wa_error *error);
/* Aborts the call: its callback never runs and the handle is freed. Only for a call whose
 * callback has not started (see wa_httpc_send). */
void wa_httpc_call_cancel(struct wa_httpc_call *call);

/* Value of the response header name (case-insensitive; the last one if repeated) or NULL.
 * Borrowed: valid during the callback that received res. */
const char *wa_httpc_result_header(const struct wa_httpc_result *res, const char *name);

/* Number of calls started and neither completed nor cancelled. */
size_t wa_httpc_inflight(const struct wa_httpc *c);

#endif
