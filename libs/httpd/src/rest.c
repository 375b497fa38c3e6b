/*
 * rest.c: the REST layer over the server of httpd.c (wa/rest.h): path templates and
 * percent-decoding, query strings, request parameters and attributes, RFC 9457 problem
 * answers, the enum wa_err -> status mapping, the JSON body middleware and page cursors.
 *
 * The matching and decoding functions are pure (the server calls them per request, the fuzz
 * target tests/fuzz/fuzz_http_rest.c calls them directly). Everything touching a request runs
 * on the loop thread. A request's decoded parameters live in buffers it owns (httpd_int.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd_int.h"
#include "wa/buf.h"
#include "wa/crypto.h"
#include "wa/hex.h"
#include "wa/id.h"
#include "wa/log.h"
#include "wa/rest.h"

#define CURSOR_VERSION 1
#define CURSOR_MAC_LEN 16
#define SCOPE_MAX      1024

/* ---- percent-encoding, templates, query strings (pure) ---- */

ssize_t
wa_http_pct_decode(const char *s, size_t n, bool plus_space, char *out, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '%') {
            int hi, lo;

            if (n - i < 3) {
                return -1;
            }
            hi = wa_hex_value(s[i + 1]);
            lo = wa_hex_value(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                return -1;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        } else if (c == '\0') {
            return -1;
        }
        if (o + 1 >= size) {
            return -1;
        }
        out[o++] = c;
    }
    if (o >= size) {
        return -1;
    }
    out[o] = '\0';
    return (ssize_t)o;
}

enum wa_err
wa_http_template_match(const char *tpl, const char *path, char *buf, size_t size,
                       struct wa_http_params *out)
{
    const char *t = tpl, *p = path;
    size_t used = 0;
    bool bad = false;

    out->n = 0;
    if (*t != '/' || *p != '/') {
        return WA_ENOTFOUND;
    }
    while (*t == '/' && *p == '/') {
        const char *te, *pe;
        size_t tl, pl;

        t++;
        p++;
        te = strchr(t, '/');
        pe = strchr(p, '/');
        tl = te != NULL ? (size_t)(te - t) : strlen(t);
        pl = pe != NULL ? (size_t)(pe - p) : strlen(p);
        if (tl >= 2 && t[0] == '{' && t[tl - 1] == '}') {
            ssize_t d;

            if (pl == 0) {
                return WA_ENOTFOUND; /* "{id}" is one non-empty segment */
            }
            if (bad || out->n >= WA_HTTP_PARAMS_MAX) {
                bad = true;
            } else if ((d = wa_http_pct_decode(p, pl, false, buf + used, size - used)) <= 0) {
                if (size - used <= pl) {
                    return WA_ETOOBIG;
                }
                bad = true;
            } else {
                out->name[out->n] = t + 1;
                out->name_len[out->n] = tl - 2;
                out->value[out->n++] = buf + used;
                used += (size_t)d + 1;
            }
        } else if (tl != pl || memcmp(t, p, tl) != 0) {
            return WA_ENOTFOUND;
        }
        t += tl;
        p += pl;
    }
    if (*t != '\0' || *p != '\0') {
        return WA_ENOTFOUND;
    }
    if (bad) {
        out->n = 0;
        return WA_EPARSE;
    }
    return WA_OK;
}

/* The value of a bare "?flag": told apart from "?flag=" by identity (wa_http_req_query_each). */
static const char bare_value[] = "";

enum wa_err
wa_http_query_parse(const char *raw, size_t len, char *buf, size_t size, struct wa_http_query *out,
                    struct wa_error *error)
{
    size_t used = 0, i = 0;

