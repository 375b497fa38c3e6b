/*
 * webhooks.c: what Meta sends back (cloud-api.md §3): status updates (sent -> delivered -> read,
 * or failed with errors[]) for accepted messages and inbound messages of simulated users, as
 * signed webhook POSTs to WA_WEBHOOK_URL.
 *
 * Two min-heaps, both keyed by due time (monotonic ms) then sequence:
 *   events      updates not yet due (a status is due its configured delay after the send);
 *   deliveries  built POST bodies waiting for their (next) attempt.
 * A timer every WA_SIM_WEBHOOK_FLUSH pops the due events, batches the statuses of each number
 * into one body (at most WA_SIM_WEBHOOK_BATCH), serialises it as ASCII-only JSON (\u escapes,
 * lowercase hex: the form Meta signs), signs those exact bytes (X-Hub-Signature-256 with
 * WA_APP_SECRET) and queues it; then starts deliveries up to WA_SIM_WEBHOOK_CONCURRENCY. A
 * non-200 answer or a transport error re-queues the same bytes after retry_base * 2^(n-1) (capped),
 * until WA_SIM_WEBHOOK_RETRY_MAX_AGE after the first attempt (Meta: 7 days), then drops it.
 * Optional chaos: duplicate deliveries (WA_SIM_WEBHOOK_DUPLICATE_PCT) and read-before-delivered
 * reordering (WA_SIM_WEBHOOK_REORDER_PCT).
 *
 * Threading: loop thread only. Ownership: the module owns events and deliveries; a delivery in
 * flight is owned by its httpc call until the callback (or until wa_httpc_free cancels it).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudsim.h"
#include "wa/clock.h"
#include "wa/crypto.h"
#include "wa/hex.h"
#include "wa/httpc.h"
#include "wa/id.h"
#include "wa/list.h"
#include "wa/log.h"
#include "wa/utf8.h"
#include "wa/whatsapp_errors.h"

#define POP_MAX_PER_TICK 20000u

struct hnode {
    uint64_t due;
    uint64_t seq;
};

struct heap {
    struct hnode **items;
    size_t n, cap;
};

struct event {
    struct hnode h; /* first member: the heap orders by it */
    enum cs_event_kind kind;
    size_t number;
    char wamid[CS_WAMID_MAX];
    char wa_id[WA_WHATSAPP_WA_ID_MAX + 1];
    char *user_id; /* a send to a BSUID: recipient_user_id instead of recipient_id; a group's id */
    bool group;    /* a group send: recipient_type group, statuses per participant */
    enum cs_status status;
    int64_t code;
    bool pricing;
    bool free_window; /* free_customer_service although a template */
    bool value_level; /* a failure sent as value.errors[], not as a failed status */
    int version;      /* of the send: <= 23 carries the conversation object */
    uint64_t sent_s;  /* the send's wall time: the conversation's expiry is a day later */
    char category[24];
    char *biz;
    json_t *message; /* inbound */
    char *name;
};

struct delivery {
    struct hnode h;
    char *body;
    size_t len;
    char sig[WA_HUB_SIGNATURE_LEN];
    uint64_t first_ms;
    unsigned attempts;
    struct cs_webhooks *w;
    struct wa_list link; /* on w->inflight */
    struct wa_httpc_call *call;
};

struct cs_webhooks {
    struct cs_sim *sim;
    struct wa_httpc *http;
    struct wa_timer *timer;
    struct heap events;
    struct heap deliveries;
    struct wa_list inflight; /* struct delivery being sent */
    size_t ninflight;
    uint64_t seq;
    uint64_t rng;
    bool enabled;
};

/* ---- heap ---- */

