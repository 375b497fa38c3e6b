/*
 * outbound.c: decoder of outbound.request and encoders of outbound.result / outbound.dlq data
 * (shapes in wa/contract_outbound.h). Pure functions; thread-safe.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wa/contract.h"
#include "wa/contract_outbound.h"

static const char *const types[] = {"text",     "template",    "image",    "video",
                                    "audio",    "document",    "sticker",  "location",
                                    "contacts", "interactive", "reaction", "read-receipt"};
static const char *const categories[] = {"marketing", "utility", "authentication", "service"};

static bool
in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, list[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int
digits(const char *s, size_t n, int *out)
{
    int v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* 28..31; timegm would silently roll "02-31" into March. */
static int
days_in_month(int y, int mo)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return mo == 2 && leap ? 29 : days[mo - 1];
}

enum wa_err
wa_contract_time_parse(const char *s, int64_t *out_ms)
{
    struct tm tm;
    int y, mo, d, h, mi, sec, ms = 0, oh = 0, om = 0, sign = 1;
    size_t i = 19;
    time_t t;

    if (s == NULL || strlen(s) < 20 || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':' ||
        digits(s, 4, &y) != 0 || digits(s + 5, 2, &mo) != 0 || digits(s + 8, 2, &d) != 0 ||
        digits(s + 11, 2, &h) != 0 || digits(s + 14, 2, &mi) != 0 || digits(s + 17, 2, &sec) != 0 ||
        mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60) {
        return WA_EPARSE;
    }
    if (s[i] == '.') {
        int scale = 100;

        i++;
        if (s[i] < '0' || s[i] > '9') {
            return WA_EPARSE;
        }
        for (; s[i] >= '0' && s[i] <= '9'; i++) {
            ms += (s[i] - '0') * scale;
            scale /= 10;
        }
    }
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if ((s[i] == '+' || s[i] == '-') && strlen(s + i) == 6 && s[i + 3] == ':' &&
               digits(s + i + 1, 2, &oh) == 0 && digits(s + i + 4, 2, &om) == 0) {
        sign = s[i] == '-' ? -1 : 1;
        i += 6;
    } else {
        return WA_EPARSE;
    }
    if (s[i] != '\0') {
        return WA_EPARSE;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    *out_ms = ((int64_t)t - sign * (int64_t)(oh * 3600 + om * 60)) * 1000 + ms;
    return WA_OK;
}

/* A time field: absent (0), integer ms since the epoch, or an RFC 3339 string. */
static enum wa_err
get_time(const json_t *data, const char *key, int64_t *out, struct wa_error *error)
{
    const json_t *v = json_object_get(data, key);

    *out = 0;
    if (v == NULL || json_is_null(v)) {
        return WA_OK;
    }
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = json_integer_value(v);
        return WA_OK;
    }
    if (json_is_string(v) && wa_contract_time_parse(json_string_value(v), out) == WA_OK) {
        return WA_OK;
    }
    return wa_error_set(error, WA_EPARSE, "%s: not an RFC 3339 time or ms since the epoch", key);
}

static enum wa_err
opt_str(const json_t *data, const char *key, size_t max, const char **out, struct wa_error *error)
{
    const json_t *v = json_object_get(data, key);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return WA_OK;
    }
    if (wa_json_get_str(data, key, max, out, NULL) != WA_OK || (*out)[0] == '\0') {
        *out = NULL;
        return wa_error_set(error, WA_EPARSE, "%s: must be a non-empty string of at most %zu bytes",
                            key, max);
    }
    return WA_OK;
}

