/*
 * rules.c: the rules file (WA_ROUTER_RULES): parse, validate, reference count.
 *
 * Read at start and on SIGHUP. Validation is complete before a ruleset is used: every problem
 * found is reported, each naming the rule (index and name) and the field, e.g.
 *   rule 2 "price": match.keywords.exact[0]: must be a non-empty string
 * Unknown keys are errors (a typo must not silently disable a condition). Reply bodies are
 * checked with the Cloud API validator of libs/whatsapp, keywords are normalised once here with
 * the matcher's own function, regular expressions compiled once (POSIX ERE, case-insensitive).
 * The format is described in services/router/README.md.
 *
 * Ownership: a ruleset owns its parsed document (actions borrow strings from it), its
 * compiled regexes and copied keyword strings. Threading: loop thread only (reference counts
 * are not atomic).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa/config.h"
#include "wa/whatsapp_message.h"

#define ERRORS_MAX 50

struct vctx {
    struct wa_buf *errors;
    size_t count;
    char first[400];
};

static void verr(struct vctx *v, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
verr(struct vctx *v, const char *where, const char *fmt, ...)
{
    char msg[200];
    char line[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "%s: %s", where, msg);
    if (v->count == 0) {
        memcpy(v->first, line, sizeof(v->first));
    }
    if (v->count < ERRORS_MAX && v->errors != NULL) {
        wa_buf_printf(v->errors, "%s\n", line);
    }
    v->count++;
}

const char *
rt_action_name(enum rt_action_kind kind)
{
    static const char *const names[RT_ACT__COUNT] = {
        "reply",   "forward", "handoff",       "tag",    "untag",
        "opt_out", "opt_in",  "set_attribute", "remind",
    };
    return (size_t)kind < RT_ACT__COUNT ? names[kind] : "unknown";
}

static void
strlist_free(struct rt_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* A string or an array of non-empty strings into l (copied; normalised when norm). */
static void
strlist_parse(struct vctx *v, const char *where, const char *field, const json_t *val, bool norm,
              size_t max_items, struct rt_strlist *l)
{
    const json_t *items[256];
    size_t n = 0, i;
    const json_t *it;

    if (json_is_string(val)) {
        items[n++] = val;
    } else if (json_is_array(val) && json_array_size(val) <= max_items &&
               json_array_size(val) <= WA_ARRAY_LEN(items)) {
        json_array_foreach(val, i, it)
        {
            items[n++] = it;
        }
    } else {
        verr(v, where, "%s: must be a string or an array of at most %zu strings", field, max_items);
        return;
    }
    if (n == 0) {
        verr(v, where, "%s: must not be empty", field);
        return;
    }
    l->v = calloc(n, sizeof(*l->v));
    if (l->v == NULL) {
        verr(v, where, "%s: out of memory", field);
        return;
    }
    for (i = 0; i < n; i++) {
        const char *s = json_string_value(items[i]);
        char buf[1024];

        if (s == NULL || s[0] == '\0' || strlen(s) >= 512) {
            verr(v, where, "%s[%zu]: must be a non-empty string of fewer than 512 bytes", field, i);
            continue;
        }
        if (norm) {
            rt_text_normalize(s, strlen(s), buf, sizeof(buf));
            if (buf[0] == '\0') {
                verr(v, where, "%s[%zu]: empty once normalised", field, i);
                continue;
            }
            s = buf;
        }
        if ((l->v[l->n] = strdup(s)) == NULL) {
            verr(v, where, "%s: out of memory", field);
            return;
        }
        l->n++;
    }
}

/* Duration: "48h", "250ms" or an integer of milliseconds; > 0. */
static bool
duration_parse(struct vctx *v, const char *where, const char *field, const json_t *val,
               int64_t *out)
{
    if (json_is_integer(val) && json_integer_value(val) > 0) {
        *out = json_integer_value(val);
        return true;
    }
    if (json_is_string(val) && wa_parse_ms(json_string_value(val), out) == WA_OK && *out > 0) {
        return true;
    }
    verr(v, where, "%s: must be a positive duration (\"250ms\", \"5s\", \"48h\") or integer ms",
         field);
    return false;
}

/* Checks that obj has only the keys listed (NULL-terminated). */
static void
keys_known(struct vctx *v, const char *where, const char *field, const json_t *obj,
           const char *const *known)
{
    const char *key;
    json_t *val;

    json_object_foreach((json_t *)obj, key, val)
    {
        size_t i;
        for (i = 0; known[i] != NULL && strcmp(known[i], key) != 0; i++) {
        }
        if (known[i] == NULL) {
            verr(v, where, "%s%s%s: unknown key", field, field[0] ? "." : "", key);
        }
    }
}

