/*
 * schema.c: declarative validation of JSON documents against static schema tables
 * (wa/json.h, "declarative validation"). Every violation is collected with its RFC 6901
 * pointer, up to WA_JSON_VIOLATIONS_MAX.
 *
 * A validator is made once (the table checked, the patterns compiled with regcomp) and is
 * read-only afterwards: regexec on a compiled pattern is thread-safe, so wa_json_validate()
 * may run on any thread. Recursion follows the schema tree, which is finite and static, so
 * the depth is bounded by the table, never by the input.
 */
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/json.h"
#include "wa/utf8.h"

#define TABLE_DEPTH_MAX 32

struct pattern {
    const char *source; /* the node's pattern (identity: the table is static) */
    regex_t re;
};

struct wa_json_validator {
    const struct wa_json_schema *root;
    struct pattern *patterns;
    size_t npatterns;
};

/* ---- building ---- */

static enum wa_err
add_pattern(struct wa_json_validator *v, const char *source, const char *where,
            struct wa_error *error)
{
    struct pattern *p;
    char *anchored;
    size_t len = strlen(source);
    int rc;

    for (size_t i = 0; i < v->npatterns; i++) {
        if (v->patterns[i].source == source) {
            return WA_OK;
        }
    }
    p = realloc(v->patterns, (v->npatterns + 1) * sizeof(*p));
    if (p == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    v->patterns = p;
    anchored = malloc(len + 5);
    if (anchored == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    snprintf(anchored, len + 5, "^(%s)$", source);
    rc = regcomp(&p[v->npatterns].re, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (rc != 0) {
        return wa_error_set(error, WA_EINVAL, "schema %s: pattern \"%s\" does not compile",
                            where[0] != '\0' ? where : "(root)", source);
    }
    p[v->npatterns++].source = source;
    return WA_OK;
}

static enum wa_err
check_node(struct wa_json_validator *v, const struct wa_json_schema *s, const char *where,
           int depth, struct wa_error *error)
{
    char sub[WA_JSON_POINTER_MAX];
    enum wa_err err;
    const char *w = where[0] != '\0' ? where : "(root)";

    if (depth > TABLE_DEPTH_MAX) {
        return wa_error_set(error, WA_EINVAL, "schema %s: nested deeper than %d", w,
                            TABLE_DEPTH_MAX);
    }
    if ((s->types & WA_JSON_T_ANY) == 0 || (s->types & ~WA_JSON_T_ANY) != 0) {
        return wa_error_set(error, WA_EINVAL, "schema %s: types must be WA_JSON_T_* flags", w);
    }
    if (s->max_len != 0 && s->min_len > s->max_len) {
        return wa_error_set(error, WA_EINVAL, "schema %s: min_len above max_len", w);
    }
    if ((s->flags & WA_JSON_MIN) && (s->flags & WA_JSON_MAX) && s->min > s->max) {
        return wa_error_set(error, WA_EINVAL, "schema %s: min above max", w);
    }
    if (s->nprops > 0 && s->props == NULL) {
        return wa_error_set(error, WA_EINVAL, "schema %s: nprops without props", w);
    }
    if (s->pattern != NULL && (err = add_pattern(v, s->pattern, where, error)) != WA_OK) {
        return err;
    }
    for (size_t i = 0; i < s->nprops; i++) {
        const struct wa_json_schema *p = &s->props[i];

        if (p->name == NULL) {
            return wa_error_set(error, WA_EINVAL, "schema %s: member %zu has no name", w, i);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->props[j].name, p->name) == 0) {
                return wa_error_set(error, WA_EINVAL, "schema %s: member \"%s\" twice", w, p->name);
            }
        }
        snprintf(sub, sizeof(sub), "%s/%s", where, p->name);
        if ((err = check_node(v, p, sub, depth + 1, error)) != WA_OK) {
            return err;
        }
    }
    if (s->items != NULL) {
        snprintf(sub, sizeof(sub), "%s/*", where);
        if ((err = check_node(v, s->items, sub, depth + 1, error)) != WA_OK) {
            return err;
        }
    }
    return WA_OK;
}

enum wa_err
wa_json_validator_new(const struct wa_json_schema *root, struct wa_json_validator **out,
                      struct wa_error *error)
{
    struct wa_json_validator *v;
    enum wa_err err;

