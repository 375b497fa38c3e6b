/*
 * spool.c: stage 7 of 7 (fallback of publish). Input: requests whose records Kafka did not
 * acknowledge in time. Output: the records appended to a local file and fsynced before the
 * request is answered (ig_publish_spooled), and a replayer that re-publishes them in order.
 *
 * Files in WA_SPOOL_DIR (frames: wa/spool_frame.h):
 *   spool-<ULID>.log              append-only records; a torn tail (a crash during a write that
 *                                 was never acknowledged) is detected by length or CRC, ignored
 *   spool-<ULID>.log.cursor       the replay cursor: every record before its offset is on Kafka
 *                                 or dead-lettered ("WASC", u64 offset, u32 flags, u64 ~offset)
 *   dead-letter-spool-<ULID>.log  records Kafka refused for good (too large, invalid; unknown
 *                                 topic, not authorised or an unclassified error for
 *                                 WA_SPOOL_DEAD_LETTER_AFTER), same
 *                                 frames; renamed spool-<ULID>.log they are replayed again
 *   quarantine-spool-<ULID>.log   a replayed file that had damaged frames, kept for an operator
 *   .probe                        the writability probe of a spool whose last write failed
 * A damaged frame with intact frames after it (a flipped byte, a zeroed block) is skipped by
 * resynchronising on the next valid frame, so every later record is still replayed.
 * wa_ingest_spool_damaged_total{kind="corrupt"|"refused"} counts damaged frames and dead
 * letters (an alert rule watches it).
 *
 * Writes are group commits: requests that arrive while a write is in flight wait and go out
 * together in the next write + fdatasync, on the worker pool (never on the loop). One write
 * job at a time, so the file descriptor is used by one thread at a time. A failed write (a full
 * disk) makes the spool "broken" (readiness down); every replay interval a probe writes and
 * fsyncs 64 KiB beside the files, and the spool is ready again once one succeeds.
 *
 * Replay (timer, every WA_SPOOL_REPLAY_INTERVAL, when the producer is connected): seal the
 * active file if nothing older is waiting, read the oldest file and its cursor on the pool, then
 * produce windows of REPLAY_WINDOW records in file order from the cursor. When a window's
 * reports are in, its dead letters are appended and fsynced, then the cursor moves past the
 * acknowledged prefix (pwrite + fdatasync), so a crash re-produces at most one window. A record
 * that failed leaves the cursor before it and ends the pass; the next pass resumes there and
 * skips the records after it that Kafka already acknowledged (remembered in memory). At the end
 * the file is deleted (or quarantined), then its cursor. Files left by an earlier run are found
 * at start and replayed the same way.
 *
 * Spool mode: after a request was spooled because Kafka failed or was late, new requests go to
 * the spool too while it holds a backlog (each key's order kept). The first replay window in
 * which Kafka acknowledges records and none fails for want of a broker ends spool mode: new
 * requests are produced directly again while the rest of the backlog replays beside them, so a
 * sustained load cannot keep the daemon spooling.
 *
 * Lifetime: owned by ig (made by the spool stage's start, freed by its stop). By the stop the
 * scaffolding has silenced the pool and the producer: every job's completion and every replay
 * delivery report has run, so nothing refers to the spool any more.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wa/kafka.h"
#include "wa/pool.h"
#include "wa/spool_frame.h"

#include "ingest.h"

#define NFIELDS        WA_SPOOL_FIELDS
#define REPLAY_WINDOW  512 /* records produced before the cursor moves */
#define CURSOR_LEN     24
#define CURSOR_DAMAGED 1u /* flag: damaged frames were skipped (quarantine the file) */
#define PROBE_BYTES    65536
#define CURSOR_SUFFIX  ".cursor"
#define DEAD_PREFIX    "dead-letter-"
#define QUARANTINE_PFX "quarantine-"

struct spool_file {
    char name[64];
    size_t size;
};

struct write_job {
    struct ig_spool *spool;
    struct ig_request **reqs; /* owned array; the requests are borrowed (they wait for us) */
    size_t nreqs;
    struct wa_buf data;
    size_t start; /* the active file's size before this write */
    bool ok;
    bool clean; /* failed, and the file is as it was before (no torn tail) */
    int err;
};

enum entry_state {
    E_PENDING, /* produced, no report yet */
    E_OK,      /* acknowledged by Kafka */
    E_FAILED,  /* not acknowledged: retried by a later pass */
    E_DEAD,    /* refused for good: dead-lettered */
    E_SKIP     /* damaged bytes skipped */
};

struct replay;

/* One record (or damaged region) of the window in flight. */
struct entry {
    struct replay *rp;
    size_t off, len; /* in the file */
    unsigned char state;
};

/* The oldest file from its first pass until it is removed (several passes when Kafka fails
 * midway). Owned by the spool (s->rp); the pool job or delivery reports in flight borrow it
 * while busy. */
