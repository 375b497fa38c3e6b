/*
 * cloudevent.c: CloudEvents 1.0 JSON structured mode, encoder and validating decoder.
 *
 * The encoder writes attributes in a fixed order (specversion, id, source, type, subject, time,
 * datacontenttype, phonenumberid, traceparent, data) so encoded events are byte-stable and the
 * golden files under tests/data/cloudevent compare exactly; wa_cloudevent_write is the same
 * envelope around data written by a caller's function (wa-ingest's hot path). The decoder keeps the jansson tree;
 * the event's strings point into it (ownership: struct wa_cloudevent_doc).
 * No shared state: safe on any thread.
 */
#include "wa/cloudevent.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/clock.h"
#include "wa/id.h"
#include "wa/json.h"

void
wa_cloudevent_init(struct wa_cloudevent *ev, const char *source, const char *type)
{
    char now[WA_RFC3339_LEN];

    memset(ev, 0, sizeof(*ev));
    wa_ulid_new(ev->id);
    wa_clock_rfc3339(wa_clock_wall_ms(), now);
    snprintf(ev->time, sizeof(ev->time), "%s", now);
    ev->source = source;
    ev->type = type;
    ev->datacontenttype = "application/json";
}

/* ---- RFC 3339 date-time (section 5.6), strict: digits counted, ranges checked ---- */

static bool
digits(const char *s, int n, int *value)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *value = v;
    return true;
}

static int
days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

bool
wa_cloudevent_time_valid(const char *s)
{
    int year, month, day, hour, min, sec, oh, om;

    if (s == NULL || strlen(s) >= WA_CLOUDEVENT_TIME_MAX) {
        return false;
    }
    if (!digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &month) || s[7] != '-' ||
        !digits(s + 8, 2, &day) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &hour) ||
        s[13] != ':' || !digits(s + 14, 2, &min) || s[16] != ':' || !digits(s + 17, 2, &sec)) {
        return false;
    }
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
        min > 59 || sec > 60) {
        return false;
    }
    s += 19;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9') {
            return false;
        }
        while (*s >= '0' && *s <= '9') {
            s++;
        }
    }
    if ((*s == 'Z' || *s == 'z') && s[1] == '\0') {
        return true;
    }
    if ((*s == '+' || *s == '-') && digits(s + 1, 2, &oh) && s[3] == ':' && digits(s + 4, 2, &om) &&
        s[6] == '\0') {
        return oh <= 23 && om <= 59;
    }
    return false;
}

/* ---- encoder ---- */

static bool
present(const char *s)
{
    return s != NULL && *s != '\0';
}

/* Appends name (the literal ,"attr": with its separator) and value, escaped; nothing when value
 * is absent. */
static enum wa_err
put_attr(struct wa_buf *out, const char *name, size_t nlen, const char *value)
{
    enum wa_err err;

    if (!present(value)) {
        return WA_OK;
    }
    if ((err = wa_buf_append(out, name, nlen)) != WA_OK) {
        return err;
    }
    return wa_buf_append_json_string(out, value, strlen(value));
}

#define ATTR(out, lit, v) put_attr((out), (lit), sizeof(lit) - 1, (v))

/* wa_cloudevent_encode's data writer: arg is the json_t, written by wa_json_write (reals as
 * sent, the same bytes as the direct writers). */
static enum wa_err
dump_data(struct wa_buf *out, const void *arg)
{
    return wa_json_dump_buf(arg, out);
}

/* The envelope, shared by both encoders: data written by write_data(arg), none when NULL. */
static enum wa_err
encode(const struct wa_cloudevent *ev, wa_cloudevent_data_fn write_data, const void *arg,
       struct wa_buf *out, struct wa_error *error)
{
    const char *ctype = ev->datacontenttype;
    size_t start = out->len;
    enum wa_err err;

    if (!present(ev->id) || !present(ev->source) || !present(ev->type)) {
        return wa_error_set(error, WA_EINVAL, "cloudevent needs id, source and type");
    }
    if (memchr(ev->id, '\0', sizeof(ev->id)) == NULL) {
        return wa_error_set(error, WA_EINVAL, "cloudevent id is not NUL-terminated");
    }
    if (ev->time[0] != '\0' && !wa_cloudevent_time_valid(ev->time)) {
        return wa_error_set(error, WA_EINVAL, "cloudevent time is not RFC 3339");
    }
    if (write_data != NULL && !present(ctype)) {
        ctype = "application/json";
    }
    if ((err = wa_buf_append_str(out, "{\"specversion\":\"1.0\"")) != WA_OK ||
        (err = ATTR(out, ",\"id\":", ev->id)) != WA_OK ||
        (err = ATTR(out, ",\"source\":", ev->source)) != WA_OK ||
        (err = ATTR(out, ",\"type\":", ev->type)) != WA_OK ||
        (err = ATTR(out, ",\"subject\":", ev->subject)) != WA_OK ||
        (err = ATTR(out, ",\"time\":", ev->time)) != WA_OK ||
        (err = ATTR(out, ",\"datacontenttype\":", ctype)) != WA_OK ||
        (err = ATTR(out, ",\"phonenumberid\":", ev->phonenumberid)) != WA_OK ||
        (err = ATTR(out, ",\"traceparent\":", ev->traceparent)) != WA_OK) {
        goto out;
    }
    if (write_data != NULL && ((err = wa_buf_append_str(out, ",\"data\":")) != WA_OK ||
                               (err = write_data(out, arg)) != WA_OK)) {
        goto out;
    }
    err = wa_buf_append_str(out, "}");
out:
    if (err != WA_OK) {
        out->len = start; /* leave out as it was */
        if (out->data != NULL) {
            out->data[start] = '\0';
        }
        return wa_error_set(error, err, "cannot encode cloudevent: %s", wa_err_text(err));
    }
    return WA_OK;
}

