/*
 * spool.c: `wactl spool inspect DIR`: reads wa-ingest's spool files offline.
 *
 * This reader follows the frame format written by services/ingest/src/spool.c (a daemon's
 * files are not included from a tool): "WASP" | u32 payload length | u32 CRC-32 (IEEE) of the
 * payload | payload of 7 fields, each u32 length + bytes: topic, key, id, type, source,
 * traceparent, value; little-endian. A torn tail (short frame or bad CRC at the end) is what
 * a crash during an unacknowledged write leaves: reported, not an error. A bad frame followed
 * by more data is damage: exit 1. quarantine-spool-*.log files (records wa-ingest set aside:
 * a damaged frame, or refused by Kafka) are read the same way and listed first.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/cloudevent.h"
#include "wactl.h"

#define NFIELDS   7
#define MAX_FILES 4096
#define MAX_FILE  (1024L * 1024 * 1024) /* larger files are not read whole */

static uint32_t
crc32_ieee(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;

    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        }
    }
    return ~c;
}

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads the whole file into a new buffer (free()); NULL on failure, said on stderr. */
static unsigned char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    long size;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || size > MAX_FILE ||
        fseek(f, 0, SEEK_SET) != 0 || (data = malloc((size_t)size + 1)) == NULL ||
        fread(data, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "wactl spool: cannot read %s\n", path);
        free(data);
        data = NULL;
    } else {
        *len = (size_t)size;
    }
    if (f != NULL) {
        fclose(f);
    }
    return data;
}

/* Prints every record of one file; returns WX_OK, or WX_NO when damaged before its end. */
static int
inspect_file(const struct wx *x, const char *dir, const char *name, size_t *total)
{
    char path[4096], trace[WA_TRACE_ID_LEN];
    size_t len = 0, pos = 0, records = 0;
    unsigned char *data;
    int rc = WX_OK;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((data = slurp(path, &len)) == NULL) {
        return WX_NO;
    }
    if (!x->json) {
        printf("%s (%zu bytes)\n", name, len);
    }
    while (pos < len) {
        const unsigned char *f[NFIELDS];
        uint32_t fl[NFIELDS], plen;
        size_t at;
        bool ok = len - pos >= 12 && memcmp(data + pos, "WASP", 4) == 0;

        plen = ok ? get32(data + pos + 4) : 0;
        ok = ok && plen <= len - pos - 12 &&
             crc32_ieee(data + pos + 12, plen) == get32(data + pos + 8);
        for (int i = 0, a = 0; ok && i < NFIELDS; i++) {
            at = pos + 12 + (size_t)a;
            ok = (size_t)a + 4 <= plen && (fl[i] = get32(data + at)) <= plen - (size_t)a - 4;
            f[i] = data + at + 4;
            a += 4 + (int)fl[i];
        }
        if (!ok) {
            /* a torn tail stops here; anything that looks like another frame later is damage */
            bool later = false;

            for (size_t i = pos + 1; i + 4 <= len && !later; i++) {
                later = memcmp(data + i, "WASP", 4) == 0;
            }
            printf("%s  %s at byte %zu (%zu bytes ignored)\n", x->json ? "#" : "",
                   later ? "DAMAGED record" : "torn tail", pos, len - pos);
            rc = later ? WX_NO : WX_OK;
            break;
        }
        {
            char tp[WA_TRACEPARENT_LEN] = "";

            snprintf(tp, sizeof(tp), "%.*s", (int)fl[5], (const char *)f[5]);
            if (wa_traceparent_trace_id(tp, trace) != WA_OK) {
                snprintf(trace, sizeof(trace), "-");
            }
        }
        if (x->json) {
            printf("{\"file\":\"%s\",\"topic\":\"%.*s\",\"key\":\"%.*s\",\"value\":%.*s}\n", name,
                   (int)fl[0], (const char *)f[0], (int)fl[1], (const char *)f[1], (int)fl[6],
                   (const char *)f[6]);
        } else {
            printf("  %.*s key=%.*s id=%.*s type=%.*s trace=%s %u bytes\n", (int)fl[0],
                   (const char *)f[0], (int)fl[1], (const char *)f[1], (int)fl[2],
                   (const char *)f[2], (int)fl[3], (const char *)f[3], trace, fl[6]);
        }
        records++;
        pos += 12 + plen;
    }
    *total += records;
    free(data);
    return rc;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
wx_cmd_spool(struct wx *x)
{
    char *names[MAX_FILES];
    size_t n = 0, total = 0;
    struct dirent *de;
    DIR *d;
    int rc = WX_OK;

    if (x->nargs != 2 || strcmp(x->args[0], "inspect") != 0) {
        fprintf(stderr, "usage: wactl spool inspect DIR (wactl spool --help)\n");
        return WX_USAGE;
    }
    if ((d = opendir(x->args[1])) == NULL) {
        fprintf(stderr, "wactl spool: cannot open %s\n", x->args[1]);
        return WX_USAGE;
    }
    while ((de = readdir(d)) != NULL && n < MAX_FILES) {
        size_t l = strlen(de->d_name);

        if ((strncmp(de->d_name, "spool-", 6) == 0 ||
             strncmp(de->d_name, "quarantine-spool-", 17) == 0) &&
            l > 4 && strcmp(de->d_name + l - 4, ".log") == 0 &&
            (names[n] = strdup(de->d_name)) != NULL) {
            n++;
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), by_name); /* ULID names: oldest first, replay order */
    for (size_t i = 0; i < n; i++) {
        if (inspect_file(x, x->args[1], names[i], &total) != WX_OK) {
            rc = WX_NO;
        }
        free(names[i]);
    }
    if (!x->json) {
        printf("%zu file(s), %zu record(s) waiting for replay\n", n, total);
    }
    return rc;
}
