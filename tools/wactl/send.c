/*
 * send.c: `wactl send`: builds one outbound.request (libs/contract's shape, checked with its
 * decoder before anything is produced), produces it as a CloudEvent with a new traceparent,
 * and with --wait reads outbound.result until that request's result arrives.
 *
 * --wait subscribes before producing (from the end of outbound.result), so a fast result is
 * not missed; it waits for the group's assignment first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/contract.h"
#include "wa/contract_outbound.h"
#include "wa/id.h"
#include "wa/json.h"
#include "wactl.h"

/* Reads the request data from path ("-": stdin). Returns a new reference or NULL. */
static json_t *
load_data(const char *path)
{
    json_error_t jerr;
    json_t *v = strcmp(path, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr)
                                       : json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);

    if (v == NULL) {
        fprintf(stderr, "wactl send: %s:%d: %s\n", path, jerr.line, jerr.text);
    } else if (!json_is_object(v)) {
        fprintf(stderr, "wactl send: %s: the request data must be a JSON object\n", path);
        json_decref(v);
        v = NULL;
    }
    return v;
}

/* Builds the request data from the options. Returns a new reference or NULL (reason said). */
static json_t *
build_data(struct wx *x, char *request_id, size_t size)
{
    const char *env_phone = getenv("WA_SANDBOX_PHONE_NUMBER_ID");
    json_t *d;
    char ulid[WA_ULID_LEN];

    if (x->data_file != NULL) {
        if ((d = load_data(x->data_file)) == NULL) {
            return NULL;
        }
    } else {
        if (x->to == NULL || (x->text == NULL) == (x->template_name == NULL)) {
            fprintf(stderr, "wactl send: needs --to and one of --text, --template, --data\n");
            return NULL;
        }
        d = json_object();
        json_object_set_new(d, "to", json_string(x->to));
        if (x->text != NULL) {
            json_object_set_new(d, "type", json_string("text"));
            json_object_set_new(d, "text", json_pack("{s:s}", "body", x->text));
        } else {
            json_object_set_new(d, "type", json_string("template"));
            json_object_set_new(d, "template",
                                json_pack("{s:s, s:{s:s}}", "name", x->template_name, "language",
                                          "code", x->lang != NULL ? x->lang : "en_US"));
        }
    }
    if (x->phone_number_id != NULL || json_object_get(d, "phone_number_id") == NULL) {
        json_object_set_new(d, "phone_number_id",
                            json_string(x->phone_number_id != NULL ? x->phone_number_id
                                        : env_phone != NULL && env_phone[0] != '\0'
                                            ? env_phone
                                            : "100000000000001"));
    }
    if (x->category != NULL) {
        json_object_set_new(d, "category", json_string(x->category));
    }
    if (x->request_id != NULL || json_object_get(d, "request_id") == NULL) {
        wa_ulid_new(ulid);
        json_object_set_new(d, "request_id",
                            json_string(x->request_id != NULL ? x->request_id : ulid));
    }
    snprintf(request_id, size, "%s", wa_json_str(d, "request_id"));
    return d;
}

struct waiter {
    struct wx *x;
    const char *request_id;
    bool found, accepted;
};

static bool
on_result(const struct wx_record *r, void *arg)
{
    struct waiter *w = arg;
    struct wa_contract_outbound_result res;

    if (r->ev == NULL || wa_contract_outbound_result_decode(r->ev->data, &res, NULL) != WA_OK ||
        strcmp(res.request_id, w->request_id) != 0) {
        return true;
    }
    wx_print_record(w->x, r, stdout);
    w->found = true;
    w->accepted = res.accepted;
    return false;
}

int
wx_cmd_send(struct wx *x)
{
    static const char *const results[] = {WA_TOPIC_OUTBOUND_RESULT};
    struct wa_contract_outbound_request rq;
    struct wa_cloudevent ev;
    struct wa_error error = {0};
    char request_id[WA_CONTRACT_REQUEST_ID_MAX + 1], key[WA_CONTRACT_KEY_MAX];
    char tp[WA_TRACEPARENT_LEN], trace[WA_TRACE_ID_LEN];
    struct waiter w = {.x = x, .request_id = request_id};
    json_t *data;
    int rc;

    if (x->nargs > 0) {
        fprintf(stderr, "wactl send: unexpected argument '%s'\n", x->args[0]);
        return WX_USAGE;
    }
    if ((data = build_data(x, request_id, sizeof(request_id))) == NULL) {
        return WX_USAGE;
    }
    if (wa_contract_outbound_request_decode(data, &rq, &error) != WA_OK) {
        fprintf(stderr, "wactl send: not a valid outbound.request: %s\n", error.message);
        json_decref(data);
        return WX_USAGE;
    }
    if (wa_contract_conversation_key(rq.phone_number_id, rq.to != NULL ? rq.to : rq.recipient, key,
                                     sizeof(key)) != WA_OK) {
        json_decref(data);
        return WX_USAGE;
    }
    wa_cloudevent_init(&ev, "wactl", WA_CE_TYPE_OUTBOUND_REQUEST);
    wa_traceparent_new(tp);
    (void)wa_traceparent_trace_id(tp, trace);
    ev.traceparent = tp;
    ev.phonenumberid = rq.phone_number_id;
    ev.data = data;
    if ((rc = wx_produce(x, WA_TOPIC_OUTBOUND_REQUEST, key, &ev)) != WX_OK) {
        json_decref(data);
        return rc;
    }
    printf("request_id=%s trace_id=%s event_id=%s key=%s\n", request_id, trace, ev.id, key);
    fflush(stdout);
    json_decref(data);
    if (!x->wait) {
        return WX_OK;
    }
    /* from the earliest offset, skipping other requests' results: a result produced before
     * the group's assignment is not missed */
    rc = wx_read(x, results, 1, true, 0, x->timeout_ms > 0 ? x->timeout_ms : 30000, on_result, &w);
    if (rc != WX_OK && !w.found) {
        return rc;
    }
    if (!w.found) {
        fprintf(stderr, "wactl send: no result for %s within the timeout\n", request_id);
        return WX_UNAVAIL;
    }
    return w.accepted ? WX_OK : WX_NO;
}
