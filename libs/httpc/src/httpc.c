/*
 * httpc.c: the HTTP client: libcurl's multi-socket API driven by the wa_loop.
 *
 * Flow: wa_httpc_send() configures an easy handle and adds it to the multi handle. libcurl tells
 * us which sockets to watch (on_socket -> wa_io_new/wa_io_set/wa_io_free) and when to call it
 * back without socket activity (on_curl_timer -> one wa_timer). Socket readiness (on_io) and the
 * timer (on_timer) call curl_multi_socket_action(); afterwards finish_done() reads the finished
 * transfers (curl_multi_info_read) and runs their callbacks. Callbacks therefore never run
 * inside a libcurl callback, and never inside wa_httpc_send().
 *
 * Connections live in the multi handle's cache, not in the easy handles, so every call has its
 * own easy handle and reuse still happens (CURLMOPT_MAX_HOST_CONNECTIONS bounds it per host).
 *
 * Threading: the loop thread only. Ownership: the client owns its calls; a call is freed right
 * after its callback returns, or by wa_httpc_call_cancel() / wa_httpc_free().
 */
#include "wa/httpc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "wa/buf.h"
#include "wa/clock.h"
#include "wa/list.h"

#define DEFAULT_MAX_CONNS       64u
#define DEFAULT_MAX_PER_HOST    16u
#define DEFAULT_TIMEOUT_MS      30000u
#define DEFAULT_CONNECT_TIMEOUT 5000u
#define DEFAULT_MAX_RESPONSE    (8u * 1024u * 1024u)

struct sock {
    struct wa_httpc *c;
    curl_socket_t fd;
    struct wa_io *io;
    struct wa_list link; /* on the client's socks */
};

struct wa_httpc_call {
    struct wa_httpc *c;
    CURL *easy;
    struct curl_slist *headers;
    void *body_copy;
    struct wa_buf response;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
    wa_httpc_done_fn fn;
    void *arg;
    uint64_t start_us;
    struct wa_list link; /* on the client's calls */
};

struct wa_httpc {
    struct wa_loop *loop;
    CURLM *multi;
    struct wa_timer *timer;
    struct wa_httpc_config cfg;
    char *user_agent;
    char *ca_file;
    struct wa_list calls; /* struct wa_httpc_call in flight */
    size_t inflight;
    struct wa_list socks; /* struct sock watched for libcurl */
    bool dispatching;
};

/* ---- CURLcode -> enum wa_err ---- */

static enum wa_err
map_curl(CURLcode rc, bool too_big)
{
    switch (rc) {
    case CURLE_OK:
        return WA_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return WA_ETIMEDOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return WA_ETOOBIG;
    case CURLE_WRITE_ERROR:
        return too_big ? WA_ETOOBIG : WA_EIO;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return WA_EUNAVAIL;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return WA_EAUTH;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
        return WA_EINVAL;
    case CURLE_OUT_OF_MEMORY:
        return WA_ENOMEM;
    default:
        return WA_EIO;
    }
}

/* ---- calls ---- */

static void
call_unlink(struct wa_httpc_call *call)
{
    wa_list_remove(&call->link);
    call->c->inflight--;
}

