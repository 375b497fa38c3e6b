/*
 * fuzz_config_values.c: libFuzzer driver for the parsers of configuration values: wa_hex_decode
 * (libs/crypto: webhook secrets, keys), wa_parse_int/ms/us/size/bool/hostport (libs/core,
 * wa/config.h) and wa_kv_url_parse (libs/kv). The input is split at '\n' and every line is
 * given to every parser. Invariants checked beyond "no crash, no sanitizer report": hex
 * decoding respects outlen and re-encodes to the lower-cased input; durations and sizes are
 * never negative, and a duration accepted in ms is the same duration in µs; a host:port split stays inside the host buffer and gives a port in 0..65535;
 * an accepted redis URL has a non-empty host, port 1..65535 and db 0..1023.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/config.h"
#include "wa/crypto.h"
#include "wa/kv.h"

#define FUZZ_LINES   8
#define FUZZ_HEX_OUT 32 /* small output buffer, so the length bound is reached */
#define FUZZ_HOST    16 /* small host buffer, so the length bound is reached */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_hex(const char *s)
{
    unsigned char bin[FUZZ_HEX_OUT];
    char back[2 * FUZZ_HEX_OUT + 1];
    ssize_t n = wa_hex_decode(s, bin, sizeof(bin));
    size_t len = strlen(s);

    if (n < 0) {
        return;
    }
    if ((size_t)n > sizeof(bin) || (size_t)n * 2 != len) {
        abort();
    }
    wa_hex_encode(bin, (size_t)n, back);
    for (size_t i = 0; i < len; i++) {
        char c = s[i] >= 'A' && s[i] <= 'F' ? (char)(s[i] - 'A' + 'a') : s[i];

        if (back[i] != c) {
            abort();
        }
    }
}

static void
check_numbers(const char *s)
{
    int64_t v;
    bool b;

    (void)wa_parse_int(s, &v);
    (void)wa_parse_bool(s, &b);
    if (wa_parse_ms(s, &v) == WA_OK) {
        int64_t us;

        if (v < 0) {
            abort();
        }
        /* the same text in µs: the same duration, unless it overflows there */
        if (wa_parse_us(s, &us) == WA_OK && us != v * 1000) {
            abort();
        }
    }
    if (wa_parse_us(s, &v) == WA_OK && v < 0) {
        abort();
    }
    if (wa_parse_size(s, &v) == WA_OK && v < 0) {
        abort();
    }
}

static void
check_hostport(const char *s)
{
    char host[FUZZ_HOST + 1];
    int port = -1;

    host[FUZZ_HOST] = 'X'; /* canary past the size given */
    if (wa_parse_hostport(s, host, FUZZ_HOST, &port) == WA_OK &&
        (strlen(host) == 0 || strlen(host) >= FUZZ_HOST || port < 0 || port > 65535)) {
        abort();
    }
    if (host[FUZZ_HOST] != 'X') {
        abort();
    }
}

static void
check_kv_url(const char *s)
{
    struct wa_kv_url url;
    struct wa_error error = {0};

    if (wa_kv_url_parse(s, &url, &error) != WA_OK) {
        if (error.code != WA_ECONFIG || error.message[0] == '\0') {
            abort();
        }
        return;
    }
    if (url.host[0] == '\0' || url.port < 1 || url.port > 65535 || url.db < 0 || url.db > 1023 ||
        memchr(url.host, '\0', sizeof(url.host)) == NULL ||
        memchr(url.username, '\0', sizeof(url.username)) == NULL ||
        memchr(url.password, '\0', sizeof(url.password)) == NULL) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char *line;
    int n = 0;

    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    line = text;
    while (line != NULL && n++ < FUZZ_LINES) {
        char *nl = strchr(line, '\n');

        if (nl != NULL) {
            *nl = '\0';
        }
        check_hex(line);
        check_numbers(line);
        check_hostport(line);
        check_kv_url(line);
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(text);
    return 0;
}
