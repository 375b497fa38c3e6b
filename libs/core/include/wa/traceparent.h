/*
 * wa/traceparent.h: W3C Trace Context "traceparent" values (version 00): made for every HTTP
 * request (libs/httpd) and carried on every event (the CloudEvents extension, libs/kafka).
 *
 * Threading: no shared state; every function is safe on any thread.
 */
#ifndef WA_TRACEPARENT_H
#define WA_TRACEPARENT_H

#include <stdbool.h>

#include "wa/err.h"

#define WA_TRACEPARENT_LEN 56 /* "00-" 32 hex "-" 16 hex "-" 2 hex, and the NUL */
#define WA_TRACE_ID_LEN    33 /* 32 hex and the NUL */

/* Writes a new traceparent (random trace and span ids, never all zeros, sampled) into out. */
void wa_traceparent_new(char out[WA_TRACEPARENT_LEN]);
/* The same from random bytes the caller drew (16 for the trace id, then 8 for the span id),
 * e.g. from a buffered getrandom on a hot path. Borrows rnd. */
#define WA_TRACEPARENT_RANDOM_LEN 24
void wa_traceparent_from_random(const unsigned char rnd[WA_TRACEPARENT_RANDOM_LEN],
                                char out[WA_TRACEPARENT_LEN]);

/*
 * Writes a child of parent into out: same trace id and flags, new span id. A NULL or malformed
 * parent starts a new trace instead (as W3C Trace Context asks of receivers).
 */
void wa_traceparent_child(const char *parent, char out[WA_TRACEPARENT_LEN]);

/* True when s is a valid traceparent (version 00 exactly; later versions by their prefix). */
bool wa_traceparent_valid(const char *s);

/* Writes the 32-hex trace id of tp into out. WA_EPARSE when tp is not valid. */
enum wa_err wa_traceparent_trace_id(const char *tp, char out[WA_TRACE_ID_LEN]);

#endif
