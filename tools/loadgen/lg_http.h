/*
 * lg_http.h: the HTTP/1.1 response framing the keep-alive load generators share (wa-loadgen,
 * wa-gateway-loadgen): they write requests by hand and read answers from a per-connection
 * buffer.
 */
#ifndef LG_HTTP_H
#define LG_HTTP_H

#include <stddef.h>

/* When in[0 .. *inlen) (cap bytes of storage) starts with a whole response (headers and a
 * Content-Length body), removes it from the buffer and returns its status; else returns 0. */
int lg_take_response(char *in, size_t *inlen, size_t cap);

#endif