struct replay {
    struct ig_spool *spool;
    char name[64];
    char path[600], cursor_path[620], dead_path[620], quarantine[620];
    struct wa_buf data; /* the file, read once: sealed files do not change */
    bool loaded;
    bool busy;       /* a job, a window or its commit is in flight */
    uint64_t cursor; /* durable: everything before it is on Kafka or dead-lettered */
    uint32_t flags;  /* durable: CURSOR_* */
    size_t *acked;   /* offsets past the cursor Kafka acknowledged (this process only) */
    size_t nacked, capacked;
    struct entry win[REPLAY_WINDOW];
    size_t nwin, pending;
    bool at_end;        /* the window reaches the end of the file (or its torn tail) */
    struct wa_buf dead; /* the window's dead letters (frames), written before the cursor moves */
    size_t ndead;
    size_t refusals;      /* reports "unknown topic" / "not authorised" / EIO in the window */
    enum wa_err fail_err; /* the window's last failure, for the log */
    bool outage;          /* a record of the window failed for want of a broker */
    uint64_t new_cursor;  /* the commit in flight */
    uint32_t new_flags;
    bool finish;      /* the commit removes the file */
    size_t committed; /* window entries covered by new_cursor */
    bool ok;
    int err;
    bool cursor_failing; /* the last cursor write failed (logged once) */
};

struct ig_spool {
    struct ig *ig;
    struct wa_pool *pool;
    char dir[512];
    int fd;          /* active file, -1 when none; used by one write job at a time */
    char active[64]; /* its name */
    size_t active_size;
    struct ig_request **queue; /* waiting for the next write */
    size_t nqueue, capqueue;
    bool writing;
    struct spool_file *files; /* sealed, oldest first */
    size_t nfiles, capfiles;
    struct replay *rp; /* the oldest file being replayed, or NULL */
    struct wa_timer *timer;
    bool broken;         /* last write failed: not ready until a write or a probe succeeds */
    bool probing;        /* a probe job is in flight */
    bool probe_ok;       /* its result */
    uint64_t broken_ms;  /* when it broke (monotonic), for the recovery log line */
    bool kafka_down;     /* a request was spooled because Kafka failed or was late */
    uint64_t refused_ms; /* first "unknown topic / not authorised" report still unresolved */
};

static void
update_gauges(struct ig_spool *s)
{
    size_t bytes = s->active_size;

    for (size_t i = 0; i < s->nfiles; i++) {
        bytes += s->files[i].size;
    }
    wa_gauge_set(s->ig->m.spool_bytes, (double)bytes);
    wa_gauge_set(s->ig->m.spool_files, (double)(s->nfiles + (s->active_size > 0)));
}

static enum wa_err
frame_request(struct wa_buf *b, struct ig_request *r)
{
    static const char *const types[4] = {WA_CE_TYPE_INBOUND_MESSAGE, WA_CE_TYPE_INBOUND_STATUS,
                                         WA_CE_TYPE_ACCOUNT_EVENT, WA_CE_TYPE_WEBHOOK_RAW};
    const char *source = wa_service_instance(r->ig->svc);

    for (size_t i = 0; i < r->nrecords; i++) {
        const struct ig_record *rec = &r->records[i];
        const char *key = r->arena.data + rec->key_off;
        const char *f[NFIELDS] = {
            r->ig->topic[rec->topic],      key, rec->id, types[rec->topic], source, r->traceparent,
            r->arena.data + rec->value_off};
        size_t l[NFIELDS] = {strlen(f[0]),  strlen(key),    strlen(rec->id),
                             strlen(f[3]),  strlen(source), strlen(r->traceparent),
                             rec->value_len};
        enum wa_err err;

        if (rec->acked || rec->skip) {
            continue;
        }
        if ((err = wa_spool_frame_append(b, f, l)) != WA_OK) {
            return err;
        }
    }
    return WA_OK;
}

/* ---- writing (worker thread) ---- */

/* On failure the file is left as it was: a file this job created is removed, one it appended
 * to is cut back to its acknowledged size, so a full disk leaves no torn bytes or empty files. */
