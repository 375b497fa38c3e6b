/*
 * consent.c: the consent ledger's model, pure (no I/O): which ledger entries an event asks for
 * (a STOP / START contact.command, a status failed with 131050, Meta's user_preferences), the
 * state derived from a contact's ledger, and which categories a marketing opt-out mutes (only
 * marketing: authentication, utility and service messages are never muted by it).
 *
 * Entry ids are derived from the cause (the command id, the wamid, the preference's wa_id and
 * time), so a redelivered event gives the same id and the ledger's unique _id makes the append
 * idempotent.
 *
 * Threading: any thread; no state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "wa/clock.h"
#include "wa/contract_outbound.h"
#include "wa/contract_router.h"
#include "wa/whatsapp_errors.h"

static const char *const categories[] = {"marketing", "utility", "authentication", "service"};
static const char *const statuses[] = {"opted_in", "opted_out"};
static const char *const sources[] = {"api", "keyword", "user_preferences", "meta_error", "import"};

#define NAMES(a) (sizeof(a) / sizeof((a)[0]))

const char *
us_category_name(enum us_category c)
{
    return (size_t)c < NAMES(categories) ? categories[c] : "unknown";
}

const char *
us_status_name(enum us_status s)
{
    return (size_t)s < NAMES(statuses) ? statuses[s] : "unknown";
}

const char *
us_source_name(enum us_source s)
{
    return (size_t)s < NAMES(sources) ? sources[s] : "unknown";
}

static enum wa_err
parse_name(const char *s, const char *const *names, size_t n, int *out)
{
    for (size_t i = 0; s != NULL && i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (int)i;
            return WA_OK;
        }
    }
    return WA_EPARSE;
}

enum wa_err
us_category_parse(const char *s, enum us_category *out)
{
    int v = 0;
    enum wa_err err = parse_name(s, categories, NAMES(categories), &v);

    *out = (enum us_category)v;
    return err;
}

enum wa_err
us_status_parse(const char *s, enum us_status *out)
{
    int v = 0;
    enum wa_err err = parse_name(s, statuses, NAMES(statuses), &v);

    *out = (enum us_status)v;
    return err;
}

enum wa_err
us_source_parse(const char *s, enum us_source *out)
{
    int v = 0;
    enum wa_err err = parse_name(s, sources, NAMES(sources), &v);

    *out = (enum us_source)v;
    return err;
}

static bool
all_digits(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);

    if (n < min || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

/* A business-scoped user id: a two-letter country code, '.', then [A-Za-z0-9_-]. */
static bool
bsuid(const char *s)
{
    size_t n = strlen(s);

    if (n < 4 || n > 128 || s[2] != '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');

        if (i >= 3) {
            ok = ok || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        }
        if (i != 2 && !ok) {
            return false;
        }
    }
    return true;
}

enum wa_err
us_contact_id(const char *identity, char *out, size_t size)
{
    int w;

    if (identity == NULL || size == 0) {
        return WA_EINVAL;
    }
    out[0] = '\0';
    if (identity[0] == '+') {
        identity++;
    }
    if (all_digits(identity, 4, 15)) {
        w = snprintf(out, size, "+%s", identity);
    } else if (!bsuid(identity)) {
        return WA_EINVAL;
    } else {
        w = snprintf(out, size, "%s", identity);
    }
    if (w < 0 || (size_t)w >= size) {
        out[0] = '\0';
        return WA_EINVAL;
    }
    return WA_OK;
}

const char *
us_key_identity(const char *contact_id)
{
    return contact_id[0] == '+' ? contact_id + 1 : contact_id;
}

static enum wa_err
copy(char *dst, size_t size, const char *src, const char *field, struct wa_error *error)
{
    int w = snprintf(dst, size, "%s", src != NULL ? src : "");

    if (w < 0 || (size_t)w >= size) {
        return wa_error_set(error, WA_EPARSE, "%s: too long", field);
    }
    return WA_OK;
}

static enum wa_err
identity_ok(const char *contact, const char *field, struct wa_error *error)
{
    char id[US_ID_MAX];

    if (us_contact_id(contact, id, sizeof(id)) != WA_OK) {
        return wa_error_set(error, WA_EPARSE, "%s: not a wa_id or business-scoped user id", field);
    }
    return WA_OK;
}

enum wa_err
us_decide_command(const json_t *data, int64_t event_ms, struct us_entry *out, size_t max, size_t *n,
                  struct wa_error *error)
{
    struct wa_contract_contact_command c;
    struct us_entry *e = out;
    enum wa_err err;
    int64_t at = event_ms;

