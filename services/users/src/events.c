/*
 * events.c: contact.event (wa.contact.event.v1), the one place wa-users produces it. Key: the
 * conversation "<phone_number_id>:<identity>" ("unknown" without a number id); the CloudEvent
 * id is the caller's (derived from the cause, so a repeated cause gives the same event id and
 * consumers can drop copies). Data: {"event_id", "kind" (created, changed, consent, erased),
 * "contact", "identity", ...the kind's fields}.
 *
 * Threading: loop thread.
 */
#include <stdio.h>
#include <string.h>

#include "users.h"
#include "wa/cloudevent.h"
#include "wa/contract_router.h"
#include "wa/kafka.h"

enum wa_err
us_event_produce(struct us *us, const char *id, const char *kind, const char *contact_id,
                 const char *phone_number_id, json_t *fields, wa_kafka_delivery_fn cb, void *arg)
{
    struct wa_cloudevent ev;
    char key[WA_CONTRACT_KEY_MAX];
    json_t *data = fields != NULL ? fields : json_object();
    enum wa_err err;

    if (data == NULL) {
        return WA_ENOMEM;
    }
    if (strlen(id) >= sizeof(ev.id)) {
        json_decref(data);
        return WA_ETOOBIG;
    }
    if (json_object_set_new(data, "event_id", json_string(id)) != 0 ||
        json_object_set_new(data, "kind", json_string(kind)) != 0 ||
        json_object_set_new(data, "contact", json_string(contact_id)) != 0 ||
        json_object_set_new(data, "identity", json_string(us_key_identity(contact_id))) != 0) {
        json_decref(data);
        return WA_ENOMEM;
    }
    if ((err = wa_contract_conversation_key(
             phone_number_id != NULL && phone_number_id[0] != '\0' ? phone_number_id : NULL,
             us_key_identity(contact_id), key, sizeof(key))) != WA_OK) {
        json_decref(data);
        return err;
    }
    wa_cloudevent_init(&ev, wa_service_instance(us->svc), WA_CE_TYPE_CONTACT_EVENT);
    memcpy(ev.id, id, strlen(id) + 1);
    ev.subject = key;
    ev.data = data;
    err = wa_kafka_produce_event(us->producer, us->topic_event, &ev, cb, arg);
    json_decref(data);
    return err;
}

enum wa_err
us_event_written(struct us *us, const char *cause, const char *contact_id, bool created,
                 const json_t *body, wa_kafka_delivery_fn cb, void *arg)
{
    static const char *const skip[] = {"id", "phone", "bsuid", "consent"};
    json_t *names = json_array(), *data;
    char id[US_ID_MAX + 16];
    const char *name;
    json_t *v;

    if (names == NULL) {
        return WA_ENOMEM;
    }
    json_object_foreach((json_t *)body, name, v)
    {
        bool skipped = false;

        (void)v;
        for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
            skipped = skipped || strcmp(name, skip[i]) == 0;
        }
        if (!skipped) {
            json_array_append_new(names, json_string(name));
        }
    }
    if ((data = json_pack("{s:o}", "fields", names)) == NULL) {
        return WA_ENOMEM;
    }
    snprintf(id, sizeof(id), "api:%s", cause);
    return us_event_produce(us, id, created ? "created" : "changed", contact_id, NULL, data, cb,
                            arg);
}
