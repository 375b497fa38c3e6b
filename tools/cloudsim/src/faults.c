/*
 * faults.c: injected failures for tests of the sender (POST /_sim/faults).
 *
 * One fault configuration at a time: a mode (error: a Graph error with a chosen code; 5xx: an
 * HTTP 5xx without a Graph body; drop: the connection is closed without an answer; late: the
 * send is accepted and fails later, as a `failed` status webhook with the chosen code, after
 * `sent` or after `sent` and `delivered` ("after"), or with "level": "value" as a value-level
 * error (value.errors[], no failed status: Meta's system-level errors)), applied to
 * the next `count` matching requests or to a `ratio` of them, and/or an added latency for the
 * next `latency_count` requests (-1: all). A request delayed by latency is processed when the
 * delay ends, even if the client gave up meanwhile: that is Meta's "timed out but sent" case.
 *
 * Threading: loop thread only. Ownership: a deferred request's state is owned by its timer
 * callback, or freed by the abort hook if the server gives the request up first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudsim.h"
#include "wa/id.h"
#include "wa/whatsapp_errors.h"

enum mode { MODE_NONE, MODE_ERROR, MODE_5XX, MODE_DROP, MODE_LATE };

struct cs_faults {
    struct cs_sim *sim;
    enum mode mode;
    int64_t code;
    int64_t subcode;
    int64_t http_status;
    char details[256];
    int64_t remaining; /* -1: unlimited */
    double ratio;      /* 0: every matching request */
    int64_t latency_ms;
    int64_t latency_remaining;
    enum cs_fault_scope scope;
    enum cs_status late_after; /* MODE_LATE: the last status before the failure */
    bool late_value;           /* MODE_LATE: a value-level error instead of a failed status */
    uint64_t rng;
    uint64_t injected;
};

struct deferred {
    struct cs_faults *f;
    struct wa_http_req *req;
    struct wa_timer *timer;
    bool fail;
};

enum wa_err
cs_faults_new(struct cs_sim *sim, struct cs_faults **out)
{
    struct cs_faults *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return WA_ENOMEM;
    }
    f->sim = sim;
    (void)wa_random_bytes(&f->rng, sizeof(f->rng));
    f->rng |= 1;
    cs_faults_reset(f);
    *out = f;
    return WA_OK;
}

void
cs_faults_free(struct cs_faults *f)
{
    free(f);
}

void
cs_faults_reset(struct cs_faults *f)
{
    struct cs_sim *sim = f->sim;
    uint64_t rng = f->rng;

    memset(f, 0, sizeof(*f));
    f->sim = sim;
    f->rng = rng;
    f->scope = CS_FAULT_ALL;
}

static double
uniform(struct cs_faults *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return (double)(f->rng >> 11) / 9007199254740992.0;
}

