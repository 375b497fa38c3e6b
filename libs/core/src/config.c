/* config.c: spec-table configuration loader (environment and *_FILE secrets). */
#include "wa/config.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wa/buf.h"

#define SECRET_FILE_MAX (64 * 1024)

const char *
wa_cfg_getenv(const char *name, void *arg)
{
    (void)arg;
    return getenv(name);
}

enum wa_err
wa_parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (s == NULL || *s == '\0') {
        return WA_EINVAL;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return WA_EINVAL;
    }
    *out = v;
    return WA_OK;
}

/* Parses a number followed by a unit from units[] (name, multiplier). */
static enum wa_err
parse_unit(const char *s, const char *const *names, const int64_t *mult, size_t n, int64_t dflt,
           int64_t *out)
{
    char *end;
    long long v;
    size_t i;

    if (s == NULL || *s == '\0') {
        return WA_EINVAL;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v < 0) {
        return WA_EINVAL;
    }
    while (*end == ' ') {
        end++;
    }
    if (*end == '\0') {
        if (v > INT64_MAX / dflt) {
            return WA_EINVAL;
        }
        *out = v * dflt;
        return WA_OK;
    }
    for (i = 0; i < n; i++) {
        if (strcasecmp(end, names[i]) == 0) {
            if (v > INT64_MAX / mult[i]) {
                return WA_EINVAL;
            }
            *out = v * mult[i];
            return WA_OK;
        }
    }
    return WA_EINVAL;
}

enum wa_err
wa_parse_ms(const char *s, int64_t *out)
{
    static const char *const names[] = {"ms", "s", "m", "h", "d"};
    static const int64_t mult[] = {1, 1000, 60000, 3600000, 86400000};

    return parse_unit(s, names, mult, 5, 1, out);
}

enum wa_err
wa_parse_us(const char *s, int64_t *out)
{
    static const char *const names[] = {"us", "ms", "s", "m", "h", "d"};
    static const int64_t mult[] = {1, 1000, 1000000, 60000000, 3600000000, 86400000000};

    return parse_unit(s, names, mult, 6, 1000, out);
}

enum wa_err
wa_parse_size(const char *s, int64_t *out)
{
    static const char *const names[] = {"b", "k", "kb", "kib", "m", "mb", "mib", "g", "gb", "gib"};
    static const int64_t mult[] = {1,       1024,    1024,    1024,    1048576,
                                   1048576, 1048576, 1 << 30, 1 << 30, 1 << 30};

    return parse_unit(s, names, mult, 10, 1, out);
}

enum wa_err
wa_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    size_t i;

    for (i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return WA_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return WA_OK;
        }
    }
    return WA_EINVAL;
}

enum wa_err
wa_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon, *hs = s;
    size_t hl;
    int64_t p;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':') {
            return WA_EINVAL;
        }
        hs = s + 1;
        hl = (size_t)(rb - hs);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return WA_EINVAL;
        }
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen || wa_parse_int(colon + 1, &p) != WA_OK || p < 0 || p > 65535) {
        return WA_EINVAL;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    *port = (int)p;
    return WA_OK;
}

static enum wa_err
read_secret_file(const char *path, char **out, struct wa_error *error)
{
    FILE *f = fopen(path, "rb");
    struct wa_buf b;
    char chunk[4096];
    size_t n;
    enum wa_err err = WA_OK;

    if (f == NULL) {
        return wa_error_set(error, WA_ECONFIG, "cannot open %s: %s", path, strerror(errno));
    }
    wa_buf_init(&b, SECRET_FILE_MAX);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if ((err = wa_buf_append(&b, chunk, n)) != WA_OK) {
            err = wa_error_set(error, WA_ECONFIG, "%s is larger than %d bytes", path,
                               SECRET_FILE_MAX);
            goto out;
        }
    }
    if (ferror(f)) {
        err = wa_error_set(error, WA_ECONFIG, "cannot read %s", path);
        goto out;
    }
    /* Kubernetes secrets and editors leave a trailing newline; it is never part of a secret. */
    while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r')) {
        b.data[--b.len] = '\0';
    }
    *out = wa_buf_steal(&b);
