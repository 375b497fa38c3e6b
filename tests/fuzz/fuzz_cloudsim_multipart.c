/*
 * fuzz_cloudsim_multipart.c: libFuzzer driver for wa-cloudsim's multipart/form-data parser
 * (media uploads are untrusted HTTP bodies). Input layout: the Content-Type header value up to
 * the first newline, the body after it. Invariants: no crash; at most max parts; every pointer
 * and length returned lies inside the body (or, for nothing, inside the header value).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
inside(const char *p, size_t len, const char *lo, size_t n)
{
    if (p != NULL && (p < lo || p + len > lo + n)) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl != NULL ? (size_t)(nl - data) : size;
    size_t blen = size - hlen - (nl != NULL ? 1 : 0);
    char *ctype = malloc(hlen + 1), *body = malloc(blen + 1);
    struct cs_multipart_part parts[8];
    int n, i;

    if (ctype == NULL || body == NULL) {
        free(ctype);
        free(body);
        return 0;
    }
    memcpy(ctype, data, hlen);
    ctype[hlen] = '\0';
    memcpy(body, data + size - blen, blen);
    body[blen] = '\0'; /* as libs/httpd hands bodies over */
    n = cs_multipart_parse(ctype, body, blen, parts, 8);
    if (n < -1 || n > 8) {
        abort();
    }
    for (i = 0; i < n; i++) {
        inside(parts[i].name, parts[i].name_len, body, blen);
        inside(parts[i].ctype, parts[i].ctype_len, body, blen);
        inside(parts[i].data, parts[i].len, body, blen);
    }
    free(ctype);
    free(body);
    return 0;
}
