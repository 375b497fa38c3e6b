/* test_metrics.c: unit tests of wa/metrics.h: registry, atomic updates, Prometheus text. */
#include "wa_test.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "wa/metrics.h"

static char *
render(struct wa_metrics *m, struct wa_buf *b)
{
    wa_buf_init(b, 0);
    assert_int_equal(wa_metrics_render(m, b), WA_OK);
    assert_non_null(b->data);
    return b->data;
}

static void
counter__same_key__same_series(void **state)
{
    struct wa_metrics *m = NULL;
    struct wa_counter *a, *b, *c;

    (void)state;
    assert_int_equal(wa_metrics_new(&m), WA_OK);
    a = wa_metrics_counter(m, "wa_requests_total", "Requests.", "code=\"200\"");
    b = wa_metrics_counter(m, "wa_requests_total", "Requests.", "code=\"200\"");
    c = wa_metrics_counter(m, "wa_requests_total", "Requests.", "code=\"500\"");
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    wa_counter_inc(a);
    wa_counter_add(b, 41);
    assert_int_equal(wa_counter_value(a), 42);
    assert_int_equal(wa_counter_value(c), 0);
    wa_metrics_free(m);
}

static void
counter__render__help_type_once_then_series(void **state)
{
    struct wa_metrics *m = NULL;
    struct wa_buf b;

    (void)state;
    assert_int_equal(wa_metrics_new(&m), WA_OK);
    wa_counter_add(wa_metrics_counter(m, "wa_requests_total", "Requests.", "code=\"200\""), 3);
    wa_counter_add(wa_metrics_counter(m, "wa_requests_total", "Requests.", "code=\"500\""), 1);
    wa_counter_add(wa_metrics_counter(m, "wa_plain_total", "Plain.", NULL), 7);
    assert_string_equal(render(m, &b), "# HELP wa_requests_total Requests.\n"
                                       "# TYPE wa_requests_total counter\n"
                                       "wa_requests_total{code=\"200\"} 3\n"
                                       "wa_requests_total{code=\"500\"} 1\n"
                                       "# HELP wa_plain_total Plain.\n"
                                       "# TYPE wa_plain_total counter\n"
                                       "wa_plain_total 7\n");
    wa_buf_cleanup(&b);
    wa_metrics_free(m);
}

static void
render__families_in_registration_order(void **state)
{
    struct wa_metrics *m = NULL;
    struct wa_buf b;
    const char *text, *pz, *pa, *pm;

    (void)state;
    assert_int_equal(wa_metrics_new(&m), WA_OK);
    wa_metrics_gauge(m, "zzz", "z", NULL);
    wa_metrics_counter(m, "aaa_total", "a", NULL);
    wa_metrics_gauge(m, "mmm", "m", NULL);
    wa_metrics_gauge(m, "zzz", "z", "x=\"1\""); /* a later series of the first family */
    text = render(m, &b);
    pz = strstr(text, "# TYPE zzz gauge");
    pa = strstr(text, "# TYPE aaa_total counter");
    pm = strstr(text, "# TYPE mmm gauge");
    assert_non_null(pz);
    assert_non_null(pa);
    assert_non_null(pm);
    assert_true(pz < pa && pa < pm);
    assert_non_null(strstr(text, "zzz 0\nzzz{x=\"1\"} 0\n# HELP aaa_total"));
    wa_buf_cleanup(&b);
    wa_metrics_free(m);
}

