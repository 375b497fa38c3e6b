/*
 * model_test.c: wa-gateway's pure parts (services/gateway/src/apikey.c, gcra.c, message.c):
 * key text, hashes and verdicts (constant-time compare, expiry, revocation), scopes, key
 * records, the GCRA limiter (burst, steady rate, rejected requests cost nothing, retry-after),
 * the local limiter's share, POST /v1/messages bodies (every invalid field named, the
 * outbound.request built), body fingerprints and idempotency decisions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "wa/clock.h"
#include "wa_test.h"

#define ID     "0123456789abcdef"
#define SECRET "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static json_t *
parse(const char *s)
{
    json_t *v = json_loads(s, 0, NULL);

    assert_non_null(v);
    return v;
}

static void
apikey_parse__well_formed__id_and_secret(void **state)
{
    struct gw_key_parts p;

    (void)state;
    assert_int_equal(gw_apikey_parse("wab_" ID "_" SECRET, &p), WA_OK);
    assert_string_equal(p.id, ID);
    assert_string_equal(p.secret, SECRET);
}

static void
apikey_parse__malformed__eauth(void **state)
{
    struct gw_key_parts p;
    static const char *const bad[] = {
        "",
        "wab_",
        "wab_" ID SECRET,
        "wab_" ID "_" SECRET "0",
        "wab_" ID "_"
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefF",
        "WAB_" ID "_" SECRET,
        "wab_0123456789abcdeg_" SECRET,
        "wab_" ID "-" SECRET,
        "sk_" ID "_" SECRET "0",
    };

    (void)state;
    assert_int_equal(gw_apikey_parse(NULL, &p), WA_EAUTH);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(gw_apikey_parse(bad[i], &p), WA_EAUTH);
    }
}

static void
apikey_generate__parses_back__unique(void **state)
{
    struct gw_key_parts a, b, back;
    char ka[GW_KEY_LEN + 1], kb[GW_KEY_LEN + 1];

    (void)state;
    assert_int_equal(gw_apikey_generate(&a, ka), WA_OK);
    assert_int_equal(gw_apikey_generate(&b, kb), WA_OK);
    assert_int_equal(strlen(ka), GW_KEY_LEN);
    assert_int_equal(gw_apikey_parse(ka, &back), WA_OK);
    assert_string_equal(back.id, a.id);
    assert_string_equal(back.secret, a.secret);
    assert_string_not_equal(ka, kb);
}

static void
key_verify__hash_expiry_revocation__verdicts(void **state)
{
    struct wa_hmac *pepper = NULL, *other = NULL;
    struct gw_key_record rec = {0};
    char hex[GW_HASH_HEX + 1];
    unsigned char want[WA_SHA256_LEN];
    char want_hex[GW_HASH_HEX + 1];

    (void)state;
    assert_int_equal(wa_hmac_new("pepper", 6, &pepper), WA_OK);
    assert_int_equal(wa_hmac_new("other", 5, &other), WA_OK);
    gw_apikey_hash(pepper, SECRET, hex);
    wa_hmac_sha256("pepper", 6, SECRET, strlen(SECRET), want);
    wa_hex_encode(want, sizeof(want), want_hex);
    assert_string_equal(hex, want_hex); /* HMAC-SHA256(pepper, secret), hex */
    memcpy(rec.id, ID, sizeof(rec.id));
    memcpy(rec.hash, hex, sizeof(rec.hash));
    assert_int_equal(gw_key_verify(&rec, pepper, SECRET, 1000), GW_KEY_OK);
    assert_int_equal(gw_key_verify(&rec, other, SECRET, 1000), GW_KEY_BAD_SECRET);
    assert_int_equal(
        gw_key_verify(&rec, pepper,
                      "10112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1000),
        GW_KEY_BAD_SECRET);
    assert_int_equal(gw_key_verify(NULL, pepper, SECRET, 1000), GW_KEY_BAD_SECRET);
    rec.expires_ms = 2000;
    assert_int_equal(gw_key_verify(&rec, pepper, SECRET, 1999), GW_KEY_OK);
    assert_int_equal(gw_key_verify(&rec, pepper, SECRET, 2000), GW_KEY_EXPIRED);
    rec.revoked_ms = 1500;
    assert_int_equal(gw_key_verify(&rec, pepper, SECRET, 1000), GW_KEY_REVOKED);
    wa_hmac_free(pepper);
    wa_hmac_free(other);
}

