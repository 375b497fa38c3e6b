/*
 * mongo_ferretdb.c: wa::mongo against the test MongoDB-wire server (WA_MONGO_URI; FerretDB in
 * `make test`). Each run uses its own database (from a unique prefix) and drops it at the end.
 * Everything here is supported by both MongoDB and FerretDB 1.x (SQLite backend).
 */
#include "wa_test.h"

#include <stdio.h>
#include <string.h>

#include "wa/clock.h"
#include "wa/mongo.h"

static char database[96];

struct env {
    struct wa_loop *loop;
    struct wa_pool *pool;
    struct wa_mongo *m;
};

struct result {
    int n;
    enum wa_err err;
    json_t *docs; /* own reference */
    int64_t count, matched, modified;
    bool upserted;
};

static bool
answered(void *arg)
{
    return ((struct result *)arg)->n > 0;
}

static void
on_done(void *arg, enum wa_err err)
{
    struct result *r = arg;

    r->n++;
    r->err = err;
}

static void
on_docs(void *arg, enum wa_err err, json_t *docs)
{
    struct result *r = arg;

    r->n++;
    r->err = err;
    r->docs = json_incref(docs);
}

static void
on_count(void *arg, enum wa_err err, int64_t count)
{
    struct result *r = arg;

    r->n++;
    r->err = err;
    r->count = count;
}

static void
on_update(void *arg, enum wa_err err, int64_t matched, int64_t modified, bool upserted)
{
    struct result *r = arg;

    r->n++;
    r->err = err;
    r->matched = matched;
    r->modified = modified;
    r->upserted = upserted;
}

static void
wait_for(struct env *e, struct result *r)
{
    assert_true(wa_test_run_until(e->loop, answered, r, 10000));
    assert_int_equal(r->n, 1);
}

static bool
ready(void *arg)
{
    return wa_mongo_ready(arg);
}

static int
setup(void **state)
{
    static struct env e;
    struct wa_mongo_config cfg = {.uri = wa_test_env("WA_MONGO_URI"),
                                  .database = database,
                                  .app_name = "wa-test",
                                  .timeout_ms = 2000};
    struct wa_error error = {0};

    memset(&e, 0, sizeof(e));
    assert_int_equal(wa_loop_new(&e.loop), WA_OK);
    assert_int_equal(wa_pool_new(e.loop, 2, &e.pool), WA_OK);
    if (wa_mongo_new(e.loop, e.pool, &cfg, &e.m, &error) != WA_OK) {
        fail_msg("wa_mongo_new: %s", error.message);
    }
    assert_true(wa_test_run_until(e.loop, ready, e.m, 10000));
    *state = &e;
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;

    wa_mongo_free(e->m);
    wa_pool_free(e->pool);
    wa_loop_free(e->loop);
    return 0;
}

static json_t *
parse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);

    assert_non_null(j);
    return j;
}

static void
insert(struct env *e, const char *coll, const char *doc_text, enum wa_err want)
{
    struct result r = {0};
    json_t *doc = parse(doc_text);

    assert_int_equal(wa_mongo_insert_one(e->m, coll, doc, on_done, &r), WA_OK);
    json_decref(doc);
    wait_for(e, &r);
    assert_int_equal(r.err, want);
}

static struct result
find(struct env *e, const char *coll, const char *filter_text, const char *opts_text)
{
    struct result r = {0};
    json_t *filter = parse(filter_text), *opts = opts_text ? parse(opts_text) : NULL;

    assert_int_equal(wa_mongo_find(e->m, coll, filter, opts, on_docs, &r), WA_OK);
    json_decref(filter);
    json_decref(opts);
    wait_for(e, &r);
    return r;
}

static void
insert_find__one_document__round_trips(void **state)
{
    struct env *e = *state;
    struct result r;
    json_t *doc;

    insert(e, "messages", "{\"wamid\": \"wamid.A\", \"n\": 7, \"tags\": [\"x\", \"y\"]}", WA_OK);
    r = find(e, "messages", "{\"wamid\": \"wamid.A\"}", NULL);
    assert_int_equal(r.err, WA_OK);
    assert_int_equal(json_array_size(r.docs), 1);
    doc = json_array_get(r.docs, 0);
    assert_string_equal(json_string_value(json_object_get(doc, "wamid")), "wamid.A");
    assert_int_equal(json_integer_value(json_object_get(doc, "n")), 7);
    assert_int_equal(json_array_size(json_object_get(doc, "tags")), 2);
    assert_non_null(json_object_get(json_object_get(doc, "_id"), "$oid"));
    json_decref(r.docs);
}

