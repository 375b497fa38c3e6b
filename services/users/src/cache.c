/*
 * cache.c: the Redis read-through cache of GET /v1/contacts/{id} (libs/kv cache-aside). A
 * value is the contact as the API renders it (compact JSON); an unknown contact is cached as a
 * negative. Every change of a contact document (REST writes and erasure here in rest.c, consent
 * in ledger.c, inbound messages and replies in profile.c, imports) calls us_cache_invalidate
 * after MongoDB acknowledged it; a load that read the document before the change is then not
 * stored (versioned invalidation).
 *
 * Redis keys: <p>us:contact:v:<h> (a random version) and <p>us:contact:d:<h> (the value), h =
 * HMAC-SHA256(WA_USERS_CACHE_SECRET, contact id): no key name holds a phone number, and after
 * an erasure only the version (random) is left until it expires.
 *
 * Threading: loop thread. Ownership: us->cache, freed by us_cache_stop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "wa/kv_cache.h"
#include "wa/log.h"
#include "wa/mongo.h"

/* the label keys the name hash when no secret is configured (names still hold no number) */
#define DEFAULT_SECRET "wa-users contact cache"

enum wa_err
us_cache_start(struct us *us, struct wa_error *error)
{
    char prefix[192];
    const char *secret = us->cfg->cache_secret != NULL && us->cfg->cache_secret[0] != '\0'
                             ? us->cfg->cache_secret
                             : DEFAULT_SECRET;
    struct wa_kv_cache_config cc = {.prefix = prefix,
                                    .ttl_ms = (uint64_t)us->cfg->cache_ttl_ms,
                                    .negative_ttl_ms = 5000,
                                    .key_secret = secret,
                                    .key_secret_len = strlen(secret)};

    if (us->cfg->cache_ttl_ms <= 0) {
        return WA_OK; /* disabled: every GET reads MongoDB */
    }
    snprintf(prefix, sizeof(prefix), "%sus:contact:", us->prefix);
    return wa_kv_cache_new(us->kv, &cc, &us->cache, error);
}

void
us_cache_stop(struct us *us)
{
    wa_kv_cache_free(us->cache);
    us->cache = NULL;
}

static void
on_loaded(void *arg, enum wa_err err, json_t *doc)
{
    struct wa_kv_cache_load *l = arg;
    json_t *view;
    char *text = NULL;

    if (err != WA_OK) {
        wa_kv_cache_loaded(l, err, NULL, 0);
        return;
    }
    view = us_contact_render(doc);
    text = view != NULL ? json_dumps(view, JSON_COMPACT) : NULL;
    wa_kv_cache_loaded(l, text != NULL ? WA_OK : WA_ENOMEM, text, text != NULL ? strlen(text) : 0);
    free(text);
    json_decref(view);
}

static void
load(void *arg, const char *cid, struct wa_kv_cache_load *l)
{
    struct us *us = arg;
    json_t *filter = json_pack("{s:s}", "_id", cid);
    enum wa_err err =
        filter != NULL ? wa_mongo_find_one(us->mongo, US_COLL_CONTACTS, filter, NULL, on_loaded, l)
                       : WA_ENOMEM;

    json_decref(filter);
    if (err != WA_OK) {
        wa_kv_cache_loaded(l, err, NULL, 0);
    }
}

struct direct {
    wa_kv_cache_get_fn cb;
    void *arg;
};

/* The cache disabled: a load answers the get itself. */
static void
on_direct(void *arg, enum wa_err err, json_t *doc)
{
    struct direct *d = arg;
    json_t *view = err == WA_OK ? us_contact_render(doc) : NULL;
    char *text = view != NULL ? json_dumps(view, JSON_COMPACT) : NULL;

    if (err == WA_OK && text == NULL) {
        err = WA_ENOMEM;
    }
    d->cb(d->arg, err, text, text != NULL ? strlen(text) : 0, false);
    free(text);
    json_decref(view);
    free(d);
}

enum wa_err
us_cache_get(struct us *us, const char *cid, wa_kv_cache_get_fn cb, void *arg)
{
    struct direct *d;
    json_t *filter;
    enum wa_err err;

    if (us->cache != NULL) {
        return wa_kv_cache_get(us->cache, cid, load, us, cb, arg);
    }
    if ((d = malloc(sizeof(*d))) == NULL) {
        return WA_ENOMEM;
    }
    d->cb = cb;
    d->arg = arg;
    filter = json_pack("{s:s}", "_id", cid);
    err = filter != NULL
              ? wa_mongo_find_one(us->mongo, US_COLL_CONTACTS, filter, NULL, on_direct, d)
              : WA_ENOMEM;
    json_decref(filter);
    if (err != WA_OK) {
        free(d);
    }
    return err;
}

struct inval {
    char cid[US_ID_MAX];
    us_done_fn cb;
    void *arg;
};

static void
on_invalidated(void *arg, enum wa_err err)
{
    struct inval *v = arg;

    if (err != WA_OK) {
        /* the value expires within WA_USERS_CACHE_TTL anyway */
        wa_log_warn(NULL, "contact cache not invalidated: %s", wa_err_name(err));
    }
    if (v->cb != NULL) {
        v->cb(v->arg, err);
    }
    free(v);
}

enum wa_err
us_cache_invalidate(struct us *us, const char *cid, us_done_fn cb, void *arg)
{
    struct inval *v;
    enum wa_err err;

    if (us->cache == NULL) {
        return cb != NULL ? WA_ENOTFOUND : WA_OK; /* nothing cached: nothing to do */
    }
    if ((v = calloc(1, sizeof(*v))) == NULL) {
        return WA_ENOMEM;
    }
    snprintf(v->cid, sizeof(v->cid), "%s", cid);
    v->cb = cb;
    v->arg = arg;
    if ((err = wa_kv_cache_invalidate(us->cache, cid, on_invalidated, v)) != WA_OK) {
        if (cb == NULL) {
            wa_log_warn(NULL, "contact cache not invalidated: %s", wa_err_name(err));
        }
        free(v);
    }
    return err;
}
