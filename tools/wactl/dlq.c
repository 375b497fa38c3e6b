/*
 * dlq.c: `wactl dlq list|show|replay`: dead letters of outbound.dlq (wa-notify) and, for list
 * and show, router.crm.dlq (wa-router).
 *
 * replay: each selected dead letter's "request" (the original outbound.request data, kept by
 * wa-notify) is produced to outbound.request again under a new request id, because wa-notify
 * answers a request id it has already finished from its record instead of sending again.
 * Dead letters of unreadable events ("raw") cannot be replayed and are reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wa/contract.h"
#include "wa/contract_outbound.h"
#include "wa/id.h"
#include "wa/json.h"
#include "wactl.h"

struct picked {
    char *key;
    json_t *request; /* owned copy, NULL for raw dead letters */
    char *request_id;
    int32_t partition;
    int64_t offset;
};

struct dlq {
    struct wx *x;
    const char *select_part; /* show: "P:O" */
    struct picked *items;
    size_t n, cap;
    bool oom;
};

static bool
wanted(const struct dlq *d, const struct wx_record *r)
{
    const struct wx *x = d->x;
    const char *id = r->ev != NULL ? wa_json_str(r->ev->data, "request_id") : NULL;
    char po[64];

    if (d->select_part != NULL) {
        snprintf(po, sizeof(po), "%d:%lld", (int)r->partition, (long long)r->offset);
        return strcmp(po, d->select_part) == 0;
    }
    if (x->request_id != NULL) {
        return id != NULL && strcmp(id, x->request_id) == 0;
    }
    if (x->nargs > 1) { /* replay ID... / show ID */
        for (int i = 1; i < x->nargs; i++) {
            if (id != NULL && strcmp(id, x->args[i]) == 0) {
                return true;
            }
        }
        return false;
    }
    return true;
}

static void
print_line(const struct wx_record *r)
{
    const json_t *data = r->ev != NULL ? r->ev->data : NULL;
    json_t *code = wa_json_path(data, "error.code");
    const char *id = wa_json_str(data, "request_id"), *to = wa_json_str(data, "to");
    const char *reason = wa_json_str(data, "reason");

    printf("%d:%lld %s request_id=%s to=%s reason=%s code=", (int)r->partition,
           (long long)r->offset, r->ev != NULL ? r->ev->time : "-", id != NULL ? id : "-",
           to != NULL ? to : "-", reason != NULL ? reason : "-");
    if (json_is_integer(code)) {
        printf("%lld", (long long)json_integer_value(code));
    } else {
        printf("-");
    }
    if (json_object_get(data, "raw") != NULL || json_object_get(data, "raw_base64") != NULL) {
        printf(" (unreadable event: not replayable)");
    }
    printf("\n");
}

static bool
on_list(const struct wx_record *r, void *arg)
{
    struct dlq *d = arg;

    if (wanted(d, r)) {
        if (d->x->json) {
            wx_print_record(d->x, r, stdout);
        } else {
            print_line(r);
        }
        d->n++;
    }
    return true;
}

static bool
on_show(const struct wx_record *r, void *arg)
{
    struct dlq *d = arg;
    char *s;

    if (!wanted(d, r)) {
        return true;
    }
    if (r->ev != NULL && (s = json_dumps(r->ev->data, JSON_INDENT(2) | JSON_SORT_KEYS)) != NULL) {
        printf("# %s[%d]@%lld %s id=%s subject=%s trace=%s\n%s\n", r->topic, (int)r->partition,
               (long long)r->offset, r->ev->type, r->ev->id,
               r->ev->subject != NULL ? r->ev->subject : "-", r->trace_id, s);
        free(s);
    } else {
        wx_print_record(d->x, r, stdout);
    }
    d->n++;
    return true;
}

static bool
on_pick(const struct wx_record *r, void *arg)
{
    struct dlq *d = arg;
    struct picked *p;
    json_t *request;

    if (!wanted(d, r) || r->ev == NULL) {
        return true;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct picked *items = realloc(d->items, cap * sizeof(*items));

        if (items == NULL) {
            d->oom = true;
            return false;
        }
        d->items = items;
        d->cap = cap;
    }
    p = &d->items[d->n++];
    request = json_object_get(r->ev->data, "request");
    *p = (struct picked){.partition = r->partition, .offset = r->offset};
    p->key = strndup(r->key != NULL ? r->key : "", r->keylen);
    p->request_id = strdup(wa_json_str(r->ev->data, "request_id") != NULL
                               ? wa_json_str(r->ev->data, "request_id")
                               : "-");
    p->request = json_is_object(request) ? json_deep_copy(request) : NULL;
    if (p->key == NULL || p->request_id == NULL) {
        d->oom = true;
        return false;
    }
    return true;
}

/* Asks on the terminal. Without a terminal the answer is no (use --yes in scripts). */
static bool
confirm(size_t n, const char *topic)
{
    char answer[16];

    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "wactl dlq replay: stdin is not a terminal: pass --yes to replay\n");
        return false;
    }
    fprintf(stderr, "Replay %zu dead letter(s) to %s? [y/N] ", n, topic);
    return fgets(answer, sizeof(answer), stdin) != NULL && (answer[0] == 'y' || answer[0] == 'Y');
}

