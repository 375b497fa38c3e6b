/* test_log.c: unit tests of wa/log.h: lines are valid JSON with context; level filtering. */
#include "wa_test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "wa/log.h"

static int pipe_fds[2] = {-1, -1};

static int
setup(void **state)
{
    (void)state;
    if (pipe(pipe_fds) != 0) {
        return -1;
    }
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    wa_log_set_fd(pipe_fds[1]);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    wa_log_set_fd(1);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return 0;
}

/* Reads everything written so far (non-blocking). Returns a new string; free with free(). */
static char *
drain(void)
{
    static char buf[65536];
    ssize_t n = read(pipe_fds[0], buf, sizeof(buf) - 1);

    if (n < 0) {
        n = 0;
    }
    buf[n] = '\0';
    return strdup(buf);
}

/* Parses one line (must be the only one) as a JSON object. */
static json_t *
parse_line(const char *text)
{
    json_error_t jerr;
    size_t len = strlen(text);
    json_t *v;

    assert_true(len > 0);
    assert_int_equal(text[len - 1], '\n');
    assert_null(memchr(text, '\n', len - 1)); /* exactly one line */
    v = json_loadb(text, len, 0, &jerr);
    if (v == NULL) {
        fail_msg("log line is not JSON: %s (%s)", text, jerr.text);
    }
    assert_true(json_is_object(v));
    return v;
}

static void
write__line_is_json_with_msg_and_ids(void **state)
{
    struct wa_log_ctx ctx = {"req-123", "trace-9", NULL};
    json_t *v;
    char *text;

    (void)state;
    wa_log_init("test-svc", WA_LOG_DEBUG);
    wa_log_info(&ctx, "accepted %d events from %s", 3, "meta");
    text = drain();
    v = parse_line(text);
    assert_string_equal(json_string_value(json_object_get(v, "msg")),
                        "accepted 3 events from meta");
    assert_string_equal(json_string_value(json_object_get(v, "request_id")), "req-123");
    assert_string_equal(json_string_value(json_object_get(v, "trace_id")), "trace-9");
    assert_null(json_object_get(v, "event_id"));
    assert_string_equal(json_string_value(json_object_get(v, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(v, "svc")), "test-svc");
    assert_true(json_is_string(json_object_get(v, "ts")));
    json_decref(v);
    free(text);
}

static void
write__hostile_message__still_valid_json(void **state)
{
    struct wa_log_ctx ctx = {"id\"with\\quotes\n", NULL, "ev\xff"};
    json_t *v;
    char *text;

    (void)state;
    wa_log_init("test-svc", WA_LOG_DEBUG);
    wa_log_warn(&ctx, "quote \" backslash \\ newline \n tab \t ctl \x01 bad \xc3 arabic "
                      "\xd9\x85\xd8\xb1 emoji \xf0\x9f\x98\x80");
    text = drain();
    v = parse_line(text);
    assert_string_equal(json_string_value(json_object_get(v, "msg")),
                        "quote \" backslash \\ newline \n tab \t ctl \x01 bad \xef\xbf\xbd arabic "
                        "\xd9\x85\xd8\xb1 emoji \xf0\x9f\x98\x80");
    assert_string_equal(json_string_value(json_object_get(v, "request_id")), "id\"with\\quotes\n");
    assert_string_equal(json_string_value(json_object_get(v, "event_id")), "ev\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(v, "level")), "warn");
    json_decref(v);
    free(text);
}

static void
write__very_long_message__truncated_one_line(void **state)
{
    char *big = malloc(100000), *text;
    json_t *v;

    (void)state;
    memset(big, 'a', 99999);
    big[99999] = '\0';
    wa_log_init("test-svc", WA_LOG_DEBUG);
    wa_log_error(NULL, "%s", big);
    text = drain();
    v = parse_line(text);
    assert_true(json_string_length(json_object_get(v, "msg")) < 99999);
    json_decref(v);
    free(text);
    free(big);
}

static int evaluations;

static int
counted(void)
{
    return ++evaluations;
}

static void
level__below_minimum__arguments_not_evaluated(void **state)
{
    char *text;

    (void)state;
    evaluations = 0;
    wa_log_init("test-svc", WA_LOG_WARN);
    wa_log_debug(NULL, "%d", counted());
    wa_log_info(NULL, "%d", counted());
    assert_int_equal(evaluations, 0);
    text = drain();
    assert_string_equal(text, ""); /* and nothing written */
    free(text);
    wa_log_warn(NULL, "%d", counted());
    wa_log_error(NULL, "%d", counted());
    assert_int_equal(evaluations, 2);
    text = drain();
    assert_non_null(strstr(text, "\"msg\":\"1\""));
    assert_non_null(strstr(text, "\"msg\":\"2\""));
    free(text);
    assert_false(wa_log_enabled(WA_LOG_INFO));
    assert_true(wa_log_enabled(WA_LOG_ERROR));
}

static void
level_parse__names(void **state)
{
    enum wa_log_level l = WA_LOG_ERROR;

    (void)state;
    assert_int_equal(wa_log_level_parse("debug", &l), WA_OK);
    assert_int_equal(l, WA_LOG_DEBUG);
    assert_int_equal(wa_log_level_parse("WARNING", &l), WA_OK);
    assert_int_equal(l, WA_LOG_WARN);
    assert_int_equal(wa_log_level_parse("loud", &l), WA_EINVAL);
}

static void
limit__repeats_within_interval__suppressed_and_counted(void **state)
{
    struct wa_log_limit lim = {60000, 0, 0};
    uint64_t skipped = 99;

    (void)state;
    assert_true(wa_log_limit_pass(&lim, &skipped));
    assert_int_equal(skipped, 0);
    assert_false(wa_log_limit_pass(&lim, &skipped));
    assert_false(wa_log_limit_pass(&lim, &skipped));
    assert_int_equal(lim.suppressed, 2);
    lim.last_ms -= 60000; /* as if the interval had passed */
    assert_true(wa_log_limit_pass(&lim, &skipped));
    assert_int_equal(skipped, 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(write__line_is_json_with_msg_and_ids),
        cmocka_unit_test(write__hostile_message__still_valid_json),
        cmocka_unit_test(write__very_long_message__truncated_one_line),
        cmocka_unit_test(level__below_minimum__arguments_not_evaluated),
        cmocka_unit_test(level_parse__names),
        cmocka_unit_test(limit__repeats_within_interval__suppressed_and_counted),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
