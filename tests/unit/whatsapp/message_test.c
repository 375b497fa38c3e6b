/*
 * message_test.c: send-body validation (libs/whatsapp message.c) against cloud-api.md §1:
 * every message type valid, the key invalid cases with Meta's codes (100, 131008, 131009,
 * 131051), limits at and past their boundary, and the data-driven cases in
 * tests/data/whatsapp_message/{valid,invalid}/<case>/{input,expected} (expected: the type name
 * for valid cases, the error code for invalid ones).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa_test.h"
#include "wa/whatsapp_message.h"

#define ENV "\"messaging_product\":\"whatsapp\",\"to\":\"+1 (650) 555-1234\","

struct tcase {
    const char *name;
    const char *body;
    int64_t code; /* 0: valid */
};

static const struct tcase cases[] = {
    {"text", "{" ENV "\"type\":\"text\",\"text\":{\"body\":\"hi\",\"preview_url\":true}}", 0},
    {"image id",
     "{" ENV "\"type\":\"image\",\"image\":{\"id\":\"1479537139650973\","
     "\"caption\":\"r\"}}",
     0},
    {"document link",
     "{" ENV "\"type\":\"document\",\"document\":{\"link\":"
     "\"https://x.example/a.pdf\",\"filename\":\"a.pdf\"}}",
     0},
    {"audio voice", "{" ENV "\"type\":\"audio\",\"audio\":{\"id\":\"1\",\"voice\":true}}", 0},
    {"video", "{" ENV "\"type\":\"video\",\"video\":{\"id\":\"1\",\"caption\":\"c\"}}", 0},
    {"sticker", "{" ENV "\"type\":\"sticker\",\"sticker\":{\"id\":\"798882015472548\"}}", 0},
    {"location strings",
     "{" ENV "\"type\":\"location\",\"location\":{\"latitude\":\"37.44\","
     "\"longitude\":\"-122.16\",\"name\":\"P\"}}",
     0},
    {"location numbers",
     "{" ENV "\"type\":\"location\",\"location\":{\"latitude\":37.4,"
     "\"longitude\":-122.1}}",
     0},
    {"contacts",
     "{" ENV "\"type\":\"contacts\",\"contacts\":[{\"name\":{\"formatted_name\":"
     "\"Ana Lima\",\"first_name\":\"Ana\"},\"phones\":[{\"phone\":\"+55\"}]}]}",
     0},
    {"buttons",
     "{" ENV "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\","
     "\"header\":{\"type\":\"text\",\"text\":\"H\"},\"body\":{\"text\":\"B\"},"
     "\"footer\":{\"text\":\"F\"},\"action\":{\"buttons\":["
     "{\"type\":\"reply\",\"reply\":{\"id\":\"a\",\"title\":\"Yes\"}},"
     "{\"type\":\"reply\",\"reply\":{\"id\":\"b\",\"title\":\"No\"}}]}}}",
     0},
    {"list",
     "{" ENV "\"type\":\"interactive\",\"interactive\":{\"type\":\"list\","
     "\"body\":{\"text\":\"B\"},\"action\":{\"button\":\"Options\",\"sections\":["
     "{\"title\":\"S1\",\"rows\":[{\"id\":\"r1\",\"title\":\"R1\"}]},"
     "{\"title\":\"S2\",\"rows\":[{\"id\":\"r2\",\"title\":\"R2\","
     "\"description\":\"d\"}]}]}}}",
     0},
    {"cta_url",
     "{" ENV "\"type\":\"interactive\",\"interactive\":{\"type\":\"cta_url\","
     "\"header\":{\"type\":\"image\",\"image\":{\"link\":\"https://x/i.png\"}},"
     "\"body\":{\"text\":\"B\"},\"action\":{\"name\":\"cta_url\",\"parameters\":"
     "{\"display_text\":\"See\",\"url\":\"https://example.com\"}}}}",
     0},
    {"reaction",
     "{" ENV "\"type\":\"reaction\",\"reaction\":{\"message_id\":\"wamid.X\","
     "\"emoji\":\"\\ud83d\\udc4d\"}}",
     0},
    {"reaction removal",
     "{" ENV "\"type\":\"reaction\",\"reaction\":{\"message_id\":\"wamid.X\","
     "\"emoji\":\"\"}}",
     0},
    {"template",
     "{" ENV "\"type\":\"template\",\"template\":{\"name\":\"order_update\","
     "\"language\":{\"code\":\"en_US\",\"policy\":\"deterministic\"},\"components\":["
     "{\"type\":\"header\",\"parameters\":[{\"type\":\"image\",\"image\":{\"id\":"
     "\"1\"}}]},{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"A\"},"
     "{\"type\":\"currency\",\"currency\":{\"fallback_value\":\"$1\",\"code\":\"USD\","
     "\"amount_1000\":1000}}]},{\"type\":\"button\",\"sub_type\":\"quick_reply\","
     "\"index\":\"0\",\"parameters\":[{\"type\":\"payload\",\"payload\":\"p\"}]}]}}",
     0},
    {"mark read",
     "{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":"
     "\"wamid.X\",\"typing_indicator\":{\"type\":\"text\"}}",
     0},
    {"recipient bsuid",
     "{\"messaging_product\":\"whatsapp\",\"recipient\":\"US.1349\","
     "\"type\":\"text\",\"text\":{\"body\":\"x\"}}",
     0},
    /* invalid */
    {"no product", "{\"to\":\"+1650\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}", 131008},
    {"bad product", "{\"messaging_product\":\"sms\",\"to\":\"1\",\"type\":\"text\"}", 100},
    {"unknown field", "{" ENV "\"type\":\"text\",\"text\":{\"body\":\"x\"},\"colour\":1}", 100},
    {"no to", "{\"messaging_product\":\"whatsapp\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}",
     131008},
    {"bad to",
     "{\"messaging_product\":\"whatsapp\",\"to\":\"abc\",\"type\":\"text\","
     "\"text\":{\"body\":\"x\"}}",
     131009},
    {"no type", "{" ENV "\"text\":{\"body\":\"x\"}}", 131008},
    {"unknown type", "{" ENV "\"type\":\"poll\",\"poll\":{}}", 131051},
    {"type object missing", "{" ENV "\"type\":\"image\"}", 131008},
    {"text no body", "{" ENV "\"type\":\"text\",\"text\":{}}", 131008},
    {"text body not string", "{" ENV "\"type\":\"text\",\"text\":{\"body\":5}}", 100},
    {"image id and link",
     "{" ENV "\"type\":\"image\",\"image\":{\"id\":\"1\",\"link\":"
     "\"https://x/a.png\"}}",
     131009},
    {"image neither", "{" ENV "\"type\":\"image\",\"image\":{\"caption\":\"c\"}}", 131008},
    {"audio caption", "{" ENV "\"type\":\"audio\",\"audio\":{\"id\":\"1\",\"caption\":\"c\"}}",
     100},
    {"link not http", "{" ENV "\"type\":\"image\",\"image\":{\"link\":\"ftp://x\"}}", 131009},
    {"latitude range",
     "{" ENV "\"type\":\"location\",\"location\":{\"latitude\":91,"
     "\"longitude\":0}}",
     131009},
    {"contact only formatted",
     "{" ENV "\"type\":\"contacts\",\"contacts\":[{\"name\":"
     "{\"formatted_name\":\"A\"}}]}",
     131008},
    {"four buttons",
     "{" ENV "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\","
     "\"body\":{\"text\":\"B\"},\"action\":{\"buttons\":["
     "{\"type\":\"reply\",\"reply\":{\"id\":\"a\",\"title\":\"1\"}},"
     "{\"type\":\"reply\",\"reply\":{\"id\":\"b\",\"title\":\"2\"}},"
     "{\"type\":\"reply\",\"reply\":{\"id\":\"c\",\"title\":\"3\"}},"
     "{\"type\":\"reply\",\"reply\":{\"id\":\"d\",\"title\":\"4\"}}]}}}",
     131009},
    {"duplicate titles",
     "{" ENV "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\","
     "\"body\":{\"text\":\"B\"},\"action\":{\"buttons\":["
     "{\"type\":\"reply\",\"reply\":{\"id\":\"a\",\"title\":\"Same\"}},"
     "{\"type\":\"reply\",\"reply\":{\"id\":\"b\",\"title\":\"Same\"}}]}}}",
     131009},
    {"button title 21",
     "{" ENV "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\","
     "\"body\":{\"text\":\"B\"},\"action\":{\"buttons\":["
     "{\"type\":\"reply\",\"reply\":{\"id\":\"a\",\"title\":"
     "\"123456789012345678901\"}}]}}}",
     131009},
    {"interactive no body",
     "{" ENV "\"type\":\"interactive\",\"interactive\":{\"type\":"
     "\"button\",\"action\":{\"buttons\":[]}}}",
     131008},
    {"list image header",
     "{" ENV "\"type\":\"interactive\",\"interactive\":{\"type\":\"list\","
     "\"header\":{\"type\":\"image\",\"image\":{\"id\":\"1\"}},"
     "\"body\":{\"text\":\"B\"},\"action\":{\"button\":\"O\",\"sections\":"
     "[{\"rows\":[{\"id\":\"r\",\"title\":\"t\"}]}]}}}",
     131009},
    {"list eleven rows",
     "{" ENV "\"type\":\"interactive\",\"interactive\":{\"type\":\"list\","
     "\"body\":{\"text\":\"B\"},\"action\":{\"button\":\"O\",\"sections\":["
     "{\"title\":\"a\",\"rows\":[{\"id\":\"1\",\"title\":\"1\"},{\"id\":\"2\","
     "\"title\":\"2\"},{\"id\":\"3\",\"title\":\"3\"},{\"id\":\"4\",\"title\":"
     "\"4\"},{\"id\":\"5\",\"title\":\"5\"},{\"id\":\"6\",\"title\":\"6\"}]},"
     "{\"title\":\"b\",\"rows\":[{\"id\":\"7\",\"title\":\"7\"},{\"id\":\"8\","
     "\"title\":\"8\"},{\"id\":\"9\",\"title\":\"9\"},{\"id\":\"10\","
     "\"title\":\"10\"},{\"id\":\"11\",\"title\":\"11\"}]}]}}}",
     131009},
    {"cta bad url",
     "{" ENV "\"type\":\"interactive\",\"interactive\":{\"type\":\"cta_url\","
     "\"body\":{\"text\":\"B\"},\"action\":{\"name\":\"cta_url\",\"parameters\":"
     "{\"display_text\":\"See\",\"url\":\"javascript:x\"}}}}",
     131009},
    {"reaction with context",
     "{" ENV "\"context\":{\"message_id\":\"wamid.Y\"},\"type\":"
     "\"reaction\",\"reaction\":{\"message_id\":\"wamid.X\","
     "\"emoji\":\"x\"}}",
     131009},
    {"reaction null emoji",
     "{" ENV "\"type\":\"reaction\",\"reaction\":{\"message_id\":\"w\",\"emoji\":null}}", 131008},
    {"reaction words",
     "{" ENV "\"type\":\"reaction\",\"reaction\":{\"message_id\":\"w\","
     "\"emoji\":\"thumbs up\"}}",
     131009},
    {"template no language", "{" ENV "\"type\":\"template\",\"template\":{\"name\":\"x\"}}",
     131008},
    {"template bad name",
     "{" ENV "\"type\":\"template\",\"template\":{\"name\":\"Bad Name\","
     "\"language\":{\"code\":\"en\"}}}",
     131009},
    {"template bad param type",
     "{" ENV "\"type\":\"template\",\"template\":{\"name\":\"x\","
     "\"language\":{\"code\":\"en\"},\"components\":[{\"type\":"
     "\"body\",\"parameters\":[{\"type\":\"gif\"}]}]}}",
     100},
    {"template button no index",
     "{" ENV "\"type\":\"template\",\"template\":{\"name\":\"x\","
     "\"language\":{\"code\":\"en\"},\"components\":[{\"type\":"
     "\"button\",\"sub_type\":\"url\",\"parameters\":[]}]}}",
     131008},
    {"read bad status",
     "{\"messaging_product\":\"whatsapp\",\"status\":\"delivered\","
     "\"message_id\":\"w\"}",
     100},
    {"read no id", "{\"messaging_product\":\"whatsapp\",\"status\":\"read\"}", 131008},
    {"biz opaque not string",
     "{" ENV "\"biz_opaque_callback_data\":5,\"type\":\"text\","
     "\"text\":{\"body\":\"x\"}}",
     100},
};

