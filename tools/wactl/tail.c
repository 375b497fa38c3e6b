/*
 * tail.c: `wactl tail TOPIC` (live, filtered) and `wactl trace ID` (a message's path).
 *
 * trace reads the event topics twice from the beginning: pass 1 finds the events that name ID
 * (event id, trace id, data.wamid, data.request_id) and collects their trace ids; pass 2
 * gathers every event carrying one of those trace ids, which are printed sorted by time. Two
 * passes keep memory to the matching events only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/contract.h"
#include "wa/json.h"
#include "wactl.h"

static bool
on_tail(const struct wx_record *r, void *arg)
{
    struct wx *x = arg;
    static int64_t matched;

    if (!wx_match(x, r)) {
        return true;
    }
    wx_print_record(x, r, stdout);
    fflush(stdout);
    return x->count == 0 || ++matched < x->count;
}

int
wx_cmd_tail(struct wx *x)
{
    const char *topic;

    if (x->nargs != 1) {
        fprintf(stderr, "usage: wactl tail TOPIC [options] (wactl tail --help)\n");
        return WX_USAGE;
    }
    topic = x->args[0];
    return wx_read(x, &topic, 1, x->from_beginning, 0, x->timeout_ms, on_tail, x);
}

/* ---- trace ---- */

#define MAX_TRACES 64

static const char *const trace_topics[] = {
    WA_TOPIC_INBOUND_MESSAGE, WA_TOPIC_INBOUND_STATUS, WA_TOPIC_OUTBOUND_REQUEST,
    WA_TOPIC_OUTBOUND_RESULT, WA_TOPIC_OUTBOUND_DLQ,   WA_TOPIC_ACCOUNT_EVENT,
    WA_TOPIC_CONTACT_EVENT,   WA_TOPIC_HANDOFF,        WA_TOPIC_ROUTER_WINDOW,
    WA_TOPIC_ROUTER_CRM_DLQ,
};

struct line {
    int64_t ts;
    char *text;
};

struct tracer {
    struct wx *x;
    const char *id;
    char traces[MAX_TRACES][WA_TRACE_ID_LEN];
    size_t ntraces;
    struct line *lines;
    size_t nlines, cap;
    bool oom;
};

static bool
names_id(const struct wx_record *r, const char *id)
{
    const char *v;

    if (strcasecmp(r->trace_id, id) == 0) {
        return true;
    }
    if (r->ev == NULL) {
        return false;
    }
    return strcmp(r->ev->id, id) == 0 ||
           ((v = wa_json_str(r->ev->data, "wamid")) != NULL && strcmp(v, id) == 0) ||
           ((v = wa_json_str(r->ev->data, "request_id")) != NULL && strcmp(v, id) == 0);
}

static bool
has_trace(const struct tracer *t, const char *trace)
{
    for (size_t i = 0; i < t->ntraces; i++) {
        if (strcmp(t->traces[i], trace) == 0) {
            return true;
        }
    }
    return false;
}

static bool
on_find(const struct wx_record *r, void *arg)
{
    struct tracer *t = arg;

    if (r->trace_id[0] != '\0' && names_id(r, t->id) && !has_trace(t, r->trace_id) &&
        t->ntraces < MAX_TRACES) {
        snprintf(t->traces[t->ntraces++], WA_TRACE_ID_LEN, "%s", r->trace_id);
    }
    return true;
}

static bool
on_gather(const struct wx_record *r, void *arg)
{
    struct tracer *t = arg;
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    if (!(has_trace(t, r->trace_id) || names_id(r, t->id))) {
        return true;
    }
    if (t->nlines == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct line *l = realloc(t->lines, cap * sizeof(*l));

        if (l == NULL) {
            t->oom = true;
            return false;
        }
        t->lines = l;
        t->cap = cap;
    }
    if ((f = open_memstream(&text, &len)) == NULL) {
        t->oom = true;
        return false;
    }
    wx_print_record(t->x, r, f);
    fclose(f);
    t->lines[t->nlines++] = (struct line){.ts = r->timestamp_ms, .text = text};
    return true;
}

static int
by_time(const void *a, const void *b)
{
    const struct line *x = a, *y = b;

    return (x->ts > y->ts) - (x->ts < y->ts);
}

int
wx_cmd_trace(struct wx *x)
{
    struct tracer *t;
    int rc;

    if (x->nargs != 1 || x->args[0][0] == '\0') {
        fprintf(stderr, "usage: wactl trace ID [options] (wactl trace --help)\n");
        return WX_USAGE;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        return WX_UNAVAIL;
    }
    t->x = x;
    t->id = x->args[0];
    rc = wx_read(x, trace_topics, WA_ARRAY_LEN(trace_topics), true, x->idle_ms, x->timeout_ms,
                 on_find, t);
    if (rc == WX_OK) {
        rc = wx_read(x, trace_topics, WA_ARRAY_LEN(trace_topics), true, x->idle_ms, x->timeout_ms,
                     on_gather, t);
    }
    if (rc == WX_OK && t->oom) {
        fprintf(stderr, "wactl trace: out of memory\n");
        rc = WX_UNAVAIL;
    }
    if (rc == WX_OK) {
        qsort(t->lines, t->nlines, sizeof(*t->lines), by_time);
        for (size_t i = 0; i < t->nlines; i++) {
            fputs(t->lines[i].text, stdout);
        }
        if (t->nlines == 0) {
            fprintf(stderr, "wactl trace: no event names %s\n", t->id);
            rc = WX_NO;
        } else if (!x->json) {
            printf("%zu event(s) in %zu trace(s)\n", t->nlines, t->ntraces);
        }
    }
    for (size_t i = 0; i < t->nlines; i++) {
        free(t->lines[i].text);
    }
    free(t->lines);
    free(t);
    return rc;
}
