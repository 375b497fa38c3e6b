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

#include "wa/buf.h"
#include "wa/hex.h"
#include "wa/utf8.h"
#include "wa/whatsapp_webhook.h"

/* U+FFFD, what a string value jansson refuses is repaired to. */
#define REPLACEMENT_ESC  "\\ufffd"
#define REPLACEMENT_UTF8 "\xef\xbf\xbd"

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
    json_decref(batch->made);
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

/* obj[key] when it is a non-empty string: Meta sends "recipient_id": "" for BSUID recipients. */
static const char *
id_str(const json_t *obj, const char *key)
{
    const char *s = wa_json_str(obj, key);

    return s != NULL && *s != '\0' ? s : NULL;
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
        const char *from = id_str(msg, "from");
        const char *from_user_id = id_str(msg, "from_user_id");

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
            ev->contact = id_str(ev->profile, "wa_id");
            if (ev->contact == NULL) {
                ev->contact = id_str(ev->profile, "user_id");
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
        ev->contact = id_str(st, "recipient_id");
        if (ev->contact == NULL) {
            ev->contact = id_str(st, "recipient_user_id");
        }
        ev->participant = id_str(st, "recipient_participant_id");
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

/*
 * Fields whose value carries an array of items, each about one user (docs/cloud-api.md §5.4):
 * the array's member and how to find the user of an item.
 */
enum item_user { USER_WA_ID, USER_TO, USER_CALL, USER_RECIPIENT, USER_STATE_SYNC, USER_THREAD };

static const struct item_field {
    const char *field;
    const char *array;
    enum item_user user;
} item_fields[] = {
    {"user_preferences", "user_preferences", USER_WA_ID},
    {"smb_message_echoes", "message_echoes", USER_TO},
    {"calls", "calls", USER_CALL},
    {"calls", "statuses", USER_RECIPIENT},
    {"smb_app_state_sync", "state_sync", USER_STATE_SYNC},
    {"history", "history", USER_THREAD},
};

/* The user an item is about, or NULL. */
static const char *
item_user(const json_t *item, enum item_user how)
{
    const char *s = NULL, *dir;

    switch (how) {
    case USER_WA_ID:
        s = id_str(item, "wa_id");
        return s != NULL ? s : id_str(item, "user_id");
    case USER_TO:
        s = id_str(item, "to");
        return s != NULL ? s : id_str(item, "to_user_id");
    case USER_CALL: /* the user is the other end: "from" of a call the user placed */
        dir = wa_json_str(item, "direction");
        if (dir != NULL && strcmp(dir, "USER_INITIATED") == 0) {
            s = id_str(item, "from");
            return s != NULL ? s : id_str(item, "from_user_id");
        }
        s = id_str(item, "to");
        return s != NULL ? s : id_str(item, "to_user_id");
    case USER_RECIPIENT:
        s = id_str(item, "recipient_id");
        return s != NULL ? s : id_str(item, "recipient_user_id");
    case USER_STATE_SYNC:
        return id_str(json_object_get(item, "contact"), "phone_number");
    case USER_THREAD:
        return id_str(item, "id");
    }
    return NULL;
}

/* The contacts[] entry whose wa_id or user_id is user, or NULL. */
static const json_t *
contact_of(const json_t *contacts, const char *user)
{
    const json_t *c;
    size_t i;

    if (user == NULL || !json_is_array(contacts)) {
        return NULL;
    }
    json_array_foreach(contacts, i, c)
    {
        const char *wa_id = wa_json_str(c, "wa_id"), *user_id = wa_json_str(c, "user_id");

        if ((wa_id != NULL && strcmp(wa_id, user) == 0) ||
            (user_id != NULL && strcmp(user_id, user) == 0)) {
            return c;
        }
    }
    return NULL;
}

/* Returns a new reference: value with member set to [item], the field's other item arrays
 * left out (a call's event does not carry the calls' statuses) and contacts[] (when present)
 * reduced to the entry of user, or NULL when out of memory. */
static json_t *
value_with(const json_t *value, const char *field, const char *member, json_t *item,
           const char *user)
{
    json_t *v = json_copy((json_t *)value), *one = json_array(), *mine = NULL;
    const json_t *contacts = json_object_get(value, "contacts");
    const json_t *profile = contact_of(contacts, user);

    if (v == NULL || one == NULL || json_array_append(one, item) != 0 ||
        json_object_set(v, member, one) != 0) {
        goto fail;
    }
    for (size_t f = 0; f < sizeof(item_fields) / sizeof(item_fields[0]); f++) {
        if (strcmp(item_fields[f].field, field) == 0 && strcmp(item_fields[f].array, member) != 0) {
            (void)json_object_del(v, item_fields[f].array);
        }
    }
    if (contacts != NULL) {
        if ((mine = json_array()) == NULL ||
            (profile != NULL && json_array_append(mine, (json_t *)profile) != 0) ||
            json_object_set(v, "contacts", mine) != 0) {
            goto fail;
        }
    }
    json_decref(one);
    json_decref(mine);
    return v;
fail:
    json_decref(mine);
    json_decref(one);
    json_decref(v);
    return NULL;
}

/* Appends one account event for item (or a history thread) with made value v (taken). */
static enum wa_err
push_item(struct wa_webhook_batch *batch, const struct change_ctx *c, const json_t *value,
          const json_t *item, json_t *v, const char *user)
{
    struct wa_webhook_event *ev;
    int64_t ts = wa_webhook_timestamp(json_object_get(item, "timestamp"));

    if (v == NULL || json_array_append_new(batch->made, v) != 0 ||
        (ev = push(batch, WA_WEBHOOK_ACCOUNT, c)) == NULL) {
        return WA_ENOMEM;
    }
    ev->type = wa_json_str(item, "event");
    if (ev->type == NULL) {
        ev->type = wa_json_str(value, "event");
    }
    ev->timestamp = ts >= 0 ? ts : c->entry_time;
    ev->item = v;
    ev->contact = user;
    return WA_OK;
}

/* history: value.history[] items hold threads[], one per user; one event per thread. */
static enum wa_err
split_history(struct wa_webhook_batch *batch, const struct change_ctx *c, const json_t *value,
              const json_t *chunk)
{
    const json_t *threads = json_object_get(chunk, "threads");
    const json_t *thread;
    size_t i;

    if (!json_is_array(threads) || json_array_size(threads) == 0) {
        return push_item(batch, c, value, chunk,
                         value_with(value, c->field, "history", (json_t *)chunk, NULL), NULL);
    }
    json_array_foreach(threads, i, thread)
    {
        json_t *one = json_copy((json_t *)chunk), *list = json_array();
        enum wa_err err;

        if (!json_is_object(thread)) {
            batch->malformed++;
            json_decref(one);
            json_decref(list);
            continue;
        }
        if (one == NULL || list == NULL || json_array_append(list, (json_t *)thread) != 0) {
            json_decref(one);
            json_decref(list);
            return WA_ENOMEM;
        }
        if (json_object_set_new(one, "threads", list) != 0) { /* list released either way */
            json_decref(one);
            return WA_ENOMEM;
        }
        err = push_item(batch, c, value, thread, value_with(value, c->field, "history", one, NULL),
                        item_user(thread, USER_THREAD));
        json_decref(one);
        if (err != WA_OK) {
            return err;
        }
    }
    return WA_OK;
}

/* Splits value's item arrays per item when c->field is one of item_fields. Sets *done when it
 * emitted or counted anything; otherwise the change becomes one account event as usual. */
static enum wa_err
split_items(struct wa_webhook_batch *batch, const struct change_ctx *c, const json_t *value,
            bool *done)
{
    *done = false;
    for (size_t f = 0; f < sizeof(item_fields) / sizeof(item_fields[0]); f++) {
        const json_t *items = json_object_get(value, item_fields[f].array);
        const json_t *item;
        enum wa_err err;
        size_t i;

        if (strcmp(c->field, item_fields[f].field) != 0 || !json_is_array(items) ||
            json_array_size(items) == 0) {
            continue;
        }
        if (batch->made == NULL && (batch->made = json_array()) == NULL) {
            return WA_ENOMEM;
        }
        *done = true;
        json_array_foreach(items, i, item)
        {
            const char *user;

            if (!json_is_object(item)) {
                batch->malformed++;
                continue;
            }
            if (item_fields[f].user == USER_THREAD) {
                err = split_history(batch, c, value, item);
            } else {
                user = item_user(item, item_fields[f].user);
                err = push_item(
                    batch, c, value, item,
                    value_with(value, c->field, item_fields[f].array, (json_t *)item, user), user);
            }
            if (err != WA_OK) {
                return err;
            }
        }
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
    if (c->field != NULL && strcmp(c->field, "messages") != 0) {
        bool done;

        if ((err = split_items(batch, c, value, &done)) != WA_OK || done) {
            return err;
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

/* ---- repair: values jansson refuses (see the header comment) ---- */

/* Appends to out a copy of body (len bytes) with the repairs of the header comment; counts
 * them in *repairs. WA_ENOMEM, WA_ETOOBIG. */
static enum wa_err
repair(const char *body, size_t len, struct wa_buf *out, size_t *repairs)
{
    const unsigned char *p = (const unsigned char *)body;
    bool in_str = false;
    enum wa_err err = WA_OK;
    size_t i = 0, n;

    *repairs = 0;
    while (i < len && err == WA_OK) {
        unsigned char ch = p[i];

        if (!in_str) {
            in_str = ch == '"';
            if (ch != '-' && (ch < '0' || ch > '9')) {
                err = wa_buf_append(out, body + i++, 1);
                continue;
            }
            for (n = 1; i + n < len && strchr("0123456789+-.eE", body[i + n]) != NULL; n++) {
            }
            if (wa_json_number_too_big(body + i, n)) {
                (*repairs)++;
                err = wa_buf_printf(out, "\"%.*s\"", (int)n, body + i);
            } else {
                err = wa_buf_append(out, body + i, n);
            }
            i += n;
        } else if (ch == '"') {
            in_str = false;
            err = wa_buf_append(out, body + i++, 1);
        } else if (ch == '\\' && i + 6 <= len && p[i + 1] == 'u' &&
                   wa_hex4_value(body + i + 2) >= 0) {
            long cu = wa_hex4_value(body + i + 2);
            long lo = i + 12 <= len && p[i + 6] == '\\' && p[i + 7] == 'u'
                          ? wa_hex4_value(body + i + 8)
                          : -1;

            if (cu >= 0xd800 && cu <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) {
                err = wa_buf_append(out, body + i, 12); /* a valid pair */
                i += 12;
                continue;
            }
            if (cu == 0 || (cu >= 0xd800 && cu <= 0xdfff)) {
                (*repairs)++;
                err = wa_buf_append(out, REPLACEMENT_ESC, 6);
            } else {
                err = wa_buf_append(out, body + i, 6);
            }
            i += 6;
        } else if (ch == '\\') {
            n = i + 1 < len ? 2 : 1;
            err = wa_buf_append(out, body + i, n);
            i += n;
        } else if (ch < 0x20) {
            (*repairs)++;
            err = ch == 0 ? wa_buf_append(out, REPLACEMENT_ESC, 6)
                          : wa_buf_printf(out, "\\u%04x", (unsigned)ch);
            i++;
        } else if ((n = wa_utf8_next(p + i, len - i, NULL)) == 0) {
            (*repairs)++;
            err = wa_buf_append(out, REPLACEMENT_UTF8, 3);
            i++;
        } else {
            err = wa_buf_append(out, body + i, n);
            i += n;
        }
    }
    return err;
}

/* True when v (any JSON value) holds a string with U+FFFD. */
static bool
holds_replacement(const json_t *v)
{
    const char *key;
    json_t *m;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_STRING:
        return memmem(json_string_value(v), json_string_length(v), REPLACEMENT_UTF8, 3) != NULL;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, key, m)
        {
            if (holds_replacement(m) || memmem(key, strlen(key), REPLACEMENT_UTF8, 3) != NULL) {
                return true;
            }
        }
        return false;
    case JSON_ARRAY:
        json_array_foreach(v, i, m)
        {
            if (holds_replacement(m)) {
                return true;
            }
        }
        return false;
    default:
        return false;
    }
}

/* Parses body, or when jansson refuses it, its repaired copy (batch->repaired > 0 then). */
static enum wa_err
parse(const char *body, size_t len, struct wa_webhook_batch *batch, struct wa_error *error)
{
    struct wa_buf fixed;
    size_t repairs = 0;
    enum wa_err err = wa_json_parse(body, len, WA_WEBHOOK_MAX_DEPTH, &batch->root, error);

    if (err != WA_EPARSE) {
        return err;
    }
    wa_buf_init(&fixed, 2 * (size_t)len + 16);
    if (repair(body, len, &fixed, &repairs) == WA_OK && repairs > 0 &&
        wa_json_parse(fixed.data, fixed.len, WA_WEBHOOK_MAX_DEPTH, &batch->root, NULL) == WA_OK) {
        batch->repaired = repairs;
        err = WA_OK;
    }
    wa_buf_cleanup(&fixed);
    return err;
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
    if ((err = parse(body, len, batch, error)) != WA_OK) {
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
    for (i = 0; batch->repaired > 0 && i < batch->count; i++) {
        struct wa_webhook_event *ev = &batch->events[i];

        ev->repaired =
            holds_replacement(ev->item) || (ev->profile != NULL && holds_replacement(ev->profile));
    }
    return WA_OK;
out:
    wa_webhook_batch_cleanup(batch);
    return err;
}
