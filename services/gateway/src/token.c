/*
 * token.c: part of stage 1 (auth.c hands over any Bearer credential that is not an API key
 * when WA_GATEWAY_JWT_ISSUER is set). Input: a compact JWS. Output: the principal
 * ("jwt:<hash of iss and sub>"), the scopes of its "scope" (space-separated) or "scp" claim,
 * the default rate, then gw_auth_accept(); or 401 with WWW-Authenticate: Bearer
 * error="invalid_token" for any failure, 503 while no key set was ever loaded.
 *
 * Checks (libs/jwt): alg in WA_GATEWAY_JWT_ALGS and never "none", the key of the token's kid,
 * its type fitting the alg family (no HMAC with a public key), the signature, then exp and nbf
 * with WA_GATEWAY_JWT_LEEWAY, iss == WA_GATEWAY_JWT_ISSUER, aud containing
 * WA_GATEWAY_JWT_AUDIENCE.
 *
 * The key set (WA_GATEWAY_JWKS) is a file or an https:// URL. A token with a kid the set lacks
 * triggers one refetch, at most once per WA_GATEWAY_JWKS_REFRESH; requests arriving meanwhile
 * wait for it. A failed refetch keeps the set it had (stale keys are served while the issuer is
 * unreachable). The file is read on the worker pool, the URL fetched with libs/httpc.
 *
 * Threading: loop thread, except read_file on a worker. Ownership: struct gw_jwt is gw's;
 * struct wait lives until its request was decided.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway.h"
#include "wa/clock.h"
#include "wa/httpc.h"
#include "wa/jwt.h"
#include "wa/log.h"
#include "wa/pool.h"

#define JWKS_MAX  (256 * 1024)
#define ALGS_MAX  12
#define TOKEN_MAX WA_JWT_MAX

struct wait {
    struct wa_list node;
    struct gw_call *c;
    char token[TOKEN_MAX + 1];
};

struct gw_jwt {
    struct gw *gw;
    struct wa_jwks *keys; /* NULL until the first successful load */
    char alg_store[128];
    const char *algs[ALGS_MAX];
    size_t nalgs;
    uint64_t last_fetch_ms; /* when the last fetch started (0: never) */
    bool fetching;
    struct wa_list waiting; /* struct wait: requests for the fetch in flight */
    struct wa_httpc_call *call;
    /* file reads on the worker */
    char *file_data;
    size_t file_len;
    bool file_ok;
};

static void decide(struct gw_call *c, const char *token, bool may_refetch);

static bool
is_url(const char *s)
{
    return strncmp(s, "https://", 8) == 0;
}

/* Replaces the key set with text when it parses; otherwise the old set stays. */
static void
install(struct gw_jwt *j, const char *text, size_t len)
{
    struct wa_jwks *keys = NULL;
    struct wa_error err = {0};
    size_t skipped = 0;

    if (wa_jwks_parse(text, len, &keys, &skipped, &err) != WA_OK) {
        wa_log_warn(NULL, "JWKS not usable (%s); %s", err.message,
                    j->keys != NULL ? "keeping the keys loaded before" : "no keys yet");
        return;
    }
    wa_jwks_free(j->keys);
    j->keys = keys;
    wa_log_info(NULL, "JWKS loaded: %zu keys (%zu skipped)", wa_jwks_count(keys), skipped);
}

/* The fetch ended (either way): every waiting request is decided again, without refetch. */
static void
fetched(struct gw_jwt *j)
{
    struct wa_list *pos, *tmp;
    struct wa_list batch;

    j->fetching = false;
    wa_list_init(&batch);
    wa_list_take_all(&j->waiting, &batch);
    WA_LIST_FOREACH_SAFE(pos, tmp, &batch)
    {
        struct wait *w = WA_LIST_ENTRY(pos, struct wait, node);

        wa_list_remove(&w->node);
        decide(w->c, w->token, false);
        explicit_bzero(w->token, sizeof(w->token));
        free(w);
    }
}

