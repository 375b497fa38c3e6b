/*
 * kv_redis.c: wa::kv against real Redis.
 *
 * Most tests use the shared test Redis (WA_REDIS_URL) with keys under a unique prefix. Tests
 * that pause or kill Redis start a private redis-server (WA_REDIS_SERVER, default
 * "redis-server" from PATH) on a free loopback port, so they never disturb other tests.
 */
#include "wa_test.h"
#include "wa_test_proc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wa/clock.h"
#include "wa/kv.h"

/* ---- helpers ---- */

static char prefix[64];
static pid_t private_pid = -1;

static void
key(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%skv.%s", prefix, name);
}

static struct wa_kv *
connect_url(struct wa_loop *loop, const char *url, uint32_t timeout_ms)
{
    struct wa_kv_config cfg = {.url = url, .command_timeout_ms = timeout_ms};
    struct wa_kv *kv = NULL;
    struct wa_error error = {0};

    if (wa_kv_new(loop, &cfg, &kv, &error) != WA_OK) {
        fail_msg("wa_kv_new(%s): %s", url, error.message);
    }
    return kv;
}

static bool
ready(void *arg)
{
    return wa_kv_ready(arg);
}

static bool
not_ready(void *arg)
{
    return !wa_kv_ready(arg);
}

static struct wa_kv *
shared_client(struct wa_loop *loop)
{
    struct wa_kv *kv = connect_url(loop, wa_test_env("WA_REDIS_URL"), 1000);

    assert_true(wa_test_run_until(loop, ready, kv, 5000));
    return kv;
}

struct result {
    int n;
    enum wa_err err;
    bool claimed;
    long long integer;
    char text[128];
    enum wa_kv_reply_type type;
};

static bool
answered(void *arg)
{
    return ((struct result *)arg)->n > 0;
}

static void
on_claim(void *arg, enum wa_err err, bool claimed)
{
    struct result *r = arg;

    r->n++;
    r->err = err;
    r->claimed = claimed;
}

static void
on_reply(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct result *r = arg;
    const char *s;

    r->n++;
    r->err = err;
    r->type = wa_kv_reply_type(reply);
    r->integer = wa_kv_reply_int(reply);
    if ((s = wa_kv_reply_str(reply, NULL)) != NULL) {
        snprintf(r->text, sizeof(r->text), "%s", s);
    }
}

static void
on_get(void *arg, enum wa_err err, const char *value, size_t len)
{
    struct result *r = arg;

    r->n++;
    r->err = err;
    if (value != NULL) {
        snprintf(r->text, sizeof(r->text), "%.*s", (int)len, value);
    }
}

static void
on_done(void *arg, enum wa_err err)
{
    struct result *r = arg;

    r->n++;
    r->err = err;
}

static void
on_int(void *arg, enum wa_err err, long long value)
{
    struct result *r = arg;

    r->n++;
    r->err = err;
    r->integer = value;
}

/* Claims key and waits for the answer. */
static struct result
claim(struct wa_loop *loop, struct wa_kv *kv, const char *k, uint64_t ttl_ms)
{
    struct result r = {0};

    assert_int_equal(wa_kv_claim(kv, k, "owner", ttl_ms, on_claim, &r), WA_OK);
    assert_true(wa_test_run_until(loop, answered, &r, 3000));
    assert_int_equal(r.n, 1);
    return r;
}

static struct result
command(struct wa_loop *loop, struct wa_kv *kv, int argc, const char **argv)
{
    struct result r = {0};

    assert_int_equal(wa_kv_command_argv(kv, argc, argv, NULL, on_reply, &r), WA_OK);
    assert_true(wa_test_run_until(loop, answered, &r, 3000));
    return r;
}

static void
private_start(int port)
{
    char p[16];
    const char *argv[] = {wa_test_env_or("WA_REDIS_SERVER", "redis-server"),
                          "--port",
                          p,
                          "--bind",
                          "127.0.0.1",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--daemonize",
                          "no",
                          NULL};

    snprintf(p, sizeof(p), "%d", port);
    private_pid = wa_test_spawn(argv, NULL, "/dev/null", WA_TEST_SPAWN_STDOUT_ONLY);
}

static void
private_stop(void)
{
    if (private_pid > 0) {
        wa_test_stop(private_pid, SIGKILL, WA_TEST_NO_TIMEOUT);
        private_pid = -1;
    }
}

static int
teardown(void **state)
{
    (void)state;
    private_stop();
    return 0;
}

