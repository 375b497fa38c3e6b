/*
 * business.c: the WhatsApp Business Account endpoints wa-gateway proxies (cloud-api.md §5.1,
 * §3.8 "subscribed_apps", §4.3), each a handler the router (graph.c) calls after auth:
 *   GET  /{ver}/{waba_id}/message_templates   {"data":[{name,language,status,category,id,
 *                                              components}],"paging":{"cursors":{..}}};
 *                                              ?name= ?status= ?limit= ?after=
 *   POST /{ver}/{waba_id}/message_templates   {"name","language","category","components"}
 *                                              -> {"id","status":"PENDING","category"}; the
 *                                              review (webhooks.c) then approves it (REJECTED
 *                                              when the name starts with "reject") and sends
 *                                              message_template_status_update
 *   DELETE /{ver}/{waba_id}/message_templates?name=[&hsm_id=]   -> {"success":true}
 *   GET  /{ver}/{template_id}                 one template (graph.c asks cs_business_template_by_id)
 *   GET  /{ver}/{waba_id}/phone_numbers       the numbers of the WABA
 *   GET/POST/DELETE /{ver}/{waba_id}/subscribed_apps
 *   GET  /{ver}/{phone_number_id}/whatsapp_business_profile   {"data":[{profile}]}
 *   POST /{ver}/{phone_number_id}/whatsapp_business_profile   update -> {"success":true}
 * Errors are Graph errors with Meta's codes (100 invalid parameter, with subcode 2388024 for a
 * template name and language that already exist).
 * Threading: loop thread only. Ownership: profiles live in sim->profiles (one JSON object per
 * number, owned), the subscription in sim->subscribed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudsim.h"

static void
reply_buf(struct wa_http_req *req, struct wa_buf *b, enum wa_err err)
{
    if (err != WA_OK) {
        wa_http_reply_error(req, 500, "internal", "out of memory");
    } else {
        wa_http_reply(req, 200, "application/json; charset=UTF-8", b->data, b->len);
    }
    wa_buf_cleanup(b);
}

static json_t *
body_object(struct cs_sim *sim, struct wa_http_req *req)
{
    size_t len;
    const char *raw = wa_http_req_body(req, &len);
    json_t *root = NULL;

    if (wa_json_parse(raw, len, 0, &root, NULL) != WA_OK || !json_is_object(root)) {
        json_decref(root);
        cs_reply_graph_error(sim, req, 100, 0, "The request body must be a JSON object.");
        return NULL;
    }
    return root;
}

/* ---- message templates ---- */

/* Number of distinct {{n}} / {{name}} variables in text. */
static int64_t
count_vars(const char *text)
{
    int64_t n = 0;

    for (const char *p = text; p != NULL && (p = strstr(p, "{{")) != NULL; p += 2) {
        if (strstr(p + 2, "}}") != NULL) {
            n++;
        }
    }
    return n;
}

static const char *
upper_eq(const char *s, const char *want)
{
    return s != NULL && strcasecmp(s, want) == 0 ? s : NULL;
}