static bool
before(const struct hnode *a, const struct hnode *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static enum wa_err
heap_push(struct heap *hp, struct hnode *x)
{
    size_t i;

    if (hp->n == hp->cap) {
        size_t cap = hp->cap == 0 ? 256 : hp->cap * 2;
        struct hnode **items = realloc(hp->items, cap * sizeof(*items));

        if (items == NULL) {
            return WA_ENOMEM;
        }
        hp->items = items;
        hp->cap = cap;
    }
    i = hp->n++;
    while (i > 0 && before(x, hp->items[(i - 1) / 2])) {
        hp->items[i] = hp->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    hp->items[i] = x;
    return WA_OK;
}

static struct hnode *
heap_pop(struct heap *hp)
{
    struct hnode *top, *last;
    size_t i = 0;

    if (hp->n == 0) {
        return NULL;
    }
    top = hp->items[0];
    last = hp->items[--hp->n];
    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= hp->n) {
            break;
        }
        if (c + 1 < hp->n && before(hp->items[c + 1], hp->items[c])) {
            c++;
        }
        if (!before(hp->items[c], last)) {
            break;
        }
        hp->items[i] = hp->items[c];
        i = c;
    }
    if (hp->n > 0) {
        hp->items[i] = last;
    }
    return top;
}

static const struct hnode *
heap_top(const struct heap *hp)
{
    return hp->n > 0 ? hp->items[0] : NULL;
}

/* ---- events ---- */

