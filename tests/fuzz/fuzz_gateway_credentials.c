/*
 * fuzz_gateway_credentials.c: libFuzzer driver for wa-gateway's credential parsers
 * (services/gateway/src/apikey.c, message.c): the Bearer token as an API key, scope lists
 * (command line), click-to-chat query parameters and an api_keys document / Redis cache entry,
 * all external input. The input is split at the first NUL: before it the token, scope list,
 * phone and text, after it a JSON document. Invariants beyond "no crash, no sanitizer report":
 * a parsed key has exactly 16 + 64 lowercase hex digits and rebuilds the input; scopes stay
 * within the known bits; a link is a wa.me URL with nothing left unencoded; a record read from
 * a document renders and reads back the same.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    const char *doc_text;
    struct gw_key_parts p;
    struct gw_key_record rec, back;
    unsigned scopes = 0;
    char bad[80], rebuilt[GW_KEY_LEN + 1];
    static char url[GW_LINK_URL_MAX];
    json_t *doc = NULL, *again;

    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    if (gw_apikey_parse(text, &p) == WA_OK) {
        snprintf(rebuilt, sizeof(rebuilt), GW_KEY_PREFIX "%s_%s", p.id, p.secret);
        if (strlen(p.id) != GW_KEY_ID_HEX || strlen(p.secret) != GW_KEY_SECRET_HEX ||
            strcmp(rebuilt, text) != 0) {
            abort();
        }
    }
    if (gw_scopes_parse(text, &scopes, bad, sizeof(bad)) == WA_OK && (scopes & ~GW_SCOPES_ALL)) {
        abort();
    }
    /* click-to-chat query parameters: the phone and the text are the same bytes here */
    if (gw_click_to_chat_url(text, text, url, sizeof(url)) == WA_OK &&
        (strncmp(url, "https://wa.me/", 14) != 0 || strpbrk(url + 14, " \"<>#") != NULL)) {
        abort();
    }
    doc_text = memchr(data, '\0', size) != NULL ? text + strlen(text) + 1 : NULL;
    if (doc_text != NULL &&
        wa_json_parse(doc_text, size - (size_t)(doc_text - text), 8, &doc, NULL) == WA_OK &&
        gw_key_record_from_json(doc, &rec) == WA_OK) {
        again = gw_key_record_to_json(&rec);
        if (again == NULL || gw_key_record_from_json(again, &back) != WA_OK ||
            strcmp(rec.id, back.id) != 0 || rec.scopes != back.scopes ||
            rec.rate_per_min != back.rate_per_min) {
            abort();
        }
        json_decref(again);
    }
    json_decref(doc);
    free(text);
    return 0;
}
