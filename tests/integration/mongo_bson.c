/*
 * mongo_bson.c: wa::mongo's BSON API against the test MongoDB-wire server (WA_MONGO_URI;
 * FerretDB in `make test`): writes with counts, find_doc, find-one-and-update, bulk writes
 * (10,000 unordered upserts in one execute; ordered stops at a duplicate), cursors (a paged
 * scan of 25,000 documents; cursors freed part-way return their clients), aggregate, migrate.
 * Each run uses its own database and drops it at the end.
 *
 * FerretDB 1.24 (SQLite) answers no other client, ping included, while it applies a bulk write
 * (about 10 ms a statement), and hangs on bulk updates matching many existing documents. So
 * when a FerretDB binary is at hand (WA_FERRETDB, else ~/.cache/wabridge/ferretdb-* /bin/), the
 * suite runs on a private FerretDB on a free port, not on the shared server, and the second,
 * matching pass of the bulk test is 10 upserts there (all 10,000 on MongoDB).
 */
#include "wa_test.h"
#include "wa_test_proc.h"

#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wa/clock.h"
#include "wa/mongo.h"

static int NBULK = 10000; /* WA_TEST_BULK overrides (measurements) */
#define NSCAN 25000

static char database[96];
static char uri[128];
static int NMATCH = 10000;

struct env {
    struct wa_loop *loop;
    struct wa_pool *pool;
    struct wa_mongo *m;
};

struct res {
    int n;
    enum wa_err err;
    struct wa_mongo_result r;
    bson_t *doc; /* own copy */
};

static bool
answered(void *arg)
{
    return ((struct res *)arg)->n > 0;
}

static void
on_result(void *arg, enum wa_err err, const struct wa_mongo_result *r)
{
    struct res *x = arg;

    x->n++;
    x->err = err;
    x->r = *r;
}

static void
on_doc(void *arg, enum wa_err err, const bson_t *doc)
{
    struct res *x = arg;

    x->n++;
    x->err = err;
    x->doc = doc != NULL ? bson_copy(doc) : NULL;
}

static void
on_done(void *arg, enum wa_err err)
{
    struct res *x = arg;

    x->n++;
    x->err = err;
}

static void
wait_for(struct env *e, struct res *x)
{
    assert_true(wa_test_run_until(e->loop, answered, x, 600000));
    assert_int_equal(x->n, 1);
}

static int64_t
get_int(const bson_t *doc, const char *path)
{
    bson_iter_t it, f;

    assert_non_null(doc);
    assert_true(bson_iter_init(&it, doc));
    assert_true(bson_iter_find_descendant(&it, path, &f));
    return bson_iter_as_int64(&f);
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
    struct wa_mongo_config cfg = {.uri = uri,
                                  .database = database,
                                  .app_name = "wa-test-bson",
                                  /* socketTimeoutMS 5x: FerretDB's SQLite backend takes
                                   * minutes for 10,000 upserts on a loaded machine */
                                  .timeout_ms = 100000};
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
    struct res x = {0};

    assert_int_equal(wa_mongo_drop_database(e->m, on_done, &x), WA_OK);
    wait_for(e, &x);
    wa_mongo_free(e->m);
    wa_pool_free(e->pool);
    wa_loop_free(e->loop);
    return 0;
}

