/*
 * golden_test.c: data-driven test of the webhook splitter and the contract encoders.
 *
 * tests/data/webhook/valid/<case>/input is a webhook body; expected is what wa-ingest must
 * publish for it: {"malformed": n, "events": [{"topic", "key", "type", "dedup", "data"}]}.
 * tests/data/webhook/invalid/<case>/input must be refused with the error named in expected.
 * Comparison is on JSON values (key order free). WA_GOLDEN_UPDATE=1 rewrites the expected
 * files from the current code: review the diff before committing it.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa_test.h"
#include "wa/contract.h"

static json_t *
events_of(const struct wa_webhook_batch *b)
{
    json_t *out = json_object(), *events = json_array();

    for (size_t i = 0; i < b->count; i++) {
        const struct wa_webhook_event *ev = &b->events[i];
        char key[WA_CONTRACT_KEY_MAX], dedup[512];
        json_t *data = NULL, *o = json_object();

        assert_int_equal(wa_contract_event_key(ev, key, sizeof(key)), WA_OK);
        assert_int_equal(wa_contract_event_data(ev, &data), WA_OK);
        json_object_set_new(o, "topic", json_string(wa_contract_event_topic(ev->kind)));
        json_object_set_new(o, "key", json_string(key));
        json_object_set_new(o, "type", json_string(wa_contract_event_type(ev->kind)));
        if (wa_contract_event_dedup_id(ev, dedup, sizeof(dedup)) == WA_OK) {
            json_object_set_new(o, "dedup", json_string(dedup));
        } else {
            json_object_set_new(o, "dedup", json_null());
        }
        json_object_set_new(o, "data", data);
        json_array_append_new(events, o);
    }
    json_object_set_new(out, "malformed", json_integer((json_int_t)b->malformed));
    json_object_set_new(out, "events", events);
    return out;
}

/* Decoding what was encoded must succeed and give back the key fields. */
static void
check_decoders(const struct wa_webhook_batch *b, json_t *got)
{
    struct wa_error error = {0};

    for (size_t i = 0; i < b->count; i++) {
        json_t *data = json_object_get(json_array_get(json_object_get(got, "events"), i), "data");
        struct wa_contract_inbound_message m;
        struct wa_contract_inbound_status s;
        struct wa_contract_account_event a;

        switch (b->events[i].kind) {
        case WA_WEBHOOK_MESSAGE:
            assert_int_equal(wa_contract_inbound_message_decode(data, &m, &error), WA_OK);
            assert_string_equal(m.wamid, b->events[i].id);
            break;
        case WA_WEBHOOK_STATUS:
            assert_int_equal(wa_contract_inbound_status_decode(data, &s, &error), WA_OK);
            assert_string_equal(s.status, b->events[i].status);
            break;
        case WA_WEBHOOK_ACCOUNT:
            assert_int_equal(wa_contract_account_event_decode(data, &a, &error), WA_OK);
            assert_ptr_equal(a.value, b->events[i].item);
            break;
        }
    }
}

static void
run_valid(const char *dir, bool update)
{
    char path[1024];
    size_t len = 0;
    char *input, *want_text;
    struct wa_webhook_batch b;
    struct wa_error error = {0};
    json_t *got, *want;

    snprintf(path, sizeof(path), "%s/input", dir);
    input = wa_test_read_file(path, &len);
    assert_non_null(input);
    wa_webhook_batch_init(&b);
    if (wa_webhook_split(input, len, &b, &error) != WA_OK) {
        fail_msg("%s: %s", dir, error.message);
    }
    got = events_of(&b);
    check_decoders(&b, got);
    snprintf(path, sizeof(path), "%s/expected", dir);
    if (update) {
        assert_int_equal(json_dump_file(got, path, JSON_INDENT(2) | JSON_SORT_KEYS), 0);
    } else {
        want_text = wa_test_read_file(path, &len);
        if (want_text == NULL) {
            fail_msg("%s: missing expected", dir);
        }
        want = json_loadb(want_text, len, 0, NULL);
        if (want == NULL || !json_equal(got, want)) {
            char *g = json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS);

            print_error("%s: got\n%s\n", dir, g);
            free(g);
            json_decref(want);
            fail_msg("%s: events differ from expected", dir);
        }
        json_decref(want);
        free(want_text);
    }
    json_decref(got);
    wa_webhook_batch_cleanup(&b);
    free(input);
}

