/* wa_test.c: test helpers: environment endpoints, unique prefixes, running the loop. */
#include "wa_test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/clock.h"
#include "wa/id.h"

const char *
wa_test_env(const char *name)
{
    const char *v = getenv(name);

    if (v == NULL || *v == '\0') {
        fail_msg("%s is not set: run the tests through `make test`, which starts the test "
                 "infrastructure and exports its endpoints",
                 name);
    }
    return v;
}

const char *
wa_test_env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : dflt;
}

void
wa_test_unique_prefix(char *out, size_t size)
{
    char id[WA_ULID_LEN];

    wa_ulid_new(id);
    snprintf(out, size, "t%s.", id);
}

struct until {
    struct wa_loop *loop;
    wa_test_cond_fn cond;
    void *arg;
    uint64_t deadline;
    bool met;
};

static void
on_tick(struct wa_timer *t, void *arg)
{
    struct until *u = arg;

    (void)t;
    if ((u->cond != NULL && u->cond(u->arg)) || wa_clock_mono_ms() >= u->deadline) {
        u->met = u->cond != NULL && u->cond(u->arg);
        wa_loop_stop(u->loop);
    }
}

bool
wa_test_run_until(struct wa_loop *loop, wa_test_cond_fn cond, void *arg, uint64_t timeout_ms)
{
    struct until u = {loop, cond, arg, wa_clock_mono_ms() + timeout_ms, false};
    struct wa_timer *t = wa_timer_new(loop, on_tick, &u);

    assert_non_null(t);
    wa_timer_start(t, 0, 2);
    wa_loop_run(loop);
    wa_timer_free(t);
    return u.met;
}

void
wa_test_run_for(struct wa_loop *loop, uint64_t ms)
{
    wa_test_run_until(loop, NULL, NULL, ms);
}

size_t
wa_test_count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    if (d == NULL) {
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    }
    closedir(d);
    return n;
}

char *
wa_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long size;

    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size <= (64L << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)size + 1)) != NULL) {
        if (fread(data, 1, (size_t)size, f) != (size_t)size) {
            free(data);
            data = NULL;
        } else {
            data[size] = '\0';
            if (len != NULL) {
                *len = (size_t)size;
            }
        }
    }
    fclose(f);
    return data;
}
