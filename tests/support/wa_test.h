/*
 * wa_test.h: helpers shared by the tests (not part of the product).
 *
 * Integration tests talk to real servers; their endpoints come from the environment that
 * `make test` exports. A missing endpoint is a test failure, never a silent skip.
 */
#ifndef WA_TEST_H
#define WA_TEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "wa/loop.h"

/* Returns the variable's value; fails the test (with a message) when it is unset. */
const char *wa_test_env(const char *name);
/* Returns the variable's value or dflt. */
const char *wa_test_env_or(const char *name, const char *dflt);
/* Writes a unique topic prefix such as "t01JD...X." into out (size >= 40). */
void wa_test_unique_prefix(char *out, size_t size);

/* Runs the loop until cond(arg) is true or timeout_ms passes; returns cond's last value. */
typedef bool (*wa_test_cond_fn)(void *arg);
bool wa_test_run_until(struct wa_loop *loop, wa_test_cond_fn cond, void *arg, uint64_t timeout_ms);
/* Runs the loop for ms milliseconds. */
void wa_test_run_for(struct wa_loop *loop, uint64_t ms);

/* Number of entries of directory dir whose name starts with prefix (0 when dir is missing). */
size_t wa_test_count_files(const char *dir, const char *prefix);

/* Reads a whole file (max 64 MiB) into a new NUL-terminated buffer; free with free(). */
char *wa_test_read_file(const char *path, size_t *len);

#endif