static void
scopes__parse_and_render__round_trip_unknown_named(void **state)
{
    unsigned s = 0;
    char bad[80] = "";
    json_t *a, *arr;

    (void)state;
    assert_int_equal(gw_scopes_parse("messages:send, contacts:read", &s, bad, sizeof(bad)), WA_OK);
    assert_int_equal(s, GW_SCOPE_MESSAGES_SEND | GW_SCOPE_CONTACTS_READ);
    assert_int_equal(gw_scopes_parse("all", &s, bad, sizeof(bad)), WA_OK);
    assert_int_equal(s, GW_SCOPES_ALL);
    assert_int_equal(gw_scopes_parse("admin,root", &s, bad, sizeof(bad)), WA_EINVAL);
    assert_string_equal(bad, "root");
    a = gw_scopes_to_json(GW_SCOPE_ADMIN | GW_SCOPE_ANALYTICS_READ);
    arr = parse("[\"analytics:read\",\"admin\"]");
    assert_true(json_equal(a, arr));
    assert_int_equal(gw_scopes_from_json(a, &s, bad, sizeof(bad)), WA_OK);
    assert_int_equal(s, GW_SCOPE_ADMIN | GW_SCOPE_ANALYTICS_READ);
    json_decref(a);
    json_decref(arr);
    arr = parse("[\"admin\", 3]");
    assert_int_equal(gw_scopes_from_json(arr, &s, bad, sizeof(bad)), WA_EINVAL);
    json_decref(arr);
}

static void
key_record__document_round_trip__render_hides_hash(void **state)
{
    struct gw_key_record rec = {0}, back;
    json_t *doc, *shown;

    (void)state;
    memcpy(rec.id, ID, sizeof(rec.id));
    memset(rec.hash, 'a', GW_HASH_HEX);
    snprintf(rec.name, sizeof(rec.name), "%s", "crm");
    rec.scopes = GW_SCOPE_MESSAGES_SEND;
    rec.rate_per_min = 100;
    rec.created_ms = 1767225600000; /* 2026-01-01T00:00:00Z */
    rec.expires_ms = 1767312000000;
    doc = gw_key_record_to_json(&rec);
    assert_non_null(doc);
    assert_string_equal(wa_json_str(doc, "created_at"), "2026-01-01T00:00:00.000Z");
    assert_true(json_is_null(json_object_get(doc, "revoked_at")));
    assert_int_equal(gw_key_record_from_json(doc, &back), WA_OK);
    assert_memory_equal(&rec, &back, sizeof(rec));
    shown = gw_key_record_render(&rec);
    assert_null(json_object_get(shown, "key_hash"));
    assert_string_equal(wa_json_str(shown, "id"), ID);
    json_object_del(doc, "key_hash");
    assert_int_equal(gw_key_record_from_json(doc, &back), WA_EPARSE);
    json_decref(doc);
    json_decref(shown);
}

