/*
 * url.c: parsing of redis:// URLs ("redis://[[user]:password@]host[:port][/db]").
 *
 * Pure function, any thread. The password is never copied into error messages. Percent-encoding
 * is not decoded (passwords with '@' or '/' must be avoided; documented in docs/internals/kv.md).
 */
#include "wa/kv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static enum wa_err
parse_int(const char *s, size_t len, long min, long max, long *out)
{
    char tmp[16];
    char *end = NULL;
    long v;

    if (len == 0 || len >= sizeof(tmp)) {
        return WA_ECONFIG;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    errno = 0;
    v = strtol(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return WA_ECONFIG;
    }
    *out = v;
    return WA_OK;
}

enum wa_err
wa_kv_url_parse(const char *url, struct wa_kv_url *out, struct wa_error *error)
{
    static const char scheme[] = "redis://";
    const char *p, *end, *at, *slash, *host, *host_end, *colon;
    long v;

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (url != NULL && strncmp(url, "rediss://", 9) == 0) {
        return wa_error_set(error, WA_ECONFIG,
                            "rediss:// (TLS) is not supported (hiredis 0.14 has no TLS): run a TLS "
                            "tunnel beside the daemon and give its redis:// address "
                            "(docs/operations.md, \"Redis over TLS\")");
    }
    if (url == NULL || strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        return wa_error_set(error, WA_ECONFIG, "redis url must start with redis://");
    }
    p = url + sizeof(scheme) - 1;
    end = p + strlen(p);
    slash = strchr(p, '/');
    if (slash == NULL) {
        slash = end;
    }
    /* userinfo: the last '@' before the path */
    at = NULL;
    for (const char *q = p; q < slash; q++) {
        if (*q == '@') {
            at = q;
        }
    }
    if (at != NULL) {
        const char *pw = memchr(p, ':', (size_t)(at - p));
        if (pw == NULL) {
            return wa_error_set(error, WA_ECONFIG, "redis url: userinfo must be [user]:password");
        }
        if ((size_t)(at - pw - 1) >= sizeof(out->password)) {
            return wa_error_set(error, WA_ECONFIG, "redis url: password too long");
        }
        if ((size_t)(pw - p) >= sizeof(out->username)) {
            return wa_error_set(error, WA_ECONFIG, "redis url: user name too long");
        }
        memcpy(out->username, p, (size_t)(pw - p));
        memcpy(out->password, pw + 1, (size_t)(at - pw - 1));
        p = at + 1;
    }
    /* host, possibly a bracketed IPv6 literal */
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(slash - host));
        if (host_end == NULL) {
            return wa_error_set(error, WA_ECONFIG, "redis url: unterminated [ipv6] host");
        }
        colon = host_end + 1 < slash && host_end[1] == ':' ? host_end + 1 : NULL;
        if (colon == NULL && host_end + 1 != slash) {
            return wa_error_set(error, WA_ECONFIG, "redis url: junk after [ipv6] host");
        }
    } else {
        host = p;
        colon = memchr(p, ':', (size_t)(slash - p));
        host_end = colon != NULL ? colon : slash;
    }
    if (host_end == host) {
        return wa_error_set(error, WA_ECONFIG, "redis url: empty host");
    }
    if ((size_t)(host_end - host) >= sizeof(out->host)) {
        return wa_error_set(error, WA_ECONFIG, "redis url: host too long");
    }
    memcpy(out->host, host, (size_t)(host_end - host));
    if (colon != NULL) {
        if (parse_int(colon + 1, (size_t)(slash - colon - 1), 1, 65535, &v) != WA_OK) {
            return wa_error_set(error, WA_ECONFIG, "redis url: port must be 1..65535");
        }
        out->port = (int)v;
    }
    if (slash < end && slash + 1 < end) {
        if (parse_int(slash + 1, (size_t)(end - slash - 1), 0, 1023, &v) != WA_OK) {
            return wa_error_set(error, WA_ECONFIG, "redis url: database must be 0..1023");
        }
        out->db = (int)v;
    }
    return WA_OK;
}