enum wa_err
cs_faults_set(struct cs_faults *f, const json_t *body, struct wa_error *error)
{
    const char *mode = NULL, *scope = NULL, *details = NULL;
    json_t *ratio;
    enum wa_err err;
    int64_t v;

    cs_faults_reset(f);
    if ((err = wa_json_get_str(body, "mode", 16, &mode, error)) != WA_OK && err != WA_ENOTFOUND) {
        return err;
    }
    if ((err = wa_json_get_int64(body, "code", 0, 9999999, &f->code, error)) != WA_OK &&
        err != WA_ENOTFOUND) {
        return err;
    }
    if (mode == NULL) {
        mode = json_object_get(body, "code") != NULL ? "error" : "none";
    }
    if (strcmp(mode, "error") == 0) {
        f->mode = MODE_ERROR;
        if (f->code == 0 && json_object_get(body, "code") == NULL) {
            return wa_error_set(error, WA_EINVAL, "mode error needs a code");
        }
    } else if (strcmp(mode, "5xx") == 0) {
        f->mode = MODE_5XX;
        f->http_status = 503;
    } else if (strcmp(mode, "drop") == 0) {
        f->mode = MODE_DROP;
    } else if (strcmp(mode, "late") == 0) {
        const char *after = "sent", *level = "status";

        f->mode = MODE_LATE;
        if (f->code == 0) {
            return wa_error_set(error, WA_EINVAL, "mode late needs a code");
        }
        if ((err = wa_json_get_str(body, "after", 16, &after, error)) != WA_OK &&
            err != WA_ENOTFOUND) {
            return err;
        }
        if ((err = wa_json_get_str(body, "level", 16, &level, error)) != WA_OK &&
            err != WA_ENOTFOUND) {
            return err;
        }
        if (strcmp(level, "status") != 0 && strcmp(level, "value") != 0) {
            return wa_error_set(error, WA_EINVAL, "level must be status or value");
        }
        f->late_value = strcmp(level, "value") == 0;
        if (strcmp(after, "accepted") == 0) {
            f->late_after = CS_ST_ACCEPTED;
        } else if (strcmp(after, "sent") == 0) {
            f->late_after = CS_ST_SENT;
        } else if (strcmp(after, "delivered") == 0) {
            f->late_after = CS_ST_DELIVERED;
        } else {
            return wa_error_set(error, WA_EINVAL, "after must be accepted, sent or delivered");
        }
    } else if (strcmp(mode, "none") != 0) {
        return wa_error_set(error, WA_EINVAL, "mode must be error, 5xx, drop, late or none");
    }
    if ((err = wa_json_get_int64(body, "subcode", 0, INT32_MAX, &f->subcode, error)) != WA_OK &&
        err != WA_ENOTFOUND) {
        return err;
    }
    if ((err = wa_json_get_int64(body, "http_status", 100, 599, &v, error)) == WA_OK) {
        f->http_status = v;
    } else if (err != WA_ENOTFOUND) {
        return err;
    }
    if ((err = wa_json_get_str(body, "details", sizeof(f->details) - 1, &details, error)) ==
        WA_OK) {
        snprintf(f->details, sizeof(f->details), "%s", details);
    } else if (err != WA_ENOTFOUND) {
        return err;
    }
    f->remaining = -1;
    if ((err = wa_json_get_int64(body, "count", 0, INT32_MAX, &v, error)) == WA_OK) {
        f->remaining = v;
    } else if (err != WA_ENOTFOUND) {
        return err;
    }
    ratio = json_object_get(body, "ratio");
    if (ratio != NULL) {
        if (!json_is_number(ratio) || json_number_value(ratio) < 0 ||
            json_number_value(ratio) > 1) {
            return wa_error_set(error, WA_EINVAL, "ratio must be a number in [0, 1]");
        }
        f->ratio = json_number_value(ratio);
    }
    if ((err = wa_json_get_int64(body, "latency_ms", 0, 600000, &f->latency_ms, error)) != WA_OK &&
        err != WA_ENOTFOUND) {
        return err;
    }
    f->latency_remaining = -1;
    if ((err = wa_json_get_int64(body, "latency_count", 0, INT32_MAX, &v, error)) == WA_OK) {
        f->latency_remaining = v;
    } else if (err != WA_ENOTFOUND) {
        return err;
    }
    if ((err = wa_json_get_str(body, "scope", 16, &scope, error)) == WA_OK) {
        if (strcmp(scope, "messages") == 0) {
            f->scope = CS_FAULT_MESSAGES;
        } else if (strcmp(scope, "media") == 0) {
            f->scope = CS_FAULT_MEDIA;
        } else if (strcmp(scope, "all") != 0) {
            return wa_error_set(error, WA_EINVAL, "scope must be messages, media or all");
        }
    } else if (err != WA_ENOTFOUND) {
        return err;
    }
    return WA_OK;
}

enum wa_err
cs_faults_json(const struct cs_faults *f, struct wa_buf *out)
{
    static const char *const modes[] = {"none", "error", "5xx", "drop", "late"};
    static const char *const scopes[] = {"messages", "media", "all"};

    return wa_buf_printf(out,
                         "{\"mode\":\"%s\",\"code\":%lld,\"http_status\":%lld,\"remaining\":%lld,"
                         "\"ratio\":%g,\"latency_ms\":%lld,\"latency_remaining\":%lld,"
                         "\"scope\":\"%s\",\"injected\":%llu}",
                         modes[f->mode], (long long)f->code, (long long)f->http_status,
                         (long long)f->remaining, f->ratio, (long long)f->latency_ms,
                         (long long)f->latency_remaining, scopes[f->scope],
                         (unsigned long long)f->injected);
}

