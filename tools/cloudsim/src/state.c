/*
 * state.c: the simulator's state: tokens and business numbers from configuration, a small
 * string-keyed hash map, the bounded history of accepted messages (a ring: the oldest record
 * is overwritten, so memory stays bounded under load), wamid generation and statistics.
 *
 * Threading: loop thread only. Ownership: struct cs_sim owns everything reachable from it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudsim.h"
#include "wa/clock.h"
#include "wa/id.h"

/* ---- hash map (FNV-1a, chained, doubling at load 1) ---- */

static uint64_t
hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

void
cs_map_init(struct cs_map *m)
{
    memset(m, 0, sizeof(*m));
}

void
cs_map_cleanup(struct cs_map *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->nslots; i++) {
        struct cs_map_entry *e = m->slots[i];

        while (e != NULL) {
            struct cs_map_entry *next = e->next;

            if (free_value != NULL) {
                free_value(e->value);
            }
            free(e);
            e = next;
        }
    }
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

void *
cs_map_get(const struct cs_map *m, const char *key)
{
    uint64_t h;

    if (m->nslots == 0) {
        return NULL;
    }
    h = hash_str(key);
    for (struct cs_map_entry *e = m->slots[h & (m->nslots - 1)]; e != NULL; e = e->next) {
        if (e->hash == h && strcmp(e->key, key) == 0) {
            return e->value;
        }
    }
    return NULL;
}

