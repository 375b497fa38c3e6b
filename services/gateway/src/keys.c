/*
 * keys.c: `wa-gateway keys create --name N --scopes S[,S...] [--rate R] [--burst B]
 * [--expires-in D]` and `wa-gateway keys revoke ID`: key administration without the API
 * (the first admin key, `make run`'s sandbox key). create prints the key on stdout, once, and
 * nothing else there; what it made goes to stderr. Reads the daemon's configuration (MongoDB,
 * WA_GATEWAY_KEY_PEPPER) from the environment. Exit 0 ok, 1 MongoDB failed, 2 usage or
 * configuration.
 *
 * Also gw_keys_new, shared with admin.c: a fresh key and its record.
 * Threading: the command runs its own loop on the main thread, MongoDB on one worker.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "wa/clock.h"
#include "wa/log.h"
#include "wa/loop.h"
#include "wa/mongo.h"
#include "wa/pool.h"

enum wa_err
gw_keys_new(struct wa_hmac *pepper, const char *name, unsigned scopes, int64_t rate_per_min,
            int64_t expires_ms, struct gw_key_record *rec, char key[GW_KEY_LEN + 1])
{
    struct gw_key_parts parts;

    if (pepper == NULL) {
        return WA_ECONFIG;
    }
    memset(rec, 0, sizeof(*rec));
    if (gw_apikey_generate(&parts, key) != WA_OK) {
        return WA_EIO;
    }
    memcpy(rec->id, parts.id, sizeof(rec->id));
    gw_apikey_hash(pepper, parts.secret, rec->hash);
    explicit_bzero(parts.secret, sizeof(parts.secret));
    snprintf(rec->name, sizeof(rec->name), "%s", name);
    rec->scopes = scopes;
    rec->rate_per_min = rate_per_min;
    rec->created_ms = (int64_t)wa_clock_wall_ms();
    rec->expires_ms = expires_ms;
    return WA_OK;
}

struct run {
    struct wa_loop *loop;
    int rc;
    int64_t matched;
};

static void
on_inserted(void *arg, enum wa_err err)
{
    struct run *r = arg;

    r->rc = err == WA_OK ? 0 : 1;
    if (err != WA_OK) {
        fprintf(stderr, "wa-gateway keys: MongoDB: %s\n", wa_err_name(err));
    }
    wa_loop_stop(r->loop);
}

static void
on_updated(void *arg, enum wa_err err, int64_t matched, int64_t modified, bool upserted)
{
    struct run *r = arg;

    (void)modified;
    (void)upserted;
    r->rc = err == WA_OK ? 0 : 1;
    r->matched = matched;
    if (err != WA_OK) {
        fprintf(stderr, "wa-gateway keys: MongoDB: %s\n", wa_err_name(err));
    }
    wa_loop_stop(r->loop);
}

static void
on_deadline(struct wa_timer *t, void *arg)
{
    struct run *r = arg;

    (void)t;
    fprintf(stderr, "wa-gateway keys: MongoDB did not answer within 30 s\n");
    r->rc = 1;
    wa_loop_stop(r->loop);
}

static int
usage(void)
{
    fprintf(stderr, "usage: wa-gateway keys create --name NAME --scopes SCOPE[,SCOPE...] "
                    "[--rate PER_MINUTE] [--burst N] [--expires-in DURATION]\n"
                    "       wa-gateway keys revoke ID\n"
                    "scopes: messages:send messages:read contacts:read contacts:write "
                    "analytics:read admin (or all)\n");
    return 2;
}

int
gw_keys_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},       {"scopes", required_argument, NULL, 's'},
        {"rate", required_argument, NULL, 'r'},       {"burst", required_argument, NULL, 'b'},
        {"expires-in", required_argument, NULL, 'e'}, {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *scopes_arg = NULL, *cmd = argc > 2 ? argv[2] : "";
    int64_t rate = 0, burst = 0, expires_in = 0;
    unsigned scopes = 0;
    struct gw_config cfg;
    struct wa_cfg_spec spec[2]; /* only what the command uses: not the daemon's other secrets */
    size_t nspec = 0;
    struct wa_error error = {0};
    struct wa_mongo_config mc = {0};
    struct wa_pool *pool = NULL;
    struct wa_mongo *mongo = NULL;
    struct wa_timer *deadline = NULL;
    struct wa_hmac *pepper = NULL;
    struct gw_key_record rec;
    struct run r = {NULL, 1, 0};
    char key[GW_KEY_LEN + 1] = "", bad[80] = "";
    json_t *doc = NULL, *filter = NULL, *update = NULL;
    enum wa_err err = WA_OK;
    int opt;

    if (strcmp(cmd, "create") != 0 && strcmp(cmd, "revoke") != 0) {
        return usage();
    }
    optind = 3;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            name = optarg;
            break;
        case 's':
            scopes_arg = optarg;
            break;
        case 'r':
            if (wa_parse_int(optarg, &rate) != WA_OK || rate < 1) {
                return usage();
            }
            break;
        case 'b':
            if (wa_parse_int(optarg, &burst) != WA_OK || burst < 1) {
                return usage();
            }
            break;
        case 'e':
            if (wa_parse_ms(optarg, &expires_in) != WA_OK || expires_in < 1) {
                return usage();
            }
            break;
        default:
            return usage();
        }
    }
    if (strcmp(cmd, "create") == 0 &&
        (name == NULL || name[0] == '\0' || strlen(name) > 127 || scopes_arg == NULL)) {
        return usage();
    }
    if (strcmp(cmd, "create") == 0 &&
        (gw_scopes_parse(scopes_arg, &scopes, bad, sizeof(bad)) != WA_OK || scopes == 0)) {
        fprintf(stderr, "wa-gateway keys: unknown scope \"%s\"\n", bad);
        return usage();
    }
    if (strcmp(cmd, "revoke") == 0 && (optind >= argc || strlen(argv[optind]) != GW_KEY_ID_HEX)) {
        return usage();
    }

    memset(&cfg, 0, sizeof(cfg));
    for (size_t i = 0; i < gw_config_nspec && nspec < sizeof(spec) / sizeof(spec[0]); i++) {
        if (strcmp(gw_config_spec[i].name, "WA_MONGO_URI") == 0 ||
            strcmp(gw_config_spec[i].name, "WA_GATEWAY_KEY_PEPPER") == 0) {
            spec[nspec++] = gw_config_spec[i];
        }
    }
    wa_log_init("wa-gateway-keys", WA_LOG_WARN);
    wa_log_set_fd(2); /* stdout carries the key alone */
    if (wa_cfg_load(spec, nspec, &cfg, wa_cfg_getenv, NULL, &error) != WA_OK) {
        fprintf(stderr, "wa-gateway keys: configuration error: %s\n", error.message);
        wa_cfg_cleanup(spec, nspec, &cfg);
        return 2;
    }
    if (cfg.pepper == NULL || cfg.pepper[0] == '\0' ||
        wa_hmac_new(cfg.pepper, strlen(cfg.pepper), &pepper) != WA_OK) {
        fprintf(stderr, "wa-gateway keys: WA_GATEWAY_KEY_PEPPER (or _FILE) must be set\n");
        wa_cfg_cleanup(spec, nspec, &cfg);
        return 2;
    }
    wa_mongo_global_init();
    mc.uri = cfg.common.mongo_uri;
    mc.app_name = "wa-gateway-keys";
    mc.timeout_ms = 10000; /* a command line may wait for a loaded server */
    if (wa_loop_new(&r.loop) != WA_OK || wa_pool_new(r.loop, 1, &pool) != WA_OK ||
        wa_mongo_new(r.loop, pool, &mc, &mongo, &error) != WA_OK ||
        (deadline = wa_timer_new(r.loop, on_deadline, &r)) == NULL) {
        fprintf(stderr, "wa-gateway keys: %s\n",
                error.message[0] != '\0' ? error.message : "setup failed");
        goto out;
    }
    if (strcmp(cmd, "create") == 0) {
        if (gw_keys_new(pepper, name, scopes, rate,
                        expires_in > 0 ? (int64_t)wa_clock_wall_ms() + expires_in : 0, &rec,
                        key) != WA_OK) {
            fprintf(stderr, "wa-gateway keys: no random bytes\n");
            goto out;
        }
        rec.burst = burst;
        doc = gw_key_record_to_json(&rec);
        err = doc != NULL ? wa_mongo_insert_one(mongo, GW_COLL_API_KEYS, doc, on_inserted, &r)
                          : WA_ENOMEM;
    } else {
        char now[WA_RFC3339_LEN];

        wa_clock_rfc3339(wa_clock_wall_ms(), now);
        filter = json_pack("{s:s}", "_id", argv[optind]);
        update = json_pack("{s:{s:s}}", "$set", "revoked_at", now);
        err = filter != NULL && update != NULL
                  ? wa_mongo_update_one(mongo, GW_COLL_API_KEYS, filter, update, false, on_updated,
                                        &r)
                  : WA_ENOMEM;
    }
    if (err != WA_OK) {
        fprintf(stderr, "wa-gateway keys: %s\n", wa_err_name(err));
        goto out;
    }
    wa_timer_start(deadline, 30000, 0);
    (void)wa_loop_run(r.loop);
    if (r.rc == 0 && strcmp(cmd, "create") == 0) {
        printf("%s\n", key);
        fprintf(stderr, "wa-gateway keys: created key %s (%s); it is shown only this once\n",
                rec.id, rec.name);
    } else if (r.rc == 0) {
        if (r.matched == 0) {
            fprintf(stderr, "wa-gateway keys: no key %s\n", argv[optind]);
            r.rc = 1;
        } else {
            fprintf(stderr,
                    "wa-gateway keys: revoked %s (refused everywhere within "
                    "WA_GATEWAY_KEY_CACHE_TTL)\n",
                    argv[optind]);
        }
    }
out:
    explicit_bzero(key, sizeof(key));
    json_decref(doc);
    json_decref(filter);
    json_decref(update);
    wa_timer_free(deadline);
    wa_mongo_free(mongo);
    wa_pool_free(pool);
    wa_loop_free(r.loop);
    wa_mongo_global_cleanup();
    wa_hmac_free(pepper);
    wa_cfg_cleanup(spec, nspec, &cfg);
    return r.rc;
}
