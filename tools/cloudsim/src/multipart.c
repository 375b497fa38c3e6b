/*
 * multipart.c: multipart/form-data parsing for media uploads (POST /{phone_number_id}/media).
 *
 * Input is untrusted: every pointer returned points inside body and every length stays within
 * it (fuzzed by tests/fuzz/fuzz_cloudsim_multipart.c). No allocation.
 */
#include <stdio.h>
#include <string.h>

#include "multipart.h"

static const char *
find_header_param(const char *hdrs, size_t hlen, const char *key, size_t *len)
{
    const char *p = memmem(hdrs, hlen, key, strlen(key));
    const char *end;

    if (p == NULL) {
        return NULL;
    }
    p += strlen(key);
    end = memchr(p, '"', hlen - (size_t)(p - hdrs));
    if (end == NULL) {
        return NULL;
    }
    *len = (size_t)(end - p);
    return p;
}

int
cs_multipart_parse(const char *ctype, const char *body, size_t len, struct cs_multipart_part *parts,
                   int max)
{
    char delim[96];
    const char *b = ctype != NULL ? strstr(ctype, "boundary=") : NULL;
    size_t blen, dlen;
    const char *p, *end = body + len;
    int n = 0;

    if (b == NULL) {
        return -1;
    }
    b += 9;
    if (*b == '"') {
        b++;
    }
    blen = strcspn(b, "\";, ");
    if (blen == 0 || blen > 70) {
        return -1;
    }
    dlen = (size_t)snprintf(delim, sizeof(delim), "--%.*s", (int)blen, b);
    p = memmem(body, len, delim, dlen);
    while (p != NULL && n < max) {
        const char *hdr, *hdr_end, *next;

        p += dlen;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
            return n; /* closing delimiter */
        }
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            return -1;
        }
        hdr = p + 2;
        hdr_end = memmem(hdr, (size_t)(end - hdr), "\r\n\r\n", 4);
        if (hdr_end == NULL) {
            return -1;
        }
        next = memmem(hdr_end + 4, (size_t)(end - hdr_end - 4), delim, dlen);
        if (next == NULL || next - (hdr_end + 4) < 2) {
            return -1;
        }
        memset(&parts[n], 0, sizeof(parts[n]));
        parts[n].name =
            find_header_param(hdr, (size_t)(hdr_end - hdr), "name=\"", &parts[n].name_len);
        {
            const char *ct = memmem(hdr, (size_t)(hdr_end - hdr), "Content-Type:", 13);

            if (ct == NULL) {
                ct = memmem(hdr, (size_t)(hdr_end - hdr), "content-type:", 13);
            }
            if (ct != NULL) {
                const char *e = memmem(ct, (size_t)(hdr_end + 2 - ct), "\r\n", 2);

                ct += 13;
                while (*ct == ' ') {
                    ct++;
                }
                parts[n].ctype = ct;
                parts[n].ctype_len = e != NULL ? (size_t)(e - ct) : 0;
            }
        }
        parts[n].data = hdr_end + 4;
        parts[n].len = (size_t)(next - 2 - (hdr_end + 4)); /* minus the CRLF before delim */
        n++;
        p = next;
    }
    return n;
}
