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

struct raw_arg {
    const struct wa_contract_raw_meta *meta;
    const char *body;
    size_t len;
};

static enum wa_err
encode_raw(struct wa_buf *b, const void *arg)
{
    const struct raw_arg *ra = arg;

    return wa_contract_raw_data_write(b, ra->meta, ra->body, ra->len);
}

static enum wa_err
encode_part(struct wa_buf *b, const void *arg)
{
    return wa_json_write(b, arg);
}

/* Bodies that are not UTF-8 text or need several parts: the contract's encoder. */
static enum wa_err
add_parts(struct ig_request *r, const struct wa_contract_raw_meta *meta, const char *key,
          const char *pnid)
{
    json_t *parts[WA_CONTRACT_RAW_PARTS_MAX];
    size_t n = 0, i;
    enum wa_err err;

    if ((err = wa_contract_raw_data(meta, r->body, r->len, parts, WA_CONTRACT_RAW_PARTS_MAX, &n)) !=
        WA_OK) {
        return err;
    }
    r->caprecords = n + r->batch.count;
    if ((r->records = calloc(r->caprecords, sizeof(*r->records))) == NULL) {
        err = WA_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        if (err == WA_OK) {
            err = ig_record_add(r, IG_EVENTS_RAW, WA_CE_TYPE_WEBHOOK_RAW, key, pnid, -1,
                                encode_part, parts[i]);
        }
        json_decref(parts[i]);
    }
    return err;
}

void
ig_archive_start(struct ig_request *r)
{
    char received_at[WA_RFC3339_LEN];
    char raw_id[WA_ULID_LEN];
    const char *headers[8];
    struct wa_contract_raw_meta meta = {0};
    struct raw_arg ra;
    const char *pnid, *key;
    enum wa_err err;

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
    key = raw_key(&r->batch, &pnid);
    /* Common case: one part of UTF-8 text, encoded straight into the arena. */
    r->caprecords = 1 + r->batch.count;
    if ((r->records = calloc(r->caprecords, sizeof(*r->records))) == NULL) {
        fail(r, "out of memory");
        return;
    }
    ra = (struct raw_arg){&meta, r->body, r->len};
    err = ig_record_add(r, IG_EVENTS_RAW, WA_CE_TYPE_WEBHOOK_RAW, key, pnid, -1, encode_raw, &ra);
    if (err == WA_ENOTFOUND) {
        free(r->records);
        r->records = NULL;
        err = add_parts(r, &meta, key, pnid);
    }
    if (err != WA_OK) {
        fail(r, err == WA_ENOMEM ? "out of memory" : "encoding webhook.raw");
        return;
    }
    ig_dedupe_start(r);
}