static uint64_t
rnd(struct cs_webhooks *w)
{
    /* xorshift64: chaos rolls need speed, not secrecy. */
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static bool
roll(struct cs_webhooks *w, int64_t pct)
{
    return pct >= 100 || (pct > 0 && (int64_t)(rnd(w) % 100) < pct);
}

static void
event_free(struct event *e)
{
    if (e != NULL) {
        free(e->biz);
        free(e->user_id);
        free(e->name);
        json_decref(e->message);
        free(e);
    }
}

static void
delivery_free(struct delivery *d)
{
    if (d != NULL) {
        free(d->body);
        free(d);
    }
}

static struct event *
status_event(struct cs_webhooks *w, const struct cs_record *rec, enum cs_status st, uint64_t delay,
             const char *category)
{
    struct event *e = calloc(1, sizeof(*e));

    if (e == NULL) {
        return NULL;
    }
    e->h.due = wa_loop_now(w->sim->loop) + delay;
    e->h.seq = ++w->seq;
    e->kind = CS_EV_STATUS;
    e->number = rec->number;
    e->status = st;
    snprintf(e->wamid, sizeof(e->wamid), "%s", rec->wamid);
    snprintf(e->wa_id, sizeof(e->wa_id), "%s", rec->wa_id);
    snprintf(e->category, sizeof(e->category), "%s", category);
    e->free_window = rec->free_window;
    e->version = rec->version;
    e->group = rec->group;
    e->sent_s = rec->time_ms / 1000;
    if ((rec->biz != NULL && (e->biz = strdup(rec->biz)) == NULL) ||
        (rec->wa_id[0] == '\0' && rec->to != NULL && (e->user_id = strdup(rec->to)) == NULL)) {
        event_free(e);
        return NULL;
    }
    if (heap_push(&w->events, &e->h) != WA_OK) {
        event_free(e);
        return NULL;
    }
    return e;
}

void
cs_webhooks_message(struct cs_webhooks *w, const struct cs_record *rec, const char *category,
                    int64_t failed_code, bool reaction)
{
    const struct cs_config *cfg = w->sim->cfg;
    struct cs_record *r = cs_sim_find(w->sim, rec->wamid);
    struct event *e;
    bool delivered, read;
    uint64_t d_delay = (uint64_t)cfg->delivered_delay_ms, r_delay = (uint64_t)cfg->read_delay_ms;

    if (failed_code != 0 && r != NULL) {
        /* The history shows the outcome at once, whether or not a webhook will say it. */
        r->status = CS_ST_FAILED;
        r->error_code = failed_code;
    }
    if (!w->enabled) {
        return;
    }
    if (failed_code != 0) {
        e = status_event(w, rec, CS_ST_FAILED, (uint64_t)cfg->sent_delay_ms, category);
        if (e != NULL) {
            e->code = failed_code;
        }
        return;
    }
    e = status_event(w, rec, CS_ST_SENT, (uint64_t)cfg->sent_delay_ms, category);
    if (e != NULL) {
        e->pricing = true;
    }
    if (reaction) {
        return; /* reactions only ever produce "sent" */
    }
    delivered = roll(w, cfg->delivered_pct);
    read = roll(w, cfg->read_pct);
    if (delivered && read && roll(w, cfg->reorder_pct)) {
        uint64_t t = d_delay;

        d_delay = r_delay;
        r_delay = t;
    }
    if (delivered) {
        e = status_event(w, rec, CS_ST_DELIVERED, d_delay, category);
        if (e != NULL) {
            e->pricing = true;
        }
    }
    if (read) {
        e = status_event(w, rec, CS_ST_READ, r_delay, category);
        if (e != NULL) {
            e->pricing = !delivered; /* read without delivered carries the pricing */
        }
    }
}

void
cs_webhooks_late_failure(struct cs_webhooks *w, const struct cs_record *rec, const char *category,
                         int64_t code, enum cs_status after, bool value_level)
{
    const struct cs_config *cfg = w->sim->cfg;
    struct cs_record *r = cs_sim_find(w->sim, rec->wamid);
    uint64_t last = (uint64_t)cfg->sent_delay_ms;
    struct event *e;

    if (r != NULL) {
        r->status = CS_ST_FAILED;
        r->error_code = code;
    }
    if (!w->enabled) {
        return;
    }
    if (after >= CS_ST_SENT && (e = status_event(w, rec, CS_ST_SENT, last, category)) != NULL) {
        e->pricing = true;
    }
    if (after >= CS_ST_DELIVERED) {
        last = (uint64_t)cfg->delivered_delay_ms;
        if ((e = status_event(w, rec, CS_ST_DELIVERED, last, category)) != NULL) {
            e->pricing = true;
        }
    }
    /* the failure comes after the statuses before it */
    e = status_event(w, rec, CS_ST_FAILED, last + (after >= CS_ST_SENT ? 100 : 0), category);
    if (e != NULL) {
        e->code = code;
        e->value_level = value_level;
    }
}

enum wa_err
cs_webhooks_inbound(struct cs_webhooks *w, size_t number, const json_t *message, const char *wa_id,
                    const char *name)
{
    struct event *e;

    if (!w->enabled) {
        return WA_OK;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return WA_ENOMEM;
    }
    e->h.due = wa_loop_now(w->sim->loop);
    e->h.seq = ++w->seq;
    e->kind = CS_EV_INBOUND;
    e->number = number;
    snprintf(e->wa_id, sizeof(e->wa_id), "%s", wa_id);
    e->message = json_deep_copy(message);
    e->name = name != NULL ? strdup(name) : NULL;
    if (e->message == NULL || (name != NULL && e->name == NULL) ||
        heap_push(&w->events, &e->h) != WA_OK) {
        event_free(e);
        return WA_ENOMEM;
    }
    if (w->timer != NULL) {
        wa_timer_start(w->timer, 0, (uint64_t)w->sim->cfg->flush_ms);
    }
    return WA_OK;
}

void
cs_webhooks_template_review(struct cs_webhooks *w, const char *name, const char *language,
                            uint64_t delay_ms)
{
    struct event *e = w->enabled ? calloc(1, sizeof(*e)) : NULL;

    if (e != NULL) {
        e->h.due = wa_loop_now(w->sim->loop) + delay_ms;
        e->h.seq = ++w->seq;
        e->kind = CS_EV_TEMPLATE;
        snprintf(e->category, sizeof(e->category), "%s", language);
        e->name = strdup(name);
        if (e->name != NULL && heap_push(&w->events, &e->h) == WA_OK) {
            if (w->timer != NULL) {
                wa_timer_start(w->timer, 0, (uint64_t)w->sim->cfg->flush_ms);
            }
            return;
        }
        event_free(e);
    }
    /* No delivery (or out of memory): the verdict without its webhook. */
    struct cs_template *tpl = cs_templates_get(&w->sim->templates, name, language);

    if (tpl != NULL) {
        snprintf(tpl->status, sizeof(tpl->status), "%s",
                 strncmp(name, "reject", 6) == 0 ? "REJECTED" : "APPROVED");
    }
}

/* ---- bodies ---- */

/* Appends text (compact UTF-8 JSON, len bytes) to out with every non-ASCII character as a
 * \uXXXX escape in lower-case hex (a surrogate pair past U+FFFF): the form Meta signs. Only
 * strings hold non-ASCII, so escaping outside any string context is safe. */
static enum wa_err
append_ascii(struct wa_buf *out, const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    enum wa_err err = WA_OK;
    size_t i = 0;

    while (i < len && err == WA_OK) {
        uint32_t cp;
        size_t n;

        if (p[i] < 0x80) {
            size_t run = i;

            while (run < len && p[run] < 0x80) {
                run++;
            }
            err = wa_buf_append(out, text + i, run - i);
            i = run;
            continue;
        }
        if ((n = wa_utf8_next(p + i, len - i, &cp)) == 0) {
            cp = 0xfffd; /* not reached: the writer only emits valid UTF-8 */
            n = 1;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            err =
                wa_buf_printf(out, "\\u%04x\\u%04x", 0xd800u + (cp >> 10), 0xdc00u + (cp & 0x3ffu));
        } else {
            err = wa_buf_printf(out, "\\u%04x", cp);
        }
        i += n;
    }
    return err;
}

/* The writer escapes control characters as "\\u001F"; Meta's hex is lower case. */
static void
lowercase_escapes(char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\\') {
            continue;
        }
        if (s[i + 1] == 'u' && i + 5 < len) {
            for (size_t k = i + 2; k < i + 6; k++) {
                if (s[k] >= 'A' && s[k] <= 'F') {
                    s[k] = (char)(s[k] - 'A' + 'a');
                }
            }
            i += 5;
        } else {
            i++; /* skip the escaped character (e.g. "\\u" is not an escape) */
        }
    }
}

