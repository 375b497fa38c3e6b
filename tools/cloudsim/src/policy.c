/*
 * policy.c: Meta's sending policies as the simulator applies them (cloud-api.md §4):
 * the per-number throughput token bucket (130429), the per (number, user) pair limiter
 * (131056: one message per WA_SIM_PAIR_INTERVAL, bursts up to WA_SIM_PAIR_BURST, then the
 * borrowed time must be paid back), the 24 h customer service window opened by inbound
 * messages (131047), and per-user flags: undeliverable (131026), stopped marketing (131050).
 *
 * All checks are O(1): a hash lookup and arithmetic. Time is passed in, so tests drive it.
 * Threading: loop thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudsim.h"

void
cs_bucket_init(struct cs_bucket *b, double capacity, double per_second, uint64_t now_ms)
{
    b->capacity = capacity < 1.0 ? 1.0 : capacity;
    b->tokens = b->capacity;
    b->per_ms = per_second / 1000.0;
    b->last_ms = now_ms;
}

bool
cs_bucket_take(struct cs_bucket *b, uint64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->per_ms;
        if (b->tokens > b->capacity) {
            b->tokens = b->capacity;
        }
        b->last_ms = now_ms;
    }
    if (b->tokens < 1.0) {
        return false;
    }
    b->tokens -= 1.0;
    return true;
}

struct cs_user *
cs_policy_user(struct cs_sim *sim, size_t number, const char *wa_id)
{
    char key[64];
    struct cs_user *u;

    snprintf(key, sizeof(key), "%zu:%s", number, wa_id);
    u = cs_map_get(&sim->users, key);
    if (u != NULL) {
        return u;
    }
    u = calloc(1, sizeof(*u));
    if (u == NULL || cs_map_put(&sim->users, key, u, NULL) != WA_OK) {
        free(u);
        return NULL;
    }
    return u;
}

void
cs_policy_inbound(struct cs_sim *sim, size_t number, const char *wa_id, uint64_t wall_ms)
{
    struct cs_user *u = cs_policy_user(sim, number, wa_id);

    if (u != NULL && wall_ms > u->last_inbound_wall_ms) {
        u->last_inbound_wall_ms = wall_ms;
    }
}

bool
cs_policy_window_open(struct cs_sim *sim, size_t number, const char *wa_id, uint64_t wall_ms)
{
    char key[64];
    const struct cs_user *u;

    snprintf(key, sizeof(key), "%zu:%s", number, wa_id);
    u = cs_map_get(&sim->users, key);
    return u != NULL && u->last_inbound_wall_ms != 0 &&
           wall_ms < u->last_inbound_wall_ms + (uint64_t)sim->cfg->window_ms;
}

bool
cs_policy_throughput(struct cs_sim *sim, size_t number, uint64_t now_ms)
{
    return cs_bucket_take(&sim->numbers[number].bucket, now_ms);
}

bool
cs_policy_pair(struct cs_sim *sim, size_t number, const char *wa_id, uint64_t now_ms)
{
    struct cs_user *u = cs_policy_user(sim, number, wa_id);

    if (u == NULL) {
        return true; /* out of memory: do not invent a limit */
    }
    if (!u->pair_init) {
        double interval_s = (double)sim->cfg->pair_interval_ms / 1000.0;

        cs_bucket_init(&u->pair, (double)sim->cfg->pair_burst,
                       interval_s > 0 ? 1.0 / interval_s : 1e9, now_ms);
        u->pair_init = true;
    }
    return cs_bucket_take(&u->pair, now_ms);
}

unsigned
cs_policy_flags(const struct cs_sim *sim, const char *wa_id)
{
    return (unsigned)(uintptr_t)cs_map_get(&sim->flags, wa_id);
}

void
cs_policy_set_flags(struct cs_sim *sim, const char *wa_id, unsigned flags)
{
    if (flags == 0) {
        (void)cs_map_del(&sim->flags, wa_id);
    } else {
        (void)cs_map_put(&sim->flags, wa_id, (void *)(uintptr_t)flags, NULL);
    }
}

static enum wa_err
add_flag_list(struct cs_sim *sim, const char *list, unsigned flag)
{
    const char *p = list;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        char id[WA_WHATSAPP_WA_ID_MAX + 1], raw[64];

        if (n > 0 && n < sizeof(raw)) {
            memcpy(raw, p, n);
            raw[n] = '\0';
            if (wa_whatsapp_wa_id_from_to(raw, id, sizeof(id)) != WA_OK) {
                return WA_ECONFIG;
            }
            cs_policy_set_flags(sim, id, cs_policy_flags(sim, id) | flag);
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return WA_OK;
}

enum wa_err
cs_policy_load_flags(struct cs_sim *sim)
{
    enum wa_err err = add_flag_list(sim, sim->cfg->undeliverable, CS_USER_UNDELIVERABLE);

    if (err == WA_OK) {
        err = add_flag_list(sim, sim->cfg->marketing_stopped, CS_USER_NO_MARKETING);
    }
    return err;
}
