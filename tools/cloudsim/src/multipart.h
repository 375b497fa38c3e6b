/* multipart.h: the multipart/form-data parser of wa-cloudsim's media upload. */
#ifndef CS_MULTIPART_H
#define CS_MULTIPART_H

#include <stddef.h>

/* One part; every pointer borrowed from the body given to cs_multipart_parse. */
struct cs_multipart_part {
    const char *name; /* points into a header; length name_len */
    size_t name_len;
    const char *ctype;
    size_t ctype_len;
    const char *data;
    size_t len;
};

/* Parses up to max parts of body (len bytes) with the boundary from ctype (the Content-Type
 * header). Returns the number of parts, or -1 when the body is malformed. */
int cs_multipart_parse(const char *ctype, const char *body, size_t len,
                       struct cs_multipart_part *parts, int max);

#endif
