/*
 * fuzz_json_parse.c: libFuzzer driver for wa_json_parse() (libs/json), the entry point of every
 * JSON body and event wabridge reads. Invariants checked beyond "no crash, no sanitizer report":
 * an error leaves *out NULL; an accepted document is an object or array no deeper than the
 * limit, and the pre-scan never counts less than its real depth; a tighter limit never accepts
 * what a looser one rejects; dump and re-parse give an equal document; a failed bounded dump
 * leaves the buffer unchanged; the typed getters and wa_json_path() never crash on a member;
 * and the reader agrees with jansson's json_loadb: the same verdict and, when accepted, the same
 * document and dump (a NUL byte, which jansson sometimes skips, is always refused).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/json.h"

#define FUZZ_DEPTH 6 /* small, so the limit path is reached often */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Real nesting depth of v: containers count one each, like wa_json_depth(). */
static size_t
tree_depth(const json_t *v)
{
    size_t max = 0, i;
    const char *key;
    json_t *child;

    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, child)
        {
            size_t d = tree_depth(child);
            max = d > max ? d : max;
        }
        return max + 1;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, child)
        {
            size_t d = tree_depth(child);
            max = d > max ? d : max;
        }
        return max + 1;
    }
    return 0;
}

/* Runs every getter on every member of an object; results only need to be consistent. */
static void
probe_getters(const json_t *obj)
{
    const char *key;
    json_t *child;

    json_object_foreach((json_t *)obj, key, child)
    {
        const char *s = NULL;
        json_t *j = NULL;
        int64_t n = 0;
        bool b = false;

        if (wa_json_get_str(obj, key, 16, &s, NULL) == WA_OK &&
            (s == NULL || strlen(s) > 16 || s != wa_json_str(obj, key))) {
            abort();
        }
        if (wa_json_get_int64(obj, key, -1000, 1000, &n, NULL) == WA_OK &&
            (n < -1000 || n > 1000)) {
            abort();
        }
        (void)wa_json_get_bool(obj, key, &b, NULL);
        if (wa_json_get_object(obj, key, &j, NULL) == WA_OK && !json_is_object(j)) {
            abort();
        }
        if (wa_json_get_array(obj, key, 2, &j, NULL) == WA_OK &&
            (!json_is_array(j) || json_array_size(j) > 2)) {
            abort();
        }
        /* A key without '.' addresses its member directly. */
        if (strchr(key, '.') == NULL && wa_json_path(obj, key) != child) {
            abort();
        }
        if (json_is_string(child)) {
            (void)wa_json_path_str(obj, json_string_value(child));
        }
    }
}

static void
check_dump(const json_t *root)
{
    struct wa_buf small;
    char *text = wa_json_dump(root);
    json_t *again = NULL;

    if (text == NULL) {
        abort();
    }
    if (wa_json_parse(text, strlen(text), FUZZ_DEPTH, &again, NULL) != WA_OK ||
        !json_equal((json_t *)root, again)) {
        abort();
    }
    json_decref(again);
    /* A bounded buffer holding a prefix: a dump that does not fit must roll back. */
    wa_buf_init(&small, 64);
    if (wa_buf_append_str(&small, "prefix:") != WA_OK) {
        abort();
    }
    if (wa_json_dump_buf(root, &small) != WA_OK) {
        if (small.len != 7 || memcmp(small.data, "prefix:", 8) != 0) {
            abort();
        }
    } else if (small.len != 7 + strlen(text) || memcmp(small.data + 7, text, strlen(text)) != 0) {
        abort();
    }
    wa_buf_cleanup(&small);
    free(text);
}

/* The verdict and document of wa_json_parse (loose limit) against json_loadb's. */
static void
check_against_jansson(const char *text, size_t size, enum wa_err err, const json_t *ours)
{
    json_t *theirs;

    if (memchr(text, '\0', size) != NULL) {
        if (err == WA_OK) {
            abort();
        }
        return;
    }
    if (err == WA_ELIMIT) {
        return;
    }
    theirs = json_loadb(text, size, 0, NULL);
    if ((err == WA_OK) != (theirs != NULL)) {
        abort();
    }
    {
        /* the unique-keys reader against JSON_REJECT_DUPLICATES: the same verdict */
        json_t *u = NULL, *ju = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);

        if ((wa_json_parse_unique(text, size, 0, &u, NULL) == WA_OK) != (ju != NULL) ||
            (u != NULL && !json_equal(u, ju))) {
            abort();
        }
        json_decref(u);
        json_decref(ju);
    }
    if (theirs != NULL) {
        char *a = wa_json_dump(ours), *b = wa_json_dump(theirs);

        if (!json_equal((json_t *)ours, theirs) || a == NULL || b == NULL || strcmp(a, b) != 0) {
            abort();
        }
        free(a);
        free(b);
        json_decref(theirs);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct wa_error error = {0};
    json_t *root = (json_t *)1, *loose = NULL;
    enum wa_err err, err_loose;

    err = wa_json_parse(text, size, FUZZ_DEPTH, &root, &error);
    err_loose = wa_json_parse(text, size, 0, &loose, NULL);
    check_against_jansson(text, size, err_loose, loose);
    if (err != WA_OK) {
        if (root != NULL || error.code != err || error.message[0] == '\0') {
            abort();
        }
        if (err == WA_ELIMIT && wa_json_depth(text, size, FUZZ_DEPTH) <= FUZZ_DEPTH) {
            abort();
        }
        json_decref(loose);
        return 0;
    }
    if (root == NULL || !(json_is_object(root) || json_is_array(root)) || err_loose != WA_OK ||
        !json_equal(root, loose)) {
        abort();
    }
    /* The pre-scan may count more: a duplicate key's replaced value is nesting jansson drops. */
    if (tree_depth(root) > FUZZ_DEPTH ||
        wa_json_depth(text, size, WA_JSON_DEPTH_DEFAULT) < tree_depth(root)) {
        abort();
    }
    if (json_is_object(root)) {
        probe_getters(root);
    }
    (void)wa_json_path(root, "0.a.1");
    check_dump(root);
    json_decref(loose);
    json_decref(root);
    return 0;
}
