/*
 * wa/cloudevent.h: the CloudEvents 1.0 envelope of every wabridge event (JSON structured mode)
 * (traceparent values: wa/traceparent.h of libs/core, included here).
 *
 * An event is encoded as one JSON object: specversion "1.0", id, source, type, subject, time,
 * datacontenttype, the extensions phonenumberid and traceparent, then data (architecture.md,
 * "Topics and events"). Decoding validates the required attributes and keeps the parsed
 * document, so every string of a decoded event is borrowed from it.
 *
 * Threading: no shared state; every function is safe on any thread.
 */
#ifndef WA_CLOUDEVENT_H
#define WA_CLOUDEVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "wa/buf.h"
#include "wa/err.h"
#include "wa/traceparent.h"

#define WA_CLOUDEVENT_ID_MAX    128     /* id length limit, NUL included (ULID/UUID fit) */
#define WA_CLOUDEVENT_TIME_MAX  40      /* time length limit, NUL included */
#define WA_CLOUDEVENT_MAX       1048576 /* largest accepted encoded event, bytes */
#define WA_CLOUDEVENT_MAX_DEPTH 64      /* deepest accepted nesting ({} and [] levels) */

/*
 * One event. A plain value: copying it copies id and time. Pointers are borrowed (from the
 * caller when encoding, from the wa_cloudevent_doc when decoded); NULL or "" means absent.
 */
struct wa_cloudevent {
    char id[WA_CLOUDEVENT_ID_MAX];     /* required */
    const char *source;                /* required, e.g. "wa-ingest/host-1" */
    const char *type;                  /* required, e.g. "wa.inbound.message.v1" */
    const char *subject;               /* the Kafka key: conversation, phone number id, ... */
    char time[WA_CLOUDEVENT_TIME_MAX]; /* RFC 3339 */
    const char *datacontenttype;       /* "application/json" when data is set and this is not */
    const char *phonenumberid;         /* extension */
    const char *traceparent;           /* extension, W3C Trace Context */
    json_t *data;                      /* borrowed; NULL: no data */
};

/*
 * Initialises caller's storage: a new ULID id, time now (UTC, milliseconds), the given source
 * and type (borrowed), datacontenttype "application/json", everything else absent.
 */
void wa_cloudevent_init(struct wa_cloudevent *ev, const char *source, const char *type);

/*
 * Appends ev as one compact JSON object to out. Returns WA_EINVAL when id, source or type is
 * missing or time is not RFC 3339 (out is then unchanged), WA_ETOOBIG when out's maximum is
 * reached, WA_ENOMEM.
 */
enum wa_err wa_cloudevent_encode(const struct wa_cloudevent *ev, struct wa_buf *out,
                                 struct wa_error *error);

/*
 * Appends one JSON value (the event's data) to out; returns WA_OK or an error, which aborts
 * the encoding. arg is the caller's, passed through.
 */
typedef enum wa_err (*wa_cloudevent_data_fn)(struct wa_buf *out, const void *arg);

/*
 * wa_cloudevent_encode with the data written by write_data(out, arg) instead of dumped from
 * ev->data (ignored): for hot paths that write data straight into out (wa_json_write,
 * wa_contract_event_data_write). Same bytes, same errors; datacontenttype defaults to
 * "application/json". ev and arg are borrowed for the call only. write_data's error is
 * returned as is; on any error out is unchanged.
 */
enum wa_err wa_cloudevent_write(const struct wa_cloudevent *ev, wa_cloudevent_data_fn write_data,
                                const void *arg, struct wa_buf *out, struct wa_error *error);

/* A decoded event: ev's strings and data are borrowed from root, owned by the document. */
struct wa_cloudevent_doc {
    struct wa_cloudevent ev;
    json_t *root; /* the whole object, extensions included; read-only */
};

/*
 * Parses one structured-mode event of len bytes (no NUL needed). Returns a new document in
 * *out; free with wa_cloudevent_doc_free(). Errors: WA_ETOOBIG above WA_CLOUDEVENT_MAX,
 * WA_EPARSE for malformed JSON or a missing/invalid attribute (specversion must be "1.0"; id,
 * source, type non-empty strings; optional attributes strings; time RFC 3339; not both data
 * and data_base64), with the attribute named in error. A traceparent is not validated here:
 * a malformed one is replaced by a new trace when continued (wa_traceparent_child).
 */
enum wa_err wa_cloudevent_decode(const char *json, size_t len, struct wa_cloudevent_doc **out,
                                 struct wa_error *error);

/* Frees the document and everything borrowed from it. Accepts NULL. */
void wa_cloudevent_doc_free(struct wa_cloudevent_doc *doc);

/* True when s is an RFC 3339 date-time ("2026-11-21T13:45:58.123Z", "...+02:00"). */
bool wa_cloudevent_time_valid(const char *s);

#endif
