/*
 * fuzz_webhook_split.c: libFuzzer driver for the webhook splitter and the contract encoders
 * that wa-ingest runs on every signed body (external input). Invariants checked beyond "no
 * crash, no sanitizer report": an error leaves the batch empty; every event has a key and data
 * that serialise; webhook.raw parts reassemble to the input byte for byte; splitting inside a
 * JSON arena scope (as wa-ingest does) gives the same result, byte for byte, as with malloc.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/contract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_raw(const char *body, size_t len, bool parsed)
{
    struct wa_contract_raw_meta meta = {
        .raw_id = "r", .received_at = "2026-01-01T00:00:00Z", .parsed = parsed};
    json_t *parts[WA_CONTRACT_RAW_PARTS_MAX];
    struct wa_buf back;
    size_t n = 0;

    wa_buf_init(&back, 0);
    if (wa_contract_raw_data(&meta, body, len, parts, WA_CONTRACT_RAW_PARTS_MAX, &n) != WA_OK) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        struct wa_contract_raw raw;

        if (wa_contract_raw_decode(parts[i], &raw, NULL) != WA_OK ||
            wa_contract_raw_append_body(&raw, &back, NULL) != WA_OK) {
            abort();
        }
        json_decref(parts[i]);
    }
    if (back.len != len || (len > 0 && memcmp(back.data, body, len) != 0)) {
        abort();
    }
    wa_buf_cleanup(&back);
}

/* Splits body and appends every event's key and direct-written data to out; returns the
 * split's result. */
static enum wa_err
split_written(const char *body, size_t len, struct wa_buf *out)
{
    struct wa_webhook_batch b;
    enum wa_err err;

    wa_webhook_batch_init(&b);
    err = wa_webhook_split(body, len, &b, NULL);
    for (size_t i = 0; i < b.count; i++) {
        char key[WA_CONTRACT_KEY_MAX];

        if (wa_contract_event_key(&b.events[i], key, sizeof(key)) == WA_OK &&
            wa_buf_append_str(out, key) != WA_OK) {
            abort();
        }
        if (wa_contract_event_data_write(out, &b.events[i]) != WA_OK) {
            abort();
        }
    }
    wa_webhook_batch_cleanup(&b);
    return err;
}

static void
check_arena(const char *body, size_t len)
{
    static struct wa_json_arena arena;
    static bool init;
    struct wa_buf plain, scoped;
    enum wa_err e1, e2;

    if (!init) {
        wa_json_arena_init(&arena, 4096);
        init = true;
    }
    wa_buf_init(&plain, 0);
    wa_buf_init(&scoped, 0);
    e1 = split_written(body, len, &plain);
    wa_json_arena_enter(&arena);
    e2 = split_written(body, len, &scoped);
    wa_json_arena_leave(&arena);
    if (e1 != e2 || plain.len != scoped.len ||
        (plain.len > 0 && memcmp(plain.data, scoped.data, plain.len) != 0)) {
        abort();
    }
    wa_buf_cleanup(&plain);
    wa_buf_cleanup(&scoped);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct wa_webhook_batch b;
    enum wa_err err;

    wa_webhook_batch_init(&b);
    err = wa_webhook_split(body, size, &b, NULL);
    if (err != WA_OK && (b.root != NULL || b.count != 0)) {
        abort();
    }
    for (size_t i = 0; i < b.count; i++) {
        char key[WA_CONTRACT_KEY_MAX], dedup[WA_CONTRACT_KEY_MAX];
        json_t *d = NULL;
        char *text;

        (void)wa_contract_event_key(&b.events[i], key, sizeof(key));
        (void)wa_contract_event_dedup_id(&b.events[i], dedup, sizeof(dedup));
        if (wa_contract_event_data(&b.events[i], &d) != WA_OK) {
            abort();
        }
        text = json_dumps(d, JSON_COMPACT);
        if (text == NULL) {
            abort();
        }
        free(text);
        json_decref(d);
    }
    wa_webhook_batch_cleanup(&b);
    check_arena(body, size);
    if (size <= 2 * WA_CONTRACT_RAW_PART_MAX) {
        check_raw(body, size, err == WA_OK);
    }
    return 0;
}
