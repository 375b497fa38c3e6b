/*
 * control.c: the simulator's control surface under /_sim/ (architecture.md "The Cloud API
 * simulator"); no authentication, loopback only by default.
 *
 *   POST /_sim/inbound    a simulated user writes: {"from","name","type",<type object>,
 *                         "phone_number_id"?,"context"?,"timestamp"?} -> a signed inbound
 *                         webhook; opens the 24 h window. Media objects may carry "data" (text
 *                         stored as the file) instead of an id.
 *   GET  /_sim/messages   accepted sends, oldest first: ?to=&wamid=&limit= (default 100)
 *   GET  /_sim/stats      counters, rejections by code, webhook queue
 *   POST /_sim/faults     see faults.c; GET shows, DELETE clears
 *   POST /_sim/users      {"wa_id","undeliverable"?,"marketing":"stop|resume"?,"window":
 *                         "open|closed"?,"phone_number_id"?}
 *   GET/POST /_sim/templates  the registry; POST adds or replaces one template
 *   POST /_sim/reset      forget history, windows, buckets, stats, faults, media, webhooks
 *   GET  /_media/<id>     media download (media.c)
 *
 * Threading: loop thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudsim.h"
#include "wa/clock.h"
#include "wa/log.h"

static void
reply_buf(struct wa_http_req *req, int status, struct wa_buf *b, enum wa_err err)
{
    if (err != WA_OK) {
        wa_http_reply_error(req, 500, "internal", "%s", wa_err_text(err));
    } else {
        wa_http_reply(req, status, "application/json", b->data != NULL ? b->data : "", b->len);
    }
    wa_buf_cleanup(b);
}

static json_t *
parse_body(struct wa_http_req *req)
{
    size_t len;
    const char *body = wa_http_req_body(req, &len);
    json_t *root = NULL;
    struct wa_error error;

    if (wa_json_parse(body, len, 0, &root, &error) != WA_OK || !json_is_object(root)) {
        json_decref(root);
        wa_http_reply_error(req, 400, "bad_request", "body must be a JSON object");
        return NULL;
    }
    return root;
}

static long
number_from(struct cs_sim *sim, const json_t *body, struct wa_http_req *req)
{
    const char *id = wa_json_str(body, "phone_number_id");
    long n = id != NULL ? cs_sim_number(sim, id) : 0;

    if (n < 0) {
        wa_http_reply_error(req, 404, "not_found", "unknown phone_number_id");
    }
    return n;
}

/* ---- inbound ---- */

static const char *
default_mime(const char *type)
{
    if (strcmp(type, "image") == 0) {
        return "image/jpeg";
    }
    if (strcmp(type, "audio") == 0) {
        return "audio/ogg";
    }
    if (strcmp(type, "video") == 0) {
        return "video/mp4";
    }
    if (strcmp(type, "sticker") == 0) {
        return "image/webp";
    }
    return "application/pdf";
}

/* Media sent by a user: stored, so the business can fetch it like a real inbound file. */
static enum wa_err
inbound_media(struct cs_sim *sim, size_t number, const char *type, json_t *obj)
{
    const char *mime = wa_json_str(obj, "mime_type"), *data = wa_json_str(obj, "data");
    char id[24];
    enum wa_err err;

    if (json_object_get(obj, "id") != NULL) {
        return WA_OK;
    }
    if (mime == NULL) {
        mime = default_mime(type);
        json_object_set_new(obj, "mime_type", json_string(mime));
    }
    if (data == NULL) {
        data = "simulated media";
    }
    err = cs_media_store(sim->media, number, mime, data, strlen(data), id);
    if (err != WA_OK) {
        return err;
    }
    {
        unsigned char digest[WA_SHA256_LEN];
        char hex[WA_SHA256_LEN * 2 + 1];

        wa_sha256(data, strlen(data), digest);
        wa_hex_encode(digest, sizeof(digest), hex);
        json_object_set_new(obj, "sha256", json_string(hex));
    }
    json_object_del(obj, "data");
    json_object_set_new(obj, "id", json_string(id));
    return WA_OK;
}

