/*
 * import.c: POST /v1/contacts/import (README.md "REST"): an NDJSON body, one contact a line,
 * applied line by line in order; the answer counts what happened and names every bad line
 * with its errors. A bad line (not JSON, no valid identity, an invalid field, a store error)
 * is reported and never stops the lines after it.
 *
 * A line: {"id" | "phone" | "bsuid": identity, <writable fields>..., "consent"?: {category:
 * "opted_in" | "opted_out"}}. The identity takes the REST path forms (us_contact_path_id). The
 * fields merge into the contact like a PATCH that creates it when missing (null removes a
 * field, fields left out stay); consent statuses become ledger entries with source "import"
 * (ledger.c: state, optout keys and contact.event as for any entry), their ids derived from
 * the request id, the line and the category, so a retried import (same X-Request-Id) records
 * nothing twice.
 *
 * Threading: loop thread; one MongoDB write (then one ledger entry per consent status) at a
 * time, so lines naming the same contact apply in order. Ownership: struct im owns the parsed
 * lines' current document and the answer; freed after the reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "wa/clock.h"
#include "wa/crypto.h"
#include "wa/rest.h"
#include "wa/log.h"
#include "wa/mongo.h"

#define IMPORT_BODY_MAX  (32u * 1024u * 1024u)
#define IMPORT_LINES_MAX 100000
#define IMPORT_LINE_MAX  (64u * 1024u)
#define IMPORT_ERRORS    1000 /* lines reported in full; the counts cover the rest */

struct im {
    struct us *us;
    struct wa_http_req *req;
    const char *body; /* borrowed from req until the reply */
    size_t len, pos;
    size_t line; /* 1-based number of the line being applied */
    size_t received, created, updated, failed, entries;
    size_t failed_line; /* the last line counted in failed */
    json_t *doc;        /* the current line */
    json_t *errors;     /* [{line, id?, errors: [{pointer, detail}]}] */
    char cid[US_ID_MAX];
    int cat; /* next consent category of the current line to apply */
    struct us_entry entry;
};

static void next_line(struct im *m);

static void
im_free(struct im *m)
{
    json_decref(m->doc);
    json_decref(m->errors);
    free(m);
}

static void
line_error(struct im *m, const char *pointer, const char *detail)
{
    json_t *last = json_array_get(m->errors, json_array_size(m->errors) - 1);

    if (m->failed_line != m->line) {
        m->failed_line = m->line;
        m->failed++;
        if (json_array_size(m->errors) >= IMPORT_ERRORS) {
            return;
        }
        last = json_pack("{s:I, s:[]}", "line", (json_int_t)m->line, "errors");
        if (last == NULL) {
            return;
        }
        if (m->cid[0] != '\0') {
            json_object_set_new(last, "id", json_string(m->cid));
        }
        json_array_append_new(m->errors, last);
    }
    if (json_integer_value(json_object_get(last, "line")) != (json_int_t)m->line) {
        return; /* past IMPORT_ERRORS lines: counted only */
    }
    json_array_append_new(json_object_get(last, "errors"),
                          json_pack("{s:s, s:s}", "pointer", pointer, "detail", detail));
}

static void
finish(struct im *m)
{
    json_t *out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:O}", "received", (json_int_t)m->received,
                            "created", (json_int_t)m->created, "updated", (json_int_t)m->updated,
                            "failed", (json_int_t)m->failed, "consent_entries",
                            (json_int_t)m->entries, "errors", m->errors);
    char *text = out != NULL ? json_dumps(out, JSON_COMPACT) : NULL;

    /* before the reply: the request (and its id) is the server's again after it */
    wa_log_info(NULL, "import %s: %zu lines, %zu created, %zu updated, %zu failed",
                wa_http_req_id(m->req), m->received, m->created, m->updated, m->failed);
    if (text == NULL) {
        wa_http_reply_problem(m->req, 500, "Internal Server Error", "out of memory", NULL, 0);
    } else {
        wa_http_reply_json(m->req, 200, text);
    }
    free(text);
    json_decref(out);
    im_free(m);
}

/* ---- consent statuses of the line: one ledger entry each, in category order ---- */

static void next_consent(struct im *m);

static void
on_entry(void *arg, enum wa_err err)
{
    struct im *m = arg;

    if (err != WA_OK) {
        char ptr[64];

        snprintf(ptr, sizeof(ptr), "/consent/%s", us_category_name(m->entry.category));
        line_error(m, ptr, "the consent ledger did not answer; the entry was not recorded");
    } else {
        m->entries++;
    }
    next_consent(m);
}