static int
hhmm_parse(const char *s)
{
    int h, m;
    char tail;

    if (s == NULL || sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2 || h < 0 || h > 24 || m < 0 ||
        m > 59 || (h == 24 && m != 0)) {
        return -1;
    }
    return h * 60 + m;
}

static int
day_index(const char *s, size_t n)
{
    static const char *const days[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

    for (int i = 0; i < 7; i++) {
        if (n == 3 && strncmp(s, days[i], 3) == 0) {
            return i;
        }
    }
    return -1;
}

/* "mon-fri", "sat", or an array of those. */
static bool
days_parse(const json_t *val, unsigned *out)
{
    const json_t *items[7] = {val};
    size_t n = 1, i;
    const json_t *it;

    *out = 0;
    if (json_is_array(val)) {
        if (json_array_size(val) == 0 || json_array_size(val) > 7) {
            return false;
        }
        n = 0;
        json_array_foreach(val, i, it)
        {
            items[n++] = it;
        }
    }
    for (i = 0; i < n; i++) {
        const char *s = json_string_value(items[i]);
        int a, b;

        if (s == NULL) {
            return false;
        }
        if (strlen(s) == 7 && s[3] == '-') {
            if ((a = day_index(s, 3)) < 0 || (b = day_index(s + 4, 3)) < 0) {
                return false;
            }
            for (int d = a;; d = (d + 1) % 7) {
                *out |= 1u << d;
                if (d == b) {
                    break;
                }
            }
        } else if ((a = day_index(s, strlen(s))) >= 0) {
            *out |= 1u << a;
        } else {
            return false;
        }
    }
    return true;
}

static void
hours_parse(struct vctx *v, const char *where, const char *field, const json_t *val,
            struct rt_hours *h)
{
    static const char *const known[] = {"tz", "days", "from", "to", NULL};
    const char *tz = wa_json_str(val, "tz");
    const json_t *days = json_object_get(val, "days");

    if (!json_is_object(val)) {
        verr(v, where, "%s: must be an object {tz, days, from, to}", field);
        return;
    }
    keys_known(v, where, field, val, known);
    if (tz == NULL || strlen(tz) >= sizeof(h->tz) || !rt_tz_valid(tz)) {
        verr(v, where, "%s.tz: must name a time zone such as \"Europe/Paris\" or \"UTC\"", field);
    } else {
        snprintf(h->tz, sizeof(h->tz), "%s", tz);
    }
    h->days = 0x7F;
    if (days != NULL && !days_parse(days, &h->days)) {
        verr(v, where, "%s.days: must be \"mon-fri\", \"sat\" or an array of those", field);
    }
    h->from_min = hhmm_parse(wa_json_str(val, "from"));
    h->to_min = hhmm_parse(wa_json_str(val, "to"));
    if (h->from_min < 0) {
        verr(v, where, "%s.from: must be \"HH:MM\"", field);
    }
    if (h->to_min < 0) {
        verr(v, where, "%s.to: must be \"HH:MM\"", field);
    }
    if (h->from_min >= 0 && h->from_min == h->to_min) {
        verr(v, where, "%s: from and to must differ", field);
    }
    h->set = true;
}

static void
match_parse(struct vctx *v, const char *where, const json_t *m, struct rt_match *out)
{
    static const char *const known[] = {
        "type",      "keywords", "regex", "reply_id",      "button_payload", "tags_any", "tags_all",
        "tags_none", "language", "hours", "outside_hours", "first_message",  NULL};
    static const char *const kw_known[] = {"exact", "contains", "prefix", "word", NULL};
    const json_t *val;
    const char *re;

    out->first = -1;
    if (m == NULL) {
        return; /* no conditions: matches every message */
    }
    if (!json_is_object(m)) {
        verr(v, where, "match: must be an object");
        return;
    }
    keys_known(v, where, "match", m, known);
    if ((val = json_object_get(m, "type")) != NULL) {
        strlist_parse(v, where, "match.type", val, false, 32, &out->types);
    }
    if ((val = json_object_get(m, "keywords")) != NULL) {
        if (!json_is_object(val)) {
            verr(v, where, "match.keywords: must be an object {exact, contains, prefix, word}");
        } else {
            static const char *const names[RT_KW__COUNT] = {"exact", "contains", "prefix", "word"};
            keys_known(v, where, "match.keywords", val, kw_known);
            for (int k = 0; k < RT_KW__COUNT; k++) {
                char field[64];
                const json_t *l = json_object_get(val, names[k]);

                snprintf(field, sizeof(field), "match.keywords.%s", names[k]);
                if (l != NULL) {
                    strlist_parse(v, where, field, l, true, 256, &out->kw[k]);
                }
            }
        }
    }
    if ((val = json_object_get(m, "regex")) != NULL) {
        re = json_string_value(val);
        if (re == NULL || re[0] == '\0' || strlen(re) > 1024) {
            verr(v, where, "match.regex: must be a non-empty string of at most 1024 bytes");
        } else {
            int rc = regcomp(&out->regex, re, REG_EXTENDED | REG_ICASE | REG_NOSUB);
            if (rc != 0) {
                char msg[128];
                regerror(rc, NULL, msg, sizeof(msg));
                verr(v, where, "match.regex: does not compile: %s", msg);
            } else {
                out->has_regex = true;
            }
        }
    }
    if ((val = json_object_get(m, "reply_id")) != NULL) {
        strlist_parse(v, where, "match.reply_id", val, false, 256, &out->reply_ids);
    }
    if ((val = json_object_get(m, "button_payload")) != NULL) {
        strlist_parse(v, where, "match.button_payload", val, false, 256, &out->payloads);
    }
    if ((val = json_object_get(m, "tags_any")) != NULL) {
        strlist_parse(v, where, "match.tags_any", val, false, RT_TAGS_MAX, &out->tags_any);
    }
    if ((val = json_object_get(m, "tags_all")) != NULL) {
        strlist_parse(v, where, "match.tags_all", val, false, RT_TAGS_MAX, &out->tags_all);
    }
    if ((val = json_object_get(m, "tags_none")) != NULL) {
        strlist_parse(v, where, "match.tags_none", val, false, RT_TAGS_MAX, &out->tags_none);
    }
    if ((val = json_object_get(m, "language")) != NULL) {
        strlist_parse(v, where, "match.language", val, false, 64, &out->languages);
    }
    if ((val = json_object_get(m, "hours")) != NULL) {
        hours_parse(v, where, "match.hours", val, &out->hours);
    }
    if ((val = json_object_get(m, "outside_hours")) != NULL) {
        if (out->hours.set) {
            verr(v, where, "match.outside_hours: give either hours or outside_hours");
        } else {
            hours_parse(v, where, "match.outside_hours", val, &out->hours);
            out->hours.outside = true;
        }
    }
    if ((val = json_object_get(m, "first_message")) != NULL) {
        if (!json_is_boolean(val)) {
            verr(v, where, "match.first_message: must be true or false");
        } else {
            out->first = json_is_true(val) ? 1 : 0;
        }
    }
}

static void
match_free(struct rt_match *m)
{
    strlist_free(&m->types);
    for (int k = 0; k < RT_KW__COUNT; k++) {
        strlist_free(&m->kw[k]);
    }
    if (m->has_regex) {
        regfree(&m->regex);
        m->has_regex = false;
    }
    strlist_free(&m->reply_ids);
    strlist_free(&m->payloads);
    strlist_free(&m->tags_any);
    strlist_free(&m->tags_all);
    strlist_free(&m->tags_none);
    strlist_free(&m->languages);
}

static bool
name_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n >= RT_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

static const char *const reply_types[] = {"text",     "template", "interactive", "image",
                                          "video",    "audio",    "document",    "sticker",
                                          "location", "contacts", NULL};

static void
reply_parse(struct vctx *v, const char *where, const char *field, const json_t *spec,
            struct rt_action *a)
{
    static const char *const cats[] = {"marketing", "utility", "authentication", "service", NULL};
    struct wa_whatsapp_send send;
    struct wa_whatsapp_send_error serr;
    const char *key;
    json_t *val, *probe, *body;
    size_t n = 0;

    if (!json_is_object(spec)) {
        verr(v, where, "%s: must be an object such as {\"text\": \"...\"}", field);
        return;
    }
    json_object_foreach((json_t *)spec, key, val)
    {
        size_t i;
        if (strcmp(key, "category") == 0) {
            a->category = json_string_value(val);
            for (i = 0; cats[i] != NULL && (a->category == NULL || strcmp(cats[i], a->category));
                 i++) {
            }
            if (cats[i] == NULL) {
                verr(v, where,
                     "%s.category: must be marketing, utility, authentication or "
                     "service",
                     field);
            }
            continue;
        }
        if (strcmp(key, "quote") == 0) {
            if (!json_is_boolean(val)) {
                verr(v, where, "%s.quote: must be true or false", field);
            }
            a->quote = json_is_true(val);
            continue;
        }
        for (i = 0; reply_types[i] != NULL && strcmp(reply_types[i], key) != 0; i++) {
        }
        if (reply_types[i] == NULL) {
            verr(v, where, "%s.%s: unknown key (a message type, category or quote)", field, key);
            continue;
        }
        a->reply_type = reply_types[i];
        a->reply_body = val;
        n++;
    }
    if (n != 1) {
        verr(v, where,
             "%s: exactly one message type (text, template, interactive, image, ...) "
             "is required",
             field);
        return;
    }
    /* A text may be given as a plain string: {"text": "Hi {{name}}"}. */
    if (strcmp(a->reply_type, "text") == 0 && json_is_string(a->reply_body)) {
        body = json_pack("{s:O}", "body", a->reply_body);
    } else {
        body = json_incref((json_t *)a->reply_body);
    }
    probe = json_pack("{s:s,s:s,s:s,s:o}", "messaging_product", "whatsapp", "to", "15550000000",
                      "type", a->reply_type, a->reply_type, body);
    if (probe == NULL) {
        verr(v, where, "%s: out of memory", field);
        return;
    }
    if (wa_whatsapp_send_parse(probe, &send, &serr) != WA_OK) {
        verr(v, where, "%s.%s: rejected by the Cloud API rules (%lld): %s", field, a->reply_type,
             (long long)serr.code, serr.details);
    }
    json_decref(probe);
}

static void
action_parse(struct vctx *v, const struct rt_ruleset *rs, const char *where, const char *field,
             const json_t *obj, bool nested, struct rt_action *a)
{
    const char *key = NULL;
    json_t *val = NULL;
    char sub[96];
    int k;

    if (!json_is_object(obj) || json_object_size(obj) != 1) {
        verr(v, where, "%s: must be an object with exactly one key (the action)", field);
        return;
    }
    json_object_foreach((json_t *)obj, key, val)
    {
        break;
    }
    a->spec = json_incref((json_t *)obj);
    for (k = 0; k < RT_ACT__COUNT && strcmp(rt_action_name((enum rt_action_kind)k), key); k++) {
    }
    if (k == RT_ACT__COUNT) {
        verr(v, where,
             "%s.%s: unknown action (reply, forward, handoff, tag, untag, opt_out, "
             "opt_in, set_attribute, remind)",
             field, key);
        return;
    }
    a->kind = (enum rt_action_kind)k;
    snprintf(sub, sizeof(sub), "%s.%s", field, key);
    switch (a->kind) {
    case RT_ACT_REPLY:
        reply_parse(v, where, sub, val, a);
        break;
    case RT_ACT_FORWARD: {
        const char *d =
            json_is_string(val) ? json_string_value(val) : wa_json_str(val, "destination");
        if (d == NULL || !name_valid(d)) {
            verr(v, where, "%s: must name a destination (\"crm\" or {\"destination\": \"crm\"})",
                 sub);
        } else if (rs != NULL && rt_rules_dest(rs, d) == NULL) {
            verr(v, where, "%s: destination \"%s\" is not defined in destinations", sub, d);
        } else {
            snprintf(a->dest, sizeof(a->dest), "%s", d);
        }
        break;
    }
    case RT_ACT_HANDOFF: {
        static const char *const known[] = {"queue", "priority", "note", NULL};
        if (!json_is_object(val)) {
            verr(v, where, "%s: must be an object {queue, priority, note}", sub);
            break;
        }
        keys_known(v, where, sub, val, known);
        a->queue = wa_json_str(val, "queue");
        a->priority = wa_json_str(val, "priority");
        a->note = wa_json_str(val, "note");
        if (a->queue == NULL || !name_valid(a->queue)) {
            verr(v, where, "%s.queue: required, letters, digits, '-', '_', '.'", sub);
        }
        if (a->priority == NULL) {
            a->priority = "medium";
        } else if (strcmp(a->priority, "high") && strcmp(a->priority, "medium") &&
                   strcmp(a->priority, "low")) {
            verr(v, where, "%s.priority: must be high, medium or low", sub);
        }
        break;
    }
    case RT_ACT_TAG:
    case RT_ACT_UNTAG:
        strlist_parse(v, where, sub, val, false, RT_TAGS_MAX, &a->tags);
        for (size_t i = 0; i < a->tags.n; i++) {
            if (!name_valid(a->tags.v[i])) {
                verr(v, where, "%s[%zu]: tags are letters, digits, '-', '_', '.'", sub, i);
            }
        }
        break;
    case RT_ACT_OPT_OUT:
    case RT_ACT_OPT_IN:
        if (!json_is_true(val) && !(json_is_object(val) && json_object_size(val) == 0)) {
            verr(v, where, "%s: must be true or {}", sub);
        }
        break;
    case RT_ACT_SET_ATTRIBUTE:
        a->attr_name = wa_json_str(val, "name");
        a->attr_value = wa_json_str(val, "value");
        if (a->attr_name == NULL || !name_valid(a->attr_name) || a->attr_value == NULL) {
            verr(v, where, "%s: must be {\"name\": \"language\", \"value\": \"ar\"}", sub);
        }
        break;
    case RT_ACT_REMIND: {
        static const char *const known[] = {"id", "after", "cancel_on", "actions", NULL};
        const char *id = wa_json_str(val, "id"), *c = wa_json_str(val, "cancel_on");
        char f2[128];
        struct rt_action *inner = NULL;
        size_t ninner = 0;

        if (nested) {
            verr(v, where, "%s: a reminder cannot schedule another reminder", sub);
            break;
        }
        if (!json_is_object(val)) {
            verr(v, where, "%s: must be an object {id, after, cancel_on, actions}", sub);
            break;
        }
        keys_known(v, where, sub, val, known);
        if (id == NULL || !name_valid(id)) {
            verr(v, where, "%s.id: required, letters, digits, '-', '_', '.'", sub);
        } else {
            snprintf(a->remind_id, sizeof(a->remind_id), "%s", id);
        }
        snprintf(f2, sizeof(f2), "%s.after", sub);
        duration_parse(v, where, f2, json_object_get(val, "after"), &a->after_ms);
        if (c == NULL || strcmp(c, "business_reply") == 0) {
            a->cancel_on = RT_CANCEL_BUSINESS_REPLY;
        } else if (strcmp(c, "inbound") == 0) {
            a->cancel_on = RT_CANCEL_INBOUND;
        } else if (strcmp(c, "never") == 0) {
            a->cancel_on = RT_CANCEL_NEVER;
        } else {
            verr(v, where, "%s.cancel_on: must be business_reply, inbound or never", sub);
        }
        a->remind_actions = json_object_get(val, "actions");
        snprintf(f2, sizeof(f2), "%s.actions", sub);
        if (!json_is_array(a->remind_actions) || json_array_size(a->remind_actions) == 0 ||
            json_array_size(a->remind_actions) > RT_ACTIONS_MAX) {
            verr(v, where, "%s: 1 to %d actions required", f2, RT_ACTIONS_MAX);
            break;
        }
        /* validated here, parsed again when the reminder fires (from its stored copy) */
        if ((inner = calloc(json_array_size(a->remind_actions), sizeof(*inner))) == NULL) {
            verr(v, where, "%s: out of memory", f2);
            break;
        }
        for (ninner = 0; ninner < json_array_size(a->remind_actions); ninner++) {
            char f3[160];
            snprintf(f3, sizeof(f3), "%s[%zu]", f2, ninner);
            action_parse(v, rs, where, f3, json_array_get(a->remind_actions, ninner), true,
                         &inner[ninner]);
        }
        rt_actions_free(inner, ninner);
        break;
    }
    case RT_ACT__COUNT:
        break;
    }
}

void
rt_actions_free(struct rt_action *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++) {
        strlist_free(&a[i].tags);
        json_decref(a[i].spec);
    }
    free(a);
}

