/*
 * wa/json.h: typed, bounded access to JSON documents (a thin layer over jansson).
 *
 * Deliberate deviation from "only libs/ include third-party headers": this header includes
 * <jansson.h>, so services may hold and walk json_t values directly. Wrapping every jansson
 * call would add code without adding safety; what this module adds is the part that is easy
 * to get wrong: a reader with a nesting limit that builds jansson documents at a fraction of
 * json_loadb's cost, getters that check type and size and say which field was wrong, and one
 * compact UTF-8 dump format.
 *
 * Ownership: json_t values follow jansson's reference counting. wa_json_parse() returns a new
 * reference (release with json_decref()). Getters return borrowed pointers, valid while the
 * containing document holds its reference. Strings returned are borrowed from their json_t.
 *
 * Errors of the getters: WA_ENOTFOUND (field missing, or obj is not an object), WA_EPARSE
 * (wrong type, embedded NUL, integer out of bounds), WA_ETOOBIG (string or array too long).
 * The message names the field. Threading: a json_t may be read from one thread at a time.
 */
#ifndef WA_JSON_H
#define WA_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "wa/buf.h"
#include "wa/err.h"

/*
 * Arenas: a scope in which this thread's jansson allocations come from a bump allocator.
 *
 *   wa_json_arena_enter(&a);
 *   wa_json_parse(...);   ... use the document ...   (json_decref inside the scope: a no-op)
 *   wa_json_arena_leave(&a);   every value made in the scope is gone, whatever its refcount
 *
 * For hot paths that parse, read and drop a document without waiting in between (wa-ingest:
 * about a hundred malloc/free pairs per webhook become a few pointer bumps). The rule: no
 * json_t made inside a scope may be used or released after leave; wa_json_arena_owns() lets a
 * caller assert that. jansson's own json_dumps() text is arena memory inside a scope (never
 * free() it there); wa_json_dump() always returns malloc'd text. Scopes do not nest; an arena belongs to one thread at a time. Outside a
 * scope, and on other threads, jansson uses malloc/free as usual. Memory: one block of
 * block_size is kept between scopes; blocks a large document added are freed at leave.
 */
struct wa_json_arena_block;
struct wa_json_arena {
    struct wa_json_arena_block *blocks;
    size_t block_size;
    size_t allocated; /* bytes handed out in the current scope */
    size_t grown;     /* blocks allocated over the arena's life (a sizing hint) */
    bool active;
};

/* block_size: bytes per block (at least 1 KiB); a larger allocation gets a larger block. */
void wa_json_arena_init(struct wa_json_arena *a, size_t block_size);
void wa_json_arena_enter(struct wa_json_arena *a);
void wa_json_arena_leave(struct wa_json_arena *a);
/* True when ptr lies in one of a's blocks (including the block kept after leave). */
bool wa_json_arena_owns(const struct wa_json_arena *a, const void *ptr);
/* Frees the blocks; not inside a scope. */
void wa_json_arena_free(struct wa_json_arena *a);

/* Nesting limit used when wa_json_parse() is given max_depth == 0; larger limits are
 * lowered to WA_JSON_DEPTH_MAX (the parser recurses once per level). */
#define WA_JSON_DEPTH_DEFAULT 32
#define WA_JSON_DEPTH_MAX     1024

/*
 * Parses len bytes of data (need not be NUL-terminated) holding one JSON object or array into
 * a jansson document (src/parse.c: its own reader, which accepts and refuses exactly what
 * json_loadb(data, len, 0) does, at a fraction of jansson's cost per byte). Input nested
 * deeper than max_depth (0 selects WA_JSON_DEPTH_DEFAULT) is WA_ELIMIT, however it would have
 * failed otherwise. Invalid JSON, invalid UTF-8, "\u0000" or a lone surrogate inside strings
 * and numbers jansson cannot represent (integers past int64, reals past double) are
 * WA_EPARSE, with the line, column and reason in the message; WA_ENOMEM when memory runs out.
 * Duplicate keys are accepted; the last one wins (Meta may send duplicates).
 * On success *out is a new reference; free with json_decref(). On error *out is NULL.
 */
enum wa_err wa_json_parse(const char *data, size_t len, size_t max_depth, json_t **out,
                          struct wa_error *error);