static void
write_work(void *arg)
{
    struct write_job *j = arg;
    struct ig_spool *s = j->spool;
    char path[600];
    size_t off = 0;
    bool created = false;

    snprintf(path, sizeof(path), "%s/%s", s->dir, s->active);
    if (s->fd < 0) {
        s->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (s->fd < 0) {
            j->err = errno;
            return;
        }
        created = true;
    }
    while (off < j->data.len) {
        ssize_t n = write(s->fd, j->data.data + off, j->data.len - off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            j->err = n < 0 ? errno : EIO;
            goto undo;
        }
        off += (size_t)n;
    }
    if (fdatasync(s->fd) != 0) {
        j->err = errno;
        goto undo;
    }
    if (created) {
        int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        /* The new name must survive a crash too. */
        if (dfd < 0 || fsync(dfd) != 0) {
            j->err = errno;
        }
        if (dfd >= 0) {
            close(dfd);
        }
        if (j->err != 0) {
            goto undo;
        }
    }
    j->ok = true;
    return;
undo:
    if (created ? unlink(path) == 0 : ftruncate(s->fd, (off_t)j->start) == 0) {
        j->clean = !created;
        if (created) {
            close(s->fd);
            s->fd = -1;
        }
    }
}

static void flush_queue(struct ig_spool *s);

static void
seal_active(struct ig_spool *s)
{
    struct spool_file *grown;

    if (s->active_size == 0 || s->writing) {
        return;
    }
    if (s->nfiles == s->capfiles) {
        size_t cap = s->capfiles ? s->capfiles * 2 : 8;

        if ((grown = realloc(s->files, cap * sizeof(*grown))) == NULL) {
            return;
        }
        s->files = grown;
        s->capfiles = cap;
    }
    snprintf(s->files[s->nfiles].name, sizeof(s->files[0].name), "%s", s->active);
    s->files[s->nfiles++].size = s->active_size;
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    s->active_size = 0;
    s->active[0] = '\0';
}

/* Readiness follows the last write or probe; the gauge and a log line follow readiness. */
static void
set_broken(struct ig_spool *s, bool broken)
{
    if (s->broken && !broken) {
        wa_log_info(NULL, "spool %s writable again after %.1f s: ready", s->dir,
                    (double)(wa_clock_mono_ms() - s->broken_ms) / 1000.0);
    } else if (!s->broken && broken) {
        s->broken_ms = wa_clock_mono_ms();
    }
    s->broken = broken;
    wa_gauge_set(s->ig->m.spool_writable, broken ? 0.0 : 1.0);
}

static void
write_done(void *arg)
{
    struct write_job *j = arg;
    struct ig_spool *s = j->spool;

    s->writing = false;
    if (j->ok) {
        s->active_size += j->data.len;
        set_broken(s, false);
        wa_counter_add(s->ig->m.spool_written, j->nreqs);
    } else {
        wa_counter_inc(s->ig->m.spool_write_failures);
        if (!s->broken) {
            wa_log_error(NULL, "spool write to %s failed: %s; not ready until a write succeeds",
                         s->dir, strerror(j->err));
        }
        set_broken(s, true);
        if (!j->clean) {
            /* What was written may be partial: start a new file, the torn tail is skipped. */
            if (s->fd >= 0) {
                close(s->fd);
                s->fd = -1;
            }
            if (s->active_size > 0) {
                seal_active(s);
            }
            s->active[0] = '\0';
        }
    }
    for (size_t i = 0; i < j->nreqs; i++) {
        ig_publish_spooled(j->reqs[i], j->ok);
        ig_request_release(j->reqs[i], true);
    }
    if (s->active_size >= (size_t)s->ig->cfg->spool_file_max) {
        seal_active(s);
    }
    update_gauges(s);
    wa_buf_cleanup(&j->data);
    free(j->reqs);
    free(j);
    flush_queue(s);
}

static void
flush_queue(struct ig_spool *s)
{
    struct write_job *j;
    size_t i;

    if (s->writing || s->nqueue == 0) {
        return;
    }
    if ((j = calloc(1, sizeof(*j))) == NULL) {
        return; /* retried on the next request or replay tick */
    }
    j->spool = s;
    j->start = s->active_size;
    j->reqs = s->queue;
    j->nreqs = s->nqueue;
    s->queue = NULL;
    s->nqueue = s->capqueue = 0;
    wa_buf_init(&j->data, 0);
    for (i = 0; i < j->nreqs; i++) {
        if (frame_request(&j->data, j->reqs[i]) != WA_OK) {
            break;
        }
    }
    if (s->active[0] == '\0') {
        char id[WA_ULID_LEN];

        wa_ulid_new(id);
        snprintf(s->active, sizeof(s->active), "spool-%s.log", id);
    }
    if (i < j->nreqs || wa_pool_submit(s->pool, write_work, write_done, j) != WA_OK) {
        for (i = 0; i < j->nreqs; i++) {
            ig_publish_spooled(j->reqs[i], false);
            ig_request_release(j->reqs[i], true);
        }
        wa_buf_cleanup(&j->data);
        free(j->reqs);
        free(j);
        return;
    }
    s->writing = true;
}