static int64_t
run(const char *text, struct wa_whatsapp_send *send, json_t **root)
{
    struct wa_whatsapp_send_error err;

    *root = NULL;
    assert_int_equal(wa_json_parse(text, strlen(text), 0, root, NULL), WA_OK);
    if (wa_whatsapp_send_parse(*root, send, &err) == WA_OK) {
        return 0;
    }
    assert_true(strlen(err.details) > 0);
    return err.code;
}

static void
parse__table__gives_expected_codes(void **state)
{
    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        struct wa_whatsapp_send send;
        json_t *root;
        int64_t code = run(cases[i].body, &send, &root);

        if (code != cases[i].code) {
            fail_msg("case '%s': got %lld, want %lld", cases[i].name, (long long)code,
                     (long long)cases[i].code);
        }
        json_decref(root);
    }
}

static void
parse__template__counts_parameters_per_component(void **state)
{
    struct wa_whatsapp_send send;
    json_t *root;

    (void)state;
    assert_int_equal(run(cases[14].body, &send, &root), 0);
    assert_int_equal(send.type, WA_WHATSAPP_MSG_TEMPLATE);
    assert_string_equal(send.tpl.name, "order_update");
    assert_string_equal(send.tpl.language, "en_US");
    assert_int_equal(send.tpl.header_params, 1);
    assert_int_equal(send.tpl.body_params, 2);
    assert_int_equal(send.tpl.button_params, 1);
    assert_string_equal(send.to, "+1 (650) 555-1234");
    assert_string_equal(send.wa_id, "16505551234");
    json_decref(root);
}

