/*
 * write_test.c: the direct writers (wa_json_write, wa_contract_event_data_write,
 * wa_contract_raw_data_write, wa_cloudevent_write) against the jansson-based encoders dumped by
 * jansson (wa_contract_event_data, wa_contract_raw_data, wa_cloudevent_encode): the bytes must
 * be identical for every webhook fixture and fuzz corpus file given on the command line (ctest
 * passes tests/data/webhook/{valid,invalid}/<name>/input and the webhook_split corpus), plus
 * hand-made cases for escapes, reals, header values that are not UTF-8, bodies the fast path
 * hands back (binary, several parts) and buffers too small (left unchanged).
 *
 * Usage: contract_write_test FILE... ; exit status 0 when every comparison matched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wa/cloudevent.h"
#include "wa/contract.h"
#include "wa/json.h"

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

/* The reference: jansson's own dump, but for reals, which wa_json_write writes as sent (the
 * fewest digits that round-trip; tests/unit/json checks that formatting), so a tree holding
 * reals is compared through wa_json_dump_buf. */
static bool
has_real(const json_t *v)
{
    const char *key;
    json_t *m;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_REAL:
        return true;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, key, m)
        {
            if (has_real(m)) {
                return true;
            }
        }
        return false;
    case JSON_ARRAY:
        json_array_foreach(v, i, m)
        {
            if (has_real(m)) {
                return true;
            }
        }
        return false;
    default:
        return false;
    }
}

static enum wa_err
dump_json(struct wa_buf *b, const json_t *v)
{
    char *s;
    enum wa_err err;

    if (has_real(v)) {
        return wa_json_dump_buf(v, b);
    }
    if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL) {
        return WA_EINVAL;
    }
    err = wa_buf_append_str(b, s);
    free(s);
    return err;
}

static enum wa_err
put_arg(struct wa_buf *b, const void *arg)
{
    return wa_json_write(b, arg);
}

static enum wa_err
put_event(struct wa_buf *b, const void *arg)
{
    return wa_contract_event_data_write(b, arg);
}

struct raw_arg {
    const struct wa_contract_raw_meta *meta;
    const char *body;
    size_t len;
};

static enum wa_err
put_raw(struct wa_buf *b, const void *arg)
{
    const struct raw_arg *ra = arg;

    return wa_contract_raw_data_write(b, ra->meta, ra->body, ra->len);
}

/* A buffer with "abc" and room for only half of the need bytes write(arg) appends: the write
 * must fail with WA_ETOOBIG and leave "abc" as it was. */
static void
check_too_small(const char *what, const char *name, size_t need,
                enum wa_err (*write)(struct wa_buf *b, const void *arg), const void *arg)
{
    struct wa_buf b;
    enum wa_err err;

    comparisons++;
    wa_buf_init(&b, 3 + need / 2);
    if (wa_buf_append_str(&b, "abc") != WA_OK || (err = write(&b, arg)) != WA_ETOOBIG ||
        b.len != 3 || strcmp(b.data, "abc") != 0) {
        failures++;
        fprintf(stderr, "FAILED %s %s: a failed write must leave the buffer unchanged\n", what,
                name);
    }
    wa_buf_cleanup(&b);
}

struct ce_arg {
    const struct wa_cloudevent *ev;
    json_t *data;
};

static enum wa_err
put_cloudevent(struct wa_buf *b, const void *arg)
{
    const struct ce_arg *ca = arg;

    return wa_cloudevent_write(ca->ev, put_arg, ca->data, b, NULL);
}

/* The envelope around data, both ways. */
static void
check_cloudevent(const char *name, json_t *data, const char *subject, const char *pnid)
{
    struct wa_cloudevent ev;
    struct wa_buf want, got;

    wa_cloudevent_init(&ev, "wa-ingest/test-host", WA_CE_TYPE_INBOUND_MESSAGE);
    ev.subject = subject;
    ev.phonenumberid = pnid;
    ev.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    ev.data = data;
    wa_buf_init(&want, 0);
    wa_buf_init(&got, 0);
    if (wa_cloudevent_encode(&ev, &want, NULL) != WA_OK ||
        wa_cloudevent_write(&ev, put_arg, data, &got, NULL) != WA_OK) {
        failures++;
        fprintf(stderr, "FAILED cloudevent %s\n", name);
    } else {
        same("cloudevent", name, &want, &got);
        check_too_small("cloudevent", name, got.len, put_cloudevent, &(struct ce_arg){&ev, data});
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
                wa_contract_event_data_write(&got, ev) != WA_OK) {
                failures++;
                fprintf(stderr, "FAILED event %zu of %s\n", i, name);
            } else {
                same("event", name, &want, &got);
                check_too_small("event", name, got.len, put_event, ev);
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
    err = wa_contract_raw_data_write(&got, &meta, body, len);
    if (!expect_fast) {
        comparisons++;
        if (err != WA_ENOTFOUND || got.len != 0) {
            failures++;
            fprintf(stderr, "FAILED raw %s: fast path should refuse\n", name);
        }
        /* The fallback dumps every part with wa_json_write. */
        for (size_t i = 0; i < n; i++) {
            wa_buf_reset(&want);
            wa_buf_reset(&got);
            if (dump_json(&want, parts[i]) != WA_OK || wa_json_write(&got, parts[i]) != WA_OK) {
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
        check_too_small("raw", name, got.len, put_raw, &(struct raw_arg){&meta, body, len});
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
    if (v == NULL || dump_json(&want, v) != WA_OK || wa_json_write(&got, v) != WA_OK) {
        failures++;
        fprintf(stderr, "FAILED made-up value\n");
    } else {
        same("value", "made-up", &want, &got);
        check_too_small("value", "made-up", got.len, put_arg, v);
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
