/*
 * bucket.c: half-hour buckets (UTC) and their local labels in an IANA time zone, read from
 * the system's TZif files (pure apart from an_tz_load's file read).
 *
 * Aggregates are kept per half-hour because every zone offset in use except a handful
 * (Asia/Kathmandu +05:45, Pacific/Chatham +12:45, Australia/Eucla +08:45) is a multiple of 30
 * minutes: an hour, day or month of such a zone is a whole number of UTC half hours, so its
 * figures are the merge of theirs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics.h"

bool
an_granularity_parse(const char *s, enum an_granularity *out)
{
    static const char *const names[] = {"half_hour", "hour", "day", "month"};

    for (size_t i = 0; s != NULL && i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum an_granularity)i;
            return true;
        }
    }
    return false;
}

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t
be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

void
an_tz_free(struct an_tz *tz)
{
    free(tz->when);
    free(tz->offset);
    tz->when = NULL;
    tz->offset = NULL;
    tz->n = 0;
}

/* TZif (RFC 8536): header, then v1 data with 4-byte times; v2+ repeat it with 8-byte times. */
enum wa_err
an_tz_parse(const unsigned char *data, size_t len, struct an_tz *tz, struct wa_error *error)
{
    size_t off = 0, tsize = 4;
    uint32_t isutc, isstd, leap, timecnt, typecnt, charcnt;
    const unsigned char *h;

    tz->n = 0;
    tz->when = NULL;
    tz->offset = NULL;
    tz->initial = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t need, body;

        if (len - off < 44 || memcmp(data + off, "TZif", 4) != 0) {
            return wa_error_set(error, WA_EPARSE, "not a TZif file");
        }
        h = data + off;
        isutc = be32(h + 20);
        isstd = be32(h + 24);
        leap = be32(h + 28);
        timecnt = be32(h + 32);
        typecnt = be32(h + 36);
        charcnt = be32(h + 40);
        if (timecnt > 100000 || typecnt == 0 || typecnt > 256 || charcnt > 65536 || leap > 100000 ||
            isutc > typecnt || isstd > typecnt) {
            return wa_error_set(error, WA_EPARSE, "TZif counts out of range");
        }
        need = (size_t)timecnt * (tsize + 1) + (size_t)typecnt * 6 + charcnt +
               (size_t)leap * (tsize + 4) + isstd + isutc;
        body = off + 44;
        if (len - body < need) {
            return wa_error_set(error, WA_EPARSE, "TZif data truncated");
        }
        if (pass == 0 && h[4] >= '2') {
            off = body + need; /* skip the 32-bit data, read the 64-bit one */
            tsize = 8;
            continue;
        }
        {
            const unsigned char *times = data + body, *idx = times + (size_t)timecnt * tsize;
            const unsigned char *types = idx + timecnt;

            tz->when = calloc(timecnt + 1, sizeof(*tz->when));
            tz->offset = calloc(timecnt + 1, sizeof(*tz->offset));
            if (tz->when == NULL || tz->offset == NULL) {
                an_tz_free(tz);
                return wa_error_set(error, WA_ENOMEM, "out of memory");
            }
            /* the first non-DST type, else type 0, is the offset before any transition */
            tz->initial = (int32_t)be32(types);
            for (uint32_t i = 0; i < typecnt; i++) {
                if (types[i * 6 + 4] == 0) {
                    tz->initial = (int32_t)be32(types + i * 6);
                    break;
                }
            }
            for (uint32_t i = 0; i < timecnt; i++) {
                int64_t t = tsize == 8 ? be64(times + (size_t)i * 8)
                                       : (int64_t)(int32_t)be32(times + (size_t)i * 4);
                if (idx[i] >= typecnt || (i > 0 && t < tz->when[i - 1])) {
                    an_tz_free(tz);
                    return wa_error_set(error, WA_EPARSE, "TZif transition %u invalid", i);
                }
                tz->when[i] = t;
                tz->offset[i] = (int32_t)be32(types + (size_t)idx[i] * 6);
                if (tz->offset[i] < -86400 || tz->offset[i] > 86400) {
                    an_tz_free(tz);
                    return wa_error_set(error, WA_EPARSE, "TZif offset out of range");
                }
            }
            tz->n = timecnt;
            if (tz->initial < -86400 || tz->initial > 86400) {
                an_tz_free(tz);
                return wa_error_set(error, WA_EPARSE, "TZif offset out of range");
            }
            return WA_OK;
        }
    }
    return wa_error_set(error, WA_EPARSE, "not a TZif file");
}

static bool
zone_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n >= sizeof(((struct an_tz *)0)->name) || name[0] == '/' ||
        strstr(name, "..") != NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+')) {
            return false;
        }
    }
    return true;
}

enum wa_err
an_tz_load(const char *name, const char *dir, struct an_tz *tz, struct wa_error *error)
{
    char path[512];
    unsigned char *data;
    FILE *f;
    size_t len;
    enum wa_err err;

    memset(tz, 0, sizeof(*tz));
    if (name == NULL || !zone_name_ok(name)) {
        return wa_error_set(error, WA_EINVAL, "not a time zone name");
    }
    snprintf(tz->name, sizeof(tz->name), "%s", name);
    if (strcmp(name, "UTC") == 0) {
        return WA_OK; /* no transitions, offset 0, whether or not tzdata is installed */
    }
    snprintf(path, sizeof(path), "%s/%s", dir != NULL ? dir : "/usr/share/zoneinfo", name);
    if ((f = fopen(path, "rb")) == NULL) {
        return wa_error_set(error, WA_ENOTFOUND, "unknown time zone %s", name);
    }
    data = malloc(1 << 20);
    if (data == NULL) {
        fclose(f);
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    len = fread(data, 1, 1 << 20, f);
    fclose(f);
    err = an_tz_parse(data, len, tz, error);
    free(data);
    snprintf(tz->name, sizeof(tz->name), "%s", name);
    return err;
}

int32_t
an_tz_offset(const struct an_tz *tz, int64_t t_ms)
{
    int64_t t = t_ms >= 0 ? t_ms / 1000 : -((-t_ms + 999) / 1000);
    size_t lo = 0, hi = tz->n;

    if (tz->n == 0 || t < tz->when[0]) {
        return tz->initial;
    }
    while (hi - lo > 1) { /* last transition <= t */
        size_t mid = lo + (hi - lo) / 2;
        if (tz->when[mid] <= t) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return tz->offset[lo];
}

int64_t
an_bucket_half_hour(int64_t t_ms)
{
    int64_t r = t_ms % AN_HALF_HOUR_MS;

    return t_ms - (r < 0 ? r + AN_HALF_HOUR_MS : r);
}

void
an_bucket_label(const struct an_tz *tz, int64_t b_ms, enum an_granularity g, char *out, size_t size)
{
    time_t local = (time_t)(b_ms / 1000 + an_tz_offset(tz, b_ms));
    struct tm tm;

    if (gmtime_r(&local, &tm) == NULL) {
        snprintf(out, size, "invalid");
        return;
    }
    switch (g) {
    case AN_HALF_HOUR:
        snprintf(out, size, "%04d-%02d-%02dT%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min);
        break;
    case AN_HOUR:
        snprintf(out, size, "%04d-%02d-%02dT%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour);
        break;
    case AN_DAY:
        snprintf(out, size, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        break;
    default:
        snprintf(out, size, "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
        break;
    }
}
