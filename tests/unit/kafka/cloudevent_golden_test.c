/*
 * cloudevent_golden_test.c: data-driven CloudEvents cases from tests/data/cloudevent.
 *
 * valid/<case>/input decodes, and re-encoding it gives valid/<case>/expected exactly (trailing
 * newline ignored). invalid/<case>/input is rejected with WA_EPARSE or WA_ETOOBIG, and the
 * error message contains the first line of invalid/<case>/expected.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/cloudevent.h"
#include "wa_test.h"

static char *
read_case(const char *kind, const char *name, const char *file, size_t *len)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s/%s/%s", CLOUDEVENT_DATA_DIR, kind, name, file);
    return wa_test_read_file(path, len);
}

static void
chomp(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
}

/* Runs check on every case directory; returns how many there were. */
static int
each_case(const char *kind, void (*check)(const char *name))
{
    char path[1024];
    struct dirent *de;
    DIR *dir;
    int n = 0;

    snprintf(path, sizeof(path), "%s/%s", CLOUDEVENT_DATA_DIR, kind);
    dir = opendir(path);
    assert_non_null(dir);
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        print_message("  %s/%s\n", kind, de->d_name);
        check(de->d_name);
        n++;
    }
    closedir(dir);
    return n;
}

static void
check_valid(const char *name)
{
    struct wa_cloudevent_doc *doc = NULL;
    struct wa_error error = {0};
    struct wa_buf out;
    size_t len;
    char *input = read_case("valid", name, "input", &len);
    char *expected = read_case("valid", name, "expected", NULL);

    assert_non_null(input);
    assert_non_null(expected);
    chomp(expected);
    if (wa_cloudevent_decode(input, len, &doc, &error) != WA_OK) {
        fail_msg("valid/%s rejected: %s", name, error.message);
    }
    wa_buf_init(&out, 0);
    assert_int_equal(wa_cloudevent_encode(&doc->ev, &out, NULL), WA_OK);
    if (strcmp(out.data, expected) != 0) {
        fail_msg("valid/%s:\n got      %s\n expected %s", name, out.data, expected);
    }
    wa_buf_cleanup(&out);
    wa_cloudevent_doc_free(doc);
    free(expected);
    free(input);
}

static void
check_invalid(const char *name)
{
    struct wa_cloudevent_doc *doc = NULL;
    struct wa_error error = {0};
    size_t len;
    char *input = read_case("invalid", name, "input", &len);
    char *expected = read_case("invalid", name, "expected", NULL);
    char *nl;
    enum wa_err err;

    assert_non_null(input);
    assert_non_null(expected);
    if ((nl = strchr(expected, '\n')) != NULL) {
        *nl = '\0';
    }
    err = wa_cloudevent_decode(input, len, &doc, &error);
    if (err == WA_OK) {
        wa_cloudevent_doc_free(doc);
        fail_msg("invalid/%s was accepted", name);
    }
    assert_true(err == WA_EPARSE || err == WA_ETOOBIG);
    assert_null(doc);
    if (strstr(error.message, expected) == NULL) {
        fail_msg("invalid/%s: error \"%s\" does not contain \"%s\"", name, error.message, expected);
    }
    free(expected);
    free(input);
}

static void
golden__valid_cases__decode_and_reencode_to_expected(void **state)
{
    (void)state;
    assert_true(each_case("valid", check_valid) > 0);
}

static void
golden__invalid_cases__rejected_with_expected_error(void **state)
{
    (void)state;
    assert_true(each_case("invalid", check_invalid) > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden__valid_cases__decode_and_reencode_to_expected),
        cmocka_unit_test(golden__invalid_cases__rejected_with_expected_error),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
