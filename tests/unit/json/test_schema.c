/*
 * test_schema.c: libs/json's declarative validation: every violation reported with its JSON
 * pointer (types, required, enums, lengths in characters, ranges, patterns, nested objects and
 * arrays, unknown members), and bad tables refused when the validator is made.
 */
#include <string.h>

#include "wa/json.h"
#include "wa_test.h"

static const char *const priorities[] = {"low", "normal", "high", NULL};

static const struct wa_json_schema address_props[] = {
    {.name = "city",
     .types = WA_JSON_T_STRING,
     .flags = WA_JSON_REQUIRED,
     .min_len = 1,
     .max_len = 5},
    {.name = "zip", .types = WA_JSON_T_STRING, .pattern = "[0-9]{5}", .detail = "five digits"},
};

static const struct wa_json_schema tag = {.types = WA_JSON_T_STRING, .min_len = 1, .max_len = 8};

static const struct wa_json_schema contact_props[] = {
    {.name = "phone",
     .types = WA_JSON_T_STRING,
     .flags = WA_JSON_REQUIRED,
     .pattern = "\\+[1-9][0-9]{7,14}"},
    {.name = "name", .types = WA_JSON_T_STRING | WA_JSON_T_NULL, .max_len = 4},
    {.name = "priority", .types = WA_JSON_T_STRING, .enums = priorities},
    {.name = "age",
     .types = WA_JSON_T_INT,
     .flags = WA_JSON_MIN | WA_JSON_MAX,
     .min = 0,
     .max = 150},
    {.name = "score", .types = WA_JSON_T_NUMBER, .flags = WA_JSON_MAX, .max = 1.5},
    {.name = "vip", .types = WA_JSON_T_BOOL},
    {.name = "tags", .types = WA_JSON_T_ARRAY, .max_len = 3, .items = &tag},
    {.name = "address", .types = WA_JSON_T_OBJECT, .props = address_props, .nprops = 2},
    {.name = "extra", .types = WA_JSON_T_OBJECT, .flags = WA_JSON_ALLOW_UNKNOWN},
};

static const struct wa_json_schema contact = {
    .types = WA_JSON_T_OBJECT, .props = contact_props, .nprops = WA_ARRAY_LEN(contact_props)};

static json_t *
doc(const char *text)
{
    json_t *d = NULL;

    assert_int_equal(wa_json_parse(text, strlen(text), 0, &d, NULL), WA_OK);
    return d;
}

/* The detail reported for pointer, or NULL. */
static const char *
detail_of(const struct wa_json_violations *v, const char *pointer)
{
    for (size_t i = 0; i < v->n; i++) {
        if (strcmp(v->v[i].pointer, pointer) == 0) {
            return v->v[i].detail;
        }
    }
    return NULL;
}

static void
validate__valid_document__ok(void **state)
{
    struct wa_json_validator *val = NULL;
    struct wa_json_violations v;
    json_t *d = doc("{\"phone\":\"+15551234567\",\"name\":\"\\u00c9mil\",\"priority\":\"high\","
                    "\"age\":150,\"score\":1.5,\"vip\":false,\"tags\":[\"a\",\"b\"],"
                    "\"address\":{\"city\":\"Bonn\",\"zip\":\"53111\"},\"extra\":{\"any\":[1]}}");

    (void)state;
    assert_int_equal(wa_json_validator_new(&contact, &val, NULL), WA_OK);
    assert_int_equal(wa_json_validate(val, d, &v), WA_OK);
    assert_int_equal(v.n, 0);
    json_decref(d);
    d = doc("{\"phone\":\"+15551234567\",\"name\":null}");
    assert_int_equal(wa_json_validate(val, d, &v), WA_OK);
    json_decref(d);
    wa_json_validator_free(val);
}

