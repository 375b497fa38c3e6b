/*
 * wa/kv_cache.h: cache-aside in Redis over a loader (the source of truth, e.g. MongoDB).
 *
 * wa_kv_cache_get(cache, key, load, ...) answers from Redis when it holds a current value for
 * key, else calls load once and stores its answer for ttl_ms:
 * - negative caching: a load answering WA_ENOTFOUND is stored for negative_ttl_ms, and gets
 *   answer WA_ENOTFOUND from Redis until then;
 * - single flight: gets of one key while its read or load is in progress join it, so N
 *   concurrent misses in one process make one load (other processes make their own);
 * - versioned invalidation: wa_kv_cache_invalidate() gives the key a new random version and
 *   deletes its value; a value is stored only if the version it was loaded under is still the
 *   current one, so a load that started before a change never repopulates the cache with what
 *   it read before the change. Call it after every change of the source, and gets joining a
 *   flight started before the invalidation start a new one instead.
 * Redis down or slow: gets load from the source directly (nothing is stored); an invalidation
 * fails with the Redis error (the caller decides; values expire after ttl_ms anyway).
 *
 * Redis keys: <prefix>v:<name> (the version, expiring max(ttl, negative ttl) + load timeout +
 * 60 s after the last invalidation) and <prefix>d:<name> ("<version>|<v|n><value>"). name is
 * the key, or with key_secret 32 hex digits of HMAC-SHA256(key_secret, key), so key names in
 * Redis do not carry personal data such as phone numbers.
 *
 * Threading: loop thread only (that of the wa_kv). Async contract as in wa/kv.h.
 */
#ifndef WA_KV_CACHE_H
#define WA_KV_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/err.h"
#include "wa/kv.h"

struct wa_kv_cache;
/* One load in progress: answered once with wa_kv_cache_loaded(). */
struct wa_kv_cache_load;

struct wa_kv_cache_config {
    const char *prefix;       /* Redis key prefix, e.g. "wa.us:contact:"; copied; required */
    uint64_t ttl_ms;          /* a value's lifetime; 0 = 60000 */
    uint64_t negative_ttl_ms; /* a "not found"'s lifetime; 0 = 5000 */
    /* a load answering later than this is passed on but not stored; 0 = 10000 */
    uint64_t load_timeout_ms;
    size_t max_value;       /* larger values are passed on but not stored; 0 = 65536 */
    const void *key_secret; /* NULL: key names hold the key itself; copied */
    size_t key_secret_len;
};

/* Counters since wa_kv_cache_new (for metrics and tests). */
struct wa_kv_cache_stats {
    uint64_t hits;      /* answered from Redis (values and negatives) */
    uint64_t misses;    /* Redis had no current value: a load started */
    uint64_t joined;    /* gets that joined a read or load already in progress */
    uint64_t loads;     /* loader calls (misses, and reads Redis could not answer) */
    uint64_t stored;    /* values and negatives written */
    uint64_t discarded; /* loads not stored: version changed, too late, too large */
    uint64_t redis_errors;
};

/* Returns a new cache on kv (borrowed; must outlive it) in *out; free with wa_kv_cache_free.
 * WA_EINVAL without a prefix, WA_ENOMEM. */
enum wa_err wa_kv_cache_new(struct wa_kv *kv, const struct wa_kv_cache_config *config,
                            struct wa_kv_cache **out, struct wa_error *error);
/* Gets in progress are answered WA_ECLOSED before it returns; loads in progress are still
 * answered by their loaders (and then dropped). Call before wa_kv_free. Accepts NULL. May be
 * called from a get callback. */
void wa_kv_cache_free(struct wa_kv_cache *c);

/*
 * The loader: reads key from the source of truth and answers once, later or before returning,
 * with wa_kv_cache_loaded(load, ...). load_arg is the first joining get's.
 */
typedef void (*wa_kv_cache_load_fn)(void *load_arg, const char *key, struct wa_kv_cache_load *load);
/* The loader's answer: WA_OK and the value (copied), WA_ENOTFOUND (stored as a negative), or
 * another error (passed to every waiting get, not stored). */
void wa_kv_cache_loaded(struct wa_kv_cache_load *load, enum wa_err err, const void *value,
                        size_t len);

/* value (borrowed during the call, NUL-terminated) is NULL unless err is WA_OK; err
 * WA_ENOTFOUND for a (cached or loaded) negative; hit: answered from Redis. */
typedef void (*wa_kv_cache_get_fn)(void *arg, enum wa_err err, const char *value, size_t len,
                                   bool hit);
/* The value of key (at most 512 bytes; copied); cb once. WA_EINVAL, WA_ECLOSED, WA_ENOMEM
 * synchronously (and then no cb, no load). */
enum wa_err wa_kv_cache_get(struct wa_kv_cache *c, const char *key, wa_kv_cache_load_fn load,
                            void *load_arg, wa_kv_cache_get_fn cb, void *arg);
/* A new version for key and its value deleted, in one script; cb once (NULL: no callback,
 * fire and forget). Errors as wa_kv_eval's. */
enum wa_err wa_kv_cache_invalidate(struct wa_kv_cache *c, const char *key, wa_kv_done_fn cb,
                                   void *arg);

void wa_kv_cache_stats(const struct wa_kv_cache *c, struct wa_kv_cache_stats *out);

#endif
