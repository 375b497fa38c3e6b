/*
 * graph.c: the Graph API surface (stage 1 of a send). Routes (cs_graph_routes, libs/httpd
 * templates), each behind the middleware chain token check (check_token) -> faults (faults.c):
 *   POST   /{ver}/{number}/messages   send_message
 *   POST   /{ver}/{number}/media      cs_media_upload (media.c)
 *   GET    /{ver}/{id}                the business number, a template (business.c), or media
 *   DELETE /{ver}/{id}                a template or media
 *   any    /{ver}/{object}/{edge}     the WABA's edges and the business profile (business.c)
 *   any other /v... path              Meta's "Unsupported <method> request" (code 100, 33)
 *
 * A send goes: token (401 code 190) -> faults (faults.c) -> number (400 code 100 subcode 33) ->
 * JSON -> validation (libs/whatsapp: 100, 131008, 131009, 131051) -> throughput (130429) ->
 * pair limit (131056) -> template registry (132001, 132015, 132016, 132000) -> 24 h window
 * (131047, async by default) -> user flags (131026, 131050, async) -> accepted: a wamid, the
 * history record, the status lifecycle handed to webhooks.c, and Meta's success body.
 *
 * Per-request work is bounded: one parse, hash lookups, one record, a few heap pushes.
 * Threading: loop thread only; handlers borrow the request until their reply.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudsim.h"
#include "wa/clock.h"
#include "wa/log.h"

#define MEDIA_BODY_MAX (101u * 1024u * 1024u) /* documents: 100 MB, plus multipart framing */

