/*
 * wa/config.h: configuration from spec tables.
 *
 * Each service declares one table of struct wa_cfg_spec (name, type, default, bounds, flags,
 * offset into its config struct, help). wa_cfg_load() fills the struct from a lookup function
 * (the environment in daemons, a table in tests), so this module is the only place that reads
 * WA_* variables. A secret may also come from <NAME>_FILE (a Kubernetes secret mount); giving
 * both is an error. After loading, the config is immutable; free it with wa_cfg_cleanup().
 *
 * Field types by spec type:  STRING -> char * (owned, may be NULL when no default),
 * INT / MS (durations in ms: "250ms", "5s", "2m", "1h", "7d") / US (durations in µs: also
 * "500us"; a bare number is ms in both) / SIZE ("3MiB", "512k") -> int64_t,
 * BOOL ("1/0/true/false/yes/no/on/off") -> bool.
 */
#ifndef WA_CONFIG_H
#define WA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "wa/err.h"

enum wa_cfg_type { WA_CFG_STRING, WA_CFG_INT, WA_CFG_BOOL, WA_CFG_MS, WA_CFG_US, WA_CFG_SIZE };

#define WA_CFG_SECRET   0x1u /* redacted in --print-config; may come from <NAME>_FILE */
#define WA_CFG_REQUIRED 0x2u /* must be set (no default) */
/* The default is a public sandbox value (local development only): unless WA_SANDBOX is true, the
 * value must be set, non-empty, and no comma-separated item of it (nor the token of an
 * "id=token" item) may equal the default. */
#define WA_CFG_SANDBOX 0x4u
/* A URL that must be https:// unless WA_SANDBOX is true (plain http:// is for wa-cloudsim). */
#define WA_CFG_HTTPS 0x8u

struct wa_cfg_spec {
    const char *name; /* e.g. "WA_LISTEN" */
    enum wa_cfg_type type;
    const char *def;  /* default as text; NULL = unset */
    int64_t min, max; /* bounds for numeric types; min == max == 0 means unbounded */
    unsigned flags;
    size_t offset; /* offsetof(struct <svc>_config, field) */
    const char *help;
};

/* Returns the value of name or NULL. The environment: wa_cfg_getenv. */
typedef const char *(*wa_cfg_lookup_fn)(const char *name, void *arg);
const char *wa_cfg_getenv(const char *name, void *arg);

/* Fills cfg from spec. On error cfg holds what was loaded so far; call wa_cfg_cleanup anyway. */
enum wa_err wa_cfg_load(const struct wa_cfg_spec *spec, size_t n, void *cfg,
                        wa_cfg_lookup_fn lookup, void *arg, struct wa_error *error);
/* Frees the strings of cfg. */
void wa_cfg_cleanup(const struct wa_cfg_spec *spec, size_t n, void *cfg);
/* Prints cfg as one JSON object, secrets shown as "<redacted>" (set) or null. */
void wa_cfg_print(const struct wa_cfg_spec *spec, size_t n, const void *cfg, FILE *out);
/* Prints the variables with type, default and help, for --help. */
void wa_cfg_help(const struct wa_cfg_spec *spec, size_t n, FILE *out);

/* Parsers shared with other modules (e.g. command-line values). */
enum wa_err wa_parse_int(const char *s, int64_t *out);
enum wa_err wa_parse_ms(const char *s, int64_t *out);
/* A duration in microseconds: "500us", "2ms", "1s" ...; a bare number is milliseconds. */
enum wa_err wa_parse_us(const char *s, int64_t *out);
enum wa_err wa_parse_size(const char *s, int64_t *out);
enum wa_err wa_parse_bool(const char *s, bool *out);
/* Splits "host:port" ("[v6]:port" too) into host (size hostlen) and port. */
enum wa_err wa_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
