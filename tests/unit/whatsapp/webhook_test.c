/*
 * webhook_test.c: properties of the webhook splitter (wa/whatsapp_webhook.h) that the golden
 * files (tests/data/webhook, checked by tests/unit/contract/golden_test.c) do not show well:
 * large batches, order, contact matching, malformed neighbours and error codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa_test.h"
#include "wa/buf.h"
#include "wa/whatsapp_webhook.h"

static void
split_ok(const char *body, struct wa_webhook_batch *b)
{
    struct wa_error error = {0};

    wa_webhook_batch_init(b);
    assert_int_equal(wa_webhook_split(body, strlen(body), b, &error), WA_OK);
}

/* A body with nentries entries x nchanges changes x (nmsg messages + nst statuses). */
static char *
make_batch(int nentries, int nchanges, int nmsg, int nst)
{
    struct wa_buf b;
    int e, c, i;

    wa_buf_init(&b, 0);
    wa_buf_append_str(&b, "{\"object\":\"whatsapp_business_account\",\"entry\":[");
    for (e = 0; e < nentries; e++) {
        wa_buf_printf(&b, "%s{\"id\":\"waba%d\",\"changes\":[", e ? "," : "", e);
        for (c = 0; c < nchanges; c++) {
            wa_buf_printf(&b,
                          "%s{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
                          "\"metadata\":{\"display_phone_number\":\"1555\",\"phone_number_id\":"
                          "\"pn%d\"},\"contacts\":[{\"profile\":{\"name\":\"n\"},\"wa_id\":\"1\"}],"
                          "\"messages\":[",
                          c ? "," : "", c);
            for (i = 0; i < nmsg; i++) {
                wa_buf_printf(&b,
                              "%s{\"from\":\"1\",\"id\":\"wamid.%d.%d.%d\",\"timestamp\":\"%d\","
                              "\"type\":\"text\",\"text\":{\"body\":\"m%d\"}}",
                              i ? "," : "", e, c, i, 1700000000 + i, i);
            }
            wa_buf_append_str(&b, "],\"statuses\":[");
            for (i = 0; i < nst; i++) {
                wa_buf_printf(&b,
                              "%s{\"id\":\"wamid.out.%d\",\"status\":\"delivered\",\"timestamp\":"
                              "\"1\",\"recipient_id\":\"1\"}",
                              i ? "," : "", i);
            }
            wa_buf_append_str(&b, "]}}");
        }
        wa_buf_append_str(&b, "]}");
    }
    wa_buf_append_str(&b, "]}");
    return wa_buf_steal(&b);
}

static void
split__thousand_updates__yields_every_one_in_order(void **state)
{
    struct wa_webhook_batch b;
    char *body = make_batch(4, 5, 30, 20); /* 4 x 5 x 50 = 1000 updates */
    char want[64];
    size_t k = 0;

    (void)state;
    split_ok(body, &b);
    assert_int_equal(b.count, 1000);
    assert_int_equal(b.malformed, 0);
    for (int e = 0; e < 4; e++) {
        for (int c = 0; c < 5; c++) {
            for (int i = 0; i < 30; i++, k++) {
                snprintf(want, sizeof(want), "wamid.%d.%d.%d", e, c, i);
                assert_int_equal(b.events[k].kind, WA_WEBHOOK_MESSAGE);
                assert_string_equal(b.events[k].id, want);
                assert_int_equal(b.events[k].timestamp, 1700000000 + i);
            }
            for (int i = 0; i < 20; i++, k++) {
                assert_int_equal(b.events[k].kind, WA_WEBHOOK_STATUS);
                assert_string_equal(b.events[k].status, "delivered");
            }
            snprintf(want, sizeof(want), "pn%d", c);
            assert_string_equal(b.events[k - 1].phone_number_id, want);
        }
    }
    wa_webhook_batch_cleanup(&b);
    free(body);
}

