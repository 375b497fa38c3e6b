/*
 * router.c: encoders and decoders of handoff and contact.command (shapes in
 * wa/contract_router.h). Encoders copy every string into the new object; decoders borrow.
 */
#include <string.h>

#include "wa/contract_router.h"

static const char *const command_names[] = {"tag", "untag", "opt_out", "opt_in", "set_attribute"};

const char *
wa_contract_command_name(enum wa_contract_command cmd)
{
    if ((size_t)cmd < WA_ARRAY_LEN(command_names)) {
        return command_names[cmd];
    }
    return "tag";
}

enum wa_err
wa_contract_command_parse(const char *name, enum wa_contract_command *out)
{
    for (size_t i = 0; name != NULL && i < WA_ARRAY_LEN(command_names); i++) {
        if (strcmp(name, command_names[i]) == 0) {
            *out = (enum wa_contract_command)i;
            return WA_OK;
        }
    }
    return WA_EPARSE;
}

static bool
priority_valid(const char *p)
{
    return p != NULL &&
           (strcmp(p, "high") == 0 || strcmp(p, "medium") == 0 || strcmp(p, "low") == 0);
}

/* Sets obj[key] to a copy of s, or null when s is NULL. Returns false when out of memory. */
static bool
set_str(json_t *obj, const char *key, const char *s)
{
    return json_object_set_new(obj, key, s != NULL ? json_string(s) : json_null()) == 0;
}

static bool
present(const char *s)
{
    return s != NULL && s[0] != '\0';
}