/* Serialises root (taken) as Meta does: compact, reals as written (wa_json_dump), ASCII-only
 * with lower-case escapes; signs exactly those bytes. */
static enum wa_err
finish_body(const struct cs_sim *sim, json_t *root, struct wa_buf *out,
            char sig[WA_HUB_SIGNATURE_LEN])
{
    char *text = wa_json_dump(root);
    size_t start = out->len;
    enum wa_err err;

    json_decref(root);
    if (text == NULL) {
        return WA_ENOMEM;
    }
    err = append_ascii(out, text, strlen(text));
    free(text);
    if (err != WA_OK) {
        return wa_buf_rollback(out, start, err);
    }
    lowercase_escapes(out->data + start, out->len - start);
    wa_hub_signature_make(sim->cfg->app_secret, out->data + start, out->len - start, sig);
    return WA_OK;
}

enum wa_err
cs_webhooks_build(const struct cs_sim *sim, size_t number, json_t *items, const char *items_key,
                  json_t *contacts, struct wa_buf *out, char sig[WA_HUB_SIGNATURE_LEN])
{
    const struct cs_number *num = &sim->numbers[number];
    json_t *root, *value;

    value = json_pack("{s:s, s:{s:s, s:s}}", "messaging_product", "whatsapp", "metadata",
                      "display_phone_number", num->display, "phone_number_id", num->id);
    if (value == NULL) {
        return WA_ENOMEM;
    }
    if ((contacts != NULL && json_object_set(value, "contacts", contacts) != 0) ||
        json_object_set(value, items_key, items) != 0) {
        json_decref(value);
        return WA_ENOMEM;
    }
    root =
        json_pack("{s:s, s:[{s:s, s:[{s:o, s:s}]}]}", "object", "whatsapp_business_account",
                  "entry", "id", sim->cfg->waba_id, "changes", "value", value, "field", "messages");
    if (root == NULL) {
        return WA_ENOMEM;
    }
    return finish_body(sim, root, out, sig);
}

/* The legacy conversation object (cloud-api.md §3.6), sent by API versions up to v23 on
 * `sent` (with its expiry) and on the delivered/read that carries the pricing. The id is per
 * message: the first 32 hex digits of the wamid's SHA-256. */
static json_t *
conversation_json(const struct event *e)
{
    unsigned char digest[WA_SHA256_LEN];
    char id[2 * WA_SHA256_LEN + 1], exp[24];
    json_t *c;

    wa_sha256(e->wamid, strlen(e->wamid), digest);
    wa_hex_encode(digest, sizeof(digest), id);
    id[32] = '\0';
    c = json_pack("{s:s}", "id", id);
    if (c != NULL && e->status == CS_ST_SENT) {
        snprintf(exp, sizeof(exp), "%" PRIu64, e->sent_s + 86400);
        json_object_set_new(c, "expiration_timestamp", json_string(exp));
    }
    if (c != NULL) {
        json_object_set_new(c, "origin", json_pack("{s:s}", "type", e->category));
    }
    return c;
}

