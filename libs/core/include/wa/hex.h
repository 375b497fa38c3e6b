/*
 * wa/hex.h: lowercase hex encoding and the value of one hex digit, for every encoder and
 * decoder of hex text (ids, digests, traceparents, libs/crypto's wa_hex_decode, libs/httpd's
 * percent-decoding, JSON's \u escapes). Pure.
 */
#ifndef WA_HEX_H
#define WA_HEX_H

#include <stddef.h>

/* Writes 2*len lowercase hex digits and a NUL into out (size 2*len+1). Returns 2*len. */
static inline size_t
wa_hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
    return 2 * len;
}

/* 0-15 for '0'-'9', 'a'-'f', 'A'-'F'; -1 for any other character. */
static inline int
wa_hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* The value of the four hex digits at p (a JSON "\uXXXX" code unit), or -1 when one is not
 * a hex digit. p must hold four bytes. */
static inline long
wa_hex4_value(const char *p)
{
    long v = 0;

    for (int k = 0; k < 4; k++) {
        int d = wa_hex_value(p[k]);

        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

#endif
