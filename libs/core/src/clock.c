/* clock.c: clocks and timestamp formatting. Thread-safe. */
#include "wa/clock.h"

#include <stdio.h>
#include <time.h>

uint64_t
wa_clock_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
wa_clock_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
wa_clock_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Writes v's w low decimal digits, zero-padded. */
static void
put_digits(char *p, int w, unsigned v)
{
    while (w > 0) {
        p[--w] = (char)('0' + v % 10);
        v /= 10;
    }
}

void
wa_clock_rfc3339(uint64_t wall_ms, char out[WA_RFC3339_LEN])
{
    time_t secs = (time_t)(wall_ms / 1000u);
    struct tm tm;
    size_t n;

    gmtime_r(&secs, &tm);
    if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) { /* not four digits */
        n = strftime(out, WA_RFC3339_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out + n, WA_RFC3339_LEN - n, ".%03uZ", (unsigned)(wall_ms % 1000u));
        return;
    }
    /* Every record carries one or two of these: digits by hand, not strftime + snprintf. */
    put_digits(out, 4, (unsigned)(tm.tm_year + 1900));
    out[4] = '-';
    put_digits(out + 5, 2, (unsigned)tm.tm_mon + 1);
    out[7] = '-';
    put_digits(out + 8, 2, (unsigned)tm.tm_mday);
    out[10] = 'T';
    put_digits(out + 11, 2, (unsigned)tm.tm_hour);
    out[13] = ':';
    put_digits(out + 14, 2, (unsigned)tm.tm_min);
    out[16] = ':';
    put_digits(out + 17, 2, (unsigned)tm.tm_sec);
    out[19] = '.';
    put_digits(out + 20, 3, (unsigned)(wall_ms % 1000u));
    out[23] = 'Z';
    out[24] = '\0';
}