static void
validate__many_faults__each_named_by_pointer(void **state)
{
    struct wa_json_validator *val = NULL;
    struct wa_json_violations v;
    json_t *d = doc("{\"name\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\",\"priority\":\"urgent\","
                    "\"age\":1.0,\"score\":2,\"vip\":\"yes\",\"tags\":[\"ok\",\"\",7],"
                    "\"address\":{\"zip\":\"5311\",\"street\":\"x\"},\"a/b~c\":1}");

    (void)state;
    assert_int_equal(wa_json_validator_new(&contact, &val, NULL), WA_OK);
    assert_int_equal(wa_json_validate(val, d, &v), WA_EINVAL);
    assert_false(v.truncated);
    assert_string_equal(detail_of(&v, "/phone"), "is required");
    assert_string_equal(detail_of(&v, "/name"), "must be 0 to 4 characters long");
    assert_string_equal(detail_of(&v, "/priority"), "must be one of low, normal, high");
    assert_string_equal(detail_of(&v, "/age"), "must be an integer");
    assert_string_equal(detail_of(&v, "/score"), "must be at most 1.5");
    assert_string_equal(detail_of(&v, "/vip"), "must be a boolean");
    assert_string_equal(detail_of(&v, "/tags/1"), "must be 1 to 8 characters long");
    assert_string_equal(detail_of(&v, "/tags/2"), "must be a string");
    assert_null(detail_of(&v, "/tags/0"));
    assert_string_equal(detail_of(&v, "/address/city"), "is required");
    assert_string_equal(detail_of(&v, "/address/zip"), "five digits");
    assert_string_equal(detail_of(&v, "/address/street"), "is not a known member");
    assert_string_equal(detail_of(&v, "/a~1b~0c"), "is not a known member");
    assert_int_equal(v.n, 12);
    json_decref(d);
    wa_json_validator_free(val);
}

static void
validate__wrong_root_and_counts__reported(void **state)
{
    static const struct wa_json_schema list = {
        .types = WA_JSON_T_ARRAY, .min_len = 1, .max_len = 2, .items = &tag};
    static const struct wa_json_schema small = {.types = WA_JSON_T_ARRAY, .items = &tag};
    struct wa_json_validator *val = NULL, *val2 = NULL;
    struct wa_json_violations v;
    json_t *d = doc("[]");
    json_t *big = json_array();

    (void)state;
    assert_int_equal(wa_json_validator_new(&list, &val, NULL), WA_OK);
    assert_int_equal(wa_json_validate(val, d, &v), WA_EINVAL);
    assert_string_equal(detail_of(&v, ""), "must have at least 1 items");
    json_decref(d);
    d = doc("{\"a\":1}");
    assert_int_equal(wa_json_validate(val, d, &v), WA_EINVAL);
    assert_string_equal(detail_of(&v, ""), "must be an array");
    assert_int_equal(wa_json_validate(val, NULL, &v), WA_EINVAL);
    json_decref(d);
    /* more bad items than the list holds: the first are kept, truncated is set */
    for (int i = 0; i < 100; i++) {
        json_array_append_new(big, json_integer(i));
    }
    assert_int_equal(wa_json_validator_new(&small, &val2, NULL), WA_OK);
    assert_int_equal(wa_json_validate(val2, big, &v), WA_EINVAL);
    assert_int_equal(v.n, WA_JSON_VIOLATIONS_MAX);
    assert_true(v.truncated);
    assert_string_equal(v.v[0].pointer, "/0");
    json_decref(big);
    wa_json_validator_free(val);
    wa_json_validator_free(val2);
}

static void
validator__bad_tables__refused_with_the_node(void **state)
{
    static const struct wa_json_schema bad_pattern_props[] = {
        {.name = "x", .types = WA_JSON_T_STRING, .pattern = "(unclosed"},
    };
    static const struct wa_json_schema bad_pattern = {
        .types = WA_JSON_T_OBJECT, .props = bad_pattern_props, .nprops = 1};
    static const struct wa_json_schema dup_props[] = {
        {.name = "x", .types = WA_JSON_T_STRING},
        {.name = "x", .types = WA_JSON_T_INT},
    };
    static const struct wa_json_schema dup = {
        .types = WA_JSON_T_OBJECT, .props = dup_props, .nprops = 2};
    static const struct wa_json_schema no_type = {.types = 0};
    static const struct wa_json_schema lengths = {
        .types = WA_JSON_T_STRING, .min_len = 5, .max_len = 2};
    struct wa_json_validator *val = NULL;
    struct wa_error error = {0};

    (void)state;
    assert_int_equal(wa_json_validator_new(&bad_pattern, &val, &error), WA_EINVAL);
    assert_non_null(strstr(error.message, "/x"));
    assert_null(val);
    assert_int_equal(wa_json_validator_new(&dup, &val, &error), WA_EINVAL);
    assert_non_null(strstr(error.message, "\"x\" twice"));
    assert_int_equal(wa_json_validator_new(&no_type, &val, &error), WA_EINVAL);
    assert_int_equal(wa_json_validator_new(&lengths, &val, &error), WA_EINVAL);
    assert_int_equal(wa_json_validator_new(NULL, &val, &error), WA_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(validate__valid_document__ok),
        cmocka_unit_test(validate__many_faults__each_named_by_pointer),
        cmocka_unit_test(validate__wrong_root_and_counts__reported),
        cmocka_unit_test(validator__bad_tables__refused_with_the_node),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
