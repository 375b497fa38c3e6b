/*
 * api.c: stage 2, the REST API (README.md, "API"): GET /v1/messages/{id} (request_id or
 * wamid), GET /v1/analytics/summary, /series and /kpis. Errors are application/problem+json
 * (RFC 9457) with the status, a title and the detail naming the bad parameter.
 *
 * Threading: loop thread; a request waits for MongoDB suspended (no blocking).
 * Ownership: a query job belongs to its request until the reply; when the server gives up on
 * the request first (shutdown), the job forgets it and is freed by its scan's callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "wa/clock.h"
#include "wa/rest.h"
#include "wa/log.h"
#include "wa/mongo.h"

enum report { SUMMARY, SERIES, KPIS };

struct job {
    struct wa_list link;     /* in an->jobs */
    struct an *an;           /* NULL once the daemon stopped */
    struct wa_http_req *req; /* NULL once the server gave up on it */
    enum report kind;
    struct an_scan scan;
};

void
an_problem(struct wa_http_req *req, int status, const char *title, const char *detail)
{
    if (status >= 500) {
        wa_log_warn(NULL, "%s %s: %d %s", wa_http_req_method(req), wa_http_req_path(req), status,
                    detail != NULL ? detail : title);
    }
    wa_http_reply_problem(req, status, title, detail, NULL, 0);
}

static void
reply_json(struct wa_http_req *req, json_t *v)
{
    char *body = v != NULL ? wa_json_dump(v) : NULL;

    if (body == NULL) {
        an_problem(req, 500, "Internal Server Error", "out of memory");
        return;
    }
    wa_http_reply(req, 200, "application/json", body, strlen(body));
    free(body);
}

const struct an_tz *
an_zone(struct an *an, const char *name, struct wa_error *error)
{
    for (size_t i = 0; i < an->nzones; i++) {
        if (strcmp(an->zones[i].name, name) == 0) {
            return &an->zones[i];
        }
    }
    if (an->nzones == sizeof(an->zones) / sizeof(an->zones[0])) {
        an_tz_free(&an->zones[--an->nzones]); /* the cache is full: reuse the last slot */
    }
    if (an_tz_load(name, an->cfg->tz_dir, &an->zones[an->nzones], error) != WA_OK) {
        return NULL;
    }
    return &an->zones[an->nzones++];
}

static void
job_end(struct job *j)
{
    wa_list_remove(&j->link);
    if (j->an != NULL) {
        j->an->queries--;
    }
    free(j);
}

/* ---- GET /v1/messages/{id} ---- */

static void
on_message_found(void *arg, enum wa_err err, json_t *doc)
{
    struct job *j = arg;
    json_t *view;

    if (j->req != NULL) {
        wa_http_req_set_data(j->req, NULL);
        if (err == WA_ENOTFOUND) {
            an_problem(j->req, 404, "Not Found", "no message with this request_id or wamid");
        } else if (err != WA_OK) {
            an_problem(j->req, 503, "Service Unavailable", wa_err_name(err));
        } else {
            view = an_timeline_view(doc);
            reply_json(j->req, view);
            json_decref(view);
        }
    }
    job_end(j);
}

static void
on_abort(struct wa_http_req *req, void *data)
{
    struct job *j = data;

    (void)req;
    if (j != NULL) {
        j->req = NULL;
    }
}

static struct job *
job_new(struct an *an, struct wa_http_req *req)
{
    struct job *j = calloc(1, sizeof(*j));

    if (j == NULL) {
        an_problem(req, 500, "Internal Server Error", "out of memory");
        return NULL;
    }
    j->an = an;
    j->req = req;
    wa_list_push_back(&an->jobs, &j->link);
    an->queries++;
    wa_http_req_set_data(req, j);
    wa_http_req_set_abort(req, on_abort);
    return j;
}

