/* id.c: ULIDs (monotonic within a millisecond) and random bytes from getrandom(2). */
#include "wa/id.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "wa/clock.h"
#include "wa/hex.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t ulid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static unsigned char last_rand[10];

enum wa_err
wa_random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return WA_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return WA_OK;
}

enum wa_err
wa_random_hex(char *out, size_t len)
{
    unsigned char tmp[64];
    size_t done = 0;

    while (done < len) {
        size_t n = len - done < sizeof(tmp) ? len - done : sizeof(tmp);
        if (wa_random_bytes(tmp, n) != WA_OK) {
            return WA_EIO;
        }
        wa_hex_encode(tmp, n, out + 2 * done); /* its NUL is overwritten by the next part */
        done += n;
    }
    out[2 * len] = '\0';
    return WA_OK;
}

static void
encode(uint64_t ms, const unsigned char rnd[10], char out[WA_ULID_LEN])
{
    /* 128 bits (48 of time, 80 random) as hi:lo -> 26 base32 digits from the last, 5 bits each
     * shifted out; the first digit takes the 3 bits left. */
    uint64_t hi = ms << 16 | (uint64_t)rnd[0] << 8 | rnd[1], lo = 0;
    int i;

    for (i = 2; i < 10; i++) {
        lo = lo << 8 | rnd[i];
    }
    for (i = 25; i >= 0; i--) {
        out[i] = crockford[lo & 31];
        lo = lo >> 5 | hi << 59;
        hi >>= 5;
    }
    out[26] = '\0';
}

void
wa_ulid_at(uint64_t wall_ms, char out[WA_ULID_LEN])
{
    unsigned char rnd[10];
    int i;

    pthread_mutex_lock(&ulid_lock);
    if (wall_ms <= last_ms) {
        /* same (or an earlier) millisecond: increment the random part to stay sortable */
        wall_ms = last_ms;
        for (i = 9; i >= 0; i--) {
            if (++last_rand[i] != 0) {
                break;
            }
        }
    } else {
        if (wa_random_bytes(last_rand, sizeof(last_rand)) != WA_OK) {
            for (i = 0; i < 10; i++) {
                last_rand[i] = (unsigned char)(wall_ms >> (i % 6) ^ (uint64_t)i * 0x9E);
            }
        }
        last_rand[0] &= 0x7F; /* leave room to increment without overflowing */
        last_ms = wall_ms;
    }
    memcpy(rnd, last_rand, sizeof(rnd));
    pthread_mutex_unlock(&ulid_lock);
    encode(wall_ms, rnd, out);
}

void
wa_ulid_new(char out[WA_ULID_LEN])
{
    wa_ulid_at(wa_clock_wall_ms(), out);
}
