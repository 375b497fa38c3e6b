/*
 * webhook.c: the webhook payload splitter (wa/whatsapp_webhook.h).
 *
 * Walks object -> entry[] -> changes[] -> value and emits one event per update. The rules that
 * keep data: unknown fields and message types are events like any other; a malformed item is
 * skipped and counted, never a reason to drop its neighbours; only a body that is not a webhook
 * at all (not JSON, no entry array) is an error, and wa-ingest still archives such a body raw.
 *
 * Pure function over its input; every pointer placed in an event borrows from batch->root.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "wa/whatsapp_webhook.h"

/* What every event of one change shares. */
struct change_ctx {
    const char *waba_id;
    const char *field;
    const char *phone_number_id;
    const char *display_phone_number;
    int64_t entry_time;
};

void
wa_webhook_batch_init(struct wa_webhook_batch *batch)
{
    memset(batch, 0, sizeof(*batch));
}

void
wa_webhook_batch_cleanup(struct wa_webhook_batch *batch)
{
    if (batch == NULL) {
        return;
    }
    json_decref(batch->root);
    free(batch->events);
    memset(batch, 0, sizeof(*batch));
}

int64_t
wa_webhook_timestamp(const json_t *v)
{
    const char *s;
    char *end = NULL;
    long long n;

    if (json_is_integer(v)) {
        return json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : -1;
    }
    if (!json_is_string(v)) {
        return -1;
    }
    s = json_string_value(v);
    if (*s < '0' || *s > '9' || json_string_length(v) > 19) {
        return -1;
    }
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || n < 0) {
        return -1;
    }
    return (int64_t)n;
}

/* Returns a new event slot at the end of batch (zeroed, shared fields filled), or NULL. */
static struct wa_webhook_event *
push(struct wa_webhook_batch *batch, enum wa_webhook_kind kind, const struct change_ctx *c)
{
    struct wa_webhook_event *ev;

    if (batch->count == batch->cap) {
        size_t cap = batch->cap == 0 ? 8 : batch->cap * 2;
        struct wa_webhook_event *grown = realloc(batch->events, cap * sizeof(*grown));

        if (grown == NULL) {
            return NULL;
        }
        batch->events = grown;
        batch->cap = cap;
    }
    ev = &batch->events[batch->count++];
    memset(ev, 0, sizeof(*ev));
    ev->kind = kind;
    ev->waba_id = c->waba_id;
    ev->field = c->field;
    ev->phone_number_id = c->phone_number_id;
    ev->display_phone_number = c->display_phone_number;
    ev->timestamp = -1;
    return ev;
}

/*
 * The contacts[] item describing the sender of msg: matched by wa_id == from or
 * user_id == from_user_id; a lone contact is taken as is (Meta sends one per message).
 */
static const json_t *
find_profile(const json_t *contacts, const char *from, const char *from_user_id)
{
    const json_t *c;
    size_t i;

    if (!json_is_array(contacts)) {
        return NULL;
    }
    json_array_foreach(contacts, i, c)
    {
        const char *wa_id = wa_json_str(c, "wa_id");
        const char *user_id = wa_json_str(c, "user_id");

        if ((from != NULL && wa_id != NULL && strcmp(from, wa_id) == 0) ||
            (from_user_id != NULL && user_id != NULL && strcmp(from_user_id, user_id) == 0)) {
            return c;
        }
    }
    if (json_array_size(contacts) == 1 && json_is_object(json_array_get(contacts, 0))) {
        return json_array_get(contacts, 0);
    }
    return NULL;
}

static enum wa_err
split_messages(struct wa_webhook_batch *batch, const struct change_ctx *c, const json_t *value)
{
    const json_t *messages = json_object_get(value, "messages");
    const json_t *contacts = json_object_get(value, "contacts");
    const json_t *msg;
    size_t i;

    json_array_foreach(messages, i, msg)
    {
        struct wa_webhook_event *ev;
        const char *id = wa_json_str(msg, "id");
        const char *from = wa_json_str(msg, "from");
        const char *from_user_id = wa_json_str(msg, "from_user_id");

        if (id == NULL) {
            batch->malformed++;
            continue;
        }
        if ((ev = push(batch, WA_WEBHOOK_MESSAGE, c)) == NULL) {
            return WA_ENOMEM;
        }
        ev->id = id;
        ev->type = wa_json_str(msg, "type");
        ev->timestamp = wa_webhook_timestamp(json_object_get(msg, "timestamp"));
        ev->item = msg;
        ev->profile = find_profile(contacts, from, from_user_id);
        ev->contact = from != NULL ? from : from_user_id;
        if (ev->contact == NULL && ev->profile != NULL) {
            ev->contact = wa_json_str(ev->profile, "wa_id");
            if (ev->contact == NULL) {
                ev->contact = wa_json_str(ev->profile, "user_id");
            }
        }
    }
    return WA_OK;
}

