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

#include "event.h"

typedef enum fs_frame_status { FS_FRAME_OK, FS_FRAME_BAD, FS_FRAME_NEED_MORE } fs_frame_status;

fs_frame_status fs_frame_msgpack(const char *buf, size_t len, size_t *msg_len);
fs_frame_status fs_frame_jsonl(const char *buf, size_t len, size_t *msg_len, size_t *consumed);
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
