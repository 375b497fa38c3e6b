/*
 * wa/buf.h: growable byte buffers with a hard maximum.
 *
 * Every buffer fed from the network is created with a maximum; appending past it fails with
 * WA_ETOOBIG and leaves the buffer unchanged. The data is always NUL-terminated (the NUL is not
 * counted in len) so text can be handed to C string functions.
 */
#ifndef WA_BUF_H
#define WA_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "wa/err.h"

struct wa_buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* 0 means SIZE_MAX / 2 */
};

/* Initialises caller's storage. No allocation happens until the first append. */
void wa_buf_init(struct wa_buf *b, size_t max);
/* Frees the data; b may be reused after wa_buf_init. Accepts NULL. */
void wa_buf_cleanup(struct wa_buf *b);
/* Keeps the allocation, sets len to 0. */
void wa_buf_reset(struct wa_buf *b);

enum wa_err wa_buf_reserve(struct wa_buf *b, size_t extra);
enum wa_err wa_buf_append(struct wa_buf *b, const void *data, size_t len);
enum wa_err wa_buf_append_str(struct wa_buf *b, const char *s);
enum wa_err wa_buf_printf(struct wa_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum wa_err wa_buf_vprintf(struct wa_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Appends s (len bytes) as a JSON string literal with quotes, escaping as RFC 8259 requires.
 * Invalid UTF-8 bytes are replaced by U+FFFD so the output is always valid JSON. */
enum wa_err wa_buf_append_json_string(struct wa_buf *b, const char *s, size_t len);
/* The number of bytes from s (at most n) that stand for themselves inside a JSON string: ASCII
 * that is not a control, '"' or '\\'. The first byte past them needs attention (an escape, a
 * quote, UTF-8); shared by the escaper and the parser (wa/json.h), eight bytes per step. */
size_t wa_json_plain_run(const char *s, size_t n);
/* For writers that leave b unchanged on failure: when err is not WA_OK, cuts b back to its
 * first start bytes (start <= b->len). Returns err. */
enum wa_err wa_buf_rollback(struct wa_buf *b, size_t start, enum wa_err err);
/* Takes the data out: returns it (caller frees with free()) and re-initialises b. */
char *wa_buf_steal(struct wa_buf *b);

#endif
