/*
 * parse.c: JSON text -> jansson values, the reader behind wa_json_parse() (wa/json.h).
 *
 * jansson's own reader (json_loadb) moves through the text one character at a time, appending
 * each to a growing buffer, and checks every string's UTF-8 once more when it builds the value.
 * This reader finds the plain runs of a string eight bytes at a time (wa_json_plain_run),
 * checks UTF-8 only where a byte is not ASCII, hands a string without escapes to jansson
 * straight from the input and builds every value with jansson's constructors that skip the
 * checks already made here (json_stringn_nocheck, json_object_setn_new_nocheck). The document is
 * an ordinary jansson tree, so everything else keeps working on json_t.
 *
 * It accepts and refuses exactly what json_loadb(data, len, 0, ...) does: an object or array at
 * the top, nothing but whitespace after it; RFC 8259 numbers (a leading zero only alone), an
 * integer past int64 or a real past the double range refused; strings of valid UTF-8 (no
 * surrogates, no overlong forms), no control characters, the escapes of RFC 8259, "\u0000" and
 * lone surrogates refused; duplicate keys allowed, the last one wins, at the first one's place
 * (refused by wa_json_parse_unique, as with JSON_REJECT_DUPLICATES).
 * One difference, on purpose: jansson skips a NUL byte right after a number or a literal
 * ("[1\0]" passes its lexer's push-back); no JSON text holds a NUL byte, and this reader refuses
 * one wherever it stands.
 * tests/unit/json/test_json.c and tests/fuzz/fuzz_json_parse.c compare the two readers.
 *
 * Nesting is bounded by the caller's depth: the recursion never goes deeper than that, so
 * hostile input costs no more stack than the limit allows.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/hex.h"
#include "wa/json.h"
#include "wa/utf8.h"

/* Strings with escapes are decoded here; longer ones move to the heap. */
#define SCRATCH_INLINE 512

struct parser {
    const char *p;   /* next byte */
    const char *end; /* one past the last byte */
    size_t depth;    /* containers open around p */
    size_t max_depth;
    bool unique;      /* a key twice in one object is an error (JSON_REJECT_DUPLICATES) */
    enum wa_err code; /* WA_OK until the first error */
    const char *why;  /* the first error, a static string */
    const char *at;   /* where it was found */
    char *scratch;    /* decoded string: inline or heap */
    size_t scratch_len;
    size_t scratch_cap;
    char inline_scratch[SCRATCH_INLINE];
};

static json_t *parse_value(struct parser *ps);

