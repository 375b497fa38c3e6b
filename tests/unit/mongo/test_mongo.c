/*
 * test_mongo.c: wa::mongo without a server (the URI points at 127.0.0.1:1, where nothing
 * listens): configuration errors, argument checks, wa_mongo_free with work in flight.
 */
#include "wa_test.h"

#include <string.h>

#include "wa/mongo.h"

#define NOWHERE "mongodb://127.0.0.1:1/wa_unit"

struct calls {
    int n;
    enum wa_err err;
};

static void
on_done(void *arg, enum wa_err err)
{
    struct calls *c = arg;

    c->n++;
    c->err = err;
}

static bool
called(void *arg)
{
    return ((struct calls *)arg)->n > 0;
}

struct env {
    struct wa_loop *loop;
    struct wa_pool *pool;
};

static int
setup(void **state)
{
    static struct env e;

    memset(&e, 0, sizeof(e));
    assert_int_equal(wa_loop_new(&e.loop), WA_OK);
    assert_int_equal(wa_pool_new(e.loop, 2, &e.pool), WA_OK);
    *state = &e;
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;

    wa_pool_free(e->pool);
    wa_loop_free(e->loop);
    return 0;
}

static void
new__bad_uri__econfig_without_echo(void **state)
{
    struct env *e = *state;
    struct wa_mongo_config cfg = {.uri = "mongo://user:hunter2@nowhere"};
    struct wa_mongo *m = NULL;
    struct wa_error error;

    assert_int_equal(wa_mongo_new(e->loop, e->pool, &cfg, &m, &error), WA_ECONFIG);
    assert_null(m);
    assert_null(strstr(error.message, "hunter2"));
}

static void
insert__not_an_object__einval_and_no_callback(void **state)
{
    struct env *e = *state;
    struct wa_mongo_config cfg = {.uri = NOWHERE, .timeout_ms = 200};
    struct wa_mongo *m = NULL;
    struct calls c = {0};
    json_t *arr = json_array(), *obj = json_object();

    assert_int_equal(wa_mongo_new(e->loop, e->pool, &cfg, &m, NULL), WA_OK);
    assert_int_equal(wa_mongo_insert_one(m, "c", arr, on_done, &c), WA_EINVAL);
    assert_int_equal(wa_mongo_insert_one(m, "", obj, on_done, &c), WA_EINVAL);
    wa_mongo_free(m);
    wa_test_run_for(e->loop, 10);
    assert_int_equal(c.n, 0);
    json_decref(arr);
    json_decref(obj);
}

static void
free__operation_in_flight__callback_closed_once(void **state)
{
    struct env *e = *state;
    struct wa_mongo_config cfg = {.uri = NOWHERE, .timeout_ms = 300};
    struct wa_mongo *m = NULL;
    struct calls c = {0};
    json_t *doc = json_pack("{s:i}", "a", 1);

    assert_int_equal(wa_mongo_new(e->loop, e->pool, &cfg, &m, NULL), WA_OK);
    assert_int_equal(wa_mongo_insert_one(m, "c", doc, on_done, &c), WA_OK);
    json_decref(doc); /* copied by the call */
    wa_mongo_free(m);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.err, WA_ECLOSED);
    /* the work still finishes on the pool (server selection fails) and is only released */
    wa_test_run_for(e->loop, 1000);
    assert_int_equal(c.n, 1);
}

static void
insert__server_down__eunavail_within_timeout(void **state)
{
    struct env *e = *state;
    struct wa_mongo_config cfg = {.uri = NOWHERE, .timeout_ms = 300};
    struct wa_mongo *m = NULL;
    struct calls c = {0};
    json_t *doc = json_pack("{s:i}", "a", 1);

    assert_int_equal(wa_mongo_new(e->loop, e->pool, &cfg, &m, NULL), WA_OK);
    assert_int_equal(wa_mongo_insert_one(m, "c", doc, on_done, &c), WA_OK);
    json_decref(doc);
    assert_true(wa_test_run_until(e->loop, called, &c, 3000));
    assert_int_equal(c.err, WA_EUNAVAIL);
    assert_false(wa_mongo_ready(m));
    wa_mongo_free(m);
}

struct pages {
    int n;
    enum wa_err err;
};

static void
on_page(void *arg, enum wa_err err, const bson_t *docs, size_t n, bool more)
{
    struct pages *p = arg;

    (void)docs;
    (void)n;
    (void)more;
    p->n++;
    p->err = err;
}

static bool
paged(void *arg)
{
    return ((struct pages *)arg)->n > 0;
}

