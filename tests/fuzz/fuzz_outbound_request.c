/*
 * fuzz_outbound_request.c: libFuzzer driver for wa_contract_outbound_request_decode()
 * (libs/contract), which wa-notify runs on the data of every outbound.request event, for
 * wa_contract_time_parse() on the raw input, and for the outbound.dlq encoder given the raw
 * input as an unreadable event. Invariants checked beyond "no crash, no sanitizer report": an
 * accepted request has its required fields within their limits, digits in phone_number_id and
 * a body of the shape its type asks for; a dead letter is always built and always serialises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/contract_outbound.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_request(const json_t *data)
{
    struct wa_contract_outbound_request req;
    struct wa_error error = {0};

    if (wa_contract_outbound_request_decode(data, &req, &error) != WA_OK) {
        if (error.message[0] == '\0' ||
            (req.request_id != NULL && strlen(req.request_id) > WA_CONTRACT_REQUEST_ID_MAX)) {
            abort();
        }
        return;
    }
    if (req.request_id == NULL || req.request_id[0] == '\0' ||
        strlen(req.request_id) > WA_CONTRACT_REQUEST_ID_MAX || req.phone_number_id == NULL ||
        strspn(req.phone_number_id, "0123456789") != strlen(req.phone_number_id) ||
        (req.to == NULL && req.recipient == NULL) || req.type == NULL || req.body == NULL) {
        abort();
    }
    if (strcmp(req.type, "contacts") == 0 ? !json_is_array(req.body) : !json_is_object(req.body)) {
        abort();
    }
    if ((req.context != NULL && !json_is_object(req.context)) ||
        (req.fallback_template != NULL && !json_is_object(req.fallback_template))) {
        abort();
    }
}

static void
check_dlq(const uint8_t *data, size_t size)
{
    struct wa_contract_outbound_result r = {
        .request_id = "r-1", .to = "15551234567", .reason = "invalid", .title = "unreadable"};
    json_t *dlq = NULL;
    char *text;

    if (wa_contract_outbound_dlq_data(&r, NULL, NULL, data, size, &dlq) != WA_OK) {
        abort();
    }
    text = wa_json_dump(dlq);
    if (text == NULL) {
        abort();
    }
    free(text);
    json_decref(dlq);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *root = NULL;
    char *s;
    int64_t ms;

    if ((s = malloc(size + 1)) != NULL) {
        memcpy(s, data, size);
        s[size] = '\0';
        (void)wa_contract_time_parse(s, &ms);
        free(s);
    }
    check_dlq(data, size);
    if (wa_json_parse((const char *)data, size, 0, &root, NULL) != WA_OK) {
        return 0;
    }
    check_request(root);
    json_decref(root);
    return 0;
}