/* ---- tests ---- */

static void
claim__second_claim__is_rejected(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    char k[128];
    struct result r;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    kv = shared_client(loop);
    key(k, sizeof(k), "claim");
    r = claim(loop, kv, k, 60000);
    assert_int_equal(r.err, WA_OK);
    assert_true(r.claimed);
    r = claim(loop, kv, k, 60000);
    assert_int_equal(r.err, WA_OK);
    assert_false(r.claimed);
    wa_kv_free(kv);
    wa_loop_free(loop);
}

struct reclaim {
    struct wa_loop *loop;
    struct wa_kv *kv;
    const char *key;
};

static bool
reclaimed(void *arg)
{
    struct reclaim *rc = arg;
    struct result r = claim(rc->loop, rc->kv, rc->key, 200);

    assert_int_equal(r.err, WA_OK);
    return r.claimed;
}

static void
claim__ttl_expired__can_be_claimed_again(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    char k[128];
    struct result r;
    struct reclaim rc;
    int attempts = 0;
    bool ok = false;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    kv = shared_client(loop);
    key(k, sizeof(k), "ttl");
    r = claim(loop, kv, k, 200);
    assert_true(r.claimed);
    /* at once, the claim holds */
    r = claim(loop, kv, k, 200);
    assert_false(r.claimed);
    /* poll: it must become claimable again, and not before its TTL could have run out */
    rc = (struct reclaim){loop, kv, k};
    while (!ok && attempts++ < 100) {
        wa_test_run_for(loop, 20);
        ok = reclaimed(&rc);
    }
    assert_true(ok);
    wa_kv_free(kv);
    wa_loop_free(loop);
}

static void
claim__two_clients_race__exactly_one_wins(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *a, *b;
    char k[128];
    struct result ra = {0}, rb = {0};
    int round;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    a = shared_client(loop);
    b = shared_client(loop);
    for (round = 0; round < 20; round++) {
        char name[32];

        snprintf(name, sizeof(name), "race.%d", round);
        key(k, sizeof(k), name);
        memset(&ra, 0, sizeof(ra));
        memset(&rb, 0, sizeof(rb));
        /* both sent in the same loop iteration, on two connections */
        assert_int_equal(wa_kv_claim(a, k, "a", 60000, on_claim, &ra), WA_OK);
        assert_int_equal(wa_kv_claim(b, k, "b", 60000, on_claim, &rb), WA_OK);
        assert_true(wa_test_run_until(loop, answered, &ra, 3000));
        assert_true(wa_test_run_until(loop, answered, &rb, 3000));
        assert_int_equal(ra.err, WA_OK);
        assert_int_equal(rb.err, WA_OK);
        assert_true(ra.claimed != rb.claimed);
    }
    wa_kv_free(a);
    wa_kv_free(b);
    wa_loop_free(loop);
}

static void
get_set_del__round_trip__values_and_counts(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    char k[128];
    struct result r = {0};

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    kv = shared_client(loop);
    key(k, sizeof(k), "getset");
    assert_int_equal(wa_kv_get(kv, k, on_get, &r), WA_OK);
    assert_true(wa_test_run_until(loop, answered, &r, 3000));
    assert_int_equal(r.err, WA_ENOTFOUND);
    memset(&r, 0, sizeof(r));
    assert_int_equal(wa_kv_set_px(kv, k, "hello", 60000, on_done, &r), WA_OK);
    assert_true(wa_test_run_until(loop, answered, &r, 3000));
    assert_int_equal(r.err, WA_OK);
    memset(&r, 0, sizeof(r));
    assert_int_equal(wa_kv_get(kv, k, on_get, &r), WA_OK);
    assert_true(wa_test_run_until(loop, answered, &r, 3000));
    assert_int_equal(r.err, WA_OK);
    assert_string_equal(r.text, "hello");
    memset(&r, 0, sizeof(r));
    assert_int_equal(wa_kv_del(kv, k, on_int, &r), WA_OK);
    assert_true(wa_test_run_until(loop, answered, &r, 3000));
    assert_int_equal(r.err, WA_OK);
    assert_int_equal(r.integer, 1);
    memset(&r, 0, sizeof(r));
    assert_int_equal(wa_kv_del(kv, k, on_int, &r), WA_OK);
    assert_true(wa_test_run_until(loop, answered, &r, 3000));
    assert_int_equal(r.integer, 0);
    {
        const char *bad[] = {"NOSUCHCOMMAND"};
        r = command(loop, kv, 1, bad);
        assert_int_equal(r.err, WA_EIO);
        assert_int_equal(r.type, WA_KV_REPLY_ERROR);
        assert_non_null(strstr(r.text, "unknown command"));
    }
    wa_kv_free(kv);
    wa_loop_free(loop);
}

