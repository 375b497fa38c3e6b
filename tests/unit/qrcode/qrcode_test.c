/*
 * qrcode_test.c: libs/qrcode (wa_qr_png): a valid PNG (signature, IHDR of (modules + 2 margin)
 * * scale pixels square, 1-bit grayscale, every chunk's CRC, the inflated scanlines with
 * filter 0 and a white quiet zone, dark modules inside), the same text the same image, and the
 * refusals (empty, bad scale or margin, too long).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "wa/qrcode.h"
#include "wa_test.h"

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
png__click_to_chat_url__valid_structure_quiet_zone_and_dark_modules(void **state)
{
    static const char url[] = "https://wa.me/16505550101?text=Hi%20there";
    struct wa_buf b;
    const unsigned char *p, *end;
    uint32_t side = 0;
    unsigned char *raw;
    uLongf rawlen;
    size_t row, idat = 0, dark = 0;
    unsigned char *z = NULL;
    size_t zlen = 0;

    (void)state;
    wa_buf_init(&b, 1 << 20);
    assert_int_equal(wa_qr_png(url, strlen(url), 4, 4, &b), WA_OK);
    p = (const unsigned char *)b.data;
    end = p + b.len;
    assert_memory_equal(p, "\x89PNG\r\n\x1a\n", 8);
    p += 8;
    while (p + 12 <= end) {
        uint32_t len = get32(p);
        uLong crc = crc32(crc32(0L, Z_NULL, 0), p + 4, len + 4);

        assert_true(p + 12 + len <= end);
        assert_int_equal(get32(p + 8 + len), (uint32_t)crc);
        if (memcmp(p + 4, "IHDR", 4) == 0) {
            side = get32(p + 8);
            assert_int_equal(get32(p + 12), side);
            assert_int_equal(p[16], 1); /* bit depth */
            assert_int_equal(p[17], 0); /* grayscale */
        } else if (memcmp(p + 4, "IDAT", 4) == 0) {
            z = realloc(z, zlen + len);
            memcpy(z + zlen, p + 8, len);
            zlen += len;
            idat++;
        }
        p += 12 + len;
    }
    assert_true(p == end);
    assert_int_equal(idat, 1);
    /* (version * 4 + 17 modules + 8 margin) * 4 px: version 3 for 41 bytes at level M */
    assert_int_equal(side % 4, 0);
    assert_true(side / 4 >= 21 + 8 && (side / 4 - 8 - 17) % 4 == 0);
    row = 1 + (side + 7) / 8;
    rawlen = side * row;
    raw = malloc(rawlen);
    assert_int_equal(uncompress(raw, &rawlen, z, zlen), Z_OK);
    assert_int_equal(rawlen, side * row);
    for (size_t y = 0; y < side; y++) {
        const unsigned char *line = raw + y * row;

        assert_int_equal(line[0], 0);
        for (size_t x = 0; x < side; x++) {
            bool black = (line[1 + x / 8] & (0x80u >> (x % 8))) == 0;
            bool quiet = x < 16 || y < 16 || x >= side - 16 || y >= side - 16;

            if (quiet) {
                assert_false(black);
            }
            dark += black;
        }
    }
    assert_true(dark > side * side / 8); /* finder patterns and data */
    free(raw);
    free(z);
    wa_buf_cleanup(&b);
}

static void
png__same_text__same_bytes(void **state)
{
    struct wa_buf a, b;

    (void)state;
    wa_buf_init(&a, 1 << 20);
    wa_buf_init(&b, 1 << 20);
    assert_int_equal(wa_qr_png("hello", 5, 8, 4, &a), WA_OK);
    assert_int_equal(wa_qr_png("hello", 5, 8, 4, &b), WA_OK);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    wa_buf_cleanup(&a);
    wa_buf_cleanup(&b);
}

static void
png__bad_arguments_or_too_long__refused_buffer_unchanged(void **state)
{
    struct wa_buf b, small;
    char *big = malloc(WA_QR_TEXT_MAX + 2);

    (void)state;
    wa_buf_init(&b, 1 << 20);
    wa_buf_init(&small, 64);
    memset(big, 'x', WA_QR_TEXT_MAX + 1);
    big[WA_QR_TEXT_MAX + 1] = '\0';
    assert_int_equal(wa_qr_png("", 0, 4, 4, &b), WA_EINVAL);
    assert_int_equal(wa_qr_png("x", 1, 0, 4, &b), WA_EINVAL);
    assert_int_equal(wa_qr_png("x", 1, 33, 4, &b), WA_EINVAL);
    assert_int_equal(wa_qr_png("x", 1, 4, 17, &b), WA_EINVAL);
    assert_int_equal(wa_qr_png(big, WA_QR_TEXT_MAX + 1, 4, 4, &b), WA_ETOOBIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(wa_qr_png("hello", 5, 8, 4, &small), WA_ETOOBIG);
    assert_int_equal(small.len, 0);
    free(big);
    wa_buf_cleanup(&b);
    wa_buf_cleanup(&small);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png__click_to_chat_url__valid_structure_quiet_zone_and_dark_modules),
        cmocka_unit_test(png__same_text__same_bytes),
        cmocka_unit_test(png__bad_arguments_or_too_long__refused_buffer_unchanged),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
