/*
 * json.c: the nesting pre-scan, typed getters, dotted paths and compact dumps over jansson.
 *
 * No state of its own: every function works on the values it is given, so it is thread-safe
 * as long as one json_t is not used by two threads at once (jansson's rule).
 */
#include "wa/json.h"

#include <stdlib.h>
#include <string.h>

size_t
wa_json_depth(const char *data, size_t len, size_t limit)
{
    size_t i, depth = 0, max = 0;
    bool in_str = false;

    for (i = 0; i < len; i++) {
        char c = data[i];

        if (in_str) {
            if (c == '\\') {
                i++; /* the escaped character can never end the string */
            } else if (c == '"') {
                in_str = false;
            }
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) {
                max = depth;
                if (max > limit) {
                    return max;
                }
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}

/* Returns obj[key] or NULL; also NULL when obj is not an object. */
static json_t *
member(const json_t *obj, const char *key)
{
    if (obj == NULL || key == NULL || !json_is_object(obj)) {
        return NULL;
    }
    return json_object_get(obj, key);
}

/* A C string view of a JSON string, or NULL if v is not a string or holds a NUL byte. */
static const char *
as_cstr(const json_t *v)
{
    const char *s;

    if (v == NULL || !json_is_string(v)) {
        return NULL;
    }
    s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) {
        return NULL;
    }
    return s;
}

const char *
wa_json_str(const json_t *obj, const char *key)
{
    return as_cstr(member(obj, key));
}

enum wa_err
wa_json_get_str(const json_t *obj, const char *key, size_t max_len, const char **out,
                struct wa_error *error)
{
    json_t *v = member(obj, key);
    const char *s;

    if (v == NULL) {
        return wa_error_set(error, WA_ENOTFOUND, "field \"%s\" is missing", key);
    }
    if ((s = as_cstr(v)) == NULL) {
        return wa_error_set(error, WA_EPARSE, "field \"%s\" must be a string without NUL", key);
    }
    if (json_string_length(v) > max_len) {
        return wa_error_set(error, WA_ETOOBIG, "field \"%s\" is longer than %zu bytes", key,
                            max_len);
    }
    *out = s;
    return WA_OK;
}

enum wa_err
wa_json_get_int64(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                  struct wa_error *error)
{
    json_t *v = member(obj, key);
    json_int_t n;

    if (v == NULL) {
        return wa_error_set(error, WA_ENOTFOUND, "field \"%s\" is missing", key);
    }
    if (!json_is_integer(v)) {
        return wa_error_set(error, WA_EPARSE, "field \"%s\" must be an integer", key);
    }
    n = json_integer_value(v);
    if (n < min || n > max) {
        return wa_error_set(error, WA_EPARSE, "field \"%s\" is %lld, outside [%lld, %lld]", key,
                            (long long)n, (long long)min, (long long)max);
    }
    *out = (int64_t)n;
    return WA_OK;
}

enum wa_err
wa_json_get_bool(const json_t *obj, const char *key, bool *out, struct wa_error *error)
{
    json_t *v = member(obj, key);

    if (v == NULL) {
        return wa_error_set(error, WA_ENOTFOUND, "field \"%s\" is missing", key);
    }
    if (!json_is_boolean(v)) {
        return wa_error_set(error, WA_EPARSE, "field \"%s\" must be true or false", key);
    }
    *out = json_is_true(v);
    return WA_OK;
}

enum wa_err
wa_json_get_object(const json_t *obj, const char *key, json_t **out, struct wa_error *error)
{
    json_t *v = member(obj, key);

    if (v == NULL) {
        return wa_error_set(error, WA_ENOTFOUND, "field \"%s\" is missing", key);
    }
    if (!json_is_object(v)) {
        return wa_error_set(error, WA_EPARSE, "field \"%s\" must be an object", key);
    }
    *out = v;
    return WA_OK;
}

enum wa_err
wa_json_get_array(const json_t *obj, const char *key, size_t max_items, json_t **out,
                  struct wa_error *error)
{
    json_t *v = member(obj, key);

    if (v == NULL) {
        return wa_error_set(error, WA_ENOTFOUND, "field \"%s\" is missing", key);
    }
    if (!json_is_array(v)) {
        return wa_error_set(error, WA_EPARSE, "field \"%s\" must be an array", key);
    }
    if (json_array_size(v) > max_items) {
        return wa_error_set(error, WA_ETOOBIG, "field \"%s\" has more than %zu items", key,
                            max_items);
    }
    *out = v;
    return WA_OK;
}

/* Parses seg[0..len) as a decimal array index; false if it is not one. */
static bool
parse_index(const char *seg, size_t len, size_t *out)
{
    size_t i, v = 0;

    if (len == 0 || len > 9) { /* 9 digits is far beyond any array we accept */
        return false;
    }
    for (i = 0; i < len; i++) {
        if (seg[i] < '0' || seg[i] > '9') {
            return false;
        }
        v = v * 10 + (size_t)(seg[i] - '0');
    }
    *out = v;
    return true;
}

json_t *
wa_json_path(const json_t *root, const char *path)
{
    json_t *cur = (json_t *)root; /* jansson's getters are not const-correct */
    const char *seg = path;

    if (root == NULL || path == NULL) {
        return NULL;
    }
    while (cur != NULL) {
        const char *dot = strchr(seg, '.');
        size_t len = dot != NULL ? (size_t)(dot - seg) : strlen(seg);
        size_t idx;

        if (json_is_object(cur)) {
            cur = json_object_getn(cur, seg, len);
        } else if (json_is_array(cur) && parse_index(seg, len, &idx)) {
            cur = json_array_get(cur, idx);
        } else {
            cur = NULL;
        }
        if (dot == NULL) {
            break;
        }
        seg = dot + 1;
    }
    return cur;
}

const char *
wa_json_path_str(const json_t *root, const char *path)
{
    return as_cstr(wa_json_path(root, path));
}

/* Both dumps go through wa_json_write (write.c), so reals are written as sent wherever the
 * tree serialises a document. wa_buf's memory is malloc'd, not jansson's allocator, so free()
 * is right even inside a JSON arena scope. UTF-8 is kept as is (no JSON_ENSURE_ASCII). */
char *
wa_json_dump(const json_t *v)
{
    struct wa_buf b;

    if (v == NULL) {
        return NULL;
    }
    wa_buf_init(&b, 0);
    if (wa_json_write(&b, v) != WA_OK) {
        wa_buf_cleanup(&b);
        return NULL;
    }
    return wa_buf_steal(&b);
}

enum wa_err
wa_json_dump_buf(const json_t *v, struct wa_buf *out)
{
    return wa_json_write(out, v);
}