enum wa_err
rt_rules_parse_actions(const struct rt_ruleset *rs, const json_t *arr, const char *where,
                       bool nested, struct rt_action **out, size_t *n, struct wa_buf *errors)
{
    struct vctx v = {.errors = errors};
    struct rt_action *a;
    size_t i, cnt = json_array_size(arr);

    *out = NULL;
    *n = 0;
    if (!json_is_array(arr) || cnt == 0 || cnt > RT_ACTIONS_MAX) {
        verr(&v, where, "actions: 1 to %d actions required", RT_ACTIONS_MAX);
        return WA_ECONFIG;
    }
    if ((a = calloc(cnt, sizeof(*a))) == NULL) {
        return WA_ENOMEM;
    }
    for (i = 0; i < cnt; i++) {
        char field[32];
        snprintf(field, sizeof(field), "actions[%zu]", i);
        action_parse(&v, rs, where, field, json_array_get(arr, i), nested, &a[i]);
    }
    if (v.count > 0) {
        rt_actions_free(a, cnt);
        return WA_ECONFIG;
    }
    *out = a;
    *n = cnt;
    return WA_OK;
}

static void
dests_parse(struct vctx *v, const json_t *obj, struct rt_ruleset *rs)
{
    static const char *const known[] = {
        "url",       "secret_env", "unsigned", "allow_http",   "rate_per_s",      "burst",
        "batch_max", "batch_wait", "timeout",  "max_attempts", "backoff_initial", "backoff_max",
        NULL};
    const char *name;
    json_t *d, *val;
    size_t i = 0;

    if (obj == NULL) {
        return;
    }
    if (!json_is_object(obj) || json_object_size(obj) > 64) {
        verr(v, "destinations", "must be an object of at most 64 named destinations");
        return;
    }
    rs->dests = calloc(json_object_size(obj) + 1, sizeof(*rs->dests));
    if (rs->dests == NULL) {
        verr(v, "destinations", "out of memory");
        return;
    }
    json_object_foreach((json_t *)obj, name, d)
    {
        struct rt_dest *x = &rs->dests[i++];
        char where[96];
        const char *url = wa_json_str(d, "url"), *senv = wa_json_str(d, "secret_env");

        snprintf(where, sizeof(where), "destination \"%.60s\"", name);
        rs->ndests = i;
        if (!name_valid(name)) {
            verr(v, where, "name: letters, digits, '-', '_', '.' (at most 63)");
            continue;
        }
        snprintf(x->name, sizeof(x->name), "%s", name);
        if (!json_is_object(d)) {
            verr(v, where, "must be an object");
            continue;
        }
        keys_known(v, where, "", d, known);
        if ((val = json_object_get(d, "unsigned")) != NULL && !json_is_boolean(val)) {
            verr(v, where, "unsigned: must be true or false");
        }
        if ((val = json_object_get(d, "allow_http")) != NULL && !json_is_boolean(val)) {
            verr(v, where, "allow_http: must be true or false");
        }
        if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
            verr(v, where, "url: required, http:// or https://");
        } else if (strncmp(url, "http://", 7) == 0 &&
                   !json_is_true(json_object_get(d, "allow_http"))) {
            verr(v, where,
                 "url: plain http:// sends customer data unencrypted; use https:// or "
                 "set \"allow_http\": true on purpose");
        } else {
            x->url = strdup(url);
        }
        if (senv == NULL && !json_is_true(json_object_get(d, "unsigned"))) {
            verr(v, where,
                 "secret_env: required (the receiver cannot tell forged deliveries); "
                 "or set \"unsigned\": true on purpose");
        } else if (senv != NULL && json_is_true(json_object_get(d, "unsigned"))) {
            verr(v, where, "secret_env and \"unsigned\": true contradict each other");
        }
        if (senv != NULL) {
            const char *sec = getenv(senv);
            if (sec == NULL || sec[0] == '\0') {
                verr(v, where, "secret_env: variable %.64s is not set", senv);
            } else {
                x->secret = strdup(sec);
            }
        }
        x->rate_per_s = 5;
        x->burst = 0;
        x->batch_max = 1;
        x->batch_wait_ms = 200;
        x->timeout_ms = 5000;
        x->max_attempts = 8;
        x->backoff_initial_ms = 1000;
        x->backoff_max_ms = 300000;
        if ((val = json_object_get(d, "rate_per_s")) != NULL) {
            if (!json_is_number(val) || json_number_value(val) <= 0 ||
                json_number_value(val) > 100000) {
                verr(v, where, "rate_per_s: must be a number in (0, 100000]");
            } else {
                x->rate_per_s = json_number_value(val);
            }
        }
        if ((val = json_object_get(d, "burst")) != NULL) {
            if (!json_is_number(val) || json_number_value(val) < 1 ||
                json_number_value(val) > 100000) {
                verr(v, where, "burst: must be a number in [1, 100000]");
            } else {
                x->burst = json_number_value(val);
            }
        }
        if (x->burst == 0) {
            x->burst = x->rate_per_s < 1 ? 1 : x->rate_per_s;
        }
        if ((val = json_object_get(d, "batch_max")) != NULL) {
            if (!json_is_integer(val) || json_integer_value(val) < 1 ||
                json_integer_value(val) > 1000) {
                verr(v, where, "batch_max: must be an integer in [1, 1000]");
            } else {
                x->batch_max = (int)json_integer_value(val);
            }
        }
        if ((val = json_object_get(d, "max_attempts")) != NULL) {
            if (!json_is_integer(val) || json_integer_value(val) < 1 ||
                json_integer_value(val) > 100) {
                verr(v, where, "max_attempts: must be an integer in [1, 100]");
            } else {
                x->max_attempts = (int)json_integer_value(val);
            }
        }
        if ((val = json_object_get(d, "batch_wait")) != NULL) {
            duration_parse(v, where, "batch_wait", val, &x->batch_wait_ms);
        }
        if ((val = json_object_get(d, "timeout")) != NULL) {
            duration_parse(v, where, "timeout", val, &x->timeout_ms);
        }
        if ((val = json_object_get(d, "backoff_initial")) != NULL) {
            duration_parse(v, where, "backoff_initial", val, &x->backoff_initial_ms);
        }
        if ((val = json_object_get(d, "backoff_max")) != NULL) {
            duration_parse(v, where, "backoff_max", val, &x->backoff_max_ms);
        }
    }
}

