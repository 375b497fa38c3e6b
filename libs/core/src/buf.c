/* buf.c: bounded growable buffers and JSON string escaping. */
#include "wa/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

/*
 * The one JSON string escaper of the tree (libs/json's writer and the logger both use it):
 * '"', '\\', \b \f \n \r \t, other controls as \u00XX (upper-case hex) and everything else
 * verbatim, byte for byte what jansson's json_dumps writes for a valid UTF-8 string.
 * Per byte: 0 copied verbatim, else the character after the backslash ('u' for \u00XX).
 */
static const char json_escape[256] = {
    ['\0'] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u',  [0x04] = 'u', [0x05] = 'u',
    [0x06] = 'u', [0x07] = 'u', ['\b'] = 'b', ['\t'] = 't',  ['\n'] = 'n', [0x0B] = 'u',
    ['\f'] = 'f', ['\r'] = 'r', [0x0E] = 'u', [0x0F] = 'u',  [0x10] = 'u', [0x11] = 'u',
    [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u',  [0x16] = 'u', [0x17] = 'u',
    [0x18] = 'u', [0x19] = 'u', [0x1A] = 'u', [0x1B] = 'u',  [0x1C] = 'u', [0x1D] = 'u',
    [0x1E] = 'u', [0x1F] = 'u', ['"'] = '"',  ['\\'] = '\\',
};

/* Length of the valid UTF-8 sequence at p (1..4), or 0 for a byte to replace by U+FFFD. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
    return p[0] < 0x80 ? 1 : wa_utf8_next(p, n, NULL);
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* The high bit of each byte of w that is below n (n <= 0x80), and possibly of bytes above the
 * lowest such byte (a borrow): only the lowest flag is exact, which is all that
 * wa_json_plain_run reads. */
static inline uint64_t
bytes_below(uint64_t w, unsigned n)
{
    return (w - ONES * n) & ~w & HIGHS;
}

/* Bytes from p that are copied as they are: ASCII that needs no escape (most of any JSON text,
 * so the escaper moves over it in runs). Sixteen (SSE2, every x86-64) or eight bytes per step:
 * a byte needs attention when it is not ASCII, a control, '"' or '\\'; the lowest flagged
 * byte ends the run. */
size_t
wa_json_plain_run(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

#if defined(__SSE2__)
    /* Sixteen bytes per step: a signed compare with 0x20 flags the controls and every byte
     * from 0x80 (negative as a signed char) at once. */
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);

    for (; i + 16 <= n; i += 16) {
        __m128i w = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, backslash)),
                         _mm_cmplt_epi8(w, space)));

        if (m != 0) {
            return i + (size_t)__builtin_ctz(m);
        }
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 8 <= n; i += 8) {
        uint64_t w, m;

        memcpy(&w, p + i, 8);
        m = (w & HIGHS) | bytes_below(w, 0x20) | bytes_below(w ^ (ONES * '"'), 1) |
            bytes_below(w ^ (ONES * '\\'), 1);
        if (m != 0) {
            return i + ((size_t)__builtin_ctzll(m) >> 3);
        }
    }
#endif
    while (i < n && p[i] < 0x80 && json_escape[p[i]] == 0) {
        i++;
    }
    return i;
}

/* Writes the sequence at p (not a plain byte: an escape, a UTF-8 sequence, or U+FFFD for a byte
 * that starts none) to o; returns the bytes written (at most 6), *seq the bytes read. */
static size_t
put_special(char *o, const unsigned char *p, size_t n, size_t *seq)
{
    static const char hex[] = "0123456789ABCDEF";
    char e = json_escape[p[0]];

    *seq = utf8_seq(p, n);
    if (*seq == 0) {
        memcpy(o, "\xEF\xBF\xBD", 3);
        *seq = 1;
        return 3;
    }
    if (e == 0) {
        memcpy(o, p, *seq);
        return *seq;
    }
    o[0] = '\\';
    o[1] = e;
    if (e != 'u') {
        return 2;
    }
    o[2] = '0';
    o[3] = '0';
    o[4] = hex[p[0] >> 4];
    o[5] = hex[p[0] & 15];
    return 6;
}

/* Two passes: the exact size (so b is unchanged on failure), then the bytes in place. Used
 * when the one-pass path below would ask b for more than its maximum allows. */
static enum wa_err
append_exact(struct wa_buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t out = len + 2, i, seq, run;
    enum wa_err err;
    char *o;

    for (i = 0; i < len; i += seq) {
        char e;

        i += wa_json_plain_run((const char *)p + i, len - i);
        if (i == len) {
            break;
        }
        e = json_escape[p[i]];
        seq = utf8_seq(p + i, len - i);
        if (seq == 0) {
            out += 2; /* one byte becomes the 3 bytes of U+FFFD */
            seq = 1;
        } else if (e != 0) {
            out += e == 'u' ? 5 : 1;
        }
    }
    if ((err = wa_buf_reserve(b, out)) != WA_OK) {
        return err;
    }
    o = b->data + b->len;
    *o++ = '"';
    for (i = 0; i < len; i += seq) {
        run = wa_json_plain_run((const char *)p + i, len - i);
        memcpy(o, p + i, run);
        o += run;
        i += run;
        if (i == len) {
            break;
        }
        o += put_special(o, p + i, len - i, &seq);
    }
    *o++ = '"';
    b->len += out;
    b->data[b->len] = '\0';
    return WA_OK;
}

enum wa_err
wa_buf_append_json_string(struct wa_buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o, i = 0, seq, run, room;
    enum wa_err err;

    /* One pass: room for the string as it is, grown when an escape is due to what the rest
     * could need at most. b->len moves only at the end, so b is unchanged on failure; where
     * that bound is over b's maximum though the exact size may not be, append_exact decides. */
    if ((err = wa_buf_reserve(b, len + 2)) != WA_OK) {
        return err;
    }
    o = b->len;
    b->data[o++] = '"';
    for (;;) {
        run = wa_json_plain_run((const char *)p + i, len - i);
        memcpy(b->data + o, p + i, run);
        o += run;
        i += run;
        if (i == len) {
            break;
        }
        room = 6 + (len - i) + 1; /* this sequence, the rest unescaped, the closing quote */
        if ((b->cap - 1 < b->max ? b->cap - 1 : b->max) - o < room) {
            if ((err = wa_buf_reserve(b, o - b->len + room)) != WA_OK) {
                b->data[b->len] = '\0'; /* the opening quote went there */
                return err == WA_ETOOBIG ? append_exact(b, s, len) : err;
            }
        }
        o += put_special(b->data + o, p + i, len - i, &seq);
        i += seq;
    }
    b->data[o++] = '"';
    b->data[o] = '\0';
    b->len = o;
    return WA_OK;
}

enum wa_err
wa_buf_rollback(struct wa_buf *b, size_t start, enum wa_err err)
{
    if (err != WA_OK && start <= b->len) {
        b->len = start;
        if (b->data != NULL) {
            b->data[start] = '\0';
        }
    }
    return err;
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