enum wa_err
wa_contract_outbound_request_decode(const json_t *data, struct wa_contract_outbound_request *out,
                                    struct wa_error *error)
{
    const json_t *v;
    enum wa_err err;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(data)) {
        return wa_error_set(error, WA_EPARSE, "data: must be an object");
    }
    if ((err = opt_str(data, "request_id", WA_CONTRACT_REQUEST_ID_MAX, &out->request_id, error)) !=
        WA_OK) {
        return err;
    }
    if (out->request_id == NULL) {
        return wa_error_set(error, WA_EPARSE, "request_id: required");
    }
    if ((err = opt_str(data, "phone_number_id", 64, &out->phone_number_id, error)) != WA_OK ||
        (err = opt_str(data, "to", 64, &out->to, error)) != WA_OK ||
        (err = opt_str(data, "recipient", 160, &out->recipient, error)) != WA_OK ||
        (err = opt_str(data, "type", 32, &out->type, error)) != WA_OK ||
        (err = opt_str(data, "category", 32, &out->category, error)) != WA_OK) {
        return err;
    }
    if (out->phone_number_id == NULL) {
        return wa_error_set(error, WA_EPARSE, "phone_number_id: required");
    }
    for (const char *p = out->phone_number_id; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return wa_error_set(error, WA_EPARSE, "phone_number_id: must be digits");
        }
    }
    if (out->to == NULL && out->recipient == NULL) {
        return wa_error_set(error, WA_EPARSE, "to: one of to / recipient is required");
    }
    if (out->type == NULL || !in_list(out->type, types, WA_ARRAY_LEN(types))) {
        return wa_error_set(error, WA_EPARSE, "type: missing or not a known message type");
    }
    if (out->category != NULL && !in_list(out->category, categories, WA_ARRAY_LEN(categories))) {
        return wa_error_set(error, WA_EPARSE,
                            "category: must be marketing, utility, authentication or service");
    }
    out->body = json_object_get(data, out->type);
    /* Cloud API shape: an object, except contacts, which is an array of contact cards. */
    if (strcmp(out->type, "contacts") == 0 ? !json_is_array(out->body)
                                           : !json_is_object(out->body)) {
        out->body = NULL;
        return wa_error_set(error, WA_EPARSE, "%s: the body of type %s must be an %s", out->type,
                            out->type, strcmp(out->type, "contacts") == 0 ? "array" : "object");
    }
    v = json_object_get(data, "context");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_object(v)) {
            return wa_error_set(error, WA_EPARSE, "context: must be an object");
        }
        out->context = v;
    }
    v = json_object_get(data, "fallback_template");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_object(v)) {
            return wa_error_set(error, WA_EPARSE, "fallback_template: must be an object");
        }
        out->fallback_template = v;
    }
    v = json_object_get(data, "priority");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v)) {
            return wa_error_set(error, WA_EPARSE, "priority: must be an integer");
        }
        out->priority = json_integer_value(v);
    }
    if ((err = get_time(data, "not_before", &out->not_before_ms, error)) != WA_OK ||
        (err = get_time(data, "expires_at", &out->expires_at_ms, error)) != WA_OK) {
        return err;
    }
    out->metadata = json_object_get(data, "metadata");
    return WA_OK;
}

static json_t *
str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

enum wa_err
wa_contract_outbound_result_data(const struct wa_contract_outbound_result *r, json_t **out)
{
    json_t *o = json_object(), *e = NULL;
    int bad = 0;

    *out = NULL;
    if (o == NULL) {
        return WA_ENOMEM;
    }
    bad |= json_object_set_new(o, "request_id", str_or_null(r->request_id));
    bad |= json_object_set_new(o, "phone_number_id", str_or_null(r->phone_number_id));
    bad |= json_object_set_new(o, "to", str_or_null(r->to));
    bad |= json_object_set_new(o, "status", json_string(r->accepted ? "accepted" : "failed"));
    bad |= json_object_set_new(o, "wamid", str_or_null(r->wamid));
    bad |= json_object_set_new(o, "attempts", json_integer(r->attempts));
    bad |= json_object_set_new(o, "reason", str_or_null(r->reason));
    if (!r->accepted) {
        e = json_object();
        if (e == NULL) {
            json_decref(o);
            return WA_ENOMEM;
        }
        bad |= json_object_set_new(e, "code", r->has_code ? json_integer(r->code) : json_null());
        bad |= json_object_set_new(e, "title", str_or_null(r->title));
        bad |= json_object_set_new(e, "details", str_or_null(r->details));
    }
    bad |= json_object_set_new(o, "error", e != NULL ? e : json_null());
    bad |= json_object_set_new(o, "fallback", json_boolean(r->fallback));
    bad |= json_object_set_new(
        o, "metadata", r->metadata != NULL ? json_incref((json_t *)r->metadata) : json_null());
    if (bad != 0) {
        json_decref(o);
        return WA_ENOMEM;
    }
    *out = o;
    return WA_OK;
}

