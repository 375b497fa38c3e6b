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

void
wa_clock_rfc3339(uint64_t wall_ms, char out[WA_RFC3339_LEN])
{
    time_t secs = (time_t)(wall_ms / 1000u);
    struct tm tm;
    size_t n;

    gmtime_r(&secs, &tm);
    n = strftime(out, WA_RFC3339_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, WA_RFC3339_LEN - n, ".%03uZ", (unsigned)(wall_ms % 1000u));
}