    out->n = 0;
    if (size < len + 1) {
        return wa_error_set(error, WA_ETOOBIG, "query string longer than its buffer");
    }
    while (i < len) {
        const char *piece = raw + i, *amp = memchr(piece, '&', len - i), *eq;
        size_t plen = amp != NULL ? (size_t)(amp - piece) : len - i, nlen;
        ssize_t dn, dv = 0;

        i += plen + 1;
        if (plen == 0) {
            continue;
        }
        eq = memchr(piece, '=', plen);
        nlen = eq != NULL ? (size_t)(eq - piece) : plen;
        if (out->n >= WA_HTTP_QUERY_MAX) {
            return wa_error_set(error, WA_ELIMIT, "more than %d query parameters",
                                WA_HTTP_QUERY_MAX);
        }
        dn = wa_http_pct_decode(piece, nlen, true, buf + used, size - used);
        if (dn < 0) {
            return wa_error_set(error, WA_EPARSE,
                                "a query parameter name has a bad percent-encoding or %%00");
        }
        out->name[out->n] = buf + used;
        used += (size_t)dn + 1;
        if (eq != NULL) {
            dv = wa_http_pct_decode(eq + 1, plen - nlen - 1, true, buf + used, size - used);
            if (dv < 0) {
                return wa_error_set(error, WA_EPARSE,
                                    "query parameter %.64s has a bad percent-encoding or %%00",
                                    out->name[out->n]);
            }
            out->value[out->n++] = buf + used;
            used += (size_t)dv + 1;
        } else {
            out->value[out->n++] = bare_value;
        }
    }
    return WA_OK;
}

enum wa_err
rest_query_prepare(struct wa_http_req *req, struct wa_error *error)
{
    size_t len;

    if (req->raw_query == NULL || req->raw_query[0] == '\0') {
        return WA_OK;
    }
    len = strlen(req->raw_query);
    if ((req->query_buf = malloc(len + 1)) == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    return wa_http_query_parse(req->raw_query, len, req->query_buf, len + 1, &req->query, error);
}

bool
wa_http_path_match(const char *tpl, const char *path, char params[][WA_HTTP_PARAM_MAX], size_t max,
                   size_t *n)
{
    size_t size = strlen(path) + 1;
    char *buf = malloc(size);
    struct wa_http_params p;
    bool ok;

    *n = 0;
    if (buf == NULL) {
        return false;
    }
    ok = wa_http_template_match(tpl, path, buf, size, &p) == WA_OK && p.n <= max;
    for (size_t i = 0; ok && i < p.n; i++) {
        ok = strlen(p.value[i]) < WA_HTTP_PARAM_MAX;
        if (ok) {
            snprintf(params[i], WA_HTTP_PARAM_MAX, "%s", p.value[i]);
        }
    }
    *n = ok ? p.n : 0;
    free(buf);
    return ok;
}

/* ---- request accessors ---- */

const char *
wa_http_req_param(const struct wa_http_req *req, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < req->params.n; i++) {
        if (req->params.name_len[i] == len && memcmp(req->params.name[i], name, len) == 0) {
            return req->params.value[i];
        }
    }
    return NULL;
}

const char *
wa_http_req_route(const struct wa_http_req *req)
{
    return req->route != NULL ? req->route->path : NULL;
}

const char *
wa_http_req_traceparent(const struct wa_http_req *req)
{
    return req->traceparent;
}

size_t
wa_http_req_query_all(const struct wa_http_req *req, const char *name, const char **values,
                      size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < req->query.n; i++) {
        if (strcmp(req->query.name[i], name) == 0) {
            if (n < max) {
                values[n] = req->query.value[i];
            }
            n++;
        }
    }
    return n;
}

void
wa_http_req_query_each(const struct wa_http_req *req, wa_http_query_fn fn, void *arg)
{
    for (size_t i = 0; i < req->query.n; i++) {
        fn(arg, req->query.name[i], req->query.value[i] == bare_value ? NULL : req->query.value[i]);
    }
}

enum wa_err
wa_http_req_set_attr(struct wa_http_req *req, const char *name, const char *value)
{
    char *v;

    for (size_t i = 0; i < req->nattrs; i++) {
        if (strcmp(req->attrs[i].name, name) == 0) {
            if ((v = strdup(value)) == NULL) {
                return WA_ENOMEM;
            }
            free(req->attrs[i].value);
            req->attrs[i].value = v;
            return WA_OK;
        }
    }
    if (req->nattrs >= WA_HTTP_ATTR_MAX) {
        return WA_ELIMIT;
    }
    req->attrs[req->nattrs].name = strdup(name);
    req->attrs[req->nattrs].value = strdup(value);
    if (req->attrs[req->nattrs].name == NULL || req->attrs[req->nattrs].value == NULL) {
        free(req->attrs[req->nattrs].name);
        free(req->attrs[req->nattrs].value);
        return WA_ENOMEM;
    }
    req->nattrs++;
    return WA_OK;
}

