/*
 * cache.c: cache-aside over wa_kv (wa/kv_cache.h): versioned values in Redis, one flight per
 * key in this process, the loader called on a miss.
 *
 * A get: join the key's flight if one is in progress; else start one: READ (one script: the
 * version and the value) -> hit: every waiter answered; miss: LOAD (the caller's loader) ->
 * every waiter answered, then FILL (one script: store only if the version read is still
 * current), fire and forget.
 *
 * Ownership: a flight belongs to the cache while it sits in its bucket (or on the detached
 * list after an invalidation) and is freed when its one outstanding external call (the READ
 * reply or the loader's answer) comes back. wa_kv_cache_free answers the waiters WA_ECLOSED
 * and orphans the flights (f->c = NULL); the outstanding call then only frees them.
 * Callbacks may free the cache: deliveries run between enter() and leave(), and the struct is
 * freed by the outermost leave() once no FILL reply is awaited (each holds the struct; a
 * wa_kv_free answers them WA_ECLOSED, so wa_kv_cache_free must come before wa_kv_free or the
 * struct waits for those replies).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/clock.h"
#include "wa/crypto.h"
#include "wa/id.h"
#include "wa/kv_cache.h"
#include "wa/list.h"
#include "wa/log.h"

#define NBUCKETS    256
#define KEY_MAX     512
#define VERSION_MAX 32
#define MARGIN_MS   60000 /* version keys outlive values and loads by this much */

/* {version or "0", value or nil} */
static const char read_lua[] = "return {redis.call('GET', KEYS[1]) or '0', "
                               "redis.call('GET', KEYS[2])}";
/* stores ARGV[2] for ARGV[3] ms if the version is still ARGV[1]; 1 stored, 0 not */
static const char fill_lua[] =
    "if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end "
    "redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) return 1";
/* a new version ARGV[1] (expiring in ARGV[2] ms), the value gone */
static const char bump_lua[] = "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
                               "redis.call('DEL', KEYS[2]) return 1";

struct waiter {
    struct wa_list link;
    wa_kv_cache_get_fn cb;
    void *arg;
};

enum state { READING, LOADING };

struct wa_kv_cache_load {
    struct wa_list link;   /* a bucket, or c->detached */
    struct wa_kv_cache *c; /* NULL once orphaned */
    enum state state;
    struct wa_list waiters;
    char *key;
    char vkey[KEY_MAX + 96], dkey[KEY_MAX + 96];
    char version[VERSION_MAX]; /* read before the load */
    bool redis_ok;             /* the read succeeded: the answer may be stored */
    uint64_t started_ms;
    wa_kv_cache_load_fn load;
    void *load_arg;
};

struct wa_kv_cache {
    struct wa_kv *kv;
    char *prefix;
    uint64_t ttl_ms, negative_ttl_ms, load_timeout_ms, version_ttl_ms;
    size_t max_value;
    struct wa_hmac *hmac; /* NULL: plain key names */
    struct wa_list buckets[NBUCKETS];
    struct wa_list detached; /* flights started before an invalidation of their key */
    struct wa_kv_cache_stats stats;
    int depth;
    unsigned fills; /* FILL scripts awaiting their reply (they hold the struct) */
    bool closing;
};

static uint32_t
hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

static struct wa_kv_cache_load *
find_flight(struct wa_kv_cache *c, const char *key)
{
    struct wa_list *head = &c->buckets[hash(key) % NBUCKETS], *it, *tmp;

    WA_LIST_FOREACH_SAFE(it, tmp, head)
    {
        struct wa_kv_cache_load *f = WA_LIST_ENTRY(it, struct wa_kv_cache_load, link);

        if (strcmp(f->key, key) == 0) {
            return f;
        }
    }
    return NULL;
}

static void
key_names(const struct wa_kv_cache *c, const char *key, char *vkey, char *dkey, size_t size)
{
    char name[KEY_MAX + 1];

    if (c->hmac != NULL) {
        unsigned char mac[WA_SHA256_LEN];

        wa_hmac_digest(c->hmac, key, strlen(key), mac);
        for (size_t i = 0; i < 16; i++) {
            snprintf(name + 2 * i, 3, "%02x", mac[i]);
        }
    } else {
        snprintf(name, sizeof(name), "%s", key);
    }
    snprintf(vkey, size, "%sv:%s", c->prefix, name);
    snprintf(dkey, size, "%sd:%s", c->prefix, name);
}