static json_t *
status_json(const struct event *e, uint64_t wall_s)
{
    char ts[24];
    json_t *st;

    snprintf(ts, sizeof(ts), "%" PRIu64, wall_s);
    st = json_pack("{s:s, s:s, s:s}", "id", e->wamid, "status", cs_status_name(e->status),
                   "timestamp", ts);
    if (st == NULL) {
        return NULL;
    }
    /* A send to a BSUID is reported by recipient_user_id; recipient_id is then absent. A
     * group's statuses name the group (and, per participant, recipient_participant_id). */
    if (e->group) {
        json_object_set_new(st, "recipient_id", json_string(e->user_id));
        json_object_set_new(st, "recipient_type", json_string("group"));
    } else if (e->user_id != NULL) {
        json_object_set_new(st, "recipient_user_id", json_string(e->user_id));
    } else {
        json_object_set_new(st, "recipient_id", json_string(e->wa_id));
    }
    if (e->biz != NULL) {
        json_object_set_new(st, "biz_opaque_callback_data", json_string(e->biz));
    }
    if (e->pricing && e->status != CS_ST_FAILED) {
        bool free = strcmp(e->category, "service") == 0 || e->free_window;

        if (e->version > 0 && e->version <= 23) {
            json_object_set_new(st, "conversation", conversation_json(e));
        }
        json_object_set_new(st, "pricing",
                            json_pack("{s:b, s:s, s:s, s:s}", "billable", !free, "pricing_model",
                                      "PMP", "type", free ? "free_customer_service" : "regular",
                                      "category", e->category));
    }
    if (e->status == CS_ST_FAILED) {
        struct wa_buf b;
        json_t *errobj = NULL;

        wa_buf_init(&b, 0);
        if (wa_whatsapp_error_webhook_json(&b, e->code, NULL) == WA_OK) {
            errobj = json_loadb(b.data, b.len, 0, NULL);
        }
        wa_buf_cleanup(&b);
        if (errobj != NULL) {
            json_object_set_new(st, "errors", json_pack("[o]", errobj));
        }
    }
    return st;
}

static void emit(struct cs_webhooks *w, size_t number, json_t *items, const char *key,
                 json_t *contacts);
static void emit_account(struct cs_webhooks *w, const char *field, json_t *value);

/* A template review comes due: the verdict, then its message_template_status_update. */
static void
review_due(struct cs_webhooks *w, const struct event *e)
{
    struct cs_template *tpl = cs_templates_get(&w->sim->templates, e->name, e->category);
    bool reject = strncmp(e->name, "reject", 6) == 0;
    json_t *value;

    if (tpl == NULL || strcmp(tpl->status, "PENDING") != 0) {
        return; /* replaced or deleted meanwhile */
    }
    snprintf(tpl->status, sizeof(tpl->status), "%s", reject ? "REJECTED" : "APPROVED");
    value =
        json_pack("{s:s, s:I, s:s, s:s, s:s, s:s}", "event", tpl->status, "message_template_id",
                  (json_int_t)strtoll(tpl->id, NULL, 10), "message_template_name", tpl->name,
                  "message_template_language", tpl->language, "reason",
                  reject ? "INVALID_FORMAT" : "NONE", "message_template_category", tpl->category);
    if (value != NULL && reject) {
        json_object_set_new(value, "rejection_info",
                            json_pack("{s:s, s:s}", "reason", "The template's format is invalid.",
                                      "recommendation", "Review the template guidelines."));
    }
    if (value != NULL) {
        emit_account(w, "message_template_status_update", value);
    }
}

static void pump(struct cs_webhooks *w);