static void
next_consent(struct im *m)
{
    const json_t *consent = json_object_get(m->doc, "consent");

    while (m->cat < US_NCATEGORIES) {
        enum us_category c = (enum us_category)m->cat++;
        const char *status = wa_json_str(consent, us_category_name(c));
        struct us_entry *e = &m->entry;
        char cause[2 * US_ID_MAX + 64], hex[33];
        unsigned char digest[32];
        int w;

        if (status == NULL) {
            continue;
        }
        memset(e, 0, sizeof(*e));
        e->category = c;
        (void)us_status_parse(status, &e->status); /* checked with the line */
        w = snprintf(cause, sizeof(cause), "%s\n%zu\n%s\n%s", wa_http_req_id(m->req), m->line,
                     us_category_name(c), m->cid);
        wa_sha256(cause, w > 0 ? (size_t)w : 0, digest);
        wa_hex_encode(digest, 16, hex);
        snprintf(e->id, sizeof(e->id), "imp:%s", hex);
        snprintf(e->contact, sizeof(e->contact), "%s", us_key_identity(m->cid));
        snprintf(e->scope, sizeof(e->scope), "%s", US_SCOPE_ALL);
        snprintf(e->evidence_command, sizeof(e->evidence_command), "%s", wa_http_req_id(m->req));
        e->source = US_SRC_IMPORT;
        e->at_ms = (int64_t)wa_clock_wall_ms();
        if (us_ledger_apply(m->us, e, on_entry, m) == WA_OK) {
            return;
        }
        on_entry(m, WA_EUNAVAIL);
        return;
    }
    next_line(m);
}

/* ---- the contact's fields ---- */

/* The line is applied whatever happened to its event: on to its consent statuses. */
static void
on_written_event(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct im *m = arg;

    (void)partition;
    (void)offset;
    if (err != WA_OK) {
        wa_log_warn(NULL, "import %s line %zu: contact.event: %s", wa_http_req_id(m->req), m->line,
                    wa_err_name(err));
    }
    m->cat = 0;
    next_consent(m);
}

static void
on_written(void *arg, enum wa_err err, int64_t matched, int64_t modified, bool upserted)
{
    char cause[160];

    struct im *m = arg;

    (void)matched;
    (void)modified;
    if (err != WA_OK) {
        line_error(m, "", "the contact store did not answer; the line was not applied");
        next_line(m);
        return;
    }
    if (upserted) {
        m->created++;
    } else {
        m->updated++;
    }
    (void)us_cache_invalidate(m->us, m->cid, NULL, NULL);
    snprintf(cause, sizeof(cause), "%s:%zu", wa_http_req_id(m->req), m->line);
    if ((err = us_event_written(m->us, cause, m->cid, upserted, m->doc, on_written_event, m)) !=
        WA_OK) {
        on_written_event(err, -1, -1, m);
    }
}

static const char *const identity_keys[] = {"id", "phone", "bsuid"};

/* Checks the line's consent object; reports each bad member. */
static void
check_consent(struct im *m, const json_t *consent)
{
    const char *key;
    json_t *v;

    if (!json_is_object(consent)) {
        line_error(m, "/consent", "must be an object of category: opted_in | opted_out");
        return;
    }
    json_object_foreach((json_t *)consent, key, v)
    {
        enum us_category c;
        enum us_status s;
        char ptr[96];

        snprintf(ptr, sizeof(ptr), "/consent/%.64s", key);
        if (us_category_parse(key, &c) != WA_OK) {
            line_error(m, ptr, "is not a category (marketing, utility, authentication, service)");
        } else if (us_status_parse(json_string_value(v), &s) != WA_OK) {
            line_error(m, ptr, "must be opted_in or opted_out");
        }
    }
}

