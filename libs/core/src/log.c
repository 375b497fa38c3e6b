/* log.c: JSON-lines logger. One write(2) per line so lines from threads never interleave. */
#include "wa/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "wa/buf.h"
#include "wa/clock.h"

static const char *log_service = "wabridge";
static enum wa_log_level log_level = WA_LOG_INFO;
static int log_fd = 1;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
wa_log_init(const char *service, enum wa_log_level level)
{
    log_service = service;
    log_level = level;
}

void
wa_log_set_fd(int fd)
{
    log_fd = fd;
}

enum wa_err
wa_log_level_parse(const char *s, enum wa_log_level *out)
{
    size_t i;

    for (i = 0; i < WA_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum wa_log_level)i;
            return WA_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = WA_LOG_WARN;
        return WA_OK;
    }
    return WA_EINVAL;
}

bool
wa_log_enabled(enum wa_log_level level)
{
    return level >= log_level;
}

static void
add_field(struct wa_buf *b, const char *key, const char *value)
{
    if (value == NULL) {
        return;
    }
    wa_buf_printf(b, ",\"%s\":", key);
    wa_buf_append_json_string(b, value, strlen(value));
}

void
wa_log_write(enum wa_log_level level, const struct wa_log_ctx *ctx, const char *fmt, ...)
{
    char stack[1024], ts[WA_RFC3339_LEN];
    struct wa_buf line;
    va_list ap;
    int n;
    const char *p;
    ssize_t w;

    va_start(ap, fmt);
    n = vsnprintf(stack, sizeof(stack), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n >= sizeof(stack)) {
        n = (int)sizeof(stack) - 1; /* long messages are truncated, never allocated unbounded */
    }
    wa_clock_rfc3339(wa_clock_wall_ms(), ts);
    wa_buf_init(&line, 8192);
    wa_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"svc\":", ts,
                  level_names[(unsigned)level < 4 ? level : 3]);
    wa_buf_append_json_string(&line, log_service, strlen(log_service));
    wa_buf_append_str(&line, ",\"msg\":");
    wa_buf_append_json_string(&line, stack, (size_t)n);
    if (ctx != NULL) {
        add_field(&line, "request_id", ctx->request_id);
        add_field(&line, "trace_id", ctx->trace_id);
        add_field(&line, "event_id", ctx->event_id);
    }
    wa_buf_append(&line, "}\n", 2);
    p = line.data;
    n = (int)line.len;
    while (p != NULL && n > 0) {
        w = write(log_fd, p, (size_t)n);
        if (w <= 0) {
            break;
        }
        p += w;
        n -= (int)w;
    }
    wa_buf_cleanup(&line);
}

bool
wa_log_limit_pass(struct wa_log_limit *lim, uint64_t *skipped)
{
    uint64_t now = wa_clock_mono_ms();

    if (lim->last_ms != 0 && now - lim->last_ms < lim->interval_ms) {
        lim->suppressed++;
        return false;
    }
    lim->last_ms = now;
    if (skipped != NULL) {
        *skipped = lim->suppressed;
    }
    lim->suppressed = 0;
    return true;
}
