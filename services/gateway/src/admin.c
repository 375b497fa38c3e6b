/*
 * admin.c: the key administration API (scope admin), after limit.c:
 *   POST   /v1/admin/keys       {name, scopes, rate_per_min?, burst?, expires_at?} -> 201 with
 *                               the key text, shown this once (Cache-Control: no-store)
 *   GET    /v1/admin/keys       every key, without hashes
 *   DELETE /v1/admin/keys/{id}  revocation (revoked_at set, cache entry dropped) -> 204
 * A revoked key stays listed (audit); every replica refuses it once its cached record expires
 * (WA_GATEWAY_KEY_CACHE_TTL), this one at once.
 *
 * Threading: loop thread; MongoDB calls answer on it. Ownership: struct op lives until the
 * answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "wa/clock.h"
#include "wa/contract_outbound.h"
#include "wa/log.h"
#include "wa/mongo.h"

struct op {
    struct gw_call *c;
    struct gw_key_record rec;
    char key[GW_KEY_LEN + 1];
};

static void
op_free(struct op *o)
{
    explicit_bzero(o->key, sizeof(o->key));
    free(o);
}

static void
unavailable(struct gw_call *c, enum wa_err err)
{
    wa_log_warn(NULL, "%s %s: MongoDB %s", c->req != NULL ? wa_http_req_method(c->req) : "",
                c->req != NULL ? wa_http_req_path(c->req) : "", wa_err_name(err));
    gw_call_problem(c, 503, "Service Unavailable", "the key store did not answer; retry later");
}

static void
on_inserted(void *arg, enum wa_err err)
{
    struct op *o = arg;
    struct gw_call *c = o->c;
    json_t *v;
    char location[64];

    if (err != WA_OK) {
        op_free(o);
        unavailable(c, err);
        return;
    }
    v = gw_key_record_render(&o->rec);
    if (v != NULL) {
        json_object_set_new(v, "key", json_string(o->key));
    }
    wa_log_info(NULL, "API key %s (%s) created", o->rec.id, o->rec.name);
    snprintf(location, sizeof(location), "/v1/admin/keys/%s", o->rec.id);
    if (c->req != NULL) {
        wa_http_reply_header(c->req, "Location", location);
        wa_http_reply_header(c->req, "Cache-Control", "no-store");
    }
    op_free(o);
    gw_call_reply_value(c, 201, v);
}

void
gw_admin_keys_create(struct gw_call *c)
{
    struct gw *gw = c->gw;
    const json_t *b = c->body, *v;
    const char *name = wa_json_str(b, "name");
    struct gw_body_check chk = {.n = 0};
    unsigned scopes = 0;
    int64_t rate = 0, burst = 0, expires = 0;
    char bad[80];
    struct op *o;
    json_t *doc;
    enum wa_err err;

#define BAD(ptr, ...)                                                                      \
    do {                                                                                   \
        if (chk.n < GW_FIELD_ERRORS_MAX) {                                                 \
            snprintf(chk.errors[chk.n].pointer, sizeof(chk.errors[0].pointer), "%s", ptr); \
            snprintf(chk.errors[chk.n].detail, sizeof(chk.errors[0].detail), __VA_ARGS__); \
            chk.n++;                                                                       \
        }                                                                                  \
    } while (0)
    if (!json_is_object(b)) {
        BAD("", "the body must be a JSON object");
    } else {
        if (name == NULL || name[0] == '\0' || strlen(name) > 127) {
            BAD("/name", "required: a string of 1 to 127 bytes");
        }
        if (gw_scopes_from_json(json_object_get(b, "scopes"), &scopes, bad, sizeof(bad)) != WA_OK ||
            scopes == 0) {
            BAD("/scopes", "required: an array of messages:send, messages:read, contacts:read, "
                           "contacts:write, analytics:read, admin");
        }
        if ((v = json_object_get(b, "rate_per_min")) != NULL &&
            (!json_is_integer(v) || (rate = json_integer_value(v)) < 1 || rate > 100000000)) {
            BAD("/rate_per_min", "must be an integer from 1 to 100000000");
        }
        if ((v = json_object_get(b, "burst")) != NULL &&
            (!json_is_integer(v) || (burst = json_integer_value(v)) < 1 || burst > 100000000)) {
            BAD("/burst", "must be an integer from 1 to 100000000");
        }
        if ((v = json_object_get(b, "expires_at")) != NULL && !json_is_null(v) &&
            (!json_is_string(v) ||
             wa_contract_time_parse(json_string_value(v), &expires) != WA_OK ||
             expires <= (int64_t)wa_clock_wall_ms())) {
            BAD("/expires_at", "must be an RFC 3339 date-time in the future");
        }
    }
#undef BAD
    if (chk.n > 0) {
        gw_call_invalid(c, &chk);
        return;
    }
    if ((o = calloc(1, sizeof(*o))) == NULL) {
        gw_call_problem(c, 503, "Service Unavailable", "out of memory");
        return;
    }
    o->c = c;
    if (gw_keys_new(gw->pepper, name, scopes, rate, expires, &o->rec, o->key) != WA_OK) {
        op_free(o);
        gw_call_problem(c, 503, "Service Unavailable", "no random bytes");
        return;
    }
    o->rec.burst = burst;
    doc = gw_key_record_to_json(&o->rec);
    err = doc != NULL ? wa_mongo_insert_one(gw->mongo, GW_COLL_API_KEYS, doc, on_inserted, o)
                      : WA_ENOMEM;
    json_decref(doc);
    if (err != WA_OK) {
        op_free(o);
        unavailable(c, err);
    }
}

static void
on_listed(void *arg, enum wa_err err, json_t *docs)
{
    struct gw_call *c = arg;
    json_t *data, *doc;
    size_t i;

    if (err != WA_OK) {
        unavailable(c, err);
        return;
    }
    data = json_array();
    json_array_foreach(docs, i, doc)
    {
        struct gw_key_record rec;

        if (gw_key_record_from_json(doc, &rec) == WA_OK) {
            json_array_append_new(data, gw_key_record_render(&rec));
        }
    }
    gw_call_reply_value(c, 200, json_pack("{s:o}", "data", data));
}

void
gw_admin_keys_list(struct gw_call *c)
{
    json_t *opts = json_pack("{s:{s:i}, s:i}", "sort", "created_at", 1, "limit", 1000);
    enum wa_err err = opts != NULL
                          ? wa_mongo_find(c->gw->mongo, GW_COLL_API_KEYS, NULL, opts, on_listed, c)
                          : WA_ENOMEM;

    json_decref(opts);
    if (err != WA_OK) {
        unavailable(c, err);
    }
}

static void
on_revoked(void *arg, enum wa_err err, int64_t matched, int64_t modified, bool upserted)
{
    struct gw_call *c = arg;

    (void)modified;
    (void)upserted;
    if (err != WA_OK) {
        unavailable(c, err);
        return;
    }
    if (matched == 0) {
        gw_call_problem(c, 404, "Not Found", "no such key");
        return;
    }
    gw_auth_forget(c->gw, c->params[0]);
    wa_log_info(NULL, "API key %s revoked", c->params[0]);
    gw_call_empty(c, 204);
}

void
gw_admin_keys_delete(struct gw_call *c)
{
    char now[WA_RFC3339_LEN];
    json_t *filter, *update;
    enum wa_err err;

    wa_clock_rfc3339(wa_clock_wall_ms(), now);
    filter = json_pack("{s:s}", "_id", c->params[0]);
    update = json_pack("{s:{s:s}}", "$set", "revoked_at", now);
    err = filter != NULL && update != NULL
              ? wa_mongo_update_one(c->gw->mongo, GW_COLL_API_KEYS, filter, update, false,
                                    on_revoked, c)
              : WA_ENOMEM;
    json_decref(filter);
    json_decref(update);
    if (err != WA_OK) {
        unavailable(c, err);
    }
}