static void
bson_api__bad_arguments__einval_and_no_callback(void **state)
{
    struct env *e = *state;
    struct wa_mongo_config cfg = {.uri = NOWHERE, .timeout_ms = 200};
    struct wa_mongo *m = NULL;
    struct wa_mongo_bulk *b = wa_mongo_bulk_new(true);
    static const struct wa_mongo_index bad[] = {{"c", "a:2", false, 0}};
    static const struct wa_mongo_index empty[] = {{"c", "", false, 0}};
    struct calls c = {0};
    bson_t *f = BCON_NEW("a", BCON_INT32(1)), *plain = BCON_NEW("b", BCON_INT32(2));
    struct wa_mongo_cursor *cur = NULL;
    struct wa_mongo_find_opts big = {.page_size = 200000};

    assert_int_equal(wa_mongo_new(e->loop, e->pool, &cfg, &m, NULL), WA_OK);
    /* an empty bulk is refused and freed */
    assert_int_equal(wa_mongo_bulk_execute(m, "c", b, NULL, NULL), WA_EINVAL);
    b = wa_mongo_bulk_new(false);
    assert_int_equal(wa_mongo_bulk_update(b, f, plain, WA_MONGO_UPSERT), WA_EINVAL);
    assert_int_equal(wa_mongo_bulk_count(b), 0);
    wa_mongo_bulk_free(b);
    assert_int_equal(wa_mongo_migrate(m, NULL, bad, 1, on_done, &c), WA_EINVAL);
    assert_int_equal(wa_mongo_migrate(m, NULL, empty, 1, on_done, &c), WA_EINVAL);
    assert_int_equal(wa_mongo_cursor_find(m, "c", NULL, &big, &cur), WA_EINVAL);
    assert_int_equal(wa_mongo_update(m, "", f, plain, 0, NULL, NULL), WA_EINVAL);
    wa_mongo_free(m);
    wa_test_run_for(e->loop, 10);
    assert_int_equal(c.n, 0);
    bson_destroy(f);
    bson_destroy(plain);
}

static void
cursor__freed_with_page_in_flight__closed_once_then_down_error(void **state)
{
    struct env *e = *state;
    struct wa_mongo_config cfg = {.uri = NOWHERE, .timeout_ms = 300};
    struct wa_mongo *m = NULL;
    struct wa_mongo_cursor *cur = NULL;
    struct pages p = {0}, q = {0};

    assert_int_equal(wa_mongo_new(e->loop, e->pool, &cfg, &m, NULL), WA_OK);
    assert_int_equal(wa_mongo_cursor_find(m, "c", NULL, NULL, &cur), WA_OK);
    assert_int_equal(wa_mongo_cursor_next(cur, on_page, &p), WA_OK);
    assert_int_equal(wa_mongo_cursor_next(cur, on_page, &p), WA_EAGAIN);
    wa_mongo_cursor_free(cur);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.err, WA_ECLOSED);
    /* a second cursor meets the down server: an error ends it */
    assert_int_equal(wa_mongo_cursor_find(m, "c", NULL, NULL, &cur), WA_OK);
    assert_int_equal(wa_mongo_cursor_next(cur, on_page, &q), WA_OK);
    assert_true(wa_test_run_until(e->loop, paged, &q, 3000));
    assert_int_equal(q.err, WA_EUNAVAIL);
    assert_int_equal(wa_mongo_cursor_next(cur, on_page, &q), WA_ENOTFOUND);
    wa_mongo_cursor_free(cur);
    wa_test_run_for(e->loop, 1000); /* the first cursor's page completes and frees it */
    assert_int_equal(p.n, 1);
    wa_mongo_free(m);
}

static void
free__cursor_page_in_flight__closed_then_cursor_freed_after(void **state)
{
    struct env *e = *state;
    struct wa_mongo_config cfg = {.uri = NOWHERE, .timeout_ms = 300};
    struct wa_mongo *m = NULL;
    struct wa_mongo_cursor *cur = NULL;
    struct pages p = {0};

    assert_int_equal(wa_mongo_new(e->loop, e->pool, &cfg, &m, NULL), WA_OK);
    assert_int_equal(wa_mongo_cursor_find(m, "c", NULL, NULL, &cur), WA_OK);
    assert_int_equal(wa_mongo_cursor_next(cur, on_page, &p), WA_OK);
    wa_mongo_free(m);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.err, WA_ECLOSED);
    assert_int_equal(wa_mongo_cursor_next(cur, on_page, &p), WA_EAGAIN);
    wa_mongo_cursor_free(cur); /* the client lives until the page job ends */
    wa_test_run_for(e->loop, 1000);
    assert_int_equal(p.n, 1);
}

static int
global_teardown(void **state)
{
    (void)state;
    wa_mongo_global_cleanup();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(new__bad_uri__econfig_without_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(insert__not_an_object__einval_and_no_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(free__operation_in_flight__callback_closed_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(insert__server_down__eunavail_within_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(bson_api__bad_arguments__einval_and_no_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            cursor__freed_with_page_in_flight__closed_once_then_down_error, setup, teardown),
        cmocka_unit_test_setup_teardown(free__cursor_page_in_flight__closed_then_cursor_freed_after,
                                        setup, teardown),
    };

    wa_mongo_global_init();
    return cmocka_run_group_tests(tests, NULL, global_teardown);
}