    *n = 0;
    if ((err = wa_contract_contact_command_decode(data, &c, error)) != WA_OK) {
        return err;
    }
    if (c.command != WA_CONTRACT_CMD_OPT_OUT && c.command != WA_CONTRACT_CMD_OPT_IN) {
        return WA_OK; /* tags and attributes are not consent */
    }
    if ((err = identity_ok(c.contact, "contact", error)) != WA_OK) {
        return err;
    }
    if (max == 0) {
        return wa_error_set(error, WA_ETOOBIG, "no room for the entry");
    }
    (void)wa_contract_time_parse(c.requested_at, &at);
    memset(e, 0, sizeof(*e));
    if (snprintf(e->id, sizeof(e->id), "cmd:%s", c.command_id) >= (int)sizeof(e->id)) {
        return wa_error_set(error, WA_EPARSE, "command_id: too long");
    }
    if ((err = copy(e->contact, sizeof(e->contact), c.contact, "contact", error)) != WA_OK ||
        (err = copy(e->evidence_command, sizeof(e->evidence_command), c.command_id, "command_id",
                    error)) != WA_OK ||
        (err = copy(e->evidence_wamid, sizeof(e->evidence_wamid), c.wamid, "wamid", error)) !=
            WA_OK) {
        return err;
    }
    snprintf(e->phone_number_id, sizeof(e->phone_number_id), "%s", c.phone_number_id);
    e->category = US_CAT_MARKETING;
    e->status = c.command == WA_CONTRACT_CMD_OPT_OUT ? US_OPTED_OUT : US_OPTED_IN;
    /* a customer's own words (wa-router's keyword rules) or another service's request */
    e->source =
        c.source != NULL && strncmp(c.source, "wa-router", 9) == 0 ? US_SRC_KEYWORD : US_SRC_API;
    snprintf(e->scope, sizeof(e->scope), "%s", US_SCOPE_ALL);
    e->at_ms = at;
    *n = 1;
    return WA_OK;
}

enum wa_err
us_decide_status(const json_t *data, int64_t event_ms, struct us_entry *out, size_t max, size_t *n,
                 struct wa_error *error)
{
    struct wa_contract_inbound_status s;
    struct us_entry *e = out;
    enum wa_err err;
    size_t i;
    const json_t *item;
    bool stopped = false;

    *n = 0;
    if ((err = wa_contract_inbound_status_decode(data, &s, error)) != WA_OK) {
        return err;
    }
    if (strcmp(s.status, "failed") != 0 || !json_is_array(s.errors)) {
        return WA_OK;
    }
    json_array_foreach(s.errors, i, item)
    {
        const json_t *code = json_object_get(item, "code");

        stopped = stopped || (json_is_integer(code) && json_integer_value(code) == 131050);
    }
    if (!stopped) {
        return WA_OK;
    }
    if ((err = identity_ok(s.contact, "contact", error)) != WA_OK) {
        return err;
    }
    if (max == 0) {
        return wa_error_set(error, WA_ETOOBIG, "no room for the entry");
    }
    memset(e, 0, sizeof(*e));
    if (snprintf(e->id, sizeof(e->id), "st:%s:131050", s.wamid) >= (int)sizeof(e->id)) {
        return wa_error_set(error, WA_EPARSE, "wamid: too long");
    }
    if ((err = copy(e->contact, sizeof(e->contact), s.contact, "contact", error)) != WA_OK ||
        (err = copy(e->evidence_wamid, sizeof(e->evidence_wamid), s.wamid, "wamid", error)) !=
            WA_OK) {
        return err;
    }
    snprintf(e->phone_number_id, sizeof(e->phone_number_id), "%s",
             s.phone_number_id != NULL ? s.phone_number_id : "");
    e->category = US_CAT_MARKETING;
    e->status = US_OPTED_OUT;
    e->source = US_SRC_META_ERROR;
    e->evidence_code = 131050;
    snprintf(e->scope, sizeof(e->scope), "%s", US_SCOPE_ALL);
    e->at_ms = s.timestamp > 0 ? s.timestamp * 1000 : event_ms;
    *n = 1;
    return WA_OK;
}

/*
 * account.event with field "user_preferences": value.user_preferences[] items
 * {"wa_id", "category": "marketing_messages", "value": "stop" | "resume", "timestamp"}
 * (docs/cloud-api.md). Items of other categories or values are ignored.
 */
enum wa_err
us_decide_account(const json_t *data, int64_t event_ms, struct us_entry *out, size_t max, size_t *n,
                  struct wa_error *error)
{
    struct wa_contract_account_event a;
    const json_t *prefs, *item;
    enum wa_err err;
    size_t i;