const struct rt_dest *
rt_rules_dest(const struct rt_ruleset *rs, const char *name)
{
    for (size_t i = 0; rs != NULL && i < rs->ndests; i++) {
        if (strcmp(rs->dests[i].name, name) == 0) {
            return &rs->dests[i];
        }
    }
    return NULL;
}

static void
rule_parse(struct vctx *v, struct rt_ruleset *rs, size_t idx, const json_t *r)
{
    static const char *const known[] = {"name",    "description", "enabled", "match",
                                        "actions", "then",        NULL};
    struct rt_rule *rule = &rs->rules[idx];
    const char *name = wa_json_str(r, "name"), *then;
    const json_t *val, *acts;
    char where[96];

    snprintf(where, sizeof(where), "rule %zu \"%.60s\"", idx, name != NULL ? name : "?");
    rule->enabled = true;
    rule->stop = true;
    rule->match.first = -1;
    if (!json_is_object(r)) {
        verr(v, where, "must be an object");
        return;
    }
    keys_known(v, where, "", r, known);
    if (!name_valid(name)) {
        verr(v, where, "name: required, 1-63 letters, digits, '-', '_', '.'");
    } else {
        snprintf(rule->name, sizeof(rule->name), "%s", name);
        for (size_t j = 0; j < idx; j++) {
            if (strcmp(rs->rules[j].name, name) == 0) {
                verr(v, where, "name: duplicate of rule %zu", j);
            }
        }
    }
    if ((val = json_object_get(r, "enabled")) != NULL) {
        if (!json_is_boolean(val)) {
            verr(v, where, "enabled: must be true or false");
        }
        rule->enabled = !json_is_false(val);
    }
    if ((then = wa_json_str(r, "then")) != NULL || json_object_get(r, "then") != NULL) {
        if (then != NULL && strcmp(then, "continue") == 0) {
            rule->stop = false;
        } else if (then == NULL || strcmp(then, "stop") != 0) {
            verr(v, where, "then: must be \"stop\" or \"continue\"");
        }
    }
    match_parse(v, where, json_object_get(r, "match"), &rule->match);
    acts = json_object_get(r, "actions");
    if (!json_is_array(acts) || json_array_size(acts) == 0 ||
        json_array_size(acts) > RT_ACTIONS_MAX) {
        verr(v, where, "actions: 1 to %d actions required", RT_ACTIONS_MAX);
        return;
    }
    rule->actions = calloc(json_array_size(acts), sizeof(*rule->actions));
    if (rule->actions == NULL) {
        verr(v, where, "actions: out of memory");
        return;
    }
    rule->nactions = json_array_size(acts);
    for (size_t i = 0; i < rule->nactions; i++) {
        char field[32];
        snprintf(field, sizeof(field), "actions[%zu]", i);
        action_parse(v, rs, where, field, json_array_get(acts, i), false, &rule->actions[i]);
    }
}