static void
create_index__unique_then_duplicate_insert__eexist(void **state)
{
    struct env *e = *state;
    struct result r = {0};
    json_t *keys = parse("{\"request_id\": 1}");

    assert_int_equal(wa_mongo_create_index(e->m, "requests", keys, true, 0, on_done, &r), WA_OK);
    wait_for(e, &r);
    assert_int_equal(r.err, WA_OK);
    /* the same index again is not an error */
    memset(&r, 0, sizeof(r));
    assert_int_equal(wa_mongo_create_index(e->m, "requests", keys, true, 0, on_done, &r), WA_OK);
    wait_for(e, &r);
    assert_int_equal(r.err, WA_OK);
    json_decref(keys);
    insert(e, "requests", "{\"request_id\": \"r1\", \"v\": 1}", WA_OK);
    insert(e, "requests", "{\"request_id\": \"r1\", \"v\": 2}", WA_EEXIST);
    insert(e, "requests", "{\"request_id\": \"r2\", \"v\": 3}", WA_OK);
}

static void
update_one__upsert__inserts_then_modifies(void **state)
{
    struct env *e = *state;
    struct result r = {0}, f;
    json_t *filter = parse("{\"_id\": \"contact-1\"}");
    json_t *update = parse("{\"$set\": {\"name\": \"Ana\"}, \"$inc\": {\"visits\": 1}}");

    assert_int_equal(wa_mongo_update_one(e->m, "contacts", filter, update, true, on_update, &r),
                     WA_OK);
    wait_for(e, &r);
    assert_int_equal(r.err, WA_OK);
    assert_true(r.upserted);
    assert_int_equal(r.matched, 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(wa_mongo_update_one(e->m, "contacts", filter, update, true, on_update, &r),
                     WA_OK);
    wait_for(e, &r);
    assert_int_equal(r.err, WA_OK);
    assert_false(r.upserted);
    assert_int_equal(r.matched, 1);
    assert_int_equal(r.modified, 1);
    /* without upsert, a missing document is left missing */
    json_decref(filter);
    filter = parse("{\"_id\": \"contact-2\"}");
    memset(&r, 0, sizeof(r));
    assert_int_equal(wa_mongo_update_one(e->m, "contacts", filter, update, false, on_update, &r),
                     WA_OK);
    wait_for(e, &r);
    assert_int_equal(r.err, WA_OK);
    assert_int_equal(r.matched, 0);
    assert_false(r.upserted);
    json_decref(filter);
    json_decref(update);
    f = find(e, "contacts", "{}", NULL);
    assert_int_equal(json_array_size(f.docs), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(f.docs, 0), "visits")), 2);
    json_decref(f.docs);
}

static void
find__sort_and_limit__ordered_subset(void **state)
{
    struct env *e = *state;
    struct result r;
    char doc[64];
    int i;

    for (i = 0; i < 5; i++) {
        snprintf(doc, sizeof(doc), "{\"k\": %d, \"odd\": %s}", (i * 3) % 5,
                 i % 2 ? "true" : "false");
        insert(e, "sorted", doc, WA_OK);
    }
    r = find(e, "sorted", "{}",
             "{\"sort\": {\"k\": -1}, \"limit\": 3, \"projection\": "
             "{\"_id\": 0, \"k\": 1}}");
    assert_int_equal(r.err, WA_OK);
    assert_int_equal(json_array_size(r.docs), 3);
    for (i = 0; i < 3; i++) {
        json_t *d = json_array_get(r.docs, (size_t)i);
        assert_int_equal(json_integer_value(json_object_get(d, "k")), 4 - i);
        assert_null(json_object_get(d, "_id"));
    }
    json_decref(r.docs);
}

