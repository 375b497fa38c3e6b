/*
 * chaos_webhook.h: the signed webhook POST the load of the chaos scenarios is made of (wa-ingest
 * under kill -9, a broker outage), driven through a libcurl multi handle by the scenario.
 */
#ifndef CHAOS_WEBHOOK_H
#define CHAOS_WEBHOOK_H

#include <curl/curl.h>
#include <stddef.h>

/*
 * Adds to multi a POST of body (len bytes, borrowed until the transfer ends) to
 * http://127.0.0.1:<port>/webhook with X-Hub-Signature-256 made with secret, as Meta signs.
 * easy is reset first; *headers (freed and replaced) holds its header list until the next call;
 * the answer's body is discarded; CURLOPT_PRIVATE is priv. A fresh connection each time: libcurl
 * would silently resend a request whose reused connection died, hiding the requests a kill
 * caught mid-flight.
 */
void chaos_webhook_post(CURLM *multi, CURL *easy, struct curl_slist **headers, int port,
                        const char *secret, const char *body, size_t len, long timeout_ms,
                        void *priv);

#endif