static void
on_jwks(const struct wa_httpc_result *res, void *arg)
{
    struct gw_jwt *j = arg;

    j->call = NULL;
    if (res->err == WA_OK && res->status == 200) {
        install(j, res->body, res->body_len);
    } else {
        wa_log_warn(NULL, "JWKS fetch failed (%s, HTTP %ld); keeping the keys loaded before",
                    res->err == WA_OK ? "answer" : res->message, res->status);
    }
    fetched(j);
}

/* Worker thread: reads the file (bounded). No loop state is touched here. */
static void
read_file(void *arg)
{
    struct gw_jwt *j = arg;
    FILE *f = fopen(j->gw->cfg->jwks, "rb");
    size_t n = 0;

    j->file_ok = false;
    j->file_data = f != NULL ? malloc(JWKS_MAX + 1) : NULL;
    if (j->file_data != NULL) {
        n = fread(j->file_data, 1, JWKS_MAX + 1, f);
        j->file_ok = !ferror(f) && n <= JWKS_MAX;
        j->file_len = n;
    }
    if (f != NULL) {
        fclose(f);
    }
}

static void
on_file(void *arg)
{
    struct gw_jwt *j = arg;

    if (j->file_ok) {
        install(j, j->file_data, j->file_len);
    } else {
        wa_log_warn(NULL,
                    "JWKS file %s unreadable or over %d bytes; keeping the keys loaded "
                    "before",
                    j->gw->cfg->jwks, JWKS_MAX);
    }
    free(j->file_data);
    j->file_data = NULL;
    fetched(j);
}

/* Starts a fetch unless one runs. False when it could not start. */
static bool
fetch(struct gw_jwt *j)
{
    struct gw *gw = j->gw;

    if (j->fetching) {
        return true;
    }
    j->last_fetch_ms = wa_clock_mono_ms();
    if (is_url(gw->cfg->jwks)) {
        struct wa_httpc_request rq = {
            .url = gw->cfg->jwks, .timeout_ms = 5000, .max_response = JWKS_MAX};

        if (wa_httpc_send(gw->httpc, &rq, on_jwks, j, &j->call, NULL) != WA_OK) {
            return false;
        }
    } else if (wa_service_pool(gw->svc) == NULL ||
               wa_pool_submit(wa_service_pool(gw->svc), read_file, on_file, j) != WA_OK) {
        return false;
    }
    j->fetching = true;
    return true;
}

static void
wait_for_fetch(struct gw_call *c, const char *token)
{
    struct gw_jwt *j = c->gw->jwt;
    struct wait *w = calloc(1, sizeof(*w));

    if (w == NULL || strlen(token) > TOKEN_MAX || !fetch(j)) {
        free(w);
        decide(c, token, false);
        return;
    }
    w->c = c;
    snprintf(w->token, sizeof(w->token), "%s", token);
    wa_list_push_back(&j->waiting, &w->node);
}

static void
accept_claims(struct gw_call *c, const json_t *claims)
{
    struct gw *gw = c->gw;
    const char *iss = wa_json_str(claims, "iss"), *sub = wa_json_str(claims, "sub");
    const json_t *scope = json_object_get(claims, "scope");
    unsigned char d[WA_SHA256_LEN];
    char hex[2 * WA_SHA256_LEN + 1], buf[512];
    int n;

    if (sub == NULL || sub[0] == '\0') {
        gw_auth_refuse(c, "the token has no sub");
        return;
    }
    n = snprintf(buf, sizeof(buf), "%s\n%s", iss != NULL ? iss : "", sub);
    wa_sha256(buf, n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1, d);
    wa_hex_encode(d, sizeof(d), hex);
    c->authenticated = true;
    snprintf(c->principal, sizeof(c->principal), "jwt:%.32s", hex);
    c->scopes = gw_scopes_from_claim(scope != NULL ? scope : json_object_get(claims, "scp"));
    c->rate_per_min = gw->cfg->rate_per_min;
    c->burst = gw->cfg->burst;
    gw_auth_accept(c);
}

