/*
 * split.c: stage 3 of 7. Input: a signed body. Output: the request's batch of events
 * (wa_webhook_split: one per message, status, account change or value-level error), then
 * ig_archive_start().
 *
 * A signed body that is not a webhook is not refused: Meta would redeliver it for 7 days. It
 * is archived raw (webhook.raw, "parsed": false), counted, and answered 200 like any other,
 * so it can be replayed once the parser is fixed (docs/architecture.md, "Guarantees").
 *
 * Memory: the document is parsed inside a JSON arena scope (wa/json.h) that lasts while the
 * chain runs synchronously: split, archive, the dedup keys and the events' records
 * (ig_publish_encode, called by dedupe.c before its Redis round trip), which drops the batch.
 * Leaving the scope forgets the whole document at once, instead of a free per value.
 */
#include "ingest.h"

static void split(struct ig_request *r);

void
ig_split_start(struct ig_request *r)
{
    struct ig *ig = r->ig;

    wa_json_arena_enter(&ig->json_arena);
    split(r);
    wa_json_arena_leave(&ig->json_arena);
}

static void
split(struct ig_request *r)
{
    struct ig *ig = r->ig;
    struct wa_error error = {0};
    enum wa_err err = wa_webhook_split(r->body, r->len, &r->batch, &error);

    if (err == WA_ENOMEM) {
        ig_request_reply(r, IG_OUT_UNAVAILABLE, 503,
                         "{\"error\":{\"code\":\"unavailable\",\"message\":\"out of memory\"}}");
        ig_request_release(r, false);
        return;
    }
    r->parsed = err == WA_OK;
    if (!r->parsed) {
        wa_log_warn(&r->log, "signed webhook body is not a webhook (%s): archived raw only",
                    error.message);
    }
    if (r->batch.malformed > 0) {
        wa_counter_add(ig->m.malformed_items, r->batch.malformed);
        wa_log_warn(&r->log, "webhook has %zu malformed items (kept in webhook.raw)",
                    r->batch.malformed);
    }
    ig_archive_start(r);
}
