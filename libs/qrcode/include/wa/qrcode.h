/*
 * wa/qrcode.h: a QR code of a short text as a PNG image (wa-gateway's click-to-chat links).
 *
 * libqrencode draws the symbol (8-bit byte mode, error correction level M, the smallest
 * version that fits); the PNG is written here: 1-bit grayscale, black modules on white, a
 * quiet zone around them, one zlib stream. No libqrencode or zlib type appears here.
 * Stateless and thread-safe.
 */
#ifndef WA_QRCODE_H
#define WA_QRCODE_H

#include <stddef.h>

#include "wa/buf.h"
#include "wa/err.h"

#define WA_QR_TEXT_MAX 2048 /* bytes accepted (a version 40-M symbol holds 2331) */

/*
 * Appends the PNG of text (len bytes) to out: scale pixels per module (1..32), margin modules
 * of quiet zone (0..16; the standard asks for 4). Returns WA_OK, WA_EINVAL (bad scale, margin,
 * empty text), WA_ETOOBIG (text over WA_QR_TEXT_MAX or out's maximum reached; out unchanged),
 * WA_ENOMEM.
 */
enum wa_err wa_qr_png(const char *text, size_t len, unsigned scale, unsigned margin,
                      struct wa_buf *out);

#endif
