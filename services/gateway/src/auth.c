/*
 * auth.c: stage 1 of 3 (after api.c). Input: a routed request. Output: the principal (key id,
 * scopes, rate) handed to gw_limit_start(), or 401 (WWW-Authenticate: Bearer ...), 403 for a
 * missing scope, 503 when no key store answers.
 *
 * API keys wab_<id>_<secret> in "Authorization: Bearer" (any other Bearer credential is a JWT
 * for token.c when an issuer is configured). The record of <id> is read from the
 * Redis cache <p>gw:key:<id> (WA_GATEWAY_KEY_CACHE_TTL, so a revocation reaches every replica
 * within it), else from MongoDB api_keys (then cached, also as "missing" so unknown ids do not
 * reach MongoDB on every try). The secret is compared as HMAC-SHA256(pepper, secret) in
 * constant time (apikey.c), also for unknown ids. The raw key is never logged or stored.
 *
 * Threading: loop thread. Ownership: struct lookup (holds the presented secret, wiped on free)
 * lives from gw_auth_start until the verdict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway.h"
#include "wa/clock.h"
#include "wa/kv.h"
#include "wa/log.h"
#include "wa/mongo.h"

struct lookup {
    struct gw_call *c;
    struct gw_key_parts parts;
    char cache_key[256];
};

static void
lookup_free(struct lookup *l)
{
    if (l != NULL) {
        explicit_bzero(l->parts.secret, sizeof(l->parts.secret));
        free(l);
    }
}

static void
unauthorized(struct gw_call *c, const char *www, const char *detail)
{
    wa_counter_inc(c->gw->m.auth_invalid);
    if (c->req != NULL) {
        wa_http_reply_header(c->req, "WWW-Authenticate", www);
    }
    gw_call_problem(c, 401, "Unauthorized", detail);
}

static void
unavailable(struct lookup *l, enum wa_err err)
{
    struct gw_call *c = l->c;
    uint64_t skipped = 0;

    lookup_free(l);
    wa_counter_inc(c->gw->m.auth_unavailable);
    if (wa_log_limit_pass(&c->gw->warn_limit, &skipped)) {
        wa_log_warn(NULL, "API key store unavailable (MongoDB %s; %llu similar suppressed)",
                    wa_err_name(err), (unsigned long long)skipped);
    }
    if (c->req != NULL) {
        wa_http_reply_header(c->req, "Retry-After", "1");
    }
    gw_call_problem(c, 503, "Service Unavailable", "the key store did not answer; retry later");
}

static void
on_cache_set(void *arg, enum wa_err err)
{
    (void)arg;
    (void)err; /* a cache miss next time is the only cost */
}

static void
cache_put(struct gw *gw, const char *key, const char *value)
{
    if (gw->cfg->key_cache_ms > 0 && wa_kv_ready(gw->kv)) {
        (void)wa_kv_set_px(gw->kv, key, value, (uint64_t)gw->cfg->key_cache_ms, on_cache_set, NULL);
    }
}

/* The verdict on a record (NULL: unknown id). */
static void
decide(struct lookup *l, const struct gw_key_record *rec)
{
    struct gw_call *c = l->c;
    struct gw *gw = c->gw;
    enum gw_key_verdict v =
        gw_key_verify(rec, gw->pepper, l->parts.secret, (int64_t)wa_clock_wall_ms());

    lookup_free(l);
    if (v != GW_KEY_OK) {
        unauthorized(c, "Bearer realm=\"wabridge\", error=\"invalid_token\"",
                     v == GW_KEY_EXPIRED   ? "the API key expired"
                     : v == GW_KEY_REVOKED ? "the API key was revoked"
                                           : "the API key is not valid");
        return;
    }
    c->authenticated = true;
    snprintf(c->key_id, sizeof(c->key_id), "%s", rec->id);
    snprintf(c->principal, sizeof(c->principal), "key:%s", rec->id);
    c->scopes = rec->scopes;
    c->rate_per_min = rec->rate_per_min > 0 ? rec->rate_per_min : gw->cfg->rate_per_min;
    c->burst = rec->burst > 0 ? rec->burst : gw->cfg->burst;
    gw_auth_accept(c);
}

void
gw_auth_accept(struct gw_call *c)
{
    struct gw *gw = c->gw;

    if (!gw_api_scope_ok(c)) {
        char www[160];

        snprintf(www, sizeof(www),
                 "Bearer realm=\"wabridge\", error=\"insufficient_scope\", scope=\"%s\"",
                 gw_api_scope_name(c));
        wa_counter_inc(gw->m.auth_forbidden);
        if (c->req != NULL) {
            wa_http_reply_header(c->req, "WWW-Authenticate", www);
        }
        gw_call_problem(c, 403, "Forbidden", "the credential lacks the scope this request needs");
        return;
    }
    wa_counter_inc(gw->m.auth_ok);
    gw_limit_start(c);
}