out:
    wa_buf_cleanup(&b);
    fclose(f);
    return err;
}

static enum wa_err
set_value(const struct wa_cfg_spec *s, void *cfg, const char *text, char *owned,
          struct wa_error *error)
{
    char *field = (char *)cfg + s->offset;
    int64_t v = 0;
    enum wa_err err = WA_OK;

    switch (s->type) {
    case WA_CFG_STRING: {
        char **dst = (char **)(void *)field;
        free(*dst);
        *dst = owned != NULL ? owned : (text != NULL ? strdup(text) : NULL);
        if (text != NULL && *dst == NULL) {
            return wa_error_set(error, WA_ENOMEM, "out of memory");
        }
        return WA_OK;
    }
    case WA_CFG_BOOL: {
        bool b = false;
        if (text != NULL && wa_parse_bool(text, &b) != WA_OK) {
            err = wa_error_set(error, WA_ECONFIG, "%s: expected a boolean, got \"%s\"", s->name,
                               text);
        }
        free(owned);
        if (err == WA_OK) {
            memcpy(field, &b, sizeof(b));
        }
        return err;
    }
    case WA_CFG_INT:
        err = text != NULL ? wa_parse_int(text, &v) : WA_OK;
        break;
    case WA_CFG_MS:
        err = text != NULL ? wa_parse_ms(text, &v) : WA_OK;
        break;
    case WA_CFG_US:
        err = text != NULL ? wa_parse_us(text, &v) : WA_OK;
        break;
    case WA_CFG_SIZE:
        err = text != NULL ? wa_parse_size(text, &v) : WA_OK;
        break;
    }
    if (err != WA_OK) {
        err = wa_error_set(error, WA_ECONFIG, "%s: cannot parse \"%s\"", s->name, text);
    } else if ((s->min != 0 || s->max != 0) && (v < s->min || v > s->max)) {
        err =
            wa_error_set(error, WA_ECONFIG, "%s: %" PRId64 " is outside [%" PRId64 ", %" PRId64 "]",
                         s->name, v, s->min, s->max);
    } else {
        memcpy(field, &v, sizeof(v));
    }
    free(owned);
    return err;
}

/* True if text is empty or one of its comma-separated items (or an item's token after '=') is
 * the public sandbox value def. */
static bool
is_sandbox_value(const char *text, const char *def)
{
    size_t dlen = def != NULL ? strlen(def) : 0;
    const char *p = text;

    if (text == NULL || *text == '\0') {
        return true;
    }
    while (dlen > 0) {
        const char *end = strchr(p, ',');
        const char *eq;
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        eq = memchr(p, '=', len);
        if (eq != NULL) {
            len -= (size_t)(eq + 1 - p);
            p = eq + 1;
        }
        if (len == dlen && memcmp(p, def, dlen) == 0) {
            return true;
        }
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    return false;
}

enum wa_err
wa_cfg_load(const struct wa_cfg_spec *spec, size_t n, void *cfg, wa_cfg_lookup_fn lookup, void *arg,
            struct wa_error *error)
{
    char filevar[160];
    const char *sandbox_text = lookup("WA_SANDBOX", arg);
    bool sandbox = false;
    size_t i;
    enum wa_err err;

    if (sandbox_text != NULL && wa_parse_bool(sandbox_text, &sandbox) != WA_OK) {
        return wa_error_set(error, WA_ECONFIG, "WA_SANDBOX: not a boolean: \"%s\"", sandbox_text);
    }
    for (i = 0; i < n; i++) {
        const struct wa_cfg_spec *s = &spec[i];
        const char *text = lookup(s->name, arg);
        const char *path = NULL;
        char *owned = NULL;

        if (s->flags & WA_CFG_SECRET) {
            snprintf(filevar, sizeof(filevar), "%s_FILE", s->name);
            path = lookup(filevar, arg);
            if (path != NULL && *path != '\0') {
                if (text != NULL) {
                    return wa_error_set(error, WA_ECONFIG, "set %s or %s, not both", s->name,
                                        filevar);
                }
                if ((err = read_secret_file(path, &owned, error)) != WA_OK) {
                    return err;
                }
                text = owned;
            }
        }
        if (text == NULL) {
            text = s->def;
        }
        if (text == NULL && (s->flags & WA_CFG_REQUIRED)) {
            return wa_error_set(error, WA_ECONFIG, "%s is required", s->name);
        }
        if ((s->flags & WA_CFG_SANDBOX) && !sandbox && is_sandbox_value(text, s->def)) {
            free(owned);
            return wa_error_set(error, WA_ECONFIG,
                                "%s is unset, empty or the public sandbox value; set a real "
                                "secret (%s or %s_FILE), or WA_SANDBOX=1 for local development",
                                s->name, s->name, s->name);
        }
        if ((s->flags & WA_CFG_HTTPS) && !sandbox && text != NULL &&
            strncmp(text, "https://", 8) != 0) {
            free(owned);
            return wa_error_set(error, WA_ECONFIG,
                                "%s must be an https:// URL (plain http:// only with WA_SANDBOX=1, "
                                "e.g. against wa-cloudsim)",
                                s->name);
        }
        if ((err = set_value(s, cfg, text, owned, error)) != WA_OK) {
            return err;
        }
    }
    return WA_OK;
}

void
wa_cfg_cleanup(const struct wa_cfg_spec *spec, size_t n, void *cfg)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (spec[i].type == WA_CFG_STRING) {
            char **p = (char **)(void *)((char *)cfg + spec[i].offset);
            free(*p);
            *p = NULL;
        }
    }
}

