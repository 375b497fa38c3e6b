/*
 * templates.c: the template registry the simulator checks template sends against
 * (cloud-api.md §1.4 "Template", §5.2): (name, language) -> category, status and parameter
 * counts per component. Loaded from WA_SIM_TEMPLATES (a JSON file, see
 * tools/cloudsim/templates.json) or, when unset, from the built-in registry below; /_sim/templates
 * adds or replaces entries at run time.
 *
 * Outcomes: unknown or not APPROVED (PENDING, REJECTED, ...) -> 132001; PAUSED -> 132015;
 * DISABLED -> 132016; parameter counts differ -> 132000.
 * Threading: loop thread only. Ownership: the registry owns its entries.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudsim.h"

/* The registry used when WA_SIM_TEMPLATES is unset; tools/cloudsim/templates.json holds the same. */
static const char builtin[] =
    "["
    "{\"name\":\"hello_world\",\"language\":\"en_US\",\"category\":\"UTILITY\","
    "\"status\":\"APPROVED\"},"
    "{\"name\":\"order_update\",\"language\":\"en_US\",\"category\":\"UTILITY\","
    "\"status\":\"APPROVED\",\"body_params\":2},"
    "{\"name\":\"order_update\",\"language\":\"pt_BR\",\"category\":\"UTILITY\","
    "\"status\":\"APPROVED\",\"body_params\":2},"
    "{\"name\":\"shipping_notice\",\"language\":\"en_US\",\"category\":\"UTILITY\","
    "\"status\":\"APPROVED\",\"header_params\":1,\"body_params\":1,\"button_params\":1},"
    "{\"name\":\"spring_sale\",\"language\":\"en\",\"category\":\"MARKETING\","
    "\"status\":\"APPROVED\",\"body_params\":1,\"button_params\":1},"
    "{\"name\":\"new_collection\",\"language\":\"en\",\"category\":\"MARKETING\","
    "\"status\":\"APPROVED\",\"paced\":true},"
    "{\"name\":\"otp_code\",\"language\":\"en_US\",\"category\":\"AUTHENTICATION\","
    "\"status\":\"APPROVED\",\"body_params\":1,\"button_params\":1},"
    "{\"name\":\"pending_review\",\"language\":\"en_US\",\"category\":\"UTILITY\","
    "\"status\":\"PENDING\"},"
    "{\"name\":\"rejected_promo\",\"language\":\"en\",\"category\":\"MARKETING\","
    "\"status\":\"REJECTED\"},"
    "{\"name\":\"paused_promo\",\"language\":\"en\",\"category\":\"MARKETING\","
    "\"status\":\"PAUSED\"},"
    "{\"name\":\"disabled_promo\",\"language\":\"en\",\"category\":\"MARKETING\","
    "\"status\":\"DISABLED\"}"
    "]";

static void
make_key(const char *name, const char *language, char *out, size_t n)
{
    snprintf(out, n, "%s\n%s", name, language);
}

static void
template_free(void *p)
{
    struct cs_template *tpl = p;

    if (tpl != NULL) {
        free(tpl->components);
        free(tpl);
    }
}

/* A 16-digit Graph id from the key (FNV-1a): the same template keeps its id across resets. */
static void
make_id(const char *key, char out[24])
{
    uint64_t h = 1469598103934665603ull;

    for (const char *p = key; *p != '\0'; p++) {
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    }
    snprintf(out, 24, "%" PRIu64, (uint64_t)(1000000000000000ull + h % 8999999999999999ull));
}

static enum wa_err
get_count(const json_t *obj, const char *key, int64_t *out, struct wa_error *error)
{
    enum wa_err err = wa_json_get_int64(obj, key, 0, 100, out, error);

    if (err == WA_ENOTFOUND) {
        *out = 0;
        return WA_OK;
    }
    return err;
}