void
ig_spool_start(struct ig_request *r)
{
    struct ig_spool *s = r->ig->spool;

    if (s->nqueue == s->capqueue) {
        size_t cap = s->capqueue ? s->capqueue * 2 : 16;
        struct ig_request **grown = realloc(s->queue, cap * sizeof(*grown));

        if (grown == NULL) {
            ig_publish_spooled(r, false);
            return;
        }
        s->queue = grown;
        s->capqueue = cap;
    }
    s->queue[s->nqueue++] = r;
    r->outstanding++;
    flush_queue(s);
}

static bool
backlog(const struct ig_spool *s)
{
    return s->nfiles > 0 || s->active_size > 0 || s->writing || s->nqueue > 0;
}

/* A broken spool (full disk) diverts nothing: Kafka may take what the spool cannot. */
bool
ig_spool_divert(const struct ig_spool *s)
{
    return s->kafka_down && !s->broken && backlog(s);
}

void
ig_spool_kafka_late(struct ig_spool *s)
{
    if (!s->kafka_down) {
        wa_log_info(NULL, "spool mode: new webhooks go to the spool until a replay window is "
                          "acknowledged");
    }
    s->kafka_down = true;
}

bool
ig_spool_ready(const struct ig_spool *s)
{
    return !s->broken;
}

/* ---- probe (a broken spool) ---- */

static void
probe_work(void *arg)
{
    static const char zeros[PROBE_BYTES];
    struct ig_spool *s = arg;
    char path[600];
    int fd;

    snprintf(path, sizeof(path), "%s/.probe", s->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    s->probe_ok =
        fd >= 0 && write(fd, zeros, sizeof(zeros)) == (ssize_t)sizeof(zeros) && fdatasync(fd) == 0;
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
}

static void
probe_done(void *arg)
{
    struct ig_spool *s = arg;

    s->probing = false;
    if (s->probe_ok && !s->writing) {
        set_broken(s, false);
    }
}

static void
probe(struct ig_spool *s)
{
    if (!s->broken || s->probing || s->writing) {
        return;
    }
    s->probe_ok = false;
    if (wa_pool_submit(s->pool, probe_work, probe_done, s) == WA_OK) {
        s->probing = true;
    }
}

/* ---- replay ---- */

static void
put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static void
put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t
get_u64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* Worker: the file and its cursor (none, or unreadable: from the start, duplicates not loss). */
static void
load_work(void *arg)
{
    struct replay *rp = arg;
    char chunk[65536];
    unsigned char c[CURSOR_LEN];
    int fd = open(rp->path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        rp->err = errno;
        return;
    }
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 || wa_buf_append(&rp->data, chunk, (size_t)n) != WA_OK) {
            rp->err = n < 0 ? errno : ENOMEM;
            close(fd);
            return;
        }
    }
    close(fd);
    if ((fd = open(rp->cursor_path, O_RDONLY | O_CLOEXEC)) >= 0) {
        if (read(fd, c, sizeof(c)) == (ssize_t)sizeof(c) && memcmp(c, "WASC", 4) == 0 &&
            get_u64(c + 4) == ~get_u64(c + 16) && get_u64(c + 4) <= rp->data.len) {
            rp->cursor = get_u64(c + 4);
            rp->flags = (uint32_t)c[12] | (uint32_t)c[13] << 8 | (uint32_t)c[14] << 16 |
                        (uint32_t)c[15] << 24;
        }
        close(fd);
    }
    rp->ok = true;
}

static enum wa_err
fsync_dir(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    enum wa_err err = dfd >= 0 && fsync(dfd) == 0 ? WA_OK : WA_EIO;

    if (dfd >= 0) {
        close(dfd);
    }
    return err;
}

/* Worker: the window's dead letters (appended, fsynced, the name too), then the cursor moves:
 * pwrite + fdatasync, or, at the end of the file, the file goes (deleted, or renamed
 * quarantine-* when it had damage) and its cursor after it. */
