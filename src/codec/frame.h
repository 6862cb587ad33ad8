/* frame.h -- split a replay byte stream into messages (SPEC §1, replay files).
 *
 * Framing finds where each message ends without decoding it, so a reader can
 * cut a file into batches that several threads decode in parallel.
 *
 * MessagePack: the stream is concatenated objects. fs_frame_msgpack looks at
 * buf[0..len) and returns one of
 *   FS_FRAME_OK        *msg_len = size of one complete object starting at buf[0]
 *   FS_FRAME_BAD       buf[0..*msg_len) is one rejection (a byte that cannot start
 *                      an object: *msg_len = 1; or an object that breaks at an
 *                      impossible byte: up to and including that byte), resume after
 *   FS_FRAME_NEED_MORE the object is incomplete; call again with more bytes, or, at
 *                      the end of input, count the remaining bytes as one rejection
 * It needs no memory: containers only add to a count of values still expected, so
 * deep nesting and huge declared sizes cost nothing. An object whose declared
 * sizes exceed what the buffer holds is simply incomplete.
 *
 * JSON lines: fs_frame_jsonl returns FS_FRAME_OK with *msg_len = line length
 * without the '\n' and *consumed = bytes to skip including it, or
 * FS_FRAME_NEED_MORE when there is no '\n' yet (at end of input the rest is the
 * last line). Blank lines (only JSON whitespace) are the caller's to skip via
 * fs_line_is_blank.
 */
#ifndef FS_FRAME_H
#define FS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

typedef enum fs_frame_status { FS_FRAME_OK, FS_FRAME_BAD, FS_FRAME_NEED_MORE } fs_frame_status;

fs_frame_status fs_frame_msgpack(const char *buf, size_t len, size_t *msg_len);
fs_frame_status fs_frame_jsonl(const char *buf, size_t len, size_t *msg_len, size_t *consumed);

/* Resumable framing, for a reader that gets a long message in pieces (a
 * pipe gives 64 KB per read): after FS_FRAME_NEED_MORE the framer keeps
 * where its walk stopped, and the next call with the same message start and
 * more bytes (buf may have moved: only offsets are kept) goes on from there
 * instead of walking the message again from its first byte, which made
 * framing quadratic in the message size. After FS_FRAME_OK or FS_FRAME_BAD
 * it is ready for the next message, as after fs_framer_reset. */
typedef struct fs_framer {
    size_t pos;        /* bytes of the message walked so far */
    uint64_t pending;  /* msgpack: values still needed from pos on; 0 = not started */
    uint64_t examined; /* bytes walked over in all, for tests: linear framing
                        * keeps it at the stream's size */
} fs_framer;

/* Forgets the message in progress (the caller dropped its bytes); keeps
 * `examined`. */
static inline void fs_framer_reset(fs_framer *f)
{
    f->pos = 0;
    f->pending = 0;
}

fs_frame_status fs_framer_msgpack(fs_framer *f, const char *buf, size_t len, size_t *msg_len);
fs_frame_status fs_framer_jsonl(fs_framer *f, const char *buf, size_t len, size_t *msg_len,
                                size_t *consumed);
bool fs_line_is_blank(const char *line, size_t len);

/* The rejection a MessagePack framing result stands for (SPEC §1): an
 * incomplete object is truncated, a byte that cannot start one a bad start
 * byte, any other break malformed; FS_OK for a complete object. */
static inline fs_reject fs_frame_reject(fs_frame_status st, size_t msg_len)
{
    return st == FS_FRAME_OK          ? FS_OK
           : st == FS_FRAME_NEED_MORE ? FS_REJECT_TRUNCATED
           : msg_len == 1             ? FS_REJECT_BAD_START_BYTE
                                      : FS_REJECT_MALFORMED;
}

#endif
