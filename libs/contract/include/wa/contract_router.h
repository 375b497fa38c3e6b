/*
 * wa/contract_router.h: the shapes of handoff and contact.command (docs/architecture.md,
 * "Topics and events"), produced by wa-router (and any service asking wa-users for a change)
 * and consumed by agent tooling (handoff) and wa-users (contact.command).
 *
 * handoff (type wa.handoff.v1, key <phone_number_id>:<contact>)
 *   {"handoff_id" (idempotency key), "phone_number_id", "contact", "queue", "priority"
 *    ("high" | "medium" | "low"), "reason" (e.g. the rule name), "source" (producer),
 *    "wamid" (the inbound message that caused it | null), "text" (its text | null),
 *    "profile_name" (| null), "requested_at" (RFC 3339), "note" (| null)}
 * contact.command (type wa.contact.command.v1, key <phone_number_id>:<contact>)
 *   {"command_id" (idempotency key), "command" ("tag" | "untag" | "opt_out" | "opt_in" |
 *    "set_attribute"), "phone_number_id", "contact", "tags" ([string], tag/untag only),
 *    "attribute" ({"name", "value"}, set_attribute only), "reason" (| null), "source",
 *    "wamid" (| null), "requested_at" (RFC 3339)}
 *
 * Ownership: encoders return new references (json_decref); decoders fill caller's structs with
 * pointers borrowed from the json_t given. Pure, thread-safe.
 */
#ifndef WA_CONTRACT_ROUTER_H
#define WA_CONTRACT_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wa/err.h"
#include "wa/json.h"

#define WA_CE_TYPE_HANDOFF         "wa.handoff.v1"
#define WA_CE_TYPE_CONTACT_COMMAND "wa.contact.command.v1"
#define WA_CE_TYPE_CONTACT_EVENT   "wa.contact.event.v1" /* produced by wa-users */

#define WA_CONTRACT_TAGS_MAX 32 /* tags per contact.command */

/* A hand-off. Borrowed strings; NULL = absent (null in JSON). */
struct wa_contract_handoff {
    const char *handoff_id;      /* required */
    const char *phone_number_id; /* required */
    const char *contact;         /* required */
    const char *queue;           /* required */
    const char *priority;        /* required: high, medium, low */
    const char *reason;
    const char *source;
    const char *wamid;
    const char *text;
    const char *profile_name;
    const char *requested_at; /* required, RFC 3339 */
    const char *note;
};

enum wa_contract_command {
    WA_CONTRACT_CMD_TAG,
    WA_CONTRACT_CMD_UNTAG,
    WA_CONTRACT_CMD_OPT_OUT,
    WA_CONTRACT_CMD_OPT_IN,
    WA_CONTRACT_CMD_SET_ATTRIBUTE,
};

/* A contact command. Borrowed strings; NULL = absent. */
struct wa_contract_contact_command {
    const char *command_id; /* required */
    enum wa_contract_command command;
    const char *phone_number_id;            /* required */
    const char *contact;                    /* required */
    const char *tags[WA_CONTRACT_TAGS_MAX]; /* tag / untag: at least one */
    size_t ntags;
    const char *attribute_name; /* set_attribute */
    const char *attribute_value;
    const char *reason;
    const char *source;
    const char *wamid;
    const char *requested_at; /* required, RFC 3339 */
};

/* "tag", "untag", "opt_out", "opt_in", "set_attribute". Static string. */
const char *wa_contract_command_name(enum wa_contract_command cmd);
/* Parses a command name. WA_EPARSE when unknown. */
enum wa_err wa_contract_command_parse(const char *name, enum wa_contract_command *out);

/*
 * Builds handoff data from h (copied into the new object). Returns a new reference in *out
 * (json_decref). WA_EINVAL (error names the field) when a required field is missing or priority
 * is not high/medium/low; WA_ENOMEM.
 */
enum wa_err wa_contract_handoff_data(const struct wa_contract_handoff *h, json_t **out,
                                     struct wa_error *error);

/*
 * Builds contact.command data from c (copied). Returns a new reference in *out. WA_EINVAL when
 * a required field is missing, tag/untag has no tags or set_attribute no name; WA_ENOMEM.
 */
enum wa_err wa_contract_contact_command_data(const struct wa_contract_contact_command *c,
                                             json_t **out, struct wa_error *error);
/* Fills out from contact.command data, borrowing from data. WA_EPARSE naming the field. */
enum wa_err wa_contract_contact_command_decode(const json_t *data,
                                               struct wa_contract_contact_command *out,
                                               struct wa_error *error);

#endif