/* wa_json_parse() that refuses a key given twice in one object (WA_EPARSE, "duplicate object
 * key"), as json_loadb(data, len, JSON_REJECT_DUPLICATES) does: for events and API bodies,
 * where a repeated field is an error rather than Meta's quirk. */
enum wa_err wa_json_parse_unique(const char *data, size_t len, size_t max_depth, json_t **out,
                                 struct wa_error *error);

/* True when the number token t (n bytes) is one wa_json_parse refuses for its size: an
 * integer (no '.', 'e' or 'E') past int64, or a real past the double range. A token that is
 * not a number at all is not "too big" (false). For repairs of refused input (libs/whatsapp). */
bool wa_json_number_too_big(const char *t, size_t n);

/* Returns the nesting depth of data ({} and [] count one each; brackets inside strings do not)
 * and stops counting once it exceeds limit. Exposed for tests and for callers that want to
 * pre-screen input without parsing it. */
size_t wa_json_depth(const char *data, size_t len, size_t limit);

/* Returns obj[key] if it is a string without embedded NUL, else NULL. Borrowed. */
const char *wa_json_str(const json_t *obj, const char *key);

/* Sets *out to obj[key], a string of at most max_len bytes without embedded NUL. Borrowed. */
enum wa_err wa_json_get_str(const json_t *obj, const char *key, size_t max_len, const char **out,
                            struct wa_error *error);
/* Sets *out to obj[key], an integer (not a real) within [min, max]. */
enum wa_err wa_json_get_int64(const json_t *obj, const char *key, int64_t min, int64_t max,
                              int64_t *out, struct wa_error *error);
/* Sets *out to obj[key], which must be true or false. */
enum wa_err wa_json_get_bool(const json_t *obj, const char *key, bool *out, struct wa_error *error);
/* Sets *out to obj[key], which must be an object. Borrowed. */
enum wa_err wa_json_get_object(const json_t *obj, const char *key, json_t **out,
                               struct wa_error *error);
/* Sets *out to obj[key], an array of at most max_items elements. Borrowed. */
enum wa_err wa_json_get_array(const json_t *obj, const char *key, size_t max_items, json_t **out,
                              struct wa_error *error);

/*
 * Follows a dotted path such as "entry.0.changes.0.value" from root: a segment selects an
 * object member by name, or an array element when it is a decimal index. Keys containing '.'
 * cannot be addressed. Returns the value or NULL when any step is missing. Borrowed.
 */
json_t *wa_json_path(const json_t *root, const char *path);
/* wa_json_path() that also requires a string without embedded NUL. Borrowed. */
const char *wa_json_path_str(const json_t *root, const char *path);

/* Returns a new compact UTF-8 serialisation of v (any JSON value, written by wa_json_write);
 * free with free(). NULL when out of memory or v holds NaN or an infinity. */
char *wa_json_dump(const json_t *v);
/* Appends the compact serialisation of v to out (wa_json_write). On error out is unchanged. */
enum wa_err wa_json_dump_buf(const json_t *v, struct wa_buf *out);

/*
 * Direct writers: append to b the bytes jansson's json_dump*(JSON_COMPACT | JSON_ENCODE_ANY)
 * would write, without a dump callback or a temporary string (hot paths that build JSON around
 * borrowed values), except reals: the fewest of 15-17 significant digits that read back as the
 * same double, so Meta's 37.483307 stays 37.483307 where jansson writes 37.483307000000003.
 * Checked over every webhook fixture by tests/unit/contract/write_test.c. Each returns WA_OK,
 * WA_ENOMEM or WA_ETOOBIG (b's maximum); on error b is unchanged. Nothing is taken from the
 * caller: v and s stay the caller's.
 */
/* Appends v (any JSON value; reals as above). WA_EINVAL for NULL, NaN, infinity. */
enum wa_err wa_json_write(struct wa_buf *b, const json_t *v);
/* Strings: wa_buf_append_json_string (wa/buf.h) writes them as jansson does. */
/* Appends v in decimal, as jansson writes integers. */
enum wa_err wa_json_write_int(struct wa_buf *b, int64_t v);