static void
gcra__burst_then_steady_rate__rejections_cost_nothing(void **state)
{
    struct gw_gcra_policy p;
    struct gw_gcra_result r;
    int64_t tat = 0, now = 1000000000;
    int admitted = 0;

    (void)state;
    gw_gcra_policy_init(&p, 100, 0); /* 100/min: T = 600 ms, burst 10 */
    assert_int_equal(p.interval_us, 600000);
    assert_int_equal(p.tau_us, 9 * 600000);
    for (int i = 0; i < 10; i++) {
        gw_gcra_take(&p, &tat, now, &r);
        assert_true(r.allowed);
        assert_int_equal(r.remaining, 9 - i);
    }
    gw_gcra_take(&p, &tat, now, &r);
    assert_false(r.allowed);
    assert_int_equal(r.retry_after_us, 600000);
    for (int i = 0; i < 1000; i++) { /* hammering does not push the limit away */
        gw_gcra_take(&p, &tat, now + 599999, &r);
        assert_false(r.allowed);
    }
    gw_gcra_take(&p, &tat, now + 600000, &r);
    assert_true(r.allowed);
    /* a minute of requests every 10 ms from a fresh state: burst + rate, about 110 */
    tat = 0;
    for (int64_t t = 0; t < 60000000; t += 10000) {
        gw_gcra_take(&p, &tat, now + t, &r);
        admitted += r.allowed;
    }
    assert_in_range(admitted, 100, 110);
}

static void
local_limiter__share_per_replica__separate_keys(void **state)
{
    static struct gw_local_limiter l;
    struct gw_gcra_policy p;
    struct gw_gcra_result r;
    int a = 0, b = 0;

    (void)state;
    gw_gcra_policy_init(&p, 100 / 4, 1);
    for (int i = 0; i < 50; i++) {
        gw_local_take(&l, "wa.gw:rl:key:a", &p, 5000000, &r);
        a += r.allowed;
        gw_local_take(&l, "wa.gw:rl:key:b", &p, 5000000, &r);
        b += r.allowed;
    }
    assert_int_equal(a, 1);
    assert_int_equal(b, 1);
}

static void
message_check__valid_text__outbound_request_built(void **state)
{
    json_t *body = parse("{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                         "\"to\":\"+1 650 555 0001\",\"type\":\"text\",\"text\":{\"body\":\"hi\"},"
                         "\"category\":\"service\",\"metadata\":{\"crm\":42},\"priority\":3}");
    struct gw_body_check c;
    json_t *data = NULL;
    char contact[64];

    (void)state;
    gw_message_check(body, "R1", "100000000000001", &c, &data, contact, sizeof(contact));
    assert_int_equal(c.n, 0);
    assert_non_null(data);
    assert_string_equal(contact, "16505550001");
    assert_string_equal(wa_json_str(data, "request_id"), "R1");
    assert_string_equal(wa_json_str(data, "phone_number_id"), "100000000000001");
    assert_string_equal(wa_json_str(data, "to"), "16505550001");
    assert_string_equal(wa_json_path_str(data, "text.body"), "hi");
    assert_int_equal(json_integer_value(wa_json_path(data, "metadata.crm")), 42);
    assert_null(json_object_get(data, "messaging_product")); /* the Cloud API's, not the event's */
    json_decref(data);
    json_decref(body);
}

static bool
names(const struct gw_body_check *c, const char *pointer)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->errors[i].pointer, pointer) == 0) {
            return true;
        }
    }
    return false;
}

static void
message_check__several_invalid__every_field_named(void **state)
{
    json_t *body =
        parse("{\"to\":\"12ab\",\"type\":\"text\",\"text\":{\"body\":\"hi\"},"
              "\"category\":\"spam\",\"priority\":\"high\",\"not_before\":\"soon\","
              "\"phone_number_id\":\"x1\",\"colour\":\"red\",\"recipient_type\":\"group\"}");
    struct gw_body_check c;
    json_t *data = NULL;
    char contact[64];

    (void)state;
    gw_message_check(body, "R1", "1", &c, &data, contact, sizeof(contact));
    assert_null(data);
    assert_int_equal(c.n, 7);
    assert_true(names(&c, "/recipient_type"));
    assert_true(names(&c, "/to"));
    assert_true(names(&c, "/category"));
    assert_true(names(&c, "/priority"));
    assert_true(names(&c, "/not_before"));
    assert_true(names(&c, "/phone_number_id"));
    assert_true(names(&c, "/colour"));
    json_decref(body);
}

