/*
 * kv_cache.c: wa/kv_cache.h against the shared Redis (WA_REDIS_URL): get-or-load with a TTL,
 * negative caching, single flight (50 concurrent misses, one load), versioned invalidation (a
 * load that started before an invalidation is not stored), key names without the key when a
 * secret is set, Redis unreachable (straight to the loader), free with gets pending.
 */
#include "wa_test.h"

#include <stdio.h>
#include <string.h>

#include "wa/kv.h"
#include "wa/kv_cache.h"

static char prefix[64];

struct env {
    struct wa_loop *loop;
    struct wa_kv *kv;
};

struct loader {
    int calls;
    struct wa_kv_cache_load *pending; /* deferred: answered by the test */
    bool defer;
    enum wa_err err;
    const char *value;
};

static void
load(void *arg, const char *key, struct wa_kv_cache_load *l)
{
    struct loader *ld = arg;

    (void)key;
    ld->calls++;
    if (ld->defer) {
        ld->pending = l;
        return;
    }
    wa_kv_cache_loaded(l, ld->err, ld->value, ld->value != NULL ? strlen(ld->value) : 0);
}

struct got {
    int n;
    enum wa_err err;
    char value[128];
    bool hit;
};

static void
on_got(void *arg, enum wa_err err, const char *value, size_t len, bool hit)
{
    struct got *g = arg;

    g->n++;
    g->err = err;
    g->hit = hit;
    snprintf(g->value, sizeof(g->value), "%.*s", (int)len, value != NULL ? value : "");
}

static bool
got_one(void *arg)
{
    return ((struct got *)arg)->n > 0;
}

static bool
ready(void *arg)
{
    return wa_kv_ready(arg);
}

static int
setup(void **state)
{
    static struct env e;
    struct wa_kv_config cfg = {.url = wa_test_env("WA_REDIS_URL")};
    struct wa_error error = {0};

    memset(&e, 0, sizeof(e));
    assert_int_equal(wa_loop_new(&e.loop), WA_OK);
    if (wa_kv_new(e.loop, &cfg, &e.kv, &error) != WA_OK) {
        fail_msg("wa_kv_new: %s", error.message);
    }
    assert_true(wa_test_run_until(e.loop, ready, e.kv, 5000));
    *state = &e;
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;

    wa_kv_free(e->kv);
    wa_loop_free(e->loop);
    return 0;
}

static struct wa_kv_cache *
cache(struct env *e, const char *name, uint64_t ttl_ms, uint64_t negative_ttl_ms,
      const char *secret)
{
    char p[128];
    struct wa_kv_cache_config cfg = {.prefix = p,
                                     .ttl_ms = ttl_ms,
                                     .negative_ttl_ms = negative_ttl_ms,
                                     .key_secret = secret,
                                     .key_secret_len = secret != NULL ? strlen(secret) : 0};
    struct wa_kv_cache *c = NULL;

    snprintf(p, sizeof(p), "%scache.%s:", prefix, name);
    assert_int_equal(wa_kv_cache_new(e->kv, &cfg, &c, NULL), WA_OK);
    return c;
}

static void
get(struct env *e, struct wa_kv_cache *c, const char *key, struct loader *ld, struct got *g)
{
    memset(g, 0, sizeof(*g));
    assert_int_equal(wa_kv_cache_get(c, key, load, ld, on_got, g), WA_OK);
    assert_true(wa_test_run_until(e->loop, got_one, g, 5000));
    assert_int_equal(g->n, 1);
}

struct stat_wait {
    struct wa_kv_cache *c;
    uint64_t stored, discarded;
};

static bool
stats_reached(void *arg)
{
    struct stat_wait *w = arg;
    struct wa_kv_cache_stats st;

    wa_kv_cache_stats(w->c, &st);
    return st.stored >= w->stored && st.discarded >= w->discarded;
}

