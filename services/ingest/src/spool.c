/*
 * spool.c: stage 7 of 7 (fallback of publish). Input: requests whose records Kafka did not
 * acknowledge in time. Output: the records appended to a local file and fsynced before the
 * request is answered (ig_publish_spooled), and a replayer that re-publishes them in order.
 *
 * Files: WA_SPOOL_DIR/spool-<ULID>.log, append-only. Frame per record:
 *   "WASP" | u32 payload length | u32 CRC-32 of payload | payload
 *   payload = 7 fields, each u32 length + bytes: topic, key, id, type, source, traceparent, value
 * (integers little-endian). A torn tail (crash during a write that was never acknowledged) is
 * detected by length or CRC and ignored. A damaged frame with intact frames after it (a flipped
 * byte, a zeroed block) is skipped by resynchronising on the next valid frame, so every later
 * record is still replayed; records Kafka refuses for good are skipped too. Either way the file
 * is not deleted after its replay but renamed quarantine-spool-<ULID>.log for an operator
 * (wa_ingest_spool_damaged_total{kind} counts them; an alert rule watches it).
 *
 * Writes are group commits: requests that arrive while a write is in flight wait and go out
 * together in the next write + fdatasync, on the worker pool (never on the loop). One write
 * job at a time, so the file descriptor is used by one thread at a time.
 *
 * Replay (timer, every WA_SPOOL_REPLAY_INTERVAL, when the producer is connected): seal the
 * active file if nothing older is waiting, read the oldest file on the pool, produce its records
 * in file order, and delete the file once every record is acknowledged. Any failure leaves the
 * file for the next pass (duplicates possible, never a loss). Files left by an earlier run are
 * found at start and replayed the same way.
 *
 * Lifetime: owned by ig (made by the spool stage's start, freed by its stop). By the stop the
 * scaffolding has silenced the pool and the producer: every job's completion and every replay
 * delivery report has run, so nothing refers to the spool any more.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wa/kafka.h"
#include "wa/pool.h"
#include "wa/spool_frame.h"

#include "ingest.h"

#define NFIELDS WA_SPOOL_FIELDS

struct spool_file {
    char name[64];
    size_t size;
};

struct write_job {
    struct ig_spool *spool;
    struct ig_request **reqs; /* owned array; the requests are borrowed (they wait for us) */
    size_t nreqs;
    struct wa_buf data;
    bool ok;
    int err;
};

struct replay_job {
    struct ig_spool *spool;
    char path[600];
    struct wa_buf data; /* the file */
    bool ok;
    size_t pending; /* deliveries outstanding */
    size_t failed;
    size_t poison;  /* refused for good (too large, invalid): skipped, or the spool never drains */
    size_t corrupt; /* damaged frames skipped by resynchronising */
    size_t records;
    char quarantine[600]; /* where the file goes when damaged (poison or corrupt > 0) */
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
    struct replay_job *replay; /* in progress, or NULL */
    struct wa_timer *timer;
    bool broken; /* last write failed */
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

static void
write_work(void *arg)
{
    struct write_job *j = arg;
    struct ig_spool *s = j->spool;
    char path[600];
    size_t off = 0;
    bool created = false;

    if (s->fd < 0) {
        snprintf(path, sizeof(path), "%s/%s", s->dir, s->active);
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
            return;
        }
        off += (size_t)n;
    }
    if (fdatasync(s->fd) != 0) {
        j->err = errno;
        return;
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
            return;
        }
    }
    j->ok = true;
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

static void
write_done(void *arg)
{
    struct write_job *j = arg;
    struct ig_spool *s = j->spool;

    s->writing = false;
    if (j->ok) {
        s->active_size += j->data.len;
        s->broken = false;
        wa_counter_add(s->ig->m.spool_written, j->nreqs);
    } else {
        s->broken = true;
        wa_log_error(NULL, "spool write to %s failed: %s", s->dir, strerror(j->err));
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

bool
ig_spool_backlog(const struct ig_spool *s)
{
    return s->nfiles > 0 || s->active_size > 0 || s->writing || s->nqueue > 0;
}

bool
ig_spool_ready(const struct ig_spool *s)
{
    return !s->broken;
}

/* ---- replay ---- */

static void
read_work(void *arg)
{
    struct replay_job *j = arg;
    char chunk[65536];
    int fd = open(j->path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        return;
    }
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 || wa_buf_append(&j->data, chunk, (size_t)n) != WA_OK) {
            close(fd);
            return;
        }
    }
    close(fd);
    j->ok = true;
}

/* A replayed file goes; a damaged one is kept under another name (never replayed again). */
static void
unlink_work(void *arg)
{
    struct replay_job *j = arg;

    if (j->poison > 0 || j->corrupt > 0) {
        j->ok = rename(j->path, j->quarantine) == 0 || errno == ENOENT;
    } else {
        j->ok = unlink(j->path) == 0 || errno == ENOENT;
    }
}

static void
replay_end(struct replay_job *j)
{
    struct ig_spool *s = j->spool;

    if (s->replay == j) {
        s->replay = NULL;
    }
    wa_buf_cleanup(&j->data);
    free(j);
}

