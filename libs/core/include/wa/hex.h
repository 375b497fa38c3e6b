/*
 * wa/hex.h: the value of one hex digit, for every decoder of hex text (libs/crypto's
 * wa_hex_decode, libs/httpd's percent-decoding). Pure.
 */
#ifndef WA_HEX_H
#define WA_HEX_H

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

#endif
