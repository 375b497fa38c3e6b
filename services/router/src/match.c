/*
 * match.c: stage 3 of 5 (evaluate). Pure functions: text normalisation, rule conditions,
 * business hours, template variables. Input: the facts of one message (struct rt_msg) and a
 * ruleset; output: the matching rules in order (struct rt_decision). No I/O except reading
 * time-zone files through the C library (cached per zone and quarter hour).
 *
 * Normalisation makes keywords case- and diacritic-insensitive in every script the router
 * expects: Latin (ASCII, Latin-1, Latin Extended-A, combining marks), Greek and Cyrillic case,
 * and Arabic (harakat and tatweel stripped; alef, yeh, teh marbuta and kaf forms unified;
 * Arabic-Indic digits as ASCII). Keywords are normalised once at load with the same function.
 *
 * Threading: called on the loop thread (the time-zone cache is not locked).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "router.h"
#include "wa/utf8.h"

/* Base letters of U+0100..U+017F; '1' = "ij", '2' = "oe". */
static const char latin_ext_a[129] = "aaaaaa"
                                     "cccccccc"
                                     "dddd"
                                     "eeeeeeeeee"
                                     "gggggggg"
                                     "hhhh"
                                     "iiiiiiiiii"
                                     "11"
                                     "jj"
                                     "kkk"
                                     "llllllllll"
                                     "nnnnnnnnn"
                                     "oooooo"
                                     "22"
                                     "rrrrrr"
                                     "ssssssss"
                                     "tttttt"
                                     "uuuuuuuuuuuu"
                                     "ww"
                                     "yyy"
                                     "zzzzzz"
                                     "s";

/* Base letters of U+00C0..U+00FF; '1' = "ae", '2' = "th", '3' = "ss", '*' = keep. */
static const char latin_1[65] = "aaaaaa1ceeeeiiii"
                                "dnooooo*ouuuuy23"
                                "aaaaaa1ceeeeiiii"
                                "dnooooo*ouuuuy2y";

