/* replay.c -- read a replay stream into engine batches (see replay.h).
 *
 * A regular file is mapped and each batch is a view of the mapping (no copy,
 * no read calls); a pipe or a file that cannot be mapped is read into the
 * batches' own buffers. Both cut the stream into the same batches.
 *
 * Invariant of the read loop: b->buf[0..scan) is framed into b's messages,
 * b->buf[scan..len) is read but not yet framed; the framer (fs_framer)
 * remembers how far into that message it has walked, so that a message that
 * takes many reads (a pipe gives 64 KB at a time) is walked once, not from
 * its start again after every read. A batch is published when it
 * holds FS_BATCH_MSGS messages or FS_BATCH_BYTES framed bytes, or when its
 * buffer is full; the unframed tail then moves to the next batch. A single
 * message larger than the buffer grows it, up to FS_MAX_MESSAGE; beyond that
 * the message is one rejection and, in JSON lines, the rest of its line is
 * skipped unread.
 */
#include "replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"
#include "util.h"

int fs_format_from_path(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot)
        return -1;
    if (!strcmp(dot, ".msgpack") || !strcmp(dot, ".mp") || !strcmp(dot, ".mpk"))
        return FS_FORMAT_MSGPACK;
    if (!strcmp(dot, ".jsonl") || !strcmp(dot, ".json") || !strcmp(dot, ".ndjson"))
        return FS_FORMAT_JSON;
    return -1;
}

/* The next message of a stream at p[0..avail): how many bytes it covers
 * (*consumed), its own length (*len, 0 when it is rejected unread for its
 * size) and its preset status (*r, FS_OK: to be decoded). Returns false when
 * it is incomplete and more input may follow; at the end of input an
 * incomplete object is one rejection and an unterminated line the last
 * line. A blank line covers bytes but is no message (*blank). */
static bool next_message(fs_framer *fr, fs_format format, const char *p, size_t avail, bool eof,
                         size_t *len, size_t *consumed, fs_reject *r, bool *blank)
{
    *blank = false;
    if (format == FS_FORMAT_MSGPACK) {
        fs_frame_status st = fs_framer_msgpack(fr, p, avail, len);
        if (st == FS_FRAME_NEED_MORE) {
            if (!eof)
                return false;
            fs_framer_reset(fr);
            *len = avail;
        }
        *r = fs_frame_reject(st, *len);
        *consumed = *len;
    } else {
        if (fs_framer_jsonl(fr, p, avail, len, consumed) == FS_FRAME_NEED_MORE) {
            if (!eof)
                return false;
            fs_framer_reset(fr);
            *len = *consumed = avail;
        }
        *blank = fs_line_is_blank(p, *len);
        *r = FS_OK;
    }
    if (*len >= FS_MAX_MESSAGE) { /* rejected unread */
        *len = 0;
        if (*r == FS_OK)
            *r = FS_REJECT_MALFORMED;
    }
    return true;
}

/* Frames one message at buf[*scan..len); false when more bytes are needed,
 * fr then knowing how far the message was framed. */
static bool frame_one(fs_batch *b, fs_framer *fr, size_t *scan, bool eof)
{
    size_t len, consumed;
    fs_reject r;
    bool blank;
    if (!next_message(fr, b->format, b->buf + *scan, b->len - *scan, eof, &len, &consumed, &r,
                      &blank))
        return false;
    if (!blank)
        fs_batch_add(b, (uint32_t)*scan, (uint32_t)len, r);
    *scan += consumed;
    return true;
}

static bool batch_is_full(const fs_batch *b, size_t scan)
{
    return b->n == b->msg_cap || scan >= FS_BATCH_BYTES;
}

/* Publishes b and returns a fresh batch holding b's unframed tail. */
static fs_batch *carry_over(fs_engine *e, fs_batch *b, size_t scan)
{
    fs_engine_batch_publish(e, b, false);
    fs_batch *next = fs_engine_batch_get(e, b->format);
    next->framed = true;
    size_t tail = b->len - scan;
    fs_batch_reserve(next, tail);
    memcpy(next->buf, b->buf + scan, tail);
    next->len = tail;
    return next;
}

/* Drops bytes up to and including the next '\n'; true once it was found. */
static bool skip_line(fs_batch *b, size_t scan)
{
    char *nl = memchr(b->buf + scan, '\n', b->len - scan);
    if (!nl) {
        b->len = scan;
        return false;
    }
    size_t rest = b->len - (size_t)(nl + 1 - b->buf);
    memmove(b->buf + scan, nl + 1, rest);
    b->len = scan + rest;
    return true;
}

/* Frames one message of the mapping at map[pos..size) into b (a view that
 * will start at map + base); returns the bytes it covers. */
static size_t frame_mapped(fs_batch *b, const char *map, size_t size, size_t base, size_t pos)
{
    size_t len, consumed;
    fs_reject r;
    bool blank;
    fs_framer fr = {0};
    next_message(&fr, b->format, map + pos, size - pos, true, &len, &consumed, &r, &blank);
    if (!blank)
        fs_batch_add(b, (uint32_t)(pos - base), (uint32_t)len, r);
    return consumed;
}