enum wa_err
wa_cloudevent_encode(const struct wa_cloudevent *ev, struct wa_buf *out, struct wa_error *error)
{
    return encode(ev, ev->data != NULL ? dump_data : NULL, ev->data, out, error);
}

enum wa_err
wa_cloudevent_write(const struct wa_cloudevent *ev, wa_cloudevent_data_fn write_data,
                    const void *arg, struct wa_buf *out, struct wa_error *error)
{
    if (write_data == NULL) {
        return wa_error_set(error, WA_EINVAL, "cloudevent data writer missing");
    }
    return encode(ev, write_data, arg, out, error);
}

/* ---- decoder ---- */

/* Optional string attribute: absent -> NULL; present but not a non-empty string -> error. */
static enum wa_err
opt_string(json_t *root, const char *name, const char **out, struct wa_error *error)
{
    json_t *v = json_object_get(root, name);

    *out = NULL;
    if (v == NULL) {
        return WA_OK;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        return wa_error_set(error, WA_EPARSE, "attribute \"%s\" must be a non-empty string", name);
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        return wa_error_set(error, WA_EPARSE, "attribute \"%s\" contains a NUL character", name);
    }
    *out = json_string_value(v);
    return WA_OK;
}

static enum wa_err
req_string(json_t *root, const char *name, const char **out, struct wa_error *error)
{
    enum wa_err err = opt_string(root, name, out, error);

    if (err == WA_OK && *out == NULL) {
        return wa_error_set(error, WA_EPARSE, "required attribute \"%s\" is missing", name);
    }
    return err;
}

static enum wa_err
copy_bounded(char *dst, size_t size, const char *src, const char *name, struct wa_error *error)
{
    size_t len = strlen(src);

    if (len >= size) {
        return wa_error_set(error, WA_EPARSE, "attribute \"%s\" is longer than %zu bytes", name,
                            size - 1);
    }
    memcpy(dst, src, len + 1);
    return WA_OK;
}

enum wa_err
wa_cloudevent_decode(const char *json, size_t len, struct wa_cloudevent_doc **out,
                     struct wa_error *error)
{
    struct wa_cloudevent_doc *doc = NULL;
    struct wa_cloudevent *ev;
    struct wa_error perr = {0};
    const char *specversion, *id, *time;
    enum wa_err err;

    *out = NULL;
    if (len > WA_CLOUDEVENT_MAX) {
        return wa_error_set(error, WA_ETOOBIG, "cloudevent of %zu bytes exceeds %d", len,
                            WA_CLOUDEVENT_MAX);
    }
    if ((doc = calloc(1, sizeof(*doc))) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    ev = &doc->ev;
    err = wa_json_parse_unique(json, len, WA_CLOUDEVENT_MAX_DEPTH, &doc->root, &perr);
    if (err == WA_ELIMIT) {
        err = wa_error_set(error, WA_ELIMIT, "cloudevent nested deeper than %d levels",
                           WA_CLOUDEVENT_MAX_DEPTH);
        goto out;
    }
    if (err != WA_OK) {
        err = wa_error_set(error, err, "not JSON: %s", perr.message);
        goto out;
    }
    if (!json_is_object(doc->root)) {
        err = wa_error_set(error, WA_EPARSE, "a cloudevent must be a JSON object");
        goto out;
    }
    if ((err = req_string(doc->root, "specversion", &specversion, error)) != WA_OK) {
        goto out;
    }
    if (strcmp(specversion, "1.0") != 0) {
        err = wa_error_set(error, WA_EPARSE, "specversion must be \"1.0\"");
        goto out;
    }
    if ((err = req_string(doc->root, "id", &id, error)) != WA_OK ||
        (err = copy_bounded(ev->id, sizeof(ev->id), id, "id", error)) != WA_OK ||
        (err = req_string(doc->root, "source", &ev->source, error)) != WA_OK ||
        (err = req_string(doc->root, "type", &ev->type, error)) != WA_OK ||
        (err = opt_string(doc->root, "subject", &ev->subject, error)) != WA_OK ||
        (err = opt_string(doc->root, "time", &time, error)) != WA_OK ||
        (err = opt_string(doc->root, "datacontenttype", &ev->datacontenttype, error)) != WA_OK ||
        (err = opt_string(doc->root, "phonenumberid", &ev->phonenumberid, error)) != WA_OK ||
        (err = opt_string(doc->root, "traceparent", &ev->traceparent, error)) != WA_OK) {
        goto out;
    }
    if (time != NULL) {
        if (!wa_cloudevent_time_valid(time)) {
            err = wa_error_set(error, WA_EPARSE, "attribute \"time\" is not an RFC 3339 time");
            goto out;
        }
        memcpy(ev->time, time, strlen(time) + 1); /* fits: checked by time_valid */
    }
    ev->data = json_object_get(doc->root, "data");
    if (ev->data != NULL && json_object_get(doc->root, "data_base64") != NULL) {
        err = wa_error_set(error, WA_EPARSE, "\"data\" and \"data_base64\" are exclusive");
        goto out;
    }
    *out = doc;
    doc = NULL;
    err = WA_OK;
out:
    wa_cloudevent_doc_free(doc);
    return err;
}

void
wa_cloudevent_doc_free(struct wa_cloudevent_doc *doc)
{
    if (doc == NULL) {
        return;
    }
    json_decref(doc->root);
    free(doc);
}