static void
decide(struct gw_call *c, const char *token, bool may_refetch)
{
    struct gw_jwt *j = c->gw->jwt;
    const struct gw_config *cfg = c->gw->cfg;
    struct wa_error err = {0};
    json_t *claims = NULL;
    enum wa_err e;

    if (j->keys == NULL) {
        if (may_refetch &&
            wa_clock_mono_ms() - j->last_fetch_ms >= (uint64_t)cfg->jwks_refresh_ms) {
            wait_for_fetch(c, token);
            return;
        }
        if (c->req != NULL) {
            wa_http_reply_header(c->req, "Retry-After", "5");
        }
        gw_call_problem(c, 503, "Service Unavailable", "the token issuer's keys are not loaded");
        return;
    }
    e = wa_jwt_verify(j->keys, token, j->algs, j->nalgs, &claims, NULL, &err);
    if (e == WA_ENOTFOUND && may_refetch &&
        wa_clock_mono_ms() - j->last_fetch_ms >= (uint64_t)cfg->jwks_refresh_ms) {
        wait_for_fetch(c, token);
        return;
    }
    if (e == WA_OK) {
        e = wa_jwt_check_claims(claims, cfg->jwt_issuer, cfg->jwt_audience,
                                (int64_t)(wa_clock_wall_ms() / 1000), cfg->jwt_leeway_ms / 1000,
                                &err);
    }
    if (e != WA_OK) {
        json_decref(claims);
        wa_log_debug(
            &(struct wa_log_ctx){.request_id = c->req != NULL ? wa_http_req_id(c->req) : NULL},
            "JWT refused: %s", err.message);
        gw_auth_refuse(c, "the token is not valid");
        return;
    }
    accept_claims(c, claims);
    json_decref(claims);
}

void
gw_token_start(struct gw_call *c, const char *token)
{
    decide(c, token, true);
}

enum wa_err
gw_token_init(struct gw *gw, struct wa_error *error)
{
    const struct gw_config *cfg = gw->cfg;
    struct gw_jwt *j;
    char *p;

    if (cfg->jwt_issuer == NULL || cfg->jwt_issuer[0] == '\0') {
        return WA_OK;
    }
    if (cfg->jwks == NULL || cfg->jwks[0] == '\0') {
        return wa_error_set(error, WA_ECONFIG, "WA_GATEWAY_JWT_ISSUER needs WA_GATEWAY_JWKS");
    }
    if (strncmp(cfg->jwks, "http://", 7) == 0) {
        /* keys fetched in clear text could be anyone's: https:// or a mounted file */
        return wa_error_set(error, WA_ECONFIG, "WA_GATEWAY_JWKS: an https:// URL or a file path");
    }
    if ((j = calloc(1, sizeof(*j))) == NULL) {
        return WA_ENOMEM;
    }
    j->gw = gw;
    wa_list_init(&j->waiting);
    snprintf(j->alg_store, sizeof(j->alg_store), "%s", cfg->jwt_algs);
    for (p = j->alg_store; *p != '\0' && j->nalgs < ALGS_MAX;) {
        size_t n = strcspn(p, ", ");

        if (n > 0) {
            j->algs[j->nalgs++] = p;
        }
        p += n;
        while (*p == ',' || *p == ' ') {
            *p++ = '\0';
        }
    }
    for (size_t i = 0; i < j->nalgs; i++) {
        if (strcasecmp(j->algs[i], "none") == 0) {
            free(j);
            return wa_error_set(error, WA_ECONFIG, "WA_GATEWAY_JWT_ALGS: none is never accepted");
        }
    }
    gw->jwt = j;
    if (!fetch(j)) {
        wa_log_warn(NULL, "JWKS %s: first load not started; retried on the first token", cfg->jwks);
    }
    return WA_OK;
}

void
gw_token_stop(struct gw *gw)
{
    struct gw_jwt *j = gw->jwt;
    struct wa_list *pos, *tmp;

    if (j == NULL) {
        return;
    }
    if (j->call != NULL) {
        wa_httpc_call_cancel(j->call);
        j->call = NULL;
    }
    WA_LIST_FOREACH_SAFE(pos, tmp, &j->waiting)
    {
        struct wait *w = WA_LIST_ENTRY(pos, struct wait, node);

        wa_list_remove(&w->node);
        gw_call_problem(w->c, 503, "Service Unavailable", "the gateway is stopping");
        free(w);
    }
    /* a file read on the worker has completed by now: the scaffolding closes the pool and
     * runs its completions before the stages stop */
    wa_jwks_free(j->keys);
    free(j);
    gw->jwt = NULL;
}