static void
write_counts__insert_update_delete__server_counts(void **state)
{
    struct env *e = *state;
    struct res x = {0};
    bson_t *doc = BCON_NEW("_id", "a", "n", BCON_INT32(1), "g", "x");
    bson_t *doc2 = BCON_NEW("_id", "b", "n", BCON_INT32(2), "g", "x");
    bson_t *f_a = BCON_NEW("_id", "a");
    bson_t *f_g = BCON_NEW("g", "x");
    bson_t *f_c = BCON_NEW("_id", "c");
    bson_t *inc = BCON_NEW("$inc", "{", "n", BCON_INT32(10), "}");

    assert_int_equal(wa_mongo_insert(e->m, "w", doc, on_result, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_OK);
    assert_int_equal(x.r.inserted, 1);
    memset(&x, 0, sizeof(x));
    assert_int_equal(wa_mongo_insert(e->m, "w", doc, on_result, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_EEXIST);
    memset(&x, 0, sizeof(x));
    assert_int_equal(wa_mongo_insert(e->m, "w", doc2, on_result, &x), WA_OK);
    wait_for(e, &x);

    memset(&x, 0, sizeof(x)); /* multi: both */
    assert_int_equal(wa_mongo_update(e->m, "w", f_g, inc, WA_MONGO_MULTI, on_result, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_OK);
    assert_int_equal(x.r.matched, 2);
    assert_int_equal(x.r.modified, 2);
    memset(&x, 0, sizeof(x)); /* upsert of a missing _id */
    assert_int_equal(wa_mongo_update(e->m, "w", f_c, inc, WA_MONGO_UPSERT, on_result, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_OK);
    assert_int_equal(x.r.upserted, 1);

    memset(&x, 0, sizeof(x));
    assert_int_equal(wa_mongo_find_doc(e->m, "w", f_a, NULL, on_doc, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_OK);
    assert_int_equal(get_int(x.doc, "n"), 11);
    bson_destroy(x.doc);

    memset(&x, 0, sizeof(x));
    assert_int_equal(wa_mongo_delete(e->m, "w", f_g, true, on_result, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_OK);
    assert_int_equal(x.r.deleted, 2);
    memset(&x, 0, sizeof(x));
    assert_int_equal(wa_mongo_find_doc(e->m, "w", f_a, NULL, on_doc, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_ENOTFOUND);
    assert_null(x.doc);
    bson_destroy(doc);
    bson_destroy(doc2);
    bson_destroy(f_a);
    bson_destroy(f_g);
    bson_destroy(f_c);
    bson_destroy(inc);
}

static void
find_one_and_update__counter__before_after_upsert_and_miss(void **state)
{
    struct env *e = *state;
    struct res x = {0};
    bson_t *f = BCON_NEW("_id", "seq");
    bson_t *inc = BCON_NEW("$inc", "{", "v", BCON_INT64(1), "}");
    bson_t *miss = BCON_NEW("_id", "none");

    assert_int_equal(wa_mongo_find_one_and_update(e->m, "fam", f, inc, NULL, NULL,
                                                  WA_MONGO_UPSERT | WA_MONGO_RETURN_NEW, on_doc,
                                                  &x),
                     WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_OK);
    assert_int_equal(get_int(x.doc, "v"), 1);
    bson_destroy(x.doc);
    memset(&x, 0, sizeof(x)); /* the document before the update */
    assert_int_equal(wa_mongo_find_one_and_update(e->m, "fam", f, inc, NULL, NULL, 0, on_doc, &x),
                     WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_OK);
    assert_int_equal(get_int(x.doc, "v"), 1);
    bson_destroy(x.doc);
    memset(&x, 0, sizeof(x));
    assert_int_equal(
        wa_mongo_find_one_and_update(e->m, "fam", miss, inc, NULL, NULL, 0, on_doc, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_ENOTFOUND);
    bson_destroy(f);
    bson_destroy(inc);
    bson_destroy(miss);
}

static struct wa_mongo_bulk *
upserts(int n, int add)
{
    struct wa_mongo_bulk *b = wa_mongo_bulk_new(false);
    char id[32];

    assert_non_null(b);
    for (int i = 0; i < n; i++) {
        bson_t *f, *u;

        snprintf(id, sizeof(id), "k%06d", i);
        f = BCON_NEW("_id", BCON_UTF8(id));
        u = BCON_NEW("$inc", "{", "n", BCON_INT32(add), "}", "$set", "{", "i", BCON_INT32(i), "}");
        assert_int_equal(wa_mongo_bulk_update(b, f, u, WA_MONGO_UPSERT), WA_OK);
        bson_destroy(f);
        bson_destroy(u);
    }
    assert_int_equal(wa_mongo_bulk_count(b), (size_t)n);
    return b;
}

static void
bulk__10000_unordered_upserts__one_execute_then_all_matched(void **state)
{
    struct env *e = *state;
    struct res x = {0};
    bson_t *f = BCON_NEW("_id", "k000009");
    static const char *const colls[] = {"bulk", NULL};
    uint64_t t0;

    /* FerretDB 1.24 (SQLite) hangs on upserts that must create their collection: created first */
    assert_int_equal(wa_mongo_migrate(e->m, colls, NULL, 0, on_done, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_OK);
    memset(&x, 0, sizeof(x));
    t0 = wa_clock_mono_ms();

    assert_int_equal(wa_mongo_bulk_execute(e->m, "bulk", upserts(NBULK, 1), on_result, &x), WA_OK);
    wait_for(e, &x);
    printf("# bulk of %d upserts (inserting): %llu ms\n", NBULK,
           (unsigned long long)(wa_clock_mono_ms() - t0));
    assert_int_equal(x.err, WA_OK);
    assert_int_equal(x.r.upserted, NBULK);
    assert_int_equal(x.r.write_errors, 0);
    memset(&x, 0, sizeof(x));
    t0 = wa_clock_mono_ms();
    assert_int_equal(wa_mongo_bulk_execute(e->m, "bulk", upserts(NMATCH, 2), on_result, &x), WA_OK);
    wait_for(e, &x);
    printf("# bulk of %d upserts (updating): %llu ms\n", NMATCH,
           (unsigned long long)(wa_clock_mono_ms() - t0));
    assert_int_equal(x.err, WA_OK);
    assert_int_equal(x.r.upserted, 0);
    assert_int_equal(x.r.matched, NMATCH);
    assert_int_equal(x.r.modified, NMATCH);
    memset(&x, 0, sizeof(x));
    assert_int_equal(wa_mongo_find_doc(e->m, "bulk", f, NULL, on_doc, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_OK);
    assert_int_equal(get_int(x.doc, "n"), 3);
    bson_destroy(x.doc);
    bson_destroy(f);
}

static void
bulk__ordered_with_duplicate__stops_there_unordered_goes_on(void **state)
{
    struct env *e = *state;
    struct res x = {0};
    const char *ids[] = {"d1", "d2", "d1", "d3"};

    for (int ordered = 1; ordered >= 0; ordered--) {
        struct wa_mongo_bulk *b = wa_mongo_bulk_new(ordered);
        char coll[16];

        snprintf(coll, sizeof(coll), "dup%d", ordered);
        for (size_t i = 0; i < 4; i++) {
            bson_t *d = BCON_NEW("_id", BCON_UTF8(ids[i]));

            assert_int_equal(wa_mongo_bulk_insert(b, d), WA_OK);
            bson_destroy(d);
        }
        memset(&x, 0, sizeof(x));
        assert_int_equal(wa_mongo_bulk_execute(e->m, coll, b, on_result, &x), WA_OK);
        wait_for(e, &x);
        assert_int_equal(x.err, WA_EEXIST);
        assert_int_equal(x.r.write_errors, 1);
        assert_int_equal(x.r.inserted, ordered ? 2 : 3);
    }
    /* an update without operators is refused before anything is sent */
    {
        struct wa_mongo_bulk *b = wa_mongo_bulk_new(true);
        bson_t *f = BCON_NEW("_id", "x"), *u = BCON_NEW("plain", BCON_INT32(1));

        assert_int_equal(wa_mongo_bulk_update(b, f, u, 0), WA_EINVAL);
        assert_int_equal(wa_mongo_bulk_execute(e->m, "dup", b, on_result, &x), WA_EINVAL);
        bson_destroy(f);
        bson_destroy(u);
    }
}

struct scan {
    struct wa_mongo_cursor *c;
    int pages, docs, calls;
    int64_t last;
    bool sorted, more;
    enum wa_err err;
    int stop_after; /* pages; 0: to the end */
};

static void
on_page(void *arg, enum wa_err err, const bson_t *docs, size_t n, bool more)
{
    struct scan *s = arg;

    s->calls++;
    s->err = err;
    s->more = more;
    if (err != WA_OK) {
        return;
    }
    s->pages++;
    for (size_t i = 0; i < n; i++) {
        int64_t v = get_int(&docs[i], "_id");

        if (v <= s->last) {
            s->sorted = false;
        }
        s->last = v;
        s->docs++;
    }
    if (more && (s->stop_after == 0 || s->pages < s->stop_after)) {
        assert_int_equal(wa_mongo_cursor_next(s->c, on_page, s), WA_OK);
        s->calls--; /* still going */
    }
}

static bool
scanned(void *arg)
{
    return ((struct scan *)arg)->calls > 0;
}

/* ASan scribbles freed memory, so a document read through a pointer into freed memory (libbson
 * is not instrumented) fails instead of reading stale bytes (a page's growth, fill_scan). */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
    return "max_free_fill_size=1048576";
}

static void
fill_scan(struct env *e)
{
    struct wa_mongo_bulk *b = wa_mongo_bulk_new(false);
    struct res x = {0};
    char pad[201];

    /* larger than a bson_t's inline buffer (120 bytes), so a page holds allocated bson_t */
    memset(pad, 'p', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < NSCAN; i++) {
        bson_t *d = BCON_NEW("_id", BCON_INT64(i), "g", BCON_INT32(i % 5), "v", BCON_INT32(1),
                             "pad", BCON_UTF8(pad));

        assert_int_equal(wa_mongo_bulk_insert(b, d), WA_OK);
        bson_destroy(d);
    }
    assert_int_equal(wa_mongo_bulk_execute(e->m, "scan", b, on_result, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_OK);
    assert_int_equal(x.r.inserted, NSCAN);
}

static void
cursor__25000_documents_in_pages__all_in_order_once(void **state)
{
    struct env *e = *state;
    bson_t *sort = BCON_NEW("_id", BCON_INT32(1));
    /* whole documents (not inline in a bson_t): a page of them must survive its growth */
    struct wa_mongo_find_opts opts = {.sort = sort, .page_size = 1000};
    struct scan s = {.last = -1, .sorted = true};
    uint64_t t0;

    fill_scan(e);
    t0 = wa_clock_mono_ms();
    assert_int_equal(wa_mongo_cursor_find(e->m, "scan", NULL, &opts, &s.c), WA_OK);
    assert_int_equal(wa_mongo_cursor_next(s.c, on_page, &s), WA_OK);
    assert_int_equal(wa_mongo_cursor_next(s.c, on_page, &s), WA_EAGAIN);
    assert_true(wa_test_run_until(e->loop, scanned, &s, 120000));
    printf("# paged scan of %d documents in %d pages: %llu ms\n", s.docs, s.pages,
           (unsigned long long)(wa_clock_mono_ms() - t0));
    assert_int_equal(s.err, WA_OK);
    assert_false(s.more);
    assert_int_equal(s.docs, NSCAN);
    assert_true(s.sorted);
    assert_true(s.pages >= NSCAN / 1000);
    assert_int_equal(wa_mongo_cursor_next(s.c, on_page, &s), WA_ENOTFOUND);
    wa_mongo_cursor_free(s.c);
    bson_destroy(sort);
}

static void
cursor__freed_part_way_150_times__clients_returned(void **state)
{
    struct env *e = *state;
    struct wa_mongo_find_opts opts = {.page_size = 100};
    struct res x = {0};
    bson_t *f = BCON_NEW("_id", BCON_INT64(NSCAN - 1));

    /* the client pool holds 100 clients: a cursor that kept its client would exhaust it */
    for (int i = 0; i < 150; i++) {
        struct scan s = {.last = -1, .sorted = true, .stop_after = 1};

        assert_int_equal(wa_mongo_cursor_find(e->m, "scan", NULL, &opts, &s.c), WA_OK);
        assert_int_equal(wa_mongo_cursor_next(s.c, on_page, &s), WA_OK);
        if (i % 2 == 0) {
            assert_true(wa_test_run_until(e->loop, scanned, &s, 30000));
            assert_int_equal(s.docs, 100);
            assert_true(s.more);
            wa_mongo_cursor_free(s.c);
        } else {
            wa_mongo_cursor_free(s.c); /* in flight: WA_ECLOSED at once */
            assert_int_equal(s.calls, 1);
            assert_int_equal(s.err, WA_ECLOSED);
        }
    }
    assert_int_equal(wa_mongo_find_doc(e->m, "scan", f, NULL, on_doc, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_OK);
    bson_destroy(x.doc);
    bson_destroy(f);
}

struct agg {
    int calls;
    int64_t total[5];
    size_t groups;
};

static void
on_agg(void *arg, enum wa_err err, const bson_t *docs, size_t n, bool more)
{
    struct agg *a = arg;

    assert_int_equal(err, WA_OK);
    for (size_t i = 0; i < n; i++) {
        int64_t g = get_int(&docs[i], "_id");

        assert_true(g >= 0 && g < 5);
        a->total[g] = get_int(&docs[i], "total");
        a->groups++;
    }
    (void)more;
    a->calls++;
}

static bool
agg_done(void *arg)
{
    return ((struct agg *)arg)->calls > 0;
}

static void
aggregate__match_group_sort__sums_per_group(void **state)
{
    struct env *e = *state;
    struct wa_mongo_cursor *c = NULL;
    struct agg a = {0};
    bson_t *pipeline =
        BCON_NEW("0", "{", "$match", "{", "g", "{", "$gte", BCON_INT32(1), "}", "}", "}", "1", "{",
                 "$group", "{", "_id", "$g", "total", "{", "$sum", "$v", "}", "}", "}", "2", "{",
                 "$sort", "{", "_id", BCON_INT32(1), "}", "}");

    assert_int_equal(wa_mongo_cursor_aggregate(e->m, "scan", pipeline, 0, &c), WA_OK);
    assert_int_equal(wa_mongo_cursor_next(c, on_agg, &a), WA_OK);
    assert_true(wa_test_run_until(e->loop, agg_done, &a, 60000));
    assert_int_equal(a.groups, 4);
    for (int g = 1; g < 5; g++) {
        assert_int_equal(a.total[g], NSCAN / 5);
    }
    wa_mongo_cursor_free(c);
    bson_destroy(pipeline);
}

static void
migrate__twice_then_unique_index_holds__ok_and_eexist(void **state)
{
    struct env *e = *state;
    static const char *const colls[] = {"plain", NULL};
    static const struct wa_mongo_index idx[] = {
        {"people", "email:1", true, 0},
        {"people", "group:1,at:-1", false, 0},
        {"events", "contact:1", false, 0},
    };
    struct res x = {0};
    bson_t *d1 = BCON_NEW("_id", "p1", "email", "a@example.com");
    bson_t *d2 = BCON_NEW("_id", "p2", "email", "a@example.com");
    static const struct wa_mongo_index bad[] = {{"people", "email:up", false, 0}};

    for (int i = 0; i < 2; i++) {
        memset(&x, 0, sizeof(x));
        assert_int_equal(wa_mongo_migrate(e->m, colls, idx, 3, on_done, &x), WA_OK);
        wait_for(e, &x);
        assert_int_equal(x.err, WA_OK);
    }
    assert_int_equal(wa_mongo_migrate(e->m, NULL, bad, 1, on_done, &x), WA_EINVAL);
    memset(&x, 0, sizeof(x));
    assert_int_equal(wa_mongo_insert(e->m, "people", d1, on_result, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_OK);
    memset(&x, 0, sizeof(x));
    assert_int_equal(wa_mongo_insert(e->m, "people", d2, on_result, &x), WA_OK);
    wait_for(e, &x);
    assert_int_equal(x.err, WA_EEXIST);
    bson_destroy(d1);
    bson_destroy(d2);
}

/* Starts a private FerretDB when a binary is at hand; returns its pid, or -1. */
static pid_t
private_ferretdb(char *dir, size_t size)
{
    const char *bin = getenv("WA_FERRETDB");
    char home[512], url[600], listen[64];
    glob_t g = {0};
    pid_t pid = -1;
    int port = wa_test_free_port();

    snprintf(home, sizeof(home), "%s/.cache/wabridge/ferretdb-*/bin/ferretdb",
             getenv("HOME") != NULL ? getenv("HOME") : "/root");
    if (bin == NULL && glob(home, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        bin = g.gl_pathv[g.gl_pathc - 1];
    }
    snprintf(dir, size, "/tmp/wa-mongo-bson-XXXXXX");
    if (bin != NULL && access(bin, X_OK) == 0 && mkdtemp(dir) != NULL) {
        snprintf(url, sizeof(url), "--sqlite-url=file:%s/", dir);
        snprintf(listen, sizeof(listen), "--listen-addr=127.0.0.1:%d", port);
        {
            const char *argv[] = {bin,
                                  "--handler=sqlite",
                                  url,
                                  listen,
                                  "--debug-addr=-",
                                  "--telemetry=disable",
                                  "--log-level=error",
                                  NULL};
            char state[600];

            snprintf(state, sizeof(state), "--state-dir=%s", dir);
            argv[6] = state;
            pid = wa_test_spawn(argv, NULL, "/dev/null", 0);
        }
        snprintf(uri, sizeof(uri), "mongodb://127.0.0.1:%d/wabridge", port);
        printf("# private FerretDB %s on port %d\n", bin, port);
    } else {
        dir[0] = '\0';
    }
    globfree(&g);
    return pid;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(write_counts__insert_update_delete__server_counts),
        cmocka_unit_test(find_one_and_update__counter__before_after_upsert_and_miss),
        cmocka_unit_test(bulk__10000_unordered_upserts__one_execute_then_all_matched),
        cmocka_unit_test(bulk__ordered_with_duplicate__stops_there_unordered_goes_on),
        cmocka_unit_test(cursor__25000_documents_in_pages__all_in_order_once),
        cmocka_unit_test(cursor__freed_part_way_150_times__clients_returned),
        cmocka_unit_test(aggregate__match_group_sort__sums_per_group),
        cmocka_unit_test(migrate__twice_then_unique_index_holds__ok_and_eexist),
    };
    char prefix[64], dir[128], rm[192];
    pid_t pid;
    int failed;

    snprintf(uri, sizeof(uri), "%s", wa_test_env("WA_MONGO_URI"));
    if ((pid = private_ferretdb(dir, sizeof(dir))) > 0) {

        NMATCH = 10;
    }
    if (getenv("WA_TEST_BULK") != NULL) {
        NBULK = (int)strtol(getenv("WA_TEST_BULK"), NULL, 10);
    }
    wa_mongo_global_init();
    wa_test_unique_prefix(prefix, sizeof(prefix));
    snprintf(database, sizeof(database), "wab_%s", prefix);
    for (size_t i = 0; database[i] != '\0'; i++) {
        if (database[i] == '.') {
            database[i] = '\0';
        }
    }
    failed = cmocka_run_group_tests_name("mongo_bson", tests, setup, teardown);
    wa_mongo_global_cleanup();
    if (pid > 0) {
        wa_test_stop(pid, SIGKILL, WA_TEST_NO_TIMEOUT);
        snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
        if (system(rm) != 0) {
            printf("# %s left behind\n", dir);
        }
    }
    return failed;
}
