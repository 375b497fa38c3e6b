/*
 * fuzz_cloudevent.c: libFuzzer driver for wa_cloudevent_decode() (libs/kafka), which every
 * consumer runs on every Kafka event, and for the traceparent helpers applied to a decoded
 * event. Invariants checked beyond "no crash, no sanitizer report": an error leaves *out NULL;
 * a decoded event has its required attributes and a valid time; re-encoding it succeeds and
 * decoding the encoding succeeds and gives the same attributes and data; encoding into a buffer
 * too small fails and leaves it unchanged; a traceparent child
 * is always valid and keeps the trace id of a valid parent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/cloudevent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* True when a and b are both absent (NULL or "") or equal strings. */
static bool
same(const char *a, const char *b)
{
    bool a_set = a != NULL && *a != '\0', b_set = b != NULL && *b != '\0';

    return a_set == b_set && (!a_set || strcmp(a, b) == 0);
}

static void
check_traceparent(const char *tp)
{
    char child[WA_TRACEPARENT_LEN], id[WA_TRACE_ID_LEN], child_id[WA_TRACE_ID_LEN];
    bool valid = wa_traceparent_valid(tp);

    wa_traceparent_child(tp, child);
    if (!wa_traceparent_valid(child) || wa_traceparent_trace_id(child, child_id) != WA_OK) {
        abort();
    }
    if (valid != (wa_traceparent_trace_id(tp, id) == WA_OK)) {
        abort();
    }
    if (valid && strcmp(id, child_id) != 0) {
        abort();
    }
}

static void
check_roundtrip(const struct wa_cloudevent *ev)
{
    struct wa_cloudevent_doc *doc = NULL;
    const struct wa_cloudevent *back;
    struct wa_buf out;

    wa_buf_init(&out, 0);
    if (wa_cloudevent_encode(ev, &out, NULL) != WA_OK ||
        wa_cloudevent_decode(out.data, out.len, &doc, NULL) != WA_OK) {
        abort();
    }
    back = &doc->ev;
    if (strcmp(back->id, ev->id) != 0 || strcmp(back->time, ev->time) != 0 ||
        !same(back->source, ev->source) || !same(back->type, ev->type) ||
        !same(back->subject, ev->subject) || !same(back->phonenumberid, ev->phonenumberid) ||
        !same(back->traceparent, ev->traceparent) || (back->data == NULL) != (ev->data == NULL) ||
        (ev->data != NULL && !json_equal(back->data, ev->data))) {
        abort();
    }
    /* Encoding is byte-stable: the decoded encoding encodes to the same bytes. */
    {
        struct wa_buf again;

        wa_buf_init(&again, 0);
        if (wa_cloudevent_encode(back, &again, NULL) != WA_OK || again.len != out.len ||
            memcmp(again.data, out.data, out.len) != 0) {
            abort();
        }
        wa_buf_cleanup(&again);
    }
    /* Bounded buffers cut the encoding anywhere (in a key of data too): it must fail whole. */
    for (size_t k = 1; k <= 4; k++) {
        struct wa_buf cut;

        wa_buf_init(&cut, out.len * k / 4 - 1);
        if (wa_cloudevent_encode(ev, &cut, NULL) != WA_ETOOBIG || cut.len != 0) {
            abort();
        }
        wa_buf_cleanup(&cut);
    }
    wa_cloudevent_doc_free(doc);
    wa_buf_cleanup(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wa_cloudevent_doc *doc = (struct wa_cloudevent_doc *)1;
    struct wa_error error = {0};
    const struct wa_cloudevent *ev;

    if (wa_cloudevent_decode((const char *)data, size, &doc, &error) != WA_OK) {
        if (doc != NULL || error.message[0] == '\0') {
            abort();
        }
        return 0;
    }
    ev = &doc->ev;
    if (ev->id[0] == '\0' || ev->source == NULL || ev->source[0] == '\0' || ev->type == NULL ||
        ev->type[0] == '\0' || (ev->time[0] != '\0' && !wa_cloudevent_time_valid(ev->time))) {
        abort();
    }
    check_traceparent(ev->traceparent);
    if (ev->subject != NULL) {
        check_traceparent(ev->subject); /* any string: exercises the validator more often */
    }
    check_roundtrip(ev);
    wa_cloudevent_doc_free(doc);
    return 0;
}
