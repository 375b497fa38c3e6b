/* cloudevent_test.c: CloudEvents 1.0 structured-mode encoder and decoder. */
#include <stdlib.h>
#include <string.h>

#include "wa/cloudevent.h"
#include "wa_test.h"

static void
encode__full_event__fixed_attribute_order(void **state)
{
    struct wa_cloudevent ev;
    struct wa_buf out;
    json_t *data = json_pack("{s:s, s:i}", "text", "h\u00e9\"llo", "n", 7);

    (void)state;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.id, sizeof(ev.id), "01JD0000000000000000000000");
    ev.source = "wa-ingest/test";
    ev.type = "wa.inbound.message.v1";
    ev.subject = "100000000000001:15551234567";
    snprintf(ev.time, sizeof(ev.time), "2026-11-21T13:45:58.123Z");
    ev.phonenumberid = "100000000000001";
    ev.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    ev.data = data;
    wa_buf_init(&out, 4096);
    assert_int_equal(wa_cloudevent_encode(&ev, &out, NULL), WA_OK);
    assert_string_equal(
        out.data, "{\"specversion\":\"1.0\",\"id\":\"01JD0000000000000000000000\",\"source\":"
                  "\"wa-ingest/test\",\"type\":\"wa.inbound.message.v1\",\"subject\":"
                  "\"100000000000001:15551234567\",\"time\":\"2026-11-21T13:45:58.123Z\","
                  "\"datacontenttype\":\"application/json\",\"phonenumberid\":\"100000000000001\","
                  "\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\","
                  "\"data\":{\"text\":\"h\u00e9\\\"llo\",\"n\":7}}");
    wa_buf_cleanup(&out);
    json_decref(data);
}

static void
encode_decode__init_event__round_trips(void **state)
{
    struct wa_cloudevent ev;
    struct wa_cloudevent_doc *doc = NULL;
    struct wa_buf out;
    json_t *data = json_pack("{s:[i,i]}", "list", 1, 2);

    (void)state;
    wa_cloudevent_init(&ev, "wa-test", "wa.test.v1");
    ev.data = data;
    ev.subject = "k";
    assert_int_equal(strlen(ev.id), 26);
    assert_true(wa_cloudevent_time_valid(ev.time));
    wa_buf_init(&out, 0);
    assert_int_equal(wa_cloudevent_encode(&ev, &out, NULL), WA_OK);
    assert_int_equal(wa_cloudevent_decode(out.data, out.len, &doc, NULL), WA_OK);
    assert_string_equal(doc->ev.id, ev.id);
    assert_string_equal(doc->ev.source, "wa-test");
    assert_string_equal(doc->ev.type, "wa.test.v1");
    assert_string_equal(doc->ev.subject, "k");
    assert_string_equal(doc->ev.time, ev.time);
    assert_string_equal(doc->ev.datacontenttype, "application/json");
    assert_null(doc->ev.traceparent);
    assert_true(json_equal(doc->ev.data, data));
    wa_cloudevent_doc_free(doc);
    wa_buf_cleanup(&out);
    json_decref(data);
}

static void
encode__missing_source__einval_and_buffer_unchanged(void **state)
{
    struct wa_cloudevent ev;
    struct wa_error error = {0};
    struct wa_buf out;

    (void)state;
    wa_cloudevent_init(&ev, NULL, "wa.test.v1");
    wa_buf_init(&out, 0);
    assert_int_equal(wa_buf_append_str(&out, "prefix"), WA_OK);
    assert_int_equal(wa_cloudevent_encode(&ev, &out, &error), WA_EINVAL);
    assert_int_equal(error.code, WA_EINVAL);
    assert_string_equal(out.data, "prefix");
    wa_buf_cleanup(&out);
}

static void
encode__buffer_limit__etoobig_and_buffer_unchanged(void **state)
{
    struct wa_cloudevent ev;
    struct wa_buf out;
    json_t *data = json_pack("{s:s}", "big", "0123456789012345678901234567890123456789");

    (void)state;
    wa_cloudevent_init(&ev, "wa-test", "wa.test.v1");
    ev.data = data;
    wa_buf_init(&out, 150);
    assert_int_equal(wa_cloudevent_encode(&ev, &out, NULL), WA_ETOOBIG);
    assert_int_equal(out.len, 0);
    wa_buf_cleanup(&out);
    json_decref(data);
}

static void
encode__bad_time__einval(void **state)
{
    struct wa_cloudevent ev;
    struct wa_buf out;

    (void)state;
    wa_cloudevent_init(&ev, "wa-test", "wa.test.v1");
    snprintf(ev.time, sizeof(ev.time), "yesterday");
    wa_buf_init(&out, 0);
    assert_int_equal(wa_cloudevent_encode(&ev, &out, NULL), WA_EINVAL);
    wa_buf_cleanup(&out);
}