enum wa_err
rt_rules_parse(const char *text, size_t len, const char *path, struct rt_ruleset **out,
               struct wa_buf *errors, struct wa_error *error)
{
    static const char *const known[] = {"version", "description", "destinations", "rules", NULL};
    struct vctx v = {.errors = errors};
    struct rt_ruleset *rs = NULL;
    struct wa_error jerr = {0};
    const json_t *rules, *ver;
    json_t *root = NULL;
    enum wa_err err;

    *out = NULL;
    if ((err = wa_json_parse(text, len, 0, &root, &jerr)) != WA_OK) {
        verr(&v, "file", "not valid JSON: %s", jerr.message);
        goto fail;
    }
    if (!json_is_object(root)) {
        verr(&v, "file", "top level must be an object {version, destinations, rules}");
        goto fail;
    }
    if ((rs = calloc(1, sizeof(*rs))) == NULL) {
        json_decref(root);
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    rs->refs = 1;
    rs->root = root;
    snprintf(rs->path, sizeof(rs->path), "%s", path != NULL ? path : "");
    keys_known(&v, "file", "", root, known);
    ver = json_object_get(root, "version");
    if (ver != NULL && !(json_is_integer(ver) && json_integer_value(ver) == 1)) {
        verr(&v, "file", "version: must be 1");
    }
    dests_parse(&v, json_object_get(root, "destinations"), rs);
    rules = json_object_get(root, "rules");
    if (!json_is_array(rules) || json_array_size(rules) > RT_RULES_MAX) {
        verr(&v, "file", "rules: must be an array of at most %d rules", RT_RULES_MAX);
        goto fail;
    }
    rs->rules = calloc(json_array_size(rules) + 1, sizeof(*rs->rules));
    if (rs->rules == NULL) {
        verr(&v, "file", "out of memory");
        goto fail;
    }
    rs->nrules = json_array_size(rules);
    for (size_t i = 0; i < rs->nrules; i++) {
        rule_parse(&v, rs, i, json_array_get(rules, i));
    }
    if (v.count > 0) {
        goto fail;
    }
    *out = rs;
    return WA_OK;
fail:
    if (rs != NULL) {
        rt_rules_unref(rs);
    } else {
        json_decref(root);
    }
    return wa_error_set(error, WA_ECONFIG, "%s: %s%s", path != NULL ? path : "rules", v.first,
                        v.count > 1 ? " (and more)" : "");
}

enum wa_err
rt_rules_load(const char *path, struct rt_ruleset **out, struct wa_buf *errors,
              struct wa_error *error)
{
    struct wa_buf b;
    char chunk[8192];
    size_t n;
    FILE *f;
    enum wa_err err;

    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        return wa_error_set(error, WA_ECONFIG, "WA_ROUTER_RULES is not set");
    }
    if ((f = fopen(path, "r")) == NULL) {
        if (errors != NULL) {
            wa_buf_printf(errors, "file: cannot open %s: %s\n", path, strerror(errno));
        }
        return wa_error_set(error, WA_ECONFIG, "cannot open %s: %s", path, strerror(errno));
    }
    wa_buf_init(&b, RT_RULES_FILE_MAX);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (wa_buf_append(&b, chunk, n) != WA_OK) {
            fclose(f);
            wa_buf_cleanup(&b);
            return wa_error_set(error, WA_ECONFIG, "%s: larger than %u bytes", path,
                                RT_RULES_FILE_MAX);
        }
    }
    fclose(f);
    err = rt_rules_parse(b.data != NULL ? b.data : "", b.len, path, out, errors, error);
    wa_buf_cleanup(&b);
    return err;
}

struct rt_ruleset *
rt_rules_ref(struct rt_ruleset *rs)
{
    if (rs != NULL) {
        rs->refs++;
    }
    return rs;
}

void
rt_rules_unref(struct rt_ruleset *rs)
{
    if (rs == NULL || --rs->refs > 0) {
        return;
    }
    for (size_t i = 0; i < rs->nrules; i++) {
        match_free(&rs->rules[i].match);
        rt_actions_free(rs->rules[i].actions, rs->rules[i].nactions);
    }
    free(rs->rules);
    for (size_t i = 0; i < rs->ndests; i++) {
        free(rs->dests[i].url);
        if (rs->dests[i].secret != NULL) {
            memset(rs->dests[i].secret, 0, strlen(rs->dests[i].secret));
        }
        free(rs->dests[i].secret);
    }
    free(rs->dests);
    json_decref(rs->root);
    free(rs);
}
