/*
 * sha1.c: SHA-1 (FIPS 180-4) of a Lua script, the name Redis gives it for EVALSHA.
 *
 * Not used for security: only to name scripts the way Redis does, so wa::kv needs no crypto
 * library. Pure function, any thread.
 */
#include "wa/kv.h"

#include <string.h>

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void
block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80], a, b, c, d, e, f, k, t;
    int i;

    for (i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    }
    for (i = 16; i < 80; i++) {
        w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    a = h[0];
    b = h[1];
    c = h[2];
    d = h[3];
    e = h[4];
    for (i = 0; i < 80; i++) {
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999u;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1u;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdcu;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6u;
        }
        t = ROL(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = ROL(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void
wa_kv_script_sha1(const char *script, char out[WA_KV_SHA1_HEX_LEN])
{
    static const char hex[] = "0123456789abcdef";
    uint32_t h[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u};
    size_t len = strlen(script), off = 0, rest, i;
    uint64_t bits = (uint64_t)len * 8;
    unsigned char tail[128];

    for (; len - off >= 64; off += 64) {
        block(h, (const unsigned char *)script + off);
    }
    rest = len - off;
    memset(tail, 0, sizeof(tail));
    memcpy(tail, script + off, rest);
    tail[rest] = 0x80;
    /* the length goes into the last 8 bytes of one or two final blocks */
    rest = rest + 1 + 8 <= 64 ? 64 : 128;
    for (i = 0; i < 8; i++) {
        tail[rest - 1 - i] = (unsigned char)(bits >> (8 * i));
    }
    block(h, tail);
    if (rest == 128) {
        block(h, tail + 64);
    }
    for (i = 0; i < 20; i++) {
        unsigned char byte = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
        out[2 * i] = hex[byte >> 4];
        out[2 * i + 1] = hex[byte & 0xf];
    }
    out[40] = '\0';
}