static void
split__several_contacts__matches_each_message_to_its_sender(void **state)
{
    struct wa_webhook_batch b;

    (void)state;
    split_ok(
        "{\"entry\":[{\"id\":\"w\",\"changes\":[{\"field\":\"messages\",\"value\":{"
        "\"metadata\":{\"phone_number_id\":\"p\"},\"contacts\":[{\"wa_id\":\"111\",\"profile\":"
        "{\"name\":\"A\"}},{\"wa_id\":\"222\",\"profile\":{\"name\":\"B\"}}],\"messages\":["
        "{\"from\":\"222\",\"id\":\"x\",\"type\":\"text\"},{\"from\":\"111\",\"id\":\"y\","
        "\"type\":\"text\"},{\"from\":\"333\",\"id\":\"z\",\"type\":\"text\"}]}}]}]}",
        &b);
    assert_int_equal(b.count, 3);
    assert_string_equal(wa_json_path_str(b.events[0].profile, "profile.name"), "B");
    assert_string_equal(wa_json_path_str(b.events[1].profile, "profile.name"), "A");
    assert_null(b.events[2].profile); /* no contact for 333: none rather than a wrong one */
    assert_string_equal(b.events[2].contact, "333");
    wa_webhook_batch_cleanup(&b);
}

static void
split__bsuid_only_user__uses_user_id_as_contact(void **state)
{
    struct wa_webhook_batch b;

    (void)state;
    split_ok(
        "{\"entry\":[{\"id\":\"w\",\"changes\":[{\"field\":\"messages\",\"value\":{"
        "\"metadata\":{\"phone_number_id\":\"p\"},\"contacts\":[{\"user_id\":\"US.1\"}],"
        "\"messages\":[{\"from_user_id\":\"US.1\",\"id\":\"x\",\"type\":\"text\"}],"
        "\"statuses\":[{\"id\":\"s\",\"status\":\"read\",\"recipient_user_id\":\"US.2\"}]}}]}]}",
        &b);
    assert_int_equal(b.count, 2);
    assert_string_equal(b.events[0].contact, "US.1");
    assert_non_null(b.events[0].profile);
    assert_string_equal(b.events[1].contact, "US.2");
    wa_webhook_batch_cleanup(&b);
}

static void
split__malformed_items__are_counted_and_neighbours_kept(void **state)
{
    struct wa_webhook_batch b;

    (void)state;
    split_ok(
        "{\"entry\":[7,{\"id\":\"w\"},{\"id\":\"w\",\"changes\":[\"x\",{\"field\":\"messages\","
        "\"value\":{\"messages\":[1,{\"id\":\"ok\",\"type\":\"text\"},{\"type\":\"text\"}],"
        "\"statuses\":[{\"id\":\"s\"},{\"id\":\"s\",\"status\":\"sent\"}],\"errors\":[null]}}]}]}",
        &b);
    /* entry 7, entry without changes, change "x", message 1, message without id, status
     * without status, error null */
    assert_int_equal(b.malformed, 7);
    assert_int_equal(b.count, 2);
    assert_string_equal(b.events[0].id, "ok");
    assert_null(b.events[0].phone_number_id);
    assert_string_equal(b.events[1].status, "sent");
    wa_webhook_batch_cleanup(&b);
}

static void
split__other_fields__become_account_events(void **state)
{
    struct wa_webhook_batch b;

    (void)state;
    split_ok("{\"entry\":[{\"id\":\"w\",\"time\":1751247548,\"changes\":["
             "{\"field\":\"account_update\",\"value\":{\"event\":\"ACCOUNT_DELETED\"}},"
             "{\"field\":\"brand_new\",\"value\":{\"x\":1}},"
             "{\"field\":\"messages\",\"value\":{\"errors\":[{\"code\":130429}]}}]}]}",
             &b);
    assert_int_equal(b.count, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(b.events[i].kind, WA_WEBHOOK_ACCOUNT);
        assert_string_equal(b.events[i].waba_id, "w");
        assert_int_equal(b.events[i].timestamp, 1751247548);
    }
    assert_string_equal(b.events[0].type, "ACCOUNT_DELETED");
    assert_null(b.events[1].type);
    assert_string_equal(b.events[1].field, "brand_new");
    assert_string_equal(b.events[2].type, "error");
    wa_webhook_batch_cleanup(&b);
}

static void
split__not_a_webhook__fails_and_leaves_batch_empty(void **state)
{
    static const struct {
        const char *body;
        enum wa_err want;
    } cases[] = {
        {"", WA_EPARSE},
        {"{\"entry\":", WA_EPARSE},
        {"[]", WA_EPARSE},
        {"{\"entry\":{}}", WA_EPARSE},
        {"{\"entry\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
         "]]]}",
         WA_ELIMIT},
    };
    struct wa_webhook_batch b;
    struct wa_error error = {0};

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        wa_webhook_batch_init(&b);
        assert_int_equal(wa_webhook_split(cases[i].body, strlen(cases[i].body), &b, &error),
                         cases[i].want);
        assert_null(b.root);
        assert_int_equal(b.count, 0);
        wa_webhook_batch_cleanup(&b);
    }
}

