/* test_list.c: unit tests of wa/list.h: order, removal from anywhere, removal while iterating. */
#include "wa_test.h"

#include "wa/list.h"

struct item {
    int value;
    struct wa_list link;
};

/* Checks that head holds exactly the values want[0..n) in order, walking both directions. */
static void
expect(struct wa_list *head, const int *want, size_t n)
{
    struct wa_list *it, *tmp;
    size_t i = 0;

    WA_LIST_FOREACH_SAFE(it, tmp, head)
    {
        assert_true(i < n);
        assert_int_equal(WA_LIST_ENTRY(it, struct item, link)->value, want[i]);
        i++;
    }
    assert_int_equal(i, n);
    for (it = head->prev; it != head; it = it->prev) {
        assert_int_equal(WA_LIST_ENTRY(it, struct item, link)->value, want[--i]);
    }
    assert_int_equal(wa_list_empty(head), n == 0);
}

static void
list__push_remove__keeps_order(void **state)
{
    struct item items[4] = {{.value = 0}, {.value = 1}, {.value = 2}, {.value = 3}};
    struct wa_list head;

    (void)state;
    wa_list_init(&head);
    expect(&head, NULL, 0);
    assert_null(wa_list_first(&head));
    assert_false(wa_list_linked(&items[0].link)); /* zeroed node */
    wa_list_push_back(&head, &items[1].link);
    wa_list_push_back(&head, &items[2].link);
    wa_list_push_front(&head, &items[0].link);
    wa_list_push_back(&head, &items[3].link);
    expect(&head, (const int[]){0, 1, 2, 3}, 4);
    assert_ptr_equal(wa_list_first(&head), &items[0].link);
    assert_ptr_equal(wa_list_last(&head), &items[3].link);
    assert_true(wa_list_linked(&items[2].link));

    wa_list_remove(&items[2].link); /* middle */
    assert_false(wa_list_linked(&items[2].link));
    wa_list_remove(&items[2].link); /* twice: no-op */
    expect(&head, (const int[]){0, 1, 3}, 3);
    wa_list_remove(&items[0].link); /* first */
    wa_list_remove(&items[3].link); /* last */
    expect(&head, (const int[]){1}, 1);
    wa_list_insert_before(&items[1].link, &items[0].link); /* before a node */
    wa_list_insert_before(&head, &items[3].link);          /* before the head: last */
    expect(&head, (const int[]){0, 1, 3}, 3);
    wa_list_remove(&items[0].link);
    wa_list_remove(&items[1].link);
    wa_list_remove(&items[3].link);
    expect(&head, NULL, 0);
    assert_null(wa_list_last(&head));
}

static void
list__remove_while_iterating__visits_every_node(void **state)
{
    struct item items[5];
    struct wa_list head, *it, *tmp;
    int seen = 0;

    (void)state;
    wa_list_init(&head);
    for (int i = 0; i < 5; i++) {
        items[i] = (struct item){.value = i};
        wa_list_push_back(&head, &items[i].link);
    }
    WA_LIST_FOREACH_SAFE(it, tmp, &head)
    {
        struct item *e = WA_LIST_ENTRY(it, struct item, link);

        assert_int_equal(e->value, seen++);
        if (e->value % 2 == 0) {
            wa_list_remove(it);
        }
    }
    assert_int_equal(seen, 5);
    expect(&head, (const int[]){1, 3}, 2);
}

static void
list__take_all__moves_every_node_in_order(void **state)
{
    struct item items[3] = {{.value = 0}, {.value = 1}, {.value = 2}};
    struct wa_list from, to;

    (void)state;
    wa_list_init(&from);
    wa_list_take_all(&from, &to); /* empty to empty */
    expect(&to, NULL, 0);
    for (int i = 0; i < 3; i++) {
        wa_list_push_back(&from, &items[i].link);
    }
    wa_list_take_all(&from, &to);
    expect(&from, NULL, 0);
    expect(&to, (const int[]){0, 1, 2}, 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list__push_remove__keeps_order),
        cmocka_unit_test(list__remove_while_iterating__visits_every_node),
        cmocka_unit_test(list__take_all__moves_every_node_in_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