static void
commit_work(void *arg)
{
    struct replay *rp = arg;
    unsigned char c[CURSOR_LEN];
    int fd;

    if (rp->dead.len > 0) {
        struct stat st;
        bool existed = stat(rp->dead_path, &st) == 0;
        size_t off = 0;

        if ((fd = open(rp->dead_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
            rp->err = errno;
            return;
        }
        while (off < rp->dead.len) {
            ssize_t n = write(fd, rp->dead.data + off, rp->dead.len - off);

            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                rp->err = n < 0 ? errno : EIO;
                close(fd);
                return;
            }
            off += (size_t)n;
        }
        if (fdatasync(fd) != 0 || (!existed && fsync_dir(rp->spool->dir) != WA_OK)) {
            rp->err = errno;
            close(fd);
            return;
        }
        close(fd);
    }
    if (rp->finish) {
        int rc =
            (rp->new_flags & CURSOR_DAMAGED) ? rename(rp->path, rp->quarantine) : unlink(rp->path);

        if (rc != 0 && errno != ENOENT) { /* ENOENT: an operator took it away */
            rp->err = errno;
            return;
        }
        unlink(rp->cursor_path); /* an orphan left by a crash here is removed at start */
        rp->ok = true;
        return;
    }
    memcpy(c, "WASC", 4);
    put_u64(c + 4, rp->new_cursor);
    put_u32(c + 12, rp->new_flags);
    put_u64(c + 16, ~rp->new_cursor);
    /* A lost or torn cursor replays from an earlier point after a crash: duplicates, never a
     * loss. So a cursor that cannot be written (a full disk) does not stop the replay, whose
     * end frees the space; the dead letters above had to be durable. */
    rp->ok = true;
    if ((fd = open(rp->cursor_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        rp->err = errno;
        return;
    }
    if (pwrite(fd, c, sizeof(c), 0) != (ssize_t)sizeof(c) || fdatasync(fd) != 0) {
        rp->err = errno;
    }
    close(fd);
}

static void replay_window(struct replay *rp);

static void
replay_free(struct replay *rp)
{
    if (rp == NULL) {
        return;
    }
    if (rp->spool->rp == rp) {
        rp->spool->rp = NULL;
    }
    wa_buf_cleanup(&rp->data);
    wa_buf_cleanup(&rp->dead);
    free(rp->acked);
    free(rp);
}

/* The pass ends here; the next tick resumes from the cursor. */
static void
pass_end(struct replay *rp)
{
    rp->busy = false;
}

static bool
was_acked(const struct replay *rp, size_t off)
{
    for (size_t i = 0; i < rp->nacked; i++) {
        if (rp->acked[i] == off) {
            return true;
        }
    }
    return false;
}

/* off was acknowledged past the cursor: later passes skip it (out of memory: produced again, a
 * duplicate). */
static void
remember_acked(struct replay *rp, size_t off)
{
    if (was_acked(rp, off)) {
        return;
    }
    if (rp->nacked == rp->capacked) {
        size_t cap = rp->capacked ? rp->capacked * 2 : 64;
        size_t *grown = realloc(rp->acked, cap * sizeof(*grown));

        if (grown == NULL) {
            return;
        }
        rp->acked = grown;
        rp->capacked = cap;
    }
    rp->acked[rp->nacked++] = off;
}

static void
commit_done(void *arg)
{
    struct replay *rp = arg;
    struct ig_spool *s = rp->spool;
    size_t replayed = 0, corrupt = 0, failed = 0, i, keep = 0;

    if (!rp->ok) {
        wa_log_error(NULL, "spool replay: cannot %s %s: %s; retrying later",
                     rp->finish ? "write dead letters for or remove" : "write dead letters for",
                     rp->path, strerror(rp->err));
        /* what Kafka acknowledged is not produced again by the retry */
        for (i = 0; i < rp->nwin; i++) {
            if (rp->win[i].state == E_OK) {
                remember_acked(rp, rp->win[i].off);
            }
        }
        pass_end(rp);
        return;
    }
    if (rp->err != 0 && !rp->cursor_failing) {
        wa_log_warn(NULL,
                    "spool replay: cursor of %s not written (%s); replaying on, a crash would "
                    "repeat records from an earlier point",
                    rp->name, strerror(rp->err));
    }
    rp->cursor_failing = rp->err != 0;
    for (i = 0; i < rp->committed; i++) {
        replayed += rp->win[i].state == E_OK;
        corrupt += rp->win[i].state == E_SKIP;
    }
    for (; i < rp->nwin; i++) {
        failed += rp->win[i].state != E_OK && rp->win[i].state != E_SKIP;
    }
    wa_counter_add(s->ig->m.spool_replayed, replayed);
    wa_counter_add(s->ig->m.spool_damaged[0], corrupt);
    wa_counter_add(s->ig->m.spool_damaged[1], rp->ndead);
    if (rp->ndead > 0) {
        wa_log_error(NULL, "spool replay: %zu records of %s refused by Kafka for good, kept in %s",
                     rp->ndead, rp->name, rp->dead_path);
    }
    rp->cursor = rp->new_cursor;
    rp->flags = rp->new_flags;
    for (i = 0; i < rp->nacked; i++) { /* what the cursor passed is forgotten */
        if (rp->acked[i] >= rp->cursor) {
            rp->acked[keep++] = rp->acked[i];
        }
    }
    rp->nacked = keep;
    if (rp->finish) {
        if (rp->flags & CURSOR_DAMAGED) {
            wa_log_error(NULL, "spool: replayed %s; it had damaged frames and is kept as %s",
                         rp->name, rp->quarantine);
        } else {
            wa_log_info(NULL, "spool: replayed and removed %s", rp->name);
        }
        WA_ASSERT(s->nfiles > 0 && strcmp(s->files[0].name, rp->name) == 0);
        memmove(&s->files[0], &s->files[1], (s->nfiles - 1) * sizeof(s->files[0]));
        s->nfiles--;
        update_gauges(s);
        replay_free(rp);
        if (s->nfiles > 0 || s->active_size > 0) {
            wa_timer_start(s->timer, 0, (uint64_t)s->ig->cfg->spool_replay_ms);
        }
        return;
    }
    if (failed > 0 || !wa_kafka_producer_ready(s->ig->producer)) {
        pass_end(rp);
        return;
    }
    replay_window(rp);
}

/* Every report of the window is in: dead letters and the cursor go to disk, then the next
 * window (or the end of the pass). */
static void
window_done(struct replay *rp)
{
    struct ig_spool *s = rp->spool;
    size_t i, failed = 0, acked = 0;

    /* Kafka acknowledged records and nothing failed for want of a broker: spool mode ends (a
     * record refused on its own, e.g. an unknown topic in its grace period, does not hold new
     * webhooks back) */
    for (i = 0; i < rp->nwin; i++) {
        acked += rp->win[i].state == E_OK;
    }
    if (acked > 0 && !rp->outage && s->kafka_down) {
        wa_log_info(NULL, "spool mode ends: Kafka acknowledged a replay window; new webhooks are "
                          "published directly while the backlog replays");
        s->kafka_down = false;
    }
    if (rp->refusals == 0) {
        s->refused_ms = 0;
    }
    /* the acknowledged prefix; its dead letters are written with the cursor */
    rp->new_cursor = rp->cursor;
    rp->dead.len = 0;
    rp->ndead = 0;
    for (i = 0; i < rp->nwin && rp->win[i].state != E_FAILED; i++) {
        const struct entry *e = &rp->win[i];

        if (e->state == E_DEAD) {
            if (wa_buf_append(&rp->dead, rp->data.data + e->off, e->len) != WA_OK) {
                break; /* kept in the file: refused again next pass */
            }
            rp->ndead++;
        }
        rp->new_cursor = e->off + e->len;
    }
    rp->committed = i;
    rp->finish = i == rp->nwin && rp->at_end;
    for (; i < rp->nwin; i++) {
        failed += rp->win[i].state != E_OK && rp->win[i].state != E_SKIP;
        if (rp->win[i].state == E_OK) {
            remember_acked(rp, rp->win[i].off);
        }
    }
    if (failed > 0) {
        wa_log_warn(NULL,
                    "spool replay: %zu of %zu records of %s not acknowledged (%s); resuming "
                    "from offset %llu later",
                    failed, rp->nwin, rp->name, wa_err_name(rp->fail_err),
                    (unsigned long long)rp->new_cursor);
    }
    if (rp->new_cursor == rp->cursor && rp->dead.len == 0 && !rp->finish) {
        pass_end(rp);
        return;
    }
    rp->ok = false;
    rp->err = 0;
    if (wa_pool_submit(s->pool, commit_work, commit_done, rp) != WA_OK) {
        pass_end(rp);
    }
}

/* Refused for good: too large or invalid at once; unknown topic, not authorised or another
 * unclassified error once that has lasted WA_SPOOL_DEAD_LETTER_AFTER (a topic being created or
 * an ACL being fixed recovers). Timeouts and unavailable brokers are outages, never refusals. */
static bool
refused_for_good(struct replay *rp, enum wa_err err)
{
    struct ig_spool *s = rp->spool;
    uint64_t now;

    if (err == WA_ETOOBIG || err == WA_EINVAL) {
        return true;
    }
    /* EIO: an error without a class (an invalid topic name, a record the broker rejects);
     * replay runs only while the producer is connected, so it is not an outage either */
    if (err != WA_ENOTFOUND && err != WA_EAUTH && err != WA_EIO) {
        return false;
    }
    rp->refusals++;
    now = wa_clock_mono_ms();
    if (s->refused_ms == 0) {
        s->refused_ms = now;
        wa_log_warn(NULL,
                    "spool replay: Kafka refuses records (%s); dead-lettered if it lasts "
                    "%lld ms",
                    wa_err_name(err), (long long)s->ig->cfg->spool_dead_letter_ms);
    }
    return now - s->refused_ms >= (uint64_t)s->ig->cfg->spool_dead_letter_ms;
}

static void
on_replayed(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct entry *e = arg;
    struct replay *rp = e->rp;

    (void)partition;
    (void)offset;
    if (err == WA_OK) {
        e->state = E_OK;
    } else if (refused_for_good(rp, err)) {
        e->state = E_DEAD;
    } else {
        e->state = E_FAILED;
        rp->fail_err = err;
        rp->outage |= err == WA_ETIMEDOUT || err == WA_EUNAVAIL || err == WA_ECLOSED;
    }
    if (--rp->pending == 0) {
        window_done(rp);
    }
}

/* Produces up to REPLAY_WINDOW records from the cursor, in file order. */
static void
replay_window(struct replay *rp)
{
    struct ig_spool *s = rp->spool;
    const unsigned char *p = (const unsigned char *)rp->data.data;
    size_t off = rp->cursor, len = rp->data.len;

    rp->nwin = rp->pending = rp->ndead = rp->refusals = 0;
    rp->outage = false;
    rp->fail_err = WA_OK;
    rp->dead.len = 0;
    rp->at_end = false;
    rp->new_flags = rp->flags;
    rp->busy = true;
    while (rp->nwin < REPLAY_WINDOW) {
        struct entry *e = &rp->win[rp->nwin];
        const char *f[NFIELDS];
        size_t l[NFIELDS], flen;

        if (off >= len) {
            rp->at_end = true;
            break;
        }
        *e = (struct entry){.rp = rp, .off = off};
        if (!wa_spool_frame_at(p, len, off, f, l, &flen)) {
            size_t next = wa_spool_frame_resync(p, len, off);

            if (next == len) {
                wa_log_warn(NULL, "spool: %s has a torn tail of %zu bytes (never acknowledged)",
                            rp->name, len - off);
                rp->at_end = true;
                break;
            }
            wa_log_error(NULL, "spool: %s: %zu damaged bytes at offset %zu skipped", rp->name,
                         next - off, off);
            e->len = next - off;
            e->state = E_SKIP;
            rp->new_flags |= CURSOR_DAMAGED;
            rp->nwin++;
            off = next;
            continue;
        }
        e->len = flen;
        if (was_acked(rp, off)) {
            e->state = E_OK;
        } else {
            char topic[256], key[WA_CONTRACT_KEY_MAX];
            struct wa_kafka_header h[5] = {
                {"ce_specversion", "1.0", 3}, {"ce_id", f[2], l[2]},       {"ce_type", f[3], l[3]},
                {"ce_source", f[4], l[4]},    {"traceparent", f[5], l[5]},
            };
            enum wa_err err;

            snprintf(topic, sizeof(topic), "%.*s", (int)l[0], f[0]);
            snprintf(key, sizeof(key), "%.*s", (int)l[1], f[1]);
            err = wa_kafka_produce(s->ig->producer, topic, key, strlen(key), f[6], l[6], h, 5,
                                   on_replayed, e);
            if (err == WA_OK) {
                e->state = E_PENDING;
                rp->pending++;
            } else if (refused_for_good(rp, err)) {
                e->state = E_DEAD;
            } else {
                rp->outage = true; /* queue full or producer gone: the window ends before it */
                break;
            }
        }
        rp->nwin++;
        off += flen;
    }
    if (rp->pending == 0) {
        window_done(rp);
    }
}

static void
load_done(void *arg)
{
    struct replay *rp = arg;

    if (!rp->ok) {
        wa_log_error(NULL, "spool replay: cannot read %s: %s", rp->path, strerror(rp->err));
        replay_free(rp);
        return;
    }
    rp->loaded = true;
    if (rp->cursor > 0) {
        wa_log_info(NULL, "spool replay: %s resumes at offset %llu of %zu", rp->name,
                    (unsigned long long)rp->cursor, rp->data.len);
    }
    if (!wa_kafka_producer_ready(rp->spool->ig->producer)) {
        pass_end(rp);
        return;
    }
    replay_window(rp);
}

static void
on_tick(struct wa_timer *t, void *arg)
{
    struct ig_spool *s = arg;
    struct replay *rp;

    (void)t;
    probe(s);
    if ((s->rp != NULL && s->rp->busy) || !wa_kafka_producer_ready(s->ig->producer)) {
        return;
    }
    if (s->rp != NULL) {
        replay_window(s->rp);
        return;
    }
    if (s->nfiles == 0) {
        seal_active(s);
        if (s->nfiles == 0) {
            return;
        }
    }
    if ((rp = calloc(1, sizeof(*rp))) == NULL) {
        return;
    }
    rp->spool = s;
    rp->busy = true;
    wa_buf_init(&rp->data, (size_t)2 * 1024 * 1024 * 1024);
    wa_buf_init(&rp->dead, 0);
    snprintf(rp->name, sizeof(rp->name), "%s", s->files[0].name);
    snprintf(rp->path, sizeof(rp->path), "%s/%s", s->dir, rp->name);
    snprintf(rp->cursor_path, sizeof(rp->cursor_path), "%s" CURSOR_SUFFIX, rp->path);
    snprintf(rp->dead_path, sizeof(rp->dead_path), "%s/" DEAD_PREFIX "%s", s->dir, rp->name);
    snprintf(rp->quarantine, sizeof(rp->quarantine), "%s/" QUARANTINE_PFX "%s", s->dir, rp->name);
    if (wa_pool_submit(s->pool, load_work, load_done, rp) != WA_OK) {
        replay_free(rp);
        return;
    }
    s->rp = rp;
}

/* ---- life ---- */

static int
by_name(const void *a, const void *b)
{
    return strcmp(((const struct spool_file *)a)->name, ((const struct spool_file *)b)->name);
}

static enum wa_err
mkdirs(const char *dir)
{
    char tmp[512];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(tmp)) {
        return WA_ECONFIG;
    }
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
                return WA_EIO;
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
        return WA_EIO;
    }
    return WA_OK;
}

/* Start-up only (blocking is fine before the listener opens): files of earlier runs. */
static enum wa_err
scan(struct ig_spool *s)
{
    DIR *d = opendir(s->dir);
    struct dirent *de;

    if (d == NULL) {
        return WA_EIO;
    }
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        char path[600];
        struct stat st;

        int len = snprintf(path, sizeof(path), "%s/%s", s->dir, de->d_name);

        if (len < 0 || (size_t)len >= sizeof(path)) {
            continue; /* not a name this spool writes (the directory is bounded at start) */
        }
        if (strncmp(de->d_name, "spool-", 6) == 0 && n > 11 &&
            strcmp(de->d_name + n - 11, ".log" CURSOR_SUFFIX) == 0) {
            /* a cursor whose file was removed by a run that died before removing it too */
            char log[600];

            snprintf(log, sizeof(log), "%.*s", (int)(strlen(path) - 7), path);
            if (access(log, F_OK) != 0 && errno == ENOENT) {
                unlink(path);
            }
            continue;
        }
        if (strncmp(de->d_name, "spool-", 6) != 0 || n < 10 || n >= sizeof(s->files[0].name) ||
            strcmp(de->d_name + n - 4, ".log") != 0) {
            continue;
        }
        if (stat(path, &st) != 0) {
            continue;
        }
        if (s->nfiles == s->capfiles) {
            size_t cap = s->capfiles ? s->capfiles * 2 : 8;
            struct spool_file *grown = realloc(s->files, cap * sizeof(*grown));

            if (grown == NULL) {
                closedir(d);
                return WA_ENOMEM;
            }
            s->files = grown;
            s->capfiles = cap;
        }
        snprintf(s->files[s->nfiles].name, sizeof(s->files[0].name), "%s", de->d_name);
        s->files[s->nfiles++].size = (size_t)st.st_size;
    }
    closedir(d);
    if (s->nfiles > 1) {
        qsort(s->files, s->nfiles, sizeof(s->files[0]), by_name);
    }
    return WA_OK;
}

