/* wa/clock.h: monotonic and wall clocks in milliseconds, RFC 3339 formatting. */
#ifndef WA_CLOCK_H
#define WA_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds (CLOCK_MONOTONIC); for timeouts and durations. */
uint64_t wa_clock_mono_ms(void);
/* Monotonic microseconds; for latency histograms. */
uint64_t wa_clock_mono_us(void);
/* Wall clock milliseconds since the Unix epoch; for timestamps that leave the process. */
uint64_t wa_clock_wall_ms(void);

#define WA_RFC3339_LEN 32
/* Writes e.g. "2026-11-21T13:45:58.123Z" (UTC, millisecond precision) into out. */
void wa_clock_rfc3339(uint64_t wall_ms, char out[WA_RFC3339_LEN]);

#endif
