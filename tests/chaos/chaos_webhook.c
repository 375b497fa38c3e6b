/*
 * chaos_webhook.c: see chaos_webhook.h.
 */
#include "chaos_webhook.h"

#include <stdio.h>

#include "wa/crypto.h"

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

void
chaos_webhook_post(CURLM *multi, CURL *easy, struct curl_slist **headers, int port,
                   const char *secret, const char *body, size_t len, long timeout_ms, void *priv)
{
    char sig[WA_HUB_SIGNATURE_LEN], line[128], url[96];

    wa_hub_signature_make(secret, body, len, sig);
    curl_slist_free_all(*headers);
    snprintf(line, sizeof(line), "X-Hub-Signature-256: %s", sig);
    *headers = curl_slist_append(NULL, line);
    *headers = curl_slist_append(*headers, "Content-Type: application/json");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/webhook", port);
    curl_easy_reset(easy);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, priv);
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
    curl_multi_add_handle(multi, easy);
}
