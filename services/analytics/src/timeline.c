/*
 * timeline.c: the state machine of one message and the MongoDB update that applies one event
 * to its document (pure).
 *
 * A message document (collection "messages"):
 *   {_id, request_id, wamid, rank, at (earliest time seen), t: {<state>: first time},
 *    phone_number_id, contact, country, type, template, category,
 *    pricing: {category, type, billable}, error: {code, title, details}, reason,
 *    p: {<participant>: {rank, t: {<state>: first time}}}}
 * Each event becomes $min of its state's time (first time kept), $max of rank (never
 * regresses; failed ranks highest, so a late failure after delivered is the final state while
 * the delivered time stays), $set of attributes that are the same in every copy of the event.
 * Every operator is idempotent and $min/$max commute: a redelivered event changes nothing and
 * the order of events does not matter, which is what makes the consumer's writes safe to
 * repeat after a crash (README.md, "Guarantees").
 */
#include <stdio.h>
#include <string.h>

#include "analytics.h"
#include "wa/clock.h"

static const char *const state_names[AN_NSTATES] = {
    "requested", "accepted", "sent", "delivered", "read", "failed",
};

const char *
an_state_name(enum an_state s)
{
    return (unsigned)s < AN_NSTATES ? state_names[s] : NULL;
}

bool
an_state_parse(const char *name, enum an_state *out)
{
    for (size_t i = 0; name != NULL && i < AN_NSTATES; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (enum an_state)i;
            return true;
        }
    }
    return false;
}

void
an_timeline_init(struct an_timeline *tl)
{
    memset(tl, 0, sizeof(*tl));
    tl->rank = -1;
}

void
an_timeline_apply(struct an_timeline *tl, enum an_state s, int64_t t, const struct an_error *error)
{
    if ((unsigned)s >= AN_NSTATES) {
        return;
    }
    if (tl->at[s] == 0 || t < tl->at[s]) {
        tl->at[s] = t;
    }
    if ((int)s > tl->rank) {
        tl->rank = (int)s;
    }
    if (s == AN_FAILED && error != NULL) {
        tl->error = *error;
    }
}

enum an_state
an_timeline_state(const struct an_timeline *tl)
{
    return tl->rank < 0 ? AN_REQUESTED : (enum an_state)tl->rank;
}

/* Participant ids become field names: digits and letters only. */
static bool
field_safe(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-')) {
            return false;
        }
    }
    return n > 0 && n <= 64;
}

static int
set_str(json_t *o, const char *key, const char *v)
{
    return v != NULL ? json_object_set_new(o, key, json_string(v)) : 0;
}

enum wa_err
an_timeline_update(const struct an_event *ev, json_t **out)
{
    json_t *u = json_object(), *min = json_object(), *max = json_object(), *set = json_object(),
           *ins = json_object();
    const char *sname = an_state_name(ev->state);
    char path[128];
    int bad = 0;

    *out = NULL;
    if (u == NULL || min == NULL || max == NULL || set == NULL || ins == NULL) {
        json_decref(u);
        json_decref(min);
        json_decref(max);
        json_decref(set);
        json_decref(ins);
        return WA_ENOMEM;
    }
    bad |= json_object_set_new(u, "$min", min);
    bad |= json_object_set_new(u, "$max", max);
    bad |= json_object_set_new(u, "$set", set);
    bad |= json_object_set_new(u, "$setOnInsert", ins);
    if (ev->id == NULL || ev->id[0] == '\0' || sname == NULL) {
        json_decref(u);
        return WA_EINVAL;
    }
    if (ev->participant != NULL && field_safe(ev->participant)) {
        /* A group message: the participant's own timeline; the message's counts once. */
        snprintf(path, sizeof(path), "p.%s.t.%s", ev->participant, sname);
        bad |= json_object_set_new(min, path, json_integer(ev->at_ms));
        snprintf(path, sizeof(path), "p.%s.rank", ev->participant);
        bad |= json_object_set_new(max, path, json_integer((json_int_t)ev->state));
    }
    snprintf(path, sizeof(path), "t.%s", sname);
    bad |= json_object_set_new(min, path, json_integer(ev->at_ms));
    bad |= json_object_set_new(min, "at", json_integer(ev->at_ms));
    bad |= json_object_set_new(max, "rank", json_integer((json_int_t)ev->state));
    bad |= set_str(set, "request_id", ev->request_id);
    bad |= set_str(set, "wamid", ev->wamid);
    bad |= set_str(set, "phone_number_id", ev->phone_number_id);
    bad |= set_str(set, "type", ev->type);
    bad |= set_str(set, "template", ev->template_name);
    bad |= set_str(set, "category", ev->category);
    bad |= set_str(set, "reason", ev->reason);
    /* Personal data is written once, so an erasure (pseudonymisation) is never undone by a
     * later event of the same message. */
    bad |= set_str(ins, "contact", ev->contact);
    bad |= set_str(set, "country", ev->country);
    if (ev->pricing_category != NULL || ev->pricing_type != NULL) {
        bad |= set_str(set, "pricing.category", ev->pricing_category);
        bad |= set_str(set, "pricing.type", ev->pricing_type);
        if (ev->pricing_billable >= 0) {
            bad |= json_object_set_new(set, "pricing.billable",
                                       json_boolean(ev->pricing_billable > 0));
        }
    }
    if (ev->state == AN_FAILED && ev->error != NULL) {
        json_t *e = json_object();

        bad |= json_object_set_new(set, "error", e);
        bad |= e == NULL;
        if (e != NULL) {
            bad |= json_object_set_new(
                e, "code", ev->error->has_code ? json_integer(ev->error->code) : json_null());
            bad |= json_object_set_new(e, "title", json_string(ev->error->title));
            bad |= json_object_set_new(e, "details", json_string(ev->error->details));
        }
    }
    if (json_object_size(ins) == 0) {
        json_object_del(u, "$setOnInsert");
    }
    if (json_object_size(set) == 0) {
        json_object_del(u, "$set");
    }
    if (bad) {
        json_decref(u);
        return WA_ENOMEM;
    }
    *out = u;
    return WA_OK;
}