static void
on_inbound(struct wa_http_req *req, void *arg)
{
    static const char *const media_types[] = {"image", "audio", "video", "document", "sticker"};
    struct cs_sim *sim = arg;
    json_t *body = parse_body(req), *msg = NULL, *obj, *ctx;
    const char *from, *type, *name;
    char wa_id[WA_WHATSAPP_WA_ID_MAX + 1], wamid[CS_WAMID_MAX], ts[24], reply[256];
    json_int_t when;
    long number;

    if (body == NULL) {
        return;
    }
    number = number_from(sim, body, req);
    if (number < 0) {
        goto out;
    }
    from = wa_json_str(body, "from");
    type = wa_json_str(body, "type");
    name = wa_json_str(body, "name");
    if (from == NULL || wa_whatsapp_wa_id_from_to(from, wa_id, sizeof(wa_id)) != WA_OK) {
        wa_http_reply_error(req, 400, "bad_request", "from must be a phone number (wa_id)");
        goto out;
    }
    if (type == NULL) {
        wa_http_reply_error(req, 400, "bad_request", "type is required");
        goto out;
    }
    obj = json_object_get(body, type);
    if (obj == NULL && strcmp(type, "unsupported") != 0 && strcmp(type, "unknown") != 0) {
        wa_http_reply_error(req, 400, "bad_request", "the object named by type (%.32s) is missing",
                            type);
        goto out;
    }
    when = json_is_integer(json_object_get(body, "timestamp"))
               ? json_integer_value(json_object_get(body, "timestamp"))
               : (json_int_t)(wa_clock_wall_ms() / 1000);
    snprintf(ts, sizeof(ts), "%" JSON_INTEGER_FORMAT, when);
    cs_sim_wamid(sim, wa_id, wamid);
    msg = json_pack("{s:s, s:s, s:s, s:s}", "from", wa_id, "id", wamid, "timestamp", ts, "type",
                    type);
    ctx = json_object_get(body, "context");
    if (msg == NULL) {
        wa_http_reply_error(req, 500, "internal", "out of memory");
        goto out;
    }
    if (ctx != NULL) {
        json_object_set(msg, "context", ctx);
    }
    if (obj != NULL) {
        json_t *copy = json_deep_copy(obj);

        for (size_t i = 0; copy != NULL && i < WA_ARRAY_LEN(media_types); i++) {
            if (strcmp(type, media_types[i]) == 0 && json_is_object(copy) &&
                inbound_media(sim, (size_t)number, type, copy) != WA_OK) {
                json_decref(copy);
                wa_http_reply_error(req, 507, "media_full", "media store full");
                goto out;
            }
        }
        json_object_set_new(msg, type, copy);
    }
    if (json_object_get(body, "errors") != NULL) {
        json_object_set(msg, "errors", json_object_get(body, "errors"));
    }
    if (sim->webhooks != NULL &&
        cs_webhooks_inbound(sim->webhooks, (size_t)number, msg, wa_id, name) != WA_OK) {
        wa_http_reply_error(req, 500, "internal", "out of memory");
        goto out;
    }
    cs_policy_inbound(sim, (size_t)number, wa_id, (uint64_t)when * 1000);
    cs_sim_note_inbound(sim, wamid, (size_t)number);
    /* Throughput counts inbound messages too (cloud-api.md §4.3): a user's message takes a
     * token of the number's bucket, though it is never refused. */
    if (sim->cfg->limits && sim->cfg->mps > 0) {
        (void)cs_policy_throughput(sim, (size_t)number, wa_loop_now(sim->loop));
    }
    sim->stats.inbound++;
    snprintf(reply, sizeof(reply), "{\"id\":\"%s\",\"wa_id\":\"%s\",\"phone_number_id\":\"%s\"}",
             wamid, wa_id, sim->numbers[number].id);
    wa_http_reply_json(req, 200, reply);
out:
    json_decref(msg);
    json_decref(body);
}

