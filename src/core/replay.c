/* replay.c -- read a replay stream into engine batches (see replay.h).
 *
 * Invariant of the loop: b->buf[0..scan) is framed into b's messages,
 * b->buf[scan..len) is read but not yet framed. A batch is published when it
 * holds FS_BATCH_MSGS messages or FS_BATCH_BYTES framed bytes, or when its
 * buffer is full; the unframed tail then moves to the next batch. A single
 * message larger than the buffer grows it, up to FS_MAX_MESSAGE; beyond that
 * the message is one rejection and, in JSON lines, the rest of its line is
 * skipped unread.
 */
#include "replay.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"

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

/* Frames one message at buf[*scan..len); false when more bytes are needed. */
static bool frame_one(fs_batch *b, size_t *scan, bool eof)
{
    const char *p = b->buf + *scan;
    size_t avail = b->len - *scan, len = 0, consumed = 0;
    if (b->format == FS_FORMAT_MSGPACK) {
        fs_frame_status st = fs_frame_msgpack(p, avail, &len);
        if (st == FS_FRAME_NEED_MORE) {
            if (!eof)
                return false;
            fs_batch_add(b, (uint32_t)*scan, (uint32_t)avail, FS_REJECT_TRUNCATED);
            len = avail;
        } else {
            fs_reject r = st == FS_FRAME_OK ? FS_OK
                          : len == 1        ? FS_REJECT_BAD_START_BYTE
                                            : FS_REJECT_MALFORMED;
            fs_batch_add(b, (uint32_t)*scan, (uint32_t)len, r);
        }
        *scan += len;
        return true;
    }
    if (fs_frame_jsonl(p, avail, &len, &consumed) == FS_FRAME_NEED_MORE) {
        if (!eof)
            return false;
        len = consumed = avail;
    }
    if (!fs_line_is_blank(p, len))
        fs_batch_add(b, (uint32_t)*scan, (uint32_t)len, FS_OK);
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

int fs_replay_feed(fs_engine *e, int fd, fs_format format, bool last,
                   fs_replay_progress_fn progress, void *progress_ctx)
{
    fs_batch *b = fs_engine_batch_get(e, format);
    b->framed = true; /* frame_one framed every message it adds as FS_OK */
    size_t scan = 0;
    uint64_t bytes = 0;
    bool eof = false, skipping = false;
    int err = 0;
    for (;;) {
        if (skipping)
            skipping = !skip_line(b, scan);
        while (!skipping && scan < b->len && !batch_is_full(b, scan) && frame_one(b, &scan, eof))
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