static void
eval__new_script__falls_back_to_eval_then_is_cached(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    char k[128], script[256], sha[WA_KV_SHA1_HEX_LEN];
    const char *keys[1], *args[1] = {"5"};
    struct result r = {0};
    int i;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    kv = shared_client(loop);
    key(k, sizeof(k), "counter");
    keys[0] = k;
    /* a script Redis has never seen (the prefix is unique) */
    snprintf(script, sizeof(script),
             "-- %s\nreturn redis.call('INCRBY', KEYS[1], ARGV[1]) + redis.call('PEXPIRE', "
             "KEYS[1], 60000) - 1",
             prefix);
    wa_kv_script_sha1(script, sha);
    {
        const char *exists[] = {"SCRIPT", "EXISTS", sha};
        r = command(loop, kv, 3, exists);
        assert_int_equal(r.err, WA_OK);
        assert_int_equal(r.type, WA_KV_REPLY_ARRAY);
    }
    for (i = 1; i <= 3; i++) {
        memset(&r, 0, sizeof(r));
        assert_int_equal(wa_kv_eval(kv, script, 1, keys, 1, args, on_reply, &r), WA_OK);
        assert_true(wa_test_run_until(loop, answered, &r, 3000));
        assert_int_equal(r.n, 1);
        assert_int_equal(r.err, WA_OK);
        assert_int_equal(r.type, WA_KV_REPLY_INT);
        assert_int_equal(r.integer, 5 * i);
    }
    /* our SHA-1 names the script exactly as Redis does (EVAL loaded it) */
    {
        const char *load[] = {"SCRIPT", "LOAD", script};
        r = command(loop, kv, 3, load);
        assert_int_equal(r.err, WA_OK);
        assert_string_equal(r.text, sha);
    }
    wa_kv_free(kv);
    wa_loop_free(loop);
}

static void
command__server_paused__times_out_once_then_recovers(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *ctl, *kv;
    char url[64];
    const char *pause[] = {"CLIENT", "PAUSE", "1500"};
    const char *ping[] = {"PING"};
    struct result r = {0}, r2 = {0};
    int port = wa_test_free_port(), i;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    private_start(port);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
    ctl = connect_url(loop, url, 1000);
    kv = connect_url(loop, url, 300);
    assert_true(wa_test_run_until(loop, ready, ctl, 10000));
    assert_true(wa_test_run_until(loop, ready, kv, 10000));
    r = command(loop, ctl, 3, pause);
    assert_int_equal(r.err, WA_OK);
    memset(&r, 0, sizeof(r));
    assert_int_equal(wa_kv_command_argv(kv, 1, ping, NULL, on_reply, &r), WA_OK);
    assert_true(wa_test_run_until(loop, answered, &r, 3000));
    assert_int_equal(r.err, WA_ETIMEDOUT);
    /* once the pause ends, commands work again; replies come in order on the connection, so
     * by then the late PONG of the first one has arrived, and was dropped: still one call */
    for (i = 0; i < 20; i++) {
        r2 = command(loop, kv, 1, ping);
        if (r2.err == WA_OK) {
            break;
        }
        assert_int_equal(r2.err, WA_ETIMEDOUT);
    }
    assert_int_equal(r2.err, WA_OK);
    assert_string_equal(r2.text, "PONG");
    assert_int_equal(r.n, 1);
    assert_true(wa_test_run_until(loop, ready, kv, 5000));
    wa_kv_free(ctl);
    wa_kv_free(kv);
    private_stop();
    wa_loop_free(loop);
}