enum wa_err
wa_contract_handoff_data(const struct wa_contract_handoff *h, json_t **out, struct wa_error *error)
{
    json_t *o;
    bool ok;

    *out = NULL;
    if (!present(h->handoff_id) || !present(h->phone_number_id) || !present(h->contact) ||
        !present(h->queue) || !present(h->requested_at)) {
        return wa_error_set(error, WA_EINVAL,
                            "handoff: handoff_id, phone_number_id, contact, queue and "
                            "requested_at are required");
    }
    if (!priority_valid(h->priority)) {
        return wa_error_set(error, WA_EINVAL, "handoff: priority must be high, medium or low");
    }
    if ((o = json_object()) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    ok = set_str(o, "handoff_id", h->handoff_id) &&
         set_str(o, "phone_number_id", h->phone_number_id) && set_str(o, "contact", h->contact) &&
         set_str(o, "queue", h->queue) && set_str(o, "priority", h->priority) &&
         set_str(o, "reason", h->reason) && set_str(o, "source", h->source) &&
         set_str(o, "wamid", h->wamid) && set_str(o, "text", h->text) &&
         set_str(o, "profile_name", h->profile_name) &&
         set_str(o, "requested_at", h->requested_at) && set_str(o, "note", h->note);
    if (!ok) {
        json_decref(o);
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    *out = o;
    return WA_OK;
}

/* Reads an optional string member: absent or null -> NULL; another type -> WA_EPARSE. */
static enum wa_err
opt_str(const json_t *data, const char *key, const char **out, struct wa_error *error)
{
    const json_t *v = json_object_get(data, key);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return WA_OK;
    }
    if (!json_is_string(v)) {
        return wa_error_set(error, WA_EPARSE, "%s: must be a string or null", key);
    }
    *out = json_string_value(v);
    return WA_OK;
}

static enum wa_err
req_str(const json_t *data, const char *key, const char **out, struct wa_error *error)
{
    enum wa_err err = opt_str(data, key, out, error);

    if (err == WA_OK && !present(*out)) {
        return wa_error_set(error, WA_EPARSE, "%s: required", key);
    }
    return err;
}

enum wa_err
wa_contract_contact_command_data(const struct wa_contract_contact_command *c, json_t **out,
                                 struct wa_error *error)
{
    json_t *o = NULL, *tags = NULL, *attr = NULL;
    bool ok;

    *out = NULL;
    if (!present(c->command_id) || !present(c->phone_number_id) || !present(c->contact) ||
        !present(c->requested_at)) {
        return wa_error_set(error, WA_EINVAL,
                            "contact.command: command_id, phone_number_id, contact and "
                            "requested_at are required");
    }
    if ((c->command == WA_CONTRACT_CMD_TAG || c->command == WA_CONTRACT_CMD_UNTAG) &&
        (c->ntags == 0 || c->ntags > WA_CONTRACT_TAGS_MAX)) {
        return wa_error_set(error, WA_EINVAL, "contact.command: tags: 1 to %d tags required",
                            WA_CONTRACT_TAGS_MAX);
    }
    if (c->command == WA_CONTRACT_CMD_SET_ATTRIBUTE && !present(c->attribute_name)) {
        return wa_error_set(error, WA_EINVAL, "contact.command: attribute name required");
    }
    if ((o = json_object()) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    ok = set_str(o, "command_id", c->command_id) &&
         set_str(o, "command", wa_contract_command_name(c->command)) &&
         set_str(o, "phone_number_id", c->phone_number_id) && set_str(o, "contact", c->contact);
    if (ok && (c->command == WA_CONTRACT_CMD_TAG || c->command == WA_CONTRACT_CMD_UNTAG)) {
        ok = (tags = json_array()) != NULL && json_object_set_new(o, "tags", tags) == 0;
        for (size_t i = 0; ok && i < c->ntags; i++) {
            ok = c->tags[i] != NULL && json_array_append_new(tags, json_string(c->tags[i])) == 0;
        }
    }
    if (ok && c->command == WA_CONTRACT_CMD_SET_ATTRIBUTE) {
        ok = (attr = json_object()) != NULL && json_object_set_new(o, "attribute", attr) == 0 &&
             set_str(attr, "name", c->attribute_name) && set_str(attr, "value", c->attribute_value);
    }
    ok = ok && set_str(o, "reason", c->reason) && set_str(o, "source", c->source) &&
         set_str(o, "wamid", c->wamid) && set_str(o, "requested_at", c->requested_at);
    if (!ok) {
        json_decref(o);
        return wa_error_set(error, WA_ENOMEM, "out of memory or NULL tag");
    }
    *out = o;
    return WA_OK;
}

enum wa_err
wa_contract_contact_command_decode(const json_t *data, struct wa_contract_contact_command *out,
                                   struct wa_error *error)
{
    const char *cmd = NULL;
    const json_t *tags, *attr, *v;
    enum wa_err err;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(data)) {
        return wa_error_set(error, WA_EPARSE, "data: must be an object");
    }
    if ((err = req_str(data, "command_id", &out->command_id, error)) != WA_OK ||
        (err = req_str(data, "command", &cmd, error)) != WA_OK ||
        (err = req_str(data, "phone_number_id", &out->phone_number_id, error)) != WA_OK ||
        (err = req_str(data, "contact", &out->contact, error)) != WA_OK ||
        (err = req_str(data, "requested_at", &out->requested_at, error)) != WA_OK ||
        (err = opt_str(data, "reason", &out->reason, error)) != WA_OK ||
        (err = opt_str(data, "source", &out->source, error)) != WA_OK ||
        (err = opt_str(data, "wamid", &out->wamid, error)) != WA_OK) {
        return err;
    }
    if (wa_contract_command_parse(cmd, &out->command) != WA_OK) {
        return wa_error_set(error, WA_EPARSE, "command: unknown \"%.40s\"", cmd);
    }
    if (out->command == WA_CONTRACT_CMD_TAG || out->command == WA_CONTRACT_CMD_UNTAG) {
        tags = json_object_get(data, "tags");
        if (!json_is_array(tags) || json_array_size(tags) == 0 ||
            json_array_size(tags) > WA_CONTRACT_TAGS_MAX) {
            return wa_error_set(error, WA_EPARSE, "tags: 1 to %d strings required",
                                WA_CONTRACT_TAGS_MAX);
        }
        json_array_foreach(tags, i, v)
        {
            if (!json_is_string(v)) {
                return wa_error_set(error, WA_EPARSE, "tags[%zu]: must be a string", i);
            }
            out->tags[out->ntags++] = json_string_value(v);
        }
    }
    if (out->command == WA_CONTRACT_CMD_SET_ATTRIBUTE) {
        attr = json_object_get(data, "attribute");
        if (!json_is_object(attr) ||
            (err = req_str(attr, "name", &out->attribute_name, error)) != WA_OK ||
            (err = opt_str(attr, "value", &out->attribute_value, error)) != WA_OK) {
            return wa_error_set(error, WA_EPARSE, "attribute: {\"name\", \"value\"} required");
        }
    }
    return WA_OK;
}
