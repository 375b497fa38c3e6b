/*
 * forget.c: erasure. Input: a <p>contact.event of kind "erased" (wa-users, after
 * DELETE /v1/contacts/{id}; consume.c hands it over). Output: every Redis key wa-router holds
 * about that contact gone, for every sending number (the event does not name one):
 * <p>win:<pnid>:<identity>, <p>rt:tags:..., <p>rt:attr:..., its reminders (<p>rt:remi:...
 * and their entries in <p>rt:rem and <p>rt:remd) and its members of <p>rt:winz / <p>rt:winw
 * (so no window event names it later). The keys are found by SCAN MATCH <p>*:<identity>, one
 * script call per SCAN step of FORGET_COUNT keys, so Redis is never held for long; then the
 * offset is handed back. A failed step is retried after WA_ROUTER_RETRY (every step is
 * idempotent); while draining, the event is left uncommitted for the next owner.
 * Other kinds of contact.event change nothing here.
 *
 * Threading: loop thread. Ownership: struct forget owns the Kafka message until it is handed
 * back; freed in finish().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "wa/cloudevent.h"
#include "wa/kv.h"
#include "wa/log.h"

#define FORGET_COUNT "1000"

/* KEYS: none (found by SCAN); ARGV: prefix, cursor, pattern, count. Returns {cursor, deleted}. */
static const char forget_script[] =
    "local p = ARGV[1]\n"
    "local r = redis.call('SCAN', ARGV[2], 'MATCH', ARGV[3], 'COUNT', ARGV[4])\n"
    "local n = 0\n"
    "for _, k in ipairs(r[2]) do\n"
    "  local rest = string.sub(k, #p + 1)\n"
    "  local conv\n"
    "  if string.sub(rest, 1, 4) == 'win:' then conv = string.sub(rest, 5)\n"
    "  elseif string.sub(rest, 1, 8) == 'rt:tags:' or string.sub(rest, 1, 8) == 'rt:attr:' then\n"
    "    conv = string.sub(rest, 9)\n"
    "  elseif string.sub(rest, 1, 8) == 'rt:remi:' then\n"
    "    conv = string.sub(rest, 9)\n"
    "    for _, id in ipairs(redis.call('SMEMBERS', k)) do\n"
    "      redis.call('ZREM', p .. 'rt:rem', id)\n"
    "      redis.call('HDEL', p .. 'rt:remd', id)\n"
    "    end\n"
    "  end\n"
    "  if conv then\n"
    "    redis.call('ZREM', p .. 'rt:winz', conv)\n"
    "    redis.call('ZREM', p .. 'rt:winw', conv)\n"
    "    redis.call('DEL', k)\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return {r[1], n}\n";

struct forget {
    struct rt *rt;
    struct wa_kafka_msg *kmsg;
    char event_id[128];
    char pattern[RT_KEY_MAX];
    char cursor[32];
    long long deleted;
    struct wa_timer *retry;
};

static void step(struct forget *f);

static void
finish(struct forget *f)
{
    if (f->kmsg != NULL) {
        wa_kafka_consumer_done(f->rt->consumer, f->kmsg);
    }
    f->rt->inflight--;
    wa_timer_free(f->retry);
    free(f);
}

static void
on_retry(struct wa_timer *t, void *arg)
{
    (void)t;
    step(arg);
}

static void
failed(struct forget *f, enum wa_err err)
{
    struct rt *rt = f->rt;
    struct wa_log_ctx lc = {.event_id = f->event_id};

    if (rt->draining) {
        f->kmsg = NULL; /* left uncommitted: the next owner of the partition forgets it */
        finish(f);
        return;
    }
    wa_log_warn(&lc, "erasure: Redis %s; retrying in %lld ms", wa_err_name(err),
                (long long)rt->cfg->retry_ms);
    if (f->retry == NULL && (f->retry = wa_timer_new(rt->loop, on_retry, f)) == NULL) {
        f->kmsg = NULL;
        finish(f);
        return;
    }
    wa_timer_start(f->retry, (uint64_t)rt->cfg->retry_ms, 0);
}