static void
message_check__not_before_beyond_30_days__named(void **state)
{
    char text[256];
    json_t *far, *near;
    struct gw_body_check c;
    json_t *data = NULL;
    char contact[64];
    unsigned long long now = (unsigned long long)wa_clock_wall_ms();

    (void)state;
    snprintf(text, sizeof(text),
             "{\"to\":\"16505550001\",\"type\":\"text\",\"text\":{\"body\":\"hi\"},"
             "\"not_before\":%llu}",
             now + 31ull * 24 * 3600 * 1000);
    far = parse(text);
    snprintf(text, sizeof(text),
             "{\"to\":\"16505550001\",\"type\":\"text\",\"text\":{\"body\":\"hi\"},"
             "\"not_before\":%llu}",
             now + 29ull * 24 * 3600 * 1000);
    near = parse(text);
    gw_message_check(far, "R1", "1", &c, &data, contact, sizeof(contact));
    assert_null(data);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.errors[0].pointer, "/not_before");
    assert_string_equal(c.errors[0].detail, "must be at most 30 days ahead");
    gw_message_check(near, "R1", "1", &c, &data, contact, sizeof(contact));
    assert_int_equal(c.n, 0);
    json_decref(data);
    json_decref(far);
    json_decref(near);
}

static void
message_check__type_body_against_cloud_api_rules__named(void **state)
{
    json_t *body = parse("{\"to\":\"16505550001\",\"type\":\"text\",\"text\":{}}");
    json_t *missing = parse("{\"to\":\"16505550001\",\"type\":\"image\"}");
    json_t *none = parse("[1]");
    struct gw_body_check c;
    json_t *data = NULL;
    char contact[64];

    (void)state;
    gw_message_check(body, "R1", "1", &c, &data, contact, sizeof(contact));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.errors[0].pointer, "/text");
    assert_non_null(strstr(c.errors[0].detail, "Cloud API error"));
    gw_message_check(missing, "R1", "1", &c, &data, contact, sizeof(contact));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.errors[0].pointer, "/image");
    gw_message_check(none, "R1", "1", &c, &data, contact, sizeof(contact));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.errors[0].pointer, "");
    json_decref(body);
    json_decref(missing);
    json_decref(none);
}

static void
fingerprint__key_order_and_spacing__same(void **state)
{
    json_t *a = parse("{\"to\":\"1\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}");
    json_t *b = parse("{ \"text\" : {\"body\":\"x\"}, \"type\":\"text\", \"to\":\"1\" }");
    json_t *d = parse("{\"to\":\"1\",\"type\":\"text\",\"text\":{\"body\":\"y\"}}");
    char fa[65], fb[65], fd[65];

    (void)state;
    gw_body_fingerprint(a, fa);
    gw_body_fingerprint(b, fb);
    gw_body_fingerprint(d, fd);
    assert_string_equal(fa, fb);
    assert_string_not_equal(fa, fd);
    json_decref(a);
    json_decref(b);
    json_decref(d);
}

static void
idempotency__keys_ids_decisions(void **state)
{
    char a[64], b[64], c[64];

    (void)state;
    assert_true(gw_idempotency_key_valid("4f7d1c2e-uuid"));
    assert_false(gw_idempotency_key_valid(""));
    assert_false(gw_idempotency_key_valid("with space"));
    gw_idempotency_request_id("key:a", "k1", a, sizeof(a));
    gw_idempotency_request_id("key:a", "k1", b, sizeof(b));
    gw_idempotency_request_id("key:b", "k1", c, sizeof(c));
    assert_string_equal(a, b);
    assert_string_not_equal(a, c); /* another client's key is another request */
    assert_int_equal(strlen(a), 44);
    assert_int_equal(gw_idem_decide("new", "", "f1"), GW_IDEM_NEW);
    assert_int_equal(gw_idem_decide("done", "f1", "f1"), GW_IDEM_REPLAY);
    assert_int_equal(gw_idem_decide("pending", "f1", "f1"), GW_IDEM_IN_PROGRESS);
    assert_int_equal(gw_idem_decide("pending", "f1", "f2"), GW_IDEM_MISMATCH);
    assert_int_equal(gw_idem_decide("done", "f1", "f2"), GW_IDEM_MISMATCH);
}