enum wa_err
cs_templates_put_json(struct cs_templates *t, const json_t *obj, struct wa_error *error)
{
    const char *name, *lang, *cat = "UTILITY", *status = "APPROVED";
    struct cs_template *tpl;
    char key[WA_WHATSAPP_TEMPLATE_NAME_MAX + 24];
    void *old = NULL;
    enum wa_err err;
    bool paced = false;

    if ((err = wa_json_get_str(obj, "name", WA_WHATSAPP_TEMPLATE_NAME_MAX, &name, error)) !=
            WA_OK ||
        (err = wa_json_get_str(obj, "language", 16, &lang, error)) != WA_OK) {
        return err;
    }
    if ((err = wa_json_get_str(obj, "category", 23, &cat, error)) == WA_ENOTFOUND) {
        cat = "UTILITY";
    } else if (err != WA_OK) {
        return err;
    }
    if ((err = wa_json_get_str(obj, "status", 23, &status, error)) == WA_ENOTFOUND) {
        status = "APPROVED";
    } else if (err != WA_OK) {
        return err;
    }
    if ((err = wa_json_get_bool(obj, "paced", &paced, error)) == WA_ENOTFOUND) {
        paced = false;
    } else if (err != WA_OK) {
        return err;
    }
    tpl = calloc(1, sizeof(*tpl));
    if (tpl == NULL) {
        return wa_error_set(error, WA_ENOMEM, "template");
    }
    snprintf(tpl->name, sizeof(tpl->name), "%s", name);
    snprintf(tpl->language, sizeof(tpl->language), "%s", lang);
    snprintf(tpl->category, sizeof(tpl->category), "%s", cat);
    snprintf(tpl->status, sizeof(tpl->status), "%s", status);
    tpl->paced = paced;
    if ((err = get_count(obj, "header_params", &tpl->header_params, error)) != WA_OK ||
        (err = get_count(obj, "body_params", &tpl->body_params, error)) != WA_OK ||
        (err = get_count(obj, "button_params", &tpl->button_params, error)) != WA_OK) {
        free(tpl);
        return err;
    }
    make_key(name, lang, key, sizeof(key));
    make_id(key, tpl->id);
    if (json_is_array(json_object_get(obj, "components")) &&
        (tpl->components = wa_json_dump(json_object_get(obj, "components"))) == NULL) {
        free(tpl);
        return wa_error_set(error, WA_ENOMEM, "template");
    }
    if (cs_map_put(&t->by_key, key, tpl, &old) != WA_OK) {
        template_free(tpl);
        return wa_error_set(error, WA_ENOMEM, "template");
    }
    template_free(old);
    return WA_OK;
}

enum wa_err
cs_templates_load(struct cs_templates *t, const char *path, struct wa_error *error)
{
    json_t *root = NULL, *list, *item;
    char *data = NULL;
    size_t len = 0, i;
    enum wa_err err = WA_OK;

    if (path != NULL && path[0] != '\0') {
        FILE *f = fopen(path, "rb");
        struct wa_buf b;
        char chunk[4096];
        size_t n;

        if (f == NULL) {
            return wa_error_set(error, WA_ECONFIG, "WA_SIM_TEMPLATES: cannot open %s", path);
        }
        wa_buf_init(&b, 16u * 1024u * 1024u);
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && err == WA_OK) {
            err = wa_buf_append(&b, chunk, n);
        }
        fclose(f);
        len = b.len;
        data = wa_buf_steal(&b);
        if (err != WA_OK || data == NULL) {
            free(data);
            return wa_error_set(error, WA_ECONFIG, "WA_SIM_TEMPLATES: cannot read %s", path);
        }
    }
    err = wa_json_parse(data != NULL ? data : builtin, data != NULL ? len : strlen(builtin), 0,
                        &root, error);
    free(data);
    if (err != WA_OK) {
        return wa_error_set(error, WA_ECONFIG, "WA_SIM_TEMPLATES: %s", error->message);
    }
    list = json_is_array(root) ? root : json_object_get(root, "templates");
    if (!json_is_array(list)) {
        json_decref(root);
        return wa_error_set(error, WA_ECONFIG,
                            "WA_SIM_TEMPLATES: expected an array or {\"templates\": [...]}");
    }
    json_array_foreach(list, i, item)
    {
        if ((err = cs_templates_put_json(t, item, error)) != WA_OK) {
            json_decref(root);
            return wa_error_set(error, WA_ECONFIG, "WA_SIM_TEMPLATES: template %zu: %s", i,
                                error->message);
        }
    }
    json_decref(root);
    return WA_OK;
}