static void
gauge__set_add_and_special_values(void **state)
{
    struct wa_metrics *m = NULL;
    struct wa_gauge *g;
    struct wa_buf b;

    (void)state;
    assert_int_equal(wa_metrics_new(&m), WA_OK);
    g = wa_metrics_gauge(m, "wa_inflight", "In flight.", NULL);
    wa_gauge_set(g, 2.5);
    wa_gauge_add(g, -1.0);
    assert_true(wa_gauge_value(g) == 1.5);
    assert_non_null(strstr(render(m, &b), "# TYPE wa_inflight gauge\nwa_inflight 1.5\n"));
    wa_buf_cleanup(&b);
    wa_gauge_set(g, 0.1);
    assert_non_null(strstr(render(m, &b), "wa_inflight 0.1\n"));
    wa_buf_cleanup(&b);
    wa_gauge_set(g, INFINITY);
    assert_non_null(strstr(render(m, &b), "wa_inflight +Inf\n"));
    wa_buf_cleanup(&b);
    wa_gauge_set(g, -INFINITY);
    assert_non_null(strstr(render(m, &b), "wa_inflight -Inf\n"));
    wa_buf_cleanup(&b);
    wa_gauge_set(g, NAN);
    assert_non_null(strstr(render(m, &b), "wa_inflight NaN\n"));
    wa_buf_cleanup(&b);
    wa_gauge_set(g, 1e300);
    assert_non_null(strstr(render(m, &b), "wa_inflight 1e+300\n"));
    wa_buf_cleanup(&b);
    wa_metrics_free(m);
}

static void
histogram__render__cumulative_buckets_sum_count(void **state)
{
    static const double bounds[] = {0.1, 0.5, 1};
    struct wa_metrics *m = NULL;
    struct wa_histogram *h;
    struct wa_buf b;

    (void)state;
    assert_int_equal(wa_metrics_new(&m), WA_OK);
    h = wa_metrics_histogram(m, "wa_latency_seconds", "Latency.", "stage=\"send\"", bounds, 3);
    assert_non_null(h);
    wa_histogram_observe(h, 0.05);
    wa_histogram_observe(h, 0.1); /* upper bounds are inclusive */
    wa_histogram_observe(h, 0.7);
    wa_histogram_observe(h, 3);
    assert_int_equal(wa_histogram_count(h), 4);
    assert_string_equal(render(m, &b), "# HELP wa_latency_seconds Latency.\n"
                                       "# TYPE wa_latency_seconds histogram\n"
                                       "wa_latency_seconds_bucket{stage=\"send\",le=\"0.1\"} 2\n"
                                       "wa_latency_seconds_bucket{stage=\"send\",le=\"0.5\"} 2\n"
                                       "wa_latency_seconds_bucket{stage=\"send\",le=\"1\"} 3\n"
                                       "wa_latency_seconds_bucket{stage=\"send\",le=\"+Inf\"} 4\n"
                                       "wa_latency_seconds_sum{stage=\"send\"} 3.85\n"
                                       "wa_latency_seconds_count{stage=\"send\"} 4\n");
    wa_buf_cleanup(&b);
    wa_metrics_free(m);
}

