/*
 * wa/spool_frame.h: the frame format of wa-ingest's spool files, in one place for the daemon
 * that writes and replays them and for the tools that read them offline (wactl spool inspect).
 *
 * Frame: "WASP" | u32 payload length | u32 CRC-32 (IEEE, zlib's) of the payload | payload;
 * payload = WA_SPOOL_FIELDS fields, each u32 length + bytes (topic, key, id, type, source,
 * traceparent, value); integers little-endian. A file is frames back to back; what follows the
 * last intact frame without another intact frame after it is a torn tail (a write that was
 * never acknowledged); a bad region with intact frames after it is damage, skipped by
 * wa_spool_frame_resync.
 */
#ifndef WA_SPOOL_FRAME_H
#define WA_SPOOL_FRAME_H

#include <stdbool.h>
#include <stddef.h>

#include "wa/buf.h"
#include "wa/err.h"

#define WA_SPOOL_FIELDS 7

/* Appends one frame of the fields (lens[i] bytes each) to b; b is unchanged on failure. */
enum wa_err wa_spool_frame_append(struct wa_buf *b, const char *const *fields, const size_t *lens);

/* True when a whole, intact frame starts at p[off] (off <= len): fields and lens then point
 * into p, and *frame_len is the frame's size. */
bool wa_spool_frame_at(const unsigned char *p, size_t len, size_t off, const char **fields,
                       size_t *lens, size_t *frame_len);

/* The offset of the first intact frame after off, or len when none follows. */
size_t wa_spool_frame_resync(const unsigned char *p, size_t len, size_t off);

#endif