static void
wait_stats(struct env *e, struct wa_kv_cache *c, uint64_t stored, uint64_t discarded)
{
    struct stat_wait w = {c, stored, discarded};

    assert_true(wa_test_run_until(e->loop, stats_reached, &w, 5000));
}

static void
get_or_load__miss_then_hit__one_load(void **state)
{
    struct env *e = *state;
    struct wa_kv_cache *c = cache(e, "hit", 0, 0, NULL);
    struct loader ld = {.value = "{\"name\":\"Ana\"}"};
    struct got g;
    struct wa_kv_cache_stats st;

    get(e, c, "a", &ld, &g);
    assert_int_equal(g.err, WA_OK);
    assert_false(g.hit);
    assert_string_equal(g.value, "{\"name\":\"Ana\"}");
    wait_stats(e, c, 1, 0);
    get(e, c, "a", &ld, &g);
    assert_int_equal(g.err, WA_OK);
    assert_true(g.hit);
    assert_string_equal(g.value, "{\"name\":\"Ana\"}");
    assert_int_equal(ld.calls, 1);
    wa_kv_cache_stats(c, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    wa_kv_cache_free(c);
}

static bool
all_answered(void *arg)
{
    struct got *g = arg;

    for (int i = 0; i < 50; i++) {
        if (g[i].n == 0) {
            return false;
        }
    }
    return true;
}

static bool
load_pending(void *arg)
{
    return ((struct loader *)arg)->pending != NULL;
}

static void
single_flight__50_concurrent_misses__one_load(void **state)
{
    struct env *e = *state;
    struct wa_kv_cache *c = cache(e, "sf", 0, 0, NULL);
    struct loader ld = {.defer = true};
    struct got g[50];
    struct wa_kv_cache_stats st;

    memset(g, 0, sizeof(g));
    for (int i = 0; i < 50; i++) {
        assert_int_equal(wa_kv_cache_get(c, "hot", load, &ld, on_got, &g[i]), WA_OK);
    }
    assert_true(wa_test_run_until(e->loop, load_pending, &ld, 5000));
    for (int i = 0; i < 20; i++) { /* more arrive while the load runs: they join it too */
        wa_test_run_for(e->loop, 1);
    }
    wa_kv_cache_loaded(ld.pending, WA_OK, "v1", 2);
    assert_true(wa_test_run_until(e->loop, all_answered, g, 5000));
    for (int i = 0; i < 50; i++) {
        assert_int_equal(g[i].n, 1);
        assert_int_equal(g[i].err, WA_OK);
        assert_string_equal(g[i].value, "v1");
    }
    assert_int_equal(ld.calls, 1);
    wa_kv_cache_stats(c, &st);
    assert_int_equal(st.loads, 1);
    assert_int_equal(st.joined, 49);
    wa_kv_cache_free(c);
}

static void
negative__not_found_cached_until_expiry__then_loaded_again(void **state)
{
    struct env *e = *state;
    struct wa_kv_cache *c = cache(e, "neg", 0, 300, NULL);
    struct loader ld = {.err = WA_ENOTFOUND};
    struct got g;

    get(e, c, "ghost", &ld, &g);
    assert_int_equal(g.err, WA_ENOTFOUND);
    assert_false(g.hit);
    wait_stats(e, c, 1, 0);
    get(e, c, "ghost", &ld, &g);
    assert_int_equal(g.err, WA_ENOTFOUND);
    assert_true(g.hit);
    assert_int_equal(ld.calls, 1);
    wa_test_run_for(e->loop, 400);
    get(e, c, "ghost", &ld, &g);
    assert_int_equal(g.err, WA_ENOTFOUND);
    assert_false(g.hit);
    assert_int_equal(ld.calls, 2);
    /* other errors are passed on, never stored */
    ld.err = WA_EUNAVAIL;
    get(e, c, "down", &ld, &g);
    assert_int_equal(g.err, WA_EUNAVAIL);
    get(e, c, "down", &ld, &g);
    assert_int_equal(ld.calls, 4);
    wa_kv_cache_free(c);
}

static void
ttl__value_expires__loaded_again(void **state)
{
    struct env *e = *state;
    struct wa_kv_cache *c = cache(e, "ttl", 300, 0, NULL);
    struct loader ld = {.value = "x"};
    struct got g;

    get(e, c, "t", &ld, &g);
    wait_stats(e, c, 1, 0);
    get(e, c, "t", &ld, &g);
    assert_true(g.hit);
    wa_test_run_for(e->loop, 400);
    get(e, c, "t", &ld, &g);
    assert_false(g.hit);
    assert_int_equal(ld.calls, 2);
    wa_kv_cache_free(c);
}

static void
on_invalidated(void *arg, enum wa_err err)
{
    struct got *g = arg;

    g->n++;
    g->err = err;
}

static void
invalidate(struct env *e, struct wa_kv_cache *c, const char *key)
{
    struct got g = {0};

    assert_int_equal(wa_kv_cache_invalidate(c, key, on_invalidated, &g), WA_OK);
    assert_true(wa_test_run_until(e->loop, got_one, &g, 5000));
    assert_int_equal(g.err, WA_OK);
}

static void
versioned__invalidated_during_load__stale_value_not_stored(void **state)
{
    struct env *e = *state;
    struct wa_kv_cache *c = cache(e, "ver", 0, 0, NULL);
    struct loader old = {.defer = true}, fresh = {.value = "new"};
    struct got g1 = {0}, g2 = {0}, g;
    struct wa_kv_cache_load *stale;

    assert_int_equal(wa_kv_cache_get(c, "k", load, &old, on_got, &g1), WA_OK);
    assert_true(wa_test_run_until(e->loop, load_pending, &old, 5000));
    stale = old.pending;
    invalidate(e, c, "k"); /* the source changed while the old value was being read */
    /* a get after the change does not join the flight that read before it */
    fresh.defer = true;
    assert_int_equal(wa_kv_cache_get(c, "k", load, &fresh, on_got, &g2), WA_OK);
    assert_true(wa_test_run_until(e->loop, load_pending, &fresh, 5000));
    wa_kv_cache_loaded(stale, WA_OK, "old", 3);
    assert_true(wa_test_run_until(e->loop, got_one, &g1, 5000));
    assert_string_equal(g1.value, "old"); /* asked before the change */
    wait_stats(e, c, 0, 1);               /* ... but not stored */
    wa_kv_cache_loaded(fresh.pending, WA_OK, "new", 3);
    assert_true(wa_test_run_until(e->loop, got_one, &g2, 5000));
    assert_string_equal(g2.value, "new");
    wait_stats(e, c, 1, 1);
    get(e, c, "k", &fresh, &g);
    assert_true(g.hit);
    assert_string_equal(g.value, "new");
    /* invalidated after being stored: the next get loads */
    invalidate(e, c, "k");
    fresh.defer = false;
    get(e, c, "k", &fresh, &g);
    assert_false(g.hit);
    assert_int_equal(fresh.calls, 2);
    wa_kv_cache_free(c);
}

struct keys {
    int n;
    bool holds_key;
    size_t count;
};

static void
on_keys(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct keys *k = arg;

    k->n++;
    assert_int_equal(err, WA_OK);
    k->count = wa_kv_reply_len(reply);
    for (size_t i = 0; i < k->count; i++) {
        const char *s = wa_kv_reply_str(wa_kv_reply_at(reply, i), NULL);

        k->holds_key |= strstr(s, "15551234567") != NULL;
    }
}

static bool
keys_done(void *arg)
{
    return ((struct keys *)arg)->n > 0;
}

static void
list_keys(struct env *e, const char *pattern, struct keys *k)
{
    const char *argv[2] = {"KEYS", pattern};

    memset(k, 0, sizeof(*k));
    assert_int_equal(wa_kv_command_argv(e->kv, 2, argv, NULL, on_keys, k), WA_OK);
    assert_true(wa_test_run_until(e->loop, keys_done, k, 5000));
}

static void
key_secret__names_hashed_and_value_gone_after_invalidate(void **state)
{
    struct env *e = *state;
    struct wa_kv_cache *c = cache(e, "sec", 0, 0, "s3cret");
    struct loader ld = {.value = "{\"phone\":\"+15551234567\"}"};
    struct got g;
    struct keys k;
    char pattern[128];

    snprintf(pattern, sizeof(pattern), "%scache.sec:*", prefix);
    get(e, c, "+15551234567", &ld, &g);
    wait_stats(e, c, 1, 0);
    list_keys(e, pattern, &k);
    assert_int_equal(k.count, 1); /* the value (no version before the first change) */
    assert_false(k.holds_key);
    invalidate(e, c, "+15551234567");
    list_keys(e, pattern, &k);
    assert_int_equal(k.count, 1); /* the version, a random token */
    assert_false(k.holds_key);
    wa_kv_cache_free(c);
}

static void
redis_unreachable__loads_from_source__nothing_stored(void **state)
{
    struct env *e = *state;
    struct wa_kv_config cfg = {.url = "redis://127.0.0.1:1/0"};
    struct wa_kv *down = NULL;
    struct wa_kv_cache_config cc = {.prefix = "x:"};
    struct wa_kv_cache *c = NULL;
    struct loader ld = {.value = "from-source"};
    struct got g;

    assert_int_equal(wa_kv_new(e->loop, &cfg, &down, NULL), WA_OK);
    assert_int_equal(wa_kv_cache_new(down, &cc, &c, NULL), WA_OK);
    get(e, c, "a", &ld, &g);
    assert_int_equal(g.err, WA_OK);
    assert_string_equal(g.value, "from-source");
    assert_false(g.hit);
    get(e, c, "a", &ld, &g);
    assert_int_equal(ld.calls, 2);
    wa_kv_cache_free(c);
    wa_kv_free(down);
}

static void
free__gets_pending__eclosed_and_late_load_dropped(void **state)
{
    struct env *e = *state;
    struct wa_kv_cache *c = cache(e, "free", 0, 0, NULL);
    struct loader ld = {.defer = true};
    struct got g1 = {0}, g2 = {0};

    assert_int_equal(wa_kv_cache_get(c, "a", load, &ld, on_got, &g1), WA_OK);
    assert_true(wa_test_run_until(e->loop, load_pending, &ld, 5000));
    assert_int_equal(wa_kv_cache_get(c, "b", load, &ld, on_got, &g2), WA_OK); /* reading */
    wa_kv_cache_free(c);
    assert_int_equal(g1.n, 1);
    assert_int_equal(g1.err, WA_ECLOSED);
    assert_int_equal(g2.n, 1);
    assert_int_equal(g2.err, WA_ECLOSED);
    wa_kv_cache_loaded(ld.pending, WA_OK, "late", 4); /* frees the orphaned flight */
    wa_test_run_for(e->loop, 100);                    /* the read reply frees the other */
    assert_int_equal(g1.n, 1);
    assert_int_equal(g2.n, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_or_load__miss_then_hit__one_load),
        cmocka_unit_test(single_flight__50_concurrent_misses__one_load),
        cmocka_unit_test(negative__not_found_cached_until_expiry__then_loaded_again),
        cmocka_unit_test(ttl__value_expires__loaded_again),
        cmocka_unit_test(versioned__invalidated_during_load__stale_value_not_stored),
        cmocka_unit_test(key_secret__names_hashed_and_value_gone_after_invalidate),
        cmocka_unit_test(redis_unreachable__loads_from_source__nothing_stored),
        cmocka_unit_test(free__gets_pending__eclosed_and_late_load_dropped),
    };

    wa_test_unique_prefix(prefix, sizeof(prefix));
    return cmocka_run_group_tests_name("kv_cache", tests, setup, teardown);
}
