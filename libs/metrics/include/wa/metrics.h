/*
 * wa/metrics.h: counters, gauges and histograms with labels; Prometheus text exposition.
 *
 * A registry owns every series. A series is identified by (name, labels) where labels is the
 * already-formatted Prometheus label list without braces, e.g. "outcome=\"ok\",code=\"400\""
 * (NULL or "" for none). Looking a series up returns a stable pointer owned by the registry:
 * hot paths look up once and keep it. Updates are atomic and may come from any thread; lookups
 * and rendering lock the registry. Label values taken from input must be bounded by the caller
 * (e.g. error codes from a known table) so the number of series stays bounded.
 */
#ifndef WA_METRICS_H
#define WA_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "wa/buf.h"
#include "wa/err.h"

struct wa_metrics;
struct wa_counter;
struct wa_gauge;
struct wa_histogram;

/* Returns a new empty registry in *out; free with wa_metrics_free(). */
enum wa_err wa_metrics_new(struct wa_metrics **out);
void wa_metrics_free(struct wa_metrics *m);

/* Returns the series, creating it on first use (NULL only when out of memory or when name is
 * already registered with another type). Borrowed: valid until wa_metrics_free(). */
struct wa_counter *wa_metrics_counter(struct wa_metrics *m, const char *name, const char *help,
                                      const char *labels);
struct wa_gauge *wa_metrics_gauge(struct wa_metrics *m, const char *name, const char *help,
                                  const char *labels);
/* bounds: ascending upper bounds (copied), nbounds of them; NULL selects latency buckets in
 * seconds from 0.0005 to 10. All series of one name must use the same bounds. */
struct wa_histogram *wa_metrics_histogram(struct wa_metrics *m, const char *name, const char *help,
                                          const char *labels, const double *bounds, size_t nbounds);

/* All update functions accept NULL (a series that could not be created is a no-op). */
void wa_counter_add(struct wa_counter *c, uint64_t n);
void wa_counter_inc(struct wa_counter *c);
uint64_t wa_counter_value(const struct wa_counter *c);
void wa_gauge_set(struct wa_gauge *g, double v);
void wa_gauge_add(struct wa_gauge *g, double delta);
double wa_gauge_value(const struct wa_gauge *g);
void wa_histogram_observe(struct wa_histogram *h, double v);
uint64_t wa_histogram_count(const struct wa_histogram *h);

/* Appends the Prometheus text format (version 0.0.4) of every series to out. */
enum wa_err wa_metrics_render(struct wa_metrics *m, struct wa_buf *out);

#endif