/* Removes the easy handle from the multi (if added) and frees everything of call. */
static void
call_free(struct wa_httpc_call *call)
{
    if (call->easy != NULL) {
        curl_multi_remove_handle(call->c->multi, call->easy);
        curl_easy_cleanup(call->easy);
    }
    curl_slist_free_all(call->headers);
    free(call->body_copy);
    wa_buf_cleanup(&call->response);
    free(call);
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct wa_httpc_call *call = arg;
    size_t n = size * nmemb;

    if (wa_buf_append(&call->response, data, n) != WA_OK) {
        call->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

static void
finish(struct wa_httpc_call *call, CURLcode rc)
{
    struct wa_httpc_result res = {0};
    char message[CURL_ERROR_SIZE + 64];
    long status = 0;

    call_unlink(call);
    res.err = map_curl(rc, call->too_big);
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    if (res.err == WA_ETOOBIG) {
        snprintf(message, sizeof(message), "response body larger than %zu bytes",
                 call->response.max);
    } else if (rc != CURLE_OK) {
        snprintf(message, sizeof(message), "%s",
                 call->errbuf[0] != '\0' ? call->errbuf : curl_easy_strerror(rc));
    } else {
        snprintf(message, sizeof(message), "OK");
    }
    res.message = message;
    res.status = res.err == WA_OK ? status : 0;
    res.body = call->response.data != NULL && res.err == WA_OK ? call->response.data : "";
    res.body_len = res.err == WA_OK ? call->response.len : 0;
    res.total_s = (double)(wa_clock_mono_us() - call->start_us) / 1e6;
    res.call = call;
    call->fn(&res, call->arg);
    call_free(call);
}

/* Runs the callbacks of finished transfers. Never called from inside a libcurl callback. */
static void
finish_done(struct wa_httpc *c)
{
    CURLMsg *msg;
    int left;

    c->dispatching = true;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        struct wa_httpc_call *call = NULL;
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        WA_ASSERT(call != NULL);
        finish(call, msg->data.result);
    }
    c->dispatching = false;
}

/* ---- the loop drives libcurl ---- */

static void
on_io(struct wa_io *io, int fd, unsigned events, void *arg)
{
    struct sock *sk = arg;
    struct wa_httpc *c = sk->c; /* sk may be freed by the socket action below */
    int flags = 0, running = 0;

    (void)io;
    if (events & WA_IO_READ) {
        flags |= CURL_CSELECT_IN;
    }
    if (events & WA_IO_WRITE) {
        flags |= CURL_CSELECT_OUT;
    }
    if (events & WA_IO_ERROR) {
        flags |= CURL_CSELECT_ERR;
    }
    curl_multi_socket_action(c->multi, fd, flags, &running);
    finish_done(c);
}

static void
on_timer(struct wa_timer *t, void *arg)
{
    struct wa_httpc *c = arg;
    int running = 0;

    (void)t;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    finish_done(c);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arms; libcurl must not be re-entered from here. */
static int
on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
    struct wa_httpc *c = arg;

    (void)multi;
    if (timeout_ms < 0) {
        wa_timer_stop(c->timer);
    } else {
        wa_timer_start(c->timer, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

static void
sock_free(struct sock *sk)
{
    wa_list_remove(&sk->link);
    wa_io_free(sk->io);
    free(sk);
}

/* CURLMOPT_SOCKETFUNCTION: mirrors libcurl's interest in a socket onto a wa_io. */
static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *socketp)
{
    struct wa_httpc *c = arg;
    struct sock *sk = socketp;
    unsigned events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (sk != NULL) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_free(sk);
        }
        return 0;
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= WA_IO_READ;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= WA_IO_WRITE;
    }
    if (sk != NULL) {
        return wa_io_set(sk->io, events) == WA_OK ? 0 : -1;
    }
    sk = calloc(1, sizeof(*sk));
    if (sk == NULL) {
        return -1;
    }
    sk->c = c;
    sk->fd = fd;
    if (wa_io_new(c->loop, fd, events, on_io, sk, &sk->io) != WA_OK) {
        free(sk);
        return -1;
    }
    wa_list_push_back(&c->socks, &sk->link);
    curl_multi_assign(c->multi, fd, sk);
    return 0;
}

/* ---- public ---- */

enum wa_err
wa_httpc_new(struct wa_loop *loop, const struct wa_httpc_config *cfg, struct wa_httpc **out,
             struct wa_error *error)
{
    static const struct wa_httpc_config defaults = {0};
    struct wa_httpc *c;
    enum wa_err err = WA_OK;

    *out = NULL;
    if (cfg == NULL) {
        cfg = &defaults;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return wa_error_set(error, WA_EINTERNAL, "curl_global_init failed");
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        curl_global_cleanup();
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    c->loop = loop;
    wa_list_init(&c->calls);
    wa_list_init(&c->socks);
    c->cfg = *cfg;
    c->cfg.max_connections = cfg->max_connections ? cfg->max_connections : DEFAULT_MAX_CONNS;
    c->cfg.max_per_host = cfg->max_per_host ? cfg->max_per_host : DEFAULT_MAX_PER_HOST;
    c->cfg.timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->cfg.connect_timeout_ms =
        cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT;
    c->cfg.max_response = cfg->max_response ? cfg->max_response : DEFAULT_MAX_RESPONSE;
    c->user_agent = strdup(cfg->user_agent != NULL ? cfg->user_agent : "wabridge/" WA_VERSION);
    c->ca_file = cfg->ca_file != NULL ? strdup(cfg->ca_file) : NULL;
    c->cfg.user_agent = c->user_agent;
    c->cfg.ca_file = c->ca_file;
    c->timer = wa_timer_new(loop, on_timer, c);
    c->multi = curl_multi_init();
    if (c->user_agent == NULL || (cfg->ca_file != NULL && c->ca_file == NULL) || c->timer == NULL ||
        c->multi == NULL) {
        err = wa_error_set(error, WA_ENOMEM, "out of memory");
        goto out;
    }
    if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->cfg.max_connections) !=
            CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->cfg.max_per_host) !=
            CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->cfg.max_connections) !=
            CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) != CURLM_OK) {
        err = wa_error_set(error, WA_EINTERNAL, "cannot configure the curl multi handle");
        goto out;
    }
    *out = c;
    c = NULL;