    *out = NULL;
    if (root == NULL) {
        return wa_error_set(error, WA_EINVAL, "no schema");
    }
    v = calloc(1, sizeof(*v));
    if (v == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    v->root = root;
    if ((err = check_node(v, root, "", 0, error)) != WA_OK) {
        wa_json_validator_free(v);
        return err;
    }
    *out = v;
    return WA_OK;
}

void
wa_json_validator_free(struct wa_json_validator *v)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < v->npatterns; i++) {
        regfree(&v->patterns[i].re);
    }
    free(v->patterns);
    free(v);
}

/* ---- validating ---- */

void
wa_json_violation_add(struct wa_json_violations *out, const char *pointer, const char *fmt, ...)
{
    struct wa_json_violation *x;
    va_list ap;

    if (out->n >= WA_JSON_VIOLATIONS_MAX) {
        out->truncated = true;
        return;
    }
    x = &out->v[out->n++];
    snprintf(x->pointer, sizeof(x->pointer), "%s", pointer);
    va_start(ap, fmt);
    vsnprintf(x->detail, sizeof(x->detail), fmt, ap);
    va_end(ap);
}

/* A node's own detail when it has one, else the generated text. */
#define VIOLATION(out, s, ptr, ...)                             \
    do {                                                        \
        if ((s)->detail != NULL) {                              \
            wa_json_violation_add(out, ptr, "%s", (s)->detail); \
        } else {                                                \
            wa_json_violation_add(out, ptr, __VA_ARGS__);       \
        }                                                       \
    } while (0)

/* Appends "/" and key escaped per RFC 6901 (~ -> ~0, / -> ~1) to the pointer of len bytes.
 * Returns the new length; a pointer that would overflow ends in "..." instead. */
static size_t
pointer_push(char *ptr, size_t len, const char *key)
{
    size_t o = len;

    if (o + 1 >= WA_JSON_POINTER_MAX) {
        return len;
    }
    ptr[o++] = '/';
    for (const char *k = key; *k != '\0'; k++) {
        const char *rep = *k == '~' ? "~0" : *k == '/' ? "~1" : NULL;
        size_t need = rep != NULL ? 2 : 1;

        if (o + need + 4 >= WA_JSON_POINTER_MAX) {
            memcpy(ptr + o, "...", 4);
            return o + 3;
        }
        if (rep != NULL) {
            memcpy(ptr + o, rep, 2);
        } else {
            ptr[o] = *k;
        }
        o += need;
    }
    ptr[o] = '\0';
    return o;
}

static const char *
types_text(unsigned types, char *buf, size_t size)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {WA_JSON_T_OBJECT, "an object"}, {WA_JSON_T_ARRAY, "an array"},
        {WA_JSON_T_STRING, "a string"},  {WA_JSON_T_NUMBER, "a number"},
        {WA_JSON_T_INT, "an integer"},   {WA_JSON_T_BOOL, "a boolean"},
        {WA_JSON_T_NULL, "null"},
    };
    size_t o = 0;
    unsigned seen = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < WA_ARRAY_LEN(names); i++) {
        if ((types & names[i].bit) == names[i].bit && (seen & names[i].bit) == 0) {
            int w = snprintf(buf + o, size - o, "%s%s", o > 0 ? " or " : "", names[i].name);

            if (w < 0 || (size_t)w >= size - o) {
                break;
            }
            o += (size_t)w;
            seen |= names[i].bit;
        }
    }
    return buf;
}

