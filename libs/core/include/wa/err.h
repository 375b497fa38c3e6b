/*
 * wa/err.h: the one error vocabulary of wabridge.
 *
 * Fallible functions return enum wa_err (WA_OK == 0). The list is generated once from
 * WA_ERR_LIST, which also gives wa_err_name(). Detail travels in an optional
 * struct wa_error out-parameter; every function accepts error == NULL.
 * Third-party error types are translated inside libs/ and never reach services/.
 */
#ifndef WA_ERR_H
#define WA_ERR_H

#include <stddef.h>

#define WA_ERR_LIST(X)                    \
    X(OK, "success")                      \
    X(EINVAL, "invalid argument")         \
    X(ENOMEM, "out of memory")            \
    X(EIO, "input/output error")          \
    X(EAGAIN, "try again later")          \
    X(ETIMEDOUT, "timed out")             \
    X(EAUTH, "authentication failed")     \
    X(ENOTFOUND, "not found")             \
    X(EEXIST, "already exists")           \
    X(ETOOBIG, "too large")               \
    X(EPARSE, "malformed input")          \
    X(ECONFIG, "invalid configuration")   \
    X(EUNAVAIL, "dependency unavailable") \
    X(ECLOSED, "closed or shutting down") \
    X(ELIMIT, "limit exceeded")           \
    X(EINTERNAL, "internal error")

enum wa_err {
#define WA_ERR_ENUM(name, text) WA_##name,
    WA_ERR_LIST(WA_ERR_ENUM)
#undef WA_ERR_ENUM
        WA_ERR__COUNT
};

/* Optional detail of a failure. Caller's storage; message is always NUL-terminated. */
struct wa_error {
    enum wa_err code;
    char message[256];
};

/* Returns a static string such as "EINVAL"; never NULL. */
const char *wa_err_name(enum wa_err err);
/* Returns a static human description; never NULL. */
const char *wa_err_text(enum wa_err err);

/*
 * Records code and a printf-style message in error (if not NULL) and returns code,
 * so callers can write: return wa_error_set(error, WA_EINVAL, "bad %s", what);
 */
enum wa_err wa_error_set(struct wa_error *error, enum wa_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Broken invariants abort with file and line; bad input is never an assertion. */
#define WA_ASSERT(cond)                                \
    do {                                               \
        if (!(cond)) {                                 \
            wa_assert_fail(#cond, __FILE__, __LINE__); \
        }                                              \
    } while (0)

_Noreturn void wa_assert_fail(const char *expr, const char *file, int line);

#define WA_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
