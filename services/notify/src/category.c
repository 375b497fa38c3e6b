/*
 * category.c: the category of a template as the Cloud API's template registry says
 * (GET /{WABA_ID}/message_templates?name=, cloud-api.md §5.1), for the marketing opt-out
 * (policy.c): a template approved as MARKETING is marketing whatever category the caller
 * wrote in the request. Answers are cached per (WABA, name, language) for
 * WA_NOTIFY_TEMPLATE_TTL; requests asking for a template being looked up wait for that one
 * lookup (one Graph call per template and TTL, however many sends).
 *
 * A template the registry does not list has no known category ("": the caller's category
 * stands; the send itself then fails with 132001). A registry that does not answer (network,
 * 5xx, token) is WA_EUNAVAIL: nothing is cached, the caller decides (policy.c holds the
 * request of an opted-out contact and asks again).
 *
 * Threading: loop thread. Ownership: struct nt owns the cache (nt_category_cleanup); a waiting
 * request is linked, not owned; it is never freed while it waits (it waits in NT_REQ_POLICY,
 * which nothing else finishes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "notify.h"
#include "wa/clock.h"
#include "wa/log.h"

#define CACHE_BUCKETS 256
#define CACHE_MAX     10000 /* entries; past it the cache is emptied (then refilled as used) */

struct nt_tpl {
    struct nt_tpl *next;
    char key[256]; /* waba \n name \n language */
    char category[24];
    uint64_t expires_ms;    /* monotonic; 0 while the lookup runs */
    struct wa_list waiters; /* nt_req.clink */
    struct nt *nt;
    struct wa_httpc_call *call;
};

struct nt_category_cache {
    struct nt_tpl *buckets[CACHE_BUCKETS];
    size_t n;
};

static uint64_t
hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

void
nt_category_cleanup(struct nt *nt)
{
    struct nt_category_cache *c = nt->categories;

    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        while (c->buckets[i] != NULL) {
            struct nt_tpl *t = c->buckets[i];

            c->buckets[i] = t->next;
            free(t); /* its call, if any, went with wa_httpc_free */
        }
    }
    free(c);
    nt->categories = NULL;
}

/* Drops every settled entry (lookups in flight stay: requests wait on them). */
static void
trim(struct nt_category_cache *c)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        struct nt_tpl **p = &c->buckets[i];

        while (*p != NULL) {
            struct nt_tpl *t = *p;

            if (t->expires_ms != 0) {
                *p = t->next;
                free(t);
                c->n--;
            } else {
                p = &t->next;
            }
        }
    }
}

static void
unlink_tpl(struct nt_category_cache *c, struct nt_tpl *t)
{
    struct nt_tpl **p = &c->buckets[hash(t->key) % CACHE_BUCKETS];

    while (*p != NULL && *p != t) {
        p = &(*p)->next;
    }
    if (*p == t) {
        *p = t->next;
        c->n--;
    }
}

/* The registry's category of (name, language) in a message_templates answer; "" if absent. */
static void
parse_answer(const char *body, size_t len, const char *name, const char *language, char *out,
             size_t size)
{
    json_t *root = json_loadb(body, len, 0, NULL), *item;
    size_t i;

    out[0] = '\0';
    json_array_foreach(json_object_get(root, "data"), i, item)
    {
        const char *n = wa_json_str(item, "name"), *l = wa_json_str(item, "language"),
                   *cat = wa_json_str(item, "category");

        if (n != NULL && l != NULL && cat != NULL && strcmp(n, name) == 0 &&
            strcmp(l, language) == 0) {
            snprintf(out, size, "%s", cat);
            break;
        }
    }
    json_decref(root);
}