static unsigned
type_of(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return WA_JSON_T_OBJECT;
    case JSON_ARRAY:
        return WA_JSON_T_ARRAY;
    case JSON_STRING:
        return WA_JSON_T_STRING;
    case JSON_INTEGER:
        return WA_JSON_T_INT;
    case JSON_REAL:
        return WA_JSON_T_NUMBER & ~WA_JSON_T_INT;
    case JSON_TRUE:
    case JSON_FALSE:
        return WA_JSON_T_BOOL;
    case JSON_NULL:
    default:
        return WA_JSON_T_NULL;
    }
}

static const regex_t *
find_pattern(const struct wa_json_validator *v, const char *source)
{
    for (size_t i = 0; i < v->npatterns; i++) {
        if (v->patterns[i].source == source) {
            return &v->patterns[i].re;
        }
    }
    return NULL;
}

static void validate_node(const struct wa_json_validator *v, const struct wa_json_schema *s,
                          const json_t *j, char *ptr, size_t plen, struct wa_json_violations *out);

static void
check_string(const struct wa_json_validator *v, const struct wa_json_schema *s, const json_t *j,
             const char *ptr, struct wa_json_violations *out)
{
    const char *str = json_string_value(j);
    size_t bytes = json_string_length(j), chars = wa_utf8_count(str, bytes);
    const regex_t *re;

    if (chars < s->min_len || (s->max_len != 0 && chars > s->max_len)) {
        if (s->max_len == 0) {
            VIOLATION(out, s, ptr, "must be at least %zu characters long", s->min_len);
        } else if (s->min_len == s->max_len) {
            VIOLATION(out, s, ptr, "must be exactly %zu characters long", s->min_len);
        } else {
            VIOLATION(out, s, ptr, "must be %zu to %zu characters long", s->min_len, s->max_len);
        }
        return;
    }
    if (s->enums != NULL) {
        char list[160];
        size_t o = 0;
        bool found = false;

        list[0] = '\0';
        for (const char *const *e = s->enums; *e != NULL; e++) {
            int w;

            if (strlen(*e) == bytes && memcmp(*e, str, bytes) == 0) {
                found = true;
                break;
            }
            w = snprintf(list + o, sizeof(list) - o, "%s%s", o > 0 ? ", " : "", *e);
            o = w < 0 || (size_t)w >= sizeof(list) - o ? sizeof(list) - 1 : o + (size_t)w;
        }
        if (!found) {
            VIOLATION(out, s, ptr, "must be one of %s", list);
            return;
        }
    }
    if (s->pattern != NULL && (re = find_pattern(v, s->pattern)) != NULL &&
        (memchr(str, '\0', bytes) != NULL || regexec(re, str, 0, NULL, 0) != 0)) {
        VIOLATION(out, s, ptr, "has an invalid format");
    }
}

static void
check_number(const struct wa_json_schema *s, const json_t *j, const char *ptr,
             struct wa_json_violations *out)
{
    double d = json_number_value(j);
    bool low = (s->flags & WA_JSON_MIN) && d < s->min;
    bool high = (s->flags & WA_JSON_MAX) && d > s->max;

    if (json_is_integer(j) && (s->flags & (WA_JSON_MIN | WA_JSON_MAX))) {
        /* exact for integers beyond 2^53: compare as integers when the bound is integral */
        json_int_t i = json_integer_value(j);

        if ((s->flags & WA_JSON_MIN) && s->min == floor(s->min) && fabs(s->min) < 9.2e18) {
            low = i < (json_int_t)s->min;
        }
        if ((s->flags & WA_JSON_MAX) && s->max == floor(s->max) && fabs(s->max) < 9.2e18) {
            high = i > (json_int_t)s->max;
        }
    }
    if (!low && !high) {
        return;
    }
    if ((s->flags & WA_JSON_MIN) && (s->flags & WA_JSON_MAX)) {
        VIOLATION(out, s, ptr, "must be between %.15g and %.15g", s->min, s->max);
    } else if (low) {
        VIOLATION(out, s, ptr, "must be at least %.15g", s->min);
    } else {
        VIOLATION(out, s, ptr, "must be at most %.15g", s->max);
    }
}

