/*
 * raw_test.c: the webhook.raw record gives every body back byte for byte, in parts that never
 * exceed the part limit and never split a UTF-8 sequence; keys follow the contract.
 */
#include <stdlib.h>
#include <string.h>

#include "wa_test.h"
#include "wa/contract.h"
#include "wa/crypto.h"

static const char *const headers[] = {"content-type",       "application/json", "user-agent",
                                      "facebookexternalua", "x-forwarded-for",  NULL};

/* Encodes body, checks every part, reassembles and compares. Returns the number of parts. */
static size_t
roundtrip(const char *body, size_t len, bool expect_text)
{
    struct wa_contract_raw_meta meta = {.raw_id = "01JD0000000000000000000000",
                                        .request_id = "req-1",
                                        .received_at = "2026-11-21T13:45:58.123Z",
                                        .parsed = true,
                                        .headers = headers,
                                        .nheaders = 3};
    json_t *parts[WA_CONTRACT_RAW_PARTS_MAX];
    struct wa_buf back;
    size_t n = 0, i;
    unsigned char digest[32];
    char hex[65];

    wa_buf_init(&back, 0);
    assert_int_equal(wa_contract_raw_data(&meta, body, len, parts, WA_CONTRACT_RAW_PARTS_MAX, &n),
                     WA_OK);
    assert_true(n >= 1);
    for (i = 0; i < n; i++) {
        struct wa_contract_raw raw;
        struct wa_error error = {0};
        char *text = json_dumps(parts[i], JSON_COMPACT);
        json_t *again = NULL;

        /* What a consumer sees went through JSON text. */
        assert_int_equal(wa_json_parse(text, strlen(text), 0, &again, &error), WA_OK);
        assert_int_equal(wa_contract_raw_decode(again, &raw, &error), WA_OK);
        assert_int_equal(raw.part, (int64_t)i);
        assert_int_equal(raw.parts, (int64_t)n);
        assert_int_equal(raw.size, (int64_t)len);
        assert_true(raw.parsed);
        assert_string_equal(wa_json_str(raw.headers, "user-agent"), "facebookexternalua");
        assert_null(json_object_get(raw.headers, "x-forwarded-for")); /* NULL value skipped */
        assert_int_equal(raw.body != NULL, expect_text);
        assert_true(raw.body == NULL || raw.body_len <= WA_CONTRACT_RAW_PART_MAX);
        assert_int_equal(wa_contract_raw_append_body(&raw, &back, &error), WA_OK);
        if (i == 0) {
            wa_sha256(body, len, digest);
            wa_hex_encode(digest, 32, hex);
            assert_string_equal(raw.sha256, hex);
        }
        json_decref(again);
        free(text);
        json_decref(parts[i]);
    }
    assert_int_equal(back.len, len);
    assert_memory_equal(back.data != NULL ? back.data : "", body, len);
    wa_buf_cleanup(&back);
    return n;
}

static void
raw__small_text_body__is_one_text_part(void **state)
{
    (void)state;
    assert_int_equal(roundtrip("{\"entry\":[]}", 12, true), 1);
    assert_int_equal(roundtrip("", 0, true), 1);
}

static void
raw__binary_body__is_base64_and_exact(void **state)
{
    const char bin[] = "{\"a\":\"\xff\xfe\x00\x01\"}";

    (void)state;
    for (size_t len = 0; len < sizeof(bin); len++) {
        if (!wa_contract_utf8_text(bin, len)) {
            roundtrip(bin, len, false); /* every base64 padding length */
        }
    }
}

static void
raw__three_mib_multibyte_body__splits_on_character_boundaries(void **state)
{
    size_t len = 3u * 1024u * 1024u, i;
    char *body = malloc(len);
    const char *unit = "\xd9\x85\xf0\x9f\x98\x80"; /* Arabic meem (2 bytes) + emoji (4 bytes) */

    (void)state;
    assert_non_null(body);
    for (i = 0; i + 6 <= len; i += 6) {
        memcpy(body + i, unit, 6);
    }
    len = i;
    assert_true(wa_contract_utf8_text(body, len));
    assert_true(roundtrip(body, len, true) >= 6);
    free(body);
}

static void
raw__too_many_parts__is_refused(void **state)
{
    struct wa_contract_raw_meta meta = {.raw_id = "r", .received_at = "2026-11-21T13:45:58Z"};
    json_t *parts[2];
    size_t len = 3 * WA_CONTRACT_RAW_PART_MAX, n = 7;
    char *body = calloc(1, len);

    (void)state;
    memset(body, 'a', len);
    assert_int_equal(wa_contract_raw_data(&meta, body, len, parts, 2, &n), WA_ETOOBIG);
    assert_int_equal(n, 0);
    meta.raw_id = NULL;
    assert_int_equal(wa_contract_raw_data(&meta, body, 1, parts, 2, &n), WA_EINVAL);
    free(body);
}