static void
click_to_chat__phone_forms_and_text__wa_me_url(void **state)
{
    char url[GW_LINK_URL_MAX];
    char *long_text = malloc(GW_LINK_TEXT_MAX + 2);

    (void)state;
    assert_int_equal(gw_click_to_chat_url("+1 (650) 555-0101", "Hi there! ½", url, sizeof(url)),
                     WA_OK);
    assert_string_equal(url, "https://wa.me/16505550101?text=Hi%20there%21%20%C2%BD");
    assert_int_equal(gw_click_to_chat_url("16505550101", NULL, url, sizeof(url)), WA_OK);
    assert_string_equal(url, "https://wa.me/16505550101");
    assert_int_equal(gw_click_to_chat_url("16505550101", "", url, sizeof(url)), WA_OK);
    assert_string_equal(url, "https://wa.me/16505550101");
    assert_int_equal(gw_click_to_chat_url("12ab", "x", url, sizeof(url)), WA_EINVAL);
    assert_int_equal(gw_click_to_chat_url(NULL, "x", url, sizeof(url)), WA_EINVAL);
    memset(long_text, 'a', GW_LINK_TEXT_MAX + 1);
    long_text[GW_LINK_TEXT_MAX + 1] = '\0';
    assert_int_equal(gw_click_to_chat_url("16505550101", long_text, url, sizeof(url)), WA_ETOOBIG);
    assert_int_equal(gw_click_to_chat_url("16505550101", "abc", url, 20), WA_ETOOBIG);
    free(long_text);
}

static void
profile_check__meta_rules__every_violation_named(void **state)
{
    json_t *ok =
        parse("{\"about\":\"Open 9-5\",\"vertical\":\"RETAIL\","
              "\"websites\":[\"https://example.com\"],\"messaging_product\":\"whatsapp\"}");
    json_t *bad = parse("{\"about\":7,\"vertical\":\"SPACE\",\"websites\":[\"ftp://x\"],"
                        "\"colour\":\"red\"}");
    struct gw_body_check c;

    (void)state;
    gw_profile_check(ok, &c);
    assert_int_equal(c.n, 0);
    gw_profile_check(bad, &c);
    assert_int_equal(c.n, 4);
    assert_true(names(&c, "/about"));
    assert_true(names(&c, "/vertical"));
    assert_true(names(&c, "/websites"));
    assert_true(names(&c, "/colour"));
    json_decref(ok);
    json_decref(bad);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(apikey_parse__well_formed__id_and_secret),
        cmocka_unit_test(apikey_parse__malformed__eauth),
        cmocka_unit_test(apikey_generate__parses_back__unique),
        cmocka_unit_test(key_verify__hash_expiry_revocation__verdicts),
        cmocka_unit_test(scopes__parse_and_render__round_trip_unknown_named),
        cmocka_unit_test(key_record__document_round_trip__render_hides_hash),
        cmocka_unit_test(gcra__burst_then_steady_rate__rejections_cost_nothing),
        cmocka_unit_test(local_limiter__share_per_replica__separate_keys),
        cmocka_unit_test(message_check__valid_text__outbound_request_built),
        cmocka_unit_test(message_check__several_invalid__every_field_named),
        cmocka_unit_test(message_check__not_before_beyond_30_days__named),
        cmocka_unit_test(message_check__type_body_against_cloud_api_rules__named),
        cmocka_unit_test(fingerprint__key_order_and_spacing__same),
        cmocka_unit_test(idempotency__keys_ids_decisions),
        cmocka_unit_test(click_to_chat__phone_forms_and_text__wa_me_url),
        cmocka_unit_test(profile_check__meta_rules__every_violation_named),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