/* The replayed request's id: "<old>.r<unix seconds>", or a new ULID when that is too long. */
static void
replay_id(const char *old, char *out, size_t size)
{
    char ulid[WA_ULID_LEN];
    int n = snprintf(out, size, "%s.r%lld", old, (long long)time(NULL));

    if (n < 0 || (size_t)n >= size || (size_t)n > WA_CONTRACT_REQUEST_ID_MAX) {
        wa_ulid_new(ulid);
        snprintf(out, size, "replay-%s", ulid);
    }
}

static int
replay(struct wx *x, struct dlq *d)
{
    char id[WA_CONTRACT_REQUEST_ID_MAX + 64];
    size_t ok = 0, skipped = 0;
    int rc = WX_OK;

    for (size_t i = 0; i < d->n && rc == WX_OK; i++) {
        struct picked *p = &d->items[i];
        struct wa_contract_outbound_request rq;
        struct wa_cloudevent ev;
        char tp[WA_TRACEPARENT_LEN];

        if (p->request == NULL) {
            printf("%d:%lld %s: skipped (unreadable event, nothing to replay)\n", (int)p->partition,
                   (long long)p->offset, p->request_id);
            skipped++;
            continue;
        }
        replay_id(p->request_id, id, sizeof(id));
        json_object_set_new(p->request, "request_id", json_string(id));
        if (wa_contract_outbound_request_decode(p->request, &rq, NULL) != WA_OK) {
            printf("%d:%lld %s: skipped (its request no longer decodes)\n", (int)p->partition,
                   (long long)p->offset, p->request_id);
            skipped++;
            continue;
        }
        printf("%d:%lld %s -> %s%s\n", (int)p->partition, (long long)p->offset, p->request_id, id,
               x->dry_run ? " (dry run: not sent)" : "");
        if (x->dry_run) {
            ok++;
            continue;
        }
        wa_cloudevent_init(&ev, "wactl", WA_CE_TYPE_OUTBOUND_REQUEST);
        wa_traceparent_new(tp);
        ev.traceparent = tp;
        ev.phonenumberid = rq.phone_number_id;
        ev.data = p->request;
        if ((rc = wx_produce(x, WA_TOPIC_OUTBOUND_REQUEST, p->key, &ev)) == WX_OK) {
            ok++;
        }
    }
    printf("%zu %s, %zu skipped\n", ok, x->dry_run ? "would be replayed" : "replayed", skipped);
    return rc != WX_OK ? rc : (ok > 0 ? WX_OK : WX_NO);
}

int
wx_cmd_dlq(struct wx *x)
{
    struct dlq d = {.x = x};
    const char *topic = x->topic != NULL ? x->topic : WA_TOPIC_OUTBOUND_DLQ;
    const char *sub = x->nargs > 0 ? x->args[0] : "";
    int rc;

    if (strcmp(sub, "list") == 0 && x->nargs == 1) {
        rc = wx_read(x, &topic, 1, true, x->idle_ms, x->timeout_ms, on_list, &d);
        if (rc == WX_OK && d.n == 0) {
            fprintf(stderr, "wactl dlq: no dead letter in %s%s\n", x->prefix, topic);
            rc = WX_NO;
        }
        return rc;
    }
    if (strcmp(sub, "show") == 0 && x->nargs == 2) {
        if (strchr(x->args[1], ':') != NULL) {
            d.select_part = x->args[1];
        }
        rc = wx_read(x, &topic, 1, true, x->idle_ms, x->timeout_ms, on_show, &d);
        return rc == WX_OK && d.n == 0 ? WX_NO : rc;
    }
    if (strcmp(sub, "replay") == 0 && (x->nargs > 1 || x->all || x->request_id != NULL)) {
        if (strcmp(topic, WA_TOPIC_OUTBOUND_DLQ) != 0) {
            fprintf(stderr, "wactl dlq replay: only %s can be replayed\n", WA_TOPIC_OUTBOUND_DLQ);
            return WX_USAGE;
        }
        if (x->all && x->nargs > 1) {
            fprintf(stderr, "wactl dlq replay: either request ids or --all\n");
            return WX_USAGE;
        }
        rc = wx_read(x, &topic, 1, true, x->idle_ms, x->timeout_ms, on_pick, &d);
        if (rc == WX_OK && d.oom) {
            rc = WX_UNAVAIL;
        } else if (rc == WX_OK && d.n == 0) {
            fprintf(stderr, "wactl dlq replay: no matching dead letter\n");
            rc = WX_NO;
        } else if (rc == WX_OK && !x->dry_run && !x->yes &&
                   !confirm(d.n, WA_TOPIC_OUTBOUND_REQUEST)) {
            rc = WX_NO;
        } else if (rc == WX_OK) {
            rc = replay(x, &d);
        }
        for (size_t i = 0; i < d.n; i++) {
            free(d.items[i].key);
            free(d.items[i].request_id);
            json_decref(d.items[i].request);
        }
        free(d.items);
        return rc;
    }
    fprintf(stderr, "usage: wactl dlq list|show ID|replay (ID...|--all) (wactl dlq --help)\n");
    return WX_USAGE;
}