enum wa_err
wa_contract_outbound_result_decode(const json_t *data, struct wa_contract_outbound_result *out,
                                   struct wa_error *error)
{
    const char *status = wa_json_str(data, "status");
    const json_t *e = json_object_get(data, "error"), *code = json_object_get(e, "code");
    const json_t *attempts = json_object_get(data, "attempts"), *md;

    memset(out, 0, sizeof(*out));
    out->request_id = wa_json_str(data, "request_id");
    if (out->request_id == NULL || out->request_id[0] == '\0') {
        return wa_error_set(error, WA_EPARSE, "request_id: missing");
    }
    if (status == NULL || (strcmp(status, "accepted") != 0 && strcmp(status, "failed") != 0)) {
        return wa_error_set(error, WA_EPARSE, "status: accepted or failed");
    }
    out->accepted = strcmp(status, "accepted") == 0;
    out->phone_number_id = wa_json_str(data, "phone_number_id");
    out->to = wa_json_str(data, "to");
    out->wamid = wa_json_str(data, "wamid");
    out->reason = wa_json_str(data, "reason");
    out->attempts = json_is_integer(attempts) ? json_integer_value(attempts) : 0;
    out->has_code = json_is_integer(code);
    out->code = out->has_code ? json_integer_value(code) : 0;
    out->title = wa_json_str(e, "title");
    out->details = wa_json_str(e, "details");
    out->fallback = json_is_true(json_object_get(data, "fallback"));
    md = json_object_get(data, "metadata");
    out->metadata = json_is_null(md) ? NULL : md;
    return WA_OK;
}

static char *
base64(const unsigned char *p, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc((len + 2) / 3 * 4 + 1), *o = s;

    if (s == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;

        v |= i + 1 < len ? (unsigned)p[i + 1] << 8 : 0;
        v |= i + 2 < len ? p[i + 2] : 0;
        *o++ = tab[(v >> 18) & 63];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? tab[v & 63] : '=';
    }
    *o = '\0';
    return s;
}

enum wa_err
wa_contract_outbound_dlq_data(const struct wa_contract_outbound_result *r,
                              const json_t *attempts_log, const json_t *request, const void *raw,
                              size_t len, json_t **out)
{
    json_t *o = NULL;
    enum wa_err err = wa_contract_outbound_result_data(r, &o);
    int bad = 0;

    *out = NULL;
    if (err != WA_OK) {
        return err;
    }
    bad |= json_object_set_new(o, "attempts_log",
                               attempts_log != NULL ? json_incref((json_t *)attempts_log)
                                                    : json_array());
    if (request != NULL) {
        bad |= json_object_set_new(o, "request", json_incref((json_t *)request));
    } else if (raw != NULL && wa_contract_utf8_text(raw, len)) {
        bad |= json_object_set_new(o, "raw", json_stringn(raw, len));
    } else {
        char *b = base64(raw != NULL ? raw : (const void *)"", raw != NULL ? len : 0);

        bad |= b == NULL ? -1 : json_object_set_new(o, "raw_base64", json_string(b));
        free(b);
    }
    if (bad != 0) {
        json_decref(o);
        return WA_ENOMEM;
    }
    *out = o;
    return WA_OK;
}
