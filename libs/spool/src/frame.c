/* frame.c: the spool frame format (wa/spool_frame.h). */
#include "wa/spool_frame.h"

#include <stdint.h>
#include <string.h>
#include <zlib.h>

#define MAGIC "WASP"

static void
put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8), p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t
crc32_of(const unsigned char *p, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);

    while (n > 0) { /* zlib takes uInt lengths */
        uInt chunk = n > 0x40000000u ? 0x40000000u : (uInt)n;

        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

enum wa_err
wa_spool_frame_append(struct wa_buf *b, const char *const *fields, const size_t *lens)
{
    unsigned char hdr[12];
    size_t start, plen = 0;
    enum wa_err err;

    for (int i = 0; i < WA_SPOOL_FIELDS; i++) {
        if (lens[i] > UINT32_MAX - 4 || plen > UINT32_MAX - 4 - lens[i]) {
            return WA_ETOOBIG;
        }
        plen += 4 + lens[i];
    }
    if ((err = wa_buf_reserve(b, 12 + plen)) != WA_OK) {
        return err;
    }
    memcpy(hdr, MAGIC, 4);
    put32(hdr + 4, (uint32_t)plen);
    put32(hdr + 8, 0);
    wa_buf_append(b, hdr, 12);
    start = b->len;
    for (int i = 0; i < WA_SPOOL_FIELDS; i++) {
        unsigned char l[4];

        put32(l, (uint32_t)lens[i]);
        wa_buf_append(b, l, 4);
        wa_buf_append(b, fields[i], lens[i]);
    }
    put32((unsigned char *)b->data + start - 4, crc32_of((unsigned char *)b->data + start, plen));
    return WA_OK;
}

bool
wa_spool_frame_at(const unsigned char *p, size_t len, size_t off, const char **fields, size_t *lens,
                  size_t *frame_len)
{
    size_t plen, q;
    int i;

    if (off > len || len - off < 12 || memcmp(p + off, MAGIC, 4) != 0) {
        return false;
    }
    plen = get32(p + off + 4);
    if (plen > len - off - 12 || crc32_of(p + off + 12, plen) != get32(p + off + 8)) {
        return false;
    }
    q = off + 12;
    for (i = 0; i < WA_SPOOL_FIELDS && q + 4 <= off + 12 + plen; i++) {
        lens[i] = get32(p + q);
        fields[i] = (const char *)p + q + 4;
        if (lens[i] > off + 12 + plen - (q + 4)) {
            return false;
        }
        q += 4 + lens[i];
    }
    if (i != WA_SPOOL_FIELDS || q != off + 12 + plen) {
        return false;
    }
    *frame_len = 12 + plen;
    return true;
}

size_t
wa_spool_frame_resync(const unsigned char *p, size_t len, size_t off)
{
    const char *f[WA_SPOOL_FIELDS];
    size_t l[WA_SPOOL_FIELDS], n;

    for (size_t o = off + 1; o < len && len - o >= 12; o++) {
        const unsigned char *m = memchr(p + o, MAGIC[0], len - o);

        if (m == NULL) {
            break;
        }
        o = (size_t)(m - p);
        if (wa_spool_frame_at(p, len, o, f, l, &n)) {
            return o;
        }
    }
    return len;
}