const char *
wa_http_req_attr(const struct wa_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nattrs; i++) {
        if (strcmp(req->attrs[i].name, name) == 0) {
            return req->attrs[i].value;
        }
    }
    return NULL;
}

/* ---- statuses and problems ---- */

int
wa_http_status(enum wa_err err)
{
    switch (err) {
    case WA_OK:
        return 200;
    case WA_EINVAL:
        return 422;
    case WA_EPARSE:
        return 400;
    case WA_EAUTH:
        return 401;
    case WA_ENOTFOUND:
        return 404;
    case WA_EEXIST:
        return 409;
    case WA_ETOOBIG:
        return 413;
    case WA_ELIMIT:
        return 429;
    case WA_EAGAIN:
    case WA_EUNAVAIL:
    case WA_ECLOSED:
    case WA_ENOMEM:
        return 503;
    case WA_ETIMEDOUT:
        return 504;
    case WA_EIO:
        return 502;
    default:
        return 500;
    }
}

const char *
wa_http_reason(int status)
{
    static const struct {
        int status;
        const char *text;
    } reasons[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {409, "Conflict"},
        {410, "Gone"},
        {412, "Precondition Failed"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"},
        {428, "Precondition Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };

    for (size_t i = 0; i < WA_ARRAY_LEN(reasons); i++) {
        if (reasons[i].status == status) {
            return reasons[i].text;
        }
    }
    return "Error";
}

static enum wa_err
member(struct wa_buf *b, const char *name, const char *value)
{
    enum wa_err err = wa_buf_printf(b, ",\"%s\":", name);

    return err != WA_OK ? err : wa_buf_append_json_string(b, value, strlen(value));
}

void
wa_http_reply_problemx(struct wa_http_req *req, const struct wa_http_problem *p)
{
    const char *type = p->type != NULL ? p->type : "about:blank";
    const char *title = p->title != NULL ? p->title : wa_http_reason(p->status);
    struct wa_buf b;
    bool ok;

    wa_buf_init(&b, 64 * 1024);
    ok = wa_buf_append_str(&b, "{\"type\":") == WA_OK &&
         wa_buf_append_json_string(&b, type, strlen(type)) == WA_OK &&
         member(&b, "title", title) == WA_OK &&
         wa_buf_printf(&b, ",\"status\":%d", p->status) == WA_OK &&
         (p->detail == NULL || member(&b, "detail", p->detail) == WA_OK) &&
         member(&b, "instance", req->path != NULL ? req->path : "") == WA_OK &&
         member(&b, "request_id", req->id) == WA_OK;
    if (ok && p->nerrors > 0) {
        ok = wa_buf_append_str(&b, ",\"errors\":[") == WA_OK;
        for (size_t i = 0; ok && i < p->nerrors; i++) {
            const char *ptr = p->errors[i].pointer != NULL ? p->errors[i].pointer : "";
            bool pointer = ptr[0] == '\0' || ptr[0] == '/';

            ok = wa_buf_append_str(&b, i > 0 ? ",{" : "{") == WA_OK &&
                 wa_buf_printf(&b, "\"%s\":", pointer ? "pointer" : "parameter") == WA_OK &&
                 wa_buf_append_json_string(&b, ptr, strlen(ptr)) == WA_OK &&
                 member(&b, "detail", p->errors[i].detail != NULL ? p->errors[i].detail : "") ==
                     WA_OK &&
                 wa_buf_append_str(&b, "}") == WA_OK;
        }
        ok = ok && wa_buf_append_str(&b, "]") == WA_OK;
    }
    ok = ok && wa_buf_append_str(&b, "}") == WA_OK;
    if (!ok) {
        wa_buf_reset(&b);
        (void)wa_buf_printf(&b, "{\"type\":\"about:blank\",\"status\":%d}", p->status);
    }
    wa_http_reply(req, p->status, "application/problem+json", b.data != NULL ? b.data : "", b.len);
    wa_buf_cleanup(&b);
}

void
wa_http_reply_problem(struct wa_http_req *req, int status, const char *title, const char *detail,
                      const struct wa_http_problem_field *fields, size_t nfields)
{
    struct wa_http_problem p = {
        .status = status, .title = title, .detail = detail, .errors = fields, .nerrors = nfields};

    wa_http_reply_problemx(req, &p);
}

void
wa_http_reply_err(struct wa_http_req *req, enum wa_err err, const char *detail)
{
    wa_http_reply_problem(req, wa_http_status(err), NULL, detail, NULL, 0);
}

void
wa_http_reply_invalid(struct wa_http_req *req, const struct wa_json_violations *v)
{
    struct wa_http_problem_field f[WA_JSON_VIOLATIONS_MAX];

    for (size_t i = 0; i < v->n; i++) {
        f[i].pointer = v->v[i].pointer;
        f[i].detail = v->v[i].detail;
    }
    wa_http_reply_problem(req, 422, NULL,
                          v->truncated ? "the request has invalid fields (the first are listed)"
                                       : "the request has invalid fields",
                          f, v->n);
}

/* ---- JSON bodies ---- */

static bool
json_content_type(const char *ct)
{
    size_t n;

    if (ct == NULL) {
        return true; /* clients that send no Content-Type get the benefit of the doubt */
    }
    n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) {
        n--;
    }
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

static void
on_json_body(struct wa_http_req *req, void *arg)
{
    const struct wa_json_validator *schema = arg;
    struct wa_json_violations *v;
    struct wa_error error = {0};
    json_t *doc = NULL;

    if (!json_content_type(wa_http_req_header(req, "Content-Type"))) {
        wa_http_reply_problem(req, 415, NULL, "the body must be application/json", NULL, 0);
        return;
    }
    if (wa_json_parse(req->body.data != NULL ? req->body.data : "", req->body.len, 0, &doc,
                      &error) != WA_OK) {
        wa_http_reply_problem(req, 400, NULL, error.message, NULL, 0);
        return;
    }
    req->json = doc;
    if (schema == NULL) {
        wa_http_next(req);
        return;
    }
    if ((v = malloc(sizeof(*v))) == NULL) {
        wa_http_reply_err(req, WA_ENOMEM, "out of memory");
        return;
    }
    if (wa_json_validate(schema, doc, v) != WA_OK) {
        wa_http_reply_invalid(req, v);
        free(v);
        return;
    }
    free(v);
    wa_http_next(req);
}

struct wa_http_mw
wa_http_mw_json(const struct wa_json_validator *schema)
{
    return (struct wa_http_mw){"json", on_json_body, (void *)(uintptr_t)schema};
}

json_t *
wa_http_req_json(const struct wa_http_req *req)
{
    return req->json;
}

/* ---- page cursors ---- */

struct wa_http_cursors {
    struct wa_hmac *mac;
};

enum wa_err
wa_http_cursors_new(const void *secret, size_t len, struct wa_http_cursors **out)
{
    unsigned char key[32];
    struct wa_http_cursors *c;
    enum wa_err err;

    *out = NULL;
    if (secret != NULL && len < 16) {
        return WA_EINVAL;
    }
    if (secret == NULL) {
        if ((err = wa_random_bytes(key, sizeof(key))) != WA_OK) {
            return err;
        }
        secret = key;
        len = sizeof(key);
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        return WA_ENOMEM;
    }
    if ((err = wa_hmac_new(secret, len, &c->mac)) != WA_OK) {
        free(c);
        return err;
    }
    *out = c;
    return WA_OK;
}

void
wa_http_cursors_free(struct wa_http_cursors *c)
{
    if (c == NULL) {
        return;
    }
    wa_hmac_free(c->mac);
    free(c);
}

/* mac of scope, NUL, version and state (the NUL keeps scope "a" + state "b..." apart from
 * scope "ab" + state "..."). */
static enum wa_err
cursor_mac(struct wa_http_cursors *c, const char *scope, const unsigned char *vstate, size_t len,
           unsigned char mac[WA_SHA256_LEN])
{
    unsigned char msg[SCOPE_MAX + 1 + 1 + WA_HTTP_CURSOR_STATE_MAX];
    size_t slen = strlen(scope);

    if (slen > SCOPE_MAX || len > 1 + WA_HTTP_CURSOR_STATE_MAX) {
        return WA_ETOOBIG;
    }
    memcpy(msg, scope, slen);
    msg[slen] = '\0';
    memcpy(msg + slen + 1, vstate, len);
    wa_hmac_digest(c->mac, msg, slen + 1 + len, mac);
    return WA_OK;
}

enum wa_err
wa_http_cursor_seal(struct wa_http_cursors *c, const char *scope, const void *state, size_t len,
                    char out[WA_HTTP_CURSOR_MAX])
{
    unsigned char raw[1 + WA_HTTP_CURSOR_STATE_MAX + CURSOR_MAC_LEN];
    unsigned char mac[WA_SHA256_LEN];
    enum wa_err err;

    out[0] = '\0';
    if (len > WA_HTTP_CURSOR_STATE_MAX) {
        return WA_ETOOBIG;
    }
    raw[0] = CURSOR_VERSION;
    if (len > 0) {
        memcpy(raw + 1, state, len);
    }
    if ((err = cursor_mac(c, scope, raw, 1 + len, mac)) != WA_OK) {
        return err;
    }
    memcpy(raw + 1 + len, mac, CURSOR_MAC_LEN);
    wa_hex_encode(raw, 1 + len + CURSOR_MAC_LEN, out);
    return WA_OK;
}

enum wa_err
wa_http_cursor_open(struct wa_http_cursors *c, const char *scope, const char *cursor, void *state,
                    size_t max, size_t *len)
{
    unsigned char raw[1 + WA_HTTP_CURSOR_STATE_MAX + CURSOR_MAC_LEN];
    unsigned char mac[WA_SHA256_LEN];
    ssize_t n;
    size_t slen;

    *len = 0;
    if (cursor == NULL || strlen(cursor) > 2 * sizeof(raw)) {
        return WA_EINVAL;
    }
    n = wa_hex_decode(cursor, raw, sizeof(raw));
    if (n < 1 + CURSOR_MAC_LEN || raw[0] != CURSOR_VERSION) {
        return WA_EINVAL;
    }
    slen = (size_t)n - 1 - CURSOR_MAC_LEN;
    if (cursor_mac(c, scope, raw, 1 + slen, mac) != WA_OK ||
        !wa_crypto_equal(mac, raw + 1 + slen, CURSOR_MAC_LEN) || slen > max) {
        return WA_EINVAL;
    }
    if (slen > 0) {
        memcpy(state, raw + 1, slen);
    }
    *len = slen;
    return WA_OK;
}

enum wa_err
wa_http_page_params(const struct wa_http_req *req, struct wa_http_cursors *c, const char *scope,
                    size_t def_limit, size_t max_limit, size_t *limit, void *state, size_t max,
                    size_t *len, struct wa_http_problem_field *bad)
{
    const char *q = wa_http_req_query(req, "limit");

    *limit = def_limit;
    *len = 0;
    if (q != NULL) {
        char *end = NULL;
        long long v = strtoll(q, &end, 10);
        static _Thread_local char detail[64]; /* borrowed by *bad until the caller answers */

        if (end == q || *end != '\0' || v < 1 || (unsigned long long)v > max_limit) {
            snprintf(detail, sizeof(detail), "must be an integer 1..%zu", max_limit);
            *bad = (struct wa_http_problem_field){"limit", detail};
            return WA_EINVAL;
        }
        *limit = (size_t)v;
    }
    q = wa_http_req_query(req, "cursor");
    if (q != NULL && wa_http_cursor_open(c, scope, q, state, max, len) != WA_OK) {
        *bad = (struct wa_http_problem_field){"cursor", "is not a cursor of this listing"};
        return WA_EINVAL;
    }
    return WA_OK;
}
