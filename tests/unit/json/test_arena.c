/* test_arena.c: unit tests of wa/json.h's arenas: scoped jansson allocation, no-op frees of
 * arena values, pass-through for everything else (LeakSanitizer in the ASan build catches a
 * malloc'd value wrongly treated as arena memory), block growth and release, other threads. */
#include "wa_test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wa/json.h"

static const char doc[] =
    "{\"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":\"messages\","
    "\"value\":{\"messages\":[{\"from\":\"15551234567\",\"text\":"
    "{\"body\":\"caf\\u00e9 \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7\"}}]}}]}]}";

static void
arena__parse_in_scope__values_come_from_the_arena(void **state)
{
    struct wa_json_arena a;
    json_t *v = NULL;

    (void)state;
    wa_json_arena_init(&a, 4096);
    wa_json_arena_enter(&a);
    assert_int_equal(wa_json_parse(doc, strlen(doc), 0, &v, NULL), WA_OK);
    assert_true(a.allocated > 0);
    assert_true(wa_json_arena_owns(&a, v));
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(
                json_array_get(
                    json_object_get(
                        json_object_get(
                            json_array_get(
                                json_object_get(json_array_get(json_object_get(v, "entry"), 0),
                                                "changes"),
                                0),
                            "value"),
                        "messages"),
                    0),
                "text"),
            "body")),
        "caf\xc3\xa9 \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7");
    json_decref(v); /* inside the scope: a no-op free per value */
    wa_json_arena_leave(&a);
    assert_int_equal(a.allocated, 0);
    assert_false(a.active);
    wa_json_arena_free(&a);
}

static void
arena__outside_scope__malloc_as_usual(void **state)
{
    struct wa_json_arena a;
    json_t *before = json_pack("{s:s}", "k", "made before the scope");
    json_t *inside;

    (void)state;
    wa_json_arena_init(&a, 4096);
    wa_json_arena_enter(&a);
    assert_false(wa_json_arena_owns(&a, before));
    inside = json_string("made inside");
    assert_true(wa_json_arena_owns(&a, inside));
    /* freed inside the scope but malloc'd: must really be freed (LeakSanitizer checks) */
    json_decref(before);
    wa_json_arena_leave(&a);
    /* after leave, jansson is back on malloc: this value must be freed for real */
    before = json_string("after");
    assert_false(wa_json_arena_owns(&a, before));
    json_decref(before);
    wa_json_arena_free(&a);
}

static void
arena__large_document__grows_then_gives_the_growth_back(void **state)
{
    struct wa_json_arena a;
    struct wa_buf b;
    json_t *v = NULL;

    (void)state;
    wa_buf_init(&b, 0);
    assert_int_equal(wa_buf_append_str(&b, "["), WA_OK);
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(wa_buf_append_str(&b, i ? ",{\"k\":\"value value\"}" : "{\"k\":1}"),
                         WA_OK);
    }
    assert_int_equal(wa_buf_append_str(&b, "]"), WA_OK);
    wa_json_arena_init(&a, 1024);
    for (int round = 0; round < 3; round++) {
        size_t grown = a.grown;
        const json_t *last;

        wa_json_arena_enter(&a);
        assert_int_equal(wa_json_parse(b.data, b.len, 0, &v, NULL), WA_OK);
        assert_int_equal(json_array_size(v), 5000);
        last = json_array_get(v, 4999);
        assert_true(a.allocated > 5000 * 32);
        assert_true(a.grown > grown + 1); /* several blocks for one scope */
        assert_true(wa_json_arena_owns(&a, last));
        wa_json_arena_leave(&a);
        /* the blocks the document added are freed: its last value is no longer arena memory
         * (only the address is compared) */
        assert_false(wa_json_arena_owns(&a, last));
    }
    wa_json_arena_free(&a);
    wa_buf_cleanup(&b);
}

static void
arena__single_huge_allocation__gets_its_own_block(void **state)
{
    struct wa_json_arena a;
    char *big = malloc(100000);
    json_t *s;

    (void)state;
    memset(big, 'x', 99999);
    big[99999] = '\0';
    wa_json_arena_init(&a, 1024);
    wa_json_arena_enter(&a);
    s = json_string(big);
    assert_non_null(s);
    assert_true(wa_json_arena_owns(&a, s));
    assert_int_equal(json_string_length(s), 99999);
    wa_json_arena_leave(&a);
    wa_json_arena_free(&a);
    free(big);
}

static void *
other_thread(void *arg)
{
    struct wa_json_arena *a = arg;
    json_t *v = json_pack("{s:i}", "n", 7);
    bool owned = wa_json_arena_owns(a, v);

    json_decref(v); /* malloc'd: really freed (LeakSanitizer checks) */
    return owned ? arg : NULL;
}

static void
arena__other_threads__not_affected_by_a_scope(void **state)
{
    struct wa_json_arena a;
    pthread_t t;
    void *owned = (void *)1;

    (void)state;
    wa_json_arena_init(&a, 4096);
    wa_json_arena_enter(&a);
    assert_int_equal(pthread_create(&t, NULL, other_thread, &a), 0);
    assert_int_equal(pthread_join(t, &owned), 0);
    assert_null(owned);
    wa_json_arena_leave(&a);
    wa_json_arena_free(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena__parse_in_scope__values_come_from_the_arena),
        cmocka_unit_test(arena__outside_scope__malloc_as_usual),
        cmocka_unit_test(arena__large_document__grows_then_gives_the_growth_back),
        cmocka_unit_test(arena__single_huge_allocation__gets_its_own_block),
        cmocka_unit_test(arena__other_threads__not_affected_by_a_scope),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