static void
run_invalid(const char *dir)
{
    char path[1024];
    size_t len = 0, wlen = 0;
    char *input, *want;
    struct wa_webhook_batch b;
    enum wa_err err;

    snprintf(path, sizeof(path), "%s/input", dir);
    input = wa_test_read_file(path, &len);
    snprintf(path, sizeof(path), "%s/expected", dir);
    want = wa_test_read_file(path, &wlen);
    assert_non_null(input);
    assert_non_null(want);
    while (wlen > 0 && (want[wlen - 1] == '\n' || want[wlen - 1] == ' ')) {
        want[--wlen] = '\0';
    }
    wa_webhook_batch_init(&b);
    err = wa_webhook_split(input, len, &b, NULL);
    if (strcmp(wa_err_name(err), want) != 0) {
        fail_msg("%s: got %s, expected %s", dir, wa_err_name(err), want);
    }
    assert_int_equal(b.count, 0);
    wa_webhook_batch_cleanup(&b);
    free(input);
    free(want);
}

static size_t
for_each_case(const char *kind, void (*fn)(const char *dir, bool update), bool update)
{
    char base[512], dir[1024];
    struct dirent *de;
    size_t n = 0;
    DIR *d;

    snprintf(base, sizeof(base), "%s/%s", WA_WEBHOOK_DATA, kind);
    d = opendir(base);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(dir, sizeof(dir), "%s/%s", base, de->d_name);
        fn(dir, update);
        n++;
    }
    closedir(d);
    return n;
}

static void
invalid_adapter(const char *dir, bool update)
{
    (void)update;
    run_invalid(dir);
}

static void
golden__valid_webhooks__give_expected_events(void **state)
{
    const char *u = getenv("WA_GOLDEN_UPDATE");

    (void)state;
    assert_true(for_each_case("valid", run_valid, u != NULL && strcmp(u, "1") == 0) >= 50);
}

static void
golden__invalid_webhooks__are_refused_with_expected_error(void **state)
{
    (void)state;
    assert_true(for_each_case("invalid", invalid_adapter, false) >= 5);
}

/* The bytes wa-ingest publishes (the direct writer) hold Meta's numbers as sent: values are
 * compared above, the text here. */
static void
written_text_of(const char *name, struct wa_buf *out)
{
    char path[1024];
    size_t len = 0;
    char *input;
    struct wa_webhook_batch b;

    snprintf(path, sizeof(path), "%s/valid/%s/input", WA_WEBHOOK_DATA, name);
    input = wa_test_read_file(path, &len);
    assert_non_null(input);
    wa_webhook_batch_init(&b);
    assert_int_equal(wa_webhook_split(input, len, &b, NULL), WA_OK);
    for (size_t i = 0; i < b.count; i++) {
        assert_int_equal(wa_contract_event_data_write(out, &b.events[i]), WA_OK);
    }
    wa_webhook_batch_cleanup(&b);
    free(input);
}

static void
golden__published_bytes__keep_numbers_as_meta_sent_them(void **state)
{
    struct wa_buf out;

    (void)state;
    wa_buf_init(&out, 0);
    written_text_of("message_location_verbatim", &out);
    assert_non_null(strstr(out.data, "\"latitude\":37.483307,\"longitude\":-122.148981,"));
    wa_buf_reset(&out);
    written_text_of("repaired_big_integer_id", &out);
    assert_non_null(strstr(out.data, "\"message_template_id\":\"123456789012345678901234567890\""));
    assert_non_null(strstr(out.data, "\"other_id\":1689556908129832"));
    wa_buf_cleanup(&out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden__valid_webhooks__give_expected_events),
        cmocka_unit_test(golden__invalid_webhooks__are_refused_with_expected_error),
        cmocka_unit_test(golden__published_bytes__keep_numbers_as_meta_sent_them),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