/* Checks a creation body; on success fills counts from the components. 0 or a Graph code. */
static int64_t
check_template(const json_t *body, int64_t counts[3], char *details, size_t n)
{
    static const char *const categories[] = {"MARKETING", "UTILITY", "AUTHENTICATION"};
    const char *name = wa_json_str(body, "name"), *lang = wa_json_str(body, "language");
    const char *cat = wa_json_str(body, "category");
    const json_t *components = json_object_get(body, "components"), *c;
    bool body_found = false, cat_ok = false;
    size_t i;

    if (name == NULL || lang == NULL || cat == NULL || components == NULL) {
        snprintf(details, n, "The parameter %s is required.",
                 name == NULL   ? "name"
                 : lang == NULL ? "language"
                 : cat == NULL  ? "category"
                                : "components");
        return 100;
    }
    if (*name == '\0' || strlen(name) > WA_WHATSAPP_TEMPLATE_NAME_MAX ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name)) {
        snprintf(details, n,
                 "Param name may contain only lowercase letters, digits and "
                 "underscores (at most 512).");
        return 100;
    }
    if (*lang == '\0' || strlen(lang) > 16 ||
        strspn(lang, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-") != strlen(lang)) {
        snprintf(details, n, "Param language must be a language code such as en_US.");
        return 100;
    }
    for (size_t k = 0; k < WA_ARRAY_LEN(categories); k++) {
        cat_ok = cat_ok || strcasecmp(cat, categories[k]) == 0;
    }
    if (!cat_ok) {
        snprintf(details, n, "Param category must be one of {MARKETING, UTILITY, AUTHENTICATION}.");
        return 100;
    }
    if (!json_is_array(components)) {
        snprintf(details, n, "Param components must be an array.");
        return 100;
    }
    json_array_foreach(components, i, c)
    {
        const char *type = wa_json_str(c, "type"), *text = wa_json_str(c, "text");

        if (upper_eq(type, "BODY") != NULL) {
            if (text == NULL || *text == '\0' || wa_whatsapp_utf8_len(text) > 1024) {
                snprintf(details, n,
                         "Param components[%zu]['text'] is required (at most 1024 "
                         "characters).",
                         i);
                return 100;
            }
            body_found = true;
            counts[1] = count_vars(text);
        } else if (upper_eq(type, "HEADER") != NULL) {
            counts[0] = text != NULL ? count_vars(text) : 0;
        } else if (upper_eq(type, "BUTTONS") != NULL) {
            const json_t *b;
            size_t k;

            json_array_foreach(json_object_get(c, "buttons"), k, b)
            {
                counts[2] += count_vars(wa_json_str(b, "url"));
            }
        } else if (upper_eq(type, "FOOTER") == NULL) {
            snprintf(details, n,
                     "Param components[%zu]['type'] must be one of {HEADER, BODY, "
                     "FOOTER, BUTTONS}.",
                     i);
            return 100;
        }
    }
    if (!body_found) {
        snprintf(details, n, "Param components must contain a BODY component.");
        return 100;
    }
    return 0;
}

static void
templates_create(struct cs_sim *sim, struct wa_http_req *req)
{
    json_t *body = body_object(sim, req), *reg = NULL;
    int64_t counts[3] = {0, 0, 0}, code;
    char details[256], cat[24];
    const struct cs_template *tpl;
    struct wa_error error = {0};
    struct wa_buf b;

    if (body == NULL) {
        return;
    }
    if ((code = check_template(body, counts, details, sizeof(details))) != 0) {
        cs_reply_graph_error(sim, req, code, 0, details);
        goto out;
    }
    if (cs_templates_find(&sim->templates, wa_json_str(body, "name"),
                          wa_json_str(body, "language")) != NULL) {
        cs_reply_graph_error(sim, req, 100, 2388024,
                             "Content in this language already exists: a template with this "
                             "name and language exists.");
        goto out;
    }
    snprintf(cat, sizeof(cat), "%s", wa_json_str(body, "category"));
    for (char *p = cat; *p != '\0'; p++) {
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    }
    reg = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:O}", "name", wa_json_str(body, "name"),
                    "language", wa_json_str(body, "language"), "category", cat, "status", "PENDING",
                    "header_params", (json_int_t)counts[0], "body_params", (json_int_t)counts[1],
                    "button_params", (json_int_t)counts[2], "components",
                    json_object_get(body, "components"));
    if (reg == NULL || cs_templates_put_json(&sim->templates, reg, &error) != WA_OK ||
        (tpl = cs_templates_find(&sim->templates, wa_json_str(body, "name"),
                                 wa_json_str(body, "language"))) == NULL) {
        cs_reply_graph_error(sim, req, 100, 0, "The template could not be stored.");
        goto out;
    }
    if (sim->webhooks != NULL) {
        cs_webhooks_template_review(sim->webhooks, tpl->name, tpl->language,
                                    (uint64_t)sim->cfg->read_delay_ms);
    }
    wa_buf_init(&b, 0);
    reply_buf(req, &b,
              wa_buf_printf(&b, "{\"id\":\"%s\",\"status\":\"PENDING\",\"category\":\"%s\"}",
                            tpl->id, cat));
out:
    json_decref(reg);
    json_decref(body);
}