/* Pages of the mapping that every worker is done with are dropped from the
 * process (the page cache keeps them), so that resident memory stays the
 * size of the batches in flight, not of the file. ends[k] is where the
 * k-th batch of this mapping (seq first_seq + k) ended. */
#define RELEASE_BYTES (16u << 20)

static void release_done(fs_engine *e, char *map, const size_t *ends, uint64_t first_seq,
                         size_t *released)
{
    uint64_t done = fs_engine_batches_done(e);
    if (done <= first_seq)
        return;
    size_t upto = ends[done - 1 - first_seq] & ~((size_t)sysconf(_SC_PAGESIZE) - 1);
    if (upto >= *released + RELEASE_BYTES) { /* in chunks: each call flushes TLBs */
        madvise(map + *released, upto - *released, MADV_DONTNEED);
        *released = upto;
    }
}

/* The mapped file as batches: each a view of up to FS_BATCH_BYTES of whole
 * messages (one longer message makes a batch of its own). */
static void feed_mapped(fs_engine *e, char *map, size_t size, fs_format format, bool last,
                        fs_replay_progress_fn progress, void *progress_ctx)
{
    size_t pos = 0, released = 0, n_batches = 0, cap = 64;
    size_t *ends = fs_xmalloc(cap * sizeof(*ends));
    fs_batch *b = fs_engine_batch_get(e, format);
    uint64_t first_seq = b->seq;
    while (pos < size) {
        size_t base = pos;
        b->framed = true;
        while (pos < size && b->n < b->msg_cap && pos - base < FS_BATCH_BYTES)
            pos += frame_mapped(b, map, size, base, pos);
        fs_batch_view(b, map + base, pos - base);
        if (progress)
            progress(progress_ctx, pos);
        if (pos == size)
            break;
        if (n_batches == cap)
            ends = fs_xrealloc(ends, (cap *= 2) * sizeof(*ends));
        ends[n_batches++] = pos;
        fs_engine_batch_publish(e, b, false);
        b = fs_engine_batch_get(e, format);
        release_done(e, map, ends, first_seq, &released);
    }
    fs_engine_batch_publish(e, b, last);
    free(ends);
}

static int feed_read(fs_engine *e, int fd, fs_format format, bool last,
                     fs_replay_progress_fn progress, void *progress_ctx);

int fs_replay_feed(fs_engine *e, int fd, fs_format format, bool last,
                   fs_replay_progress_fn progress, void *progress_ctx)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        off_t at = lseek(fd, 0, SEEK_CUR);
        size_t size = (size_t)st.st_size;
        void *map = at == 0 ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
        if (map != MAP_FAILED) {
            madvise(map, size, MADV_SEQUENTIAL);
            feed_mapped(e, map, size, format, last, progress, progress_ctx);
            fs_engine_adopt_mapping(e, map, size);
            return 0;
        }
    }
    return feed_read(e, fd, format, last, progress, progress_ctx);
}

static int feed_read(fs_engine *e, int fd, fs_format format, bool last,
                     fs_replay_progress_fn progress, void *progress_ctx)
{
    fs_batch *b = fs_engine_batch_get(e, format);
    b->framed = true; /* frame_one framed every message it adds as FS_OK */
    size_t scan = 0;
    uint64_t bytes = 0;
    bool eof = false, skipping = false;
    int err = 0;
    fs_framer fr = {0}; /* the message at scan; it moves with it to the next batch */
    for (;;) {
        if (skipping)
            skipping = !skip_line(b, scan);
        while (!skipping && scan < b->len && !batch_is_full(b, scan) &&
               frame_one(b, &fr, &scan, eof))
            ;
        if (eof && (scan == b->len || skipping))
            break;
        if (batch_is_full(b, scan) || (b->len == b->cap && scan > 0)) {
            b = carry_over(e, b, scan);
            scan = 0;
            continue;
        }
        if (b->len == b->cap) { /* one message fills the buffer */
            if (b->len - scan >= FS_MAX_MESSAGE) {
                fs_batch_add(b, (uint32_t)scan, 0, FS_REJECT_MALFORMED);
                b->len = scan;
                fs_framer_reset(&fr);
                skipping = (format == FS_FORMAT_JSON);
            } else {
                fs_batch_reserve(b, b->cap);
            }
        }
        ssize_t r = read(fd, b->buf + b->len, b->cap - b->len);
        if (r > 0) {
            b->len += (size_t)r;
            bytes += (uint64_t)r;
            if (progress)
                progress(progress_ctx, bytes);
        } else if (r == 0) {
            eof = true;
        } else if (errno != EINTR) {
            err = errno;
            b->len = scan; /* what was framed is processed; the rest is lost with the error */
            break;
        }
    }
    fs_engine_batch_publish(e, b, last);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}