static void
flight_free(struct wa_kv_cache_load *f)
{
    struct wa_list *it, *tmp;

    WA_LIST_FOREACH_SAFE(it, tmp, &f->waiters)
    {
        wa_list_remove(it);
        free(WA_LIST_ENTRY(it, struct waiter, link));
    }
    wa_list_remove(&f->link);
    free(f->key);
    free(f);
}

static void
enter(struct wa_kv_cache *c)
{
    c->depth++;
}

static void destroy(struct wa_kv_cache *c);

static void
leave(struct wa_kv_cache *c)
{
    if (--c->depth == 0 && c->closing && c->fills == 0) {
        destroy(c);
    }
}

/* Answers every waiter of f (the flight leaves its bucket first, so a callback's get of the
 * same key starts a new one). */
static void
deliver(struct wa_kv_cache_load *f, enum wa_err err, const char *value, size_t len, bool hit)
{
    struct wa_kv_cache *c = f->c;
    struct wa_list waiters, *it, *tmp;

    wa_list_remove(&f->link);
    wa_list_take_all(&f->waiters, &waiters);
    enter(c);
    WA_LIST_FOREACH_SAFE(it, tmp, &waiters)
    {
        struct waiter *w = WA_LIST_ENTRY(it, struct waiter, link);

        wa_list_remove(it);
        if (c->closing) {
            w->cb(w->arg, WA_ECLOSED, NULL, 0, false);
        } else {
            w->cb(w->arg, err, err == WA_OK ? value : NULL, err == WA_OK ? len : 0, hit);
        }
        free(w);
    }
    leave(c);
}

static void
on_filled(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct wa_kv_cache *c = arg;

    c->fills--;
    if (c->closing) {
        enter(c);
        leave(c); /* frees c when this was the last reference */
        return;
    }
    if (err != WA_OK) {
        c->stats.redis_errors++;
    } else if (wa_kv_reply_int(reply) == 1) {
        c->stats.stored++;
    } else {
        c->stats.discarded++; /* invalidated while loading */
    }
}

static void
fill(struct wa_kv_cache_load *f, enum wa_err err, const char *value, size_t len)
{
    struct wa_kv_cache *c = f->c;
    const char *keys[2] = {f->vkey, f->dkey};
    char ttl[24], *data;
    const char *args[3];
    size_t vlen = strlen(f->version);

    if (wa_clock_mono_ms() - f->started_ms > c->load_timeout_ms || len > c->max_value) {
        c->stats.discarded++;
        return;
    }
    if ((data = malloc(vlen + len + 3)) == NULL) {
        return;
    }
    memcpy(data, f->version, vlen);
    data[vlen] = '|';
    data[vlen + 1] = err == WA_OK ? 'v' : 'n';
    if (len > 0) {
        memcpy(data + vlen + 2, value, len);
    }
    data[vlen + 2 + len] = '\0';
    snprintf(ttl, sizeof(ttl), "%llu",
             (unsigned long long)(err == WA_OK ? c->ttl_ms : c->negative_ttl_ms));
    args[0] = f->version;
    args[1] = data;
    args[2] = ttl;
    /* values are text (NUL-terminated on the way out); wa_kv_eval copies NUL-terminated args */
    if (memchr(data, '\0', vlen + 2 + len) != NULL) {
        c->stats.discarded++;
    } else if (wa_kv_eval(c->kv, fill_lua, 2, keys, 3, args, on_filled, c) == WA_OK) {
        c->fills++;
    } else {
        c->stats.redis_errors++;
    }
    free(data);
}

void
wa_kv_cache_loaded(struct wa_kv_cache_load *f, enum wa_err err, const void *value, size_t len)
{
    struct wa_kv_cache *c = f->c;

    if (c == NULL) { /* orphaned by wa_kv_cache_free */
        flight_free(f);
        return;
    }
    if (err == WA_OK && value == NULL) {
        err = WA_EINVAL;
    }
    if (f->redis_ok && (err == WA_OK || err == WA_ENOTFOUND)) {
        fill(f, err, value, len);
    }
    if (err == WA_OK) {
        /* a NUL-terminated copy for the waiters */
        char *copy = malloc(len + 1);

        if (copy == NULL) {
            deliver(f, WA_ENOMEM, NULL, 0, false);
        } else {
            memcpy(copy, value, len);
            copy[len] = '\0';
            deliver(f, WA_OK, copy, len, false);
            free(copy);
        }
    } else {
        deliver(f, err, NULL, 0, false);
    }
    flight_free(f);
}