static enum wa_err
template_item(struct wa_buf *b, const struct cs_template *tpl, bool first)
{
    enum wa_err err = wa_buf_printf(b,
                                    "%s{\"name\":\"%s\",\"parameter_format\":\"POSITIONAL\","
                                    "\"language\":\"%s\",\"status\":\"%s\","
                                    "\"category\":\"%s\",\"id\":\"%s\"",
                                    first ? "" : ",", tpl->name, tpl->language, tpl->status,
                                    tpl->category, tpl->id);

    if (err != WA_OK) {
        return err;
    }
    if (tpl->components != NULL) {
        err = wa_buf_printf(b, ",\"components\":%s", tpl->components);
    } else { /* a registry entry: its body, with as many variables as it takes */
        err = wa_buf_append_str(b, ",\"components\":[{\"type\":\"BODY\",\"text\":\"");
        for (int64_t i = 1; err == WA_OK && i <= tpl->body_params; i++) {
            err = wa_buf_printf(b, "%s{{%" PRId64 "}}", i > 1 ? " " : "", i);
        }
        if (err == WA_OK) {
            err = wa_buf_append_str(b, tpl->body_params == 0 ? "Hello\"}]" : "\"}]");
        }
    }
    return err == WA_OK ? wa_buf_append_str(b, "}") : err;
}

static void
templates_list(struct cs_sim *sim, struct wa_http_req *req)
{
    const char *name = wa_http_req_query(req, "name"), *status = wa_http_req_query(req, "status");
    const char *limit_s = wa_http_req_query(req, "limit"), *after = wa_http_req_query(req, "after");
    long limit = limit_s != NULL ? strtol(limit_s, NULL, 10) : 25;
    long skip = after != NULL ? strtol(after, NULL, 10) : 0, seen = 0, shown = 0;
    const struct cs_map *m = &sim->templates.by_key;
    struct wa_buf b;
    enum wa_err err;

    if (limit <= 0 || limit > 1000 || skip < 0) {
        cs_reply_graph_error(sim, req, 100, 0, "Param limit must be between 1 and 1000.");
        return;
    }
    wa_buf_init(&b, 0);
    err = wa_buf_append_str(&b, "{\"data\":[");
    for (size_t i = 0; i < m->nslots && err == WA_OK; i++) {
        for (const struct cs_map_entry *e = m->slots[i]; e != NULL && err == WA_OK; e = e->next) {
            const struct cs_template *tpl = e->value;

            if ((name != NULL && strcmp(name, tpl->name) != 0) ||
                (status != NULL && strcasecmp(status, tpl->status) != 0) || seen++ < skip ||
                shown >= limit) {
                continue;
            }
            err = template_item(&b, tpl, shown++ == 0);
        }
    }
    if (err == WA_OK) {
        err = wa_buf_printf(&b, "],\"paging\":{\"cursors\":{\"before\":\"%ld\",\"after\":\"%ld\"}",
                            skip, skip + shown);
    }
    if (err == WA_OK && skip + shown < seen) {
        err = wa_buf_printf(&b, ",\"next\":\"%s/%s/message_templates?limit=%ld&after=%ld\"",
                            sim->public_url, sim->cfg->waba_id, limit, skip + shown);
    }
    if (err == WA_OK) {
        err = wa_buf_append_str(&b, "}}");
    }
    reply_buf(req, &b, err);
}

static void
templates_delete(struct cs_sim *sim, struct wa_http_req *req)
{
    const char *name = wa_http_req_query(req, "name"), *hsm = wa_http_req_query(req, "hsm_id");

    if (name == NULL) {
        cs_reply_graph_error(sim, req, 100, 0, "The parameter name is required.");
        return;
    }
    if (cs_templates_delete(&sim->templates, name, hsm) == 0) {
        cs_reply_graph_error(sim, req, 100, 0, "Message template not found.");
        return;
    }
    wa_http_reply(req, 200, "application/json; charset=UTF-8", "{\"success\":true}", 16);
}

void
cs_business_templates(struct cs_sim *sim, struct wa_http_req *req)
{
    const char *method = wa_http_req_method(req);

    if (strcmp(method, "POST") == 0) {
        templates_create(sim, req);
    } else if (strcmp(method, "DELETE") == 0) {
        templates_delete(sim, req);
    } else {
        templates_list(sim, req);
    }
}

