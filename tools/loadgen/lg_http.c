/* lg_http.c: response framing for the load generators (lg_http.h). */
#include "lg_http.h"

#include <stdlib.h>
#include <string.h>

int
lg_take_response(char *in, size_t *inlen, size_t cap)
{
    char *hdr_end, *cl;
    long len, status;
    size_t total;

    in[*inlen < cap ? *inlen : cap - 1] = '\0';
    hdr_end = strstr(in, "\r\n\r\n");
    if (hdr_end == NULL) {
        return 0;
    }
    cl = strcasestr(in, "Content-Length:");
    len = cl != NULL && cl < hdr_end ? strtol(cl + 15, NULL, 10) : 0;
    total = (size_t)(hdr_end + 4 - in) + (size_t)len;
    if (*inlen < total) {
        return 0;
    }
    status = strtol(in + 9, NULL, 10);
    memmove(in, in + total, *inlen - total);
    *inlen -= total;
    return (int)status;
}