const struct cs_template *
cs_templates_find(const struct cs_templates *t, const char *name, const char *language)
{
    char key[WA_WHATSAPP_TEMPLATE_NAME_MAX + 24];

    make_key(name, language, key, sizeof(key));
    return cs_map_get(&t->by_key, key);
}

struct cs_template *
cs_templates_get(struct cs_templates *t, const char *name, const char *language)
{
    char key[WA_WHATSAPP_TEMPLATE_NAME_MAX + 24];

    make_key(name, language, key, sizeof(key));
    return cs_map_get(&t->by_key, key);
}

size_t
cs_templates_delete(struct cs_templates *t, const char *name, const char *hsm_id)
{
    size_t n = 0;
    bool again = true;

    while (again) { /* restart after each removal: deleting invalidates the walk */
        again = false;
        for (size_t i = 0; i < t->by_key.nslots && !again; i++) {
            for (struct cs_map_entry *e = t->by_key.slots[i]; e != NULL; e = e->next) {
                struct cs_template *tpl = e->value;

                if (strcmp(tpl->name, name) == 0 &&
                    (hsm_id == NULL || strcmp(tpl->id, hsm_id) == 0)) {
                    template_free(cs_map_del(&t->by_key, e->key));
                    n++;
                    again = true;
                    break;
                }
            }
        }
    }
    return n;
}

void
cs_templates_cleanup(struct cs_templates *t)
{
    cs_map_cleanup(&t->by_key, template_free);
}

enum wa_err
cs_templates_json(const struct cs_templates *t, struct wa_buf *out)
{
    enum wa_err err = wa_buf_append_str(out, "[");
    bool first = true;

    for (size_t i = 0; i < t->by_key.nslots && err == WA_OK; i++) {
        for (struct cs_map_entry *e = t->by_key.slots[i]; e != NULL && err == WA_OK; e = e->next) {
            const struct cs_template *tpl = e->value;

            err = wa_buf_printf(out,
                                "%s{\"name\":\"%s\",\"language\":\"%s\",\"category\":\"%s\","
                                "\"status\":\"%s\",\"header_params\":%lld,\"body_params\":%lld,"
                                "\"button_params\":%lld,\"paced\":%s}",
                                first ? "" : ",", tpl->name, tpl->language, tpl->category,
                                tpl->status, (long long)tpl->header_params,
                                (long long)tpl->body_params, (long long)tpl->button_params,
                                tpl->paced ? "true" : "false");
            first = false;
        }
    }
    return err == WA_OK ? wa_buf_append_str(out, "]") : err;
}

int64_t
cs_templates_check(const struct cs_templates *t, const struct wa_whatsapp_send *send,
                   const struct cs_template **tpl_out, char *details, size_t n)
{
    const struct cs_template *tpl = cs_templates_find(t, send->tpl.name, send->tpl.language);

    *tpl_out = tpl;
    if (tpl == NULL) {
        snprintf(details, n, "template name (%.100s) does not exist in %.16s", send->tpl.name,
                 send->tpl.language);
        return 132001;
    }
    if (strcmp(tpl->status, "PAUSED") == 0) {
        snprintf(details, n, "Template %.100s is paused due to low quality.", tpl->name);
        return 132015;
    }
    if (strcmp(tpl->status, "DISABLED") == 0) {
        snprintf(details, n, "Template %.100s has been disabled.", tpl->name);
        return 132016;
    }
    if (strcmp(tpl->status, "APPROVED") != 0) {
        snprintf(details, n, "template name (%.100s) does not exist in %.16s (status %.20s)",
                 send->tpl.name, send->tpl.language, tpl->status);
        return 132001;
    }
    if ((int64_t)send->tpl.header_params != tpl->header_params ||
        (int64_t)send->tpl.body_params != tpl->body_params ||
        (int64_t)send->tpl.button_params != tpl->button_params) {
        snprintf(details, n,
                 "header: number of localizable_params (%zu) does not match the expected number "
                 "of params (%lld); body: (%zu) vs (%lld); buttons: (%zu) vs (%lld)",
                 send->tpl.header_params, (long long)tpl->header_params, send->tpl.body_params,
                 (long long)tpl->body_params, send->tpl.button_params,
                 (long long)tpl->button_params);
        return 132000;
    }
    return 0;
}