/* ---- declarative validation (src/schema.c) ----
 *
 * A schema is a static table of nodes. A node accepts the JSON types in `types` and checks
 * what applies to the value found: strings by length in characters (UTF-8 code points),
 * `enums` and a `pattern` (POSIX extended regex, matched against the whole string); numbers by
 * `min`/`max` (WA_JSON_MIN/WA_JSON_MAX flags); arrays by item count and `items` (the schema of
 * every element); objects by member count, `props` (each with its name; WA_JSON_REQUIRED) and
 * the unknown-key policy (rejected unless WA_JSON_ALLOW_UNKNOWN). Every violation is reported
 * with its RFC 6901 JSON pointer ("/items/2/name"), not only the first.
 *
 *   static const char *const categories[] = {"marketing", "utility", NULL};
 *   static const struct wa_json_schema consent_props[] = {
 *       {.name = "category", .types = WA_JSON_T_STRING, .flags = WA_JSON_REQUIRED,
 *        .enums = categories},
 *       {.name = "scope", .types = WA_JSON_T_STRING, .min_len = 1, .max_len = 32},
 *   };
 *   static const struct wa_json_schema consent = {
 *       .types = WA_JSON_T_OBJECT, .props = consent_props, .nprops = 2};
 *
 * wa_json_validator_new() checks the table once (at start: a bad table is WA_EINVAL naming the
 * node) and compiles the patterns; wa_json_validate() then runs on any thread, one document at
 * a time per call (the validator is read-only).
 */
#define WA_JSON_T_NULL   0x01u
#define WA_JSON_T_BOOL   0x02u
#define WA_JSON_T_INT    0x04u /* an integer (1, not 1.0) */
#define WA_JSON_T_NUMBER 0x0cu /* an integer or a real */
#define WA_JSON_T_STRING 0x10u
#define WA_JSON_T_ARRAY  0x20u
#define WA_JSON_T_OBJECT 0x40u
#define WA_JSON_T_ANY    0x7fu

#define WA_JSON_REQUIRED      0x1u /* as a member: must be present */
#define WA_JSON_ALLOW_UNKNOWN 0x2u /* as an object: members not in props are accepted */
#define WA_JSON_MIN           0x4u /* min applies */
#define WA_JSON_MAX           0x8u /* max applies */

struct wa_json_schema {
    const char *name; /* member name inside props; ignored elsewhere */
    unsigned types;   /* WA_JSON_T_*: the accepted types */
    unsigned flags;   /* WA_JSON_REQUIRED, WA_JSON_ALLOW_UNKNOWN, WA_JSON_MIN, WA_JSON_MAX */
    size_t min_len;   /* strings: characters; arrays: items; objects: members */
    size_t max_len;   /* 0: no maximum */
    double min, max;  /* numbers, inclusive, when flagged */
    const char *const *enums;           /* strings: the allowed values, NULL-terminated */
    const char *pattern;                /* strings: POSIX ERE the whole string must match */
    const char *detail;                 /* optional: the text of any violation of this node */
    const struct wa_json_schema *props; /* objects: the known members */
    size_t nprops;
    const struct wa_json_schema *items; /* arrays: every element */
};

#define WA_JSON_VIOLATIONS_MAX 32
#define WA_JSON_POINTER_MAX    256
struct wa_json_violation {
    char pointer[WA_JSON_POINTER_MAX]; /* RFC 6901; "" is the whole document */
    char detail[192];
};
/* Caller's storage (about 14 KiB): the first WA_JSON_VIOLATIONS_MAX violations; truncated
 * when there were more. */
struct wa_json_violations {
    size_t n;
    bool truncated;
    struct wa_json_violation v[WA_JSON_VIOLATIONS_MAX];
};

struct wa_json_validator;
/* Checks the schema tree and compiles its patterns. root is borrowed for the validator's life
 * (static tables). free with wa_json_validator_free(). WA_EINVAL (a bad table), WA_ENOMEM. */
enum wa_err wa_json_validator_new(const struct wa_json_schema *root, struct wa_json_validator **out,
                                  struct wa_error *error);
void wa_json_validator_free(struct wa_json_validator *v);
/* Validates doc (borrowed); fills *out (reset first). WA_OK when valid, else WA_EINVAL. */
enum wa_err wa_json_validate(const struct wa_json_validator *v, const json_t *doc,
                             struct wa_json_violations *out);
/* Appends one violation (pointer and a printf-style detail) as a validator would: for checks
 * a schema cannot express, reported in the same list. */
void wa_json_violation_add(struct wa_json_violations *out, const char *pointer, const char *fmt,
                           ...) __attribute__((format(printf, 3, 4)));

#endif