static void
queue_body(struct cs_webhooks *w, struct wa_buf *body, const char *sig, int copies)
{
    uint64_t now = wa_loop_now(w->sim->loop);

    if (!w->sim->subscribed) { /* DELETE subscribed_apps: Meta sends this app nothing */
        w->sim->stats.webhooks_dropped += (uint64_t)copies;
        return;
    }
    for (int i = 0; i < copies; i++) {
        struct delivery *d;

        if (w->deliveries.n >= (size_t)w->sim->cfg->webhook_queue_max) {
            w->sim->stats.webhooks_dropped++;
            continue;
        }
        d = calloc(1, sizeof(*d));
        if (d == NULL) {
            w->sim->stats.webhooks_dropped++;
            continue;
        }
        d->body = malloc(body->len + 1);
        if (d->body == NULL) {
            free(d);
            w->sim->stats.webhooks_dropped++;
            continue;
        }
        memcpy(d->body, body->data, body->len + 1);
        d->len = body->len;
        memcpy(d->sig, sig, sizeof(d->sig));
        d->w = w;
        d->first_ms = now;
        d->h.due = now;
        d->h.seq = ++w->seq;
        if (heap_push(&w->deliveries, &d->h) != WA_OK) {
            delivery_free(d);
            w->sim->stats.webhooks_dropped++;
        }
    }
}

static void
emit(struct cs_webhooks *w, size_t number, json_t *items, const char *key, json_t *contacts)
{
    struct wa_buf body;
    char sig[WA_HUB_SIGNATURE_LEN];

    wa_buf_init(&body, 0);
    if (cs_webhooks_build(w->sim, number, items, key, contacts, &body, sig) == WA_OK) {
        queue_body(w, &body, sig, roll(w, w->sim->cfg->duplicate_pct) ? 2 : 1);
    } else {
        w->sim->stats.webhooks_dropped++;
    }
    wa_buf_cleanup(&body);
}

/* A webhook of a field other than messages: entry time, no metadata. Takes value. */
static void
emit_account(struct cs_webhooks *w, const char *field, json_t *value)
{
    const struct cs_sim *sim = w->sim;
    struct wa_buf body;
    char sig[WA_HUB_SIGNATURE_LEN];
    json_t *root =
        json_pack("{s:s, s:[{s:s, s:I, s:[{s:o, s:s}]}]}", "object", "whatsapp_business_account",
                  "entry", "id", sim->cfg->waba_id, "time", (json_int_t)(wa_clock_wall_ms() / 1000),
                  "changes", "value", value, "field", field);

    wa_buf_init(&body, 0);
    if (root != NULL && finish_body(sim, root, &body, sig) == WA_OK) {
        queue_body(w, &body, sig, 1);
    } else {
        w->sim->stats.webhooks_dropped++;
    }
    wa_buf_cleanup(&body);
}

/* Raises the history's status; never downgrades (read stays read if delivered comes late). */
static void
note_status(struct cs_sim *sim, const struct event *e)
{
    struct cs_record *r = cs_sim_find(sim, e->wamid);

    if (r == NULL || r->status == CS_ST_FAILED) {
        return;
    }
    if (e->status == CS_ST_FAILED || e->status > r->status) {
        r->status = e->status;
        r->error_code = e->code;
    }
}

