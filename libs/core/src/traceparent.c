/*
 * traceparent.c: W3C Trace Context "traceparent" values (version 00).
 *
 * Format: "00-" 32 lowercase hex trace-id "-" 16 hex parent-id "-" 2 hex flags. All-zero ids
 * and version ff are invalid. A later version is accepted by its 00-compatible prefix when it
 * is followed by the end or a '-' (the specification's forward-compatibility rule).
 * No shared state: safe on any thread.
 */
#include "wa/traceparent.h"

#include <stdint.h>
#include <string.h>

#include "wa/clock.h"
#include "wa/hex.h"
#include "wa/id.h"

#define TRACE_HEX 32
#define SPAN_HEX  16

static bool
lower_hex(const char *s, size_t n, bool *all_zero)
{
    bool zero = true;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
        zero = zero && c == '0';
    }
    if (all_zero != NULL) {
        *all_zero = zero;
    }
    return true;
}

bool
wa_traceparent_valid(const char *s)
{
    bool zero;
    size_t len;

    if (s == NULL || (len = strnlen(s, 64)) < WA_TRACEPARENT_LEN - 1) {
        return false;
    }
    if (!lower_hex(s, 2, NULL) || strncmp(s, "ff", 2) == 0 || s[2] != '-') {
        return false;
    }
    if (!lower_hex(s + 3, TRACE_HEX, &zero) || zero || s[35] != '-') {
        return false;
    }
    if (!lower_hex(s + 36, SPAN_HEX, &zero) || zero || s[52] != '-' ||
        !lower_hex(s + 53, 2, NULL)) {
        return false;
    }
    if (strncmp(s, "00", 2) == 0) {
        return len == WA_TRACEPARENT_LEN - 1;
    }
    return len == WA_TRACEPARENT_LEN - 1 || s[55] == '-';
}

enum wa_err
wa_traceparent_trace_id(const char *tp, char out[WA_TRACE_ID_LEN])
{
    out[0] = '\0';
    if (!wa_traceparent_valid(tp)) {
        return WA_EPARSE;
    }
    memcpy(out, tp + 3, TRACE_HEX);
    out[TRACE_HEX] = '\0';
    return WA_OK;
}

/* splitmix64: only used if the kernel's random source fails, so ids stay unique enough. */
static uint64_t
fallback_random(void)
{
    static _Thread_local uint64_t state;
    uint64_t z;

    if (state == 0) {
        state = wa_clock_mono_us() ^ (wa_clock_wall_ms() << 20) ^ (uint64_t)(uintptr_t)&state;
    }
    z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Fills b with n random bytes: the kernel's, else the fallback generator's. */
static void
random_fill(unsigned char *b, size_t n)
{
    if (wa_random_bytes(b, n) != WA_OK) {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = fallback_random();

            memcpy(b + i, &r, n - i < 8 ? n - i : 8);
        }
    }
}

/* Writes the 2n lowercase hex digits of b[0..n) (n <= 16) and a NUL into out; an all-zero id
 * (invalid) gets a last byte of 1. */
static void
hex_id(const unsigned char *b, size_t n, char *out)
{
    unsigned char bytes[16];
    bool zero = true;

    memcpy(bytes, b, n);
    for (size_t i = 0; i < n; i++) {
        zero = zero && bytes[i] == 0;
    }
    if (zero) {
        bytes[n - 1] = 1;
    }
    wa_hex_encode(bytes, n, out);
}

void
wa_traceparent_from_random(const unsigned char rnd[WA_TRACEPARENT_RANDOM_LEN],
                           char out[WA_TRACEPARENT_LEN])
{
    memcpy(out, "00-", 3);
    hex_id(rnd, TRACE_HEX / 2, out + 3);
    out[35] = '-';
    hex_id(rnd + TRACE_HEX / 2, SPAN_HEX / 2, out + 36);
    memcpy(out + 52, "-01", 4); /* sampled; copies the NUL too */
}

void
wa_traceparent_new(char out[WA_TRACEPARENT_LEN])
{
    unsigned char rnd[WA_TRACEPARENT_RANDOM_LEN];

    random_fill(rnd, sizeof(rnd));
    wa_traceparent_from_random(rnd, out);
}

void
wa_traceparent_child(const char *parent, char out[WA_TRACEPARENT_LEN])
{
    if (!wa_traceparent_valid(parent)) {
        wa_traceparent_new(out);
        return;
    }
    unsigned char span[SPAN_HEX / 2];

    memcpy(out, "00-", 3);
    memcpy(out + 3, parent + 3, TRACE_HEX);
    out[35] = '-';
    random_fill(span, sizeof(span));
    hex_id(span, sizeof(span), out + 36);
    out[52] = '-';
    memcpy(out + 53, parent + 53, 2); /* flags travel with the trace */
    out[55] = '\0';
}