bool
cs_business_template_by_id(struct cs_sim *sim, struct wa_http_req *req, const char *id)
{
    const struct cs_map *m = &sim->templates.by_key;
    struct wa_buf b;

    if (strcmp(wa_http_req_method(req), "GET") != 0) {
        return false;
    }
    for (size_t i = 0; i < m->nslots; i++) {
        for (const struct cs_map_entry *e = m->slots[i]; e != NULL; e = e->next) {
            const struct cs_template *tpl = e->value;

            if (strcmp(tpl->id, id) == 0) {
                wa_buf_init(&b, 0);
                reply_buf(req, &b, template_item(&b, tpl, true));
                return true;
            }
        }
    }
    return false;
}

/* ---- phone numbers, subscribed apps ---- */

void
cs_business_phone_numbers(struct cs_sim *sim, struct wa_http_req *req)
{
    struct wa_buf b;
    enum wa_err err;

    wa_buf_init(&b, 0);
    err = wa_buf_append_str(&b, "{\"data\":[");
    for (size_t i = 0; i < sim->nnumbers && err == WA_OK; i++) {
        err =
            wa_buf_printf(&b,
                          "%s{\"verified_name\":\"wabridge sandbox\",\"code_verification_status\":"
                          "\"VERIFIED\",\"display_phone_number\":\"+%s\",\"quality_rating\":"
                          "\"GREEN\",\"platform_type\":\"CLOUD_API\",\"throughput\":{\"level\":"
                          "\"STANDARD\"},\"id\":\"%s\"}",
                          i > 0 ? "," : "", sim->numbers[i].display, sim->numbers[i].id);
    }
    if (err == WA_OK) {
        err = wa_buf_printf(&b, "],\"paging\":{\"cursors\":{\"before\":\"0\",\"after\":\"%zu\"}}}",
                            sim->nnumbers);
    }
    reply_buf(req, &b, err);
}

void
cs_business_subscribed_apps(struct cs_sim *sim, struct wa_http_req *req)
{
    const char *method = wa_http_req_method(req);
    struct wa_buf b;

    if (strcmp(method, "POST") == 0) {
        size_t len;
        const char *raw = wa_http_req_body(req, &len);
        json_t *body = NULL;

        /* An optional override_callback_uri with its verify_token; both or neither. */
        if (len > 0 && wa_json_parse(raw, len, 0, &body, NULL) == WA_OK &&
            (wa_json_str(body, "override_callback_uri") != NULL) !=
                (wa_json_str(body, "verify_token") != NULL)) {
            json_decref(body);
            cs_reply_graph_error(sim, req, 100, 0,
                                 "Param override_callback_uri requires verify_token.");
            return;
        }
        json_decref(body);
        sim->subscribed = true;
        wa_http_reply(req, 200, "application/json; charset=UTF-8", "{\"success\":true}", 16);
        return;
    }
    if (strcmp(method, "DELETE") == 0) {
        sim->subscribed = false;
        wa_http_reply(req, 200, "application/json; charset=UTF-8", "{\"success\":true}", 16);
        return;
    }
    wa_buf_init(&b, 0);
    reply_buf(req, &b,
              wa_buf_append_str(&b, sim->subscribed
                                        ? "{\"data\":[{\"whatsapp_business_api_data\":{\"id\":"
                                          "\"300000000000001\",\"link\":\"https://"
                                          "wabridge.example\",\"name\":\"wabridge\"}}]}"
                                        : "{\"data\":[]}"));
}

/* ---- business profile ---- */

static const struct {
    const char *key;
    size_t max; /* characters */
} profile_fields[] = {
    {"about", 139},
    {"address", 256},
    {"description", 512},
    {"email", 128},
    {"profile_picture_handle", 1024},
    {"vertical", 32},
};

static const char *const verticals[] = {
    "UNDEFINED",     "OTHER",   "AUTO",    "BEAUTY",     "APPAREL",   "EDU",    "ENTERTAIN",
    "EVENT_PLAN",    "FINANCE", "GROCERY", "GOVT",       "HOTEL",     "HEALTH", "NONPROFIT",
    "PROF_SERVICES", "RETAIL",  "TRAVEL",  "RESTAURANT", "NOT_A_BIZ", NULL};