static void
flush_events(struct cs_webhooks *w)
{
    struct cs_sim *sim = w->sim;
    uint64_t now = wa_loop_now(sim->loop), wall_s = wa_clock_wall_ms() / 1000;
    json_t **batches = calloc(sim->nnumbers, sizeof(*batches));
    unsigned popped = 0;

    if (batches == NULL) {
        return;
    }
    while (popped < POP_MAX_PER_TICK && heap_top(&w->events) != NULL &&
           heap_top(&w->events)->due <= now) {
        struct event *e = (struct event *)heap_pop(&w->events);

        popped++;
        sim->stats.events++;
        if (e->kind == CS_EV_TEMPLATE) {
            review_due(w, e);
        } else if (e->kind == CS_EV_INBOUND) {
            const char *type = wa_json_str(e->message, "type");
            /* System messages (user_changed_number...) come without a contacts block. */
            json_t *contacts =
                type != NULL && strcmp(type, "system") == 0
                    ? NULL
                    : json_pack("[{s:{s:s?}, s:s}]", "profile", "name", e->name, "wa_id", e->wa_id);
            json_t *msgs = json_pack("[O]", e->message);

            if (msgs != NULL) {
                emit(w, e->number, msgs, "messages", contacts);
            }
            json_decref(contacts);
            json_decref(msgs);
        } else if (e->value_level) {
            json_t *st = status_json(e, wall_s), *errors = json_object_get(st, "errors");

            note_status(sim, e);
            if (errors != NULL) {
                emit(w, e->number, errors, "errors", NULL);
            }
            json_decref(st);
        } else {
            json_t *st = status_json(e, wall_s);
            const json_t *members =
                e->group && (e->status == CS_ST_DELIVERED || e->status == CS_ST_READ)
                    ? cs_sim_group(sim, e->user_id)
                    : NULL;

            note_status(sim, e);
            if (st != NULL) {
                if (batches[e->number] == NULL) {
                    batches[e->number] = json_array();
                }
                for (size_t k = 0; k < json_array_size(members); k++) {
                    json_t *one = json_copy(st);

                    if (one != NULL) { /* delivered/read: one per participant */
                        json_object_set(one, "recipient_participant_id",
                                        json_array_get(members, k));
                        json_array_append_new(batches[e->number], one);
                    }
                }
                if (json_array_size(members) == 0) {
                    json_array_append(batches[e->number], st);
                }
                json_decref(st);
                if (json_array_size(batches[e->number]) >= (size_t)sim->cfg->batch_max) {
                    emit(w, e->number, batches[e->number], "statuses", NULL);
                    json_decref(batches[e->number]);
                    batches[e->number] = NULL;
                }
            }
        }
        event_free(e);
    }
    for (size_t i = 0; i < sim->nnumbers; i++) {
        if (batches[i] != NULL) {
            emit(w, i, batches[i], "statuses", NULL);
            json_decref(batches[i]);
        }
    }
    free(batches);
}

/* ---- delivery ---- */

static void
inflight_remove(struct cs_webhooks *w, struct delivery *d)
{
    wa_list_remove(&d->link);
    w->ninflight--;
}

static void
on_delivered(const struct wa_httpc_result *res, void *arg)
{
    struct delivery *d = arg;
    struct cs_webhooks *w = d->w;
    const struct cs_config *cfg = w->sim->cfg;
    uint64_t now = wa_loop_now(w->sim->loop), delay;

    inflight_remove(w, d);
    d->call = NULL;
    if (res->err == WA_OK && res->status == 200) {
        w->sim->stats.webhooks_sent++;
        delivery_free(d);
        pump(w);
        return;
    }
    w->sim->stats.webhook_failures++;
    /* Growing delays: base, 2 base, 4 base, ... capped at an eighth of the maximum age. */
    delay = (uint64_t)cfg->retry_base_ms << (d->attempts > 20 ? 20 : d->attempts - 1);
    if (delay > (uint64_t)cfg->retry_max_age_ms / 8 &&
        (uint64_t)cfg->retry_max_age_ms / 8 >= (uint64_t)cfg->retry_base_ms) {
        delay = (uint64_t)cfg->retry_max_age_ms / 8;
    }
    if (now + delay > d->first_ms + (uint64_t)cfg->retry_max_age_ms) {
        wa_log_warn(NULL, "webhook dropped after %u attempts (last: %ld %s)", d->attempts,
                    res->status, res->message);
        w->sim->stats.webhooks_dropped++;
        delivery_free(d);
        pump(w);
        return;
    }
    d->h.due = now + delay;
    d->h.seq = ++w->seq;
    if (heap_push(&w->deliveries, &d->h) != WA_OK) {
        w->sim->stats.webhooks_dropped++;
        delivery_free(d);
    }
    pump(w);
}

