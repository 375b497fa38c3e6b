/*
 * contact.c: what the profile events ask of a contact, pure (no I/O): an inbound message
 * (upsert the contact, its identities and profile name, last_interaction_at, one more unread
 * message) and an accepted outbound result (the business answered: unread back to 0).
 *
 * Threading: any thread; no state.
 */
#include <stdio.h>
#include <string.h>

#include "users.h"
#include "wa/contract.h"

static enum wa_err
put(char *dst, size_t size, const char *src, const char *field, struct wa_error *error)
{
    int w = snprintf(dst, size, "%s", src != NULL ? src : "");

    if (w < 0 || (size_t)w >= size) {
        return wa_error_set(error, WA_EPARSE, "%s: too long", field);
    }
    return WA_OK;
}

enum wa_err
us_decide_inbound(const json_t *data, int64_t event_ms, struct us_inbound *out,
                  struct wa_error *error)
{
    struct wa_contract_inbound_message m;
    const char *identity;
    enum wa_err err;

    memset(out, 0, sizeof(*out));
    if ((err = wa_contract_inbound_message_decode(data, &m, error)) != WA_OK) {
        return err;
    }
    identity = m.from != NULL ? m.from : m.contact;
    if (us_contact_id(identity, out->contact_id, sizeof(out->contact_id)) != WA_OK) {
        return wa_error_set(error, WA_EPARSE, "from: not a wa_id or business-scoped user id");
    }
    if (m.from_user_id != NULL && m.from != NULL &&
        us_contact_id(m.from_user_id, out->bsuid, sizeof(out->bsuid)) != WA_OK) {
        out->bsuid[0] = '\0'; /* an unreadable BSUID beside a number: keep the number */
    }
    if ((err = put(out->wamid, sizeof(out->wamid), m.wamid, "wamid", error)) != WA_OK ||
        (err = put(out->profile_name, sizeof(out->profile_name), m.profile_name, "profile.name",
                   error)) != WA_OK ||
        (err = put(out->phone_number_id, sizeof(out->phone_number_id), m.phone_number_id,
                   "phone_number_id", error)) != WA_OK) {
        return err;
    }
    out->at_ms = m.timestamp > 0 ? m.timestamp * 1000 : event_ms;
    return WA_OK;
}

enum wa_err
us_decide_result(const json_t *data, char *contact_id, size_t size, struct wa_error *error)
{
    const char *status = wa_json_str(data, "status"), *to = wa_json_str(data, "to");

    contact_id[0] = '\0';
    if (status == NULL) {
        return wa_error_set(error, WA_EPARSE, "status: missing");
    }
    if (strcmp(status, "accepted") != 0 || to == NULL) {
        return WA_OK; /* a failure, or sent to a BSUID only: nothing answered */
    }
    if (us_contact_id(to, contact_id, size) != WA_OK) {
        contact_id[0] = '\0';
        return wa_error_set(error, WA_EPARSE, "to: not a phone number or wa_id");
    }
    return WA_OK;
}
