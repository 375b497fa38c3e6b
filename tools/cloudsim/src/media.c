/*
 * media.c: the media endpoints (cloud-api.md §4.7).
 *
 *   POST /{ver}/{phone_number_id}/media  multipart/form-data (messaging_product, file, type)
 *                                         -> {"id":"<media id>"}; MIME and size limits per kind
 *                                         (an unsupported type: 100; too large: 131053).
 *   GET  /{ver}/{media_id}               -> {"messaging_product","url","mime_type","sha256",
 *                                         "file_size","id"}; the url is valid
 *                                         WA_SIM_MEDIA_URL_TTL (5 min) and a newer GET replaces it.
 *   DELETE /{ver}/{media_id}             -> {"success":true}
 *   GET  /_media/<id>?t=<token>          the bytes; needs the bearer token (401 without),
 *                                         404 for an expired or replaced url.
 *
 * Storage is in memory, bounded by WA_SIM_MEDIA_MAX_TOTAL (the oldest uploads are not evicted:
 * a full store answers 131053 until /_sim/reset). Threading: loop thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudsim.h"
#include "multipart.h"
#include "wa/clock.h"
#include "wa/crypto.h"
#include "wa/id.h"
#include "wa/whatsapp_message.h"

struct item {
    char id[24];
    char mime[128];
    char *data;
    size_t len;
    char sha256[WA_SHA256_LEN * 2 + 1];
    size_t number;
    char token[33];
    uint64_t url_expires; /* mono ms; 0: no url issued */
};

struct cs_media {
    struct cs_sim *sim;
    struct cs_map items; /* id -> struct item * (owned) */
    size_t total;
    uint64_t base;
    uint64_t seq;
};

static void
item_free(void *p)
{
    struct item *it = p;

    if (it != NULL) {
        free(it->data);
        free(it);
    }
}

enum wa_err
cs_media_new(struct cs_sim *sim, struct cs_media **out)
{
    struct cs_media *m = calloc(1, sizeof(*m));

    if (m == NULL) {
        return WA_ENOMEM;
    }
    m->sim = sim;
    cs_map_init(&m->items);
    (void)wa_random_bytes(&m->base, sizeof(m->base));
    /* 16-digit ids like Meta's: 1xxx... */
    m->base = 1000000000000000ull + (m->base % 800000000000000ull);
    *out = m;
    return WA_OK;
}

void
cs_media_reset(struct cs_media *m)
{
    cs_map_cleanup(&m->items, item_free);
    m->total = 0;
}

void
cs_media_free(struct cs_media *m)
{
    if (m != NULL) {
        cs_media_reset(m);
        free(m);
    }
}

bool
cs_media_exists(const struct cs_media *m, const char *id)
{
    return m != NULL && cs_map_get(&m->items, id) != NULL;
}

size_t
cs_media_count(const struct cs_media *m)
{
    return m != NULL ? m->items.count : 0;
}

/* An animated WebP: RIFF....WEBPVP8X with the animation flag (bit 1 of the flags byte). */
static bool
webp_animated(const unsigned char *d, size_t len)
{
    return len >= 21 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBPVP8X", 8) == 0 &&
           (d[20] & 0x02) != 0;
}