enum wa_err
ig_spool_new(struct ig *ig, struct ig_spool **out, struct wa_error *error)
{
    struct ig_spool *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (s == NULL) {
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    s->ig = ig;
    s->fd = -1;
    snprintf(s->dir, sizeof(s->dir), "%s", ig->cfg->spool_dir);
    if ((s->pool = wa_service_pool(ig->svc)) == NULL) {
        free(s);
        return wa_error_set(error, WA_ENOMEM, "no worker pool for the spool");
    }
    if (mkdirs(s->dir) != WA_OK || access(s->dir, W_OK) != 0 || scan(s) != WA_OK) {
        free(s->files);
        free(s);
        return wa_error_set(error, WA_ECONFIG, "WA_SPOOL_DIR %s: not a writable directory",
                            ig->cfg->spool_dir);
    }
    if ((s->timer = wa_timer_new(ig->loop, on_tick, s)) == NULL) {
        free(s->files);
        free(s);
        return wa_error_set(error, WA_ENOMEM, "out of memory");
    }
    wa_timer_start(s->timer, (uint64_t)ig->cfg->spool_replay_ms,
                   (uint64_t)ig->cfg->spool_replay_ms);
    if (s->nfiles > 0) {
        wa_log_info(NULL, "spool: %zu files from an earlier run will be replayed", s->nfiles);
        s->kafka_down = true; /* spool mode until Kafka acknowledges a replay window */
    }
    update_gauges(s);
    wa_gauge_set(ig->m.spool_writable, 1.0);
    *out = s;
    return WA_OK;
}

void
ig_spool_free(struct ig_spool *s)
{
    if (s == NULL) {
        return;
    }
    WA_ASSERT(!s->writing && !s->probing && (s->rp == NULL || !s->rp->busy));
    replay_free(s->rp);
    /* Queued when a write job could not even be allocated: not durable, their keys released. */
    for (size_t i = 0; i < s->nqueue; i++) {
        ig_publish_spooled(s->queue[i], false);
        ig_request_release(s->queue[i], true);
    }
    wa_timer_free(s->timer);
    if (s->fd >= 0) {
        close(s->fd);
    }
    free(s->queue);
    free(s->files);
    free(s);
}
