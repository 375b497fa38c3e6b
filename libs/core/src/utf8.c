/* utf8.c: strict UTF-8 decoding and lenient code point counting (wa/utf8.h). */
#include "wa/utf8.h"

size_t
wa_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len, i;
    uint32_t c;

    if (n == 0) {
        return 0;
    }
    if (s[0] < 0x80) {
        len = 1;
        c = s[0];
    } else if ((s[0] & 0xE0) == 0xC0) {
        len = 2;
        c = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3;
        c = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4;
        c = s[0] & 0x07;
    } else {
        return 0; /* a continuation byte or 0xF8..0xFF cannot start a sequence */
    }
    if (len > n) {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    /* reject overlong forms, surrogates and values past U+10FFFF */
    if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
        (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) {
        return 0;
    }
    if (cp != NULL) {
        *cp = c;
    }
    return len;
}

size_t
wa_utf8_count(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t count = 0;

    for (size_t i = 0; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            count++;
        }
    }
    return count;
}