    *n = 0;
    if ((err = wa_contract_account_event_decode(data, &a, error)) != WA_OK) {
        return err;
    }
    if (strcmp(a.field, "user_preferences") != 0) {
        return WA_OK;
    }
    prefs = json_object_get(a.value, "user_preferences");
    if (!json_is_array(prefs)) {
        return wa_error_set(error, WA_EPARSE, "value.user_preferences: not an array");
    }
    json_array_foreach(prefs, i, item)
    {
        const char *wa_id = wa_json_str(item, "wa_id"), *cat = wa_json_str(item, "category"),
                   *value = wa_json_str(item, "value");
        const json_t *ts = json_object_get(item, "timestamp");
        int64_t t = json_is_integer(ts) ? json_integer_value(ts) : 0;
        struct us_entry *e;

        if (wa_id == NULL) {
            wa_id = wa_json_str(item, "user_id");
        }
        if (json_is_string(ts)) {
            t = strtoll(json_string_value(ts), NULL, 10);
        }
        if (cat == NULL || strcmp(cat, "marketing_messages") != 0 || value == NULL ||
            (strcmp(value, "stop") != 0 && strcmp(value, "resume") != 0)) {
            continue;
        }
        if ((err = identity_ok(wa_id, "value.user_preferences[].wa_id", error)) != WA_OK) {
            *n = 0;
            return err;
        }
        if (*n >= max) {
            *n = 0;
            return wa_error_set(error, WA_ETOOBIG, "more than %zu preferences in one event", max);
        }
        e = &out[(*n)++];
        memset(e, 0, sizeof(*e));
        snprintf(e->id, sizeof(e->id), "up:%s:%lld:%s", wa_id, (long long)t, value);
        snprintf(e->contact, sizeof(e->contact), "%s", wa_id);
        snprintf(e->phone_number_id, sizeof(e->phone_number_id), "%s",
                 a.phone_number_id != NULL ? a.phone_number_id : "");
        e->category = US_CAT_MARKETING;
        e->status = strcmp(value, "stop") == 0 ? US_OPTED_OUT : US_OPTED_IN;
        e->source = US_SRC_USER_PREFERENCES;
        snprintf(e->scope, sizeof(e->scope), "%s", US_SCOPE_ALL);
        e->at_ms = t > 0 ? t * 1000 : event_ms;
    }
    return WA_OK;
}

json_t *
us_entry_doc(const struct us_entry *e, const char *contact_id, int64_t recorded_ms)
{
    json_t *ev = json_object(), *doc;
    char at[WA_RFC3339_LEN];

    if (ev == NULL) {
        return NULL;
    }
    if (e->evidence_wamid[0] != '\0') {
        json_object_set_new(ev, "wamid", json_string(e->evidence_wamid));
    }
    if (e->evidence_command[0] != '\0') {
        json_object_set_new(ev, "command_id", json_string(e->evidence_command));
    }
    if (e->evidence_code != 0) {
        json_object_set_new(ev, "error_code", json_integer(e->evidence_code));
    }
    wa_clock_rfc3339((uint64_t)(e->at_ms > 0 ? e->at_ms : 0), at);
    doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:I, s:I}", "_id", e->id, "contact",
                    contact_id, "category", us_category_name(e->category), "status",
                    us_status_name(e->status), "scope", e->scope, "source",
                    us_source_name(e->source), "evidence", ev, "at", at, "at_ms",
                    (json_int_t)e->at_ms, "recorded_ms", (json_int_t)recorded_ms);
    return doc;
}

static int64_t
int_of(const json_t *doc, const char *key)
{
    const json_t *v = json_object_get(doc, key);

    return json_is_integer(v) ? json_integer_value(v) : 0;
}

void
us_consent_derive(const json_t *ledger, enum us_category category, struct us_consent_state *out)
{
    size_t i;
    const json_t *doc;
    int64_t best_at = 0, best_rec = 0;

    memset(out, 0, sizeof(*out));
    out->status = US_OPTED_IN;
    json_array_foreach(ledger, i, doc)
    {
        enum us_category c;
        enum us_status st;
        enum us_source src;
        const char *scope = wa_json_str(doc, "scope");
        int64_t at = int_of(doc, "at_ms"), rec = int_of(doc, "recorded_ms");

        if (us_category_parse(wa_json_str(doc, "category"), &c) != WA_OK || c != category ||
            us_status_parse(wa_json_str(doc, "status"), &st) != WA_OK || scope == NULL ||
            strcmp(scope, US_SCOPE_ALL) != 0) {
            continue;
        }
        if (out->known && (at < best_at || (at == best_at && rec < best_rec))) {
            continue;
        }
        if (us_source_parse(wa_json_str(doc, "source"), &src) != WA_OK) {
            src = US_SRC_API;
        }
        out->known = true;
        out->status = st;
        out->at_ms = at;
        out->source = src;
        best_at = at;
        best_rec = rec;
    }
}

bool
us_consent_blocks(const struct us_consent_state *marketing, enum us_category category)
{
    return category == US_CAT_MARKETING && marketing->known && marketing->status == US_OPTED_OUT;
}