void
gw_auth_refuse(struct gw_call *c, const char *detail)
{
    unauthorized(c, "Bearer realm=\"wabridge\", error=\"invalid_token\"", detail);
}

static void
on_found(void *arg, enum wa_err err, json_t *doc)
{
    struct lookup *l = arg;
    struct gw_key_record rec;
    char *text;

    if (err == WA_ENOTFOUND) {
        cache_put(l->c->gw, l->cache_key, "{\"missing\":true}");
        decide(l, NULL);
        return;
    }
    if (err != WA_OK) {
        unavailable(l, err);
        return;
    }
    if (gw_key_record_from_json(doc, &rec) != WA_OK) {
        wa_log_warn(NULL, "api_keys document %s is malformed; refused", l->parts.id);
        decide(l, NULL);
        return;
    }
    if ((text = wa_json_dump(doc)) != NULL) {
        cache_put(l->c->gw, l->cache_key, text);
        free(text);
    }
    decide(l, &rec);
}

static void
from_mongo(struct lookup *l)
{
    json_t *filter = json_pack("{s:s}", "_id", l->parts.id);
    enum wa_err err = filter != NULL ? wa_mongo_find_one(l->c->gw->mongo, GW_COLL_API_KEYS, filter,
                                                         NULL, on_found, l)
                                     : WA_ENOMEM;

    json_decref(filter);
    if (err != WA_OK) {
        unavailable(l, err);
    }
}

static void
on_cached(void *arg, enum wa_err err, const char *value, size_t len)
{
    struct lookup *l = arg;
    struct gw_key_record rec;
    json_t *doc = NULL;

    if (err != WA_OK || wa_json_parse(value, len, 8, &doc, NULL) != WA_OK) {
        from_mongo(l); /* missing, Redis down or a bad entry: ask MongoDB */
        return;
    }
    if (json_is_true(json_object_get(doc, "missing"))) {
        json_decref(doc);
        decide(l, NULL);
        return;
    }
    if (gw_key_record_from_json(doc, &rec) != WA_OK) {
        json_decref(doc);
        from_mongo(l);
        return;
    }
    json_decref(doc);
    decide(l, &rec);
}

static void
on_forgotten(void *arg, enum wa_err err, long long n)
{
    (void)arg;
    (void)err;
    (void)n;
}

void
gw_auth_forget(struct gw *gw, const char *key_id)
{
    char key[256];

    snprintf(key, sizeof(key), "%sgw:key:%s", gw->prefix, key_id);
    if (wa_kv_ready(gw->kv)) {
        (void)wa_kv_del(gw->kv, key, on_forgotten, NULL);
    }
}

void
gw_auth_start(struct gw_call *c)
{
    struct gw *gw = c->gw;
    const char *h = c->req != NULL ? wa_http_req_header(c->req, "Authorization") : NULL;
    struct lookup *l;

    if (h == NULL || h[0] == '\0') {
        wa_counter_inc(gw->m.auth_missing);
        if (c->req != NULL) {
            wa_http_reply_header(c->req, "WWW-Authenticate", "Bearer realm=\"wabridge\"");
        }
        gw_call_problem(c, 401, "Unauthorized", "an API key or token is required (Bearer)");
        return;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        unauthorized(c, "Bearer realm=\"wabridge\", error=\"invalid_request\"",
                     "the Authorization scheme must be Bearer");
        return;
    }
    for (h += 7; *h == ' '; h++) {
    }
    if (strncmp(h, GW_KEY_PREFIX, strlen(GW_KEY_PREFIX)) != 0 && gw->jwt != NULL) {
        gw_token_start(c, h); /* not an API key: a JWT of the configured issuer */
        return;
    }
    if ((l = calloc(1, sizeof(*l))) == NULL) {
        gw_call_problem(c, 503, "Service Unavailable", "out of memory");
        return;
    }
    l->c = c;
    if (gw_apikey_parse(h, &l->parts) != WA_OK) {
        lookup_free(l);
        unauthorized(c, "Bearer realm=\"wabridge\", error=\"invalid_token\"",
                     "the token is not a valid API key");
        return;
    }
    if (gw->pepper == NULL) {
        lookup_free(l);
        gw_call_problem(c, 503, "Service Unavailable",
                        "API keys are not configured (WA_GATEWAY_KEY_PEPPER)");
        return;
    }
    snprintf(l->cache_key, sizeof(l->cache_key), "%sgw:key:%s", gw->prefix, l->parts.id);
    if (wa_kv_get(gw->kv, l->cache_key, on_cached, l) != WA_OK) {
        from_mongo(l);
    }
}
