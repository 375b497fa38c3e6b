/*
 * fuzz_users_events.c: libFuzzer driver for wa-users' event decisions (services/users/src/
 * consent.c, contact.c): the data of contact.command, inbound.status, account.event,
 * inbound.message and outbound.result events, external input from Kafka. The input is parsed as
 * JSON and handed to every decision. Invariants beyond "no crash, no sanitizer report": a
 * decision never reports more entries than its room, every entry names a valid contact
 * identity, a known category/status/source and a NUL-terminated id; the same input decided
 * twice gives the same entry ids (idempotency rests on it); a failed decision gives none.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"

#define ROOM 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef enum wa_err (*decide_fn)(const json_t *, int64_t, struct us_entry *, size_t, size_t *,
                                 struct wa_error *);

static void
check(decide_fn fn, const json_t *v)
{
    struct us_entry a[ROOM], b[ROOM];
    size_t na = 99, nb = 99;
    char id[US_ID_MAX];
    enum wa_err ea = fn(v, 1, a, ROOM, &na, NULL), eb = fn(v, 2, b, ROOM, &nb, NULL);

    if (ea != eb || na > ROOM || (ea == WA_OK && na != nb) || (ea != WA_OK && na != 0)) {
        abort();
    }
    for (size_t i = 0; ea == WA_OK && i < na; i++) {
        if (strcmp(a[i].id, b[i].id) != 0 || memchr(a[i].id, '\0', sizeof(a[i].id)) == NULL ||
            us_contact_id(a[i].contact, id, sizeof(id)) != WA_OK ||
            strcmp(us_category_name(a[i].category), "unknown") == 0 ||
            strcmp(us_status_name(a[i].status), "unknown") == 0 ||
            strcmp(us_source_name(a[i].source), "unknown") == 0) {
            abort();
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    struct us_inbound in;
    char cid[US_ID_MAX];

    if (v == NULL) {
        return 0;
    }
    check(us_decide_command, v);
    check(us_decide_status, v);
    check(us_decide_account, v);
    if (us_decide_inbound(v, 1, &in, NULL) == WA_OK &&
        (us_contact_id(in.contact_id, cid, sizeof(cid)) != WA_OK ||
         strcmp(cid, in.contact_id) != 0)) {
        abort();
    }
    if (us_decide_result(v, cid, sizeof(cid), NULL) == WA_OK && cid[0] != '\0' && cid[0] != '+') {
        abort();
    }
    json_decref(v);
    return 0;
}