static void
start_load(struct wa_kv_cache_load *f)
{
    f->state = LOADING;
    f->started_ms = wa_clock_mono_ms();
    f->c->stats.loads++;
    f->load(f->load_arg, f->key, f); /* may answer before returning: f is not used after */
}

static void
on_read(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct wa_kv_cache_load *f = arg;
    struct wa_kv_cache *c = f->c;
    const struct wa_kv_reply *v, *d;
    const char *version, *data, *bar;
    size_t vlen = 0, dlen = 0;

    if (c == NULL) {
        flight_free(f);
        return;
    }
    if (err == WA_ECLOSED) { /* wa_kv_free: shutting down, no load */
        deliver(f, WA_ECLOSED, NULL, 0, false);
        flight_free(f);
        return;
    }
    v = err == WA_OK ? wa_kv_reply_at(reply, 0) : NULL;
    d = err == WA_OK ? wa_kv_reply_at(reply, 1) : NULL;
    version = v != NULL ? wa_kv_reply_str(v, &vlen) : NULL;
    if (version == NULL || vlen == 0 || vlen >= VERSION_MAX || d == NULL) {
        c->stats.redis_errors++;
        start_load(f); /* Redis cannot answer: the source can; nothing will be stored */
        return;
    }
    memcpy(f->version, version, vlen);
    f->version[vlen] = '\0';
    f->redis_ok = true;
    data = wa_kv_reply_type(d) == WA_KV_REPLY_STRING ? wa_kv_reply_str(d, &dlen) : NULL;
    if (data != NULL && dlen >= vlen + 2 && memcmp(data, version, vlen) == 0 && data[vlen] == '|' &&
        (data[vlen + 1] == 'v' || data[vlen + 1] == 'n')) {
        bar = data + vlen + 1;
        c->stats.hits++;
        if (*bar == 'v') {
            deliver(f, WA_OK, bar + 1, dlen - vlen - 2, true);
        } else {
            deliver(f, WA_ENOTFOUND, NULL, 0, true);
        }
        flight_free(f);
        return;
    }
    c->stats.misses++;
    start_load(f);
}

enum wa_err
wa_kv_cache_get(struct wa_kv_cache *c, const char *key, wa_kv_cache_load_fn load, void *load_arg,
                wa_kv_cache_get_fn cb, void *arg)
{
    struct wa_kv_cache_load *f;
    struct waiter *w;
    const char *keys[2];
    enum wa_err err;

    if (c == NULL || key == NULL || key[0] == '\0' || strlen(key) > KEY_MAX || load == NULL ||
        cb == NULL) {
        return WA_EINVAL;
    }
    if (c->closing) {
        return WA_ECLOSED;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL) {
        return WA_ENOMEM;
    }
    w->cb = cb;
    w->arg = arg;
    if ((f = find_flight(c, key)) != NULL) {
        c->stats.joined++;
        wa_list_push_back(&f->waiters, &w->link);
        return WA_OK;
    }
    if ((f = calloc(1, sizeof(*f))) == NULL || (f->key = strdup(key)) == NULL) {
        free(f);
        free(w);
        return WA_ENOMEM;
    }
    f->c = c;
    f->load = load;
    f->load_arg = load_arg;
    wa_list_init(&f->waiters);
    wa_list_push_back(&f->waiters, &w->link);
    wa_list_push_back(&c->buckets[hash(key) % NBUCKETS], &f->link);
    key_names(c, key, f->vkey, f->dkey, sizeof(f->vkey));
    keys[0] = f->vkey;
    keys[1] = f->dkey;
    f->state = READING;
    if ((err = wa_kv_eval(c->kv, read_lua, 2, keys, 0, NULL, on_read, f)) != WA_OK) {
        c->stats.redis_errors++;
        start_load(f); /* Redis down: straight to the source */
    }
    return WA_OK;
}

struct bump {
    wa_kv_done_fn cb;
    void *arg;
};

