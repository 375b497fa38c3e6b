/*
 * verify.c: stage 2 of 7. Input: a request with its raw body. Output: ig_split_start() when
 * X-Hub-Signature-256 is HMAC-SHA256(app secret, raw bytes); else 401 with a JSON error.
 *
 * The raw bytes are hashed as received, never a re-serialisation (cloud-api.md §3.2). During a
 * secret rotation both WA_APP_SECRET and WA_APP_SECRET_PREVIOUS are accepted. The check is
 * libs/crypto's wa_hub_verifier: keyed once at start, every secret tried per body, each
 * compared in constant time, so timing reveals neither the digest nor which secret matched.
 */
#include "wa/crypto.h"

#include "ingest.h"

enum wa_err
ig_verify_new(struct ig *ig, struct wa_error *error)
{
    return wa_hub_verifier_new(ig->secrets, WA_ARRAY_LEN(ig->secrets), &ig->verifier, error);
}

void
ig_verify_free(struct ig *ig)
{
    wa_hub_verifier_free(ig->verifier);
    ig->verifier = NULL;
}

void
ig_verify_start(struct ig_request *r)
{
    struct ig *ig = r->ig;
    const char *header = wa_http_req_header(r->req, "X-Hub-Signature-256");
    struct wa_error error = {0};

    if (wa_hub_verifier_check(ig->verifier, header, r->body, r->len, &error) != WA_OK) {
        wa_counter_inc(ig->m.signature_failures);
        wa_log_warn(&r->log, "webhook refused: %s", error.message);
        ig_request_reply(r, IG_OUT_UNAUTHORIZED, 401,
                         "{\"error\":{\"code\":\"unauthorized\",\"message\":\"missing or wrong "
                         "X-Hub-Signature-256\"}}");
        ig_request_release(r, false);
        return;
    }
    ig_split_start(r);
}