void
cs_reply_graph_error(struct cs_sim *sim, struct wa_http_req *req, int64_t code, int64_t subcode,
                     const char *details)
{
    struct wa_buf b;
    char trace[32];
    int status = wa_whatsapp_error_http_status(code);

    if (code == 130429 || code == 131056 || code == 4 || code == 80007) {
        status = (int)sim->cfg->throttle_status;
    }
    cs_sim_count_rejected(sim, code);
    snprintf(trace, sizeof(trace), "A%.4s%012" PRIx64 "sim", sim->salt, ++sim->seq);
    wa_buf_init(&b, 0);
    if (wa_whatsapp_error_graph_json(&b, code, subcode, details, trace) != WA_OK) {
        wa_buf_cleanup(&b);
        wa_http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    if (code == 190 || code == 0) {
        wa_http_reply_header(req, "WWW-Authenticate",
                             "OAuth \"Facebook Platform\" \"invalid_token\" \"Invalid OAuth "
                             "access token\"");
    }
    wa_http_reply(req, status, "application/json; charset=UTF-8", b.data, b.len);
    wa_buf_cleanup(&b);
}

static void
reply_unknown_object(struct cs_sim *sim, struct wa_http_req *req, const char *method,
                     const char *id)
{
    char details[512];

    snprintf(details, sizeof(details),
             "Unsupported %s request. Object with ID '%.64s' does not exist, cannot be loaded due "
             "to missing permissions, or does not support this operation. Please read the Graph "
             "API documentation at https://developers.facebook.com/docs/graph-api",
             method, id);
    cs_reply_graph_error(sim, req, 100, 33, details);
}

static const char *
pricing_category(const struct cs_template *tpl, char *buf, size_t n)
{
    size_t i = 0;

    if (tpl == NULL) {
        return "service";
    }
    for (; tpl->category[i] != '\0' && i + 1 < n; i++) {
        char c = tpl->category[i];

        buf[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    buf[i] = '\0';
    return buf;
}

static void
reply_accepted(struct wa_http_req *req, const struct wa_whatsapp_send *send, const char *wamid,
               const struct cs_template *tpl)
{
    struct wa_buf b;
    enum wa_err err;
    const char *input = send->to != NULL ? send->to : send->recipient;

    wa_buf_init(&b, 0);
    err = wa_buf_append_str(&b, "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":");
    if (err == WA_OK) {
        err = wa_buf_append_json_string(&b, input, strlen(input));
    }
    if (err == WA_OK && send->to != NULL) {
        err = wa_buf_printf(&b, ",\"wa_id\":\"%s\"", send->wa_id);
    } else if (err == WA_OK) {
        err = wa_buf_append_str(&b, ",\"user_id\":");
        if (err == WA_OK) {
            err = wa_buf_append_json_string(&b, input, strlen(input));
        }
    }
    if (err == WA_OK) {
        err = wa_buf_printf(
            &b, "}],\"messages\":[{\"id\":\"%s\"%s}]}", wamid,
            tpl != NULL && tpl->paced ? ",\"message_status\":\"held_for_quality_assessment\"" : "");
    }
    if (err != WA_OK) {
        wa_buf_cleanup(&b);
        wa_http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    wa_http_reply(req, 200, "application/json; charset=UTF-8", b.data, b.len);
    wa_buf_cleanup(&b);
}

/* The major version of "/v21.0/...": 21; 0 when the path does not start with one. */
static int
api_version(const char *path)
{
    long v;
    char *end = NULL;

    if (path[0] != '/' || path[1] != 'v') {
        return 0;
    }
    v = strtol(path + 2, &end, 10);
    return end != path + 2 && v > 0 && v < 1000 ? (int)v : 0;
}

static void
send_message(struct cs_sim *sim, struct wa_http_req *req, size_t number)
{
    const struct cs_config *cfg = sim->cfg;
    struct wa_whatsapp_send send;
    struct wa_whatsapp_send_error verr;
    const struct cs_template *tpl = NULL;
    struct cs_record *rec;
    json_t *body = NULL;
    const char *raw;
    size_t len;
    char wamid[CS_WAMID_MAX], details[512], catbuf[24];
    const char *user;
    int64_t code, failed = 0, late;
    enum cs_status late_after = CS_ST_SENT;
    bool late_value = false;
    uint64_t now = wa_loop_now(sim->loop), wall;

    raw = wa_http_req_body(req, &len);
    if (wa_json_parse(raw, len, 0, &body, NULL) != WA_OK) {
        cs_reply_graph_error(sim, req, 100, 0, "The request body is not valid JSON.");
        return;
    }
    if (wa_whatsapp_send_parse(body, &send, &verr) != WA_OK) {
        cs_reply_graph_error(sim, req, verr.code, verr.subcode, verr.details);
        goto out;
    }
    if (send.type == WA_WHATSAPP_MSG_READ) {
        /* Only a message the business received can be marked read (or typed to). */
        if (!cs_sim_is_inbound(sim, send.read_message_id, number)) {
            snprintf(details, sizeof(details),
                     "Param message_id '%.128s' is not a message received by this number.",
                     send.read_message_id);
            cs_reply_graph_error(sim, req, 100, 0, details);
            goto out;
        }
        sim->stats.by_type[WA_WHATSAPP_MSG_READ]++;
        wa_http_reply(req, 200, "application/json; charset=UTF-8", "{\"success\":true}", 16);
        goto out;
    }
    user = send.group ? send.to : send.to != NULL ? send.wa_id : send.recipient;
    if (send.to != NULL && send.wa_id[0] != '\0' &&
        strcmp(send.wa_id, sim->numbers[number].display) == 0) {
        cs_reply_graph_error(sim, req, 131021, 0, NULL);
        goto out;
    }
    if (cfg->limits && cfg->mps > 0 && !cs_policy_throughput(sim, number, now)) {
        cs_reply_graph_error(sim, req, 130429, 2494055, NULL);
        goto out;
    }
    if (cfg->limits && cfg->pair_burst > 0 && !cs_policy_pair(sim, number, user, now)) {
        cs_reply_graph_error(sim, req, 131056, 2494063, NULL);
        goto out;
    }
    if (send.type == WA_WHATSAPP_MSG_TEMPLATE) {
        code = cs_templates_check(&sim->templates, &send, &tpl, details, sizeof(details));
        if (code != 0) {
            cs_reply_graph_error(sim, req, code, 0, details);
            goto out;
        }
    }
    wall = wa_clock_wall_ms();
    if (cfg->limits && cfg->window_enforce && send.type != WA_WHATSAPP_MSG_TEMPLATE &&
        !send.group && !cs_policy_window_open(sim, number, user, wall)) {
        if (cfg->window_sync) {
            cs_reply_graph_error(sim, req, 131047, 2494010, NULL);
            goto out;
        }
        failed = 131047;
    }
    if (failed == 0 && (cs_policy_flags(sim, user) & CS_USER_UNDELIVERABLE) != 0) {
        failed = 131026;
    }
    if (failed == 0 && tpl != NULL && strcmp(tpl->category, "MARKETING") == 0 &&
        (cs_policy_flags(sim, user) & CS_USER_NO_MARKETING) != 0) {
        failed = 131050;
    }
    if (failed == 0 && send.media_id != NULL && !cs_media_exists(sim->media, send.media_id)) {
        failed = 131053;
    }
    cs_sim_wamid(sim, send.to != NULL ? send.wa_id : "0", wamid);
    sim->stats.accepted++;
    sim->stats.by_type[send.type]++;
    rec = cs_sim_record(sim, wamid, &send, raw, len, number);
    if (rec != NULL) {
        rec->version = api_version(wa_http_req_path(req));
        /* A utility template inside an open customer service window is free (§4.2). */
        rec->free_window = tpl != NULL && strcmp(tpl->category, "UTILITY") == 0 &&
                           cs_policy_window_open(sim, number, user, wall);
    }
    if (failed == 0 && rec != NULL && send.type != WA_WHATSAPP_MSG_REACTION &&
        (late = cs_faults_late(sim->faults, &late_after, &late_value)) != 0) {
        /* injected: accepted now, failed later (faults.c, mode late) */
        failed = late;
        if (sim->webhooks != NULL) {
            cs_webhooks_late_failure(sim->webhooks, rec,
                                     pricing_category(tpl, catbuf, sizeof(catbuf)), late,
                                     late_after, late_value);
        } else {
            rec->status = CS_ST_FAILED;
            rec->error_code = late;
        }
    } else if (rec != NULL && sim->webhooks != NULL) {
        cs_webhooks_message(sim->webhooks, rec, pricing_category(tpl, catbuf, sizeof(catbuf)),
                            failed, send.type == WA_WHATSAPP_MSG_REACTION);
    } else if (rec != NULL && failed != 0) {
        rec->status = CS_ST_FAILED;
        rec->error_code = failed;
    }
    if (failed != 0) {
        sim->stats.async_failed++;
    }
    reply_accepted(req, &send, wamid, tpl);
out:
    json_decref(body);
}

/* The WABA's edges and a number's business profile (business.c); false when not one. */
static bool
business_edge(struct cs_sim *sim, struct wa_http_req *req, const char *object, const char *edge)
{
    bool waba = strcmp(object, sim->cfg->waba_id) == 0;
    long number = cs_sim_number(sim, object);

    if (waba && strcmp(edge, "message_templates") == 0) {
        cs_business_templates(sim, req);
    } else if (waba && strcmp(edge, "phone_numbers") == 0) {
        cs_business_phone_numbers(sim, req);
    } else if (waba && strcmp(edge, "subscribed_apps") == 0) {
        cs_business_subscribed_apps(sim, req);
    } else if (number >= 0 && strcmp(edge, "whatsapp_business_profile") == 0) {
        cs_business_profile(sim, req, (size_t)number);
    } else {
        return false;
    }
    return true;
}

/* ---- the edges ---- */

/* Any other path under /v...: Meta's "Unsupported <method> request" naming the object id. */
static void
on_unknown(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    const char *path = wa_http_req_path(req), *id = strchr(path + 1, '/');
    char method[8], object[128];
    size_t n = 0;

    for (const char *m = wa_http_req_method(req); *m != '\0' && n + 1 < sizeof(method); m++) {
        method[n++] = (char)(*m >= 'A' && *m <= 'Z' ? *m - 'A' + 'a' : *m);
    }
    method[n] = '\0';
    snprintf(object, sizeof(object), "%.*s", id != NULL ? (int)strcspn(id + 1, "/") : 0,
             id != NULL ? id + 1 : "");
    reply_unknown_object(sim, req, method, object);
}

static void
post_messages(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    long number = cs_sim_number(sim, wa_http_req_param(req, "number"));

    if (number < 0) {
        on_unknown(req, arg);
        return;
    }
    send_message(sim, req, (size_t)number);
}

static void
post_media(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    long number = cs_sim_number(sim, wa_http_req_param(req, "number"));

    if (number < 0) {
        on_unknown(req, arg);
        return;
    }
    cs_media_upload(sim, req, (size_t)number);
}

/* /{ver}/{number}/{edge} for the other edges: business.c's, else unknown. */
static void
on_edge(struct wa_http_req *req, void *arg)
{
    if (!business_edge(arg, req, wa_http_req_param(req, "number"),
                       wa_http_req_param(req, "edge"))) {
        on_unknown(req, arg);
    }
}

static void
reply_number(struct cs_sim *sim, struct wa_http_req *req, size_t number)
{
    struct wa_buf b;

    wa_buf_init(&b, 0);
    if (wa_buf_printf(&b,
                      "{\"verified_name\":\"wabridge sandbox\",\"display_phone_number\":\"+%s\","
                      "\"quality_rating\":\"GREEN\",\"throughput\":{\"level\":\"STANDARD\"},"
                      "\"whatsapp_business_manager_messaging_limit\":\"TIER_UNLIMITED\","
                      "\"id\":\"%s\"}",
                      sim->numbers[number].display, sim->numbers[number].id) != WA_OK) {
        wa_buf_cleanup(&b);
        wa_http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    wa_http_reply(req, 200, "application/json; charset=UTF-8", b.data, b.len);
    wa_buf_cleanup(&b);
}

/* GET or DELETE /{ver}/{id}: a business number, a message template, or a media object. */
static void
on_object(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    const char *id = wa_http_req_param(req, "id");
    long number = cs_sim_number(sim, id);

    if (number >= 0) {
        reply_number(sim, req, (size_t)number);
    } else if (cs_business_template_by_id(sim, req, id)) {
        return;
    } else if (strcmp(wa_http_req_method(req), "DELETE") == 0) {
        cs_media_delete(sim, req, id);
    } else {
        cs_media_get(sim, req, id);
    }
}

/* ---- middleware ---- */

/* First step of every Graph route: counts the request, then the bearer token (401 code 190);
 * a POST's token is checked against the number its path names. */
static void
check_token(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    const char *ver = wa_http_req_param(req, "ver"), *number = NULL;
    const char *path = wa_http_req_path(req), *end;
    char object[64];

    if (ver != NULL && ver[0] != 'v') { /* "/{ver}/..." is a Graph path only with "v21.0" */
        wa_http_reply_problem(req, 404, NULL, "no such resource", NULL, 0);
        return;
    }
    sim->stats.requests++;
    if (strcmp(wa_http_req_method(req), "POST") == 0 && (end = strchr(path + 1, '/')) != NULL) {
        snprintf(object, sizeof(object), "%.*s", (int)strcspn(end + 1, "/"), end + 1);
        number = object;
    }
    if (!cs_sim_auth(sim, wa_http_req_header(req, "Authorization"),
                     number != NULL ? cs_sim_number(sim, number) : -1)) {
        cs_reply_graph_error(sim, req, 190, 0, NULL);
        return;
    }
    wa_http_next(req);
}

enum wa_err
cs_graph_routes(struct cs_sim *sim, struct wa_httpd *h, struct wa_error *error)
{
    static const struct wa_http_route sends[] = {
        {"POST", "/{ver}/{number}/messages", post_messages, 0},
        {"POST", "/{ver}/{number}/{edge}", on_edge, 0},
        {"POST", "/v*", on_unknown, 0},
    };
    static const struct wa_http_route media[] = {
        {"POST", "/{ver}/{number}/media", post_media, MEDIA_BODY_MAX},
        {"GET", "/{ver}/{id}", on_object, 0},
        {"DELETE", "/{ver}/{id}", on_object, 0},
        {"GET", "/{ver}/{number}/{edge}", on_edge, 0},
        {"DELETE", "/{ver}/{number}/{edge}", on_edge, 0},
        {"GET", "/v*", on_unknown, 0},
        {"DELETE", "/v*", on_unknown, 0},
    };
    const struct wa_http_mw send_chain[] = {{"token", check_token, sim},
                                            {"faults", cs_faults_mw_messages, sim}};
    const struct wa_http_mw media_chain[] = {{"token", check_token, sim},
                                             {"faults", cs_faults_mw_media, sim}};
    enum wa_err err;

    if ((err = wa_httpd_routes(h, sends, WA_ARRAY_LEN(sends), send_chain, 2, sim, error)) !=
        WA_OK) {
        return err;
    }
    return wa_httpd_routes(h, media, WA_ARRAY_LEN(media), media_chain, 2, sim, error);
}