/* ---- history ---- */

static enum wa_err
record_json(const struct cs_sim *sim, const struct cs_record *r, struct wa_buf *b, bool first)
{
    char when[WA_RFC3339_LEN];
    enum wa_err err;

    wa_clock_rfc3339(r->time_ms, when);
    err =
        wa_buf_printf(b, "%s{\"wamid\":\"%s\",\"phone_number_id\":\"%s\",\"to\":", first ? "" : ",",
                      r->wamid, sim->numbers[r->number].id);
    if (err == WA_OK) {
        err = wa_buf_append_json_string(b, r->to, strlen(r->to));
    }
    if (err == WA_OK) {
        err =
            wa_buf_printf(b, ",\"wa_id\":\"%s\",\"type\":\"%s\",\"time\":\"%s\",\"status\":\"%s\"",
                          r->wa_id, r->type, when, cs_status_name(r->status));
    }
    if (err == WA_OK && r->status == CS_ST_FAILED) {
        err = wa_buf_printf(b, ",\"error_code\":%" PRId64, r->error_code);
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(b, ",\"biz_opaque_callback_data\":");
    }
    if (err == WA_OK) {
        err = r->biz != NULL ? wa_buf_append_json_string(b, r->biz, strlen(r->biz))
                             : wa_buf_append_str(b, "null");
    }
    if (err == WA_OK) {
        /* The body parsed as a JSON object when it was accepted: embed it verbatim. */
        err = wa_buf_printf(b, ",\"body\":%s}", r->body);
    }
    return err;
}

static void
on_messages(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    const char *to = wa_http_req_query(req, "to"), *wamid = wa_http_req_query(req, "wamid");
    const char *lim = wa_http_req_query(req, "limit");
    char want[WA_WHATSAPP_WA_ID_MAX + 1] = "";
    int64_t limit = 100;
    size_t matched = 0, start;
    struct wa_buf b;
    enum wa_err err;
    bool first = true;

    if (lim != NULL && (wa_parse_int(lim, &limit) != WA_OK || limit < 1 || limit > 100000)) {
        wa_http_reply_error(req, 400, "bad_request", "limit must be 1..100000");
        return;
    }
    if (to != NULL && wa_whatsapp_wa_id_from_to(to, want, sizeof(want)) != WA_OK) {
        wa_http_reply_error(req, 400, "bad_request", "to must be a phone number");
        return;
    }
    /* Newest `limit` matches, reported oldest first: find where to start scanning. */
    start = sim->ring_len;
    while (start > 0 && matched < (size_t)limit) {
        const struct cs_record *r = &sim->ring[(sim->ring_head + start - 1) % sim->ring_cap];

        if ((to == NULL || strcmp(r->wa_id, want) == 0) &&
            (wamid == NULL || strcmp(r->wamid, wamid) == 0)) {
            matched++;
        }
        start--;
    }
    wa_buf_init(&b, 0);
    err = wa_buf_printf(&b, "{\"total\":%zu,\"data\":[", sim->ring_len);
    for (size_t i = start; i < sim->ring_len && err == WA_OK; i++) {
        const struct cs_record *r = &sim->ring[(sim->ring_head + i) % sim->ring_cap];

        if (r->body == NULL || (to != NULL && strcmp(r->wa_id, want) != 0) ||
            (wamid != NULL && strcmp(r->wamid, wamid) != 0)) {
            continue;
        }
        err = record_json(sim, r, &b, first);
        first = false;
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(&b, "]}");
    }
    reply_buf(req, 200, &b, err);
}

/* ---- stats ---- */