static size_t
utf8_put(long c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

static bool
is_space_cp(long c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || c == 0xA0 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Marks removed entirely: combining diacritics, Arabic harakat and Quranic marks, tatweel,
 * zero-width characters. */
static bool
is_dropped_cp(long c)
{
    return (c >= 0x0300 && c <= 0x036F) || (c >= 0x0610 && c <= 0x061A) ||
           (c >= 0x064B && c <= 0x065F) || c == 0x0670 || c == 0x0640 ||
           (c >= 0x06D6 && c <= 0x06DC) || (c >= 0x06DF && c <= 0x06E8) ||
           (c >= 0x06EA && c <= 0x06ED) || (c >= 0x200B && c <= 0x200F) || c == 0x2060 ||
           c == 0xFEFF;
}

/* Folds one code point; returns a static replacement string in *rep for multi-letter folds,
 * else the folded code point. */
static long
fold_cp(long c, const char **rep)
{
    static const char *const multi_a[] = {"", "ij", "oe"};
    static const char *const multi_1[] = {"", "ae", "th", "ss"};
    char b;

    *rep = NULL;
    if (c >= 'A' && c <= 'Z') {
        return c + 32;
    }
    if (c < 0x80) {
        return c;
    }
    if (c >= 0xC0 && c <= 0xFF) {
        b = latin_1[c - 0xC0];
        if (b == '*') {
            return c;
        }
        if (b >= '1' && b <= '3') {
            *rep = multi_1[b - '0'];
            return -1;
        }
        return b;
    }
    if (c >= 0x100 && c <= 0x17F) {
        b = latin_ext_a[c - 0x100];
        if (b == '1' || b == '2') {
            *rep = multi_a[b - '0'];
            return -1;
        }
        return b;
    }
    /* Greek */
    switch (c) {
    case 0x386:
    case 0x3AC:
        return 0x3B1;
    case 0x388:
    case 0x3AD:
        return 0x3B5;
    case 0x389:
    case 0x3AE:
        return 0x3B7;
    case 0x38A:
    case 0x3AF:
        return 0x3B9;
    case 0x38C:
    case 0x3CC:
        return 0x3BF;
    case 0x38E:
    case 0x3CD:
        return 0x3C5;
    case 0x38F:
    case 0x3CE:
        return 0x3C9;
    case 0x3C2:
        return 0x3C3;
    /* Cyrillic yo as ye (common in search) */
    case 0x401:
    case 0x451:
        return 0x435;
    /* Arabic letter forms */
    case 0x622:
    case 0x623:
    case 0x625:
    case 0x671:
    case 0x672:
    case 0x673:
        return 0x627;
    case 0x649:
    case 0x6CC:
    case 0x626:
        return 0x64A;
    case 0x624:
        return 0x648;
    case 0x629:
        return 0x647;
    case 0x6A9:
        return 0x643;
    default:
        break;
    }
    if (c >= 0x391 && c <= 0x3A9) {
        return c + 0x20;
    }
    if (c >= 0x410 && c <= 0x42F) {
        return c + 0x20;
    }
    if (c >= 0x400 && c <= 0x40F) {
        return c + 0x50;
    }
    if (c >= 0x660 && c <= 0x669) {
        return '0' + (c - 0x660);
    }
    if (c >= 0x6F0 && c <= 0x6F9) {
        return '0' + (c - 0x6F0);
    }
    return c;
}

size_t
rt_text_normalize(const char *s, size_t len, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0, step, k;
    bool pending_space = false;
    const char *rep;
    char enc[4];
    uint32_t u;
    long c;

    if (size == 0) {
        return 0;
    }
    while (i < len) {
        step = wa_utf8_next(p + i, len - i, &u);
        if (step == 0) {
            i++; /* invalid byte: dropped */
            continue;
        }
        i += step;
        c = (long)u;
        if (is_space_cp(c)) {
            pending_space = o > 0;
            continue;
        }
        if (is_dropped_cp(c)) {
            continue;
        }
        c = fold_cp(c, &rep);
        if (rep != NULL) {
            k = strlen(rep);
            memcpy(enc, rep, k);
        } else {
            k = utf8_put(c, enc);
        }
        if (o + (pending_space ? 1 : 0) + k >= size) {
            break; /* bounded: cut at a character boundary */
        }
        if (pending_space) {
            out[o++] = ' ';
            pending_space = false;
        }
        memcpy(out + o, enc, k);
        o += k;
    }
    out[o] = '\0';
    return o;
}

/* Punctuation ignored around an exact keyword: ASCII, inverted marks, Arabic comma, semicolon
 * and question mark. Returns the byte length of the mark at s, 0 if none. */
static size_t
punct_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;

    if (n >= 1 && u[0] < 0x80 && u[0] > ' ' &&
        strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", u[0]) != NULL) {
        return 1;
    }
    if (n >= 2 && u[0] == 0xC2 && (u[1] == 0xA1 || u[1] == 0xBF)) {
        return 2; /* inverted ! and ? */
    }
    if (n >= 2 && u[0] == 0xD8 && (u[1] == 0x8C || u[1] == 0x9B || u[1] == 0x9F)) {
        return 2; /* Arabic comma, semicolon, question mark */
    }
    return 0;
}

/* Points *start and *n at s without surrounding punctuation and spaces. */
static void
trim_punct(const char *s, const char **start, size_t *n)
{
    size_t len = strlen(s), k;
    bool again = true;

    while (again && len > 0) {
        again = false;
        if ((k = punct_len(s, len)) > 0 || s[0] == ' ') {
            k = k > 0 ? k : 1;
            s += k;
            len -= k;
            again = true;
            continue;
        }
        if (s[len - 1] == ' ') {
            len--;
            again = true;
            continue;
        }
        /* the last character: try 1 and 2 byte marks */
        if (punct_len(s + len - 1, 1) == 1) {
            len--;
            again = true;
        } else if (len >= 2 && punct_len(s + len - 2, 2) == 2) {
            len -= 2;
            again = true;
        }
    }
    *start = s;
    *n = len;
}

static bool
list_has(const struct rt_strlist *l, const char *s)
{
    for (size_t i = 0; s != NULL && i < l->n; i++) {
        if (strcmp(l->v[i], s) == 0) {
            return true;
        }
    }
    return false;
}

static bool
tags_have(const struct rt_msg *msg, const char *tag)
{
    for (size_t i = 0; i < msg->ntags; i++) {
        if (strcmp(msg->tags[i], tag) == 0) {
            return true;
        }
    }
    return false;
}

/* True when the byte range [at, at + k) of norm is bounded on both sides by the text's ends, a
 * space or a punctuation mark. */
static bool
word_at(const char *norm, size_t len, size_t at, size_t k)
{
    size_t after = at + k, back;
    bool left = at == 0 || norm[at - 1] == ' ', right = after == len || norm[after] == ' ';

    if (!right) {
        right = punct_len(norm + after, len - after) > 0;
    }
    for (back = 1; !left && back <= 2 && back <= at; back++) {
        left = punct_len(norm + at - back, back) == back;
    }
    return left && right;
}

static bool
word_match(const char *norm, const char *word)
{
    size_t len = strlen(norm), k = strlen(word);
    const char *p = norm;

    while (k > 0 && (p = strstr(p, word)) != NULL) {
        if (word_at(norm, len, (size_t)(p - norm), k)) {
            return true;
        }
        p++;
    }
    return false;
}

static bool
keywords_match(const struct rt_match *m, const struct rt_msg *msg)
{
    const char *norm = msg->norm, *t;
    size_t i, n, k;
    bool any = m->kw[RT_KW_EXACT].n + m->kw[RT_KW_CONTAINS].n + m->kw[RT_KW_PREFIX].n +
                   m->kw[RT_KW_WORD].n >
               0;

    if (!any) {
        return true;
    }
    if (norm == NULL) {
        return false;
    }
    trim_punct(norm, &t, &n);
    for (i = 0; i < m->kw[RT_KW_EXACT].n; i++) {
        k = strlen(m->kw[RT_KW_EXACT].v[i]);
        if (k == n && memcmp(t, m->kw[RT_KW_EXACT].v[i], n) == 0) {
            return true;
        }
    }
    for (i = 0; i < m->kw[RT_KW_PREFIX].n; i++) {
        k = strlen(m->kw[RT_KW_PREFIX].v[i]);
        if (k <= n && memcmp(t, m->kw[RT_KW_PREFIX].v[i], k) == 0) {
            return true;
        }
    }
    for (i = 0; i < m->kw[RT_KW_CONTAINS].n; i++) {
        if (strstr(norm, m->kw[RT_KW_CONTAINS].v[i]) != NULL) {
            return true;
        }
    }
    for (i = 0; i < m->kw[RT_KW_WORD].n; i++) {
        if (word_match(norm, m->kw[RT_KW_WORD].v[i])) {
            return true;
        }
    }
    return false;
}

bool
rt_rule_matches(const struct rt_rule *rule, const struct rt_msg *msg)
{
    const struct rt_match *m = &rule->match;
    size_t i;

    if (!rule->enabled) {
        return false;
    }
    if (m->types.n > 0 && !list_has(&m->types, msg->type)) {
        return false;
    }
    if (m->first >= 0 && (m->first == 1) != msg->first) {
        return false;
    }
    if (m->reply_ids.n > 0 && !list_has(&m->reply_ids, msg->reply_id)) {
        return false;
    }
    if (m->payloads.n > 0 && !list_has(&m->payloads, msg->payload)) {
        return false;
    }
    if (m->languages.n > 0 && !list_has(&m->languages, msg->language)) {
        return false;
    }
    if (m->tags_any.n > 0) {
        bool hit = false;
        for (i = 0; i < m->tags_any.n && !hit; i++) {
            hit = tags_have(msg, m->tags_any.v[i]);
        }
        if (!hit) {
            return false;
        }
    }
    for (i = 0; i < m->tags_all.n; i++) {
        if (!tags_have(msg, m->tags_all.v[i])) {
            return false;
        }
    }
    for (i = 0; i < m->tags_none.n; i++) {
        if (tags_have(msg, m->tags_none.v[i])) {
            return false;
        }
    }
    if (!keywords_match(m, msg)) {
        return false;
    }
    if (m->has_regex) {
        char buf[RT_TEXT_MAX + 1];
        size_t n;

        if (msg->text == NULL) {
            return false;
        }
        n = strlen(msg->text);
        n = n > RT_TEXT_MAX ? RT_TEXT_MAX : n; /* bounded input for the regex engine */
        memcpy(buf, msg->text, n);
        buf[n] = '\0';
        if (regexec(&m->regex, buf, 0, NULL, 0) != 0) {
            return false;
        }
    }
    if (m->hours.set && rt_hours_contain(&m->hours, msg->now_ms) == m->hours.outside) {
        return false;
    }
    return true;
}

void
rt_rules_evaluate(const struct rt_ruleset *rs, const struct rt_msg *msg, struct rt_decision *d)
{
    d->n = 0;
    for (size_t i = 0; rs != NULL && i < rs->nrules && d->n < RT_MATCH_MAX; i++) {
        if (rt_rule_matches(&rs->rules[i], msg)) {
            d->rule[d->n++] = i;
            if (rs->rules[i].stop) {
                break;
            }
        }
    }
}

void
rt_msg_from_inbound(const struct wa_contract_inbound_message *in, struct rt_msg *msg)
{
    const json_t *m = in->message;
    const char *t = in->type;

    msg->type = in->type;
    msg->phone_number_id = in->phone_number_id;
    msg->contact = in->contact;
    msg->to = in->from;
    msg->recipient = in->from == NULL ? in->from_user_id : NULL;
    msg->wamid = in->wamid;
    msg->profile_name = in->profile_name;
    msg->text = in->text;
    msg->reply_id = NULL;
    msg->payload = NULL;
    if (strcmp(t, "button") == 0) {
        msg->text = wa_json_path_str(m, "button.text");
        msg->payload = wa_json_path_str(m, "button.payload");
    } else if (strcmp(t, "interactive") == 0) {
        const char *it = wa_json_path_str(m, "interactive.type");
        if (it != NULL && (strcmp(it, "button_reply") == 0 || strcmp(it, "list_reply") == 0)) {
            const json_t *r = json_object_get(json_object_get(m, "interactive"), it);
            msg->reply_id = wa_json_str(r, "id");
            msg->text = wa_json_str(r, "title");
        }
    } else if (msg->text == NULL &&
               (strcmp(t, "image") == 0 || strcmp(t, "video") == 0 || strcmp(t, "document") == 0)) {
        msg->text = wa_json_str(json_object_get(m, t), "caption");
    }
}

/* ---- business hours ---- */

bool
rt_tz_valid(const char *tz)
{
    char path[256];
    struct stat st;

    if (tz == NULL || tz[0] == '\0' || strstr(tz, "..") != NULL || tz[0] == '/') {
        return false;
    }
    if (strcmp(tz, "UTC") == 0) {
        return true;
    }
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* UTC offset of tz at t, in seconds. Cached per zone and quarter hour: offsets change on
 * quarter-hour boundaries in every zone in use. Swaps TZ in the environment around
 * localtime_r, which is why this runs on one thread only. */
static long
tz_offset(const char *tz, int64_t t_ms)
{
    static struct {
        char tz[64];
        int64_t bucket;
        long off;
    } cache[16];
    int64_t bucket = t_ms / 900000;
    unsigned h = 5381;
    const char *old;
    char saved[128] = "";
    bool had = false;
    time_t secs = (time_t)(t_ms / 1000);
    struct tm tm;
    long off = 0;

    for (const char *p = tz; *p != '\0'; p++) {
        h = h * 33u + (unsigned char)*p;
    }
    h = (h ^ (unsigned)bucket) % 16u;
    if (cache[h].bucket == bucket && strcmp(cache[h].tz, tz) == 0) {
        return cache[h].off;
    }
    if (strcmp(tz, "UTC") != 0) {
        old = getenv("TZ");
        if (old != NULL) {
            had = true;
            snprintf(saved, sizeof(saved), "%s", old);
        }
        setenv("TZ", tz, 1);
        tzset();
        if (localtime_r(&secs, &tm) != NULL) {
            off = tm.tm_gmtoff;
        }
        if (had) {
            setenv("TZ", saved, 1);
        } else {
            unsetenv("TZ");
        }
        tzset();
    }
    snprintf(cache[h].tz, sizeof(cache[h].tz), "%s", tz);
    cache[h].bucket = bucket;
    cache[h].off = off;
    return off;
}

bool
rt_hours_contain(const struct rt_hours *h, int64_t t_ms)
{
    int64_t local = t_ms / 1000 + tz_offset(h->tz, t_ms);
    int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    int minute = (int)((local - days * 86400) / 60);
    int wday = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    int yday = (wday + 6) % 7;

    if (h->from_min <= h->to_min) {
        return (h->days & (1u << wday)) != 0 && minute >= h->from_min && minute < h->to_min;
    }
    /* overnight span: the evening part belongs to today, the morning part to yesterday */
    return ((h->days & (1u << wday)) != 0 && minute >= h->from_min) ||
           ((h->days & (1u << yday)) != 0 && minute < h->to_min);
}

/* ---- variables ---- */

static const char *
var_value(const char *name, size_t n, const struct rt_msg *msg, const char *rule, size_t *len)
{
    static const char empty[] = "";
    const char *v = NULL;

#define IS(lit) (n == sizeof(lit) - 1 && memcmp(name, lit, n) == 0)
    if (IS("name")) {
        v = msg->profile_name;
    } else if (IS("first_name")) {
        v = msg->profile_name;
        if (v != NULL) {
            const char *sp = strchr(v, ' ');
            *len = sp != NULL ? (size_t)(sp - v) : strlen(v);
            return v;
        }
    } else if (IS("contact")) {
        v = msg->contact;
    } else if (IS("text")) {
        v = msg->text;
    } else if (IS("phone_number_id")) {
        v = msg->phone_number_id;
    } else if (IS("wamid")) {
        v = msg->wamid;
    } else if (IS("rule")) {
        v = rule;
    } else {
        return NULL; /* unknown: left as written */
    }
#undef IS
    v = v != NULL ? v : empty;
    *len = strlen(v);
    return v;
}

static json_t *
subst_string(const char *s, const struct rt_msg *msg, const char *rule)
{
    struct wa_buf b;
    const char *p = s, *open, *close, *v;
    size_t vlen = 0;
    json_t *out;

    if (strstr(s, "{{") == NULL) {
        return json_string(s);
    }
    wa_buf_init(&b, 64 * 1024);
    while ((open = strstr(p, "{{")) != NULL && (close = strstr(open + 2, "}}")) != NULL) {
        const char *name = open + 2;
        size_t n = (size_t)(close - name);

        while (n > 0 && *name == ' ') {
            name++;
            n--;
        }
        while (n > 0 && name[n - 1] == ' ') {
            n--;
        }
        wa_buf_append(&b, p, (size_t)(open - p));
        v = var_value(name, n, msg, rule, &vlen);
        if (v != NULL) {
            wa_buf_append(&b, v, vlen);
        } else {
            wa_buf_append(&b, open, (size_t)(close + 2 - open));
        }
        p = close + 2;
    }
    wa_buf_append_str(&b, p);
    out = json_string(b.data != NULL ? b.data : "");
    wa_buf_cleanup(&b);
    return out;
}

json_t *
rt_vars_apply(const json_t *tmpl, const struct rt_msg *msg, const char *rule)
{
    json_t *out, *v, *c;
    const char *key;
    size_t i;

    if (json_is_string(tmpl)) {
        return subst_string(json_string_value(tmpl), msg, rule);
    }
    if (json_is_object(tmpl)) {
        if ((out = json_object()) == NULL) {
            return NULL;
        }
        json_object_foreach((json_t *)tmpl, key, v)
        {
            if ((c = rt_vars_apply(v, msg, rule)) == NULL ||
                json_object_set_new(out, key, c) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    if (json_is_array(tmpl)) {
        if ((out = json_array()) == NULL) {
            return NULL;
        }
        json_array_foreach((json_t *)tmpl, i, v)
        {
            if ((c = rt_vars_apply(v, msg, rule)) == NULL || json_array_append_new(out, c) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    return json_deep_copy(tmpl);
}