static void
count_and_delete__filter__counts_match(void **state)
{
    struct env *e = *state;
    struct result r = {0};
    json_t *filter = parse("{\"kind\": \"a\"}"), *all = json_object();

    insert(e, "counted", "{\"kind\": \"a\"}", WA_OK);
    insert(e, "counted", "{\"kind\": \"a\"}", WA_OK);
    insert(e, "counted", "{\"kind\": \"b\"}", WA_OK);
    assert_int_equal(wa_mongo_count(e->m, "counted", filter, on_count, &r), WA_OK);
    wait_for(e, &r);
    assert_int_equal(r.err, WA_OK);
    assert_int_equal(r.count, 2);
    memset(&r, 0, sizeof(r));
    assert_int_equal(wa_mongo_count(e->m, "counted", NULL, on_count, &r), WA_OK);
    wait_for(e, &r);
    assert_int_equal(r.count, 3);
    memset(&r, 0, sizeof(r));
    assert_int_equal(wa_mongo_delete_many(e->m, "counted", filter, on_count, &r), WA_OK);
    wait_for(e, &r);
    assert_int_equal(r.err, WA_OK);
    assert_int_equal(r.count, 2);
    memset(&r, 0, sizeof(r));
    assert_int_equal(wa_mongo_count(e->m, "counted", all, on_count, &r), WA_OK);
    wait_for(e, &r);
    assert_int_equal(r.count, 1);
    json_decref(filter);
    json_decref(all);
}

static void
find_one__missing__enotfound(void **state)
{
    struct env *e = *state;
    struct result r = {0};
    json_t *filter = parse("{\"nobody\": true}");

    assert_int_equal(wa_mongo_find_one(e->m, "messages", filter, NULL, on_docs, &r), WA_OK);
    json_decref(filter);
    wait_for(e, &r);
    assert_int_equal(r.err, WA_ENOTFOUND);
    assert_null(r.docs);
}

static void
drop_database__end_of_run__succeeds(void **state)
{
    struct env *e = *state;
    struct result r = {0};

    assert_int_equal(wa_mongo_drop_database(e->m, on_done, &r), WA_OK);
    wait_for(e, &r);
    assert_int_equal(r.err, WA_OK);
}

static void
server_down__operation__fails_within_timeout_and_not_ready(void **state)
{
    struct wa_loop *loop = NULL;
    struct wa_pool *pool = NULL;
    struct wa_mongo *m = NULL;
    struct wa_mongo_config cfg = {.uri = "mongodb://127.0.0.1:1/wa_down", .timeout_ms = 500};
    struct result r = {0};
    json_t *doc = parse("{\"a\": 1}");
    uint64_t t0;

    (void)state;
    assert_int_equal(wa_loop_new(&loop), WA_OK);
    assert_int_equal(wa_pool_new(loop, 2, &pool), WA_OK);
    assert_int_equal(wa_mongo_new(loop, pool, &cfg, &m, NULL), WA_OK);
    t0 = wa_clock_mono_ms();
    assert_int_equal(wa_mongo_insert_one(m, "c", doc, on_done, &r), WA_OK);
    json_decref(doc);
    assert_true(wa_test_run_until(loop, answered, &r, 5000));
    assert_int_equal(r.err, WA_EUNAVAIL);
    /* server selection gives up after timeout_ms; allow scheduling slack, not a second try */
    assert_true(wa_clock_mono_ms() - t0 < 2000);
    assert_false(wa_mongo_ready(m));
    wa_mongo_free(m);
    wa_pool_free(pool);
    wa_loop_free(loop);
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
        cmocka_unit_test(insert_find__one_document__round_trips),
        cmocka_unit_test(create_index__unique_then_duplicate_insert__eexist),
        cmocka_unit_test(update_one__upsert__inserts_then_modifies),
        cmocka_unit_test(find__sort_and_limit__ordered_subset),
        cmocka_unit_test(count_and_delete__filter__counts_match),
        cmocka_unit_test(find_one__missing__enotfound),
        cmocka_unit_test(drop_database__end_of_run__succeeds),
    };
    const struct CMUnitTest offline[] = {
        cmocka_unit_test(server_down__operation__fails_within_timeout_and_not_ready),
    };
    char prefix[64];
    size_t i;
    int failed;

    wa_mongo_global_init();
    wa_test_unique_prefix(prefix, sizeof(prefix));
    /* database names may not contain '.'; the prefix is "t<ULID>." */
    snprintf(database, sizeof(database), "wa_%s", prefix);
    for (i = 0; database[i] != '\0'; i++) {
        if (database[i] == '.') {
            database[i] = '\0';
        }
    }
    failed = cmocka_run_group_tests_name("mongo", tests, setup, teardown);
    failed += cmocka_run_group_tests_name("mongo_down", offline, NULL, global_teardown);
    return failed;
}