static void
on_step(void *arg, enum wa_err err, const struct wa_kv_reply *reply)
{
    struct forget *f = arg;
    const char *cursor = NULL;

    if (err == WA_OK &&
        (wa_kv_reply_type(reply) != WA_KV_REPLY_ARRAY || wa_kv_reply_len(reply) != 2 ||
         (cursor = wa_kv_reply_str(wa_kv_reply_at(reply, 0), NULL)) == NULL)) {
        err = WA_EPARSE;
    }
    if (err != WA_OK) {
        failed(f, err);
        return;
    }
    f->deleted += wa_kv_reply_int(wa_kv_reply_at(reply, 1));
    snprintf(f->cursor, sizeof(f->cursor), "%s", cursor);
    if (strcmp(f->cursor, "0") != 0) {
        step(f);
        return;
    }
    {
        struct wa_log_ctx lc = {.event_id = f->event_id};

        wa_log_info(&lc, "erasure: %lld conversation keys of the contact deleted", f->deleted);
    }
    wa_counter_inc(f->rt->m.erasures);
    finish(f);
}

static void
step(struct forget *f)
{
    const char *args[4] = {f->rt->prefix, f->cursor, f->pattern, FORGET_COUNT};
    enum wa_err err = wa_kv_eval(f->rt->kv, forget_script, 0, NULL, 4, args, on_step, f);

    if (err != WA_OK) {
        failed(f, err);
    }
}

/* Appends s to out (at *len, size bytes) with the glob characters of SCAN MATCH escaped. */
static bool
glob_escaped(char *out, size_t size, size_t *len, const char *s)
{
    for (; *s != '\0'; s++) {
        bool special = strchr("*?[]\\", *s) != NULL;

        if (*len + (special ? 2 : 1) >= size) {
            return false;
        }
        if (special) {
            out[(*len)++] = '\\';
        }
        out[(*len)++] = *s;
    }
    out[*len] = '\0';
    return true;
}

void
rt_forget_start(struct rt *rt, struct wa_kafka_msg *kmsg)
{
    struct wa_cloudevent_doc *doc = NULL;
    const char *kind = NULL, *identity = NULL;
    struct forget *f = NULL;
    size_t len = 0;
    bool ok;

    if (kmsg->value != NULL && wa_cloudevent_decode(kmsg->value, kmsg->len, &doc, NULL) == WA_OK) {
        kind = wa_json_str(doc->ev.data, "kind");
        identity = wa_json_str(doc->ev.data, "identity");
    }
    if (kind == NULL || strcmp(kind, "erased") != 0 || identity == NULL || identity[0] == '\0' ||
        strchr(identity, ':') != NULL || (f = calloc(1, sizeof(*f))) == NULL) {
        wa_cloudevent_doc_free(doc);
        wa_kafka_consumer_done(rt->consumer, kmsg); /* nothing of ours to forget */
        return;
    }
    f->rt = rt;
    f->kmsg = kmsg;
    snprintf(f->event_id, sizeof(f->event_id), "%s", doc->ev.id);
    snprintf(f->cursor, sizeof(f->cursor), "0");
    /* <p>*:<identity>: every key whose conversation ends in this contact */
    ok = glob_escaped(f->pattern, sizeof(f->pattern), &len, rt->prefix) &&
         len + 2 < sizeof(f->pattern);
    if (ok) {
        f->pattern[len++] = '*';
        f->pattern[len++] = ':';
        f->pattern[len] = '\0';
        ok = glob_escaped(f->pattern, sizeof(f->pattern), &len, identity);
    }
    wa_cloudevent_doc_free(doc);
    rt->inflight++;
    if (!ok) {
        wa_log_warn(NULL, "erasure: identity too long; skipped");
        finish(f);
        return;
    }
    step(f);
}
