/*
 * rest.c: the smallest REST helpers on top of the router of httpd.c: path templates with
 * "{name}" segments (percent-decoded parameters) and RFC 9457 problem+json answers naming each
 * invalid field. A daemon registers a prefix route and dispatches its templates with
 * wa_http_path_match().
 *
 * Threading: wa_http_path_match is pure; wa_http_reply_problem runs on the loop thread.
 */
#include <stdio.h>
#include <string.h>

#include "wa/buf.h"
#include "wa/hex.h"
#include "wa/httpd.h"

/* Percent-decodes n bytes of s into out (size bytes). False for a bad escape, %00 or no room. */
static bool
decode(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= n) {
                return false;
            }
            hi = wa_hex_value(s[i + 1]);
            lo = wa_hex_value(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                return false;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= size) {
            return false;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return o > 0;
}

bool
wa_http_path_match(const char *tpl, const char *path, char params[][WA_HTTP_PARAM_MAX], size_t max,
                   size_t *n)
{
    const char *t = tpl, *p = path;

    *n = 0;
    while (*t != '\0' && *p != '\0') {
        const char *te = strchr(t, '/'), *pe = strchr(p, '/');
        size_t tl, pl;

        if (*t == '/' || *p == '/') {
            if (*t != *p) {
                return false;
            }
            t++;
            p++;
            continue;
        }
        tl = te != NULL ? (size_t)(te - t) : strlen(t);
        pl = pe != NULL ? (size_t)(pe - p) : strlen(p);
        if (tl >= 2 && t[0] == '{' && t[tl - 1] == '}') {
            if (*n >= max || !decode(p, pl, params[*n], WA_HTTP_PARAM_MAX)) {
                return false;
            }
            (*n)++;
        } else if (tl != pl || memcmp(t, p, tl) != 0) {
            return false;
        }
        t += tl;
        p += pl;
    }
    return *t == '\0' && *p == '\0';
}

void
wa_http_reply_problem(struct wa_http_req *req, int status, const char *title, const char *detail,
                      const struct wa_http_problem_field *fields, size_t nfields)
{
    struct wa_buf b;
    bool ok;

    wa_buf_init(&b, 64 * 1024);
    ok = wa_buf_printf(&b, "{\"type\":\"about:blank\",\"title\":") == WA_OK &&
         wa_buf_append_json_string(&b, title, strlen(title)) == WA_OK &&
         wa_buf_printf(&b, ",\"status\":%d,\"detail\":", status) == WA_OK &&
         wa_buf_append_json_string(&b, detail, strlen(detail)) == WA_OK &&
         wa_buf_append_str(&b, ",\"instance\":") == WA_OK &&
         wa_buf_append_json_string(&b, wa_http_req_path(req), strlen(wa_http_req_path(req))) ==
             WA_OK &&
         wa_buf_append_str(&b, ",\"request_id\":") == WA_OK &&
         wa_buf_append_json_string(&b, wa_http_req_id(req), strlen(wa_http_req_id(req))) == WA_OK;
    if (ok && nfields > 0) {
        ok = wa_buf_append_str(&b, ",\"errors\":[") == WA_OK;
        for (size_t i = 0; ok && i < nfields; i++) {
            ok = wa_buf_append_str(&b, i > 0 ? ",{\"pointer\":" : "{\"pointer\":") == WA_OK &&
                 wa_buf_append_json_string(&b, fields[i].pointer, strlen(fields[i].pointer)) ==
                     WA_OK &&
                 wa_buf_append_str(&b, ",\"detail\":") == WA_OK &&
                 wa_buf_append_json_string(&b, fields[i].detail, strlen(fields[i].detail)) ==
                     WA_OK &&
                 wa_buf_append_str(&b, "}") == WA_OK;
        }
        ok = ok && wa_buf_append_str(&b, "]") == WA_OK;
    }
    ok = ok && wa_buf_append_str(&b, "}") == WA_OK;
    if (!ok) {
        wa_buf_cleanup(&b);
        wa_http_reply_error(req, status, "error", "%s", title);
        return;
    }
    wa_http_reply(req, status, "application/problem+json", b.data, b.len);
    wa_buf_cleanup(&b);
}