static void
utf8__invalid_sequences__are_not_text(void **state)
{
    (void)state;
    assert_true(wa_contract_utf8_text("caf\xc3\xa9", 5));
    assert_false(wa_contract_utf8_text("\xc0\xaf", 2));         /* overlong */
    assert_false(wa_contract_utf8_text("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(wa_contract_utf8_text("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(wa_contract_utf8_text("\xe2\x82", 2));         /* truncated */
    assert_false(wa_contract_utf8_text("a\0b", 3));             /* NUL */
    /* past the first eight bytes, which are checked a word at a time */
    assert_true(wa_contract_utf8_text("0123456789abcdef", 16));
    assert_true(wa_contract_utf8_text("01234567caf\xc3\xa9 0123456789", 24));
    assert_false(wa_contract_utf8_text("0123456789\0bcdef", 16));
    assert_false(wa_contract_utf8_text("01234567\xff", 9));
    assert_false(wa_contract_utf8_text("0123456789ab\xe2\x82", 14));
}

static void
keys__conversation_and_account__follow_the_contract(void **state)
{
    struct wa_webhook_event ev = {.kind = WA_WEBHOOK_MESSAGE,
                                  .phone_number_id = "106540352242922",
                                  .contact = "16505551234",
                                  .id = "wamid.X",
                                  .waba_id = "102290129340398"};
    char key[WA_CONTRACT_KEY_MAX], small[8];

    (void)state;
    assert_int_equal(wa_contract_event_key(&ev, key, sizeof(key)), WA_OK);
    assert_string_equal(key, "106540352242922:16505551234");
    assert_int_equal(wa_contract_event_dedup_id(&ev, key, sizeof(key)), WA_OK);
    assert_string_equal(key, "m:wamid.X");
    assert_int_equal(wa_contract_event_dedup_id(&ev, key, 10), WA_OK); /* exactly fits */
    assert_int_equal(wa_contract_event_dedup_id(&ev, key, 9), WA_ETOOBIG);
    assert_int_equal(wa_contract_event_key(&ev, small, sizeof(small)), WA_ETOOBIG);
    assert_string_equal(small, "");
    ev.kind = WA_WEBHOOK_STATUS;
    ev.status = "read";
    assert_int_equal(wa_contract_event_dedup_id(&ev, key, sizeof(key)), WA_OK);
    assert_string_equal(key, "s:wamid.X:read");
    ev.participant = "16505550001"; /* a group's status: one per participant */
    assert_int_equal(wa_contract_event_dedup_id(&ev, key, sizeof(key)), WA_OK);
    assert_string_equal(key, "s:wamid.X:read:16505550001");
    ev.kind = WA_WEBHOOK_ACCOUNT; /* a per-item event (user_preferences...): the conversation */
    assert_int_equal(wa_contract_event_key(&ev, key, sizeof(key)), WA_OK);
    assert_string_equal(key, "106540352242922:16505551234");
    ev.contact = NULL;
    assert_int_equal(wa_contract_event_key(&ev, key, sizeof(key)), WA_OK);
    assert_string_equal(key, "102290129340398");
    assert_int_equal(wa_contract_event_dedup_id(&ev, key, sizeof(key)), WA_ENOTFOUND);
    assert_int_equal(wa_contract_conversation_key(NULL, NULL, key, sizeof(key)), WA_OK);
    assert_string_equal(key, "unknown:unknown");
}

static void
decoders__missing_required_fields__eparse_naming_the_field(void **state)
{
    struct wa_contract_inbound_message m;
    struct wa_contract_inbound_status st;
    struct wa_contract_account_event a;
    struct wa_contract_raw raw;
    struct wa_error error = {0};
    json_t *data = json_pack("{s:s, s:s, s:s}", "wamid", "w", "type", "text", "contact", "c");

    (void)state;
    assert_int_equal(wa_contract_inbound_message_decode(data, &m, &error), WA_EPARSE);
    assert_non_null(strstr(error.message, "message"));
    json_object_set_new(data, "message", json_pack("{s:{s:s}}", "text", "body", "hi"));
    assert_int_equal(wa_contract_inbound_message_decode(data, &m, &error), WA_OK);
    assert_string_equal(m.text, "hi");
    assert_null(m.context);
    assert_int_equal(m.timestamp, -1);
    assert_int_equal(wa_contract_inbound_status_decode(data, &st, &error), WA_EPARSE);
    assert_non_null(strstr(error.message, "status"));
    assert_int_equal(wa_contract_account_event_decode(data, &a, &error), WA_EPARSE);
    assert_int_equal(wa_contract_raw_decode(data, &raw, &error), WA_EPARSE);
    json_decref(data);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(raw__small_text_body__is_one_text_part),
        cmocka_unit_test(raw__binary_body__is_base64_and_exact),
        cmocka_unit_test(raw__three_mib_multibyte_body__splits_on_character_boundaries),
        cmocka_unit_test(raw__too_many_parts__is_refused),
        cmocka_unit_test(utf8__invalid_sequences__are_not_text),
        cmocka_unit_test(keys__conversation_and_account__follow_the_contract),
        cmocka_unit_test(decoders__missing_required_fields__eparse_naming_the_field),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
