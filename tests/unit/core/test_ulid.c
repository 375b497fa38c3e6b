/* test_ulid.c: unit tests of wa/id.h: ULID shape, ordering and random helpers. */
#include "wa_test.h"

#include <stdlib.h>
#include <string.h>

#include "wa/id.h"

#define N 10000

static int
cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void
ulid__shape__26_crockford_chars(void **state)
{
    char id[WA_ULID_LEN];
    size_t i;

    (void)state;
    wa_ulid_new(id);
    assert_int_equal(strlen(id), 26);
    for (i = 0; i < 26; i++) {
        assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", id[i]));
    }
    assert_true(id[0] <= '7'); /* 128 bits: the first digit carries only 3 */
}

static void
ulid__tight_loop__strictly_increasing_and_unique(void **state)
{
    char(*ids)[WA_ULID_LEN] = calloc(N, WA_ULID_LEN);
    size_t i, j;

    (void)state;
    assert_non_null(ids);
    for (i = 0; i < N; i++) {
        wa_ulid_new(ids[i]);
    }
    for (i = 1; i < N; i++) {
        if (strcmp(ids[i - 1], ids[i]) >= 0) {
            fail_msg("ulid %zu (%s) is not greater than ulid %zu (%s)", i, ids[i], i - 1,
                     ids[i - 1]);
        }
        for (j = 0; j < 26; j++) {
            assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", ids[i][j]));
        }
    }
    /* strictly increasing implies unique; checked directly as well */
    qsort(ids, N, WA_ULID_LEN, cmp_id);
    for (i = 1; i < N; i++) {
        assert_true(strcmp(ids[i - 1], ids[i]) != 0);
    }
    free(ids);
}

static void
ulid_at__timestamp_prefix__encodes_time(void **state)
{
    char id[WA_ULID_LEN];

    (void)state;
    /* The time part of a ULID is the first 10 characters. 2^48 - 1 ms is "7ZZZZZZZZZ". */
    wa_ulid_at(281474976710655ULL, id);
    assert_memory_equal(id, "7ZZZZZZZZZ", 10);
}

static void
random_hex__length_and_alphabet(void **state)
{
    char a[65], b[65];
    size_t i;

    (void)state;
    assert_int_equal(wa_random_hex(a, 32), WA_OK);
    assert_int_equal(wa_random_hex(b, 32), WA_OK);
    assert_int_equal(strlen(a), 64);
    for (i = 0; i < 64; i++) {
        assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_string_not_equal(a, b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ulid__shape__26_crockford_chars),
        cmocka_unit_test(ulid__tight_loop__strictly_increasing_and_unique),
        cmocka_unit_test(ulid_at__timestamp_prefix__encodes_time),
        cmocka_unit_test(random_hex__length_and_alphabet),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
