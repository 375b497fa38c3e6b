/*
 * encode_test.c: wa-ingest's direct encoders (src/encode.c) against the contract's encoders
 * dumped by jansson (wa_contract_event_data, wa_contract_raw_data, wa_cloudevent_encode): the
 * bytes must be identical for every webhook fixture and fuzz corpus file given on the command
 * line (ctest passes tests/data/webhook/{valid,invalid}/<name>/input and the webhook_split
 * corpus), plus hand-made cases for escapes, reals, header values that are not UTF-8 and
 * bodies the fast path hands back (binary, several parts).
 *
 * Usage: ingest_encode_test FILE... ; exit status 0 when every comparison matched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/cloudevent.h"

#include "ingest.h"

static int failures;
static int comparisons;

static void
same(const char *what, const char *name, const struct wa_buf *want, const struct wa_buf *got)
{
    comparisons++;
    if (want->len != got->len || memcmp(want->data, got->data, want->len) != 0) {
        failures++;
        fprintf(stderr, "MISMATCH %s %s\n want: %.*s\n got:  %.*s\n", what, name, (int)want->len,
                want->data, (int)got->len, got->data);
    }
}

static enum wa_err
dump_json(struct wa_buf *b, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    enum wa_err err;

    if (s == NULL) {
        return WA_EINVAL;
    }
    err = wa_buf_append_str(b, s);
    free(s);
    return err;
}

static enum wa_err
put_arg(struct wa_buf *b, const void *arg)
{
    return ig_json_put(b, arg);
}

/* The envelope around data, both ways. */
static void
check_cloudevent(const char *name, json_t *data, const char *subject, const char *pnid)
{
    struct wa_cloudevent ev;
    struct ig_ce ce;
    struct wa_buf want, got;

    wa_cloudevent_init(&ev, "wa-ingest/test-host", WA_CE_TYPE_INBOUND_MESSAGE);
    ev.subject = subject;
    ev.phonenumberid = pnid;
    ev.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    ev.data = data;
    ce = (struct ig_ce){ev.id, ev.source, ev.type, subject, ev.time, pnid, ev.traceparent};
    wa_buf_init(&want, 0);
    wa_buf_init(&got, 0);
    if (wa_cloudevent_encode(&ev, &want, NULL) != WA_OK ||
        ig_encode_cloudevent(&got, &ce, put_arg, data) != WA_OK) {
        failures++;
        fprintf(stderr, "FAILED cloudevent %s\n", name);
    } else {
        same("cloudevent", name, &want, &got);
    }
    wa_buf_cleanup(&want);
    wa_buf_cleanup(&got);
}

static void
check_events(const char *name, const char *body, size_t len)
{
    struct wa_webhook_batch batch;

    wa_webhook_batch_init(&batch);
    if (wa_webhook_split(body, len, &batch, NULL) == WA_OK) {
        for (size_t i = 0; i < batch.count; i++) {
            const struct wa_webhook_event *ev = &batch.events[i];
            struct wa_buf want, got;
            json_t *data = NULL;

            wa_buf_init(&want, 0);
            wa_buf_init(&got, 0);
            if (wa_contract_event_data(ev, &data) != WA_OK || dump_json(&want, data) != WA_OK ||
                ig_encode_event_data(&got, ev) != WA_OK) {
                failures++;
                fprintf(stderr, "FAILED event %zu of %s\n", i, name);
            } else {
                same("event", name, &want, &got);
                check_cloudevent(name, data, ev->contact, ev->phone_number_id);
            }
            json_decref(data);
            wa_buf_cleanup(&want);
            wa_buf_cleanup(&got);
        }
    }
    wa_webhook_batch_cleanup(&batch);
}