/* The profile of number, created on first use (borrowed). */
static json_t *
profile_of(struct cs_sim *sim, size_t number)
{
    if (sim->profiles == NULL && (sim->profiles = json_array()) == NULL) {
        return NULL;
    }
    while (json_array_size(sim->profiles) <= number) {
        if (json_array_append_new(
                sim->profiles, json_pack("{s:s, s:s, s:s, s:s, s:[], s:s}", "about",
                                         "Hello from the sandbox", "address", "", "description", "",
                                         "email", "", "websites", "vertical", "OTHER")) != 0) {
            return NULL;
        }
    }
    return json_array_get(sim->profiles, number);
}

static int64_t
check_profile(const json_t *body, char *details, size_t n)
{
    const char *key;
    json_t *v;
    bool known;

    json_object_foreach((json_t *)body, key, v)
    {
        known = strcmp(key, "messaging_product") == 0 || strcmp(key, "websites") == 0;
        for (size_t i = 0; i < WA_ARRAY_LEN(profile_fields) && !known; i++) {
            if (strcmp(key, profile_fields[i].key) != 0) {
                continue;
            }
            known = true;
            if (!json_is_string(v) ||
                wa_whatsapp_utf8_len(json_string_value(v)) > profile_fields[i].max) {
                snprintf(details, n, "Param %s must be a string of at most %zu characters.", key,
                         profile_fields[i].max);
                return 100;
            }
        }
        if (!known) {
            snprintf(details, n, "Param %.64s is not a valid parameter.", key);
            return 100;
        }
    }
    if (wa_json_str(body, "messaging_product") == NULL ||
        strcmp(wa_json_str(body, "messaging_product"), "whatsapp") != 0) {
        snprintf(details, n, "The parameter messaging_product is required.");
        return 100;
    }
    v = json_object_get(body, "websites");
    if (v != NULL) {
        size_t i;
        json_t *w;

        if (!json_is_array(v) || json_array_size(v) > 2) {
            snprintf(details, n, "Param websites must be an array of at most 2 URLs.");
            return 100;
        }
        json_array_foreach(v, i, w)
        {
            if (!json_is_string(w) || json_string_length(w) > 256 ||
                (strncmp(json_string_value(w), "http://", 7) != 0 &&
                 strncmp(json_string_value(w), "https://", 8) != 0)) {
                snprintf(details, n, "Param websites[%zu] must be an http(s) URL.", i);
                return 100;
            }
        }
    }
    if (wa_json_str(body, "vertical") != NULL) {
        bool ok = false;

        for (size_t i = 0; verticals[i] != NULL; i++) {
            ok = ok || strcmp(verticals[i], wa_json_str(body, "vertical")) == 0;
        }
        if (!ok) {
            snprintf(details, n, "Param vertical is not a valid business category.");
            return 100;
        }
    }
    return 0;
}

void
cs_business_profile(struct cs_sim *sim, struct wa_http_req *req, size_t number)
{
    json_t *profile = profile_of(sim, number), *body;
    struct wa_buf b;
    char details[256];
    int64_t code;

    if (profile == NULL) {
        wa_http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    if (strcmp(wa_http_req_method(req), "POST") != 0) {
        char *text = wa_json_dump(profile);

        wa_buf_init(&b, 0);
        reply_buf(req, &b,
                  text == NULL ? WA_ENOMEM
                               : wa_buf_printf(&b,
                                               "{\"data\":[{\"messaging_product\":\"whatsapp\","
                                               "%s]}",
                                               text + 1)); /* the profile's members after "{" */
        free(text);
        return;
    }
    if ((body = body_object(sim, req)) == NULL) {
        return;
    }
    if ((code = check_profile(body, details, sizeof(details))) != 0) {
        cs_reply_graph_error(sim, req, code, 0, details);
        json_decref(body);
        return;
    }
    json_object_del(body, "messaging_product");
    json_object_update(profile, body);
    json_decref(body);
    wa_http_reply(req, 200, "application/json; charset=UTF-8", "{\"success\":true}", 16);
}
