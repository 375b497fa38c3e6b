/*
 * spool.c: `wactl spool inspect DIR`: reads wa-ingest's spool files offline.
 *
 * Frames are read with libs/spool (wa/spool_frame.h), the format wa-ingest writes. A torn tail
 * (short frame or bad CRC at the end) is what a crash during an unacknowledged write leaves:
 * reported, not an error. A bad region with intact frames after it is damage: reported, the
 * records after it are still listed, exit 1. quarantine-spool-*.log files (a replayed file that had
 * damaged frames) and dead-letter-spool-*.log files (records Kafka refused for good) are read the
 * same way and listed first.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/cloudevent.h"
#include "wa/spool_frame.h"
#include "wactl.h"

#define NFIELDS   WA_SPOOL_FIELDS
#define MAX_FILES 4096
#define MAX_FILE  (1024L * 1024 * 1024) /* larger files are not read whole */

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
        const char *f[NFIELDS];
        size_t fl[NFIELDS], flen;

        if (!wa_spool_frame_at(data, len, pos, f, fl, &flen)) {
            /* a torn tail ends the file; a bad region with intact frames after it is damage */
            size_t next = wa_spool_frame_resync(data, len, pos);

            if (next == len) {
                printf("%s  torn tail at byte %zu (%zu bytes ignored)\n", x->json ? "#" : "", pos,
                       len - pos);
                break;
            }
            printf("%s  DAMAGED record at byte %zu (%zu bytes skipped)\n", x->json ? "#" : "", pos,
                   next - pos);
            rc = WX_NO;
            pos = next;
            continue;
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
            printf("  %.*s key=%.*s id=%.*s type=%.*s trace=%s %zu bytes\n", (int)fl[0], f[0],
                   (int)fl[1], f[1], (int)fl[2], f[2], (int)fl[3], f[3], trace, fl[6]);
        }
        records++;
        pos += flen;
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
             strncmp(de->d_name, "quarantine-spool-", 17) == 0 ||
             strncmp(de->d_name, "dead-letter-spool-", 18) == 0) &&
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