static void
decode__each_missing_required_attribute__names_it(void **state)
{
    static const struct {
        const char *json;
        const char *name;
    } cases[] = {
        {"{\"id\":\"1\",\"source\":\"s\",\"type\":\"t\"}", "specversion"},
        {"{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\"}", "\"id\""},
        {"{\"specversion\":\"1.0\",\"id\":\"1\",\"type\":\"t\"}", "source"},
        {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\"}", "type"},
        {"{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"s\",\"type\":\"t\"}", "\"id\""},
        {"{\"specversion\":\"1.0\",\"id\":1,\"source\":\"s\",\"type\":\"t\"}", "\"id\""},
    };

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(cases); i++) {
        struct wa_cloudevent_doc *doc = (void *)1;
        struct wa_error error = {0};

        assert_int_equal(wa_cloudevent_decode(cases[i].json, strlen(cases[i].json), &doc, &error),
                         WA_EPARSE);
        assert_null(doc);
        assert_non_null(strstr(error.message, cases[i].name));
    }
}

static void
decode__time_variants__validated(void **state)
{
    static const char *good[] = {"2026-11-21T13:45:58Z", "2026-11-21t13:45:58.123456789z",
                                 "2024-02-29T00:00:00+05:30", "2026-12-31T23:59:60-00:00"};
    static const char *bad[] = {"2026-11-21",
                                "2026-13-01T00:00:00Z",
                                "2025-02-29T00:00:00Z",
                                "2026-11-21T24:00:00Z",
                                "2026-11-21T13:45:58",
                                "2026-11-21T13:45:58.Z",
                                "2026-11-21T13:45:58+0100",
                                "2026-11-21 13:45:58Z"};

    (void)state;
    for (size_t i = 0; i < WA_ARRAY_LEN(good); i++) {
        assert_true(wa_cloudevent_time_valid(good[i]));
    }
    for (size_t i = 0; i < WA_ARRAY_LEN(bad); i++) {
        assert_false(wa_cloudevent_time_valid(bad[i]));
    }
}

static void
decode__oversized_input__etoobig_before_parsing(void **state)
{
    struct wa_cloudevent_doc *doc = NULL;

    (void)state;
    assert_int_equal(wa_cloudevent_decode("{}", (size_t)WA_CLOUDEVENT_MAX + 1, &doc, NULL),
                     WA_ETOOBIG);
    assert_null(doc);
}

/* Builds a CloudEvent whose data is depth - 1 nested arrays (the envelope is one level). */
static char *
nested_event(int depth)
{
    static const char head[] = "{\"specversion\":\"1.0\",\"id\":\"01J\",\"source\":\"t\","
                               "\"type\":\"t\",\"data\":";
    size_t n = strlen(head) + 2 * (size_t)depth + 2;
    char *s = malloc(n), *p = s;

    assert_non_null(s);
    memcpy(p, head, strlen(head));
    p += strlen(head);
    memset(p, '[', (size_t)depth - 1);
    p += depth - 1;
    memset(p, ']', (size_t)depth - 1);
    p += depth - 1;
    *p++ = '}';
    *p = '\0';
    return s;
}

static void
decode__nesting__bounded_before_parsing(void **state)
{
    struct wa_cloudevent_doc *doc = NULL;
    struct wa_error error = {0};
    char *ok = nested_event(WA_CLOUDEVENT_MAX_DEPTH);
    char *deep = nested_event(WA_CLOUDEVENT_MAX_DEPTH + 1);

    (void)state;
    assert_int_equal(wa_cloudevent_decode(ok, strlen(ok), &doc, &error), WA_OK);
    wa_cloudevent_doc_free(doc);
    doc = NULL;
    assert_int_equal(wa_cloudevent_decode(deep, strlen(deep), &doc, &error), WA_ELIMIT);
    assert_null(doc);
    assert_non_null(strstr(error.message, "nested"));
    free(ok);
    free(deep);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode__full_event__fixed_attribute_order),
        cmocka_unit_test(encode_decode__init_event__round_trips),
        cmocka_unit_test(encode__missing_source__einval_and_buffer_unchanged),
        cmocka_unit_test(encode__buffer_limit__etoobig_and_buffer_unchanged),
        cmocka_unit_test(encode__bad_time__einval),
        cmocka_unit_test(decode__each_missing_required_attribute__names_it),
        cmocka_unit_test(decode__time_variants__validated),
        cmocka_unit_test(decode__oversized_input__etoobig_before_parsing),
        cmocka_unit_test(decode__nesting__bounded_before_parsing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