static void
timestamp__strings_and_numbers__parse_or_give_minus_one(void **state)
{
    json_t *v;

    (void)state;
    v = json_string("1712595443");
    assert_int_equal(wa_webhook_timestamp(v), 1712595443);
    json_decref(v);
    v = json_integer(17);
    assert_int_equal(wa_webhook_timestamp(v), 17);
    json_decref(v);
    v = json_string("17x");
    assert_int_equal(wa_webhook_timestamp(v), -1);
    json_decref(v);
    v = json_string("-5");
    assert_int_equal(wa_webhook_timestamp(v), -1);
    json_decref(v);
    v = json_string("99999999999999999999999");
    assert_int_equal(wa_webhook_timestamp(v), -1);
    json_decref(v);
    assert_int_equal(wa_webhook_timestamp(NULL), -1);
}

/* A value jansson refuses costs only its own item: repaired, flagged, its neighbours intact. */
static void
split__refused_values__repaired_in_their_item_only(void **state)
{
    static const char head[] =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"w\",\"changes\":[{"
        "\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"p\"},"
        "\"messages\":[";
    static const char tail[] = "]}}]}]}";
    static const struct {
        const char *item; /* the second of three text messages */
        const char *text; /* its body after the repair */
    } cases[] = {
        {"\"nul \\u0000 here\"", "nul \xef\xbf\xbd here"},
        {"\"lone \\ud83d high\"", "lone \xef\xbf\xbd high"},
        {"\"lone \\ude00 low\"", "lone \xef\xbf\xbd low"},
        {"\"bad \xff\xfe utf8\"", "bad \xef\xbf\xbd\xef\xbf\xbd utf8"},
        {"\"tab\tinside\"", "tab\tinside"},
    };

    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct wa_webhook_batch b;
        struct wa_buf body;

        wa_buf_init(&body, 0);
        wa_buf_append_str(&body, head);
        for (int i = 0; i < 3; i++) {
            wa_buf_printf(
                &body, "%s{\"from\":\"1\",\"id\":\"m%d\",\"type\":\"text\",\"text\":{\"body\":%s}}",
                i ? "," : "", i, i == 1 ? cases[c].item : "\"fine\"");
        }
        wa_buf_append_str(&body, tail);
        wa_webhook_batch_init(&b);
        assert_int_equal(wa_webhook_split(body.data, body.len, &b, NULL), WA_OK);
        assert_int_equal(b.count, 3);
        assert_true(b.repaired > 0);
        assert_string_equal(wa_json_path_str(b.events[1].item, "text.body"), cases[c].text);
        assert_false(b.events[0].repaired);
        assert_false(b.events[2].repaired);
        assert_int_equal(b.events[1].repaired, strchr(cases[c].text, '\t') == NULL);
        wa_webhook_batch_cleanup(&b);
        wa_buf_cleanup(&body);
    }
}

/* Repairs never make a broken document parse: truncated JSON stays refused. */
static void
split__truncated_with_nul__still_refused(void **state)
{
    static const char body[] = "{\"entry\":[{\"id\":\"a\\u0000b\"}";
    struct wa_webhook_batch b;

    (void)state;
    wa_webhook_batch_init(&b);
    assert_int_equal(wa_webhook_split(body, sizeof(body) - 1, &b, NULL), WA_EPARSE);
    assert_int_equal(b.count, 0);
    wa_webhook_batch_cleanup(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split__thousand_updates__yields_every_one_in_order),
        cmocka_unit_test(split__several_contacts__matches_each_message_to_its_sender),
        cmocka_unit_test(split__bsuid_only_user__uses_user_id_as_contact),
        cmocka_unit_test(split__malformed_items__are_counted_and_neighbours_kept),
        cmocka_unit_test(split__other_fields__become_account_events),
        cmocka_unit_test(split__not_a_webhook__fails_and_leaves_batch_empty),
        cmocka_unit_test(timestamp__strings_and_numbers__parse_or_give_minus_one),
        cmocka_unit_test(split__refused_values__repaired_in_their_item_only),
        cmocka_unit_test(split__truncated_with_nul__still_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