/* Validates the current line; WA_OK with m->cid set, else its errors are reported. */
static enum wa_err
check_line(struct im *m, json_t **fields)
{
    struct us_body_check c;
    const char *identity = NULL, *key = NULL;
    size_t before = m->failed;

    *fields = NULL;
    m->cid[0] = '\0';
    for (size_t i = 0; i < sizeof(identity_keys) / sizeof(identity_keys[0]); i++) {
        const json_t *v = json_object_get(m->doc, identity_keys[i]);

        if (v != NULL && identity == NULL) {
            identity = json_string_value(v);
            key = identity_keys[i];
            if (identity == NULL) {
                identity = "";
            }
        }
    }
    if (identity == NULL) {
        line_error(m, "/id", "missing: each line names its contact by id, phone or bsuid");
        return WA_EINVAL;
    }
    if (us_contact_path_id(identity, m->cid, sizeof(m->cid)) != WA_OK) {
        char ptr[16];

        m->cid[0] = '\0';
        snprintf(ptr, sizeof(ptr), "/%s", key);
        line_error(m, ptr, "not a phone number valid for its country (+15551234567) or a BSUID");
        return WA_EINVAL;
    }
    *fields = json_deep_copy(m->doc);
    if (*fields == NULL) {
        line_error(m, "", "out of memory");
        return WA_ENOMEM;
    }
    for (size_t i = 0; i < sizeof(identity_keys) / sizeof(identity_keys[0]); i++) {
        json_object_del(*fields, identity_keys[i]);
    }
    if (json_object_get(*fields, "consent") != NULL) {
        check_consent(m, json_object_get(*fields, "consent"));
        json_object_del(*fields, "consent");
    }
    us_contact_body_check(*fields, true, &c);
    for (size_t i = 0; i < c.n; i++) {
        line_error(m, c.errors[i].pointer, c.errors[i].detail);
    }
    if (m->failed != before) {
        json_decref(*fields);
        *fields = NULL;
        return WA_EINVAL;
    }
    return WA_OK;
}

/* True when a MongoDB write was started (its callback goes on); false: the line failed. */
static bool
apply_line(struct im *m)
{
    char now[WA_RFC3339_LEN];
    json_t *fields = NULL, *update = NULL, *filter = NULL;
    enum wa_err err;

    if (check_line(m, &fields) != WA_OK) {
        return false;
    }
    wa_clock_rfc3339(wa_clock_wall_ms(), now);
    if (us_contact_update(fields, true, now, &update) != WA_OK) {
        json_decref(fields);
        line_error(m, "", "out of memory");
        return false;
    }
    json_decref(fields);
    json_object_set_new(update, "$setOnInsert",
                        json_pack("{s:s, s:s, s:i}", "created_at", now,
                                  m->cid[0] == '+' ? "phone" : "bsuid", m->cid, "unread_count", 0));
    filter = json_pack("{s:s}", "_id", m->cid);
    err = filter != NULL ? wa_mongo_update_one(m->us->mongo, US_COLL_CONTACTS, filter, update, true,
                                               on_written, m)
                         : WA_ENOMEM;
    json_decref(filter);
    json_decref(update);
    if (err != WA_OK) {
        line_error(m, "", "the contact store did not answer; the line was not applied");
        return false;
    }
    return true;
}

/* Takes the next non-empty line; runs until a line waits for MongoDB or the body ends. */
static void
next_line(struct im *m)
{
    for (;;) {
        const char *start = m->body + m->pos, *nl;
        size_t n;
        json_error_t jerr;

        json_decref(m->doc);
        m->doc = NULL;
        m->cid[0] = '\0';
        if (m->pos >= m->len) {
            finish(m);
            return;
        }
        nl = memchr(start, '\n', m->len - m->pos);
        n = nl != NULL ? (size_t)(nl - start) : m->len - m->pos;
        m->pos += n + (nl != NULL);
        m->line++;
        if (n > 0 && start[n - 1] == '\r') {
            n--;
        }
        if (strspn(start, " \t") >= n) {
            continue; /* a blank line is no contact */
        }
        m->received++;
        if (m->received > IMPORT_LINES_MAX) {
            line_error(m, "", "past the 100000 lines one import takes; send the rest again");
            continue;
        }
        if (n > IMPORT_LINE_MAX) {
            line_error(m, "", "the line is longer than 65536 bytes");
            continue;
        }
        m->doc = json_loadb(start, n, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(m->doc)) {
            line_error(m, "", m->doc == NULL ? jerr.text : "the line must be a JSON object");
            continue;
        }
        if (apply_line(m)) {
            return;
        }
    }
}

static void
on_import(struct wa_http_req *req, void *arg)
{
    struct im *m = calloc(1, sizeof(*m));

    if (m == NULL || (m->errors = json_array()) == NULL) {
        free(m);
        wa_http_reply_problem(req, 503, "Service Unavailable", "out of memory", NULL, 0);
        return;
    }
    m->us = arg;
    m->req = req;
    m->body = wa_http_req_body(req, &m->len);
    if (m->body == NULL) {
        m->body = "";
        m->len = 0;
    }
    next_line(m);
}

enum wa_err
us_import_start(struct us *us, struct wa_error *error)
{
    struct wa_httpd *h = wa_service_httpd(us->svc);

    if (wa_httpd_route(h, "POST", "/v1/contacts/import", IMPORT_BODY_MAX, on_import, us) != WA_OK) {
        return wa_error_set(error, WA_ENOMEM, "route POST /v1/contacts/import");
    }
    return WA_OK;
}
