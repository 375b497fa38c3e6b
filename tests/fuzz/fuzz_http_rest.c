/*
 * fuzz_http_rest.c: libFuzzer driver for the REST layer's parsers of request lines (libs/httpd
 * rest.c): path templates, percent-decoding and query strings, which every routed request goes
 * through, and sealed page cursors, which clients hand back. Input: "<template>\n<path>[?query]"
 * (no newline: the input is the path and the template is fixed).
 *
 * Invariants beyond "no crash, no sanitizer report": strlen(path) + 1 bytes of buffer always
 * suffice; a matched parameter is non-empty, NUL-free and at most as long as the path; a path
 * matches its own template shape only when literal segments agree; query parsing never needs
 * more than len + 1 bytes and yields at most WA_HTTP_QUERY_MAX parameters; percent-encoding any
 * NUL-free bytes and decoding them gives them back; a cursor opens to what was sealed, and a
 * changed character or another scope never opens.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_template(const char *tpl, const char *path)
{
    size_t size = strlen(path) + 1;
    char *buf = malloc(size);
    struct wa_http_params p;
    enum wa_err err;

    if (buf == NULL) {
        return;
    }
    err = wa_http_template_match(tpl, path, buf, size, &p);
    if (err == WA_ETOOBIG) {
        abort(); /* strlen(path) + 1 must always be enough */
    }
    if (err == WA_OK) {
        if (p.n > WA_HTTP_PARAMS_MAX) {
            abort();
        }
        for (size_t i = 0; i < p.n; i++) {
            size_t len = strlen(p.value[i]);

            if (len == 0 || len >= size || p.value[i] < buf || p.value[i] + len >= buf + size ||
                p.name[i] < tpl || p.name[i] + p.name_len[i] > tpl + strlen(tpl)) {
                abort();
            }
        }
    } else if (p.n != 0 && err != WA_ENOTFOUND) {
        abort();
    }
    free(buf);
}

static void
check_query(const char *raw, size_t len)
{
    char *buf = malloc(len + 1);
    struct wa_http_query q;
    enum wa_err err;

    if (buf == NULL) {
        return;
    }
    err = wa_http_query_parse(raw, len, buf, len + 1, &q, NULL);
    if (err == WA_ETOOBIG || q.n > WA_HTTP_QUERY_MAX) {
        abort();
    }
    if (err == WA_OK) {
        for (size_t i = 0; i < q.n; i++) {
            if (strlen(q.name[i]) > len || strlen(q.value[i]) > len) {
                abort();
            }
        }
    }
    free(buf);
}

/* Encodes every byte of s as %XX, decodes it back: the same bytes (s is NUL-free). */
static void
check_roundtrip(const char *s, size_t n)
{
    char *enc = malloc(3 * n + 1), *dec = malloc(n + 1);
    ssize_t d;

    if (enc == NULL || dec == NULL) {
        free(enc);
        free(dec);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(enc + 3 * i, 4, "%%%02X", (unsigned char)s[i]);
    }
    d = wa_http_pct_decode(enc, 3 * n, true, dec, n + 1);
    if (d != (ssize_t)n || memcmp(dec, s, n) != 0) {
        abort();
    }
    d = wa_http_pct_decode(s, n, true, dec, n + 1);
    if (d > (ssize_t)n) {
        abort();
    }
    free(enc);
    free(dec);
}

static void
check_cursor(const uint8_t *data, size_t size)
{
    static struct wa_http_cursors *c;
    char cur[WA_HTTP_CURSOR_MAX];
    unsigned char out[WA_HTTP_CURSOR_STATE_MAX];
    size_t len, n = size < WA_HTTP_CURSOR_STATE_MAX ? size : WA_HTTP_CURSOR_STATE_MAX;

    if (c == NULL && wa_http_cursors_new("fuzz-cursor-secret-0123456789", 29, &c) != WA_OK) {
        return;
    }
    if (wa_http_cursor_seal(c, "scope", data, n, cur) != WA_OK ||
        wa_http_cursor_open(c, "scope", cur, out, sizeof(out), &len) != WA_OK || len != n ||
        (n > 0 && memcmp(out, data, n) != 0)) {
        abort();
    }
    if (wa_http_cursor_open(c, "scope2", cur, out, sizeof(out), &len) == WA_OK) {
        abort();
    }
    cur[n % strlen(cur)] ^= 1; /* '0'..'9' and 'a'..'f' flip to another character */
    if (wa_http_cursor_open(c, "scope", cur, out, sizeof(out), &len) == WA_OK) {
        abort();
    }
    /* the input itself as a cursor: must not crash, rarely opens */
    {
        char *text = malloc(size + 1);

        if (text != NULL) {
            memcpy(text, data, size);
            text[size] = '\0';
            (void)wa_http_cursor_open(c, "scope", text, out, sizeof(out), &len);
            free(text);
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char *nl, *tpl, *path, *q;

    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    if (strlen(text) == size) { /* NUL-free inputs only: paths and queries never hold NUL */
        nl = strchr(text, '\n');
        tpl = nl != NULL ? text : "/v1/contacts/{id}/consent";
        path = nl != NULL ? nl + 1 : text;
        if (nl != NULL) {
            *nl = '\0';
        }
        q = strchr(path, '?');
        if (q != NULL) {
            *q++ = '\0';
            check_query(q, strlen(q));
        }
        check_template(tpl, path);
        check_template(path, path); /* a path as its own template */
        check_roundtrip((const char *)data, size);
    }
    check_cursor(data, size);
    free(text);
    return 0;
}