static void
inject(struct cs_faults *f, struct wa_http_req *req)
{
    f->injected++;
    switch (f->mode) {
    case MODE_ERROR:
        if (f->http_status != 0) {
            struct wa_buf b;

            wa_buf_init(&b, 0);
            cs_sim_count_rejected(f->sim, f->code);
            if (wa_whatsapp_error_graph_json(&b, f->code, f->subcode,
                                             f->details[0] != '\0' ? f->details : NULL,
                                             "AsimFault") == WA_OK) {
                wa_http_reply(req, (int)f->http_status, "application/json; charset=UTF-8", b.data,
                              b.len);
            } else {
                wa_http_reply_error(req, 500, "internal", "out of memory");
            }
            wa_buf_cleanup(&b);
        } else {
            cs_reply_graph_error(f->sim, req, f->code, f->subcode,
                                 f->details[0] != '\0' ? f->details : NULL);
        }
        return;
    case MODE_5XX:
        wa_http_reply(req, (int)(f->http_status != 0 ? f->http_status : 503), "text/html",
                      "<html><body>Service Unavailable</body></html>", 45);
        return;
    case MODE_DROP:
        wa_http_reply_drop(req);
        return;
    case MODE_NONE:
    case MODE_LATE: /* never answers the request: see cs_faults_late */
        break;
    }
}

static bool
decide(struct cs_faults *f)
{
    if (f->mode == MODE_NONE || f->remaining == 0) {
        return false;
    }
    if (f->ratio > 0 && uniform(f) >= f->ratio) {
        return false;
    }
    if (f->remaining > 0) {
        f->remaining--;
    }
    return true;
}

static void
deferred_free(struct deferred *d)
{
    wa_timer_free(d->timer);
    free(d);
}

static void
on_abort(struct wa_http_req *req, void *data)
{
    (void)req;
    deferred_free(data);
}

static void
on_latency(struct wa_timer *t, void *arg)
{
    struct deferred *d = arg;
    struct wa_http_req *req = d->req;
    struct cs_faults *f = d->f;
    bool fail = d->fail;

    (void)t;
    wa_http_req_set_abort(req, NULL);
    wa_http_req_set_data(req, NULL);
    deferred_free(d);
    if (fail) {
        inject(f, req);
    } else {
        wa_http_next(req);
    }
}

/* Answers req with a fault, holds it for the latency, or hands it on at once. */
static void
gate(struct cs_faults *f, struct wa_http_req *req, enum cs_fault_scope scope)
{
    bool fail, delay;
    struct deferred *d;

    if (f == NULL || (f->scope != CS_FAULT_ALL && f->scope != scope)) {
        wa_http_next(req);
        return;
    }
    fail = f->mode != MODE_LATE && decide(f);
    delay = f->latency_ms > 0 && f->latency_remaining != 0;
    if (delay && f->latency_remaining > 0) {
        f->latency_remaining--;
    }
    d = delay ? calloc(1, sizeof(*d)) : NULL;
    if (d != NULL && (d->timer = wa_timer_new(f->sim->loop, on_latency, d)) == NULL) {
        free(d);
        d = NULL; /* out of memory: skip the latency */
    }
    if (d == NULL) {
        if (fail) {
            inject(f, req);
        } else {
            wa_http_next(req);
        }
        return;
    }
    d->f = f;
    d->req = req;
    d->fail = fail;
    wa_http_req_set_data(req, d);
    wa_http_req_set_abort(req, on_abort);
    wa_timer_start(d->timer, (uint64_t)f->latency_ms, 0);
}

void
cs_faults_mw_messages(struct wa_http_req *req, void *arg)
{
    gate(((struct cs_sim *)arg)->faults, req, CS_FAULT_MESSAGES);
}

void
cs_faults_mw_media(struct wa_http_req *req, void *arg)
{
    gate(((struct cs_sim *)arg)->faults, req, CS_FAULT_MEDIA);
}

int64_t
cs_faults_late(struct cs_faults *f, enum cs_status *after, bool *value_level)
{
    if (f == NULL || f->mode != MODE_LATE || f->scope == CS_FAULT_MEDIA || !decide(f)) {
        return 0;
    }
    f->injected++;
    *after = f->late_after;
    *value_level = f->late_value;
    return f->code;
}
