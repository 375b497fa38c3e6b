/*
 * test_kv.c: wa::kv without a Redis server.
 *
 * A "silent server" is a listening socket nobody accepts on: the kernel completes the TCP
 * handshake, so the client connects, but no reply ever comes. That is enough to test command
 * timeouts, readiness staying false, the pending limit and wa_kv_free with commands in flight.
 */
#include "wa_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wa/kv.h"

/* ---- helpers ---- */

static int
silent_server(int *port)
{
    struct sockaddr_in sa = {0};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

struct calls {
    int n;
    enum wa_err err;
    struct wa_kv *free_me; /* freed from inside the callback when set */
};

static void
on_reply(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct calls *c = arg;

    assert_null(reply);
    c->n++;
    c->err = err;
    if (c->free_me != NULL) {
        wa_kv_free(c->free_me);
        c->free_me = NULL;
    }
}

static bool
called(void *arg)
{
    return ((struct calls *)arg)->n > 0;
}

static struct wa_kv *
client(struct wa_loop *loop, int port, uint32_t timeout_ms, uint32_t max_pending)
{
    char url[64];
    struct wa_kv_config cfg = {
        .url = url, .command_timeout_ms = timeout_ms, .max_pending = max_pending};
    struct wa_kv *kv = NULL;
    struct wa_error error;

    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
    assert_int_equal(wa_kv_new(loop, &cfg, &kv, &error), WA_OK);
    return kv;
}

static const char *ping_argv[] = {"PING"};

struct send {
    struct wa_kv *kv;
    struct calls *calls;
    bool done;
};

/* Tries to send PING until the client accepts it (once the connection is up). */
static bool
sent(void *arg)
{
    struct send *s = arg;

    /* wa_test_run_until may evaluate the condition more than once: send only once */
    if (!s->done) {
        s->done = wa_kv_command_argv(s->kv, 1, ping_argv, NULL, on_reply, s->calls) == WA_OK;
    }
    return s->done;
}

static void
send_when_connected(struct wa_loop *loop, struct wa_kv *kv, struct calls *c)
{
    struct send s = {kv, c, false};

    assert_true(wa_test_run_until(loop, sent, &s, 3000));
}

/* ---- url ---- */

static void
url_parse__full_url__fills_every_field(void **state)
{
    struct wa_kv_url u;

    (void)state;
    assert_int_equal(wa_kv_url_parse("redis://bob:s3cret@redis.local:6380/4", &u, NULL), WA_OK);
    assert_string_equal(u.host, "redis.local");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 4);
    assert_string_equal(u.username, "bob");
    assert_string_equal(u.password, "s3cret");
}

static void
url_parse__password_only_and_defaults__parsed(void **state)
{
    struct wa_kv_url u;

    (void)state;
    assert_int_equal(wa_kv_url_parse("redis://:pw@127.0.0.1", &u, NULL), WA_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.username, "");
    assert_string_equal(u.password, "pw");
    assert_int_equal(wa_kv_url_parse("redis://[::1]:7000/2", &u, NULL), WA_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 2);
}

static void
url_parse__malformed__rejected_without_echoing_password(void **state)
{
    static const char *bad[] = {
        "http://127.0.0.1:6379",
        "redis://",
        "redis://:6379/0",
        "redis://h:0/0",
        "redis://h:70000/0",
        "redis://h:12ab/0",
        "redis://h:6379/x",
        "redis://h:6379/-1",
        "redis://nocolon@h/0",
        "redis://[::1/0",
        NULL,
    };
    struct wa_kv_url u;
    struct wa_error error;
    size_t i;

    (void)state;
    for (i = 0; i < WA_ARRAY_LEN(bad); i++) {
        assert_int_equal(wa_kv_url_parse(bad[i], &u, &error), WA_ECONFIG);
    }
    assert_int_equal(wa_kv_url_parse("redis://:topsecret@h:99999/0", &u, &error), WA_ECONFIG);
    assert_null(strstr(error.message, "topsecret"));
}

/* No TLS in hiredis 0.14: rediss:// is refused with a pointer to the tunnel (operations.md). */
static void
url_parse__rediss__refused_pointing_to_the_tunnel(void **state)
{
    struct wa_kv_url u;
    struct wa_error error;

    (void)state;
    assert_int_equal(wa_kv_url_parse("rediss://:topsecret@h:6380/0", &u, &error), WA_ECONFIG);
    assert_non_null(strstr(error.message, "Redis over TLS"));
    assert_null(strstr(error.message, "topsecret"));
}

/* ---- script names ---- */