static void
get_message(struct wa_http_req *req, void *arg)
{
    struct an *an = arg;
    const char *id = wa_http_req_param(req, "id");
    json_t *filter;
    struct job *j;
    enum wa_err err;

    if (strlen(id) > 255) {
        an_problem(req, 400, "Bad Request", "id: a request_id or wamid (1 to 255 bytes)");
        return;
    }
    if ((j = job_new(an, req)) == NULL) {
        return;
    }
    filter = json_pack("{s:[{s:s}, {s:s}]}", "$or", "_id", id, "wamid", id);
    err = filter != NULL
              ? wa_mongo_find_one(an->mongo, AN_COLL_MESSAGES, filter, NULL, on_message_found, j)
              : WA_ENOMEM;
    json_decref(filter);
    if (err != WA_OK) {
        wa_http_req_set_data(req, NULL);
        an_problem(req, 503, "Service Unavailable", wa_err_name(err));
        j->req = NULL;
        job_end(j);
    }
}

/* ---- GET /v1/analytics/... ---- */

static const char *
param(void *arg, const char *name)
{
    return wa_http_req_query(arg, name);
}

static void
on_scanned(struct an_scan *scan, enum wa_err err, void *arg)
{
    struct job *j = arg;
    struct an_totals t;
    struct an_kpi k[AN_NKPIS];
    json_t *v = NULL;

    (void)scan;
    if (j->req != NULL) {
        wa_http_req_set_data(j->req, NULL);
        if (err == WA_ETOOBIG) {
            an_problem(j->req, 422, "Unprocessable Content",
                       "the period holds more rows than WA_ANALYTICS_MAX_SCAN: narrow it");
        } else if (err != WA_OK) {
            an_problem(j->req, 503, "Service Unavailable", wa_err_name(err));
        } else {
            switch (j->kind) {
            case SUMMARY:
                v = an_scan_summary(&j->scan, NULL);
                break;
            case SERIES:
                v = an_scan_series(&j->scan);
                break;
            case KPIS:
                json_decref(an_scan_summary(&j->scan, &t));
                an_kpis(&t, k);
                an_totals_clear(&t);
                v = an_kpis_json(k);
                break;
            }
            reply_json(j->req, v);
            json_decref(v);
        }
    }
    an_scan_cleanup(&j->scan);
    job_end(j);
}

static void
report(struct wa_http_req *req, struct an *an, enum report kind)
{
    struct wa_error error = {0};
    const char *tzname = wa_http_req_query(req, "tz");
    const struct an_tz *tz;
    struct an_query q;
    struct job *j;

    if (an->draining) {
        an_problem(req, 503, "Service Unavailable", "shutting down");
        return;
    }
    if ((tz = an_zone(an, tzname != NULL ? tzname : "UTC", &error)) == NULL) {
        an_problem(req, 400, "Bad Request", "tz: an IANA time zone such as Europe/Berlin");
        return;
    }
    if (an_query_parse(param, req, (int64_t)wa_clock_wall_ms(), tz, &q, &error) != WA_OK) {
        an_problem(req, 400, "Bad Request", error.message);
        return;
    }
    if ((j = job_new(an, req)) == NULL) {
        return;
    }
    j->kind = kind;
    j->scan.q = q;
    j->scan.tz = tz;
    if (an_scan_start(an, &j->scan, on_scanned, j) != WA_OK) {
        wa_http_req_set_data(req, NULL);
        an_problem(req, 500, "Internal Server Error", "out of memory");
        j->req = NULL;
        job_end(j);
    }
}

static void
get_summary(struct wa_http_req *req, void *arg)
{
    report(req, arg, SUMMARY);
}

static void
get_series(struct wa_http_req *req, void *arg)
{
    report(req, arg, SERIES);
}

static void
get_kpis(struct wa_http_req *req, void *arg)
{
    report(req, arg, KPIS);
}

enum wa_err
an_api_start(struct an *an, struct wa_error *error)
{
    static const struct wa_http_route routes[] = {
        {"GET", "/v1/messages/{id}", get_message, 0},
        {"GET", "/v1/analytics/summary", get_summary, 0},
        {"GET", "/v1/analytics/series", get_series, 0},
        {"GET", "/v1/analytics/kpis", get_kpis, 0},
    };

    return wa_httpd_routes(wa_service_httpd(an->svc), routes, WA_ARRAY_LEN(routes), NULL, 0, an,
                           error);
}

void
an_api_stop(struct an *an)
{
    struct wa_list *it, *tmp;

    WA_LIST_FOREACH_SAFE(it, tmp, &an->jobs)
    {
        struct job *j = WA_LIST_ENTRY(it, struct job, link);

        wa_list_remove(&j->link);
        j->an = NULL;
        j->scan.an = NULL;
    }
}
