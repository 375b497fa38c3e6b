/* frame_test.c: wa/spool_frame.h through its functions: frames written by
 * wa_spool_frame_append read back by wa_spool_frame_at, a known CRC, a torn tail, and damage in
 * the middle skipped by wa_spool_frame_resync. */
#include <string.h>

#include "wa/spool_frame.h"
#include "wa_test.h"

static void
append(struct wa_buf *b, const char *value)
{
    const char *f[WA_SPOOL_FIELDS] = {"wa.inbound.message", "p1:15550001", "01J", "t", "src",
                                      "00-0123-01",         value};
    size_t l[WA_SPOOL_FIELDS];

    for (int i = 0; i < WA_SPOOL_FIELDS; i++) {
        l[i] = strlen(f[i]);
    }
    assert_int_equal(wa_spool_frame_append(b, f, l), WA_OK);
}

static void
frames__written__read_back_field_by_field(void **state)
{
    struct wa_buf b;
    const char *f[WA_SPOOL_FIELDS];
    size_t l[WA_SPOOL_FIELDS], n1 = 0, n2 = 0;
    const unsigned char *p;

    (void)state;
    wa_buf_init(&b, 0);
    append(&b, "{\"a\":1}");
    append(&b, "");
    p = (const unsigned char *)b.data;
    assert_memory_equal(p, "WASP", 4);
    assert_true(wa_spool_frame_at(p, b.len, 0, f, l, &n1));
    assert_int_equal(l[6], 7);
    assert_memory_equal(f[6], "{\"a\":1}", 7);
    assert_memory_equal(f[0], "wa.inbound.message", l[0]);
    assert_true(wa_spool_frame_at(p, b.len, n1, f, l, &n2));
    assert_int_equal(l[6], 0);
    assert_int_equal(n1 + n2, b.len);
    /* the CRC is the standard CRC-32 (IEEE) of the payload, little-endian after the length
     * (the expected bytes from Python: zlib.crc32 of the same payload) */
    {
        static const unsigned char crc[4] = {0x0b, 0x9c, 0xd9, 0x1f};

        assert_memory_equal(p + 8, crc, 4);
    }
    wa_buf_cleanup(&b);
}

static void
damage__torn_tail_and_flipped_byte__resync_finds_the_next_frame(void **state)
{
    struct wa_buf b;
    const char *f[WA_SPOOL_FIELDS];
    size_t l[WA_SPOOL_FIELDS], n1 = 0, n;
    unsigned char *p;

    (void)state;
    wa_buf_init(&b, 0);
    append(&b, "first");
    append(&b, "second");
    append(&b, "third");
    p = (unsigned char *)b.data;
    assert_true(wa_spool_frame_at(p, b.len, 0, f, l, &n1));
    /* a torn tail: the last frame cut short is not a frame, and nothing follows it */
    assert_false(wa_spool_frame_at(p, b.len - 3, 2 * n1 + 1, f, l, &n));
    assert_int_equal(wa_spool_frame_resync(p, b.len - 3, n1 + 5), b.len - 3);
    /* a flipped byte in the first frame's value: that frame is refused, the second is found */
    p[n1 - 2] ^= 0x20;
    assert_false(wa_spool_frame_at(p, b.len, 0, f, l, &n));
    assert_int_equal(wa_spool_frame_resync(p, b.len, 0), n1);
    assert_true(wa_spool_frame_at(p, b.len, n1, f, l, &n));
    assert_memory_equal(f[6], "second", 6);
    /* a zeroed block over the magic of the second frame: resync lands on the third */
    memset(p + n1, 0, 8);
    assert_int_equal(wa_spool_frame_resync(p, b.len, 0), n1 + n);
    /* out of range and empty input */
    assert_false(wa_spool_frame_at(p, b.len, b.len + 1, f, l, &n));
    assert_int_equal(wa_spool_frame_resync(p, 0, 0), 0);
    wa_buf_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames__written__read_back_field_by_field),
        cmocka_unit_test(damage__torn_tail_and_flipped_byte__resync_finds_the_next_frame),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