static void
ready__redis_restarted__false_then_true_without_new_client(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    char url[64];
    const char *ping[] = {"PING"};
    struct result r = {0};
    enum wa_err err;
    int port = wa_test_free_port();
    uint64_t t0;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    private_start(port);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
    kv = connect_url(loop, url, 1000);
    assert_true(wa_test_run_until(loop, ready, kv, 10000));

    private_stop();
    assert_true(wa_test_run_until(loop, not_ready, kv, 5000));
    /* commands fail fast: refused at once, or (mid reconnect) called back with EUNAVAIL
     * well before the 1000 ms command timeout */
    t0 = wa_clock_mono_ms();
    err = wa_kv_command_argv(kv, 1, ping, NULL, on_reply, &r);
    if (err == WA_OK) {
        assert_true(wa_test_run_until(loop, answered, &r, 3000));
        err = r.err;
    }
    assert_int_equal(err, WA_EUNAVAIL);
    assert_true(wa_clock_mono_ms() - t0 < 500);

    private_start(port);
    assert_true(wa_test_run_until(loop, ready, kv, 10000));
    r = command(loop, kv, 1, ping);
    assert_int_equal(r.err, WA_OK);
    wa_kv_free(kv);
    private_stop();
    wa_loop_free(loop);
}

struct takes {
    int answers;
    uint64_t granted;
    uint64_t wait_ms;
    enum wa_err err;
};

static void
on_take(void *arg, enum wa_err err, uint64_t granted, uint64_t wait_ms)
{
    struct takes *t = arg;

    t->answers++;
    t->granted += granted;
    t->wait_ms = wait_ms;
    if (err != WA_OK) {
        t->err = err;
    }
}

static bool
took_40(void *arg)
{
    return ((const struct takes *)arg)->answers >= 40;
}

static bool
took(void *arg)
{
    return ((const struct takes *)arg)->answers >= 1;
}

/* Two clients draining one bucket (rate 20/s, burst 5) for about a second: together they get
 * the burst plus what the rate refilled, never more; a refused take says how long to wait. */
static void
bucket__two_clients_share_one_rate(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *a, *b;
    struct takes t = {0};
    char k[128];
    uint64_t t0, elapsed;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    a = shared_client(loop);
    b = shared_client(loop);
    key(k, sizeof(k), "bucket");
    assert_int_equal(wa_kv_bucket_take(a, k, 20.0, 5, 0, on_take, &t), WA_EINVAL);
    assert_int_equal(wa_kv_bucket_take(a, k, 0.0, 5, 1, on_take, &t), WA_EINVAL);
    t0 = wa_clock_mono_ms();
    for (int i = 0; i < 40; i++) {
        assert_int_equal(wa_kv_bucket_take(i % 2 ? b : a, k, 20.0, 5, 3, on_take, &t), WA_OK);
        wa_test_run_for(loop, 25);
    }
    assert_true(wa_test_run_until(loop, took_40, &t, 5000));
    elapsed = wa_clock_mono_ms() - t0;
    assert_int_equal(t.err, WA_OK);
    /* 5 at once, then 20/s: at most 5 + 20 * elapsed (+1 for rounding at the edges) */
    assert_true(t.granted <= 5 + 20 * elapsed / 1000 + 1);
    /* and the bucket did grant what the rate allowed over most of the second */
    assert_true(t.granted >= 5 + 20 * elapsed / 1000 / 2);
    /* drain it, then the next take is refused with a wait of about a token's time (50 ms) */
    t = (struct takes){0};
    assert_int_equal(wa_kv_bucket_take(a, k, 20.0, 5, 5, on_take, &t), WA_OK);
    assert_true(wa_test_run_until(loop, took, &t, 3000));
    t = (struct takes){0};
    assert_int_equal(wa_kv_bucket_take(b, k, 20.0, 5, 1, on_take, &t), WA_OK);
    assert_true(wa_test_run_until(loop, took, &t, 3000));
    if (t.granted == 0) {
        assert_true(t.wait_ms >= 1 && t.wait_ms <= 50);
    }
    wa_kv_free(a);
    wa_kv_free(b);
    wa_loop_free(loop);
}

static void
on_paused(void *arg, enum wa_err err)
{
    *(enum wa_err *)arg = err;
}

static bool
paused_done(void *arg)
{
    return *(enum wa_err *)arg != WA_ERR__COUNT;
}

/* A pause set by one client holds for every client: nothing is granted, the wait is the time
 * left, a shorter pause does not cut it, and takes succeed again once it is over. */
