/*
 * qrcode.c: wa/qrcode.h. The symbol from libqrencode (QRcode_encodeData), rendered into PNG
 * scanlines (filter 0, 1 bit per pixel, 0 = black), deflated once with zlib, and wrapped in
 * the IHDR / IDAT / IEND chunks with their CRCs (zlib's crc32 is PNG's).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <qrencode.h>
#include <zlib.h>

#include "wa/qrcode.h"

static void
put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static enum wa_err
chunk(struct wa_buf *out, const char type[4], const unsigned char *data, size_t len)
{
    unsigned char head[8], crc[4];
    uLong c = crc32(0L, Z_NULL, 0);
    enum wa_err err;

    put32(head, (uint32_t)len);
    memcpy(head + 4, type, 4);
    c = crc32(c, (const Bytef *)type, 4);
    if (len > 0) {
        c = crc32(c, data, (uInt)len);
    }
    put32(crc, (uint32_t)c);
    if ((err = wa_buf_append(out, head, sizeof(head))) != WA_OK ||
        (len > 0 && (err = wa_buf_append(out, data, len)) != WA_OK)) {
        return err;
    }
    return wa_buf_append(out, crc, sizeof(crc));
}

enum wa_err
wa_qr_png(const char *text, size_t len, unsigned scale, unsigned margin, struct wa_buf *out)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    QRcode *qr = NULL;
    unsigned char ihdr[13], *raw = NULL, *z = NULL;
    size_t side, row, start = out->len;
    uLongf zlen;
    enum wa_err err = WA_ENOMEM;

    if (text == NULL || len == 0 || scale < 1 || scale > 32 || margin > 16) {
        return WA_EINVAL;
    }
    if (len > WA_QR_TEXT_MAX) {
        return WA_ETOOBIG;
    }
    if ((qr = QRcode_encodeData((int)len, (const unsigned char *)text, 0, QR_ECLEVEL_M)) == NULL) {
        return WA_ETOOBIG;
    }
    side = ((size_t)qr->width + 2 * margin) * scale;
    row = 1 + (side + 7) / 8;
    if ((raw = calloc(side, row)) == NULL) {
        goto out;
    }
    for (size_t y = 0; y < side; y++) {
        unsigned char *line = raw + y * row;
        long my = (long)(y / scale) - (long)margin;

        line[0] = 0; /* filter: none */
        memset(line + 1, 0xff, row - 1);
        for (size_t x = 0; x < side; x++) {
            long mx = (long)(x / scale) - (long)margin;
            bool dark = my >= 0 && mx >= 0 && my < qr->width && mx < qr->width &&
                        (qr->data[my * qr->width + mx] & 1) != 0;

            if (dark) {
                line[1 + x / 8] &= (unsigned char)~(0x80u >> (x % 8));
            }
        }
    }
    zlen = compressBound((uLong)(side * row));
    if ((z = malloc(zlen)) == NULL) {
        goto out;
    }
    if (compress2(z, &zlen, raw, (uLong)(side * row), Z_BEST_COMPRESSION) != Z_OK) {
        err = WA_EIO;
        goto out;
    }
    put32(ihdr, (uint32_t)side);
    put32(ihdr + 4, (uint32_t)side);
    ihdr[8] = 1;  /* bit depth */
    ihdr[9] = 0;  /* grayscale */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering (filter 0 on every line) */
    ihdr[12] = 0; /* no interlace */
    if ((err = wa_buf_append(out, sig, sizeof(sig))) != WA_OK ||
        (err = chunk(out, "IHDR", ihdr, sizeof(ihdr))) != WA_OK ||
        (err = chunk(out, "IDAT", z, zlen)) != WA_OK ||
        (err = chunk(out, "IEND", NULL, 0)) != WA_OK) {
        err = wa_buf_rollback(out, start, err); /* all or nothing */
        goto out;
    }
    err = WA_OK;
out:
    free(z);
    free(raw);
    QRcode_free(qr);
    return err;
}
