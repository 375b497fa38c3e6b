/*
 * wa/id.h: unique, sortable identifiers (ULID) and random bytes.
 *
 * A ULID is 26 Crockford base32 characters: 48 bits of wall-clock milliseconds then 80 random
 * bits. Within one millisecond the random part is incremented, so ids from one process sort in
 * creation order. Thread-safe.
 */
#ifndef WA_ID_H
#define WA_ID_H

#include <stddef.h>
#include <stdint.h>

#include "wa/err.h"

#define WA_ULID_LEN 27 /* 26 characters and the NUL */

/* Writes a new ULID into out. Never fails (falls back to a weaker source if getrandom fails). */
void wa_ulid_new(char out[WA_ULID_LEN]);
/* Writes a ULID for the given time into out (for tests and replays). */
void wa_ulid_at(uint64_t wall_ms, char out[WA_ULID_LEN]);
/* Fills buf with cryptographically secure random bytes. */
enum wa_err wa_random_bytes(void *buf, size_t len);
/* Writes 2*len lowercase hex digits of random bytes and a NUL into out (size 2*len+1). */
enum wa_err wa_random_hex(char *out, size_t len);

#endif