static void
on_bumped(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct bump *b = arg;

    (void)reply;
    if (b->cb != NULL) {
        b->cb(b->arg, err);
    }
    free(b);
}

enum wa_err
wa_kv_cache_invalidate(struct wa_kv_cache *c, const char *key, wa_kv_done_fn cb, void *arg)
{
    char vkey[KEY_MAX + 96], dkey[KEY_MAX + 96], version[WA_ULID_LEN], ttl[24];
    const char *keys[2] = {vkey, dkey}, *args[2] = {version, ttl};
    struct wa_kv_cache_load *f;
    struct bump *b;
    enum wa_err err;

    if (c == NULL || key == NULL || key[0] == '\0' || strlen(key) > KEY_MAX) {
        return WA_EINVAL;
    }
    if (c->closing) {
        return WA_ECLOSED;
    }
    if ((f = find_flight(c, key)) != NULL) { /* later gets must not join what it read */
        wa_list_remove(&f->link);
        wa_list_push_back(&c->detached, &f->link);
    }
    if ((b = calloc(1, sizeof(*b))) == NULL) {
        return WA_ENOMEM;
    }
    b->cb = cb;
    b->arg = arg;
    key_names(c, key, vkey, dkey, sizeof(vkey));
    wa_ulid_new(version);
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)c->version_ttl_ms);
    if ((err = wa_kv_eval(c->kv, bump_lua, 2, keys, 2, args, on_bumped, b)) != WA_OK) {
        free(b);
    }
    return err;
}

enum wa_err
wa_kv_cache_new(struct wa_kv *kv, const struct wa_kv_cache_config *config, struct wa_kv_cache **out,
                struct wa_error *error)
{
    struct wa_kv_cache *c;

    if (kv == NULL || config == NULL || config->prefix == NULL || out == NULL) {
        return wa_error_set(error, WA_EINVAL, "wa_kv_cache_new: missing argument");
    }
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->prefix = strdup(config->prefix)) == NULL ||
        (config->key_secret != NULL &&
         wa_hmac_new(config->key_secret, config->key_secret_len, &c->hmac) != WA_OK)) {
        if (c != NULL) {
            free(c->prefix);
            free(c);
        }
        return wa_error_set(error, WA_ENOMEM, "wa_kv_cache_new: out of memory");
    }
    c->kv = kv;
    c->ttl_ms = config->ttl_ms ? config->ttl_ms : 60000;
    c->negative_ttl_ms = config->negative_ttl_ms ? config->negative_ttl_ms : 5000;
    c->load_timeout_ms = config->load_timeout_ms ? config->load_timeout_ms : 10000;
    c->max_value = config->max_value ? config->max_value : 65536;
    c->version_ttl_ms = (c->ttl_ms > c->negative_ttl_ms ? c->ttl_ms : c->negative_ttl_ms) +
                        c->load_timeout_ms + MARGIN_MS;
    for (size_t i = 0; i < NBUCKETS; i++) {
        wa_list_init(&c->buckets[i]);
    }
    wa_list_init(&c->detached);
    *out = c;
    return WA_OK;
}

/* Answers every waiter WA_ECLOSED and orphans every flight. */
static void
close_flights(struct wa_list *head)
{
    struct wa_list *it, *tmp;

    WA_LIST_FOREACH_SAFE(it, tmp, head)
    {
        struct wa_kv_cache_load *f = WA_LIST_ENTRY(it, struct wa_kv_cache_load, link);

        deliver(f, WA_ECLOSED, NULL, 0, false); /* unlinks f */
        f->c = NULL;
    }
}

static void
destroy(struct wa_kv_cache *c)
{
    wa_hmac_free(c->hmac);
    free(c->prefix);
    free(c);
}

void
wa_kv_cache_free(struct wa_kv_cache *c)
{
    if (c == NULL || c->closing) {
        return;
    }
    c->closing = true;
    enter(c);
    for (size_t i = 0; i < NBUCKETS; i++) {
        close_flights(&c->buckets[i]);
    }
    close_flights(&c->detached);
    leave(c); /* frees c unless inside a callback */
}

void
wa_kv_cache_stats(const struct wa_kv_cache *c, struct wa_kv_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (c != NULL) {
        *out = c->stats;
    }
}
