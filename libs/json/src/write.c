/*
 * write.c: a compact JSON writer straight into a wa_buf, byte for byte what jansson's
 * json_dump*(JSON_COMPACT | JSON_ENCODE_ANY) writes, without jansson's dump callbacks.
 *
 * jansson's compact format, as reproduced here (tests/unit/contract/write_test.c compares the
 * two over every webhook fixture and the splitter's fuzz corpus):
 *   - objects keep insertion order, separators "," and ":" without spaces;
 *   - strings escape '"', '\\', \b \f \n \r \t, other controls as \u00XX (upper-case hex),
 *     and copy everything else (UTF-8 included, '/' and DEL too) verbatim: that is
 *     wa_buf_append_json_string of libs/core, the tree's one escaper (the logger needs it too);
 *   - integers are printed in decimal;
 *   - reals differ on purpose: jansson prints 17 significant digits (a latitude 37.483307
 *     becomes 37.483307000000003), this writer the fewest of 15, 16 or 17 digits that read
 *     back as the same double, so a value sent with up to 15 digits is written as sent
 *     (docs/cloud-api.md, "Conventions"); ".0" and the exponent form are jansson's.
 * No shared state: safe on any thread.
 */
#include "wa/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUT_LIT(b, lit) wa_buf_append((b), (lit), sizeof(lit) - 1)

enum wa_err
wa_json_write_int(struct wa_buf *b, int64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    uint64_t u = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;

    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0) {
        tmp[--i] = '-';
    }
    return wa_buf_append(b, tmp + i, sizeof(tmp) - i);
}

/* Reals: the shortest of %.15g, %.16g, %.17g that reads back as the same double, then
 * jansson's touches: ".0" when neither '.' nor 'e' is present, no '+' or leading zeros in the
 * exponent. The C locale is assumed (daemons never call setlocale). */
static enum wa_err
write_real(struct wa_buf *b, const json_t *v)
{
    double d = json_real_value(v);
    char tmp[64], *e;
    int n = 0;

    if (!isfinite(d)) {
        return WA_EINVAL;
    }
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (n <= 0 || (size_t)n >= sizeof(tmp) - 2) {
            return WA_EINVAL;
        }
        if (strtod(tmp, NULL) == d) {
            break;
        }
    }
    if ((e = strchr(tmp, 'e')) != NULL) {
        char *digits = e + 1, *src;

        if (*digits == '+' || *digits == '-') {
            if (*digits == '+') {
                memmove(digits, digits + 1, strlen(digits));
            } else {
                digits++;
            }
        }
        for (src = digits; *src == '0' && src[1] != '\0'; src++) {
        }
        memmove(digits, src, strlen(src) + 1);
        n = (int)strlen(tmp);
    } else if (strchr(tmp, '.') == NULL) {
        memcpy(tmp + n, ".0", 3);
        n += 2;
    }
    return wa_buf_append(b, tmp, (size_t)n);
}

static enum wa_err
write_value(struct wa_buf *b, const json_t *v)
{
    enum wa_err err = WA_OK;

    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        bool first = true;

        if ((err = PUT_LIT(b, "{")) != WA_OK) {
            return err;
        }
        for (void *it = json_object_iter((json_t *)v); it != NULL;
             it = json_object_iter_next((json_t *)v, it)) {
            if ((!first && (err = PUT_LIT(b, ",")) != WA_OK) ||
                (err = wa_buf_append_json_string(b, json_object_iter_key(it),
                                                 json_object_iter_key_len(it))) != WA_OK ||
                (err = PUT_LIT(b, ":")) != WA_OK ||
                (err = write_value(b, json_object_iter_value(it))) != WA_OK) {
                return err;
            }
            first = false;
        }
        return PUT_LIT(b, "}");
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);

        if ((err = PUT_LIT(b, "[")) != WA_OK) {
            return err;
        }
        for (size_t i = 0; i < n; i++) {
            if ((i > 0 && (err = PUT_LIT(b, ",")) != WA_OK) ||
                (err = write_value(b, json_array_get(v, i))) != WA_OK) {
                return err;
            }
        }
        return PUT_LIT(b, "]");
    }
    case JSON_STRING:
        return wa_buf_append_json_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return wa_json_write_int(b, (int64_t)json_integer_value(v));
    case JSON_REAL:
        return write_real(b, v);
    case JSON_TRUE:
        return PUT_LIT(b, "true");
    case JSON_FALSE:
        return PUT_LIT(b, "false");
    case JSON_NULL:
        return PUT_LIT(b, "null");
    }
    return WA_EINVAL;
}

enum wa_err
wa_json_write(struct wa_buf *b, const json_t *v)
{
    size_t start = b->len;

    if (v == NULL) {
        return WA_EINVAL;
    }
    return wa_buf_rollback(b, start, write_value(b, v));
}
