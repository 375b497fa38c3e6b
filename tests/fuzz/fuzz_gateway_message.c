/*
 * fuzz_gateway_message.c: libFuzzer driver for wa-gateway's POST /v1/messages body check
 * (services/gateway/src/message.c), external input from every API client: the bytes are parsed
 * as the gateway parses them (depth limit 16) and checked. Invariants beyond "no crash, no
 * sanitizer report": a body is either invalid with 1..GW_FIELD_ERRORS_MAX named errors and no
 * data, or valid with outbound.request data that the consumers' decoder accepts and a
 * non-empty contact; the fingerprint is 64 hex digits and stable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "wa/contract_outbound.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = NULL, *out = NULL;
    struct gw_body_check c;
    struct wa_contract_outbound_request rq;
    char contact[256], f1[65], f2[65];

    if (wa_json_parse((const char *)data, size, 16, &body, NULL) != WA_OK) {
        return 0;
    }
    gw_message_check(body, "req-1", "100000000000001", &c, &out, contact, sizeof(contact));
    if (c.n > GW_FIELD_ERRORS_MAX || (c.n > 0) != (out == NULL)) {
        abort();
    }
    if (out != NULL &&
        (wa_contract_outbound_request_decode(out, &rq, NULL) != WA_OK || contact[0] == '\0')) {
        abort();
    }
    gw_body_fingerprint(body, f1);
    gw_body_fingerprint(body, f2);
    if (strlen(f1) != 64 || strcmp(f1, f2) != 0) {
        abort();
    }
    json_decref(out);
    json_decref(body);
    return 0;
}