static void
histogram__no_labels_default_bounds(void **state)
{
    struct wa_metrics *m = NULL;
    struct wa_histogram *h;
    struct wa_buf b;
    const char *text;

    (void)state;
    assert_int_equal(wa_metrics_new(&m), WA_OK);
    h = wa_metrics_histogram(m, "wa_op_seconds", "Op.", NULL, NULL, 0);
    assert_non_null(h);
    wa_histogram_observe(h, 0.003);
    text = render(m, &b);
    assert_non_null(strstr(text, "wa_op_seconds_bucket{le=\"0.0005\"} 0\n"));
    assert_non_null(strstr(text, "wa_op_seconds_bucket{le=\"0.002\"} 0\n"));
    assert_non_null(strstr(text, "wa_op_seconds_bucket{le=\"0.003\"} 1\n"));
    assert_non_null(strstr(text, "wa_op_seconds_bucket{le=\"10\"} 1\n"));
    assert_non_null(strstr(text, "wa_op_seconds_bucket{le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(text, "wa_op_seconds_sum 0.003\nwa_op_seconds_count 1\n"));
    wa_buf_cleanup(&b);
    wa_metrics_free(m);
}

static void
histogram__bad_or_mismatched_bounds__null(void **state)
{
    static const double a[] = {1, 2}, b[] = {1, 3}, unsorted[] = {2, 1}, dup[] = {1, 1};
    static const double inf[] = {1, INFINITY};
    struct wa_metrics *m = NULL;

    (void)state;
    assert_int_equal(wa_metrics_new(&m), WA_OK);
    assert_non_null(wa_metrics_histogram(m, "h", "h", "x=\"1\"", a, 2));
    assert_null(wa_metrics_histogram(m, "h", "h", "x=\"2\"", b, 2));
    assert_null(wa_metrics_histogram(m, "h", "h", "x=\"1\"", a, 1));
    assert_non_null(wa_metrics_histogram(m, "h", "h", "x=\"2\"", a, 2));
    assert_null(wa_metrics_histogram(m, "h2", "h", NULL, unsorted, 2));
    assert_null(wa_metrics_histogram(m, "h2", "h", NULL, dup, 2));
    assert_null(wa_metrics_histogram(m, "h2", "h", NULL, inf, 2));
    assert_null(wa_metrics_histogram(m, "h2", "h", NULL, a, 0));
    wa_metrics_free(m);
}

static void
lookup__type_conflict_or_bad_name__null(void **state)
{
    struct wa_metrics *m = NULL;
    struct wa_buf b;

    (void)state;
    assert_int_equal(wa_metrics_new(&m), WA_OK);
    assert_non_null(wa_metrics_counter(m, "x_total", "x", NULL));
    assert_null(wa_metrics_gauge(m, "x_total", "x", NULL));
    assert_null(wa_metrics_gauge(m, "x_total", "x", "other=\"1\""));
    assert_null(wa_metrics_histogram(m, "x_total", "x", NULL, NULL, 0));
    assert_null(wa_metrics_counter(m, "", "x", NULL));
    assert_null(wa_metrics_counter(m, "9starts_with_digit", "x", NULL));
    assert_null(wa_metrics_counter(m, "has space", "x", NULL));
    assert_null(wa_metrics_counter(m, "has-dash", "x", NULL));
    assert_null(wa_metrics_counter(m, NULL, "x", NULL));
    assert_null(wa_metrics_counter(m, "nl_total", "x", "a=\"1\"\nevil 1"));
    assert_non_null(wa_metrics_counter(m, "ns:sub_name_total", "x", NULL));
    assert_string_equal(render(m, &b), "# HELP x_total x\n# TYPE x_total counter\nx_total 0\n"
                                       "# HELP ns:sub_name_total x\n"
                                       "# TYPE ns:sub_name_total counter\nns:sub_name_total 0\n");
    wa_buf_cleanup(&b);
    wa_metrics_free(m);
}

static void
updates__null_series__no_op(void **state)
{
    (void)state;
    wa_counter_inc(NULL);
    wa_counter_add(NULL, 5);
    wa_gauge_set(NULL, 1);
    wa_gauge_add(NULL, 1);
    wa_histogram_observe(NULL, 1);
    assert_int_equal(wa_counter_value(NULL), 0);
    assert_true(wa_gauge_value(NULL) == 0.0);
    assert_int_equal(wa_histogram_count(NULL), 0);
    wa_metrics_free(NULL);
}

static void
help__backslash_and_newline__escaped(void **state)
{
    struct wa_metrics *m = NULL;
    struct wa_buf b;

    (void)state;
    assert_int_equal(wa_metrics_new(&m), WA_OK);
    wa_metrics_gauge(m, "g", "line one\nC:\\path", NULL);
    assert_string_equal(render(m, &b), "# HELP g line one\\nC:\\\\path\n# TYPE g gauge\ng 0\n");
    wa_buf_cleanup(&b);
    wa_metrics_free(m);
}

static void
render__buffer_too_small__etoobig_and_unchanged(void **state)
{
    struct wa_metrics *m = NULL;
    struct wa_buf b;

    (void)state;
    assert_int_equal(wa_metrics_new(&m), WA_OK);
    wa_metrics_counter(m, "a_rather_long_metric_name_total", "Some help text.", NULL);
    /* room for the prefix and the HELP line but not the TYPE line: a partial render */
    wa_buf_init(&b, 80);
    assert_int_equal(wa_buf_append_str(&b, "prefix"), WA_OK);
    assert_int_equal(wa_metrics_render(m, &b), WA_ETOOBIG);
    assert_string_equal(b.data, "prefix");
    assert_int_equal(b.len, 6);
    wa_buf_cleanup(&b);
    wa_metrics_free(m);
}

static void
many_series__all_found_again(void **state)
{
    struct wa_metrics *m = NULL;
    struct wa_counter *first[1000];
    char labels[32];
    int i;

    (void)state;
    assert_int_equal(wa_metrics_new(&m), WA_OK);
    for (i = 0; i < 1000; i++) { /* enough to make the hash table grow several times */
        snprintf(labels, sizeof(labels), "i=\"%d\"", i);
        first[i] = wa_metrics_counter(m, "many_total", "many", labels);
        assert_non_null(first[i]);
        wa_counter_add(first[i], (uint64_t)i);
    }
    for (i = 0; i < 1000; i++) {
        snprintf(labels, sizeof(labels), "i=\"%d\"", i);
        assert_ptr_equal(wa_metrics_counter(m, "many_total", "many", labels), first[i]);
        assert_int_equal(wa_counter_value(first[i]), i);
    }
    wa_metrics_free(m);
}

#define THREADS    4
#define PER_THREAD 20000

struct hammer {
    struct wa_metrics *m;
};

static void *
hammer_run(void *arg)
{
    struct hammer *h = arg;
    struct wa_counter *c = wa_metrics_counter(h->m, "hits_total", "hits", NULL);
    struct wa_gauge *g = wa_metrics_gauge(h->m, "level", "level", NULL);
    struct wa_histogram *hist = wa_metrics_histogram(h->m, "obs", "obs", NULL, NULL, 0);
    int i;

    for (i = 0; i < PER_THREAD; i++) {
        wa_counter_inc(c);
        wa_gauge_add(g, 0.5);
        wa_histogram_observe(hist, 0.25);
    }
    return NULL;
}

static void
updates__concurrent_threads__no_lost_updates(void **state)
{
    struct wa_metrics *m = NULL;
    struct hammer h;
    pthread_t t[THREADS];
    struct wa_buf b;
    char want[128];
    int i;

    (void)state;
    assert_int_equal(wa_metrics_new(&m), WA_OK);
    h.m = m;
    for (i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &h), 0);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    assert_int_equal(wa_counter_value(wa_metrics_counter(m, "hits_total", "hits", NULL)),
                     THREADS * PER_THREAD);
    assert_true(wa_gauge_value(wa_metrics_gauge(m, "level", "level", NULL)) ==
                THREADS * PER_THREAD * 0.5);
    assert_int_equal(wa_histogram_count(wa_metrics_histogram(m, "obs", "obs", NULL, NULL, 0)),
                     THREADS * PER_THREAD);
    render(m, &b);
    snprintf(want, sizeof(want), "obs_sum %d\nobs_count %d\n", THREADS * PER_THREAD / 4,
             THREADS * PER_THREAD);
    assert_non_null(strstr(b.data, want));
    wa_buf_cleanup(&b);
    wa_metrics_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counter__same_key__same_series),
        cmocka_unit_test(counter__render__help_type_once_then_series),
        cmocka_unit_test(render__families_in_registration_order),
        cmocka_unit_test(gauge__set_add_and_special_values),
        cmocka_unit_test(histogram__render__cumulative_buckets_sum_count),
        cmocka_unit_test(histogram__no_labels_default_bounds),
        cmocka_unit_test(histogram__bad_or_mismatched_bounds__null),
        cmocka_unit_test(lookup__type_conflict_or_bad_name__null),
        cmocka_unit_test(updates__null_series__no_op),
        cmocka_unit_test(help__backslash_and_newline__escaped),
        cmocka_unit_test(render__buffer_too_small__etoobig_and_unchanged),
        cmocka_unit_test(many_series__all_found_again),
        cmocka_unit_test(updates__concurrent_threads__no_lost_updates),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