static void
parse__text_limit__4096_ok_4097_rejected(void **state)
{
    char *body = malloc(5000), *text = malloc(4200);
    struct wa_whatsapp_send send;
    struct wa_whatsapp_send_error err;
    json_t *root = NULL;

    (void)state;
    for (int n = 4096; n <= 4097; n++) {
        /* Multi-byte characters: the limit counts characters, not bytes. */
        memset(text, 'a', (size_t)n);
        text[n] = '\0';
        root = json_pack("{s:s, s:s, s:s, s:{s:s}}", "messaging_product", "whatsapp", "to",
                         "16505551234", "type", "text", "text", "body", text);
        assert_non_null(root);
        if (n == 4096) {
            assert_int_equal(wa_whatsapp_send_parse(root, &send, &err), WA_OK);
        } else {
            assert_int_equal(wa_whatsapp_send_parse(root, &send, &err), WA_EINVAL);
            assert_int_equal(err.code, 100);
            assert_non_null(strstr(err.details, "text['body']"));
        }
        json_decref(root);
    }
    /* 1024 two-byte characters fit a caption (2048 bytes). */
    for (int i = 0; i < 1024; i++) {
        text[2 * i] = (char)0xC3;
        text[2 * i + 1] = (char)0xA9;
    }
    text[2048] = '\0';
    root = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "messaging_product", "whatsapp", "to",
                     "16505551234", "type", "image", "image", "id", "1", "caption", text);
    assert_int_equal(wa_whatsapp_send_parse(root, &send, &err), WA_OK);
    json_decref(root);
    free(body);
    free(text);
}

