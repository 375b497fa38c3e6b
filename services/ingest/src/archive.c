/*
 * archive.c: stage 4 of 7. Input: a signed body and its batch. Output: the webhook.raw
 * records (first in r->records, so the archive is produced before the events it explains),
 * room for one record per event, then ig_dedupe_start().
 *
 * The raw body is kept verbatim with its receive time and the headers worth keeping (content
 * type, user agent, signature, trace context) for replay and audit; bodies above 256 KiB are
 * split into parts (wa/contract.h). The body is borrowed from the HTTP request and is not
 * used after this stage.
 */
#include <stdlib.h>
#include <string.h>

#include "wa/clock.h"

#include "ingest.h"

/* Key of webhook.raw: the first phone number id of the body, else the WABA id. */
static const char *
raw_key(const struct wa_webhook_batch *b, const char **pnid)
{
    *pnid = NULL;
    for (size_t i = 0; i < b->count; i++) {
        if (b->events[i].phone_number_id != NULL) {
            *pnid = b->events[i].phone_number_id;
            return *pnid;
        }
    }
    for (size_t i = 0; i < b->count; i++) {
        if (b->events[i].waba_id != NULL) {
            return b->events[i].waba_id;
        }
    }
    return "unknown";
}

static void
fail(struct ig_request *r, const char *what)
{
    wa_log_error(&r->log, "cannot archive the webhook: %s", what);
    ig_request_reply(r, IG_OUT_UNAVAILABLE, 503,
                     "{\"error\":{\"code\":\"unavailable\",\"message\":\"cannot archive\"}}");
    ig_request_release(r, false);
}

void
ig_archive_start(struct ig_request *r)
{
    char received_at[WA_RFC3339_LEN];
    char raw_id[WA_ULID_LEN];
    const char *headers[8];
    json_t *parts[WA_CONTRACT_RAW_PARTS_MAX];
    struct wa_contract_raw_meta meta = {0};
    const char *pnid, *key;
    size_t n = 0, i;
    enum wa_err err = WA_OK;

    wa_clock_rfc3339(r->received_ms, received_at);
    wa_ulid_new(raw_id);
    headers[0] = "content-type";
    headers[1] = wa_http_req_header(r->req, "Content-Type");
    headers[2] = "user-agent";
    headers[3] = wa_http_req_header(r->req, "User-Agent");
    headers[4] = "x-hub-signature-256";
    headers[5] = wa_http_req_header(r->req, "X-Hub-Signature-256");
    headers[6] = "traceparent";
    headers[7] = r->traceparent;
    meta.raw_id = raw_id;
    meta.request_id = r->request_id;
    meta.received_at = received_at;
    meta.parsed = r->parsed;
    meta.headers = headers;
    meta.nheaders = 4;
    if (wa_contract_raw_data(&meta, r->body, r->len, parts, WA_CONTRACT_RAW_PARTS_MAX, &n) !=
        WA_OK) {
        fail(r, "encoding webhook.raw");
        return;
    }
    r->caprecords = n + r->batch.count;
    r->records = calloc(r->caprecords, sizeof(*r->records));
    key = raw_key(&r->batch, &pnid);
    for (i = 0; i < n; i++) {
        if (err == WA_OK && r->records != NULL) {
            err = ig_record_add(r, IG_EVENTS_RAW, WA_CE_TYPE_WEBHOOK_RAW, key, pnid, parts[i], -1);
        }
        json_decref(parts[i]);
    }
    if (r->records == NULL || err != WA_OK) {
        fail(r, "out of memory");
        return;
    }
    ig_dedupe_start(r);
}