int64_t
cs_media_check(const char *mime, const void *data, size_t len, char *details, size_t n)
{
    static const struct {
        const char *mime;
        size_t max;
    } kinds[] = {
        {"audio/aac", 16u << 20},
        {"audio/amr", 16u << 20},
        {"audio/mpeg", 16u << 20},
        {"audio/mp4", 16u << 20},
        {"audio/ogg", 16u << 20},
        {"text/plain", 100u << 20},
        {"application/pdf", 100u << 20},
        {"application/msword", 100u << 20},
        {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", 100u << 20},
        {"application/vnd.ms-excel", 100u << 20},
        {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", 100u << 20},
        {"application/vnd.ms-powerpoint", 100u << 20},
        {"application/vnd.openxmlformats-officedocument.presentationml.presentation", 100u << 20},
        {"image/jpeg", 5u << 20},
        {"image/png", 5u << 20},
        {"image/webp", WA_WHATSAPP_STICKER_ANIMATED_MAX}, /* static: 100 KB, below */
        {"video/mp4", 16u << 20},
        {"video/3gpp", 16u << 20},
    };
    size_t mlen = strcspn(mime, ";"); /* "audio/ogg; codecs=opus" */

    for (size_t i = 0; i < WA_ARRAY_LEN(kinds); i++) {
        if (strlen(kinds[i].mime) == mlen && strncasecmp(kinds[i].mime, mime, mlen) == 0) {
            if (len == 0) {
                snprintf(details, n, "The uploaded file is empty.");
                return 131053;
            }
            if (len > kinds[i].max) {
                snprintf(details, n, "File of %zu bytes exceeds the %zu byte limit for %s.", len,
                         kinds[i].max, kinds[i].mime);
                return 131053;
            }
            if (strcmp(kinds[i].mime, "image/webp") == 0 && len > WA_WHATSAPP_STICKER_STATIC_MAX &&
                !webp_animated(data, len)) {
                snprintf(details, n,
                         "Static sticker of %zu bytes exceeds the %u byte limit (animated: %u).",
                         len, WA_WHATSAPP_STICKER_STATIC_MAX, WA_WHATSAPP_STICKER_ANIMATED_MAX);
                return 131053;
            }
            return 0;
        }
    }
    /* Meta refuses a type it does not take as an invalid parameter (#100), not 131053. */
    snprintf(details, n, "Param file must be a file with one of the supported types, got '%.64s'.",
             mime);
    return 100;
}

enum wa_err
cs_media_store(struct cs_media *m, size_t number, const char *mime, const void *data, size_t len,
               char *id_out)
{
    struct item *it;

    if (m->total + len > (size_t)m->sim->cfg->media_max_total) {
        return WA_ELIMIT;
    }
    it = calloc(1, sizeof(*it));
    if (it == NULL || (it->data = malloc(len > 0 ? len : 1)) == NULL) {
        free(it);
        return WA_ENOMEM;
    }
    memcpy(it->data, data, len);
    it->len = len;
    snprintf(it->mime, sizeof(it->mime), "%s", mime);
    snprintf(it->id, sizeof(it->id), "%" PRIu64, m->base + ++m->seq);
    {
        unsigned char digest[WA_SHA256_LEN];

        wa_sha256(data, len, digest);
        wa_hex_encode(digest, sizeof(digest), it->sha256);
    }
    it->number = number;
    if (cs_map_put(&m->items, it->id, it, NULL) != WA_OK) {
        item_free(it);
        return WA_ENOMEM;
    }
    m->total += len;
    snprintf(id_out, 24, "%s", it->id);
    return WA_OK;
}

static bool
part_is(const struct cs_multipart_part *pt, const char *name)
{
    return pt->name != NULL && pt->name_len == strlen(name) &&
           memcmp(pt->name, name, pt->name_len) == 0;
}

void
cs_media_upload(struct cs_sim *sim, struct wa_http_req *req, size_t number)
{
    struct cs_multipart_part parts[8];
    const struct cs_multipart_part *file = NULL, *type = NULL, *product = NULL;
    const char *body;
    size_t len;
    char mime[128], details[256], id[24], reply[64];
    int n;
    int64_t code;
    enum wa_err err;

    body = wa_http_req_body(req, &len);
    n = cs_multipart_parse(wa_http_req_header(req, "Content-Type"), body, len, parts, 8);
    if (n < 0) {
        cs_reply_graph_error(sim, req, 100, 0, "The request must be multipart/form-data.");
        return;
    }
    for (int i = 0; i < n; i++) {
        if (part_is(&parts[i], "file")) {
            file = &parts[i];
        } else if (part_is(&parts[i], "type")) {
            type = &parts[i];
        } else if (part_is(&parts[i], "messaging_product")) {
            product = &parts[i];
        }
    }
    if (product == NULL) {
        cs_reply_graph_error(sim, req, 131008, 0, "The parameter messaging_product is required.");
        return;
    }
    if (product->len != 8 || memcmp(product->data, "whatsapp", 8) != 0) {
        cs_reply_graph_error(sim, req, 100, 0, "Param messaging_product must be 'whatsapp'.");
        return;
    }
    if (file == NULL) {
        cs_reply_graph_error(sim, req, 131008, 0, "The parameter file is required.");
        return;
    }
    if (type != NULL) {
        snprintf(mime, sizeof(mime), "%.*s", (int)(type->len < 127 ? type->len : 127), type->data);
    } else if (file->ctype != NULL) {
        snprintf(mime, sizeof(mime), "%.*s", (int)(file->ctype_len < 127 ? file->ctype_len : 127),
                 file->ctype);
    } else {
        cs_reply_graph_error(sim, req, 131008, 0, "The parameter type is required.");
        return;
    }
    code = cs_media_check(mime, file->data, file->len, details, sizeof(details));
    if (code != 0) {
        cs_reply_graph_error(sim, req, code, 0, details);
        return;
    }
    err = cs_media_store(sim->media, number, mime, file->data, file->len, id);
    if (err != WA_OK) {
        cs_reply_graph_error(sim, req, 131053, 0,
                             err == WA_ELIMIT ? "The simulator's media store is full."
                                              : "Out of memory.");
        return;
    }
    sim->stats.media_uploads++;
    snprintf(reply, sizeof(reply), "{\"id\":\"%s\"}", id);
    wa_http_reply_json(req, 200, reply);
}

void
cs_media_get(struct cs_sim *sim, struct wa_http_req *req, const char *id)
{
    struct item *it = cs_map_get(&sim->media->items, id);
    const char *owner = wa_http_req_query(req, "phone_number_id");
    struct wa_buf b;

    if (it == NULL || (owner != NULL && strcmp(owner, sim->numbers[it->number].id) != 0)) {
        char details[256];

        snprintf(details, sizeof(details),
                 "Unsupported get request. Object with ID '%.32s' does not exist, cannot be "
                 "loaded due to missing permissions, or does not support this operation.",
                 id);
        cs_reply_graph_error(sim, req, 100, 33, details);
        return;
    }
    (void)wa_random_hex(it->token, 16);
    it->url_expires = wa_loop_now(sim->loop) + (uint64_t)sim->cfg->media_url_ttl_ms;
    wa_buf_init(&b, 0);
    if (wa_buf_printf(&b,
                      "{\"messaging_product\":\"whatsapp\",\"url\":\"%s/_media/%s?t=%s\","
                      "\"mime_type\":\"%s\",\"sha256\":\"%s\",\"file_size\":\"%zu\","
                      "\"id\":\"%s\"}",
                      sim->public_url, it->id, it->token, it->mime, it->sha256, it->len,
                      it->id) != WA_OK) {
        wa_buf_cleanup(&b);
        wa_http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    wa_http_reply(req, 200, "application/json; charset=UTF-8", b.data, b.len);
    wa_buf_cleanup(&b);
}

void
cs_media_delete(struct cs_sim *sim, struct wa_http_req *req, const char *id)
{
    struct item *it = cs_map_del(&sim->media->items, id);

    if (it == NULL) {
        char details[128];

        snprintf(details, sizeof(details), "Object with ID '%.32s' does not exist.", id);
        cs_reply_graph_error(sim, req, 100, 33, details);
        return;
    }
    sim->media->total -= it->len;
    item_free(it);
    wa_http_reply_json(req, 200, "{\"success\":true}");
}

void
on_media_download(struct wa_http_req *req, void *arg)
{
    struct cs_sim *sim = arg;
    const char *id = wa_http_req_param(req, "id");
    const char *token = wa_http_req_query(req, "t");
    struct item *it;

    if (!cs_sim_auth(sim, wa_http_req_header(req, "Authorization"), -1)) {
        cs_reply_graph_error(sim, req, 190, 0, NULL);
        return;
    }
    it = cs_map_get(&sim->media->items, id);
    if (it == NULL || token == NULL || it->url_expires == 0 ||
        wa_loop_now(sim->loop) > it->url_expires || strlen(token) != 32 ||
        !wa_crypto_equal(token, it->token, 32)) {
        wa_http_reply(req, 404, "text/plain", "Not Found", 9);
        return;
    }
    wa_http_reply(req, 200, it->mime, it->data, it->len);
}