/* Records the first error; returns NULL so callers can `return fail(...)`. */
static json_t *
fail(struct parser *ps, enum wa_err code, const char *at, const char *why)
{
    if (ps->code == WA_OK) {
        ps->code = code;
        ps->why = why;
        ps->at = at;
    }
    return NULL;
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Skips JSON whitespace; returns the next byte, or 0 at the end (0 is never valid there). */
static char
skip_ws(struct parser *ps)
{
    const char *p = ps->p;

    while (p < ps->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    ps->p = p;
    return p < ps->end ? *p : '\0';
}

static bool
scratch_put(struct parser *ps, const char *s, size_t n)
{
    if (ps->scratch_cap - ps->scratch_len < n) {
        size_t cap = ps->scratch_cap * 2;
        char *grown;

        while (cap - ps->scratch_len < n) {
            cap *= 2;
        }
        if (ps->scratch == ps->inline_scratch) {
            if ((grown = malloc(cap)) != NULL) {
                memcpy(grown, ps->scratch, ps->scratch_len);
            }
        } else {
            grown = realloc(ps->scratch, cap);
        }
        if (grown == NULL) {
            return false;
        }
        ps->scratch = grown;
        ps->scratch_cap = cap;
    }
    memcpy(ps->scratch + ps->scratch_len, s, n);
    ps->scratch_len += n;
    return true;
}

/* The code unit of the four hex digits at p (end bounds it), or -1. */
static long
hex4(const char *p, const char *end)
{
    return end - p < 4 ? -1 : wa_hex4_value(p);
}

/* Decodes the escape at p (a backslash) into the scratch buffer; returns the byte after it,
 * or NULL after recording the error. */
static const char *
unescape(struct parser *ps, const char *p)
{
    static const char simple[256] = {['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
                                     ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t'};
    char out[4];
    long cp, lo;
    size_t n;

    if (p + 1 >= ps->end) {
        return (const char *)fail(ps, WA_EPARSE, p, "premature end of input");
    }
    if (p[1] != 'u') {
        out[0] = simple[(unsigned char)p[1]];
        if (out[0] == 0) {
            return (const char *)fail(ps, WA_EPARSE, p, "invalid escape");
        }
        return scratch_put(ps, out, 1) ? p + 2
                                       : (const char *)fail(ps, WA_ENOMEM, p, "out of memory");
    }
    if ((cp = hex4(p + 2, ps->end)) < 0) {
        return (const char *)fail(ps, WA_EPARSE, p, "invalid escape");
    }
    p += 6;
    if (cp == 0) {
        return (const char *)fail(ps, WA_EPARSE, p - 6, "\\u0000 is not allowed");
    }
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return (const char *)fail(ps, WA_EPARSE, p - 6, "invalid Unicode (lone low surrogate)");
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (ps->end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
            (lo = hex4(p + 2, ps->end)) < 0xDC00 || lo > 0xDFFF) {
            return (const char *)fail(ps, WA_EPARSE, p - 6,
                                      "invalid Unicode (lone high surrogate)");
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return scratch_put(ps, out, n) ? p : (const char *)fail(ps, WA_ENOMEM, p, "out of memory");
}

/* Reads the string whose opening quote is at ps->p; sets *s and *n to its decoded bytes
 * (borrowed from the input when it has no escape, else from the scratch buffer, valid until
 * the next string) and moves past the closing quote. False after recording the error. */
static bool
parse_string(struct parser *ps, const char **s, size_t *n)
{
    const char *p = ps->p + 1, *run = p, *end = ps->end;
    bool escaped = false;

    ps->scratch_len = 0;
    for (;;) {
        unsigned char c;

        p += wa_json_plain_run(p, (size_t)(end - p));
        if (p == end) {
            fail(ps, WA_EPARSE, p, "premature end of input");
            return false;
        }
        c = (unsigned char)*p;
        if (c == '"') {
            break;
        }
        if (c >= 0x80) {
            size_t k = wa_utf8_next((const unsigned char *)p, (size_t)(end - p), NULL);

            if (k == 0) {
                fail(ps, WA_EPARSE, p, "invalid UTF-8");
                return false;
            }
            p += k;
            continue;
        }
        if (c < 0x20) {
            fail(ps, WA_EPARSE, p, "control character in a string");
            return false;
        }
        /* a backslash: what came before it goes to the scratch buffer, then its meaning */
        escaped = true;
        if (!scratch_put(ps, run, (size_t)(p - run))) {
            fail(ps, WA_ENOMEM, p, "out of memory");
            return false;
        }
        if ((p = unescape(ps, p)) == NULL) {
            return false;
        }
        run = p;
    }
    if (escaped) {
        if (!scratch_put(ps, run, (size_t)(p - run))) {
            fail(ps, WA_ENOMEM, p, "out of memory");
            return false;
        }
        *s = ps->scratch;
        *n = ps->scratch_len;
    } else {
        *s = run;
        *n = (size_t)(p - run);
    }
    ps->p = p + 1;
    return true;
}

/* An integer token (optional '-', digits) as int64, or false when it does not fit. */
static bool
to_int64(const char *s, const char *end, int64_t *out)
{
    bool neg = *s == '-';
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, acc = 0;

    for (s += neg; s < end; s++) {
        unsigned d = (unsigned)(*s - '0');

        if (acc > (limit - d) / 10) {
            return false;
        }
        acc = acc * 10 + d;
    }
    *out = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
    return true;
}

enum real_result { REAL_OK, REAL_OVERFLOW, REAL_NOMEM };

/* The double of the real token t (n bytes), by strtod on a terminated copy (the C locale is
 * assumed: daemons never call setlocale); REAL_OVERFLOW past the double range (an underflow
 * reads as 0, as in jansson). */
static enum real_result
real_value(const char *t, size_t n, double *out)
{
    char tmp[64], *text = tmp;
    bool overflow;

    if (n >= sizeof(tmp) && (text = malloc(n + 1)) == NULL) {
        return REAL_NOMEM;
    }
    memcpy(text, t, n);
    text[n] = '\0';
    errno = 0;
    *out = strtod(text, NULL);
    overflow = errno == ERANGE && isinf(*out);
    if (text != tmp) {
        free(text);
    }
    return overflow ? REAL_OVERFLOW : REAL_OK;
}

/* A number token at ps->p: RFC 8259's grammar, as jansson reads it. */
static json_t *
parse_number(struct parser *ps)
{
    const char *start = ps->p, *p = start, *end = ps->end;
    bool real = false;
    double d;
    json_t *v;

    p += p < end && *p == '-';
    if (p == end || !is_digit(*p)) {
        return fail(ps, WA_EPARSE, start, "invalid token");
    }
    if (*p == '0') {
        if (++p < end && is_digit(*p)) {
            return fail(ps, WA_EPARSE, start, "invalid token (leading zero)");
        }
    } else {
        while (p < end && is_digit(*p)) {
            p++;
        }
    }
    if (p < end && *p == '.') {
        real = true;
        if (++p == end || !is_digit(*p)) {
            return fail(ps, WA_EPARSE, start, "invalid token");
        }
        while (p < end && is_digit(*p)) {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        p += p < end && (*p == '+' || *p == '-');
        if (p == end || !is_digit(*p)) {
            return fail(ps, WA_EPARSE, start, "invalid token");
        }
        while (p < end && is_digit(*p)) {
            p++;
        }
    }
    ps->p = p;
    if (!real) {
        int64_t i;

        if (!to_int64(start, p, &i)) {
            return fail(ps, WA_EPARSE, start, "too big integer");
        }
        return (v = json_integer(i)) != NULL ? v : fail(ps, WA_ENOMEM, start, "out of memory");
    }
    switch (real_value(start, (size_t)(p - start), &d)) {
    case REAL_OK:
        return (v = json_real(d)) != NULL ? v : fail(ps, WA_ENOMEM, start, "out of memory");
    case REAL_OVERFLOW:
        return fail(ps, WA_EPARSE, start, "real number overflow");
    default:
        return fail(ps, WA_ENOMEM, start, "out of memory");
    }
}

bool
wa_json_number_too_big(const char *t, size_t n)
{
    size_t k = n > 0 && t[0] == '-';
    int64_t i;
    double d;

    if (memchr(t, '.', n) != NULL || memchr(t, 'e', n) != NULL || memchr(t, 'E', n) != NULL) {
        return real_value(t, n, &d) == REAL_OVERFLOW;
    }
    if (k == n) {
        return false;
    }
    for (; k < n; k++) {
        if (!is_digit(t[k])) {
            return false; /* not an integer token: refused, but not for its size */
        }
    }
    return !to_int64(t, t + n, &i);
}

/* true, false or null at ps->p. */
static json_t *
parse_literal(struct parser *ps, const char *word, size_t n, json_t *v)
{
    const char *p = ps->p;

    if ((size_t)(ps->end - p) < n || memcmp(p, word, n) != 0 ||
        ((size_t)(ps->end - p) > n &&
         ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z')))) {
        return fail(ps, WA_EPARSE, p, "invalid token");
    }
    ps->p = p + n;
    return v;
}

static json_t *
parse_object(struct parser *ps)
{
    json_t *obj = json_object();
    char c;

    if (obj == NULL) {
        return fail(ps, WA_ENOMEM, ps->p, "out of memory");
    }
    ps->p++;
    if ((c = skip_ws(ps)) == '}') {
        ps->p++;
        return obj;
    }
    for (;;) {
        const char *key;
        char stack_key[128], *heap_key;
        size_t key_len;
        json_t *v;
        int rc;

        if (c != '"') {
            fail(ps, WA_EPARSE, ps->p, "string or '}' expected");
            goto error;
        }
        if (!parse_string(ps, &key, &key_len)) {
            goto error;
        }
        if (ps->unique && json_object_getn(obj, key, key_len) != NULL) {
            fail(ps, WA_EPARSE, ps->p, "duplicate object key");
            goto error;
        }
        if (skip_ws(ps) != ':') {
            fail(ps, WA_EPARSE, ps->p, "':' expected");
            goto error;
        }
        ps->p++;
        /* an escaped key sits in the scratch buffer, which the value's strings reuse */
        heap_key = NULL;
        if (key == ps->scratch) {
            if (key_len <= sizeof(stack_key)) {
                key = memcpy(stack_key, key, key_len);
            } else if ((key = heap_key = malloc(key_len)) == NULL) {
                fail(ps, WA_ENOMEM, ps->p, "out of memory");
                goto error;
            } else {
                memcpy(heap_key, ps->scratch, key_len);
            }
        }
        skip_ws(ps);
        v = parse_value(ps);
        rc = v != NULL ? json_object_setn_new_nocheck(obj, key, key_len, v) : -1;
        free(heap_key);
        if (v == NULL) {
            goto error;
        }
        if (rc != 0) {
            fail(ps, WA_ENOMEM, ps->p, "out of memory");
            goto error;
        }
        c = skip_ws(ps);
        if (c == '}') {
            ps->p++;
            return obj;
        }
        if (c != ',') {
            fail(ps, WA_EPARSE, ps->p, "'}' expected");
            goto error;
        }
        ps->p++;
        c = skip_ws(ps);
    }
error:
    json_decref(obj);
    return NULL;
}

static json_t *
parse_array(struct parser *ps)
{
    json_t *arr = json_array();
    char c;

    if (arr == NULL) {
        return fail(ps, WA_ENOMEM, ps->p, "out of memory");
    }
    ps->p++;
    if (skip_ws(ps) == ']') {
        ps->p++;
        return arr;
    }
    for (;;) {
        json_t *v = parse_value(ps);

        if (v == NULL) {
            goto error;
        }
        if (json_array_append_new(arr, v) != 0) {
            fail(ps, WA_ENOMEM, ps->p, "out of memory");
            goto error;
        }
        c = skip_ws(ps);
        if (c == ']') {
            ps->p++;
            return arr;
        }
        if (c != ',') {
            fail(ps, WA_EPARSE, ps->p, "']' expected");
            goto error;
        }
        ps->p++;
        skip_ws(ps);
    }
error:
    json_decref(arr);
    return NULL;
}

/* A value at ps->p (whitespace before it already skipped). */
static json_t *
parse_value(struct parser *ps)
{
    const char *s;
    json_t *v;
    size_t n;

    if (ps->p == ps->end) {
        return fail(ps, WA_EPARSE, ps->p, "premature end of input");
    }
    switch (*ps->p) {
    case '{':
    case '[':
        if (++ps->depth > ps->max_depth) {
            return fail(ps, WA_ELIMIT, ps->p, "nested too deep");
        }
        v = *ps->p == '{' ? parse_object(ps) : parse_array(ps);
        ps->depth--;
        return v;
    case '"':
        if (!parse_string(ps, &s, &n)) {
            return NULL;
        }
        return (v = json_stringn_nocheck(s, n)) != NULL
                   ? v
                   : fail(ps, WA_ENOMEM, ps->p, "out of memory");
    case 't':
        return parse_literal(ps, "true", 4, json_true());
    case 'f':
        return parse_literal(ps, "false", 5, json_false());
    case 'n':
        return parse_literal(ps, "null", 4, json_null());
    default:
        return parse_number(ps);
    }
}

static enum wa_err
read_document(const char *data, size_t len, size_t max_depth, bool unique, json_t **out,
              struct wa_error *error)
{
    struct parser ps;
    json_t *v = NULL;
    char c;

    ps.p = data;
    ps.end = data + len;
    ps.depth = 0;
    ps.max_depth = max_depth;
    ps.unique = unique;
    ps.code = WA_OK;
    ps.why = NULL;
    ps.at = data;
    ps.scratch = ps.inline_scratch;
    ps.scratch_len = 0;
    ps.scratch_cap = sizeof(ps.inline_scratch);

    c = skip_ws(&ps);
    if (c != '{' && c != '[') {
        fail(&ps, WA_EPARSE, ps.p, "'[' or '{' expected");
    } else if ((v = parse_value(&ps)) != NULL && skip_ws(&ps) != '\0') {
        json_decref(v);
        v = NULL;
        fail(&ps, WA_EPARSE, ps.p, "end of file expected");
    } else if (v != NULL && ps.p != ps.end) {
        /* a NUL byte after the document: skip_ws reports it as the end */
        json_decref(v);
        v = NULL;
        fail(&ps, WA_EPARSE, ps.p, "end of file expected");
    }
    if (ps.scratch != ps.inline_scratch) {
        free(ps.scratch);
    }
    if (v == NULL) {
        size_t line = 1, column = 1;

        if (ps.at < data || ps.at > data + len) {
            ps.at = data + len; /* defensive: every error is placed in the input */
        }
        for (const char *q = data; q < ps.at; q++) {
            column = *q == '\n' ? 1 : column + 1;
            line += *q == '\n';
        }
        *out = NULL;
        return wa_error_set(error, ps.code, "invalid JSON at line %zu column %zu: %s", line, column,
                            ps.why);
    }
    *out = v;
    return WA_OK;
}

static enum wa_err
parse(const char *data, size_t len, size_t max_depth, bool unique, json_t **out,
      struct wa_error *error)
{
    enum wa_err err;

    *out = NULL;
    if (data == NULL) {
        return wa_error_set(error, WA_EINVAL, "no JSON input");
    }
    if (max_depth == 0) {
        max_depth = WA_JSON_DEPTH_DEFAULT;
    }
    if (max_depth > WA_JSON_DEPTH_MAX) {
        max_depth = WA_JSON_DEPTH_MAX;
    }
    err = read_document(data, len, max_depth, unique, out, error);
    /* Too deep is reported whatever else is wrong with the text, as wa_json_depth() sees it. */
    if (err == WA_ELIMIT || (err == WA_EPARSE && wa_json_depth(data, len, max_depth) > max_depth)) {
        return wa_error_set(error, WA_ELIMIT, "JSON nested deeper than %zu levels", max_depth);
    }
    return err;
}

enum wa_err
wa_json_parse(const char *data, size_t len, size_t max_depth, json_t **out, struct wa_error *error)
{
    return parse(data, len, max_depth, false, out, error);
}

enum wa_err
wa_json_parse_unique(const char *data, size_t len, size_t max_depth, json_t **out,
                     struct wa_error *error)
{
    return parse(data, len, max_depth, true, out, error);
}