static void
check_raw(const char *name, const char *body, size_t len, const char *const *headers,
          size_t nheaders, bool expect_fast)
{
    struct wa_contract_raw_meta meta = {.raw_id = "01JDQ5X0000000000000000000",
                                        .request_id = "req-1",
                                        .received_at = "2026-11-21T13:45:58.123Z",
                                        .parsed = true,
                                        .headers = headers,
                                        .nheaders = nheaders};
    json_t *parts[WA_CONTRACT_RAW_PARTS_MAX];
    size_t n = 0;
    struct wa_buf want, got;
    enum wa_err err;

    wa_buf_init(&want, 0);
    wa_buf_init(&got, 0);
    if (wa_contract_raw_data(&meta, body, len, parts, WA_CONTRACT_RAW_PARTS_MAX, &n) != WA_OK) {
        failures++;
        fprintf(stderr, "FAILED raw %s (contract)\n", name);
        goto out;
    }
    err = ig_encode_raw_data(&got, &meta, body, len);
    if (!expect_fast) {
        comparisons++;
        if (err != WA_ENOTFOUND || got.len != 0) {
            failures++;
            fprintf(stderr, "FAILED raw %s: fast path should refuse\n", name);
        }
        /* The fallback dumps every part with ig_json_put. */
        for (size_t i = 0; i < n; i++) {
            wa_buf_reset(&want);
            wa_buf_reset(&got);
            if (dump_json(&want, parts[i]) != WA_OK || ig_json_put(&got, parts[i]) != WA_OK) {
                failures++;
                fprintf(stderr, "FAILED raw part %zu of %s\n", i, name);
            } else {
                same("raw part", name, &want, &got);
            }
        }
    } else if (err != WA_OK || n != 1 || dump_json(&want, parts[0]) != WA_OK) {
        failures++;
        fprintf(stderr, "FAILED raw %s (err %d, %zu parts)\n", name, (int)err, n);
    } else {
        same("raw", name, &want, &got);
    }
    for (size_t i = 0; i < n; i++) {
        json_decref(parts[i]);
    }
out:
    wa_buf_cleanup(&want);
    wa_buf_cleanup(&got);
}

static char *
read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long size;

    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)size + 1)) != NULL) {
        *len = fread(data, 1, (size_t)size, f);
        data[*len] = '\0';
    }
    fclose(f);
    return data;
}

static void
check_made_up(void)
{
    static const char *const headers[] = {
        "content-type", "application/json; charset=utf-8",
        "user-agent",   "facebookexternalua \"quoted\" \\ \x01\x1f\x7f caf\xc3\xa9",
        "x-bad-utf8",   "a\xc3(b",
        "x-absent",     NULL,
        "traceparent",  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    };
    static const char text[] =
        "{\"a\":\"\\u00e9 \\ud83d\\ude00 \\n\\t\\\"/\",\"b\":[1.5,-0.0,1e300,"
        "-12,0,9223372036854775807,-9223372036854775808,true,false,null],"
        "\"c\":{},\"d\":[],\"\\u0001k\":\"\\u001f\\u007f\"}";
    static const char binary[] = "\x00\xff\xfe binary \x80";
    json_t *v = json_loads(text, 0, NULL);
    struct wa_buf want, got;
    size_t big_len = 3 * WA_CONTRACT_RAW_PART_MAX / 2;
    char *big = malloc(big_len);

    wa_buf_init(&want, 0);
    wa_buf_init(&got, 0);
    if (v == NULL || dump_json(&want, v) != WA_OK || ig_json_put(&got, v) != WA_OK) {
        failures++;
        fprintf(stderr, "FAILED made-up value\n");
    } else {
        same("value", "made-up", &want, &got);
        check_cloudevent("made-up", v, "100:\x01\"subject\"", NULL);
        check_cloudevent("made-up-empty", v, "", "");
    }
    json_decref(v);
    check_raw("headers", text, sizeof(text) - 1, headers, 5, true);
    check_raw("empty", "", 0, headers, 1, true);
    check_raw("binary", binary, sizeof(binary) - 1, headers, 5, false);
    if (big != NULL) {
        for (size_t i = 0; i < big_len; i++) {
            big[i] = i % 7 == 0 ? '"' : (char)('a' + i % 26);
        }
        memcpy(big + WA_CONTRACT_RAW_PART_MAX - 1, "\xc3\xa9", 2); /* split at a boundary */
        check_raw("two parts", big, big_len, headers, 5, false);
        free(big);
    }
    wa_buf_cleanup(&want);
    wa_buf_cleanup(&got);
}

int
main(int argc, char **argv)
{
    static const char *const headers[] = {"content-type", "application/json", "user-agent",
                                          "facebookexternalua"};

    for (int i = 1; i < argc; i++) {
        size_t len = 0;
        char *body = read_all(argv[i], &len);

        if (body == NULL) {
            fprintf(stderr, "cannot read %s\n", argv[i]);
            return 1;
        }
        check_events(argv[i], body, len);
        check_raw(argv[i], body, len, headers, 2,
                  len <= WA_CONTRACT_RAW_PART_MAX && wa_contract_utf8_text(body, len));
        free(body);
    }
    check_made_up();
    printf("%d comparisons, %d failures\n", comparisons, failures);
    return failures == 0 && comparisons > 0 ? 0 : 1;
}
