/* err.c: names and texts of enum wa_err, error detail formatting, assertion failure. */
#include "wa/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const names[] = {
#define WA_ERR_NAME(name, text) #name,
    WA_ERR_LIST(WA_ERR_NAME)
#undef WA_ERR_NAME
};

static const char *const texts[] = {
#define WA_ERR_TEXT(name, text) text,
    WA_ERR_LIST(WA_ERR_TEXT)
#undef WA_ERR_TEXT
};

const char *
wa_err_name(enum wa_err err)
{
    if ((unsigned)err >= WA_ERR__COUNT) {
        return "EUNKNOWN";
    }
    return names[err];
}

const char *
wa_err_text(enum wa_err err)
{
    if ((unsigned)err >= WA_ERR__COUNT) {
        return "unknown error";
    }
    return texts[err];
}

enum wa_err
wa_error_set(struct wa_error *error, enum wa_err code, const char *fmt, ...)
{
    va_list ap;

    if (error == NULL) {
        return code;
    }
    error->code = code;
    va_start(ap, fmt);
    vsnprintf(error->message, sizeof(error->message), fmt, ap);
    va_end(ap);
    return code;
}

void
wa_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr,
            "{\"level\":\"fatal\",\"msg\":\"assertion failed\",\"expr\":\"%s\","
            "\"file\":\"%s\",\"line\":%d}\n",
            expr, file, line);
    abort();
}