static int64_t
int_at(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    if (json_is_integer(v)) {
        return json_integer_value(v);
    }
    if (json_is_real(v)) {
        return (int64_t)json_real_value(v);
    }
    return 0;
}

void
an_timeline_from_doc(const json_t *doc, struct an_timeline *tl)
{
    const json_t *t = json_object_get(doc, "t"), *err = json_object_get(doc, "error");
    const json_t *rank = json_object_get(doc, "rank");

    an_timeline_init(tl);
    for (size_t i = 0; i < AN_NSTATES; i++) {
        tl->at[i] = int_at(t, state_names[i]);
    }
    tl->rank = json_is_number(rank) ? (int)json_number_value(rank) : -1;
    if (json_is_object(err)) {
        const json_t *code = json_object_get(err, "code");
        const char *title = json_string_value(json_object_get(err, "title"));
        const char *details = json_string_value(json_object_get(err, "details"));

        tl->error.has_code = json_is_integer(code);
        tl->error.code = json_is_integer(code) ? json_integer_value(code) : 0;
        snprintf(tl->error.title, sizeof(tl->error.title), "%s", title != NULL ? title : "");
        snprintf(tl->error.details, sizeof(tl->error.details), "%s",
                 details != NULL ? details : "");
    }
}

/* RFC 3339 with milliseconds, UTC. */
static json_t *
time_json(int64_t ms)
{
    char s[WA_RFC3339_LEN];

    if (ms < 0) {
        return json_null();
    }
    wa_clock_rfc3339((uint64_t)ms, s);
    return json_string(s);
}

static json_t *
states_json(const json_t *t)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < AN_NSTATES; i++) {
        int64_t ms = int_at(t, state_names[i]);

        if (ms > 0) {
            json_t *s = json_pack("{s:s, s:o, s:I}", "state", state_names[i], "at", time_json(ms),
                                  "at_ms", (json_int_t)ms);
            if (s == NULL || json_array_append_new(a, s) != 0) {
                json_decref(a);
                return NULL;
            }
        }
    }
    return a;
}