out:
    wa_httpc_free(c);
    return err;
}

void
wa_httpc_free(struct wa_httpc *c)
{
    struct wa_list *it;

    if (c == NULL) {
        return;
    }
    /* Freeing from a callback would free the call being dispatched under finish(). */
    WA_ASSERT(!c->dispatching);
    while ((it = wa_list_first(&c->calls)) != NULL) {
        struct wa_httpc_call *call = WA_LIST_ENTRY(it, struct wa_httpc_call, link);

        call_unlink(call);
        call_free(call);
    }
    if (c->multi != NULL) {
        curl_multi_cleanup(c->multi); /* closes the cached connections */
    }
    while ((it = wa_list_first(&c->socks)) != NULL) {
        sock_free(WA_LIST_ENTRY(it, struct sock, link));
    }
    wa_timer_free(c->timer);
    free(c->user_agent);
    free(c->ca_file);
    free(c);
    curl_global_cleanup();
}

static enum wa_err
set_method_and_body(struct wa_httpc_call *call, const struct wa_httpc_request *rq,
                    struct wa_error *error)
{
    CURL *e = call->easy;
    bool has_body = rq->body != NULL;
    const char *method = rq->method != NULL ? rq->method : (has_body ? "POST" : "GET");
    const void *body = rq->body;
    CURLcode rc = CURLE_OK;

    if (has_body && !rq->body_borrowed) {
        call->body_copy = malloc(rq->body_len > 0 ? rq->body_len : 1);
        if (call->body_copy == NULL) {
            return wa_error_set(error, WA_ENOMEM, "out of memory");
        }
        memcpy(call->body_copy, rq->body, rq->body_len);
        body = call->body_copy;
    }
    if (has_body || strcmp(method, "POST") == 0) {
        /* POSTFIELDS is not copied by libcurl: body_copy or the borrowed body outlives it */
        if ((rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                   (curl_off_t)(has_body ? rq->body_len : 0))) == CURLE_OK) {
            rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, has_body ? body : "");
        }
        if (rc == CURLE_OK && strcmp(method, "POST") != 0) {
            rc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        }
    } else if (strcmp(method, "GET") == 0) {
        rc = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        rc = curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        rc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (rc != CURLE_OK) {
        return wa_error_set(error, map_curl(rc, false), "cannot set method %s: %s", method,
                            curl_easy_strerror(rc));
    }
    return WA_OK;
}