void
wa_cfg_print(const struct wa_cfg_spec *spec, size_t n, const void *cfg, FILE *out)
{
    struct wa_buf b;
    size_t i;

    wa_buf_init(&b, 0);
    wa_buf_append_str(&b, "{");
    for (i = 0; i < n; i++) {
        const struct wa_cfg_spec *s = &spec[i];
        const char *field = (const char *)cfg + s->offset;

        wa_buf_printf(&b, "%s\"%s\":", i ? "," : "", s->name);
        if (s->type == WA_CFG_STRING) {
            const char *v = *(char *const *)(const void *)field;
            if (v == NULL) {
                wa_buf_append_str(&b, "null");
            } else if (s->flags & WA_CFG_SECRET) {
                wa_buf_append_str(&b, "\"<redacted>\"");
            } else {
                wa_buf_append_json_string(&b, v, strlen(v));
            }
        } else if (s->type == WA_CFG_BOOL) {
            bool v;
            memcpy(&v, field, sizeof(v));
            wa_buf_append_str(&b, v ? "true" : "false");
        } else {
            int64_t v;
            memcpy(&v, field, sizeof(v));
            wa_buf_printf(&b, "%" PRId64, v);
        }
    }
    wa_buf_append_str(&b, "}\n");
    fputs(b.data, out);
    wa_buf_cleanup(&b);
}

void
wa_cfg_help(const struct wa_cfg_spec *spec, size_t n, FILE *out)
{
    static const char *const types[] = {
        [WA_CFG_STRING] = "string", [WA_CFG_INT] = "int",     [WA_CFG_BOOL] = "bool",
        [WA_CFG_MS] = "duration",   [WA_CFG_US] = "duration", [WA_CFG_SIZE] = "size"};
    _Static_assert(sizeof(types) / sizeof(types[0]) == WA_CFG_SIZE + 1, "a name per type");
    size_t i;

    fprintf(out, "Environment variables:\n");
    for (i = 0; i < n; i++) {
        const struct wa_cfg_spec *s = &spec[i];
        fprintf(out, "  %-28s %-8s %s%s\n", s->name, types[s->type], s->help,
                (s->flags & WA_CFG_SECRET) ? " (secret; also <NAME>_FILE)" : "");
        if (s->def != NULL && !(s->flags & WA_CFG_SECRET)) {
            fprintf(out, "  %-28s          default: %s\n", "", s->def);
        }
    }
}