static void
unlink_done(void *arg)
{
    struct replay_job *j = arg;
    struct ig_spool *s = j->spool;

    if (j->ok && s->nfiles > 0) {
        if (j->poison > 0 || j->corrupt > 0) {
            wa_counter_add(s->ig->m.spool_replayed, j->records);
            wa_counter_add(s->ig->m.spool_damaged[0], j->corrupt);
            wa_counter_add(s->ig->m.spool_damaged[1], j->poison);
            wa_log_error(NULL,
                         "spool: replayed %zu records of %s; %zu damaged frames and %zu records "
                         "refused by Kafka were skipped; the file is kept as %s",
                         j->records, s->files[0].name, j->corrupt, j->poison, j->quarantine);
        } else {
            wa_counter_add(s->ig->m.spool_replayed, j->records);
            wa_log_info(NULL, "spool: replayed %zu records, removed %s", j->records,
                        s->files[0].name);
        }
        memmove(&s->files[0], &s->files[1], (s->nfiles - 1) * sizeof(s->files[0]));
        s->nfiles--;
        update_gauges(s);
    }
    replay_end(j);
    if (s->nfiles > 0 || s->active_size > 0) {
        wa_timer_start(s->timer, 0, (uint64_t)s->ig->cfg->spool_replay_ms);
    }
}

static void
on_replayed(enum wa_err err, int32_t partition, int64_t offset, void *arg)
{
    struct replay_job *j = arg;
    struct ig_spool *s = j->spool;

    (void)partition;
    (void)offset;
    j->pending--;
    if (err == WA_ETOOBIG || err == WA_EINVAL) {
        j->poison++;
        wa_log_error(NULL, "spool replay: a record of %s was refused for good (%s); skipped",
                     j->path, wa_err_name(err));
    } else if (err != WA_OK) {
        j->failed++;
    }
    if (j->pending > 0) {
        return;
    }
    if (j->failed > 0) {
        wa_log_warn(NULL, "spool replay: %zu of %zu records not acknowledged; retrying later",
                    j->failed, j->records);
        replay_end(j);
        return;
    }
    j->ok = false;
    if (wa_pool_submit(s->pool, unlink_work, unlink_done, j) != WA_OK) {
        replay_end(j);
    }
}

/* Produces every intact record of the file in j->data, in order. */
static void
replay_records(struct replay_job *j)
{
    struct ig_spool *s = j->spool;
    const unsigned char *p = (const unsigned char *)j->data.data;
    size_t off = 0, len = j->data.len;

    while (off < len) {
        const char *f[NFIELDS];
        size_t l[NFIELDS], flen;

        if (!wa_spool_frame_at(p, len, off, f, l, &flen)) {
            size_t next = wa_spool_frame_resync(p, len, off);

            if (next == len) {
                break; /* a torn tail: never acknowledged */
            }
            wa_log_error(NULL, "spool: %s: %zu damaged bytes at offset %zu skipped", j->path,
                         next - off, off);
            j->corrupt++;
            off = next;
            continue;
        }
        {
            char topic[256], key[WA_CONTRACT_KEY_MAX];
            struct wa_kafka_header h[5] = {
                {"ce_specversion", "1.0", 3}, {"ce_id", f[2], l[2]},       {"ce_type", f[3], l[3]},
                {"ce_source", f[4], l[4]},    {"traceparent", f[5], l[5]},
            };

            snprintf(topic, sizeof(topic), "%.*s", (int)l[0], f[0]);
            snprintf(key, sizeof(key), "%.*s", (int)l[1], f[1]);
            enum wa_err err = wa_kafka_produce(s->ig->producer, topic, key, strlen(key), f[6], l[6],
                                               h, 5, on_replayed, j);

            if (err == WA_ETOOBIG || err == WA_EINVAL) {
                j->poison++;
                wa_log_error(NULL,
                             "spool replay: a record of %s was refused for good (%s); "
                             "skipped",
                             j->path, wa_err_name(err));
                off += flen;
                continue;
            }
            if (err != WA_OK) {
                j->failed++;
                break;
            }
        }
        j->pending++;
        j->records++;
        off += flen;
    }
    if (off < len && j->failed == 0 && j->corrupt == 0) {
        wa_log_warn(NULL, "spool: %s has a torn tail of %zu bytes (never acknowledged); skipped",
                    j->path, len - off);
    }
}

static void
read_done(void *arg)
{
    struct replay_job *j = arg;
    struct ig_spool *s = j->spool;

    if (!j->ok) {
        replay_end(j);
        return;
    }
    replay_records(j);
    if (j->pending == 0) {
        /* Nothing produced: an empty or torn file is removed; a refused produce retries. */
        if (j->failed > 0 || wa_pool_submit(s->pool, unlink_work, unlink_done, j) != WA_OK) {
            replay_end(j);
        }
    }
}

static void
on_tick(struct wa_timer *t, void *arg)
{
    struct ig_spool *s = arg;
    struct replay_job *j;

    (void)t;
    if (s->replay != NULL || !wa_kafka_producer_ready(s->ig->producer)) {
        return;
    }
    if (s->nfiles == 0) {
        seal_active(s);
        if (s->nfiles == 0) {
            return;
        }
    }
    if ((j = calloc(1, sizeof(*j))) == NULL) {
        return;
    }
    j->spool = s;
    wa_buf_init(&j->data, (size_t)2 * 1024 * 1024 * 1024);
    snprintf(j->path, sizeof(j->path), "%s/%s", s->dir, s->files[0].name);
    snprintf(j->quarantine, sizeof(j->quarantine), "%s/quarantine-%s", s->dir, s->files[0].name);
    if (wa_pool_submit(s->pool, read_work, read_done, j) != WA_OK) {
        free(j);
        return;
    }
    s->replay = j;
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

        if (strncmp(de->d_name, "spool-", 6) != 0 || n < 10 || n >= sizeof(s->files[0].name) ||
            strcmp(de->d_name + n - 4, ".log") != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", s->dir, de->d_name);
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
    }
    update_gauges(s);
    *out = s;
    return WA_OK;
}

void
ig_spool_free(struct ig_spool *s)
{
    if (s == NULL) {
        return;
    }
    WA_ASSERT(!s->writing && s->replay == NULL);
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