static void
wa_id_from_to__formats__normalise_or_reject(void **state)
{
    char out[WA_WHATSAPP_WA_ID_MAX + 1];

    (void)state;
    assert_int_equal(wa_whatsapp_wa_id_from_to("+1 (650) 555-1234", out, sizeof(out)), WA_OK);
    assert_string_equal(out, "16505551234");
    assert_int_equal(wa_whatsapp_wa_id_from_to("16505551234", out, sizeof(out)), WA_OK);
    assert_int_equal(wa_whatsapp_wa_id_from_to("1650x", out, sizeof(out)), WA_EINVAL);
    assert_int_equal(wa_whatsapp_wa_id_from_to("123", out, sizeof(out)), WA_EINVAL);
    assert_int_equal(wa_whatsapp_wa_id_from_to("1234567890123456", out, sizeof(out)), WA_EINVAL);
    assert_int_equal(wa_whatsapp_wa_id_from_to("1+650555", out, sizeof(out)), WA_EINVAL);
    assert_int_equal(wa_whatsapp_utf8_len("caf\xc3\xa9"), 4);
}

static void
run_dir(const char *root, const char *kind)
{
    char path[1024];
    DIR *d;
    struct dirent *de;
    int seen = 0;

    snprintf(path, sizeof(path), "%s/whatsapp_message/%s", root, kind);
    d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        char file[1400];
        char *input, *expected;
        size_t len;
        struct wa_whatsapp_send send;
        json_t *doc;
        int64_t code;

        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(file, sizeof(file), "%s/%s/input", path, de->d_name);
        input = wa_test_read_file(file, &len);
        snprintf(file, sizeof(file), "%s/%s/expected", path, de->d_name);
        expected = wa_test_read_file(file, NULL);
        assert_non_null(input);
        assert_non_null(expected);
        expected[strcspn(expected, "\r\n")] = '\0';
        code = run(input, &send, &doc);
        if (strcmp(kind, "valid") == 0) {
            if (code != 0 || strcmp(send.type_name, expected) != 0) {
                fail_msg("%s: code %lld type %s, want type %s", de->d_name, (long long)code,
                         code == 0 ? send.type_name : "-", expected);
            }
        } else if (code != strtoll(expected, NULL, 10)) {
            fail_msg("%s: code %lld, want %s", de->d_name, (long long)code, expected);
        }
        seen++;
        json_decref(doc);
        free(input);
        free(expected);
    }
    closedir(d);
    assert_true(seen > 0);
}

static void
data__cases__match_expected(void **state)
{
    char root[1024];

    (void)state;
    /* WA_TEST_DATA is tests/data of the source tree (set by wa_test()). */
    snprintf(root, sizeof(root), "%s", wa_test_env("WA_TEST_DATA"));
    run_dir(root, "valid");
    run_dir(root, "invalid");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse__table__gives_expected_codes),
        cmocka_unit_test(parse__template__counts_parameters_per_component),
        cmocka_unit_test(parse__text_limit__4096_ok_4097_rejected),
        cmocka_unit_test(wa_id_from_to__formats__normalise_or_reject),
        cmocka_unit_test(data__cases__match_expected),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