static enum wa_err
split_statuses(struct wa_webhook_batch *batch, const struct change_ctx *c, const json_t *value)
{
    const json_t *statuses = json_object_get(value, "statuses");
    const json_t *st;
    size_t i;

    json_array_foreach(statuses, i, st)
    {
        struct wa_webhook_event *ev;
        const char *id = wa_json_str(st, "id");
        const char *status = wa_json_str(st, "status");

        if (id == NULL || status == NULL) {
            batch->malformed++;
            continue;
        }
        if ((ev = push(batch, WA_WEBHOOK_STATUS, c)) == NULL) {
            return WA_ENOMEM;
        }
        ev->id = id;
        ev->status = status;
        ev->timestamp = wa_webhook_timestamp(json_object_get(st, "timestamp"));
        ev->item = st;
        ev->contact = wa_json_str(st, "recipient_id");
        if (ev->contact == NULL) {
            ev->contact = wa_json_str(st, "recipient_user_id");
        }
    }
    return WA_OK;
}

static enum wa_err
split_errors(struct wa_webhook_batch *batch, const struct change_ctx *c, const json_t *value)
{
    const json_t *errors = json_object_get(value, "errors");
    const json_t *e;
    size_t i;

    json_array_foreach(errors, i, e)
    {
        struct wa_webhook_event *ev;

        if (!json_is_object(e)) {
            batch->malformed++;
            continue;
        }
        if ((ev = push(batch, WA_WEBHOOK_ACCOUNT, c)) == NULL) {
            return WA_ENOMEM;
        }
        ev->type = "error";
        ev->timestamp = c->entry_time;
        ev->item = e;
    }
    return WA_OK;
}

static enum wa_err
split_change(struct wa_webhook_batch *batch, struct change_ctx *c, const json_t *change)
{
    const json_t *value = json_object_get(change, "value");
    const json_t *metadata = json_object_get(value, "metadata");
    struct wa_webhook_event *ev;
    size_t before = batch->count;
    enum wa_err err;

    if (!json_is_object(change) || !json_is_object(value)) {
        batch->malformed++;
        return WA_OK;
    }
    c->field = wa_json_str(change, "field");
    c->phone_number_id = wa_json_str(metadata, "phone_number_id");
    c->display_phone_number = wa_json_str(metadata, "display_phone_number");
    if (c->field != NULL && strcmp(c->field, "messages") == 0) {
        if ((err = split_messages(batch, c, value)) != WA_OK ||
            (err = split_statuses(batch, c, value)) != WA_OK ||
            (err = split_errors(batch, c, value)) != WA_OK) {
            return err;
        }
        if (batch->count > before || json_array_size(json_object_get(value, "messages")) > 0 ||
            json_array_size(json_object_get(value, "statuses")) > 0 ||
            json_array_size(json_object_get(value, "errors")) > 0) {
            return WA_OK; /* events emitted, or only malformed items (already counted) */
        }
    }
    /* Any other field, or a "messages" value of a shape not known today: one account event. */
    if ((ev = push(batch, WA_WEBHOOK_ACCOUNT, c)) == NULL) {
        return WA_ENOMEM;
    }
    ev->type = wa_json_str(value, "event");
    ev->timestamp = c->entry_time;
    ev->item = value;
    return WA_OK;
}

enum wa_err
wa_webhook_split(const char *body, size_t len, struct wa_webhook_batch *batch,
                 struct wa_error *error)
{
    const json_t *entries, *entry, *changes, *change;
    struct change_ctx c;
    enum wa_err err;
    size_t i, j;

    WA_ASSERT(batch->root == NULL && batch->count == 0);
    err = wa_json_parse(body, len, WA_WEBHOOK_MAX_DEPTH, &batch->root, error);
    if (err != WA_OK) {
        return err;
    }
    if (!json_is_object(batch->root)) {
        err = wa_error_set(error, WA_EPARSE, "webhook body is not a JSON object");
        goto out;
    }
    entries = json_object_get(batch->root, "entry");
    if (!json_is_array(entries)) {
        err = wa_error_set(error, WA_EPARSE, "webhook body has no \"entry\" array");
        goto out;
    }
    json_array_foreach(entries, i, entry)
    {
        if (!json_is_object(entry)) {
            batch->malformed++;
            continue;
        }
        memset(&c, 0, sizeof(c));
        c.waba_id = wa_json_str(entry, "id");
        c.entry_time = wa_webhook_timestamp(json_object_get(entry, "time"));
        changes = json_object_get(entry, "changes");
        if (!json_is_array(changes)) {
            batch->malformed++;
            continue;
        }
        json_array_foreach(changes, j, change)
        {
            if ((err = split_change(batch, &c, change)) != WA_OK) {
                err = wa_error_set(error, err, "out of memory splitting the webhook");
                goto out;
            }
        }
    }
    return WA_OK;
out:
    wa_webhook_batch_cleanup(batch);
    return err;
}