static void
check_count(const struct wa_json_schema *s, size_t n, const char *what, const char *ptr,
            struct wa_json_violations *out)
{
    if (n < s->min_len) {
        VIOLATION(out, s, ptr, "must have at least %zu %s", s->min_len, what);
    } else if (s->max_len != 0 && n > s->max_len) {
        VIOLATION(out, s, ptr, "must have at most %zu %s", s->max_len, what);
    }
}

static void
check_object(const struct wa_json_validator *v, const struct wa_json_schema *s, const json_t *j,
             char *ptr, size_t plen, struct wa_json_violations *out)
{
    const char *key;
    json_t *member;

    check_count(s, json_object_size(j), "members", ptr, out);
    for (size_t i = 0; i < s->nprops; i++) {
        const struct wa_json_schema *p = &s->props[i];
        const json_t *m = json_object_get(j, p->name);
        size_t l = pointer_push(ptr, plen, p->name);

        if (m == NULL) {
            if (p->flags & WA_JSON_REQUIRED) {
                VIOLATION(out, p, ptr, "is required");
            }
        } else {
            validate_node(v, p, m, ptr, l, out);
        }
        ptr[plen] = '\0';
    }
    if (s->flags & WA_JSON_ALLOW_UNKNOWN) {
        return;
    }
    json_object_foreach((json_t *)j, key, member)
    {
        bool known = false;

        (void)member;
        for (size_t i = 0; i < s->nprops && !known; i++) {
            known = strcmp(s->props[i].name, key) == 0;
        }
        if (!known) {
            (void)pointer_push(ptr, plen, key);
            wa_json_violation_add(out, ptr, "is not a known member");
            ptr[plen] = '\0';
        }
    }
}

static void
check_array(const struct wa_json_validator *v, const struct wa_json_schema *s, const json_t *j,
            char *ptr, size_t plen, struct wa_json_violations *out)
{
    size_t i;
    json_t *item;

    check_count(s, json_array_size(j), "items", ptr, out);
    if (s->items == NULL) {
        return;
    }
    json_array_foreach((json_t *)j, i, item)
    {
        char idx[24];
        size_t l;

        if (out->truncated) {
            return; /* a huge array of bad items: the list is already full */
        }
        snprintf(idx, sizeof(idx), "%zu", i);
        l = pointer_push(ptr, plen, idx);
        validate_node(v, s->items, item, ptr, l, out);
        ptr[plen] = '\0';
    }
}

static void
validate_node(const struct wa_json_validator *v, const struct wa_json_schema *s, const json_t *j,
              char *ptr, size_t plen, struct wa_json_violations *out)
{
    unsigned t = type_of(j);
    char want[96];

    if ((s->types & t) == 0) {
        VIOLATION(out, s, ptr, "must be %s", types_text(s->types, want, sizeof(want)));
        return;
    }
    switch (t) {
    case WA_JSON_T_STRING:
        check_string(v, s, j, ptr, out);
        return;
    case WA_JSON_T_INT:
    case WA_JSON_T_NUMBER & ~WA_JSON_T_INT:
        check_number(s, j, ptr, out);
        return;
    case WA_JSON_T_OBJECT:
        check_object(v, s, j, ptr, plen, out);
        return;
    case WA_JSON_T_ARRAY:
        check_array(v, s, j, ptr, plen, out);
        return;
    default:
        return;
    }
}

enum wa_err
wa_json_validate(const struct wa_json_validator *v, const json_t *doc,
                 struct wa_json_violations *out)
{
    char ptr[WA_JSON_POINTER_MAX] = "";

    out->n = 0;
    out->truncated = false;
    if (doc == NULL) {
        wa_json_violation_add(out, "", "a JSON document is required");
        return WA_EINVAL;
    }
    validate_node(v, v->root, doc, ptr, 0, out);
    return out->n > 0 ? WA_EINVAL : WA_OK;
}
