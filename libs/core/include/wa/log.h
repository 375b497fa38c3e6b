/*
 * wa/log.h: JSON-lines logging on stdout.
 *
 * One line per call: {"ts":..,"level":..,"svc":..,"msg":..,"request_id":..,"trace_id":..,
 * "event_id":..}. The level is checked before the arguments are evaluated (the macros below).
 * Messages are printf-checked. Never pass secrets or whole bodies. Thread-safe: each line is
 * written with one write(2).
 */
#ifndef WA_LOG_H
#define WA_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "wa/err.h"

enum wa_log_level { WA_LOG_DEBUG, WA_LOG_INFO, WA_LOG_WARN, WA_LOG_ERROR };

/* Correlation for lines about one request or event; any field may be NULL. Borrowed. */
struct wa_log_ctx {
    const char *request_id;
    const char *trace_id;
    const char *event_id;
};

/* Sets the service name (borrowed: must outlive logging) and the minimum level. */
void wa_log_init(const char *service, enum wa_log_level level);
void wa_log_set_fd(int fd); /* default 1 (stdout); tests redirect it */
enum wa_err wa_log_level_parse(const char *s, enum wa_log_level *out);
bool wa_log_enabled(enum wa_log_level level);

void wa_log_write(enum wa_log_level level, const struct wa_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define WA_LOG_AT(level, ctx, ...)                 \
    do {                                           \
        if (wa_log_enabled(level)) {               \
            wa_log_write(level, ctx, __VA_ARGS__); \
        }                                          \
    } while (0)

#define wa_log_debug(ctx, ...) WA_LOG_AT(WA_LOG_DEBUG, ctx, __VA_ARGS__)
#define wa_log_info(ctx, ...)  WA_LOG_AT(WA_LOG_INFO, ctx, __VA_ARGS__)
#define wa_log_warn(ctx, ...)  WA_LOG_AT(WA_LOG_WARN, ctx, __VA_ARGS__)
#define wa_log_error(ctx, ...) WA_LOG_AT(WA_LOG_ERROR, ctx, __VA_ARGS__)

/*
 * Rate limiting for repeated warnings: at most one line per interval; the next line that
 * passes reports how many were suppressed. Caller's storage, zero-initialised.
 */
struct wa_log_limit {
    uint64_t interval_ms;
    uint64_t last_ms;
    uint64_t suppressed;
};
/* Returns true when a line may be written now (and resets the suppressed count into *skipped). */
bool wa_log_limit_pass(struct wa_log_limit *lim, uint64_t *skipped);

#endif