static void
on_registry(const struct wa_httpc_result *res, void *arg)
{
    struct nt_tpl *t = arg;
    struct nt *nt = t->nt;
    char key[sizeof(t->key)], *name, *language;
    enum wa_err err = WA_OK;
    struct wa_list waiters;

    t->call = NULL;
    snprintf(key, sizeof(key), "%s", t->key);
    name = strchr(key, '\n') + 1;
    language = strchr(name, '\n');
    *language++ = '\0';
    if (res->err != WA_OK || res->status != 200) {
        wa_log_warn(NULL, "template registry: %s %s: %s (HTTP %ld); the category is unknown", name,
                    language, res->err != WA_OK ? wa_err_name(res->err) : "answer", res->status);
        wa_counter_inc(nt->c_registry_failures);
        err = WA_EUNAVAIL;
    } else {
        parse_answer(res->body, res->body_len, name, language, t->category, sizeof(t->category));
        t->expires_ms = wa_loop_now(nt->loop) + (uint64_t)nt->cfg->template_ttl_ms;
    }
    /* the waiters go on with the answer; a failed lookup leaves no entry behind */
    wa_list_take_all(&t->waiters, &waiters);
    if (err != WA_OK) {
        unlink_tpl(nt->categories, t);
    }
    while (!wa_list_empty(&waiters)) {
        struct nt_req *r = WA_LIST_ENTRY(wa_list_first(&waiters), struct nt_req, clink);

        wa_list_remove(&r->clink);
        nt_policy_category(r, err, err == WA_OK ? t->category : "");
    }
    if (err != WA_OK) {
        free(t);
    }
}

static enum wa_err
lookup(struct nt_tpl *t, const char *waba, const char *name, const char *token)
{
    struct nt *nt = t->nt;
    char url[1024], auth[1100];
    struct wa_httpc_header headers[1] = {{"Authorization", auth}};
    struct wa_httpc_request rq;

    snprintf(url, sizeof(url),
             "%s/%s/message_templates?name=%s&fields=name,language,status,category&limit=100",
             nt->cfg->graph_url, waba, name);
    snprintf(auth, sizeof(auth), "Bearer %s", token);
    memset(&rq, 0, sizeof(rq));
    rq.method = "GET";
    rq.url = url;
    rq.headers = headers;
    rq.nheaders = 1;
    return wa_httpc_send(nt->http, &rq, on_registry, t, &t->call, NULL);
}

enum wa_err
nt_category_resolve(struct nt_req *r, const char *name, const char *language, const char **category)
{
    struct nt *nt = r->nt;
    struct nt_category_cache *c = nt->categories;
    char waba[64], key[256];
    struct nt_tpl *t, **head;
    struct nt_number *num;
    uint64_t now = wa_loop_now(nt->loop);

    *category = NULL;
    if (nt_config_lookup(nt->cfg->waba_id, r->rq.phone_number_id, waba, sizeof(waba)) != WA_OK ||
        waba[0] == '\0') {
        *category = ""; /* no registry configured for this number */
        return WA_OK;
    }
    /* template names are [a-z0-9_]; anything else is no registry name (and fails 132001) */
    if (strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name) ||
        snprintf(key, sizeof(key), "%s\n%s\n%s", waba, name, language) >= (int)sizeof(key)) {
        *category = "";
        return WA_OK;
    }
    if (c == NULL && (c = nt->categories = calloc(1, sizeof(*c))) == NULL) {
        return WA_ENOMEM;
    }
    head = &c->buckets[hash(key) % CACHE_BUCKETS];
    for (t = *head; t != NULL; t = t->next) {
        if (strcmp(t->key, key) == 0) {
            break;
        }
    }
    if (t != NULL && t->expires_ms != 0 && t->expires_ms <= now) {
        unlink_tpl(c, t);
        free(t);
        t = NULL;
    }
    if (t != NULL && t->expires_ms != 0) {
        *category = t->category;
        return WA_OK;
    }
    if (t == NULL) {
        if (c->n >= CACHE_MAX) {
            trim(c);
        }
        if ((t = calloc(1, sizeof(*t))) == NULL) {
            return WA_ENOMEM;
        }
        snprintf(t->key, sizeof(t->key), "%s", key);
        t->nt = nt;
        wa_list_init(&t->waiters);
        num = nt_pace_number(nt, r->rq.phone_number_id);
        if (num == NULL || lookup(t, waba, name, num->token) != WA_OK) {
            free(t);
            return WA_EUNAVAIL;
        }
        head = &c->buckets[hash(key) % CACHE_BUCKETS];
        t->next = *head;
        *head = t;
        c->n++;
    }
    wa_list_push_back(&t->waiters, &r->clink);
    return WA_EAGAIN;
}