static void
bucket__pause_by_one_client__holds_for_all(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *a, *b;
    struct takes t = {0};
    enum wa_err perr = WA_ERR__COUNT;
    char k[128];

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    a = shared_client(loop);
    b = shared_client(loop);
    key(k, sizeof(k), "bucket-pause");
    assert_int_equal(wa_kv_bucket_pause(a, k, 0, NULL, NULL), WA_EINVAL);
    assert_int_equal(wa_kv_bucket_take(a, k, 100.0, 10, 1, on_take, &t), WA_OK);
    assert_true(wa_test_run_until(loop, took, &t, 3000));
    assert_int_equal(t.granted, 1);
    assert_int_equal(wa_kv_bucket_pause(a, k, 1500, on_paused, &perr), WA_OK);
    assert_true(wa_test_run_until(loop, paused_done, &perr, 3000));
    assert_int_equal(perr, WA_OK);
    perr = WA_ERR__COUNT;
    assert_int_equal(wa_kv_bucket_pause(b, k, 10, on_paused, &perr), WA_OK); /* shorter: kept */
    assert_true(wa_test_run_until(loop, paused_done, &perr, 3000));
    t = (struct takes){0};
    assert_int_equal(wa_kv_bucket_take(b, k, 100.0, 10, 5, on_take, &t), WA_OK);
    assert_true(wa_test_run_until(loop, took, &t, 3000));
    assert_int_equal(t.err, WA_OK);
    assert_int_equal(t.granted, 0);
    assert_true(t.wait_ms > 1000 && t.wait_ms <= 1500);
    wa_test_run_for(loop, t.wait_ms + 100);
    t = (struct takes){0};
    assert_int_equal(wa_kv_bucket_take(a, k, 100.0, 10, 5, on_take, &t), WA_OK);
    assert_true(wa_test_run_until(loop, took, &t, 3000));
    assert_int_equal(t.err, WA_OK);
    assert_true(t.granted >= 1); /* refilled from the pause's end, not from before it */
    assert_true(t.granted < 10);
    wa_kv_free(a);
    wa_kv_free(b);
    wa_loop_free(loop);
}

/* A host name (not an address) in the URL: resolved off the loop (libs/kv/src/resolve.c),
 * connected, and resolved again on every reconnect. */
static void
host_name__localhost__resolved_connected_and_reconnected(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    char url[64];
    const char *ping[] = {"PING"};
    struct result r;
    int port = wa_test_free_port();

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    private_start(port);
    snprintf(url, sizeof(url), "redis://localhost:%d/0", port);
    kv = connect_url(loop, url, 1000);
    assert_true(wa_test_run_until(loop, ready, kv, 10000));
    r = command(loop, kv, 1, ping);
    assert_int_equal(r.err, WA_OK);
    assert_string_equal(r.text, "PONG");

    private_stop();
    assert_true(wa_test_run_until(loop, not_ready, kv, 5000));
    private_start(port);
    assert_true(wa_test_run_until(loop, ready, kv, 10000));
    r = command(loop, kv, 1, ping);
    assert_int_equal(r.err, WA_OK);
    wa_kv_free(kv);
    private_stop();
    wa_loop_free(loop);
}

/* A name that does not resolve: the client exists, is never ready, refuses commands at once,
 * keeps retrying without blocking the loop, and frees at once. */
static void
host_name__unresolvable__never_ready_commands_refused(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_kv *kv;
    const char *ping[] = {"PING"};
    struct result r = {0};
    uint64_t t0;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    kv = connect_url(loop, "redis://no-such-host.invalid:6379/0", 1000);
    assert_false(wa_test_run_until(loop, ready, kv, 1500));
    assert_int_equal(wa_kv_command_argv(kv, 1, ping, NULL, on_reply, &r), WA_EUNAVAIL);
    t0 = wa_clock_mono_ms();
    wa_kv_free(kv);
    assert_true(wa_clock_mono_ms() - t0 < 100);
    wa_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(claim__second_claim__is_rejected),
        cmocka_unit_test(claim__ttl_expired__can_be_claimed_again),
        cmocka_unit_test(claim__two_clients_race__exactly_one_wins),
        cmocka_unit_test(get_set_del__round_trip__values_and_counts),
        cmocka_unit_test(eval__new_script__falls_back_to_eval_then_is_cached),
        cmocka_unit_test_teardown(command__server_paused__times_out_once_then_recovers, teardown),
        cmocka_unit_test_teardown(ready__redis_restarted__false_then_true_without_new_client,
                                  teardown),
        cmocka_unit_test_teardown(host_name__localhost__resolved_connected_and_reconnected,
                                  teardown),
        cmocka_unit_test(host_name__unresolvable__never_ready_commands_refused),
        cmocka_unit_test(bucket__two_clients_share_one_rate),
        cmocka_unit_test(bucket__pause_by_one_client__holds_for_all),
    };

    wa_test_unique_prefix(prefix, sizeof(prefix));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
