/*
 * links.c: the public helper routes, after limit.c (limited per client address):
 *   GET /v1/links/click-to-chat?phone=&text=      {"url": "https://wa.me/<digits>?text=..."}
 *   GET /v1/links/click-to-chat.png?phone=&text=  a QR code of that URL (libs/qrcode), PNG
 *   GET /v1/openapi.json                          the OpenAPI 3.1 document (openapi.json,
 *                                                 compiled in by CMake)
 * Threading: loop thread; answered at once.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "wa/qrcode.h"

extern const char gw_openapi_json[];
extern const size_t gw_openapi_json_len;

/* The URL, or an answer (422 naming the parameter) and false. */
static bool
link_url(struct gw_call *c, char *url, size_t size)
{
    struct gw_body_check chk = {.n = 1};
    enum wa_err err = gw_click_to_chat_url(wa_http_req_query(c->req, "phone"),
                                           wa_http_req_query(c->req, "text"), url, size);

    if (err == WA_OK) {
        return true;
    }
    snprintf(chk.errors[0].pointer, sizeof(chk.errors[0].pointer), "%s",
             err == WA_EINVAL ? "phone" : "text");
    snprintf(chk.errors[0].detail, sizeof(chk.errors[0].detail), "%s",
             err == WA_EINVAL ? "required: a phone number in E.164 (5 to 15 digits)"
                              : "at most 1024 characters");
    gw_call_invalid(c, &chk);
    return false;
}

void
gw_links_click_to_chat(struct gw_call *c)
{
    char *url = malloc(GW_LINK_URL_MAX);

    if (url == NULL) {
        gw_call_problem(c, 503, "Service Unavailable", "out of memory");
        return;
    }
    if (link_url(c, url, GW_LINK_URL_MAX)) {
        gw_call_reply_value(c, 200, json_pack("{s:s}", "url", url));
    }
    free(url);
}

void
gw_links_qr(struct gw_call *c)
{
    char *url = malloc(GW_LINK_URL_MAX);
    struct wa_buf png;

    if (url == NULL) {
        gw_call_problem(c, 503, "Service Unavailable", "out of memory");
        return;
    }
    if (!link_url(c, url, GW_LINK_URL_MAX)) {
        free(url);
        return;
    }
    wa_buf_init(&png, 1 << 20);
    if (wa_qr_png(url, strlen(url), 8, 4, &png) != WA_OK) {
        struct gw_body_check chk = {.n = 1};

        snprintf(chk.errors[0].pointer, sizeof(chk.errors[0].pointer), "%s", "text");
        snprintf(chk.errors[0].detail, sizeof(chk.errors[0].detail), "%s",
                 "too long for a QR code");
        gw_call_invalid(c, &chk);
    } else {
        wa_http_reply_header(c->req, "Cache-Control", "public, max-age=86400");
        gw_call_raw(c, 200, "image/png", png.data, png.len);
    }
    wa_buf_cleanup(&png);
    free(url);
}

void
gw_openapi_get(struct gw_call *c)
{
    gw_call_raw(c, 200, "application/json", gw_openapi_json, gw_openapi_json_len);
}