static enum wa_err
grow(struct cs_map *m)
{
    size_t n = m->nslots == 0 ? 64 : m->nslots * 2;
    struct cs_map_entry **slots = calloc(n, sizeof(*slots));

    if (slots == NULL) {
        return WA_ENOMEM;
    }
    for (size_t i = 0; i < m->nslots; i++) {
        struct cs_map_entry *e = m->slots[i];

        while (e != NULL) {
            struct cs_map_entry *next = e->next;

            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
    return WA_OK;
}

enum wa_err
cs_map_put(struct cs_map *m, const char *key, void *value, void **old)
{
    uint64_t h = hash_str(key);
    struct cs_map_entry *e;
    size_t klen = strlen(key);

    if (old != NULL) {
        *old = NULL;
    }
    if (m->nslots > 0) {
        for (e = m->slots[h & (m->nslots - 1)]; e != NULL; e = e->next) {
            if (e->hash == h && strcmp(e->key, key) == 0) {
                if (old != NULL) {
                    *old = e->value;
                }
                e->value = value;
                return WA_OK;
            }
        }
    }
    if (m->count >= m->nslots && grow(m) != WA_OK) {
        return WA_ENOMEM;
    }
    e = malloc(sizeof(*e) + klen + 1);
    if (e == NULL) {
        return WA_ENOMEM;
    }
    e->hash = h;
    e->value = value;
    memcpy(e->key, key, klen + 1);
    e->next = m->slots[h & (m->nslots - 1)];
    m->slots[h & (m->nslots - 1)] = e;
    m->count++;
    return WA_OK;
}

void *
cs_map_del(struct cs_map *m, const char *key)
{
    uint64_t h;
    struct cs_map_entry **pp;

    if (m->nslots == 0) {
        return NULL;
    }
    h = hash_str(key);
    for (pp = &m->slots[h & (m->nslots - 1)]; *pp != NULL; pp = &(*pp)->next) {
        struct cs_map_entry *e = *pp;

        if (e->hash == h && strcmp(e->key, key) == 0) {
            void *v = e->value;

            *pp = e->next;
            free(e);
            m->count--;
            return v;
        }
    }
    return NULL;
}

/* ---- configuration views ---- */

static char *
dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Calls fn for each trimmed, non-empty item of a comma-separated list. */
static enum wa_err
each_item(const char *list, enum wa_err (*fn)(struct cs_sim *, const char *, size_t),
          struct cs_sim *sim)
{
    const char *p = list;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        enum wa_err err;

        while (n > 0 && *s == ' ') {
            s++;
            n--;
        }
        while (n > 0 && s[n - 1] == ' ') {
            n--;
        }
        if (n > 0 && (err = fn(sim, s, n)) != WA_OK) {
            return err;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return WA_OK;
}

static enum wa_err
add_number(struct cs_sim *sim, const char *s, size_t n)
{
    struct cs_number *nums = realloc(sim->numbers, (sim->nnumbers + 1) * sizeof(*nums));
    struct cs_number *num;
    char display[32];

    if (nums == NULL) {
        return WA_ENOMEM;
    }
    sim->numbers = nums;
    num = &nums[sim->nnumbers];
    memset(num, 0, sizeof(*num));
    if (sim->nnumbers == 0 && sim->cfg->display_number != NULL) {
        size_t k = 0;

        for (const char *p = sim->cfg->display_number; *p != '\0' && k + 1 < sizeof(display); p++) {
            if (*p >= '0' && *p <= '9') {
                display[k++] = *p;
            }
        }
        display[k] = '\0';
    } else {
        snprintf(display, sizeof(display), "155500000%02zu", sim->nnumbers + 1);
    }
    num->id = dup_range(s, n);
    num->display = strdup(display);
    if (num->id == NULL || num->display == NULL) {
        free(num->id);
        free(num->display);
        return WA_ENOMEM;
    }
    sim->nnumbers++;
    return WA_OK;
}

static enum wa_err
add_token(struct cs_sim *sim, const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    char **toks;

    if (eq != NULL) {
        /* "phone_number_id=token": a token for one number. */
        char *id = dup_range(s, (size_t)(eq - s));
        long idx = id != NULL ? cs_sim_number(sim, id) : -1;

        free(id);
        if (idx < 0) {
            return WA_ECONFIG;
        }
        free(sim->numbers[idx].token);
        sim->numbers[idx].token = dup_range(eq + 1, n - (size_t)(eq - s) - 1);
        return sim->numbers[idx].token != NULL ? WA_OK : WA_ENOMEM;
    }
    toks = realloc(sim->tokens, (sim->ntokens + 1) * sizeof(*toks));
    if (toks == NULL) {
        return WA_ENOMEM;
    }
    sim->tokens = toks;
    toks[sim->ntokens] = dup_range(s, n);
    if (toks[sim->ntokens] == NULL) {
        return WA_ENOMEM;
    }
    sim->ntokens++;
    return WA_OK;
}

long
cs_sim_number(const struct cs_sim *sim, const char *id)
{
    /* A handful of numbers: a linear scan is cheaper than hashing. */
    for (size_t i = 0; i < sim->nnumbers; i++) {
        if (strcmp(sim->numbers[i].id, id) == 0) {
            return (long)i;
        }
    }
    return -1;
}

bool
cs_sim_auth(const struct cs_sim *sim, const char *authorization, long number)
{
    const char *tok;

    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0) {
        return false;
    }
    tok = authorization + 7;
    while (*tok == ' ') {
        tok++;
    }
    if (*tok == '\0') {
        return false;
    }
    for (size_t i = 0; i < sim->ntokens; i++) {
        if (wa_crypto_str_equal(tok, sim->tokens[i])) {
            return true;
        }
    }
    for (size_t i = 0; i < sim->nnumbers; i++) {
        if ((number < 0 || (size_t)number == i) && sim->numbers[i].token != NULL &&
            wa_crypto_str_equal(tok, sim->numbers[i].token)) {
            return true;
        }
    }
    return false;
}

/* ---- history ---- */

static void
record_clear(struct cs_record *r)
{
    free(r->to);
    free(r->type);
    free(r->body);
    free(r->biz);
    memset(r, 0, sizeof(*r));
}

struct cs_record *
cs_sim_record(struct cs_sim *sim, const char *wamid, const struct wa_whatsapp_send *send,
              const char *body, size_t body_len, size_t number)
{
    struct cs_record *r;
    size_t slot;

    if (sim->ring_cap == 0) {
        return NULL;
    }
    slot = (sim->ring_head + sim->ring_len) % sim->ring_cap;
    if (sim->ring_len == sim->ring_cap) {
        /* Full: overwrite the oldest. */
        slot = sim->ring_head;
        sim->ring_head = (sim->ring_head + 1) % sim->ring_cap;
        cs_map_del(&sim->by_wamid, sim->ring[slot].wamid);
        record_clear(&sim->ring[slot]);
    } else {
        sim->ring_len++;
    }
    r = &sim->ring[slot];
    snprintf(r->wamid, sizeof(r->wamid), "%s", wamid);
    snprintf(r->wa_id, sizeof(r->wa_id), "%s", send->wa_id);
    r->to = strdup(send->to != NULL ? send->to : send->recipient != NULL ? send->recipient : "");
    r->type = strdup(send->type_name);
    r->body = dup_range(body, body_len);
    r->biz = send->biz_opaque_callback_data != NULL ? strdup(send->biz_opaque_callback_data) : NULL;
    r->number = number;
    r->time_ms = wa_clock_wall_ms();
    r->status = CS_ST_ACCEPTED;
    r->version = 0;
    r->free_window = false;
    r->group = send->group;
    if (r->to == NULL || r->type == NULL || r->body == NULL ||
        (send->biz_opaque_callback_data != NULL && r->biz == NULL) ||
        cs_map_put(&sim->by_wamid, r->wamid, r, NULL) != WA_OK) {
        /* Out of memory: keep the slot as an empty, unreachable record. */
        record_clear(r);
        return NULL;
    }
    return r;
}

void
cs_sim_note_inbound(struct cs_sim *sim, const char *wamid, size_t number)
{
    if (sim->inbound.count >= (size_t)sim->cfg->history) {
        cs_map_cleanup(&sim->inbound, NULL); /* bounded: forget the old ones at once */
    }
    (void)cs_map_put(&sim->inbound, wamid, (void *)(uintptr_t)(number + 1), NULL);
}

bool
cs_sim_is_inbound(const struct cs_sim *sim, const char *wamid, size_t number)
{
    return (uintptr_t)cs_map_get(&sim->inbound, wamid) == number + 1;
}

static void
group_free(void *v)
{
    json_decref(v);
}

enum wa_err
cs_sim_group_join(struct cs_sim *sim, const char *group, const char *wa_id)
{
    json_t *list = cs_map_get(&sim->groups, group), *p;
    size_t i;

    if (list == NULL) {
        if ((list = json_array()) == NULL) {
            return WA_ENOMEM;
        }
        if (cs_map_put(&sim->groups, group, list, NULL) != WA_OK) {
            json_decref(list);
            return WA_ENOMEM;
        }
    }
    json_array_foreach(list, i, p)
    {
        if (strcmp(json_string_value(p), wa_id) == 0) {
            return WA_OK;
        }
    }
    return json_array_append_new(list, json_string(wa_id)) == 0 ? WA_OK : WA_ENOMEM;
}

const json_t *
cs_sim_group(const struct cs_sim *sim, const char *group)
{
    return cs_map_get(&sim->groups, group);
}

struct cs_record *
cs_sim_find(const struct cs_sim *sim, const char *wamid)
{
    return cs_map_get(&sim->by_wamid, wamid);
}

const char *
cs_status_name(enum cs_status st)
{
    static const char *const names[] = {"accepted", "sent", "delivered", "read", "failed"};

    return (unsigned)st < WA_ARRAY_LEN(names) ? names[st] : "accepted";
}

/* ---- wamids ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t
base64(const unsigned char *in, size_t n, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 5 < outlen; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;

        if (i + 1 < n) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= in[i + 2];
        }
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

void
cs_sim_wamid(struct cs_sim *sim, const char *wa_id, char out[CS_WAMID_MAX])
{
    /* Shaped like Meta's: "wamid.HBgL" + base64(<digits> 15 02 00 11 18 12 <20 hex> 00).
     * Unique: a per-process random salt and a sequence number. */
    unsigned char raw[64];
    size_t n = 0, dl = strlen(wa_id);
    char hex[24];

    if (dl > 15) {
        dl = 15;
    }
    memcpy(raw, wa_id, dl);
    n = dl;
    memcpy(raw + n, "\x15\x02\x00\x11\x18\x12", 6);
    n += 6;
    snprintf(hex, sizeof(hex), "%.4s%016" PRIX64, sim->salt, ++sim->seq);
    memcpy(raw + n, hex, 20);
    n += 20;
    raw[n++] = 0;
    memcpy(out, "wamid.HBgL", 10);
    base64(raw, n, out + 10, CS_WAMID_MAX - 10);
}

/* ---- stats ---- */

void
cs_sim_count_rejected(struct cs_sim *sim, int64_t code)
{
    char key[24];
    uintptr_t n;

    sim->stats.rejected++;
    snprintf(key, sizeof(key), "%" PRId64, code);
    n = (uintptr_t)cs_map_get(&sim->stats.rejected_by_code, key);
    (void)cs_map_put(&sim->stats.rejected_by_code, key, (void *)(n + 1), NULL);
}

/* ---- life ---- */

enum wa_err
cs_sim_init(struct cs_sim *sim, const struct cs_config *cfg, struct wa_loop *loop,
            struct wa_error *error)
{
    enum wa_err err;
    char salt[9];

    memset(sim, 0, sizeof(*sim));
    sim->cfg = cfg;
    sim->loop = loop;
    cs_map_init(&sim->users);
    cs_map_init(&sim->flags);
    cs_map_init(&sim->by_wamid);
    cs_map_init(&sim->inbound);
    cs_map_init(&sim->groups);
    sim->subscribed = true;
    cs_map_init(&sim->stats.rejected_by_code);
    cs_map_init(&sim->templates.by_key);
    (void)wa_random_hex(salt, 4);
    for (size_t i = 0; i < 8; i++) {
        salt[i] = (char)(salt[i] >= 'a' ? salt[i] - 'a' + 'A' : salt[i]);
    }
    memcpy(sim->salt, salt, sizeof(sim->salt));
    if ((err = each_item(cfg->phone_number_ids, add_number, sim)) != WA_OK || sim->nnumbers == 0) {
        return wa_error_set(error, WA_ECONFIG, "WA_SANDBOX_PHONE_NUMBER_ID: no usable number");
    }
    if ((err = each_item(cfg->access_tokens, add_token, sim)) != WA_OK) {
        return wa_error_set(error, err == WA_ECONFIG ? WA_ECONFIG : err,
                            "WA_ACCESS_TOKEN: unknown phone number id in a per-number token");
    }
    if (sim->ntokens == 0 && sim->numbers[0].token == NULL) {
        return wa_error_set(error, WA_ECONFIG, "WA_ACCESS_TOKEN: no token");
    }
    for (size_t i = 0; i < sim->nnumbers; i++) {
        cs_bucket_init(&sim->numbers[i].bucket, (double)cfg->mps, (double)cfg->mps,
                       wa_clock_mono_ms());
    }
    sim->ring_cap = (size_t)cfg->history;
    sim->ring = calloc(sim->ring_cap > 0 ? sim->ring_cap : 1, sizeof(*sim->ring));
    if (sim->ring == NULL) {
        return wa_error_set(error, WA_ENOMEM, "history of %zu messages", sim->ring_cap);
    }
    if ((err = cs_policy_load_flags(sim)) != WA_OK) {
        return wa_error_set(error, err, "WA_SIM_UNDELIVERABLE / WA_SIM_MARKETING_STOPPED");
    }
    if ((err = cs_templates_load(&sim->templates, cfg->templates, error)) != WA_OK) {
        return err;
    }
    if (cfg->public_url != NULL && cfg->public_url[0] != '\0') {
        snprintf(sim->public_url, sizeof(sim->public_url), "%s", cfg->public_url);
    } else {
        snprintf(sim->public_url, sizeof(sim->public_url), "http://%s",
                 cfg->common.listen != NULL ? cfg->common.listen : "127.0.0.1:8090");
    }
    return WA_OK;
}

static void
clear_history(struct cs_sim *sim)
{
    for (size_t i = 0; i < sim->ring_cap; i++) {
        record_clear(&sim->ring[i]);
    }
    sim->ring_head = 0;
    sim->ring_len = 0;
    cs_map_cleanup(&sim->by_wamid, NULL);
}

void
cs_sim_reset_state(struct cs_sim *sim)
{
    clear_history(sim);
    cs_map_cleanup(&sim->users, free);
    cs_map_cleanup(&sim->flags, NULL);
    cs_map_cleanup(&sim->inbound, NULL);
    cs_map_cleanup(&sim->groups, group_free);
    cs_map_cleanup(&sim->stats.rejected_by_code, NULL);
    memset(&sim->stats, 0, sizeof(sim->stats));
    json_decref(sim->profiles);
    sim->profiles = NULL;
    sim->subscribed = true;
    for (size_t i = 0; i < sim->nnumbers; i++) {
        cs_bucket_init(&sim->numbers[i].bucket, (double)sim->cfg->mps, (double)sim->cfg->mps,
                       wa_clock_mono_ms());
    }
    (void)cs_policy_load_flags(sim);
}

void
cs_sim_cleanup(struct cs_sim *sim)
{
    if (sim->ring != NULL) {
        clear_history(sim);
        free(sim->ring);
    }
    cs_map_cleanup(&sim->users, free);
    cs_map_cleanup(&sim->flags, NULL);
    cs_map_cleanup(&sim->by_wamid, NULL);
    cs_map_cleanup(&sim->inbound, NULL);
    cs_map_cleanup(&sim->groups, group_free);
    cs_map_cleanup(&sim->stats.rejected_by_code, NULL);
    cs_templates_cleanup(&sim->templates);
    json_decref(sim->profiles);
    sim->profiles = NULL;
    for (size_t i = 0; i < sim->nnumbers; i++) {
        free(sim->numbers[i].id);
        free(sim->numbers[i].display);
        free(sim->numbers[i].token);
    }
    free(sim->numbers);
    for (size_t i = 0; i < sim->ntokens; i++) {
        free(sim->tokens[i]);
    }
    free(sim->tokens);
    memset(sim, 0, sizeof(*sim));
}