static void
on_stats(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    const struct cs_stats *s = &sim->stats;
    struct wa_buf b;
    enum wa_err err;
    bool first = true;

    wa_buf_init(&b, 0);
    err = wa_buf_printf(
        &b,
        "{\"requests\":%" PRIu64 ",\"accepted\":%" PRIu64 ",\"rejected\":%" PRIu64
        ",\"async_failed\":%" PRIu64 ",\"inbound\":%" PRIu64 ",\"media_uploads\":%" PRIu64
        ",\"media_stored\":%zu,\"history\":%zu,"
        "\"webhooks\":{\"delivered\":%" PRIu64 ",\"attempts\":%" PRIu64 ",\"failures\":%" PRIu64
        ",\"dropped\":%" PRIu64 ",\"events\":%" PRIu64 ",\"queue\":",
        s->requests, s->accepted, s->rejected, s->async_failed, s->inbound, s->media_uploads,
        cs_media_count(sim->media), sim->ring_len, s->webhooks_sent, s->webhook_attempts,
        s->webhook_failures, s->webhooks_dropped, s->events);
    if (err == WA_OK) {
        err = sim->webhooks != NULL ? cs_webhooks_stats(sim->webhooks, &b)
                                    : wa_buf_append_str(&b, "null");
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(&b, "},\"by_type\":{");
    }
    for (int t = 0; t < WA_WHATSAPP_MSG__COUNT && err == WA_OK; t++) {
        err = wa_buf_printf(&b, "%s\"%s\":%" PRIu64, t == 0 ? "" : ",",
                            wa_whatsapp_msg_type_name((enum wa_whatsapp_msg_type)t), s->by_type[t]);
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(&b, "},\"rejected_by_code\":{");
    }
    for (size_t i = 0; i < s->rejected_by_code.nslots && err == WA_OK; i++) {
        for (struct cs_map_entry *e = s->rejected_by_code.slots[i]; e != NULL && err == WA_OK;
             e = e->next) {
            err = wa_buf_printf(&b, "%s\"%s\":%zu", first ? "" : ",", e->key,
                                (size_t)(uintptr_t)e->value);
            first = false;
        }
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(&b, "}}");
    }
    reply_buf(req, 200, &b, err);
}

/* ---- faults, users, templates, reset ---- */

static void
on_faults_get(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    struct wa_buf b;

    wa_buf_init(&b, 0);
    reply_buf(req, 200, &b, cs_faults_json(sim->faults, &b));
}

static void
on_faults_post(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    json_t *body = parse_body(req);
    struct wa_error error;
    struct wa_buf b;

    if (body == NULL) {
        return;
    }
    if (cs_faults_set(sim->faults, body, &error) != WA_OK) {
        cs_faults_reset(sim->faults);
        wa_http_reply_error(req, 400, "bad_request", "%s", error.message);
    } else {
        wa_log_info(NULL, "faults set");
        wa_buf_init(&b, 0);
        reply_buf(req, 200, &b, cs_faults_json(sim->faults, &b));
    }
    json_decref(body);
}

static void
on_faults_delete(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;

    cs_faults_reset(sim->faults);
    on_faults_get(req, arg);
}

