/* buf.c: bounded growable buffers and JSON string escaping. */
#include "wa/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/utf8.h"

void
wa_buf_init(struct wa_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max == 0 ? SIZE_MAX / 2 : max;
}

void
wa_buf_cleanup(struct wa_buf *b)
{
    if (b == NULL) {
        return;
    }
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void
wa_buf_reset(struct wa_buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

enum wa_err
wa_buf_reserve(struct wa_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > b->max || b->len > b->max - extra) {
        return WA_ETOOBIG;
    }
    need = b->len + extra + 1; /* room for the NUL */
    if (need <= b->cap) {
        return WA_OK;
    }
    cap = b->cap == 0 ? 256 : b->cap;
    while (cap < need) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        return WA_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return WA_OK;
}

enum wa_err
wa_buf_append(struct wa_buf *b, const void *data, size_t len)
{
    enum wa_err err = wa_buf_reserve(b, len);

    if (err != WA_OK) {
        return err;
    }
    if (len > 0) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    b->data[b->len] = '\0';
    return WA_OK;
}

enum wa_err
wa_buf_append_str(struct wa_buf *b, const char *s)
{
    return wa_buf_append(b, s, strlen(s));
}

enum wa_err
wa_buf_vprintf(struct wa_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    enum wa_err err;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return WA_EINVAL;
    }
    err = wa_buf_reserve(b, (size_t)n);
    if (err != WA_OK) {
        return err;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return WA_OK;
}

enum wa_err
wa_buf_printf(struct wa_buf *b, const char *fmt, ...)
{
    va_list ap;
    enum wa_err err;

    va_start(ap, fmt);
    err = wa_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return err;
}

enum wa_err
wa_buf_append_json_string(struct wa_buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0, start = 0, seq;
    enum wa_err err;
    char esc[8];

    /* Worst case is 6 output bytes per input byte; reserve the common case up front. */
    if ((err = wa_buf_reserve(b, len + 2)) != WA_OK) {
        return err;
    }
    b->data[b->len++] = '"';
    while (i < len) {
        const char *rep = NULL;
        size_t replen = 0;

        if (p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' && p[i] < 0x80) {
            i++;
            run++;
            continue;
        }
        if (p[i] >= 0x80) {
            seq = wa_utf8_next(p + i, len - i, NULL);
            if (seq > 0) {
                i += seq;
                run += seq;
                continue;
            }
            rep = "\xEF\xBF\xBD"; /* U+FFFD */
            replen = 3;
        } else {
            switch (p[i]) {
            case '"':
                rep = "\\\"";
                break;
            case '\\':
                rep = "\\\\";
                break;
            case '\n':
                rep = "\\n";
                break;
            case '\r':
                rep = "\\r";
                break;
            case '\t':
                rep = "\\t";
                break;
            case '\b':
                rep = "\\b";
                break;
            case '\f':
                rep = "\\f";
                break;
            default:
                snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
                rep = esc;
                break;
            }
            replen = strlen(rep);
        }
        if ((err = wa_buf_append(b, s + start, run)) != WA_OK ||
            (err = wa_buf_append(b, rep, replen)) != WA_OK) {
            return err;
        }
        i++;
        start = i;
        run = 0;
    }
    if ((err = wa_buf_append(b, s + start, run)) != WA_OK) {
        return err;
    }
    return wa_buf_append(b, "\"", 1);
}

char *
wa_buf_steal(struct wa_buf *b)
{
    char *p = b->data;

    if (p == NULL) {
        p = calloc(1, 1);
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