json_t *
an_timeline_view(const json_t *doc)
{
    struct an_timeline tl;
    json_t *v, *parts;
    const char *keys[] = {"request_id", "wamid",    "phone_number_id", "contact", "country",
                          "type",       "template", "category",        "reason"};
    const char *pid;
    json_t *p;

    an_timeline_from_doc(doc, &tl);
    v = json_pack("{s:O?, s:s, s:o?}", "id", json_object_get(doc, "_id"), "state",
                  state_names[an_timeline_state(&tl)], "states",
                  states_json(json_object_get(doc, "t")));
    if (v == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const json_t *x = json_object_get(doc, keys[i]);
        (void)json_object_set_new(v, keys[i], x != NULL ? json_deep_copy(x) : json_null());
    }
    (void)json_object_set_new(v, "error",
                              json_is_object(json_object_get(doc, "error"))
                                  ? json_deep_copy(json_object_get(doc, "error"))
                                  : json_null());
    (void)json_object_set_new(v, "pricing",
                              json_is_object(json_object_get(doc, "pricing"))
                                  ? json_deep_copy(json_object_get(doc, "pricing"))
                                  : json_null());
    (void)json_object_set_new(v, "late_failure",
                              json_boolean(tl.at[AN_FAILED] != 0 && tl.at[AN_DELIVERED] != 0));
    parts = json_object();
    json_object_foreach((json_t *)json_object_get(doc, "p"), pid, p)
    {
        const json_t *r = json_object_get(p, "rank");
        int rank = json_is_integer(r) ? (int)json_integer_value(r) : 0;

        (void)json_object_set_new(parts, pid,
                                  json_pack("{s:s, s:o?}", "state",
                                            state_names[rank >= 0 && rank < AN_NSTATES ? rank : 0],
                                            "states", states_json(json_object_get(p, "t"))));
    }
    (void)json_object_set_new(v, "participants", parts);
    return v;
}

/* $min/$max keep the extreme value; $set takes from's (the later event); $setOnInsert keeps
 * into's (the first). */
enum wa_err
an_update_merge(json_t *into, const json_t *from)
{
    static const char *const ops[] = {"$min", "$max", "$set", "$setOnInsert"};

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        const json_t *src = json_object_get(from, ops[i]);
        json_t *dst = json_object_get(into, ops[i]), *v;
        const char *key;

        if (src == NULL) {
            continue;
        }
        if (dst == NULL) {
            if (json_object_set_new(into, ops[i], dst = json_object()) != 0) {
                return WA_ENOMEM;
            }
        }
        json_object_foreach((json_t *)src, key, v)
        {
            const json_t *old = json_object_get(dst, key);
            bool take = old == NULL || i == 2 ||
                        (i == 0 && json_integer_value(v) < json_integer_value(old)) ||
                        (i == 1 && json_integer_value(v) > json_integer_value(old));

            if (take && json_object_set(dst, key, v) != 0) {
                return WA_ENOMEM;
            }
        }
    }
    return WA_OK;
}

/* The object holding the last segment of a dotted path in doc, created on the way when create;
 * NULL when a segment is not an object (or missing without create). *leaf: the last segment. */
static json_t *
path_parent(json_t *doc, const char *path, bool create, char *leaf, size_t size)
{
    json_t *o = doc;
    const char *seg = path, *dot;

    while ((dot = strchr(seg, '.')) != NULL) {
        char key[128];
        json_t *next;

        snprintf(key, sizeof(key), "%.*s", (int)(dot - seg), seg);
        if ((next = json_object_get(o, key)) == NULL && create) {
            if (json_object_set_new(o, key, next = json_object()) != 0) {
                return NULL;
            }
        }
        if (!json_is_object(next)) {
            return NULL;
        }
        o = next;
        seg = dot + 1;
    }
    snprintf(leaf, size, "%s", seg);
    return o;
}

/* MongoDB's $min/$max/$set/$setOnInsert/$inc on dotted paths, for the values the consumer
 * writes (numbers and plain values): $min/$max set a missing or non-number field. */
enum wa_err
an_update_apply(json_t *doc, const json_t *update, bool inserting)
{
    static const char *const ops[] = {"$min", "$max", "$set", "$setOnInsert", "$inc"};

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        const json_t *src = json_object_get(update, ops[i]);
        const char *key;
        json_t *v;

        if (src == NULL || (i == 3 && !inserting)) {
            continue;
        }
        json_object_foreach((json_t *)src, key, v)
        {
            char leaf[128];
            json_t *o = path_parent(doc, key, true, leaf, sizeof(leaf));
            const json_t *old;
            bool take;

            if (o == NULL) {
                return WA_EINVAL;
            }
            old = json_object_get(o, leaf);
            if (i == 4) {
                json_int_t sum =
                    (json_is_integer(old) ? json_integer_value(old) : 0) + json_integer_value(v);

                if (json_object_set_new(o, leaf, json_integer(sum)) != 0) {
                    return WA_ENOMEM;
                }
                continue;
            }
            take = i >= 2 || !json_is_number(old) ||
                   (i == 0 && json_number_value(v) < json_number_value(old)) ||
                   (i == 1 && json_number_value(v) > json_number_value(old));
            if (take && json_object_set_new(o, leaf, json_deep_copy(v)) != 0) {
                return WA_ENOMEM;
            }
        }
    }
    return WA_OK;
}