static void
on_users(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    json_t *body = parse_body(req), *v;
    const char *id, *marketing, *window;
    char wa_id[WA_WHATSAPP_WA_ID_MAX + 1], reply[160];
    unsigned flags;
    long number;

    if (body == NULL) {
        return;
    }
    number = number_from(sim, body, req);
    if (number < 0) {
        goto out;
    }
    id = wa_json_str(body, "wa_id");
    if (id == NULL || wa_whatsapp_wa_id_from_to(id, wa_id, sizeof(wa_id)) != WA_OK) {
        wa_http_reply_error(req, 400, "bad_request", "wa_id must be a phone number");
        goto out;
    }
    flags = cs_policy_flags(sim, wa_id);
    v = json_object_get(body, "undeliverable");
    if (json_is_boolean(v)) {
        flags = json_is_true(v) ? flags | CS_USER_UNDELIVERABLE : flags & ~CS_USER_UNDELIVERABLE;
    }
    marketing = wa_json_str(body, "marketing");
    if (marketing != NULL && strcmp(marketing, "stop") == 0) {
        flags |= CS_USER_NO_MARKETING;
    } else if (marketing != NULL && strcmp(marketing, "resume") == 0) {
        flags &= ~CS_USER_NO_MARKETING;
    } else if (marketing != NULL) {
        wa_http_reply_error(req, 400, "bad_request", "marketing must be stop or resume");
        goto out;
    }
    if (wa_json_str(body, "group") != NULL &&
        cs_sim_group_join(sim, wa_json_str(body, "group"), wa_id) != WA_OK) {
        wa_http_reply_error(req, 500, "internal", "out of memory");
        goto out;
    }
    window = wa_json_str(body, "window");
    if (window != NULL) {
        struct cs_user *u = cs_policy_user(sim, (size_t)number, wa_id);

        if (u != NULL && strcmp(window, "open") == 0) {
            u->last_inbound_wall_ms = wa_clock_wall_ms();
        } else if (u != NULL && strcmp(window, "closed") == 0) {
            u->last_inbound_wall_ms = 0;
        }
    }
    cs_policy_set_flags(sim, wa_id, flags);
    snprintf(reply, sizeof(reply),
             "{\"wa_id\":\"%s\",\"undeliverable\":%s,\"marketing_stopped\":%s,"
             "\"window_open\":%s}",
             wa_id, (flags & CS_USER_UNDELIVERABLE) ? "true" : "false",
             (flags & CS_USER_NO_MARKETING) ? "true" : "false",
             cs_policy_window_open(sim, (size_t)number, wa_id, wa_clock_wall_ms()) ? "true"
                                                                                   : "false");
    wa_http_reply_json(req, 200, reply);
out:
    json_decref(body);
}

static void
on_templates_get(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    struct wa_buf b;
    enum wa_err err;

    wa_buf_init(&b, 0);
    err = wa_buf_append_str(&b, "{\"data\":");
    if (err == WA_OK) {
        err = cs_templates_json(&sim->templates, &b);
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(&b, "}");
    }
    reply_buf(req, 200, &b, err);
}

static void
on_templates_post(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    json_t *body = parse_body(req);
    struct wa_error error;

    if (body == NULL) {
        return;
    }
    if (cs_templates_put_json(&sim->templates, body, &error) != WA_OK) {
        wa_http_reply_error(req, 400, "bad_request", "%s", error.message);
    } else {
        wa_http_reply_json(req, 200, "{\"success\":true}");
    }
    json_decref(body);
}

static void
on_reset(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;

    cs_sim_reset_state(sim);
    if (sim->webhooks != NULL) {
        cs_webhooks_reset(sim->webhooks);
    }
    cs_media_reset(sim->media);
    cs_faults_reset(sim->faults);
    wa_log_info(NULL, "simulator reset");
    wa_http_reply_json(req, 200, "{\"success\":true}");
}

enum wa_err
cs_control_routes(struct cs_sim *sim, struct wa_httpd *h, struct wa_error *error)
{
    static const struct wa_http_route routes[] = {
        {"POST", "/_sim/inbound", on_inbound, 0},
        {"GET", "/_sim/messages", on_messages, 0},
        {"GET", "/_sim/stats", on_stats, 0},
        {"GET", "/_sim/faults", on_faults_get, 0},
        {"POST", "/_sim/faults", on_faults_post, 0},
        {"DELETE", "/_sim/faults", on_faults_delete, 0},
        {"POST", "/_sim/users", on_users, 0},
        {"GET", "/_sim/templates", on_templates_get, 0},
        {"POST", "/_sim/templates", on_templates_post, 0},
        {"POST", "/_sim/reset", on_reset, 0},
        {"GET", "/_media/{id}", on_media_download, 0},
    };

    return wa_httpd_routes(h, routes, WA_ARRAY_LEN(routes), NULL, 0, sim, error);
}