static enum wa_err
set_headers(struct wa_httpc_call *call, const struct wa_httpc_request *rq, struct wa_error *error)
{
    struct wa_buf line;
    size_t i;
    enum wa_err err = WA_OK;

    wa_buf_init(&line, 16 * 1024);
    for (i = 0; i < rq->nheaders; i++) {
        struct curl_slist *l;
        const struct wa_httpc_header *hd = &rq->headers[i];
        if (hd->name == NULL || hd->value == NULL || strpbrk(hd->name, ":\r\n") != NULL ||
            strpbrk(hd->value, "\r\n") != NULL) {
            err = wa_error_set(error, WA_EINVAL, "bad request header #%zu", i);
            goto out;
        }
        wa_buf_reset(&line);
        /* "Name;" is libcurl's way to send a header with an empty value */
        if (wa_buf_printf(&line, hd->value[0] != '\0' ? "%s: %s" : "%s;", hd->name, hd->value) !=
            WA_OK) {
            err = wa_error_set(error, WA_ETOOBIG, "request header %s too long", hd->name);
            goto out;
        }
        l = curl_slist_append(call->headers, line.data);
        if (l == NULL) {
            err = wa_error_set(error, WA_ENOMEM, "out of memory");
            goto out;
        }
        call->headers = l;
    }
    if (call->headers != NULL &&
        curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, call->headers) != CURLE_OK) {
        err = wa_error_set(error, WA_EINTERNAL, "cannot set request headers");
    }
out:
    wa_buf_cleanup(&line);
    return err;
}

enum wa_err
wa_httpc_send(struct wa_httpc *c, const struct wa_httpc_request *rq, wa_httpc_done_fn fn, void *arg,
              struct wa_httpc_call **out, struct wa_error *error)
{
    struct wa_httpc_call *call = NULL;
    CURL *e;
    size_t max;
    unsigned timeout;
    enum wa_err err = WA_OK;

    if (out != NULL) {
        *out = NULL;
    }
    if (c == NULL || rq == NULL || rq->url == NULL || fn == NULL ||
        (rq->nheaders > 0 && rq->headers == NULL)) {
        return wa_error_set(error, WA_EINVAL, "missing client, url or callback");
    }
    call = calloc(1, sizeof(*call));
    if (call == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    call->c = c;
    call->fn = fn;
    call->arg = arg;
    max = rq->max_response != 0 ? rq->max_response : c->cfg.max_response;
    timeout = rq->timeout_ms != 0 ? rq->timeout_ms : c->cfg.timeout_ms;
    wa_buf_init(&call->response, max);
    call->easy = e = curl_easy_init();
    if (e == NULL) {
        err = wa_error_set(error, WA_ENOMEM, "curl_easy_init failed");
        goto out;
    }
    /* VERIFYHOST 2 is "verify" (1 is treated the same since libcurl 7.66) */
    if (curl_easy_setopt(e, CURLOPT_PRIVATE, call) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_URL, rq->url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->cfg.connect_timeout_ms) !=
            CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent) != CURLE_OK ||
        (c->ca_file != NULL && curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file) != CURLE_OK) ||
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, call) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf) != CURLE_OK) {
        err = wa_error_set(error, WA_EINTERNAL, "cannot configure the curl easy handle");
        goto out;
    }
    if ((err = set_method_and_body(call, rq, error)) != WA_OK ||
        (err = set_headers(call, rq, error)) != WA_OK) {
        goto out;
    }
    call->start_us = wa_clock_mono_us();
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        err = wa_error_set(error, WA_EINTERNAL, "curl_multi_add_handle failed");
        goto out;
    }
    wa_list_push_back(&c->calls, &call->link);
    c->inflight++;
    if (out != NULL) {
        *out = call;
    }
    call = NULL;
out:
    if (call != NULL) {
        call_free(call);
    }
    return err;
}

void
wa_httpc_call_cancel(struct wa_httpc_call *call)
{
    if (call == NULL) {
        return;
    }
    call_unlink(call);
    call_free(call);
}

const char *
wa_httpc_result_header(const struct wa_httpc_result *res, const char *name)
{
    struct curl_header *hd = NULL;
    size_t count;

    if (res == NULL || res->call == NULL || name == NULL ||
        curl_easy_header(res->call->easy, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK) {
        return NULL;
    }
    count = hd->amount;
    if (count > 1 &&
        curl_easy_header(res->call->easy, name, count - 1, CURLH_HEADER, -1, &hd) != CURLHE_OK) {
        return NULL;
    }
    return hd->value;
}

size_t
wa_httpc_inflight(const struct wa_httpc *c)
{
    return c->inflight;
}