static void
script_sha1__known_vectors__match(void **state)
{
    char out[WA_KV_SHA1_HEX_LEN];

    (void)state;
    wa_kv_script_sha1("", out);
    assert_string_equal(out, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    wa_kv_script_sha1("abc", out);
    assert_string_equal(out, "a9993e364706816aba3e25717850c26c9cd0d89d");
    wa_kv_script_sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", out);
    assert_string_equal(out, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    wa_kv_script_sha1("The quick brown fox jumps over the lazy dog", out);
    assert_string_equal(out, "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
}

/* ---- client behaviour ---- */

static void
command__nothing_listening__fails_fast_unavailable(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    struct calls c = {0};
    int fd, port;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    fd = silent_server(&port);
    close(fd); /* the port is now (very likely) closed: connections are refused */
    kv = client(loop, port, 500, 0);
    wa_test_run_for(loop, 400); /* a few refused attempts (back-off 100, 200 ms) */
    assert_int_equal(wa_kv_command_argv(kv, 1, ping_argv, NULL, on_reply, &c), WA_EUNAVAIL);
    assert_int_equal(c.n, 0);
    assert_false(wa_kv_ready(kv));
    wa_kv_free(kv);
    wa_loop_free(loop);
}

static void
command__server_silent__times_out_once_and_never_ready(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    struct calls c = {0};
    int fd, port;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    fd = silent_server(&port);
    kv = client(loop, port, 200, 0);
    send_when_connected(loop, kv, &c);
    assert_true(wa_test_run_until(loop, called, &c, 3000));
    assert_int_equal(c.err, WA_ETIMEDOUT);
    wa_test_run_for(loop, 300);
    assert_int_equal(c.n, 1);
    assert_false(wa_kv_ready(kv));
    wa_kv_free(kv);
    close(fd);
    wa_loop_free(loop);
}

static void
free__commands_pending__callbacks_get_closed_before_return(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    struct calls a = {0}, b = {0};
    int fd, port;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    fd = silent_server(&port);
    kv = client(loop, port, 5000, 0);
    send_when_connected(loop, kv, &a);
    wa_test_run_for(loop, 50); /* let it write */
    assert_int_equal(wa_kv_command_argv(kv, 1, ping_argv, NULL, on_reply, &b), WA_OK);
    wa_kv_free(kv);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.err, WA_ECLOSED);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.err, WA_ECLOSED);
    close(fd);
    wa_loop_free(loop);
}

static void
close__commands_pending__closed_callbacks_then_calls_fail_until_free(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    struct calls a = {0}, b = {0};
    int fd, port;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    fd = silent_server(&port);
    kv = client(loop, port, 5000, 0);
    send_when_connected(loop, kv, &a);
    wa_test_run_for(loop, 50);
    wa_kv_close(kv);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.err, WA_ECLOSED);
    wa_kv_close(kv); /* idempotent */
    assert_int_equal(wa_kv_command_argv(kv, 1, ping_argv, NULL, on_reply, &b), WA_ECLOSED);
    assert_false(wa_kv_ready(kv));
    wa_test_run_for(loop, 50); /* nothing calls back any more */
    assert_int_equal(a.n, 1);
    assert_int_equal(b.n, 0);
    wa_kv_free(kv);
    close(fd);
    wa_loop_free(loop);
}

static void
free__from_inside_a_timeout_callback__others_closed_no_use_after_free(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    struct calls a = {0}, b = {0};
    int fd, port;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    fd = silent_server(&port);
    kv = client(loop, port, 100, 0);
    a.free_me = kv;
    send_when_connected(loop, kv, &a);
    wa_test_run_for(loop, 50);
    /* b is sent later, so a times out first and frees the client */
    assert_int_equal(wa_kv_command_argv(kv, 1, ping_argv, NULL, on_reply, &b), WA_OK);
    assert_true(wa_test_run_until(loop, called, &a, 3000));
    assert_int_equal(a.err, WA_ETIMEDOUT);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.err, WA_ECLOSED);
    wa_test_run_for(loop, 50);
    close(fd);
    wa_loop_free(loop);
}

static void
command__pending_limit_reached__rejected_with_elimit(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    struct calls c[4];
    enum wa_err err = WA_OK;
    int fd, port, i;

    (void)state;
    memset(c, 0, sizeof(c));
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    fd = silent_server(&port);
    kv = client(loop, port, 5000, 3); /* the first PING of the client counts too */
    send_when_connected(loop, kv, &c[0]);
    for (i = 1; i < 4 && err == WA_OK; i++) {
        err = wa_kv_command_argv(kv, 1, ping_argv, NULL, on_reply, &c[i]);
    }
    assert_int_equal(err, WA_ELIMIT);
    assert_int_equal(c[i - 1].n, 0); /* the rejected one never calls back */
    wa_kv_free(kv);
    assert_int_equal(c[i - 1].n, 0);
    close(fd);
    wa_loop_free(loop);
}

static void
new__bad_url__econfig(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv_config cfg = {.url = "redis://h:0"};
    struct wa_kv *kv = NULL;
    struct wa_error error;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    assert_int_equal(wa_kv_new(loop, &cfg, &kv, &error), WA_ECONFIG);
    assert_null(kv);
    wa_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_parse__full_url__fills_every_field),
        cmocka_unit_test(url_parse__password_only_and_defaults__parsed),
        cmocka_unit_test(url_parse__malformed__rejected_without_echoing_password),
        cmocka_unit_test(url_parse__rediss__refused_pointing_to_the_tunnel),
        cmocka_unit_test(script_sha1__known_vectors__match),
        cmocka_unit_test(command__nothing_listening__fails_fast_unavailable),
        cmocka_unit_test(command__server_silent__times_out_once_and_never_ready),
        cmocka_unit_test(free__commands_pending__callbacks_get_closed_before_return),
        cmocka_unit_test(close__commands_pending__closed_callbacks_then_calls_fail_until_free),
        cmocka_unit_test(free__from_inside_a_timeout_callback__others_closed_no_use_after_free),
        cmocka_unit_test(command__pending_limit_reached__rejected_with_elimit),
        cmocka_unit_test(new__bad_url__econfig),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