static void
pump(struct cs_webhooks *w)
{
    const struct cs_config *cfg = w->sim->cfg;
    uint64_t now = wa_loop_now(w->sim->loop);

    while (w->ninflight < (size_t)cfg->webhook_concurrency && heap_top(&w->deliveries) != NULL &&
           heap_top(&w->deliveries)->due <= now) {
        struct delivery *d = (struct delivery *)heap_pop(&w->deliveries);
        struct wa_httpc_header headers[] = {
            {"Content-Type", "application/json"},
            {"X-Hub-Signature-256", d->sig},
            {"User-Agent", "facebookexternalua"},
        };
        struct wa_httpc_request rq = {
            .method = "POST",
            .url = cfg->webhook_url,
            .headers = headers,
            .nheaders = WA_ARRAY_LEN(headers),
            .body = d->body,
            .body_len = d->len,
            .body_borrowed = true,
            .timeout_ms = (unsigned)cfg->webhook_timeout_ms,
            .max_response = 64 * 1024,
        };
        struct wa_error error;

        d->attempts++;
        w->sim->stats.webhook_attempts++;
        wa_list_push_back(&w->inflight, &d->link);
        w->ninflight++;
        if (wa_httpc_send(w->http, &rq, on_delivered, d, &d->call, &error) != WA_OK) {
            inflight_remove(w, d);
            w->sim->stats.webhook_failures++;
            wa_log_error(NULL, "webhook not sent: %s", error.message);
            d->h.due = now + (uint64_t)cfg->retry_base_ms;
            d->h.seq = ++w->seq;
            if (heap_push(&w->deliveries, &d->h) != WA_OK) {
                delivery_free(d);
            }
            break;
        }
    }
}

static void
on_tick(struct wa_timer *t, void *arg)
{
    struct cs_webhooks *w = arg;

    (void)t;
    flush_events(w);
    pump(w);
}

/* ---- life ---- */

enum wa_err
cs_webhooks_new(struct cs_sim *sim, struct cs_webhooks **out, struct wa_error *error)
{
    struct cs_webhooks *w = calloc(1, sizeof(*w));
    enum wa_err err;

    *out = NULL;
    if (w == NULL) {
        return wa_error_set(error, WA_ENOMEM, "webhooks");
    }
    w->sim = sim;
    wa_list_init(&w->inflight);
    (void)wa_random_bytes(&w->rng, sizeof(w->rng));
    w->rng |= 1;
    w->enabled = sim->cfg->webhook_url != NULL && sim->cfg->webhook_url[0] != '\0';
    if (w->enabled) {
        struct wa_httpc_config hc = {
            .max_connections = (unsigned)sim->cfg->webhook_concurrency,
            .max_per_host = (unsigned)sim->cfg->webhook_concurrency,
            .timeout_ms = (unsigned)sim->cfg->webhook_timeout_ms,
            .user_agent = "facebookexternalua",
        };

        if ((err = wa_httpc_new(sim->loop, &hc, &w->http, error)) != WA_OK) {
            free(w);
            return err;
        }
        w->timer = wa_timer_new(sim->loop, on_tick, w);
        if (w->timer == NULL) {
            wa_httpc_free(w->http);
            free(w);
            return wa_error_set(error, WA_ENOMEM, "webhook timer");
        }
        wa_timer_start(w->timer, (uint64_t)sim->cfg->flush_ms, (uint64_t)sim->cfg->flush_ms);
    }
    *out = w;
    return WA_OK;
}

static void
drain_heaps(struct cs_webhooks *w)
{
    struct hnode *h;

    while ((h = heap_pop(&w->events)) != NULL) {
        event_free((struct event *)h);
    }
    while ((h = heap_pop(&w->deliveries)) != NULL) {
        delivery_free((struct delivery *)h);
    }
}

void
cs_webhooks_reset(struct cs_webhooks *w)
{
    struct wa_list *it;

    drain_heaps(w);
    /* Calls in flight are cancelled: their bodies belong to the old state. */
    while ((it = wa_list_first(&w->inflight)) != NULL) {
        struct delivery *d = WA_LIST_ENTRY(it, struct delivery, link);

        inflight_remove(w, d);
        if (d->call != NULL) {
            wa_httpc_call_cancel(d->call);
        }
        delivery_free(d);
    }
}

void
cs_webhooks_free(struct cs_webhooks *w)
{
    if (w == NULL) {
        return;
    }
    wa_timer_free(w->timer);
    cs_webhooks_reset(w);
    wa_httpc_free(w->http);
    free(w->events.items);
    free(w->deliveries.items);
    free(w);
}

enum wa_err
cs_webhooks_stats(const struct cs_webhooks *w, struct wa_buf *out)
{
    return wa_buf_printf(out,
                         "{\"enabled\":%s,\"pending_events\":%zu,\"queued\":%zu,"
                         "\"inflight\":%zu}",
                         w->enabled ? "true" : "false", w->events.n, w->deliveries.n, w->ninflight);
}
